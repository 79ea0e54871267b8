//! Cross-polytope locality-sensitive hashing with multi-probe search.
//!
//! The scheme is the one analysed in Andoni, Indyk, Laarhoven, Razenshteyn and Schmidt,
//! "Practical and Optimal LSH for Angular Distance" (NeurIPS 2015) and used by their
//! FALCONN library; this is an independent implementation.
//!
//! * A **hash** rotates the vector pseudo-randomly (three rounds of random sign flips and
//!   a fast Hadamard transform on the vector zero-padded to a power of two `D`) and
//!   returns the closest signed basis vector: the coordinate of largest magnitude and its
//!   sign, one of `2D` values. Two unit vectors at angle `θ` collide with a probability
//!   that falls steeply with `θ`, far more steeply than for random hyperplanes.
//! * A **table** concatenates `hashes` such hashes into one bucket id (the last one may
//!   look at only the first `last_hash_dim` rotated coordinates, which tunes the bucket
//!   count to the gallery size), and stores the slots of each bucket contiguously (CSR).
//! * A **search** hashes the query in every table, ranks the alternative buckets of every
//!   table by how far their coordinates fall short of the best one (multi-probe), visits
//!   the `probes` cheapest buckets over all tables, and scores the union of their
//!   members with the [`FlatIndex`] int8 kernel, re-scoring the best in f32.
//!
//! Identity-structured biometric embeddings are the case graph indexes find hardest: a
//! probe's mates are much closer than anything else, but the rest of the gallery is
//! almost equidistant, so a graph walk has little gradient to follow. A hash finds the
//! mates' buckets directly. Vectors live in an embedded [`FlatIndex`] (f32 rows and their
//! int8 codes), so exact scores, removal and the file layout are shared with it.
//!
//! Inserts append to the flat store and to a *pending* list that every search scans
//! exhaustively; when the list outgrows `max(256, len / 256)` it is merged into the tables
//! (a counting sort per table, in parallel). Removal rehashes the removed vector (and the
//! one the flat store moves into its slot), leaves a hole in each table and compacts when
//! holes exceed a quarter of the entries.

use crate::flat::FlatIndex;
use crate::format::{IndexFile, Kind, Reader, Writer};
use crate::{IndexError, SearchParams, VectorIndex};
use huella_core::{Embedding, TemplateId};
use rayon::prelude::*;
use std::path::Path;

/// A removed entry in a table bucket.
const HOLE: u32 = u32::MAX;
/// Pending inserts are merged into the tables beyond this count (or `len / 256`).
const MIN_PENDING: usize = 256;
/// Filters this small (or up to 1% of the index) are answered by an exact scan.
const EXACT_FILTER_MIN: usize = 2_000;
/// How far a selective filter may widen the probe count.
const MAX_FILTER_WIDENING: usize = 32;
/// A search consults one table per this many probes (all tables from `tables` times it).
const MIN_PROBES_PER_TABLE: usize = 8;
/// Rounds of sign flips + Hadamard transform per pseudo-random rotation.
const ROTATION_ROUNDS: usize = 3;
/// Largest bucket count of one table.
const MAX_BUCKETS: usize = 1 << 24;
/// Largest bucket count over all tables (the offsets take 4 bytes per bucket).
const MAX_TOTAL_BUCKETS: usize = 1 << 26;
/// Largest probe and re-rank counts.
const MAX_PROBES: usize = 1 << 20;

/// Build and search parameters of an [`LshIndex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LshParams {
    /// Hash tables; `1..=64`. More tables find more mates per probe and cost memory
    /// (4 bytes per record per table) and hashing time.
    pub tables: usize,
    /// Cross-polytope hashes concatenated per table; `1..=4`.
    pub hashes: usize,
    /// Rotated coordinates the last hash of each table looks at; `1..=D`, where `D` is the
    /// dimension rounded up to a power of two (at least 16). Tunes the buckets per table:
    /// `(2D)^(hashes - 1) * 2 * last_hash_dim`, at most 2^24.
    pub last_hash_dim: usize,
    /// Default buckets visited per search, over all tables; `1..=2^20`. The speed/recall
    /// knob, like HNSW's `ef`.
    pub probes: usize,
    /// Candidates re-scored in f32 after the int8 pass (at least `4k` are); `1..=2^20`.
    pub rerank: usize,
    /// Seed of the random rotations.
    pub seed: u64,
}

