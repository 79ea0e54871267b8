//! Score normalisation on impostor distributions, and fusion across modalities.
//!
//! A face score (cosine, [-1, 1]) and a finger score (MCC, [0, 1]) live on different
//! scales, and the same MCC value means less when it is the best of several fingers.
//! Each raw score is therefore turned into a **level**: `-log10` of the estimated false
//! match rate (FMR) at that score, i.e. the fraction of impostor comparisons (records of
//! different people) that score at least as high. A level of 6 means "one impostor
//! comparison in a million scores this high", whatever the modality.
//!
//! **Estimator** ([`ImpostorModel`]). Built from a sample of `n` impostor scores (the
//! de-duplicator draws it from the gallery itself: random pairs of records under
//! different subject ids). Below the `m`-th highest sample score `u` (`m` = the larger of
//! 20 and 1% of `n`) the FMR is the empirical tail fraction `#{x >= s} / n`. An empirical
//! estimate cannot go below `1/n` (its **resolution limit**: a level of `log10(n)`), yet a
//! de-duplication of a million records needs FMRs near 1e-8. Above `u` the tail is
//! therefore extrapolated with an exponential fitted to the `m` highest samples
//! (`FMR(s) = (m/n) exp(-(s-u)/b)`, `b` their mean excess over `u`, a peaks-over-threshold
//! fit). Impostor cosines and MCC scores have tails lighter than exponential, so the
//! extrapolation over-estimates the FMR: levels past the resolution limit are
//! conservative (a pair must score higher than strictly needed). A gallery contaminated
//! by undetected duplicates adds mated scores to the sample (a small gallery, whose every
//! pair is sampled, adds all of them): scores that no exponential tail fitted robustly
//! (on the median excess of the top 5%) would reach are dropped before the fit, so they
//! cannot inflate it; the few that remain only make the tail more conservative.
//!
//! **Fusion** ([`fuse_levels`]). Levels of independent comparisons (the face, each
//! finger) are combined with Fisher's method: under the impostor hypothesis each
//! comparison's FMR is uniform, `-2 ln prod(p)` is chi-square with `2k` degrees of
//! freedom, and the fused level is `-log10` of that combined probability. It assumes
//! modalities (and fingers) of an impostor pair score independently, the standard
//! assumption of product-rule fusion; correlated modalities make the fused level
//! optimistic. One comparison is unchanged by fusion, a missing modality is simply
//! absent (it neither adds nor removes evidence), and the fused level is monotone in
//! every input level.
//!
//! **Threshold** ([`threshold_for_fpir`]). De-duplicating or searching a gallery of `N`
//! records compares each probe with `N` others, so for small rates the false positive
//! identification rate is `FPIR ~ N * FMR`: a target FPIR sets the per-comparison FMR
//! `FPIR / N` and the fused threshold `-log10(FPIR / N)`. MOSIP's ABIS interface states
//! the target as `targetFPIR = round(-10 * log10(FPIR))` ([`mosip_target_fpir`]).

use huella_core::{Embedding, FingerPosition};
use huella_finger::{Matcher, PreparedFinger};

use crate::EngineError;

/// Fewest impostor scores accepted to build a model.
pub const MIN_IMPOSTOR_SAMPLE: usize = 50;
/// Fewest samples in the fitted tail.
const MIN_TAIL: usize = 20;
/// Highest level ever reported (FMR 1e-100): keeps sums finite.
pub const MAX_LEVEL: f64 = 100.0;

/// The impostor score distribution of one modality, estimated from a sample.
#[derive(Debug, Clone)]
pub struct ImpostorModel {
    sorted: Vec<f32>,
    /// Start of the fitted tail (the `m`-th highest sample).
    tail_start: f32,
    /// `-log10(m / n)`: the level at `tail_start`.
    tail_level: f64,
    /// Mean excess of the tail samples over `tail_start` (> 0).
    tail_scale: f64,
}

