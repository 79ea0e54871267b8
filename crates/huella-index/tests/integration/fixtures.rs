//! Format compatibility: files written by format version 1 must keep loading with the
//! same results.
//!
//! The fixtures were written by `regenerate_fixtures`:
//!
//! ```text
//! cargo test -p huella-index --test integration -- --ignored regenerate_fixtures
//! ```
//!
//! Regenerate them only for a deliberate format change, and then keep the old files
//! (and a loader for them) next to the new ones.

use huella_core::{Embedding, TemplateId};
use huella_index::{
    load_index, FlatIndex, FlatScan, HnswIndex, HnswParams, LshIndex, LshParams, SearchParams,
    VectorIndex,
};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

const DIM: usize = 8;

/// Integer patterns only, so the inputs are identical on every platform.
fn vector(i: usize) -> Embedding {
    let v: Vec<f32> = (0..DIM)
        .map(|j| {
            ((i * 7 + j * 3 + i / 11) % 11) as f32 - 5.0 + if j == i % DIM { 4.0 } else { 0.0 }
        })
        .collect();
    Embedding::new(v).expect("non-zero pattern")
}

fn query(seed: usize) -> Embedding {
    Embedding::new(
        (0..DIM)
            .map(|j| ((j * 5 + seed * 3) % 7) as f32 - 3.0)
            .collect(),
    )
    .expect("non-zero")
}

#[test]
#[ignore = "writes tests/fixtures; run only for a deliberate format change"]
fn regenerate_fixtures() {
    let mut flat = FlatIndex::with_scan(DIM, FlatScan::ExactF32).unwrap();
    for i in 0..24 {
        flat.insert(TemplateId(100 + i as u64), &vector(i)).unwrap();
    }
    flat.remove(TemplateId(105)).unwrap();
    flat.save(&fixture("flat_v1.idx")).unwrap();

    let params = HnswParams {
        m: 4,
        ef_construction: 16,
        ef_search: 8,
        seed: 1,
    };
    let mut hnsw = HnswIndex::new(DIM, params).unwrap();
    for i in 0..64 {
        // One at a time: a sequential build is deterministic.
        hnsw.insert(TemplateId(1_000 + i as u64), &vector(i))
            .unwrap();
    }
    hnsw.remove(TemplateId(1_003)).unwrap();
    hnsw.remove(TemplateId(1_010)).unwrap();
    hnsw.save(&fixture("hnsw_v1.idx")).unwrap();
}

const LSH_PARAMS: LshParams = LshParams {
    tables: 4,
    hashes: 1,
    last_hash_dim: 16,
    probes: 8,
    rerank: 8,
    seed: 1,
};

/// A saved LSH index keeps each vector's buckets, so its hash functions must never
/// change under it: this file pins them.
fn lsh_fixture() -> LshIndex {
    let mut lsh = LshIndex::new(DIM, LSH_PARAMS).unwrap();
    for i in 0..64 {
        lsh.insert(TemplateId(2_000 + i as u64), &vector(i))
            .unwrap();
    }
    lsh.remove(TemplateId(2_005)).unwrap();
    for i in 64..66 {
        lsh.insert(TemplateId(2_000 + i as u64), &vector(i))
            .unwrap();
    }
    lsh
}

#[test]
#[ignore = "writes tests/fixtures; run only for a deliberate format change"]
fn regenerate_lsh_fixture() {
    let lsh = lsh_fixture();
    for seed in 0..3 {
        println!(
            "{:?}",
            lsh.search(&query(seed), &SearchParams::top(5)).unwrap()
        );
    }
    lsh.save(&fixture("lsh_v1.idx")).unwrap();
}

/// Top-5 (id, score) for queries 0, 1 and 2.
type Expected = [[(u64, f32); 5]; 3];

