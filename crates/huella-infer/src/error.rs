//! Errors of model loading and inference.

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferError {
    /// The model bytes are not a model this backend can load and optimise.
    #[error("cannot load model: {reason}")]
    Load {
        /// What the backend reported.
        reason: String,
    },
    /// The input tensor does not have the shape the model was loaded for.
    #[error("input shape {actual:?} does not match the model's {expected:?}")]
    InputShape {
        /// The shape the model was prepared for.
        expected: Vec<usize>,
        /// The shape given.
        actual: Vec<usize>,
    },
    /// The input holds a NaN or an infinity.
    #[error("input tensor holds a non-finite value")]
    NonFiniteInput,
    /// The model ran but failed, or produced something other than f32 tensors.
    #[error("inference failed: {reason}")]
    Run {
        /// What the backend reported.
        reason: String,
    },
    /// The backend was not compiled in, or cannot be initialised here.
    #[error("backend {backend} is unavailable: {reason}")]
    Unsupported {
        /// The backend asked for.
        backend: &'static str,
        /// Why it is unavailable.
        reason: String,
    },
}
