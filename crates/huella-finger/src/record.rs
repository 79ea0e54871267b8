//! ISO/IEC 19794-2:2005 and ANSI INCITS 378-2004 finger minutiae records.
//!
//! Both formats share one layout; they differ only in a few places, which
//! [`RecordFormat`]'s private methods describe so that one parser and one writer serve both:
//!
//! | | ISO/IEC 19794-2:2005 | ANSI INCITS 378-2004 |
//! |---|---|---|
//! | record length | 4 bytes | 2 bytes, or 0 then 4 bytes when over 65 535 |
//! | CBEFF product id | absent | 4 bytes after the length |
//! | fixed header | 24 bytes | 26 (or 30) bytes |
//! | angle unit | 360/256 degrees, 0..=255 | 2 degrees, 0..=179 |
//! | extended data area length | counts the data only | counts the 4-byte area header too |
//!
//! The last row follows FingerprintIO's reading of the ISO text; NIST's biomdi reads ISO
//! areas like ANSI ones. The FVC2002 vendor templates carry no extended data, so neither
//! reading is exercised by real data here.
//!
//! Decoding keeps every field, extended data as raw bytes, so `decode` then `encode`
//! reproduces the input byte for byte. Whatever `decode` accepts, `encode` writes back;
//! whatever would not decode (reserved bits set, minutia type 3, coordinates outside the
//! image, ANSI angle over 179, quality over 100, finger position over 10), `encode`
//! refuses with [`FingerError::BadInput`].
//!
//! Angles: both standards measure counter-clockwise from the positive x axis as the image
//! is viewed (y pointing down), which is [`Minutia::angle`]'s convention, so conversion is
//! a pure change of unit.

use std::f32::consts::TAU;

use huella_core::FingerPosition;

use crate::{FingerError, FingerTemplate, Minutia, MinutiaKind, MAX_MINUTIAE};

const MAGIC: &[u8; 8] = b"FMR\0 20\0";
/// Largest value a 14-bit coordinate field holds.
const MAX_COORDINATE: u16 = 0x3FFF;
/// Bytes one minutia takes.
const MINUTIA_BYTES: usize = 6;
/// Smallest finger view: 4-byte header and a 2-byte extended data length.
const MIN_VIEW_BYTES: usize = 6;
/// Bytes needed to tell the formats apart: magic, version and ISO's 4-byte length.
const FORMAT_SNIFF_BYTES: usize = 12;

/// Which standard a minutiae record follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordFormat {
    /// ISO/IEC 19794-2:2005, the finger minutiae record ("FMR", version " 20").
    Iso19794_2_2005,
    /// ANSI INCITS 378-2004 (also "FMR", version " 20", with a CBEFF product id).
    Ansi378_2004,
}

impl RecordFormat {
    /// The standard's name, as error messages give it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Iso19794_2_2005 => "ISO/IEC 19794-2",
            Self::Ansi378_2004 => "ANSI INCITS 378",
        }
    }

    /// How many angle units make a full turn: 256 for ISO (1.40625 degrees each), 180
    /// for ANSI (2 degrees each).
    pub fn angle_steps(self) -> u16 {
        match self {
            Self::Iso19794_2_2005 => 256,
            Self::Ansi378_2004 => 180,
        }
    }

    /// Whether an extended data area's length field counts its own 4-byte header.
    fn area_length_counts_header(self) -> bool {
        matches!(self, Self::Ansi378_2004)
    }

    /// Fixed header size; `long_length` is ANSI's 6-byte length form.
    fn header_bytes(self, long_length: bool) -> usize {
        match (self, long_length) {
            (Self::Iso19794_2_2005, _) => 24,
            (Self::Ansi378_2004, false) => 26,
            (Self::Ansi378_2004, true) => 30,
        }
    }

    fn corrupt(self, reason: impl Into<String>) -> FingerError {
        FingerError::Corrupt {
            format: self.name(),
            reason: reason.into(),
        }
    }

    fn truncated(self, needed: usize, available: usize) -> FingerError {
        FingerError::Truncated {
            format: self.name(),
            needed,
            available,
        }
    }

    /// Guesses the format of a record that starts with the shared magic and version.
    ///
    /// ISO's 4-byte length and ANSI's 2-byte one start at the same offset. An ANSI short
    /// length is at least 26, which as the high half of an ISO length would mean a record
    /// over 1.7 MB; a zero there is either an ISO record under 64 KiB (low half at least
    /// 24) or an ANSI long length (whose high half, for any record under 1.5 MB, is below
    /// 24). The guess only picks the parser: [`MinutiaeRecord::decode_as`] checks the rest.
    fn sniff(bytes: &[u8]) -> Self {
        let high = u16::from_be_bytes([bytes[8], bytes[9]]);
        let low = u16::from_be_bytes([bytes[10], bytes[11]]);
        match high {
            26.. => Self::Ansi378_2004,
            1..=25 => Self::Iso19794_2_2005,
            0 if low >= 24 => Self::Iso19794_2_2005,
            0 => Self::Ansi378_2004,
        }
    }
}

