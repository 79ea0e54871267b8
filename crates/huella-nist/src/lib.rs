//! ANSI/NIST-ITL 1-2011 transactions for Huella: the files agencies exchange, holding a
//! person's biographic fields, face photos, fingerprint images and minutiae.
//!
//! This crate reads and writes the traditional (binary/ASCII) encoding:
//!
//! - tagged-field records (Type-1, 2, 9, 10, 13-22, 98, 99): `T.NNN:value` fields
//!   separated by GS (0x1D), subfields by RS (0x1E), items by US (0x1F), the record ended
//!   by FS (0x1C); LEN (`T.001`) first; the binary data field `T.999` of image records
//!   last, its length following from LEN;
//! - the binary Type-4 fingerprint image record (an 18-byte header: LEN 4 bytes, IDC 1,
//!   IMP 1, FGP 6, ISR 1, HLL 2, VLL 2, GCA 1; then the image).
//!
//! The Type-1 CNT field (1.003) lists the records that follow (type and IDC); decoding
//! requires exactly those records, in that order, and nothing after them. The binary
//! Types 3, 5, 6 (other fingerprint images), 7 (user-defined) and 8 (signatures) are
//! carried as [`OpaqueRecord`]s and tagged types other than those below as
//! [`TaggedRecord`]s, neither interpreted; a record type the standard does not define
//! is a typed [`NistError::Unsupported`].
//!
//! What Huella reads from a transaction ([`Transaction`]'s accessors):
//!
//! - [`Transaction::control_number`]: 1.009 TCN;
//! - [`Transaction::biographic`]: the first Type-2 record, with the FBI EBTS field
//!   numbers ([`Biographic`]): 2.018 NAM name, 2.022 DOB date of birth (`YYYYMMDD`,
//!   given as `YYYY-MM-DD`), 2.021 CTZ citizenship as the nationality, 2.017 MNU
//!   (miscellaneous identification number, e.g. `PP-X1234567` for a passport) as the
//!   document number;
//! - [`Transaction::faces`]: Type-10 records with IMT `FACE` ([`FaceImage`]);
//! - [`Transaction::finger_images`]: Type-14 and Type-4 records ([`FingerImage`]), with
//!   the resolution in ppi when the record states one;
//! - [`Transaction::finger_minutiae`]: Type-9 INCITS 378 blocks as a
//!   [`huella_finger::FingerTemplate`] ([`FingerMinutiae`]; see the `minutiae` module
//!   docs for the fields and what is unsupported).
//!
//! Text is printable ASCII unless 1.015 DCS names `UTF-8` as the character set, in which
//! case records after the Type-1 may hold UTF-8. Nothing is converted lossily: a Latin-1
//! name without that declaration is a [`NistError::NotText`].
//!
//! All input is hostile: a transaction over [`MAX_TRANSACTION_BYTES`] is refused before
//! anything else, every LEN is checked against the bytes remaining before anything is
//! sliced or copied, no allocation is sized by a header value (records and fields grow
//! with the bytes actually parsed), nothing recurses, and every malformed or truncated
//! input is a typed [`NistError`] naming the record index, type and field, never the
//! value.
//!
//! [`Transaction::encode`] writes a transaction back, computing every LEN and the CNT;
//! the record builders ([`Record::biographic`], [`Record::face`],
//! [`Record::finger_image`], [`Record::minutiae`]) write the fields Huella reads, which
//! is enough for fixtures and tests but not a transaction any agency would accept as it
//! stands (no Type-1 DAT, ORI, TOT unless the caller adds them).
//!
//! ```
//! use huella_nist::{Biographic, FaceCompression, Record, TaggedRecord, Transaction};
//!
//! # fn main() -> Result<(), huella_nist::NistError> {
//! let mut t = Transaction::new();
//! t.header = t.header.with_text(9, "TCN-0001");
//! t.records.push(Record::biographic(0, &Biographic {
//!     name: Some("DOE,JANE".into()),
//!     date_of_birth: Some("1980-01-02".into()),
//!     ..Biographic::default()
//! }));
//! // A 2x2 grey face stored raw, to keep the example short.
//! t.records.push(Record::face(1, FaceCompression::None, 2, 2, vec![0, 64, 128, 255]));
//! let bytes = t.encode()?;
//!
//! let back = huella_nist::Transaction::decode(&bytes)?;
//! assert_eq!(back, t);
//! assert_eq!(back.control_number(), Some("TCN-0001"));
//! let person = back.biographic()?;
//! assert_eq!(person.date_of_birth.as_deref(), Some("1980-01-02"));
//! let faces = back.faces();
//! let face = faces[0].as_ref().map_err(Clone::clone)?;
//! assert_eq!((face.width, face.height, face.raw_channels), (2, 2, Some(1)));
//!
//! // Any damage is an error, never a panic.
//! assert!(Transaction::decode(&bytes[..bytes.len() - 1]).is_err());
//! # let _ = TaggedRecord::new(2);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod minutiae;
mod record;
mod views;

#[cfg(test)]
mod tests;

pub use error::NistError;
pub use minutiae::FingerMinutiae;
pub use record::{
    Field, FieldValue, OpaqueRecord, Record, TaggedRecord, Transaction, Type4Record, FS, GS,
    MAX_TRANSACTION_BYTES, RS, TYPE4_HEADER_BYTES, US,
};
pub use views::{
    Biographic, FaceCompression, FaceImage, FingerCompression, FingerImage, CTZ, DOB, MNU, NAM,
    NSR, NTR, TCN,
};
