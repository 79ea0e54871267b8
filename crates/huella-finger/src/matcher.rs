//! The minutiae matcher: Minutia Cylinder-Code with relaxation.
//!
//! Implements R. Cappelli, M. Ferrara, D. Maltoni, "Minutia Cylinder-Code: a new
//! representation and matching technique for fingerprint recognition", IEEE TPAMI 32(12),
//! 2010: every minutia gets a *cylinder*, a 3-D histogram of where its neighbours lie
//! (16 x 16 spatial cells in the minutia's own frame, so rotation and translation do
//! not matter) and how their directions differ from its own (6 sections). We use the
//! bit-based variant: a cell is 1 when the neighbour contribution exceeds μΨ, and two
//! cylinders are compared with popcounts on the cells valid in both. The global score is
//! the paper's LSS-R: the best one-to-one cylinder pairs are re-weighted by how well
//! their pairwise geometry agrees (distances, direction differences, radial angles) in
//! five relaxation rounds, and the mean similarity of the most consistent pairs is the
//! score. Parameters are the paper's, for 500 ppi; coordinates of templates at other
//! resolutions are scaled to 500 ppi first.
//!
//! Scores lie in `[0, 1]`, higher = more alike; comparing a template with itself gives
//! a high score, templates with fewer than two usable minutiae score 0.

use crate::{FingerTemplate, Minutia, MAX_MINUTIAE};
use std::f32::consts::{PI, TAU};

/// Spatial cells along a cylinder's side (`N_S`).
pub(crate) const NS: usize = 16;
/// Direction sections (`N_D`).
pub(crate) const ND: usize = 6;
/// 64-bit words of one direction layer (`NS * NS` bits).
const LAYER_WORDS: usize = NS * NS / 64;

/// The MCC and LSS-R parameters (defaults: the paper's values for 500 ppi images).
#[derive(Debug, Clone, PartialEq)]
pub struct MatcherParams {
    /// Cylinder radius `R`, pixels at 500 ppi.
    pub radius: f32,
    /// Spatial Gaussian `σ_S`, pixels.
    pub sigma_s: f32,
    /// Directional Gaussian `σ_D`, radians.
    pub sigma_d: f32,
    /// Cell activation threshold `μ_Ψ`.
    pub mu_psi: f32,
    /// Offset `Ω` of the minutiae convex hull within which cells are valid, pixels.
    pub hull_offset: f32,
    /// Least fraction of a cylinder's cells that must be valid (`min_VC`).
    pub min_valid_cells: f32,
    /// Least number of neighbours a minutia needs for a valid cylinder (`min_M`).
    pub min_neighbours: usize,
    /// Least fraction of cells valid in both cylinders for them to be compared (`min_ME`).
    pub min_matchable: f32,
    /// Largest direction difference of two comparable minutiae (`δ_θ`), radians.
    pub max_direction_diff: f32,
    /// `min_NP`, `max_NP`, `μ_P`, `τ_P` of the number of pairs averaged into the score.
    pub pairs: (usize, usize, f32, f32),
    /// Relaxation weight `w_R`.
    pub relax_weight: f32,
    /// Relaxation rounds `n_rel`.
    pub relax_rounds: usize,
    /// `(μ, τ)` of the three compatibility sigmoids (distance, direction, radial angle).
    pub compat: [(f32, f32); 3],
}

impl Default for MatcherParams {
    fn default() -> Self {
        Self {
            radius: 70.0,
            sigma_s: 28.0 / 3.0,
            sigma_d: 2.0 * PI / 9.0,
            mu_psi: 0.01,
            hull_offset: 50.0,
            min_valid_cells: 0.75,
            min_neighbours: 2,
            min_matchable: 0.6,
            max_direction_diff: PI / 2.0,
            pairs: (4, 12, 20.0, 0.4),
            relax_weight: 0.5,
            relax_rounds: 5,
            compat: [(5.0, -1.6), (PI / 12.0, -30.0), (PI / 12.0, -30.0)],
        }
    }
}

/// One minutia in the matcher's frame: 500 ppi, y up (so angles are the usual
/// counter-clockwise ones).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    x: f32,
    y: f32,
    angle: f32,
}

/// A cylinder: value bits by direction layer, and the validity bits of its cells.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cylinder {
    pub(crate) values: [[u64; LAYER_WORDS]; ND],
    pub(crate) valid: [u64; LAYER_WORDS],
    /// Index of the minutia it belongs to.
    minutia: usize,
    /// Every cell inside the radius is valid (the minutia is well inside the hull).
    full: bool,
    /// Number of 1 bits in `values`.
    ones: u32,
}

/// A template made ready for fast repeated comparison (cylinders built once).
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedFinger {
    points: Vec<Point>,
    /// Sorted by their minutia's angle, so that the cylinders within the direction
    /// tolerance of a given one form one (circular) run.
    cylinders: Vec<Cylinder>,
    /// The angle of each cylinder's minutia, in the same order.
    angles: Vec<f32>,
}

impl PreparedFinger {
    /// Heap and inline memory held, bytes.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.points.capacity() * std::mem::size_of::<Point>()
            + self.cylinders.capacity() * std::mem::size_of::<Cylinder>()
            + self.angles.capacity() * std::mem::size_of::<f32>()
    }

    /// The cylinders, for the index code.
    pub(crate) fn cylinders(&self) -> &[Cylinder] {
        &self.cylinders
    }

    /// The position of cylinder `c`'s minutia (the matcher's frame: 500 ppi, y up).
    pub(crate) fn cylinder_position(&self, c: usize) -> (f32, f32) {
        let p = &self.points[self.cylinders[c].minutia];
        (p.x, p.y)
    }

    /// The direction of each cylinder's minutia, radians, in the cylinders' order.
    pub(crate) fn cylinder_angles(&self) -> &[f32] {
        &self.angles
    }

    /// How many minutiae have a valid cylinder (those that can take part in a match).
    pub fn usable_minutiae(&self) -> usize {
        self.cylinders.len()
    }
}

/// One pair of minutiae the matcher paired, for display to an examiner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchedPair {
    /// Index into the first template's minutiae.
    pub a: usize,
    /// Index into the second template's minutiae.
    pub b: usize,
    /// The pair's similarity after relaxation, `[0, 1]`.
    pub similarity: f32,
}

/// The MCC matcher. Build once, share across threads (it is `Sync`).
#[derive(Debug, Clone)]
pub struct Matcher {
    params: MatcherParams,
    /// Cell-centre offsets in units of the cell size, relative to the minutia, for the
    /// cells inside the cylinder's radius (others are never valid).
    cells: Vec<(usize, f32, f32)>,
    /// The cell-centre offsets of every cell, inside the radius or not, by bit.
    offsets: [(f32, f32); NS * NS],
    /// Centre angle of each direction section.
    sections: [f32; ND],
}

impl Default for Matcher {
    fn default() -> Self {
        Self::new(MatcherParams::default())
    }
}

impl Matcher {
    /// A matcher with the given parameters.
    pub fn new(params: MatcherParams) -> Self {
        let cell = 2.0 * params.radius / NS as f32;
        let half = (NS as f32 + 1.0) / 2.0;
        let offsets: [(f32, f32); NS * NS] = std::array::from_fn(|bit| {
            let (i, j) = (bit / NS, bit % NS);
            (
                (i as f32 + 1.0 - half) * cell,
                (j as f32 + 1.0 - half) * cell,
            )
        });
        let cells = offsets
            .iter()
            .enumerate()
            .filter(|(_, (u, v))| u.hypot(*v) <= params.radius)
            .map(|(bit, &(u, v))| (bit, u, v))
            .collect();
        let delta = TAU / ND as f32;
        let sections = std::array::from_fn(|k| -PI + (k as f32 + 0.5) * delta);
        Self {
            params,
            cells,
            offsets,
            sections,
        }
    }

    /// The parameters in use.
    pub fn params(&self) -> &MatcherParams {
        &self.params
    }