impl LshParams {
    /// Parameters for a gallery of about `expected_len` vectors of dimension `dim`: 24
    /// tables of as few hashes as give about four records per bucket (two at 1M x 192,
    /// three at 1M x 128, one for small galleries), and 1,024 probes.
    pub fn for_gallery(dim: usize, expected_len: usize) -> Self {
        let d = rotated_dim(dim);
        let tables = 24;
        // At most half the bucket budget: rounding up below can double the count.
        let wanted = (expected_len / 4).clamp(2, MAX_TOTAL_BUCKETS / tables / 2);
        let mut hashes = 1;
        while hashes < 4 && (2 * d).pow(hashes as u32) < wanted {
            hashes += 1;
        }
        let first = (2 * d).pow(hashes as u32 - 1);
        let last_hash_dim = wanted.div_ceil(2 * first).clamp(1, d);
        Self {
            tables,
            hashes,
            last_hash_dim,
            probes: 1024,
            rerank: 64,
            seed: 42,
        }
    }

    /// Check the ranges documented on each field for vectors of dimension `dim`.
    /// Errors: [`IndexError::BadParams`].
    pub fn validate(&self, dim: usize) -> Result<(), IndexError> {
        let bad = |what: &str, v: usize, lo: usize, hi: usize| {
            IndexError::BadParams(format!("LSH {what} = {v} is outside {lo}..={hi}"))
        };
        let d = rotated_dim(dim);
        let within = |what: &str, v: usize, lo: usize, hi: usize| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(bad(what, v, lo, hi))
            }
        };
        within("tables", self.tables, 1, 64)?;
        within("hashes", self.hashes, 1, 4)?;
        within("last_hash_dim", self.last_hash_dim, 1, d)?;
        within("probes", self.probes, 1, MAX_PROBES)?;
        within("rerank", self.rerank, 1, MAX_PROBES)?;
        let buckets = self.buckets(dim).filter(|&b| b <= MAX_BUCKETS);
        let total = buckets.and_then(|b| b.checked_mul(self.tables));
        if total.is_none_or(|t| t > MAX_TOTAL_BUCKETS) {
            return Err(IndexError::BadParams(format!(
                "LSH with {} tables of {} hashes (last over {} coordinates) needs more than \
                 2^24 buckets per table or 2^26 in all",
                self.tables, self.hashes, self.last_hash_dim
            )));
        }
        Ok(())
    }

    /// Buckets per table, `None` on overflow.
    fn buckets(&self, dim: usize) -> Option<usize> {
        let full = 2 * rotated_dim(dim);
        (1..self.hashes).try_fold(2 * self.last_hash_dim, |acc, _| acc.checked_mul(full))
    }
}

/// The dimension a vector is zero-padded to before rotation.
fn rotated_dim(dim: usize) -> usize {
    dim.next_power_of_two().max(16)
}

/// SplitMix64: a small, well-mixed generator for the rotation signs.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The hash functions of every table: random signs for each rotation round.
#[derive(Debug, Clone)]
struct Hasher {
    dim: usize,
    /// Rotated dimension `D`.
    d: usize,
    tables: usize,
    hashes: usize,
    last_hash_dim: usize,
    /// Signs (+1 or -1) round by round, coordinate by coordinate, one per hash function
    /// (`tables * hashes`), matching the interleaved layout of [`Hasher::rotate`].
    signs: Vec<f32>,
}

/// One alternative for one hash: a signed coordinate and how far it falls short.
#[derive(Debug, Clone, Copy)]
struct Choice {
    code: u32,
    cost: f32,
}

impl Hasher {
    fn new(dim: usize, p: &LshParams) -> Self {
        let d = rotated_dim(dim);
        let mut state = p.seed;
        let count = p.tables * p.hashes * ROTATION_ROUNDS * d;
        let mut signs = Vec::with_capacity(count);
        while signs.len() < count {
            let bits = splitmix(&mut state);
            let take = (count - signs.len()).min(64);
            signs.extend((0..take).map(|i| if bits >> i & 1 == 1 { 1.0 } else { -1.0 }));
        }
        Self {
            dim,
            d,
            tables: p.tables,
            hashes: p.hashes,
            last_hash_dim: p.last_hash_dim,
            signs,
        }
    }

    /// Coordinates hash `j` of a table looks at.
    fn span(&self, j: usize) -> usize {
        if j + 1 == self.hashes {
            self.last_hash_dim
        } else {
            self.d
        }
    }

