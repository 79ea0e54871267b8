//! What Huella reads from a transaction: the control number, biographic fields (Type-2),
//! faces (Type-10) and finger images (Type-14, Type-4); and builders for those records.

use huella_core::FingerPosition;

use crate::record::{Record, TaggedRecord, Transaction, Type4Record, DATA};
use crate::NistError;

/// Type-1 TCN, the transaction control number.
pub const TCN: u32 = 9;
/// Type-1 NSR, native scanning resolution (pixels per millimetre).
pub const NSR: u32 = 11;
/// Type-1 NTR, nominal transmitting resolution (pixels per millimetre).
pub const NTR: u32 = 12;
/// Type-2 MNU (FBI EBTS), miscellaneous identification number: the document number.
pub const MNU: u32 = 17;
/// Type-2 NAM (FBI EBTS), name, `LAST,FIRST MIDDLE`.
pub const NAM: u32 = 18;
/// Type-2 CTZ (FBI EBTS), country of citizenship.
pub const CTZ: u32 = 21;
/// Type-2 DOB (FBI EBTS), date of birth, `YYYYMMDD`.
pub const DOB: u32 = 22;

/// Biographic fields of a Type-2 record, by the FBI EBTS field numbers (Type-2 content is
/// agency-defined; these are the EBTS ones).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Biographic {
    /// 2.018 NAM as written (`LAST,FIRST MIDDLE`), first subfield.
    pub name: Option<String>,
    /// 2.022 DOB, given here as `YYYY-MM-DD` (the file holds `YYYYMMDD`).
    pub date_of_birth: Option<String>,
    /// 2.021 CTZ, country of citizenship (a country code), first subfield.
    pub nationality: Option<String>,
    /// 2.017 MNU, miscellaneous identification number, first subfield as written: EBTS
    /// prefixes it with a two-letter code naming the kind of document and a hyphen
    /// (`PP-X1234567`), which is kept.
    pub document_number: Option<String>,
}

/// How a face image (Type-10 10.011 CGA) is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaceCompression {
    /// `JPEGB`: baseline JPEG.
    Jpeg,
    /// `JPEGL`: lossless JPEG.
    JpegLossless,
    /// `JP2`: JPEG 2000.
    Jpeg2000,
    /// `JP2L`: lossless JPEG 2000.
    Jpeg2000Lossless,
    /// `PNG`.
    Png,
    /// `NONE`: raw 8-bit pixels, grey (1 byte each) or RGB (3), row by row.
    None,
}

impl FaceCompression {
    /// The CGA code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEGB",
            Self::JpegLossless => "JPEGL",
            Self::Jpeg2000 => "JP2",
            Self::Jpeg2000Lossless => "JP2L",
            Self::Png => "PNG",
            Self::None => "NONE",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        by_code(
            [
                Self::Jpeg,
                Self::JpegLossless,
                Self::Jpeg2000,
                Self::Jpeg2000Lossless,
                Self::Png,
                Self::None,
            ],
            Self::code,
            code,
        )
    }
}

/// How a finger image (Type-14 14.011 CGA, Type-4 GCA) is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FingerCompression {
    /// `WSQ20` (Type-4 GCA 1): FBI WSQ.
    Wsq,
    /// `JPEGL`: lossless JPEG.
    JpegLossless,
    /// `JP2`: JPEG 2000.
    Jpeg2000,
    /// `JP2L`: lossless JPEG 2000.
    Jpeg2000Lossless,
    /// `PNG`.
    Png,
    /// `NONE` (Type-4 GCA 0): raw 8-bit grey pixels, row by row.
    None,
}

impl FingerCompression {
    /// The Type-14 CGA code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Wsq => "WSQ20",
            Self::JpegLossless => "JPEGL",
            Self::Jpeg2000 => "JP2",
            Self::Jpeg2000Lossless => "JP2L",
            Self::Png => "PNG",
            Self::None => "NONE",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        let code = code.trim();
        if code.eq_ignore_ascii_case("WSQ") {
            return Some(Self::Wsq);
        }
        by_code(
            [
                Self::Wsq,
                Self::JpegLossless,
                Self::Jpeg2000,
                Self::Jpeg2000Lossless,
                Self::Png,
                Self::None,
            ],
            Self::code,
            code,
        )
    }
}

