//! A rough single-thread latency probe on a 200k x 192 gallery (ignored by default):
//!
//! ```text
//! cargo test -p huella-index --release --test integration -- --ignored --nocapture search_timing
//! ```
//!
//! `HUELLA_TIMING_IDENTITIES` (default 50000, four templates each) changes the size.

use crate::data::{recall, Clustered};
use huella_index::{FlatIndex, HnswIndex, HnswParams, SearchParams, VectorIndex};
use std::time::Instant;

fn p50_ms(index: &dyn VectorIndex, queries: &[huella_core::Embedding]) -> f64 {
    let mut times: Vec<f64> = queries
        .iter()
        .map(|q| {
            let t = Instant::now();
            std::hint::black_box(index.search(q, &SearchParams::top(10)).unwrap());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

#[test]
#[ignore = "slow: builds a 200k x 192 gallery"]
fn search_timing() {
    let identities: usize = std::env::var("HUELLA_TIMING_IDENTITIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let data = Clustered::new(identities, 4, 192, 0.6, 41);
    let n = data.gallery.len();
    let queries = &data.probes[..200];
    let exact = data.exact();
    let mut int8 = FlatIndex::new(192).unwrap();
    int8.insert_batch(&data.gallery).unwrap();
    let t = Instant::now();
    let mut hnsw = HnswIndex::new(192, HnswParams::default()).unwrap();
    hnsw.insert_batch(&data.gallery).unwrap();
    let build = t.elapsed().as_secs_f64();
    let threads = rayon::current_num_threads();
    eprintln!(
        "hnsw build: {build:.1} s on {threads} threads ({:.0} inserts/s)",
        n as f64 / build
    );
    eprintln!("flat exact f32 p50: {:.2} ms", p50_ms(&exact, queries));
    eprintln!(
        "flat int8 p50: {:.2} ms, top-10 recall {:.4}",
        p50_ms(&int8, queries),
        recall(&int8, &exact, queries, 10)
    );
    for ef in [32, 64, 128] {
        hnsw.set_ef_search(ef);
        eprintln!(
            "hnsw ef {ef} p50: {:.3} ms, top-10 recall {:.4}, mate (top-4) recall {:.4}",
            p50_ms(&hnsw, queries),
            recall(&hnsw, &exact, queries, 10),
            recall(&hnsw, &exact, queries, 4)
        );
    }
    eprintln!(
        "memory: flat {} MB, hnsw {} MB, raw vectors {} MB",
        int8.memory_bytes() >> 20,
        hnsw.memory_bytes() >> 20,
        (n * 192 * 4) >> 20
    );
}
