//! The engine: enrolment with de-duplication, identification, verification.

use crate::config::{models_from_setting, models_to_setting};
use crate::fingerprint::{finger_model, is_finger_template, FingerGallery};
use crate::indexes::{embedding_of, IndexSettings, ModelIndex};
use crate::{ConfigError, EmbeddingModel, EngineBuilder, EngineError, Family};
use huella_core::{
    Candidate, Comparator, CosineComparator, Embedding, ModalityScore, Score, SubjectId, Template,
    TemplateId,
};
use huella_index::{Hit, IdFilter, SearchParams};
use huella_store::{
    Gallery, GalleryStats, MergeOutcome, NewEncounter, StoreError, StoredEncounter,
};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

pub(crate) const SETTING_MODELS: &str = "models";
/// Present when the gallery holds fingers: the finger algorithm it was created with.
const SETTING_FINGERS: &str = "fingers";
/// Largest candidate list a caller may ask for.
pub const MAX_CANDIDATES: usize = 1000;
/// Index hits fetched per requested candidate: a subject with several encounters
/// occupies several hits, so the index is asked for more hits than subjects wanted.
const HITS_PER_CANDIDATE: usize = 4;

/// Options for identification (and the search made before each enrolment).
#[derive(Debug, Clone)]
pub struct IdentifyOptions {
    /// Longest candidate list returned (1..=[`MAX_CANDIDATES`]). Default 10.
    pub max_candidates: usize,
    /// Only return candidates scoring at least this. Default none. Face and other
    /// embedding scores are cosines in [-1, 1]; finger scores are MCC similarities in
    /// [0, 1], averaged over the probe's fingers.
    pub threshold: Option<f32>,
    /// Only search among these subjects (for example, the records sharing a claimed
    /// name or document number). Default: the whole gallery.
    pub restrict_to: Option<Vec<SubjectId>>,
    /// Score every candidate as a fused level (`-log10` of the estimated false match
    /// rate on the gallery's impostor scores, see [`crate::fused`]), the path a probe
    /// mixing face and fingers always takes, even when the probe holds one modality:
    /// scores then compare across probes whatever each holds (a missing face, a
    /// failed finger). `threshold` is then a level. Default false.
    pub fused_scores: bool,
}

impl Default for IdentifyOptions {
    fn default() -> Self {
        Self {
            max_candidates: 10,
            threshold: None,
            restrict_to: None,
            fused_scores: false,
        }
    }
}

/// What an enrolment did: the stored encounter and who it resembled before it was added.
#[derive(Debug, Clone, Serialize)]
pub struct Enrolment {
    /// The stored encounter with its assigned ids.
    pub encounter: StoredEncounter,
    /// Candidates found in the gallery before this encounter was inserted, best first.
    /// A candidate under another subject id is a possible duplicate identity.
    pub candidates: Vec<Candidate>,
}

/// Size and memory of one model's index.
#[derive(Debug, Clone, Serialize)]
pub struct IndexStats {
    /// The model, `family:name@version:dimension`.
    pub model: String,
    /// `flat` or `hnsw`.
    pub kind: &'static str,
    /// Live vectors.
    pub vectors: usize,
    /// Deleted vectors still held as graph waypoints.
    pub deleted: usize,
    /// Heap memory held by the index.
    pub memory_bytes: usize,
}

/// Gallery and index statistics.
#[derive(Debug, Clone, Serialize)]
pub struct EngineStats {
    /// Counts from the store.
    pub gallery: GalleryStats,
    /// One entry per model.
    pub indexes: Vec<IndexStats>,
}

