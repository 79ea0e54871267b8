//! Decoded images: 8-bit RGB [`Image`] and 8-bit [`GreyImage`], with crop and flip.
//!
//! Both types share one channel-generic implementation (`C` = 3 or 1) for every
//! operation that touches pixels.

use std::fmt;

use crate::SourceFormat;

/// Where an image came from; kept through crop, flip and greyscale conversion, dropped
/// by resampling (the resolution no longer holds).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Origin {
    format: Option<SourceFormat>,
    ppi: Option<f32>,
}

/// An 8-bit RGB image, row-major, 3 bytes per pixel, no padding.
///
/// `Debug` prints the size and origin, never the pixels.
#[derive(Clone, PartialEq)]
pub struct Image {
    width: u32,
    height: u32,
    data: Vec<u8>,
    origin: Origin,
}

/// An 8-bit single-channel image, row-major, 1 byte per pixel, no padding.
///
/// `Debug` prints the size and origin, never the pixels.
#[derive(Clone, PartialEq)]
pub struct GreyImage {
    width: u32,
    height: u32,
    data: Vec<u8>,
    origin: Origin,
}

/// `width * height * channels` as a `usize`, or `None` on overflow.
pub(crate) fn buffer_len(width: u32, height: u32, channels: usize) -> Option<usize> {
    usize::try_from(width)
        .ok()?
        .checked_mul(usize::try_from(height).ok()?)?
        .checked_mul(channels)
}

/// Index of the first byte of pixel `(x, y)` in a `width`-wide buffer of `C` channels.
#[inline]
pub(crate) fn offset<const C: usize>(width: u32, x: u32, y: u32) -> usize {
    (y as usize * width as usize + x as usize) * C
}

fn crop_raw<const C: usize>(
    data: &[u8],
    width: u32,
    height: u32,
    (x, y, w, h): (u32, u32, u32, u32),
) -> Option<Vec<u8>> {
    if w == 0 || h == 0 || x.checked_add(w)? > width || y.checked_add(h)? > height {
        return None;
    }
    let row = w as usize * C;
    let mut out = Vec::with_capacity(buffer_len(w, h, C)?);
    for yy in y..y + h {
        let start = offset::<C>(width, x, yy);
        out.extend_from_slice(data.get(start..start + row)?);
    }
    Some(out)
}

fn flip_raw<const C: usize>(data: &[u8], width: u32) -> Vec<u8> {
    let row = width as usize * C;
    let mut out = Vec::with_capacity(data.len());
    if row == 0 {
        return out;
    }
    for line in data.chunks_exact(row) {
        for px in line.rchunks_exact(C) {
            out.extend_from_slice(px);
        }
    }
    out
}

/// ITU-R BT.601 luma, `0.299 R + 0.587 G + 0.114 B`, in 16-bit fixed point, rounded.
#[inline]
fn luma(r: u8, g: u8, b: u8) -> u8 {
    let y = 19_595 * u32::from(r) + 38_470 * u32::from(g) + 7_471 * u32::from(b) + 32_768;
    // The weights sum to 65536, so y >> 16 <= 255.
    (y >> 16) as u8
}

macro_rules! debug_without_pixels {
    ($ty:ident) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("width", &self.width)
                    .field("height", &self.height)
                    .field("source_format", &self.origin.format)
                    .field("ppi", &self.origin.ppi)
                    .finish_non_exhaustive()
            }
        }
    };
}
debug_without_pixels!(Image);
debug_without_pixels!(GreyImage);

impl Image {
    /// Wraps an RGB buffer; `None` unless `data.len() == width * height * 3`.
    ///
    /// An image may be empty (zero width or height); decoding never returns one.
    pub fn from_raw(width: u32, height: u32, data: Vec<u8>) -> Option<Image> {
        (buffer_len(width, height, 3)? == data.len()).then(|| Image {
            width,
            height,
            data,
            origin: Origin::default(),
        })
    }

    pub(crate) fn with_origin(mut self, format: Option<SourceFormat>, ppi: Option<f32>) -> Image {
        self.origin = Origin { format, ppi };
        self
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixels, row-major, `[r, g, b]` per pixel.
    pub fn as_raw(&self) -> &[u8] {
        &self.data
    }

    /// Consumes the image and returns its buffer.
    pub fn into_raw(self) -> Vec<u8> {
        self.data
    }

    /// The pixel at `(x, y)`, or `None` outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = offset::<3>(self.width, x, y);
        let p = self.data.get(i..i + 3)?;
        Some([p[0], p[1], p[2]])
    }

    /// The format the image was decoded from, if it was decoded.
    pub fn source_format(&self) -> Option<SourceFormat> {
        self.origin.format
    }

    /// Horizontal resolution in pixels per inch, if the file stated one (PNG `pHYs`,
    /// TIFF/EXIF `XResolution` + `ResolutionUnit`, JPEG JFIF density, BMP header).
    pub fn ppi(&self) -> Option<f32> {
        self.origin.ppi
    }

    /// Converts to greyscale with ITU-R BT.601 luma weights.
    pub fn to_grey(&self) -> GreyImage {
        let data = self
            .data
            .chunks_exact(3)
            .map(|p| luma(p[0], p[1], p[2]))
            .collect();
        GreyImage {
            width: self.width,
            height: self.height,
            data,
            origin: self.origin,
        }
    }

