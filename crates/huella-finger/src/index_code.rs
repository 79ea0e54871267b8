//! The 1:N pre-filter: a fixed-length per-finger index code, then cylinder sketches.
//!
//! Each minutia's cylinder (see [`crate::Matcher`]) is already invariant to rotation and
//! translation. Following the locality-sensitive hashing of cylinders in R. Cappelli,
//! M. Ferrara, D. Maltoni, "Fingerprint Indexing Based on Minutia Cylinder-Code", IEEE
//! TPAMI 33(5), 2011, every cylinder is hashed by `hashes` functions, each reading
//! `bits_per_hash` fixed bits of the cylinder (each bit the OR of a disc of cells
//! in one direction layer, centred near the cylinder's centre, where cells are valid in
//! nearly every cylinder); the bucket it falls in is set in that function's bitmap. The
//! code of a finger is the concatenation of the bitmaps: `hashes x 2^bits_per_hash`
//! bits, whatever the number of minutiae. Two impressions of one finger share many
//! buckets; two fingers share few. The similarity of two codes is their cosine
//! (shared bits over the geometric mean of their bit counts), so that fingers with many
//! minutiae do not match everything. (Among other measures of the same counts, in a 9%
//! short list of 100,000 distinct distractors, with the earlier 32x7 code of radius-2
//! cells: cosine 88.35%, Jaccard 86.74%, shared bits above chance over their deviation
//! 85.31%, shared over the larger count 78.84%; with this code, the shared bits over
//! the product of the counts to the power 0.4 / 0.6 instead of 0.5: 91.07% / 93.08%
//! against 92.86%, within the noise of one draw.)
//!
//! The code loses most of what tells mates apart: hashed, a cylinder either falls in
//! the mate's bucket or not. A [`FingerSketch`] keeps 128 pooled bits, the direction
//! and the position of every cylinder, compared like the matcher's local similarity
//! sort, each probe cylinder's best match weighed by how well it agrees in geometry with
//! the other best matches. Ranking FVC2002 mates among 1,500 distinct distractors
//! (`examples/index_1n.rs --matcher-ceiling`), the sketches keep 94.64% of mates in
//! their top 1% and 97.05% in their top 9% (90.62% and 95.13% without the geometry), the
//! full matcher 96.74% and 99.02%; the code, among 100,000, keeps 81.38% and 92.86%.
//! (The matcher's local similarity sort without its relaxation, measured once with a
//! patch not kept: 95.18% and 98.12%.)
//!
//! [`CodeIndex`] scans a contiguous array of codes with hardware popcount for a long
//! list, compares the long list's sketches (about 1 us a finger on one core, against
//! about 9 us for the matcher) and returns the short list that the full matcher
//! re-scores. Against a million fingers, within 1 s on one core, the short list keeps
//! the mate for 95.85% of FVC2002 genuine pairs, against about 93% for the code alone
//! (BENCHMARKS.md).

use crate::matcher::{Cylinder, ND, NS};
use crate::{FingerError, PreparedFinger};
use std::ops::Range;

/// Parameters of the index code.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexCodeParams {
    /// Hash functions (bitmaps per code).
    pub hashes: usize,
    /// Cells read by each hash function; a bitmap has `2^bits_per_hash` bits (6..=12).
    pub bits_per_hash: u32,
    /// Cells are drawn within this fraction of the cylinder radius.
    pub inner_radius: f32,
    /// Seed of the cell draw: codes made with different seeds are not comparable.
    pub seed: u64,
}

impl Default for IndexCodeParams {
    fn default() -> Self {
        Self {
            // 8,192 bits (1 KiB) a finger. Share of FVC2002 mates kept in a 9% short list
            // of a 100,000-code gallery of distinct distractors (`examples/index_1n.rs
            // --gallery 100000 --shortlists 9000`, pooled cells of radius 4): 32x7
            // 90.80%, 64x6 88.62%, 64x7 91.07%, 128x6 89.15%, 16x9 91.83%, 32x8 92.14%
            // (92.86% once the empty bucket is left out, see `FingerCoder::code`),
            // and at twice the scan time 64x8 92.37% and 32x9 92.68%.
            hashes: 32,
            bits_per_hash: 8,
            // Same measure: 0.4 86.47%, 0.6 90.58%, 0.8 90.80%, 1.0 89.73% (32x7).
            inner_radius: 0.8,
            seed: 0x4875_656c_6c61,
        }
    }
}

/// Radius, in cells, of the disc of cells that one hash bit pools (see [`Cell`]).
/// Single cells are set in few cylinders, so most cylinders fell in the all-zero bucket
/// of every hash function; pooling spreads the buckets and tolerates the small
/// displacements between impressions. Share of FVC2002 mates kept in a 1% / 9% short
/// list of a 100,000-code gallery of distinct distractors (32x7 codes): radius 1 73.17%
/// / 86.61%, 2 76.52% / 88.35%, 3 79.29% / 89.64%, 4 79.46% / 90.80%, 5 79.11% /
/// 90.40%, 6 77.23% / 89.69%, 8 69.38% / 86.65%. (Radius 2 had been chosen on a
/// gallery of noisy copies of 20,000 distractor codes, which are easier to tell from a
/// mate than distinct distractors and favoured finer cells.)
const POOL_RADIUS: f32 = 4.0;

/// One hash bit: set when any cell of a disc of cells (radius [`POOL_RADIUS`]) in one
/// direction layer is set; the disc's centre cell must be valid.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cell {
    layer: usize,
    group: [u64; NS * NS / 64],
    word: usize,
    mask: u64,
}

impl Cell {
    /// The bit pooling the cells within `radius` of cell `bit` in `layer`.
    fn new(bit: usize, layer: usize, radius: f32) -> Self {
        let mut group = [0u64; NS * NS / 64];
        let (ci, cj) = ((bit / NS) as f32, (bit % NS) as f32);
        for b in 0..NS * NS {
            let (i, j) = ((b / NS) as f32, (b % NS) as f32);
            if (i - ci).hypot(j - cj) <= radius {
                group[b / 64] |= 1 << (b % 64);
            }
        }
        Self {
            layer,
            group,
            word: bit / 64,
            mask: 1 << (bit % 64),
        }
    }

    /// The bit's value in `cyl`; `None` when its centre cell is not valid there.
    fn read(&self, cyl: &Cylinder) -> Option<bool> {
        if cyl.valid[self.word] & self.mask == 0 {
            return None;
        }
        let layer = &cyl.values[self.layer];
        Some((0..self.group.len()).any(|w| layer[w] & self.group[w] != 0))
    }
}