/// The identification engine over one gallery directory.
///
/// Thread-safe: any number of threads may identify and verify concurrently; enrolment,
/// deletion and merging are serialised by an internal writer lock.
#[derive(Debug)]
pub struct Engine {
    dir: PathBuf,
    gallery: Gallery,
    indexes: RwLock<Vec<ModelIndex>>,
    pub(crate) writer: Mutex<()>,
    /// Searches refused while a model upgrade is under way (see [`crate::rescore`]).
    pub(crate) rescore: crate::rescore::RescoreGuard,
    /// How indexes are made, for those a model upgrade builds.
    pub(crate) index_settings: IndexSettings,
    pub(crate) face: Option<std::sync::Arc<huella_face::FacePipeline>>,
    fingers: Option<RwLock<FingerGallery>>,
    /// Impostor models for fused identification (see [`crate::fused`]).
    pub(crate) score_models: Mutex<crate::fused::ModelCache>,
}

impl Engine {
    /// Start configuring an engine.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    pub(crate) fn open_with(b: EngineBuilder) -> Result<Engine, ConfigError> {
        let dir = b.gallery.clone().ok_or(ConfigError::MissingGallery)?;
        let gallery = match Gallery::open(&dir) {
            Err(StoreError::NotFound { .. }) if b.create => {
                if b.models.is_empty() && !b.fingers {
                    return Err(ConfigError::NoModels);
                }
                let mut settings =
                    BTreeMap::from([(SETTING_MODELS.to_string(), models_to_setting(&b.models))]);
                if b.fingers {
                    settings.insert(SETTING_FINGERS.to_string(), finger_model().to_string());
                }
                Gallery::create(&dir, settings)?
            }
            other => other?,
        };
        let info = gallery.info()?;
        let stored =
            models_from_setting(info.settings.get(SETTING_MODELS).map_or("", String::as_str))?;
        if !b.models.is_empty() && sorted(&b.models) != sorted(&stored) {
            return Err(ConfigError::ModelMismatch {
                gallery: models_to_setting(&stored),
                requested: models_to_setting(&b.models),
            });
        }
        let fingers = match info.settings.get(SETTING_FINGERS) {
            Some(alg) if *alg != finger_model().to_string() => {
                return Err(ConfigError::ModelMismatch {
                    gallery: format!("finger:{alg}"),
                    requested: format!("finger:{}", finger_model()),
                })
            }
            Some(_) => {
                let build = || FingerGallery::build(&gallery, b.finger_short_list_share());
                let built = match &b.pool {
                    Some(pool) => pool.install(build),
                    None => build(),
                };
                Some(RwLock::new(built.map_err(|e| ConfigError::Invalid {
                    setting: "gallery",
                    reason: format!("finger records: {e}"),
                })?))
            }
            None if b.fingers => {
                return Err(ConfigError::Invalid {
                    setting: "fingers",
                    reason: "this gallery was created without fingers".into(),
                })
            }
            None => None,
        };
        let rescore = crate::rescore::RescoreGuard::from_settings(&info.settings, &stored)?;
        let stats = gallery.stats()?;
        let settings = IndexSettings {
            kind: b.index,
            hnsw: b.hnsw,
            flat_scan: b.flat_scan,
        };
        let index_dir = dir.join("index");
        let open_all = || {
            stored
                .iter()
                .map(|m| {
                    let count = stats.templates;
                    ModelIndex::open(&index_dir, m.clone(), &gallery, &settings, count)
                })
                .collect::<Result<Vec<_>, EngineError>>()
        };
        let indexes = match &b.pool {
            Some(pool) => pool.install(open_all),
            None => open_all(),
        }
        .map_err(|e| match e {
            EngineError::Store(s) => ConfigError::Store(s),
            EngineError::Index(i) => ConfigError::Index(i),
            other => ConfigError::Invalid {
                setting: "gallery",
                reason: other.to_string(),
            },
        })?;
        tracing::info!(gallery = %dir.display(), models = indexes.len(), "engine opened");
        Ok(Engine {
            dir,
            gallery,
            indexes: RwLock::new(indexes),
            writer: Mutex::new(()),
            rescore,
            index_settings: settings,
            face: b.face,
            fingers,
            score_models: Mutex::default(),
        })
    }

    /// The gallery directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The models this gallery indexes.
    pub fn models(&self) -> Vec<EmbeddingModel> {
        self.indexes
            .read()
            .iter()
            .map(|i| i.model.clone())
            .collect()
    }

    /// The embedding indexes and the finger gallery, for whole-gallery de-duplication.
    pub(crate) fn search_parts(
        &self,
    ) -> (&RwLock<Vec<ModelIndex>>, Option<&RwLock<FingerGallery>>) {
        (&self.indexes, self.fingers.as_ref())
    }

    /// The underlying store, for read access to encounters and audit data.
    pub fn gallery(&self) -> &Gallery {
        &self.gallery
    }

    /// Enrol an encounter: search the gallery for the person first, then store the
    /// encounter durably and index its templates.
    ///
    /// Returns the stored encounter and the candidates found before insertion (a
    /// candidate under another subject id is a possible false identity; under the
    /// same subject id, a consistent re-encounter). Every template must belong to a
    /// configured model; otherwise nothing is stored.
    pub fn enroll(
        &self,
        encounter: NewEncounter,
        opts: &IdentifyOptions,
    ) -> Result<Enrolment, EngineError> {
        let probe: Vec<Template> = encounter
            .templates
            .iter()
            .map(|t| t.template.clone())
            .collect();
        let _writer = self.writer.lock();
        let candidates = self.identify(&probe, opts)?;
        let stored = self.gallery.add_encounter(encounter)?;
        let mut indexes = self.indexes.write();
        for (id, t) in stored.templates.iter().zip(&probe) {
            if is_finger_template(t) {
                self.finger_gallery()?.write().insert(*id, t)?;
                continue;
            }
            let (slot, e) = model_slot(&indexes, t)?;
            indexes[slot].index.get_mut().insert(*id, e)?;
        }
        tracing::debug!(encounter = %stored.id, candidates = candidates.len(), "enrolled");
        Ok(Enrolment {
            encounter: stored,
            candidates,
        })
    }

    /// 1:N identification: the subjects whose templates best match any template of the
    /// probe, best first, one entry per subject carrying its best-matching template.
    pub fn identify(
        &self,
        probe: &[Template],
        opts: &IdentifyOptions,
    ) -> Result<Vec<Candidate>, EngineError> {
        if probe.is_empty() {
            return Err(EngineError::BadInput("the probe holds no template".into()));
        }
        self.rescore.check(probe)?;
        if !(1..=MAX_CANDIDATES).contains(&opts.max_candidates) {
            return Err(EngineError::BadInput(format!(
                "max_candidates {} outside 1..={MAX_CANDIDATES}",
                opts.max_candidates
            )));
        }
        if let Some(t) = opts.threshold {
            if !t.is_finite() {
                return Err(EngineError::BadInput(
                    "threshold must be a finite number".into(),
                ));
            }
        }
        let filter = match &opts.restrict_to {
            Some(subjects) => Some(self.subject_filter(subjects)?),
            None => None,
        };
        let fingers = probe.iter().filter(|t| is_finger_template(t)).count();
        if opts.fused_scores || (fingers > 0 && fingers < probe.len()) {
            return self.identify_fused(probe, opts, filter.as_ref());
        }
        if fingers == probe.len() {
            return self.identify_fingers(probe, opts, filter.as_ref());
        }
        let indexes = self.indexes.read();
        let mut hits: Vec<Hit> = Vec::new();
        for t in probe {
            let (slot, e) = model_slot(&indexes, t)?;
            let params = SearchParams {
                k: opts.max_candidates * HITS_PER_CANDIDATE,
                min_score: opts.threshold,
                filter: filter.as_ref(),
            };
            hits.extend(indexes[slot].index.get().search(e, &params)?);
        }
        drop(indexes);
        self.rank_subjects(hits, opts.max_candidates)
    }

    pub(crate) fn finger_gallery(&self) -> Result<&RwLock<FingerGallery>, EngineError> {
        self.fingers
            .as_ref()
            .ok_or_else(|| EngineError::UnknownModel {
                algorithm: finger_model().to_string(),
                modality: Family::Finger.to_string(),
                configured: models_to_setting(&self.models()),
            })
    }

    /// 1:N with finger templates: each probe finger is searched on its own; a subject's
    /// score is the mean over the probe's fingers of its best score for that finger
    /// (0 for a finger with no hit on the subject), so that more agreeing fingers rank
    /// higher. Each candidate carries its single best-matching template.
    fn identify_fingers(
        &self,
        probe: &[Template],
        opts: &IdentifyOptions,
        filter: Option<&IdFilter>,
    ) -> Result<Vec<Candidate>, EngineError> {
        let per_finger: Vec<Vec<Hit>> = {
            let fingers = self.finger_gallery()?.read();
            let k = opts.max_candidates * HITS_PER_CANDIDATE;
            probe
                .iter()
                .map(|t| Ok(fingers.search(&fingers.prepare(t)?, k, filter)))
                .collect::<Result<_, EngineError>>()?
        };
        let ids: Vec<TemplateId> = per_finger.iter().flatten().map(|h| h.id).collect();
        let mut owners = self.gallery.templates_meta(&ids)?.into_iter();
        // subject -> (per-finger bests, best single hit and its owner).
        let mut fused: BTreeMap<SubjectId, (Vec<ModalityScore>, Hit, huella_store::TemplateOwner)> =
            BTreeMap::new();
        for (t, hits) in probe.iter().zip(&per_finger) {
            // subject -> (best score for this probe finger, its hits).
            let mut best: BTreeMap<SubjectId, (f32, u32)> = BTreeMap::new();
            for hit in hits {
                // A template deleted between search and lookup has no owner: skip it.
                let Some(owner) = owners.next().flatten() else {
                    continue;
                };
                let b = best.entry(owner.subject.clone()).or_insert((f32::MIN, 0));
                (b.0, b.1) = (b.0.max(hit.score), b.1 + 1);
                let entry =
                    fused
                        .entry(owner.subject.clone())
                        .or_insert((Vec::new(), *hit, owner.clone()));
                if hit.score > entry.1.score {
                    (entry.1, entry.2) = (*hit, owner);
                }
            }
            for (subject, (score, compared)) in best {
                if let Some(e) = fused.get_mut(&subject) {
                    e.0.push(ModalityScore {
                        modality: t.modality(),
                        score: Score::new(score)?,
                        compared,
                        level: None,
                    });
                }
            }
        }
        let n = probe.len() as f32;
        let mut ranked: Vec<(
            f32,
            SubjectId,
            Vec<ModalityScore>,
            Hit,
            huella_store::TemplateOwner,
        )> = fused
            .into_iter()
            .map(|(s, (scores, hit, owner))| {
                let sum: f32 = scores.iter().map(|m| m.score.value()).sum();
                (sum / n, s, scores, hit, owner)
            })
            .filter(|(score, ..)| opts.threshold.is_none_or(|t| *score >= t))
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranked
            .into_iter()
            .take(opts.max_candidates)
            .enumerate()
            .map(|(i, (score, subject, scores, hit, owner))| {
                Ok(Candidate {
                    rank: i as u32 + 1,
                    subject,
                    encounter: owner.encounter,
                    template: hit.id,
                    modality: owner.modality,
                    score: Score::new(score)?,
                    scores,
                })
            })
            .collect()
    }

    /// Collapse template hits into one candidate per subject (its best hit), ranked.
    fn rank_subjects(&self, mut hits: Vec<Hit>, max: usize) -> Result<Vec<Candidate>, EngineError> {
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        let ids: Vec<TemplateId> = hits.iter().map(|h| h.id).collect();
        let owners = self.gallery.templates_meta(&ids)?;
        let mut hits_of: HashMap<&SubjectId, u32> = HashMap::new();
        for owner in owners.iter().flatten() {
            *hits_of.entry(&owner.subject).or_default() += 1;
        }
        let mut seen: HashSet<&SubjectId> = HashSet::new();
        let mut out = Vec::new();
        for (hit, owner) in hits.iter().zip(&owners) {
            // A template deleted between search and lookup has no owner: skip it.
            let Some(owner) = owner else { continue };
            if !seen.insert(&owner.subject) {
                continue;
            }
            let score = Score::new(hit.score.clamp(-1.0, 1.0))?;
            out.push(Candidate {
                rank: out.len() as u32 + 1,
                subject: owner.subject.clone(),
                encounter: owner.encounter,
                template: hit.id,
                modality: owner.modality,
                score,
                scores: vec![ModalityScore {
                    modality: owner.modality,
                    score,
                    compared: hits_of.get(&owner.subject).copied().unwrap_or(1),
                    level: None,
                }],
            });
            if out.len() == max {
                break;
            }
        }
        Ok(out)
    }

    fn subject_filter(&self, subjects: &[SubjectId]) -> Result<IdFilter, EngineError> {
        let mut ids = Vec::new();
        for s in subjects {
            let encounters = self.gallery.subject_encounters(s)?;
            if encounters.is_empty() {
                return Err(EngineError::UnknownSubject(s.clone()));
            }
            ids.extend(encounters.into_iter().flat_map(|e| e.templates));
        }
        Ok(IdFilter::new(ids))
    }

    /// 1:1 comparison of two templates of the same model (for example a document
    /// portrait against a live capture). Higher = more alike (cosine in [-1, 1]).
    pub fn verify(&self, a: &Template, b: &Template) -> Result<Score, EngineError> {
        if is_finger_template(a) || is_finger_template(b) {
            a.check_comparable(b)?;
            return Ok(Score::new(self.finger_gallery()?.read().compare(a, b)?)?);
        }
        let indexes = self.indexes.read();
        let (slot, _) = model_slot(&indexes, a)?;
        let comparator = CosineComparator::new(indexes[slot].model.algorithm.clone());
        Ok(comparator.compare(a, b)?)
    }

    /// 1:1 comparison of a probe against everything enrolled under `subject`: the best
    /// score over the subject's templates of the probe's model, with that template's id.
    pub fn verify_subject(
        &self,
        probe: &Template,
        subject: &SubjectId,
    ) -> Result<(Score, TemplateId), EngineError> {
        self.rescore.check(std::slice::from_ref(probe))?;
        let filter = self.subject_filter(std::slice::from_ref(subject))?;
        if is_finger_template(probe) {
            let fingers = self.finger_gallery()?.read();
            let hit = fingers
                .search(&fingers.prepare(probe)?, 1, Some(&filter))
                .into_iter()
                .next();
            return match hit {
                Some(h) => Ok((Score::new(h.score)?, h.id)),
                None => Err(EngineError::BadInput(format!(
                    "subject {subject} has no finger template"
                ))),
            };
        }
        let indexes = self.indexes.read();
        let (slot, e) = model_slot(&indexes, probe)?;
        let params = SearchParams {
            k: 1,
            min_score: None,
            filter: Some(&filter),
        };
        let hit = indexes[slot]
            .index
            .get()
            .search(e, &params)?
            .into_iter()
            .next();
        hit.map(|h| Ok((Score::new(h.score.clamp(-1.0, 1.0))?, h.id)))
            .unwrap_or_else(|| {
                Err(EngineError::BadInput(format!(
                    "subject {subject} has no template of model {}",
                    probe.algorithm()
                )))
            })
    }

    /// Delete a subject with all its encounters and templates. Returns the removed
    /// template ids.
    pub fn delete_subject(&self, subject: &SubjectId) -> Result<Vec<TemplateId>, EngineError> {
        let _writer = self.writer.lock();
        let removed = self.gallery.delete_subject(subject)?;
        if let Some(fingers) = &self.fingers {
            let mut fingers = fingers.write();
            for id in &removed {
                fingers.remove(*id);
            }
        }
        let mut indexes = self.indexes.write();
        for id in &removed {
            for m in indexes.iter_mut() {
                let index = m.index.get_mut();
                if index.contains(*id) {
                    index.remove(*id)?;
                }
            }
        }
        tracing::debug!(templates = removed.len(), "subject deleted");
        Ok(removed)
    }

    /// An operator confirmed that `from` and `into` are one person: move every
    /// encounter of `from` under `into`, keeping both histories.
    pub fn merge_subjects(
        &self,
        from: &SubjectId,
        into: &SubjectId,
    ) -> Result<MergeOutcome, EngineError> {
        let _writer = self.writer.lock();
        // Index keys are template ids, which a merge does not change: only the store moves.
        Ok(self.gallery.merge_subjects(from, into)?)
    }

    /// Gallery and index statistics.
    pub fn stats(&self) -> Result<EngineStats, EngineError> {
        let gallery = self.gallery.stats()?;
        let mut indexes: Vec<IndexStats> = self
            .indexes
            .read()
            .iter()
            .map(|m| IndexStats {
                model: m.model.to_string(),
                kind: m.index.kind_name(),
                vectors: m.index.get().len(),
                deleted: m.index.deleted(),
                memory_bytes: m.index.memory_bytes(),
            })
            .collect();
        if let Some(fingers) = &self.fingers {
            let fingers = fingers.read();
            indexes.push(IndexStats {
                model: format!("finger:{}", finger_model()),
                kind: "mcc+code",
                vectors: fingers.len(),
                deleted: 0,
                memory_bytes: fingers.memory_bytes(),
            });
        }
        Ok(EngineStats { gallery, indexes })
    }

    /// Save every index snapshot tagged with the current store generation, so the next
    /// open loads it instead of rebuilding, then prune the store's change log up to that
    /// generation. Optional for correctness (the change log is replayed on open), needed
    /// for start-up time and to keep the log short.
    pub fn checkpoint(&self) -> Result<(), EngineError> {
        let _writer = self.writer.lock();
        let generation = self.gallery.generation()?;
        for m in self.indexes.read().iter() {
            m.checkpoint(generation)?;
        }
        // Every snapshot now reflects `generation`: the log before it is no longer needed.
        self.gallery.prune_changes(generation)?;
        Ok(())
    }
}

