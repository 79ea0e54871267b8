//! `bench-index`: the index scale benchmark.
//!
//! Generates an identity-structured synthetic gallery, measures `FlatIndex` (int8 scan
//! with f32 re-rank, and the exact f32 scan), `HnswIndex` (build, memory, an `ef` sweep,
//! save and reload) and `LshIndex` (the same, sweeping the probe count), runs the hnswlib
//! peer (`benches/hnswlib_peer.py`) on the same files, and writes `index-bench.json` and
//! `index-bench.md` to `--out`.
//!
//! ```text
//! cargo run --release -p huella-benches --bin bench-index -- \
//!     --identities 250000 --dim 192 --queries 1000 --out /tmp/ib
//! ```

use anyhow::{bail, Context, Result};
use clap::Parser;
use huella_benches::compare::{qps_at_recall, AtRecall, Point};
use huella_benches::metrics::{mate_recall, overlap};
use huella_benches::npy;
use huella_benches::stats::LatencySummary;
use huella_benches::synth::{generate, separation, Separation, SynthConfig, SynthData};
use huella_benches::sys::{self, MachineInfo, MemStatus};
use huella_core::{Embedding, TemplateId};
use huella_index::{
    FlatIndex, FlatScan, Hit, HnswIndex, HnswParams, IndexError, LshIndex, LshParams, SearchParams,
    VectorIndex,
};
use rayon::ThreadPool;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Index scale benchmark: FlatIndex and HnswIndex against the hnswlib peer.
#[derive(Debug, Parser)]
#[command(name = "bench-index", version)]
struct Args {
    /// Identities in the gallery.
    #[arg(long, default_value_t = 20_000)]
    identities: usize,
    /// Gallery samples per identity.
    #[arg(long, default_value_t = 4)]
    samples: usize,
    /// Embedding dimension.
    #[arg(long, default_value_t = 192)]
    dim: usize,
    /// Query identities (one held-out probe each).
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Master seed of the synthetic data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Target mean cosine between two samples of one identity.
    #[arg(long, default_value_t = 0.7)]
    mate_cosine: f64,
    /// Output directory (data files, index file, reports).
    #[arg(long, required_unless_present = "render")]
    out: Option<PathBuf>,
    /// Only re-render: read this index-bench.json, re-evaluate the targets, and rewrite
    /// it and the index-bench.md beside it. Nothing is measured.
    #[arg(long, value_name = "JSON")]
    render: Option<PathBuf>,
    /// Comma-separated ef_search values to sweep.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128")]
    ef_search: Vec<usize>,
    /// HNSW links per node.
    #[arg(long, default_value_t = 16)]
    m: usize,
    /// HNSW build breadth.
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
    /// HNSW graph seed.
    #[arg(long, default_value_t = 42)]
    hnsw_seed: u64,
    /// Threads for data generation and index builds (searches are single-threaded).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Python interpreter for the hnswlib peer, or "none".
    #[arg(long, default_value = "python3")]
    peer: String,
    /// The peer script.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/hnswlib_peer.py"))]
    peer_script: PathBuf,
    /// Skip the exact f32 flat scan (the int8+rerank results become the reference).
    #[arg(long)]
    skip_exact_f32: bool,
    /// Candidates the int8 flat scan re-ranks in f32.
    #[arg(long, default_value_t = 64)]
    rerank: usize,
    /// Hits per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Random non-mate pairs sampled for the separation statistics.
    #[arg(long, default_value_t = 1_000_000)]
    nonmate_pairs: usize,
    /// Untimed warm-up queries before each timed loop.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Keep the data files and the saved index in --out.
    #[arg(long)]
    keep_files: bool,
    /// Comma-separated LSH probe counts to sweep; empty skips the LSH index.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "256,512,768,1024,1536,2048"
    )]
    lsh_probes: Vec<usize>,
    /// LSH hash tables.
    #[arg(long, default_value_t = 24)]
    lsh_tables: usize,
    /// LSH coordinates of the last hash per table (default: `LshParams::for_gallery`).
    #[arg(long)]
    lsh_last_hash_dim: Option<usize>,
}

// ---------------------------------------------------------------------------------------
// Results (the JSON keys are stable: add, never rename).