/// The value among `all` whose code is `code` (any case, blanks around ignored).
fn by_code<T: Copy, const N: usize>(
    all: [T; N],
    name: fn(T) -> &'static str,
    code: &str,
) -> Option<T> {
    all.into_iter()
        .find(|c| name(*c).eq_ignore_ascii_case(code.trim()))
}

/// A face image of a Type-10 record whose IMT (10.003) is `FACE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaceImage<'a> {
    /// Index of the record in the transaction.
    pub record_index: usize,
    /// Compression (10.011 CGA).
    pub compression: FaceCompression,
    /// Width (10.006 HLL), pixels.
    pub width: u32,
    /// Height (10.007 VLL), pixels.
    pub height: u32,
    /// For [`FaceCompression::None`]: bytes per pixel, 1 (grey) or 3 (RGB), as the data's
    /// length says; `None` for compressed images.
    pub raw_channels: Option<u8>,
    /// The image data (10.999).
    pub data: &'a [u8],
}

/// A finger image of a Type-14 or Type-4 record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FingerImage<'a> {
    /// Index of the record in the transaction.
    pub record_index: usize,
    /// 14 or 4.
    pub record_type: u8,
    /// Finger position (14.013 FGP, Type-4 FGP): codes 0-10, and 11/12 (plain right and
    /// left thumb) as the thumbs.
    pub position: FingerPosition,
    /// Impression type (14.003 IMP, Type-4 IMP).
    pub impression: u8,
    /// Compression.
    pub compression: FingerCompression,
    /// Width (HLL), pixels.
    pub width: u32,
    /// Height (VLL), pixels.
    pub height: u32,
    /// Resolution in pixels per inch, when the record states one (Type-14: 14.008 SLC
    /// with 14.009 HPS; Type-4: ISR with the Type-1 NTR or NSR).
    pub ppi: Option<f32>,
    /// The image data; for [`FingerCompression::None`], exactly `width * height` bytes.
    pub data: &'a [u8],
}

/// Shorthand for an error about field `field` of a record.
pub(crate) fn malformed(
    index: usize,
    record_type: u8,
    field: u32,
    reason: impl Into<String>,
) -> NistError {
    NistError::Malformed {
        record_index: index,
        record_type,
        field: Some(field),
        reason: reason.into(),
    }
}

/// A numeric field's first item; `Ok(None)` when the field is absent.
pub(crate) fn number(r: &TaggedRecord, index: usize, field: u32) -> Result<Option<u32>, NistError> {
    match r.first_item(field) {
        None => Ok(None),
        Some(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| malformed(index, r.record_type, field, "not a whole number")),
    }
}

/// A numeric field that must be present.
pub(crate) fn required(r: &TaggedRecord, index: usize, field: u32) -> Result<u32, NistError> {
    number(r, index, field)?.ok_or_else(|| malformed(index, r.record_type, field, "missing"))
}

/// An image side (HLL, VLL): 1-65535.
fn side(r: &TaggedRecord, index: usize, field: u32) -> Result<u32, NistError> {
    let v = required(r, index, field)?;
    if v == 0 || v > u32::from(u16::MAX) {
        return Err(malformed(
            index,
            r.record_type,
            field,
            format!("{v} is not a line length of 1-65535"),
        ));
    }
    Ok(v)
}

/// A finger position code as Huella's position, or why not.
pub(crate) fn position(
    code: u32,
    index: usize,
    record_type: u8,
    field: u32,
) -> Result<FingerPosition, NistError> {
    let unsupported = |reason: String| NistError::Unsupported {
        record_index: index,
        record_type,
        field: Some(field),
        reason,
    };
    match code {
        0..=10 => FingerPosition::from_code(code as u8)
            .map_err(|e| malformed(index, record_type, field, e.to_string())),
        11 => Ok(FingerPosition::RightThumb),
        12 => Ok(FingerPosition::LeftThumb),
        13..=15 | 40..=50 => Err(unsupported(format!(
            "finger position {code} is a multi-finger (slap) or segmented image; only single fingers (0-12) are read"
        ))),
        _ => Err(unsupported(format!(
            "finger position {code} is not a single finger (0-12)"
        ))),
    }
}