/// Makes index codes. Build once; codes from coders with equal parameters are comparable.
#[derive(Debug, Clone)]
pub struct FingerCoder {
    params: IndexCodeParams,
    cells: Vec<Vec<Cell>>,
    sketch_cells: Vec<Cell>,
}

/// A finger's index code: `hashes` bitmaps of `2^bits_per_hash` bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerCode {
    words: Box<[u64]>,
}

impl FingerCode {
    /// A code from its words (as stored by [`FingerCode::as_words`]); an index rejects
    /// codes whose length differs from its coder's.
    pub fn from_words(words: Vec<u64>) -> Self {
        Self {
            words: words.into_boxed_slice(),
        }
    }

    /// The code's 64-bit words.
    pub fn as_words(&self) -> &[u64] {
        &self.words
    }

    /// Number of bits set.
    pub fn ones(&self) -> u32 {
        self.words.iter().map(|w| w.count_ones()).sum()
    }
}

/// SplitMix64: a small deterministic generator for the cell draw.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl FingerCoder {
    /// A coder; [`FingerError::BadInput`] for 0 hashes, more than 256, or
    /// `bits_per_hash` outside 6..=12.
    pub fn new(params: IndexCodeParams) -> Result<Self, FingerError> {
        if !(1..=256).contains(&params.hashes) || !(6..=12).contains(&params.bits_per_hash) {
            return Err(FingerError::BadInput(format!(
                "index code needs 1-256 hashes and 6-12 bits per hash, got {} and {}",
                params.hashes, params.bits_per_hash
            )));
        }
        if !(params.inner_radius > 0.0 && params.inner_radius <= 1.0) {
            return Err(FingerError::BadInput(
                "inner radius must be in (0, 1]".into(),
            ));
        }
        let half = (NS as f32 - 1.0) / 2.0;
        let inner: Vec<usize> = (0..NS * NS)
            .filter(|&b| {
                let (i, j) = ((b / NS) as f32 - half, (b % NS) as f32 - half);
                i.hypot(j) <= params.inner_radius * NS as f32 / 2.0
            })
            .collect();
        let mut state = params.seed;
        let mut draw = |radius: f32| {
            let bit = inner[(splitmix(&mut state) % inner.len() as u64) as usize];
            let layer = (splitmix(&mut state) % ND as u64) as usize;
            Cell::new(bit, layer, radius)
        };
        let cells = (0..params.hashes)
            .map(|_| {
                (0..params.bits_per_hash)
                    .map(|_| draw(POOL_RADIUS))
                    .collect()
            })
            .collect();
        // Drawn after the hash cells, which therefore stay those of earlier versions.
        let sketch_cells = (0..SKETCH_BITS).map(|_| draw(SKETCH_POOL_RADIUS)).collect();
        Ok(Self {
            params,
            cells,
            sketch_cells,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &IndexCodeParams {
        &self.params
    }

    /// 64-bit words per code.
    pub fn words(&self) -> usize {
        (self.params.hashes << self.params.bits_per_hash) / 64
    }

    /// The code of a prepared finger. A cylinder is left out of a hash function when one
    /// of the cells it reads lies outside the cylinder's valid area, or when none of
    /// them is set: that empty bucket says only that a region holds no neighbour, it is
    /// set in most codes, and leaving it out kept more mates (9% short list as above:
    /// 92.86% against 92.14%; leaving out the all-set bucket as well gained nothing).
    pub fn code(&self, finger: &PreparedFinger) -> FingerCode {
        let buckets = 1usize << self.params.bits_per_hash;
        let mut words = vec![0u64; self.words()].into_boxed_slice();
        for cyl in finger.cylinders() {
            for (h, cells) in self.cells.iter().enumerate() {
                if let Some(bucket) = hash(cyl, cells).filter(|&b| b != 0) {
                    let bit = h * buckets + bucket;
                    words[bit / 64] |= 1 << (bit % 64);
                }
            }
        }
        FingerCode { words }
    }
}

fn hash(cyl: &Cylinder, cells: &[Cell]) -> Option<usize> {
    cells.iter().try_fold(0usize, |bucket, c| {
        Some(bucket << 1 | usize::from(c.read(cyl)?))
    })
}

/// Cosine similarity of two codes of the same coder, `[0, 1]`; 0 when either is empty.
pub fn code_similarity(a: &FingerCode, b: &FingerCode) -> f32 {
    let shared: u32 = a
        .words
        .iter()
        .zip(b.words.iter())
        .map(|(x, y)| (x & y).count_ones())
        .sum();
    cosine(shared, a.ones(), b.ones())
}

fn cosine(shared: u32, a: u32, b: u32) -> f32 {
    if a == 0 || b == 0 {
        0.0
    } else {
        shared as f32 / ((a as f32) * (b as f32)).sqrt()
    }
}

/// Pooled bits in a cylinder's sketch.
const SKETCH_BITS: usize = 128;
/// Radius, in cells, of the disc each sketch bit pools (see [`Cell`]): finer than the
/// code's, as a sketch is compared whole rather than hashed. Chosen with a first form of
/// the similarity that paired cylinders one to one and masked invalid cells: ranking
/// FVC2002 mates among 1,500 distinct distractors, 128-bit sketches pooling radius 1 /
/// 2 / 3 kept 91.56 / 91.96 / 89.78% of mates in their top 1%, and 64-bit sketches of
/// radius 2 89.06%. Without the masks, 91.96%; without the one-to-one pairing (each
/// probe cylinder's best, as here), 90.62%, and 96.21% in the top 9% against 96.12%:
/// the pairing is not worth its cost in a pre-filter. (That experiment drew its cells
/// apart from the code's; the cells drawn here keep 90.62% and 95.13%.)
const SKETCH_POOL_RADIUS: f32 = 2.0;
/// The sketch similarity of two fingers is the mean of the best this many cylinders'
/// matches, weighted by their geometric agreement (see [`consistent_mean`]). Before the
/// agreement was weighed, with the one-to-one form, 5 / 8 / 12 kept 90.49 / 91.96 /
/// 91.92%, and without it 12 kept 91.07%, so 8 was used; with it, among 1,500
/// distinct distractors in the top 1% / 5% / 9%: 4 93.04 / 95.80 / 96.61%, 5 93.17 /
/// 95.76 / 96.70%, 6 93.21 / 95.67 / 96.65%, 8 92.90 / 95.31 / 96.34%, 10 (at 10 px)
/// 91.70 / 94.69 / 95.71%.
const SKETCH_PAIRS: usize = 6;
/// Cylinders compared at once: one 256-bit vector of 32-bit lanes.
const SKETCH_LANES: usize = 8;
/// 32-bit words of a sketch.
const SKETCH_WORDS: usize = SKETCH_BITS / 32;
/// Floats stored per sketched cylinder: the root of its bit count, the cosine and the
/// sine of its direction, and its minutia's position.
const SKETCH_FLOATS: usize = 5;
/// Probe cylinders whose best matches are checked against each other (see
/// [`consistent_mean`]). Chosen by ranking FVC2002 mates among 1,500 distinct
/// distractors (`examples/index_1n.rs --matcher-ceiling`), shares kept in the top 1% /
/// 5% / 9% with (rows, tolerance, need, pairs): without the check 90.62 / 93.84 /
/// 95.13%; (16, 10, 4, 8) 92.28 / 95.18 / 95.89%; (16, 12, 4, 8) 91.74 / 95.27 / 95.94%;
/// (16, 6, 4, 8) 92.68 / 94.69 / 95.80%; (16, 7, 4, 8) 92.72 / 95.36 / 96.25%; (16, 8,
/// 4, 8) 92.90 / 95.31 / 96.34%; (16, 8, 3, 8) 92.41 / 95.58 / 96.21%; (16, 8, 5, 8)
/// 92.72 / 95.00 / 96.16%; (24, 10, 4, 8) 92.54 / 95.31 / 96.43%; (16, 8, 4, 6), kept,
/// 93.21 / 95.67 / 96.65%. Then with the turns compared too (see [`GEO_TURN_COS`]),
/// (16, 8, 4, 6) and 30 / 20 / 15 degrees: 93.88 / 96.25 / 96.83%, **94.64 / 96.47 /
/// 97.05%** (kept), 94.38 / 96.29 / 97.05%; 20 degrees with (16, 8, 3, 6) 94.20 /
/// 96.47 / 97.23%, (16, 10, 4, 6) 94.24 / 96.29 / 97.23%, (16, 8, 4, 8) 94.33 / 96.43 /
/// 97.10%, (20, 8, 4, 6) 94.78 / 96.65 / 97.19%. Among the real FVC non-mates, without
/// the check 86.03 / 91.25 / 92.99%, with distances only 91.25 / 94.38 / 95.45%, with
/// the turns too 92.90 / 95.62 / 96.52%.
const GEO_ROWS: usize = 16;
/// Pixels (500 ppi) by which the distance of two matches may differ between the fingers.
const GEO_TOLERANCE: f32 = 8.0;
/// Agreeing matches a match needs to count in full.
const GEO_NEED: u32 = 4;
/// Cosine of the largest difference (20 degrees) between the turns of two agreeing
/// matches (the turn of a match: from the probe minutia's direction to the gallery
/// minutia's; a mate's matches all turn alike, by the rotation between the
/// impressions).
const GEO_TURN_COS: f32 = 0.9397;
/// Low bits of a packed match (see [`least_ratio_portable`]) that hold the gallery
/// cylinder.
const MATCH_BITS: u32 = 8;
/// The low [`MATCH_BITS`] set: a packed match's gallery cylinder, or a row key's probe
/// cylinder (see `similarity_by`).
const MATCH_MASK: u32 = (1 << MATCH_BITS) - 1;
/// A packed match of a probe cylinder with no gallery cylinder within 90 degrees.
const NO_MATCH: u32 = u32::MAX;
const _: () = assert!(
    crate::MAX_MINUTIAE.div_ceil(SKETCH_LANES) * SKETCH_LANES <= 1 << MATCH_BITS,
    "a padded gallery cylinder's index fits the packed match"
);

/// A finger's cylinder sketches, the index's second stage: for every cylinder, 128
/// pooled bits of it (read like the hash bits of the code, from finer discs), its
/// minutia's direction and position. Two fingers are compared like the matcher's local
/// similarity sort with a cheap stand-in for its relaxation, and without its one-to-one
/// pairing: every cylinder of the probe finds its best match among the other finger's
/// cylinders within 90 degrees of its direction (by the matcher's similarity of bit
/// cylinders, `1 - √|a⊕b| / (√|a| + √|b|)`); the best 16 matches are weighted by how
/// many of the others lie at the same distance from them in both fingers and turn
/// alike, and the score is the mean of the best six so weighted. It ranks mates far better than the code
/// (see BENCHMARKS.md) at a fraction of the matcher's cost, so the index scans the codes
/// for a long list and the sketches cut it to the short list that the matcher
/// re-scores.
#[derive(Debug, Clone)]
pub struct FingerSketch {
    /// Number of cylinders sketched.
    len: usize,
    /// Word `w` of every cylinder, then word `w + 1`, ..., each run padded to a multiple
    /// of [`SKETCH_LANES`] cylinders.
    words: Box<[u32]>,
    /// The square roots of the cylinders' bit counts, then the cosines, then the sines
    /// of their directions, then their minutiae's x, then their y, padded likewise
    /// (padding is NaN, which no direction test passes; hence no `PartialEq`, as a
    /// padded sketch would not equal itself).
    floats: Box<[f32]>,
}

impl FingerSketch {
    /// Number of cylinders sketched.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no cylinder was sketched (such a sketch is similar to nothing).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap and inline memory held, bytes.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.words.len() * 4 + self.floats.len() * 4
    }

    fn view(&self) -> SketchView<'_> {
        SketchView {
            words: &self.words,
            floats: &self.floats,
        }
    }
}

