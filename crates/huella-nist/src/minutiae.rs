//! Type-9 minutiae: the INCITS 378 feature block (fields 9.126-9.140).
//!
//! Field meanings (ANSI/NIST-ITL 1-2011, the "M1" block transcribing an INCITS 378
//! finger view into tagged fields):
//!
//! | field | name | read as |
//! |---|---|---|
//! | 9.126 CBI | CBEFF information | written `27<US>513<US>0` (INCITS M1, 378); not read |
//! | 9.127 CEI | capture equipment | not read |
//! | 9.128 HLL / 9.129 VLL | image width / height, pixels | required, 1-65535 |
//! | 9.130 SLC | scale units: 0 none, 1 ppi, 2 pixels per cm | resolution unit |
//! | 9.131 THPS / 9.132 TVPS | horizontal / vertical pixel scale | resolution (197 px/cm, 500 ppi, when SLC is 0 or absent) |
//! | 9.133 FVW | finger view number | 0-15 |
//! | 9.134 FGP | finger position | 0-12 (11/12 as the thumbs); slaps are unsupported |
//! | 9.135 FQD | finger quality: value, vendor, algorithm | first value, 0-100 |
//! | 9.136 NOM | number of minutiae | must equal the minutiae in 9.137, at most 255 |
//! | 9.137 FMD | one subfield a minutia: index, x, y, theta, quality, type | x, y pixels from the top-left (inside the image); theta in 2-degree units 0-179, counter-clockwise (INCITS 378); quality 0-100; type 0 other, 1 ending, 2 bifurcation |
//! | 9.138-9.140 | ridge counts, cores, deltas | not read (the matcher does not use them) |
//!
//! Not supported, each a [`NistError::Unsupported`]: the legacy NIST minutiae fields
//! 9.010-9.012 (coordinates in 0.01 mm from a bottom-left origin, which need the image
//! height to convert), vendor-defined blocks, and a Type-9 without the 9.126-9.140 block.

use std::f32::consts::TAU;

use huella_core::FingerPosition;
use huella_finger::{FingerTemplate, Minutia, MinutiaKind, MAX_MINUTIAE};

use crate::record::{Record, TaggedRecord, Transaction};
use crate::views::{malformed, number, position, required};
use crate::NistError;

/// Largest minutia coordinate INCITS 378 can hold (14 bits).
const MAX_COORDINATE: u32 = 0x3FFF;
/// Resolution assumed when a Type-9 states none: 500 ppi in pixels per centimetre.
const DEFAULT_PPCM: u16 = 197;

/// The minutiae of one finger from a Type-9 record.
#[derive(Debug, Clone, PartialEq)]
pub struct FingerMinutiae {
    /// Index of the record in the transaction.
    pub record_index: usize,
    /// Finger view number (9.133 FVW).
    pub view: u8,
    /// The template; its `position` is the record's finger position (9.134 FGP).
    pub template: FingerTemplate,
}

impl FingerMinutiae {
    /// The finger position.
    pub fn position(&self) -> FingerPosition {
        self.template.position
    }
}

impl Transaction {
    /// Every Type-9 record's INCITS 378 minutiae, in file order, each checked on its own.
    pub fn finger_minutiae(&self) -> Vec<Result<FingerMinutiae, NistError>> {
        self.records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match r {
                Record::Tagged(t) if t.record_type == 9 => Some(read(t, i + 1)),
                _ => None,
            })
            .collect()
    }
}

