//! De-duplication at scale on synthetic face embeddings: how the cost grows with the
//! gallery (k-NN per record through an approximate index, never all pairs).
//!
//! ```text
//! cargo run --release -p huella-engine --example dedup_scale -- 100000 300000 1000000
//! cargo run --release -p huella-engine --example dedup_scale -- 1000000 --lsh 1024
//! ```
//!
//! Arguments: gallery sizes (default 100000), then optional `--threads N` (default 2),
//! `--dim D` (default 128), `--ef E` (HNSW search list, default 64) or `--lsh P` (the
//! LSH index instead, visiting P buckets per search). Each gallery holds
//! identity-structured records (a random centre per person plus capture noise, mate
//! cosine ~0.8, impostor cosines ~N(0, 1/sqrt(D))): 98% people met once, 2% planted
//! again under another subject id. Prints one JSON line per size: index build and
//! de-duplication times, candidate pairs, planted duplicates found, false matches.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark binary

use huella_engine::{
    deduplicate_embeddings, ClusterKind, DedupIndex, DedupOptions, DedupRecord, Embedding,
    EncounterId, HnswParams, SubjectId,
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use std::collections::BTreeMap;
use std::time::Instant;

fn main() {
    let mut sizes = Vec::new();
    let (mut threads, mut dim, mut ef) = (2usize, 128usize, 64usize);
    let mut lsh: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => threads = args.next().unwrap().parse().unwrap(),
            "--dim" => dim = args.next().unwrap().parse().unwrap(),
            "--ef" => ef = args.next().unwrap().parse().unwrap(),
            "--lsh" => lsh = Some(args.next().unwrap().parse().unwrap()),
            n => sizes.push(n.parse::<usize>().unwrap()),
        }
    }
    if sizes.is_empty() {
        sizes.push(100_000);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    for n in sizes {
        let t = Instant::now();
        let (records, faces, planted) = gallery(n, dim, 7);
        let generate_s = t.elapsed().as_secs_f64();
        let index = match lsh {
            Some(probes) => DedupIndex::Lsh { probes },
            None => DedupIndex::Hnsw(HnswParams {
                ef_search: ef,
                ..HnswParams::default()
            }),
        };
        let t = Instant::now();
        let report = pool
            .install(|| deduplicate_embeddings(records, faces, index, &DedupOptions::default()));
        let report = report.unwrap();
        let total_s = t.elapsed().as_secs_f64();
        let s = &report.summary;
        // A planted duplicate is found when its two records share a cluster; a false
        // match is any cluster that is not exactly one planted pair.
        let mut found = 0;
        let mut false_clusters = 0;
        for c in &report.clusters {
            let planted_pair = c.records.len() == 2
                && c.kind == ClusterKind::FalseIdentity
                && planted.get(&c.records[1]) == Some(&c.records[0]);
            if planted_pair {
                found += 1;
            } else {
                false_clusters += 1;
            }
        }
        println!(
            "{}",
            serde_json::json!({
                "records": n, "dim": dim, "threads": threads,
                "index": format!("{index:?}"),
                "generate_s": round(generate_s),
                "dedup_s": round(s.runtime_ms as f64 / 1e3),
                // Index build (insert of every record) and impostor sampling.
                "prepare_s": round(s.prepare_ms as f64 / 1e3),
                "search_s": round(s.search_ms as f64 / 1e3),
                "rescore_s": round(s.rescore_ms as f64 / 1e3),
                "total_s": round(total_s),
                "candidate_pairs": s.candidate_pairs,
                "matched_pairs": s.matched_pairs,
                "threshold": round(s.threshold),
                "planted": planted.len(), "planted_found": found,
                "other_clusters": false_clusters,
            })
        );
    }
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `n` records; the last 2% are people among the first records met again under an
/// alias. Returns the records, their faces and planted `alias record -> original`.
fn gallery(
    n: usize,
    dim: usize,
    seed: u64,
) -> (
    Vec<DedupRecord>,
    Vec<Option<Embedding>>,
    BTreeMap<usize, usize>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let people = n - n / 50;
    let centre = |p: usize| -> Vec<f32> {
        let mut r = StdRng::seed_from_u64(seed ^ (p as u64).wrapping_mul(0x9E37_79B9));
        (0..dim).map(|_| r.sample(StandardNormal)).collect()
    };
    let mut capture = |c: &[f32]| -> Embedding {
        Embedding::new(
            c.iter()
                .map(|x| x + 0.5 * rng.sample::<f32, _>(StandardNormal))
                .collect(),
        )
        .unwrap()
    };
    let mut records = Vec::with_capacity(n);
    let mut faces = Vec::with_capacity(n);
    let mut planted = BTreeMap::new();
    for r in 0..n {
        let (person, subject) = if r < people {
            (r, format!("S{r}"))
        } else {
            let p = (r - people) * 37 % people;
            planted.insert(r, p);
            (p, format!("ALIAS-{r}"))
        };
        records.push(DedupRecord {
            encounter: EncounterId(r as u64),
            subject: SubjectId::new(subject).unwrap(),
            biographic: BTreeMap::new(),
            faces: 1,
            fingers: 0,
        });
        faces.push(Some(capture(&centre(person))));
    }
    (records, faces, planted)
}
