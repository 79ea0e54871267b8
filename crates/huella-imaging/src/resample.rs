//! Affine warp and resize, one channel-generic implementation for RGB and grey.

use crate::raster::{buffer_len, offset};
use crate::{Affine2, GreyImage, Image};

/// Warps `img` into a new `out_w x out_h` image.
///
/// `m` maps **output** pixel coordinates to **source** pixel coordinates (pixel centres at
/// integers); to use a fit from source landmarks to output positions, pass its
/// [`Affine2::inverse`]. Sampling is bilinear; points outside the source take the nearest
/// edge pixel (replicated border). Non-finite coordinates sample the top-left pixel. An
/// empty source gives a black image.
///
/// # Panics
///
/// Only if `out_w * out_h * 3` bytes cannot be addressed (an output no machine can hold).
pub fn warp_affine(img: &Image, m: &Affine2, out_w: u32, out_h: u32) -> Image {
    let data = warp_raw::<3>(img.as_raw(), img.width(), img.height(), m, out_w, out_h);
    Image::from_raw(out_w, out_h, data).unwrap_or_else(|| unreachable!("warp_raw sized the buffer"))
}

/// [`warp_affine`] for a greyscale image.
///
/// # Panics
///
/// Only if `out_w * out_h` bytes cannot be addressed.
pub fn warp_affine_grey(img: &GreyImage, m: &Affine2, out_w: u32, out_h: u32) -> GreyImage {
    let data = warp_raw::<1>(img.as_raw(), img.width(), img.height(), m, out_w, out_h);
    GreyImage::from_raw(out_w, out_h, data)
        .unwrap_or_else(|| unreachable!("warp_raw sized the buffer"))
}

/// Resizes `img` to `w x h`.
///
/// Each axis is resampled separately with pixel-centre alignment (as OpenCV's
/// `INTER_LINEAR`): bilinear when the axis grows or shrinks by at most 2x, area averaging
/// (each output pixel the exact mean of the source area it covers) when it shrinks by
/// more, so large reductions do not alias. An empty source gives a black image.
///
/// # Panics
///
/// Only if `w * h * 3` bytes cannot be addressed.
pub fn resize_bilinear(img: &Image, w: u32, h: u32) -> Image {
    let data = resize_raw::<3>(img.as_raw(), img.width(), img.height(), w, h);
    Image::from_raw(w, h, data).unwrap_or_else(|| unreachable!("resize_raw sized the buffer"))
}

/// [`resize_bilinear`] for a greyscale image.
///
/// # Panics
///
/// Only if `w * h` bytes cannot be addressed.
pub fn resize_bilinear_grey(img: &GreyImage, w: u32, h: u32) -> GreyImage {
    let data = resize_raw::<1>(img.as_raw(), img.width(), img.height(), w, h);
    GreyImage::from_raw(w, h, data).unwrap_or_else(|| unreachable!("resize_raw sized the buffer"))
}

fn output_buffer<const C: usize>(w: u32, h: u32) -> Vec<u8> {
    let len = buffer_len(w, h, C).unwrap_or_else(|| panic!("output of {w}x{h} is not addressable"));
    vec![0; len]
}

#[inline]
fn to_u8(v: f32) -> u8 {
    // `as` saturates (and maps NaN to 0), so this never wraps.
    (v + 0.5) as u8
}

fn warp_raw<const C: usize>(
    src: &[u8],
    sw: u32,
    sh: u32,
    m: &Affine2,
    out_w: u32,
    out_h: u32,
) -> Vec<u8> {
    let mut out = output_buffer::<C>(out_w, out_h);
    if sw == 0 || sh == 0 || src.len() != buffer_len(sw, sh, C).unwrap_or(0) {
        return out;
    }
    let (max_x, max_y) = ((sw - 1) as f32, (sh - 1) as f32);
    let mut i = 0;
    for y in 0..out_h {
        for x in 0..out_w {
            let (fx, fy) = m.apply((x as f32, y as f32));
            // `max` discards NaN, so the coordinates end finite and inside the image.
            let fx = fx.max(0.0).min(max_x);
            let fy = fy.max(0.0).min(max_y);
            let (x0, y0) = (fx as u32, fy as u32);
            let (x1, y1) = ((x0 + 1).min(sw - 1), (y0 + 1).min(sh - 1));
            let (wx, wy) = (fx - x0 as f32, fy - y0 as f32);
            let p00 = offset::<C>(sw, x0, y0);
            let p10 = offset::<C>(sw, x1, y0);
            let p01 = offset::<C>(sw, x0, y1);
            let p11 = offset::<C>(sw, x1, y1);
            for c in 0..C {
                let top = f32::from(src[p00 + c]) * (1.0 - wx) + f32::from(src[p10 + c]) * wx;
                let bottom = f32::from(src[p01 + c]) * (1.0 - wx) + f32::from(src[p11 + c]) * wx;
                out[i + c] = to_u8(top * (1.0 - wy) + bottom * wy);
            }
            i += C;
        }
    }
    out
}

