//! Whole-gallery de-duplication.
//!
//! Every record (an encounter) is searched against the gallery: a k-nearest-neighbour
//! query through the face index (flat or HNSW, with a score gate) and, for fingers, the
//! index-code pre-filter then the MCC matcher. Each candidate pair found from either side
//! is re-scored exactly (all face templates of both records by cosine; fingers at the
//! same ISO position by the matcher), normalised on the gallery's own impostor
//! distributions and fused (see [`crate::fusion`]); pairs at or above the threshold are
//! matches. Matches are grouped into clusters with union-find, so the cost is
//! `records x (one k-NN query + k re-scores)`, never all pairs.
//!
//! The report then sorts what a reviewer must look at:
//! - **false identities**: one biometric cluster under two or more biographic identities:
//!   different names, dates of birth or document numbers where both records state them,
//!   or, between records that do not both state a name or document number, different
//!   subject ids (a legacy database files every record under its own id, so the ids of
//!   records that state who they claim to be do not count);
//! - **shared identities**: one biographic identity (the same document number, or the
//!   same name and date of birth) whose records do not match biometrically;
//! - **repeat encounters**: clusters whose records agree biographically.
//!
//! Biographic fields only label what the biometrics found: they never suppress a match.
//! Biographic keys read: `name`, `date_of_birth`, `document_number` (compared after
//! trimming, lower-casing and collapsing white space; a name written `LAST,FIRST`, as
//! ANSI/NIST-ITL transactions write it, is read as `FIRST LAST`).
//!
//! Limits: face scores use the gallery's first face model; a record's finger search
//! costs what [`Engine::identify`] costs per finger (the index's short list of the
//! larger of 2,000 and 1% of the gallery, or the share set with
//! [`crate::EngineBuilder::finger_short_list`], re-scored by the matcher), so
//! finger-heavy galleries of millions need a cheaper pre-filter; biographic groups
//! larger than [`MAX_SHARED_GROUP`] are compared on their first records only.
//!
//! ```
//! use huella_engine::{deduplicate_embeddings, ClusterKind, DedupIndex, DedupOptions, DedupRecord,
//!                     DedupThreshold, Embedding, EncounterId, SubjectId};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 300 people in 64 dimensions; person 0 comes back under another name.
//! let person = |p: usize, noise: f32| -> Result<Embedding, huella_engine::CoreError> {
//!     let mut x = (p as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15); // xorshift per person
//!     Embedding::new((0..64).map(|d| {
//!         x ^= x << 13; x ^= x >> 7; x ^= x << 17;
//!         (x % 2001) as f32 / 1000.0 - 1.0 + noise * (d as f32).cos()
//!     }).collect())
//! };
//! let mut records = Vec::new();
//! let mut faces = Vec::new();
//! for (i, (p, subject)) in (0..300).map(|p| (p, format!("S{p}"))).chain([(0, "ALIAS".to_string())]).enumerate() {
//!     records.push(DedupRecord { encounter: EncounterId(i as u64), subject: SubjectId::new(subject)?,
//!                                biographic: Default::default(), faces: 1, fingers: 0 });
//!     faces.push(Some(person(p, if i == 300 { 0.05 } else { 0.0 })?));
//! }
//! // Target FPIR 0.01%: the fused threshold is -log10(1e-4 / 300) = 6.48.
//! let opts = DedupOptions { threshold: DedupThreshold::TargetFpir(1e-4), ..DedupOptions::default() };
//! let report = deduplicate_embeddings(records, faces, DedupIndex::Exact, &opts)?;
//! assert!((report.summary.threshold - 6.477).abs() < 1e-3);
//! assert_eq!(report.clusters.len(), 1);
//! assert_eq!(report.clusters[0].kind, ClusterKind::FalseIdentity);
//! assert_eq!(report.clusters[0].records, vec![0, 300]);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use huella_core::{Embedding, EncounterId, FingerPosition, Modality, SubjectId, TemplateId};
use huella_finger::PreparedFinger;
use huella_index::{
    FlatIndex, HnswIndex, HnswParams, LshIndex, LshParams, SearchParams, VectorIndex,
};
use rayon::prelude::*;
use serde::Serialize;

use crate::fingerprint::{is_finger_template, FingerGallery};
use crate::fusion::{self, ImpostorModel, ScoreModels};
use crate::indexes::{embedding_of, ModelIndex};
use crate::{Engine, EngineError, Family};

/// Biographic key: the claimed name.
pub const KEY_NAME: &str = "name";
/// Biographic key: the claimed date of birth.
pub const KEY_DATE_OF_BIRTH: &str = "date_of_birth";
/// Biographic key: the document number.
pub const KEY_DOCUMENT_NUMBER: &str = "document_number";
/// Largest biographic group whose pairs are all compared for shared identities (larger
/// groups, such as a placeholder document number, are compared on their first records).
pub const MAX_SHARED_GROUP: usize = 50;