    /// `v` rotated by the hash functions of the first `tables` tables at once:
    /// `tables * hashes` rows of `D` values, hash function `t * hashes + j` in row
    /// `t * hashes + j`.
    fn rotate(&self, v: &[f32], tables: usize) -> Vec<f32> {
        let all = self.tables * self.hashes;
        let width = tables * self.hashes;
        let mut y = vec![0.0f32; self.d * width];
        for (row, &x) in y.chunks_exact_mut(width).zip(v) {
            row.fill(x);
        }
        if width == all {
            crate::simd::sign_hadamard(&mut y, &self.signs, width);
        } else {
            let signs: Vec<f32> = self
                .signs
                .chunks_exact(all)
                .flat_map(|row| &row[..width])
                .copied()
                .collect();
            crate::simd::sign_hadamard(&mut y, &signs, width);
        }
        let mut out = vec![0.0f32; y.len()];
        for (c, row) in y.chunks_exact(width).enumerate() {
            for (h, &x) in row.iter().enumerate() {
                out[h * self.d + c] = x;
            }
        }
        out
    }

    /// The bucket of `v` in every table.
    fn buckets(&self, v: &[f32]) -> Vec<u32> {
        debug_assert_eq!(v.len(), self.dim);
        let rotated = self.rotate(v, self.tables);
        let mut rows = rotated.chunks_exact(self.d);
        (0..self.tables)
            .map(|_| {
                (0..self.hashes).fold(0u32, |bucket, j| {
                    let span = self.span(j);
                    let row = rows.next().map_or(&[][..], |r| &r[..span]);
                    bucket * (2 * span as u32) + best_code(row)
                })
            })
            .collect()
    }

    /// The `probes` cheapest (table, bucket) pairs for `q`. Hashing is the fixed cost
    /// of a search, so a small probe budget consults only the first
    /// `ceil(probes / MIN_PROBES_PER_TABLE)` tables.
    fn probes(&self, q: &[f32], probes: usize) -> Vec<(usize, u32)> {
        // Alternatives kept per hash: the product over a table's hashes stays small.
        let per_hash = match self.hashes {
            1 => 64,
            2 => 12,
            3 => 5,
            _ => 4,
        };
        let tables = self.tables.min(probes.div_ceil(MIN_PROBES_PER_TABLE));
        let rotated = self.rotate(q, tables);
        let mut rows = rotated.chunks_exact(self.d);
        let mut all: Vec<(f32, usize, u32)> = Vec::new();
        for t in 0..tables {
            let mut combos = vec![(0.0f32, 0u32)];
            for j in 0..self.hashes {
                let span = self.span(j);
                let row = rows.next().map_or(&[][..], |r| &r[..span]);
                let choices = best_choices(row, per_hash);
                combos = combos
                    .iter()
                    .flat_map(|&(cost, bucket)| {
                        choices
                            .iter()
                            .map(move |c| (cost + c.cost, bucket * (2 * span as u32) + c.code))
                    })
                    .collect();
            }
            all.extend(combos.into_iter().map(|(cost, bucket)| (cost, t, bucket)));
        }
        let keep = probes.min(all.len());
        if keep < all.len() {
            all.select_nth_unstable_by(keep, |a, b| a.0.total_cmp(&b.0));
            all.truncate(keep);
        }
        all.into_iter().map(|(_, t, b)| (t, b)).collect()
    }
}

/// The signed coordinate of `y` with the largest magnitude: `2 * index + (value < 0)`.
fn best_code(y: &[f32]) -> u32 {
    let (i, v) = y.iter().enumerate().fold((0, 0.0f32), |(bi, bv), (i, &v)| {
        if v.abs() > bv.abs() {
            (i, v)
        } else {
            (bi, bv)
        }
    });
    2 * i as u32 + u32::from(v < 0.0)
}

/// The `count` signed coordinates of `y` with the largest magnitude, best first, each
/// with its shortfall from the best magnitude.
fn best_choices(y: &[f32], count: usize) -> Vec<Choice> {
    // (magnitude, coordinate), kept sorted best first; most values fail the first test.
    let mut top: Vec<(f32, u32)> = Vec::with_capacity(count + 1);
    for (i, v) in y.iter().enumerate() {
        let a = v.abs();
        if top.len() == count && top.last().is_some_and(|&(worst, _)| a <= worst) {
            continue;
        }
        let at = top.partition_point(|&(b, _)| b >= a);
        top.insert(at, (a, i as u32));
        top.truncate(count);
    }
    let best = top.first().map_or(0.0, |&(a, _)| a);
    top.into_iter()
        .map(|(a, i)| Choice {
            code: 2 * i + u32::from(y[i as usize] < 0.0),
            cost: best - a,
        })
        .collect()
}

/// One hash table: the slots of each bucket, contiguous.
#[derive(Debug, Clone, Default)]
struct Table {
    /// `buckets + 1` offsets into `entries`.
    offsets: Vec<u32>,
    /// Slots (or [`HOLE`]s), bucket by bucket.
    entries: Vec<u32>,
}