/// A [`FingerSketch`]'s padded arrays, wherever they are held (an index keeps every
/// finger's in two arrays).
#[derive(Debug, Clone, Copy)]
struct SketchView<'a> {
    words: &'a [u32],
    floats: &'a [f32],
}

/// The arrays of a [`SketchView`], padded: word `w` of every cylinder, the roots of
/// their bit counts, the cosines and sines of their directions, their positions.
struct SketchParts<'a> {
    words: [&'a [u32]; SKETCH_WORDS],
    root: &'a [f32],
    cos: &'a [f32],
    sin: &'a [f32],
    x: &'a [f32],
    y: &'a [f32],
}

impl<'a> SketchView<'a> {
    fn parts(self) -> SketchParts<'a> {
        let n = self.floats.len() / SKETCH_FLOATS;
        let run = |k: usize| &self.floats[k * n..(k + 1) * n];
        SketchParts {
            words: std::array::from_fn(|w| &self.words[w * n..(w + 1) * n]),
            root: run(0),
            cos: run(1),
            sin: run(2),
            x: run(3),
            y: run(4),
        }
    }
}

/// A finger as the index holds it.
#[derive(Debug, Clone)]
pub struct FingerKey {
    /// The fixed-length code, scanned first.
    pub code: FingerCode,
    /// The cylinder sketches, compared on the codes' long list.
    pub sketch: FingerSketch,
}

