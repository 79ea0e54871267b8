//! Errors for invalid core values.

/// Why a core value could not be constructed or two values cannot be compared.
///
/// Every variant carries the facts a caller needs to report the problem without
/// parsing a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A vector had a different number of components than expected.
    #[error("wrong dimension: expected {expected}, received {received}")]
    WrongDimension {
        /// The dimension the receiver works with.
        expected: usize,
        /// The dimension that was supplied.
        received: usize,
    },
    /// A vector component was NaN or infinite.
    #[error("component {index} is not a finite number")]
    NonFinite {
        /// Index of the first offending component.
        index: usize,
    },
    /// A vector had (numerically) zero length and cannot be normalised.
    #[error("zero-length vector cannot be normalised")]
    ZeroVector,
    /// An empty vector or one larger than [`crate::MAX_DIMENSION`].
    #[error("dimension {received} outside 1..={max}")]
    BadDimension {
        /// The dimension that was supplied.
        received: usize,
        /// The largest dimension accepted.
        max: usize,
    },
    /// Two templates made by different algorithms or model versions were compared.
    #[error("template made by {found} cannot be compared with {expected}")]
    ModelMismatch {
        /// The algorithm the receiver expects, as `name@version`.
        expected: String,
        /// The algorithm that made the offered template, as `name@version`.
        found: String,
    },
    /// Two templates of different modalities were compared.
    #[error("modality mismatch: expected {expected}, found {found}")]
    ModalityMismatch {
        /// Expected modality.
        expected: String,
        /// Offered modality.
        found: String,
    },
    /// A textual or numeric field was malformed.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The name of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}
