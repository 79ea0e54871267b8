#!/usr/bin/env python3
# Install: pip install dlib-bin face_recognition==1.3.0 face_recognition_models==0.3.0
"""face_recognition (dlib) peer baseline for the LFW face-verification benchmark.

Runs the PyPI `face_recognition` 1.3.0 pipeline (dlib HOG detector, 5-point shape
predictor, dlib ResNet 128-d encoder) over every distinct image of the chosen LFW view
and scores each pair by the Euclidean distance between the two encodings.

Usage:
    python3 benches/face_recognition_peer.py --data /work/shared/datasets/lfw --view 2 \
        --json out.json [--scores-csv scores.csv] [--limit-pairs N] [--upsample 1] \
        [--model small] [--num-jitters 1]

Per image (single process, one thread; the thread env vars are set below before numpy and
dlib are imported):
  * decode:   face_recognition.load_image_file (file read + JPEG decode to RGB uint8);
  * pipeline: face_locations(img, number_of_times_to_upsample=U, model="hog"), choice of
    one box, face_encodings(img, known_face_locations=[box], num_jitters=J, model=M)
    (M="small": 5-point landmarks, as in dlib's published 99.38% LFW result).
  Wall time (time.perf_counter) and CPU time (time.process_time) are recorded for both,
  and reported as mean / p50 / p90 of decode, pipeline and end-to-end (decode+pipeline).
  One untimed warm-up pass over the first image precedes the timed loop.
  Box choice: the largest detection by area; ties -> the box whose centre is nearest the
  image centre. No detection -> FALLBACK box (counted as `no_face_detected`):
  (top, right, bottom, left) = (80, 175, 187, 67) on a 250x250 image, each coordinate
  scaled by height/250 (top, bottom) or width/250 (left, right) and rounded. This is the
  per-coordinate median of the HOG boxes found on 120 View-1 (pairsDevTrain) images (all
  had a detection; spread ~5 px), i.e. the box dlib's HOG detector itself gives on a
  deep-funnelled LFW face, which is the box the 5-point predictor was trained against.
  Encodings are cached in memory only.

Scores: score = -distance (higher = more similar); a pair is accepted ("same") iff
score >= threshold, i.e. distance <= -threshold.

Metrics (all with that acceptance rule):
  * best-accuracy threshold on a training set: candidates are -inf-like (min score - 1),
    every midpoint between consecutive distinct sorted scores, and max score + 1; the
    candidate with the highest training accuracy wins, ties -> the lowest candidate
    (i.e. the most permissive, largest distance).
  * View 2 10-fold accuracy: for fold i the threshold is picked as above on the other 9
    folds and applied to fold i; reported: mean, sample std (ddof=1) and standard error
    std/sqrt(10) of the 10 accuracies (the LFW README / UM-CS-2014-003 convention).
  * TAR@FAR=a over all evaluation pairs (View 2: all 6000; View 1: pairsDevTest): the
    threshold t* is the smallest observed score (or +inf) with
    #{impostor score >= t*} <= floor(a * N_impostor) (ties at t* count as accepted);
    TAR = #{genuine score >= t*} / N_genuine. Equivalently: the fraction of genuine
    scores strictly above the (floor(a*N_imp)+1)-th highest impostor score. No
    interpolation.
  * EER: FVC2000 (Maio et al. 2002) interval midpoint over the candidate set S = distinct
    observed scores + {+inf}: FMR(t) = #{imp >= t}/N_imp, FNMR(t) = #{gen < t}/N_gen,
    t1 = max{t in S: FNMR(t) <= FMR(t)}, t2 = min{t in S: FNMR(t) >= FMR(t)};
    [lo, hi] = [FNMR(t1), FMR(t1)] if FNMR(t1)+FMR(t1) <= FMR(t2)+FNMR(t2) else
    [FMR(t2), FNMR(t2)]; EER = (lo + hi) / 2.
  * accuracy at face_recognition's recommended fixed distance 0.6 (compare_faces default
    tolerance): accepted iff distance <= 0.6.
  * View 1: threshold picked on pairsDevTrain, accuracy reported on pairsDevTest (plus
    accuracy at 0.6, TAR@FAR and EER on pairsDevTest).

--limit-pairs N (for smoke tests): View 2 keeps the first N matched and the first N
mismatched lines of every fold (so 20*N pairs); View 1 the first N matched and first N
mismatched lines of each of pairsDevTrain and pairsDevTest.

--scores-csv columns: fold,label,score,path_a,path_b. fold: 1..10 for View 2; for View 1,
0 = pairsDevTrain, 1 = pairsDevTest. label: 1 genuine, 0 impostor. score = -distance
(repr float64). Paths are relative to the LFW root.
"""

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
           "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from importlib import metadata  # noqa: E402

