//! A fixed-length per-finger index code for 1:N pre-filtering.
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
//! [`CodeIndex`] scans a contiguous array of codes with hardware popcount; the short
//! list it returns is re-scored by the full matcher.

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

/// Makes index codes. Build once; codes from coders with equal parameters are comparable.
#[derive(Debug, Clone)]
pub struct FingerCoder {
    params: IndexCodeParams,
    cells: Vec<Vec<Cell>>,
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
        let cells = (0..params.hashes)
            .map(|_| {
                (0..params.bits_per_hash)
                    .map(|_| {
                        let bit = inner[(splitmix(&mut state) % inner.len() as u64) as usize];
                        let layer = (splitmix(&mut state) % ND as u64) as usize;
                        let mut group = [0u64; NS * NS / 64];
                        let (ci, cj) = ((bit / NS) as f32, (bit % NS) as f32);
                        for b in 0..NS * NS {
                            let (i, j) = ((b / NS) as f32, (b % NS) as f32);
                            if (i - ci).hypot(j - cj) <= POOL_RADIUS {
                                group[b / 64] |= 1 << (b % 64);
                            }
                        }
                        Cell {
                            layer,
                            group,
                            word: bit / 64,
                            mask: 1 << (bit % 64),
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(Self { params, cells })
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
    let mut bucket = 0usize;
    for c in cells {
        if cyl.valid[c.word] & c.mask == 0 {
            return None;
        }
        let layer = &cyl.values[c.layer];
        let any = (0..c.group.len()).fold(0, |any, w| any | layer[w] & c.group[w]);
        bucket = bucket << 1 | usize::from(any != 0);
    }
    Some(bucket)
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

/// Codes of a gallery in one contiguous array, scanned exhaustively.
#[derive(Debug, Clone)]
pub struct CodeIndex {
    words: usize,
    data: Vec<u64>,
    ones: Vec<u32>,
}

impl CodeIndex {
    /// An empty index for codes of `coder`.
    pub fn new(coder: &FingerCoder) -> Self {
        Self {
            words: coder.words(),
            data: Vec::new(),
            ones: Vec::new(),
        }
    }

    /// Append a code; returns its position. [`FingerError::BadInput`] if the code has
    /// another length.
    pub fn push(&mut self, code: &FingerCode) -> Result<usize, FingerError> {
        if code.words.len() != self.words {
            return Err(FingerError::BadInput(format!(
                "code of {} words in an index of {}-word codes",
                code.words.len(),
                self.words
            )));
        }
        self.data.extend_from_slice(&code.words);
        self.ones.push(code.ones());
        Ok(self.ones.len() - 1)
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.ones.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.ones.is_empty()
    }

    /// Memory held by the codes, bytes.
    pub fn memory_bytes(&self) -> usize {
        self.data.len() * 8 + self.ones.len() * 4
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

    /// The `k` most similar codes, best first (ties by position): the short list.
    pub fn search(&self, probe: &FingerCode, k: usize) -> Vec<(usize, f32)> {
        let scores = self.scores(probe);
        let mut order: Vec<u64> = scores
            .iter()
            .enumerate()
            .map(|(i, s)| ((!s.to_bits()) as u64) << 32 | i as u64)
            .collect();
        let k = k.min(order.len());
        if k == 0 {
            return Vec::new();
        }
        if k < order.len() {
            order.select_nth_unstable(k - 1);
        }
        order.truncate(k);
        order.sort_unstable();
        order
            .into_iter()
            .map(|key| {
                (
                    (key & 0xFFFF_FFFF) as usize,
                    scores[(key & 0xFFFF_FFFF) as usize],
                )
            })
            .collect()
    }
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
    fn index_search_agrees_with_pairwise_similarity() {
        let (m, c) = (
            Matcher::default(),
            FingerCoder::new(IndexCodeParams::default()).unwrap(),
        );
        let codes: Vec<FingerCode> = (0..50)
            .map(|s| c.code(&m.prepare(&finger(s, 35, 0))))
            .collect();
        let mut index = CodeIndex::new(&c);
        for code in &codes {
            index.push(code).unwrap();
        }
        let probe = c.code(&m.prepare(&finger(17, 35, 2)));
        let hits = index.search(&probe, 5);
        assert_eq!(hits[0].0, 17);
        let mut naive: Vec<(usize, f32)> = codes
            .iter()
            .map(|x| code_similarity(&probe, x))
            .enumerate()
            .collect();
        naive.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        assert_eq!(hits, naive[..5].to_vec());
        assert!(index.search(&probe, 0).is_empty());
        assert_eq!(index.search(&probe, 500).len(), 50);
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
        let code = small.code(&Matcher::default().prepare(&finger(1, 20, 0)));
        assert!(matches!(index.push(&code), Err(FingerError::BadInput(_))));
        // An empty finger has an empty code that matches nothing.
        let empty = small.code(&Matcher::default().prepare(&finger(1, 0, 0)));
        assert_eq!((empty.ones(), code_similarity(&empty, &empty)), (0, 0.0));
    }
}
