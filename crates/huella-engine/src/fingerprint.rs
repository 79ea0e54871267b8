//! Fingerprints in the gallery: the engine side of `huella-finger`.
//!
//! A finger template is an ISO/IEC 19794-2:2005 minutiae record (the interchange format
//! agencies exchange) stored as an opaque template of algorithm [`finger_model`], with
//! the finger position as its modality. The store stays the source of truth: on open
//! the engine reads every finger record and builds an in-memory [`FingerGallery`] (MCC
//! cylinders for the matcher, index codes and cylinder sketches for the pre-filter);
//! enrolment and deletion keep it in step. 1:N search scans the codes for a long list,
//! cuts it to a short list with the cylinder sketches, re-scores that with the full
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
/// Shortest short list the index hands to the matcher in larger galleries (the short
/// list is the larger of this and [`DEFAULT_FINGER_SHORT_LIST`], or the share set with
/// [`crate::EngineBuilder::finger_short_list`], of the gallery).
pub const MIN_SHORT_LIST: usize = 2_000;
/// The index code hands the cylinder sketches a long list of this many times the short
/// list (at most [`LONG_LIST_MAX_SHARE`] of the gallery, never less than the short
/// list), from which they pick the short list (see `huella_finger::FingerSketch`).
/// Against a million fingers (BENCHMARKS.md, "1:N, sketches weighed by geometric
/// agreement", one core), a short list of 1% keeps the mate of a single-finger FVC2002
/// probe for 81.4% of genuine pairs from the code alone, 91.7% through a long list of
/// 10% and 93.5% through one of 20%, at about 0.23 s, 0.33 s and 0.44 s.
pub const LONG_LIST_FACTOR: usize = 10;
/// Largest share of the gallery in the long list. A sketch comparison costs about an
/// eighth of a matcher comparison, so ten times a large short list would cost more
/// than the list itself; against a million, a short list of 5% keeps the mate for
/// 92.77% through a long list of 10% (0.66 s), 94.82% through one of 20% (0.82 s) and
/// 95.62% through one of 30% (0.94 s).
pub const LONG_LIST_MAX_SHARE: f64 = 0.2;
/// Default share of a larger finger gallery re-scored by the matcher. Against a million
/// fingers the mate of a single-finger FVC2002 probe is in a short list of 1% for 91.7%
/// of genuine pairs (about 0.33 s on one core), of 5% (long list of 20%) for 94.8%
/// (0.8 s): 1% keeps a search of a million fingers near a third of a second, and the
/// other fingers and the face of a multi-modal probe carry most of what one finger
/// misses. The index search and the re-scoring both run on the caller's rayon pool: on
/// two cores the search at 1% takes about 0.14 s instead of 0.27 s on one.
pub const DEFAULT_FINGER_SHORT_LIST: f64 = 0.01;

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
    /// Share of the gallery in the short list (above [`EXACT_SEARCH_UP_TO`]).
    short_list: f64,
    /// The long list is this many times the short list ([`LONG_LIST_FACTOR`]), at most
    /// this share of the gallery ([`LONG_LIST_MAX_SHARE`]).
    long_list_factor: usize,
    long_list_max_share: f64,
}

impl FingerGallery {
    /// An empty gallery whose short lists hold `short_list` of it (in `(0, 1]`).
    fn empty(short_list: f64) -> Result<Self, EngineError> {
        let coder = FingerCoder::new(IndexCodeParams::default())?;
        Ok(Self {
            short_list,
            long_list_factor: LONG_LIST_FACTOR,
            long_list_max_share: LONG_LIST_MAX_SHARE,
            matcher: Matcher::default(),
            codes: CodeIndex::new(&coder),
            coder,
            ids: Vec::new(),
            prepared: Vec::new(),
            live: Vec::new(),
            slot: HashMap::new(),
        })
    }

    /// Read every finger record of the store; short lists will hold `short_list` of
    /// the gallery (in `(0, 1]`).
    pub(crate) fn build(gallery: &Gallery, short_list: f64) -> Result<Self, EngineError> {
        let mut fingers = Self::empty(short_list)?;
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
        self.codes.push(self.coder.key(&p))?;
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
    /// through the index's short list (code, then sketches).
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
            let short = MIN_SHORT_LIST.max((self.len() as f64 * self.short_list).ceil() as usize);
            let cap = (self.len() as f64 * self.long_list_max_share).ceil() as usize;
            let long = self
                .long_list_factor
                .saturating_mul(short)
                .min(cap)
                .max(short)
                .min(self.len());
            self.codes
                .search(&self.coder.key(probe), long, short, |s| self.live[s])
                .into_iter()
                .map(|(s, _)| s)
                .collect()
        };
        // Scored on the caller's thread pool: one search of a large gallery runs
        // thousands of comparisons.
        use rayon::prelude::*;
        let mut hits: Vec<Hit> = slots
            .into_par_iter()
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

#[cfg(test)]
mod tests {
    use super::*;
    use huella_core::FingerPosition;
    use huella_finger::{Minutia, MinutiaKind};
    use std::f32::consts::TAU;

