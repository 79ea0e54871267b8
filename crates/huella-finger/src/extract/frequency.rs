//! Local ridge frequency from oriented x-signatures.
//!
//! Hong, Wan & Jain (1998), section 2.5: in a window centred on each block and aligned
//! with the local ridge orientation, the grey levels are averaged along the ridges to
//! give a 1-D signature across them; the mean distance between its peaks is the ridge
//! period. Blocks without a clean signature are filled, and all blocks smoothed, by a
//! normalised Gaussian convolution over the valid ones; where no block nearby is valid
//! the image median is used.

use super::grid::Grid;
use super::orientation::OrientationField;

/// Window length across the ridges (samples, one per pixel).
const ACROSS: i32 = 32;
/// Window length along the ridges.
const ALONG: i32 = 16;

/// Ridge periods (pixels) accepted from a signature, at 500 ppi.
pub(crate) const MIN_PERIOD: f32 = 4.0;
/// See [`MIN_PERIOD`].
pub(crate) const MAX_PERIOD: f32 = 16.0;

/// Per-block ridge period in pixels (0 outside the mask), or `None` when too few
/// blocks have a readable signature for the image to hold ridges.
pub(crate) fn estimate(
    norm: &Grid<f32>,
    field: &OrientationField,
    mask: &Grid<bool>,
    min_valid_fraction: f32,
) -> Option<Grid<f32>> {
    let bs = field.bs;
    let (bw, bh) = (mask.w, mask.h);
    let mut period = Grid::new(bw, bh, 0.0f32);
    let mut valid = Grid::new(bw, bh, 0.0f32);
    let mut signature = [0.0f32; ACROSS as usize];
    let (mut n_fg, mut found) = (0usize, Vec::new());
    for by in 0..bh {
        for bx in 0..bw {
            if !mask.at(bx, by) {
                continue;
            }
            n_fg += 1;
            let theta = field.block_angle(bx, by);
            let (dx, dy) = (theta.cos(), theta.sin());
            let (nx, ny) = (-dy, dx);
            let (cx, cy) = ((bx * bs + bs / 2) as f32, (by * bs + bs / 2) as f32);
            for (t, sig) in signature.iter_mut().enumerate() {
                let t = t as f32 - (ACROSS / 2) as f32;
                let (mut acc, mut n) = (0.0f32, 0u32);
                for s in -ALONG / 2..ALONG / 2 {
                    let s = s as f32;
                    let x = (cx + t * nx + s * dx).round() as i32;
                    let y = (cy + t * ny + s * dy).round() as i32;
                    if let Some(v) = norm.get(x, y) {
                        acc += v;
                        n += 1;
                    }
                }
                *sig = if n > 0 { acc / n as f32 } else { 0.0 };
            }
            if let Some(p) = signature_period(&signature) {
                period.set(bx, by, p);
                valid.set(bx, by, 1.0);
                found.push(p);
            }
        }
    }
    if n_fg == 0 || (found.len() as f32) < min_valid_fraction * n_fg as f32 || found.is_empty() {
        return None;
    }
    found.sort_by(f32::total_cmp);
    let median = found[found.len() / 2];
    let num = period.gaussian(1.5);
    let den = valid.gaussian(1.5);
    let mut out = Grid::new(bw, bh, 0.0f32);
    for i in 0..bw * bh {
        if mask.data[i] {
            let d = den.data[i];
            out.data[i] = if d > 0.05 { num.data[i] / d } else { median };
        }
    }
    Some(out)
}

/// Mean peak spacing of a signature, if it shows at least two clear peaks with a
/// plausible spacing.
fn signature_period(sig: &[f32]) -> Option<f32> {
    let n = sig.len();
    let smooth: Vec<f32> = (0..n)
        .map(|i| {
            let a = sig[i.saturating_sub(1)];
            let c = sig[(i + 1).min(n - 1)];
            0.25 * a + 0.5 * sig[i] + 0.25 * c
        })
        .collect();
    let (lo, hi) = smooth
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    if hi - lo < 0.6 {
        return None;
    }
    let peaks: Vec<usize> = (1..n - 1)
        .filter(|&i| smooth[i] > smooth[i - 1] && smooth[i] >= smooth[i + 1] && smooth[i] > 0.0)
        .collect();
    if peaks.len() < 2 {
        return None;
    }
    let p = (peaks[peaks.len() - 1] - peaks[0]) as f32 / (peaks.len() - 1) as f32;
    (MIN_PERIOD..=MAX_PERIOD).contains(&p).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_of_a_cosine() {
        let sig: Vec<f32> = (0..32)
            .map(|i| (2.0 * std::f32::consts::PI * i as f32 / 8.5).cos())
            .collect();
        let p = signature_period(&sig).expect("clean signature");
        assert!((p - 8.5).abs() < 0.6, "{p}");
        assert!(signature_period(&[0.0; 32]).is_none());
    }
}
