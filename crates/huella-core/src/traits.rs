//! The two traits every biometric algorithm implements.

use crate::{AlgorithmId, CoreError, Score, Template, TemplatePayload};

/// Turns a sample (an image, a decoded record) into a [`Template`].
pub trait Extractor: Send + Sync {
    /// What the extractor reads.
    type Input: ?Sized;
    /// Why extraction failed (no biometric found, low quality, corrupt input...).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The algorithm and model version stamped on every template produced.
    fn algorithm(&self) -> &AlgorithmId;

    /// Extract one template.
    fn extract(&self, input: &Self::Input) -> Result<Template, Self::Error>;
}

/// Compares two templates of its own algorithm. Higher scores mean more alike.
pub trait Comparator: Send + Sync {
    /// The algorithm whose templates this comparator understands.
    fn algorithm(&self) -> &AlgorithmId;

    /// Compare two templates; templates of another algorithm or modality are a
    /// [`CoreError::ModelMismatch`] / [`CoreError::ModalityMismatch`], never a score.
    fn compare(&self, a: &Template, b: &Template) -> Result<Score, CoreError>;
}

/// Cosine similarity between embedding templates of one algorithm.
#[derive(Debug, Clone)]
pub struct CosineComparator {
    algorithm: AlgorithmId,
}

impl CosineComparator {
    /// A comparator for embeddings made by `algorithm`.
    pub fn new(algorithm: AlgorithmId) -> Self {
        Self { algorithm }
    }
}

impl Comparator for CosineComparator {
    fn algorithm(&self) -> &AlgorithmId {
        &self.algorithm
    }

    fn compare(&self, a: &Template, b: &Template) -> Result<Score, CoreError> {
        a.check_comparable(b)?;
        if a.algorithm() != &self.algorithm {
            return Err(CoreError::ModelMismatch {
                expected: self.algorithm.to_string(),
                found: a.algorithm().to_string(),
            });
        }
        match (a.payload(), b.payload()) {
            (TemplatePayload::Embedding(x), TemplatePayload::Embedding(y)) => {
                Score::new(x.cosine(y)?)
            }
            _ => Err(CoreError::Invalid {
                field: "template payload",
                reason: "cosine comparison needs embedding payloads".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Embedding, Modality};

    #[test]
    fn cosine_comparator_scores_and_guards() {
        let alg = AlgorithmId::new("m", "1").unwrap();
        let t = |v: Vec<f32>| {
            Template::from_embedding(Modality::Face, alg.clone(), Embedding::new(v).unwrap())
        };
        let c = CosineComparator::new(alg.clone());
        let s = c.compare(&t(vec![1.0, 0.0]), &t(vec![1.0, 1.0])).unwrap();
        assert!((s.value() - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        let other = CosineComparator::new(AlgorithmId::new("m", "2").unwrap());
        assert!(matches!(
            other.compare(&t(vec![1.0]), &t(vec![1.0])),
            Err(CoreError::ModelMismatch { .. })
        ));
    }
}
