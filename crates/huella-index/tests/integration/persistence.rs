//! Save/load round trips and on-disk faults.

use crate::data::Clustered;
use huella_core::{Embedding, TemplateId};
use huella_index::{
    load_index, FlatIndex, FlatScan, HnswIndex, HnswParams, IdFilter, IndexError, LshIndex,
    LshParams, SearchParams, VectorIndex,
};
use std::path::{Path, PathBuf};

fn flat(data: &Clustered) -> FlatIndex {
    let mut index = FlatIndex::with_scan(
        data.gallery[0].1.dimension(),
        FlatScan::Int8Rerank { rerank: 16 },
    )
    .unwrap();
    index.insert_batch(&data.gallery).unwrap();
    index.remove(data.gallery[1].0).unwrap();
    index
}

fn hnsw(data: &Clustered) -> HnswIndex {
    let params = HnswParams {
        m: 6,
        ef_construction: 40,
        ef_search: 20,
        seed: 3,
    };
    let mut index = HnswIndex::new(data.gallery[0].1.dimension(), params).unwrap();
    index.insert_batch(&data.gallery).unwrap();
    index.remove(data.gallery[1].0).unwrap();
    index
}

/// An LSH index with vectors in the tables, some pending and one hole.
fn lsh(data: &Clustered) -> LshIndex {
    let dim = data.gallery[0].1.dimension();
    let mut params = LshParams::for_gallery(dim, data.gallery.len());
    params.tables = 4;
    let mut index = LshIndex::new(dim, params).unwrap();
    let (head, tail) = data.gallery.split_at(data.gallery.len() / 2);
    index.insert_batch(head).unwrap();
    index.remove(data.gallery[1].0).unwrap();
    for (id, e) in tail.iter().take(3) {
        index.insert(*id, e).unwrap();
    }
    index.insert_batch(&tail[3.min(tail.len())..]).unwrap();
    index
}

fn saved(index: &dyn VectorIndex, dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let path = dir.join(name);
    index.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

/// Recompute the trailing checksum after an edit.
fn reseal(bytes: &mut [u8]) {
    let end = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..end]);
    bytes[end..].copy_from_slice(&crc.to_le_bytes());
}

fn same_results(a: &dyn VectorIndex, b: &dyn VectorIndex, queries: &[Embedding]) {
    assert_eq!(a.len(), b.len());
    assert_eq!(a.dimension(), b.dimension());
    let filter = IdFilter::new((0..1_000).step_by(2).map(TemplateId));
    for q in queries {
        for params in [
            SearchParams::top(7),
            SearchParams {
                k: 5,
                min_score: Some(0.2),
                filter: Some(&filter),
            },
        ] {
            assert_eq!(a.search(q, &params).unwrap(), b.search(q, &params).unwrap());
        }
    }
}

#[test]
fn round_trip_gives_identical_results() {
    let data = Clustered::new(300, 4, 24, 0.6, 31);
    let dir = tempfile::tempdir().unwrap();
    let f = flat(&data);
    let (fp, _) = saved(&f, dir.path(), "flat.idx");
    let f2 = FlatIndex::load(&fp).unwrap();
    assert_eq!(f2.scan(), FlatScan::Int8Rerank { rerank: 16 });
    assert_eq!(f.ids().collect::<Vec<_>>(), f2.ids().collect::<Vec<_>>());
    same_results(&f, &f2, &data.probes);
    same_results(&f, load_index(&fp).unwrap().as_ref(), &data.probes[..20]);

    let h = hnsw(&data);
    let (hp, _) = saved(&h, dir.path(), "hnsw.idx");
    let h2 = HnswIndex::load(&hp).unwrap();
    assert_eq!(h2.deleted_count(), 1);
    assert_eq!(h2.params(), h.params());
    assert!(!h2.contains(data.gallery[1].0));
    same_results(&h, &h2, &data.probes);
    same_results(&h, load_index(&hp).unwrap().as_ref(), &data.probes[..20]);

    // The loaded graph keeps growing like the original.
    let extra = Clustered::new(10, 1, 24, 0.6, 32).gallery;
    let extra: Vec<_> = extra
        .into_iter()
        .map(|(id, e)| (TemplateId(id.0 + 50_000), e))
        .collect();
    let (mut h, mut h2) = (h, h2);
    for (id, e) in &extra {
        h.insert(*id, e).unwrap();
        h2.insert(*id, e).unwrap();
    }
    same_results(&h, &h2, &data.probes[..50]);

    let l = lsh(&data);
    let (lp, _) = saved(&l, dir.path(), "lsh.idx");
    let l2 = LshIndex::load(&lp).unwrap();
    assert_eq!(l2.params(), l.params());
    assert!(!l2.contains(data.gallery[1].0));
    same_results(&l, &l2, &data.probes);
    same_results(&l, load_index(&lp).unwrap().as_ref(), &data.probes[..20]);
    let (mut l, mut l2) = (l, l2);
    for (id, e) in &extra {
        l.insert(*id, e).unwrap();
        l2.insert(*id, e).unwrap();
    }
    l2.remove(extra[0].0).unwrap();
    l.remove(extra[0].0).unwrap();
    same_results(&l, &l2, &data.probes[..50]);
    assert!(matches!(
        LshIndex::load(&hp),
        Err(IndexError::Corrupt { .. })
    ));
    assert!(matches!(
        HnswIndex::load(&lp),
        Err(IndexError::Corrupt { .. })
    ));

    assert!(matches!(
        FlatIndex::load(&hp),
        Err(IndexError::Corrupt { .. })
    ));
    assert!(matches!(
        HnswIndex::load(&fp),
        Err(IndexError::Corrupt { .. })
    ));
    assert!(matches!(
        load_index(&dir.path().join("missing.idx")),
        Err(IndexError::Io { .. })
    ));
    assert!(!dir.path().join("flat.idx.tmp").exists());
}

