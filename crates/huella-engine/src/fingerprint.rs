//! Fingerprints in the gallery: the engine side of `huella-finger`.
//!
//! A finger template is an ISO/IEC 19794-2:2005 minutiae record (the interchange format
//! agencies exchange) stored as an opaque template of algorithm [`finger_model`], with
//! the finger position as its modality. The store stays the source of truth: on open
//! the engine reads every finger record and builds an in-memory [`FingerGallery`] (MCC
//! cylinders for the matcher, index codes for the pre-filter); enrolment and deletion
//! keep it in step. 1:N search scans the codes, re-scores the short list with the full
//! matcher and fuses multi-finger probes per subject.

use std::collections::HashMap;

use huella_core::{AlgorithmId, FingerPosition, Modality, Template, TemplateId, TemplatePayload};
use huella_finger::{
    CodeIndex, FingerCoder, FingerTemplate, IndexCodeParams, Matcher, MinutiaeRecord,
    PreparedFinger, RecordFormat,
};
use huella_index::{Hit, IdFilter};
use huella_store::Gallery;

use crate::error::EngineError;

/// Name of the finger algorithm: ISO minutiae records compared by Huella's MCC matcher.
pub const FINGER_ALGORITHM: &str = "huella-mcc";
/// Its version; changes when scores of the same records would change.
pub const FINGER_ALGORITHM_VERSION: &str = "1";
/// Galleries up to this many live fingers are searched exhaustively by the matcher.
pub const EXACT_SEARCH_UP_TO: usize = 5_000;
/// Shortest short list the index code hands to the matcher in larger galleries (the
/// short list is the larger of this and 1% of the gallery). A 1% short list of a
/// million fingers holds the mate of a single-finger probe for about 81% of FVC2002
/// genuine pairs (BENCHMARKS.md, "1:N with the index code"): the price of keeping a
/// search of a million fingers near a quarter of a second.
pub const MIN_SHORT_LIST: usize = 2_000;

/// The algorithm stamped on finger templates.
pub fn finger_model() -> AlgorithmId {
    AlgorithmId::new(FINGER_ALGORITHM, FINGER_ALGORITHM_VERSION)
        .expect("the constant is a valid algorithm id")
}

/// Whether `t` is a finger template the engine matches.
pub fn is_finger_template(t: &Template) -> bool {
    matches!(t.modality(), Modality::Finger(_)) && t.algorithm() == &finger_model()
}

/// A finger template: the minutiae as an ISO/IEC 19794-2:2005 record, at `position`.
///
/// ```
/// use huella_engine::finger::{FingerTemplate, Minutia, MinutiaKind};
/// use huella_engine::{finger_template, Engine, FingerPosition, IdentifyOptions, NewEncounter, NewTemplate, SubjectId};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Minutiae as an extractor (or a vendor record) gives them: pixels, radians.
/// let minutiae = (0..30u16)
///     .map(|i| Minutia {
///         x: 40 + (i * 37) % 220,
///         y: 40 + (i * 53) % 320,
///         angle: f32::from(i) * 0.7 % std::f32::consts::TAU,
///         kind: MinutiaKind::Ending,
///         quality: 60,
///     })
///     .collect();
/// let finger = FingerTemplate {
///     width: 300, height: 400, resolution_x: 197, resolution_y: 197,
///     position: FingerPosition::Unknown, quality: 60, minutiae,
/// };
/// let template = finger_template(FingerPosition::RightIndex, &finger)?;
///
/// let dir = tempfile::tempdir()?;
/// let engine = Engine::builder().gallery(dir.path()).create_if_missing(true).fingers(true).build()?;
/// engine.enroll(
///     NewEncounter {
///         subject: SubjectId::new("CASE-1")?,
///         captured_at_unix_ms: 0,
///         location: None,
///         operator: None,
///         biographic: Default::default(),
///         templates: vec![NewTemplate { template: template.clone(), source: None }],
///     },
///     &IdentifyOptions::default(),
/// )?;
/// let candidates = engine.identify(&[template], &IdentifyOptions::default())?;
/// assert_eq!(candidates[0].subject.as_str(), "CASE-1");
/// # Ok(()) }
/// ```
pub fn finger_template(
    position: FingerPosition,
    minutiae: &FingerTemplate,
) -> Result<Template, EngineError> {
    let mut t = minutiae.clone();
    t.position = position;
    let bytes = MinutiaeRecord::from_template(&t, RecordFormat::Iso19794_2_2005)?.encode()?;
    Ok(Template::new(
        Modality::Finger(position),
        finger_model(),
        TemplatePayload::Opaque(bytes),
    )?)
}

/// A finger template from an ISO/IEC 19794-2 or ANSI INCITS 378 record made by any
/// extractor (its first view); the position comes from the record unless given.
pub fn finger_template_from_record(
    record: &[u8],
    position: Option<FingerPosition>,
) -> Result<Template, EngineError> {
    let minutiae = MinutiaeRecord::decode(record)?.to_template(0)?;
    finger_template(position.unwrap_or(minutiae.position), &minutiae)
}

