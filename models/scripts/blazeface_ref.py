#!/usr/bin/env python3
"""Reference BlazeFace pre/post-processing on the converted ONNX models.

    python3 models/scripts/blazeface_ref.py models/face/blazeface-back.onnx img1.jpg [img2.jpg ...]
        [--draw /tmp/out_dir] [--no-letterbox] [--min-score 0.2] [--iou 0.1] [--max 10]

This is the spec the Rust port follows; it mirrors `human` 3.x
(src/face/blazeface.ts + facemeshutil.ts) unless noted.

Pre-processing
  * RGB, uint8 0..255.  Optional letterbox (default here, `human`'s
    detector.square option): pad the shorter side with black (0) to a centred
    square, so faces keep their aspect ratio.  `human` by default stretches.
  * Resize to S x S (S = 256 back, 128 front) with TF's legacy bilinear
    (align_corners=False, half_pixel_centers=False), as tf.image.resizeBilinear.
  * x = pixel / 127.5 - 1  -> [-1, 1];  NCHW float32 [1, 3, S, S].

Model outputs (ONNX): classificators [1,896,1] logits, regressors [1,896,16].
Row r of regressors, in input-pixel units (0..S), relative to anchor r:
  [0:2] box centre offset (dx, dy)   [2:4] box size (w, h)
  [4+2k : 6+2k] keypoint k offset (dx, dy), k = 0..5:
  0 right eye, 1 left eye, 2 nose tip, 3 mouth centre, 4 right ear tragion,
  5 left ear tragion   ("right" = the subject's right, i.e. image left in a
  non-mirrored frontal photo).

Anchors (896, input pixels), anchor size fixed to 1 (so no w/h scaling):
  for (stride, n) in [(S/16, 2), (S/8, 6)]:      # back: 16,32  front: 8,16
    for y in range(S/stride): for x in range(S/stride): repeat n times:
      anchor = ((x + 0.5) * stride, (y + 0.5) * stride)
  -> 16*16*2 = 512 rows, then 8*8*6 = 384 rows.

Decoding (input pixels):
  cx = dx + ax, cy = dy + ay;  box = (cx - w/2, cy - h/2, cx + w/2, cy + h/2)
  keypoint k = (kdx + ax, kdy + ay);  score = sigmoid(logit)  (logit clipped to
  [-100, 100] first as MediaPipe does; raw logits reach -3e4, so use a sigmoid
  that cannot overflow)
Back to the original image: p_orig = p_input * side / S - pad (letterbox) or
  x * W / S, y * H / S (stretch).

NMS: hard NMS as tf.image.nonMaxSuppression: keep candidates with
score > min_score, visit by descending score (ties: lower index first), drop
a candidate whose IoU with any kept box is >= iou, stop at max boxes; a box
of zero/negative area has IoU 0.  `human` defaults: min_score 0.2, iou 0.1,
maxDetected 1; it then enlarges the box 1.4x and squares it for its mesh crop
(not done here).
"""

import argparse
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageDraw

KEYPOINTS = ["right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear_tragion",
             "left_ear_tragion"]


def load_rgb(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)


def resize_bilinear(img, out_h, out_w):
    """tf.image.resizeBilinear(align_corners=False, half_pixel_centers=False)."""
    in_h, in_w = img.shape[:2]
    ys = np.arange(out_h, dtype=np.float64) * (in_h / out_h)
    xs = np.arange(out_w, dtype=np.float64) * (in_w / out_w)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, in_h - 1)
    x1 = np.minimum(x0 + 1, in_w - 1)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    im = img.astype(np.float32)
    top = im[y0][:, x0] * (1 - fx) + im[y0][:, x1] * fx
    bot = im[y1][:, x0] * (1 - fx) + im[y1][:, x1] * fx
    return (top * (1 - fy) + bot * fy).astype(np.float32)


def preprocess(img, size, letterbox=True):
    """-> (NCHW float32 [1,3,S,S] in [-1,1], mapping input px -> original px)."""
    h, w = img.shape[:2]
    if letterbox:
        side = max(h, w)
        pad_x, pad_y = (side - w) // 2, (side - h) // 2
        canvas = np.zeros((side, side, 3), np.uint8)
        canvas[pad_y:pad_y + h, pad_x:pad_x + w] = img
        img = canvas
        sx = sy = side / size
    else:
        pad_x = pad_y = 0
        sx, sy = w / size, h / size
    x = resize_bilinear(img, size, size) / 127.5 - 1.0
    nchw = x.transpose(2, 0, 1)[None].astype(np.float32)

    def to_orig(pts):
        pts = np.asarray(pts, np.float64)
        return np.stack([pts[..., 0] * sx - pad_x, pts[..., 1] * sy - pad_y], -1)

    return nchw, to_orig


