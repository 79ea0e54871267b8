//! Core types shared by every Huella crate.
//!
//! This crate depends on nothing but `serde` and `thiserror`, so that every other crate
//! (index, store, eval, extractors) can agree on identifiers, modalities, templates and
//! scores without pulling in each other.
//!
//! ```
//! use huella_core::{AlgorithmId, Embedding, Modality, FingerPosition, Template};
//!
//! # fn main() -> Result<(), huella_core::CoreError> {
//! let model = AlgorithmId::new("demo-face", "1.0")?;
//! let a = Embedding::new(vec![3.0, 4.0])?;          // normalised on construction
//! assert!((a.as_slice()[0] - 0.6).abs() < 1e-6);
//! let t = Template::from_embedding(Modality::Face, model.clone(), a);
//! assert_eq!(t.dimension(), Some(2));
//! assert_eq!(Modality::Finger(FingerPosition::RightIndex).to_string(), "finger:2");
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod embedding;
mod error;
mod ids;
mod modality;
mod score;
mod template;
mod traits;

pub use embedding::{Embedding, MAX_DIMENSION};
pub use error::CoreError;
pub use ids::{EncounterId, SubjectId, TemplateId, MAX_SUBJECT_ID_LEN};
pub use modality::{FingerPosition, Modality};
pub use score::{Candidate, ModalityScore, Score};
pub use template::{AlgorithmId, Template, TemplatePayload, MAX_TEMPLATE_BYTES};
pub use traits::{Comparator, CosineComparator, Extractor};
