//! LshIndex: recall against the exact oracle, deletion, filters, parallel build.

use crate::data::{
    check_after_removal, check_filtered_search, check_members_find_themselves, recall,
    remove_even_ids, Clustered,
};
use crate::flat::check_bad_input;
use huella_index::{IndexError, LshIndex, LshParams, SearchParams, VectorIndex};

fn build(data: &Clustered) -> LshIndex {
    let dim = data.gallery[0].1.dimension();
    let mut index = LshIndex::new(dim, LshParams::for_gallery(dim, data.gallery.len())).unwrap();
    index.insert_batch(&data.gallery).unwrap();
    index
}

#[test]
fn recall_against_exact_oracle() {
    let data = Clustered::new(5_000, 4, 64, 0.6, 41);
    let exact = data.exact();
    let index = build(&data);
    assert_eq!(index.len(), 20_000);
    assert_eq!(index.params().probes, 1024);
    let queries = &data.probes[..500];
    let r10 = recall(&index, &exact, queries, 10);
    assert!(r10 >= 0.98, "top-10 recall {r10}");
    let mut agree = 0;
    for q in queries {
        let truth = exact.search(q, &SearchParams::top(1)).unwrap()[0];
        let got = index.search(q, &SearchParams::top(1)).unwrap()[0];
        agree += usize::from(data.identity(truth.id) == data.identity(got.id));
    }
    assert!(agree >= 495, "mate agreement {agree} of 500");
    // Scores are exact; fewer probes find less, never anything wrong.
    let q = &queries[0];
    let wide = index
        .search_with_probes(q, &SearchParams::top(5), 20_000)
        .unwrap();
    assert_eq!(wide, exact.search(q, &SearchParams::top(5)).unwrap());
    let mut index = index;
    index.set_probes(4);
    let narrow = recall(&index, &exact, queries, 10);
    assert!(narrow < r10, "4 probes {narrow} vs default {r10}");
}

#[test]
fn every_member_finds_itself_first() {
    let data = Clustered::new(1_000, 3, 32, 0.5, 42);
    check_members_find_themselves(&build(&data), &data);
}

#[test]
fn deleted_ids_never_return_and_mates_are_still_found() {
    let data = Clustered::new(1_500, 4, 32, 0.6, 43);
    let mut index = build(&data);
    let deleted = remove_even_ids(&mut index, &data);
    assert!(index.ids().all(|id| !deleted.contains(&id)));
    assert!(matches!(
        index.remove(*deleted.iter().next().unwrap()),
        Err(IndexError::UnknownId(_))
    ));
    // A stored vector's own bucket is the first probe of every table: none may miss.
    let check = |index: &LshIndex| assert_eq!(check_after_removal(index, &data, &deleted), 0);
    check(&index);
    // Re-inserting a deleted id works, one at a time (pending) and after a merge.
    let (id0, e0) = &data.gallery[0];
    index.insert(*id0, e0).unwrap();
    assert_eq!(index.search(e0, &SearchParams::top(1)).unwrap()[0].id, *id0);
    index.remove(*id0).unwrap();
    check(&index);
}

#[test]
fn filtered_search_returns_only_allowed_ids() {
    let data = Clustered::new(2_000, 4, 32, 0.6, 44);
    check_filtered_search(&build(&data), &data);
}

#[test]
fn parallel_and_incremental_inserts_give_the_same_index() {
    let data = Clustered::new(2_000, 4, 32, 0.6, 45);
    let params = LshParams::for_gallery(32, 8_000);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let mut batched = LshIndex::new(32, params).unwrap();
    pool.install(|| {
        for chunk in data.gallery.chunks(1_500) {
            batched.insert_batch(chunk).unwrap();
        }
    });
    let mut single = LshIndex::new(32, params).unwrap();
    for (id, e) in &data.gallery {
        single.insert(*id, e).unwrap();
    }
    assert_eq!(batched.len(), 8_000);
    for q in data.probes.iter().take(300) {
        let p = SearchParams::top(10);
        assert_eq!(
            batched.search(q, &p).unwrap(),
            single.search(q, &p).unwrap()
        );
    }
    let r = recall(&batched, &data.exact(), &data.probes[..300], 10);
    assert!(r >= 0.97, "recall {r}");
}

#[test]
fn lsh_rejects_bad_input() {
    check_bad_input(&mut LshIndex::new(8, LshParams::for_gallery(8, 100)).unwrap());
    assert!(matches!(
        LshIndex::new(0, LshParams::for_gallery(8, 100)),
        Err(IndexError::BadParams(_))
    ));
    let empty = LshIndex::new(8, LshParams::for_gallery(8, 0)).unwrap();
    let q = huella_core::Embedding::new(vec![1.0; 8]).unwrap();
    assert!(empty.search(&q, &SearchParams::top(3)).unwrap().is_empty());
}
