//! Model upgrades: re-extract stored templates with the current models, then re-index.
//!
//! When a better model arrives (say the face pipeline with its mirrored crop,
//! `dlib-resnet@1+mirror95`, replacing `dlib-resnet@1`), every stored template of the
//! old model must be extracted again from the image it came from: templates of two
//! models are never compared. [`Engine::rescore`] does that for a whole gallery.
//!
//! ```
//! use huella_engine::{Embedding, EmbeddingModel, Engine, IdentifyOptions, Modality, NewEncounter,
//!                     NewTemplate, RescoreOptions, SubjectId, Template};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! let old: EmbeddingModel = "face:demo@1:2".parse()?;
//! let new: EmbeddingModel = "face:demo@2:2".parse()?;
//! let engine = Engine::builder().gallery(tmp.path()).create_if_missing(true).model(old.clone()).build()?;
//! let face = |m: &EmbeddingModel, v: Vec<f32>| -> Result<Template, huella_engine::CoreError> {
//!     Ok(Template::from_embedding(Modality::Face, m.algorithm.clone(), Embedding::new(v)?))
//! };
//! engine.enroll(NewEncounter {
//!     subject: SubjectId::new("CASE-1")?, captured_at_unix_ms: 0, location: None, operator: None,
//!     biographic: Default::default(),
//!     templates: vec![NewTemplate { template: face(&old, vec![1.0, 0.0])?, source: None }],
//! }, &IdentifyOptions::default())?;
//!
//! // The caller re-extracts (here from the old template; a real caller reads
//! // `stored.source`, checks its sha256 and runs the new model on the image).
//! let report = engine.rescore(
//!     &RescoreOptions { models: vec![new.clone()], ..RescoreOptions::default() },
//!     |stored| face(&new, stored.template.embedding().map_or(vec![0.0, 1.0], |e| e.as_slice().to_vec())),
//!     |_progress| {},
//! )?;
//! assert_eq!((report.re_extracted, report.switched), (1, true));
//! assert_eq!(engine.models(), vec![new.clone()]);
//! let found = engine.identify(&[face(&new, vec![0.9, 0.1])?], &IdentifyOptions::default())?;
//! assert_eq!(found[0].subject.as_str(), "CASE-1");
//! # Ok(()) }
//! ```
//!
//! # Choices
//!
//! - **The caller extracts.** The engine hands each stored template (with its source
//!   image reference, path and sha256) to a closure and stores what it returns; it never
//!   reads files itself, so where images live, how they are fetched and whether a
//!   changed file is acceptable stay the caller's policy (the CLI reads the file, checks
//!   the sha256 and runs the face pipeline or the finger extractor). What the closure
//!   returns is checked: same modality, and a template of the target model.
//! - **What is re-extracted.** For each target model, the gallery's configured model
//!   of the same family is the one replaced (the gallery must hold exactly one model
//!   of that family, or the target itself). Templates of the replaced model are
//!   re-extracted; templates already at the target are skipped, unless `force`, which
//!   re-extracts them too (and, with `fingers`, the finger minutiae records, whose
//!   algorithm never changes). Templates of other models are left alone.
//! - **Batches.** Templates are processed in id order, in batches of
//!   [`RescoreOptions::batch`]: a batch is extracted in parallel on the caller's rayon
//!   pool (call inside `pool.install`, STYLE rule 9), then committed in one fsynced
//!   store transaction ([`huella_store::Gallery::replace_templates`]) that keeps each
//!   template's id, encounter, subject and source. The in-memory indexes follow each
//!   commit under the engine's writer lock.
//! - **Failures.** A template whose extraction fails (image missing or changed, no
//!   face, unreadable...) is kept exactly as it was and reported in
//!   [`RescoreReport::failed`]; the others go on. A store failure stops the run.
//! - **Resumable.** A template is done once its replacement is committed: a rerun
//!   after a crash or `kill -9` skips templates already at the target and does the
//!   rest, so nothing is lost and nothing is re-extracted twice into the store. A forced
//!   pass records, in the same transaction as each batch, the last template id it has
//!   attempted (setting `rescore.force_after`), and resumes after it.
//! - **The switch.** The gallery's configured models change (setting `models`) only
//!   when no template of a replaced model is left, in one transaction that also drops
//!   the rescore marker; then the target model's index is built from the store (in
//!   parallel) and the replaced model's index and snapshot are dropped, as are the
//!   impostor samples cached for fused identification. A run with
//!   failures leaves the gallery mid-rescore: fix the sources (or delete those
//!   subjects) and run it again.
//! - **Meanwhile.** While a rescore is under way (setting `rescore.models`, which
//!   survives a crash), the family being upgraded holds templates of two models, and no
//!   index could answer for all of them: [`Engine::identify`], enrolment (which searches
//!   first) and [`Engine::verify_subject`] refuse probes of that family, and
//!   [`Engine::deduplicate`] refuses to run, with [`EngineError::RescoreInProgress`] rather than silently miss the templates of the
//!   other model. Other families, and 1:1 [`Engine::verify`] of two templates, work as
//!   usual. A forced re-extraction that keeps the model searches as usual throughout
//!   (every template stays comparable).
//! - **Cancel.** [`RescoreOptions::cancel`] stops the run after the templates in
//!   flight; what was committed stays, and a rerun finishes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use huella_core::{AlgorithmId, EncounterId, Template, TemplateId};
use huella_store::{StoredTemplate, MAX_REPLACEMENTS};
use parking_lot::RwLock;
use rayon::prelude::*;
use serde::Serialize;