impl ImpostorModel {
    /// Build from impostor scores (higher = more alike). Refuses non-finite scores and
    /// samples smaller than [`MIN_IMPOSTOR_SAMPLE`].
    pub fn from_scores(mut scores: Vec<f32>) -> Result<Self, EngineError> {
        if scores.iter().any(|s| !s.is_finite()) {
            return Err(EngineError::BadInput(
                "impostor scores must be finite".into(),
            ));
        }
        if scores.len() < MIN_IMPOSTOR_SAMPLE {
            return Err(EngineError::BadInput(format!(
                "{} impostor scores are too few to normalise scores (at least {MIN_IMPOSTOR_SAMPLE} needed)",
                scores.len()
            )));
        }
        scores.sort_by(f32::total_cmp);
        let scores = drop_undetected_mates(scores);
        if scores.len() < MIN_IMPOSTOR_SAMPLE {
            return Err(EngineError::BadInput(format!(
                "{} impostor scores remain after dropping outliers: too few to normalise scores",
                scores.len()
            )));
        }
        let n = scores.len();
        let m = MIN_TAIL.max(n / 100).min(n);
        let tail_start = scores[n - m];
        let excess: f64 = scores[n - m..]
            .iter()
            .map(|&x| f64::from(x - tail_start))
            .sum::<f64>()
            / m as f64;
        Ok(Self {
            tail_start,
            tail_level: -(m as f64 / n as f64).log10(),
            // A degenerate (constant) tail would make any higher score infinitely rare.
            tail_scale: excess.max(1e-4),
            sorted: scores,
        })
    }

    /// Number of impostor scores in the sample.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether the sample is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The highest level the sample supports without extrapolation: `log10(n)`.
    pub fn resolution(&self) -> f64 {
        (self.sorted.len() as f64).log10()
    }

    /// The level of a raw score: `-log10` of the estimated FMR, in `[0, MAX_LEVEL]`;
    /// non-decreasing in `score`. A NaN score has level 0 (no evidence).
    pub fn level(&self, score: f32) -> f64 {
        if score.is_nan() {
            return 0.0;
        }
        if score >= self.tail_start {
            let above = f64::from(score - self.tail_start);
            return (self.tail_level + above / (self.tail_scale * std::f64::consts::LN_10))
                .min(MAX_LEVEL);
        }
        let n = self.sorted.len();
        let below = self.sorted.partition_point(|&x| x < score);
        let at_least = (n - below).max(1);
        -(at_least as f64 / n as f64).log10()
    }

    /// The lowest sample score whose level reaches `level` (the empirical quantile), for
    /// gating candidate lists cheaply; levels past the resolution give the top sample.
    pub fn score_at_level(&self, level: f64) -> f32 {
        let n = self.sorted.len();
        let keep = ((n as f64) * 10f64.powf(-level.max(0.0))).floor() as usize;
        self.sorted[n - keep.clamp(1, n)]
    }
}

/// Drop from a sorted impostor sample the scores no impostor tail explains: undetected
/// duplicates among the "different subject" pairs (a small gallery samples every pair,
/// so its planted or legacy duplicates would otherwise fill the top of the sample and
/// inflate the fitted tail until real matches look ordinary).
///
/// A robust exponential fit of the top `r` scores (`r` = the larger of 80 and 5% of the
/// sample): start `u` = the `r`-th highest, scale from the **median** excess over `u`
/// (`median / ln 2`, unaffected while fewer than half of those `r` are mates). A score
/// more than `ln(r) + 6` scales above `u` would be exceeded by the largest of `r`
/// impostors with probability about `e^-6` (0.25%): it is dropped. Nothing is dropped
/// when the fit is degenerate (half the top scores tied).
fn drop_undetected_mates(mut sorted: Vec<f32>) -> Vec<f32> {
    let n = sorted.len();
    let r = (4 * MIN_TAIL).max(n / 20).min(n);
    if r < MIN_TAIL {
        return sorted;
    }
    let u = sorted[n - r];
    let median = f64::from(sorted[n - r / 2] - u);
    if median <= 0.0 {
        return sorted;
    }
    let scale = median / std::f64::consts::LN_2;
    let cut = f64::from(u) + scale * ((r as f64).ln() + 6.0);
    let keep = sorted.partition_point(|&x| f64::from(x) <= cut);
    if keep < n {
        tracing::debug!(dropped = n - keep, "impostor outliers dropped");
        sorted.truncate(keep);
    }
    sorted
}

