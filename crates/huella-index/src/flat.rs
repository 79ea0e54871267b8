//! The exact index: every stored vector is scored for every query.

use crate::format::{IndexFile, Kind, Reader, Writer};
use crate::topk::TopK;
use crate::{simd, IndexError, SearchParams, VectorIndex};
use huella_core::{Embedding, TemplateId};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// How a [`FlatIndex`] scores the gallery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlatScan {
    /// Score every vector with an exact f32 dot product.
    ExactF32,
    /// Score every vector with an int8 dot product against a quantised copy, then
    /// re-score the best `max(k * 4, rerank)` candidates exactly in f32. A quarter of the
    /// memory traffic of the exact scan; the final scores are exact.
    Int8Rerank {
        /// Minimum number of candidates re-scored in f32.
        rerank: usize,
    },
}

impl Default for FlatScan {
    fn default() -> Self {
        FlatScan::Int8Rerank { rerank: 64 }
    }
}

/// Exact nearest-neighbour search by scanning every vector; the oracle for [`crate::HnswIndex`].
///
/// Vectors are stored contiguously, one row per slot, next to a symmetric per-vector
/// int8 quantisation (`scale = max|v| / 127`) used by [`FlatScan::Int8Rerank`]. Removal
/// moves the last row into the freed slot.
pub struct FlatIndex {
    dim: usize,
    scan: FlatScan,
    ids: Vec<TemplateId>,
    vectors: Vec<f32>,
    codes: Vec<i8>,
    scales: Vec<f32>,
    slots: HashMap<TemplateId, usize>,
}

impl std::fmt::Debug for FlatIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlatIndex")
            .field("dim", &self.dim)
            .field("len", &self.ids.len())
            .field("scan", &self.scan)
            .finish_non_exhaustive()
    }
}

/// How far ahead of the int8 scan rows are prefetched.
const PREFETCH_AHEAD_BYTES: usize = 6144;

/// Symmetric int8 quantisation of `v`: appends the codes to `out`, returns the scale.
fn quantize(v: &[f32], out: &mut Vec<i8>) -> f32 {
    let start = out.len();
    out.resize(start + v.len(), 0);
    quantize_into(v, &mut out[start..])
}

/// [`quantize`] into a slice of `v.len()` codes.
fn quantize_into(v: &[f32], out: &mut [i8]) -> f32 {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let scale = max / 127.0;
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    for (c, x) in out.iter_mut().zip(v) {
        *c = (x * inv).round().clamp(-127.0, 127.0) as i8;
    }
    scale
}

impl FlatIndex {
    /// An empty index of dimension `dim` with the default scan ([`FlatScan::Int8Rerank`]).
    /// Errors: [`IndexError::BadParams`] unless `1 <= dim <= MAX_DIMENSION`.
    pub fn new(dim: usize) -> Result<Self, IndexError> {
        Self::with_scan(dim, FlatScan::default())
    }

    /// An empty index of dimension `dim` scanning with `scan`.
    pub fn with_scan(dim: usize, scan: FlatScan) -> Result<Self, IndexError> {
        crate::check_dimension(dim)?;
        Ok(Self {
            dim,
            scan,
            ids: Vec::new(),
            vectors: Vec::new(),
            codes: Vec::new(),
            scales: Vec::new(),
            slots: HashMap::new(),
        })
    }

    /// Change how searches scan the gallery.
    pub fn set_scan(&mut self, scan: FlatScan) {
        self.scan = scan;
    }

    /// The scan in use.
    pub fn scan(&self) -> FlatScan {
        self.scan
    }

    /// Open a file written by [`VectorIndex::save`] on a `FlatIndex`.
    ///
    /// Errors: [`IndexError::Io`], [`IndexError::Corrupt`] (also when the file holds another
    /// kind of index), [`IndexError::UnsupportedVersion`].
    pub fn load(path: &Path) -> Result<Self, IndexError> {
        Self::decode(&IndexFile::read(path)?)
    }