impl FingerCoder {
    /// The cylinder sketches of a prepared finger; a cylinder whose sketch bits are all
    /// 0 (no neighbour near any of them) is left out, as it tells nothing.
    pub fn sketch(&self, finger: &PreparedFinger) -> FingerSketch {
        let mut sketches: Vec<([u32; SKETCH_WORDS], f32, (f32, f32))> = Vec::new();
        let cylinders = finger.cylinders().iter().zip(finger.cylinder_angles());
        for (c, (cyl, &angle)) in cylinders.enumerate() {
            let mut w = [0u32; SKETCH_WORDS];
            for (k, cell) in self.sketch_cells.iter().enumerate() {
                if cell.read(cyl) == Some(true) {
                    w[k / 32] |= 1 << (k % 32);
                }
            }
            if w != [0; SKETCH_WORDS] {
                sketches.push((w, angle, finger.cylinder_position(c)));
            }
        }
        let len = sketches.len();
        let n = len.div_ceil(SKETCH_LANES) * SKETCH_LANES;
        let mut words = vec![0u32; SKETCH_WORDS * n];
        let mut floats = vec![f32::NAN; SKETCH_FLOATS * n];
        for (j, (w, angle, (x, y))) in sketches.iter().enumerate() {
            for (k, &word) in w.iter().enumerate() {
                words[k * n + j] = word;
            }
            let ones: u32 = w.iter().map(|x| x.count_ones()).sum();
            floats[j] = (ones as f32).sqrt();
            (floats[2 * n + j], floats[n + j]) = angle.sin_cos();
            (floats[3 * n + j], floats[4 * n + j]) = (*x, *y);
        }
        FingerSketch {
            len,
            words: words.into_boxed_slice(),
            floats: floats.into_boxed_slice(),
        }
    }

    /// The code and the sketches of a prepared finger.
    pub fn key(&self, finger: &PreparedFinger) -> FingerKey {
        FingerKey {
            code: self.code(finger),
            sketch: self.sketch(finger),
        }
    }
}

/// Sketch similarity of a probe to a gallery finger, `[0, 1]` (see [`FingerSketch`];
/// not symmetric: the probe's cylinders seek theirs in the gallery finger's).
pub fn sketch_similarity(probe: &FingerSketch, gallery: &FingerSketch) -> f32 {
    similarity(probe, gallery.view())
}

fn similarity(probe: &FingerSketch, gallery: SketchView) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::matcher::vpopcnt_detected() {
            // SAFETY: `sketch_similarity_avx2::<true>` needs the avx2, avx512vpopcntdq
            // and avx512vl instructions, which the CPU was just found to have.
            #[allow(unsafe_code)]
            return unsafe { sketch_similarity_avx2::<true>(probe, gallery) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `sketch_similarity_avx2::<false>` needs the avx2 instructions,
            // which the CPU was just found to have.
            #[allow(unsafe_code)]
            return unsafe { sketch_similarity_avx2::<false>(probe, gallery) };
        }
    }
    sketch_similarity_portable(probe, gallery)
}

/// [`sketch_similarity_portable`] with the AVX2 kernel [`least_ratio_avx2`], counting
/// bits with `vpopcntd` when `VPOPCNT` (only called so where the CPU has it).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx2")]
unsafe fn sketch_similarity_avx2<const VPOPCNT: bool>(
    probe: &FingerSketch,
    gallery: SketchView,
) -> f32 {
    // SAFETY: this function has AVX2, which is all the kernel needs besides `vpopcntd`
    // with `VPOPCNT`, which the caller has checked.
    similarity_by(probe, gallery, |p, g, i| unsafe {
        least_ratio_avx2::<VPOPCNT>(p, g, i)
    })
}

#[inline(always)]
fn sketch_similarity_portable(probe: &FingerSketch, gallery: SketchView) -> f32 {
    similarity_by(probe, gallery, least_ratio_portable)
}

/// The sketch similarity, from a kernel that gives probe cylinder `i`'s best match among
/// the gallery's cylinders within 90 degrees, packed (see [`least_ratio_portable`]).
#[inline(always)]
fn similarity_by(
    probe: &FingerSketch,
    gallery: SketchView,
    least_ratio: impl Fn(&SketchParts, &SketchParts, usize) -> u32,
) -> f32 {
    let (p, g) = (probe.view().parts(), gallery.parts());
    // Each probe cylinder's match as a key that sorts best first: the packed match
    // (least ratio, then gallery cylinder), then the probe cylinder.
    let mut rows = [0u64; crate::MAX_MINUTIAE];
    let mut n = 0;
    for i in 0..probe.len {
        let packed = least_ratio(&p, &g, i);
        if packed != NO_MATCH {
            rows[n] = u64::from(packed) << MATCH_BITS | i as u64;
            n += 1;
        }
    }
    consistent_mean(&mut rows[..n], &p, &g)
}

/// The best [`GEO_ROWS`] probe cylinders' matches are checked against each other: a
/// match counts in full when at least [`GEO_NEED`] of the others agree with it, and in
/// proportion otherwise. Two matches agree when their distance is the same, within
/// [`GEO_TOLERANCE`], in both fingers, and they turn alike (within 20 degrees, see
/// [`GEO_TURN_COS`]): a stranger's best matches lie anywhere and turn any way, a mate's
/// lie where the probe's minutiae do and turn by the rotation between the impressions.
/// The score is the mean of the best [`SKETCH_PAIRS`] matches so weighted.
fn consistent_mean(rows: &mut [u64], p: &SketchParts, g: &SketchParts) -> f32 {
    if rows.len() > GEO_ROWS {
        rows.select_nth_unstable(GEO_ROWS - 1);
    }
    let rows = &rows[..rows.len().min(GEO_ROWS)];
    // The matches' similarities and positions (NaN past the last: they agree with none).
    let mut similarity = [0f32; GEO_ROWS];
    let [mut px, mut py, mut gx, mut gy] = [[f32::NAN; GEO_ROWS]; 4];
    // And the cosine and sine of the turn from the probe minutia to the gallery's.
    let [mut turn_cos, mut turn_sin] = [[f32::NAN; GEO_ROWS]; 2];
    for (r, &key) in rows.iter().enumerate() {
        let i = (key & u64::from(MATCH_MASK)) as usize;
        let packed = (key >> MATCH_BITS) as u32;
        let j = (packed & MATCH_MASK) as usize;
        similarity[r] = 1.0 - f32::from_bits(packed & !MATCH_MASK).sqrt();
        (px[r], py[r], gx[r], gy[r]) = (p.x[i], p.y[i], g.x[j], g.y[j]);
        turn_cos[r] = g.cos[j] * p.cos[i] + g.sin[j] * p.sin[i];
        turn_sin[r] = g.sin[j] * p.cos[i] - g.cos[j] * p.sin[i];
    }
    let length = |x: f32, y: f32| (x * x + y * y).sqrt();
    let mut weighted = [0f32; GEO_ROWS];
    for (a, w) in weighted.iter_mut().enumerate().take(rows.len()) {
        // Over all rows, so that the compiler vectorises it; a row agrees with itself.
        let agree = (0..GEO_ROWS)
            .map(|b| {
                let probe = length(px[a] - px[b], py[a] - py[b]);
                let gallery = length(gx[a] - gx[b], gy[a] - gy[b]);
                // The cosine of the difference of the two matches' turns.
                let turns = turn_cos[a] * turn_cos[b] + turn_sin[a] * turn_sin[b];
                // `&`, not `&&`: the short circuit kept the loop from vectorising, and
                // a sketch comparison took 1.8 us instead of 1.0 (100,000 gallery).
                u32::from((probe - gallery).abs() <= GEO_TOLERANCE)
                    & u32::from(turns >= GEO_TURN_COS)
            })
            .sum::<u32>()
            .saturating_sub(1);
        *w = similarity[a] * agree.min(GEO_NEED) as f32 / GEO_NEED as f32;
    }
    mean_of_best(&mut weighted[..rows.len()])
}

