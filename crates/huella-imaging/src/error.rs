//! Errors for image decoding.

use crate::SourceFormat;

/// Why an image could not be decoded.
///
/// Variants carry structured facts so that a caller can tell "too large" from "corrupt"
/// from "not an image we read" without parsing a message. Messages never contain pixel
/// data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImagingError {
    /// The input had no bytes.
    #[error("empty input")]
    Empty,
    /// The input, or the image it declares, exceeds one of the [`crate::Limits`].
    ///
    /// `what` is one of `"bytes"`, `"width"`, `"height"` or `"pixels"`.
    #[error("{what} {actual} exceeds the limit of {limit}")]
    TooLarge {
        /// Which limit was exceeded.
        what: &'static str,
        /// The limit in force.
        limit: u64,
        /// The value the input has or declares.
        actual: u64,
    },
    /// The decoder needed more memory than the limits allow (for example for metadata or
    /// intermediate buffers); how much more it would have needed is not known.
    #[error("decoding needs more than the {limit} bytes allowed for {what}")]
    LimitExceeded {
        /// What needed the memory.
        what: &'static str,
        /// The limit in force, in bytes.
        limit: u64,
    },
    /// The content is not one of the supported formats (JPEG, PNG, TIFF, BMP, PNM, WSQ).
    #[error("unsupported or unrecognised image format")]
    UnsupportedFormat,
    /// The format is supported but this file uses a feature the decoder lacks
    /// (for example arithmetic-coded JPEG, planar CMYK TIFF or WSQ restart intervals).
    #[error("unsupported {format} feature: {reason}")]
    UnsupportedFeature {
        /// The detected format.
        format: SourceFormat,
        /// What is not supported.
        reason: String,
    },
    /// The data ends before the image is complete.
    #[error("{format} data is truncated")]
    Truncated {
        /// The detected format.
        format: SourceFormat,
    },
    /// The data is malformed.
    #[error("corrupt image: {reason}")]
    Corrupt {
        /// What the decoder found wrong.
        reason: String,
    },
    /// Reading the file failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
