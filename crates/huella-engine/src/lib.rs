//! Huella: biometric identification and de-duplication.
//!
//! This is the one crate an embedding system depends on. It re-exports the stable
//! types of the internal crates and offers [`Engine`]: enrol an encounter (searching
//! the gallery for the same person first), identify (1:N), verify (1:1), delete and
//! merge subjects, over a crash-safe gallery directory.
//!
//! ```
//! use huella_engine::{Engine, EmbeddingModel, IdentifyOptions, NewEncounter, NewTemplate,
//!                     Template, Modality, Embedding, SubjectId};
//! use std::collections::BTreeMap;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! # let dir = tmp.path().join("gallery");
//! let model: EmbeddingModel = "face:demo-face@1:4".parse()?;
//! let engine = Engine::builder().gallery(&dir).create_if_missing(true).model(model.clone()).build()?;
//!
//! let face = |v: Vec<f32>| -> Result<Template, huella_engine::CoreError> {
//!     Ok(Template::from_embedding(Modality::Face, model.algorithm.clone(), Embedding::new(v)?))
//! };
//! let encounter = NewEncounter {
//!     subject: SubjectId::new("CASE-1")?,
//!     captured_at_unix_ms: 1_764_403_200_000,
//!     location: Some("Border post 3".into()),
//!     operator: None,
//!     biographic: BTreeMap::from([("name".into(), "A. Person".into())]),
//!     templates: vec![NewTemplate { template: face(vec![1.0, 0.1, 0.0, 0.0])?, source: None }],
//! };
//! let first = engine.enroll(encounter, &IdentifyOptions::default())?;
//! assert!(first.candidates.is_empty()); // nobody to match yet
//!
//! let found = engine.identify(&[face(vec![0.9, 0.2, 0.0, 0.1])?], &IdentifyOptions::default())?;
//! assert_eq!(found[0].subject.as_str(), "CASE-1");
//! assert!(found[0].score.value() > 0.9); // cosine similarity: higher = more alike
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
pub mod dedup;
mod engine;
mod error;
mod face;
mod fingerprint;
pub mod fused;
pub mod fusion;
mod indexes;
pub mod rescore;

pub use config::{EmbeddingModel, EngineBuilder, Family, IndexKind};
pub use dedup::{
    deduplicate_embeddings, Cluster, ClusterKind, DedupIndex, DedupOptions, DedupProgress,
    DedupRecord, DedupReport, DedupSummary, DedupThreshold, DuplicatePair, PairDecision,
    SharedIdentity,
};
pub use engine::{Engine, EngineStats, Enrolment, IdentifyOptions, IndexStats, MAX_CANDIDATES};
pub use error::{ConfigError, EngineError};
pub use face::{compare_faces, face_model, face_sample, FaceComparison, QualityPolicy};
pub use fingerprint::{
    finger_minutiae, finger_model, finger_template, finger_template_from_record,
    is_finger_template, DEFAULT_FINGER_SHORT_LIST, EXACT_SEARCH_UP_TO, FINGER_ALGORITHM,
    FINGER_ALGORITHM_VERSION, LONG_LIST_FACTOR, LONG_LIST_MAX_SHARE, MIN_SHORT_LIST,
};
pub use huella_face::files as face_files;
pub use rescore::{
    RescoreFailure, RescoreOptions, RescoreProgress, RescoreReport, DEFAULT_RESCORE_BATCH,
};
/// Fingerprints: minutiae templates, ISO/ANSI records, the matcher.
pub mod finger {
    pub use huella_finger::*;
}
pub use huella_face::{Face, FaceConfig, FaceError, FaceModels, FacePipeline, FaceSample, Quality};
pub use huella_imaging::{
    data_uri, decode, decode_file, encode_png, GreyImage, Image, ImagingError, Limits,
};
pub use huella_infer::Backend;

pub use huella_core::{
    AlgorithmId, Candidate, Comparator, CoreError, CosineComparator, Embedding, EncounterId,
    FingerPosition, Modality, ModalityScore, Score, SubjectId, Template, TemplateId,
    TemplatePayload,
};
pub use huella_index::{FlatScan, HnswParams, IndexError, LshParams};
pub use huella_store::{
    Gallery, GalleryStats, MergeOutcome, NewEncounter, NewTemplate, SourceImage, StoreError,
    StoredEncounter, StoredTemplate,
};