/// Probe cylinder `i`'s best match, lane by lane as the vector kernel does, packed into
/// one `u32` that orders like the match's quality: the ratio `|a⊕b| / (√|a| + √|b|)²`
/// (the similarity falls as it rises; a non-negative float, so its bits order like its
/// value) with its low [`MATCH_BITS`] replaced by the gallery cylinder's index, so that
/// one integer minimum finds both the least ratio and where it is (ties, and ratios
/// within 2^-15 of each other, by index). [`NO_MATCH`] when no gallery cylinder lies
/// within 90 degrees.
#[inline(always)]
fn least_ratio_portable(p: &SketchParts, g: &SketchParts, i: usize) -> u32 {
    let mut least = [NO_MATCH; SKETCH_LANES];
    for start in (0..g.root.len()).step_by(SKETCH_LANES) {
        for (l, least) in least.iter_mut().enumerate() {
            let j = start + l;
            let differ: u32 = (0..SKETCH_WORDS)
                .map(|w| (p.words[w][i] ^ g.words[w][j]).count_ones())
                .sum();
            let norm = p.root[i] + g.root[j];
            let ratio = differ as f32 / (norm * norm);
            let packed = ratio.to_bits() & !MATCH_MASK | j as u32;
            // Directions more than 90 degrees apart (or padding): not a match.
            if p.cos[i] * g.cos[j] + p.sin[i] * g.sin[j] >= 0.0 {
                *least = (*least).min(packed);
            }
        }
    }
    least.into_iter().fold(NO_MATCH, u32::min)
}

/// [`least_ratio_portable`] on 256-bit vectors: eight cylinders at a time, the bits of
/// their four words counted with `vpopcntd` (`VPOPCNT`), or else per byte with the
/// matcher's nibble look-up and summed before one widening to 32-bit lanes (the
/// compiler's own vectorisation of the portable code widened every word's counts). The
/// same operations on the same values in each lane, so the same result to the bit.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn least_ratio_avx2<const VPOPCNT: bool>(p: &SketchParts, g: &SketchParts, i: usize) -> u32 {
    use crate::matcher::avx2::{byte_counts, dword_counts};
    use std::arch::x86_64::*;
    // SAFETY (whole body): AVX2 is enabled on this function; every load reads 8 lanes
    // at `start`, a multiple of 8 below the padded length of each array.
    unsafe {
        let (ones8, ones16) = (_mm256_set1_epi8(1), _mm256_set1_epi16(1));
        let zero = _mm256_setzero_ps();
        let never = _mm256_set1_epi32(NO_MATCH as i32);
        let ratio_bits = _mm256_set1_epi32(!MATCH_MASK as i32);
        let probe: [__m256i; SKETCH_WORDS] =
            std::array::from_fn(|w| _mm256_set1_epi32(p.words[w][i] as i32));
        let (pr, pc, ps) = (
            _mm256_set1_ps(p.root[i]),
            _mm256_set1_ps(p.cos[i]),
            _mm256_set1_ps(p.sin[i]),
        );
        let mut least = never;
        let mut index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let step = _mm256_set1_epi32(SKETCH_LANES as i32);
        for start in (0..g.root.len()).step_by(SKETCH_LANES) {
            let mut counts = _mm256_setzero_si256();
            for (word, probe) in g.words.iter().zip(probe) {
                let x =
                    _mm256_xor_si256(_mm256_loadu_si256(word.as_ptr().add(start).cast()), probe);
                counts = if VPOPCNT {
                    _mm256_add_epi32(counts, dword_counts(x))
                } else {
                    // At most 32 a byte over the four words.
                    _mm256_add_epi8(counts, byte_counts(x))
                };
            }
            let differ = if VPOPCNT {
                counts
            } else {
                _mm256_madd_epi16(_mm256_maddubs_epi16(counts, ones8), ones16)
            };
            let norm = _mm256_add_ps(pr, _mm256_loadu_ps(g.root.as_ptr().add(start)));
            let ratio = _mm256_div_ps(_mm256_cvtepi32_ps(differ), _mm256_mul_ps(norm, norm));
            let packed = _mm256_or_si256(
                _mm256_and_si256(_mm256_castps_si256(ratio), ratio_bits),
                index,
            );
            let dot = _mm256_add_ps(
                _mm256_mul_ps(pc, _mm256_loadu_ps(g.cos.as_ptr().add(start))),
                _mm256_mul_ps(ps, _mm256_loadu_ps(g.sin.as_ptr().add(start))),
            );
            let compatible = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(dot, zero));
            least = _mm256_min_epu32(least, _mm256_blendv_epi8(never, packed, compatible));
            index = _mm256_add_epi32(index, step);
        }
        let mut lanes = [0u32; SKETCH_LANES];
        _mm256_storeu_si256(lanes.as_mut_ptr().cast(), least);
        lanes.into_iter().fold(NO_MATCH, u32::min)
    }
}

/// The mean of the [`SKETCH_PAIRS`] best similarities (missing ones count as 0).
fn mean_of_best(best: &mut [f32]) -> f32 {
    let k = SKETCH_PAIRS.min(best.len());
    if k == 0 {
        return 0.0;
    }
    if k < best.len() {
        best.select_nth_unstable_by(k - 1, |x, y| y.total_cmp(x));
    }
    best[..k].iter().sum::<f32>() / SKETCH_PAIRS as f32
}