/// Fisher's combination of independent levels: `-log10` of the probability that `k`
/// independent impostor comparisons give a product of FMRs as small as these.
/// Empty input is level 0; one level is returned unchanged; monotone in every level.
pub fn fuse_levels(levels: &[f64]) -> f64 {
    let k = levels.len();
    if k == 0 {
        return 0.0;
    }
    let total: f64 = levels.iter().map(|l| l.clamp(0.0, MAX_LEVEL)).sum();
    if k == 1 {
        return total;
    }
    // y = -ln(prod p); P(chi2_{2k} >= 2y) = e^{-y} sum_{i<k} y^i / i!.
    let y = total * std::f64::consts::LN_10;
    let (mut term, mut sum) = (1.0f64, 1.0f64);
    for i in 1..k {
        term *= y / i as f64;
        sum += term;
    }
    (total - sum.log10()).max(0.0)
}

/// The level of a best-of-`m` comparison (a probe finger of unknown position compared
/// with `m` fingers): its FMR multiplied by `m` (Bonferroni), floored at 0.
pub fn best_of(level: f64, m: usize) -> f64 {
    (level - (m.max(1) as f64).log10()).max(0.0)
}

/// The per-comparison FMR for a target FPIR when each search meets `gallery` records
/// (`FPIR ~ N * FMR`, valid for small rates).
pub fn fmr_for_fpir(fpir: f64, gallery: usize) -> Result<f64, EngineError> {
    if !(fpir > 0.0 && fpir < 1.0) {
        return Err(EngineError::BadInput(format!(
            "target FPIR {fpir} must lie strictly between 0 and 1"
        )));
    }
    Ok(fpir / gallery.max(1) as f64)
}

/// The fused-level threshold for a target FPIR in a gallery of `gallery` records:
/// `-log10(FPIR / N)`.
pub fn threshold_for_fpir(fpir: f64, gallery: usize) -> Result<f64, EngineError> {
    Ok(-fmr_for_fpir(fpir, gallery)?.log10())
}

/// MOSIP's integer form of a target FPIR: `round(-10 * log10(FPIR))` (1% is 20).
pub fn mosip_target_fpir(fpir: f64) -> i32 {
    (-10.0 * fpir.log10()).round() as i32
}

/// The FPIR of a MOSIP `targetFPIR` value: `10^(-target / 10)`.
pub fn fpir_from_mosip(target: i32) -> f64 {
    10f64.powf(-f64::from(target) / 10.0)
}

/// The impostor models of a gallery, one per modality (none where too few records
/// hold it). Built by sampling the gallery (see [`Engine::deduplicate`](crate::Engine)).
#[derive(Debug, Clone, Default)]
pub(crate) struct ScoreModels {
    /// Face cosines of different subjects.
    pub(crate) face: Option<ImpostorModel>,
    /// Single finger comparisons (one finger against one) of different subjects.
    pub(crate) finger: Option<ImpostorModel>,
}

/// The best cosine between two sets of face embeddings of one model, with the index of
/// the best one in `b`; none when either set is empty.
pub(crate) fn best_face(a: &[Embedding], b: &[Embedding]) -> Option<(f32, usize)> {
    let mut best: Option<(f32, usize)> = None;
    for x in a {
        for (j, y) in b.iter().enumerate() {
            if let Ok(s) = x.cosine(y) {
                if best.is_none_or(|(m, _)| s > m) {
                    best = Some((s, j));
                }
            }
        }
    }
    best
}

/// The comparison of one finger of side `a` with the fingers of side `b`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FingerScore {
    /// The position of `a`'s finger.
    pub(crate) position: FingerPosition,
    /// The best matcher score.
    pub(crate) score: f32,
    /// Fingers of `b` compared (the best is a best-of-`compared`).
    pub(crate) compared: usize,
    /// Index in `b` of the best one.
    pub(crate) best: usize,
}