    /// Heap bytes held by the index.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.ids.capacity() * size_of::<TemplateId>()
            + self.vectors.capacity() * size_of::<f32>()
            + self.codes.capacity()
            + self.scales.capacity() * size_of::<f32>()
            + self.slots.capacity() * (size_of::<(TemplateId, usize)>() + 1)
    }

    /// The stored ids, in storage order.
    pub fn ids(&self) -> impl Iterator<Item = TemplateId> + '_ {
        self.ids.iter().copied()
    }

    /// The slot holding `id`.
    pub(crate) fn slot_of(&self, id: TemplateId) -> Option<usize> {
        self.slots.get(&id).copied()
    }

    /// The id stored in `slot`.
    pub(crate) fn id_at(&self, slot: usize) -> TemplateId {
        self.ids[slot]
    }

    pub(crate) fn row(&self, slot: usize) -> &[f32] {
        &self.vectors[slot * self.dim..(slot + 1) * self.dim]
    }

    /// Room for `rows` more vectors.
    pub(crate) fn reserve(&mut self, rows: usize) {
        self.ids.reserve(rows);
        self.slots.reserve(rows);
        self.scales.reserve(rows);
        self.vectors.reserve(rows * self.dim);
        self.reserve_codes(rows * self.dim);
    }

    /// Grow the int8 rows, backing them with huge pages: the scan streams through them
    /// once per query, and with 4 KiB pages it measured ~25% slower at 1M x 192.
    fn reserve_codes(&mut self, values: usize) {
        let capacity = self.codes.capacity();
        self.codes.reserve(values);
        if self.codes.capacity() != capacity {
            simd::advise_huge_pages(&self.codes);
        }
    }

    /// Append a vector the caller has validated (dimension, id not present).
    pub(crate) fn push(&mut self, id: TemplateId, v: &[f32]) {
        self.slots.insert(id, self.ids.len());
        self.ids.push(id);
        self.vectors.extend_from_slice(v);
        self.reserve_codes(v.len());
        let scale = quantize(v, &mut self.codes);
        self.scales.push(scale);
    }

    /// Exact scores of the given slots.
    fn score_slots<'a>(
        &'a self,
        query: &'a [f32],
        slots: impl Iterator<Item = usize> + 'a,
    ) -> impl Iterator<Item = (f32, TemplateId)> + 'a {
        slots.map(move |s| (simd::dot(query, self.row(s)), self.ids[s]))
    }

    /// Scan every slot that `accept`s, returning exactly scored candidates that contain
    /// the `k` best.
    fn scan_all(
        &self,
        query: &[f32],
        k: usize,
        accept: impl Fn(usize) -> bool,
    ) -> Vec<(f32, TemplateId)> {
        match self.scan {
            FlatScan::ExactF32 => {
                let mut top = TopK::new(k);
                for (slot, row) in self.vectors.chunks_exact(self.dim).enumerate() {
                    let score = simd::dot(query, row);
                    if score >= top.threshold() && accept(slot) {
                        top.push(score, self.ids[slot]);
                    }
                }
                top.into_sorted()
            }
            FlatScan::Int8Rerank { rerank } => {
                let candidates =
                    self.int8_candidates(query, rerank.max(k.saturating_mul(4)), accept);
                self.score_slots(query, candidates.into_iter()).collect()
            }
        }
    }

    /// The `count` best slots by approximate int8 score.
    fn int8_candidates(
        &self,
        query: &[f32],
        count: usize,
        accept: impl Fn(usize) -> bool,
    ) -> Vec<usize> {
        let mut ranker = Int8Ranker::new(self, query, count, accept);
        let block = 4 * self.dim;
        let blocks = self.codes.chunks_exact(block);
        let tail = blocks.remainder();
        let mut slot = 0;
        // Rows are read once, in order: ask for the rows a few KiB ahead so that the
        // stream does not stall at each 4 KiB page, where the hardware prefetcher stops.
        let ahead = PREFETCH_AHEAD_BYTES.div_ceil(block) * block;
        for rows in blocks {
            if let Some(next) = self.codes.get(slot * self.dim + ahead..) {
                simd::prefetch_far(next, block.div_ceil(64));
            }
            for (j, dot) in simd::dot_i8_x4(&ranker.q8, rows).into_iter().enumerate() {
                ranker.offer(slot + j, dot);
            }
            slot += 4;
        }
        for row in tail.chunks_exact(self.dim) {
            ranker.offer(slot, simd::dot_i8(&ranker.q8, row));
            slot += 1;
        }
        ranker.finish()
    }

    /// Exactly scored candidates that contain the `k` best of `slots` (which must be
    /// distinct): an int8 pass keeps the best `max(k * 4, rerank)`, re-scored in f32.
    pub(crate) fn rank_slots(
        &self,
        query: &[f32],
        slots: &[u32],
        k: usize,
        rerank: usize,
        accept: impl Fn(usize) -> bool,
    ) -> Vec<(f32, TemplateId)> {
        let mut ranker = Int8Ranker::new(self, query, rerank.max(k.saturating_mul(4)), accept);
        // Rows are scattered: prefetch each row and its scale well ahead so that several
        // cache misses are in flight at once.
        const AHEAD: usize = 32;
        for (i, &slot) in slots.iter().enumerate() {
            if let Some(&next) = slots.get(i + AHEAD) {
                let next = next as usize;
                let row = next * self.dim;
                simd::prefetch(&self.codes[row..row + self.dim], self.dim.div_ceil(64));
                simd::prefetch(&self.scales[next..=next], 1);
            }
            let slot = slot as usize;
            let row = &self.codes[slot * self.dim..(slot + 1) * self.dim];
            ranker.offer(slot, simd::dot_i8(&ranker.q8, row));
        }
        let best = ranker.finish();
        self.score_slots(query, best.into_iter()).collect()
    }

    /// Write the kind-independent part of the body: dimension, scan, ids and vectors.
    pub(crate) fn write_body(&self, w: &mut Writer) -> Result<(), IndexError> {
        w.u32(self.dim as u32)?;
        match self.scan {
            FlatScan::ExactF32 => w.u32(0)?,
            FlatScan::Int8Rerank { rerank } => {
                w.u32(1)?;
                w.len(rerank.min(u32::MAX as usize))?;
            }
        }
        w.len(self.ids.len())?;
        w.u64s(self.ids.iter().map(|id| id.0))?;
        w.f32s(&self.vectors)
    }

    /// Read what [`FlatIndex::write_body`] wrote.
    pub(crate) fn read_body(r: &mut Reader<'_>) -> Result<Self, IndexError> {
        let dim = r.u32("dimension")? as usize;
        let scan = match r.u32("scan")? {
            0 => FlatScan::ExactF32,
            1 => FlatScan::Int8Rerank {
                rerank: r.len("rerank", u32::MAX as usize)?,
            },
            other => return Err(r.corrupt(format!("unknown scan {other}"))),
        };
        let mut index = Self::with_scan(dim, scan).map_err(|e| r.corrupt(e.to_string()))?;
        let count = r.len("vector count", usize::MAX)?;
        let ids = r.u64s(count, "ids")?;
        let vectors = r.unit_rows(count, dim, "vectors")?;
        index.slots.reserve(count);
        for (slot, &id) in ids.iter().enumerate() {
            if index.slots.insert(TemplateId(id), slot).is_some() {
                return Err(r.corrupt(format!("duplicate id {id}")));
            }
        }
        index.ids = ids.into_iter().map(TemplateId).collect();
        // A saved gallery can hold millions of rows: quantise them in parallel.
        index.reserve_codes(vectors.len());
        index.codes.resize(vectors.len(), 0);
        index.scales = index
            .codes
            .par_chunks_mut(dim)
            .zip(vectors.par_chunks(dim))
            .map(|(codes, row)| quantize_into(row, codes))
            .collect();
        index.vectors = vectors;
        Ok(index)
    }

    pub(crate) fn decode(file: &IndexFile) -> Result<Self, IndexError> {
        let mut r = file.body(Kind::Flat)?;
        let index = Self::read_body(&mut r)?;
        r.finish()?;
        Ok(index)
    }
}

