//! Face: detect, align, embed, quality.
//!
//! [`FacePipeline`] turns a photo into a face [`huella_core::Template`]:
//! BlazeFace finds every face ([`Detector`]), dlib's regression-tree cascade places five
//! landmarks ([`ShapePredictor`]), a similarity transform cuts dlib's canonical 150x150
//! crop ([`chip_transform`]), and dlib's ResNet embeds it and a tighter mirrored crop ([`Embedder`], 128-d, unit norm,
//! compared by cosine). A [`Quality`] record in the spirit of ISO/IEC 29794-5 comes with
//! every face. No face is [`FaceError::NoBiometricFound`], never a zero vector.
//!
//! ```no_run
//! use huella_face::{FaceConfig, FaceModels, FacePipeline};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let models = FaceModels::from_dir(std::path::Path::new("models"))?;
//! let pipeline = FacePipeline::new(&models, FaceConfig::default())?;
//! let sample = pipeline.extract_bytes(&std::fs::read("photo.jpg")?)?;
//! println!("quality {} of 100, {} faces in the image", sample.face.quality.summary, sample.faces_found);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod align;
mod detect;
mod embed;
mod error;
mod landmarks;
mod pipeline;
mod quality;

pub use align::{chip, chip_transform, template_points, zoomed, CHIP_PADDING, CHIP_SIZE};
pub use detect::{iou, Detection, Detector, DetectorSettings, Keypoints};
pub use embed::{Embedder, DIMENSION};
pub use error::FaceError;
pub use landmarks::{BoxF, ShapePredictor};
pub use pipeline::{
    files, Face, FaceConfig, FaceModels, FacePipeline, FaceSample, PROBE_AREA_SHARE,
};
pub use quality::{Components, Quality};
