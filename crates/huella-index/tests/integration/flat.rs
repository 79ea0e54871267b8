//! FlatIndex behaviour: int8 re-ranking, bad input, filters.

use crate::data::Clustered;
use huella_core::{Embedding, TemplateId, MAX_DIMENSION};
use huella_index::{FlatIndex, FlatScan, IdFilter, IndexError, SearchParams, VectorIndex};

#[test]
fn int8_rerank_top_k_equals_exact_top_k() {
    let data = Clustered::new(2_500, 4, 64, 0.6, 11);
    let exact = data.exact();
    let mut int8 = FlatIndex::new(64).unwrap();
    int8.insert_batch(&data.gallery).unwrap();
    assert_eq!(int8.scan(), FlatScan::Int8Rerank { rerank: 64 });
    let params = SearchParams::top(10);
    for q in data.probes.iter().take(300) {
        let a = exact.search(q, &params).unwrap();
        let b = int8.search(q, &params).unwrap();
        assert_eq!(a, b);
    }
    // Members are found as themselves with score 1.
    for (id, e) in data.gallery.iter().step_by(97) {
        let hit = int8.search(e, &SearchParams::top(1)).unwrap()[0];
        assert_eq!(hit.id, *id);
        assert!((hit.score - 1.0).abs() < 1e-5);
    }
}

#[test]
fn filters_and_thresholds() {
    let data = Clustered::new(500, 4, 32, 0.6, 12);
    let exact = data.exact();
    let mut int8 = FlatIndex::new(32).unwrap();
    int8.insert_batch(&data.gallery).unwrap();
    let q = &data.probes[7];
    let allowed: Vec<TemplateId> = (0..2_000).step_by(3).map(TemplateId).collect();
    let large = IdFilter::new(
        data.gallery
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| id.0 % 10 != 0),
    );
    for filter in [IdFilter::new(allowed.clone()), large] {
        let params = SearchParams {
            k: 20,
            min_score: Some(0.0),
            filter: Some(&filter),
        };
        let a = exact.search(q, &params).unwrap();
        assert_eq!(a, int8.search(q, &params).unwrap());
        assert!(!a.is_empty());
        assert!(a.iter().all(|h| filter.allows(h.id) && h.score >= 0.0));
        assert!(a.windows(2).all(|w| w[0].score >= w[1].score));
    }
    let none = IdFilter::new([TemplateId(999_999)]);
    let params = SearchParams {
        k: 5,
        min_score: None,
        filter: Some(&none),
    };
    assert!(exact.search(q, &params).unwrap().is_empty());
    let params = SearchParams {
        k: 5,
        min_score: Some(1.0),
        filter: None,
    };
    assert!(exact.search(q, &params).unwrap().is_empty());
}

/// Every index kind must reject the same bad input the same way.
pub fn check_bad_input(index: &mut dyn VectorIndex) {
    let dim = index.dimension();
    let good = Embedding::new(vec![1.0; dim]).unwrap();
    let other = Embedding::new(vec![1.0; dim + 1]).unwrap();
    assert!(
        index
            .search(&good, &SearchParams::top(3))
            .unwrap()
            .is_empty(),
        "empty index"
    );
    assert!(matches!(
        index.insert(TemplateId(1), &other),
        Err(IndexError::WrongDimension { expected, received }) if expected == dim && received == dim + 1
    ));
    index.insert(TemplateId(1), &good).unwrap();
    assert!(matches!(
        index.insert(TemplateId(1), &good),
        Err(IndexError::DuplicateId(TemplateId(1)))
    ));
    assert!(matches!(
        index.search(&other, &SearchParams::top(1)),
        Err(IndexError::WrongDimension { .. })
    ));
    assert!(matches!(
        index.search(&good, &SearchParams::top(0)),
        Err(IndexError::BadParams(_))
    ));
    for t in [f32::NAN, f32::INFINITY, 1.5] {
        let params = SearchParams {
            k: 1,
            min_score: Some(t),
            filter: None,
        };
        assert!(
            matches!(index.search(&good, &params), Err(IndexError::BadParams(_))),
            "{t}"
        );
    }
    // Batches are all-or-nothing.
    let batch = vec![
        (TemplateId(2), good.clone()),
        (TemplateId(3), good.clone()),
        (TemplateId(2), good.clone()),
    ];
    assert!(matches!(
        index.insert_batch(&batch),
        Err(IndexError::DuplicateId(TemplateId(2)))
    ));
    let batch = vec![(TemplateId(2), good.clone()), (TemplateId(1), good.clone())];
    assert!(matches!(
        index.insert_batch(&batch),
        Err(IndexError::DuplicateId(TemplateId(1)))
    ));
    let batch = vec![(TemplateId(2), good.clone()), (TemplateId(3), other)];
    assert!(matches!(
        index.insert_batch(&batch),
        Err(IndexError::WrongDimension { .. })
    ));
    assert_eq!(index.len(), 1);
    assert!(!index.contains(TemplateId(2)));
    assert!(matches!(
        index.remove(TemplateId(9)),
        Err(IndexError::UnknownId(TemplateId(9)))
    ));
    index.remove(TemplateId(1)).unwrap();
    assert!(index.is_empty());
    assert!(index
        .search(&good, &SearchParams::top(usize::MAX))
        .unwrap()
        .is_empty());
    index.insert(TemplateId(1), &good).unwrap();
    let hits = index.search(&good, &SearchParams::top(usize::MAX)).unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].score <= 1.0);
}

#[test]
fn flat_rejects_bad_input() {
    check_bad_input(&mut FlatIndex::new(8).unwrap());
    check_bad_input(&mut FlatIndex::with_scan(3, FlatScan::ExactF32).unwrap());
    assert!(matches!(FlatIndex::new(0), Err(IndexError::BadParams(_))));
    assert!(matches!(
        FlatIndex::new(MAX_DIMENSION + 1),
        Err(IndexError::BadParams(_))
    ));
    assert!(FlatIndex::new(MAX_DIMENSION).is_ok());
}

#[test]
fn removal_keeps_the_rest_searchable() {
    let data = Clustered::new(200, 4, 16, 0.5, 13);
    let mut flat = FlatIndex::new(16).unwrap();
    flat.insert_batch(&data.gallery).unwrap();
    for (id, _) in data.gallery.iter().filter(|(id, _)| id.0 % 2 == 0) {
        flat.remove(*id).unwrap();
    }
    assert_eq!(flat.len(), 400);
    assert!(flat.ids().all(|id| id.0 % 2 == 1));
    for (id, e) in data.gallery.iter().filter(|(id, _)| id.0 % 2 == 1) {
        assert_eq!(flat.search(e, &SearchParams::top(1)).unwrap()[0].id, *id);
    }
    assert!(flat.memory_bytes() >= 400 * 16 * 5);
}