    /// Build the cylinders of a template.
    pub fn prepare(&self, template: &FingerTemplate) -> PreparedFinger {
        let points = to_points(template);
        let hull = convex_hull(&points);
        let p = &self.params;
        let reach = p.radius + 3.0 * p.sigma_s;
        let cylinders: Vec<Cylinder> = points
            .iter()
            .enumerate()
            .filter_map(|(index, m)| {
                let neighbours: Vec<&Point> = points
                    .iter()
                    .enumerate()
                    .filter(|&(j, n)| j != index && dist(m, n) <= reach)
                    .map(|(_, n)| n)
                    .collect();
                if neighbours.len() < p.min_neighbours {
                    return None;
                }
                self.cylinder(index, m, &neighbours, &hull)
            })
            .collect();
        let mut cylinders: Vec<Cylinder> = cylinders;
        cylinders.sort_by(|x, y| {
            points[x.minutia]
                .angle
                .total_cmp(&points[y.minutia].angle)
                .then(x.minutia.cmp(&y.minutia))
        });
        let angles = cylinders.iter().map(|c| points[c.minutia].angle).collect();
        PreparedFinger {
            points,
            cylinders,
            angles,
        }
    }

    fn cylinder(
        &self,
        index: usize,
        m: &Point,
        neighbours: &[&Point],
        hull: &[(f32, f32)],
    ) -> Option<Cylinder> {
        let p = &self.params;
        let (sin, cos) = m.angle.sin_cos();
        let mut cyl = Cylinder {
            values: [[0; LAYER_WORDS]; ND],
            valid: [0; LAYER_WORDS],
            minutia: index,
            full: false,
            ones: 0,
        };
        // A cell centre lies within the radius of the minutia, so when the minutia is at
        // least `radius - hull_offset` inside the hull every cell is within the offset
        // band and the per-cell hull test can be skipped (the small margin keeps rounding
        // from ever deciding it).
        let all_valid = depth_in_hull(hull, (m.x, m.y)) >= p.radius - p.hull_offset + 0.01;
        // The directional term depends on the neighbour only, not on the cell: computed
        // once per neighbour instead of once per (cell, neighbour) in range.
        let neighbours: Vec<(f32, f32, [f32; ND])> = neighbours
            .iter()
            .map(|n| {
                let dtheta = angle_diff(m.angle, n.angle);
                let dir =
                    std::array::from_fn(|k| self.directional(angle_diff(self.sections[k], dtheta)));
                (n.x, n.y, dir)
            })
            .collect();
        let spatial_norm = 1.0 / (p.sigma_s * (TAU).sqrt());
        let cutoff = 3.0 * p.sigma_s;
        let cutoff2 = cutoff * cutoff;
        let inv_two_var = 1.0 / (2.0 * p.sigma_s * p.sigma_s);
        // Cell centres in the image frame: the offsets turned into the minutia's frame.
        let centres: [(f32, f32); NS * NS] = std::array::from_fn(|bit| {
            let (u, v) = self.offsets[bit];
            (m.x + cos * u - sin * v, m.y + sin * u + cos * v)
        });
        // Each neighbour only reaches the cells within `cutoff` of it: a small window of
        // the grid around its position in the minutia's frame (one cell of margin so
        // that rounding never leaves a reached cell out; the exact test is below). Going
        // neighbour by neighbour adds the contributions of every cell in the same order
        // as a loop over the neighbours of each cell.
        let cell = 2.0 * p.radius / NS as f32;
        let half = (NS as f32 + 1.0) / 2.0;
        let reach = cutoff / cell + 1.0;
        let mut sums = [[0.0f32; ND]; NS * NS];
        for (nx, ny, dir) in &neighbours {
            let (ex, ey) = (nx - m.x, ny - m.y);
            let (u, v) = (cos * ex + sin * ey, -sin * ex + cos * ey);
            let (gi, gj) = (u / cell + half - 1.0, v / cell + half - 1.0);
            let range = |g: f32| {
                let lo = (g - reach).ceil().max(0.0) as usize;
                let hi = ((g + reach).floor() + 1.0).clamp(0.0, NS as f32) as usize;
                lo..hi.max(lo)
            };
            for i in range(gi) {
                for j in range(gj) {
                    let bit = i * NS + j;
                    let (cx, cy) = centres[bit];
                    let (dx, dy) = (nx - cx, ny - cy);
                    let d2 = dx * dx + dy * dy;
                    if d2 > cutoff2 {
                        continue;
                    }
                    let spatial = spatial_norm * (-d2 * inv_two_var).exp();
                    for (sum, d) in sums[bit].iter_mut().zip(dir) {
                        *sum += spatial * d;
                    }
                }
            }
        }
        let mut valid_cells = 0usize;
        for &(bit, _, _) in &self.cells {
            if !all_valid && !inside_hull(hull, centres[bit], p.hull_offset) {
                continue;
            }
            valid_cells += 1;
            let (word, mask) = (bit / 64, 1u64 << (bit % 64));
            cyl.valid[word] |= mask;
            for (k, sum) in sums[bit].iter().enumerate() {
                if *sum >= p.mu_psi {
                    cyl.values[k][word] |= mask;
                }
            }
        }
        cyl.full = valid_cells == self.cells.len();
        cyl.ones = cyl.values.iter().flatten().map(|w| w.count_ones()).sum();
        let enough = valid_cells as f32 >= p.min_valid_cells * self.cells.len() as f32;
        enough.then_some(cyl)
    }

    /// Integral of the directional Gaussian over the section centred on `alpha`.
    fn directional(&self, alpha: f32) -> f32 {
        let half = PI / ND as f32;
        let s = self.params.sigma_d * std::f32::consts::SQRT_2;
        0.5 * (erf((alpha + half) / s) - erf((alpha - half) / s))
    }

    /// The bit counts `(|a|, |b|, |a ⊕ b|)` over the cells valid in both cylinders, from
    /// which [`similarity_from_roots`] makes theirs; zeros (similarity 0) when too few
    /// cells are valid in both (the caller has tested the direction difference). With
    /// `AVX2` the counts run on 256-bit vectors, one layer per vector, and with `VPOPCNT`
    /// (only with `AVX2`) they are counted with the AVX-512 `vpopcntq` instruction.
    #[inline(always)]
    fn cylinder_counts<const AVX2: bool, const VPOPCNT: bool>(
        &self,
        a: &Cylinder,
        b: &Cylinder,
    ) -> (u32, u32, u32) {
        if a.full && b.full {
            // Every cell is valid in both: no masking, and the norms are known.
            (a.ones, b.ones, xor_count::<AVX2, VPOPCNT>(a, b))
        } else {
            let common: [u64; LAYER_WORDS] = std::array::from_fn(|w| a.valid[w] & b.valid[w]);
            let common_cells: u32 = common.iter().map(|w| w.count_ones()).sum();
            if (common_cells as f32) < self.params.min_matchable * self.cells.len() as f32 {
                return (0, 0, 0);
            }
            if a.full {
                // `b`'s cells are all valid in `a`: `|b ∧ m| = |b|`, one count fewer.
                let (na, nx) = half_masked_counts::<AVX2, VPOPCNT>(a, b, &common);
                (na, b.ones, nx)
            } else if b.full {
                let (nb, nx) = half_masked_counts::<AVX2, VPOPCNT>(b, a, &common);
                (a.ones, nb, nx)
            } else {
                masked_counts::<AVX2, VPOPCNT>(a, b, &common)
            }
        }
    }

    /// Every comparable cylinder pair as a key that sorts best-first: the similarity's
    /// bits inverted (similarities are non-negative, so their bit patterns order like the
    /// values), then the two cylinder indices. Keys come row by row (cylinder of `a`),
    /// each row's best key first; `row_end[r]` is where row `r` ends.
    #[inline(always)]
    fn pair_keys_with<const AVX2: bool, const VPOPCNT: bool>(
        &self,
        a: &PreparedFinger,
        b: &PreparedFinger,
        keys: &mut Vec<u64>,
        row_end: &mut Vec<u32>,
    ) {
        let roots = square_roots();
        let delta = self.params.max_direction_diff;
        let first_at_least = |angle: f32| b.angles.partition_point(|&x| x < angle);
        let first_above = |angle: f32| b.angles.partition_point(|&x| x <= angle);
        for (r, (ca, &angle)) in a.cylinders.iter().zip(&a.angles).enumerate() {
            let (lo, hi) = (angle - delta, angle + delta);
            // The b cylinders whose angle is within ±delta of this one, modulo 2π.
            let runs = if lo < 0.0 {
                [0..first_above(hi), first_at_least(lo + TAU)..b.angles.len()]
            } else if hi >= TAU {
                [first_at_least(lo)..b.angles.len(), 0..first_above(hi - TAU)]
            } else {
                [first_at_least(lo)..first_above(hi), 0..0]
            };
            let start = keys.len();
            let (mut best, mut best_at) = (u64::MAX, start);
            for run in runs {
                for c in run {
                    // The runs come from the sorted angles; the exact test on each
                    // pair's own angle difference decides at the boundary.
                    if angle_diff(angle, b.angles[c]).abs() > delta {
                        continue;
                    }
                    let (na, nb, nx) = self.cylinder_counts::<AVX2, VPOPCNT>(ca, &b.cylinders[c]);
                    let root = |n: u32| roots[n as usize];
                    let s = similarity_from_roots(root(na), root(nb), root(nx));
                    if s > 0.0 {
                        let key = ((!s.to_bits()) as u64) << 32 | (r as u64) << 16 | c as u64;
                        // Keys are distinct (they hold the pair), so `<` picks one.
                        if key < best {
                            (best, best_at) = (key, keys.len());
                        }
                        keys.push(key);
                    }
                }
            }
            // The row's best key goes first (see `greedy_one_to_one`).
            if best != u64::MAX {
                keys.swap(start, best_at);
            }
            row_end.push(keys.len() as u32);
        }
    }