/// The source samples and weights that make each output sample along one axis.
struct AxisTaps {
    /// Per output index: first source index, number of taps, offset into `weights`.
    spans: Vec<(usize, usize, usize)>,
    weights: Vec<f32>,
}

impl AxisTaps {
    fn new(src: u32, dst: u32) -> AxisTaps {
        let mut spans = Vec::with_capacity(dst as usize);
        let mut weights = Vec::new();
        let scale = f64::from(src) / f64::from(dst.max(1));
        let last = f64::from(src.saturating_sub(1));
        for i in 0..dst {
            let first = weights.len();
            let start;
            if scale <= 2.0 {
                let centre = ((f64::from(i) + 0.5) * scale - 0.5).clamp(0.0, last);
                let x0 = centre.floor();
                let frac = centre - x0;
                start = x0 as usize;
                weights.push((1.0 - frac) as f32);
                if x0 < last {
                    weights.push(frac as f32);
                }
            } else {
                let lo = f64::from(i) * scale;
                let hi = (lo + scale).min(f64::from(src));
                let first_px = lo.floor();
                start = first_px as usize;
                let mut px = first_px;
                while px < hi {
                    let cover = (px + 1.0).min(hi) - px.max(lo);
                    weights.push((cover / scale) as f32);
                    px += 1.0;
                }
            }
            let taps = &mut weights[first..];
            let sum: f32 = taps.iter().sum();
            if sum > 0.0 {
                taps.iter_mut().for_each(|w| *w /= sum);
            }
            spans.push((start, taps.len(), first));
        }
        AxisTaps { spans, weights }
    }

    fn taps(&self, i: usize) -> (usize, &[f32]) {
        let (start, len, first) = self.spans[i];
        (start, &self.weights[first..first + len])
    }
}