impl Table {
    fn bucket(&self, b: u32) -> &[u32] {
        let b = b as usize;
        &self.entries[self.offsets[b] as usize..self.offsets[b + 1] as usize]
    }

    /// Replace `from` by `to` in bucket `b`; false when `from` is not there.
    fn replace(&mut self, b: u32, from: u32, to: u32) -> bool {
        let b = b as usize;
        let range = self.offsets[b] as usize..self.offsets[b + 1] as usize;
        match self.entries[range].iter_mut().find(|e| **e == from) {
            Some(e) => {
                *e = to;
                true
            }
            None => false,
        }
    }

    /// A table holding this table's live entries plus `added`: (bucket, slot) pairs.
    fn merged(&self, buckets: usize, added: impl Iterator<Item = (u32, u32)> + Clone) -> Self {
        let mut offsets = vec![0u32; buckets + 1];
        for b in 0..self.offsets.len().saturating_sub(1) {
            let live = self.bucket(b as u32).iter().filter(|&&s| s != HOLE).count();
            offsets[b + 1] = live as u32;
        }
        for (b, _) in added.clone() {
            offsets[b as usize + 1] += 1;
        }
        for b in 0..buckets {
            offsets[b + 1] += offsets[b];
        }
        let mut entries = vec![HOLE; offsets[buckets] as usize];
        let mut cursor = offsets[..buckets].to_vec();
        for (b, c) in cursor
            .iter_mut()
            .enumerate()
            .take(self.offsets.len().saturating_sub(1))
        {
            for &s in self.bucket(b as u32).iter().filter(|&&s| s != HOLE) {
                entries[*c as usize] = s;
                *c += 1;
            }
        }
        for (b, s) in added {
            let c = &mut cursor[b as usize];
            entries[*c as usize] = s;
            *c += 1;
        }
        Self { offsets, entries }
    }
}

/// Approximate nearest-neighbour search by cross-polytope LSH tables over an embedded
/// [`FlatIndex`]; see the module documentation.
pub struct LshIndex {
    params: LshParams,
    flat: FlatIndex,
    hasher: Hasher,
    buckets: usize,
    tables: Vec<Table>,
    /// Slots below this are in the tables; those above are pending.
    indexed: usize,
    /// The bucket of every pending slot in every table, slot by slot.
    pending_buckets: Vec<u32>,
    /// Removed entries still present (as holes) in each table.
    holes: usize,
}