/// Checks that raw pixel data fills `width x height x channels` exactly.
fn raw_size(width: u32, height: u32, len: usize) -> Option<u8> {
    let pixels = u64::from(width) * u64::from(height);
    [1u8, 3]
        .into_iter()
        .find(|c| pixels * u64::from(*c) == len as u64)
}

/// A resolution in pixels per millimetre (`19.69`) from a Type-1 field, as ppi.
fn ppmm_field(header: &TaggedRecord, field: u32) -> Result<Option<f32>, NistError> {
    let Some(text) = header.first_item(field) else {
        return Ok(None);
    };
    match text.trim().parse::<f32>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1000.0 => Ok(Some(v * 25.4)),
        _ => Err(malformed(
            0,
            1,
            field,
            "not a resolution in pixels per millimetre",
        )),
    }
}

impl Transaction {
    /// 1.002 VER, the standard's version (`0500` for ANSI/NIST-ITL 1-2011).
    pub fn version(&self) -> Option<&str> {
        self.header.text(2)
    }

    /// 1.009 TCN, the transaction control number, when present and not blank.
    pub fn control_number(&self) -> Option<&str> {
        self.header
            .text(TCN)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// The tagged records of one type with their indices (1-based after the Type-1).
    fn tagged(&self, record_type: u8) -> impl Iterator<Item = (usize, &TaggedRecord)> {
        self.records
            .iter()
            .enumerate()
            .filter_map(move |(i, r)| match r {
                Record::Tagged(t) if t.record_type == record_type => Some((i + 1, t)),
                _ => None,
            })
    }

    /// The biographic fields of the first Type-2 record (all `None` without one).
    ///
    /// The date of birth must be a real `YYYYMMDD` date; text follows the transaction's
    /// rule (printable ASCII, or UTF-8 when 1.015 DCS declares it: no lossy conversion,
    /// so a Latin-1 name without that declaration is a [`NistError::NotText`] at decode).
    pub fn biographic(&self) -> Result<Biographic, NistError> {
        let Some((index, r)) = self.tagged(2).next() else {
            return Ok(Biographic::default());
        };
        let first_subfield = |field: u32| {
            r.field(field)
                .and_then(|f| f.text())
                .and_then(|t| t.split(char::from(crate::RS)).next())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let date_of_birth = match first_subfield(DOB) {
            None => None,
            Some(d) => Some(
                iso_date(&d)
                    .ok_or_else(|| malformed(index, 2, DOB, "not a valid YYYYMMDD date"))?,
            ),
        };
        Ok(Biographic {
            name: first_subfield(NAM),
            date_of_birth,
            nationality: first_subfield(CTZ),
            document_number: first_subfield(MNU),
        })
    }

    /// Every Type-10 record whose IMT (10.003) is `FACE`, in file order, each checked
    /// on its own (an unsupported compression fails that face only).
    pub fn faces(&self) -> Vec<Result<FaceImage<'_>, NistError>> {
        self.tagged(10)
            .filter(|(_, r)| {
                r.first_item(3)
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("FACE"))
            })
            .map(|(index, r)| face(r, index))
            .collect()
    }