/// How the match threshold is set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DedupThreshold {
    /// A fused level (`-log10` FMR, see [`crate::fusion`]).
    Fused(f64),
    /// A target FPIR for this gallery's size: the level is `-log10(FPIR / (N - 1))`.
    TargetFpir(f64),
}

/// Options for [`Engine::deduplicate`].
#[derive(Debug, Clone)]
pub struct DedupOptions {
    /// Neighbours fetched per record and per template (k of the k-NN query). Default 10.
    pub neighbours: usize,
    /// The match threshold. Default: target FPIR 1%.
    pub threshold: DedupThreshold,
    /// Impostor face pairs sampled to normalise face scores (finger comparisons: a
    /// tenth of this). Default 100,000.
    pub impostor_pairs: usize,
    /// Face hits below this level (`-log10` FMR) are not candidates. Default 2 (the
    /// top 1% of impostor scores), far below any match threshold.
    pub candidate_level: f64,
    /// Seed of the impostor sampling. Default 1.
    pub seed: u64,
    /// Set to `true` (from another thread) to stop the run: it returns
    /// [`EngineError::Cancelled`] after the records in flight. Default none.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Where a de-duplication run is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DedupProgress {
    /// The k-NN searches are the long phase: records searched so far.
    pub searched: u64,
    /// Records to search.
    pub records: u64,
}

impl Default for DedupOptions {
    fn default() -> Self {
        Self {
            neighbours: 10,
            threshold: DedupThreshold::TargetFpir(0.01),
            impostor_pairs: 100_000,
            candidate_level: 2.0,
            seed: 1,
            cancel: None,
        }
    }
}

/// One record of the gallery: an encounter and what it claimed.
#[derive(Debug, Clone, Serialize)]
pub struct DedupRecord {
    /// The encounter.
    pub encounter: EncounterId,
    /// The subject id it was filed under.
    pub subject: SubjectId,
    /// Its biographic fields, shown to the reviewer.
    pub biographic: BTreeMap<String, String>,
    /// Face templates compared.
    pub faces: u32,
    /// Finger templates compared.
    pub fingers: u32,
}

/// What a scored pair is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PairDecision {
    /// A match between records with the same biographic identity.
    Repeat,
    /// A match between records with different biographic identities.
    FalseIdentity,
    /// No match, although both records claim the same biographic identity.
    SharedIdentity,
}

impl PairDecision {
    /// The snake_case name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            PairDecision::Repeat => "repeat",
            PairDecision::FalseIdentity => "false_identity",
            PairDecision::SharedIdentity => "shared_identity",
        }
    }
}

/// A pair of records with its per-modality and fused scores.
#[derive(Debug, Clone, Serialize)]
pub struct DuplicatePair {
    /// Index of the first record in [`DedupReport::records`] (the lower one).
    pub a: usize,
    /// Index of the second record.
    pub b: usize,
    /// Best cosine between their face templates; none when either has no face.
    pub face_score: Option<f32>,
    /// Mean MCC score over the fingers compared; none when no finger was comparable.
    pub finger_score: Option<f32>,
    /// Fingers compared.
    pub fingers_compared: u32,
    /// Fused level: `-log10` of the estimated impostor probability.
    pub fused_score: f64,
    /// What the pair is.
    pub decision: PairDecision,
}

/// The kind of a biometric cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterKind {
    /// The records agree biographically: the same person met again.
    Repeat,
    /// Two or more biographic identities: a possible false identity.
    FalseIdentity,
}

/// Records linked by biometric matches (connected components of the match graph).
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    /// What the cluster is.
    pub kind: ClusterKind,
    /// Record indices, ascending.
    pub records: Vec<usize>,
    /// Distinct subject ids.
    pub subjects: Vec<SubjectId>,
    /// Which biographic fields disagree inside the cluster (`subject`, `name`,
    /// `date_of_birth`, `document_number`).
    pub differing: Vec<&'static str>,
}

/// One biographic identity whose records do not all match biometrically.
#[derive(Debug, Clone, Serialize)]
pub struct SharedIdentity {
    /// The key shared: `document_number` or `name+date_of_birth`.
    pub key: &'static str,
    /// The records claiming it, ascending.
    pub records: Vec<usize>,
    /// Those records grouped by biometric cluster.
    pub groups: Vec<Vec<usize>>,
}