    struct Rng(u64);

    impl Rng {
        fn unit(&mut self) -> f32 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
        }
    }

    fn finger(rng: &mut Rng) -> FingerTemplate {
        let minutiae = (0..40)
            .map(|_| Minutia {
                x: (20.0 + 260.0 * rng.unit()) as u16,
                y: (20.0 + 260.0 * rng.unit()) as u16,
                angle: TAU * rng.unit() * 0.999,
                kind: MinutiaKind::Ending,
                quality: 60,
            })
            .collect();
        FingerTemplate {
            width: 300,
            height: 300,
            resolution_x: 197,
            resolution_y: 197,
            position: FingerPosition::RightIndex,
            quality: 60,
            minutiae,
        }
    }

    /// Another impression: every minutia moved by up to 2 px and 0.05 rad, a tenth dropped.
    fn impression(t: &FingerTemplate, rng: &mut Rng) -> FingerTemplate {
        let mut m = t.clone();
        m.minutiae.retain(|_| rng.unit() > 0.1);
        for p in &mut m.minutiae {
            p.x = (p.x as f32 + 4.0 * rng.unit() - 2.0) as u16;
            p.y = (p.y as f32 + 4.0 * rng.unit() - 2.0) as u16;
            p.angle = (p.angle + 0.1 * rng.unit() - 0.05).rem_euclid(TAU * 0.999);
        }
        m
    }

    #[test]
    fn large_galleries_are_searched_through_the_short_list() {
        let mut rng = Rng(7);
        let mut gallery = FingerGallery::empty(DEFAULT_FINGER_SHORT_LIST).unwrap();
        let templates: Vec<FingerTemplate> = (0..EXACT_SEARCH_UP_TO + 1_000)
            .map(|_| finger(&mut rng))
            .collect();
        for (i, t) in templates.iter().enumerate() {
            let p = gallery.matcher.prepare(t);
            gallery.add(TemplateId(i as u64), p).unwrap();
        }
        assert!(gallery.len() > EXACT_SEARCH_UP_TO);
        let mate = 4_321;
        let probe = gallery
            .matcher
            .prepare(&impression(&templates[mate], &mut rng));
        // Every finger compared: the matcher's own ranking.
        let mut exhaustive: Vec<Hit> = (0..gallery.len())
            .map(|s| Hit {
                id: gallery.ids[s],
                score: gallery.matcher.compare(&probe, &gallery.prepared[s]),
            })
            .collect();
        exhaustive.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        exhaustive.truncate(10);
        assert_eq!(exhaustive[0].id, TemplateId(mate as u64));
        // A short list of the whole gallery is the exhaustive search.
        gallery.short_list = 1.0;
        assert_eq!(gallery.search(&probe, 10, None), exhaustive);
        // The default short list (here the 2,000-finger minimum, from a long list of the
        // whole gallery) keeps the mate first, with the same score; so does one of 2,000
        // picked by sketches from the code's best 4,000.
        gallery.short_list = DEFAULT_FINGER_SHORT_LIST;
        let hits = gallery.search(&probe, 10, None);
        assert_eq!(hits[0], exhaustive[0]);
        gallery.long_list_factor = 2;
        gallery.long_list_max_share = 1.0;
        assert_eq!(gallery.search(&probe, 10, None)[0], exhaustive[0]);
        // Through the code alone (a long list no longer than the short one) as well.
        gallery.long_list_factor = 1;
        assert_eq!(gallery.search(&probe, 10, None)[0], exhaustive[0]);
        gallery.long_list_factor = LONG_LIST_FACTOR;
        gallery.long_list_max_share = LONG_LIST_MAX_SHARE;
        // A removed finger is not reported, through the short list either, and a full
        // share still covers every live finger.
        gallery.remove(TemplateId(mate as u64));
        let hits = gallery.search(&probe, 10, None);
        assert!(hits.iter().all(|h| h.id != TemplateId(mate as u64)));
        assert_eq!(hits.len(), 10);
        gallery.short_list = 1.0;
        assert_eq!(gallery.search(&probe, 9, None), exhaustive[1..]);
        assert_eq!(
            gallery.search(&probe, usize::MAX, None).len(),
            gallery.len()
        );
    }
}
