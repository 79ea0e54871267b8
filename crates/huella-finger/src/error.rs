//! Errors of the fingerprint crate.

/// Why a fingerprint operation failed.
///
/// Messages never contain minutiae, pixels or other biometric content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FingerError {
    /// A record ends before the data its header announces.
    #[error("{format} record truncated: needs {needed} bytes, has {available}")]
    Truncated {
        /// `"ISO/IEC 19794-2"`, `"ANSI INCITS 378"`, ...
        format: &'static str,
        /// Bytes the record needs.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// A record is malformed (bad magic, inconsistent lengths, values out of range).
    #[error("corrupt {format} record: {reason}")]
    Corrupt {
        /// The record format.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The input is valid but uses something this crate does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The image's resolution is missing or not one we can process.
    #[error("image resolution {ppi:?} ppi is not usable (need {min}-{max} ppi)")]
    Resolution {
        /// The stated resolution, if any.
        ppi: Option<f32>,
        /// Smallest accepted.
        min: f32,
        /// Largest accepted.
        max: f32,
    },
    /// The image holds no usable fingerprint (blank, too small, no ridges).
    #[error("no fingerprint found: {0}")]
    NoBiometricFound(String),
    /// A value given by the caller is out of range.
    #[error("bad input: {0}")]
    BadInput(String),
    /// The image could not be decoded.
    #[error(transparent)]
    Imaging(#[from] huella_imaging::ImagingError),
}
