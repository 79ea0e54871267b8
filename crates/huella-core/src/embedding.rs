//! Unit-length feature vectors.

use crate::CoreError;
use serde::{Deserialize, Serialize};

/// Largest accepted embedding dimension. Bounds every allocation made from an
/// untrusted dimension field.
pub const MAX_DIMENSION: usize = 4096;

/// A feature vector of unit Euclidean length.
///
/// Invariants, checked at construction and on deserialisation: 1 to [`MAX_DIMENSION`]
/// components, every component finite, and length 1 (within f32 rounding). The dot
/// product of two embeddings is therefore their cosine similarity, in [-1, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<f32>", into = "Vec<f32>")]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Check `values` and scale them to unit length.
    ///
    /// Errors: [`CoreError::BadDimension`] for an empty or oversized vector,
    /// [`CoreError::NonFinite`] for NaN or infinity, [`CoreError::ZeroVector`] when the
    /// length is zero or too small to normalise reliably.
    pub fn new(mut values: Vec<f32>) -> Result<Self, CoreError> {
        if values.is_empty() || values.len() > MAX_DIMENSION {
            return Err(CoreError::BadDimension {
                received: values.len(),
                max: MAX_DIMENSION,
            });
        }
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(CoreError::NonFinite { index });
        }
        // Accumulate in f64: f32 squares of large components could overflow to inf.
        let norm = values
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        if !(norm.is_finite() && norm > 1e-12) {
            return Err(CoreError::ZeroVector);
        }
        for v in &mut values {
            *v = (f64::from(*v) / norm) as f32;
        }
        Ok(Self(values))
    }

    /// Like [`Embedding::new`], and also require a given dimension.
    pub fn with_dimension(values: Vec<f32>, expected: usize) -> Result<Self, CoreError> {
        if values.len() != expected {
            return Err(CoreError::WrongDimension {
                expected,
                received: values.len(),
            });
        }
        Self::new(values)
    }

    /// Number of components.
    pub fn dimension(&self) -> usize {
        self.0.len()
    }

    /// The unit-length components.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// Give up the components.
    pub fn into_vec(self) -> Vec<f32> {
        self.0
    }

    /// Cosine similarity, in [-1, 1]; errors when dimensions differ.
    pub fn cosine(&self, other: &Embedding) -> Result<f32, CoreError> {
        if self.dimension() != other.dimension() {
            return Err(CoreError::WrongDimension {
                expected: self.dimension(),
                received: other.dimension(),
            });
        }
        let dot: f32 = self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum();
        Ok(dot.clamp(-1.0, 1.0))
    }
}

impl TryFrom<Vec<f32>> for Embedding {
    type Error = CoreError;
    fn try_from(values: Vec<f32>) -> Result<Self, CoreError> {
        Self::new(values)
    }
}

impl From<Embedding> for Vec<f32> {
    fn from(e: Embedding) -> Vec<f32> {
        e.0
    }
}

impl AsRef<[f32]> for Embedding {
    fn as_ref(&self) -> &[f32] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_vectors() {
        assert_eq!(
            Embedding::new(vec![]),
            Err(CoreError::BadDimension {
                received: 0,
                max: MAX_DIMENSION
            })
        );
        assert_eq!(Embedding::new(vec![0.0; 8]), Err(CoreError::ZeroVector));
        assert_eq!(
            Embedding::new(vec![1.0, f32::NAN]),
            Err(CoreError::NonFinite { index: 1 })
        );
        assert_eq!(
            Embedding::new(vec![f32::INFINITY]),
            Err(CoreError::NonFinite { index: 0 })
        );
        assert!(matches!(
            Embedding::with_dimension(vec![1.0; 3], 4),
            Err(CoreError::WrongDimension {
                expected: 4,
                received: 3
            })
        ));
        assert!(Embedding::new(vec![1.0; MAX_DIMENSION + 1]).is_err());
        // Huge but finite components must not overflow to a zero or NaN embedding.
        let e = Embedding::new(vec![f32::MAX, f32::MAX]).unwrap();
        assert!((e.as_slice()[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    }

    #[test]
    fn deserialisation_enforces_invariants() {
        assert!(serde_json::from_str::<Embedding>("[0.0, 0.0]").is_err());
        let e: Embedding = serde_json::from_str("[0.0, 2.0]").unwrap();
        assert_eq!(e.as_slice(), &[0.0, 1.0]);
    }

    proptest! {
        #[test]
        fn normalised_and_cosine_bounded(a in prop::collection::vec(-1e3f32..1e3, 1..64)) {
            prop_assume!(a.iter().any(|v| v.abs() > 1e-3));
            let e = Embedding::new(a.clone()).unwrap();
            let n: f32 = e.as_slice().iter().map(|v| v * v).sum();
            prop_assert!((n - 1.0).abs() < 1e-4);
            let c = e.cosine(&e).unwrap();
            prop_assert!((c - 1.0).abs() < 1e-4 && c <= 1.0);
        }
    }
}
