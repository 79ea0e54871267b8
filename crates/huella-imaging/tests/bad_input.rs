//! Hostile and malformed input: every case must come back as a typed error (or a correct
//! image), quickly, without panicking and without allocating what a header claims.
//! All inputs are generated here.

use std::io::Cursor;
use std::time::{Duration, Instant};

use huella_imaging::{decode, decode_file, ImagingError, Limits, SourceFormat};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use proptest::prelude::*;

fn encode(img: impl Into<DynamicImage>, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.into().write_to(&mut out, format).expect("encodes");
    out.into_inner()
}

/// A 48x32 image with edges and texture, so that compressed formats have real content.
fn sample(format: ImageFormat) -> Vec<u8> {
    let img = RgbImage::from_fn(48, 32, |x, y| {
        Rgb([(x * 5) as u8, (y * 7) as u8, ((x ^ y) * 11) as u8])
    });
    encode(img, format)
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut v = (data.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(data);
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    v.extend_from_slice(&h.finalize().to_be_bytes());
    v
}

/// An 8-bit greyscale PNG declaring `w x h` with the given IDAT payload.
fn png_with_idat(w: u32, h: u32, idat: &[u8]) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    [
        &b"\x89PNG\r\n\x1a\n"[..],
        &png_chunk(b"IHDR", &ihdr),
        &png_chunk(b"IDAT", idat),
        &png_chunk(b"IEND", &[]),
    ]
    .concat()
}

/// A zlib stream of `n` zero bytes, written with fixed-Huffman deflate as one literal
/// followed by maximal back-references (258 bytes in 13 bits): the ~1000:1 ratio that
/// makes a real decompression bomb.
fn zlib_zeros(n: u64) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        len: u32,
    }
    impl Bits {
        fn put(&mut self, value: u32, count: u32) {
            self.acc |= u64::from(value) << self.len;
            self.len += count;
            while self.len >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.len -= 8;
            }
        }
        /// Huffman codes are sent most significant bit first.
        fn code(&mut self, code: u32, count: u32) {
            self.put(code.reverse_bits() >> (32 - count), count);
        }
    }
    let mut b = Bits {
        out: vec![0x78, 0x01],
        acc: 0,
        len: 0,
    };
    b.put(1, 1); // final block
    b.put(1, 2); // fixed Huffman
    b.code(0x30, 8); // literal 0
    let rest = n - 1;
    for _ in 0..rest / 258 {
        b.code(0xC5, 8); // length symbol 285 = 258
        b.code(0, 5); // distance 1
    }
    for _ in 0..rest % 258 {
        b.code(0x30, 8);
    }
    b.code(0, 7); // end of block
    b.put(0, 7); // flush to a byte boundary
    let adler = ((n % 65_521) << 16) | 1;
    b.out.extend_from_slice(&(adler as u32).to_be_bytes());
    b.out
}

/// A consistent single-strip 8-bit grey TIFF header declaring `w x h`, without the strip.
fn tiff_grey_header(w: u32, h: u32) -> Vec<u8> {
    let entries: [(u16, u16, u32); 9] = [
        (256, 4, w),
        (257, 4, h),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8 + 2 + 9 * 12 + 4),
        (277, 3, 1),
        (278, 4, h),
        (279, 4, w.saturating_mul(h)),
    ];
    let mut v = b"II*\0\x08\0\0\0".to_vec();
    v.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&value.to_le_bytes());
    }
    v.extend_from_slice(&[0; 8]);
    v
}

/// A 157x193 synthetic ridge pattern encoded by the NIST reference WSQ encoder; see
/// fixtures/make_wsq.py, which also writes the golden below from the NIST decoder.
const WSQ: &[u8] = include_bytes!("fixtures/ridges.wsq");
const WSQ_GOLDEN: &str = include_str!("fixtures/ridges.wsq.golden");

fn golden(key: &str) -> &'static str {
    WSQ_GOLDEN
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("golden has no {key}"))
}

/// Offset of the first WSQ marker segment `marker` before the coded data.
fn wsq_segment(bytes: &[u8], marker: u16) -> usize {
    let mut at = 2;
    loop {
        let m = u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        if m == marker {
            return at;
        }
        at += 2 + usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
    }
}

