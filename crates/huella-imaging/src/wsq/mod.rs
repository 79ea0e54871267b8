//! FBI WSQ (Wavelet Scalar Quantization, IAFIS-IC-0110 v3) grey-scale fingerprint
//! decoding.
//!
//! A WSQ file is a sequence of marker segments, as in JPEG: tables (wavelet filters,
//! quantiser, Huffman codes, comments), a frame header with the size and the final shift
//! and scale, then one or more Huffman-coded blocks of quantised wavelet coefficients.
//! Decoding runs the entropy decoder over the blocks, dequantises the coefficients into
//! their 60 subbands ([`tree`]) and inverts the wavelet transform ([`synthesis`]).
//!
//! All input is hostile: the declared size is checked against [`Limits`] before any
//! allocation, every length is checked against the bytes present, and coefficient
//! storage grows only as coded data arrives and never past what the subbands hold.
//! Results match the NIST reference decoder (NBIS) exactly for files it decodes.
//!
//! Not supported (no known encoder writes them): even-length wavelet filters and restart
//! intervals (DRT); both give [`ImagingError::UnsupportedFeature`].

mod synthesis;
mod tree;

use synthesis::{Filters, Quantiser};
use tree::SUBBANDS;

use crate::{Image, ImagingError, Limits, SourceFormat};

const SOI: u16 = 0xFFA0;
const EOI: u16 = 0xFFA1;
const SOF: u16 = 0xFFA2;
const SOB: u16 = 0xFFA3;
const DTT: u16 = 0xFFA4;
const DQT: u16 = 0xFFA5;
const DHT: u16 = 0xFFA6;
const DRT: u16 = 0xFFA7;
const COM: u16 = 0xFFA8;

/// Huffman tables a file may define (ids 0..8).
const HUFFMAN_TABLES: usize = 8;
/// The longest filter accepted; the standard's filters have 7 and 9 taps. Bounds the
/// work per pixel on hostile input.
const MAX_TAPS: u8 = 31;

/// Whether `bytes` start with the WSQ start-of-image marker.
pub(crate) fn is_wsq(bytes: &[u8]) -> bool {
    bytes.starts_with(&SOI.to_be_bytes())
}

fn corrupt(reason: impl Into<String>) -> ImagingError {
    ImagingError::Corrupt {
        reason: reason.into(),
    }
}

fn truncated() -> ImagingError {
    ImagingError::Truncated {
        format: SourceFormat::Wsq,
    }
}

fn unsupported(reason: &str) -> ImagingError {
    ImagingError::UnsupportedFeature {
        format: SourceFormat::Wsq,
        reason: reason.to_owned(),
    }
}

/// Decodes a WSQ file into grey replicated over RGB, with the resolution of its NISTCOM
/// comment if it states one.
pub(crate) fn decode(bytes: &[u8], limits: &Limits) -> Result<Image, ImagingError> {
    let mut r = Reader::file(bytes);
    if r.u16()? != SOI {
        return Err(ImagingError::UnsupportedFormat);
    }
    let mut tables = Tables::default();
    let frame = loop {
        match r.u16()? {
            SOF => break Frame::parse(&mut r.segment()?)?,
            marker => tables.read(marker, &mut r)?,
        }
    };
    limits.check_dimensions(frame.width, frame.height)?;
    if frame.width == 0 || frame.height == 0 {
        return Err(corrupt(format!(
            "WSQ declares a {}x{} image",
            frame.width, frame.height
        )));
    }
    let (width, height) = (frame.width as usize, frame.height as usize);
    let nodes = tree::wavelet_nodes(width, height);
    let bands = tree::subbands(&nodes);

    let mut marker = r.u16()?;
    while marker != SOB {
        tables.read(marker, &mut r)?;
        marker = r.u16()?;
    }
    let quantiser = tables
        .quantiser
        .clone()
        .ok_or_else(|| corrupt("WSQ image data before any quantisation table"))?;
    // Coefficients of subbands with a zero bin width are not coded.
    let expected: usize = quantiser.coded(&bands).map(|(_, b)| b.w * b.h).sum();
    tables.seen_data = true;
    let mut indices: Vec<i16> = Vec::new();
    loop {
        // At a start-of-block marker.
        let id = usize::from(r.segment()?.u8()?);
        let table = tables
            .huffman
            .get(id)
            .and_then(Option::as_ref)
            .ok_or_else(|| corrupt(format!("WSQ block uses undefined Huffman table {id}")))?;
        marker = decode_block(&mut r, table, &mut indices, expected)?;
        while marker != SOB && marker != EOI {
            tables.read(marker, &mut r)?;
            marker = r.u16()?;
        }
        if marker == EOI {
            break;
        }
    }
    if indices.len() != expected {
        return Err(corrupt(format!(
            "WSQ data holds {} of the {expected} coefficients",
            indices.len()
        )));
    }
    let filters = tables
        .filters
        .ok_or_else(|| corrupt("WSQ file has no transform table"))?;
    let quantiser = tables.quantiser.unwrap_or(quantiser);

    let mut plane = vec![0f32; width * height];
    synthesis::dequantise(&indices, &quantiser, &bands, &mut plane, width);
    drop(indices);
    synthesis::reconstruct(&mut plane, width, &nodes, &filters);
    let mut rgb = Vec::with_capacity(plane.len() * 3);
    for g in synthesis::to_grey(&plane, frame.shift, frame.scale) {
        rgb.extend_from_slice(&[g, g, g]);
    }
    drop(plane);
    let image = Image::from_raw(frame.width, frame.height, rgb)
        .ok_or_else(|| corrupt("WSQ decoder produced a buffer of the wrong size"))?;
    Ok(image.with_origin(Some(SourceFormat::Wsq), tables.ppi))
}

