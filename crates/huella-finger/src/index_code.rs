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
//! the mate's bucket or not. A [`FingerSketch`] keeps 128 pooled bits of every
//! cylinder, compared like the matcher's local similarity sort. Ranking FVC2002 mates
//! among 1,500 distinct distractors (`examples/index_1n.rs --matcher-ceiling`), the
//! sketches keep 90.62% of mates in their top 1% and 95.13% in their top 9%, the full
//! matcher 96.74% and 99.02%; the code, among 100,000, keeps 81.38% and 92.86%. (The
//! matcher's local similarity sort without its relaxation, measured once with a patch
//! not kept: 95.18% and 98.12%.)
//!
//! [`CodeIndex`] scans a contiguous array of codes with hardware popcount for a long
//! list, compares the long list's sketches (about 1 us a finger on one core, against
//! about 9 us for the matcher) and returns the short list that the full matcher
//! re-scores. Against a million fingers, within 1 s on one core, the short list keeps
//! the mate for 94.06% of FVC2002 genuine pairs, against 92.41% for the code alone
//! (BENCHMARKS.md).

use crate::matcher::{Cylinder, ND, NS};
use crate::{FingerError, PreparedFinger};

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
/// best matches (with the one-to-one form, 5 / 8 / 12: 90.49 / 91.96 / 91.92%; without
/// it, 12: 91.07%).
const SKETCH_PAIRS: usize = 8;
/// Cylinders compared at once: one 256-bit vector of 32-bit lanes.
const SKETCH_LANES: usize = 8;
/// 32-bit words of a sketch.
const SKETCH_WORDS: usize = SKETCH_BITS / 32;
/// Floats stored per sketched cylinder: the root of its bit count, the cosine and the
/// sine of its direction.
const SKETCH_FLOATS: usize = 3;

