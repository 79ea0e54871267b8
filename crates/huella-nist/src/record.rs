//! The generic record model and the traditional (binary/ASCII) encoding.

use std::collections::BTreeSet;

use crate::NistError;

/// Largest transaction [`Transaction::decode`] accepts (64 MiB). A caller reading a file
/// checks its size against this before reading it.
pub const MAX_TRANSACTION_BYTES: usize = 64 << 20;

/// File separator: ends a record.
pub const FS: u8 = 0x1C;
/// Group separator: ends a field.
pub const GS: u8 = 0x1D;
/// Record separator: between subfields.
pub const RS: u8 = 0x1E;
/// Unit separator: between items.
pub const US: u8 = 0x1F;

/// Field number of the LEN field of every tagged record.
const LEN: u32 = 1;
/// Field number of the IDC field of records after the Type-1.
const IDC: u32 = 2;
/// Field number of the Type-1 CNT field.
const CNT: u32 = 3;
/// Field number of the Type-1 DCS field.
const DCS: u32 = 15;
/// Field number of the binary data field of image records.
pub(crate) const DATA: u32 = 999;
/// Size of the fixed header of a Type-4 record.
pub const TYPE4_HEADER_BYTES: usize = 18;

/// One field of a tagged record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field number (`NNN` of `T.NNN`).
    pub number: u32,
    /// Its value.
    pub value: FieldValue,
}

/// A field's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// Text, with subfields separated by [`RS`] and items by [`US`] as in the file.
    Text(String),
    /// The binary data of field 999 (image records only).
    Binary(Vec<u8>),
}

impl Field {
    /// The text value, `None` for binary data.
    pub fn text(&self) -> Option<&str> {
        match &self.value {
            FieldValue::Text(t) => Some(t),
            FieldValue::Binary(_) => None,
        }
    }

    /// The subfields of a text value, each split into its items.
    pub fn subfields(&self) -> impl Iterator<Item = impl Iterator<Item = &str>> {
        self.text()
            .unwrap_or("")
            .split(char::from(RS))
            .map(|s| s.split(char::from(US)))
    }
}

/// A tagged-field record (Type-1, 2, 9, 10, 13-22, 98, 99): its fields in file order,
/// without LEN (computed when encoding) and, for the Type-1, without CNT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedRecord {
    /// The record type.
    pub record_type: u8,
    /// The fields.
    pub fields: Vec<Field>,
}

impl TaggedRecord {
    /// An empty record of a type.
    pub fn new(record_type: u8) -> Self {
        Self {
            record_type,
            fields: Vec::new(),
        }
    }

    /// Adds a text field (subfields separated by [`RS`], items by [`US`]).
    pub fn with_text(mut self, number: u32, value: impl Into<String>) -> Self {
        self.fields.push(Field {
            number,
            value: FieldValue::Text(value.into()),
        });
        self
    }

    /// Adds a text field from its subfields' items.
    pub fn with_items(self, number: u32, subfields: &[&[&str]]) -> Self {
        let rs = char::from(RS).to_string();
        let us = char::from(US).to_string();
        let text = subfields
            .iter()
            .map(|items| items.join(&us))
            .collect::<Vec<_>>()
            .join(&rs);
        self.with_text(number, text)
    }

    /// Adds the binary data field (`T.999`), which must be the last field.
    pub fn with_data(mut self, data: Vec<u8>) -> Self {
        self.fields.push(Field {
            number: DATA,
            value: FieldValue::Binary(data),
        });
        self
    }

    /// The field with this number.
    pub fn field(&self, number: u32) -> Option<&Field> {
        self.fields.iter().find(|f| f.number == number)
    }

    /// The text of the field with this number.
    pub fn text(&self, number: u32) -> Option<&str> {
        self.field(number).and_then(Field::text)
    }

    /// The first item of the first subfield of a field.
    pub fn first_item(&self, number: u32) -> Option<&str> {
        self.text(number)
            .and_then(|t| t.split([char::from(RS), char::from(US)]).next())
    }