    /// [`Matcher::pair_keys_with`] with the fastest kernel the CPU runs.
    fn pair_keys(
        &self,
        a: &PreparedFinger,
        b: &PreparedFinger,
        keys: &mut Vec<u64>,
        row_end: &mut Vec<u32>,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if vpopcnt_detected() {
                // SAFETY: `pair_keys_avx2::<true>` needs the avx2, popcnt, avx512vpopcntdq
                // and avx512vl instructions, which the CPU was just found to have.
                #[allow(unsafe_code)]
                unsafe {
                    self.pair_keys_avx2::<true>(a, b, keys, row_end)
                };
                return;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("popcnt")
            {
                // SAFETY: `pair_keys_avx2` needs the avx2 and popcnt instructions, which
                // the CPU was just found to have.
                #[allow(unsafe_code)]
                unsafe {
                    self.pair_keys_avx2::<false>(a, b, keys, row_end)
                };
                return;
            }
            if std::arch::is_x86_feature_detected!("popcnt") {
                // SAFETY: `pair_keys_popcnt` only needs the popcnt instruction, which the
                // CPU was just found to have.
                #[allow(unsafe_code)]
                unsafe {
                    self.pair_keys_popcnt(a, b, keys, row_end)
                };
                return;
            }
        }
        self.pair_keys_with::<false, false>(a, b, keys, row_end)
    }

    /// [`Matcher::pair_keys_with`] compiled with the popcnt instruction: the
    /// cylinder comparison is mostly population counts, 2.5x faster in hardware.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    #[target_feature(enable = "popcnt")]
    unsafe fn pair_keys_popcnt(
        &self,
        a: &PreparedFinger,
        b: &PreparedFinger,
        keys: &mut Vec<u64>,
        row_end: &mut Vec<u32>,
    ) {
        self.pair_keys_with::<false, false>(a, b, keys, row_end)
    }

    /// [`Matcher::pair_keys_with`] with the AVX2 bit counts, by the nibble look-up or,
    /// with `VPOPCNT`, by `vpopcntq` (the only caller of the `AVX2 = true` instances, so
    /// those run only where AVX2 was detected, and `VPOPCNT = true` only where
    /// [`vpopcnt_detected`]).
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    #[target_feature(enable = "avx2,popcnt")]
    unsafe fn pair_keys_avx2<const VPOPCNT: bool>(
        &self,
        a: &PreparedFinger,
        b: &PreparedFinger,
        keys: &mut Vec<u64>,
        row_end: &mut Vec<u32>,
    ) {
        self.pair_keys_with::<true, VPOPCNT>(a, b, keys, row_end)
    }

    /// Compare two prepared templates: `[0, 1]`, higher = more alike.
    pub fn compare(&self, a: &PreparedFinger, b: &PreparedFinger) -> f32 {
        with_scratch(|scratch| {
            let pairs = self.relaxed_pairs(a, b, scratch);
            pairs.iter().map(|p| p.similarity).sum::<f32>() / pairs.len().max(1) as f32
        })
    }

    /// Compare two templates (prepares both; use [`Matcher::prepare`] and
    /// [`Matcher::compare`] when one side is compared many times).
    pub fn compare_templates(&self, a: &FingerTemplate, b: &FingerTemplate) -> f32 {
        self.compare(&self.prepare(a), &self.prepare(b))
    }

    /// The minutia pairs behind the score (indices into each template's minutiae), best
    /// first: what an examiner is shown.
    pub fn matched_pairs(&self, a: &PreparedFinger, b: &PreparedFinger) -> Vec<MatchedPair> {
        let mut pairs = with_scratch(|scratch| self.relaxed_pairs(a, b, scratch).to_vec());
        pairs.sort_by(|x, y| y.similarity.total_cmp(&x.similarity));
        pairs
    }