/// Counts and timings of a run.
#[derive(Debug, Clone, Serialize)]
pub struct DedupSummary {
    /// Records (encounters) examined.
    pub records: usize,
    /// Records with a face.
    pub records_with_face: usize,
    /// Records with fingers.
    pub records_with_fingers: usize,
    /// Distinct candidate pairs re-scored.
    pub candidate_pairs: usize,
    /// Pairs at or above the threshold.
    pub matched_pairs: usize,
    /// Clusters of two or more records.
    pub clusters: usize,
    /// Clusters under two or more biographic identities.
    pub false_identities: usize,
    /// Biographic identities whose records do not match.
    pub shared_identities: usize,
    /// Clusters that are plain repeat encounters.
    pub repeat_clusters: usize,
    /// The fused threshold applied.
    pub threshold: f64,
    /// The target FPIR, when the threshold came from one.
    pub target_fpir: Option<f64>,
    /// The same as MOSIP's `targetFPIR`.
    pub mosip_target_fpir: Option<i32>,
    /// Impostor face scores sampled.
    pub face_impostors: usize,
    /// Impostor finger comparisons sampled.
    pub finger_impostors: usize,
    /// k of the k-NN queries.
    pub neighbours: usize,
    /// Loading records and sampling impostors, milliseconds.
    pub prepare_ms: u64,
    /// The k-NN searches, milliseconds.
    pub search_ms: u64,
    /// Exact re-scoring, clustering and labelling, milliseconds.
    pub rescore_ms: u64,
    /// Total runtime, milliseconds.
    pub runtime_ms: u64,
}

/// The result of a de-duplication run.
#[derive(Debug, Clone, Serialize)]
pub struct DedupReport {
    /// Every record, in store order; pairs and clusters refer to these indices.
    pub records: Vec<DedupRecord>,
    /// Matched pairs, then shared-identity non-matches; each (a, b) once.
    pub pairs: Vec<DuplicatePair>,
    /// Clusters of two or more records: false identities first, then larger first.
    pub clusters: Vec<Cluster>,
    /// Biographic identities whose records do not match.
    pub shared_identities: Vec<SharedIdentity>,
    /// Counts and timings.
    pub summary: DedupSummary,
}

/// Union-find with path halving and union by size.
#[derive(Debug, Clone)]
pub struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    /// `n` singletons.
    pub fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    /// The representative of `x`'s set.
    pub fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] as usize != x {
            let p = self.parent[x] as usize;
            self.parent[x] = self.parent[p];
            x = p;
        }
        x
    }

    /// Join the sets of `a` and `b`.
    pub fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a as u32;
        self.size[a] += self.size[b];
    }

    /// The sets with two or more members, each ascending, ordered by their smallest.
    pub fn groups(&mut self) -> Vec<Vec<usize>> {
        let mut by_root: HashMap<usize, Vec<usize>> = HashMap::new();
        for x in 0..self.parent.len() {
            let r = self.find(x);
            by_root.entry(r).or_default().push(x);
        }
        let mut out: Vec<Vec<usize>> = by_root.into_values().filter(|g| g.len() > 1).collect();
        out.sort_by_key(|g| g[0]);
        out
    }
}

/// Where the records' biometrics come from: the engine's indexes or an in-memory set.
struct Sources<'a> {
    face_index: Option<&'a dyn VectorIndex>,
    /// Face template -> record.
    face_owner: HashMap<TemplateId, u32>,
    faces: Vec<Vec<Embedding>>,
    fingers: Option<&'a FingerGallery>,
    /// Per record: (position, template) of each finger held by the finger gallery.
    finger_ids: Vec<Vec<(FingerPosition, TemplateId)>>,
    finger_owner: HashMap<TemplateId, u32>,
}

impl Engine {
    /// De-duplicate the whole gallery (see the [module docs](crate::dedup)). Runs on the
    /// current rayon pool: call it inside the caller's `pool.install`.
    ///
    /// Face scores use the gallery's first face model; fingers are compared when the
    /// gallery holds them.
    pub fn deduplicate(&self, opts: &DedupOptions) -> Result<DedupReport, EngineError> {
        self.deduplicate_with_progress(opts, |_| {})
    }

    /// [`Engine::deduplicate`], calling `progress` after each record searched (from the
    /// worker threads; keep it cheap, e.g. a progress bar's `set_position`).
    pub fn deduplicate_with_progress(
        &self,
        opts: &DedupOptions,
        progress: impl Fn(&DedupProgress) + Sync,
    ) -> Result<DedupReport, EngineError> {
        let start = Instant::now();
        self.rescore.check_all()?;
        let (indexes, finger_lock) = self.search_parts();
        let indexes = indexes.read();
        let fingers = finger_lock.map(|f| f.read());
        let (records, src) = self.load_records(&indexes, fingers.as_deref())?;
        run(records, &src, opts, start, &progress)
    }