/// A finger's cylinder sketches, the index's second stage: for every cylinder, 128
/// pooled bits of it (read like the hash bits of the code, from finer discs) and its
/// minutia's direction. Two fingers are compared like the matcher's local similarity
/// sort without its relaxation or its one-to-one pairing: every cylinder of the probe
/// takes its best similarity among the other finger's cylinders within 90 degrees of
/// its direction (the matcher's similarity of bit cylinders, `1 - √|a⊕b| / (√|a| +
/// √|b|)`), and the score is the mean of the best eight. It ranks mates far better
/// than the code (see BENCHMARKS.md) at a fraction of the matcher's cost, so the index
/// scans the codes for a long list and the sketches cut it to the short list that the
/// matcher re-scores.
#[derive(Debug, Clone)]
pub struct FingerSketch {
    /// Number of cylinders sketched.
    len: usize,
    /// Word `w` of every cylinder, then word `w + 1`, ..., each run padded to a multiple
    /// of [`SKETCH_LANES`] cylinders.
    words: Box<[u32]>,
    /// The square roots of the cylinders' bit counts, then the cosines, then the sines
    /// of their directions, padded likewise (padding directions are NaN, which no
    /// direction test passes; hence no `PartialEq`, as a padded sketch would not equal
    /// itself).
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
/// their bit counts, the cosines and sines of their directions.
struct SketchParts<'a> {
    words: [&'a [u32]; SKETCH_WORDS],
    root: &'a [f32],
    cos: &'a [f32],
    sin: &'a [f32],
}

impl<'a> SketchView<'a> {
    fn parts(self) -> SketchParts<'a> {
        let n = self.floats.len() / SKETCH_FLOATS;
        let (root, rest) = self.floats.split_at(n);
        let (cos, sin) = rest.split_at(n);
        SketchParts {
            words: std::array::from_fn(|w| &self.words[w * n..(w + 1) * n]),
            root,
            cos,
            sin,
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
        let mut sketches: Vec<([u32; SKETCH_WORDS], f32)> = Vec::new();
        for (cyl, &angle) in finger.cylinders().iter().zip(finger.cylinder_angles()) {
            let mut w = [0u32; SKETCH_WORDS];
            for (k, c) in self.sketch_cells.iter().enumerate() {
                if c.read(cyl) == Some(true) {
                    w[k / 32] |= 1 << (k % 32);
                }
            }
            if w != [0; SKETCH_WORDS] {
                sketches.push((w, angle));
            }
        }
        let len = sketches.len();
        let n = len.div_ceil(SKETCH_LANES) * SKETCH_LANES;
        let mut words = vec![0u32; SKETCH_WORDS * n];
        let mut floats = vec![f32::NAN; SKETCH_FLOATS * n];
        for (j, (w, angle)) in sketches.iter().enumerate() {
            for (k, &word) in w.iter().enumerate() {
                words[k * n + j] = word;
            }
            let ones: u32 = w.iter().map(|x| x.count_ones()).sum();
            floats[j] = (ones as f32).sqrt();
            (floats[2 * n + j], floats[n + j]) = angle.sin_cos();
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
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `sketch_similarity_avx2` needs the avx2 instructions, which the CPU
        // was just found to have.
        #[allow(unsafe_code)]
        return unsafe { sketch_similarity_avx2(probe, gallery) };
    }
    sketch_similarity_portable(probe, gallery)
}

/// [`sketch_similarity_portable`] with the AVX2 kernel [`least_ratio_avx2`].
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx2")]
unsafe fn sketch_similarity_avx2(probe: &FingerSketch, gallery: SketchView) -> f32 {
    // SAFETY: this function has AVX2, which is all the kernel needs.
    similarity_by(probe, gallery, |p, g, i| unsafe {
        least_ratio_avx2(p, g, i)
    })
}

#[inline(always)]
fn sketch_similarity_portable(probe: &FingerSketch, gallery: SketchView) -> f32 {
    similarity_by(probe, gallery, least_ratio_portable)
}

/// The sketch similarity, from a kernel that gives probe cylinder `i`'s least ratio
/// `|a⊕b| / (√|a| + √|b|)²` among the gallery's cylinders within 90 degrees (the
/// similarity falls as it rises, so no root is taken per pair).
#[inline(always)]
fn similarity_by(
    probe: &FingerSketch,
    gallery: SketchView,
    least_ratio: impl Fn(&SketchParts, &SketchParts, usize) -> f32,
) -> f32 {
    let (p, g) = (probe.view().parts(), gallery.parts());
    let mut best = [0f32; crate::MAX_MINUTIAE];
    for (i, b) in best.iter_mut().enumerate().take(probe.len) {
        *b = best_similarity(least_ratio(&p, &g, i));
    }
    mean_of_best(&mut best[..probe.len])
}

/// The least ratio of probe cylinder `i`, lane by lane as the vector kernel does.
#[inline(always)]
fn least_ratio_portable(p: &SketchParts, g: &SketchParts, i: usize) -> f32 {
    let mut least = [f32::INFINITY; SKETCH_LANES];
    for start in (0..g.root.len()).step_by(SKETCH_LANES) {
        for (l, least) in least.iter_mut().enumerate() {
            let j = start + l;
            let differ: u32 = (0..SKETCH_WORDS)
                .map(|w| (p.words[w][i] ^ g.words[w][j]).count_ones())
                .sum();
            let norm = p.root[i] + g.root[j];
            let ratio = differ as f32 / (norm * norm);
            // Directions more than 90 degrees apart (or padding): not a match.
            if p.cos[i] * g.cos[j] + p.sin[i] * g.sin[j] >= 0.0 && ratio < *least {
                *least = ratio;
            }
        }
    }
    least.into_iter().fold(f32::INFINITY, f32::min)
}

/// [`least_ratio_portable`] on 256-bit vectors: eight cylinders at a time, the bits of
/// their four words counted per byte with the matcher's nibble look-up and summed
/// before one widening to 32-bit lanes (the compiler's own vectorisation of the
/// portable code widened every word's counts). The same operations on the same values
/// in each lane, so the same result to the bit.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn least_ratio_avx2(p: &SketchParts, g: &SketchParts, i: usize) -> f32 {
    use crate::matcher::avx2::byte_counts;
    use std::arch::x86_64::*;
    // SAFETY (whole body): AVX2 is enabled on this function; every load reads 8 lanes
    // at `start`, a multiple of 8 below the padded length of each array.
    unsafe {
        let (ones8, ones16) = (_mm256_set1_epi8(1), _mm256_set1_epi16(1));
        let (zero, never) = (_mm256_setzero_ps(), _mm256_set1_ps(f32::INFINITY));
        let probe: [__m256i; SKETCH_WORDS] =
            std::array::from_fn(|w| _mm256_set1_epi32(p.words[w][i] as i32));
        let (pr, pc, ps) = (
            _mm256_set1_ps(p.root[i]),
            _mm256_set1_ps(p.cos[i]),
            _mm256_set1_ps(p.sin[i]),
        );
        let mut least = never;
        for start in (0..g.root.len()).step_by(SKETCH_LANES) {
            let mut bytes = _mm256_setzero_si256();
            for (word, probe) in g.words.iter().zip(probe) {
                let x = _mm256_loadu_si256(word.as_ptr().add(start).cast());
                // At most 32 a byte over the four words.
                bytes = _mm256_add_epi8(bytes, byte_counts(_mm256_xor_si256(x, probe)));
            }
            let differ = _mm256_madd_epi16(_mm256_maddubs_epi16(bytes, ones8), ones16);
            let norm = _mm256_add_ps(pr, _mm256_loadu_ps(g.root.as_ptr().add(start)));
            let ratio = _mm256_div_ps(_mm256_cvtepi32_ps(differ), _mm256_mul_ps(norm, norm));
            let dot = _mm256_add_ps(
                _mm256_mul_ps(pc, _mm256_loadu_ps(g.cos.as_ptr().add(start))),
                _mm256_mul_ps(ps, _mm256_loadu_ps(g.sin.as_ptr().add(start))),
            );
            let compatible = _mm256_cmp_ps::<_CMP_GE_OQ>(dot, zero);
            least = _mm256_min_ps(least, _mm256_blendv_ps(never, ratio, compatible));
        }
        let mut lanes = [0f32; SKETCH_LANES];
        _mm256_storeu_ps(lanes.as_mut_ptr(), least);
        lanes.into_iter().fold(f32::INFINITY, f32::min)
    }
}

/// A probe cylinder's best similarity from its least ratio (infinite: no match).
fn best_similarity(least: f32) -> f32 {
    if least.is_finite() {
        1.0 - least.sqrt()
    } else {
        0.0
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
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: `scores_popcnt` only needs the popcnt instruction, which the CPU
            // was just found to have.
            #[allow(unsafe_code)]
            unsafe {
                self.scores_popcnt(probe, &mut out)
            };
            return out;
        }
        self.scores_portable(probe, &mut out);
        out
    }

