//! Vector indexes for 1:N search over unit-length embeddings.
//!
//! Scores are cosine similarities (dot products of unit vectors): **higher = more alike**.
//! Keys are [`TemplateId`]s assigned by the gallery store.
//!
//! * [`FlatIndex`] is exact. It scans every vector with a SIMD f32 dot product, or an
//!   int8-quantised scan that re-ranks its best candidates in f32. It is the oracle the
//!   approximate index is tested against.
//! * [`HnswIndex`] is a hierarchical navigable small-world graph for large galleries.
//! * [`LshIndex`] is cross-polytope locality-sensitive hashing with multi-probe search,
//!   for large galleries of identity-structured embeddings, where a graph walk has
//!   little gradient to follow.
//!
//! All three implement [`VectorIndex`] and save to a versioned, checksummed file that
//! [`load_index`] reopens whatever its kind.
//!
//! ```
//! use huella_core::{Embedding, TemplateId};
//! use huella_index::{FlatIndex, HnswIndex, HnswParams, SearchParams, VectorIndex};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let a = Embedding::new(vec![1.0, 0.0, 0.0])?;
//! let b = Embedding::new(vec![0.6, 0.8, 0.0])?;
//! let items = vec![(TemplateId(1), a.clone()), (TemplateId(2), b)];
//!
//! let mut flat = FlatIndex::new(3)?;
//! flat.insert_batch(&items)?;
//! let mut hnsw = HnswIndex::new(3, HnswParams::default())?;
//! hnsw.insert_batch(&items)?;
//!
//! for index in [&flat as &dyn VectorIndex, &hnsw] {
//!     let hits = index.search(&a, &SearchParams::top(2))?;
//!     assert_eq!(hits[0].id, TemplateId(1));
//!     assert!((hits[1].score - 0.6).abs() < 1e-6);
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("gallery.idx");
//! hnsw.save(&path)?;
//! let reopened = huella_index::load_index(&path)?;
//! assert_eq!(reopened.len(), 2);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod error;
mod flat;
mod format;
mod hnsw;
mod lsh;
#[allow(unsafe_code)]
mod simd;
mod topk;

pub use error::IndexError;
pub use flat::{FlatIndex, FlatScan};
pub use hnsw::{HnswIndex, HnswParams};
pub use lsh::{LshIndex, LshParams};

use huella_core::{Embedding, TemplateId};
use std::collections::HashSet;
use std::path::Path;

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The template that matched.
    pub id: TemplateId,
    /// Cosine similarity to the query, in [-1, 1]; higher = more alike.
    pub score: f32,
}

/// Which ids a search may return.
#[derive(Debug, Clone, Default)]
pub struct IdFilter {
    ids: HashSet<TemplateId>,
}

impl IdFilter {
    /// Restrict a search to `ids`.
    pub fn new(ids: impl IntoIterator<Item = TemplateId>) -> Self {
        Self {
            ids: ids.into_iter().collect(),
        }
    }

    /// Whether `id` may be returned.
    pub fn allows(&self, id: TemplateId) -> bool {
        self.ids.contains(&id)
    }

    /// The allowed ids.
    pub fn ids(&self) -> impl Iterator<Item = TemplateId> + '_ {
        self.ids.iter().copied()
    }

    /// How many ids are allowed.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no id is allowed.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// What a search returns.
#[derive(Debug, Clone)]
pub struct SearchParams<'a> {
    /// At most this many hits, best first. Must be at least 1.
    pub k: usize,
    /// Drop hits scoring below this (a finite value in [-1, 1]).
    pub min_score: Option<f32>,
    /// Only return ids in this set.
    pub filter: Option<&'a IdFilter>,
}

impl SearchParams<'_> {
    /// The `k` best hits, no threshold, no filter.
    pub fn top(k: usize) -> Self {
        Self {
            k,
            min_score: None,
            filter: None,
        }
    }
}

/// The operations every index offers.
///
/// Mutation takes `&mut self`: callers share an index behind a read-write lock (many
/// concurrent searches, one writer). `insert_batch` parallelises internally on the
/// current rayon pool, so the caller chooses the threads by calling it inside
/// `pool.install`.
pub trait VectorIndex: Send + Sync {
    /// Dimension of every stored vector.
    fn dimension(&self) -> usize;

    /// Number of live (not deleted) vectors.
    fn len(&self) -> usize;

