//! Errors of face extraction.

use huella_imaging::ImagingError;
use huella_infer::InferError;

/// Why a face template could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FaceError {
    /// The image could not be decoded or broke a limit.
    #[error(transparent)]
    Image(#[from] ImagingError),
    /// No face was found in the image.
    #[error("no face found in the image")]
    NoBiometricFound,
    /// A model file is malformed or not the model expected.
    #[error("{model} model is unusable: {reason}")]
    ModelCorrupt {
        /// Which model.
        model: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The inference backend failed.
    #[error(transparent)]
    Inference(#[from] InferError),
    /// The embedding could not be made into a template (a zero or non-finite vector).
    #[error(transparent)]
    Core(#[from] huella_core::CoreError),
}