    /// The binary data field (`T.999`).
    pub fn data(&self) -> Option<&[u8]> {
        match &self.field(DATA)?.value {
            FieldValue::Binary(b) => Some(b),
            FieldValue::Text(_) => None,
        }
    }
}

/// A Type-4 record: a grey-scale fingerprint image with a fixed 18-byte binary header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type4Record {
    /// Image designation character (IDC), as listed in the Type-1 CNT.
    pub idc: u8,
    /// Impression type (IMP): 0 live-scan plain, 1 live-scan rolled, 2 non-live plain...
    pub impression: u8,
    /// Finger positions (FGP): the first is the position, unused ones are 255.
    pub positions: [u8; 6],
    /// Image scanning resolution (ISR): 0 = the nominal transmitting resolution
    /// (1.012 NTR), 1 = the native scanning resolution (1.011 NSR).
    pub resolution: u8,
    /// Horizontal line length (HLL), pixels.
    pub width: u16,
    /// Vertical line length (VLL), pixels.
    pub height: u16,
    /// Grey-scale compression algorithm (GCA): 0 none, 1 WSQ.
    pub compression: u8,
    /// The image data.
    pub data: Vec<u8>,
}

/// A binary record of Type 3, 5, 6, 7 or 8, kept as bytes and not interpreted (low- and
/// high-resolution binary fingerprints, user-defined data, signatures): every binary
/// record starts with a 4-byte LEN and a 1-byte IDC, so it can be carried through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpaqueRecord {
    /// The record type (3, 5, 6, 7 or 8).
    pub record_type: u8,
    /// Image designation character (IDC).
    pub idc: u8,
    /// The bytes after LEN and IDC.
    pub body: Vec<u8>,
}

/// A record after the Type-1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A tagged-field record.
    Tagged(TaggedRecord),
    /// A binary Type-4 fingerprint image.
    Type4(Type4Record),
    /// A binary record of Type 3, 5, 6, 7 or 8, carried but not read.
    Opaque(OpaqueRecord),
}

/// Binary record types kept as [`OpaqueRecord`]s.
fn is_opaque(record_type: u8) -> bool {
    matches!(record_type, 3 | 5..=8)
}

/// Bytes of LEN and IDC at the start of every binary record.
const BINARY_PREFIX_BYTES: usize = 5;

impl Record {
    /// The record type.
    pub fn record_type(&self) -> u8 {
        match self {
            Record::Tagged(r) => r.record_type,
            Record::Type4(_) => 4,
            Record::Opaque(r) => r.record_type,
        }
    }

    /// The IDC the Type-1 CNT lists for this record (tagged records: field 2, a number).
    pub fn idc(&self) -> Option<u8> {
        match self {
            Record::Tagged(r) => r.first_item(IDC)?.parse().ok(),
            Record::Type4(r) => Some(r.idc),
            Record::Opaque(r) => Some(r.idc),
        }
    }
}

/// A whole transaction: the Type-1 header and the records it lists.
///
/// [`Transaction::encode`] computes every LEN field and the Type-1 CNT field (1.003)
/// from [`Transaction::records`]; neither is kept here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The Type-1 record (without LEN and CNT).
    pub header: TaggedRecord,
    /// The records after the Type-1, in file order.
    pub records: Vec<Record>,
}

impl Default for Transaction {
    fn default() -> Self {
        Self::new()
    }
}

/// Which record types this crate reads as tagged-field records.
fn is_tagged(record_type: u32) -> bool {
    matches!(record_type, 2 | 9 | 10 | 13..=22 | 98 | 99)
}

/// Whether field 999 of a record type holds binary data.
fn has_binary_data(record_type: u8) -> bool {
    !matches!(record_type, 1 | 2 | 9)
}

/// Whether the Type-1 DCS field (1.015) declares UTF-8 text: its character set name
/// (second item) is `UTF-8` or `UTF8`, in any case.
fn declares_utf8(dcs: &[u8]) -> bool {
    let name = dcs.split(|b| *b == US || *b == RS).nth(1).unwrap_or(b"");
    name.eq_ignore_ascii_case(b"UTF-8") || name.eq_ignore_ascii_case(b"UTF8")
}