impl std::fmt::Debug for LshIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LshIndex")
            .field("dim", &self.flat.dimension())
            .field("len", &self.flat.len())
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl LshIndex {
    /// An empty index of dimension `dim`.
    /// Errors: [`IndexError::BadParams`] for a bad dimension or parameters.
    pub fn new(dim: usize, params: LshParams) -> Result<Self, IndexError> {
        crate::check_dimension(dim)?;
        params.validate(dim)?;
        let buckets = params.buckets(dim).unwrap_or(0);
        Ok(Self {
            params,
            flat: FlatIndex::new(dim)?,
            hasher: Hasher::new(dim, &params),
            buckets,
            tables: vec![
                Table {
                    offsets: vec![0; buckets + 1],
                    entries: Vec::new(),
                };
                params.tables
            ],
            indexed: 0,
            pending_buckets: Vec::new(),
            holes: 0,
        })
    }

    /// The parameters in use.
    pub fn params(&self) -> LshParams {
        self.params
    }

    /// Change the default number of buckets visited per search (clamped to `1..=2^20`).
    pub fn set_probes(&mut self, probes: usize) {
        self.params.probes = probes.clamp(1, MAX_PROBES);
    }

    /// Open a file written by [`VectorIndex::save`] on an `LshIndex`.
    ///
    /// Errors: [`IndexError::Io`], [`IndexError::Corrupt`] (also when the file holds another
    /// kind of index), [`IndexError::UnsupportedVersion`].
    pub fn load(path: &Path) -> Result<Self, IndexError> {
        Self::decode(&IndexFile::read(path)?)
    }

    /// Heap bytes held by the index, vectors included.
    pub fn memory_bytes(&self) -> usize {
        let tables: usize = self
            .tables
            .iter()
            .map(|t| (t.offsets.capacity() + t.entries.capacity()) * 4)
            .sum();
        self.flat.memory_bytes()
            + tables
            + self.pending_buckets.capacity() * 4
            + self.hasher.signs.capacity() * 4
    }

    /// The ids stored, in slot order.
    pub fn ids(&self) -> impl Iterator<Item = TemplateId> + '_ {
        self.flat.ids()
    }

    /// Search visiting `probes` buckets instead of the default (clamped to `1..=2^20`).
    /// Errors as [`VectorIndex::search`].
    pub fn search_with_probes(
        &self,
        query: &Embedding,
        params: &SearchParams<'_>,
        probes: usize,
    ) -> Result<Vec<crate::Hit>, IndexError> {
        crate::check_search(self.flat.dimension(), query, params)?;
        let probes = probes.clamp(1, MAX_PROBES);
        let q = query.as_slice();
        if let Some(filter) = params.filter {
            if filter.len() <= EXACT_FILTER_MIN.max(self.len() / 100) {
                return self.flat.search(query, params);
            }
        }
        // A selective filter leaves fewer candidates per bucket: probe more buckets.
        let widen = params.filter.map_or(1, |f| {
            (self.len() / f.len().max(1)).clamp(1, MAX_FILTER_WIDENING)
        });
        let slots = self.candidates(q, probes.saturating_mul(widen));
        let scored = self
            .flat
            .rank_slots(q, &slots, params.k, self.params.rerank, |s| {
                params.filter.is_none_or(|f| f.allows(self.flat.id_at(s)))
            });
        Ok(crate::finish_hits(scored, params))
    }

    /// Distinct slots in the probed buckets, plus every pending slot.
    fn candidates(&self, q: &[f32], probes: usize) -> Vec<u32> {
        // Each probe touches two random places (its offsets, then its entries): walk the
        // probes twice, prefetching a few ahead, so the cache misses overlap.
        const AHEAD: usize = 16;
        let probes = self.hasher.probes(q, probes);
        let offsets = |&(t, b): &(usize, u32)| &self.tables[t].offsets[b as usize..b as usize + 2];
        for p in probes.iter().take(AHEAD) {
            crate::simd::prefetch(offsets(p), 1);
        }
        let ranges: Vec<(usize, usize, usize)> = probes
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if let Some(next) = probes.get(i + AHEAD) {
                    crate::simd::prefetch(offsets(next), 1);
                }
                let o = offsets(p);
                (p.0, o[0] as usize, o[1] as usize)
            })
            .collect();
        let entries =
            |&(t, start, end): &(usize, usize, usize)| &self.tables[t].entries[start..end];
        for r in ranges.iter().take(AHEAD) {
            crate::simd::prefetch(entries(r), 1);
        }
        let mut seen = vec![0u64; self.indexed.div_ceil(64)];
        let mut slots = Vec::new();
        for (i, r) in ranges.iter().enumerate() {
            if let Some(next) = ranges.get(i + AHEAD) {
                crate::simd::prefetch(entries(next), 1);
            }
            for &s in entries(r) {
                let (word, bit) = (s as usize / 64, 1u64 << (s % 64));
                // Holes (u32::MAX) fall outside `seen`.
                if let Some(w) = seen.get_mut(word).filter(|w| **w & bit == 0) {
                    *w |= bit;
                    slots.push(s);
                }
            }
        }
        slots.extend(self.indexed as u32..self.flat.len() as u32);
        slots
    }

    /// Merge pending inserts into the tables and drop holes.
    fn merge(&mut self) {
        let n = self.flat.len();
        if self.indexed == n && self.holes == 0 {
            return;
        }
        let tables = self.params.tables;
        let (indexed, pending, buckets) = (self.indexed, &self.pending_buckets, self.buckets);
        self.tables = self
            .tables
            .par_iter()
            .enumerate()
            .map(|(t, table)| {
                let added = pending
                    .chunks_exact(tables)
                    .enumerate()
                    .map(move |(i, b)| (b[t], (indexed + i) as u32));
                table.merged(buckets, added)
            })
            .collect();
        self.indexed = n;
        self.pending_buckets = Vec::new();
        self.holes = 0;
    }

    /// Merge once the pending list is long enough to slow searches down.
    fn merge_if_due(&mut self) {
        let pending = self.flat.len() - self.indexed;
        if pending > MIN_PENDING.max(self.flat.len() / 256) {
            self.merge();
        }
    }

    /// Every slot's bucket in table `t`.
    fn slot_buckets(&self, t: usize) -> Vec<u32> {
        let mut out = vec![0u32; self.flat.len()];
        let table = &self.tables[t];
        for b in 0..self.buckets {
            for &s in table.bucket(b as u32).iter().filter(|&&s| s != HOLE) {
                out[s as usize] = b as u32;
            }
        }
        let pending = self.pending_buckets.chunks_exact(self.params.tables);
        for (i, b) in pending.enumerate() {
            out[self.indexed + i] = b[t];
        }
        out
    }

    pub(crate) fn decode(file: &IndexFile) -> Result<Self, IndexError> {
        let mut r = file.body(Kind::Lsh)?;
        let flat = FlatIndex::read_body(&mut r)?;
        let params = read_params(&mut r)?;
        let dim = flat.dimension();
        let mut index = Self::new(dim, params).map_err(|e| r.corrupt(e.to_string()))?;
        index.flat = flat;
        let n = index.flat.len();
        let per_slot = r.u32s(
            n.checked_mul(params.tables)
                .ok_or_else(|| r.corrupt("bucket table size overflows"))?,
            "bucket ids",
        )?;
        r.finish()?;
        if let Some(b) = per_slot.iter().find(|&&b| b as usize >= index.buckets) {
            return Err(file.corrupt(format!(
                "bucket id {b} outside the {} buckets per table",
                index.buckets
            )));
        }
        // Table-major on disk: each table is one counting sort of its column.
        if n > 0 {
            let buckets = index.buckets;
            index.tables = per_slot
                .par_chunks_exact(n)
                .map(|column| {
                    let added = column.iter().enumerate().map(|(s, &b)| (b, s as u32));
                    Table::default().merged(buckets, added)
                })
                .collect();
        }
        index.indexed = n;
        Ok(index)
    }
}

