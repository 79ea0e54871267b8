//! A hierarchical navigable small-world graph (Malkov & Yashunin, arXiv:1603.09320).
//!
//! Layout, chosen so that memory stays close to the raw vectors and a visited node costs
//! one memory stream:
//! * one cache-line-aligned block per node in a single array, holding the level-0
//!   neighbour list (a count, then up to `2M` node numbers) and, from the next cache
//!   line on, the node's vector (as f32 bit patterns), with no per-node allocation;
//! * upper-level lists (stride `1 + M` per level) in one small boxed slice per node, only
//!   for the few nodes above level 0.
//!
//! Neighbour lists are atomics: searches read them without locks, and writers serialise
//! on a per-node mutex. Vector words are written only under `&mut self` and then read as
//! plain `f32`s. All storage for a batch is allocated under `&mut self` before the
//! parallel phase, so nothing moves while threads insert.

use crate::format::{IndexFile, Kind, Writer};
use crate::{simd, IndexError, SearchParams, VectorIndex};
use huella_core::{Embedding, TemplateId};
use parking_lot::{Mutex, RwLock};
use rayon::prelude::*;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// Highest level a node can be drawn at.
const MAX_LEVEL: usize = 16;
/// Largest accepted `ef_construction` and `ef_search`.
const MAX_EF: usize = 1 << 16;
/// "No node" in the file's entry-point field; also bounds the node count.
const NO_NODE: u32 = u32::MAX;
/// Filters this small (or up to 1% of the index) are answered by an exact scan.
const EXACT_FILTER_MIN: usize = 2_000;
/// How far a selective filter may widen the graph search beyond `ef`.
const MAX_FILTER_WIDENING: f64 = 32.0;
/// Share of tombstones above which `insert_batch` compacts first.
const COMPACT_RATIO: f64 = 0.2;

/// Build and search parameters of an [`HnswIndex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Neighbours per node on upper levels (twice this on level 0); `2..=128`.
    pub m: usize,
    /// Candidate list size while inserting; `1..=65536`. Larger builds a better graph, slower.
    pub ef_construction: usize,
    /// Default candidate list size while searching (at least `k` is used); `1..=65536`.
    pub ef_search: usize,
    /// Seed for the level draws, so a sequential build is reproducible.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            seed: 42,
        }
    }
}

impl HnswParams {
    /// Check the ranges documented on each field. Errors: [`IndexError::BadParams`].
    pub fn validate(&self) -> Result<(), IndexError> {
        let bad = |what: &str, v: usize, lo: usize, hi: usize| {
            IndexError::BadParams(format!("HNSW {what} = {v} is outside {lo}..={hi}"))
        };
        if !(2..=128).contains(&self.m) {
            return Err(bad("m", self.m, 2, 128));
        }
        if !(1..=MAX_EF).contains(&self.ef_construction) {
            return Err(bad("ef_construction", self.ef_construction, 1, MAX_EF));
        }
        if !(1..=MAX_EF).contains(&self.ef_search) {
            return Err(bad("ef_search", self.ef_search, 1, MAX_EF));
        }
        Ok(())
    }
}

/// Cache lines of a neighbour's vector prefetched before scoring it (the hardware
/// prefetcher streams the rest of the row).
const PREFETCH_LINES: usize = 2;

/// Words in one 64-byte cache line.
const LINE_WORDS: usize = 16;

/// One cache line of a node block; the unit of [`HnswIndex::nodes`], so that every block
/// (and the vector inside it) starts on a line boundary.
#[repr(C, align(64))]
struct Line([AtomicU32; LINE_WORDS]);

impl Line {
    fn zero() -> Self {
        Line(std::array::from_fn(|_| AtomicU32::new(0)))
    }
}

/// The words of consecutive lines, in order.
#[allow(unsafe_code)]
fn line_words(lines: &[Line]) -> &[AtomicU32] {
    // SAFETY: `Line` is `repr(C)` around `[AtomicU32; LINE_WORDS]`, 64 bytes with
    // alignment 64, so it has no padding: `lines` is exactly `lines.len() * LINE_WORDS`
    // initialised `AtomicU32`s in a row, borrowed for the same lifetime.
    unsafe {
        std::slice::from_raw_parts(lines.as_ptr().cast::<AtomicU32>(), lines.len() * LINE_WORDS)
    }
}