/// Codes of a gallery in one contiguous array, scanned exhaustively.
#[derive(Debug, Clone)]
pub struct CodeIndex {
    words: usize,
    data: Vec<u64>,
    ones: Vec<u32>,
    /// Every finger's sketch words, then its floats, one finger after another.
    sketch_words: Vec<u32>,
    sketch_floats: Vec<f32>,
    /// Where each finger's sketch floats start (one entry more than fingers).
    sketch_at: Vec<usize>,
}

impl CodeIndex {
    /// An empty index for codes of `coder`.
    pub fn new(coder: &FingerCoder) -> Self {
        Self {
            words: coder.words(),
            data: Vec::new(),
            ones: Vec::new(),
            sketch_words: Vec::new(),
            sketch_floats: Vec::new(),
            sketch_at: vec![0],
        }
    }

    /// Append a finger; returns its position. [`FingerError::BadInput`] if its code has
    /// another length.
    pub fn push(&mut self, key: FingerKey) -> Result<usize, FingerError> {
        let code = &key.code;
        if code.words.len() != self.words {
            return Err(FingerError::BadInput(format!(
                "code of {} words in an index of {}-word codes",
                code.words.len(),
                self.words
            )));
        }
        self.data.extend_from_slice(&code.words);
        self.ones.push(code.ones());
        self.sketch_words.extend_from_slice(&key.sketch.words);
        self.sketch_floats.extend_from_slice(&key.sketch.floats);
        self.sketch_at.push(self.sketch_floats.len());
        Ok(self.ones.len() - 1)
    }

    /// Sketch similarity of a probe to the finger at `position` (see
    /// [`sketch_similarity`]; panics if there is no such finger).
    pub fn sketch_similarity(&self, probe: &FingerSketch, position: usize) -> f32 {
        similarity(probe, self.sketch_view(position))
    }

    fn sketch_view(&self, position: usize) -> SketchView<'_> {
        let floats = self.sketch_at[position]..self.sketch_at[position + 1];
        let cylinders = floats.start / SKETCH_FLOATS..floats.end / SKETCH_FLOATS;
        let words = cylinders.start * SKETCH_WORDS..cylinders.end * SKETCH_WORDS;
        SketchView {
            words: &self.sketch_words[words],
            floats: &self.sketch_floats[floats],
        }
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.ones.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.ones.is_empty()
    }

    /// Memory held by the codes and sketches, bytes.
    pub fn memory_bytes(&self) -> usize {
        self.data.len() * 8
            + self.ones.len() * 4
            + self.sketch_words.len() * 4
            + self.sketch_floats.len() * 4
            + self.sketch_at.len() * 8
    }

    /// Similarity of the probe to every code, in index order.
    pub fn scores(&self, probe: &FingerCode) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.len());
        self.scores_in(probe, 0..self.len(), &mut out);
        out
    }

    /// Similarity of the probe to the codes at `positions`, appended to `out` in order.
    fn scores_in(&self, probe: &FingerCode, positions: Range<usize>, out: &mut Vec<f32>) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: `scores_popcnt` only needs the popcnt instruction, which the CPU
            // was just found to have.
            #[allow(unsafe_code)]
            unsafe {
                self.scores_popcnt(probe, positions, out)
            };
            return;
        }
        self.scores_portable(probe, positions, out);
    }

    #[inline(always)]
    fn scores_portable(&self, probe: &FingerCode, positions: Range<usize>, out: &mut Vec<f32>) {
        let p = probe.ones();
        if self.words == 0 {
            return;
        }
        let codes = self.data[positions.start * self.words..positions.end * self.words]
            .chunks_exact(self.words);
        for (code, &ones) in codes.zip(&self.ones[positions]) {
            let shared: u32 = code
                .iter()
                .zip(probe.words.iter())
                .map(|(x, y)| (x & y).count_ones())
                .sum();
            out.push(cosine(shared, p, ones));
        }
    }

    /// [`CodeIndex::scores_portable`] compiled with the popcnt instruction.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    #[target_feature(enable = "popcnt")]
    unsafe fn scores_popcnt(
        &self,
        probe: &FingerCode,
        positions: Range<usize>,
        out: &mut Vec<f32>,
    ) {
        self.scores_portable(probe, positions, out)
    }

    /// The short list: of the fingers `keep` accepts, the `long` whose codes are the
    /// most similar to the probe's, and of those the `k` whose sketches are the most
    /// similar to the probe's; best first by sketch similarity, ties by position. When
    /// `long <= k` the sketches could only reorder the list and are not compared: the
    /// list is the codes', with their similarities.
    ///
    /// Both stages run on the caller's rayon pool, a chunk of fingers a task; the list
    /// does not depend on the number of threads.
    pub fn search(
        &self,
        probe: &FingerKey,
        long: usize,
        k: usize,
        keep: impl Fn(usize) -> bool + Sync,
    ) -> Vec<(usize, f32)> {
        self.search_in_chunks(probe, long, k, keep, [SCAN_CHUNK, SKETCH_CHUNK])
    }

    /// [`CodeIndex::search`] with tasks of `chunks[0]` codes and `chunks[1]` sketches.
    fn search_in_chunks(
        &self,
        probe: &FingerKey,
        long: usize,
        k: usize,
        keep: impl Fn(usize) -> bool + Sync,
        chunks: [usize; 2],
    ) -> Vec<(usize, f32)> {
        let mut long_list = best_in_chunks(self.len(), chunks[0], long, |positions, slots| {
            let mut scores = Vec::with_capacity(positions.len());
            self.scores_in(&probe.code, positions.clone(), &mut scores);
            let mut written = 0;
            for (i, s) in positions.zip(scores) {
                if keep(i) {
                    slots[written] = key(i, s);
                    written += 1;
                }
            }
            written
        });
        if long <= k {
            return long_list.into_iter().map(unkey).collect();
        }
        // In memory order, so that the sketches are read forwards. (Prefetching each
        // sketch four fingers ahead made no difference against a million.)
        long_list.sort_unstable_by_key(|&x| unkey(x).0);
        let short = best_in_chunks(long_list.len(), chunks[1], k, |positions, slots| {
            for (slot, &x) in slots.iter_mut().zip(&long_list[positions]) {
                let i = unkey(x).0;
                *slot = key(i, similarity(&probe.sketch, self.sketch_view(i)));
            }
            slots.len()
        });
        short.into_iter().map(unkey).collect()
    }
}

/// Codes scanned by one task of [`CodeIndex::search`] (1 KiB each by default).
const SCAN_CHUNK: usize = 16_384;
/// Sketches compared by one task of [`CodeIndex::search`] (about 1 us each).
const SKETCH_CHUNK: usize = 2_048;

