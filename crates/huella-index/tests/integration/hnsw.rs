//! HnswIndex: recall against the exact oracle, deletion, filters, parallel build.

use crate::data::{
    check_after_removal, check_filtered_search, check_members_find_themselves, recall,
    remove_even_ids, Clustered,
};
use crate::flat::check_bad_input;
use huella_core::TemplateId;
use huella_index::{HnswIndex, HnswParams, IndexError, SearchParams, VectorIndex};

fn params() -> HnswParams {
    HnswParams {
        m: 16,
        ef_construction: 100,
        ef_search: 64,
        seed: 7,
    }
}

fn build(data: &Clustered, params: HnswParams) -> HnswIndex {
    let mut index = HnswIndex::new(data.gallery[0].1.dimension(), params).unwrap();
    index.insert_batch(&data.gallery).unwrap();
    index
}

#[test]
fn recall_against_exact_oracle() {
    let data = Clustered::new(5_000, 4, 64, 0.6, 21);
    let exact = data.exact();
    let mut index = build(&data, params());
    assert_eq!(index.len(), 20_000);
    let queries = &data.probes[..500];
    index.set_ef_search(128);
    let r10 = recall(&index, &exact, queries, 10);
    assert!(r10 >= 0.98, "top-10 recall {r10}");
    // Mate search: the best hit is a template of the probe's identity, as exactly.
    let mut agree = 0;
    for q in queries {
        let truth = exact.search(q, &SearchParams::top(1)).unwrap()[0];
        let got = index.search(q, &SearchParams::top(1)).unwrap()[0];
        agree += usize::from(data.identity(truth.id) == data.identity(got.id));
    }
    assert!(
        agree as f64 >= 0.98 * queries.len() as f64,
        "mate agreement {agree}"
    );
    // Scores are exact, and a larger ef never hurts much.
    let hits = index
        .search_with_ef(&queries[0], &SearchParams::top(5), 400)
        .unwrap();
    assert_eq!(
        hits,
        exact.search(&queries[0], &SearchParams::top(5)).unwrap()
    );
}

#[test]
fn every_member_finds_itself_first() {
    let data = Clustered::new(1_000, 3, 32, 0.5, 22);
    check_members_find_themselves(&build(&data, params()), &data);
}

#[test]
fn deleted_ids_never_return_and_mates_are_still_found() {
    let data = Clustered::new(1_500, 4, 32, 0.6, 23);
    let mut index = build(&data, params());
    let deleted = remove_even_ids(&mut index, &data);
    assert_eq!(index.deleted_count(), 3_000);
    assert!(index.ids().all(|id| !deleted.contains(&id)));
    let check = |index: &HnswIndex| {
        // A parallel build is not deterministic, and HNSW (hnswlib too) can leave a rare
        // node with no inbound link once tombstones surround it: allow 1 in 1000 to miss
        // itself at the default ef, never more.
        let missed = check_after_removal(index, &data, &deleted);
        assert!(
            missed <= 3,
            "{missed} live members did not find themselves first"
        );
    };
    check(&index);
    // Re-inserting a deleted id creates a fresh node.
    let (id0, e0) = &data.gallery[0];
    index.insert(*id0, e0).unwrap();
    assert_eq!(index.search(e0, &SearchParams::top(1)).unwrap()[0].id, *id0);
    index.remove(*id0).unwrap();
    assert_eq!(index.deleted_count(), 3_001);
    index.compact();
    assert_eq!(index.deleted_count(), 0);
    assert_eq!(index.len(), 3_000);
    check(&index);
}

#[test]
fn filtered_search_returns_only_allowed_ids() {
    let data = Clustered::new(2_000, 4, 32, 0.6, 24);
    check_filtered_search(&build(&data, params()), &data);
}

#[test]
fn parallel_insert_in_a_two_thread_pool() {
    let data = Clustered::new(2_000, 4, 32, 0.6, 25);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let mut index = HnswIndex::new(32, params()).unwrap();
    pool.install(|| {
        for chunk in data.gallery.chunks(1_500) {
            index.insert_batch(chunk).unwrap();
        }
    });
    assert_eq!(index.len(), 8_000);
    let exact = data.exact();
    let r = recall(&index, &exact, &data.probes[..300], 10);
    assert!(r >= 0.97, "recall {r}");
    for (id, e) in data.gallery.iter().step_by(13) {
        assert_eq!(index.search(e, &SearchParams::top(1)).unwrap()[0].id, *id);
    }
}

#[test]
fn hnsw_rejects_bad_input() {
    check_bad_input(&mut HnswIndex::new(8, HnswParams::default()).unwrap());
    for bad in [
        HnswParams {
            m: 1,
            ..HnswParams::default()
        },
        HnswParams {
            m: 129,
            ..HnswParams::default()
        },
        HnswParams {
            ef_construction: 0,
            ..HnswParams::default()
        },
        HnswParams {
            ef_search: 0,
            ..HnswParams::default()
        },
    ] {
        assert!(matches!(
            HnswIndex::new(8, bad),
            Err(IndexError::BadParams(_))
        ));
    }
    assert!(matches!(
        HnswIndex::new(0, HnswParams::default()),
        Err(IndexError::BadParams(_))
    ));
}

#[test]
fn batch_with_a_bad_item_inserts_nothing() {
    let data = Clustered::new(100, 4, 16, 0.5, 26);
    let mut index = build(&data, params());
    let mut batch = Clustered::new(10, 4, 16, 0.5, 27).gallery;
    for (i, item) in batch.iter_mut().enumerate() {
        item.0 = TemplateId(10_000 + i as u64);
    }
    batch[20].0 = TemplateId(5);
    assert!(matches!(
        index.insert_batch(&batch),
        Err(IndexError::DuplicateId(TemplateId(5)))
    ));
    assert_eq!(index.len(), 400);
    assert!(!index.contains(TemplateId(10_000)));
    let before = index.memory_bytes();
    batch[20].0 = TemplateId(20_000);
    index.insert_batch(&batch).unwrap();
    assert_eq!(index.len(), 440);
    assert!(index.memory_bytes() > before);
}
