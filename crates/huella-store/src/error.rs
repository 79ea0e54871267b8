//! Errors of the gallery store.

use huella_core::{EncounterId, SubjectId, TemplateId};
use std::path::PathBuf;

/// Why a gallery operation failed.
///
/// Callers match on the variant: a missing gallery, a gallery written by a newer
/// release, a damaged file and a bad request are different situations with different
/// remedies. Messages never contain biographic data or template bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No gallery at this path.
    #[error("no gallery at {}", path.display())]
    NotFound {
        /// The gallery file or directory that was looked for.
        path: PathBuf,
    },
    /// A gallery already exists at this path.
    #[error("a gallery already exists at {}", path.display())]
    AlreadyExists {
        /// The existing gallery file.
        path: PathBuf,
    },
    /// The gallery is open elsewhere (in this or another process); redb holds an
    /// exclusive file lock for the lifetime of a [`crate::Gallery`].
    #[error("the gallery at {} is already open", path.display())]
    AlreadyOpen {
        /// The gallery file.
        path: PathBuf,
    },
    /// The gallery was written in a format this release cannot read.
    #[error(
        "gallery format version {found} is not supported (this release reads up to {supported})"
    )]
    UnsupportedVersion {
        /// The version recorded in the gallery.
        found: u32,
        /// The newest version this release reads.
        supported: u32,
    },
    /// The gallery is damaged: a checksum failed, a record does not decode, or the
    /// tables contradict each other.
    #[error("gallery is corrupt: {reason}")]
    Corrupt {
        /// What was found to be wrong (names tables and ids, never personal data).
        reason: String,
    },
    /// No subject with this id.
    #[error("unknown subject {0}")]
    UnknownSubject(SubjectId),
    /// No encounter with this id.
    #[error("unknown encounter {0}")]
    UnknownEncounter(EncounterId),
    /// No template with this id.
    #[error("unknown template {0}")]
    UnknownTemplate(TemplateId),
    /// A request was rejected before touching the gallery.
    #[error("invalid {field}: {reason}")]
    BadInput {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it (never echoes the value of personal fields).
        reason: String,
    },
    /// The file system failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Any other error reported by the database engine.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    pub(crate) fn corrupt(reason: impl Into<String>) -> Self {
        StoreError::Corrupt {
            reason: reason.into(),
        }
    }

    pub(crate) fn bad(field: &'static str, reason: impl Into<String>) -> Self {
        StoreError::BadInput {
            field,
            reason: reason.into(),
        }
    }

    /// Classify a redb error; `file` is the gallery file, for I/O errors and locks.
    pub(crate) fn from_redb(e: impl Into<redb::Error>, file: &std::path::Path) -> Self {
        match e.into() {
            redb::Error::Corrupted(reason) => StoreError::Corrupt { reason },
            redb::Error::Io(source) => StoreError::Io {
                path: file.to_path_buf(),
                source,
            },
            redb::Error::DatabaseAlreadyOpen => StoreError::AlreadyOpen {
                path: file.to_path_buf(),
            },
            redb::Error::TableDoesNotExist(table) => {
                StoreError::corrupt(format!("table {table:?} is missing"))
            }
            other => StoreError::Database(other.to_string()),
        }
    }
}