    /// Every finger image (Type-14 and Type-4 records) in file order, each checked on
    /// its own: a slap or an unsupported compression is a [`NistError::Unsupported`]
    /// for that record, which a caller may skip.
    pub fn finger_images(&self) -> Vec<Result<FingerImage<'_>, NistError>> {
        self.records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match r {
                Record::Tagged(t) if t.record_type == 14 => Some(type14(t, i + 1)),
                Record::Type4(t) => Some(self.type4(t, i + 1)),
                _ => None,
            })
            .collect()
    }

    fn type4<'a>(&self, r: &'a Type4Record, index: usize) -> Result<FingerImage<'a>, NistError> {
        let compression = match r.compression {
            0 => FingerCompression::None,
            1 => FingerCompression::Wsq,
            other => {
                return Err(NistError::Unsupported {
                    record_index: index,
                    record_type: 4,
                    field: Some(8),
                    reason: format!("GCA {other}: only 0 (none) and 1 (WSQ) are read"),
                })
            }
        };
        let (width, height) = (u32::from(r.width), u32::from(r.height));
        if width == 0 || height == 0 {
            return Err(malformed(index, 4, 6, "a zero line length"));
        }
        if compression == FingerCompression::None
            && raw_size(width, height, r.data.len()) != Some(1)
        {
            return Err(malformed(
                index,
                4,
                9,
                format!(
                    "an uncompressed {width}x{height} image needs {} bytes, the record holds {}",
                    u64::from(width) * u64::from(height),
                    r.data.len()
                ),
            ));
        }
        let ppi = match r.resolution {
            0 => ppmm_field(&self.header, NTR)?,
            1 => ppmm_field(&self.header, NSR)?,
            other => {
                return Err(malformed(
                    index,
                    4,
                    5,
                    format!("ISR {other} is neither 0 nor 1"),
                ))
            }
        };
        Ok(FingerImage {
            record_index: index,
            record_type: 4,
            position: position(u32::from(r.positions[0]), index, 4, 4)?,
            impression: r.impression,
            compression,
            width,
            height,
            ppi,
            data: &r.data,
        })
    }
}

fn face(r: &TaggedRecord, index: usize) -> Result<FaceImage<'_>, NistError> {
    let (width, height) = (side(r, index, 6)?, side(r, index, 7)?);
    let code = r
        .first_item(11)
        .ok_or_else(|| malformed(index, 10, 11, "missing"))?;
    let compression = FaceCompression::from_code(code).ok_or_else(|| NistError::Unsupported {
        record_index: index,
        record_type: 10,
        field: Some(11),
        reason: "compression other than JPEGB, JPEGL, JP2, JP2L, PNG, NONE".into(),
    })?;
    let data = r
        .data()
        .ok_or_else(|| malformed(index, 10, DATA, "no image data"))?;
    let raw_channels = if compression == FaceCompression::None {
        Some(raw_size(width, height, data.len()).ok_or_else(|| {
            malformed(
                index,
                10,
                DATA,
                format!("an uncompressed {width}x{height} image needs 1 or 3 bytes a pixel, the record holds {} bytes", data.len()),
            )
        })?)
    } else {
        None
    };
    Ok(FaceImage {
        record_index: index,
        compression,
        width,
        height,
        raw_channels,
        data,
    })
}

fn type14(r: &TaggedRecord, index: usize) -> Result<FingerImage<'_>, NistError> {
    let (width, height) = (side(r, index, 6)?, side(r, index, 7)?);
    let impression = required(r, index, 3)?;
    let impression =
        u8::try_from(impression).map_err(|_| malformed(index, 14, 3, "not an impression code"))?;
    let position = position(required(r, index, 13)?, index, 14, 13)?;
    let code = r
        .first_item(11)
        .ok_or_else(|| malformed(index, 14, 11, "missing"))?;
    let compression = FingerCompression::from_code(code).ok_or_else(|| NistError::Unsupported {
        record_index: index,
        record_type: 14,
        field: Some(11),
        reason: "compression other than WSQ20, JPEGL, JP2, JP2L, PNG, NONE".into(),
    })?;
    if let Some(bpx) = number(r, index, 12)? {
        if bpx != 8 {
            return Err(NistError::Unsupported {
                record_index: index,
                record_type: 14,
                field: Some(12),
                reason: format!("{bpx} bits a pixel: only 8-bit grey is read"),
            });
        }
    }
    let data = r
        .data()
        .ok_or_else(|| malformed(index, 14, DATA, "no image data"))?;
    if compression == FingerCompression::None && raw_size(width, height, data.len()) != Some(1) {
        return Err(malformed(
            index,
            14,
            DATA,
            format!(
                "an uncompressed {width}x{height} image needs {} bytes, the record holds {}",
                u64::from(width) * u64::from(height),
                data.len()
            ),
        ));
    }
    let ppi = match number(r, index, 8)?.unwrap_or(0) {
        0 => None,
        unit @ (1 | 2) => {
            let hps = required(r, index, 9)?;
            if hps == 0 {
                return Err(malformed(index, 14, 9, "a zero pixel scale"));
            }
            Some(if unit == 1 {
                hps as f32
            } else {
                hps as f32 * 2.54
            })
        }
        other => {
            return Err(malformed(
                index,
                14,
                8,
                format!("scale units {other} are not 0, 1 or 2"),
            ))
        }
    };
    Ok(FingerImage {
        record_index: index,
        record_type: 14,
        position,
        impression,
        compression,
        width,
        height,
        ppi,
        data,
    })
}