    /// The impostor models of the gallery as it is now, sampled as
    /// [`Engine::deduplicate`] samples them (with its default options).
    pub(crate) fn sample_score_models(&self) -> Result<ScoreModels, EngineError> {
        let (indexes, finger_lock) = self.search_parts();
        let indexes = indexes.read();
        let fingers = finger_lock.map(|f| f.read());
        let (records, src) = self.load_records(&indexes, fingers.as_deref())?;
        if records.len() < 2 {
            return Ok(ScoreModels::default());
        }
        src.impostor_models(&records, &DedupOptions::default(), true)
    }

    /// Every encounter as a record, with its faces (the first face model's) and the
    /// fingers the finger gallery holds.
    fn load_records<'a>(
        &self,
        indexes: &'a [ModelIndex],
        fingers: Option<&'a FingerGallery>,
    ) -> Result<(Vec<DedupRecord>, Sources<'a>), EngineError> {
        let face_slot = indexes.iter().position(|m| m.model.family == Family::Face);
        let mut records = Vec::new();
        let mut slot_of: HashMap<EncounterId, u32> = HashMap::new();
        for subject in self.gallery().subjects()? {
            for e in self.gallery().subject_encounters(&subject)? {
                slot_of.insert(e.id, records.len() as u32);
                records.push(DedupRecord {
                    encounter: e.id,
                    subject: e.subject,
                    biographic: e.biographic,
                    faces: 0,
                    fingers: 0,
                });
            }
        }
        let n = records.len();
        let mut src = Sources {
            face_index: face_slot.map(|s| indexes[s].index.get()),
            face_owner: HashMap::new(),
            faces: vec![Vec::new(); n],
            fingers,
            finger_ids: vec![Vec::new(); n],
            finger_owner: HashMap::new(),
        };
        self.gallery().for_each_template(|t| {
            let Some(&r) = slot_of.get(&t.encounter) else {
                return Ok(());
            };
            if let Some(s) = face_slot {
                if let Some(e) = embedding_of(&indexes[s].model, &t.template) {
                    src.face_owner.insert(t.id, r);
                    src.faces[r as usize].push(e.clone());
                    records[r as usize].faces += 1;
                }
            }
            if let (Some(f), Modality::Finger(pos)) = (fingers, t.template.modality()) {
                if is_finger_template(&t.template) && f.prepared_of(t.id).is_some() {
                    src.finger_owner.insert(t.id, r);
                    src.finger_ids[r as usize].push((pos, t.id));
                    records[r as usize].fingers += 1;
                }
            }
            Ok(())
        })?;
        Ok((records, src))
    }
}

/// The index [`deduplicate_embeddings`] builds for its k-NN searches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DedupIndex {
    /// Exact scan ([`FlatIndex`]): every neighbour found, cost quadratic in records.
    Exact,
    /// HNSW graph with these parameters (`ef_search` is the search breadth).
    Hnsw(HnswParams),
    /// Cross-polytope LSH sized for the gallery ([`LshParams::for_gallery`]), visiting
    /// `probes` buckets per search.
    Lsh {
        /// Buckets visited per search over all tables.
        probes: usize,
    },
}

/// De-duplicate records held in memory, one face embedding (or none) per record,
/// through the `index` built here on the current rayon pool. The same algorithm as
/// [`Engine::deduplicate`], for embeddings exported from another system and for scale
/// benchmarks.
pub fn deduplicate_embeddings(
    records: Vec<DedupRecord>,
    faces: Vec<Option<Embedding>>,
    index: DedupIndex,
    opts: &DedupOptions,
) -> Result<DedupReport, EngineError> {
    let start = Instant::now();
    if records.len() != faces.len() {
        return Err(EngineError::BadInput(format!(
            "{} records but {} faces",
            records.len(),
            faces.len()
        )));
    }
    let Some(dim) = faces.iter().flatten().map(Embedding::dimension).next() else {
        return Err(EngineError::BadInput("no record holds a face".into()));
    };
    let items: Vec<(TemplateId, Embedding)> = faces
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.clone().map(|e| (TemplateId(i as u64), e)))
        .collect();
    let mut index: Box<dyn VectorIndex> = match index {
        DedupIndex::Exact => Box::new(FlatIndex::new(dim)?),
        DedupIndex::Hnsw(p) => Box::new(HnswIndex::new(dim, p)?),
        DedupIndex::Lsh { probes } => {
            let mut params = LshParams::for_gallery(dim, items.len());
            params.probes = probes;
            Box::new(LshIndex::new(dim, params)?)
        }
    };
    index.insert_batch(&items)?;
    let mut records = records;
    for (r, f) in records.iter_mut().zip(&faces) {
        r.faces = u32::from(f.is_some());
        r.fingers = 0;
    }
    let n = records.len();
    let src = Sources {
        face_index: Some(index.as_ref()),
        face_owner: items.iter().map(|(id, _)| (*id, id.0 as u32)).collect(),
        faces: faces.into_iter().map(|f| f.into_iter().collect()).collect(),
        fingers: None,
        finger_ids: vec![Vec::new(); n],
        finger_owner: HashMap::new(),
    };
    run(records, &src, opts, start, &|_| {})
}

