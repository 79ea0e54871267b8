//! Comparison scores and candidate lists.

use crate::{CoreError, EncounterId, Modality, SubjectId, TemplateId};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// A comparison score. **Higher means more alike.**
///
/// Always finite (NaN never reaches a sort). Its range depends on the comparator
/// that produced it; for embeddings it is the cosine similarity in [-1, 1].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f32", into = "f32")]
pub struct Score(f32);

impl Score {
    /// Wrap a finite value; NaN and infinities are rejected.
    pub fn new(value: f32) -> Result<Self, CoreError> {
        if value.is_finite() {
            Ok(Self(value))
        } else {
            Err(CoreError::NonFinite { index: 0 })
        }
    }

    /// The raw value.
    pub fn value(self) -> f32 {
        self.0
    }

    /// Total order, best (highest) first when used with `sort_by`.
    pub fn best_first(a: &Score, b: &Score) -> Ordering {
        b.0.total_cmp(&a.0)
    }
}

impl TryFrom<f32> for Score {
    type Error = CoreError;
    fn try_from(v: f32) -> Result<Self, CoreError> {
        Self::new(v)
    }
}

impl From<Score> for f32 {
    fn from(s: Score) -> f32 {
        s.0
    }
}

/// One entry of a ranked candidate list returned by identification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// 1-based rank in the list (1 = best).
    pub rank: u32,
    /// The subject the matching template is enrolled under.
    pub subject: SubjectId,
    /// The encounter that holds the best-matching template of this subject.
    pub encounter: EncounterId,
    /// The best-matching template of this subject.
    pub template: TemplateId,
    /// Modality of the best-matching template.
    pub modality: Modality,
    /// The subject's ranking score (higher = more alike): the best raw score for a
    /// one-modality probe (cosine for faces, MCC mean over the probe's fingers), the
    /// fused level (`-log10` of the estimated false match rate) for a probe mixing
    /// face and fingers.
    pub score: Score,
    /// Why it matched: the subject's score for each part of the probe (the face, each
    /// probe finger), so that a reviewer sees which modality carried the match.
    #[serde(default)]
    pub scores: Vec<ModalityScore>,
}

/// One modality's contribution to a candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModalityScore {
    /// The probe part: `face`, or the probe finger's position.
    pub modality: Modality,
    /// The best raw score of the subject's templates for it (higher = more alike).
    pub score: Score,
    /// Templates of the subject it was compared with.
    pub compared: u32,
    /// The score normalised on the gallery's impostor scores: `-log10` of the estimated
    /// false match rate (a level of 4 means one impostor comparison in 10,000 scores
    /// this high). Present when the search normalised scores (fused probes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_finite_and_sort_best_first() {
        assert!(Score::new(f32::NAN).is_err());
        assert!(Score::new(f32::NEG_INFINITY).is_err());
        let mut v: Vec<Score> = [0.1, 0.9, -0.5]
            .iter()
            .map(|&x| Score::new(x).unwrap())
            .collect();
        v.sort_by(Score::best_first);
        assert_eq!(
            v.iter().map(|s| s.value()).collect::<Vec<_>>(),
            vec![0.9, 0.1, -0.5]
        );
        assert!(serde_json::from_str::<Score>("1e39").is_err());
    }
}