/// The minutiae of a finger template.
pub fn finger_minutiae(t: &Template) -> Result<FingerTemplate, EngineError> {
    if !is_finger_template(t) {
        return Err(EngineError::BadInput(format!(
            "a {} template of {} is not a finger template of {}",
            t.modality(),
            t.algorithm(),
            finger_model()
        )));
    }
    match t.payload() {
        TemplatePayload::Opaque(bytes) => Ok(MinutiaeRecord::decode(bytes)?.to_template(0)?),
        TemplatePayload::Embedding(_) => Err(EngineError::BadInput(
            "finger templates hold minutiae records, not embeddings".into(),
        )),
    }
}

/// Every finger of the gallery, ready to match.
#[derive(Debug)]
pub(crate) struct FingerGallery {
    matcher: Matcher,
    coder: FingerCoder,
    ids: Vec<TemplateId>,
    prepared: Vec<PreparedFinger>,
    codes: CodeIndex,
    live: Vec<bool>,
    slot: HashMap<TemplateId, usize>,
}

impl FingerGallery {
    fn empty() -> Result<Self, EngineError> {
        let coder = FingerCoder::new(IndexCodeParams::default())?;
        Ok(Self {
            matcher: Matcher::default(),
            codes: CodeIndex::new(&coder),
            coder,
            ids: Vec::new(),
            prepared: Vec::new(),
            live: Vec::new(),
            slot: HashMap::new(),
        })
    }

    /// Read every finger record of the store.
    pub(crate) fn build(gallery: &Gallery) -> Result<Self, EngineError> {
        let mut fingers = Self::empty()?;
        let mut records = Vec::new();
        gallery.for_each_template(|t| {
            if is_finger_template(&t.template) {
                records.push((t.id, t.template));
            }
            Ok(())
        })?;
        use rayon::prelude::*;
        let matcher = &fingers.matcher;
        let prepared: Vec<Result<PreparedFinger, EngineError>> = records
            .par_iter()
            .map(|(_, t)| finger_minutiae(t).map(|m| matcher.prepare(&m)))
            .collect();
        for ((id, _), p) in records.iter().zip(prepared) {
            fingers.add(*id, p?)?;
        }
        Ok(fingers)
    }

    /// Number of live fingers.
    pub(crate) fn len(&self) -> usize {
        self.slot.len()
    }

    /// Memory of the prepared fingers and their codes, bytes (the id map aside).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.codes.memory_bytes()
            + self
                .prepared
                .iter()
                .map(PreparedFinger::memory_bytes)
                .sum::<usize>()
    }

    /// Prepare a probe.
    pub(crate) fn prepare(&self, t: &Template) -> Result<PreparedFinger, EngineError> {
        Ok(self.matcher.prepare(&finger_minutiae(t)?))
    }

    /// Add a stored template.
    pub(crate) fn insert(&mut self, id: TemplateId, t: &Template) -> Result<(), EngineError> {
        let p = self.prepare(t)?;
        self.add(id, p)
    }

    fn add(&mut self, id: TemplateId, p: PreparedFinger) -> Result<(), EngineError> {
        if self.slot.contains_key(&id) {
            return Ok(());
        }
        self.codes.push(&self.coder.code(&p))?;
        self.slot.insert(id, self.ids.len());
        self.ids.push(id);
        self.prepared.push(p);
        self.live.push(true);
        Ok(())
    }

    /// Forget a template (its slot stays, marked dead).
    pub(crate) fn remove(&mut self, id: TemplateId) {
        if let Some(s) = self.slot.remove(&id) {
            self.live[s] = false;
        }
    }

    /// The prepared cylinders of a live stored finger.
    pub(crate) fn prepared_of(&self, id: TemplateId) -> Option<&PreparedFinger> {
        self.slot.get(&id).map(|&s| &self.prepared[s])
    }

    /// The matcher.
    pub(crate) fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Compare two finger templates with the matcher.
    pub(crate) fn compare(&self, a: &Template, b: &Template) -> Result<f32, EngineError> {
        Ok(self.matcher.compare(&self.prepare(a)?, &self.prepare(b)?))
    }

    /// The `k` best live fingers for a probe, matcher scores in [0, 1], best first.
    /// Small galleries and restricted searches are scanned exhaustively; larger ones
    /// through the index code's short list.
    pub(crate) fn search(
        &self,
        probe: &PreparedFinger,
        k: usize,
        filter: Option<&IdFilter>,
    ) -> Vec<Hit> {
        let slots: Vec<usize> = if let Some(f) = filter {
            // A restricted search (one subject, a few candidates): exact over the subset.
            f.ids()
                .filter_map(|id| self.slot.get(&id).copied())
                .collect()
        } else if self.len() <= EXACT_SEARCH_UP_TO {
            (0..self.ids.len()).filter(|&s| self.live[s]).collect()
        } else {
            let short = MIN_SHORT_LIST.max(self.len() / 100);
            self.codes
                .search(&self.coder.code(probe), short)
                .into_iter()
                .map(|(s, _)| s)
                .filter(|&s| self.live[s])
                .collect()
        };
        let mut hits: Vec<Hit> = slots
            .into_iter()
            .map(|s| Hit {
                id: self.ids[s],
                score: self.matcher.compare(probe, &self.prepared[s]),
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        hits.truncate(k);
        hits
    }
}
