#!/usr/bin/env python3
"""hnswlib peer of `bench-index`: the same data, parameters and measurements.

Reads the files `bench-index` writes to DIR/data (gallery.npy, gallery_labels.npy,
queries.npy, query_labels.npy, meta.json and, if present, exact_topk.npy), builds an
hnswlib index with space='ip' and measures:

* build: init_index + add_items(num_threads=threads), wall time and inserts/s;
* memory: the growth of this process's resident set (VmRSS) over the build;
* per ef: single-thread latency of one knn_query call per query (p50/p99/mean, so it
  includes the Python call overhead), queries per CPU-second of that loop and of one
  batch knn_query(num_threads=1) call over all queries, mate-recall@k and recall@k vs
  the exact top-k, computed exactly as huella_benches::metrics does;
* save_index and load_index times, file size, and whether the reloaded index returns
  the same results.

Usage:
    python3 benches/hnswlib_peer.py --data DIR/data --m 16 --ef-construction 200 \
        --threads 2 --ef-search 16,32,64,128 --json out.json
"""

import argparse
import gc
import json
import os
import time
from importlib import metadata

import hnswlib
import numpy as np


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def percentile(values, p):
    return float(np.percentile(np.asarray(values, dtype=np.float64), p))


def mate_recall(rows, gallery_labels, query_label, mates):
    """Share of the query identity's `mates` gallery rows found among `rows`."""
    rows = np.asarray(rows, dtype=np.int64)
    valid = rows[(rows >= 0) & (rows < len(gallery_labels))]
    found = int(np.count_nonzero(gallery_labels[valid] == query_label))
    return min(found, mates) / mates


def overlap(candidate, reference):
    """|candidate ∩ reference| / |reference|."""
    reference = [r for r in reference]
    if not reference:
        return 1.0
    cand = set(int(c) for c in candidate)
    return sum(1 for r in reference if int(r) in cand) / len(reference)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ef-search", default="16,32,64,128")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    efs = [int(e) for e in a.ef_search.split(",") if e]

    gallery = np.load(os.path.join(a.data, "gallery.npy"))
    gallery_labels = np.load(os.path.join(a.data, "gallery_labels.npy")).ravel()
    queries = np.load(os.path.join(a.data, "queries.npy"))
    query_labels = np.load(os.path.join(a.data, "query_labels.npy")).ravel()
    with open(os.path.join(a.data, "meta.json")) as f:
        meta = json.load(f)
    mates = int(meta["samples_per_identity"])
    exact_path = os.path.join(a.data, "exact_topk.npy")
    exact = np.load(exact_path) if os.path.exists(exact_path) else None
    n, dim = gallery.shape
    k = a.k

    gc.collect()
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=dim)
    index.init_index(max_elements=n, ef_construction=a.ef_construction, M=a.m, random_seed=a.seed)
    index.add_items(gallery, np.arange(n), num_threads=a.threads)
    build_s = time.perf_counter() - t0
    rss_delta = rss_bytes() - rss0
    print(f"[hnswlib-peer] built {n} in {build_s:.1f} s ({n / build_s:.0f} inserts/s)", flush=True)

    index.set_num_threads(1)
    sweep = []
    last = None
    for ef in efs:
        index.set_ef(ef)
        for q in queries[: a.warmup]:
            index.knn_query(q.reshape(1, -1), k=k)
        lat = []
        labels_out = np.empty((len(queries), k), dtype=np.int64)
        cpu0 = time.process_time()
        for i in range(len(queries)):
            q = queries[i : i + 1]
            t = time.perf_counter()
            lab, _ = index.knn_query(q, k=k)
            lat.append(time.perf_counter() - t)
            labels_out[i] = lab[0]
        cpu_loop = time.process_time() - cpu0
        cpu0 = time.process_time()
        batch, _ = index.knn_query(queries, k=k, num_threads=1)
        cpu_batch = time.process_time() - cpu0
        mr = float(np.mean([mate_recall(labels_out[i], gallery_labels, query_labels[i], mates) for i in range(len(queries))]))
        rv = None
        if exact is not None:
            rv = float(np.mean([overlap(labels_out[i], exact[i][exact[i] != 0xFFFFFFFF]) for i in range(len(queries))]))
        sweep.append(
            {
                "ef": ef,
                "p50_ms": percentile(lat, 50) * 1e3,
                "p99_ms": percentile(lat, 99) * 1e3,
                "mean_ms": float(np.mean(lat)) * 1e3,
                "qps_per_cpu_s_loop": len(queries) / max(cpu_loop, 1e-9),
                "qps_per_cpu_s_batch": len(queries) / max(cpu_batch, 1e-9),
                "mate_recall": mr,
                "recall_vs_exact": rv,
            }
        )
        print(f"[hnswlib-peer] ef {ef}: p50 {sweep[-1]['p50_ms']:.3f} ms, mate-recall {mr:.4f}", flush=True)
        last = batch

    path = os.path.join(a.data, "hnswlib.bin")
    t = time.perf_counter()
    index.save_index(path)
    save_s = time.perf_counter() - t
    file_bytes = os.path.getsize(path)
    del index
    gc.collect()
    t = time.perf_counter()
    reloaded = hnswlib.Index(space="ip", dim=dim)
    reloaded.load_index(path, max_elements=n)
    load_s = time.perf_counter() - t
    reloaded.set_num_threads(1)
    reloaded.set_ef(efs[-1])
    again, _ = reloaded.knn_query(queries, k=k, num_threads=1)
    reload_equal = bool(np.array_equal(again, last))
    os.remove(path)

    out = {
        "hnswlib_version": metadata.version("hnswlib"),
        "n": int(n),
        "dim": int(dim),
        "threads": a.threads,
        "m": a.m,
        "ef_construction": a.ef_construction,
        "build_s": build_s,
        "inserts_per_s": n / build_s,
        "rss_delta_bytes": int(rss_delta),
        "save_s": save_s,
        "file_bytes": int(file_bytes),
        "load_s": load_s,
        "reload_equal": reload_equal,
        "sweep": sweep,
    }
    with open(a.json, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
