//! Vector indexes for 1:N search over unit-length embeddings.
//!
//! Scores are cosine similarities (dot products of unit vectors): **higher = more alike**.
//! Keys are [`TemplateId`]s assigned by the gallery store.
//!
//! * [`FlatIndex`] is exact. It scans every vector with a SIMD f32 dot product, or an
//!   int8-quantised scan that re-ranks its best candidates in f32. It is the oracle the
//!   approximate index is tested against.
//! * [`HnswIndex`] is a hierarchical navigable small-world graph for large galleries.
//!
//! Both implement [`VectorIndex`] and save to a versioned, checksummed file.
#![deny(missing_docs)]

mod error;

pub use error::IndexError;

use huella_core::{Embedding, TemplateId};
use std::collections::HashSet;

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