    /// The `w x h` rectangle whose top-left corner is `(x, y)`; `None` if it is empty or
    /// not wholly inside the image.
    pub fn crop(&self, x: u32, y: u32, w: u32, h: u32) -> Option<Image> {
        let data = crop_raw::<3>(&self.data, self.width, self.height, (x, y, w, h))?;
        Some(Image {
            width: w,
            height: h,
            data,
            origin: self.origin,
        })
    }

    /// The mirror image (left and right swapped).
    pub fn flip_horizontal(&self) -> Image {
        Image {
            width: self.width,
            height: self.height,
            data: flip_raw::<3>(&self.data, self.width),
            origin: self.origin,
        }
    }
}

impl GreyImage {
    /// Wraps a greyscale buffer; `None` unless `data.len() == width * height`.
    pub fn from_raw(width: u32, height: u32, data: Vec<u8>) -> Option<GreyImage> {
        (buffer_len(width, height, 1)? == data.len()).then(|| GreyImage {
            width,
            height,
            data,
            origin: Origin::default(),
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixels, row-major, one byte each.
    pub fn as_raw(&self) -> &[u8] {
        &self.data
    }

    /// Consumes the image and returns its buffer.
    pub fn into_raw(self) -> Vec<u8> {
        self.data
    }

    /// The value at `(x, y)`, or `None` outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Option<u8> {
        if x >= self.width || y >= self.height {
            return None;
        }
        self.data.get(offset::<1>(self.width, x, y)).copied()
    }

    /// The format the source image was decoded from, if it was decoded.
    pub fn source_format(&self) -> Option<SourceFormat> {
        self.origin.format
    }

    /// Horizontal resolution in pixels per inch, if the source file stated one.
    pub fn ppi(&self) -> Option<f32> {
        self.origin.ppi
    }

    /// The `w x h` rectangle whose top-left corner is `(x, y)`; `None` if it is empty or
    /// not wholly inside the image.
    pub fn crop(&self, x: u32, y: u32, w: u32, h: u32) -> Option<GreyImage> {
        let data = crop_raw::<1>(&self.data, self.width, self.height, (x, y, w, h))?;
        Some(GreyImage {
            width: w,
            height: h,
            data,
            origin: self.origin,
        })
    }

    /// The mirror image (left and right swapped).
    pub fn flip_horizontal(&self) -> GreyImage {
        GreyImage {
            width: self.width,
            height: self.height,
            data: flip_raw::<1>(&self.data, self.width),
            origin: self.origin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb(width: u32, height: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Image {
        let mut data = Vec::new();
        for y in 0..height {
            for x in 0..width {
                data.extend_from_slice(&f(x, y));
            }
        }
        Image::from_raw(width, height, data).expect("size matches")
    }

    #[test]
    fn from_raw_checks_length() {
        assert!(Image::from_raw(2, 2, vec![0; 12]).is_some());
        assert!(Image::from_raw(2, 2, vec![0; 11]).is_none());
        assert!(GreyImage::from_raw(3, 2, vec![0; 6]).is_some());
        assert!(GreyImage::from_raw(u32::MAX, u32::MAX, vec![]).is_none());
    }

    #[test]
    fn bt601_luma() {
        let img = rgb(5, 1, |x, _| match x {
            0 => [255, 0, 0],
            1 => [0, 255, 0],
            2 => [0, 0, 255],
            3 => [255, 255, 255],
            _ => [10, 20, 30],
        });
        let g = img.to_grey();
        // 0.299*255 = 76.2, 0.587*255 = 149.7, 0.114*255 = 29.1, 0.299*10+0.587*20+0.114*30 = 18.15
        assert_eq!(g.as_raw(), &[76, 150, 29, 255, 18]);
    }

    #[test]
    fn crop_takes_the_right_rectangle() {
        let img = rgb(4, 3, |x, y| [x as u8, y as u8, 7]);
        let c = img.crop(1, 1, 2, 2).expect("inside");
        assert_eq!((c.width(), c.height()), (2, 2));
        assert_eq!(c.pixel(0, 0), Some([1, 1, 7]));
        assert_eq!(c.pixel(1, 1), Some([2, 2, 7]));
        assert!(img.crop(3, 0, 2, 1).is_none());
        assert!(img.crop(0, 0, 0, 1).is_none());
        assert!(img.crop(u32::MAX, 0, 2, 1).is_none());
        let g = img.to_grey().crop(0, 2, 4, 1).expect("inside");
        assert_eq!(g.width(), 4);
    }

    #[test]
    fn flip_mirrors_rows() {
        let img = rgb(3, 2, |x, y| [x as u8, y as u8, 0]);
        let f = img.flip_horizontal();
        assert_eq!(f.pixel(0, 0), Some([2, 0, 0]));
        assert_eq!(f.pixel(2, 1), Some([0, 1, 0]));
        assert_eq!(f.flip_horizontal(), img);
        let g = img.to_grey();
        assert_eq!(g.flip_horizontal().flip_horizontal(), g);
        let empty = Image::from_raw(0, 5, vec![]).expect("empty is allowed");
        assert_eq!(empty.flip_horizontal().as_raw().len(), 0);
    }

    #[test]
    fn debug_never_prints_pixels() {
        let img = rgb(2, 1, |_, _| [123, 45, 67]);
        let s = format!("{img:?}");
        assert!(s.contains("width: 2"), "{s}");
        assert!(!s.contains("123"), "{s}");
    }
}
