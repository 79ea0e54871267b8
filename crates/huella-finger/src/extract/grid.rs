//! A row-major 2-D array and the smoothing filters every stage shares.

/// A `w x h` row-major array (pixels or blocks).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Grid<T> {
    pub w: usize,
    pub h: usize,
    pub data: Vec<T>,
}

impl<T: Copy> Grid<T> {
    /// A grid filled with `v`.
    pub fn new(w: usize, h: usize, v: T) -> Self {
        Grid {
            w,
            h,
            data: vec![v; w * h],
        }
    }

    /// The value at `(x, y)`; panics outside the grid (callers index checked ranges).
    #[inline]
    pub fn at(&self, x: usize, y: usize) -> T {
        self.data[y * self.w + x]
    }

    /// Sets the value at `(x, y)`.
    #[inline]
    pub fn set(&mut self, x: usize, y: usize, v: T) {
        self.data[y * self.w + x] = v;
    }

    /// The value at signed `(x, y)`, or `None` outside the grid.
    #[inline]
    pub fn get(&self, x: i32, y: i32) -> Option<T> {
        (x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h)
            .then(|| self.data[y as usize * self.w + x as usize])
    }

    /// Applies `f` to every value.
    pub fn map<U>(&self, f: impl Fn(T) -> U) -> Grid<U> {
        Grid {
            w: self.w,
            h: self.h,
            data: self.data.iter().map(|&v| f(v)).collect(),
        }
    }
}

impl Grid<f32> {
    /// Mean over the `(2r+1)^2` window around each cell, the window clipped at the
    /// borders (separable running sums in `f64`, so the cost does not depend on `r`).
    pub fn box_mean(&self, r: usize) -> Grid<f32> {
        let horizontal = filter_rows(self, |row, out| box_line(row, out, r));
        transpose_filter(&horizontal, |col, out| box_line(col, out, r))
    }

    /// Gaussian smoothing with standard deviation `sigma` cells, truncated at 3 sigma,
    /// normalised over the part of the kernel inside the grid.
    pub fn gaussian(&self, sigma: f32) -> Grid<f32> {
        let kernel = gaussian_kernel(sigma);
        let horizontal = filter_rows(self, |row, out| convolve_line(row, out, &kernel));
        transpose_filter(&horizontal, |col, out| convolve_line(col, out, &kernel))
    }
}

/// A normalised 1-D Gaussian of radius `ceil(3 sigma)` (at least 1).
pub(crate) fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let r = (3.0 * sigma).ceil().max(1.0) as i32;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    k.into_iter().map(|v| v / sum).collect()
}

fn filter_rows(g: &Grid<f32>, f: impl Fn(&[f32], &mut [f32])) -> Grid<f32> {
    let mut out = Grid::new(g.w, g.h, 0.0);
    if g.w == 0 {
        return out;
    }
    for (src, dst) in g.data.chunks_exact(g.w).zip(out.data.chunks_exact_mut(g.w)) {
        f(src, dst);
    }
    out
}

/// Filters the columns of `g` by transposing, filtering rows and transposing back.
fn transpose_filter(g: &Grid<f32>, f: impl Fn(&[f32], &mut [f32])) -> Grid<f32> {
    let t = transpose(g);
    transpose(&filter_rows(&t, f))
}

fn transpose(g: &Grid<f32>) -> Grid<f32> {
    let mut out = Grid::new(g.h, g.w, 0.0);
    for y in 0..g.h {
        for x in 0..g.w {
            out.data[x * g.h + y] = g.data[y * g.w + x];
        }
    }
    out
}

fn box_line(src: &[f32], dst: &mut [f32], r: usize) {
    let mut prefix = Vec::with_capacity(src.len() + 1);
    let mut acc = 0.0f64;
    prefix.push(acc);
    for &v in src {
        acc += f64::from(v);
        prefix.push(acc);
    }
    let n = src.len();
    for (i, d) in dst.iter_mut().enumerate() {
        let lo = i.saturating_sub(r);
        let hi = (i + r + 1).min(n);
        *d = ((prefix[hi] - prefix[lo]) / (hi - lo) as f64) as f32;
    }
}

fn convolve_line(src: &[f32], dst: &mut [f32], kernel: &[f32]) {
    let r = kernel.len() / 2;
    let n = src.len();
    for (i, d) in dst.iter_mut().enumerate() {
        let lo = i.saturating_sub(r);
        let hi = (i + r + 1).min(n);
        let mut acc = 0.0;
        let mut wsum = 0.0;
        for (j, &s) in src[lo..hi].iter().enumerate() {
            let w = kernel[lo + j + r - i];
            acc += w * s;
            wsum += w;
        }
        *d = acc / wsum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_mean_of_constant_is_constant_and_of_step_is_between() {
        let g = Grid::new(7, 5, 3.0f32);
        assert!(g.box_mean(2).data.iter().all(|&v| (v - 3.0).abs() < 1e-6));
        let mut s = Grid::new(8, 1, 0.0f32);
        for x in 4..8 {
            s.set(x, 0, 1.0);
        }
        let m = s.box_mean(1);
        assert!((m.at(3, 0) - 1.0 / 3.0).abs() < 1e-6);
        assert!((m.at(7, 0) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn gaussian_keeps_constants_and_mass_centre() {
        let g = Grid::new(9, 9, 2.0f32).gaussian(1.5);
        assert!(g.data.iter().all(|&v| (v - 2.0).abs() < 1e-5));
        let mut d = Grid::new(9, 9, 0.0f32);
        d.set(4, 4, 1.0);
        let s = d.gaussian(1.0);
        assert!(s.at(4, 4) > s.at(3, 4) && (s.at(3, 4) - s.at(5, 4)).abs() < 1e-7);
    }
}