/// A small deterministic generator for impostor sampling (splitmix64).
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

/// Scores of one pair: raw and normalised.
struct PairScore {
    face: Option<f32>,
    finger: Option<f32>,
    fingers_compared: u32,
    fused: f64,
    comparable: bool,
}

impl Sources<'_> {
    fn prepared(&self, id: TemplateId) -> Option<&PreparedFinger> {
        self.fingers.and_then(|f| f.prepared_of(id))
    }

    /// Record `r`'s fingers that the finger gallery holds, ready to match.
    fn fingers_of(&self, r: usize) -> Vec<(FingerPosition, &PreparedFinger)> {
        self.finger_ids[r]
            .iter()
            .filter_map(|&(pos, id)| self.prepared(id).map(|p| (pos, p)))
            .collect()
    }

    /// Every face of `a` against every face of `b`; the fingers of the record with
    /// fewer fingers against the other's (see [`fusion::finger_scores`]); then levels
    /// and their fusion.
    fn score(&self, models: &ScoreModels, a: usize, b: usize) -> PairScore {
        let face = fusion::best_face(&self.faces[a], &self.faces[b]).map(|(s, _)| s);
        let fingers = match self.fingers {
            Some(f) if !self.finger_ids[a].is_empty() && !self.finger_ids[b].is_empty() => {
                let (a, b) = if self.finger_ids[b].len() < self.finger_ids[a].len() {
                    (b, a)
                } else {
                    (a, b)
                };
                fusion::finger_scores(f.matcher(), &self.fingers_of(a), &self.fingers_of(b))
            }
            _ => Vec::new(),
        };
        let levels = models.levels(face, &fingers);
        PairScore {
            face,
            finger: fusion::mean_score(&fingers),
            fingers_compared: fingers.len() as u32,
            comparable: levels.comparable,
            fused: levels.fused,
        }
    }

    /// Impostor samples from random pairs of records under different subject ids.
    /// With `tolerant`, a modality whose sample is too small has no model instead of
    /// failing the call.
    fn impostor_models(
        &self,
        records: &[DedupRecord],
        opts: &DedupOptions,
        tolerant: bool,
    ) -> Result<ScoreModels, EngineError> {
        let mut rng = SplitMix(opts.seed);
        let sample = |rng: &mut SplitMix, pool: &[usize], target: usize| -> Vec<(usize, usize)> {
            let mut pairs = Vec::with_capacity(target);
            if pool.len() < 2 {
                return pairs;
            }
            // A small gallery: every impostor pair once, rather than repeats.
            if pool.len() * (pool.len() - 1) / 2 <= target {
                for (x, &i) in pool.iter().enumerate() {
                    for &j in &pool[x + 1..] {
                        if records[i].subject != records[j].subject {
                            pairs.push((i, j));
                        }
                    }
                }
                return pairs;
            }
            for _ in 0..target.saturating_mul(20) {
                let (i, j) = (pool[rng.below(pool.len())], pool[rng.below(pool.len())]);
                if records[i].subject != records[j].subject {
                    pairs.push((i, j));
                    if pairs.len() == target {
                        break;
                    }
                }
            }
            pairs
        };
        let with_face: Vec<usize> = (0..records.len())
            .filter(|&r| !self.faces[r].is_empty())
            .collect();
        let face = if with_face.len() >= 2 {
            let pairs = sample(&mut rng, &with_face, opts.impostor_pairs);
            let scores: Vec<f32> = pairs
                .par_iter()
                .filter_map(|&(i, j)| self.faces[i][0].cosine(&self.faces[j][0]).ok())
                .collect();
            fit(scores, tolerant)?
        } else {
            None
        };
        let with_fingers: Vec<usize> = (0..records.len())
            .filter(|&r| !self.finger_ids[r].is_empty())
            .collect();
        let finger = if with_fingers.len() >= 2 {
            let pairs = sample(&mut rng, &with_fingers, (opts.impostor_pairs / 10).max(500));
            // Single comparisons (no best-of): the model of one finger against one.
            let scores: Vec<f32> = pairs
                .par_iter()
                .flat_map_iter(|&(i, j)| {
                    let f = self.fingers;
                    let mut out = Vec::new();
                    for &(pos, ia) in &self.finger_ids[i] {
                        for &(qos, ib) in &self.finger_ids[j] {
                            if pos == qos || pos == FingerPosition::Unknown {
                                if let (Some(f), Some(pa), Some(pb)) =
                                    (f, self.prepared(ia), self.prepared(ib))
                                {
                                    out.push(f.matcher().compare(pa, pb));
                                }
                            }
                        }
                    }
                    out
                })
                .collect();
            fit(scores, tolerant)?
        } else {
            None
        };
        Ok(ScoreModels { face, finger })
    }

    /// The candidate partners of record `r` (indices above or below), from its k-NN.
    fn candidates(
        &self,
        r: usize,
        k: usize,
        face_gate: Option<f32>,
    ) -> Result<Vec<u32>, EngineError> {
        let mut out: Vec<u32> = Vec::new();
        if let Some(index) = self.face_index {
            for e in &self.faces[r] {
                let params = SearchParams {
                    k: k + self.faces[r].len(),
                    min_score: face_gate,
                    filter: None,
                };
                for hit in index.search(e, &params)? {
                    if let Some(&o) = self.face_owner.get(&hit.id) {
                        out.push(o);
                    }
                }
            }
        }
        if let Some(f) = self.fingers {
            for &(_, id) in &self.finger_ids[r] {
                if let Some(p) = f.prepared_of(id) {
                    for hit in f.search(p, k + self.finger_ids[r].len(), None) {
                        if let Some(&o) = self.finger_owner.get(&hit.id) {
                            out.push(o);
                        }
                    }
                }
            }
        }
        out.retain(|&o| o as usize != r);
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

/// An impostor model from a sample; with `tolerant`, none from a too-small sample.
fn fit(scores: Vec<f32>, tolerant: bool) -> Result<Option<ImpostorModel>, EngineError> {
    if tolerant && scores.len() < fusion::MIN_IMPOSTOR_SAMPLE {
        return Ok(None);
    }
    ImpostorModel::from_scores(scores).map(Some)
}

fn norm(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A biographic field as compared: trimmed, lower-cased, white space collapsed; a name
/// written `LAST,FIRST` (the ANSI/NIST-ITL NAM field) is read as `FIRST LAST`.
fn field(r: &DedupRecord, key: &str) -> Option<String> {
    let v = r.biographic.get(key)?;
    let v = match v.split_once(',') {
        Some((last, first)) if key == KEY_NAME => norm(&format!("{first} {last}")),
        _ => norm(v),
    };
    (!v.is_empty()).then_some(v)
}

/// The biographic keys compared, in report order.
const IDENTITY_KEYS: [&str; 3] = [KEY_NAME, KEY_DATE_OF_BIRTH, KEY_DOCUMENT_NUMBER];

/// Whether a record states who it claims to be (a name or a document number).
fn states_identity(r: &DedupRecord) -> bool {
    field(r, KEY_NAME).is_some() || field(r, KEY_DOCUMENT_NUMBER).is_some()
}

/// Which biographic fields differ among `records` (a field counts when two records
/// state different values), and `subject` when their subject ids differ and not all of
/// them state an identity.
fn differing<'r>(records: impl IntoIterator<Item = &'r DedupRecord> + Clone) -> Vec<&'static str> {
    let mut out = Vec::new();
    let subjects: BTreeSet<&SubjectId> = records.clone().into_iter().map(|r| &r.subject).collect();
    if subjects.len() > 1 && !records.clone().into_iter().all(states_identity) {
        out.push("subject");
    }
    for key in IDENTITY_KEYS {
        let values: BTreeSet<String> = records
            .clone()
            .into_iter()
            .filter_map(|r| field(r, key))
            .collect();
        if values.len() > 1 {
            out.push(key);
        }
    }
    out
}