/// The index slot serving `t`'s model, and `t`'s embedding.
fn model_slot<'t>(
    indexes: &[ModelIndex],
    t: &'t Template,
) -> Result<(usize, &'t Embedding), EngineError> {
    for (slot, m) in indexes.iter().enumerate() {
        if Family::of(t.modality()) == m.model.family && t.algorithm() == &m.model.algorithm {
            return match embedding_of(&m.model, t) {
                Some(e) => Ok((slot, e)),
                None => match t.embedding() {
                    Some(e) => Err(huella_core::CoreError::WrongDimension {
                        expected: m.model.dimension,
                        received: e.dimension(),
                    }
                    .into()),
                    None => Err(EngineError::Unsupported(format!(
                        "model {} templates must be embeddings; opaque records need a matcher",
                        m.model.algorithm
                    ))),
                },
            };
        }
    }
    Err(EngineError::UnknownModel {
        algorithm: t.algorithm().to_string(),
        modality: Family::of(t.modality()).to_string(),
        configured: models_to_setting(&indexes.iter().map(|m| m.model.clone()).collect::<Vec<_>>()),
    })
}

fn sorted(models: &[EmbeddingModel]) -> Vec<EmbeddingModel> {
    let mut v = models.to_vec();
    v.sort();
    v
}