import numpy as np  # noqa: E402
import dlib  # noqa: E402
import face_recognition  # noqa: E402
import face_recognition_models  # noqa: E402

FALLBACK_250 = (80, 175, 187, 67)  # (top, right, bottom, left) on 250x250
FIXED_DISTANCE = 0.6
FAR_TARGETS = (1e-3, 1e-2)


# --------------------------------------------------------------------------- pairs

def _img(name, num):
    return f"{name}/{name}_{int(num):04d}.jpg"


def _parse_block(lines, n, limit):
    """n matched lines then n mismatched lines -> list of (label, path_a, path_b)."""
    matched, mismatched = lines[:n], lines[n:2 * n]
    if len(matched) != n or len(mismatched) != n:
        raise ValueError("pairs file shorter than its header says")
    if limit is not None:
        matched, mismatched = matched[:limit], mismatched[:limit]
    out = []
    for ln in matched:
        p = ln.split()
        if len(p) != 3:
            raise ValueError(f"bad matched line: {ln!r}")
        out.append((1, _img(p[0], p[1]), _img(p[0], p[2])))
    for ln in mismatched:
        p = ln.split()
        if len(p) != 4:
            raise ValueError(f"bad mismatched line: {ln!r}")
        out.append((0, _img(p[0], p[1]), _img(p[2], p[3])))
    return out


def _lines(path):
    with open(path) as f:
        return [ln for ln in f.read().splitlines() if ln.strip()]


def load_view2(root, limit):
    ls = _lines(os.path.join(root, "protocol", "pairs.txt"))
    nfolds, n = (int(x) for x in ls[0].split())
    body = ls[1:]
    pairs = []
    for k in range(nfolds):
        block = body[k * 2 * n:(k + 1) * 2 * n]
        pairs += [(k + 1, *p) for p in _parse_block(block, n, limit)]
    return pairs


def load_view1(root, limit):
    pairs = []
    for fold, fname in ((0, "pairsDevTrain.txt"), (1, "pairsDevTest.txt")):
        ls = _lines(os.path.join(root, "protocol", fname))
        n = int(ls[0].split()[0])
        pairs += [(fold, *p) for p in _parse_block(ls[1:], n, limit)]
    return pairs


# --------------------------------------------------------------------------- pipeline

def fallback_box(h, w):
    t, r, b, l = FALLBACK_250
    return (round(t * h / 250), round(r * w / 250), round(b * h / 250), round(l * w / 250))


def choose_box(boxes, h, w):
    cy, cx = h / 2.0, w / 2.0

    def key(bx):
        t, r, b, l = bx
        area = (b - t) * (r - l)
        d2 = ((t + b) / 2.0 - cy) ** 2 + ((l + r) / 2.0 - cx) ** 2
        return (-area, d2)

    return min(boxes, key=key)


def encode_image(img, upsample, model, jitters):
    """-> (encoding, used_fallback, t_detect_wall, t_detect_cpu)."""
    w0, c0 = time.perf_counter(), time.process_time()
    boxes = face_recognition.face_locations(img, number_of_times_to_upsample=upsample,
                                            model="hog")
    h, w = img.shape[:2]
    if boxes:
        box, fb = choose_box(boxes, h, w), False
    else:
        box, fb = fallback_box(h, w), True
    w1, c1 = time.perf_counter(), time.process_time()
    enc = face_recognition.face_encodings(img, known_face_locations=[box],
                                          num_jitters=jitters, model=model)
    if len(enc) != 1:
        raise RuntimeError("face_encodings did not return exactly one encoding")
    return enc[0], fb, w1 - w0, c1 - c0