/// Each finger of `a` against `b`'s fingers at the same position (all of them for a
/// finger of unknown position): the best score per finger of `a` that met any.
pub(crate) fn finger_scores(
    matcher: &Matcher,
    a: &[(FingerPosition, &PreparedFinger)],
    b: &[(FingerPosition, &PreparedFinger)],
) -> Vec<FingerScore> {
    let mut out = Vec::new();
    for &(position, pa) in a {
        let mut found: Option<FingerScore> = None;
        for (j, &(qos, pb)) in b.iter().enumerate() {
            if position != FingerPosition::Unknown && qos != position {
                continue;
            }
            let score = matcher.compare(pa, pb);
            let f = found.get_or_insert(FingerScore {
                position,
                score,
                compared: 0,
                best: j,
            });
            f.compared += 1;
            if score > f.score {
                (f.score, f.best) = (score, j);
            }
        }
        out.extend(found);
    }
    out
}

/// The mean of the finger scores; none without any.
pub(crate) fn mean_score(fingers: &[FingerScore]) -> Option<f32> {
    (!fingers.is_empty())
        .then(|| fingers.iter().map(|f| f.score).sum::<f32>() / fingers.len() as f32)
}

/// The levels of one comparison's modalities and their fusion.
#[derive(Debug, Clone)]
pub(crate) struct Levels {
    /// The face score's level; none without a face score or a face model.
    pub(crate) face: Option<f64>,
    /// Each finger score's level (best-of corrected); none without a finger model.
    pub(crate) fingers: Vec<Option<f64>>,
    /// Fisher's fusion of the levels present ([`fuse_levels`]).
    pub(crate) fused: f64,
    /// Whether any level is present (else nothing was comparable).
    pub(crate) comparable: bool,
}