    /// LSS-R: the `n_P` most geometrically consistent one-to-one pairs after relaxation,
    /// left in `scratch.out`.
    fn relaxed_pairs<'s>(
        &self,
        a: &PreparedFinger,
        b: &PreparedFinger,
        scratch: &'s mut Scratch,
    ) -> &'s [MatchedPair] {
        scratch.out.clear();
        let (na, nb) = (a.cylinders.len(), b.cylinders.len());
        if na < 2 || nb < 2 {
            return &scratch.out;
        }
        scratch.keys.clear();
        scratch.row_end.clear();
        self.pair_keys(a, b, &mut scratch.keys, &mut scratch.row_end);
        greedy_one_to_one(
            &scratch.keys,
            &scratch.row_end,
            nb,
            &mut scratch.column_best,
            &mut scratch.chosen,
        );
        let chosen = &mut scratch.chosen;
        for pair in chosen.iter_mut() {
            pair.1 = a.cylinders[pair.1].minutia;
            pair.2 = b.cylinders[pair.2].minutia;
        }
        let wanted = na.min(nb);
        let (min_np, max_np, mu_p, tau_p) = self.params.pairs;
        let n_p = min_np
            + ((sigmoid(wanted as f32, mu_p, tau_p) * (max_np - min_np) as f32).round() as usize);
        self.relax(chosen, a, b, &mut scratch.relax);
        let relaxed = &scratch.relax.lambda;
        // Most efficient first, ties by index: as keys, the efficiency's bits inverted
        // (it is finite and non-negative, so its bits order like its value), then the
        // index, with one integer sort instead of a divide in every comparison.
        let order = &mut scratch.order;
        order.clear();
        order.extend((0..chosen.len()).map(|t| {
            let efficiency = relaxed[t] / chosen[t].0;
            ((!efficiency.to_bits()) as u64) << 32 | t as u64
        }));
        order.sort_unstable();
        scratch.out.extend(
            order
                .iter()
                .take(n_p.min(chosen.len()))
                .map(|&key| (key & 0xFFFF_FFFF) as usize)
                .map(|t| MatchedPair {
                    a: chosen[t].1,
                    b: chosen[t].2,
                    similarity: relaxed[t],
                }),
        );
        &scratch.out
    }

    /// Relaxation: each pair's similarity is pulled towards the similarities of the
    /// pairs geometrically compatible with it. The result is left in `rs.lambda`.
    fn relax(
        &self,
        pairs: &[(f32, usize, usize)],
        a: &PreparedFinger,
        b: &PreparedFinger,
        rs: &mut RelaxScratch,
    ) {
        let n = pairs.len();
        rs.lambda.clear();
        rs.lambda.extend(pairs.iter().map(|p| p.0));
        if n < 2 {
            return;
        }
        let [(mu1, tau1), (mu2, tau2), (mu3, tau3)] = self.params.compat;
        // Compatibilities below 1e-4 are dropped: a sparse list per pair keeps the
        // relaxation cheap for impostors, whose pairs are mostly incompatible. Each
        // term bounds the product, so a pair whose distance term, or direction term, is
        // already below 1e-4 skips the rest (the direction bound has a margin so that
        // rounding never decides it).
        let cutoff = mu1 + (1e4f32 - 1.0).ln() / tau1.abs();
        let cutoff2 = mu2 + (1e4f32 - 1.0).ln() / tau2.abs() + 0.01;
        rs.edges.clear();
        rs.xy.clear();
        rs.xy.extend(pairs.iter().map(|p| {
            let (pa, pb) = (&a.points[p.1], &b.points[p.2]);
            [pa.x, pa.y, pb.x, pb.y]
        }));
        rs.points.clear();
        rs.points
            .extend(pairs.iter().map(|p| (a.points[p.1], b.points[p.2])));
        rs.d1.clear();
        rs.d1.resize(n, 0.0);
        // Every pair of pairs within the distance cutoff, over all rows, in (t, k)
        // order, listed without a branch (one per pair would often be mispredicted).
        let most = n * (n - 1) / 2;
        if rs.near.len() < most {
            rs.near.resize(most, (0, 0));
            rs.near_d1.resize(most, 0.0);
        }
        let mut near = 0;
        for t in 0..n {
            // The distance terms of the whole row first, in a pass the compiler
            // vectorises; most pairs stop there.
            let [ax, ay, bx, by] = rs.xy[t];
            for (d1, xy) in rs.d1[t + 1..].iter_mut().zip(&rs.xy[t + 1..]) {
                let da = ((ax - xy[0]) * (ax - xy[0]) + (ay - xy[1]) * (ay - xy[1])).sqrt();
                let db = ((bx - xy[2]) * (bx - xy[2]) + (by - xy[3]) * (by - xy[3])).sqrt();
                *d1 = (da - db).abs();
            }
            for k in t + 1..n {
                rs.near[near] = (t as u32, k as u32);
                rs.near_d1[near] = rs.d1[k];
                near += usize::from(rs.d1[k] <= cutoff);
            }
        }
        // Their direction and radial-angle differences, gathered first so that the
        // arithmetic runs in one pass over all of them that the compiler vectorises.
        let g = &mut rs.geometry;
        g.clear();
        for &(t, k) in &rs.near[..near] {
            let ((at, bt), (ak, bk)) = (&rs.points[t as usize], &rs.points[k as usize]);
            g.push(
                [at.angle, ak.angle, bt.angle, bk.angle],
                [at.x - ak.x, at.y - ak.y, bt.x - bk.x, bt.y - bk.y],
            );
        }
        g.differences();
        // Those whose direction term is below 1e-4 left out, again without a branch:
        // the list is compacted in place.
        let mut kept = 0;
        for i in 0..near {
            (rs.near[kept], rs.near_d1[kept]) = (rs.near[i], rs.near_d1[i]);
            (g.d2[kept], g.d3[kept]) = (g.d2[i], g.d3[i]);
            kept += usize::from(!(tau2 < 0.0 && g.d2[i] > cutoff2));
        }
        rs.edges.resize(kept, (0, 0, 0.0));
        let mut compatible = 0;
        for i in 0..kept {
            let r = sigmoid(rs.near_d1[i], mu1, tau1)
                * sigmoid(g.d2[i], mu2, tau2)
                * sigmoid(g.d3[i], mu3, tau3);
            let (t, k) = rs.near[i];
            rs.edges[compatible] = (t, k, r);
            compatible += usize::from(r >= 1e-4);
        }
        rs.edges.truncate(compatible);
        // The compatible pairs of each pair in increasing order (rows of a sparse
        // symmetric matrix): the edges come sorted by (t, k), so filling both ends in
        // that order keeps every row sorted.
        rs.start.clear();
        rs.start.resize(n + 1, 0);
        for &(t, k, _) in &rs.edges {
            rs.start[t as usize + 1] += 1;
            rs.start[k as usize + 1] += 1;
        }
        for t in 0..n {
            rs.start[t + 1] += rs.start[t];
        }
        rs.rho.clear();
        rs.rho.resize(rs.start[n] as usize, (0, 0.0));
        rs.fill.clear();
        rs.fill.extend_from_slice(&rs.start[..n]);
        for &(t, k, r) in &rs.edges {
            rs.rho[rs.fill[t as usize] as usize] = (k, r);
            rs.fill[t as usize] += 1;
            rs.rho[rs.fill[k as usize] as usize] = (t, r);
            rs.fill[k as usize] += 1;
        }
        let w = self.params.relax_weight;
        rs.next.clear();
        rs.next.resize(n, 0.0);
        for _ in 0..self.params.relax_rounds {
            for t in 0..n {
                let row = &rs.rho[rs.start[t] as usize..rs.start[t + 1] as usize];
                let support: f32 = row.iter().map(|&(k, r)| r * rs.lambda[k as usize]).sum();
                rs.next[t] = w * rs.lambda[t] + (1.0 - w) * support / (n - 1) as f32;
            }
            std::mem::swap(&mut rs.lambda, &mut rs.next);
        }
    }
}

/// Buffers reused from one comparison to the next (one set per thread), so that a
/// comparison allocates nothing once the thread has warmed up.
#[derive(Debug, Default)]
struct Scratch {
    keys: Vec<u64>,
    row_end: Vec<u32>,
    column_best: Vec<u64>,
    chosen: Vec<(f32, usize, usize)>,
    order: Vec<u64>,
    relax: RelaxScratch,
    out: Vec<MatchedPair>,
}

/// The angles and position differences of pairs of pairs, one array per quantity so
/// that [`PairGeometry::differences`] vectorises.
#[derive(Debug, Default)]
struct PairGeometry {
    /// Directions of the minutiae `t` and `k` in `a`, then in `b`.
    angles: [Vec<f32>; 4],
    /// `t - k` in `a` (x, y), then in `b`.
    offsets: [Vec<f32>; 4],
    /// Direction-difference disagreement (`d_2`).
    d2: Vec<f32>,
    /// Radial-angle disagreement (`d_3`).
    d3: Vec<f32>,
}

impl PairGeometry {
    fn clear(&mut self) {
        self.angles.iter_mut().for_each(Vec::clear);
        self.offsets.iter_mut().for_each(Vec::clear);
    }

    fn push(&mut self, angles: [f32; 4], offsets: [f32; 4]) {
        for (v, x) in self.angles.iter_mut().zip(angles) {
            v.push(x);
        }
        for (v, x) in self.offsets.iter_mut().zip(offsets) {
            v.push(x);
        }
    }

    /// `d2` and `d3` of every pushed pair of pairs.
    fn differences(&mut self) {
        let n = self.angles[0].len();
        self.d2.clear();
        self.d2.resize(n, 0.0);
        self.d3.clear();
        self.d3.resize(n, 0.0);
        let [at, ak, bt, bk] = &self.angles;
        let [ax, ay, bx, by] = &self.offsets;
        // Slices of one length, so that the loop runs without bounds checks.
        let (at, ak, bt, bk) = (&at[..n], &ak[..n], &bt[..n], &bk[..n]);
        let (ax, ay, bx, by) = (&ax[..n], &ay[..n], &bx[..n], &by[..n]);
        let (d2, d3) = (&mut self.d2[..n], &mut self.d3[..n]);
        for i in 0..n {
            d2[i] = angle_diff(angle_diff(at[i], ak[i]), angle_diff(bt[i], bk[i])).abs();
            // The paper's `d_R`: the angle between `t`'s direction and the line from `k`.
            let radial_a = angle_diff(at[i], fast_atan2(ay[i], ax[i]));
            let radial_b = angle_diff(bt[i], fast_atan2(by[i], bx[i]));
            d3[i] = angle_diff(radial_a, radial_b).abs();
        }
    }
}

/// The relaxation's buffers.
#[derive(Debug, Default)]
struct RelaxScratch {
    points: Vec<(Point, Point)>,
    xy: Vec<[f32; 4]>,
    d1: Vec<f32>,
    near: Vec<(u32, u32)>,
    near_d1: Vec<f32>,
    geometry: PairGeometry,
    edges: Vec<(u32, u32, f32)>,
    start: Vec<u32>,
    fill: Vec<u32>,
    rho: Vec<(u32, f32)>,
    lambda: Vec<f32>,
    next: Vec<f32>,
}

/// Run `f` with this thread's scratch buffers.
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        // Only reachable if `f` itself compared (it does not): fresh buffers then.
        Err(_) => f(&mut Scratch::default()),
    })
}

