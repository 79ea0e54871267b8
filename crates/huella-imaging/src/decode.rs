//! Decoding untrusted bytes into an [`Image`] under [`Limits`].

use std::fmt;
use std::fs::File;
use std::io::{Cursor, Read};
use std::path::Path;

use image::error::{LimitErrorKind, UnsupportedErrorKind};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};

use crate::{meta, wsq, Image, ImagingError, Limits};

/// The container format an image was decoded from, detected from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SourceFormat {
    /// JPEG (baseline or progressive, grey, RGB or CMYK).
    Jpeg,
    /// PNG.
    Png,
    /// TIFF.
    Tiff,
    /// Windows bitmap.
    Bmp,
    /// Netpbm PBM/PGM/PPM/PAM.
    Pnm,
    /// FBI WSQ (Wavelet Scalar Quantization) grey-scale fingerprint.
    Wsq,
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceFormat::Jpeg => "JPEG",
            SourceFormat::Png => "PNG",
            SourceFormat::Tiff => "TIFF",
            SourceFormat::Bmp => "BMP",
            SourceFormat::Pnm => "PNM",
            SourceFormat::Wsq => "WSQ",
        })
    }
}

impl SourceFormat {
    fn from_image(format: ImageFormat) -> Option<SourceFormat> {
        Some(match format {
            ImageFormat::Jpeg => SourceFormat::Jpeg,
            ImageFormat::Png => SourceFormat::Png,
            ImageFormat::Tiff => SourceFormat::Tiff,
            ImageFormat::Bmp => SourceFormat::Bmp,
            ImageFormat::Pnm => SourceFormat::Pnm,
            _ => return None,
        })
    }
}

/// The `Corrupt` reason given when a third-party decoder panics on malformed input.
const DECODER_PANICKED: &str = "decoder panicked on malformed input";

/// Decodes an image from memory into 8-bit RGB.
///
/// The format is detected from the content (JPEG, PNG, TIFF, BMP, PNM, WSQ). The declared
/// width, height and pixel count are checked against `limits` before any pixel memory is
/// allocated. 16-bit samples are scaled to 8 bits, grey is replicated, alpha is dropped,
/// CMYK JPEG is converted to RGB, and an EXIF orientation (JPEG, TIFF, PNG `eXIf`) is
/// applied so the result is upright. The stated resolution, if any, is kept as
/// [`Image::ppi`] (for WSQ, the `PPI` of its NISTCOM comment).
///
/// Never panics: a panic inside a third-party decoder is caught and reported as
/// [`ImagingError::Corrupt`] (this relies on the default `panic = "unwind"`).
///
/// # Errors
///
/// [`ImagingError::Empty`], [`ImagingError::TooLarge`] (input bytes or declared size),
/// [`ImagingError::LimitExceeded`], [`ImagingError::UnsupportedFormat`],
/// [`ImagingError::UnsupportedFeature`], [`ImagingError::Truncated`] or
/// [`ImagingError::Corrupt`].
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Image, ImagingError> {
    if bytes.is_empty() {
        return Err(ImagingError::Empty);
    }
    let len = bytes.len() as u64;
    if len > limits.max_bytes() {
        return Err(ImagingError::TooLarge {
            what: "bytes",
            limit: limits.max_bytes(),
            actual: len,
        });
    }
    std::panic::catch_unwind(|| decode_checked(bytes, limits)).unwrap_or_else(|_| {
        Err(ImagingError::Corrupt {
            reason: DECODER_PANICKED.to_owned(),
        })
    })
}

