//! Identification with a probe that holds a face and fingers: score-level fusion.
//!
//! 1. **Candidates.** The face is searched in the face index and each finger through the
//!    finger gallery, each for `max_candidates x 4` hits; their subjects are the
//!    candidates (so a person whose face changed but whose fingers match is found, and
//!    the other way round).
//! 2. **Exact re-scoring.** Every candidate subject is compared on every modality with
//!    all its templates: the best face cosine, and for each probe finger the best
//!    matcher score among the subject's fingers at that position (all of them for a
//!    probe finger of unknown position).
//! 3. **Normalisation and fusion.** Each raw score becomes a level, `-log10` of its
//!    false match rate on the gallery's own impostor scores, and the levels are fused
//!    with Fisher's method (see [`crate::fusion`]); a finger compared with `m` of the
//!    subject's fingers is a best-of-`m` and pays `log10(m)`. The fused level ranks the
//!    candidates and is the candidate's score; [`Candidate::scores`] carries each raw
//!    score with its level so a reviewer sees which modality carried the match.
//!
//! The impostor models are sampled from the gallery as de-duplication samples them (random
//! pairs of records under different subject ids), then cached: they are rebuilt when
//! the number of records moved by more than a quarter since (or at every change while
//! the gallery holds fewer than [`EXACT_MODELS_UP_TO`] records), so enrolling `N`
//! records costs `O(N)` sampling work in total. A modality with too few records for a
//! model (fewer than [`crate::fusion::MIN_IMPOSTOR_SAMPLE`] impostor scores) contributes
//! no level; with no model at all the candidates rank by their raw scores.

use std::collections::BTreeSet;
use std::sync::Arc;

use huella_core::{
    Candidate, Embedding, FingerPosition, Modality, ModalityScore, Score, SubjectId, Template,
    TemplateId,
};
use huella_finger::PreparedFinger;
use huella_index::{IdFilter, SearchParams};

use crate::fingerprint::is_finger_template;
use crate::fusion::{self, ScoreModels};
use crate::indexes::embedding_of;
use crate::{Engine, EngineError, Family, IdentifyOptions};

/// Below this many records the impostor models are rebuilt at every change.
pub const EXACT_MODELS_UP_TO: u64 = 200;
/// Index hits fetched per requested candidate, per probe part.
const HITS_PER_CANDIDATE: usize = 4;

/// Impostor models with the record count they were sampled at.
#[derive(Debug, Default)]
pub(crate) struct ModelCache(Option<(u64, Arc<ScoreModels>)>);

impl ModelCache {
    fn fresh(&self, records: u64) -> Option<Arc<ScoreModels>> {
        let (at, models) = self.0.as_ref()?;
        let stale = if *at < EXACT_MODELS_UP_TO {
            records != *at
        } else {
            records * 4 > at * 5 || records * 5 < at * 4
        };
        (!stale).then(|| models.clone())
    }
}

/// A candidate subject being re-scored.
struct Scored {
    subject: SubjectId,
    fused: f64,
    /// Raw evidence for ties (no model): the face score, then the mean finger score.
    raw: (f32, f32),
    best: (huella_core::EncounterId, TemplateId, Modality),
    scores: Vec<ModalityScore>,
}

impl Engine {
    /// The gallery's impostor models, from the cache when still representative.
    pub(crate) fn score_models(&self) -> Result<Arc<ScoreModels>, EngineError> {
        let records = self.gallery().stats()?.encounters;
        let mut cache = self.score_models.lock();
        if let Some(m) = cache.fresh(records) {
            return Ok(m);
        }
        let models = Arc::new(self.sample_score_models()?);
        tracing::debug!(records, "impostor models sampled");
        cache.0 = Some((records, models.clone()));
        Ok(models)
    }

