//! Face images in, templates and candidates out: the engine side of `huella-face`.

use std::sync::Arc;

use huella_core::{Candidate, Score};
use huella_face::{FacePipeline, FaceSample};

use crate::config::{EmbeddingModel, Family};
use crate::engine::{Engine, IdentifyOptions};
use crate::error::EngineError;

/// What to do with a face whose quality summary is below the pipeline's minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QualityPolicy {
    /// Refuse it with [`EngineError::LowQuality`] (the default: never enrol silently).
    #[default]
    Reject,
    /// Use it anyway; the sample still carries its `low_quality` flag.
    Accept,
}

/// A 1:1 comparison of two face images.
#[derive(Debug, Clone)]
pub struct FaceComparison {
    /// Cosine similarity of the two embeddings (higher = more alike).
    pub score: Score,
    /// The first image's face.
    pub a: FaceSample,
    /// The second image's face.
    pub b: FaceSample,
}

/// The embedding model a face pipeline's templates belong to.
pub fn face_model(pipeline: &FacePipeline) -> EmbeddingModel {
    EmbeddingModel {
        family: Family::Face,
        algorithm: pipeline.algorithm().clone(),
        dimension: huella_face::DIMENSION,
    }
}

/// Extracts the probe face of an encoded image under a quality policy.
pub fn face_sample(
    pipeline: &FacePipeline,
    image: &[u8],
    policy: QualityPolicy,
) -> Result<FaceSample, EngineError> {
    let sample = pipeline.extract_bytes(image)?;
    if sample.low_quality && policy == QualityPolicy::Reject {
        return Err(EngineError::LowQuality {
            summary: sample.face.quality.summary,
            min: pipeline.min_quality(),
        });
    }
    Ok(sample)
}

/// Compares the probe faces of two encoded images (a document portrait against a live
/// capture, say); needs no gallery.
pub fn compare_faces(
    pipeline: &FacePipeline,
    a: &[u8],
    b: &[u8],
    policy: QualityPolicy,
) -> Result<FaceComparison, EngineError> {
    let a = face_sample(pipeline, a, policy)?;
    let b = face_sample(pipeline, b, policy)?;
    let cos = a
        .template
        .embedding()
        .zip(b.template.embedding())
        .map(|(x, y)| x.cosine(y))
        .transpose()?;
    let score = Score::new(cos.unwrap_or(-1.0).clamp(-1.0, 1.0))?;
    Ok(FaceComparison { score, a, b })
}

impl Engine {
    /// The face pipeline given to the builder, or [`EngineError::Unsupported`].
    pub fn face(&self) -> Result<&Arc<FacePipeline>, EngineError> {
        self.face.as_ref().ok_or_else(|| {
            EngineError::Unsupported("no face models were given to the engine builder".into())
        })
    }

    /// The probe face of an encoded image, ready to enrol as a template.
    pub fn face_sample(
        &self,
        image: &[u8],
        policy: QualityPolicy,
    ) -> Result<FaceSample, EngineError> {
        face_sample(self.face()?, image, policy)
    }

    /// 1:N search with the probe face of an encoded image.
    pub fn identify_face(
        &self,
        image: &[u8],
        policy: QualityPolicy,
        opts: &IdentifyOptions,
    ) -> Result<(FaceSample, Vec<Candidate>), EngineError> {
        let sample = self.face_sample(image, policy)?;
        let candidates = self.identify(std::slice::from_ref(&sample.template), opts)?;
        Ok((sample, candidates))
    }

    /// 1:1 comparison of the probe faces of two encoded images.
    pub fn verify_faces(
        &self,
        a: &[u8],
        b: &[u8],
        policy: QualityPolicy,
    ) -> Result<FaceComparison, EngineError> {
        compare_faces(self.face()?, a, b, policy)
    }
}