/// A finger minutiae record: the header fields and one entry per finger view.
///
/// Field values are the record's own, raw; [`MinutiaeRecord::to_template`] converts one
/// view to the crate's [`FingerTemplate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinutiaeRecord {
    /// The standard the record follows; [`MinutiaeRecord::encode`] writes this format.
    pub format: RecordFormat,
    /// ANSI only: the CBEFF product identifier, owner in the high 16 bits and product type
    /// in the low 16. `None` for ISO records, which have no such field.
    pub cbeff_product_id: Option<u32>,
    /// Capture equipment certification flags (4 bits, 0..=15).
    pub equipment_certification: u8,
    /// Capture device type id (12 bits, 0..=4095; 0 = unreported).
    pub capture_device_id: u16,
    /// Image width in pixels; every minutia has `x < width`.
    pub width: u16,
    /// Image height in pixels; every minutia has `y < height`.
    pub height: u16,
    /// Horizontal resolution in pixels per centimetre (197 for 500 ppi).
    pub resolution_x: u16,
    /// Vertical resolution in pixels per centimetre.
    pub resolution_y: u16,
    /// The header's reserved byte, kept so that re-encoding is byte-exact (normally 0).
    pub reserved: u8,
    /// The finger views, in record order (at most 255).
    pub views: Vec<FingerView>,
}

/// One finger view: an impression of one finger and its minutiae.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerView {
    /// Finger position (0 = unknown).
    pub position: FingerPosition,
    /// View number, 0..=15, telling apart several impressions of the same finger.
    pub view_number: u8,
    /// Impression type, 0..=15 (0 live-scan plain, 1 live-scan rolled, 2 non-live plain,
    /// 3 non-live rolled, 8 swipe).
    pub impression_type: u8,
    /// Finger quality 0..=100 (0 = unreported).
    pub quality: u8,
    /// The minutiae (at most 255).
    pub minutiae: Vec<RecordMinutia>,
    /// Extended data areas (ridge counts, cores and deltas, vendor data), kept raw.
    pub extended_data: Vec<ExtendedData>,
}

/// One minutia as the record stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordMinutia {
    /// Ending, bifurcation or other.
    pub kind: MinutiaKind,
    /// Column in pixels (14 bits).
    pub x: u16,
    /// Row in pixels (14 bits).
    pub y: u16,
    /// Direction in the format's unit (see [`RecordFormat::angle_steps`]),
    /// counter-clockwise from the x axis as viewed.
    pub angle: u8,
    /// Minutia quality 0..=100 (0 = unreported).
    pub quality: u8,
}

/// One extended data area of a finger view, kept as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtendedData {
    /// Area type code: 0x0001 ridge counts, 0x0002 cores and deltas, others vendor
    /// defined (high byte = vendor).
    pub type_code: u16,
    /// The area's data, without its type code and length.
    pub data: Vec<u8>,
}

