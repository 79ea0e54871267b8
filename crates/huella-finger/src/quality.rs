//! Fingerprint impression quality, 0-100, from the extractor's block features.
//!
//! In the spirit of NFIQ 2.0 (E. Tabassi et al., *NIST Fingerprint Image Quality 2*,
//! NIST IR 8382, 2021; ISO/IEC 29794-4): a quality score should predict how well an
//! impression will match, and is judged by its error-versus-reject curve. NFIQ 2.0 feeds
//! some 69 block features to a random forest trained on mated scores; this is a small
//! transparent cousin built on what [`FingerExtractor`](crate::FingerExtractor) already
//! computes, with a hand-set combination (no training data, no model file):
//!
//! | component | raw measure | ramp (raw value scoring 0 → 1) | weight |
//! |---|---|---|---|
//! | area | foreground area, mm² (500 ppi working frame) | 30 → 120 | 0.20 |
//! | clarity | mean orientation coherence over the foreground (NFIQ 2.0's orientation certainty level) | 0.30 → 0.75 | 0.25 |
//! | uniformity | standard deviation of that coherence | 0.25 → 0.10 (falling) | 0.05 |
//! | frequency | fraction of foreground blocks with a plausible (1/15..1/5 px⁻¹) and locally smooth ridge frequency | 0.50 → 0.95 | 0.15 |
//! | minutiae | minutiae inside the foreground | 8 → 40 | 0.20 |
//! | minutia quality | mean minutia quality / 100 | 0.20 → 0.60 | 0.15 |
//!
//! Each ramp is piecewise linear and clamped to `[0, 1]`; the score is
//! `100 · Π (0.02 + 0.98 · cᵢ)^wᵢ` (a weighted geometric mean; the 0.02 floor keeps one
//! absent component from zeroing everything else), rounded. Every ramp is monotone in
//! the direction "better measure, better score", and so is the product, so improving any
//! single measure never lowers the score. The ramp ends and weights were set by looking
//! at FVC2002 DB1-4 B (the `quality_erc` example reports how well the score then ranks
//! genuine comparisons there); they are not a standard and may be refit.

use crate::Extraction;

/// Working-frame pixels per millimetre (500 ppi).
const PX_PER_MM: f32 = 500.0 / 25.4;
/// Plausible ridge frequency, ridges per pixel at 500 ppi (periods 5-15 px).
const FREQ_RANGE: std::ops::RangeInclusive<f32> = (1.0 / 15.0)..=(1.0 / 5.0);
/// Largest relative difference between a block's frequency and the median of its
/// foreground neighbours that still counts as locally smooth.
const FREQ_SMOOTH_TOLERANCE: f32 = 0.05;
/// Floor of each component inside the geometric mean.
const FLOOR: f32 = 0.02;

/// The measures behind a [`FingerQuality`] score, raw and mapped to `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QualityComponents {
    /// Fraction of the image's blocks that hold fingerprint.
    pub foreground_fraction: f32,
    /// Foreground area in square millimetres (at 500 ppi, 1 mm² ≈ 387.5 pixels).
    pub foreground_area_mm2: f32,
    /// Mean orientation coherence over the foreground, `[0, 1]` (ridge clarity).
    pub coherence_mean: f32,
    /// Standard deviation of the coherence over the foreground.
    pub coherence_std: f32,
    /// Fraction of foreground blocks whose ridge frequency is plausible and close to
    /// its neighbours'.
    pub frequency_consistency: f32,
    /// Minutiae whose position lies in a foreground block.
    pub minutiae_in_foreground: u32,
    /// Mean minutia quality, `[0, 1]` (0 when there are none).
    pub minutia_quality_mean: f32,
    /// The six ramps' values `[0, 1]`, in the order area, clarity, uniformity,
    /// frequency, minutiae, minutia quality.
    pub mapped: [f32; 6],
}

/// An impression's quality: 0 (unusable) to 100 (best), and why.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FingerQuality {
    /// Overall score, 0-100, higher = expected to match better.
    pub score: u8,
    /// The measures the score combines.
    pub components: QualityComponents,
}

/// Ramp ends (raw value mapped to 0, raw value mapped to 1) and weights, in the order of
/// [`QualityComponents::mapped`].
const RAMPS: [(f32, f32, f32); 6] = [
    (30.0, 120.0, 0.15),
    (0.30, 0.75, 0.30),
    (0.25, 0.10, 0.05),
    (0.50, 0.95, 0.10),
    (8.0, 30.0, 0.10),
    (0.20, 0.70, 0.30),
];

/// `v` mapped linearly from `[zero, one]` to `[0, 1]` and clamped (either order of ends;
/// non-finite input counts as worst).
fn ramp(v: f32, zero: f32, one: f32) -> f32 {
    if !v.is_finite() {
        return 0.0;
    }
    ((v - zero) / (one - zero)).clamp(0.0, 1.0)
}