const FLAT_EXPECTED: Expected = [
    [
        (104, 0.531_981_35),
        (113, 0.471_159_43),
        (118, 0.461_343_5),
        (121, 0.420_210_12),
        (110, 0.384_890_4),
    ],
    [
        (114, 0.509_133_16),
        (100, 0.504_184_2),
        (108, 0.486_611_34),
        (103, 0.432_612_9),
        (111, 0.408_047_14),
    ],
    [
        (115, 0.637_974_1),
        (107, 0.606_552),
        (109, 0.524_354_8),
        (104, 0.515_860_7),
        (123, 0.510_255_2),
    ],
];
const HNSW_EXPECTED: Expected = [
    [
        (1044, 0.664_847_85),
        (1036, 0.624_932_4),
        (1052, 0.604_040_44),
        (1041, 0.551_129_8),
        (1004, 0.531_981_35),
    ],
    [
        (1034, 0.627_054_45),
        (1042, 0.596_583),
        (1062, 0.533_338_55),
        (1039, 0.515_687_94),
        (1014, 0.509_133_16),
    ],
    [
        (1015, 0.637_974_1),
        (1063, 0.630_899_67),
        (1029, 0.609_712_3),
        (1007, 0.606_552),
        (1055, 0.606_552),
    ],
];

const LSH_EXPECTED: Expected = [
    [
        (2044, 0.664_847_85),
        (2036, 0.624_932_4),
        (2052, 0.604_040_4),
        (2041, 0.551_129_8),
        (2004, 0.531_981_35),
    ],
    [
        (2034, 0.627_054_45),
        (2042, 0.596_583),
        (2000, 0.504_184_2),
        (2026, 0.498_588_23),
        (2050, 0.396_787_64),
    ],
    [
        (2015, 0.637_974_1),
        (2063, 0.630_899_67),
        (2007, 0.606_552),
        (2055, 0.606_552),
        (2065, 0.534_296_7),
    ],
];

fn check(index: &dyn VectorIndex, expected: &Expected) {
    for (seed, want) in expected.iter().enumerate() {
        let hits = index.search(&query(seed), &SearchParams::top(5)).unwrap();
        let got: Vec<(u64, f32)> = hits.iter().map(|h| (h.id.0, h.score)).collect();
        assert_eq!(got.len(), 5);
        for ((gid, gs), (wid, ws)) in got.iter().zip(want) {
            assert_eq!(gid, wid, "query {seed}: got {got:?}");
            assert!((gs - ws).abs() < 1e-5, "query {seed}: got {got:?}");
        }
    }
}

#[test]
fn version_1_fixtures_still_load_with_the_same_results() {
    let flat = FlatIndex::load(&fixture("flat_v1.idx")).unwrap();
    assert_eq!(
        (flat.len(), flat.dimension(), flat.scan()),
        (23, DIM, FlatScan::ExactF32)
    );
    assert!(!flat.contains(TemplateId(105)));
    check(&flat, &FLAT_EXPECTED);

    let hnsw = HnswIndex::load(&fixture("hnsw_v1.idx")).unwrap();
    assert_eq!((hnsw.len(), hnsw.deleted_count()), (62, 2));
    assert_eq!(
        hnsw.params(),
        HnswParams {
            m: 4,
            ef_construction: 16,
            ef_search: 8,
            seed: 1
        }
    );
    check(&hnsw, &HNSW_EXPECTED);
    check(
        load_index(&fixture("hnsw_v1.idx")).unwrap().as_ref(),
        &HNSW_EXPECTED,
    );

    let lsh = LshIndex::load(&fixture("lsh_v1.idx")).unwrap();
    assert_eq!((lsh.len(), lsh.params()), (65, LSH_PARAMS));
    assert!(!lsh.contains(TemplateId(2_005)));
    check(&lsh, &LSH_EXPECTED);
    check(
        load_index(&fixture("lsh_v1.idx")).unwrap().as_ref(),
        &LSH_EXPECTED,
    );
    // Today's hash functions put every vector where the file says: the same build
    // saves the same bytes.
    let dir = tempfile::tempdir().unwrap();
    lsh_fixture().save(&dir.path().join("lsh.idx")).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("lsh.idx")).unwrap(),
        std::fs::read(fixture("lsh_v1.idx")).unwrap()
    );
}