use crate::config::{models_from_setting, models_to_setting};
use crate::engine::SETTING_MODELS;
use crate::fingerprint::{finger_model, is_finger_template};
use crate::indexes::{embedding_of, ModelIndex};
use crate::{ConfigError, EmbeddingModel, Engine, EngineError, Family};

/// Setting present while a rescore is under way: the target models.
pub const SETTING_RESCORE_MODELS: &str = "rescore.models";
/// Setting present while a rescore re-extracts the finger records too.
pub const SETTING_RESCORE_FINGERS: &str = "rescore.fingers";
/// Setting present during a forced pass: every template id up to it was attempted.
pub const SETTING_RESCORE_FORCE_AFTER: &str = "rescore.force_after";
/// Default number of templates committed per transaction.
pub const DEFAULT_RESCORE_BATCH: usize = 256;

/// What [`Engine::rescore`] should do.
#[derive(Debug, Clone)]
pub struct RescoreOptions<'a> {
    /// The models the gallery should hold afterwards, one per family upgraded: each
    /// replaces the gallery's model of its family (the current face pipeline's model,
    /// say). A model the gallery already holds is only re-extracted with `force`.
    pub models: Vec<EmbeddingModel>,
    /// Re-extract templates already at their target model too.
    pub force: bool,
    /// With `force`: re-extract the finger minutiae records as well.
    pub fingers: bool,
    /// Templates committed per store transaction (1..=[`MAX_REPLACEMENTS`]).
    pub batch: usize,
    /// Set to `true` to stop after the templates in flight.
    pub cancel: Option<&'a AtomicBool>,
}

impl Default for RescoreOptions<'_> {
    fn default() -> Self {
        Self {
            models: Vec::new(),
            force: false,
            fingers: false,
            batch: DEFAULT_RESCORE_BATCH,
            cancel: None,
        }
    }
}

/// Counts passed to the progress callback after each template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RescoreProgress {
    /// Templates handled so far by this run (re-extracted or failed).
    pub done: u64,
    /// Of which failed.
    pub failed: u64,
    /// Templates this run has to handle.
    pub total: u64,
    /// Templates committed to the store so far by this run (durable; updated after
    /// each batch, when the callback is also called).
    pub committed: u64,
}

/// A template that could not be re-extracted; it is kept as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RescoreFailure {
    /// The template.
    pub template: TemplateId,
    /// Its encounter.
    pub encounter: EncounterId,
    /// Why (the extraction closure's error, or why its result was refused).
    pub reason: String,
}

/// What a rescore did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RescoreReport {
    /// Templates re-extracted and committed by this run.
    pub re_extracted: u64,
    /// Templates already at their target (done by an earlier run, or before a forced
    /// pass's resume point), or deleted while the run went on.
    pub skipped: u64,
    /// Templates that failed, kept as they were.
    pub failed: Vec<RescoreFailure>,
    /// Templates still of a replaced model after this run (failed or not reached).
    pub remaining: u64,
    /// Whether the run ended with the cancel flag.
    pub cancelled: bool,
    /// Whether the gallery now holds the target models and the rescore is complete.
    pub switched: bool,
    /// The gallery's models after this run (serialised as `family:name@version:dim`).
    #[serde(serialize_with = "models_as_text")]
    pub models: Vec<EmbeddingModel>,
}

fn models_as_text<S: serde::Serializer>(m: &[EmbeddingModel], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(m.iter().map(ToString::to_string))
}

/// One model being replaced by another (possibly itself, for a forced pass).
#[derive(Debug, Clone, PartialEq)]
struct Pair {
    from: EmbeddingModel,
    to: EmbeddingModel,
}

impl Pair {
    fn changes(&self) -> bool {
        self.from != self.to
    }
}

/// Match each target to the configured model it replaces.
fn pairs(configured: &[EmbeddingModel], targets: &[EmbeddingModel]) -> Result<Vec<Pair>, String> {
    let mut out: Vec<Pair> = Vec::new();
    for to in targets {
        let from = if configured.contains(to) {
            to.clone()
        } else {
            let same: Vec<&EmbeddingModel> = configured
                .iter()
                .filter(|m| m.family == to.family)
                .collect();
            match same.as_slice() {
                [one] => (*one).clone(),
                [] => return Err(format!("the gallery has no {} model to replace with {to}", to.family)),
                _ => {
                    return Err(format!(
                        "the gallery holds several {} models ({}): which one {to} replaces is ambiguous",
                        to.family,
                        models_to_setting(&same.into_iter().cloned().collect::<Vec<_>>())
                    ))
                }
            }
        };
        if out.iter().any(|p| p.from == from || p.to == *to) {
            return Err(format!(
                "{to} is listed twice, or two targets replace {from}"
            ));
        }
        out.push(Pair {
            from,
            to: to.clone(),
        });
    }
    Ok(out)
}

/// The families whose searches are refused while a rescore is under way.
#[derive(Debug, Default)]
pub(crate) struct RescoreGuard(RwLock<Vec<Pair>>);

impl RescoreGuard {
    /// The guard a gallery's settings call for.
    pub(crate) fn from_settings(
        settings: &BTreeMap<String, String>,
        configured: &[EmbeddingModel],
    ) -> Result<Self, ConfigError> {
        let Some(target) = settings.get(SETTING_RESCORE_MODELS) else {
            return Ok(Self::default());
        };
        let bad = |reason: String| ConfigError::Invalid {
            setting: SETTING_RESCORE_MODELS,
            reason,
        };
        let pairs = pairs(configured, &models_from_setting(target)?).map_err(bad)?;
        Ok(Self(RwLock::new(
            pairs.into_iter().filter(Pair::changes).collect(),
        )))
    }