/// The greedy one-to-one pairing of LSS: pairs taken best first, no cylinder used
/// twice, from keys made in [`Matcher::pair_keys`] (row by row, each row's best key
/// first, `row_end[r]` ending row `r`), into `chosen` best first as (similarity, row,
/// column).
///
/// Rather than sorting the keys, this is Gale and Shapley's deferred acceptance (rows
/// propose to their best column that would take them, a column keeps its best offer):
/// when both sides rank by one set of distinct weights, the stable matching is unique
/// and it is exactly the greedy one (a pair the greedy pass skips has an end already
/// taken by a better pair, so it cannot block; a pair it takes is the best left for
/// both ends). A row's first proposal is its first key, with no scan when that column
/// takes it, as it mostly does; later proposals scan the row (about a dozen keys).
fn greedy_one_to_one(
    keys: &[u64],
    row_end: &[u32],
    nb: usize,
    column_best: &mut Vec<u64>,
    chosen: &mut Vec<(f32, usize, usize)>,
) {
    column_best.clear();
    column_best.resize(nb, u64::MAX);
    let row = |r: usize| {
        let start = if r == 0 { 0 } else { row_end[r - 1] as usize };
        &keys[start..row_end[r] as usize]
    };
    for r in 0..row_end.len() {
        let mut proposer = r;
        let mut best = match row(r).first() {
            Some(&k) if k < column_best[(k & 0xFFFF) as usize] => k,
            _ => u64::MAX,
        };
        loop {
            if best == u64::MAX {
                for &k in row(proposer) {
                    // `&`, not `&&`: a select instead of a hard-to-predict branch.
                    if (k < best) & (k < column_best[(k & 0xFFFF) as usize]) {
                        best = k;
                    }
                }
                if best == u64::MAX {
                    break;
                }
            }
            let jilted = std::mem::replace(&mut column_best[(best & 0xFFFF) as usize], best);
            if jilted == u64::MAX {
                break;
            }
            proposer = ((jilted >> 16) & 0xFFFF) as usize;
            best = u64::MAX;
        }
    }
    // Best first: the keys' order (similarity, then row, then column).
    column_best.sort_unstable();
    chosen.clear();
    chosen.extend(
        column_best
            .iter()
            .take_while(|&&k| k != u64::MAX)
            .map(|&k| {
                (
                    f32::from_bits(!((k >> 32) as u32)),
                    ((k >> 16) & 0xFFFF) as usize,
                    (k & 0xFFFF) as usize,
                )
            }),
    );
}

/// `√n` for every bit count of a cylinder pair (0 to `ND * NS * NS`): a look-up in
/// place of three square roots per pair, the same values.
fn square_roots() -> &'static [f32; ND * NS * NS + 1] {
    static ROOTS: std::sync::OnceLock<[f32; ND * NS * NS + 1]> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| std::array::from_fn(|n| (n as f32).sqrt()))
}

/// The bit-based cylinder similarity from the square roots of its counts:
/// `1 - √|a⊕b| / (√|a| + √|b|)` (the paper's `1 - ‖a ⊕ b‖ / (‖a‖ + ‖b‖)`), 0 for two
/// empty cylinders.
#[inline(always)]
fn similarity_from_roots(root_a: f32, root_b: f32, root_x: f32) -> f32 {
    let norms = root_a + root_b;
    if norms == 0.0 {
        0.0
    } else {
        1.0 - root_x / norms
    }
}

/// Set bits of `a ^ b` over all layers (the two cylinders' Hamming distance).
#[inline(always)]
fn xor_count<const AVX2: bool, const VPOPCNT: bool>(a: &Cylinder, b: &Cylinder) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: `AVX2 = true` is instantiated only under `pair_keys_avx2`, which runs
        // after the CPU was found to have AVX2, and `VPOPCNT = true` only under
        // `pair_keys_avx2::<true>`, after it was found to have VPOPCNTDQ and VL.
        #[allow(unsafe_code)]
        return unsafe { avx2::xor_count::<VPOPCNT>(a, b) };
    }
    a.values
        .iter()
        .flatten()
        .zip(b.values.iter().flatten())
        .map(|(x, y)| (x ^ y).count_ones())
        .sum()
}

/// `(|a ∧ m|, |b ∧ m|, |(a ⊕ b) ∧ m|)` over all layers, `m` the cells valid in both.
#[inline(always)]
fn masked_counts<const AVX2: bool, const VPOPCNT: bool>(
    a: &Cylinder,
    b: &Cylinder,
    common: &[u64; LAYER_WORDS],
) -> (u32, u32, u32) {
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: as in `xor_count`.
        #[allow(unsafe_code)]
        return unsafe { avx2::masked_counts::<VPOPCNT>(a, b, common) };
    }
    let (mut na, mut nb, mut nx) = (0u32, 0u32, 0u32);
    for (va, vb) in a.values.iter().zip(&b.values) {
        for ((x, y), m) in va.iter().zip(vb).zip(common) {
            let (x, y) = (x & m, y & m);
            na += x.count_ones();
            nb += y.count_ones();
            nx += (x ^ y).count_ones();
        }
    }
    (na, nb, nx)
}

/// `(|a ∧ m|, |(a ∧ m) ⊕ b|)` over all layers, for a `b` whose cells are all in `m`.
#[inline(always)]
fn half_masked_counts<const AVX2: bool, const VPOPCNT: bool>(
    a: &Cylinder,
    b: &Cylinder,
    common: &[u64; LAYER_WORDS],
) -> (u32, u32) {
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: as in `xor_count`.
        #[allow(unsafe_code)]
        return unsafe { avx2::half_masked_counts::<VPOPCNT>(a, b, common) };
    }
    let (mut na, mut nx) = (0u32, 0u32);
    for (va, vb) in a.values.iter().zip(&b.values) {
        for ((x, y), m) in va.iter().zip(vb).zip(common) {
            let x = x & m;
            na += x.count_ones();
            nx += (x ^ y).count_ones();
        }
    }
    (na, nx)
}

/// Whether the CPU runs the AVX2 kernels with `vpopcntq` (AVX-512 VPOPCNTDQ, on 256-bit
/// vectors with AVX-512 VL); the detection macro also checks that the OS saves the
/// AVX-512 state.
#[cfg(target_arch = "x86_64")]
pub(crate) fn vpopcnt_detected() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("popcnt")
        && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
        && std::arch::is_x86_feature_detected!("avx512vl")
}