def stats_ms(xs):
    a = np.asarray(xs, dtype=np.float64) * 1000.0
    return {"mean": float(a.mean()), "p50": float(np.percentile(a, 50)),
            "p90": float(np.percentile(a, 90)), "n": int(a.size)}


# --------------------------------------------------------------------------- metrics

def best_threshold(scores, labels):
    """Best-accuracy threshold (see module docs). -> (threshold, accuracy)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    u = np.unique(s)
    cand = np.concatenate(([u[0] - 1.0], (u[:-1] + u[1:]) / 2.0, [u[-1] + 1.0]))
    # accept iff s >= cand[j]  <=>  s >= lower[j], where lower = u[j] (or +inf at the end)
    lower = np.concatenate((u, [np.inf]))
    gen = np.sort(s[y])
    imp = np.sort(s[~y])
    tp = gen.size - np.searchsorted(gen, lower, side="left")
    tn = np.searchsorted(imp, lower, side="left")
    acc = (tp + tn) / s.size
    j = int(np.argmax(acc))  # first maximum = lowest candidate
    return float(cand[j]), float(acc[j])


def accuracy_at(scores, labels, thr):
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    return float(np.mean((s >= thr) == y))


def tar_at_far(scores, labels, far):
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    gen, imp = np.sort(s[y]), np.sort(s[~y])
    k = int(math.floor(far * imp.size + 1e-9))  # max impostors accepted
    cand = np.concatenate((np.unique(s), [np.inf]))
    n_imp_acc = imp.size - np.searchsorted(imp, cand, side="left")
    ok = np.nonzero(n_imp_acc <= k)[0]
    t = float(cand[ok[0]])  # n_imp_acc is non-increasing, so the first ok is the smallest
    n_gen_acc = gen.size - int(np.searchsorted(gen, t, side="left"))
    n_imp = int(n_imp_acc[ok[0]])
    return {
        "far_target": far,
        "tar": n_gen_acc / gen.size,
        "far_achieved": n_imp / imp.size,
        "impostors_accepted": n_imp,
        "max_impostors_allowed": k,
        "threshold_score": t if math.isfinite(t) else None,
        "threshold_distance": -t if math.isfinite(t) else None,
        "far_resolution": 1.0 / imp.size,
        "resolvable": imp.size * far >= 1.0,
    }


def eer_fvc(scores, labels):
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    gen, imp = np.sort(s[y]), np.sort(s[~y])
    S = np.concatenate((np.unique(s), [np.inf]))
    fmr = (imp.size - np.searchsorted(imp, S, side="left")) / imp.size
    fnmr = np.searchsorted(gen, S, side="left") / gen.size
    i1 = np.nonzero(fnmr <= fmr)[0][-1]
    i2 = np.nonzero(fnmr >= fmr)[0][0]
    if fnmr[i1] + fmr[i1] <= fmr[i2] + fnmr[i2]:
        lo, hi, t = fnmr[i1], fmr[i1], S[i1]
    else:
        lo, hi, t = fmr[i2], fnmr[i2], S[i2]
    t = float(t)
    return {"eer": float((lo + hi) / 2.0), "eer_low": float(lo), "eer_high": float(hi),
            "threshold_score": t if math.isfinite(t) else None,
            "threshold_distance": -t if math.isfinite(t) else None}


def pooled(scores, labels):
    y = np.asarray(labels, dtype=bool)
    return {
        "n_genuine": int(y.sum()), "n_impostor": int((~y).sum()),
        "tar_at_far": [tar_at_far(scores, labels, f) for f in FAR_TARGETS],
        "eer": eer_fvc(scores, labels),
        "accuracy_at_distance_0.6": accuracy_at(scores, labels, -FIXED_DISTANCE),
    }


def ten_fold(folds, scores, labels):
    folds = np.asarray(folds)
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    per = []
    for f in sorted(set(folds.tolist())):
        te = folds == f
        thr, tr_acc = best_threshold(s[~te], y[~te])
        per.append({"fold": int(f), "threshold_score": thr, "threshold_distance": -thr,
                    "train_accuracy": tr_acc, "accuracy": accuracy_at(s[te], y[te], thr),
                    "accuracy_at_distance_0.6": accuracy_at(s[te], y[te], -FIXED_DISTANCE),
                    "n_pairs": int(te.sum())})
    acc = np.array([p["accuracy"] for p in per])
    acc06 = np.array([p["accuracy_at_distance_0.6"] for p in per])
    k = acc.size
    std = float(acc.std(ddof=1)) if k > 1 else None
    return {
        "accuracy_mean": float(acc.mean()),
        "accuracy_std": std,
        "accuracy_stderr": std / math.sqrt(k) if std is not None else None,
        "accuracy_at_distance_0.6_mean": float(acc06.mean()),
        "accuracy_at_distance_0.6_std": float(acc06.std(ddof=1)) if k > 1 else None,
        "folds": per,
    }


# --------------------------------------------------------------------------- misc

def _ver(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="LFW root (holds protocol/ and <Name>/)")
    ap.add_argument("--view", type=int, choices=(1, 2), default=2)
    ap.add_argument("--json", required=True, help="output JSON file")
    ap.add_argument("--scores-csv", help="per-pair score CSV (fold,label,score,path_a,path_b)")
    ap.add_argument("--limit-pairs", type=int, default=None,
                    help="first N matched + first N mismatched per fold (View 2) "
                         "or per file (View 1)")
    ap.add_argument("--upsample", type=int, default=1)
    ap.add_argument("--model", choices=("small", "large"), default="small")
    ap.add_argument("--num-jitters", type=int, default=1)
    a = ap.parse_args()
    if a.limit_pairs is not None and a.limit_pairs < 1:
        ap.error("--limit-pairs must be >= 1")

    root = a.data
    pairs = load_view2(root, a.limit_pairs) if a.view == 2 else load_view1(root, a.limit_pairs)
    images = list(dict.fromkeys(p for pr in pairs for p in pr[2:4]))
    for rel in images:
        if not os.path.isfile(os.path.join(root, rel)):
            sys.exit(f"missing image: {os.path.join(root, rel)}")

    load_avg_start = os.getloadavg()
    # Untimed warm-up on the first image.
    encode_image(face_recognition.load_image_file(os.path.join(root, images[0])),
                 a.upsample, a.model, a.num_jitters)

    enc = {}
    dec_w, dec_c, pipe_w, pipe_c, det_w, det_c = [], [], [], [], [], []
    n_fb = 0
    fb_images = []
    t_start = time.perf_counter()
    for i, rel in enumerate(images):
        w0, c0 = time.perf_counter(), time.process_time()
        img = face_recognition.load_image_file(os.path.join(root, rel))
        w1, c1 = time.perf_counter(), time.process_time()
        e, fb, dw, dc = encode_image(img, a.upsample, a.model, a.num_jitters)
        w2, c2 = time.perf_counter(), time.process_time()
        enc[rel] = e
        n_fb += fb
        if fb:
            fb_images.append(rel)
        dec_w.append(w1 - w0)
        dec_c.append(c1 - c0)
        pipe_w.append(w2 - w1)
        pipe_c.append(c2 - c1)
        det_w.append(dw)
        det_c.append(dc)
        if (i + 1) % 200 == 0 or i + 1 == len(images):
            print(f"[face_recognition_peer] {i + 1}/{len(images)} images, "
                  f"{n_fb} fallbacks, {time.perf_counter() - t_start:.0f} s",
                  file=sys.stderr, flush=True)
    total_wall = time.perf_counter() - t_start

    folds = [p[0] for p in pairs]
    labels = [p[1] for p in pairs]
    dist = [float(np.linalg.norm(enc[p[2]] - enc[p[3]])) for p in pairs]
    scores = [-d for d in dist]

    if a.view == 2:
        metrics = {"ten_fold": ten_fold(folds, scores, labels),
                   "pooled_all_pairs": pooled(scores, labels)}
    else:
        f = np.asarray(folds)
        s = np.asarray(scores)
        y = np.asarray(labels)
        tr, te = f == 0, f == 1
        thr, tr_acc = best_threshold(s[tr], y[tr])
        metrics = {
            "dev_train_threshold_score": thr, "dev_train_threshold_distance": -thr,
            "dev_train_accuracy": tr_acc,
            "dev_test_accuracy": accuracy_at(s[te], y[te], thr),
            "dev_test_pooled": pooled(s[te], y[te]),
        }

    e2e_w = [x + y for x, y in zip(dec_w, pipe_w)]
    e2e_c = [x + y for x, y in zip(dec_c, pipe_c)]
    enc_w = [x - y for x, y in zip(pipe_w, det_w)]
    enc_c = [x - y for x, y in zip(pipe_c, det_c)]
    models_used = [face_recognition_models.face_recognition_model_location(),
                   face_recognition_models.pose_predictor_five_point_model_location()
                   if a.model == "small" else
                   face_recognition_models.pose_predictor_model_location()]
    out = {
        "peer": "face_recognition",
        "dataset": "lfw-deepfunneled",
        "view": a.view,
        "limit_pairs": a.limit_pairs,
        "limit_rule": "first N matched + first N mismatched per fold (View 2) / per file (View 1)",
        "n_pairs": len(pairs), "n_images": len(images),
        "config": {"detector": "hog", "upsample": a.upsample, "landmarks_model": a.model,
                   "num_jitters": a.num_jitters,
                   "box_choice": "largest area; tie -> centre nearest image centre",
                   "fallback_box_250x250_trbl": list(FALLBACK_250),
                   "fallback_rule": "scaled by h/250 (top,bottom) and w/250 (left,right), rounded",
                   "score": "-euclidean_distance; accept iff score >= threshold",
                   "fixed_distance_threshold": FIXED_DISTANCE},
        "no_face_detected": n_fb,
        "no_face_detected_images": fb_images,
        "timing_ms": {
            "decode_wall": stats_ms(dec_w), "decode_cpu": stats_ms(dec_c),
            "pipeline_wall": stats_ms(pipe_w), "pipeline_cpu": stats_ms(pipe_c),
            "detect_wall": stats_ms(det_w), "detect_cpu": stats_ms(det_c),
            "landmarks_encode_wall": stats_ms(enc_w), "landmarks_encode_cpu": stats_ms(enc_c),
            "end_to_end_wall": stats_ms(e2e_w), "end_to_end_cpu": stats_ms(e2e_c),
            "total_wall_s": total_wall,
            "note": "single process, thread env vars = 1; decode = load_image_file; "
                    "pipeline = detect + box choice + 5/68-pt landmarks + encoding; "
                    "one untimed warm-up image",
        },
        "metrics": metrics,
        "metric_definitions": {
            "best_threshold": "candidates: min-1, midpoints of consecutive distinct sorted "
                              "scores, max+1; highest accuracy, ties -> lowest candidate",
            "ten_fold": "threshold from the other 9 folds; mean, std (ddof=1), "
                        "stderr = std/sqrt(10)",
            "tar_at_far": "t* = smallest observed score (or +inf) with #imp>=t* <= "
                          "floor(far*N_imp), ties accepted; TAR = #gen>=t*/N_gen; no "
                          "interpolation",
            "eer": "FVC2000 interval midpoint over distinct scores + {+inf}",
            "accuracy_at_distance_0.6": "accept iff distance <= 0.6",
        },
        "versions": {"face_recognition": _ver("face_recognition"),
                     "face_recognition_models": _ver("face_recognition_models"),
                     "dlib": dlib.__version__, "dlib_dist": _ver("dlib-bin") or _ver("dlib"),
                     "dlib_use_cuda": bool(getattr(dlib, "DLIB_USE_CUDA", False)),
                     "numpy": np.__version__, "pillow": _ver("Pillow"),
                     "python": platform.python_version()},
        "model_files_sha256": {os.path.basename(p): _sha256(p) for p in models_used},
        "machine": {"processor": platform.processor(), "cpu_model": _cpu_model(),
                    "cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_avg_start": list(load_avg_start)},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with open(a.json, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    if a.scores_csv:
        with open(a.scores_csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["fold", "label", "score", "path_a", "path_b"])
            for (fold, lab, pa, pb), sc in zip(pairs, scores):
                w.writerow([fold, lab, repr(sc), pa, pb])
    print(f"[face_recognition_peer] done: {len(pairs)} pairs, {len(images)} images, "
          f"{n_fb} fallbacks", file=sys.stderr)


if __name__ == "__main__":
    main()