def generate_anchors(size):
    anchors = []
    for stride, per_cell in [(size // 16, 2), (size // 8, 6)]:
        cells = (size + stride - 1) // stride
        for y in range(cells):
            for x in range(cells):
                anchors += [((x + 0.5) * stride, (y + 0.5) * stride)] * per_cell
    return np.array(anchors, np.float32)  # [896, 2]


def decode(logits, regressors, anchors):
    """-> boxes [N,4] (x1,y1,x2,y2), keypoints [N,6,2], scores [N]; input px."""
    reg = regressors.reshape(-1, 16)
    centre = reg[:, 0:2] + anchors
    half = reg[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], 1)
    kps = reg[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1).astype(np.float64), -100, 100)))
    return boxes, kps, scores


def iou(a, b):
    ax1, ay1, ax2, ay2 = min(a[0], a[2]), min(a[1], a[3]), max(a[0], a[2]), max(a[1], a[3])
    bx1, by1, bx2, by2 = min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])
    area_a, area_b = (ax2 - ax1) * (ay2 - ay1), (bx2 - bx1) * (by2 - by1)
    if area_a <= 0 or area_b <= 0:
        return 0.0
    inter = max(min(ax2, bx2) - max(ax1, bx1), 0) * max(min(ay2, by2) - max(ay1, by1), 0)
    return inter / (area_a + area_b - inter)


def nms(boxes, scores, max_out, iou_thr, min_score):
    order = sorted((i for i in range(len(scores)) if scores[i] > min_score),
                   key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if len(keep) >= max_out:
            break
        if all(iou(boxes[i], boxes[j]) < iou_thr for j in keep):
            keep.append(i)
    return keep


def detect(session, img, letterbox=True, min_score=0.2, iou_thr=0.1, max_out=10):
    size = session.get_inputs()[0].shape[2]
    x, to_orig = preprocess(img, size, letterbox)
    logits, regressors = session.run(["classificators", "regressors"], {"input": x})
    boxes, kps, scores = decode(logits, regressors, generate_anchors(size))
    faces = []
    for i in nms(boxes, scores, max_out, iou_thr, min_score):
        b = to_orig(boxes[i].reshape(2, 2)).reshape(4)
        faces.append({"anchor": i, "score": float(scores[i]), "box": b, "keypoints": to_orig(kps[i])})
    return faces


def draw(img, faces, path):
    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    colours = ["red", "blue", "yellow", "magenta", "orange", "cyan"]
    for f in faces:
        d.rectangle([float(v) for v in f["box"]], outline="lime", width=2)
        for k, (x, y) in enumerate(f["keypoints"]):
            d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colours[k])
    im.save(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--draw", help="directory for annotated PNGs")
    ap.add_argument("--no-letterbox", action="store_true", help="stretch like human's default")
    ap.add_argument("--min-score", type=float, default=0.2)
    ap.add_argument("--iou", type=float, default=0.1)
    ap.add_argument("--max", type=int, default=10)
    args = ap.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    for path in args.images:
        img = load_rgb(path)
        faces = detect(session, img, not args.no_letterbox, args.min_score, args.iou, args.max)
        print(f"{os.path.basename(path)} {img.shape[1]}x{img.shape[0]}: {len(faces)} face(s)")
        for f in faces:
            b = f["box"]
            print(f"  score {f['score']:.4f} anchor {f['anchor']} box x1={b[0]:.1f} y1={b[1]:.1f} "
                  f"x2={b[2]:.1f} y2={b[3]:.1f} (w {b[2]-b[0]:.1f} h {b[3]-b[1]:.1f})")
            print("    " + "  ".join(f"{n}=({x:.1f},{y:.1f})"
                                     for n, (x, y) in zip(KEYPOINTS, f["keypoints"])))
        if args.draw:
            os.makedirs(args.draw, exist_ok=True)
            draw(img, faces, os.path.join(args.draw, os.path.splitext(os.path.basename(path))[0] + ".png"))


if __name__ == "__main__":
    sys.exit(main())