/// Checks a text value: printable ASCII (0x20-0x7E) and the RS/US separators, or with
/// `utf8` UTF-8 without control characters other than RS/US. `Err(offset)` of the first
/// bad byte.
fn check_text(value: &[u8], utf8: bool) -> Result<(), usize> {
    let printable = |c: char| c == char::from(RS) || c == char::from(US) || !c.is_control();
    if utf8 {
        let text = std::str::from_utf8(value).map_err(|e| e.valid_up_to())?;
        match text.char_indices().find(|(_, c)| !printable(*c)) {
            Some((i, _)) => Err(i),
            None => Ok(()),
        }
    } else {
        match value
            .iter()
            .position(|b| !(*b == RS || *b == US || (0x20..=0x7E).contains(b)))
        {
            Some(i) => Err(i),
            None => Ok(()),
        }
    }
}

/// Why a tag could not be read.
enum TagError {
    /// The bytes end inside the tag.
    End,
    /// Not `T.NNN:`.
    Bad,
}

/// Reads a `T.NNN:` tag at `p`: (record type, field number, offset after the colon).
fn parse_tag(buf: &[u8], p: usize) -> Result<(u32, u32, usize), TagError> {
    let (record_type, p) = parse_number(buf, p, 3, b'.')?;
    let (field, p) = parse_number(buf, p, 9, b':')?;
    // At most 3 and 9 digits: both fit.
    Ok((record_type as u32, field as u32, p))
}

/// Reads 1..=`max_digits` ASCII digits at `p` followed by `end`.
fn parse_number(
    buf: &[u8],
    p: usize,
    max_digits: usize,
    end: u8,
) -> Result<(u64, usize), TagError> {
    let mut value: u64 = 0;
    let mut i = p;
    loop {
        let Some(&b) = buf.get(i) else {
            return Err(TagError::End);
        };
        if b == end && i > p {
            return Ok((value, i + 1));
        }
        if !b.is_ascii_digit() || i - p >= max_digits {
            return Err(TagError::Bad);
        }
        value = value * 10 + u64::from(b - b'0');
        i += 1;
    }
}

/// A tagged record's fields before text checking.
struct RawRecord<'a> {
    fields: Vec<(u32, &'a [u8], bool)>,
}