/// Write `bytes` and try every loader; each must fail without panicking.
fn assert_rejected(path: &Path, bytes: &[u8], what: &str) {
    std::fs::write(path, bytes).unwrap();
    assert!(load_index(path).is_err(), "{what} accepted by load_index");
    assert!(
        FlatIndex::load(path).is_err(),
        "{what} accepted by FlatIndex::load"
    );
    assert!(
        HnswIndex::load(path).is_err(),
        "{what} accepted by HnswIndex::load"
    );
    assert!(
        LshIndex::load(path).is_err(),
        "{what} accepted by LshIndex::load"
    );
}

#[test]
fn truncated_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("cut.idx");
    let tiny = Clustered::new(2, 2, 4, 0.5, 33);
    let big = Clustered::new(150, 4, 16, 0.5, 34);
    let files = [
        saved(&flat(&tiny), dir.path(), "f.idx").1,
        saved(&hnsw(&tiny), dir.path(), "h.idx").1,
        saved(&flat(&big), dir.path(), "F.idx").1,
        saved(&hnsw(&big), dir.path(), "H.idx").1,
        saved(&lsh(&tiny), dir.path(), "l.idx").1,
        saved(&lsh(&big), dir.path(), "L.idx").1,
    ];
    for bytes in &files {
        let step = if bytes.len() < 2_000 {
            1
        } else {
            bytes.len() / 301
        };
        for len in (0..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
            assert_rejected(
                &target,
                &bytes[..len],
                &format!("truncation to {len} of {}", bytes.len()),
            );
        }
    }
}

#[test]
fn flipped_bytes_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("flip.idx");
    let data = Clustered::new(40, 4, 8, 0.5, 35);
    for bytes in [
        saved(&flat(&data), dir.path(), "f.idx").1,
        saved(&hnsw(&data), dir.path(), "h.idx").1,
        saved(&lsh(&data), dir.path(), "l.idx").1,
    ] {
        for pos in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
            let mut bad = bytes.clone();
            bad[pos] ^= 0x5a;
            assert_rejected(&target, &bad, &format!("flip at {pos}"));
            // With a valid checksum the structural checks answer; they must not panic,
            // and whatever loads must be searchable.
            reseal(&mut bad);
            std::fs::write(&target, &bad).unwrap();
            if let Ok(index) = load_index(&target) {
                index
                    .search(&data.probes[0], &SearchParams::top(5))
                    .unwrap();
            }
        }
    }
}

#[test]
fn newer_version_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let data = Clustered::new(10, 2, 8, 0.5, 36);
    for (path, mut bytes) in [
        saved(&flat(&data), dir.path(), "f.idx"),
        saved(&hnsw(&data), dir.path(), "h.idx"),
        saved(&lsh(&data), dir.path(), "l.idx"),
    ] {
        bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
        reseal(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            load_index(&path),
            Err(IndexError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            })
        ));
    }
}

#[test]
fn huge_header_count_is_corrupt_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.idx");
    let header = |kind: u32| {
        [
            b"HUELLAIX".as_slice(),
            &1u32.to_le_bytes(),
            &kind.to_le_bytes(),
        ]
        .concat()
    };
    // Flat: dim 4, exact scan, 2^40 vectors declared, 12 bytes present.
    let mut flat = [
        header(1),
        4u32.to_le_bytes().to_vec(),
        0u32.to_le_bytes().to_vec(),
        (1u64 << 40).to_le_bytes().to_vec(),
        vec![0; 16],
    ]
    .concat();
    reseal(&mut flat);
    std::fs::write(&path, &flat).unwrap();
    assert!(matches!(load_index(&path), Err(IndexError::Corrupt { .. })));
    // HNSW: dim 4, m 4, ef 10/10, seed, rng, entry 0, top 0, u32::MAX - 2 nodes declared.
    let fields: Vec<Vec<u8>> = vec![
        4u32.to_le_bytes().to_vec(),
        4u32.to_le_bytes().to_vec(),
        10u32.to_le_bytes().to_vec(),
        10u32.to_le_bytes().to_vec(),
        0u64.to_le_bytes().to_vec(),
        0u64.to_le_bytes().to_vec(),
        0u32.to_le_bytes().to_vec(),
        0u32.to_le_bytes().to_vec(),
        (u64::from(u32::MAX) - 2).to_le_bytes().to_vec(),
        vec![0; 40],
    ];
    let mut hnsw = [vec![header(2)], fields].concat().concat();
    reseal(&mut hnsw);
    std::fs::write(&path, &hnsw).unwrap();
    assert!(matches!(load_index(&path), Err(IndexError::Corrupt { .. })));
}