fn ms(t: Instant) -> u64 {
    t.elapsed().as_millis() as u64
}

fn run(
    records: Vec<DedupRecord>,
    src: &Sources<'_>,
    opts: &DedupOptions,
    start: Instant,
    progress: &(dyn Fn(&DedupProgress) + Sync),
) -> Result<DedupReport, EngineError> {
    if opts.neighbours == 0 || opts.neighbours > crate::MAX_CANDIDATES {
        return Err(EngineError::BadInput(format!(
            "neighbours {} outside 1..={}",
            opts.neighbours,
            crate::MAX_CANDIDATES
        )));
    }
    let n = records.len();
    let (threshold, target_fpir) = match opts.threshold {
        DedupThreshold::Fused(t) if t.is_finite() && t >= 0.0 => (t, None),
        DedupThreshold::Fused(t) => {
            return Err(EngineError::BadInput(format!(
                "fused threshold {t} must be a finite level >= 0"
            )))
        }
        DedupThreshold::TargetFpir(f) => {
            (fusion::threshold_for_fpir(f, n.saturating_sub(1))?, Some(f))
        }
    };
    let models = if n >= 2 {
        src.impostor_models(&records, opts, false)?
    } else {
        ScoreModels::default()
    };
    let face_gate = models
        .face
        .as_ref()
        .map(|m| m.score_at_level(opts.candidate_level));
    let prepare_ms = ms(start);

    // 1. k-NN per record, in parallel; each unordered pair once.
    let t_search = Instant::now();
    let searched = AtomicU64::new(0);
    let per_record: Vec<Vec<u32>> = (0..n)
        .into_par_iter()
        .map(|r| {
            if opts
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                return Err(EngineError::Cancelled);
            }
            let found = src.candidates(r, opts.neighbours, face_gate)?;
            progress(&DedupProgress {
                searched: searched.fetch_add(1, Ordering::Relaxed) + 1,
                records: n as u64,
            });
            Ok(found)
        })
        .collect::<Result<_, EngineError>>()?;
    let mut candidates: Vec<(u32, u32)> = per_record
        .into_iter()
        .enumerate()
        .flat_map(|(r, others)| {
            others
                .into_iter()
                .map(move |o| (o.min(r as u32), o.max(r as u32)))
        })
        .collect();
    candidates.par_sort_unstable();
    candidates.dedup();
    let search_ms = ms(t_search);

    // 2. Exact re-scoring and the threshold.
    let t_rescore = Instant::now();
    let mut pairs: Vec<DuplicatePair> = candidates
        .par_iter()
        .filter_map(|&(a, b)| {
            let (a, b) = (a as usize, b as usize);
            let s = src.score(&models, a, b);
            (s.comparable && s.fused >= threshold).then(|| DuplicatePair {
                a,
                b,
                face_score: s.face,
                finger_score: s.finger,
                fingers_compared: s.fingers_compared,
                fused_score: s.fused,
                decision: if differing([&records[a], &records[b]]).is_empty() {
                    PairDecision::Repeat
                } else {
                    PairDecision::FalseIdentity
                },
            })
        })
        .collect();

    // 3. Clusters.
    let mut uf = UnionFind::new(n);
    for p in &pairs {
        uf.union(p.a, p.b);
    }
    let mut clusters: Vec<Cluster> = uf
        .groups()
        .into_iter()
        .map(|members| {
            let subjects: BTreeSet<SubjectId> = members
                .iter()
                .map(|&r| records[r].subject.clone())
                .collect();
            let differing = differing(members.iter().map(|&r| &records[r]));
            Cluster {
                kind: if differing.is_empty() {
                    ClusterKind::Repeat
                } else {
                    ClusterKind::FalseIdentity
                },
                records: members,
                subjects: subjects.into_iter().collect(),
                differing,
            }
        })
        .collect();
    clusters.sort_by(|x, y| {
        (x.kind == ClusterKind::Repeat)
            .cmp(&(y.kind == ClusterKind::Repeat))
            .then(y.records.len().cmp(&x.records.len()))
            .then(x.records[0].cmp(&y.records[0]))
    });

    // 4. Shared identities: one biographic key, records in different clusters that
    //    are comparable and do not match.
    let mut groups: BTreeMap<(&'static str, String), Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if let Some(doc) = field(r, KEY_DOCUMENT_NUMBER) {
            groups
                .entry((KEY_DOCUMENT_NUMBER, doc))
                .or_default()
                .push(i);
        }
        if let (Some(name), Some(dob)) = (field(r, KEY_NAME), field(r, KEY_DATE_OF_BIRTH)) {
            groups
                .entry(("name+date_of_birth", format!("{name}\u{1f}{dob}")))
                .or_default()
                .push(i);
        }
    }
    let mut shared = Vec::new();
    let mut seen_pairs: BTreeSet<(usize, usize)> = BTreeSet::new();
    for ((key, _), members) in groups {
        if members.len() < 2 {
            continue;
        }
        let head = &members[..members.len().min(MAX_SHARED_GROUP)];
        let mut mismatch = false;
        for (x, &a) in head.iter().enumerate() {
            for &b in &head[x + 1..] {
                if uf.find(a) == uf.find(b) {
                    continue;
                }
                let s = src.score(&models, a, b);
                if !s.comparable {
                    continue;
                }
                mismatch = true;
                if seen_pairs.insert((a, b)) {
                    pairs.push(DuplicatePair {
                        a,
                        b,
                        face_score: s.face,
                        finger_score: s.finger,
                        fingers_compared: s.fingers_compared,
                        fused_score: s.fused,
                        decision: PairDecision::SharedIdentity,
                    });
                }
            }
        }
        if mismatch {
            let mut by_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for &r in &members {
                by_root.entry(uf.find(r)).or_default().push(r);
            }
            let mut g: Vec<Vec<usize>> = by_root.into_values().collect();
            g.sort_by_key(|v| v[0]);
            shared.push(SharedIdentity {
                key,
                records: members,
                groups: g,
            });
        }
    }
    pairs.sort_by(|x, y| {
        (x.decision == PairDecision::SharedIdentity)
            .cmp(&(y.decision == PairDecision::SharedIdentity))
            .then(y.fused_score.total_cmp(&x.fused_score))
            .then((x.a, x.b).cmp(&(y.a, y.b)))
    });

    let matched = pairs
        .iter()
        .filter(|p| p.decision != PairDecision::SharedIdentity)
        .count();
    let false_identities = clusters
        .iter()
        .filter(|c| c.kind == ClusterKind::FalseIdentity)
        .count();
    let summary = DedupSummary {
        records: n,
        records_with_face: src.faces.iter().filter(|f| !f.is_empty()).count(),
        records_with_fingers: src.finger_ids.iter().filter(|f| !f.is_empty()).count(),
        candidate_pairs: candidates.len(),
        matched_pairs: matched,
        clusters: clusters.len(),
        false_identities,
        shared_identities: shared.len(),
        repeat_clusters: clusters.len() - false_identities,
        threshold,
        target_fpir,
        mosip_target_fpir: target_fpir.map(fusion::mosip_target_fpir),
        face_impostors: models.face.as_ref().map_or(0, ImpostorModel::len),
        finger_impostors: models.finger.as_ref().map_or(0, ImpostorModel::len),
        neighbours: opts.neighbours,
        prepare_ms,
        search_ms,
        rescore_ms: ms(t_rescore),
        runtime_ms: ms(start),
    };
    tracing::info!(
        records = n,
        pairs = matched,
        clusters = summary.clusters,
        "de-duplication finished"
    );
    Ok(DedupReport {
        records,
        pairs,
        clusters,
        shared_identities: shared,
        summary,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// The oracle: connected components by breadth-first search.
    fn bfs_components(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
        let mut adj = vec![Vec::new(); n];
        for &(a, b) in edges {
            adj[a].push(b);
            adj[b].push(a);
        }
        let mut seen = vec![false; n];
        let mut out = Vec::new();
        for s in 0..n {
            if seen[s] {
                continue;
            }
            seen[s] = true;
            let mut comp = vec![s];
            let mut queue = std::collections::VecDeque::from([s]);
            while let Some(x) = queue.pop_front() {
                for &y in &adj[x] {
                    if !seen[y] {
                        seen[y] = true;
                        comp.push(y);
                        queue.push_back(y);
                    }
                }
            }
            if comp.len() > 1 {
                comp.sort_unstable();
                out.push(comp);
            }
        }
        out.sort_by_key(|g| g[0]);
        out
    }

    #[test]
    fn property_union_find_equals_bfs_components() {
        let mut rng = StdRng::seed_from_u64(3);
        for trial in 0..500 {
            let n = rng.gen_range(1..200);
            let m = rng.gen_range(0..n * 2);
            let edges: Vec<(usize, usize)> = (0..m)
                .map(|_| (rng.gen_range(0..n), rng.gen_range(0..n)))
                .collect();
            let mut uf = UnionFind::new(n);
            for &(a, b) in &edges {
                uf.union(a, b);
            }
            assert_eq!(uf.groups(), bfs_components(n, &edges), "trial {trial}");
        }
    }

    fn record(subject: &str, name: &str, doc: &str) -> DedupRecord {
        DedupRecord {
            encounter: EncounterId(0),
            subject: SubjectId::new(subject).unwrap(),
            biographic: BTreeMap::from([
                (KEY_NAME.to_string(), name.to_string()),
                (KEY_DOCUMENT_NUMBER.to_string(), doc.to_string()),
            ]),
            faces: 1,
            fingers: 0,
        }
    }

    #[test]
    fn biographic_differences_ignore_case_spacing_and_missing_fields() {
        let a = record("S1", "Ana  María", "X1");
        let b = record("S1", "ana maría ", "X1");
        assert!(differing([&a, &b]).is_empty());
        let c = record("S2", "Other", "");
        assert_eq!(differing([&a, &c]), vec![KEY_NAME]);
        // Legacy records under their own ids that claim the same identity: a repeat.
        let d = record("S3", "Ana Maria", "X1");
        let e = record("S4", "ana maria", "x1");
        assert!(differing([&d, &e]).is_empty());
        // A transaction's `LAST,FIRST` is the same name as a manifest's `First Last`.
        let g = record("S6", "MARIA,ANA", "X1");
        assert!(differing([&d, &g]).is_empty());
        // Without a stated identity, the subject ids decide.
        let f = record("S5", "", "");
        assert_eq!(differing([&d, &f]), vec!["subject"]);
        assert_eq!(differing([&d, &e, &f, &c]), vec!["subject", KEY_NAME]);
    }
}