fn read(r: &TaggedRecord, index: usize) -> Result<FingerMinutiae, NistError> {
    let unsupported = |field: Option<u32>, reason: &str| NistError::Unsupported {
        record_index: index,
        record_type: 9,
        field,
        reason: reason.into(),
    };
    if !r.fields.iter().any(|f| (126..=140).contains(&f.number)) {
        if r.fields.iter().any(|f| (10..=12).contains(&f.number)) {
            return Err(unsupported(
                Some(12),
                "legacy NIST minutiae (9.010-9.012) are not read; send the INCITS 378 block (9.126-9.140)",
            ));
        }
        return Err(unsupported(
            None,
            "no INCITS 378 feature block (9.126-9.140); vendor-defined minutiae are not read",
        ));
    }
    let width = side(r, index, 128)?;
    let height = side(r, index, 129)?;
    let (resolution_x, resolution_y) = match number(r, index, 130)?.unwrap_or(0) {
        0 => (DEFAULT_PPCM, DEFAULT_PPCM),
        unit @ (1 | 2) => {
            let scale = |field: u32| -> Result<u16, NistError> {
                let v = required(r, index, field)?;
                let ppcm = if unit == 1 {
                    (v as f32 / 2.54).round() as u32
                } else {
                    v
                };
                u16::try_from(ppcm)
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| malformed(index, 9, field, "not a pixel scale of 1-65535 px/cm"))
            };
            (scale(131)?, scale(132)?)
        }
        other => {
            return Err(malformed(
                index,
                9,
                130,
                format!("scale units {other} are not 0, 1 or 2"),
            ))
        }
    };
    let view = number(r, index, 133)?.unwrap_or(0);
    let view = u8::try_from(view)
        .ok()
        .filter(|v| *v <= 15)
        .ok_or_else(|| malformed(index, 9, 133, "a view number over 15"))?;
    let position = position(number(r, index, 134)?.unwrap_or(0), index, 9, 134)?;
    let quality = number(r, index, 135)?.unwrap_or(0);
    let quality = u8::try_from(quality)
        .ok()
        .filter(|q| *q <= 100)
        .ok_or_else(|| malformed(index, 9, 135, "a quality over 100"))?;
    let declared = required(r, index, 136)?;
    if declared as usize > MAX_MINUTIAE {
        return Err(malformed(
            index,
            9,
            136,
            format!("{declared} minutiae, at most {MAX_MINUTIAE}"),
        ));
    }
    let mut minutiae = Vec::new();
    if let Some(fmd) = r.field(137) {
        for (k, items) in fmd.subfields().enumerate() {
            if minutiae.len() == declared as usize {
                return Err(malformed(
                    index,
                    9,
                    136,
                    format!("NOM says {declared} minutiae but 9.137 holds more"),
                ));
            }
            let bad =
                |reason: String| malformed(index, 9, 137, format!("minutia {}: {reason}", k + 1));
            let values: Vec<u32> = items
                .map(|s| s.trim().parse::<u32>())
                .collect::<Result<_, _>>()
                .map_err(|_| bad("an item is not a whole number".into()))?;
            let [_, x, y, theta, q, kind] = values[..] else {
                return Err(bad(format!(
                    "{} items, 6 expected (index, x, y, theta, quality, type)",
                    values.len()
                )));
            };
            if x >= width || y >= height || x > MAX_COORDINATE || y > MAX_COORDINATE {
                return Err(bad(format!(
                    "at ({x}, {y}), outside the {width}x{height} image"
                )));
            }
            if theta > 179 {
                return Err(bad(format!("angle {theta} over 179 (2-degree units)")));
            }
            if q > 100 {
                return Err(bad(format!("quality {q} over 100")));
            }
            let kind = match kind {
                0 => MinutiaKind::Other,
                1 => MinutiaKind::Ending,
                2 => MinutiaKind::Bifurcation,
                _ => return Err(bad(format!("type {kind} is not 0, 1 or 2"))),
            };
            minutiae.push(Minutia {
                // In range: checked against MAX_COORDINATE above.
                x: x as u16,
                y: y as u16,
                angle: (theta as f32 * 2.0).to_radians().rem_euclid(TAU),
                kind,
                quality: q as u8,
            });
        }
    }
    if minutiae.len() != declared as usize {
        return Err(malformed(
            index,
            9,
            136,
            format!(
                "NOM says {declared} minutiae but 9.137 holds {}",
                minutiae.len()
            ),
        ));
    }
    Ok(FingerMinutiae {
        record_index: index,
        view,
        template: FingerTemplate {
            width: width as u16,
            height: height as u16,
            resolution_x,
            resolution_y,
            position,
            quality,
            minutiae,
        },
    })
}

/// HLL/VLL of the block: 1-65535.
fn side(r: &TaggedRecord, index: usize, field: u32) -> Result<u32, NistError> {
    let v = required(r, index, field)?;
    if v == 0 || v > u32::from(u16::MAX) {
        return Err(malformed(
            index,
            9,
            field,
            format!("{v} is not a line length of 1-65535"),
        ));
    }
    Ok(v)
}

impl Record {
    /// A Type-9 record holding a template as the INCITS 378 block (impression 0,
    /// live-scan plain; view 0). Angles are rounded to 2-degree units.
    pub fn minutiae(idc: u8, template: &FingerTemplate) -> Record {
        let us = char::from(crate::US);
        let mut r = TaggedRecord::new(9)
            .with_text(2, format!("{idc:02}"))
            .with_text(3, "0")
            .with_text(4, "U")
            .with_items(126, &[&["27", "513", "0"]])
            .with_text(128, template.width.to_string())
            .with_text(129, template.height.to_string())
            .with_text(130, "2")
            .with_text(131, template.resolution_x.to_string())
            .with_text(132, template.resolution_y.to_string())
            .with_text(133, "0")
            .with_text(134, template.position.code().to_string())
            .with_items(135, &[&[&template.quality.to_string(), "0", "0"]])
            .with_text(136, template.minutiae.len().to_string());
        if !template.minutiae.is_empty() {
            let fmd = template
                .minutiae
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let theta = (m.angle.to_degrees() / 2.0).round().rem_euclid(180.0) as u32 % 180;
                    let kind = match m.kind {
                        MinutiaKind::Other => 0,
                        MinutiaKind::Ending => 1,
                        MinutiaKind::Bifurcation => 2,
                    };
                    format!(
                        "{}{us}{}{us}{}{us}{theta}{us}{}{us}{kind}",
                        i + 1,
                        m.x,
                        m.y,
                        m.quality
                    )
                })
                .collect::<Vec<_>>()
                .join(&char::from(crate::RS).to_string());
            r = r.with_text(137, fmd);
        }
        Record::Tagged(r)
    }
}