fn read_params(r: &mut Reader<'_>) -> Result<LshParams, IndexError> {
    let small =
        |r: &mut Reader<'_>, what: &str| -> Result<usize, IndexError> { Ok(r.u32(what)? as usize) };
    Ok(LshParams {
        tables: small(r, "tables")?,
        hashes: small(r, "hashes")?,
        last_hash_dim: small(r, "last hash dimension")?,
        probes: small(r, "probes")?,
        rerank: small(r, "rerank")?,
        seed: r.u64("seed")?,
    })
}

impl VectorIndex for LshIndex {
    fn dimension(&self) -> usize {
        self.flat.dimension()
    }

    fn len(&self) -> usize {
        self.flat.len()
    }

    fn contains(&self, id: TemplateId) -> bool {
        self.flat.contains(id)
    }

    fn insert(&mut self, id: TemplateId, vector: &Embedding) -> Result<(), IndexError> {
        self.flat.insert(id, vector)?;
        let buckets = self.hasher.buckets(vector.as_slice());
        self.pending_buckets.extend(buckets);
        self.merge_if_due();
        Ok(())
    }

    fn insert_batch(&mut self, items: &[(TemplateId, Embedding)]) -> Result<(), IndexError> {
        crate::check_batch(self.dimension(), items, |id| self.contains(id))?;
        let hasher = &self.hasher;
        let buckets: Vec<Vec<u32>> = items
            .par_iter()
            .map(|(_, v)| hasher.buckets(v.as_slice()))
            .collect();
        self.flat.reserve(items.len());
        self.pending_buckets
            .reserve(items.len() * self.params.tables);
        for ((id, v), b) in items.iter().zip(buckets) {
            self.flat.push(*id, v.as_slice());
            self.pending_buckets.extend(b);
        }
        self.merge_if_due();
        Ok(())
    }

    fn remove(&mut self, id: TemplateId) -> Result<(), IndexError> {
        let slot = self.flat.slot_of(id).ok_or(IndexError::UnknownId(id))?;
        // Removal moves the last slot, which must be in the tables: merge pending inserts
        // first. Holes alone are no reason to rebuild (that waits for the bound below).
        if self.indexed < self.flat.len() {
            self.merge();
        }
        let last = self.flat.len() - 1;
        let moves = [(slot, HOLE), (last, slot as u32)];
        for (from, to) in moves.into_iter().take(if slot == last { 1 } else { 2 }) {
            let buckets = self.hasher.buckets(self.flat.row(from));
            for (table, b) in self.tables.iter_mut().zip(buckets) {
                let found = table.replace(b, from as u32, to);
                debug_assert!(found, "slot {from} missing from its bucket");
            }
        }
        self.flat.remove(id)?;
        self.indexed = self.flat.len();
        self.holes += 1;
        if self.holes > MIN_PENDING.max(self.indexed / 4) {
            self.merge();
        }
        Ok(())
    }

    fn search(
        &self,
        query: &Embedding,
        params: &SearchParams<'_>,
    ) -> Result<Vec<crate::Hit>, IndexError> {
        self.search_with_probes(query, params, self.params.probes)
    }

