//! Index errors.

use huella_core::TemplateId;
use std::path::PathBuf;

/// Why an index operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// A vector of the wrong dimension was offered.
    #[error("wrong vector dimension: expected {expected}, received {received}")]
    WrongDimension {
        /// The index's dimension.
        expected: usize,
        /// The offered vector's dimension.
        received: usize,
    },
    /// The id is already present.
    #[error("template {0} is already in the index")]
    DuplicateId(TemplateId),
    /// The id is not present.
    #[error("template {0} is not in the index")]
    UnknownId(TemplateId),
    /// Invalid search or build parameters.
    #[error("invalid parameter: {0}")]
    BadParams(String),
    /// The file is damaged: bad magic, checksum mismatch, truncation, impossible values.
    #[error("corrupt index file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What was found wrong.
        reason: String,
    },
    /// The file was written by a newer (or unknown) format version.
    #[error("index file {path} has format version {found}; this build reads up to {supported}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Version found in the file.
        found: u32,
        /// Highest version this build reads.
        supported: u32,
    },
    /// Reading or writing failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
