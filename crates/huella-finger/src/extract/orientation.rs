//! Ridge orientation field and coherence from the gradient structure tensor.
//!
//! The least-squares estimate of Rao ("A Taxonomy for Texture Description and
//! Identification", 1990) as used by Hong, Wan & Jain (1998) and Bazen & Gerez
//! ("Systematic methods for the computation of the directional fields and singular
//! points of fingerprints", IEEE TPAMI 24(7), 2002): Sobel gradients, the tensor
//! `(Gxx, Gyy, Gxy)` summed per block, then Gaussian-smoothed across blocks, which is
//! averaging in the doubled-angle domain weighted by gradient energy. The coherence
//! `|(Gxx - Gyy, 2 Gxy)| / (Gxx + Gyy)` is 1 for perfectly parallel ridges and 0 for
//! isotropic texture.
//!
//! Angles here are image angles: radians from the x axis with y pointing down
//! (clockwise as viewed); the public maps convert them.

use std::f32::consts::PI;

use super::grid::Grid;

/// Per-block orientation, coherence and energy.
#[derive(Debug)]
pub(crate) struct OrientationField {
    /// Pixels per block side.
    pub bs: usize,
    /// Unit doubled-angle vectors `(cos 2θ, sin 2θ)` of the smoothed ridge orientation.
    pub doubled: Grid<(f32, f32)>,
    /// Coherence of the smoothed tensor, 0..1.
    pub coherence: Grid<f32>,
    /// Coherence of the block's own tensor before smoothing, 0..1.
    pub raw_coherence: Grid<f32>,
}

impl OrientationField {
    /// Estimates the field of `img` with `bs`-pixel blocks, the tensor smoothed by a
    /// Gaussian of `sigma_blocks`.
    pub fn estimate(img: &Grid<f32>, bs: usize, sigma_blocks: f32) -> OrientationField {
        let (bw, bh) = (img.w.div_ceil(bs), img.h.div_ceil(bs));
        let mut gxx = Grid::new(bw, bh, 0.0f32);
        let mut gyy = Grid::new(bw, bh, 0.0f32);
        let mut gxy = Grid::new(bw, bh, 0.0f32);
        for y in 1..img.h.saturating_sub(1) {
            let (up, row, down) = (
                &img.data[(y - 1) * img.w..y * img.w],
                &img.data[y * img.w..(y + 1) * img.w],
                &img.data[(y + 1) * img.w..(y + 2) * img.w],
            );
            let by = y / bs;
            for x in 1..img.w - 1 {
                let gx = (up[x + 1] + 2.0 * row[x + 1] + down[x + 1])
                    - (up[x - 1] + 2.0 * row[x - 1] + down[x - 1]);
                let gy = (down[x - 1] + 2.0 * down[x] + down[x + 1])
                    - (up[x - 1] + 2.0 * up[x] + up[x + 1]);
                let i = by * bw + x / bs;
                gxx.data[i] += gx * gx;
                gyy.data[i] += gy * gy;
                gxy.data[i] += gx * gy;
            }
        }
        let raw_coherence = coherence_of(&gxx, &gyy, &gxy);
        let (sxx, syy, sxy) = (
            gxx.gaussian(sigma_blocks),
            gyy.gaussian(sigma_blocks),
            gxy.gaussian(sigma_blocks),
        );
        let coherence = coherence_of(&sxx, &syy, &sxy);
        let mut doubled = Grid::new(bw, bh, (1.0f32, 0.0f32));
        for i in 0..bw * bh {
            // The gradient's doubled angle is atan2(2Gxy, Gxx - Gyy); the ridge runs
            // perpendicular, which negates the doubled-angle vector.
            let (c, s) = (-(sxx.data[i] - syy.data[i]), -2.0 * sxy.data[i]);
            let n = c.hypot(s);
            if n > 0.0 {
                doubled.data[i] = (c / n, s / n);
            }
        }
        OrientationField {
            bs,
            doubled,
            coherence,
            raw_coherence,
        }
    }

