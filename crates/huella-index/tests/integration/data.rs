//! Deterministic identity-clustered synthetic embeddings.

use huella_core::{Embedding, TemplateId};
use huella_index::{FlatIndex, FlatScan, IdFilter, SearchParams, VectorIndex};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use std::collections::HashSet;

/// A gallery of `identities * per_identity` templates and one fresh probe per identity.
pub struct Clustered {
    pub gallery: Vec<(TemplateId, Embedding)>,
    pub probes: Vec<Embedding>,
    pub per_identity: usize,
}

impl Clustered {
    /// Each identity has a random unit centre; each sample adds gaussian noise of total
    /// norm about `noise` and is normalised. Template ids are `identity * per + sample`.
    pub fn new(identities: usize, per_identity: usize, dim: usize, noise: f32, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut gaussian = |n: usize, scale: f32| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    let x: f32 = StandardNormal.sample(&mut rng);
                    scale * x
                })
                .collect::<Vec<f32>>()
        };
        let sigma = noise / (dim as f32).sqrt();
        let mut gallery = Vec::with_capacity(identities * per_identity);
        let mut probes = Vec::with_capacity(identities);
        for identity in 0..identities {
            let centre = Embedding::new(gaussian(dim, 1.0)).expect("gaussian centre");
            for sample in 0..=per_identity {
                let noise = gaussian(dim, sigma);
                let v: Vec<f32> = centre
                    .as_slice()
                    .iter()
                    .zip(&noise)
                    .map(|(c, n)| c + n)
                    .collect();
                let e = Embedding::new(v).expect("noisy sample");
                if sample < per_identity {
                    gallery.push((TemplateId((identity * per_identity + sample) as u64), e));
                } else {
                    probes.push(e);
                }
            }
        }
        Self {
            gallery,
            probes,
            per_identity,
        }
    }

    /// The identity a template belongs to.
    pub fn identity(&self, id: TemplateId) -> usize {
        id.0 as usize / self.per_identity
    }

    /// An exact f32 flat index of the gallery.
    pub fn exact(&self) -> FlatIndex {
        let mut flat =
            FlatIndex::with_scan(self.gallery[0].1.dimension(), FlatScan::ExactF32).expect("dim");
        flat.insert_batch(&self.gallery).expect("valid gallery");
        flat
    }
}

/// Share of `truth`'s top-k ids that `got` also returned.
pub fn recall(
    index: &dyn VectorIndex,
    oracle: &dyn VectorIndex,
    queries: &[Embedding],
    k: usize,
) -> f64 {
    let params = SearchParams::top(k);
    let mut found = 0usize;
    let mut total = 0usize;
    for q in queries {
        let truth = oracle.search(q, &params).expect("oracle search");
        let got = index.search(q, &params).expect("search");
        total += truth.len();
        found += truth
            .iter()
            .filter(|t| got.iter().any(|g| g.id == t.id))
            .count();
    }
    found as f64 / total.max(1) as f64
}

/// Search with a small filter (answered exactly) and a large one (recall >= 0.95
/// against the exact oracle); every hit must be allowed and above the threshold.
/// `data` must hold 8,000 templates.
pub fn check_filtered_search(index: &dyn VectorIndex, data: &Clustered) {
    let exact = data.exact();
    let small = IdFilter::new((0..8_000).step_by(7).map(TemplateId));
    let large = IdFilter::new((0..8_000).filter(|i| i % 3 != 0).map(TemplateId));
    assert!(small.len() <= 2_000 && large.len() > 2_000);
    let mut large_recall = 0.0;
    for q in data.probes.iter().take(100) {
        for (filter, is_small) in [(&small, true), (&large, false)] {
            let params = SearchParams {
                k: 10,
                min_score: Some(0.1),
                filter: Some(filter),
            };
            let got = index.search(q, &params).unwrap();
            let truth = exact.search(q, &params).unwrap();
            assert!(got.iter().all(|h| filter.allows(h.id) && h.score >= 0.1));
            if is_small {
                assert_eq!(got, truth);
            } else {
                large_recall += truth
                    .iter()
                    .filter(|t| got.iter().any(|g| g.id == t.id))
                    .count() as f64
                    / truth.len().max(1) as f64;
            }
        }
    }
    assert!(
        large_recall / 100.0 >= 0.95,
        "large-filter recall {}",
        large_recall / 100.0
    );
}

/// Every gallery member's own vector finds it first, with a score of 1.
pub fn check_members_find_themselves(index: &dyn VectorIndex, data: &Clustered) {
    for (id, e) in &data.gallery {
        let hits = index.search(e, &SearchParams::top(3)).unwrap();
        assert_eq!(hits[0].id, *id);
        assert!(hits[0].score <= 1.0 && hits[0].score > 0.9999);
    }
}

/// Remove every even template id; returns them.
pub fn remove_even_ids(index: &mut dyn VectorIndex, data: &Clustered) -> HashSet<TemplateId> {
    let deleted: HashSet<TemplateId> = data
        .gallery
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| id.0 % 2 == 0)
        .collect();
    for id in &deleted {
        index.remove(*id).unwrap();
    }
    assert_eq!(index.len(), data.gallery.len() - deleted.len());
    deleted
}

/// No `deleted` id is ever returned, and 98% of the probes still find a mate in their
/// top 10; returns how many live members did not find themselves first.
pub fn check_after_removal(
    index: &dyn VectorIndex,
    data: &Clustered,
    deleted: &HashSet<TemplateId>,
) -> usize {
    let mut found = 0;
    for (identity, q) in data.probes.iter().enumerate() {
        let hits = index.search(q, &SearchParams::top(10)).unwrap();
        assert!(hits.iter().all(|h| !deleted.contains(&h.id)));
        found += usize::from(hits.iter().any(|h| data.identity(h.id) == identity));
    }
    assert!(
        found as f64 >= 0.98 * data.probes.len() as f64,
        "found {found}"
    );
    data.gallery
        .iter()
        .filter(|(id, _)| !deleted.contains(id))
        .filter(|(id, e)| index.search(e, &SearchParams::top(1)).unwrap()[0].id != *id)
        .count()
}