/// `YYYYMMDD` as `YYYY-MM-DD`, when it is a real date.
fn iso_date(d: &str) -> Option<String> {
    if d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (y, m, day): (u32, u32, u32) = (
        d[..4].parse().ok()?,
        d[4..6].parse().ok()?,
        d[6..].parse().ok()?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (1..=days)
        .contains(&day)
        .then(|| format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]))
}

impl Record {
    /// A Type-2 record with the biographic fields (EBTS numbering); a date of birth
    /// given as `YYYY-MM-DD` is written `YYYYMMDD`.
    pub fn biographic(idc: u8, b: &Biographic) -> Record {
        let mut r = TaggedRecord::new(2).with_text(2, format!("{idc:02}"));
        let fields = [
            (MNU, b.document_number.clone()),
            (NAM, b.name.clone()),
            (CTZ, b.nationality.clone()),
            (DOB, b.date_of_birth.as_ref().map(|d| d.replace('-', ""))),
        ];
        for (number, value) in fields {
            if let Some(v) = value {
                r = r.with_text(number, v);
            }
        }
        Record::Tagged(r)
    }

    /// A Type-10 face record (IMT `FACE`) holding an image.
    pub fn face(
        idc: u8,
        compression: FaceCompression,
        width: u32,
        height: u32,
        data: Vec<u8>,
    ) -> Record {
        Record::Tagged(
            TaggedRecord::new(10)
                .with_text(2, format!("{idc:02}"))
                .with_text(3, "FACE")
                .with_text(6, width.to_string())
                .with_text(7, height.to_string())
                .with_text(8, "0")
                .with_text(9, "1")
                .with_text(10, "1")
                .with_text(11, compression.code())
                .with_data(data),
        )
    }

    /// A Type-14 finger image record (impression 1, live-scan rolled; 8 bits a pixel);
    /// the resolution is written in pixels per inch (SLC 1) when given.
    pub fn finger_image(
        idc: u8,
        position: FingerPosition,
        compression: FingerCompression,
        width: u32,
        height: u32,
        ppi: Option<u32>,
        data: Vec<u8>,
    ) -> Record {
        let (slc, scale) = match ppi {
            Some(p) => ("1", p.to_string()),
            None => ("0", "1".to_string()),
        };
        Record::Tagged(
            TaggedRecord::new(14)
                .with_text(2, format!("{idc:02}"))
                .with_text(3, "1")
                .with_text(6, width.to_string())
                .with_text(7, height.to_string())
                .with_text(8, slc)
                .with_text(9, scale.clone())
                .with_text(10, scale)
                .with_text(11, compression.code())
                .with_text(12, "8")
                .with_text(13, position.code().to_string())
                .with_data(data),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_birth_are_checked() {
        assert_eq!(iso_date("19800102").as_deref(), Some("1980-01-02"));
        assert_eq!(iso_date("20000229").as_deref(), Some("2000-02-29"));
        for bad in [
            "19000229",
            "19801301",
            "19800100",
            "1980012",
            "1980-1-02",
            "abcdefgh",
        ] {
            assert_eq!(iso_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn slaps_and_unknown_positions_are_unsupported() {
        assert_eq!(
            position(2, 1, 14, 13).ok(),
            Some(FingerPosition::RightIndex)
        );
        assert_eq!(
            position(12, 1, 14, 13).ok(),
            Some(FingerPosition::LeftThumb)
        );
        for code in [13, 14, 15, 19, 255] {
            assert!(
                matches!(
                    position(code, 1, 14, 13),
                    Err(NistError::Unsupported {
                        field: Some(13),
                        ..
                    })
                ),
                "{code}"
            );
        }
    }
}
