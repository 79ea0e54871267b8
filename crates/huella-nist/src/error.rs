//! The one error type of this crate.

use thiserror::Error;

/// Why a transaction could not be decoded, read or encoded.
///
/// `record_index` counts records from 0 (the Type-1) in file order; `record_type` is the
/// ANSI/NIST record type (1-99); `field` is the field number within the record (the
/// `NNN` of a `T.NNN` tag), when one field is at fault. Errors never quote field values:
/// they may be personal data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NistError {
    /// The whole input is larger than [`crate::MAX_TRANSACTION_BYTES`].
    #[error("the transaction is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The input ends before a record does (or before its LEN field could be read).
    #[error("record {record_index} (Type-{record_type}) is truncated: needs {needed} bytes, {available} left")]
    Truncated {
        /// Index of the record.
        record_index: usize,
        /// Its type.
        record_type: u8,
        /// Bytes the record needs (its LEN, or the least that could complete it).
        needed: usize,
        /// Bytes left in the input from the record's start.
        available: usize,
    },
    /// A record or field breaks the format's rules.
    #[error("record {record_index} (Type-{record_type}){}: {reason}", at(.record_type, .field))]
    Malformed {
        /// Index of the record.
        record_index: usize,
        /// Its type.
        record_type: u8,
        /// The field at fault, if one is.
        field: Option<u32>,
        /// What is wrong (never the field's value).
        reason: String,
    },
    /// A record holds the same field twice.
    #[error(
        "record {record_index} (Type-{record_type}) holds field {record_type}.{field:03} twice"
    )]
    DuplicateField {
        /// Index of the record.
        record_index: usize,
        /// Its type.
        record_type: u8,
        /// The repeated field.
        field: u32,
    },
    /// A text field holds a byte outside printable ASCII (or, when the Type-1 DCS field
    /// declares UTF-8, is not UTF-8 text without control characters).
    #[error("record {record_index} (Type-{record_type}), field {record_type}.{field:03}: not {expected} text (byte {offset} of the field)")]
    NotText {
        /// Index of the record.
        record_index: usize,
        /// Its type.
        record_type: u8,
        /// The field.
        field: u32,
        /// Offset of the first bad byte within the field's value.
        offset: usize,
        /// `"ASCII"` or `"UTF-8"`, as the transaction's 1.015 DCS declares.
        expected: &'static str,
    },
    /// The Type-1 CNT field (1.003) lists a different number of records than follow it.
    #[error("the Type-1 CNT field lists {declared} records but the file holds {found}")]
    CountMismatch {
        /// Records CNT lists after the Type-1.
        declared: usize,
        /// Records found.
        found: usize,
    },
    /// Valid ANSI/NIST content this crate does not read (a record type, a compression,
    /// a slap image, a minutiae format...).
    #[error("record {record_index} (Type-{record_type}){}: unsupported: {reason}", at(.record_type, .field))]
    Unsupported {
        /// Index of the record.
        record_index: usize,
        /// Its type.
        record_type: u8,
        /// The field, if one is at fault.
        field: Option<u32>,
        /// What is not supported.
        reason: String,
    },
    /// A transaction built in memory cannot be written (a separator inside a text value,
    /// a LEN or CNT field given by hand, a field twice...).
    #[error("cannot encode record {record_index} (Type-{record_type}){}: {reason}", at(.record_type, .field))]
    Encode {
        /// Index of the record.
        record_index: usize,
        /// Its type.
        record_type: u8,
        /// The field, if one is at fault.
        field: Option<u32>,
        /// What is wrong.
        reason: String,
    },
}

/// `", field T.NNN"` or nothing.
fn at(record_type: &u8, field: &Option<u32>) -> String {
    field.map_or(String::new(), |f| format!(", field {record_type}.{f:03}"))
}