    /// Ridge orientation of block `(bx, by)` in `[0, π)`, image angle.
    pub fn block_angle(&self, bx: usize, by: usize) -> f32 {
        let (c, s) = self.doubled.at(bx, by);
        half_angle(c, s)
    }

    /// Ridge orientation at pixel `(x, y)`, bilinear between block centres in the
    /// doubled-angle domain, in `[0, π)`, image angle.
    pub fn angle_at(&self, x: f32, y: f32) -> f32 {
        let [c, s] = bilinear(&self.doubled, self.bs, x, y, |(c, s)| [c, s]);
        half_angle(c, s)
    }
}

/// `[0, π)` angle whose double has direction `(c, s)`.
fn half_angle(c: f32, s: f32) -> f32 {
    let a = 0.5 * s.atan2(c);
    if a < 0.0 {
        a + PI
    } else {
        a
    }
}

fn coherence_of(gxx: &Grid<f32>, gyy: &Grid<f32>, gxy: &Grid<f32>) -> Grid<f32> {
    let mut out = Grid::new(gxx.w, gxx.h, 0.0);
    for i in 0..out.data.len() {
        let (a, b, c) = (gxx.data[i], gyy.data[i], gxy.data[i]);
        let sum = a + b;
        if sum > 1e-6 {
            out.data[i] = ((a - b).hypot(2.0 * c) / sum).clamp(0.0, 1.0);
        }
    }
    out
}

/// Bilinear interpolation of a block grid (values at block centres) at pixel `(x, y)`,
/// of the `N` components `f` extracts.
pub(crate) fn bilinear<T: Copy, const N: usize>(
    g: &Grid<T>,
    bs: usize,
    x: f32,
    y: f32,
    f: impl Fn(T) -> [f32; N],
) -> [f32; N] {
    let u = ((x + 0.5) / bs as f32 - 0.5).clamp(0.0, (g.w - 1) as f32);
    let v = ((y + 0.5) / bs as f32 - 0.5).clamp(0.0, (g.h - 1) as f32);
    let (x0, y0) = (u as usize, v as usize);
    let (x1, y1) = ((x0 + 1).min(g.w - 1), (y0 + 1).min(g.h - 1));
    let (fx, fy) = (u - x0 as f32, v - y0 as f32);
    let (a, b, c, d) = (
        f(g.at(x0, y0)),
        f(g.at(x1, y0)),
        f(g.at(x0, y1)),
        f(g.at(x1, y1)),
    );
    let mut out = [0.0; N];
    for k in 0..N {
        let top = a[k] + (b[k] - a[k]) * fx;
        let bottom = c[k] + (d[k] - c[k]) * fx;
        out[k] = top + (bottom - top) * fy;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stripes(angle: f32, period: f32) -> Grid<f32> {
        let mut g = Grid::new(96, 96, 0.0f32);
        // Ridges run along `angle`, so intensity varies along the normal.
        let (nx, ny) = (-angle.sin(), angle.cos());
        for y in 0..96 {
            for x in 0..96 {
                let t = x as f32 * nx + y as f32 * ny;
                g.set(x, y, 128.0 + 100.0 * (2.0 * PI * t / period).cos());
            }
        }
        g
    }

    #[test]
    fn recovers_stripe_orientation_with_high_coherence() {
        for deg in [0.0f32, 30.0, 90.0, 135.0] {
            let a = deg.to_radians();
            let f = OrientationField::estimate(&stripes(a, 9.0), 8, 1.0);
            let got = f.block_angle(6, 6);
            let diff = (got - a).rem_euclid(PI);
            let diff = diff.min(PI - diff);
            assert!(diff < 0.05, "{deg}: {}", got.to_degrees());
            assert!(f.coherence.at(6, 6) > 0.9);
            let p = f.angle_at(50.0, 47.0);
            let d = (p - a).rem_euclid(PI);
            assert!(d.min(PI - d) < 0.05);
        }
    }
}