    fn set(&self, pairs: &[Pair]) {
        *self.0.write() = pairs.iter().filter(|p| p.changes()).cloned().collect();
    }

    /// Refuse a whole-gallery job (de-duplication) while any family is being upgraded.
    pub(crate) fn check_all(&self) -> Result<(), EngineError> {
        match self.0.read().first() {
            Some(p) => Err(EngineError::RescoreInProgress {
                family: p.from.family.to_string(),
                from: p.from.to_string(),
                to: p.to.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Refuse a probe of a family being upgraded.
    pub(crate) fn check(&self, probe: &[Template]) -> Result<(), EngineError> {
        let pairs = self.0.read();
        for t in probe {
            if is_finger_template(t) {
                continue; // minutiae records never change model
            }
            if let Some(p) = pairs
                .iter()
                .find(|p| p.from.family == Family::of(t.modality()))
            {
                return Err(EngineError::RescoreInProgress {
                    family: p.from.family.to_string(),
                    from: p.from.to_string(),
                    to: p.to.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// The run's plan: the pairs, and whether the pass is forced and includes fingers.
struct Plan {
    pairs: Vec<Pair>,
    force: bool,
    fingers: bool,
    /// In a forced pass, templates up to this id were attempted by an earlier run.
    force_after: u64,
}

impl Plan {
    /// The target of a stored template with this modality and algorithm: a pair, the
    /// finger records, or nothing (not part of this rescore).
    fn target(&self, t: &Template) -> Option<Target<'_>> {
        if is_finger_template(t) {
            return self.fingers.then_some(Target::Fingers);
        }
        let family = Family::of(t.modality());
        self.pairs
            .iter()
            .find(|p| {
                p.from.family == family
                    && (t.algorithm() == &p.from.algorithm || t.algorithm() == &p.to.algorithm)
            })
            .map(Target::Model)
    }

    /// Whether a stored template needs re-extraction by this run.
    fn needs(&self, id: TemplateId, t: &Template) -> Option<bool> {
        let forced = self.force && id.0 > self.force_after;
        match self.target(t)? {
            Target::Fingers => Some(forced),
            Target::Model(p) => Some(!at(t, &p.to) || forced),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    Model(&'a Pair),
    Fingers,
}

/// Whether `t` is a template of `model` (algorithm, family and dimension).
fn at(t: &Template, model: &EmbeddingModel) -> bool {
    embedding_of(model, t).is_some()
}

fn algorithm_text(a: &AlgorithmId) -> String {
    a.to_string()
}

impl Engine {
    /// The target models of a rescore under way (interrupted, or with failures left),
    /// or `None`.
    pub fn rescore_in_progress(&self) -> Result<Option<Vec<EmbeddingModel>>, EngineError> {
        let settings = self.gallery().info()?.settings;
        settings
            .get(SETTING_RESCORE_MODELS)
            .map(|s| models_from_setting(s).map_err(|e| EngineError::BadInput(e.to_string())))
            .transpose()
    }

    /// Re-extract the gallery's templates for a model upgrade, commit them in batches,
    /// then switch the gallery's configured models and rebuild their indexes. See the
    /// [module docs](crate::rescore) for the choices (who extracts, resumability, what
    /// identification does meanwhile).
    ///
    /// `extract` gets each stored template (with its source image reference) and
    /// returns its re-extraction; its error becomes a [`RescoreFailure`] and the
    /// template is kept. `progress` is called after each template, from worker threads.
    /// Runs on the current rayon pool.
    ///
    /// Errors: [`EngineError::BadInput`] for targets that do not match the gallery's
    /// models, a batch size out of range, or a different rescore under way; store and
    /// index failures stop the run (what was committed stays).
    pub fn rescore<F, E, P>(
        &self,
        opts: &RescoreOptions<'_>,
        extract: F,
        progress: P,
    ) -> Result<RescoreReport, EngineError>
    where
        F: Fn(&StoredTemplate) -> Result<Template, E> + Sync,
        E: fmt::Display,
        P: Fn(&RescoreProgress) + Sync,
    {
        if !(1..=MAX_REPLACEMENTS).contains(&opts.batch) {
            return Err(EngineError::BadInput(format!(
                "batch {} outside 1..={MAX_REPLACEMENTS}",
                opts.batch
            )));
        }
        let plan = self.plan(opts)?;
        let mut report = RescoreReport::default();

        // Which templates this run handles, in id order.
        let mut todo: Vec<TemplateId> = Vec::new();
        self.gallery().for_each_template(|t| {
            match plan.needs(t.id, &t.template) {
                Some(true) => todo.push(t.id),
                Some(false) => report.skipped += 1,
                None => {}
            }
            Ok(())
        })?;
        tracing::info!(
            templates = todo.len(),
            skipped = report.skipped,
            "rescore planned"
        );

        if !todo.is_empty() {
            self.begin(&plan)?;
            let total = todo.len() as u64;
            let (done, failed) = (AtomicU64::new(0), AtomicU64::new(0));
            let committed = AtomicU64::new(0);
            let cancelled = || opts.cancel.is_some_and(|c| c.load(Ordering::Relaxed));
            for chunk in todo.chunks(opts.batch) {
                if cancelled() {
                    break;
                }
                let outcomes: Vec<Outcome> = chunk
                    .par_iter()
                    .map(|&id| {
                        if cancelled() {
                            return Ok(Outcome::NotReached);
                        }
                        let Some(stored) = self.gallery().template(id)? else {
                            return Ok(Outcome::Gone);
                        };
                        let outcome = match self.extract_one(&plan, &stored, &extract) {
                            Ok(t) => Outcome::Replaced(id, t),
                            Err(reason) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                Outcome::Failed(RescoreFailure {
                                    template: id,
                                    encounter: stored.encounter,
                                    reason,
                                })
                            }
                        };
                        progress(&RescoreProgress {
                            done: done.fetch_add(1, Ordering::Relaxed) + 1,
                            failed: failed.load(Ordering::Relaxed),
                            total,
                            committed: committed.load(Ordering::Relaxed),
                        });
                        Ok(outcome)
                    })
                    .collect::<Result<_, EngineError>>()?;
                // Every id up to the first one not reached was attempted.
                let attempted = chunk
                    .iter()
                    .zip(&outcomes)
                    .take_while(|(_, o)| !matches!(o, Outcome::NotReached))
                    .last()
                    .map(|(id, _)| *id);
                let mut replacements = Vec::new();
                for o in outcomes {
                    match o {
                        Outcome::Replaced(id, t) => replacements.push((id, t)),
                        Outcome::Failed(f) => report.failed.push(f),
                        Outcome::Gone => report.skipped += 1,
                        Outcome::NotReached => {}
                    }
                }
                report.re_extracted += self.commit(&plan, replacements, attempted)?;
                committed.store(report.re_extracted, Ordering::Relaxed);
                progress(&RescoreProgress {
                    done: done.load(Ordering::Relaxed),
                    failed: failed.load(Ordering::Relaxed),
                    total,
                    committed: report.re_extracted,
                });
            }
            report.cancelled = cancelled();
        }

        // Whatever is left of a replaced model (failed, or not reached).
        let changing: Vec<&Pair> = plan.pairs.iter().filter(|p| p.changes()).collect();
        self.gallery().for_each_template(|t| {
            let f = Family::of(t.template.modality());
            if !is_finger_template(&t.template)
                && changing
                    .iter()
                    .any(|p| p.from.family == f && t.template.algorithm() == &p.from.algorithm)
            {
                report.remaining += 1;
            }
            Ok(())
        })?;
        if report.remaining == 0 && !report.cancelled {
            report.switched = self.finish(&plan)?;
        }
        report.models = self.models();
        tracing::info!(
            re_extracted = report.re_extracted,
            failed = report.failed.len(),
            remaining = report.remaining,
            switched = report.switched,
            "rescore ended"
        );
        Ok(report)
    }

    /// The plan of a run: its options merged with a rescore already under way.
    fn plan(&self, opts: &RescoreOptions<'_>) -> Result<Plan, EngineError> {
        let settings = self.gallery().info()?.settings;
        let configured = self.models();
        let pairs = pairs(&configured, &opts.models).map_err(EngineError::BadInput)?;
        if let Some(under_way) = settings.get(SETTING_RESCORE_MODELS) {
            let mut theirs =
                models_from_setting(under_way).map_err(|e| EngineError::BadInput(e.to_string()))?;
            let mut ours = opts.models.clone();
            theirs.sort();
            ours.sort();
            if theirs != ours {
                return Err(EngineError::BadInput(format!(
                    "a rescore to [{}] is under way: run it again with those models to finish it",
                    models_to_setting(&theirs)
                )));
            }
        }
        // A forced pass, or one including the fingers, stays so until it completes.
        let force_after = settings.get(SETTING_RESCORE_FORCE_AFTER);
        let force = opts.force || force_after.is_some();
        let fingers = force && (opts.fingers || settings.contains_key(SETTING_RESCORE_FINGERS));
        if fingers && self.search_parts().1.is_none() {
            return Err(EngineError::BadInput(
                "this gallery holds no fingers".into(),
            ));
        }
        let force_after = match force_after {
            Some(s) => s.parse().map_err(|_| {
                EngineError::Store(huella_store::StoreError::Corrupt {
                    reason: format!("setting {SETTING_RESCORE_FORCE_AFTER} is not a number"),
                })
            })?,
            None => 0,
        };
        Ok(Plan {
            pairs,
            force,
            fingers,
            force_after,
        })
    }

    /// Record the rescore under way (one transaction) and refuse searches of the
    /// families being upgraded from now on.
    fn begin(&self, plan: &Plan) -> Result<(), EngineError> {
        let settings = self.gallery().info()?.settings;
        let targets: Vec<EmbeddingModel> = plan.pairs.iter().map(|p| p.to.clone()).collect();
        let mut update: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut want = |key: &str, value: String| {
            if settings.get(key) != Some(&value) {
                update.insert(key.to_string(), Some(value));
            }
        };
        want(SETTING_RESCORE_MODELS, models_to_setting(&targets));
        if plan.fingers {
            want(SETTING_RESCORE_FINGERS, finger_model().to_string());
        }
        if plan.force {
            want(SETTING_RESCORE_FORCE_AFTER, plan.force_after.to_string());
        }
        let _writer = self.writer.lock();
        if !update.is_empty() {
            self.gallery().update_settings(&update)?;
        }
        // Searches are refused before the first template changes model.
        self.rescore.set(&plan.pairs);
        Ok(())
    }

    /// Run the caller's extraction and check what it returned.
    fn extract_one<F, E>(
        &self,
        plan: &Plan,
        stored: &StoredTemplate,
        extract: &F,
    ) -> Result<Template, String>
    where
        F: Fn(&StoredTemplate) -> Result<Template, E>,
        E: fmt::Display,
    {
        let new = extract(stored).map_err(|e| e.to_string())?;
        let old = &stored.template;
        let refused = |expected: String| {
            Err(format!(
                "the extractor returned a {} template of {}, expected a {} template of {expected}",
                new.modality(),
                algorithm_text(new.algorithm()),
                old.modality()
            ))
        };
        match plan.target(old) {
            _ if new.modality() != old.modality() => refused(old.algorithm().to_string()),
            Some(Target::Model(p)) if !at(&new, &p.to) => refused(p.to.to_string()),
            Some(Target::Fingers) if !is_finger_template(&new) => {
                refused(finger_model().to_string())
            }
            None => refused(old.algorithm().to_string()),
            _ => Ok(new),
        }
    }

    /// Commit one batch and bring the in-memory indexes along; returns how many
    /// templates were replaced.
    fn commit(
        &self,
        plan: &Plan,
        replacements: Vec<(TemplateId, Template)>,
        attempted: Option<TemplateId>,
    ) -> Result<u64, EngineError> {
        let _writer = self.writer.lock();
        // A subject deleted while its templates were being extracted: skip them.
        let ids: Vec<TemplateId> = replacements.iter().map(|(id, _)| *id).collect();
        let owners = self.gallery().templates_meta(&ids)?;
        let replacements: Vec<(TemplateId, Template)> = replacements
            .into_iter()
            .zip(owners)
            .filter_map(|(r, owner)| owner.map(|_| r))
            .collect();
        let mut settings = BTreeMap::new();
        if let (true, Some(id)) = (plan.force, attempted) {
            settings.insert(
                SETTING_RESCORE_FORCE_AFTER.to_string(),
                Some(id.0.to_string()),
            );
        }
        if replacements.is_empty() && settings.is_empty() {
            return Ok(0);
        }
        self.gallery().replace_templates(&replacements, &settings)?;
        let (indexes, fingers) = self.search_parts();
        let mut indexes = indexes.write();
        for (id, t) in &replacements {
            for m in indexes.iter_mut() {
                let index = m.index.get_mut();
                if index.contains(*id) {
                    index.remove(*id)?;
                }
                if let Some(e) = embedding_of(&m.model, t) {
                    index.insert(*id, e)?;
                }
            }
            if let Some(fingers) = fingers {
                let mut fingers = fingers.write();
                fingers.remove(*id);
                if is_finger_template(t) {
                    fingers.insert(*id, t)?;
                }
            }
        }
        Ok(replacements.len() as u64)
    }

    /// Switch the configured models and drop the rescore marker (one transaction), then
    /// build the new models' indexes from the store and drop the replaced ones. Returns
    /// whether anything was switched or completed.
    fn finish(&self, plan: &Plan) -> Result<bool, EngineError> {
        let _writer = self.writer.lock();
        let settings = self.gallery().info()?.settings;
        let mut update: BTreeMap<String, Option<String>> = BTreeMap::new();
        let configured = self.models();
        if plan.pairs.iter().any(Pair::changes) {
            let models: Vec<EmbeddingModel> = configured
                .iter()
                .map(|m| {
                    plan.pairs
                        .iter()
                        .find(|p| p.from == *m)
                        .map_or_else(|| m.clone(), |p| p.to.clone())
                })
                .collect();
            update.insert(SETTING_MODELS.to_string(), Some(models_to_setting(&models)));
        }
        for key in [
            SETTING_RESCORE_MODELS,
            SETTING_RESCORE_FINGERS,
            SETTING_RESCORE_FORCE_AFTER,
        ] {
            if settings.contains_key(key) {
                update.insert(key.to_string(), None);
            }
        }
        if update.is_empty() {
            return Ok(false);
        }
        // Build the new indexes first (every template is at its target already; no
        // writer can run meanwhile, we hold the writer lock), so that a failure here
        // switches nothing; then the switch, then the swap in memory. Searches of these
        // families are refused until the guard is lifted at the end.
        let index_dir = self.dir().join("index");
        let count = self.gallery().stats()?.templates;
        let mut built = Vec::new();
        for p in plan.pairs.iter().filter(|p| p.changes()) {
            built.push(ModelIndex::open(
                &index_dir,
                p.to.clone(),
                self.gallery(),
                &self.index_settings,
                count,
            )?);
        }
        self.gallery().update_settings(&update)?;
        let mut indexes = self.search_parts().0.write();
        for new in built {
            let Some(p) = plan.pairs.iter().find(|p| p.to == new.model) else {
                continue;
            };
            match indexes.iter().position(|m| m.model == p.from) {
                Some(slot) => {
                    let old = std::mem::replace(&mut indexes[slot], new);
                    old.discard_snapshot();
                }
                None => indexes.push(new),
            }
        }
        drop(indexes);
        // The fused search's impostor score samples were drawn from the old templates.
        *self.score_models.lock() = Default::default();
        self.rescore.set(&[]);
        tracing::info!(models = %models_to_setting(&self.models()), "rescore complete");
        Ok(true)
    }
}

/// What happened to one template of a batch.
enum Outcome {
    Replaced(TemplateId, Template),
    Failed(RescoreFailure),
    /// Deleted since the run listed it.
    Gone,
    /// Not attempted: the run was cancelled.
    NotReached,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> EmbeddingModel {
        s.parse().expect("valid model")
    }

    #[test]
    fn targets_pair_with_the_model_they_replace() {
        let configured = [m("face:a@1:4"), m("finger:code@1:8")];
        let p = pairs(&configured, &[m("face:a@2:4")]).expect("pairs");
        assert_eq!(
            p,
            vec![Pair {
                from: m("face:a@1:4"),
                to: m("face:a@2:4")
            }]
        );
        assert!(p[0].changes());
        let p = pairs(&configured, &[m("face:a@1:4")]).expect("pairs");
        assert!(!p[0].changes(), "a model the gallery holds replaces itself");
        let two = [m("face:a@1:4"), m("face:b@1:4")];
        assert!(pairs(&two, &[m("face:c@1:4")])
            .unwrap_err()
            .contains("ambiguous"));
        assert!(pairs(&two, &[m("face:a@1:4")]).is_ok());
        assert!(pairs(&[m("finger:code@1:8")], &[m("face:a@2:4")])
            .unwrap_err()
            .contains("no face model"));
        assert!(pairs(&configured, &[m("face:a@2:4"), m("face:a@3:4")]).is_err());
    }

    #[test]
    fn the_guard_refuses_only_the_family_being_upgraded() {
        use huella_core::{Embedding, FingerPosition, Modality};
        let configured = [m("face:a@1:2"), m("finger:code@1:2")];
        let settings =
            BTreeMap::from([(SETTING_RESCORE_MODELS.to_string(), "face:a@2:2".to_string())]);
        let guard = RescoreGuard::from_settings(&settings, &configured).expect("guard");
        let e = Embedding::new(vec![1.0, 0.0]).expect("valid");
        let face = Template::from_embedding(Modality::Face, m("face:a@1:2").algorithm, e.clone());
        let finger = Template::from_embedding(
            Modality::Finger(FingerPosition::RightIndex),
            m("finger:code@1:2").algorithm,
            e,
        );
        let err = guard
            .check(&[finger.clone(), face])
            .expect_err("face refused");
        assert!(
            matches!(err, EngineError::RescoreInProgress { ref family, .. } if family == "face"),
            "{err}"
        );
        guard
            .check(std::slice::from_ref(&finger))
            .expect("fingers searched as usual");
        assert!(RescoreGuard::from_settings(&BTreeMap::new(), &configured)
            .expect("none")
            .check(&[finger])
            .is_ok());
        // A forced pass that keeps the model refuses nothing.
        let settings =
            BTreeMap::from([(SETTING_RESCORE_MODELS.to_string(), "face:a@1:2".to_string())]);
        let guard = RescoreGuard::from_settings(&settings, &configured).expect("guard");
        assert!(guard.0.read().is_empty());
    }

    /// A synthetic population whose "images" are hidden vectors named by a source
    /// path: model A and model B are two different random projections of them (of
    /// different dimensions), so re-extraction really recomputes from the source.
    mod population {
        use super::*;
        use crate::{IdentifyOptions, NewEncounter, NewTemplate, SourceImage, SubjectId};
        use huella_core::{Embedding, Modality};
        use rand::{rngs::StdRng, Rng, SeedableRng};
        use rand_distr::StandardNormal;

        pub const LATENT: usize = 24;
        pub const PEOPLE: usize = 40;
        pub const CAPTURES: usize = 2;

        pub fn a() -> EmbeddingModel {
            m("face:proj-a@1:16")
        }
        pub fn b() -> EmbeddingModel {
            m("face:proj-b@2:20")
        }

        pub struct World {
            /// source path -> hidden vector (the "image").
            pub images: BTreeMap<String, Vec<f32>>,
            proj: BTreeMap<String, Vec<Vec<f32>>>,
        }

        impl World {
            pub fn new() -> Self {
                let mut rng = StdRng::seed_from_u64(7);
                let mut images = BTreeMap::new();
                for p in 0..PEOPLE {
                    let centre: Vec<f32> =
                        (0..LATENT).map(|_| rng.sample(StandardNormal)).collect();
                    for c in 0..=CAPTURES {
                        let v = centre
                            .iter()
                            .map(|x| x + 0.25 * rng.sample::<f32, _>(StandardNormal))
                            .collect();
                        images.insert(format!("img/{p}/{c}"), v);
                    }
                }
                let mut proj = BTreeMap::new();
                for model in [a(), b()] {
                    let rows = (0..model.dimension)
                        .map(|_| (0..LATENT).map(|_| rng.sample(StandardNormal)).collect())
                        .collect();
                    proj.insert(model.to_string(), rows);
                }
                Self { images, proj }
            }

            /// The template `model` extracts from the image at `path`.
            pub fn extract(&self, model: &EmbeddingModel, path: &str) -> Result<Template, String> {
                let x = self
                    .images
                    .get(path)
                    .ok_or_else(|| format!("{path}: no such image"))?;
                let v = self.proj[&model.to_string()]
                    .iter()
                    .map(|row: &Vec<f32>| row.iter().zip(x).map(|(r, x)| r * x).sum())
                    .collect();
                let e = Embedding::new(v).map_err(|e| e.to_string())?;
                Ok(Template::from_embedding(
                    Modality::Face,
                    model.algorithm.clone(),
                    e,
                ))
            }

            pub fn encounter(&self, p: usize, c: usize) -> NewEncounter {
                let path = format!("img/{p}/{c}");
                NewEncounter {
                    subject: SubjectId::new(format!("S{p}")).expect("valid"),
                    captured_at_unix_ms: c as i64,
                    location: None,
                    operator: None,
                    biographic: BTreeMap::new(),
                    templates: vec![NewTemplate {
                        template: self.extract(&a(), &path).expect("extracts"),
                        source: Some(SourceImage {
                            path,
                            sha256: format!("{:064x}", p * 10 + c),
                        }),
                    }],
                }
            }
        }

        pub fn open(dir: &std::path::Path) -> Engine {
            Engine::builder()
                .gallery(dir)
                .create_if_missing(true)
                .model(a())
                .build()
                .expect("engine")
        }

        pub fn enrol(engine: &Engine, world: &World) {
            for p in 0..PEOPLE {
                for c in 0..CAPTURES {
                    engine
                        .enroll(world.encounter(p, c), &IdentifyOptions::default())
                        .expect("enrol");
                }
            }
        }

        /// Rank-1 hits of the held-out capture of every person, with `model`.
        pub fn rank1(
            engine: &Engine,
            world: &World,
            model: &EmbeddingModel,
        ) -> Result<usize, EngineError> {
            let mut hits = 0;
            for p in 0..PEOPLE {
                let probe = world
                    .extract(model, &format!("img/{p}/{CAPTURES}"))
                    .expect("probe");
                let found = engine.identify(&[probe], &IdentifyOptions::default())?;
                hits += usize::from(found[0].subject.as_str() == format!("S{p}"));
            }
            Ok(hits)
        }

        /// Templates in the store per algorithm.
        pub fn algorithms(engine: &Engine) -> BTreeMap<String, usize> {
            let mut out = BTreeMap::new();
            engine
                .gallery()
                .for_each_template(|t| {
                    *out.entry(t.template.algorithm().to_string()).or_default() += 1;
                    Ok(())
                })
                .expect("scan");
            out
        }
    }

    use population::*;
    use std::sync::Mutex;

    #[test]
    fn a_cancelled_rescore_refuses_searches_and_a_rerun_completes_without_loss() {
        let tmp = tempfile::tempdir().expect("tmp");
        let world = World::new();
        let total = PEOPLE * CAPTURES;
        let engine = open(tmp.path());
        enrol(&engine, &world);
        assert_eq!(rank1(&engine, &world, &a()).expect("search"), PEOPLE);
        engine.checkpoint().expect("checkpoint");

        let calls: Mutex<BTreeMap<TemplateId, usize>> = Mutex::default();
        let extract = |t: &StoredTemplate| {
            *calls.lock().expect("lock").entry(t.id).or_default() += 1;
            assert_eq!(rayon::current_num_threads(), 2, "runs on the caller's pool");
            let source = t.source.as_ref().ok_or("no source")?;
            world.extract(&b(), &source.path)
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("pool");
        let cancel = AtomicBool::new(false);
        let opts = RescoreOptions {
            models: vec![b()],
            batch: 8,
            cancel: Some(&cancel),
            ..RescoreOptions::default()
        };
        let first = pool
            .install(|| {
                engine.rescore(&opts, extract, |p| {
                    assert_eq!(p.total, total as u64);
                    if p.done >= 30 {
                        cancel.store(true, Ordering::Relaxed);
                    }
                })
            })
            .expect("first run");
        assert!(first.cancelled && !first.switched, "{first:?}");
        assert!(
            (30..total as u64).contains(&first.re_extracted),
            "{first:?}"
        );
        assert_eq!(first.remaining, total as u64 - first.re_extracted);
        assert_eq!(first.models, vec![a()]);

        // Meanwhile: the face family is refused, with either model, even after reopening.
        let err = rank1(&engine, &world, &a()).expect_err("refused");
        assert!(
            matches!(err, EngineError::RescoreInProgress { .. }),
            "{err}"
        );
        drop(engine);
        let engine = open(tmp.path());
        let err = rank1(&engine, &world, &b()).expect_err("refused after reopening");
        assert!(
            matches!(err, EngineError::RescoreInProgress { .. }),
            "{err}"
        );
        let err = engine
            .deduplicate(&crate::DedupOptions::default())
            .expect_err("whole-gallery de-duplication refused too");
        assert!(
            matches!(err, EngineError::RescoreInProgress { .. }),
            "{err}"
        );
        assert_eq!(engine.rescore_in_progress().expect("read"), Some(vec![b()]));
        let counts = algorithms(&engine);
        assert_eq!(
            counts[&b().algorithm.to_string()] as u64,
            first.re_extracted
        );
        assert_eq!(counts.values().sum::<usize>(), total, "nothing lost");
        engine.gallery().verify().expect("consistent");
        // Another target while this one is under way is refused.
        let other = RescoreOptions {
            models: vec![m("face:proj-c@1:16")],
            ..RescoreOptions::default()
        };
        let err = engine
            .rescore(&other, |_| Err("unused"), |_| {})
            .expect_err("refused");
        assert!(err.to_string().contains("under way"), "{err}");

        let opts = RescoreOptions {
            models: vec![b()],
            batch: 8,
            ..RescoreOptions::default()
        };
        let second = pool
            .install(|| engine.rescore(&opts, extract, |_| {}))
            .expect("rerun");
        assert!(second.switched && second.failed.is_empty(), "{second:?}");
        assert_eq!(second.skipped, first.re_extracted);
        assert_eq!(first.re_extracted + second.re_extracted, total as u64);
        let calls = calls.into_inner().expect("lock");
        assert_eq!(calls.len(), total);
        assert!(
            calls.values().all(|&n| n == 1),
            "each template extracted once"
        );

        // Afterwards: model B only, searched as well as A was; A probes are unknown.
        assert_eq!(engine.models(), vec![b()]);
        assert_eq!(
            algorithms(&engine).keys().collect::<Vec<_>>(),
            vec![&b().algorithm.to_string()]
        );
        assert_eq!(rank1(&engine, &world, &b()).expect("search"), PEOPLE);
        let err = rank1(&engine, &world, &a()).expect_err("old model");
        assert!(matches!(err, EngineError::UnknownModel { .. }), "{err}");
        assert_eq!(engine.rescore_in_progress().expect("read"), None);
        // The old snapshot is gone; the new index is saved and loads on reopening.
        engine.checkpoint().expect("checkpoint");
        let mut files: Vec<String> = std::fs::read_dir(tmp.path().join("index"))
            .expect("index dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["face-proj-b@2.idx", "face-proj-b@2.idx.json"]);
        drop(engine);
        let engine = Engine::builder()
            .gallery(tmp.path())
            .model(b())
            .build()
            .expect("reopen with B");
        assert_eq!(rank1(&engine, &world, &b()).expect("search"), PEOPLE);
        engine.gallery().verify().expect("consistent");
        // Nothing left to do: a rerun is a no-op.
        let again = engine
            .rescore(&opts, |_| Err("unused"), |_| {})
            .expect("no-op");
        assert_eq!(
            (again.re_extracted, again.skipped, again.switched),
            (0, total as u64, false)
        );
    }

    #[test]
    fn failures_keep_their_template_and_hold_the_switch_back() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut world = World::new();
        let engine = open(tmp.path());
        enrol(&engine, &world);
        // Two "images" went missing, one extraction returns the wrong model.
        world.images.remove("img/3/0");
        world.images.remove("img/5/1");
        let wrong = "img/7/0";
        let extract = |t: &StoredTemplate| {
            let path = &t.source.as_ref().ok_or("no source")?.path;
            let model = if path == wrong { a() } else { b() };
            world.extract(&model, path)
        };
        let opts = RescoreOptions {
            models: vec![b()],
            batch: 16,
            ..RescoreOptions::default()
        };
        let before = engine
            .gallery()
            .template(TemplateId(7))
            .expect("read")
            .expect("present");
        let report = engine.rescore(&opts, extract, |_| {}).expect("run");
        assert_eq!(report.failed.len(), 3, "{report:?}");
        assert_eq!((report.remaining, report.switched), (3, false));
        let reasons: Vec<&str> = report.failed.iter().map(|f| f.reason.as_str()).collect();
        assert!(
            reasons
                .iter()
                .filter(|r| r.contains("no such image"))
                .count()
                == 2,
            "{reasons:?}"
        );
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("expected a face template of face:proj-b@2:20")),
            "{reasons:?}"
        );
        // Encounter p*2+c+1 holds template p*2+c+1: img/3/0 is template 7.
        assert!(report
            .failed
            .iter()
            .any(|f| f.template == TemplateId(7) && f.encounter == before.encounter));
        assert_eq!(
            engine
                .gallery()
                .template(TemplateId(7))
                .expect("read")
                .expect("present"),
            before,
            "kept as it was"
        );
        assert!(matches!(
            rank1(&engine, &world, &b()),
            Err(EngineError::RescoreInProgress { .. })
        ));

        // The images are found again: the rerun does only those three and switches.
        let world = World::new();
        let extract =
            |t: &StoredTemplate| world.extract(&b(), &t.source.as_ref().ok_or("no source")?.path);
        let report = engine.rescore(&opts, extract, |_| {}).expect("rerun");
        assert_eq!(
            (report.re_extracted, report.remaining, report.switched),
            (3, 0, true)
        );
        assert_eq!(rank1(&engine, &world, &b()).expect("search"), PEOPLE);
    }

    #[test]
    fn a_forced_pass_keeps_the_model_searchable_and_resumes_after_its_cursor() {
        let tmp = tempfile::tempdir().expect("tmp");
        let world = World::new();
        let engine = open(tmp.path());
        enrol(&engine, &world);
        let total = (PEOPLE * CAPTURES) as u64;
        let seen: Mutex<Vec<TemplateId>> = Mutex::default();
        let cancel = AtomicBool::new(false);
        let extract = |t: &StoredTemplate| {
            seen.lock().expect("lock").push(t.id);
            // A search in the middle of a forced pass works: the model does not change.
            world.extract(&a(), &t.source.as_ref().ok_or("no source")?.path)
        };
        let opts = RescoreOptions {
            models: vec![a()],
            force: true,
            batch: 10,
            cancel: Some(&cancel),
            ..RescoreOptions::default()
        };
        let first = engine
            .rescore(&opts, extract, |p| {
                if p.done == 25 {
                    cancel.store(true, Ordering::Relaxed);
                }
            })
            .expect("first");
        assert!(first.cancelled && !first.switched);
        assert_eq!(rank1(&engine, &world, &a()).expect("searchable"), PEOPLE);
        let after = engine.gallery().info().expect("info").settings[SETTING_RESCORE_FORCE_AFTER]
            .parse::<u64>()
            .expect("cursor");
        assert!(
            (20..=first.re_extracted).contains(&after),
            "{after} {first:?}"
        );
        // The rerun (without --force: the pass stays forced) does the rest once.
        let opts = RescoreOptions {
            models: vec![a()],
            batch: 10,
            ..RescoreOptions::default()
        };
        let second = engine.rescore(&opts, extract, |_| {}).expect("second");
        assert!(second.switched, "{second:?}");
        assert_eq!(second.re_extracted, total - after);
        let seen = seen.into_inner().expect("lock");
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len() as u64, total, "every template re-extracted");
        assert_eq!(
            seen.len() as u64,
            total + (first.re_extracted - after),
            "only those past the cursor twice"
        );
        assert!(!engine
            .gallery()
            .info()
            .expect("info")
            .settings
            .contains_key(SETTING_RESCORE_FORCE_AFTER));
        assert_eq!(rank1(&engine, &world, &a()).expect("search"), PEOPLE);
    }
}