    #[inline(always)]
    fn scores_portable(&self, probe: &FingerCode, out: &mut Vec<f32>) {
        let p = probe.ones();
        if self.words == 0 {
            return;
        }
        for (code, &ones) in self.data.chunks_exact(self.words).zip(&self.ones) {
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
    unsafe fn scores_popcnt(&self, probe: &FingerCode, out: &mut Vec<f32>) {
        self.scores_portable(probe, out)
    }

    /// The short list: of the fingers `keep` accepts, the `long` whose codes are the
    /// most similar to the probe's, and of those the `k` whose sketches are the most
    /// similar to the probe's; best first by sketch similarity, ties by position. When
    /// `long <= k` the sketches could only reorder the list and are not compared: the
    /// list is the codes', with their similarities.
    pub fn search(
        &self,
        probe: &FingerKey,
        long: usize,
        k: usize,
        keep: impl Fn(usize) -> bool,
    ) -> Vec<(usize, f32)> {
        let scores = self.scores(&probe.code);
        let mut long_list = best(
            scores
                .iter()
                .enumerate()
                .filter(|&(i, _)| keep(i))
                .map(|(i, &s)| (i, s)),
            long,
        );
        if long <= k {
            return long_list;
        }
        // In memory order, so that the sketches are read forwards. (Prefetching each
        // sketch four fingers ahead made no difference against a million.)
        long_list.sort_unstable_by_key(|&(i, _)| i);
        best(
            long_list
                .into_iter()
                .map(|(i, _)| (i, similarity(&probe.sketch, self.sketch_view(i)))),
            k,
        )
    }
}

/// The `k` highest scores (non-negative), best first, ties by position.
fn best(scores: impl Iterator<Item = (usize, f32)>, k: usize) -> Vec<(usize, f32)> {
    // As keys that sort best first: the score's bits inverted (non-negative floats
    // order like their bits), then the position.
    let mut keys: Vec<u64> = scores
        .map(|(i, s)| u64::from(!s.to_bits()) << 32 | i as u64)
        .collect();
    let k = k.min(keys.len());
    if k == 0 {
        return Vec::new();
    }
    if k < keys.len() {
        keys.select_nth_unstable(k - 1);
    }
    keys.truncate(k);
    keys.sort_unstable();
    keys.into_iter()
        .map(|key| {
            (
                (key & 0xFFFF_FFFF) as usize,
                f32::from_bits(!((key >> 32) as u32)),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FingerTemplate, Matcher};

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
            let mate = sketch(&finger(seed * 7, 40, 2));
            let other = sketch(&finger(seed * 7 + 1000, 40, 0));
            let (g, i) = (sketch_similarity(&a, &mate), sketch_similarity(&a, &other));
            assert!(g > i + 0.1, "seed {seed}: mate {g} vs other {i}");
            assert!((0.0..=1.0).contains(&i) && g <= 1.0);
        }
    }

    /// The sketch similarity by its definition, one pair at a time.
    fn reference_similarity(a: &FingerSketch, b: &FingerSketch) -> f32 {
        let cylinder = |s: &FingerSketch, j: usize| {
            let p = s.view().parts();
            (p.words.map(|w| w[j]), p.root[j], p.cos[j].atan2(p.sin[j]))
        };
        let mut best: Vec<f32> = (0..a.len())
            .map(|i| {
                let (wa, ra, angle_a) = cylinder(a, i);
                (0..b.len())
                    .map(|j| cylinder(b, j))
                    .filter(|&(_, _, angle_b)| {
                        let d = (angle_a - angle_b).rem_euclid(std::f32::consts::TAU);
                        d.min(std::f32::consts::TAU - d) <= std::f32::consts::FRAC_PI_2
                    })
                    .map(|(wb, rb, _)| {
                        let differ: u32 = (0..SKETCH_WORDS)
                            .map(|w| (wa[w] ^ wb[w]).count_ones())
                            .sum();
                        1.0 - (differ as f32).sqrt() / (ra + rb)
                    })
                    .fold(0.0, f32::max)
            })
            .collect();
        best.sort_by(|x, y| y.total_cmp(x));
        best.iter().take(SKETCH_PAIRS).sum::<f32>() / SKETCH_PAIRS as f32
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
                // The vector build and the portable one agree exactly.
                assert_eq!(
                    fast.to_bits(),
                    sketch_similarity_portable(a, b.view()).to_bits()
                );
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
