//! Normalisation and foreground segmentation.
//!
//! Normalisation is local: each pixel has the mean of its window subtracted and is
//! divided by the window's standard deviation (the adaptive form of Hong, Wan & Jain,
//! "Fingerprint image enhancement: algorithm and performance evaluation", IEEE TPAMI
//! 20(8), 1998), so every later stage sees unit ridge contrast whatever the sensor.
//!
//! Segmentation follows the block-feature approach of Bazen & Gerez ("Segmentation of
//! fingerprint images", ProRISC 2001) in its simplest robust form: a block is
//! foreground when its grey-level standard deviation passes an Otsu threshold over the
//! image's blocks (unless the two classes are alike: an image that is all print) and
//! its ridge flow is coherent enough, then the block mask is cleaned
//! with a morphological closing and opening, reduced to its largest 4-connected
//! component and its holes are filled.

use super::grid::Grid;
use super::orientation::OrientationField;

/// Local statistics: the normalised image (ridges positive) and the local standard
/// deviation of the input.
#[derive(Debug)]
pub(crate) struct Normalised {
    /// `(mean - value) / max(std, floor)`, clamped to `[-3, 3]`: ridges (dark) are
    /// positive.
    pub image: Grid<f32>,
    /// Grey-level standard deviation over the window around each pixel.
    pub std: Grid<f32>,
}

/// Standard deviation below which a window is treated as flat (grey levels).
const STD_FLOOR: f32 = 4.0;

/// Normalises `img` over `(2r+1)^2` windows.
pub(crate) fn normalise(img: &Grid<f32>, r: usize) -> Normalised {
    let mean = img.box_mean(r);
    let sq = img.map(|v| v * v).box_mean(r);
    let std = Grid {
        w: img.w,
        h: img.h,
        data: mean
            .data
            .iter()
            .zip(&sq.data)
            .map(|(&m, &s)| (s - m * m).max(0.0).sqrt())
            .collect(),
    };
    let image = Grid {
        w: img.w,
        h: img.h,
        data: img
            .data
            .iter()
            .zip(mean.data.iter().zip(&std.data))
            .map(|(&v, (&m, &s))| ((m - v) / s.max(STD_FLOOR)).clamp(-3.0, 3.0))
            .collect(),
    };
    Normalised { image, std }
}

/// The block foreground mask (`true` = fingerprint).
///
/// `min_coherence` rejects textured but structureless blocks (sensor noise, smudges).
pub(crate) fn foreground(
    norm: &Normalised,
    field: &OrientationField,
    bs: usize,
    min_coherence: f32,
) -> Grid<bool> {
    let (bw, bh) = (field.raw_coherence.w, field.raw_coherence.h);
    let mut block_std = Grid::new(bw, bh, 0.0f32);
    for by in 0..bh {
        for bx in 0..bw {
            let cx = (bx * bs + bs / 2).min(norm.std.w - 1);
            let cy = (by * bs + bs / 2).min(norm.std.h - 1);
            block_std.set(bx, by, norm.std.at(cx, cy));
        }
    }
    let threshold = background_threshold(&block_std.data);
    let mut mask = Grid::new(bw, bh, false);
    for i in 0..bw * bh {
        mask.data[i] =
            block_std.data[i] > threshold && field.raw_coherence.data[i] >= min_coherence;
    }
    let mask = erode(&dilate(&mask));
    let mask = dilate(&erode(&mask));
    fill_holes(&largest_component(&mask))
}

/// The block contrast separating background from print: Otsu's threshold, unless the
/// classes it separates are alike (the darker within half the contrast of the
/// brighter), in which case every block with more than flat-field contrast is print.
fn background_threshold(block_std: &[f32]) -> f32 {
    let floor = 2.0 * STD_FLOOR;
    let t = otsu(block_std);
    let mean = |keep: &dyn Fn(f32) -> bool| {
        let (s, n) = block_std
            .iter()
            .filter(|&&v| keep(v))
            .fold((0.0f32, 0usize), |(s, n), &v| (s + v, n + 1));
        s / n.max(1) as f32
    };
    let (low, high) = (mean(&|v| v <= t), mean(&|v| v > t));
    if low > 0.5 * high {
        floor
    } else {
        t.max(floor)
    }
}

/// Otsu's threshold over `values` (64 bins between their minimum and maximum).
fn otsu(values: &[f32]) -> f32 {
    const BINS: usize = 64;
    let lo = values.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return hi;
    }
    let step = (hi - lo) / BINS as f32;
    let mut hist = [0usize; BINS];
    for &v in values {
        hist[(((v - lo) / step) as usize).min(BINS - 1)] += 1;
    }
    let total = values.len() as f64;
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * c as f64)
        .sum();
    let (mut w0, mut sum0, mut best, mut best_i) = (0.0f64, 0.0f64, -1.0f64, 0usize);
    for (i, &c) in hist.iter().enumerate() {
        w0 += c as f64;
        sum0 += i as f64 * c as f64;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let d = sum0 / w0 - (sum_all - sum0) / w1;
        let between = w0 * w1 * d * d;
        if between > best {
            best = between;
            best_i = i;
        }
    }
    lo + (best_i + 1) as f32 * step
}