fn assert_fast(start: Instant) {
    let took = start.elapsed();
    assert!(took < Duration::from_millis(500), "rejection took {took:?}");
}

#[test]
fn empty_input() {
    assert!(matches!(
        decode(&[], &Limits::default()),
        Err(ImagingError::Empty)
    ));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("empty.png");
    std::fs::write(&path, b"").expect("write");
    assert!(matches!(
        decode_file(&path, &Limits::default()),
        Err(ImagingError::Empty)
    ));
}

#[test]
fn truncated_files_are_typed_errors() {
    for format in [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Tiff,
        ImageFormat::Bmp,
    ] {
        let full = sample(format);
        let mut truncated = 0;
        for cut in [
            1,
            4,
            8,
            16,
            33,
            60,
            100,
            200,
            full.len() / 2,
            full.len() - 20,
            full.len() - 1,
        ] {
            let cut = cut.min(full.len() - 1);
            match decode(&full[..cut], &Limits::default()) {
                Ok(img) if format == ImageFormat::Jpeg => {
                    // zune-jpeg fills a truncated scan with grey rather than failing.
                    assert_eq!((img.width(), img.height()), (48, 32));
                }
                // Only the 12-byte IEND trailer is missing: every pixel is present.
                Ok(_) if format == ImageFormat::Png && cut >= full.len() - 12 => {}
                Ok(_) => panic!("{format:?} cut at {cut} decoded"),
                Err(ImagingError::Truncated { .. }) => truncated += 1,
                Err(ImagingError::Corrupt { .. } | ImagingError::UnsupportedFormat) => {}
                Err(other) => panic!("{format:?} cut at {cut}: unexpected {other:?}"),
            }
        }
        // Cuts inside the 8-byte signature or the 4-byte TIFF/BMP magic are unrecognised;
        // most later cuts must be recognised as truncation, not generic corruption.
        assert!(
            truncated >= 6,
            "{format:?}: only {truncated} of 11 cuts reported as Truncated"
        );
    }
}

#[test]
fn garbage_is_unsupported() {
    for (i, len) in [1, 2, 15, 16, 17, 1000, 100_000].into_iter().enumerate() {
        let bytes = garbage(len, 0x9E37_79B9_7F4A_7C15 + i as u64);
        assert!(
            matches!(
                decode(&bytes, &Limits::default()),
                Err(ImagingError::UnsupportedFormat)
            ),
            "{len} bytes"
        );
    }
    // Right magic, garbage after it.
    for magic in [
        &b"\x89PNG\r\n\x1a\n"[..],
        b"\xff\xd8\xff",
        b"II*\0",
        b"MM\0*",
        b"BM",
        b"P6",
    ] {
        let bytes = [magic, &garbage(500, 7)].concat();
        assert!(decode(&bytes, &Limits::default()).is_err(), "{magic:?}");
    }
}

#[test]
fn garbage_named_jpg_is_unsupported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("x.jpg");
    std::fs::write(&path, garbage(4096, 42)).expect("write");
    assert!(matches!(
        decode_file(&path, &Limits::default()),
        Err(ImagingError::UnsupportedFormat)
    ));
}

#[test]
fn png_header_declaring_100000_squared_is_rejected_at_once() {
    let bomb = png_with_idat(100_000, 100_000, &[]);
    let start = Instant::now();
    let err = decode(&bomb, &Limits::default()).expect_err("too large");
    assert_fast(start);
    assert!(
        matches!(
            err,
            ImagingError::TooLarge {
                what: "width",
                limit: 20_000,
                actual: 100_000
            }
        ),
        "{err:?}"
    );
}