/// The quality of the impression `extraction` came from (see the [module docs](self)).
///
/// Deterministic, and cheap next to extraction (one pass over the blocks).
pub fn finger_quality(extraction: &Extraction) -> FingerQuality {
    let maps = &extraction.maps;
    let (bw, bh) = (maps.blocks_wide, maps.blocks_high);
    let total = (bw * bh).min(maps.foreground.len());
    let fg = |bx: usize, by: usize| maps.foreground.get(by * bw + bx).copied().unwrap_or(false);
    let fg_blocks: Vec<usize> = (0..total).filter(|&i| maps.foreground[i]).collect();
    let n_fg = fg_blocks.len();

    let foreground_fraction = n_fg as f32 / total.max(1) as f32;
    let block_mm = maps.block_size as f32 / PX_PER_MM;
    let foreground_area_mm2 = n_fg as f32 * block_mm * block_mm;

    let coh: Vec<f32> = fg_blocks
        .iter()
        .map(|&i| maps.coherence.get(i).copied().unwrap_or(0.0))
        .map(|c| {
            if c.is_finite() {
                c.clamp(0.0, 1.0)
            } else {
                0.0
            }
        })
        .collect();
    let coherence_mean = coh.iter().sum::<f32>() / n_fg.max(1) as f32;
    let coherence_std = (coh
        .iter()
        .map(|c| (c - coherence_mean).powi(2))
        .sum::<f32>()
        / n_fg.max(1) as f32)
        .sqrt();

    let freq = |i: usize| maps.frequency.get(i).copied().unwrap_or(0.0);
    let plausible = |f: f32| f.is_finite() && FREQ_RANGE.contains(&f);
    let mut neighbours = Vec::with_capacity(8);
    let consistent = fg_blocks
        .iter()
        .filter(|&&i| {
            let f = freq(i);
            if !plausible(f) {
                return false;
            }
            let (bx, by) = (i % bw, i / bw);
            neighbours.clear();
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (x, y) = (bx as i64 + dx, by as i64 + dy);
                    if (dx, dy) == (0, 0) || x < 0 || y < 0 || x >= bw as i64 || y >= bh as i64 {
                        continue;
                    }
                    let (x, y) = (x as usize, y as usize);
                    let g = freq(y * bw + x);
                    if fg(x, y) && plausible(g) {
                        neighbours.push(g);
                    }
                }
            }
            if neighbours.is_empty() {
                return true;
            }
            neighbours.sort_by(f32::total_cmp);
            let median = neighbours[neighbours.len() / 2];
            (f - median).abs() <= FREQ_SMOOTH_TOLERANCE * median
        })
        .count();
    let frequency_consistency = consistent as f32 / n_fg.max(1) as f32;

    let template = &extraction.template;
    let to_block = |v: u16| {
        let b = (f32::from(v) * maps.scale) / maps.block_size.max(1) as f32;
        b as usize
    };
    let inside: Vec<_> = template
        .minutiae
        .iter()
        .filter(|m| {
            let (bx, by) = (to_block(m.x), to_block(m.y));
            bx < bw && by < bh && fg(bx, by)
        })
        .collect();
    let minutiae_in_foreground = inside.len() as u32;
    let minutia_quality_mean = if inside.is_empty() {
        0.0
    } else {
        inside
            .iter()
            .map(|m| f32::from(m.quality.min(100)))
            .sum::<f32>()
            / (100.0 * inside.len() as f32)
    };

    let raw = [
        foreground_area_mm2,
        coherence_mean,
        coherence_std,
        frequency_consistency,
        minutiae_in_foreground as f32,
        minutia_quality_mean,
    ];
    let mut mapped = [0.0f32; 6];
    let mut log_score = 0.0f32;
    for (k, (&v, &(zero, one, weight))) in raw.iter().zip(RAMPS.iter()).enumerate() {
        mapped[k] = ramp(v, zero, one);
        log_score += weight * (FLOOR + (1.0 - FLOOR) * mapped[k]).ln();
    }
    let score = if n_fg == 0 {
        0
    } else {
        (100.0 * log_score.exp()).round().clamp(0.0, 100.0) as u8
    };
    FingerQuality {
        score,
        components: QualityComponents {
            foreground_fraction,
            foreground_area_mm2,
            coherence_mean,
            coherence_std,
            frequency_consistency,
            minutiae_in_foreground,
            minutia_quality_mean,
            mapped,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_clamp_and_run_either_way() {
        assert_eq!(ramp(0.0, 1.0, 2.0), 0.0);
        assert_eq!(ramp(1.5, 1.0, 2.0), 0.5);
        assert_eq!(ramp(3.0, 1.0, 2.0), 1.0);
        assert_eq!(ramp(0.05, 0.25, 0.10), 1.0);
        assert_eq!(ramp(0.30, 0.25, 0.10), 0.0);
        assert_eq!(ramp(f32::NAN, 0.0, 1.0), 0.0);
    }

    #[test]
    fn weights_sum_to_one() {
        let sum: f32 = RAMPS.iter().map(|r| r.2).sum();
        assert!((sum - 1.0).abs() < 1e-6);
    }
}