/// A bounds-checked big-endian reader over the whole file or over one marker segment.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Running out inside a segment is corruption; running out of file is truncation.
    in_segment: bool,
}

impl<'a> Reader<'a> {
    fn file(data: &'a [u8]) -> Self {
        Reader {
            data,
            pos: 0,
            in_segment: false,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ImagingError> {
        let bytes = self
            .pos
            .checked_add(n)
            .and_then(|end| self.data.get(self.pos..end));
        match bytes {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            None if self.in_segment => Err(corrupt("WSQ segment is shorter than its fields")),
            None => Err(truncated()),
        }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn u8(&mut self) -> Result<u8, ImagingError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ImagingError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, ImagingError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A decimal-scaled value: an exponent byte `e` and a 16-bit `v` meaning `v / 10^e`.
    fn scaled(&mut self) -> Result<f32, ImagingError> {
        let exponent = self.u8()?;
        Ok(descale(f32::from(self.u16()?), exponent))
    }

    /// The body of the marker segment starting here (its length counts itself).
    fn segment(&mut self) -> Result<Reader<'a>, ImagingError> {
        let len = self.u16()?;
        let body_len = usize::from(len)
            .checked_sub(2)
            .ok_or_else(|| corrupt(format!("WSQ segment length {len}")))?;
        Ok(Reader {
            data: self.take(body_len)?,
            pos: 0,
            in_segment: true,
        })
    }
}

/// `value / 10^exponent`, one division at a time in double precision rounded back to
/// single, as NBIS computes it (so that results match it bit for bit).
fn descale(mut value: f32, exponent: u8) -> f32 {
    for _ in 0..exponent {
        value = (f64::from(value) / 10.0) as f32;
    }
    value
}

/// The frame header (SOF).
#[derive(Debug)]
struct Frame {
    width: u32,
    height: u32,
    /// Added after scaling (`M` in the standard).
    shift: f32,
    /// Multiplies the reconstructed values (`R`).
    scale: f32,
}

impl Frame {
    fn parse(r: &mut Reader<'_>) -> Result<Frame, ImagingError> {
        let _black = r.u8()?;
        let _white = r.u8()?;
        let height = u32::from(r.u16()?);
        let width = u32::from(r.u16()?);
        let shift = r.scaled()?;
        let scale = r.scaled()?;
        // The encoder number and software id follow; nothing depends on them.
        Ok(Frame {
            width,
            height,
            shift,
            scale,
        })
    }
}

/// Everything the table segments define so far.
#[derive(Default)]
struct Tables {
    filters: Option<Filters>,
    quantiser: Option<Quantiser>,
    huffman: [Option<Huffman>; HUFFMAN_TABLES],
    /// From the first NISTCOM comment, which must come before the image data.
    ppi: Option<f32>,
    seen_nistcom: bool,
    seen_data: bool,
}

impl Tables {
    /// Reads the segment of a table or comment `marker` from `r`.
    fn read(&mut self, marker: u16, r: &mut Reader<'_>) -> Result<(), ImagingError> {
        match marker {
            DTT => self.filters = Some(parse_filters(&mut r.segment()?)?),
            DQT => self.quantiser = Some(parse_quantiser(&mut r.segment()?)?),
            DHT => self.read_huffman(&mut r.segment()?)?,
            COM => {
                let text = r.segment()?.data;
                if !self.seen_data && !self.seen_nistcom && text.starts_with(b"NIST_COM") {
                    self.seen_nistcom = true;
                    self.ppi = nistcom_ppi(text);
                }
            }
            DRT => return Err(unsupported("restart intervals")),
            other => return Err(corrupt(format!("unexpected WSQ marker {other:04X}"))),
        }
        Ok(())
    }

    /// A DHT segment: one or more tables, each an id, 16 code-length counts and the
    /// symbols.
    fn read_huffman(&mut self, r: &mut Reader<'_>) -> Result<(), ImagingError> {
        if r.is_empty() {
            return Err(corrupt("empty WSQ Huffman table segment"));
        }
        while !r.is_empty() {
            let id = usize::from(r.u8()?);
            let mut counts = [0u8; 16];
            counts.copy_from_slice(r.take(16)?);
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            if total > 256 {
                return Err(corrupt(format!("WSQ Huffman table with {total} codes")));
            }
            let table = Huffman::new(counts, r.take(total)?)?;
            *self
                .huffman
                .get_mut(id)
                .ok_or_else(|| corrupt(format!("WSQ Huffman table id {id}")))? = Some(table);
        }
        Ok(())
    }
}

/// The `PPI` field of a NISTCOM comment (lines of `NAME VALUE`); -1, 0 or absent is None.
fn nistcom_ppi(text: &[u8]) -> Option<f32> {
    let text = std::str::from_utf8(text).ok()?;
    let value = text
        .lines()
        .filter_map(|line| {
            let line = line.trim_start_matches([' ', '\t']);
            let (name, value) = line.split_once([' ', '\t'])?;
            (name == "PPI").then_some(value)
        })
        .next_back()?;
    // C's atoi: leading blanks, an optional sign, then digits up to the first non-digit.
    let value = value.trim_start();
    let digits = value.strip_prefix('+').unwrap_or(value);
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let ppi: u32 = digits.get(..end)?.parse().ok()?;
    (1..=1_000_000).contains(&ppi).then_some(ppi as f32)
}

/// A DTT segment: the high-pass then the low-pass synthesis filter lengths, then the
/// centre-and-right half of each filter (high-pass first) as sign, exponent and 32-bit
/// value. Each half is mirrored with alternating signs to give the full filter.
fn parse_filters(r: &mut Reader<'_>) -> Result<Filters, ImagingError> {
    let high_len = r.u8()?;
    let low_len = r.u8()?;
    for len in [high_len, low_len] {
        if len == 0 {
            return Err(corrupt("WSQ wavelet filter of length 0"));
        }
        if len % 2 == 0 {
            return Err(unsupported("even-length wavelet filters"));
        }
        if len > MAX_TAPS {
            return Err(unsupported("wavelet filters longer than 31 taps"));
        }
    }
    let mut read = |len: u8| -> Result<Vec<f32>, ImagingError> {
        let len = usize::from(len);
        let centre = len / 2;
        let mut taps = vec![0f32; len];
        for k in 0..=centre {
            let negative = r.u8()? != 0;
            let exponent = r.u8()?;
            // u32 to f32 rounds to nearest, as C's conversion does.
            let mut v = descale(r.u32()? as f32, exponent);
            if negative {
                v = -v;
            }
            if k % 2 == 1 {
                v = -v;
            }
            taps[centre + k] = v;
            taps[centre - k] = v;
        }
        Ok(taps)
    };
    let high = read(high_len)?;
    let low = read(low_len)?;
    Ok(Filters::new(low, high))
}

/// A DQT segment: the bin centre `C`, then the bin and zero-bin widths of 64 subbands.
fn parse_quantiser(r: &mut Reader<'_>) -> Result<Quantiser, ImagingError> {
    let bin_centre = r.scaled()?;
    let mut bin = [0f32; SUBBANDS];
    let mut zero_bin = [0f32; SUBBANDS];
    for k in 0..SUBBANDS {
        bin[k] = r.scaled()?;
        zero_bin[k] = r.scaled()?;
    }
    Ok(Quantiser {
        bin_centre,
        bin,
        zero_bin,
    })
}

/// A canonical Huffman code (as in JPEG) with codes of at most 16 bits.
#[derive(Debug, Clone)]
struct Huffman {
    /// Per code length: the largest code, or -1 if there is none of that length.
    max_code: [i32; 17],
    /// Per code length: the smallest code.
    min_code: [i32; 17],
    /// Per code length: the index in `symbols` of the symbol of `min_code`.
    first: [usize; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    /// Builds the code from per-length counts, rejecting counts that need more codes of
    /// some length than that length has (an over-subscribed table).
    fn new(counts: [u8; 16], symbols: &[u8]) -> Result<Huffman, ImagingError> {
        let mut table = Huffman {
            max_code: [-1; 17],
            min_code: [0; 17],
            first: [0; 17],
            symbols: symbols.to_vec(),
        };
        let (mut code, mut index) = (0i32, 0usize);
        for len in 1..=16 {
            let count = counts[len - 1];
            if count > 0 {
                table.first[len] = index;
                table.min_code[len] = code;
                code += i32::from(count);
                index += usize::from(count);
                table.max_code[len] = code - 1;
                if code > 1 << len {
                    return Err(corrupt("WSQ Huffman table is over-subscribed"));
                }
            }
            code <<= 1;
        }
        Ok(table)
    }

    /// Reads one code, or stops at a marker (which ends the block).
    fn decode(&self, bits: &mut BitReader<'_>) -> Result<Token, ImagingError> {
        let mut code = 0i32;
        for len in 1..=16 {
            match bits.bit()? {
                Bit::Marker(m) => return Ok(Token::Marker(m)),
                Bit::Value(b) => code = (code << 1) | i32::from(b),
            }
            if code <= self.max_code[len] {
                let symbol = usize::try_from(code - self.min_code[len])
                    .ok()
                    .and_then(|offset| self.symbols.get(self.first[len] + offset));
                return symbol
                    .map(|&s| Token::Symbol(s))
                    .ok_or_else(|| corrupt("invalid WSQ Huffman code"));
            }
        }
        Err(corrupt("WSQ Huffman code longer than 16 bits"))
    }
}

enum Token {
    Symbol(u8),
    Marker(u16),
}

enum Bit {
    Value(u8),
    Marker(u16),
}

/// Reads entropy-coded bits, most significant first, undoing `FF 00` byte stuffing.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    byte: u8,
    left: u8,
}

impl BitReader<'_> {
    /// Loads the next byte; `Err(marker)` when the next two bytes are a marker.
    fn load(&mut self) -> Result<Result<(), u16>, ImagingError> {
        let byte = *self.data.get(self.pos).ok_or_else(truncated)?;
        self.pos += 1;
        if byte == 0xFF {
            let next = *self.data.get(self.pos).ok_or_else(truncated)?;
            self.pos += 1;
            if next != 0 {
                return Ok(Err(u16::from_be_bytes([byte, next])));
            }
        }
        self.byte = byte;
        self.left = 8;
        Ok(Ok(()))
    }

    /// One bit of a Huffman code; a marker here ends the block.
    fn bit(&mut self) -> Result<Bit, ImagingError> {
        if self.left == 0 {
            if let Err(marker) = self.load()? {
                return Ok(Bit::Marker(marker));
            }
        }
        self.left -= 1;
        Ok(Bit::Value((self.byte >> self.left) & 1))
    }

    /// `count` (at most 16) raw bits following an escape code; no marker may interrupt.
    fn bits(&mut self, count: u8) -> Result<u16, ImagingError> {
        let mut value = 0u16;
        for _ in 0..count {
            match self.bit()? {
                Bit::Value(b) => value = (value << 1) | u16::from(b),
                Bit::Marker(_) => return Err(corrupt("WSQ marker inside a coded value")),
            }
        }
        Ok(value)
    }
}

/// Decodes one block's coefficients onto `out`, up to `expected` in all, and returns the
/// marker that ends the block, leaving `r` after it.
///
/// Symbols: 1-100 a run of that many zeros; 101/102 a positive/negative 8-bit value,
/// 103/104 a 16-bit one; 105/106 an 8/16-bit zero run; 107-254 the value `symbol - 180`.
fn decode_block(
    r: &mut Reader<'_>,
    table: &Huffman,
    out: &mut Vec<i16>,
    expected: usize,
) -> Result<u16, ImagingError> {
    let mut bits = BitReader {
        data: r.data,
        pos: r.pos,
        byte: 0,
        left: 0,
    };
    let overrun = || corrupt("WSQ data holds more coefficients than the image");
    let zeros = |out: &mut Vec<i16>, n: usize| {
        if n > expected - out.len() {
            return Err(overrun());
        }
        out.resize(out.len() + n, 0);
        Ok(())
    };
    let marker = loop {
        let symbol = match table.decode(&mut bits)? {
            Token::Marker(m) => break m,
            Token::Symbol(s) => s,
        };
        let value = match symbol {
            1..=100 => {
                zeros(out, usize::from(symbol))?;
                continue;
            }
            105 => {
                zeros(out, usize::from(bits.bits(8)?))?;
                continue;
            }
            106 => {
                zeros(out, usize::from(bits.bits(16)?))?;
                continue;
            }
            101 => bits.bits(8)? as i16,
            102 => -(bits.bits(8)? as i16),
            // 16-bit magnitudes wrap into i16, as NBIS stores them.
            103 => bits.bits(16)? as i16,
            104 => (bits.bits(16)? as i16).wrapping_neg(),
            107..=254 => i16::from(symbol) - 180,
            _ => return Err(corrupt(format!("invalid WSQ symbol {symbol}"))),
        };
        if out.len() >= expected {
            return Err(overrun());
        }
        out.push(value);
    };
    r.pos = bits.pos;
    Ok(marker)
}

#[cfg(test)]
mod tests;