fn morph(mask: &Grid<bool>, value: bool) -> Grid<bool> {
    let mut out = mask.clone();
    for y in 0..mask.h as i32 {
        for x in 0..mask.w as i32 {
            let hit = (-1..=1)
                .any(|dy| (-1..=1).any(|dx| mask.get(x + dx, y + dy).is_some_and(|v| v == value)));
            if hit {
                out.set(x as usize, y as usize, value);
            }
        }
    }
    out
}

/// 3x3 dilation (cells outside the grid do not count).
fn dilate(mask: &Grid<bool>) -> Grid<bool> {
    morph(mask, true)
}

/// 3x3 erosion (cells outside the grid do not count).
fn erode(mask: &Grid<bool>) -> Grid<bool> {
    morph(mask, false)
}

/// Labels the 4-connected components of cells equal to `value`; returns the label grid
/// (0 = other) and each component's size, labels starting at 1 in scan order.
fn components(mask: &Grid<bool>, value: bool) -> (Grid<u32>, Vec<usize>) {
    let mut labels = Grid::new(mask.w, mask.h, 0u32);
    let mut sizes = vec![0];
    let mut stack = Vec::new();
    for start in 0..mask.data.len() {
        if mask.data[start] != value || labels.data[start] != 0 {
            continue;
        }
        let label = sizes.len() as u32;
        let mut size = 0;
        labels.data[start] = label;
        stack.push(start);
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = ((i % mask.w) as i32, (i / mask.w) as i32);
            for (dx, dy) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
                let (nx, ny) = (x + dx, y + dy);
                if mask.get(nx, ny) == Some(value) {
                    let j = ny as usize * mask.w + nx as usize;
                    if labels.data[j] == 0 {
                        labels.data[j] = label;
                        stack.push(j);
                    }
                }
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
}

fn largest_component(mask: &Grid<bool>) -> Grid<bool> {
    let (labels, sizes) = components(mask, true);
    let best = (1..sizes.len()).max_by_key(|&l| (sizes[l], std::cmp::Reverse(l)));
    labels.map(|l| best.is_some_and(|b| l as usize == b))
}

/// Background components that do not touch the grid border become foreground.
fn fill_holes(mask: &Grid<bool>) -> Grid<bool> {
    let (labels, sizes) = components(mask, false);
    let mut touches = vec![false; sizes.len()];
    for y in 0..mask.h {
        for x in 0..mask.w {
            if x == 0 || y == 0 || x + 1 == mask.w || y + 1 == mask.h {
                touches[labels.at(x, y) as usize] = true;
            }
        }
    }
    Grid {
        w: mask.w,
        h: mask.h,
        data: mask
            .data
            .iter()
            .zip(&labels.data)
            .map(|(&m, &l)| m || (l != 0 && !touches[l as usize]))
            .collect(),
    }
}

/// Chamfer (3-4) distance in pixels from each pixel to the nearest background pixel or
/// the image border, computed on the pixel mask (Borgefors 1986).
pub(crate) fn border_distance(mask: &Grid<bool>) -> Grid<f32> {
    let (w, h) = (mask.w, mask.h);
    let big = u32::MAX / 2;
    let mut d = Grid::new(w, h, big);
    for y in 0..h {
        for x in 0..w {
            if !mask.at(x, y) {
                d.set(x, y, 0);
            }
        }
    }
    let get = |d: &Grid<u32>, x: i32, y: i32| d.get(x, y).unwrap_or(0);
    for y in 0..h as i32 {
        for x in 0..w as i32 {
            let v = d.at(x as usize, y as usize);
            let m = v
                .min(get(&d, x - 1, y) + 3)
                .min(get(&d, x, y - 1) + 3)
                .min(get(&d, x - 1, y - 1) + 4)
                .min(get(&d, x + 1, y - 1) + 4);
            d.set(x as usize, y as usize, m);
        }
    }
    for y in (0..h as i32).rev() {
        for x in (0..w as i32).rev() {
            let v = d.at(x as usize, y as usize);
            let m = v
                .min(get(&d, x + 1, y) + 3)
                .min(get(&d, x, y + 1) + 3)
                .min(get(&d, x + 1, y + 1) + 4)
                .min(get(&d, x - 1, y + 1) + 4);
            d.set(x as usize, y as usize, m);
        }
    }
    d.map(|v| v as f32 / 3.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otsu_splits_two_clusters() {
        let v: Vec<f32> = (0..50)
            .map(|i| 1.0 + (i % 3) as f32)
            .chain((0..50).map(|i| 40.0 + (i % 5) as f32))
            .collect();
        let t = otsu(&v);
        assert!(t > 3.0 && t < 40.0, "{t}");
    }

    #[test]
    fn holes_are_filled_and_small_islands_dropped() {
        let mut m = Grid::new(9, 9, false);
        for y in 1..8 {
            for x in 1..6 {
                m.set(x, y, true);
            }
        }
        m.set(3, 4, false);
        m.set(8, 8, true);
        let out = fill_holes(&largest_component(&m));
        assert!(out.at(3, 4));
        assert!(!out.at(8, 8));
    }

    #[test]
    fn border_distance_grows_inwards() {
        let m = Grid::new(11, 11, true);
        let d = border_distance(&m);
        assert!(d.at(0, 5) <= 1.0 && d.at(5, 5) > 4.0);
    }
}
