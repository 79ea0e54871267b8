//! Engine errors.

use huella_core::{CoreError, SubjectId};
use huella_face::FaceError;
use huella_finger::FingerError;
use huella_index::IndexError;
use huella_store::StoreError;

/// Why an [`crate::EngineBuilder`] could not build an engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No gallery directory was given.
    #[error("no gallery directory given")]
    MissingGallery,
    /// A new gallery needs at least one embedding model.
    #[error("a new gallery needs at least one embedding model")]
    NoModels,
    /// A setting is out of range or inconsistent.
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The models requested differ from those the gallery was created with.
    #[error("gallery was created with models [{gallery}] but [{requested}] were requested")]
    ModelMismatch {
        /// Models recorded in the gallery.
        gallery: String,
        /// Models the builder asked for.
        requested: String,
    },
    /// Opening or creating the gallery failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Loading or rebuilding an index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// Why an engine operation failed.
///
/// Categories a host system can act on: bad input from the caller, a model the gallery
/// does not know, an unknown subject, a damaged gallery, or an i/o failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The request was malformed (empty probe, bad option...).
    #[error("bad input: {0}")]
    BadInput(String),
    /// A template's value was invalid, or templates of different models were compared.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A template was made by a model this gallery does not hold.
    #[error("model {algorithm} ({modality}) is not configured in this gallery; configured: {configured}")]
    UnknownModel {
        /// The template's algorithm, `name@version`.
        algorithm: String,
        /// The template's modality family.
        modality: String,
        /// The gallery's models.
        configured: String,
    },
    /// The caller's cancel flag stopped a long job (nothing it wrote is lost).
    #[error("cancelled")]
    Cancelled,
    /// Templates of this kind cannot be searched yet (e.g. opaque minutiae records
    /// before a minutiae matcher is registered).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A model upgrade of this family is under way ([`crate::Engine::rescore`]): its
    /// templates belong to two models, so searching them would silently miss some.
    /// Finish the rescore (run it again) before searching this family.
    #[error("a rescore of the {family} templates from {from} to {to} is under way: finish it before searching them")]
    RescoreInProgress {
        /// The family being upgraded (`face`, `finger`).
        family: String,
        /// The model being replaced.
        from: String,
        /// The model replacing it.
        to: String,
    },
    /// The subject is not enrolled.
    #[error("subject {0} is not enrolled")]
    UnknownSubject(SubjectId),
    /// The gallery store failed (corruption, i/o, version).
    #[error(transparent)]
    Store(StoreError),
    /// An index operation failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// No face (or other biometric) was found in the sample.
    #[error("no biometric found in the sample")]
    NoBiometricFound,
    /// The sample's quality is below the configured minimum; it was not used.
    #[error("sample quality {summary} is below the minimum {min}")]
    LowQuality {
        /// The sample's quality summary, 0-100.
        summary: u8,
        /// The configured minimum.
        min: u8,
    },
    /// Face extraction failed (undecodable image, model failure).
    #[error(transparent)]
    Face(FaceError),
    /// Fingerprint extraction or a minutiae record failed (undecodable image, bad
    /// resolution, corrupt ISO/ANSI record).
    #[error(transparent)]
    Finger(FingerError),
}

impl From<FingerError> for EngineError {
    fn from(e: FingerError) -> Self {
        match e {
            FingerError::NoBiometricFound(_) => EngineError::NoBiometricFound,
            other => EngineError::Finger(other),
        }
    }
}

impl From<FaceError> for EngineError {
    fn from(e: FaceError) -> Self {
        match e {
            FaceError::NoBiometricFound => EngineError::NoBiometricFound,
            other => EngineError::Face(other),
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownSubject(s) => EngineError::UnknownSubject(s),
            other => EngineError::Store(other),
        }
    }
}