/// A node and its distance (`-cosine`: negation keeps the exact score recoverable) to
/// some base vector; ordered by distance (as `f32::total_cmp`), then node. Packed in one
/// `u64` (high half: the distance's bits mapped to an order-preserving unsigned integer;
/// low half: the node) so that every heap comparison is a single integer compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Near(u64);

impl Near {
    #[inline]
    fn new(dist: f32, node: u32) -> Self {
        let bits = dist.to_bits();
        let ordered = if bits >> 31 == 1 {
            !bits
        } else {
            bits | 0x8000_0000
        };
        Near(u64::from(ordered) << 32 | u64::from(node))
    }

    #[inline]
    fn dist(self) -> f32 {
        let ordered = (self.0 >> 32) as u32;
        f32::from_bits(if ordered >> 31 == 1 {
            ordered & 0x7fff_ffff
        } else {
            !ordered
        })
    }

    #[inline]
    fn node(self) -> u32 {
        self.0 as u32
    }
}

/// Visited marks stamped with a per-search epoch, so no search clears O(n) memory.
#[derive(Default)]
struct Visited {
    marks: Vec<u16>,
    epoch: u16,
}

impl Visited {
    fn start(&mut self, nodes: usize) {
        if self.marks.len() < nodes {
            self.marks.resize(nodes, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Mark `node`; false if it was already marked in this search.
    #[inline]
    fn insert(&mut self, node: u32) -> bool {
        let mark = &mut self.marks[node as usize];
        let fresh = *mark != self.epoch;
        *mark = self.epoch;
        fresh
    }
}

/// Per-thread search buffers, reused so that a layer search allocates only its result.
#[derive(Default)]
struct Scratch {
    visited: Visited,
    candidates: BinaryHeap<Reverse<Near>>,
    fresh: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// One step of the SplitMix64 generator.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Approximate nearest-neighbour search on a hierarchical navigable small-world graph.
///
/// Deletion leaves a tombstone: the node still guides searches but is never returned.
/// [`HnswIndex::compact`] rebuilds the graph from the live vectors; `insert_batch` does so
/// first when more than a fifth of the nodes are tombstones.
pub struct HnswIndex {
    dim: usize,
    params: HnswParams,
    /// Level-draw generator state.
    rng: u64,
    ids: Vec<TemplateId>,
    levels: Vec<u8>,
    deleted: Vec<bool>,
    deleted_count: usize,
    /// One block of `block_lines` lines per node: level-0 list at word 0, vector at word
    /// `vector_at`.
    nodes: Vec<Line>,
    block_lines: usize,
    vector_at: usize,
    upper: Vec<Option<Box<[AtomicU32]>>>,
    locks: Vec<Mutex<()>>,
    /// The entry node and its level, the top of the graph.
    entry: RwLock<Option<(u32, usize)>>,
    live: HashMap<TemplateId, u32>,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("dim", &self.dim)
            .field("params", &self.params)
            .field("len", &self.live.len())
            .field("deleted", &self.deleted_count)
            .finish_non_exhaustive()
    }
}

impl HnswIndex {
    /// An empty index. Errors: [`IndexError::BadParams`] for a dimension outside
    /// `1..=MAX_DIMENSION` or parameters outside their ranges.
    pub fn new(dim: usize, params: HnswParams) -> Result<Self, IndexError> {
        crate::check_dimension(dim)?;
        params.validate()?;
        Ok(Self::empty(dim, params))
    }

    fn empty(dim: usize, params: HnswParams) -> Self {
        let vector_at = (1 + 2 * params.m).next_multiple_of(LINE_WORDS);
        Self {
            dim,
            params,
            rng: params.seed,
            ids: Vec::new(),
            levels: Vec::new(),
            deleted: Vec::new(),
            deleted_count: 0,
            nodes: Vec::new(),
            block_lines: (vector_at + dim).div_ceil(LINE_WORDS),
            vector_at,
            upper: Vec::new(),
            locks: Vec::new(),
            entry: RwLock::new(None),
            live: HashMap::new(),
        }
    }

    /// The parameters in use.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Change the default search candidate list size (clamped to `1..=65536`).
    pub fn set_ef_search(&mut self, ef: usize) {
        self.params.ef_search = ef.clamp(1, MAX_EF);
    }

    /// Like [`VectorIndex::search`] with candidate list size `ef` (at least `k` is used).
    pub fn search_with_ef(
        &self,
        query: &Embedding,
        params: &SearchParams<'_>,
        ef: usize,
    ) -> Result<Vec<crate::Hit>, IndexError> {
        crate::check_search(self.dim, query, params)?;
        let q = query.as_slice();
        let live = |node: u32| !self.deleted[node as usize];
        let scored = match params.filter {
            Some(filter) if filter.len() <= EXACT_FILTER_MIN.max(self.len() / 100) => filter
                .ids()
                .filter_map(|id| {
                    self.live
                        .get(&id)
                        .map(|&node| (simd::dot(q, self.vector(node)), id))
                })
                .collect(),
            Some(filter) => {
                let widening =
                    (self.len() as f64 / filter.len() as f64).clamp(1.0, MAX_FILTER_WIDENING);
                let ef = (ef.max(params.k) as f64 * widening).ceil() as usize;
                self.search_graph(q, params.k, ef, |node| {
                    live(node) && filter.allows(self.ids[node as usize])
                })
            }
            None => self.search_graph(q, params.k, ef, live),
        };
        Ok(crate::finish_hits(scored, params))
    }

    /// Open a file written by [`VectorIndex::save`] on an `HnswIndex`.
    ///
    /// Errors: [`IndexError::Io`], [`IndexError::Corrupt`] (also when the file holds another
    /// kind of index), [`IndexError::UnsupportedVersion`].
    pub fn load(path: &Path) -> Result<Self, IndexError> {
        Self::decode(&IndexFile::read(path)?)
    }

    /// Heap bytes held by the index (not counting per-thread search scratch space).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let upper: usize = self
            .upper
            .iter()
            .flatten()
            .map(|b| b.len() * size_of::<AtomicU32>())
            .sum();
        self.ids.capacity() * size_of::<TemplateId>()
            + self.levels.capacity()
            + self.deleted.capacity()
            + self.nodes.capacity() * size_of::<Line>()
            + self.upper.capacity() * size_of::<Option<Box<[AtomicU32]>>>()
            + upper
            + self.locks.capacity() * size_of::<Mutex<()>>()
            + self.live.capacity() * (size_of::<(TemplateId, u32)>() + 1)
    }

    /// Number of tombstones: removed nodes still kept as waypoints.
    pub fn deleted_count(&self) -> usize {
        self.deleted_count
    }

    /// The live ids, in insertion order.
    pub fn ids(&self) -> impl Iterator<Item = TemplateId> + '_ {
        self.ids
            .iter()
            .zip(&self.deleted)
            .filter(|(_, &d)| !d)
            .map(|(&id, _)| id)
    }

    /// Rebuild the graph from the live vectors, dropping every tombstone. Runs on the
    /// current rayon pool.
    pub fn compact(&mut self) {
        let mut fresh = Self::empty(self.dim, self.params);
        let live: Vec<(TemplateId, &[f32])> = (0..self.ids.len() as u32)
            .filter(|&n| !self.deleted[n as usize])
            .map(|n| (self.ids[n as usize], self.vector(n)))
            .collect();
        fresh.add(&live);
        *self = fresh;
    }

    /// The block of `node`: its level-0 list, then its vector.
    #[inline]
    fn block(&self, node: u32) -> &[AtomicU32] {
        let at = node as usize * self.block_lines;
        line_words(&self.nodes[at..at + self.block_lines])
    }

    #[inline]
    #[allow(unsafe_code)]
    fn vector(&self, node: u32) -> &[f32] {
        let words = &self.block(node)[self.vector_at..self.vector_at + self.dim];
        // SAFETY: `AtomicU32`, `u32` and `f32` share size and alignment (4), and every bit
        // pattern is a valid `f32`. Reading an atomic's memory through a shared plain
        // reference is sound while nothing writes it: vector words are stored only under
        // `&mut self` (`add`, `decode`), before any `&self` borrow such as this one exists,
        // and never again; concurrent writers touch only list words, which are disjoint.
        unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<f32>(), words.len()) }
    }

    #[inline]
    fn dist(&self, q: &[f32], node: u32) -> f32 {
        -simd::dot(q, self.vector(node))
    }

    fn cap(&self, level: usize) -> usize {
        if level == 0 {
            2 * self.params.m
        } else {
            self.params.m
        }
    }

    /// The raw list of `node` at `level`: a count, then `cap(level)` slots. Empty when the
    /// node does not reach `level`.
    fn list(&self, node: u32, level: usize) -> &[AtomicU32] {
        let stride = 1 + self.cap(level);
        if level == 0 {
            &self.block(node)[..stride]
        } else {
            self.upper[node as usize]
                .as_deref()
                .and_then(|u| u.get((level - 1) * stride..level * stride))
                .unwrap_or(&[])
        }
    }

    fn neighbours(&self, node: u32, level: usize) -> impl Iterator<Item = u32> + '_ {
        let list = self.list(node, level);
        let count = list.first().map_or(0, |c| c.load(Relaxed) as usize);
        list.get(1..)
            .unwrap_or(&[])
            .iter()
            .take(count)
            .map(|a| a.load(Relaxed))
    }

    /// Replace a list; the caller holds the node's lock and `nodes.len() <= cap(level)`.
    fn write_list(&self, node: u32, level: usize, nodes: &[u32]) {
        let list = self.list(node, level);
        for (slot, &n) in list[1..].iter().zip(nodes) {
            slot.store(n, Relaxed);
        }
        list[0].store(nodes.len() as u32, Relaxed);
    }

    fn draw_level(&mut self) -> usize {
        let ml = 1.0 / (self.params.m as f64).ln();
        let u = ((splitmix64(&mut self.rng) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        ((-u.ln() * ml).floor() as usize).min(MAX_LEVEL)
    }

    fn check_capacity(&self, extra: usize) -> Result<(), IndexError> {
        if self.ids.len().saturating_add(extra) >= NO_NODE as usize {
            return Err(IndexError::BadParams(format!(
                "an HNSW index holds fewer than {NO_NODE} nodes"
            )));
        }
        Ok(())
    }

    /// Append and link already validated items: allocate every node first, then link them
    /// in parallel on the current rayon pool.
    fn add(&mut self, items: &[(TemplateId, &[f32])]) {
        let first = self.ids.len();
        let n = items.len();
        self.ids.reserve(n);
        self.levels.reserve(n);
        self.deleted.reserve(n);
        let capacity = self.nodes.capacity();
        self.nodes.reserve(n * self.block_lines);
        if self.nodes.capacity() != capacity {
            simd::advise_huge_pages(&self.nodes);
        }
        self.upper.reserve(n);
        self.locks.reserve(n);
        self.live.reserve(n);
        for (offset, &(id, vector)) in items.iter().enumerate() {
            let level = self.draw_level();
            self.ids.push(id);
            self.levels.push(level as u8);
            self.deleted.push(false);
            self.push_block(vector.iter().map(|v| v.to_bits()), std::iter::empty());
            let upper_len = level * (1 + self.params.m);
            self.upper
                .push((level > 0).then(|| (0..upper_len).map(|_| AtomicU32::new(0)).collect()));
            self.locks.push(Mutex::new(()));
            self.live.insert(id, (first + offset) as u32);
        }
        let this = &*self;
        if n == 1 {
            this.link(first as u32);
        } else {
            (first..first + n)
                .into_par_iter()
                .for_each(|node| this.link(node as u32));
            this.repair_orphans();
        }
    }

    /// Give every level-0 orphan (a node, or a small clique, that no path from the entry
    /// point reaches) an incoming link from the reachable graph.
    ///
    /// Parallel insertion can orphan a node: two near-duplicates linked at the same time
    /// never see each other, and their common neighbours' heuristic then keeps only one of
    /// them. An orphan can never be found, so each one is added to the list of the nearest
    /// node a search finds for it; that node's heuristic keeps it when it is truly the
    /// nearest, and otherwise it replaces the list's last link. Evicting a link can orphan
    /// another node, hence a few rounds.
    fn repair_orphans(&self) {
        let n = self.ids.len();
        let Some((entry, _)) = *self.entry.read() else {
            return;
        };
        for _ in 0..4 {
            // Level-0 reachability from the entry point, breadth first.
            let mut reached = vec![false; n];
            reached[entry as usize] = true;
            let mut queue = vec![entry];
            while let Some(node) = queue.pop() {
                for nb in self.neighbours(node, 0) {
                    if !std::mem::replace(&mut reached[nb as usize], true) {
                        queue.push(nb);
                    }
                }
            }
            let orphans: Vec<u32> = (0..n as u32).filter(|&x| !reached[x as usize]).collect();
            if orphans.is_empty() {
                return;
            }
            for x in orphans {
                let Some(near) = self
                    .descend(self.vector(x), self.params.ef_construction, |v| v != x)
                    .into_iter()
                    .next()
                else {
                    continue;
                };
                let host = near.node();
                self.add_links(host, 0, &[Near::new(near.dist(), x)]);
                if !self.neighbours(host, 0).any(|v| v == x) {
                    let _guard = self.locks[host as usize].lock();
                    let list = self.list(host, 0);
                    let count = list[0].load(Relaxed) as usize;
                    if count > 0 {
                        list[count].store(x, Relaxed);
                    }
                }
            }
        }
    }

    /// Append a node block with the given vector and level-0 list words (count first;
    /// missing words are zero).
    fn push_block(
        &mut self,
        vector: impl IntoIterator<Item = u32>,
        list: impl IntoIterator<Item = u32>,
    ) {
        let start = self.nodes.len();
        self.nodes
            .extend(std::iter::repeat_with(Line::zero).take(self.block_lines));
        let block = line_words(&self.nodes[start..]);
        for (word, bits) in block[self.vector_at..].iter().zip(vector) {
            word.store(bits, Relaxed);
        }
        for (word, bits) in block[..self.vector_at].iter().zip(list) {
            word.store(bits, Relaxed);
        }
    }

    /// Connect an allocated node into the graph (Algorithm 1 of the paper).
    fn link(&self, node: u32) {
        let q = self.vector(node);
        let level = self.levels[node as usize] as usize;
        let current = *self.entry.read();
        let (ep, top) = match current {
            Some(e) => e,
            None => {
                let mut entry = self.entry.write();
                match *entry {
                    Some(e) => e,
                    None => {
                        *entry = Some((node, level));
                        return;
                    }
                }
            }
        };
        let mut cur = Near::new(self.dist(q, ep), ep);
        for lc in (level + 1..=top).rev() {
            cur = self.greedy(q, cur, lc);
        }
        // Search top-down, but link bottom-up: other threads can reach this node at a
        // level only once every level below is linked, so no search descends into a node
        // whose level-0 list is still empty (which would strand that search there).
        let mut entries = vec![cur];
        let mut chosen_per_level = Vec::with_capacity(level.min(top) + 1);
        for lc in (0..=level.min(top)).rev() {
            let mut found =
                self.search_layer(q, &entries, self.params.ef_construction, lc, |_| true);
            found.retain(|c| c.node() != node);
            chosen_per_level.push(self.select(&found, self.params.m));
            if !found.is_empty() {
                entries = found;
            }
        }
        for (lc, chosen) in chosen_per_level.iter().rev().enumerate() {
            self.add_links(node, lc, chosen);
            for c in chosen {
                self.add_links(c.node(), lc, &[Near::new(c.dist(), node)]);
            }
        }
        if level > top {
            let mut entry = self.entry.write();
            if entry.is_none_or(|(_, top)| level > top) {
                *entry = Some((node, level));
            }
        }
    }

    /// Add `new` (distances measured from `owner`) to the list of `owner` at `level`,
    /// pruning with the heuristic when the list overflows.
    fn add_links(&self, owner: u32, level: usize, new: &[Near]) {
        let cap = self.cap(level);
        let _guard = self.locks[owner as usize].lock();
        let mut merged: Vec<u32> = self.neighbours(owner, level).collect();
        for n in new {
            if n.node() != owner && !merged.contains(&n.node()) {
                merged.push(n.node());
            }
        }
        if merged.len() > cap {
            let base = self.vector(owner);
            let mut scored: Vec<Near> = merged
                .iter()
                .map(|&node| Near::new(self.dist(base, node), node))
                .collect();
            scored.sort_unstable();
            merged = self
                .select(&scored, cap)
                .into_iter()
                .map(|n| n.node())
                .collect();
        }
        self.write_list(owner, level, &merged);
    }

    /// Heuristic neighbour selection (Algorithm 4, no extension, no pruned refill):
    /// keep a candidate only if it is closer to the base than to every one kept so far.
    /// `sorted` is ordered by distance to the base.
    fn select(&self, sorted: &[Near], m: usize) -> Vec<Near> {
        if sorted.len() <= m {
            return sorted.to_vec();
        }
        let mut chosen: Vec<Near> = Vec::with_capacity(m);
        for &c in sorted {
            if chosen.len() == m {
                break;
            }
            let v = self.vector(c.node());
            if chosen.iter().all(|s| self.dist(v, s.node()) >= c.dist()) {
                chosen.push(c);
            }
        }
        chosen
    }

    /// Greedy walk to the closest node reachable at `level`.
    fn greedy(&self, q: &[f32], mut cur: Near, level: usize) -> Near {
        loop {
            let mut moved = false;
            for node in self.neighbours(cur.node(), level) {
                let dist = self.dist(q, node);
                if dist < cur.dist() {
                    cur = Near::new(dist, node);
                    moved = true;
                }
            }
            if !moved {
                return cur;
            }
        }
    }

    /// Best-first search of one level (Algorithm 2): up to `ef` accepted nodes closest to
    /// `q`, nearest first. Rejected nodes are still traversed.
    fn search_layer(
        &self,
        q: &[f32],
        entries: &[Near],
        ef: usize,
        level: usize,
        accept: impl Fn(u32) -> bool,
    ) -> Vec<Near> {
        SCRATCH.with_borrow_mut(|scratch| {
            let Scratch {
                visited,
                candidates,
                fresh,
            } = scratch;
            visited.start(self.ids.len());
            candidates.clear();
            let mut results: BinaryHeap<Near> = BinaryHeap::with_capacity(ef);
            let offer = |results: &mut BinaryHeap<Near>, n: Near| {
                if accept(n.node()) {
                    results.push(n);
                    if results.len() > ef {
                        results.pop();
                    }
                }
            };
            for &e in entries {
                if visited.insert(e.node()) {
                    candidates.push(Reverse(e));
                    offer(&mut results, e);
                }
            }
            while let Some(Reverse(c)) = candidates.pop() {
                let full = results.len() >= ef;
                let worst = results.peek().map_or(f32::INFINITY, |w| w.dist());
                if full && c.dist() > worst {
                    break;
                }
                // Mark and prefetch the unvisited neighbours first, then score them.
                fresh.clear();
                for node in self.neighbours(c.node(), level) {
                    if visited.insert(node) {
                        simd::prefetch(self.vector(node), PREFETCH_LINES);
                        fresh.push(node);
                    }
                }
                for &node in fresh.iter() {
                    let dist = self.dist(q, node);
                    let bound = if results.len() >= ef {
                        results.peek().map_or(f32::INFINITY, |w| w.dist())
                    } else {
                        f32::INFINITY
                    };
                    if dist < bound {
                        let n = Near::new(dist, node);
                        candidates.push(Reverse(n));
                        offer(&mut results, n);
                    }
                }
                // The next node to expand is known now: fetch its link list meanwhile.
                if let Some(Reverse(next)) = candidates.peek() {
                    simd::prefetch(self.list(next.node(), level), 1);
                }
            }
            results.into_sorted_vec()
        })
    }

    /// Greedy descent to level 0, then a layer search there: up to `ef` accepted nodes,
    /// nearest first.
    fn descend(&self, q: &[f32], ef: usize, accept: impl Fn(u32) -> bool) -> Vec<Near> {
        let Some((ep, top)) = *self.entry.read() else {
            return Vec::new();
        };
        let mut cur = Near::new(self.dist(q, ep), ep);
        for level in (1..=top).rev() {
            cur = self.greedy(q, cur, level);
        }
        self.search_layer(q, &[cur], ef, 0, accept)
    }

    /// Descend the graph and return exactly scored accepted nodes (at most `ef`).
    fn search_graph(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        accept: impl Fn(u32) -> bool,
    ) -> Vec<(f32, TemplateId)> {
        let ef = ef.max(k).min(self.ids.len());
        // The layer search already computed each distance as -dot: negate it back, exactly,
        // rather than paying `ef` more dot products per query.
        self.descend(q, ef, accept)
            .into_iter()
            .map(|n| (-n.dist(), self.ids[n.node() as usize]))
            .collect()
    }

    pub(crate) fn decode(file: &IndexFile) -> Result<Self, IndexError> {
        let mut r = file.body(Kind::Hnsw)?;
        let dim = r.u32("dimension")? as usize;
        let params = HnswParams {
            m: r.u32("m")? as usize,
            ef_construction: r.u32("ef_construction")? as usize,
            ef_search: r.u32("ef_search")? as usize,
            seed: r.u64("seed")?,
        };
        crate::check_dimension(dim).map_err(|e| r.corrupt(e.to_string()))?;
        params.validate().map_err(|e| r.corrupt(e.to_string()))?;
        let mut index = Self::empty(dim, params);
        index.rng = r.u64("generator state")?;
        let ep = r.u32("entry point")?;
        let top = r.u32("top level")? as usize;
        let n = r.len("node count", NO_NODE as usize - 1)?;
        let ids = r.u64s(n, "ids")?;
        let levels = r.u8s(n, "levels")?;
        let deleted = r.u8s(n, "tombstones")?;
        let vectors = r.unit_rows(n, dim, "vectors")?;
        let stride0 = 1 + 2 * params.m;
        let links0 = r.u32s(n.saturating_mul(stride0), "level-0 links")?;
        let mut upper = Vec::with_capacity(n);
        for &level in &levels {
            let level = usize::from(level);
            if level > MAX_LEVEL {
                return Err(r.corrupt(format!("level {level} exceeds {MAX_LEVEL}")));
            }
            upper.push(if level > 0 {
                let list = r.u32s(level * (1 + params.m), "upper links")?;
                Some(
                    list.into_iter()
                        .map(AtomicU32::new)
                        .collect::<Box<[AtomicU32]>>(),
                )
            } else {
                None
            });
        }
        r.finish()?;

        index.ids = ids.into_iter().map(TemplateId).collect();
        index.deleted = deleted
            .iter()
            .map(|&d| match d {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(file.corrupt("tombstone flag is neither 0 nor 1")),
            })
            .collect::<Result<_, _>>()?;
        index.deleted_count = index.deleted.iter().filter(|&&d| d).count();
        index.levels = levels;
        index.nodes.reserve_exact(n * index.block_lines);
        simd::advise_huge_pages(&index.nodes);
        for (row, list) in vectors.chunks_exact(dim).zip(links0.chunks_exact(stride0)) {
            index.push_block(row.iter().map(|v| v.to_bits()), list.iter().copied());
        }
        index.upper = upper;
        index.locks = (0..n).map(|_| Mutex::new(())).collect();
        *index.entry.get_mut() = match (n, ep) {
            (0, NO_NODE) => None,
            (0, _) => return Err(file.corrupt("entry point in an empty graph")),
            (_, ep) if (ep as usize) < n && usize::from(index.levels[ep as usize]) == top => {
                Some((ep, top))
            }
            _ => return Err(file.corrupt("entry point is not a top-level node")),
        };
        index
            .check_graph(top)
            .map_err(|reason| file.corrupt(reason))?;
        index.live.reserve(n - index.deleted_count);
        for node in 0..n {
            if !index.deleted[node] && index.live.insert(index.ids[node], node as u32).is_some() {
                return Err(file.corrupt(format!("duplicate live id {}", index.ids[node])));
            }
        }
        Ok(index)
    }

    /// Structural invariants of a loaded graph.
    fn check_graph(&self, top: usize) -> Result<(), String> {
        let n = self.ids.len();
        for node in 0..n as u32 {
            let level = usize::from(self.levels[node as usize]);
            if level > top {
                return Err(format!("node {node} is above the top level {top}"));
            }
            for lc in 0..=level {
                let list = self.list(node, lc);
                let count = list[0].load(Relaxed) as usize;
                if count > self.cap(lc) {
                    return Err(format!("node {node} has {count} links at level {lc}"));
                }
                for nb in self.neighbours(node, lc) {
                    if nb as usize >= n || nb == node || usize::from(self.levels[nb as usize]) < lc
                    {
                        return Err(format!(
                            "node {node} has an invalid link {nb} at level {lc}"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

impl VectorIndex for HnswIndex {
    fn dimension(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.live.len()
    }

    fn contains(&self, id: TemplateId) -> bool {
        self.live.contains_key(&id)
    }

    fn insert(&mut self, id: TemplateId, vector: &Embedding) -> Result<(), IndexError> {
        crate::check_vector(self.dim, vector)?;
        if self.contains(id) {
            return Err(IndexError::DuplicateId(id));
        }
        self.check_capacity(1)?;
        self.add(&[(id, vector.as_slice())]);
        Ok(())
    }

    fn insert_batch(&mut self, items: &[(TemplateId, Embedding)]) -> Result<(), IndexError> {
        crate::check_batch(self.dim, items, |id| self.contains(id))?;
        if self.deleted_count as f64 > COMPACT_RATIO * self.ids.len() as f64 {
            self.compact();
        }
        self.check_capacity(items.len())?;
        let refs: Vec<(TemplateId, &[f32])> =
            items.iter().map(|(id, e)| (*id, e.as_slice())).collect();
        self.add(&refs);
        Ok(())
    }

    fn remove(&mut self, id: TemplateId) -> Result<(), IndexError> {
        let node = self.live.remove(&id).ok_or(IndexError::UnknownId(id))?;
        self.deleted[node as usize] = true;
        self.deleted_count += 1;
        Ok(())
    }

    fn search(
        &self,
        query: &Embedding,
        params: &SearchParams<'_>,
    ) -> Result<Vec<crate::Hit>, IndexError> {
        self.search_with_ef(query, params, self.params.ef_search)
    }

    fn save(&self, path: &Path) -> Result<(), IndexError> {
        let (ep, top) = self
            .entry
            .read()
            .map_or((NO_NODE, 0), |(ep, top)| (ep, top));
        let mut w = Writer::create(path, Kind::Hnsw)?;
        w.u32(self.dim as u32)?;
        w.u32(self.params.m as u32)?;
        w.u32(self.params.ef_construction as u32)?;
        w.u32(self.params.ef_search as u32)?;
        w.u64(self.params.seed)?;
        w.u64(self.rng)?;
        w.u32(ep)?;
        w.u32(top as u32)?;
        w.len(self.ids.len())?;
        w.u64s(self.ids.iter().map(|id| id.0))?;
        w.bytes(&self.levels)?;
        w.bytes(
            &self
                .deleted
                .iter()
                .map(|&d| u8::from(d))
                .collect::<Vec<u8>>(),
        )?;
        for node in 0..self.ids.len() as u32 {
            w.u32s(self.vector(node).iter().map(|v| v.to_bits()))?;
        }
        for node in 0..self.ids.len() as u32 {
            w.u32s(self.list(node, 0).iter().map(|a| a.load(Relaxed)))?;
        }
        for list in self.upper.iter().flatten() {
            w.u32s(list.iter().map(|a| a.load(Relaxed)))?;
        }
        w.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::Near;

    #[test]
    fn packed_near_orders_like_total_cmp_then_node() {
        let dists = [
            f32::NEG_INFINITY,
            -1.0,
            -0.5,
            -f32::MIN_POSITIVE,
            -0.0,
            0.0,
            f32::MIN_POSITIVE,
            1e-30,
            0.5,
            1.0,
            f32::INFINITY,
        ];
        for &a in &dists {
            assert_eq!(Near::new(a, 7).dist().to_bits(), a.to_bits());
            assert_eq!(Near::new(a, 7).node(), 7);
            for &b in &dists {
                for (na, nb) in [(1u32, 2u32), (2, 1), (5, 5), (0, u32::MAX)] {
                    let want = a.total_cmp(&b).then(na.cmp(&nb));
                    assert_eq!(
                        Near::new(a, na).cmp(&Near::new(b, nb)),
                        want,
                        "{a} {na} vs {b} {nb}"
                    );
                }
            }
        }
    }
}