    fn save(&self, path: &Path) -> Result<(), IndexError> {
        let mut w = Writer::create(path, Kind::Lsh)?;
        self.flat.write_body(&mut w)?;
        let p = &self.params;
        for v in [p.tables, p.hashes, p.last_hash_dim, p.probes, p.rerank] {
            w.u32(v as u32)?;
        }
        w.u64(p.seed)?;
        for t in 0..p.tables {
            w.u32s(self.slot_buckets(t))?;
        }
        w.commit()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small_params() -> LshParams {
        LshParams {
            tables: 3,
            hashes: 2,
            last_hash_dim: 2,
            probes: 8,
            rerank: 8,
            seed: 5,
        }
    }

    impl LshIndex {
        /// Every live slot is in exactly its own bucket of every table, or pending with
        /// its own buckets; nothing else is stored.
        fn check_invariants(&self) {
            let n = self.flat.len();
            assert!(self.indexed <= n);
            assert_eq!(
                self.pending_buckets.len(),
                (n - self.indexed) * self.params.tables
            );
            for slot in 0..n {
                let own = self.hasher.buckets(self.flat.row(slot));
                if slot >= self.indexed {
                    let i = (slot - self.indexed) * self.params.tables;
                    assert_eq!(&self.pending_buckets[i..i + self.params.tables], &own[..]);
                }
                for (t, table) in self.tables.iter().enumerate() {
                    let count = table.entries.iter().filter(|&&s| s == slot as u32).count();
                    let here = table.bucket(own[t]).contains(&(slot as u32));
                    if slot < self.indexed {
                        assert!(count == 1 && here, "slot {slot} table {t}: {count}");
                    } else {
                        assert_eq!(count, 0, "pending slot {slot} in table {t}");
                    }
                }
            }
            for table in &self.tables {
                assert!(table
                    .entries
                    .iter()
                    .all(|&s| s == HOLE || (s as usize) < self.indexed));
                let holes = table.entries.iter().filter(|&&s| s == HOLE).count();
                assert_eq!(holes, self.holes);
            }
        }
    }

    fn vector(seed: u64, dim: usize) -> Embedding {
        let mut state = seed;
        let v: Vec<f32> = (0..dim)
            .map(|_| (splitmix(&mut state) % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        Embedding::new(v).unwrap_or_else(|_| {
            let mut e = vec![0.0; dim];
            e[0] = 1.0;
            Embedding::new(e).unwrap()
        })
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64),
        Batch(Vec<u64>),
        Remove(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<u64>().prop_map(Op::Insert),
            1 => prop::collection::vec(any::<u64>(), 0..400).prop_map(Op::Batch),
            3 => any::<usize>().prop_map(Op::Remove),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn bookkeeping_survives_any_sequence_of_inserts_and_removals(
            ops in prop::collection::vec(op(), 1..60),
        ) {
            let dim = 6;
            let mut index = LshIndex::new(dim, small_params()).unwrap();
            let mut live: Vec<(TemplateId, Embedding)> = Vec::new();
            let mut next = 0u64;
            let mut fresh = |seed: u64| {
                next += 1;
                (TemplateId(next), vector(seed, dim))
            };
            for op in ops {
                match op {
                    Op::Insert(seed) => {
                        let (id, e) = fresh(seed);
                        index.insert(id, &e).unwrap();
                        live.push((id, e));
                    }
                    Op::Batch(seeds) => {
                        let items: Vec<_> = seeds.into_iter().map(&mut fresh).collect();
                        index.insert_batch(&items).unwrap();
                        live.extend(items);
                    }
                    Op::Remove(pick) if !live.is_empty() => {
                        let (id, _) = live.swap_remove(pick % live.len());
                        index.remove(id).unwrap();
                        prop_assert!(!index.contains(id));
                    }
                    Op::Remove(_) => {}
                }
                index.check_invariants();
                prop_assert_eq!(index.len(), live.len());
            }
            // Every live vector finds itself (its own buckets are probed first), with an
            // exact score; hits are sorted and live.
            for (id, e) in &live {
                let hits = index.search(e, &SearchParams::top(3)).unwrap();
                prop_assert!(hits.iter().any(|h| h.id == *id));
                prop_assert!(hits[0].score > 0.9999);
                prop_assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
                prop_assert!(hits.iter().all(|h| index.contains(h.id)));
            }
        }
    }

    #[test]
    fn compaction_after_many_removals_keeps_the_tables_exact() {
        let mut index = LshIndex::new(6, small_params()).unwrap();
        let items: Vec<_> = (0..1_200).map(|i| (TemplateId(i), vector(i, 6))).collect();
        index.insert_batch(&items).unwrap();
        let mut most_holes = 0;
        for (id, _) in items.iter().filter(|(id, _)| id.0 % 7 != 0) {
            index.remove(*id).unwrap();
            most_holes = most_holes.max(index.holes);
            if index.holes == 0 {
                index.check_invariants();
            }
        }
        index.check_invariants();
        // Removals leave holes and only the bound rebuilds the tables, not each removal.
        assert!(most_holes >= MIN_PENDING, "at most {most_holes} holes");
        assert_eq!(index.len(), 172);
        assert!(index.tables[0].entries.len() < 1_200 / 4, "compacted");
        for (id, e) in items.iter().filter(|(id, _)| id.0 % 7 == 0) {
            assert_eq!(index.search(e, &SearchParams::top(1)).unwrap()[0].id, *id);
        }
    }

    #[test]
    fn buckets_are_deterministic_and_in_range() {
        let p = LshParams::for_gallery(192, 1_000_000);
        assert_eq!((p.hashes, p.last_hash_dim), (2, 245));
        p.validate(192).unwrap();
        let h = Hasher::new(192, &p);
        let v = vector(9, 192);
        let a = h.buckets(v.as_slice());
        assert_eq!(a, Hasher::new(192, &p).buckets(v.as_slice()));
        let buckets = p.buckets(192).unwrap() as u32;
        assert!(a.iter().all(|&b| b < buckets));
        // The cheapest probe of every table is the vector's own bucket.
        let probes = h.probes(v.as_slice(), p.tables);
        let consulted = p.tables.div_ceil(MIN_PROBES_PER_TABLE);
        assert_eq!(probes.len(), p.tables);
        assert!(probes.iter().all(|&(t, _)| t < consulted));
        let probes = h.probes(v.as_slice(), p.tables * MIN_PROBES_PER_TABLE);
        let probes: Vec<(usize, u32)> = probes.into_iter().filter(|&(t, b)| a[t] == b).collect();
        let mut own: Vec<(usize, u32)> = a.into_iter().enumerate().collect();
        let mut got = probes.clone();
        own.sort_unstable();
        got.sort_unstable();
        assert_eq!(own, got);
    }

    #[test]
    fn gallery_sizing_aims_at_four_records_per_bucket_and_always_validates() {
        for (dim, len, hashes) in [(192, 1_000_000, 2), (128, 1_000_000, 3), (192, 1_000, 1)] {
            let p = LshParams::for_gallery(dim, len);
            assert_eq!(p.hashes, hashes, "{dim} x {len}");
            let per_bucket = len as f64 / p.buckets(dim).unwrap() as f64;
            assert!(
                (3.0..=5.0).contains(&per_bucket),
                "{dim} x {len}: {per_bucket}"
            );
        }
        for dim in [1, 8, 128, 192, 512, 4096] {
            for len in [0, 1, 1_000, 1_000_000, 1 << 40] {
                LshParams::for_gallery(dim, len).validate(dim).unwrap();
            }
        }
    }

    #[test]
    fn a_rotation_preserves_length() {
        // Three unnormalised Hadamard rounds scale every vector by D^(3/2).
        let p = small_params();
        let h = Hasher::new(6, &p);
        let v = vector(3, 6);
        let rotated = h.rotate(v.as_slice(), p.tables);
        let d = rotated_dim(6) as f32;
        for row in rotated.chunks_exact(h.d) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm / d.powf(1.5) - 1.0).abs() < 1e-4, "{norm}");
        }
    }