    /// Whether the index holds no live vector.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `id` is present and live.
    fn contains(&self, id: TemplateId) -> bool;

    /// Add one vector. Errors: [`IndexError::WrongDimension`], [`IndexError::DuplicateId`].
    fn insert(&mut self, id: TemplateId, vector: &Embedding) -> Result<(), IndexError>;

    /// Add many vectors, in parallel where the index can. All-or-nothing validation:
    /// if any item has a wrong dimension or a duplicate id (already present or repeated
    /// in the batch), nothing is inserted.
    fn insert_batch(&mut self, items: &[(TemplateId, Embedding)]) -> Result<(), IndexError>;

    /// Remove a vector. Errors: [`IndexError::UnknownId`].
    fn remove(&mut self, id: TemplateId) -> Result<(), IndexError>;

    /// The best hits for `query`, sorted by score descending then id ascending.
    /// Errors: [`IndexError::WrongDimension`], [`IndexError::BadParams`] (k = 0,
    /// non-finite threshold). An empty index returns an empty list.
    fn search(&self, query: &Embedding, params: &SearchParams<'_>) -> Result<Vec<Hit>, IndexError>;

    /// Write the index to `path` atomically (temporary file, fsync, rename).
    fn save(&self, path: &std::path::Path) -> Result<(), IndexError>;
}

/// Open an index file of either kind, dispatching on the kind recorded in the file.
///
/// Errors: [`IndexError::Io`], [`IndexError::Corrupt`], [`IndexError::UnsupportedVersion`].
pub fn load_index(path: &Path) -> Result<Box<dyn VectorIndex>, IndexError> {
    let file = format::IndexFile::read(path)?;
    Ok(match file.kind() {
        format::Kind::Flat => Box::new(FlatIndex::decode(&file)?),
        format::Kind::Hnsw => Box::new(HnswIndex::decode(&file)?),
        format::Kind::Lsh => Box::new(LshIndex::decode(&file)?),
    })
}

/// Reject a dimension outside `1..=MAX_DIMENSION`.
fn check_dimension(dim: usize) -> Result<(), IndexError> {
    if dim == 0 || dim > huella_core::MAX_DIMENSION {
        return Err(IndexError::BadParams(format!(
            "dimension {dim} is outside 1..={}",
            huella_core::MAX_DIMENSION
        )));
    }
    Ok(())
}

/// Check a query against the index dimension and the search parameters.
fn check_search(
    dim: usize,
    query: &Embedding,
    params: &SearchParams<'_>,
) -> Result<(), IndexError> {
    check_vector(dim, query)?;
    if params.k == 0 {
        return Err(IndexError::BadParams("k must be at least 1".into()));
    }
    if let Some(t) = params.min_score {
        if !(-1.0..=1.0).contains(&t) {
            return Err(IndexError::BadParams(format!(
                "min_score {t} is not a finite value in [-1, 1]"
            )));
        }
    }
    Ok(())
}

fn check_vector(dim: usize, vector: &Embedding) -> Result<(), IndexError> {
    if vector.dimension() != dim {
        return Err(IndexError::WrongDimension {
            expected: dim,
            received: vector.dimension(),
        });
    }
    Ok(())
}

/// All-or-nothing validation of a batch: dimensions, ids already present, ids repeated.
fn check_batch(
    dim: usize,
    items: &[(TemplateId, Embedding)],
    contains: impl Fn(TemplateId) -> bool,
) -> Result<(), IndexError> {
    let mut seen = HashSet::with_capacity(items.len());
    for (id, vector) in items {
        check_vector(dim, vector)?;
        if contains(*id) || !seen.insert(*id) {
            return Err(IndexError::DuplicateId(*id));
        }
    }
    Ok(())
}

/// Turn scored candidates into the final hit list: clamp scores into [-1, 1], keep the `k`
/// best (score descending, id ascending) and drop those under the threshold.
fn finish_hits(
    scored: impl IntoIterator<Item = (f32, TemplateId)>,
    params: &SearchParams<'_>,
) -> Vec<Hit> {
    let mut top = topk::TopK::new(params.k);
    for (score, id) in scored {
        top.push(score.clamp(-1.0, 1.0), id);
    }
    let min = params.min_score.unwrap_or(f32::NEG_INFINITY);
    top.into_sorted()
        .into_iter()
        .take_while(|&(score, _)| score >= min)
        .map(|(score, id)| Hit { id, score })
        .collect()
}