/// Reads a tagged record of `expected` type at the start of `data`: its raw fields and
/// its length.
fn read_tagged(
    data: &[u8],
    index: usize,
    expected: u8,
) -> Result<(RawRecord<'_>, usize), NistError> {
    let malformed = |field: Option<u32>, reason: String| NistError::Malformed {
        record_index: index,
        record_type: expected,
        field,
        reason,
    };
    let truncated = |needed: usize| NistError::Truncated {
        record_index: index,
        record_type: expected,
        needed,
        available: data.len(),
    };
    let (record_type, number, after) = match parse_tag(data, 0) {
        Ok(tag) => tag,
        Err(TagError::End) => return Err(truncated(data.len() + 1)),
        Err(TagError::Bad) => {
            return Err(malformed(
                None,
                "does not start with a LEN field tag (T.001:)".into(),
            ))
        }
    };
    if record_type != u32::from(expected) {
        return Err(malformed(
            None,
            format!("the Type-1 CNT lists a Type-{expected} here but the record is tagged Type-{record_type}"),
        ));
    }
    if number != LEN {
        return Err(malformed(
            Some(number),
            "the first field is not LEN (T.001)".into(),
        ));
    }
    let (len, after_len) = match parse_number(data, after, 10, GS) {
        Ok((len, p)) => (usize::try_from(len).unwrap_or(usize::MAX), p),
        Err(TagError::End) => return Err(truncated(data.len() + 1)),
        Err(TagError::Bad) => {
            return Err(malformed(
                Some(LEN),
                "LEN is not a number of at most 10 digits ended by GS".into(),
            ))
        }
    };
    // The LEN field, then at least one more field and the closing FS.
    if len < after_len + 1 {
        return Err(malformed(
            Some(LEN),
            format!(
                "LEN {len} is smaller than the record's own LEN field ({after_len} bytes) and FS"
            ),
        ));
    }
    if len > data.len() {
        return Err(truncated(len));
    }
    let record = &data[..len];
    if record[len - 1] != FS {
        return Err(malformed(
            None,
            "the record does not end with FS where its LEN says".into(),
        ));
    }
    let body = &record[after_len..len - 1];
    let binary_ok = has_binary_data(expected);
    let mut fields = Vec::new();
    let mut seen = BTreeSet::new();
    seen.insert(LEN);
    let mut p = 0;
    loop {
        let (record_type, number, start) = parse_tag(body, p).map_err(|_| {
            malformed(
                None,
                format!(
                    "no field tag T.NNN: at byte {} of the record",
                    after_len + p
                ),
            )
        })?;
        if record_type != u32::from(expected) {
            return Err(malformed(
                Some(number),
                format!("a field tagged Type-{record_type} inside a Type-{expected} record"),
            ));
        }
        if !seen.insert(number) {
            return Err(NistError::DuplicateField {
                record_index: index,
                record_type: expected,
                field: number,
            });
        }
        if number == DATA && binary_ok {
            // The image data runs to the FS that ends the record (LEN says where).
            fields.push((number, &body[start..], true));
            break;
        }
        match body[start..].iter().position(|b| *b == GS) {
            Some(k) => {
                fields.push((number, &body[start..start + k], false));
                p = start + k + 1;
                if p == body.len() {
                    return Err(malformed(
                        Some(number),
                        "a GS separator right before the record's FS".into(),
                    ));
                }
            }
            None => {
                fields.push((number, &body[start..], false));
                break;
            }
        }
    }
    Ok((RawRecord { fields }, len))
}

/// Checks the text of a raw record's fields and builds the record.
fn finish_tagged(
    raw: RawRecord<'_>,
    index: usize,
    record_type: u8,
    utf8: bool,
) -> Result<TaggedRecord, NistError> {
    let mut fields = Vec::with_capacity(raw.fields.len());
    for (number, value, binary) in raw.fields {
        let value = if binary {
            FieldValue::Binary(value.to_vec())
        } else {
            check_text(value, utf8).map_err(|offset| NistError::NotText {
                record_index: index,
                record_type,
                field: number,
                offset,
                expected: if utf8 { "UTF-8" } else { "ASCII" },
            })?;
            // Checked above: ASCII, or valid UTF-8.
            FieldValue::Text(String::from_utf8_lossy(value).into_owned())
        };
        fields.push(Field { number, value });
    }
    Ok(TaggedRecord {
        record_type,
        fields,
    })
}

/// Reads a Type-4 record at the start of `data`.
fn read_type4(data: &[u8], index: usize) -> Result<(Type4Record, usize), NistError> {
    let len = binary_len(data, index, 4, TYPE4_HEADER_BYTES)?;
    let u16_at = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
    let mut positions = [0u8; 6];
    positions.copy_from_slice(&data[6..12]);
    Ok((
        Type4Record {
            idc: data[4],
            impression: data[5],
            positions,
            resolution: data[12],
            width: u16_at(13),
            height: u16_at(15),
            compression: data[17],
            data: data[TYPE4_HEADER_BYTES..len].to_vec(),
        },
        len,
    ))
}

/// Reads the LEN of a binary record at the start of `data`, checked against the bytes
/// present and the least a record of its type holds.
fn binary_len(data: &[u8], index: usize, record_type: u8, min: usize) -> Result<usize, NistError> {
    if data.len() < min {
        return Err(NistError::Truncated {
            record_index: index,
            record_type,
            needed: min,
            available: data.len(),
        });
    }
    let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    if len < min {
        return Err(NistError::Malformed {
            record_index: index,
            record_type,
            field: Some(1),
            reason: format!("LEN {len} is smaller than the {min}-byte header"),
        });
    }
    if len > data.len() {
        return Err(NistError::Truncated {
            record_index: index,
            record_type,
            needed: len,
            available: data.len(),
        });
    }
    Ok(len)
}