/// A score (non-negative) and its position as a key that sorts best first: the
/// score's bits inverted (non-negative floats order like their bits), then the
/// position.
fn key(position: usize, score: f32) -> u64 {
    u64::from(!score.to_bits()) << 32 | position as u64
}

/// The position and score of a [`key`].
fn unkey(key: u64) -> (usize, f32) {
    (
        (key & 0xFFFF_FFFF) as usize,
        f32::from_bits(!((key >> 32) as u32)),
    )
}

/// The `k` smallest keys of positions `0..n`, sorted. `score` writes the keys of a
/// chunk of positions (those it keeps) to the front of the chunk's slots and returns how
/// many; chunks run as tasks of the caller's rayon pool, each keeps only its own `k`
/// smallest (where that at least halves it), and those are merged, so the result is the
/// same on any number of threads.
fn best_in_chunks(
    n: usize,
    chunk: usize,
    k: usize,
    score: impl Fn(Range<usize>, &mut [u64]) -> usize + Sync,
) -> Vec<u64> {
    use rayon::prelude::*;
    let chunk = chunk.max(1);
    let mut keys = vec![0u64; n];
    let kept: Vec<usize> = keys
        .par_chunks_mut(chunk)
        .enumerate()
        .map(|(c, slots)| {
            let start = c * chunk;
            let written = score(start..start + slots.len(), slots);
            // Only where that at least halves the chunk: selecting within the chunks
            // and then again among their best costs more than one selection
            // otherwise.
            if 2 * k <= written {
                smallest(&mut slots[..written], k)
            } else {
                written
            }
        })
        .collect();
    // Each chunk's best, moved together.
    let mut end = 0;
    for (c, &m) in kept.iter().enumerate() {
        if c * chunk != end {
            keys.copy_within(c * chunk..c * chunk + m, end);
        }
        end += m;
    }
    keys.truncate(end);
    let m = smallest(&mut keys, k);
    keys.truncate(m);
    keys.sort_unstable();
    keys
}