/// Reads and decodes an image file; see [`decode`].
///
/// The file's size is checked against [`Limits::max_bytes`] before reading, and at most
/// `max_bytes + 1` bytes are ever read, so a file that grows meanwhile cannot exceed it.
/// The file name and extension are ignored: the format comes from the content.
///
/// # Errors
///
/// [`ImagingError::Io`] if the file cannot be opened or read, otherwise as [`decode`].
pub fn decode_file(path: &Path, limits: &Limits) -> Result<Image, ImagingError> {
    let file = File::open(path)?;
    let declared = file.metadata()?.len();
    let too_large = |actual| ImagingError::TooLarge {
        what: "bytes",
        limit: limits.max_bytes(),
        actual,
    };
    if declared > limits.max_bytes() {
        return Err(too_large(declared));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    file.take(limits.max_bytes().saturating_add(1))
        .read_to_end(&mut bytes)?;
    let read = bytes.len() as u64;
    if read > limits.max_bytes() {
        return Err(too_large(read));
    }
    decode(&bytes, limits)
}

fn decode_checked(bytes: &[u8], limits: &Limits) -> Result<Image, ImagingError> {
    if wsq::is_wsq(bytes) {
        return wsq::decode(bytes, limits);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    let format = reader
        .format()
        .and_then(SourceFormat::from_image)
        .ok_or(ImagingError::UnsupportedFormat)?;
    let map_err = |e| map_image_error(e, format, limits);

    // Headers only: the PNG decoder takes its memory limit at construction; dimension
    // limits are checked here first so the caller gets the exact limit and value.
    let mut header_limits = image::Limits::default();
    header_limits.max_alloc = Some(limits.decoder_alloc());
    reader.limits(header_limits.clone());
    let mut decoder = reader.into_decoder().map_err(map_err)?;
    let (width, height) = decoder.dimensions();
    limits.check_dimensions(width, height)?;
    if width == 0 || height == 0 {
        return Err(ImagingError::Corrupt {
            reason: format!("{format} declares a {width}x{height} image"),
        });
    }
    let mut strict = header_limits;
    strict.max_image_width = Some(limits.max_width());
    strict.max_image_height = Some(limits.max_height());
    decoder.set_limits(strict).map_err(map_err)?;

    // A malformed EXIF block must not fail an otherwise readable image.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut dynamic = DynamicImage::from_decoder(decoder).map_err(map_err)?;
    dynamic.apply_orientation(orientation);
    let rgb = dynamic.into_rgb8();
    let (width, height) = rgb.dimensions();
    let image =
        Image::from_raw(width, height, rgb.into_raw()).ok_or_else(|| ImagingError::Corrupt {
            reason: format!("{format} decoder returned a buffer of the wrong size"),
        })?;
    Ok(image.with_origin(Some(format), meta::ppi(format, bytes)))
}

fn map_image_error(err: ImageError, format: SourceFormat, limits: &Limits) -> ImagingError {
    if is_truncation(&err) {
        return ImagingError::Truncated { format };
    }
    match err {
        ImageError::Limits(e) => match e.kind() {
            LimitErrorKind::DimensionError => ImagingError::LimitExceeded {
                what: "dimensions",
                limit: u64::from(limits.max_width().max(limits.max_height())),
            },
            _ => ImagingError::LimitExceeded {
                what: "decoder memory",
                limit: limits.decoder_alloc(),
            },
        },
        ImageError::Unsupported(e) => match e.kind() {
            UnsupportedErrorKind::Format(_) => ImagingError::UnsupportedFormat,
            _ => ImagingError::UnsupportedFeature {
                format,
                reason: e.to_string(),
            },
        },
        other => ImagingError::Corrupt {
            reason: other.to_string(),
        },
    }
}

/// Whether the error (or any error it wraps) is an unexpected end of input.
fn is_truncation(err: &ImageError) -> bool {
    // `ImageError::source` skips the `io::Error` an `IoError` holds, so look at it first.
    let mut current: Option<&(dyn std::error::Error + 'static)> = match err {
        ImageError::IoError(io) => Some(io),
        other => Some(other),
    };
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::UnexpectedEof {
                return true;
            }
        }
        // zune-jpeg reports running out of input as its own I/O error type, which is not
        // a dependency of ours; its message is the only stable handle (tested).
        if e.to_string().contains("Not enough bytes") {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::jpeg::{JpegEncoder, PixelDensity};
    use image::{GrayAlphaImage, GrayImage, ImageBuffer, Luma, Rgb, RgbImage, RgbaImage};

    fn encode(img: impl Into<DynamicImage>, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.into().write_to(&mut out, format).expect("encodes");
        out.into_inner()
    }

    fn ok(bytes: &[u8]) -> Image {
        decode(bytes, &Limits::default()).expect("decodes")
    }

    fn near(a: [u8; 3], b: [u8; 3], tol: u8) -> bool {
        a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tol)
    }

    /// A PNG chunk with its length and CRC.
    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut v = (data.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(data);
        let mut h = crc32fast::Hasher::new();
        h.update(kind);
        h.update(data);
        v.extend_from_slice(&h.finalize().to_be_bytes());
        v
    }

    /// An uncompressed 8-bit grey TIFF, little-endian, one strip, with optional
    /// Orientation and XResolution/ResolutionUnit tags.
    fn tiff_grey(
        w: u16,
        h: u16,
        pixels: &[u8],
        orientation: Option<u16>,
        dpi: Option<u32>,
    ) -> Vec<u8> {
        let mut entries: Vec<(u16, u16, u32)> = vec![
            (256, 3, u32::from(w)),
            (257, 3, u32::from(h)),
            (258, 3, 8),
            (259, 3, 1),
            (262, 3, 1),
            (273, 4, 0), // strip offset, patched below
            (277, 3, 1),
            (278, 3, u32::from(h)),
            (279, 4, pixels.len() as u32),
        ];
        if let Some(o) = orientation {
            entries.push((274, 3, u32::from(o)));
        }
        if dpi.is_some() {
            entries.push((282, 5, 0)); // rational offset, patched below
            entries.push((296, 3, 2));
        }
        entries.sort_by_key(|e| e.0);
        let ifd_len = 2 + 12 * entries.len() + 4;
        let rational_at = (8 + ifd_len) as u32;
        let data_at = rational_at + 8;
        let mut v = b"II*\0\x08\0\0\0".to_vec();
        v.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for (tag, kind, value) in entries {
            let value = match tag {
                273 => data_at,
                282 => rational_at,
                _ => value,
            };
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&kind.to_le_bytes());
            v.extend_from_slice(&1u32.to_le_bytes());
            v.extend_from_slice(&value.to_le_bytes()); // SHORTs sit in the low bytes
        }
        v.extend_from_slice(&[0; 4]);
        v.extend_from_slice(&dpi.unwrap_or(0).to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(pixels);
        v
    }

    /// A JPEG with an EXIF APP1 (big-endian TIFF, IFD0 holding only Orientation) spliced
    /// in right after SOI.
    fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"Exif\0\0MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut v = jpeg[..2].to_vec();
        v.extend_from_slice(&[0xFF, 0xE1]);
        v.extend_from_slice(&((tiff.len() + 2) as u16).to_be_bytes());
        v.extend_from_slice(&tiff);
        v.extend_from_slice(&jpeg[2..]);
        v
    }

    fn quadrants(w: u32, h: u32) -> RgbImage {
        const COLOURS: [[u8; 3]; 4] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]];
        RgbImage::from_fn(w, h, |x, y| {
            Rgb(COLOURS[(2 * (y >= h / 2) as usize) + (x >= w / 2) as usize])
        })
    }

    #[test]
    fn png_colour_models_decode_to_rgb() {
        let grey = GrayImage::from_fn(3, 2, |x, y| Luma([(x * 40 + y * 100) as u8]));
        let img = ok(&encode(grey, ImageFormat::Png));
        assert_eq!(img.source_format(), Some(SourceFormat::Png));
        assert_eq!(img.pixel(2, 1), Some([180, 180, 180]));

        let ga = GrayAlphaImage::from_fn(2, 2, |x, _| {
            image::LumaA([77, if x == 0 { 0 } else { 255 }])
        });
        // Alpha is dropped, not composited: a transparent pixel keeps its colour.
        assert_eq!(
            ok(&encode(ga, ImageFormat::Png)).pixel(0, 0),
            Some([77, 77, 77])
        );

        let rgba = RgbaImage::from_fn(2, 1, |x, _| image::Rgba([10, 20, 30, x as u8]));
        assert_eq!(
            ok(&encode(rgba, ImageFormat::Png)).as_raw(),
            &[10, 20, 30, 10, 20, 30]
        );
    }

    #[test]
    fn sixteen_bit_png_is_scaled_to_eight_bits() {
        let values = [0u16, 257 * 100, 0x8080, 65535, 300];
        let grey = ImageBuffer::<Luma<u16>, _>::from_raw(5, 1, values.to_vec()).expect("size");
        let img = ok(&encode(grey, ImageFormat::Png));
        let got: Vec<u8> = img.as_raw().chunks(3).map(|p| p[0]).collect();
        assert_eq!(got, [0, 100, 128, 255, 1]);

        let rgb =
            ImageBuffer::<Rgb<u16>, _>::from_raw(1, 1, vec![65535, 257 * 37, 0]).expect("size");
        assert_eq!(ok(&encode(rgb, ImageFormat::Png)).as_raw(), &[255, 37, 0]);
    }

    #[test]
    fn every_format_is_detected_from_content() {
        let rgb = quadrants(8, 6);
        for (format, expected) in [
            (ImageFormat::Png, SourceFormat::Png),
            (ImageFormat::Bmp, SourceFormat::Bmp),
            (ImageFormat::Tiff, SourceFormat::Tiff),
            (ImageFormat::Pnm, SourceFormat::Pnm),
        ] {
            let img = ok(&encode(rgb.clone(), format));
            assert_eq!(img.source_format(), Some(expected));
            assert_eq!(img.as_raw(), rgb.as_raw().as_slice(), "{expected}");
        }
        let jpeg = ok(&encode(quadrants(32, 16), ImageFormat::Jpeg));
        assert_eq!(jpeg.source_format(), Some(SourceFormat::Jpeg));
        assert!(near(jpeg.pixel(4, 4).expect("inside"), [255, 0, 0], 40));
        assert!(near(
            jpeg.pixel(28, 12).expect("inside"),
            [255, 255, 255],
            40
        ));
    }

    #[test]
    fn pnm_variants() {
        assert_eq!(
            ok(b"P2\n# comment\n2 1\n255\n0 200\n").pixel(1, 0),
            Some([200; 3])
        );
        assert_eq!(ok(b"P6 1 1 255 \x01\x02\x03").as_raw(), &[1, 2, 3]);
        // 16-bit PGM, big-endian samples.
        assert_eq!(
            ok(b"P5 2 1 65535 \xff\xff\x80\x80").as_raw(),
            &[255, 255, 255, 128, 128, 128]
        );
    }

    #[test]
    fn cmyk_jpeg_is_converted() {
        // tests/fixtures/cmyk.jpg is made by tests/fixtures/make_cmyk.py (Pillow, Adobe CMYK).
        let img = ok(include_bytes!("../tests/fixtures/cmyk.jpg"));
        assert_eq!((img.width(), img.height()), (16, 16));
        for ((x, y), rgb) in [
            ((3, 3), [0, 255, 255]),     // cyan
            ((12, 3), [0, 0, 0]),        // black
            ((3, 12), [255, 255, 0]),    // yellow
            ((12, 12), [255, 255, 255]), // no ink
        ] {
            let got = img.pixel(x, y).expect("inside");
            assert!(near(got, rgb, 16), "({x},{y}) {got:?} != {rgb:?}");
        }
    }

    #[test]
    fn exif_orientation_rotates_jpeg() {
        let stored = quadrants(32, 16); // red | green over blue | white
        let jpeg = with_exif_orientation(&encode(stored, ImageFormat::Jpeg), 6);
        let img = ok(&jpeg);
        // Orientation 6: rotate 90 degrees clockwise, so 32x16 becomes 16x32 and the
        // stored bottom-left (blue) is shown top-left, stored top-left (red) top-right.
        assert_eq!((img.width(), img.height()), (16, 32));
        for ((x, y), rgb) in [
            ((4, 4), [0, 0, 255]),
            ((12, 4), [255, 0, 0]),
            ((4, 28), [255, 255, 255]),
            ((12, 28), [0, 255, 0]),
        ] {
            let got = img.pixel(x, y).expect("inside");
            assert!(near(got, rgb, 40), "({x},{y}) {got:?} != {rgb:?}");
        }
        // Orientation 1 leaves it alone.
        let upright = ok(&with_exif_orientation(
            &encode(quadrants(32, 16), ImageFormat::Jpeg),
            1,
        ));
        assert_eq!((upright.width(), upright.height()), (32, 16));
    }

    #[test]
    fn exif_orientation_rotates_tiff_exactly() {
        // Stored 3x2: a b c / d e f. Orientation 6 displays 2x3: d a / e b / f c.
        let tiff = tiff_grey(3, 2, &[1, 2, 3, 4, 5, 6], Some(6), None);
        let grey: Vec<u8> = ok(&tiff).as_raw().chunks(3).map(|p| p[0]).collect();
        assert_eq!(grey, [4, 1, 5, 2, 6, 3]);
        // Orientation 3 (rotate 180): f e d / c b a.
        let tiff = tiff_grey(3, 2, &[1, 2, 3, 4, 5, 6], Some(3), None);
        let grey: Vec<u8> = ok(&tiff).as_raw().chunks(3).map(|p| p[0]).collect();
        assert_eq!(grey, [6, 5, 4, 3, 2, 1]);
    }

    #[test]
    fn stated_resolution_is_kept() {
        let tiff = ok(&tiff_grey(2, 1, &[0, 0], None, Some(500)));
        assert_eq!(tiff.ppi(), Some(500.0));
        assert_eq!(tiff.to_grey().ppi(), Some(500.0));
        assert_eq!(ok(&tiff_grey(2, 1, &[0, 0], None, None)).ppi(), None);

        // PNG pHYs of 19685 pixels per metre = 500.0 ppi, spliced after IHDR.
        let png = encode(GrayImage::new(2, 2), ImageFormat::Png);
        let mut phys = 19_685u32.to_be_bytes().repeat(2);
        phys.push(1);
        let with_phys = [&png[..33], &chunk(b"pHYs", &phys), &png[33..]].concat();
        let ppi = ok(&with_phys).ppi().expect("pHYs is stated");
        assert!((ppi - 500.0).abs() < 0.01, "{ppi}");

        let mut jpeg = Vec::new();
        let mut encoder = JpegEncoder::new(&mut jpeg);
        encoder.set_pixel_density(PixelDensity::dpi(300));
        encoder.encode_image(&quadrants(8, 8)).expect("encodes");
        assert_eq!(ok(&jpeg).ppi(), Some(300.0));
    }

    #[test]
    fn limits_report_which_and_how_much() {
        let png = encode(GrayImage::new(30, 20), ImageFormat::Png);
        let err = |limits: Limits| decode(&png, &limits).expect_err("over a limit");
        assert!(matches!(
            err(Limits::default().with_max_width(29)),
            ImagingError::TooLarge {
                what: "width",
                limit: 29,
                actual: 30
            }
        ));
        assert!(matches!(
            err(Limits::default().with_max_height(19)),
            ImagingError::TooLarge {
                what: "height",
                limit: 19,
                actual: 20
            }
        ));
        assert!(matches!(
            err(Limits::default().with_max_pixels(599)),
            ImagingError::TooLarge {
                what: "pixels",
                limit: 599,
                actual: 600
            }
        ));
        assert!(matches!(
            err(Limits::default().with_max_bytes(10)),
            ImagingError::TooLarge {
                what: "bytes",
                limit: 10,
                ..
            }
        ));
        let exact = Limits::default()
            .with_max_width(30)
            .with_max_height(20)
            .with_max_pixels(600);
        assert!(decode(&png, &exact).is_ok());
    }

    #[test]
    fn decode_file_ignores_the_extension_and_bounds_the_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("photo.jpg");
        let png = encode(GrayImage::new(4, 3), ImageFormat::Png);
        std::fs::write(&path, &png).expect("write");
        let img = decode_file(&path, &Limits::default()).expect("decodes");
        assert_eq!(img.source_format(), Some(SourceFormat::Png));
        let small = Limits::default().with_max_bytes(png.len() as u64 - 1);
        assert!(matches!(
            decode_file(&path, &small),
            Err(ImagingError::TooLarge { what: "bytes", .. })
        ));
        assert!(matches!(
            decode_file(&dir.path().join("missing.png"), &Limits::default()),
            Err(ImagingError::Io(_))
        ));
    }
}
