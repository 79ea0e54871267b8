//! Templates: what an extractor produced, tagged with the algorithm that produced it.

use crate::{CoreError, Embedding, Modality};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Largest accepted opaque template payload, in bytes (1 MiB). A minutiae record with
/// the ISO maximum of 255 minutiae and extended data is far smaller.
pub const MAX_TEMPLATE_BYTES: usize = 1 << 20;

/// Names the algorithm and model version that made a template, e.g. `dlib-resnet@1`.
///
/// Both parts are 1 to 64 bytes of ASCII letters, digits and `-_.+`. Two templates are
/// comparable only when their `AlgorithmId`s are equal: the day a model changes, old
/// templates must be re-extracted, never silently scored against new ones.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlgorithmId {
    name: String,
    version: String,
}

impl AlgorithmId {
    /// Validate and build an algorithm id.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Result<Self, CoreError> {
        let (name, version) = (name.into(), version.into());
        check_token("algorithm name", &name)?;
        check_token("algorithm version", &version)?;
        Ok(Self { name, version })
    }

    /// The algorithm's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The algorithm's version.
    pub fn version(&self) -> &str {
        &self.version
    }
}

impl fmt::Display for AlgorithmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

impl std::str::FromStr for AlgorithmId {
    type Err = CoreError;
    /// Parses `name@version`.
    fn from_str(s: &str) -> Result<Self, CoreError> {
        let (name, version) = s.split_once('@').ok_or_else(|| CoreError::Invalid {
            field: "algorithm id",
            reason: format!("{s:?} is not of the form name@version"),
        })?;
        Self::new(name, version)
    }
}

fn check_token(field: &'static str, s: &str) -> Result<(), CoreError> {
    let ok_len = (1..=64).contains(&s.len());
    let ok_chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(CoreError::Invalid {
            field,
            reason: format!("{s:?} must be 1-64 characters of A-Z a-z 0-9 - _ . +"),
        })
    }
}

/// The biometric content of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplatePayload {
    /// A unit-length feature vector (face embeddings, fixed-length finger codes).
    Embedding(Embedding),
    /// An encoded record (for example an ISO/IEC 19794-2 minutiae record) that only
    /// the algorithm named in the template can interpret.
    Opaque(Vec<u8>),
}

/// A biometric template: modality, the algorithm that made it, and its payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawTemplate")]
pub struct Template {
    modality: Modality,
    algorithm: AlgorithmId,
    payload: TemplatePayload,
}

#[derive(Deserialize)]
struct RawTemplate {
    modality: Modality,
    algorithm: AlgorithmId,
    payload: TemplatePayload,
}

impl TryFrom<RawTemplate> for Template {
    type Error = CoreError;
    fn try_from(raw: RawTemplate) -> Result<Self, CoreError> {
        Template::new(raw.modality, raw.algorithm, raw.payload)
    }
}

impl Template {
    /// Build a template; an empty or oversized opaque payload is rejected.
    pub fn new(
        modality: Modality,
        algorithm: AlgorithmId,
        payload: TemplatePayload,
    ) -> Result<Self, CoreError> {
        if let TemplatePayload::Opaque(bytes) = &payload {
            if bytes.is_empty() || bytes.len() > MAX_TEMPLATE_BYTES {
                return Err(CoreError::Invalid {
                    field: "template payload",
                    reason: format!("{} bytes outside 1..={MAX_TEMPLATE_BYTES}", bytes.len()),
                });
            }
        }
        Ok(Self {
            modality,
            algorithm,
            payload,
        })
    }

    /// A template holding an embedding (always valid).
    pub fn from_embedding(modality: Modality, algorithm: AlgorithmId, e: Embedding) -> Self {
        Self {
            modality,
            algorithm,
            payload: TemplatePayload::Embedding(e),
        }
    }

    /// The modality.
    pub fn modality(&self) -> Modality {
        self.modality
    }

    /// The algorithm and version that made this template.
    pub fn algorithm(&self) -> &AlgorithmId {
        &self.algorithm
    }

    /// The payload.
    pub fn payload(&self) -> &TemplatePayload {
        &self.payload
    }

    /// The embedding, when the payload is one.
    pub fn embedding(&self) -> Option<&Embedding> {
        match &self.payload {
            TemplatePayload::Embedding(e) => Some(e),
            TemplatePayload::Opaque(_) => None,
        }
    }

    /// The embedding dimension, when the payload is an embedding.
    pub fn dimension(&self) -> Option<usize> {
        self.embedding().map(Embedding::dimension)
    }

    /// Errors unless `other` has the same modality family and the same algorithm.
    ///
    /// Fingers at different positions are comparable (positions are often mislabelled
    /// on legacy cards); a face never is with a finger.
    pub fn check_comparable(&self, other: &Template) -> Result<(), CoreError> {
        let family = |m: Modality| matches!(m, Modality::Face);
        if family(self.modality) != family(other.modality) {
            return Err(CoreError::ModalityMismatch {
                expected: self.modality.to_string(),
                found: other.modality.to_string(),
            });
        }
        if self.algorithm != other.algorithm {
            return Err(CoreError::ModelMismatch {
                expected: self.algorithm.to_string(),
                found: other.algorithm.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FingerPosition;

    fn alg(v: &str) -> AlgorithmId {
        AlgorithmId::new("m", v).unwrap()
    }

    #[test]
    fn algorithm_ids_are_validated() {
        assert_eq!(
            "dlib-resnet@1.0".parse::<AlgorithmId>().unwrap().version(),
            "1.0"
        );
        assert!("no-version".parse::<AlgorithmId>().is_err());
        assert!(AlgorithmId::new("", "1").is_err());
        assert!(AlgorithmId::new("a b", "1").is_err());
        assert!(AlgorithmId::new("a", "x".repeat(65)).is_err());
    }

    #[test]
    fn templates_of_other_models_are_not_comparable() {
        let e = Embedding::new(vec![1.0, 0.0]).unwrap();
        let a = Template::from_embedding(Modality::Face, alg("1"), e.clone());
        let b = Template::from_embedding(Modality::Face, alg("2"), e.clone());
        assert!(matches!(
            a.check_comparable(&b),
            Err(CoreError::ModelMismatch { .. })
        ));
        let f = Template::from_embedding(Modality::Finger(FingerPosition::LeftThumb), alg("1"), e);
        assert!(matches!(
            a.check_comparable(&f),
            Err(CoreError::ModalityMismatch { .. })
        ));
        assert!(a.check_comparable(&a.clone()).is_ok());
    }

    #[test]
    fn opaque_payload_limits_hold_through_serde() {
        assert!(Template::new(Modality::Face, alg("1"), TemplatePayload::Opaque(vec![])).is_err());
        let t = Template::new(
            Modality::Face,
            alg("1"),
            TemplatePayload::Opaque(vec![1, 2]),
        )
        .unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Template>(&json).unwrap(), t);
        let empty = json.replace("[1,2]", "[]");
        assert!(serde_json::from_str::<Template>(&empty).is_err());
    }
}