impl MinutiaeRecord {
    /// Decodes a record, telling ISO/IEC 19794-2:2005 from ANSI INCITS 378-2004 by its
    /// length field.
    ///
    /// Errors: [`FingerError::Truncated`] when the input ends before the record length it
    /// states, [`FingerError::Corrupt`] for anything else malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, FingerError> {
        let shared_prefix = bytes.len().min(MAGIC.len());
        if bytes[..shared_prefix] != MAGIC[..shared_prefix] {
            return Err(FingerError::Corrupt {
                format: "ISO/IEC 19794-2 or ANSI INCITS 378",
                reason: "not a finger minutiae record (magic \"FMR\\0\", version \" 20\\0\")"
                    .into(),
            });
        }
        if bytes.len() < FORMAT_SNIFF_BYTES {
            return Err(FingerError::Truncated {
                format: "ISO/IEC 19794-2 or ANSI INCITS 378",
                needed: FORMAT_SNIFF_BYTES,
                available: bytes.len(),
            });
        }
        Self::decode_as(bytes, RecordFormat::sniff(bytes))
    }

    /// Decodes a record that must follow `format`.
    ///
    /// The stated record length must equal the input length, and every count and length
    /// inside must fit it exactly; values out of the standard's range are `Corrupt`.
    pub fn decode_as(bytes: &[u8], format: RecordFormat) -> Result<Self, FingerError> {
        let mut r = Reader {
            bytes,
            pos: 0,
            format,
        };
        if bytes.len() < MAGIC.len() {
            return Err(format.truncated(format.header_bytes(false), bytes.len()));
        }
        if r.take(MAGIC.len(), "magic")? != MAGIC {
            return Err(format.corrupt("bad magic or version (want \"FMR\\0\" \" 20\\0\")"));
        }
        let (stated, long_length) = read_record_length(bytes, format)?;
        r.pos = match (format, long_length) {
            (RecordFormat::Iso19794_2_2005, _) => 12,
            (RecordFormat::Ansi378_2004, false) => 10,
            (RecordFormat::Ansi378_2004, true) => 14,
        };
        let header = format.header_bytes(long_length);
        if stated < header {
            return Err(format.corrupt(format!(
                "record length {stated} is shorter than the {header}-byte header"
            )));
        }
        if bytes.len() < stated {
            return Err(format.truncated(stated, bytes.len()));
        }
        if bytes.len() > stated {
            return Err(format.corrupt(format!(
                "{} bytes after the stated record length {stated}",
                bytes.len() - stated
            )));
        }

        let cbeff_product_id = match format {
            RecordFormat::Ansi378_2004 => Some(r.u32("CBEFF product id")?),
            RecordFormat::Iso19794_2_2005 => None,
        };
        let equipment = r.u16("capture equipment")?;
        let width = r.u16("image width")?;
        let height = r.u16("image height")?;
        let resolution_x = r.u16("x resolution")?;
        let resolution_y = r.u16("y resolution")?;
        let view_count = usize::from(r.u8("view count")?);
        let reserved = r.u8("reserved byte")?;
        if view_count * MIN_VIEW_BYTES > r.remaining() {
            return Err(format.corrupt(format!(
                "{view_count} finger views cannot fit in {} bytes",
                r.remaining()
            )));
        }
        let mut views = Vec::with_capacity(view_count);
        for _ in 0..view_count {
            views.push(read_view(&mut r)?);
        }
        if r.remaining() != 0 {
            return Err(format.corrupt(format!(
                "{} bytes after the last finger view",
                r.remaining()
            )));
        }
        let record = Self {
            format,
            cbeff_product_id,
            equipment_certification: (equipment >> 12) as u8,
            capture_device_id: equipment & 0x0FFF,
            width,
            height,
            resolution_x,
            resolution_y,
            reserved,
            views,
        };
        record
            .check_values()
            .map_err(|reason| format.corrupt(reason))?;
        Ok(record)
    }

    /// Encodes the record in its own [`MinutiaeRecord::format`].
    ///
    /// Errors: [`FingerError::BadInput`] when a field is out of the format's range (see
    /// the module docs) or the record would exceed the format's length field.
    pub fn encode(&self) -> Result<Vec<u8>, FingerError> {
        let format = self.format;
        self.check_values().map_err(FingerError::BadInput)?;
        match (format, self.cbeff_product_id) {
            (RecordFormat::Ansi378_2004, None) => {
                return Err(FingerError::BadInput(
                    "an ANSI INCITS 378 record needs a CBEFF product id".into(),
                ))
            }
            (RecordFormat::Iso19794_2_2005, Some(_)) => {
                return Err(FingerError::BadInput(
                    "an ISO/IEC 19794-2 record has no CBEFF product id".into(),
                ))
            }
            _ => {}
        }
        if self.views.len() > 255 {
            return Err(FingerError::BadInput(format!(
                "{} finger views, at most 255",
                self.views.len()
            )));
        }
        let mut body = Vec::new();
        for view in &self.views {
            write_view(&mut body, view, format)?;
        }
        let short_total = format.header_bytes(false) + body.len();
        let long_length = format == RecordFormat::Ansi378_2004 && short_total > 0xFFFF;
        let total = format.header_bytes(long_length) + body.len();

        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(MAGIC);
        let too_long = || FingerError::BadInput(format!("record of {total} bytes is too long"));
        match (format, long_length) {
            (RecordFormat::Iso19794_2_2005, _) | (RecordFormat::Ansi378_2004, true) => {
                if long_length {
                    out.extend_from_slice(&0u16.to_be_bytes());
                }
                let total = u32::try_from(total).map_err(|_| too_long())?;
                out.extend_from_slice(&total.to_be_bytes());
            }
            (RecordFormat::Ansi378_2004, false) => {
                out.extend_from_slice(&(total as u16).to_be_bytes());
            }
        }
        if let Some(product) = self.cbeff_product_id {
            out.extend_from_slice(&product.to_be_bytes());
        }
        let equipment = u16::from(self.equipment_certification) << 12 | self.capture_device_id;
        for field in [
            equipment,
            self.width,
            self.height,
            self.resolution_x,
            self.resolution_y,
        ] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        out.push(self.views.len() as u8);
        out.push(self.reserved);
        out.extend_from_slice(&body);
        debug_assert_eq!(out.len(), total);
        Ok(out)
    }

    /// The minutiae of view `view` (an index into [`MinutiaeRecord::views`]) as a
    /// [`FingerTemplate`], angles converted to radians in `[0, 2π)`.
    ///
    /// Errors: [`FingerError::BadInput`] when there is no such view.
    pub fn to_template(&self, view: usize) -> Result<FingerTemplate, FingerError> {
        let finger = self.views.get(view).ok_or_else(|| {
            FingerError::BadInput(format!(
                "view {view} requested, the record has {}",
                self.views.len()
            ))
        })?;
        let steps = f32::from(self.format.angle_steps());
        let minutiae = finger
            .minutiae
            .iter()
            .map(|m| Minutia {
                x: m.x,
                y: m.y,
                // The raw angle is below `steps` (checked on decode), so this is in
                // [0, 2π) up to rounding; `rem_euclid` guards the top end.
                angle: (f32::from(m.angle) * (TAU / steps)).rem_euclid(TAU),
                kind: m.kind,
                quality: m.quality,
            })
            .collect();
        Ok(FingerTemplate {
            width: self.width,
            height: self.height,
            resolution_x: self.resolution_x,
            resolution_y: self.resolution_y,
            position: finger.position,
            quality: finger.quality,
            minutiae,
        })
    }

    /// A one-view record of `format` holding `template`, each angle rounded to the
    /// nearest unit of the format (wrapping a full turn to 0).
    ///
    /// The header reports no capture equipment; an ANSI record gets CBEFF product id 0
    /// (unregistered). Errors: [`FingerError::BadInput`] for a non-finite angle, more
    /// than [`MAX_MINUTIAE`] minutiae, or a value the format cannot hold.
    pub fn from_template(
        template: &FingerTemplate,
        format: RecordFormat,
    ) -> Result<Self, FingerError> {
        if template.minutiae.len() > MAX_MINUTIAE {
            return Err(FingerError::BadInput(format!(
                "{} minutiae, a record view holds at most {MAX_MINUTIAE}",
                template.minutiae.len()
            )));
        }
        let steps = f32::from(format.angle_steps());
        let minutiae = template
            .minutiae
            .iter()
            .map(|m| {
                if !m.angle.is_finite() {
                    return Err(FingerError::BadInput("minutia angle is not finite".into()));
                }
                let units = (m.angle / TAU * steps).round().rem_euclid(steps);
                Ok(RecordMinutia {
                    kind: m.kind,
                    x: m.x,
                    y: m.y,
                    // `units` is a whole number in [0, steps], and `steps` wraps to 0.
                    angle: (units as u16 % format.angle_steps()) as u8,
                    quality: m.quality,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let record = Self {
            format,
            cbeff_product_id: match format {
                RecordFormat::Ansi378_2004 => Some(0),
                RecordFormat::Iso19794_2_2005 => None,
            },
            equipment_certification: 0,
            capture_device_id: 0,
            width: template.width,
            height: template.height,
            resolution_x: template.resolution_x,
            resolution_y: template.resolution_y,
            reserved: 0,
            views: vec![FingerView {
                position: template.position,
                view_number: 0,
                impression_type: 0,
                quality: template.quality,
                minutiae,
                extended_data: Vec::new(),
            }],
        };
        record.check_values().map_err(FingerError::BadInput)?;
        Ok(record)
    }

    /// The first value out of the format's range, if any: shared by `decode` (which
    /// reports it as `Corrupt`) and `encode` (`BadInput`), so that both accept the same
    /// records.
    fn check_values(&self) -> Result<(), String> {
        if self.equipment_certification > 0x0F {
            return Err(format!(
                "capture equipment certification {} exceeds 4 bits",
                self.equipment_certification
            ));
        }
        if self.capture_device_id > 0x0FFF {
            return Err(format!(
                "capture device id {} exceeds 12 bits",
                self.capture_device_id
            ));
        }
        let steps = self.format.angle_steps();
        for (v, view) in self.views.iter().enumerate() {
            if view.view_number > 0x0F || view.impression_type > 0x0F {
                return Err(format!(
                    "view {v}: view number {} or impression type {} exceeds 4 bits",
                    view.view_number, view.impression_type
                ));
            }
            if view.quality > 100 {
                return Err(format!(
                    "view {v}: finger quality {} over 100",
                    view.quality
                ));
            }
            if view.minutiae.len() > MAX_MINUTIAE {
                return Err(format!(
                    "view {v}: {} minutiae, at most {MAX_MINUTIAE}",
                    view.minutiae.len()
                ));
            }
            for (i, m) in view.minutiae.iter().enumerate() {
                // Strictly inside the image: the FVC2002 vendor templates never touch
                // the border, and the standards give coordinates as pixel indices.
                if m.x > MAX_COORDINATE || m.x >= self.width {
                    return Err(format!(
                        "view {v} minutia {i}: x {} outside the image width {}",
                        m.x, self.width
                    ));
                }
                if m.y > MAX_COORDINATE || m.y >= self.height {
                    return Err(format!(
                        "view {v} minutia {i}: y {} outside the image height {}",
                        m.y, self.height
                    ));
                }
                if u16::from(m.angle) >= steps {
                    return Err(format!(
                        "view {v} minutia {i}: angle {} not below {steps}",
                        m.angle
                    ));
                }
                if m.quality > 100 {
                    return Err(format!(
                        "view {v} minutia {i}: quality {} over 100",
                        m.quality
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The record length field: `(length, uses ANSI's 6-byte form)`.
fn read_record_length(bytes: &[u8], format: RecordFormat) -> Result<(usize, bool), FingerError> {
    let be = |range: std::ops::Range<usize>| -> Result<u64, FingerError> {
        let field = bytes.get(range.clone()).ok_or_else(|| {
            format.truncated(format.header_bytes(false).max(range.end), bytes.len())
        })?;
        Ok(field.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
    };
    let (length, long) = match format {
        RecordFormat::Iso19794_2_2005 => (be(8..12)?, false),
        RecordFormat::Ansi378_2004 => match be(8..10)? {
            0 => {
                let long = be(10..14)?;
                if long <= 0xFFFF {
                    return Err(
                        format.corrupt(format!("6-byte record length {long} fits the 2-byte form"))
                    );
                }
                (long, true)
            }
            short => (short, false),
        },
    };
    let length = usize::try_from(length)
        .map_err(|_| format.corrupt(format!("record length {length} too large")))?;
    Ok((length, long))
}

fn read_view(r: &mut Reader<'_>) -> Result<FingerView, FingerError> {
    let format = r.format;
    let position_code = r.u8("finger position")?;
    let position = FingerPosition::from_code(position_code)
        .map_err(|_| format.corrupt(format!("finger position {position_code} outside 0..=10")))?;
    let view_and_impression = r.u8("view number")?;
    let quality = r.u8("finger quality")?;
    let count = usize::from(r.u8("minutia count")?);
    if count * MINUTIA_BYTES > r.remaining() {
        return Err(format.corrupt(format!(
            "{count} minutiae overrun the record ({} bytes left)",
            r.remaining()
        )));
    }
    let mut minutiae = Vec::with_capacity(count);
    for _ in 0..count {
        let type_x = r.u16("minutia x")?;
        let reserved_y = r.u16("minutia y")?;
        let angle = r.u8("minutia angle")?;
        let quality = r.u8("minutia quality")?;
        let kind = match type_x >> 14 {
            0 => MinutiaKind::Other,
            1 => MinutiaKind::Ending,
            2 => MinutiaKind::Bifurcation,
            _ => return Err(format.corrupt("reserved minutia type 3")),
        };
        if reserved_y >> 14 != 0 {
            return Err(format.corrupt("reserved bits above a minutia's y are set"));
        }
        minutiae.push(RecordMinutia {
            kind,
            x: type_x & MAX_COORDINATE,
            y: reserved_y & MAX_COORDINATE,
            angle,
            quality,
        });
    }
    let extended_data = read_extended_data(r)?;
    Ok(FingerView {
        position,
        view_number: view_and_impression >> 4,
        impression_type: view_and_impression & 0x0F,
        quality,
        minutiae,
        extended_data,
    })
}

fn read_extended_data(r: &mut Reader<'_>) -> Result<Vec<ExtendedData>, FingerError> {
    let format = r.format;
    let block = usize::from(r.u16("extended data block length")?);
    if block > r.remaining() {
        return Err(format.corrupt(format!(
            "extended data block of {block} bytes overruns the record ({} bytes left)",
            r.remaining()
        )));
    }
    let end = r.pos + block;
    let mut areas = Vec::new();
    while r.pos < end {
        if end - r.pos < 4 {
            return Err(format.corrupt("extended data block ends inside an area header"));
        }
        let type_code = r.u16("extended data type")?;
        let length = usize::from(r.u16("extended data length")?);
        let data_len = if format.area_length_counts_header() {
            length.checked_sub(4).ok_or_else(|| {
                format.corrupt(format!("extended data area length {length} is under 4"))
            })?
        } else {
            length
        };
        if data_len > end - r.pos {
            return Err(format.corrupt(format!(
                "extended data area of {data_len} bytes overruns its block"
            )));
        }
        let data = r.take(data_len, "extended data")?.to_vec();
        areas.push(ExtendedData { type_code, data });
    }
    Ok(areas)
}

fn write_view(
    out: &mut Vec<u8>,
    view: &FingerView,
    format: RecordFormat,
) -> Result<(), FingerError> {
    out.push(view.position.code());
    out.push(view.view_number << 4 | view.impression_type);
    out.push(view.quality);
    // `check_values` has bounded the count to 255.
    out.push(view.minutiae.len() as u8);
    for m in &view.minutiae {
        let kind: u16 = match m.kind {
            MinutiaKind::Other => 0,
            MinutiaKind::Ending => 1,
            MinutiaKind::Bifurcation => 2,
        };
        out.extend_from_slice(&(kind << 14 | m.x).to_be_bytes());
        out.extend_from_slice(&m.y.to_be_bytes());
        out.push(m.angle);
        out.push(m.quality);
    }
    let header = if format.area_length_counts_header() {
        4
    } else {
        0
    };
    let too_long = || FingerError::BadInput("extended data exceeds 65 535 bytes".into());
    let block: usize = view.extended_data.iter().map(|a| 4 + a.data.len()).sum();
    out.extend_from_slice(&u16::try_from(block).map_err(|_| too_long())?.to_be_bytes());
    for area in &view.extended_data {
        let length = u16::try_from(header + area.data.len()).map_err(|_| too_long())?;
        out.extend_from_slice(&area.type_code.to_be_bytes());
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&area.data);
    }
    Ok(())
}

/// A cursor over a record whose total length is already checked: running out of bytes
/// here means a count or length inside the record is wrong, so it is `Corrupt`.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    format: RecordFormat,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], FingerError> {
        if n > self.remaining() {
            return Err(self
                .format
                .corrupt(format!("{what} overruns the record length")));
        }
        let field = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(field)
    }

    fn u8(&mut self, what: &str) -> Result<u8, FingerError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, FingerError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, FingerError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minutia(kind: MinutiaKind, x: u16, y: u16, angle: u8) -> RecordMinutia {
        RecordMinutia {
            kind,
            x,
            y,
            angle,
            quality: 60,
        }
    }

    fn record(format: RecordFormat) -> MinutiaeRecord {
        MinutiaeRecord {
            format,
            cbeff_product_id: (format == RecordFormat::Ansi378_2004).then_some(0x0033_0102),
            equipment_certification: 8,
            capture_device_id: 0x123,
            width: 300,
            height: 400,
            resolution_x: 197,
            resolution_y: 197,
            reserved: 0,
            views: vec![FingerView {
                position: FingerPosition::RightIndex,
                view_number: 1,
                impression_type: 0,
                quality: 80,
                minutiae: vec![
                    minutia(MinutiaKind::Ending, 10, 20, 0),
                    minutia(MinutiaKind::Bifurcation, 299, 399, 179),
                ],
                extended_data: vec![ExtendedData {
                    type_code: 0x0101,
                    data: vec![1, 2, 3],
                }],
            }],
        }
    }

    fn is_corrupt(result: Result<MinutiaeRecord, FingerError>) -> bool {
        matches!(result, Err(FingerError::Corrupt { .. }))
    }

    #[test]
    fn iso_layout_matches_the_standard() {
        let bytes = record(RecordFormat::Iso19794_2_2005).encode().unwrap();
        // magic, version, 4-byte length, equipment (cert 8, id 0x123), 300x400, 197x197,
        // one view, reserved 0.
        assert_eq!(&bytes[..8], b"FMR\0 20\0");
        assert_eq!(&bytes[8..12], &(bytes.len() as u32).to_be_bytes());
        assert_eq!(
            &bytes[12..24],
            &[0x81, 0x23, 1, 44, 1, 144, 0, 197, 0, 197, 1, 0]
        );
        // View: position 2, view 1 / impression 0, quality 80, 2 minutiae.
        assert_eq!(&bytes[24..28], &[2, 0x10, 80, 2]);
        // Ending at (10, 20): type bits 01 above x.
        assert_eq!(&bytes[28..34], &[0x40, 10, 0, 20, 0, 60]);
        assert_eq!(&bytes[34..40], &[0x81, 0x2B, 0x01, 0x8F, 179, 60]);
        // Extended block of 7 bytes: ISO area length counts the 3 data bytes only.
        assert_eq!(&bytes[40..], &[0, 7, 1, 1, 0, 3, 1, 2, 3]);
    }

    #[test]
    fn ansi_layout_matches_the_standard() {
        let bytes = record(RecordFormat::Ansi378_2004).encode().unwrap();
        assert_eq!(&bytes[8..10], &(bytes.len() as u16).to_be_bytes());
        assert_eq!(&bytes[10..14], &[0, 0x33, 1, 2]);
        assert_eq!(&bytes[14..16], &[0x81, 0x23]);
        assert_eq!(bytes[24], 1, "view count");
        // ANSI area length counts its own 4-byte header.
        assert_eq!(&bytes[bytes.len() - 9..], &[0, 7, 1, 1, 0, 7, 1, 2, 3]);
    }

    #[test]
    fn both_formats_round_trip_and_are_detected() {
        for format in [RecordFormat::Iso19794_2_2005, RecordFormat::Ansi378_2004] {
            let original = record(format);
            let bytes = original.encode().unwrap();
            let decoded = MinutiaeRecord::decode(&bytes).unwrap();
            assert_eq!(decoded, original);
            assert_eq!(decoded.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn ansi_long_length_form_over_64_kib() {
        let mut long = record(RecordFormat::Ansi378_2004);
        let big = ExtendedData {
            type_code: 0x0200,
            data: vec![7; 40_000],
        };
        long.views[0].extended_data = vec![big.clone()];
        long.views.push(FingerView {
            view_number: 2,
            extended_data: vec![big],
            ..long.views[0].clone()
        });
        let bytes = long.encode().unwrap();
        assert!(bytes.len() > 0xFFFF);
        assert_eq!(&bytes[8..10], &[0, 0]);
        assert_eq!(&bytes[10..14], &(bytes.len() as u32).to_be_bytes());
        assert_eq!(MinutiaeRecord::decode(&bytes).unwrap(), long);

        // The 6-byte form for a short record has no canonical re-encoding: refused.
        let mut short = record(RecordFormat::Ansi378_2004).encode().unwrap();
        let total = (short.len() + 4) as u32;
        short.splice(8..10, [0, 0].into_iter().chain(total.to_be_bytes()));
        assert!(is_corrupt(MinutiaeRecord::decode_as(
            &short,
            RecordFormat::Ansi378_2004
        )));
    }

    #[test]
    fn zero_views_and_zero_minutiae_decode() {
        let mut empty = record(RecordFormat::Iso19794_2_2005);
        empty.views.clear();
        let bytes = empty.encode().unwrap();
        assert_eq!(bytes.len(), 24);
        assert_eq!(MinutiaeRecord::decode(&bytes).unwrap(), empty);
        assert!(matches!(
            empty.to_template(0),
            Err(FingerError::BadInput(_))
        ));

        let mut bare = record(RecordFormat::Ansi378_2004);
        bare.views[0].minutiae.clear();
        bare.views[0].extended_data.clear();
        let decoded = MinutiaeRecord::decode(&bare.encode().unwrap()).unwrap();
        assert!(decoded.to_template(0).unwrap().minutiae.is_empty());
    }

    #[test]
    fn length_disagreements_are_typed() {
        let bytes = record(RecordFormat::Iso19794_2_2005).encode().unwrap();
        assert!(matches!(
            MinutiaeRecord::decode(&bytes[..bytes.len() - 1]),
            Err(FingerError::Truncated { needed, available, .. })
                if needed == bytes.len() && available == bytes.len() - 1
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(is_corrupt(MinutiaeRecord::decode(&trailing)));
        assert!(matches!(
            MinutiaeRecord::decode(b"FMR\0 2"),
            Err(FingerError::Truncated { .. })
        ));
        assert!(is_corrupt(MinutiaeRecord::decode(b"FIR\0 20\0\0\0\0\x18")));

        // One more minutia announced than present, total length adjusted to match.
        let mut overrun = bytes.clone();
        overrun[27] = 3;
        assert!(is_corrupt(MinutiaeRecord::decode(&overrun)));
        // Extended data area longer than its block.
        let mut area = bytes;
        let n = area.len();
        area[n - 4] = 9;
        assert!(is_corrupt(MinutiaeRecord::decode(&area)));
    }

    #[test]
    fn out_of_range_values_are_corrupt_on_decode_and_refused_on_encode() {
        let cases: [fn(&mut MinutiaeRecord); 5] = [
            |r| r.views[0].minutiae[0].x = 300,
            |r| r.views[0].minutiae[0].y = 400,
            |r| r.views[0].minutiae[0].quality = 101,
            |r| r.views[0].quality = 101,
            |r| r.views[0].minutiae[0].angle = 180,
        ];
        for (i, break_it) in cases.iter().enumerate() {
            let mut bad = record(RecordFormat::Ansi378_2004);
            break_it(&mut bad);
            assert!(
                matches!(bad.encode(), Err(FingerError::BadInput(_))),
                "case {i}"
            );
            // Write the same bytes by hand through a valid record of the same shape.
            let good = record(RecordFormat::Ansi378_2004);
            let mut bytes = good.encode().unwrap();
            let at = 26 + 4; // first minutia
            match i {
                0 => bytes[at..at + 2].copy_from_slice(&(0x4000u16 | 300).to_be_bytes()),
                1 => bytes[at + 2..at + 4].copy_from_slice(&400u16.to_be_bytes()),
                2 => bytes[at + 5] = 101,
                3 => bytes[28] = 101,
                _ => bytes[at + 4] = 180,
            }
            assert!(is_corrupt(MinutiaeRecord::decode(&bytes)), "case {i}");
        }
        // ISO angles use the whole byte.
        let mut iso = record(RecordFormat::Iso19794_2_2005);
        iso.views[0].minutiae[0].angle = 255;
        assert!(MinutiaeRecord::decode(&iso.encode().unwrap()).is_ok());
    }

    #[test]
    fn reserved_bits_and_codes_are_corrupt() {
        let bytes = record(RecordFormat::Iso19794_2_2005).encode().unwrap();
        let mut kind3 = bytes.clone();
        kind3[28] |= 0xC0;
        assert!(is_corrupt(MinutiaeRecord::decode(&kind3)));
        let mut y_bits = bytes.clone();
        y_bits[30] |= 0x40;
        assert!(is_corrupt(MinutiaeRecord::decode(&y_bits)));
        let mut position = bytes;
        position[24] = 11;
        assert!(is_corrupt(MinutiaeRecord::decode(&position)));
    }

    #[test]
    fn angles_convert_counter_clockwise_in_the_format_unit() {
        let quarter = std::f32::consts::FRAC_PI_2;
        let mut iso = record(RecordFormat::Iso19794_2_2005);
        iso.views[0].minutiae[0].angle = 64;
        assert!((iso.to_template(0).unwrap().minutiae[0].angle - quarter).abs() < 1e-6);
        let mut ansi = record(RecordFormat::Ansi378_2004);
        ansi.views[0].minutiae[0].angle = 45;
        assert!((ansi.to_template(0).unwrap().minutiae[0].angle - quarter).abs() < 1e-6);

        // Just under a full turn rounds to the full turn, which wraps to 0; a negative
        // angle wraps to the top of the range.
        let mut template = iso.to_template(0).unwrap();
        template.minutiae[0].angle = TAU - 0.001;
        template.minutiae[1].angle = -TAU / 256.0;
        for (format, last) in [
            (RecordFormat::Iso19794_2_2005, 255),
            (RecordFormat::Ansi378_2004, 179),
        ] {
            let back = MinutiaeRecord::from_template(&template, format).unwrap();
            assert_eq!(back.views[0].minutiae[0].angle, 0);
            assert_eq!(back.views[0].minutiae[1].angle, last);
        }
        template.minutiae[0].angle = f32::NAN;
        assert!(matches!(
            MinutiaeRecord::from_template(&template, RecordFormat::Ansi378_2004),
            Err(FingerError::BadInput(_))
        ));
    }

    #[test]
    fn format_mismatch_between_record_and_product_id_is_refused() {
        let mut iso = record(RecordFormat::Iso19794_2_2005);
        iso.cbeff_product_id = Some(1);
        assert!(matches!(iso.encode(), Err(FingerError::BadInput(_))));
        let mut ansi = record(RecordFormat::Ansi378_2004);
        ansi.cbeff_product_id = None;
        assert!(matches!(ansi.encode(), Err(FingerError::BadInput(_))));
    }
}