#[test]
fn real_compressed_bomb_is_rejected_by_limits() {
    // The generator is sound: a small image made the same way decodes to black.
    let small = png_with_idat(64, 64, &zlib_zeros(64 * 65));
    let img = decode(&small, &Limits::default()).expect("small zero image decodes");
    assert!(img.as_raw().iter().all(|&v| v == 0));

    // 20000 x 20000 zeros: 400 MB inflated from about 2.5 MB.
    let bomb = png_with_idat(20_000, 20_000, &zlib_zeros(20_000 * 20_001));
    assert!(bomb.len() < 3 << 20, "{} bytes", bomb.len());
    let start = Instant::now();
    let err = decode(&bomb, &Limits::default()).expect_err("too large");
    assert_fast(start);
    assert!(
        matches!(
            err,
            ImagingError::TooLarge {
                what: "pixels",
                actual: 400_000_000,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn hundred_megapixels_declared_is_rejected_by_default() {
    // Only the rejection is tested: raising the limits would really allocate 300 MB.
    let declared = png_with_idat(10_000, 10_000, &[]);
    let start = Instant::now();
    let err = decode(&declared, &Limits::default()).expect_err("too large");
    assert_fast(start);
    assert!(
        matches!(
            err,
            ImagingError::TooLarge {
                what: "pixels",
                limit: 40_000_000,
                actual: 100_000_000
            }
        ),
        "{err:?}"
    );
}

#[test]
fn huge_declarations_in_every_format_are_rejected_at_once() {
    // JPEG: patch the SOF0 frame size of a real file to 60000 x 60000.
    let mut jpeg = sample(ImageFormat::Jpeg);
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline JPEG has SOF0");
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    // BMP: BITMAPINFOHEADER with width and height 50000.
    let mut bmp = sample(ImageFormat::Bmp);
    bmp[18..22].copy_from_slice(&50_000i32.to_le_bytes());
    bmp[22..26].copy_from_slice(&50_000i32.to_le_bytes());
    let tiff = tiff_grey_header(60_000, 60_000);
    let pnm = b"P5\n60000 60000\n255\n\0\0\0\0".to_vec();
    for (name, bytes) in [("jpeg", jpeg), ("bmp", bmp), ("tiff", tiff), ("pnm", pnm)] {
        let start = Instant::now();
        let err = decode(&bytes, &Limits::default()).expect_err(name);
        assert_fast(start);
        assert!(
            matches!(err, ImagingError::TooLarge { what: "width", .. }),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn zero_sized_png_is_corrupt() {
    let err = decode(&png_with_idat(0, 5, &zlib_zeros(5)), &Limits::default()).expect_err("0 wide");
    assert!(matches!(err, ImagingError::Corrupt { .. }), "{err:?}");
}

#[test]
fn one_pixel_images_decode() {
    let px = RgbImage::from_pixel(1, 1, Rgb([200, 100, 50]));
    for (format, source) in [
        (ImageFormat::Png, SourceFormat::Png),
        (ImageFormat::Bmp, SourceFormat::Bmp),
        (ImageFormat::Tiff, SourceFormat::Tiff),
        (ImageFormat::Pnm, SourceFormat::Pnm),
        (ImageFormat::Jpeg, SourceFormat::Jpeg),
    ] {
        let img = decode(&encode(px.clone(), format), &Limits::default()).expect("1x1 decodes");
        assert_eq!((img.width(), img.height()), (1, 1));
        assert_eq!(img.source_format(), Some(source));
        let got = img.pixel(0, 0).expect("inside");
        let tol = if format == ImageFormat::Jpeg { 8 } else { 0 };
        assert!(
            got.iter()
                .zip([200, 100, 50])
                .all(|(a, b)| a.abs_diff(b) <= tol),
            "{got:?}"
        );
    }
}

/// Small valid files of every format, made once (WSQ: the committed fixture).
fn seeds() -> Vec<Vec<u8>> {
    let img = RgbImage::from_fn(12, 9, |x, y| Rgb([(x * 20) as u8, (y * 25) as u8, 99]));
    let mut seeds: Vec<Vec<u8>> = [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Bmp,
        ImageFormat::Tiff,
        ImageFormat::Pnm,
    ]
    .into_iter()
    .map(|f| encode(img.clone(), f))
    .collect();
    seeds.push(WSQ.to_vec());
    seeds
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_files_never_panic(
        which in 0usize..6,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = seeds().swap_remove(which);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        match decode(&bytes, &Limits::default()) {
            Ok(img) => prop_assert_eq!(img.as_raw().len(), img.width() as usize * img.height() as usize * 3),
            Err(ImagingError::Corrupt { reason }) => {
                prop_assert_ne!(reason.as_str(), "decoder panicked on malformed input");
            }
            Err(_) => {}
        }
    }
}

#[test]
fn wsq_matches_the_nist_reference_decoder_exactly() {
    let img = decode(WSQ, &Limits::default()).expect("decodes");
    assert_eq!(img.source_format(), Some(SourceFormat::Wsq));
    assert_eq!(img.width().to_string(), golden("width"));
    assert_eq!(img.height().to_string(), golden("height"));
    assert_eq!(img.ppi(), Some(golden("ppi").parse().expect("number")));
    let grey = img.to_grey();
    let crc = crc32fast::hash(grey.as_raw());
    assert_eq!(format!("{crc:08x}"), golden("crc32"));

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("print.png"); // the name is not the format
    std::fs::write(&path, WSQ).expect("write");
    assert_eq!(
        decode_file(&path, &Limits::default()).expect("decodes"),
        img
    );
}

#[test]
fn wsq_every_truncation_is_reported_as_truncated() {
    assert!(matches!(
        decode(&WSQ[..0], &Limits::default()),
        Err(ImagingError::Empty)
    ));
    // A lone 0xFF is not yet a WSQ signature.
    assert!(matches!(
        decode(&WSQ[..1], &Limits::default()),
        Err(ImagingError::UnsupportedFormat)
    ));
    for cut in 2..WSQ.len() {
        match decode(&WSQ[..cut], &Limits::default()) {
            Err(ImagingError::Truncated {
                format: SourceFormat::Wsq,
            }) => {}
            other => panic!("cut at {cut} of {}: {other:?}", WSQ.len()),
        }
    }
}

#[test]
fn wsq_single_byte_corruptions_never_panic() {
    // Every byte of the headers and tables; every third byte of the coded data (each
    // full decode costs about a millisecond).
    let data = wsq_segment(WSQ, 0xFFA3) + 8;
    let offsets = (0..data).chain((data..WSQ.len()).step_by(3));
    let (mut decoded, mut errors) = (0, 0);
    for at in offsets {
        for value in [WSQ[at] ^ 0x55, 0x00, 0xFF] {
            if value == WSQ[at] {
                continue;
            }
            let mut bytes = WSQ.to_vec();
            bytes[at] = value;
            match decode(&bytes, &Limits::default()) {
                Ok(img) => {
                    assert_eq!(
                        img.as_raw().len(),
                        img.width() as usize * img.height() as usize * 3
                    );
                    decoded += 1;
                }
                Err(ImagingError::Corrupt { reason }) => {
                    assert_ne!(
                        reason, "decoder panicked on malformed input",
                        "byte {at} = {value:#04x}"
                    );
                    errors += 1;
                }
                Err(_) => errors += 1,
            }
        }
    }
    // Most single-byte changes inside the coded data still decode (to a slightly
    // different picture); changes to markers and tables must be caught.
    assert!(
        decoded > 0 && errors > 0,
        "{decoded} decoded, {errors} rejected"
    );
}

#[test]
fn wsq_declaring_60000_squared_is_rejected_before_allocation() {
    let sof = wsq_segment(WSQ, 0xFFA2);
    let mut huge = WSQ.to_vec();
    // Height then width, big-endian, after the marker, length, black and white bytes.
    huge[sof + 6..sof + 10].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    let start = Instant::now();
    let err = decode(&huge, &Limits::default()).expect_err("too large");
    assert_fast(start);
    assert!(
        matches!(
            err,
            ImagingError::TooLarge {
                what: "width",
                limit: 20_000,
                actual: 60_000
            }
        ),
        "{err:?}"
    );
    // Within the size limits but far beyond the coded data: rejected as corrupt once the
    // data runs out, before any pixel memory is allocated.
    huge[sof + 6..sof + 10].copy_from_slice(&[0x17, 0x70, 0x17, 0x70]); // 6000 x 6000
    let start = Instant::now();
    let err = decode(&huge, &Limits::default()).expect_err("data too short");
    assert_fast(start);
    assert!(matches!(err, ImagingError::Corrupt { .. }), "{err:?}");
}