/// Reads a Type 3, 5, 6, 7 or 8 record at the start of `data`.
fn read_opaque(
    data: &[u8],
    index: usize,
    record_type: u8,
) -> Result<(OpaqueRecord, usize), NistError> {
    let len = binary_len(data, index, record_type, BINARY_PREFIX_BYTES)?;
    Ok((
        OpaqueRecord {
            record_type,
            idc: data[4],
            body: data[BINARY_PREFIX_BYTES..len].to_vec(),
        },
        len,
    ))
}

/// The Type-1 CNT field: the (type, IDC) of each record that follows.
fn parse_cnt(header: &TaggedRecord) -> Result<Vec<(u8, u8)>, NistError> {
    let bad = |reason: String| NistError::Malformed {
        record_index: 0,
        record_type: 1,
        field: Some(CNT),
        reason,
    };
    let field = header
        .field(CNT)
        .ok_or_else(|| bad("the Type-1 has no CNT field (1.003)".into()))?;
    let mut subfields = field.subfields();
    let mut first = subfields.next().ok_or_else(|| bad("empty".into()))?;
    let (one, count) = (first.next(), first.next());
    if one != Some("1") || first.next().is_some() {
        return Err(bad("the first subfield is not 1<US>count".into()));
    }
    let declared: usize = count
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("the record count is not a number".into()))?;
    let mut listed = Vec::new();
    for (i, mut items) in subfields.enumerate() {
        let number = |s: Option<&str>| s.and_then(|s| s.parse::<u8>().ok());
        let (t, idc) = (number(items.next()), number(items.next()));
        match (t, idc, items.next()) {
            (Some(t), Some(idc), None) => listed.push((t, idc)),
            _ => return Err(bad(format!("subfield {} is not record type<US>IDC", i + 2))),
        }
    }
    if listed.len() != declared {
        return Err(bad(format!(
            "the first subfield counts {declared} records but {} are listed",
            listed.len()
        )));
    }
    Ok(listed)
}

impl Transaction {
    /// A transaction with a Type-1 holding only VER (1.002) `0500` (ANSI/NIST-ITL
    /// 1-2011) and no other record.
    pub fn new() -> Self {
        Self {
            header: TaggedRecord::new(1).with_text(2, "0500"),
            records: Vec::new(),
        }
    }