/// Keeps the best slots by int8 dot product with a quantised query. The query scale is
/// common to every row, so it is left out of the ranking.
struct Int8Ranker<'a, F> {
    index: &'a FlatIndex,
    q8: Vec<i8>,
    top: TopK<usize>,
    threshold: f32,
    accept: F,
}

impl<'a, F: Fn(usize) -> bool> Int8Ranker<'a, F> {
    fn new(index: &'a FlatIndex, query: &[f32], count: usize, accept: F) -> Self {
        let mut q8 = Vec::with_capacity(index.dim);
        quantize(query, &mut q8);
        let top = TopK::new(count);
        let threshold = top.threshold();
        Self {
            index,
            q8,
            top,
            threshold,
            accept,
        }
    }

    #[inline]
    fn offer(&mut self, slot: usize, dot: i32) {
        let approx = dot as f32 * self.index.scales[slot];
        if approx >= self.threshold && (self.accept)(slot) {
            self.top.push(approx, slot);
            self.threshold = self.top.threshold();
        }
    }

    fn finish(self) -> Vec<usize> {
        self.top.into_sorted().into_iter().map(|(_, s)| s).collect()
    }
}

impl VectorIndex for FlatIndex {
    fn dimension(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn contains(&self, id: TemplateId) -> bool {
        self.slots.contains_key(&id)
    }

    fn insert(&mut self, id: TemplateId, vector: &Embedding) -> Result<(), IndexError> {
        crate::check_vector(self.dim, vector)?;
        if self.contains(id) {
            return Err(IndexError::DuplicateId(id));
        }
        self.push(id, vector.as_slice());
        Ok(())
    }

    fn insert_batch(&mut self, items: &[(TemplateId, Embedding)]) -> Result<(), IndexError> {
        crate::check_batch(self.dim, items, |id| self.contains(id))?;
        self.reserve(items.len());
        for (id, vector) in items {
            self.push(*id, vector.as_slice());
        }
        Ok(())
    }

    fn remove(&mut self, id: TemplateId) -> Result<(), IndexError> {
        let slot = self.slots.remove(&id).ok_or(IndexError::UnknownId(id))?;
        let last = self.ids.len() - 1;
        let d = self.dim;
        if slot != last {
            self.vectors.copy_within(last * d..(last + 1) * d, slot * d);
            self.codes.copy_within(last * d..(last + 1) * d, slot * d);
            self.slots.insert(self.ids[last], slot);
        }
        self.ids.swap_remove(slot);
        self.scales.swap_remove(slot);
        self.vectors.truncate(last * d);
        self.codes.truncate(last * d);
        Ok(())
    }

    fn search(
        &self,
        query: &Embedding,
        params: &SearchParams<'_>,
    ) -> Result<Vec<crate::Hit>, IndexError> {
        crate::check_search(self.dim, query, params)?;
        let q = query.as_slice();
        let scored = match params.filter {
            Some(filter) if filter.len() < self.len() => {
                let slots = filter.ids().filter_map(|id| self.slots.get(&id).copied());
                self.score_slots(q, slots).collect()
            }
            Some(filter) => self.scan_all(q, params.k, |slot| filter.allows(self.ids[slot])),
            None => self.scan_all(q, params.k, |_| true),
        };
        Ok(crate::finish_hits(scored, params))
    }

    fn save(&self, path: &Path) -> Result<(), IndexError> {
        let mut w = Writer::create(path, Kind::Flat)?;
        self.write_body(&mut w)?;
        w.commit()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Hit, IdFilter};
    use proptest::prelude::*;

    fn oracle(
        items: &[(TemplateId, Embedding)],
        q: &Embedding,
        params: &SearchParams<'_>,
    ) -> Vec<Hit> {
        let mut all: Vec<Hit> = items
            .iter()
            .filter(|(id, _)| params.filter.is_none_or(|f| f.allows(*id)))
            .map(|(id, e)| Hit {
                id: *id,
                score: simd::dot(q.as_slice(), e.as_slice()).clamp(-1.0, 1.0),
            })
            .filter(|h| params.min_score.is_none_or(|t| h.score >= t))
            .collect();
        all.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        all.truncate(params.k);
        all
    }

    fn embedding() -> impl Strategy<Value = Vec<i8>> {
        // Small integer components make ties between scores common.
        prop::collection::vec(-2i8..=2, 5)
    }

    fn to_embedding(v: &[i8]) -> Embedding {
        let mut values: Vec<f32> = v.iter().map(|&x| f32::from(x)).collect();
        if values.iter().all(|&x| x == 0.0) {
            values[0] = 1.0;
        }
        Embedding::new(values).expect("non-zero")
    }

    proptest! {
        #[test]
        fn top_k_matches_naive_oracle(
            vectors in prop::collection::vec(embedding(), 0..40),
            removed in prop::collection::vec(any::<bool>(), 40),
            allowed in prop::collection::vec(any::<bool>(), 40),
            query in embedding(),
            k in 1usize..12,
            min_score in prop::option::of(-1.0f32..1.0),
            use_filter in any::<bool>(),
        ) {
            let items: Vec<(TemplateId, Embedding)> = vectors
                .iter()
                .enumerate()
                .map(|(i, v)| (TemplateId(i as u64 * 3 + 1), to_embedding(v)))
                .collect();
            let q = to_embedding(&query);
            let filter = IdFilter::new(items.iter().zip(&allowed).filter(|(_, a)| **a).map(|((id, _), _)| *id));
            let params = SearchParams { k, min_score, filter: use_filter.then_some(&filter) };
            for scan in [FlatScan::ExactF32, FlatScan::default()] {
                let mut index = FlatIndex::with_scan(5, scan).unwrap();
                index.insert_batch(&items).unwrap();
                let mut live = items.clone();
                for (i, (id, _)) in items.iter().enumerate() {
                    if removed[i] {
                        index.remove(*id).unwrap();
                        live.retain(|(l, _)| l != id);
                    }
                }
                prop_assert_eq!(index.len(), live.len());
                prop_assert_eq!(index.search(&q, &params).unwrap(), oracle(&live, &q, &params));
            }
        }
    }

    #[test]
    fn quantisation_is_symmetric_and_bounded() {
        let mut codes = Vec::new();
        let scale = quantize(&[0.5, -1.0, 0.25, 0.0], &mut codes);
        assert!((scale - 1.0 / 127.0).abs() < 1e-9);
        assert_eq!(codes, vec![64, -127, 32, 0]);
    }
}