#[derive(Debug, Serialize, Deserialize)]
struct Report {
    schema: String,
    command: String,
    date_utc: String,
    /// `git rev-parse HEAD` of the checkout, and whether `crates/huella-index` had
    /// uncommitted changes when the benchmark ran.
    git_head: String,
    index_crate_dirty: bool,
    machine: MachineInfo,
    loadavg_end: String,
    config: Config,
    data: DataReport,
    flat: FlatReport,
    hnsw: AnnReport,
    #[serde(default)]
    lsh: Option<AnnReport>,
    peer: Option<PeerReport>,
    comparison: Option<Comparison>,
    #[serde(default)]
    lsh_comparison: Option<Comparison>,
    targets: Vec<Target>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Config {
    identities: usize,
    samples_per_identity: usize,
    records: usize,
    dim: usize,
    queries: usize,
    seed: u64,
    mate_cosine_target: f64,
    k: usize,
    m: usize,
    ef_construction: usize,
    ef_search: Vec<usize>,
    hnsw_seed: u64,
    threads: usize,
    rerank: usize,
    raw_f32_bytes: u64,
    #[serde(default)]
    lsh: Option<LshConfig>,
}

#[derive(Debug, Serialize, Deserialize)]
struct LshConfig {
    tables: usize,
    hashes: usize,
    last_hash_dim: usize,
    probes: Vec<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DataReport {
    generate_s: f64,
    write_s: f64,
    noise_sigma: f64,
    separation: Separation,
    /// From the reference (exact) top-k: the highest non-mate score of any query over
    /// the whole gallery, and the lowest mate score that made a top-k.
    gallery_max_nonmate: f64,
    gallery_min_mate_in_topk: f64,
    reference: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct SearchStats {
    p50_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
    qps_per_cpu_s: f64,
    qps_wall: f64,
    mate_recall: f64,
    recall_vs_exact: f64,
}

#[derive(Debug, Serialize, Deserialize)]
struct FlatReport {
    build_s: f64,
    inserts_per_s: f64,
    memory_bytes: u64,
    rss_delta_bytes: i64,
    int8_rerank: SearchStats,
    int8_top_agreement_with_exact: Option<f64>,
    exact_f32: Option<SearchStats>,
}

/// One point of a sweep: `ef` is HNSW's ef_search, or the LSH probe count.
#[derive(Debug, Serialize, Deserialize)]
struct SweepPoint {
    ef: usize,
    #[serde(flatten)]
    stats: SearchStats,
}

/// Build, memory, sweep and reload of one approximate index.
#[derive(Debug, Serialize, Deserialize)]
struct AnnReport {
    build_s: f64,
    build_cpu_s: f64,
    inserts_per_s: f64,
    memory_bytes: u64,
    rss_delta_bytes: i64,
    bytes_per_record: f64,
    memory_to_raw_f32: f64,
    deleted_count: usize,
    sweep: Vec<SweepPoint>,
    save_s: f64,
    file_bytes: u64,
    load_s: f64,
    reload_equal: bool,
}

/// What `hnswlib_peer.py` writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PeerReport {
    hnswlib_version: String,
    n: usize,
    dim: usize,
    threads: usize,
    m: usize,
    ef_construction: usize,
    build_s: f64,
    inserts_per_s: f64,
    rss_delta_bytes: i64,
    save_s: f64,
    file_bytes: u64,
    load_s: f64,
    reload_equal: bool,
    sweep: Vec<PeerPoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PeerPoint {
    ef: usize,
    p50_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
    qps_per_cpu_s_loop: f64,
    qps_per_cpu_s_batch: f64,
    mate_recall: f64,
    recall_vs_exact: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Comparison {
    method: String,
    build_inserts_per_s_ratio: f64,
    memory_rss_ratio: f64,
    memory_file_ratio: f64,
    reload_s_ratio: f64,
    at_equal_mate_recall: Vec<EqualRecallRow>,
    at_equal_recall_vs_exact: Vec<EqualRecallRow>,
}

#[derive(Debug, Serialize, Deserialize)]
struct EqualRecallRow {
    peer_ef: usize,
    /// Another hnswlib ef reaches at least this recall at a higher QPS; such points are
    /// listed but left out of the target.
    peer_dominated: bool,
    peer_recall: f64,
    peer_qps: f64,
    ours: AtRecall,
    ratio_interpolated: Option<f64>,
    ratio_first_ef: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Target {
    name: String,
    goal: String,
    measured: String,
    met: Option<bool>,
}

// ---------------------------------------------------------------------------------------

struct Timed {
    latencies_s: Vec<f64>,
    cpu_s: f64,
    wall_s: f64,
    results: Vec<Vec<Hit>>,
}

/// Run `search` over every query on `pool` (one thread), after an untimed warm-up.
fn timed_loop<F>(
    pool: &ThreadPool,
    queries: &[Embedding],
    warmup: usize,
    search: F,
) -> Result<Timed>
where
    F: Fn(&Embedding) -> Result<Vec<Hit>, huella_index::IndexError> + Sync,
{
    pool.install(|| {
        for q in queries.iter().take(warmup) {
            std::hint::black_box(search(q)?);
        }
        let mut latencies_s = Vec::with_capacity(queries.len());
        let mut results = Vec::with_capacity(queries.len());
        let cpu0 = sys::process_cpu_time();
        let wall0 = Instant::now();
        for q in queries {
            let t = Instant::now();
            let hits = search(q)?;
            latencies_s.push(t.elapsed().as_secs_f64());
            results.push(hits);
        }
        let wall_s = wall0.elapsed().as_secs_f64();
        let cpu_s = (sys::process_cpu_time() - cpu0).as_secs_f64();
        Ok(Timed {
            latencies_s,
            cpu_s,
            wall_s,
            results,
        })
    })
}

fn ids(hits: &[Hit]) -> Vec<u64> {
    hits.iter().map(|h| h.id.0).collect()
}

fn stats(t: &Timed, data: &SynthData, reference: Option<&[Vec<u64>]>) -> SearchStats {
    let lat = LatencySummary::from_seconds(&t.latencies_s).unwrap_or(LatencySummary {
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        mean_ms: f64::NAN,
    });
    let n = t.results.len().max(1) as f64;
    let mate = t
        .results
        .iter()
        .zip(&data.query_labels)
        .map(|(h, &l)| mate_recall(&ids(h), &data.gallery_labels, l, data.samples_per_identity))
        .sum::<f64>()
        / n;
    let vs_exact = reference.map_or(f64::NAN, |r| {
        t.results
            .iter()
            .zip(r)
            .map(|(h, e)| overlap(&ids(h), e))
            .sum::<f64>()
            / n
    });
    SearchStats {
        p50_ms: lat.p50_ms,
        p99_ms: lat.p99_ms,
        mean_ms: lat.mean_ms,
        qps_per_cpu_s: t.results.len() as f64 / t.cpu_s.max(1e-9),
        qps_wall: t.results.len() as f64 / t.wall_s.max(1e-9),
        mate_recall: mate,
        recall_vs_exact: vs_exact,
    }
}

fn rss_now() -> MemStatus {
    sys::release_free_memory();
    sys::mem_status()
}

fn rss_delta(before: MemStatus, after: MemStatus) -> i64 {
    after.rss_bytes as i64 - before.rss_bytes as i64
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn command_line() -> String {
    std::env::args()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$\\".contains(c)) {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The checkout's HEAD and whether the index crate differs from it (best effort).
fn source_state() -> (String, bool) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--", "../crates/huella-index"])
        .is_none_or(|s| !s.is_empty());
    (head, dirty)
}

fn write_data(dir: &Path, data: &SynthData) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let n = data.gallery_len();
    let q = data.query_labels.len();
    npy::write(&dir.join("gallery.npy"), &data.gallery, n, data.dim)?;
    npy::write(&dir.join("gallery_labels.npy"), &data.gallery_labels, n, 1)?;
    npy::write(&dir.join("queries.npy"), &data.queries, q, data.dim)?;
    npy::write(&dir.join("query_labels.npy"), &data.query_labels, q, 1)?;
    let meta = serde_json::json!({
        "records": n,
        "dim": data.dim,
        "queries": q,
        "samples_per_identity": data.samples_per_identity,
        "noise_sigma": data.noise_sigma,
        "row_is_template_id": true,
    });
    std::fs::write(dir.join("meta.json"), serde_json::to_vec_pretty(&meta)?)?;
    Ok(())
}

/// Re-evaluate the targets of a saved report and rewrite it with its markdown.
fn render(json: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(json).with_context(|| format!("reading {}", json.display()))?;
    let mut report: Report =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", json.display()))?;
    if let Some(c) = report.comparison.as_mut() {
        c.method = METHOD.to_string();
    }
    report.targets = targets(&report);
    std::fs::write(json, serde_json::to_vec_pretty(&report)?)?;
    let md = markdown(&report);
    std::fs::write(json.with_extension("md"), &md)?;
    println!("{md}");
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(json) = &args.render {
        return render(json);
    }
    let out = args.out.clone().context("--out is required")?;
    if args.identities == 0 || args.dim == 0 || args.queries == 0 || args.samples == 0 {
        bail!("--identities, --dim, --queries and --samples must be positive");
    }
    if args.ef_search.is_empty() || args.ef_search.iter().any(|&e| e < args.k) {
        bail!("--ef-search needs values >= k = {}", args.k);
    }
    if args.threads == 0 {
        bail!("--threads must be positive");
    }
    let machine = MachineInfo::detect();
    let date_utc = sys::utc_now();
    let command = command_line();
    let (git_head, index_crate_dirty) = source_state();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let data_dir = out.join("data");
    let build_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()?;
    let single = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let k = args.k;
    let start = Instant::now();
    let log = move |msg: &str| {
        eprintln!(
            "[bench-index {:>8.1}s] {msg}",
            start.elapsed().as_secs_f64()
        )
    };

    // ---- data
    let cfg = SynthConfig {
        identities: args.identities,
        samples_per_identity: args.samples,
        dim: args.dim,
        queries: args.queries,
        mate_cosine: args.mate_cosine,
        seed: args.seed,
    };
    log(&format!(
        "generating {} x {} records of dimension {}",
        cfg.identities, cfg.samples_per_identity, cfg.dim
    ));
    let t = Instant::now();
    let data = build_pool.install(|| generate(&cfg));
    let generate_s = secs(t.elapsed());
    let sep = separation(&data, args.nonmate_pairs, args.seed);
    log(&format!(
        "mate cosine mean {:.3} min {:.3}; sampled non-mate p99.99 {:.3} max {:.3}",
        sep.mate_mean, sep.mate_min, sep.nonmate_p9999, sep.nonmate_max
    ));
    let t = Instant::now();
    write_data(&data_dir, &data)?;
    let write_s = secs(t.elapsed());
    let n = data.gallery_len();
    let dim = data.dim;
    let raw_f32_bytes = (n * dim * 4) as u64;
    let queries: Vec<Embedding> = (0..data.query_labels.len())
        .map(|q| Embedding::with_dimension(data.query(q).to_vec(), dim))
        .collect::<Result<_, _>>()?;
    let items: Vec<(TemplateId, Embedding)> = (0..n)
        .map(|r| {
            Ok((
                TemplateId(r as u64),
                Embedding::with_dimension(data.gallery_row(r).to_vec(), dim)?,
            ))
        })
        .collect::<Result<_>>()?;

    // ---- flat
    log("building FlatIndex (int8 + f32 rerank)");
    let before = rss_now();
    let t = Instant::now();
    let mut flat = FlatIndex::with_scan(
        dim,
        FlatScan::Int8Rerank {
            rerank: args.rerank,
        },
    )?;
    build_pool.install(|| flat.insert_batch(&items))?;
    let flat_build_s = secs(t.elapsed());
    let flat_rss = rss_delta(before, rss_now());
    let flat_memory = flat.memory_bytes() as u64;
    let params = SearchParams::top(k);

    let exact = if args.skip_exact_f32 {
        None
    } else {
        log("exact f32 flat scan");
        flat.set_scan(FlatScan::ExactF32);
        let timed = timed_loop(&single, &queries, args.warmup.min(queries.len()), |q| {
            flat.search(q, &params)
        })?;
        flat.set_scan(FlatScan::Int8Rerank {
            rerank: args.rerank,
        });
        Some(timed)
    };
    log("int8 + rerank flat scan");
    let int8 = timed_loop(&single, &queries, args.warmup.min(queries.len()), |q| {
        flat.search(q, &params)
    })?;
    let reference_name = if exact.is_some() {
        "exact_f32"
    } else {
        "int8_rerank"
    };
    let reference: Vec<Vec<u64>> = exact
        .as_ref()
        .unwrap_or(&int8)
        .results
        .iter()
        .map(|h| ids(h))
        .collect();
    let exact_stats = exact.as_ref().map(|e| stats(e, &data, Some(&reference)));
    let int8_stats = stats(&int8, &data, exact.as_ref().map(|_| reference.as_slice()));
    let agreement = exact.as_ref().map(|_| int8_stats.recall_vs_exact);
    // Gallery-wide separation from the reference top-k (k > mates, so each query's best
    // non-mate over the whole gallery is in its top-k).
    let (mut gallery_max_nonmate, mut gallery_min_mate) = (f64::NEG_INFINITY, f64::INFINITY);
    for (hits, &label) in exact
        .as_ref()
        .unwrap_or(&int8)
        .results
        .iter()
        .zip(&data.query_labels)
    {
        for h in hits {
            let s = f64::from(h.score);
            if data.gallery_labels.get(h.id.0 as usize) == Some(&label) {
                gallery_min_mate = gallery_min_mate.min(s);
            } else {
                gallery_max_nonmate = gallery_max_nonmate.max(s);
            }
        }
    }
    let reference_u32: Vec<u32> = reference
        .iter()
        .flat_map(|r| (0..k).map(move |i| r.get(i).map_or(u32::MAX, |&id| id as u32)))
        .collect();
    npy::write(
        &data_dir.join("exact_topk.npy"),
        &reference_u32,
        reference.len(),
        k,
    )?;
    let flat_report = FlatReport {
        build_s: flat_build_s,
        inserts_per_s: n as f64 / flat_build_s.max(1e-9),
        memory_bytes: flat_memory,
        rss_delta_bytes: flat_rss,
        int8_rerank: int8_stats,
        int8_top_agreement_with_exact: agreement,
        exact_f32: exact_stats,
    };
    drop(exact);
    drop(int8);
    drop(flat);

    // ---- approximate indexes
    let bench = AnnBench {
        single: &single,
        build_pool: &build_pool,
        items: &items,
        queries: &queries,
        params: &params,
        data: &data,
        reference: &reference,
        warmup: args.warmup.min(queries.len()),
        out: &out,
        keep_files: args.keep_files,
        log: &log,
    };
    let hp = HnswParams {
        m: args.m,
        ef_construction: args.ef_construction,
        ef_search: args.ef_search.iter().copied().max().unwrap_or(64),
        seed: args.hnsw_seed,
    };
    log(&format!(
        "HnswIndex (M {}, ef_construction {}, {} threads)",
        args.m, args.ef_construction, args.threads
    ));
    let hnsw_report = bench.measure(
        "hnsw",
        HnswIndex::new(dim, hp)?,
        &args.ef_search,
        |h, q, p, ef| h.search_with_ef(q, p, ef),
        HnswIndex::load,
        |h| (h.memory_bytes(), h.deleted_count()),
    )?;
    let mut lsh_params = LshParams::for_gallery(dim, n);
    lsh_params.tables = args.lsh_tables;
    if let Some(last) = args.lsh_last_hash_dim {
        lsh_params.last_hash_dim = last;
    }
    let lsh_report = if args.lsh_probes.is_empty() {
        None
    } else {
        log(&format!("LshIndex ({lsh_params:?})"));
        Some(bench.measure(
            "lsh",
            LshIndex::new(dim, lsh_params)?,
            &args.lsh_probes,
            |l, q, p, probes| l.search_with_probes(q, p, probes),
            LshIndex::load,
            |l| (l.memory_bytes(), 0),
        )?)
    };
    drop(items);

    // ---- peer
    let peer = if args.peer == "none" {
        None
    } else {
        log("running the hnswlib peer");
        let json = out.join("hnswlib-peer.json");
        let ef_list = args
            .ef_search
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let status = std::process::Command::new(&args.peer)
            .arg(&args.peer_script)
            .arg("--data")
            .arg(&data_dir)
            .args(["--m", &args.m.to_string()])
            .args(["--ef-construction", &args.ef_construction.to_string()])
            .args(["--threads", &args.threads.to_string()])
            .args(["--ef-search", &ef_list])
            .args(["--k", &k.to_string()])
            .args(["--warmup", &args.warmup.to_string()])
            .args(["--seed", &args.hnsw_seed.to_string()])
            .arg("--json")
            .arg(&json)
            .status()
            .with_context(|| format!("running {} {}", args.peer, args.peer_script.display()))?;
        if !status.success() {
            bail!("the hnswlib peer failed: {status}");
        }
        let text = std::fs::read_to_string(&json)
            .with_context(|| format!("reading {}", json.display()))?;
        Some(
            serde_json::from_str::<PeerReport>(&text)
                .with_context(|| format!("parsing {}", json.display()))?,
        )
    };
    if !args.keep_files {
        std::fs::remove_dir_all(&data_dir).ok();
    }

    let comparison = peer.as_ref().map(|p| compare(&hnsw_report, p));
    let lsh_comparison = peer
        .as_ref()
        .zip(lsh_report.as_ref())
        .map(|(p, l)| compare(l, p));
    let mut report = Report {
        schema: "huella-index-bench/1".into(),
        command,
        date_utc,
        git_head,
        index_crate_dirty,
        machine,
        loadavg_end: sys::current_loadavg(),
        config: Config {
            identities: args.identities,
            samples_per_identity: args.samples,
            records: n,
            dim,
            queries: queries.len(),
            seed: args.seed,
            mate_cosine_target: args.mate_cosine,
            k,
            m: args.m,
            ef_construction: args.ef_construction,
            ef_search: args.ef_search.clone(),
            hnsw_seed: args.hnsw_seed,
            threads: args.threads,
            rerank: args.rerank,
            raw_f32_bytes,
            lsh: lsh_report.as_ref().map(|_| LshConfig {
                tables: lsh_params.tables,
                hashes: lsh_params.hashes,
                last_hash_dim: lsh_params.last_hash_dim,
                probes: args.lsh_probes.clone(),
            }),
        },
        data: DataReport {
            generate_s,
            write_s,
            noise_sigma: data.noise_sigma,
            separation: sep,
            gallery_max_nonmate,
            gallery_min_mate_in_topk: gallery_min_mate,
            reference: reference_name.into(),
        },
        flat: flat_report,
        hnsw: hnsw_report,
        lsh: lsh_report,
        peer,
        comparison,
        lsh_comparison,
        targets: Vec::new(),
    };
    report.targets = targets(&report);
    std::fs::write(
        out.join("index-bench.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    let md = markdown(&report);
    std::fs::write(out.join("index-bench.md"), &md)?;
    println!("{md}");
    Ok(())
}

/// What every approximate index is measured on.
struct AnnBench<'a> {
    single: &'a ThreadPool,
    build_pool: &'a ThreadPool,
    items: &'a [(TemplateId, Embedding)],
    queries: &'a [Embedding],
    params: &'a SearchParams<'a>,
    data: &'a SynthData,
    reference: &'a [Vec<u64>],
    warmup: usize,
    out: &'a Path,
    keep_files: bool,
    log: &'a dyn Fn(&str),
}

impl AnnBench<'_> {
    /// Build `index` from every item on the build pool, sweep `knobs` single-threaded,
    /// save, reload with `load` and check that the reloaded index answers the same.
    /// `memory` gives (memory_bytes, deleted count).
    fn measure<I: VectorIndex>(
        &self,
        name: &str,
        mut index: I,
        knobs: &[usize],
        search: impl Fn(&I, &Embedding, &SearchParams<'_>, usize) -> Result<Vec<Hit>, IndexError> + Sync,
        load: impl Fn(&Path) -> Result<I, IndexError>,
        memory: impl Fn(&I) -> (usize, usize),
    ) -> Result<AnnReport> {
        let n = self.items.len();
        let raw_f32_bytes = (n * index.dimension() * 4) as f64;
        let before = rss_now();
        let cpu0 = sys::process_cpu_time();
        let t = Instant::now();
        self.build_pool.install(|| index.insert_batch(self.items))?;
        let build_s = secs(t.elapsed());
        let build_cpu_s = secs(sys::process_cpu_time() - cpu0);
        let rss = rss_delta(before, rss_now());
        let (memory_bytes, deleted_count) = memory(&index);
        if index.len() != n {
            bail!("{name} holds {} records after inserting {n}", index.len());
        }
        (self.log)(&format!(
            "{name} built in {build_s:.1} s ({:.0} inserts/s)",
            n as f64 / build_s
        ));
        let mut sweep = Vec::new();
        let mut last_results: Vec<Vec<Hit>> = Vec::new();
        for &knob in knobs {
            let timed = timed_loop(self.single, self.queries, self.warmup, |q| {
                search(&index, q, self.params, knob)
            })?;
            let s = stats(&timed, self.data, Some(self.reference));
            (self.log)(&format!(
                "{name} {knob}: p50 {:.3} ms, mate-recall {:.4}, recall {:.4}",
                s.p50_ms, s.mate_recall, s.recall_vs_exact
            ));
            sweep.push(SweepPoint { ef: knob, stats: s });
            last_results = timed.results;
        }
        let knob_last = knobs.last().copied().unwrap_or(64);
        let index_path = self.out.join(format!("{name}.huella-index"));
        let t = Instant::now();
        index.save(&index_path)?;
        let save_s = secs(t.elapsed());
        let file_bytes = std::fs::metadata(&index_path)?.len();
        drop(index);
        sys::release_free_memory();
        let t = Instant::now();
        let reloaded = load(&index_path)?;
        let load_s = secs(t.elapsed());
        let mut reload_equal = reloaded.len() == n;
        for (q, expected) in self.queries.iter().zip(&last_results) {
            reload_equal &= search(&reloaded, q, self.params, knob_last)? == *expected;
        }
        (self.log)(&format!(
            "{name} save {save_s:.2} s, load {load_s:.2} s, reload equal: {reload_equal}"
        ));
        drop(reloaded);
        if !self.keep_files {
            std::fs::remove_file(&index_path).ok();
        }
        Ok(AnnReport {
            build_s,
            build_cpu_s,
            inserts_per_s: n as f64 / build_s.max(1e-9),
            memory_bytes: memory_bytes as u64,
            rss_delta_bytes: rss,
            bytes_per_record: memory_bytes as f64 / n as f64,
            memory_to_raw_f32: memory_bytes as f64 / raw_f32_bytes,
            deleted_count,
            sweep,
            save_s,
            file_bytes,
            load_s,
            reload_equal,
        })
    }
}

const METHOD: &str = "For each hnswlib ef, our QPS per CPU-second is read at hnswlib's recall: \
linear interpolation in recall between our two bracketing ef points (if our smallest ef \
already reaches it, that point's QPS; none if our largest ef does not), and, without \
interpolation, the QPS of our smallest ef whose recall is >= hnswlib's. An hnswlib ef is \
'dominated' when another of its ef values reaches at least the same recall at a higher QPS; \
dominated points are shown but not used for the target. hnswlib's QPS is \
its single-thread batch knn_query (no Python per-call overhead); ours is the per-query \
single-thread loop.";

fn compare(ours: &AnnReport, peer: &PeerReport) -> Comparison {
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    let rows = |ours_pts: Vec<Point>, peer_pts: Vec<(usize, f64, f64)>| -> Vec<EqualRecallRow> {
        peer_pts
            .iter()
            .map(|&(ef, recall, qps)| {
                let at = qps_at_recall(&ours_pts, recall);
                EqualRecallRow {
                    peer_ef: ef,
                    peer_dominated: peer_pts
                        .iter()
                        .any(|&(e, r, q)| e != ef && r >= recall && q > qps),
                    peer_recall: recall,
                    peer_qps: qps,
                    ratio_interpolated: at.interpolated_qps.map(|q| ratio(q, qps)),
                    ratio_first_ef: at.first_ef.map(|(_, q)| ratio(q, qps)),
                    ours: at,
                }
            })
            .collect()
    };
    let mate_pts = ours
        .sweep
        .iter()
        .map(|p| Point {
            ef: p.ef,
            recall: p.stats.mate_recall,
            qps: p.stats.qps_per_cpu_s,
        })
        .collect();
    let exact_pts = ours
        .sweep
        .iter()
        .map(|p| Point {
            ef: p.ef,
            recall: p.stats.recall_vs_exact,
            qps: p.stats.qps_per_cpu_s,
        })
        .collect();
    Comparison {
        method: METHOD.into(),
        build_inserts_per_s_ratio: ratio(ours.inserts_per_s, peer.inserts_per_s),
        memory_rss_ratio: ratio(ours.rss_delta_bytes as f64, peer.rss_delta_bytes as f64),
        memory_file_ratio: ratio(ours.file_bytes as f64, peer.file_bytes as f64),
        reload_s_ratio: ratio(ours.load_s, peer.load_s),
        at_equal_mate_recall: rows(
            mate_pts,
            peer.sweep
                .iter()
                .map(|p| (p.ef, p.mate_recall, p.qps_per_cpu_s_batch))
                .collect(),
        ),
        at_equal_recall_vs_exact: rows(
            exact_pts,
            peer.sweep
                .iter()
                .filter_map(|p| p.recall_vs_exact.map(|r| (p.ef, r, p.qps_per_cpu_s_batch)))
                .collect(),
        ),
    }
}

fn targets(r: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    let f = &r.flat.int8_rerank;
    out.push(Target {
        name: "exact int8+rerank".into(),
        goal: "p50 <= 20 ms single-thread, mate-recall 1.0".into(),
        measured: format!("p50 {:.2} ms, mate-recall {:.4}", f.p50_ms, f.mate_recall),
        met: Some(f.p50_ms <= 20.0 && f.mate_recall >= 1.0),
    });
    let anns = [
        ("HNSW", "ef", Some(&r.hnsw), r.comparison.as_ref()),
        ("LSH", "probes", r.lsh.as_ref(), r.lsh_comparison.as_ref()),
    ];
    for (label, knob, ann, cmp) in anns {
        if let Some(ann) = ann {
            ann_targets(&mut out, r, label, knob, ann, cmp);
        }
    }
    out
}

/// The approximate-index targets for one index.
fn ann_targets(
    out: &mut Vec<Target>,
    r: &Report,
    label: &str,
    knob: &str,
    ann: &AnnReport,
    cmp: Option<&Comparison>,
) {
    let first = ann
        .sweep
        .iter()
        .filter(|p| p.stats.mate_recall >= 0.99)
        .min_by_key(|p| p.ef);
    out.push(Target {
        name: format!("{label} latency"),
        goal: "p50 <= 1 ms at mate-recall >= 0.99".into(),
        measured: first.map_or(
            format!("no {knob} in the sweep reached mate-recall 0.99"),
            |p| {
                format!(
                    "{knob} {}: p50 {:.3} ms, mate-recall {:.4}",
                    p.ef, p.stats.p50_ms, p.stats.mate_recall
                )
            },
        ),
        met: Some(first.is_some_and(|p| p.stats.p50_ms <= 1.0)),
    });
    if let (Some(c), Some(p)) = (cmp, &r.peer) {
        let rows: Vec<&EqualRecallRow> = c
            .at_equal_mate_recall
            .iter()
            .filter(|row| !row.peer_dominated)
            .collect();
        let worst = rows
            .iter()
            .filter_map(|row| row.ratio_interpolated)
            .fold(f64::INFINITY, f64::min);
        let unreached: Vec<String> = rows
            .iter()
            .filter(|row| row.ratio_interpolated.is_none())
            .map(|row| {
                format!(
                    "hnswlib ef {} (mate-recall {:.4})",
                    row.peer_ef, row.peer_recall
                )
            })
            .collect();
        let mut measured = if worst.is_finite() {
            format!("lowest ratio ours/hnswlib (interpolated) {worst:.2}")
        } else {
            "no comparable point".to_string()
        };
        if !unreached.is_empty() {
            let _ = write!(
                measured,
                "; our sweep never reaches the recall of {}",
                unreached.join(", ")
            );
        }
        out.push(Target {
            name: format!("{label} QPS vs hnswlib"),
            goal: "QPS per CPU-second >= hnswlib's at equal mate-recall (every hnswlib ef not dominated by another)".into(),
            measured,
            met: Some(worst >= 1.0 && unreached.is_empty()),
        });
        out.push(Target {
            name: format!("{label} build rate vs hnswlib"),
            goal: format!("inserts/s >= hnswlib's ({} threads)", r.config.threads),
            measured: format!(
                "{:.0} vs {:.0} inserts/s (ratio {:.2})",
                ann.inserts_per_s, p.inserts_per_s, c.build_inserts_per_s_ratio
            ),
            met: Some(c.build_inserts_per_s_ratio >= 1.0),
        });
    } else {
        out.push(Target {
            name: format!("{label} QPS and build rate vs hnswlib"),
            goal: ">= hnswlib's".into(),
            measured: "peer not run".into(),
            met: None,
        });
    }
    out.push(Target {
        name: format!("{label} memory"),
        goal: "memory_bytes <= 1.5 x raw f32".into(),
        measured: format!(
            "{:.3} x raw f32 ({:.1} MiB)",
            ann.memory_to_raw_f32,
            mib(ann.memory_bytes as f64)
        ),
        met: Some(ann.memory_to_raw_f32 <= 1.5),
    });
    out.push(Target {
        name: format!("{label} reload"),
        goal: "load < 5 s, results equal".into(),
        measured: format!("{:.2} s, equal: {}", ann.load_s, ann.reload_equal),
        met: Some(ann.load_s < 5.0 && ann.reload_equal),
    });
}

fn mib(b: f64) -> f64 {
    b / (1024.0 * 1024.0)
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or("-".into(), |x| format!("{x:.prec$}"))
}

fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let c = &r.config;
    let _ = writeln!(
        s,
        "# Index scale benchmark: {} records x {} dimensions\n",
        c.records, c.dim
    );
    let _ = writeln!(s, "Command:\n\n```\n{}\n```\n", r.command);
    let _ = writeln!(
        s,
        "Source: commit {}{}\n",
        r.git_head,
        if r.index_crate_dirty {
            " with uncommitted changes in crates/huella-index"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "Date {} · {} CPUs ({}) · {:.1} GiB RAM · kernel {} · load average at start {} / end {}\n",
        r.date_utc,
        r.machine.nproc,
        r.machine.cpu_model,
        r.machine.mem_total_bytes as f64 / (1u64 << 30) as f64,
        r.machine.kernel,
        r.machine.loadavg,
        r.loadavg_end
    );
    let d = &r.data;
    let sp = &d.separation;
    let _ = writeln!(s, "## Data\n");
    let _ = writeln!(
        s,
        "{} identities x {} samples = {} gallery records, {} held-out probes (one per query identity), seed {}. \
Each sample = normalise(centre + {:.4} * N(0, I)), centre uniform on the sphere (target mean mate cosine {}). \
Generation {:.2} s, writing the .npy files {:.2} s (neither counted as build). Raw f32 size {:.1} MiB.\n",
        c.identities,
        c.samples_per_identity,
        c.records,
        c.queries,
        c.seed,
        d.noise_sigma,
        c.mate_cosine_target,
        d.generate_s,
        d.write_s,
        mib(c.raw_f32_bytes as f64)
    );
    let _ = writeln!(s, "| cosine | value |\n|---|---|");
    let _ = writeln!(
        s,
        "| mate (probe vs its {} gallery samples, {} pairs): mean | {:.4} |",
        c.samples_per_identity, sp.mate_pairs, sp.mate_mean
    );
    let _ = writeln!(
        s,
        "| mate: 1st percentile / min | {:.4} / {:.4} |",
        sp.mate_p1, sp.mate_min
    );
    let _ = writeln!(
        s,
        "| non-mate ({} random pairs): mean | {:.4} |",
        sp.nonmate_pairs, sp.nonmate_mean
    );
    let _ = writeln!(
        s,
        "| non-mate: 99.99th percentile / max | {:.4} / {:.4} |",
        sp.nonmate_p9999, sp.nonmate_max
    );
    let _ = writeln!(
        s,
        "| whole gallery, from the {} top-{}: highest non-mate of any probe / lowest mate in a top-{} | {:.4} / {:.4} |\n",
        d.reference, c.k, c.k, d.gallery_max_nonmate, d.gallery_min_mate_in_topk
    );

    let f = &r.flat;
    let _ = writeln!(s, "## FlatIndex (exact)\n");
    let _ = writeln!(
        s,
        "Build (insert_batch, {} threads) {:.2} s = {:.0} inserts/s; memory_bytes {:.1} MiB ({:.3} x raw f32); RSS delta {:.1} MiB.\n",
        c.threads,
        f.build_s,
        f.inserts_per_s,
        mib(f.memory_bytes as f64),
        f.memory_bytes as f64 / c.raw_f32_bytes as f64,
        mib(f.rss_delta_bytes as f64)
    );
    let _ = writeln!(s, "Single-thread, top-{}, {} queries:\n", c.k, c.queries);
    let _ = writeln!(s, "| scan | p50 ms | p99 ms | mean ms | QPS/CPU-s | mate-recall@{} | top-{} agreement with exact f32 |", c.k, c.k);
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    if let Some(e) = &f.exact_f32 {
        let _ = writeln!(
            s,
            "| exact f32 | {:.2} | {:.2} | {:.2} | {:.1} | {:.4} | 1 |",
            e.p50_ms, e.p99_ms, e.mean_ms, e.qps_per_cpu_s, e.mate_recall
        );
    }
    let i = &f.int8_rerank;
    let _ = writeln!(
        s,
        "| int8 + f32 rerank {} | {:.2} | {:.2} | {:.2} | {:.1} | {:.4} | {} |\n",
        c.rerank,
        i.p50_ms,
        i.p99_ms,
        i.mean_ms,
        i.qps_per_cpu_s,
        i.mate_recall,
        opt(f.int8_top_agreement_with_exact, 4)
    );

    let h = &r.hnsw;
    ann_section(
        &mut s,
        r,
        "HnswIndex",
        &format!("M {}, ef_construction {}", c.m, c.ef_construction),
        "ef",
        h,
    );
    if let (Some(l), Some(lc)) = (&r.lsh, &c.lsh) {
        ann_section(
            &mut s,
            r,
            "LshIndex",
            &format!(
                "{} tables of {} cross-polytope hashes (last over {} coordinates)",
                lc.tables, lc.hashes, lc.last_hash_dim
            ),
            "probes",
            l,
        );
    }

    if let (Some(p), Some(cmp)) = (&r.peer, &r.comparison) {
        let _ = writeln!(
            s,
            "## hnswlib {} (same files, same M, ef_construction, threads)\n",
            p.hnswlib_version
        );
        let _ = writeln!(
            s,
            "| | Huella HnswIndex | hnswlib | ratio Huella/hnswlib |\n|---|---|---|---|"
        );
        let _ = writeln!(
            s,
            "| build inserts/s ({} threads) | {:.0} | {:.0} | {:.2} |",
            c.threads, h.inserts_per_s, p.inserts_per_s, cmp.build_inserts_per_s_ratio
        );
        let _ = writeln!(
            s,
            "| RSS delta of the build, MiB | {:.1} | {:.1} | {:.2} |",
            mib(h.rss_delta_bytes as f64),
            mib(p.rss_delta_bytes as f64),
            cmp.memory_rss_ratio
        );
        let _ = writeln!(
            s,
            "| saved file, MiB | {:.1} | {:.1} | {:.2} |",
            mib(h.file_bytes as f64),
            mib(p.file_bytes as f64),
            cmp.memory_file_ratio
        );
        let _ = writeln!(
            s,
            "| reload s | {:.2} | {:.2} | {:.2} |",
            h.load_s, p.load_s, cmp.reload_s_ratio
        );
        let _ = writeln!(
            s,
            "| reloaded results equal | {} | {} | |\n",
            h.reload_equal, p.reload_equal
        );
        let _ = writeln!(s, "Per ef (single-thread; hnswlib latency is per knn_query call from Python, so it includes ~µs of call overhead; hnswlib QPS is from one batch call with num_threads=1):\n");
        let _ = writeln!(s, "| ef | Huella p50 / p99 ms | hnswlib p50 / p99 ms | Huella QPS/CPU-s | hnswlib QPS/CPU-s (batch / loop) | QPS ratio | Huella mate-recall | hnswlib mate-recall | Huella recall vs exact | hnswlib recall vs exact |");
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
        for (o, q) in h.sweep.iter().zip(&p.sweep) {
            let t = &o.stats;
            let _ = writeln!(
                s,
                "| {} | {:.3} / {:.3} | {:.3} / {:.3} | {:.0} | {:.0} / {:.0} | {:.2} | {:.4} | {:.4} | {:.4} | {} |",
                o.ef,
                t.p50_ms,
                t.p99_ms,
                q.p50_ms,
                q.p99_ms,
                t.qps_per_cpu_s,
                q.qps_per_cpu_s_batch,
                q.qps_per_cpu_s_loop,
                t.qps_per_cpu_s / q.qps_per_cpu_s_batch,
                t.mate_recall,
                q.mate_recall,
                t.recall_vs_exact,
                opt(q.recall_vs_exact, 4)
            );
        }
        let _ = writeln!(s, "\n### QPS at equal recall\n\n{}\n", cmp.method);
        let lsh = r.lsh_comparison.as_ref().map(|l| ("LshIndex", "probes", l));
        for (index, knob, cmp) in std::iter::once(("HnswIndex", "ef", cmp)).chain(lsh) {
            equal_recall_tables(&mut s, index, knob, cmp);
        }
        if let (Some(l), Some(lc)) = (&r.lsh, &r.lsh_comparison) {
            let _ = writeln!(
                s,
                "LshIndex against hnswlib: build {:.0} vs {:.0} inserts/s (ratio {:.2}), \
reload {:.2} s vs {:.2} s, saved file {:.1} vs {:.1} MiB.\n",
                l.inserts_per_s,
                p.inserts_per_s,
                lc.build_inserts_per_s_ratio,
                l.load_s,
                p.load_s,
                mib(l.file_bytes as f64),
                mib(p.file_bytes as f64)
            );
        }
    }

    let _ = writeln!(
        s,
        "## Targets\n\nThe index's acceptance targets are set for 1,000,000 records x 192; at other sizes they are indicative.\n"
    );
    let _ = writeln!(s, "| target | goal | measured | met |\n|---|---|---|---|");
    for t in &r.targets {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        let _ = writeln!(s, "| {} | {} | {} | {} |", t.name, t.goal, t.measured, met);
    }
    s
}

/// Build, memory and reload of one approximate index, then its sweep.
fn ann_section(s: &mut String, r: &Report, title: &str, setup: &str, knob: &str, h: &AnnReport) {
    let c = &r.config;
    let _ = writeln!(s, "## {title}\n");
    let _ = writeln!(
        s,
        "{setup}. Build (insert_batch in a {}-thread pool) {:.2} s wall, {:.2} CPU-s = **{:.0} inserts/s**. \
memory_bytes {:.1} MiB = {:.0} bytes/record = **{:.3} x raw f32**; RSS delta {:.1} MiB. \
Save {:.2} s ({:.1} MiB file), **reload {:.2} s**, reloaded results equal: {}. Deleted: {}.\n",
        c.threads,
        h.build_s,
        h.build_cpu_s,
        h.inserts_per_s,
        mib(h.memory_bytes as f64),
        h.bytes_per_record,
        h.memory_to_raw_f32,
        mib(h.rss_delta_bytes as f64),
        h.save_s,
        mib(h.file_bytes as f64),
        h.load_s,
        h.reload_equal,
        h.deleted_count
    );
    let _ = writeln!(
        s,
        "| {knob} | p50 ms | p99 ms | mean ms | QPS/CPU-s | mate-recall@{} | recall@{} vs {} |",
        c.k, c.k, r.data.reference
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for p in &h.sweep {
        let t = &p.stats;
        let _ = writeln!(
            s,
            "| {} | {:.3} | {:.3} | {:.3} | {:.0} | {:.4} | {:.4} |",
            p.ef, t.p50_ms, t.p99_ms, t.mean_ms, t.qps_per_cpu_s, t.mate_recall, t.recall_vs_exact
        );
    }
    let _ = writeln!(s);
}

/// Our QPS at each hnswlib recall, for mate-recall and recall against the exact top-k.
fn equal_recall_tables(s: &mut String, index: &str, knob: &str, cmp: &Comparison) {
    for (title, rows) in [
        ("mate-recall", &cmp.at_equal_mate_recall),
        ("recall vs exact", &cmp.at_equal_recall_vs_exact),
    ] {
        let _ = writeln!(s, "{index}, {title}:\n");
        let _ = writeln!(s, "| hnswlib ef | hnswlib {title} | hnswlib QPS | Huella QPS interpolated | ratio | Huella first {knob} reaching it (QPS) | ratio |");
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        for row in rows {
            let _ = writeln!(
                s,
                "| {}{} | {:.4} | {:.0} | {} | {} | {} | {} |",
                row.peer_ef,
                if row.peer_dominated {
                    " (dominated)"
                } else {
                    ""
                },
                row.peer_recall,
                row.peer_qps,
                opt(row.ours.interpolated_qps, 0),
                opt(row.ratio_interpolated, 2),
                row.ours
                    .first_ef
                    .map_or("not reached".into(), |(ef, q)| format!("{ef} ({q:.0})")),
                opt(row.ratio_first_ef, 2)
            );
        }
        let _ = writeln!(s);
    }
}