/// Move the `k` smallest of `keys` to its front, in no order; returns how many that is.
fn smallest(keys: &mut [u64], k: usize) -> usize {
    if 0 < k && k < keys.len() {
        keys.select_nth_unstable(k - 1);
    }
    k.min(keys.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FingerTemplate, Matcher};
    use std::f32::consts::{FRAC_PI_2, TAU};

    /// A synthetic finger, or (with `jitter`) a new impression of it.
    fn finger(seed: u64, n: usize, jitter: u16) -> FingerTemplate {
        let t = crate::matcher::tests::finger(seed, n);
        crate::matcher::tests::moved(&t, 0.0, (0.0, 0.0), f32::from(jitter))
    }

    #[test]
    fn mates_share_more_of_the_code_than_strangers() {
        let (m, c) = (
            Matcher::default(),
            FingerCoder::new(IndexCodeParams::default()).unwrap(),
        );
        let code = |t: &FingerTemplate| c.code(&m.prepare(t));
        for seed in 1..6u64 {
            let a = code(&finger(seed * 7, 40, 0));
            let mate = code(&finger(seed * 7, 40, 2));
            let other = code(&finger(seed * 7 + 1000, 40, 0));
            assert_eq!(a.as_words().len(), c.words());
            let (g, i) = (code_similarity(&a, &mate), code_similarity(&a, &other));
            assert!(g > i + 0.1, "seed {seed}: mate {g} vs other {i}");
        }
    }

    #[test]
    fn mates_have_more_similar_sketches_than_strangers() {
        let (m, c) = (
            Matcher::default(),
            FingerCoder::new(IndexCodeParams::default()).unwrap(),
        );
        let sketch = |t: &FingerTemplate| c.sketch(&m.prepare(t));
        for seed in 1..6u64 {
            let a = sketch(&finger(seed * 7, 40, 0));
            // Turned and moved, so that the matches' turns and distances are tested.
            let turned =
                crate::matcher::tests::moved(&finger(seed * 7, 40, 0), 0.4, (25.0, -10.0), 2.0);
            let mate = sketch(&turned);
            let other = sketch(&finger(seed * 7 + 1000, 40, 0));
            let (g, i) = (sketch_similarity(&a, &mate), sketch_similarity(&a, &other));
            assert!(g > i + 0.1, "seed {seed}: mate {g} vs other {i}");
            assert!((0.0..=1.0).contains(&i) && g <= 1.0);
        }
    }

    /// The sketch similarity by its definition, one pair at a time.
    fn reference_similarity(a: &FingerSketch, b: &FingerSketch) -> f32 {
        let (pa, pb) = (a.view().parts(), b.view().parts());
        let angle = |p: &SketchParts, j: usize| p.sin[j].atan2(p.cos[j]);
        // Each probe cylinder's best match: (packed ratio and gallery cylinder, probe
        // cylinder), best first.
        let mut matches: Vec<(u32, usize)> = (0..a.len())
            .filter_map(|i| {
                let best = (0..b.len())
                    .filter(|&j| {
                        let d = (angle(&pa, i) - angle(&pb, j)).rem_euclid(TAU);
                        d.min(TAU - d) <= FRAC_PI_2
                    })
                    .map(|j| {
                        let differ: u32 = (0..SKETCH_WORDS)
                            .map(|w| (pa.words[w][i] ^ pb.words[w][j]).count_ones())
                            .sum();
                        let norm = pa.root[i] + pb.root[j];
                        let ratio = differ as f32 / (norm * norm);
                        ratio.to_bits() & !MATCH_MASK | j as u32
                    })
                    .min()?;
                Some((best, i))
            })
            .collect();
        matches.sort();
        matches.truncate(GEO_ROWS);
        let position = |p: &SketchParts, j: usize| (p.x[j], p.y[j]);
        // The turn from probe cylinder i's direction to gallery cylinder j's.
        let turn = |i: usize, j: usize| {
            (
                pb.cos[j] * pa.cos[i] + pb.sin[j] * pa.sin[i],
                pb.sin[j] * pa.cos[i] - pb.cos[j] * pa.sin[i],
            )
        };
        let distance = |(x0, y0): (f32, f32), (x1, y1): (f32, f32)| {
            ((x0 - x1) * (x0 - x1) + (y0 - y1) * (y0 - y1)).sqrt()
        };
        let mut weighted: Vec<f32> = matches
            .iter()
            .map(|&(packed, i)| {
                let j = (packed & MATCH_MASK) as usize;
                let agree = matches
                    .iter()
                    .filter(|&&(other, k)| {
                        let l = (other & MATCH_MASK) as usize;
                        let dp = distance(position(&pa, i), position(&pa, k));
                        let dg = distance(position(&pb, j), position(&pb, l));
                        let ((c0, s0), (c1, s1)) = (turn(i, j), turn(k, l));
                        k != i
                            && (dp - dg).abs() <= GEO_TOLERANCE
                            && c0 * c1 + s0 * s1 >= GEO_TURN_COS
                    })
                    .count() as u32;
                let similarity = 1.0 - f32::from_bits(packed & !MATCH_MASK).sqrt();
                similarity * agree.min(GEO_NEED) as f32 / GEO_NEED as f32
            })
            .collect();
        weighted.sort_by(|x, y| y.total_cmp(x));
        weighted.iter().take(SKETCH_PAIRS).sum::<f32>() / SKETCH_PAIRS as f32
    }

    #[test]
    fn sketch_similarity_follows_its_definition() {
        let (m, c) = (
            Matcher::default(),
            FingerCoder::new(IndexCodeParams::default()).unwrap(),
        );
        // Sizes around the vector width and the eight pairs averaged, and none.
        let sketches: Vec<FingerSketch> = [0, 3, 7, 8, 9, 16, 17, 40, 60]
            .iter()
            .enumerate()
            .flat_map(|(k, &n)| [0, 3].map(|jitter| finger(k as u64 * 11 + 1, n, jitter)))
            .map(|t| c.sketch(&m.prepare(&t)))
            .collect();
        assert!(sketches[0].is_empty() && sketches.last().unwrap().len() > 40);
        for a in &sketches {
            for b in &sketches {
                let fast = sketch_similarity(a, b);
                assert!((fast - reference_similarity(a, b)).abs() < 1e-5);
                // Every vector kernel the CPU runs and the portable one agree exactly.
                let portable = sketch_similarity_portable(a, b.view()).to_bits();
                assert_eq!(fast.to_bits(), portable);
                #[cfg(target_arch = "x86_64")]
                #[allow(unsafe_code)]
                {
                    if std::arch::is_x86_feature_detected!("avx2") {
                        // SAFETY: the CPU was just found to have AVX2.
                        let lookup = unsafe { sketch_similarity_avx2::<false>(a, b.view()) };
                        assert_eq!(lookup.to_bits(), portable);
                    }
                    if crate::matcher::vpopcnt_detected() {
                        // SAFETY: the CPU was just found to have AVX2, VPOPCNTDQ and VL.
                        let counted = unsafe { sketch_similarity_avx2::<true>(a, b.view()) };
                        assert_eq!(counted.to_bits(), portable);
                    }
                }
            }
        }
        assert_eq!(sketch_similarity(&sketches[0], &sketches[0]), 0.0);
    }

    #[test]
    fn index_search_agrees_with_pairwise_similarities() {
        let (m, c) = (
            Matcher::default(),
            FingerCoder::new(IndexCodeParams::default()).unwrap(),
        );
        let keys: Vec<FingerKey> = (0..50)
            .map(|s| c.key(&m.prepare(&finger(s, 35, 0))))
            .collect();
        let mut index = CodeIndex::new(&c);
        for key in &keys {
            index.push(key.clone()).unwrap();
        }
        let probe = c.key(&m.prepare(&finger(17, 35, 2)));
        // The index's copy of each sketch is the finger's own.
        for (i, key) in keys.iter().enumerate() {
            let own = sketch_similarity(&probe.sketch, &key.sketch);
            assert_eq!(
                index.sketch_similarity(&probe.sketch, i).to_bits(),
                own.to_bits()
            );
        }
        let ranked = |score: &dyn Fn(usize) -> f32, among: &[usize]| {
            let mut r: Vec<(usize, f32)> = among.iter().map(|&i| (i, score(i))).collect();
            r.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            r
        };
        // The long list by code among the kept, then the short list by sketch.
        let kept: Vec<usize> = (0..50).filter(|i| i % 7 != 5).collect();
        let long: Vec<usize> = ranked(&|i| code_similarity(&probe.code, &keys[i].code), &kept)
            [..20]
            .iter()
            .map(|h| h.0)
            .collect();
        let short = ranked(
            &|i| sketch_similarity(&probe.sketch, &keys[i].sketch),
            &long,
        );
        let hits = index.search(&probe, 20, 5, |i| i % 7 != 5);
        assert_eq!(hits, short[..5].to_vec());
        assert_eq!(hits[0].0, 17);
        // The same lists from tasks of a few fingers on one thread and on three, and
        // with a copy of the mate at the end, whose tie is broken by position.
        let mut with_copy = index.clone();
        with_copy.push(keys[17].clone()).unwrap();
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                for chunks in [[7, 3], [1, 1], [50, 10], [SCAN_CHUNK, SKETCH_CHUNK]] {
                    let chunked = |index: &CodeIndex, long, k| {
                        index.search_in_chunks(&probe, long, k, |i| i % 7 != 5, chunks)
                    };
                    assert_eq!(chunked(&index, 20, 5), hits);
                    // The code's list alone when the long list is no longer.
                    let by_code = ranked(&|i| code_similarity(&probe.code, &keys[i].code), &kept);
                    assert_eq!(chunked(&index, 6, 6), by_code[..6].to_vec());
                    let copied = chunked(&with_copy, 20, 5);
                    assert_eq!(copied[..2], [hits[0], (50, hits[0].1)]);
                }
            });
        }
        assert!(index.search(&probe, 0, 5, |_| true).is_empty());
        assert!(index.search(&probe, 20, 0, |_| true).is_empty());
        assert_eq!(index.search(&probe, 500, 500, |_| true).len(), 50);
        assert!(index
            .search(&probe, 50, 50, |i| i != 17)
            .iter()
            .all(|h| h.0 != 17));
    }

    #[test]
    fn bad_parameters_and_lengths_are_typed_errors() {
        for p in [
            IndexCodeParams {
                hashes: 0,
                ..Default::default()
            },
            IndexCodeParams {
                bits_per_hash: 13,
                ..Default::default()
            },
            IndexCodeParams {
                inner_radius: f32::NAN,
                ..Default::default()
            },
        ] {
            assert!(matches!(FingerCoder::new(p), Err(FingerError::BadInput(_))));
        }
        let small = FingerCoder::new(IndexCodeParams {
            hashes: 1,
            ..Default::default()
        })
        .unwrap();
        let mut index = CodeIndex::new(&FingerCoder::new(IndexCodeParams::default()).unwrap());
        let key = small.key(&Matcher::default().prepare(&finger(1, 20, 0)));
        assert!(matches!(index.push(key), Err(FingerError::BadInput(_))));
        // An empty finger has an empty code that matches nothing.
        let empty = small.code(&Matcher::default().prepare(&finger(1, 0, 0)));
        assert_eq!((empty.ones(), code_similarity(&empty, &empty)), (0, 0.0));
    }
}