/// The bit counts on 256-bit vectors: a direction layer (`NS * NS` = 256 cells) is one
/// vector, and a vector's bits are counted with the nibble look-up of W. Muła, N. Kurz,
/// D. Lemire, "Faster population counts using AVX2 instructions", The Computer Journal
/// 61(1), 2018 (per-byte counts, summed with `vpsadbw` once at the end), or, with
/// `VPOPCNT`, with the AVX-512 `vpopcntq` instruction (per 64-bit lane counts).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(crate) mod avx2 {
    use super::{Cylinder, LAYER_WORDS, ND};
    use std::arch::x86_64::*;

    const _: () = assert!(LAYER_WORDS * 64 == 256, "one layer per 256-bit vector");

    /// Per-byte set-bit counts of `v` (each at most 8).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn byte_counts(v: __m256i) -> __m256i {
        let lut = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2,
            3, 3, 4,
        );
        let low = _mm256_set1_epi8(0x0f);
        let lo = _mm256_and_si256(v, low);
        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), low);
        _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi))
    }

    /// Per-lane set-bit counts of a 256-bit register with an AVX-512 VPOPCNTDQ
    /// instruction (with VL), as inline assembly so that it inlines into the AVX2
    /// kernels (the intrinsics need their own target features, which would keep them out
    /// of line in a function compiled for AVX2). Only for a CPU found to have both.
    macro_rules! vpopcnt {
        ($instruction:literal, $v:expr) => {{
            let counts;
            // SAFETY: the caller's CPU has the instruction (the contract of the functions
            // below); it reads and writes the two registers named and nothing else.
            unsafe {
                std::arch::asm!(
                    concat!($instruction, " {counts}, {v}"),
                    v = in(ymm_reg) $v,
                    counts = lateout(ymm_reg) counts,
                    options(pure, nomem, nostack, preserves_flags),
                );
            }
            counts
        }};
    }

    /// Per-64-bit-lane set-bit counts of `v` with `vpopcntq` (see [`vpopcnt`]).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn lane_counts(v: __m256i) -> __m256i {
        vpopcnt!("vpopcntq", v)
    }

    /// Per-32-bit-lane set-bit counts of `v` with `vpopcntd` (see [`vpopcnt`]).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn dword_counts(v: __m256i) -> __m256i {
        vpopcnt!("vpopcntd", v)
    }

    /// Set-bit counts of `v`, to be summed with [`add`] and turned into per-lane totals
    /// with [`lanes`]: per byte (the look-up) or per 64-bit lane (`vpopcntq`).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn counts<const VPOPCNT: bool>(v: __m256i) -> __m256i {
        // SAFETY: AVX2 is enabled on this function, and `VPOPCNT = true` only runs on a
        // CPU with the instruction.
        unsafe {
            if VPOPCNT {
                lane_counts(v)
            } else {
                byte_counts(v)
            }
        }
    }

    /// The sum of two [`counts`].
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn add<const VPOPCNT: bool>(x: __m256i, y: __m256i) -> __m256i {
        if VPOPCNT {
            _mm256_add_epi64(x, y)
        } else {
            _mm256_add_epi8(x, y)
        }
    }

    /// Summed [`counts`] as four 64-bit lane totals.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn lanes<const VPOPCNT: bool>(acc: __m256i) -> __m256i {
        if VPOPCNT {
            acc
        } else {
            _mm256_sad_epu8(acc, _mm256_setzero_si256())
        }
    }

    /// Layer `k` of a cylinder as one vector.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn layer(c: &Cylinder, k: usize) -> __m256i {
        // SAFETY: `values[k]` is 4 u64, 32 bytes; the load is unaligned.
        unsafe { _mm256_loadu_si256(c.values[k].as_ptr().cast()) }
    }

    /// Sum of the four 64-bit lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn lane_sum(v: __m256i) -> u64 {
        let s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        (_mm_cvtsi128_si64(s) + _mm_extract_epi64::<1>(s)) as u64
    }

    /// See [`super::xor_count`].
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn xor_count<const VPOPCNT: bool>(a: &Cylinder, b: &Cylinder) -> u32 {
        // SAFETY (whole body): AVX2 is enabled on this function, `VPOPCNT` only where the
        // CPU has it; loads are in bounds.
        unsafe {
            let mut acc = _mm256_setzero_si256();
            for k in 0..ND {
                let x = _mm256_xor_si256(layer(a, k), layer(b, k));
                acc = add::<VPOPCNT>(acc, counts::<VPOPCNT>(x));
            }
            // At most 8 * ND = 48 per byte: no overflow before the byte sums.
            lane_sum(lanes::<VPOPCNT>(acc)) as u32
        }
    }

    /// See [`super::half_masked_counts`].
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn half_masked_counts<const VPOPCNT: bool>(
        a: &Cylinder,
        b: &Cylinder,
        common: &[u64; LAYER_WORDS],
    ) -> (u32, u32) {
        // SAFETY (whole body): AVX2 is enabled on this function; loads are in bounds.
        unsafe {
            let m = _mm256_loadu_si256(common.as_ptr().cast());
            let (mut ca, mut cx) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            for k in 0..ND {
                let x = _mm256_and_si256(layer(a, k), m);
                ca = add::<VPOPCNT>(ca, counts::<VPOPCNT>(x));
                let y = _mm256_xor_si256(x, layer(b, k));
                cx = add::<VPOPCNT>(cx, counts::<VPOPCNT>(y));
            }
            let packed = _mm256_add_epi64(
                lanes::<VPOPCNT>(ca),
                _mm256_slli_epi64::<32>(lanes::<VPOPCNT>(cx)),
            );
            let t = lane_sum(packed);
            ((t & 0xffff_ffff) as u32, (t >> 32) as u32)
        }
    }

    /// See [`super::masked_counts`].
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn masked_counts<const VPOPCNT: bool>(
        a: &Cylinder,
        b: &Cylinder,
        common: &[u64; LAYER_WORDS],
    ) -> (u32, u32, u32) {
        // SAFETY (whole body): AVX2 is enabled on this function; loads are in bounds.
        unsafe {
            let m = _mm256_loadu_si256(common.as_ptr().cast());
            let (mut ca, mut cb, mut cx) = (
                _mm256_setzero_si256(),
                _mm256_setzero_si256(),
                _mm256_setzero_si256(),
            );
            for k in 0..ND {
                let x = _mm256_and_si256(layer(a, k), m);
                let y = _mm256_and_si256(layer(b, k), m);
                ca = add::<VPOPCNT>(ca, counts::<VPOPCNT>(x));
                cb = add::<VPOPCNT>(cb, counts::<VPOPCNT>(y));
                cx = add::<VPOPCNT>(cx, counts::<VPOPCNT>(_mm256_xor_si256(x, y)));
            }
            // Each total is at most ND * 256 = 1536 < 2^16: the three share one lane sum
            // in 16-bit fields.
            let packed = _mm256_add_epi64(
                lanes::<VPOPCNT>(ca),
                _mm256_add_epi64(
                    _mm256_slli_epi64::<16>(lanes::<VPOPCNT>(cb)),
                    _mm256_slli_epi64::<32>(lanes::<VPOPCNT>(cx)),
                ),
            );
            let t = lane_sum(packed);
            (
                (t & 0xffff) as u32,
                ((t >> 16) & 0xffff) as u32,
                (t >> 32) as u32,
            )
        }
    }
}

/// Template minutiae in the matcher's frame: scaled to 500 ppi, y up.
fn to_points(t: &FingerTemplate) -> Vec<Point> {
    let scale = |res: u16| match res {
        // 197 px/cm is 500 ppi; an absent or implausible resolution is taken as 500 ppi.
        98..=400 => 197.0 / res as f32,
        _ => 1.0,
    };
    let (sx, sy) = (scale(t.resolution_x), scale(t.resolution_y));
    t.minutiae
        .iter()
        .take(MAX_MINUTIAE)
        .map(|m: &Minutia| Point {
            x: m.x as f32 * sx,
            y: -(m.y as f32) * sy,
            // In [0, 2π): `rem_euclid` gives 2π itself for a tiny negative angle.
            angle: match m.angle.rem_euclid(TAU) {
                a if a >= TAU => 0.0,
                a => a,
            },
        })
        .collect()
}

fn dist(a: &Point, b: &Point) -> f32 {
    ((a.x - b.x) * (a.x - b.x) + (a.y - b.y) * (a.y - b.y)).sqrt()
}

/// `a - b` wrapped into `[-π, π)`, for `a - b` within `[-3π, 3π)`: every call here
/// takes two angles in `[0, 2π)`, or in `[-π, π]`, or one of each. Selects instead of a
/// float modulo, which is slow, so that loops over it vectorise.
#[inline(always)]
fn angle_diff(a: f32, b: f32) -> f32 {
    let d = a - b;
    let d = if d >= PI { d - TAU } else { d };
    if d < -PI {
        d + TAU
    } else {
        d
    }
}

/// `atan2(y, x)` in `[-π, π]` to within 1.5e-5 radians: a minimax polynomial on the
/// octant, a fraction of libm's cost in the relaxation's inner loop.
#[inline(always)]
fn fast_atan2(y: f32, x: f32) -> f32 {
    let (ax, ay) = (x.abs(), y.abs());
    let steep = ay > ax;
    let (num, den) = if steep { (ax, ay) } else { (ay, ax) };
    let t = num / den;
    let t2 = t * t;
    let r = t
        * (0.999_866
            + t2 * (-0.330_299_5 + t2 * (0.180_141 + t2 * (-0.085_133 + t2 * 0.020_835_1))));
    // Selects rather than branches, so that loops over it vectorise.
    let r = if steep {
        std::f32::consts::FRAC_PI_2 - r
    } else {
        r
    };
    let r = if x < 0.0 { PI - r } else { r };
    let r = if y < 0.0 { -r } else { r };
    if den == 0.0 {
        0.0
    } else {
        r
    }
}

/// `1 / (1 + e^(-τ (v - μ)))`.
fn sigmoid(v: f32, mu: f32, tau: f32) -> f32 {
    1.0 / (1.0 + (-tau * (v - mu)).exp())
}

/// Error function, Abramowitz and Stegun 7.1.26 (absolute error < 1.5e-7).
fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_72 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * (-x * x).exp();
    y.copysign(x)
}

