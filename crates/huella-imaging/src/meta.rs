//! Minimal, bounds-checked readers for the resolution a file states.
//!
//! The `image` crate does not expose resolution metadata, so these walk just enough of
//! each container to find it. Every read goes through `get`, every loop advances, and
//! anything unexpected yields `None`: resolution is advisory and never fails a decode.

use crate::SourceFormat;

const METRES_PER_INCH: f64 = 0.0254;
const CM_PER_INCH: f64 = 2.54;

/// Horizontal pixels per inch stated by the file, if any.
pub(crate) fn ppi(format: SourceFormat, bytes: &[u8]) -> Option<f32> {
    let ppi = match format {
        SourceFormat::Png => png_ppi(bytes),
        SourceFormat::Jpeg => jpeg_ppi(bytes),
        SourceFormat::Tiff => tiff_ppi(bytes),
        SourceFormat::Bmp => bmp_ppi(bytes),
        // WSQ states its resolution in a comment, read by the WSQ decoder itself.
        SourceFormat::Pnm | SourceFormat::Wsq => None,
    }?;
    // Anything outside this range is a broken header, not a scanner.
    (ppi.is_finite() && (1.0..=1_000_000.0).contains(&ppi)).then_some(ppi as f32)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// PNG `pHYs` (pixels per metre when the unit byte is 1), found before the first `IDAT`.
fn png_ppi(b: &[u8]) -> Option<f64> {
    let mut at = 8usize;
    loop {
        let len = usize::try_from(be32(b, at)?).ok()?;
        let kind = b.get(at + 4..at + 8)?;
        let data = at.checked_add(8)?;
        match kind {
            b"pHYs" => {
                let per_metre = be32(b, data)?;
                let unit = *b.get(data + 8)?;
                return (unit == 1).then(|| f64::from(per_metre) * METRES_PER_INCH);
            }
            b"IDAT" | b"IEND" => return None,
            _ => at = data.checked_add(len)?.checked_add(4)?,
        }
    }
}

/// JPEG JFIF `APP0` density, else the EXIF `APP1` resolution, scanning markers up to `SOS`.
fn jpeg_ppi(b: &[u8]) -> Option<f64> {
    let mut at = 2usize; // after SOI
    let mut exif = None;
    while at < b.len() {
        if *b.get(at)? != 0xFF {
            return None;
        }
        let marker = *b.get(at + 1)?;
        if marker == 0xFF {
            at += 1; // fill byte
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            break; // start of scan / end of image: no more headers
        }
        let len = usize::from(be16(b, at + 2)?);
        let seg = b.get(at + 4..(at + 2).checked_add(len)?)?;
        if marker == 0xE0 && seg.starts_with(b"JFIF\0") {
            let unit = *seg.get(7)?;
            let x = f64::from(be16(seg, 8)?);
            match unit {
                1 => return Some(x),
                2 => return Some(x * CM_PER_INCH),
                _ => {}
            }
        } else if marker == 0xE1 && exif.is_none() {
            exif = seg.strip_prefix(b"Exif\0\0").and_then(tiff_ppi);
        }
        at = (at + 2).checked_add(len.max(2))?;
    }
    exif
}

/// TIFF (or EXIF) IFD0 `XResolution` (282) and `ResolutionUnit` (296, default inch).
fn tiff_ppi(b: &[u8]) -> Option<f64> {
    let little = match b.get(0..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None, // includes BigTIFF
    };
    let u16_at = |at: usize| -> Option<u16> {
        let raw: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(raw)
        } else {
            u16::from_be_bytes(raw)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let raw: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(raw)
        } else {
            u32::from_be_bytes(raw)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    let (mut resolution, mut unit) = (None, 2u16);
    for i in 0..count {
        let entry = ifd.checked_add(2 + 12 * i)?;
        let (tag, kind) = (u16_at(entry)?, u16_at(entry + 2)?);
        match (tag, kind) {
            (282, 5) => {
                let value = usize::try_from(u32_at(entry + 8)?).ok()?;
                let (num, den) = (u32_at(value)?, u32_at(value + 4)?);
                if den != 0 {
                    resolution = Some(f64::from(num) / f64::from(den));
                }
            }
            (296, 3) => unit = u16_at(entry + 8)?,
            _ => {}
        }
    }
    match unit {
        2 => resolution,
        3 => resolution.map(|r| r * CM_PER_INCH),
        _ => None,
    }
}

/// BMP `biXPelsPerMeter` from a `BITMAPINFOHEADER` or later (absent from the old core header).
fn bmp_ppi(b: &[u8]) -> Option<f64> {
    if le32(b, 14)? < 40 {
        return None;
    }
    let per_metre = i32::from_le_bytes(le32(b, 38)?.to_le_bytes());
    (per_metre > 0).then(|| f64::from(per_metre) * METRES_PER_INCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiff_rational_in_both_byte_orders() {
        // II, IFD at 8, 2 entries: XResolution -> rational at 38, ResolutionUnit = 3 (cm).
        let mut le = b"II*\0\x08\0\0\0\x02\0".to_vec();
        le.extend_from_slice(&[0x1A, 1, 5, 0, 1, 0, 0, 0, 38, 0, 0, 0]);
        le.extend_from_slice(&[0x28, 1, 3, 0, 1, 0, 0, 0, 3, 0, 0, 0]);
        le.extend_from_slice(&[0, 0, 0, 0]);
        le.extend_from_slice(&[200, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(tiff_ppi(&le), Some(200.0 * 2.54));
        let mut be = b"MM\0*\0\0\0\x08\0\x01".to_vec();
        be.extend_from_slice(&[1, 0x1A, 0, 5, 0, 0, 0, 1, 0, 0, 0, 26]);
        be.extend_from_slice(&[0, 0, 0, 0]);
        be.extend_from_slice(&[0, 0, 0x3E, 0x80, 0, 0, 0, 32]); // 16000 / 32
        assert_eq!(tiff_ppi(&be), Some(500.0));
    }

    #[test]
    fn truncated_or_hostile_headers_give_none() {
        for b in [
            &b""[..],
            b"II*\0",
            b"II*\0\xff\xff\xff\xff",
            b"MM\0*\0\0\0\x08\xff\xff",
        ] {
            assert_eq!(tiff_ppi(b), None);
        }
        assert_eq!(png_ppi(b"\x89PNG\r\n\x1a\n\xff\xff\xff\xf0IHDR"), None);
        assert_eq!(jpeg_ppi(b"\xff\xd8\xff\xe0\xff\xff"), None);
        assert_eq!(jpeg_ppi(b"\xff\xd8\xff\xe0\x00\x00\xff\xe0\x00\x00"), None);
        assert_eq!(bmp_ppi(b"BM"), None);
        assert_eq!(ppi(SourceFormat::Pnm, b"P5 1 1 255 x"), None);
    }

    #[test]
    fn jfif_density_units() {
        let jfif = |unit: u8, x: u16| {
            let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
            v.extend_from_slice(b"JFIF\0\x01\x02");
            v.push(unit);
            v.extend_from_slice(&x.to_be_bytes());
            v.extend_from_slice(&x.to_be_bytes());
            v.extend_from_slice(&[0, 0, 0xFF, 0xDA]);
            v
        };
        assert_eq!(jpeg_ppi(&jfif(1, 300)), Some(300.0));
        assert_eq!(jpeg_ppi(&jfif(2, 100)), Some(254.0));
        assert_eq!(jpeg_ppi(&jfif(0, 1)), None);
    }
}
