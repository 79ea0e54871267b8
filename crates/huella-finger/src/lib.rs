//! Fingerprints for Huella: minutiae templates, their ISO/ANSI codecs, the matcher, the
//! 1:N index code and quality.
//!
//! Coordinates are pixels with the origin at the top-left of the image and y pointing
//! down; a minutia's angle is in radians in `[0, 2π)`, measured counter-clockwise from
//! the positive x axis as the image is viewed (the ISO/IEC 19794-2 convention).
// The matcher and index-code kernels use `unsafe` only to run with popcnt / AVX2
// instructions after checking the CPU, each with a portable fallback.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod extract;
mod index_code;
mod matcher;
mod minutia;
mod quality;
mod record;
mod render;

pub use error::FingerError;
pub use extract::{ExtractConfig, Extraction, FeatureMaps, FingerExtractor, MIN_SIDE, WORKING_PPI};
pub use index_code::{
    code_similarity, sketch_similarity, CodeIndex, FingerCode, FingerCoder, FingerKey,
    FingerSketch, IndexCodeParams,
};
pub use matcher::{MatchedPair, Matcher, MatcherParams, PreparedFinger};
pub use minutia::{FingerTemplate, Minutia, MinutiaKind, MAX_MINUTIAE};
pub use quality::{finger_quality, FingerQuality, QualityComponents};
pub use record::{ExtendedData, FingerView, MinutiaeRecord, RecordFormat, RecordMinutia};
pub use render::{render_match_svg, render_minutiae_svg};