    /// Decodes a transaction in the traditional encoding.
    ///
    /// Every length is checked against the bytes present before anything is sliced or
    /// allocated; the records must be exactly those the Type-1 CNT lists, with nothing
    /// after them.
    pub fn decode(bytes: &[u8]) -> Result<Self, NistError> {
        if bytes.len() > MAX_TRANSACTION_BYTES {
            return Err(NistError::TooLarge {
                len: bytes.len(),
                max: MAX_TRANSACTION_BYTES,
            });
        }
        let (raw, mut pos) = read_tagged(bytes, 0, 1)?;
        let utf8 = raw
            .fields
            .iter()
            .find(|(n, _, _)| *n == DCS)
            .is_some_and(|(_, v, _)| declares_utf8(v));
        // The Type-1 itself is ASCII whatever DCS says.
        let mut header = finish_tagged(raw, 0, 1, false)?;
        let listed = parse_cnt(&header)?;
        header.fields.retain(|f| f.number != CNT);
        let mut records = Vec::new();
        for (i, (record_type, idc)) in listed.iter().copied().enumerate() {
            let index = i + 1;
            let rest = &bytes[pos..];
            if rest.is_empty() {
                return Err(NistError::CountMismatch {
                    declared: listed.len(),
                    found: i,
                });
            }
            let (record, len) = match record_type {
                4 => {
                    let (r, len) = read_type4(rest, index)?;
                    (Record::Type4(r), len)
                }
                t if is_opaque(t) => {
                    let (r, len) = read_opaque(rest, index, t)?;
                    (Record::Opaque(r), len)
                }
                t if is_tagged(u32::from(t)) => {
                    let (raw, len) = read_tagged(rest, index, t)?;
                    (Record::Tagged(finish_tagged(raw, index, t, utf8)?), len)
                }
                t => {
                    return Err(NistError::Unsupported {
                        record_index: index,
                        record_type: t,
                        field: None,
                        reason: format!(
                            "no record Type-{t} in ANSI/NIST-ITL 1-2011 (Types 2-10, 13-22, 98, 99 are read)"
                        ),
                    })
                }
            };
            if record.idc() != Some(idc) {
                return Err(NistError::Malformed {
                    record_index: index,
                    record_type,
                    field: Some(IDC),
                    reason: format!("the IDC differs from the {idc} the Type-1 CNT lists"),
                });
            }
            records.push(record);
            pos += len;
        }
        if pos != bytes.len() {
            return Err(NistError::Malformed {
                record_index: 0,
                record_type: 1,
                field: Some(CNT),
                reason: format!(
                    "{} bytes follow the {} records CNT lists",
                    bytes.len() - pos,
                    listed.len()
                ),
            });
        }
        Ok(Self { header, records })
    }

    /// Encodes the transaction, computing every LEN field and the Type-1 CNT field.
    ///
    /// Refuses ([`NistError::Encode`]) what [`Transaction::decode`] would not read back
    /// as the same transaction: a LEN field (or a Type-1 CNT) given by hand, a field
    /// twice, a separator inside a text value, text outside printable ASCII (UTF-8 when
    /// the Type-1 DCS declares it), binary data outside field 999 or not last, a record
    /// type that is not read, a tagged record without a numeric IDC.
    pub fn encode(&self) -> Result<Vec<u8>, NistError> {
        let utf8 = self
            .header
            .text(DCS)
            .is_some_and(|d| declares_utf8(d.as_bytes()));
        let mut cnt = format!("1{}{}", char::from(US), self.records.len());
        for (i, r) in self.records.iter().enumerate() {
            let idc = r.idc().ok_or_else(|| NistError::Encode {
                record_index: i + 1,
                record_type: r.record_type(),
                field: Some(IDC),
                reason: "no numeric IDC (field 2) of 0-255".into(),
            })?;
            cnt.push_str(&format!(
                "{}{}{}{idc:02}",
                char::from(RS),
                r.record_type(),
                char::from(US)
            ));
        }
        if self.header.record_type != 1 {
            return Err(NistError::Encode {
                record_index: 0,
                record_type: self.header.record_type,
                field: None,
                reason: "the header must be a Type-1 record".into(),
            });
        }
        if self.header.field(CNT).is_some() {
            return Err(NistError::Encode {
                record_index: 0,
                record_type: 1,
                field: Some(CNT),
                reason: "CNT is computed from the records; do not give it".into(),
            });
        }
        let mut header = self.header.clone();
        let at = header
            .fields
            .iter()
            .position(|f| f.number > CNT)
            .unwrap_or(header.fields.len());
        header.fields.insert(
            at,
            Field {
                number: CNT,
                value: FieldValue::Text(cnt),
            },
        );
        let mut out = Vec::new();
        encode_tagged(&header, 0, false, &mut out)?;
        for (i, r) in self.records.iter().enumerate() {
            match r {
                Record::Tagged(t) => {
                    if !is_tagged(u32::from(t.record_type)) {
                        return Err(NistError::Encode {
                            record_index: i + 1,
                            record_type: t.record_type,
                            field: None,
                            reason: "not a tagged record type this crate reads".into(),
                        });
                    }
                    encode_tagged(t, i + 1, utf8, &mut out)?;
                }
                Record::Type4(t) => encode_type4(t, i + 1, &mut out)?,
                Record::Opaque(t) => encode_opaque(t, i + 1, &mut out)?,
            }
        }
        if out.len() > MAX_TRANSACTION_BYTES {
            return Err(NistError::TooLarge {
                len: out.len(),
                max: MAX_TRANSACTION_BYTES,
            });
        }
        Ok(out)
    }
}

