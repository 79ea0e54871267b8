//! Contextual enhancement with a bank of oriented Gabor filters.
//!
//! Hong, Wan & Jain (1998), section 2.6: each foreground pixel is convolved with the
//! even-symmetric Gabor filter tuned to the local ridge orientation and frequency,
//! which smooths along the ridges, and band-passes across them at the ridge frequency.
//! The bank is precomputed at quantised orientations and periods; each kernel has its
//! DC removed under its envelope (so flat regions give 0) and is scaled to respond with
//! 1 to a unit-amplitude ridge wave it is tuned to.

use std::f32::consts::PI;

use super::frequency::{MAX_PERIOD, MIN_PERIOD};
use super::grid::Grid;
use super::orientation::OrientationField;

/// Orientations in the bank, over `[0, π)`.
const ORIENTATIONS: usize = 24;
/// Period step of the bank, pixels.
const PERIOD_STEP: f32 = 0.5;

/// Precomputed Gabor kernels, `(2 radius + 1)^2` each.
#[derive(Debug, Clone)]
pub(crate) struct GaborBank {
    radius: usize,
    periods: usize,
    kernels: Vec<Vec<f32>>,
}

impl GaborBank {
    /// Builds the bank; sigmas are in pixels across and along the ridges.
    pub fn new(sigma_across: f32, sigma_along: f32, radius: usize) -> GaborBank {
        let periods = ((MAX_PERIOD - MIN_PERIOD) / PERIOD_STEP).round() as usize + 1;
        let mut kernels = Vec::with_capacity(ORIENTATIONS * periods);
        for o in 0..ORIENTATIONS {
            let theta = o as f32 * PI / ORIENTATIONS as f32;
            for p in 0..periods {
                let period = MIN_PERIOD + p as f32 * PERIOD_STEP;
                kernels.push(kernel(theta, period, sigma_across, sigma_along, radius));
            }
        }
        GaborBank {
            radius,
            periods,
            kernels,
        }
    }

    fn kernel_for(&self, theta: f32, period: f32) -> &[f32] {
        let o = ((theta / PI * ORIENTATIONS as f32).round() as usize) % ORIENTATIONS;
        let p =
            (((period - MIN_PERIOD) / PERIOD_STEP).round().max(0.0) as usize).min(self.periods - 1);
        &self.kernels[o * self.periods + p]
    }

    /// Filters the foreground pixels of `norm`; background pixels are 0. Positive
    /// output marks ridges.
    pub fn apply(
        &self,
        norm: &Grid<f32>,
        field: &OrientationField,
        period: &Grid<f32>,
        mask: &Grid<bool>,
    ) -> Grid<f32> {
        let r = self.radius;
        let d = 2 * r + 1;
        let pw = norm.w + 2 * r;
        let mut padded = vec![0.0f32; pw * (norm.h + 2 * r)];
        for y in 0..norm.h {
            padded[(y + r) * pw + r..(y + r) * pw + r + norm.w]
                .copy_from_slice(&norm.data[y * norm.w..(y + 1) * norm.w]);
        }
        let bs = field.bs;
        let mut out = Grid::new(norm.w, norm.h, 0.0f32);
        for y in 0..norm.h {
            for x in 0..norm.w {
                let (bx, by) = (x / bs, y / bs);
                if !mask.at(bx, by) {
                    continue;
                }
                let theta = field.angle_at(x as f32, y as f32);
                let k = self.kernel_for(theta, period.at(bx, by));
                let mut acc = 0.0;
                for ky in 0..d {
                    let start = (y + ky) * pw + x;
                    acc += dot(&padded[start..start + d], &k[ky * d..(ky + 1) * d]);
                }
                out.set(x, y, acc);
            }
        }
        out
    }
}

/// Dot product with eight independent accumulators so the compiler can vectorise it.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

/// One even-symmetric Gabor kernel for ridges along `theta` (image angle).
fn kernel(theta: f32, period: f32, sigma_across: f32, sigma_along: f32, radius: usize) -> Vec<f32> {
    let r = radius as i32;
    let (dx, dy) = (theta.cos(), theta.sin());
    let mut envelope = Vec::new();
    let mut wave = Vec::new();
    for y in -r..=r {
        for x in -r..=r {
            let along = x as f32 * dx + y as f32 * dy;
            let across = -(x as f32) * dy + y as f32 * dx;
            envelope.push(
                (-0.5
                    * (across * across / (sigma_across * sigma_across)
                        + along * along / (sigma_along * sigma_along)))
                    .exp(),
            );
            wave.push((2.0 * PI * across / period).cos());
        }
    }
    let env_sum: f32 = envelope.iter().sum();
    let dc: f32 = envelope.iter().zip(&wave).map(|(e, w)| e * w).sum::<f32>() / env_sum;
    let k: Vec<f32> = envelope
        .iter()
        .zip(&wave)
        .map(|(e, w)| e * (w - dc))
        .collect();
    // Response to the tuned unit wave, used to scale the kernel to gain 1.
    let gain: f32 = k.iter().zip(&wave).map(|(k, w)| k * w).sum();
    k.into_iter().map(|v| v / gain).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_have_no_dc_and_unit_gain() {
        let k = kernel(0.7, 9.0, 4.0, 4.0, 8);
        assert!(k.iter().sum::<f32>().abs() < 1e-3);
        let dot8 = dot(&[1.0; 17], &[2.0; 17]);
        assert!((dot8 - 34.0).abs() < 1e-5);
    }
}