/// Convex hull of the minutiae, counter-clockwise (Andrew's monotone chain).
fn convex_hull(points: &[Point]) -> Vec<(f32, f32)> {
    let mut pts: Vec<(f32, f32)> = points.iter().map(|p| (p.x, p.y)).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let cross = |o: (f32, f32), a: (f32, f32), b: (f32, f32)| {
        (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
    };
    let mut hull: Vec<(f32, f32)> = Vec::with_capacity(pts.len() * 2);
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &(f32, f32)>> = if pass == 0 {
            Box::new(pts.iter())
        } else {
            Box::new(pts.iter().rev())
        };
        for &p in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

/// Whether `p` lies inside the hull or within `offset` of it.
fn inside_hull(hull: &[(f32, f32)], p: (f32, f32), offset: f32) -> bool {
    match hull.len() {
        0 => false,
        1 => {
            let (dx, dy) = (p.0 - hull[0].0, p.1 - hull[0].1);
            dx * dx + dy * dy <= offset * offset
        }
        n => {
            // Inside a counter-clockwise hull: left of (or on) every edge. Most cells
            // are, and they need no distances.
            if n >= 3
                && (0..n).all(|i| {
                    let (a, b) = (hull[i], hull[(i + 1) % n]);
                    (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0) >= 0.0
                })
            {
                return true;
            }
            let offset2 = offset * offset;
            (0..n).any(|i| segment_dist2(hull[i], hull[(i + 1) % n], p) <= offset2)
        }
    }
}

/// Squared distance from `p` to the segment `a`-`b`.
fn segment_dist2(a: (f32, f32), b: (f32, f32), p: (f32, f32)) -> f32 {
    let (ex, ey) = (b.0 - a.0, b.1 - a.1);
    let (px, py) = (p.0 - a.0, p.1 - a.1);
    let len2 = ex * ex + ey * ey;
    let t = if len2 > 0.0 {
        ((px * ex + py * ey) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (qx, qy) = (px - t * ex, py - t * ey);
    qx * qx + qy * qy
}

/// How deep `p` lies inside the hull: its distance to the nearest edge when inside, 0
/// when outside or when the hull has no inside (fewer than three points).
fn depth_in_hull(hull: &[(f32, f32)], p: (f32, f32)) -> f32 {
    let n = hull.len();
    if n < 3 {
        return 0.0;
    }
    let mut nearest2 = f32::INFINITY;
    for i in 0..n {
        let (a, b) = (hull[i], hull[(i + 1) % n]);
        if (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0) < 0.0 {
            return 0.0;
        }
        nearest2 = nearest2.min(segment_dist2(a, b, p));
    }
    nearest2.sqrt()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::MinutiaKind;
    use huella_core::FingerPosition;

    /// A deterministic pseudo-random finger: `n` minutiae spread over a 300x400 image.
    pub(crate) fn finger(seed: u64, n: usize) -> FingerTemplate {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32) / (1u64 << 31) as f32
        };
        let minutiae = (0..n)
            .map(|_| Minutia {
                x: 40 + (next() * 220.0) as u16,
                y: 40 + (next() * 320.0) as u16,
                angle: next() * TAU,
                kind: MinutiaKind::Ending,
                quality: 60,
            })
            .collect();
        FingerTemplate {
            width: 300,
            height: 400,
            resolution_x: 197,
            resolution_y: 197,
            position: FingerPosition::Unknown,
            quality: 60,
            minutiae,
        }
    }

    /// The same finger moved: rotated by `rot` around (150, 200), shifted, every
    /// minutia jittered by up to `jitter` pixels, the ones leaving the image dropped.
    pub(crate) fn moved(
        t: &FingerTemplate,
        rot: f32,
        shift: (f32, f32),
        jitter: f32,
    ) -> FingerTemplate {
        let (s, c) = rot.sin_cos();
        let mut out = t.clone();
        out.minutiae = t
            .minutiae
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let (dx, dy) = (m.x as f32 - 150.0, m.y as f32 - 200.0);
                // Counter-clockwise as viewed with y down.
                let j = jitter * ((i as f32 * 1.7).sin());
                let x = 150.0 + c * dx + s * dy + shift.0 + j;
                let y = 200.0 - s * dx + c * dy + shift.1 - j;
                ((0.0..300.0).contains(&x) && (0.0..400.0).contains(&y)).then(|| Minutia {
                    x: x as u16,
                    y: y as u16,
                    angle: (m.angle + rot).rem_euclid(TAU),
                    ..*m
                })
            })
            .collect();
        out
    }

    #[test]
    fn mates_outscore_non_mates_under_rotation_and_translation() {
        let m = Matcher::default();
        for seed in 0..5 {
            let a = finger(seed, 40);
            let mate = moved(&a, 0.5, (15.0, -20.0), 2.0);
            let other = finger(seed + 100, 40);
            let genuine = m.compare_templates(&a, &mate);
            let impostor = m.compare_templates(&a, &other);
            assert!(genuine > 0.3, "seed {seed}: genuine {genuine}");
            assert!(impostor < 0.15, "seed {seed}: impostor {impostor}");
        }
    }

    #[test]
    fn scores_are_bounded_symmetric_and_self_match_is_high() {
        let m = Matcher::default();
        let (a, b) = (finger(1, 35), moved(&finger(1, 35), -0.3, (5.0, 5.0), 3.0));
        let (ab, ba) = (m.compare_templates(&a, &b), m.compare_templates(&b, &a));
        assert!((0.0..=1.0).contains(&ab));
        assert!((ab - ba).abs() < 1e-3, "{ab} vs {ba}");
        assert!(m.compare_templates(&a, &a) > 0.9);
    }

    #[test]
    fn degenerate_templates_score_zero() {
        let m = Matcher::default();
        let a = finger(3, 30);
        for n in [0, 1, 2] {
            assert_eq!(m.compare_templates(&a, &finger(4, n)), 0.0);
        }
        // All minutiae on one spot: no valid cylinder area, still no panic.
        let mut same = finger(5, 10);
        for mi in &mut same.minutiae {
            (mi.x, mi.y) = (100, 100);
        }
        assert!(m.compare_templates(&same, &same).is_finite());
    }

    /// The cylinder as the paper defines it, cell by cell: every neighbour's spatial and
    /// directional contributions summed for each cell, and the hull tested for each.
    fn reference_cylinder(m: &Matcher, index: usize, points: &[Point]) -> Option<Cylinder> {
        let p = &m.params;
        let pt = &points[index];
        let hull = convex_hull(points);
        let neighbours: Vec<&Point> = points
            .iter()
            .enumerate()
            .filter(|&(j, n)| j != index && dist(pt, n) <= p.radius + 3.0 * p.sigma_s)
            .map(|(_, n)| n)
            .collect();
        if neighbours.len() < p.min_neighbours {
            return None;
        }
        let (sin, cos) = pt.angle.sin_cos();
        let mut cyl = Cylinder {
            values: [[0; LAYER_WORDS]; ND],
            valid: [0; LAYER_WORDS],
            minutia: index,
            full: false,
            ones: 0,
        };
        let mut valid_cells = 0;
        for &(bit, u, v) in &m.cells {
            let (cx, cy) = (pt.x + cos * u - sin * v, pt.y + sin * u + cos * v);
            if !inside_hull(&hull, (cx, cy), p.hull_offset) {
                continue;
            }
            valid_cells += 1;
            let (word, mask) = (bit / 64, 1u64 << (bit % 64));
            cyl.valid[word] |= mask;
            let mut sums = [0.0f32; ND];
            for n in &neighbours {
                let d2 = (n.x - cx) * (n.x - cx) + (n.y - cy) * (n.y - cy);
                if d2 > 9.0 * p.sigma_s * p.sigma_s {
                    continue;
                }
                let spatial = (-d2 * (1.0 / (2.0 * p.sigma_s * p.sigma_s))).exp()
                    * (1.0 / (p.sigma_s * TAU.sqrt()));
                let dtheta = angle_diff(pt.angle, n.angle);
                for (k, sum) in sums.iter_mut().enumerate() {
                    *sum += spatial * m.directional(angle_diff(m.sections[k], dtheta));
                }
            }
            for (k, sum) in sums.iter().enumerate() {
                if *sum >= p.mu_psi {
                    cyl.values[k][word] |= mask;
                }
            }
        }
        cyl.full = valid_cells == m.cells.len();
        cyl.ones = cyl.values.iter().flatten().map(|w| w.count_ones()).sum();
        (valid_cells as f32 >= p.min_valid_cells * m.cells.len() as f32).then_some(cyl)
    }

    #[test]
    fn prepared_cylinders_equal_the_cell_by_cell_definition() {
        let m = Matcher::default();
        let (mut compared, mut partial) = (0, 0);
        for seed in 0..20 {
            let t = moved(
                &finger(seed, 25 + seed as usize * 2),
                0.1 * seed as f32,
                (3.0, -4.0),
                1.0,
            );
            let prepared = m.prepare(&t);
            let mut want: Vec<Cylinder> = (0..prepared.points.len())
                .filter_map(|i| reference_cylinder(&m, i, &prepared.points))
                .collect();
            want.sort_by(|x, y| {
                let (ax, ay) = (
                    prepared.points[x.minutia].angle,
                    prepared.points[y.minutia].angle,
                );
                ax.total_cmp(&ay).then(x.minutia.cmp(&y.minutia))
            });
            assert_eq!(prepared.cylinders, want, "seed {seed}");
            compared += want.len();
            partial += want.iter().filter(|c| !c.full).count();
        }
        // Both kinds of cylinder took part: whole ones (hull test skipped) and clipped.
        assert!(
            compared > 300 && partial > 50 && partial < compared,
            "{compared} {partial}"
        );
    }

    /// The greedy pairing by its definition: every key sorted, taken best first.
    fn sorted_greedy(keys: &[u64], na: usize, nb: usize) -> Vec<(f32, usize, usize)> {
        let mut keys = keys.to_vec();
        keys.sort_unstable();
        let (mut used_a, mut used_b) = (vec![false; na], vec![false; nb]);
        let mut chosen = Vec::new();
        for k in keys {
            let (r, c) = (((k >> 16) & 0xFFFF) as usize, (k & 0xFFFF) as usize);
            if !used_a[r] && !used_b[c] {
                used_a[r] = true;
                used_b[c] = true;
                chosen.push((f32::from_bits(!((k >> 32) as u32)), r, c));
            }
        }
        chosen
    }

    #[test]
    fn deferred_acceptance_equals_the_sorted_greedy_pairing() {
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let (mut column_best, mut chosen) = (Vec::new(), Vec::new());
        for trial in 0..300 {
            let (na, nb) = (2 + next() as usize % 40, 2 + next() as usize % 40);
            let (mut keys, mut row_end) = (Vec::new(), Vec::new());
            for r in 0..na {
                for c in 0..nb {
                    // About half the pairs, similarities from a few distinct values
                    // (ties broken by the indices, as in real keys).
                    if next() % 2 == 0 {
                        let s =
                            (1 + next() % if trial % 2 == 0 { 5 } else { 1000 }) as f32 / 1000.0;
                        keys.push(((!s.to_bits()) as u64) << 32 | (r as u64) << 16 | c as u64);
                    }
                }
                // The row's best key first, as `pair_keys` leaves it.
                let start = row_end.last().map_or(0, |&e| e as usize);
                if let Some(best) = (start..keys.len()).min_by_key(|&i| keys[i]) {
                    keys.swap(start, best);
                }
                row_end.push(keys.len() as u32);
            }
            greedy_one_to_one(&keys, &row_end, nb, &mut column_best, &mut chosen);
            assert_eq!(chosen, sorted_greedy(&keys, na, nb), "trial {trial}");
        }
    }

    #[test]
    fn vector_bit_counts_equal_the_scalar_ones() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let mut state = 11u64;
            let mut word = move || {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                state ^ (state >> 29)
            };
            let mut cylinder = |density: u32| {
                let valid: [u64; LAYER_WORDS] = std::array::from_fn(|_| word() | word());
                let values = std::array::from_fn(|_| {
                    std::array::from_fn(|w| {
                        (0..density).fold(u64::MAX, |bits, _| bits & word()) & valid[w]
                    })
                });
                Cylinder {
                    values,
                    valid,
                    minutia: 0,
                    full: false,
                    ones: 0,
                }
            };
            // The AVX2 kernels with the look-up counts, or with `vpopcntq`, against the
            // scalar ones.
            fn agree<const VPOPCNT: bool>(a: &Cylinder, b: &Cylinder) {
                let common = std::array::from_fn(|w| a.valid[w] & b.valid[w]);
                assert_eq!(
                    xor_count::<true, VPOPCNT>(a, b),
                    xor_count::<false, false>(a, b)
                );
                assert_eq!(
                    masked_counts::<true, VPOPCNT>(a, b, &common),
                    masked_counts::<false, false>(a, b, &common)
                );
                assert_eq!(
                    half_masked_counts::<true, VPOPCNT>(a, b, &common),
                    half_masked_counts::<false, false>(a, b, &common)
                );
            }
            for trial in 0..500 {
                let (a, b) = (cylinder(trial % 3), cylinder(trial % 2 + 1));
                agree::<false>(&a, &b);
                if vpopcnt_detected() {
                    agree::<true>(&a, &b);
                }
            }
        }
    }

    #[test]
    fn dispatched_pair_keys_equal_the_portable_ones() {
        let m = Matcher::default();
        for seed in 0..10 {
            let a = m.prepare(&finger(seed, 45));
            let b = m.prepare(&moved(&finger(seed + seed % 2, 40), 0.4, (10.0, 5.0), 2.0));
            let (mut fast, mut fast_rows) = (Vec::new(), Vec::new());
            let (mut slow, mut slow_rows) = (Vec::new(), Vec::new());
            m.pair_keys(&a, &b, &mut fast, &mut fast_rows);
            m.pair_keys_with::<false, false>(&a, &b, &mut slow, &mut slow_rows);
            assert!(slow.len() > 100, "seed {seed}: {}", slow.len());
            assert_eq!((&fast, &fast_rows), (&slow, &slow_rows), "seed {seed}");
            // The AVX2 kernel too where the dispatch chose `vpopcntq`.
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                fast.clear();
                fast_rows.clear();
                m.pair_keys_with::<true, false>(&a, &b, &mut fast, &mut fast_rows);
                assert_eq!((fast, fast_rows), (slow, slow_rows), "seed {seed}");
            }
        }
    }

    #[test]
    fn angle_diff_wraps_like_the_modulo_on_its_domain() {
        // Pairs of angles from [0, 2π), from [-π, π] and one of each, as the callers pass.
        let grid = |lo: f32, hi: f32| (0..=97).map(move |i| lo + (hi - lo) * i as f32 / 97.0);
        let zero_to_tau = grid(0.0, TAU * 0.999_999);
        for (a, b) in zero_to_tau
            .clone()
            .flat_map(|a| grid(-PI, PI).map(move |b| (a, b)))
            .chain(
                zero_to_tau
                    .clone()
                    .flat_map(|a| zero_to_tau.clone().map(move |b| (a, b))),
            )
            .chain(grid(-PI, PI).flat_map(|a| grid(-PI, PI).map(move |b| (a, b))))
        {
            let d = angle_diff(a, b);
            let want = (a - b + PI).rem_euclid(TAU) - PI;
            assert!((-PI..PI).contains(&d), "angle_diff({a}, {b}) = {d}");
            // Equal up to the wrap's rounding, or a whole turn apart at the ±π seam.
            let off = (d - want).abs();
            assert!(
                off < 1e-5 || (off - TAU).abs() < 1e-5,
                "angle_diff({a}, {b}) = {d}, want {want}"
            );
        }
    }

    #[test]
    fn fast_atan2_is_within_1_5e5_of_atan2() {
        for i in -40..=40 {
            for j in -40..=40 {
                let (y, x) = (i as f32 * 0.37, j as f32 * 0.53);
                let want = if i == 0 && j == 0 { 0.0 } else { y.atan2(x) };
                let got = fast_atan2(y, x);
                // ±π are one direction.
                let off = (got - want).abs();
                assert!(
                    off < 1.5e-5 || (off - TAU).abs() < 1.5e-5,
                    "atan2({y}, {x}): {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-2.0, -0.995_322_3),
        ] {
            assert!((erf(x) - want).abs() < 1e-6, "erf({x})");
        }
    }

    #[test]
    fn hull_contains_its_inside_and_offset_band() {
        let pts: Vec<Point> = [
            (0.0, 0.0),
            (10.0, 0.0),
            (10.0, 10.0),
            (0.0, 10.0),
            (5.0, 5.0),
        ]
        .iter()
        .map(|&(x, y)| Point { x, y, angle: 0.0 })
        .collect();
        let hull = convex_hull(&pts);
        assert_eq!(hull.len(), 4);
        assert!(inside_hull(&hull, (5.0, 5.0), 0.0));
        assert!(!inside_hull(&hull, (15.0, 5.0), 4.0));
        assert!(inside_hull(&hull, (15.0, 5.0), 5.0));
    }
}