fn resize_raw<const C: usize>(src: &[u8], sw: u32, sh: u32, dw: u32, dh: u32) -> Vec<u8> {
    let mut out = output_buffer::<C>(dw, dh);
    if sw == 0 || sh == 0 || dw == 0 || dh == 0 || src.len() != buffer_len(sw, sh, C).unwrap_or(0) {
        return out;
    }
    let (sw, sh, dw, dh) = (sw as usize, sh as usize, dw as usize, dh as usize);
    let xs = AxisTaps::new(sw as u32, dw as u32);
    let ys = AxisTaps::new(sh as u32, dh as u32);
    // Horizontal pass into f32 rows (sh x dw), then vertical pass into bytes.
    let mut rows = vec![0f32; sh * dw * C];
    for (src_row, tmp_row) in src.chunks_exact(sw * C).zip(rows.chunks_exact_mut(dw * C)) {
        for (x, acc) in tmp_row.chunks_exact_mut(C).enumerate() {
            let (start, weights) = xs.taps(x);
            for (k, w) in weights.iter().enumerate() {
                let p = &src_row[(start + k) * C..(start + k + 1) * C];
                for c in 0..C {
                    acc[c] += w * f32::from(p[c]);
                }
            }
        }
    }
    let mut acc = vec![0f32; dw * C];
    for (y, out_row) in out.chunks_exact_mut(dw * C).enumerate() {
        acc.iter_mut().for_each(|v| *v = 0.0);
        let (start, weights) = ys.taps(y);
        for (k, w) in weights.iter().enumerate() {
            let row = &rows[(start + k) * dw * C..(start + k + 1) * dw * C];
            for (a, v) in acc.iter_mut().zip(row) {
                *a += w * v;
            }
        }
        for (o, v) in out_row.iter_mut().zip(&acc) {
            *o = to_u8(*v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(w: u32, h: u32) -> Image {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&[(x * 13 + y * 7) as u8, (x * y) as u8, 200 - x as u8]);
            }
        }
        Image::from_raw(w, h, data).expect("size matches")
    }

    #[test]
    fn identity_warp_returns_the_same_image() {
        let img = pattern(17, 11);
        assert_eq!(
            warp_affine(&img, &Affine2::IDENTITY, 17, 11).as_raw(),
            img.as_raw()
        );
        let g = img.to_grey();
        assert_eq!(
            warp_affine_grey(&g, &Affine2::IDENTITY, 17, 11).as_raw(),
            g.as_raw()
        );
    }

    #[test]
    fn translation_and_replicated_border() {
        let img = pattern(8, 6);
        let shift = Affine2 {
            tx: 2.0,
            ty: 1.0,
            ..Affine2::IDENTITY
        };
        let out = warp_affine(&img, &shift, 8, 6);
        assert_eq!(out.pixel(0, 0), img.pixel(2, 1));
        assert_eq!(out.pixel(5, 4), img.pixel(7, 5));
        // Beyond the right/bottom edge the last column/row is repeated.
        assert_eq!(out.pixel(7, 5), img.pixel(7, 5));
        let far = Affine2 {
            tx: -100.0,
            ty: -100.0,
            ..Affine2::IDENTITY
        };
        assert_eq!(warp_affine(&img, &far, 3, 3).pixel(2, 2), img.pixel(0, 0));
        let nan = Affine2 {
            a: f32::NAN,
            ..Affine2::IDENTITY
        };
        assert_eq!(warp_affine(&img, &nan, 2, 2).pixel(1, 0), img.pixel(0, 0));
    }

    #[test]
    fn half_pixel_shift_interpolates() {
        let g = GreyImage::from_raw(2, 1, vec![10, 30]).expect("size");
        let half = Affine2 {
            tx: 0.5,
            ..Affine2::IDENTITY
        };
        assert_eq!(warp_affine_grey(&g, &half, 1, 1).as_raw(), &[20]);
    }

    #[test]
    fn rotation_by_90_degrees_moves_pixels() {
        // out(x, y) = src(W - 1 - y, x): source x = 4 - y, source y = x.
        let img = pattern(5, 3);
        let m = Affine2 {
            a: 0.0,
            b: -1.0,
            c: 1.0,
            d: 0.0,
            tx: 4.0,
            ty: 0.0,
        };
        let out = warp_affine(&img, &m, 3, 5);
        for y in 0..5 {
            for x in 0..3 {
                assert_eq!(out.pixel(x, y), img.pixel(4 - y, x));
            }
        }
    }

    #[test]
    fn resize_of_a_constant_image_stays_constant() {
        for (w, h) in [(1, 1), (3, 7), (64, 64), (97, 13), (200, 150)] {
            let img = Image::from_raw(50, 40, [17u8, 128, 251].repeat(2000)).expect("size");
            let out = resize_bilinear(&img, w, h);
            assert!(
                out.as_raw().chunks(3).all(|p| p == [17, 128, 251]),
                "{w}x{h}"
            );
        }
        let g = GreyImage::from_raw(9, 9, vec![99; 81]).expect("size");
        assert!(resize_bilinear_grey(&g, 2, 30)
            .as_raw()
            .iter()
            .all(|&v| v == 99));
    }

    #[test]
    fn resize_same_size_is_identity_and_upscale_interpolates() {
        let img = pattern(9, 4);
        assert_eq!(resize_bilinear(&img, 9, 4), img);
        let g = GreyImage::from_raw(2, 1, vec![0, 100]).expect("size");
        // Centres of 4 outputs map to -0.25, 0.25, 0.75, 1.25 -> clamped 0, 25, 75, 100.
        assert_eq!(resize_bilinear_grey(&g, 4, 1).as_raw(), &[0, 25, 75, 100]);
    }

    #[test]
    fn large_shrink_averages_areas() {
        // Stripes of 0 and 255 one pixel wide: an 8x shrink averages to ~128, where
        // point-sampled bilinear would alias to 0 or 255.
        let row: Vec<u8> = (0..64).map(|x| if x % 2 == 0 { 0 } else { 255 }).collect();
        let g = GreyImage::from_raw(64, 8, row.repeat(8)).expect("size");
        let small = resize_bilinear_grey(&g, 8, 1);
        assert!(
            small.as_raw().iter().all(|&v| v == 128),
            "{:?}",
            small.as_raw()
        );
        // A 3x shrink of blocks of 3 gives each block's value exactly.
        let blocks: Vec<u8> = (0..9).map(|x| (x / 3) as u8 * 50).collect();
        let g = GreyImage::from_raw(9, 1, blocks).expect("size");
        assert_eq!(resize_bilinear_grey(&g, 3, 1).as_raw(), &[0, 50, 100]);
    }

    #[test]
    fn empty_inputs_and_outputs() {
        let img = pattern(4, 4);
        assert_eq!(resize_bilinear(&img, 0, 5).as_raw().len(), 0);
        assert_eq!(warp_affine(&img, &Affine2::IDENTITY, 5, 0).height(), 0);
        let empty = Image::from_raw(0, 0, vec![]).expect("empty");
        assert_eq!(resize_bilinear(&empty, 2, 2).as_raw(), &[0; 12]);
        assert_eq!(
            warp_affine(&empty, &Affine2::IDENTITY, 1, 1).as_raw(),
            &[0; 3]
        );
    }
}