impl ScoreModels {
    /// The level of a face score and of each finger score (best-of corrected), none
    /// for a modality without a model, and their fusion.
    pub(crate) fn levels(&self, face: Option<f32>, fingers: &[FingerScore]) -> Levels {
        let face = face.and_then(|s| self.face.as_ref().map(|m| m.level(s)));
        let fingers: Vec<Option<f64>> = fingers
            .iter()
            .map(|f| {
                self.finger
                    .as_ref()
                    .map(|m| best_of(m.level(f.score), f.compared))
            })
            .collect();
        let present: Vec<f64> = face
            .into_iter()
            .chain(fingers.iter().flatten().copied())
            .collect();
        Levels {
            face,
            fused: fuse_levels(&present),
            comparable: !present.is_empty(),
            fingers,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use rand_distr::StandardNormal;

    fn gaussian(n: usize, seed: u64) -> ImpostorModel {
        let mut rng = StdRng::seed_from_u64(seed);
        ImpostorModel::from_scores(
            (0..n)
                .map(|_| 0.1 * rng.sample::<f32, _>(StandardNormal))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn level_matches_the_empirical_tail_inside_the_resolution() {
        let m = gaussian(100_000, 1);
        // N(0, 0.1): P(X >= 0.2326) = 1%, P(X >= 0.309) = 0.1%.
        assert!((m.level(0.2326) - 2.0).abs() < 0.05, "{}", m.level(0.2326));
        assert!((m.level(0.309) - 3.0).abs() < 0.15, "{}", m.level(0.309));
        assert!(m.level(-1.0) == 0.0);
        assert!((m.resolution() - 5.0).abs() < 1e-9);
        // Past the resolution the exponential tail is conservative: the true Gaussian
        // level at 0.6 (6 sigma) is ~9; the estimate is lower but well past 5.
        let l = m.level(0.6);
        assert!(l > 5.0 && l < 9.1, "{l}");
    }

    #[test]
    fn undetected_mates_in_the_sample_do_not_inflate_the_tail() {
        let mut rng = StdRng::seed_from_u64(3);
        let body: Vec<f32> = (0..1_500)
            .map(|_| 0.1 * rng.sample::<f32, _>(StandardNormal))
            .collect();
        let clean = ImpostorModel::from_scores(body.clone()).unwrap();
        // 1% of the pairs are mates scoring far above every impostor.
        let mut dirty = body;
        dirty.extend((0..15).map(|i| 0.8 + 0.01 * i as f32));
        let dirty = ImpostorModel::from_scores(dirty).unwrap();
        assert_eq!(dirty.len(), clean.len(), "the 15 mates are dropped");
        for s in [0.2, 0.3, 0.5, 0.8] {
            assert!((dirty.level(s) - clean.level(s)).abs() < 1e-9, "{s}");
        }
        // A clean Gaussian sample loses nothing, even far in its tail.
        let mut rng = StdRng::seed_from_u64(4);
        for n in [50, 1_000, 100_000] {
            let g: Vec<f32> = (0..n)
                .map(|_| rng.sample::<f32, _>(StandardNormal))
                .collect();
            assert_eq!(ImpostorModel::from_scores(g).unwrap().len(), n);
        }
    }

    #[test]
    fn property_level_is_monotone_and_bounded() {
        let mut rng = StdRng::seed_from_u64(7);
        for trial in 0..30 {
            let n = rng.gen_range(MIN_IMPOSTOR_SAMPLE..5_000);
            let scale: f32 = rng.gen_range(0.01..1.0);
            let m = ImpostorModel::from_scores(
                (0..n)
                    .map(|_| {
                        // Ties on purpose: quantised scores as a matcher gives them.
                        (scale * rng.gen::<f32>() * 50.0).round() / 50.0
                    })
                    .collect(),
            )
            .unwrap();
            let mut xs: Vec<f32> = (0..500).map(|_| rng.gen_range(-2.0..3.0)).collect();
            xs.sort_by(f32::total_cmp);
            let levels: Vec<f64> = xs.iter().map(|&x| m.level(x)).collect();
            for w in levels.windows(2) {
                assert!(w[0] <= w[1] + 1e-12, "trial {trial}: {w:?}");
            }
            assert!(levels.iter().all(|l| (0.0..=MAX_LEVEL).contains(l)));
        }
    }

    #[test]
    fn property_fusion_is_monotone_and_neutral_for_one() {
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..2_000 {
            let k = rng.gen_range(1..6);
            let mut levels: Vec<f64> = (0..k).map(|_| rng.gen_range(0.0..20.0)).collect();
            let base = fuse_levels(&levels);
            if k == 1 {
                assert!((base - levels[0]).abs() < 1e-12);
            }
            // Raising any one input never lowers the fused level.
            let i = rng.gen_range(0..k);
            levels[i] += rng.gen_range(0.0..5.0);
            assert!(fuse_levels(&levels) >= base - 1e-9);
            // Never above the plain sum (the product of FMRs, which ignores how many
            // comparisons were made), never negative.
            let sum: f64 = levels.iter().sum();
            let fused = fuse_levels(&levels);
            assert!((0.0..=sum + 1e-9).contains(&fused));
            // The naive oracle: P(Gamma(k, 1) >= y) by numerical integration.
            if k > 1 && sum < 12.0 {
                let y = sum * std::f64::consts::LN_10;
                let fact: f64 = (1..k).map(|i| i as f64).product();
                let steps = 20_000;
                let hi = y + 60.0;
                let h = (hi - y) / steps as f64;
                let f = |x: f64| x.powi(k as i32 - 1) * (-x).exp() / fact;
                let mut area = f(y) + f(hi);
                for i in 1..steps {
                    let x = y + i as f64 * h;
                    area += if i % 2 == 1 { 4.0 } else { 2.0 } * f(x);
                }
                let oracle = -(area * h / 3.0).log10();
                assert!(
                    (fused - oracle).abs() < 1e-6,
                    "{levels:?}: {fused} vs {oracle}"
                );
            }
        }
    }

    #[test]
    fn fisher_matches_the_closed_form_for_two() {
        // Two comparisons each at FMR 1e-3: P = p(1 - ln p) with p = 1e-6.
        let p: f64 = 1e-6;
        let want = -(p * (1.0 - p.ln())).log10();
        assert!((fuse_levels(&[3.0, 3.0]) - want).abs() < 1e-9);
    }

    #[test]
    fn fpir_conversions() {
        assert_eq!(mosip_target_fpir(0.01), 20);
        assert!((fpir_from_mosip(30) - 0.001).abs() < 1e-12);
        assert!((threshold_for_fpir(0.01, 1_000_000).unwrap() - 8.0).abs() < 1e-9);
        assert!(fmr_for_fpir(0.0, 10).is_err());
        assert!(fmr_for_fpir(f64::NAN, 10).is_err());
        assert!(ImpostorModel::from_scores(vec![0.0; 10]).is_err());
        assert!(ImpostorModel::from_scores(vec![f32::NAN; 100]).is_err());
    }
}
