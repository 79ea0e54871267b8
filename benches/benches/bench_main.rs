//! Criterion speed benchmarks of the indexes on a 20k x 192 synthetic gallery.
//!
//! `cargo bench -p huella-benches --bench bench_main` (about a minute);
//! CI builds it with `cargo bench -p huella-benches --no-run`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use huella_benches::synth::{generate, SynthConfig, SynthData};
use huella_core::{Embedding, TemplateId};
use huella_index::{FlatIndex, FlatScan, HnswIndex, HnswParams, SearchParams, VectorIndex};
use std::hint::black_box;
use std::time::Duration;

const DIM: usize = 192;

fn data(identities: usize, queries: usize) -> SynthData {
    generate(&SynthConfig {
        identities,
        dim: DIM,
        queries,
        ..SynthConfig::default()
    })
}

fn items(d: &SynthData) -> Vec<(TemplateId, Embedding)> {
    (0..d.gallery_len())
        .map(|r| {
            let e =
                Embedding::new(d.gallery_row(r).to_vec()).expect("synthetic rows are unit vectors");
            (TemplateId(r as u64), e)
        })
        .collect()
}

fn probes(d: &SynthData) -> Vec<Embedding> {
    (0..d.query_labels.len())
        .map(|q| Embedding::new(d.query(q).to_vec()).expect("synthetic probes are unit vectors"))
        .collect()
}

/// Search `index` with the probes in turn, one probe per iteration.
fn bench_search(
    c: &mut Criterion,
    name: &str,
    qs: &[Embedding],
    search: impl Fn(&Embedding) -> Vec<huella_index::Hit>,
) {
    let mut i = 0;
    c.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) % qs.len();
            black_box(search(&qs[i]))
        })
    });
}

fn indexes(c: &mut Criterion) {
    let d = data(5_000, 100); // 20k records
    let gallery = items(&d);
    let qs = probes(&d);
    let params = SearchParams::top(10);

    let mut flat = FlatIndex::with_scan(DIM, FlatScan::ExactF32).expect("valid dimension");
    flat.insert_batch(&gallery).expect("fresh ids");
    bench_search(c, "flat_exact_f32_search_20k_d192_top10", &qs, |q| {
        flat.search(q, &params).expect("search")
    });
    flat.set_scan(FlatScan::Int8Rerank { rerank: 64 });
    bench_search(c, "flat_int8_rerank_search_20k_d192_top10", &qs, |q| {
        flat.search(q, &params).expect("search")
    });
    drop(flat);

    let mut hnsw = HnswIndex::new(DIM, HnswParams::default()).expect("valid parameters");
    hnsw.insert_batch(&gallery).expect("fresh ids");
    for ef in [32, 64] {
        bench_search(c, &format!("hnsw_search_20k_d192_top10_ef{ef}"), &qs, |q| {
            hnsw.search_with_ef(q, &params, ef).expect("search")
        });
    }
    drop(hnsw);

    let batch: Vec<_> = gallery[..2_000].to_vec();
    c.bench_function("hnsw_insert_batch_2k_d192", |b| {
        b.iter_batched(
            || HnswIndex::new(DIM, HnswParams::default()).expect("valid parameters"),
            |mut index| {
                index.insert_batch(&batch).expect("fresh ids");
                index
            },
            BatchSize::PerIteration,
        )
    });
    c.bench_function("flat_insert_batch_2k_d192", |b| {
        b.iter_batched(
            || FlatIndex::new(DIM).expect("valid dimension"),
            |mut index| {
                index.insert_batch(&batch).expect("fresh ids");
                index
            },
            BatchSize::PerIteration,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = indexes
}
criterion_main!(benches);