    #[test]
    fn parameters_are_validated() {
        let ok = small_params();
        for bad in [
            LshParams { tables: 0, ..ok },
            LshParams { tables: 65, ..ok },
            LshParams { hashes: 0, ..ok },
            LshParams { hashes: 5, ..ok },
            LshParams {
                last_hash_dim: 0,
                ..ok
            },
            LshParams {
                last_hash_dim: 17,
                ..ok
            },
            LshParams { probes: 0, ..ok },
            LshParams { rerank: 0, ..ok },
        ] {
            assert!(
                matches!(LshIndex::new(6, bad), Err(IndexError::BadParams(_))),
                "{bad:?}"
            );
        }
        assert!(LshIndex::new(6, ok).is_ok());
        // 512^3 buckets per table at D = 256; 2^20 per table at D = 16, but 2^26 + 2^20
        // over 65 tables.
        let too_many = LshParams {
            tables: 2,
            hashes: 3,
            last_hash_dim: 256,
            ..ok
        };
        assert!(matches!(
            LshIndex::new(256, too_many),
            Err(IndexError::BadParams(_))
        ));
        let edge = LshParams {
            tables: 64,
            hashes: 4,
            last_hash_dim: 16,
            ..ok
        };
        edge.validate(6).unwrap();
    }
}