    /// 1:N with a probe of face and finger templates (see the [module docs](self)).
    pub(crate) fn identify_fused(
        &self,
        probe: &[Template],
        opts: &IdentifyOptions,
        filter: Option<&IdFilter>,
    ) -> Result<Vec<Candidate>, EngineError> {
        let models = self.score_models()?;
        if probe.iter().any(is_finger_template) {
            self.finger_gallery()?; // the typed error of a gallery without fingers
        }
        let (index_lock, finger_lock) = self.search_parts();
        let indexes = index_lock.read();
        let fingers = finger_lock.map(|f| f.read());
        let face_slot = indexes.iter().position(|m| m.model.family == Family::Face);

        // The probe's parts.
        let mut probe_faces: Vec<Embedding> = Vec::new();
        let mut probe_fingers: Vec<(FingerPosition, PreparedFinger)> = Vec::new();
        for t in probe {
            if is_finger_template(t) {
                let Modality::Finger(pos) = t.modality() else {
                    continue;
                };
                // Checked above: a finger probe comes with a finger gallery.
                let Some(gallery) = &fingers else { continue };
                probe_fingers.push((pos, gallery.prepare(t)?));
                continue;
            }
            let slot = face_slot.ok_or_else(|| {
                EngineError::Unsupported("fusion needs a face model in the gallery".into())
            })?;
            match embedding_of(&indexes[slot].model, t) {
                Some(e) => probe_faces.push(e.clone()),
                None => {
                    return Err(EngineError::Unsupported(format!(
                        "fusion compares faces of the gallery's face model {}; the probe holds a {} template of {}",
                        indexes[slot].model.algorithm,
                        t.modality(),
                        t.algorithm()
                    )))
                }
            }
        }

        // 1. Candidate subjects from every part of the probe.
        let k = opts.max_candidates * HITS_PER_CANDIDATE;
        let mut ids: Vec<TemplateId> = Vec::new();
        if let Some(slot) = face_slot {
            for e in &probe_faces {
                let params = SearchParams {
                    k,
                    min_score: None,
                    filter,
                };
                ids.extend(
                    indexes[slot]
                        .index
                        .get()
                        .search(e, &params)?
                        .iter()
                        .map(|h| h.id),
                );
            }
        }
        for (_, p) in &probe_fingers {
            if let Some(f) = &fingers {
                ids.extend(f.search(p, k, filter).iter().map(|h| h.id));
            }
        }
        let subjects: BTreeSet<SubjectId> = self
            .gallery()
            .templates_meta(&ids)?
            .into_iter()
            .flatten()
            .map(|o| o.subject)
            .collect();

        // 2-3. Exact re-scoring of each candidate subject, levels, fusion.
        let probe_fingers: Vec<(FingerPosition, &PreparedFinger)> =
            probe_fingers.iter().map(|(pos, p)| (*pos, p)).collect();
        let mut scored = Vec::with_capacity(subjects.len());
        for subject in subjects {
            let mut face_embs: Vec<Embedding> = Vec::new();
            let mut face_owner: Vec<(huella_core::EncounterId, TemplateId)> = Vec::new();
            let mut subject_fingers: Vec<(FingerPosition, &PreparedFinger)> = Vec::new();
            let mut finger_owner: Vec<(huella_core::EncounterId, TemplateId)> = Vec::new();
            let held: Vec<(huella_core::EncounterId, TemplateId)> = self
                .gallery()
                .subject_encounters(&subject)?
                .into_iter()
                .flat_map(|e| e.templates.into_iter().map(move |id| (e.id, id)))
                .collect();
            let ids: Vec<TemplateId> = held.iter().map(|h| h.1).collect();
            for (&(encounter, id), meta) in held.iter().zip(self.gallery().templates_meta(&ids)?) {
                let Some(meta) = meta else { continue };
                let prepared = fingers.as_ref().and_then(|f| f.prepared_of(id));
                match (meta.modality, prepared, face_slot) {
                    (Modality::Finger(pos), Some(p), _) => {
                        subject_fingers.push((pos, p));
                        finger_owner.push((encounter, id));
                    }
                    (Modality::Face, _, Some(slot)) if !probe_faces.is_empty() => {
                        if let Some(t) = self.gallery().template(id)? {
                            if let Some(emb) = embedding_of(&indexes[slot].model, &t.template) {
                                face_embs.push(emb.clone());
                                face_owner.push((encounter, id));
                            }
                        }
                    }
                    _ => {}
                }
            }
            let face = fusion::best_face(&probe_faces, &face_embs);
            let finger_scores = match &fingers {
                Some(f) => fusion::finger_scores(f.matcher(), &probe_fingers, &subject_fingers),
                None => Vec::new(),
            };
            let levels = models.levels(face.map(|(s, _)| s), &finger_scores);
            let mut scores = Vec::new();
            if let Some((s, _)) = face {
                scores.push(ModalityScore {
                    modality: Modality::Face,
                    score: Score::new(s)?,
                    compared: face_embs.len() as u32,
                    level: levels.face,
                });
            }
            for (f, level) in finger_scores.iter().zip(&levels.fingers) {
                scores.push(ModalityScore {
                    modality: Modality::Finger(f.position),
                    score: Score::new(f.score)?,
                    compared: f.compared as u32,
                    level: *level,
                });
            }
            let best_finger = finger_scores
                .iter()
                .max_by(|a, b| a.score.total_cmp(&b.score))
                .map(|f| {
                    (
                        finger_owner[f.best],
                        Modality::Finger(subject_fingers[f.best].0),
                    )
                });
            let best = match face {
                Some((_, j)) => (face_owner[j], Modality::Face),
                None => match best_finger {
                    Some(b) => b,
                    None => continue, // nothing comparable (e.g. other finger positions)
                },
            };
            scored.push(Scored {
                subject,
                fused: levels.fused,
                raw: (
                    face.map_or(f32::MIN, |(s, _)| s),
                    fusion::mean_score(&finger_scores).unwrap_or(f32::MIN),
                ),
                best: (best.0 .0, best.0 .1, best.1),
                scores,
            });
        }
        drop(indexes);

        scored.retain(|c| opts.threshold.is_none_or(|t| c.fused >= f64::from(t)));
        scored.sort_by(|a, b| {
            b.fused
                .total_cmp(&a.fused)
                .then(b.raw.0.total_cmp(&a.raw.0))
                .then(b.raw.1.total_cmp(&a.raw.1))
                .then(a.subject.cmp(&b.subject))
        });
        scored
            .into_iter()
            .take(opts.max_candidates)
            .enumerate()
            .map(|(i, c)| {
                Ok(Candidate {
                    rank: i as u32 + 1,
                    subject: c.subject,
                    encounter: c.best.0,
                    template: c.best.1,
                    modality: c.best.2,
                    score: Score::new(c.fused as f32)?,
                    scores: c.scores,
                })
            })
            .collect()
    }
}