/// Appends a tagged record, LEN first.
fn encode_tagged(
    r: &TaggedRecord,
    index: usize,
    utf8: bool,
    out: &mut Vec<u8>,
) -> Result<(), NistError> {
    let t = r.record_type;
    let err = |field: Option<u32>, reason: String| NistError::Encode {
        record_index: index,
        record_type: t,
        field,
        reason,
    };
    let mut body = Vec::new();
    let mut seen = BTreeSet::new();
    for (k, f) in r.fields.iter().enumerate() {
        if f.number == LEN {
            return Err(err(Some(LEN), "LEN is computed; do not give it".into()));
        }
        if !seen.insert(f.number) {
            return Err(err(Some(f.number), "the field appears twice".into()));
        }
        body.extend_from_slice(format!("{t}.{:03}:", f.number).as_bytes());
        match &f.value {
            FieldValue::Text(text) => {
                if check_text(text.as_bytes(), utf8).is_err() {
                    return Err(err(
                        Some(f.number),
                        format!(
                            "the text holds a byte that is not {} (or a GS/FS separator)",
                            if utf8 {
                                "UTF-8 text"
                            } else {
                                "printable ASCII"
                            }
                        ),
                    ));
                }
                body.extend_from_slice(text.as_bytes());
            }
            FieldValue::Binary(data) => {
                if f.number != DATA || !has_binary_data(t) || k + 1 != r.fields.len() {
                    return Err(err(
                        Some(f.number),
                        "binary data must be the last field, 999, of an image record".into(),
                    ));
                }
                body.extend_from_slice(data);
            }
        }
        body.push(if k + 1 == r.fields.len() { FS } else { GS });
    }
    if body.is_empty() {
        return Err(err(
            None,
            "a record needs at least one field besides LEN".into(),
        ));
    }
    // LEN counts the whole record, its own field included.
    let prefix = format!("{t}.001:");
    let fixed = prefix.len() + 1 + body.len();
    let mut digits = 1;
    while (fixed + digits).to_string().len() != digits {
        digits += 1;
    }
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice((fixed + digits).to_string().as_bytes());
    out.push(GS);
    out.extend_from_slice(&body);
    Ok(())
}

/// Appends a Type 3, 5, 6, 7 or 8 record.
fn encode_opaque(r: &OpaqueRecord, index: usize, out: &mut Vec<u8>) -> Result<(), NistError> {
    let err = |reason: &str| NistError::Encode {
        record_index: index,
        record_type: r.record_type,
        field: None,
        reason: reason.into(),
    };
    if !is_opaque(r.record_type) {
        return Err(err("an opaque record must be of Type 3, 5, 6, 7 or 8"));
    }
    let len = u32::try_from(BINARY_PREFIX_BYTES + r.body.len())
        .map_err(|_| err("the record is larger than a 4-byte LEN"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.push(r.idc);
    out.extend_from_slice(&r.body);
    Ok(())
}

/// Appends a Type-4 record.
fn encode_type4(r: &Type4Record, index: usize, out: &mut Vec<u8>) -> Result<(), NistError> {
    let len = u32::try_from(TYPE4_HEADER_BYTES + r.data.len()).map_err(|_| NistError::Encode {
        record_index: index,
        record_type: 4,
        field: None,
        reason: "the image is larger than a 4-byte LEN".into(),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.push(r.idc);
    out.push(r.impression);
    out.extend_from_slice(&r.positions);
    out.push(r.resolution);
    out.extend_from_slice(&r.width.to_be_bytes());
    out.extend_from_slice(&r.height.to_be_bytes());
    out.push(r.compression);
    out.extend_from_slice(&r.data);
    Ok(())
}
