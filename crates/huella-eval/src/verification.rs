//! Verification (1:1) metrics from genuine and impostor scores.

use crate::input::{parse_score, CsvInput};
use crate::keys::{
    count_lt, eer_fvc, eer_interpolated, key, unkey, walk, Keys, Point, Totals, Walk,
};
use crate::stats::{percentile, SplitMix64};
use crate::{EvalError, SCHEMA_VERSION, VERSION};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Why a comparison produced no score (ISO/IEC 19795-1). A failure is counted as a
/// non-match at every threshold: a genuine failure is a false non-match, an impostor
/// failure is a correct rejection, and both stay in the denominators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Failure to enrol (`fte`): the reference could not be enrolled.
    Enrol,
    /// Failure to acquire (`fta`): the probe sample could not be captured or processed.
    Acquire,
}

/// One comparison, as read from a score file or produced by a protocol runner.
#[derive(Debug, Clone, Copy)]
pub struct ScoreRow<'a> {
    /// The score (higher = more alike); `None` for a failure.
    pub score: Option<f32>,
    /// Set when the comparison failed; then `score` must be `None`.
    pub failure: Option<Failure>,
    /// True for a genuine (mated) comparison, false for an impostor one.
    pub mated: bool,
    /// The subject of the probe sample: the unit of the bootstrap.
    pub probe_subject: Option<&'a str>,
    /// The subject of the reference.
    pub reference_subject: Option<&'a str>,
    /// One label per group column (empty = unlabelled), in the builder's column order.
    pub groups: &'a [&'a str],
}

/// Settings of a verification evaluation.
#[derive(Debug, Clone)]
pub struct VerificationOptions {
    /// FMR levels at which FNMR is reported (default 1e-2, 1e-3, 1e-4).
    pub fmr_points: Vec<f64>,
    /// Bootstrap replicates: `None` = 1000, lowered to fit a work budget of 3·10^9
    /// comparison visits and skipped below 100; `Some(0)` = off; `Some(n)` = exactly n.
    pub bootstrap: Option<u32>,
    /// Seed of the bootstrap (SplitMix64).
    pub seed: u64,
    /// Confidence level of the intervals (default 0.95).
    pub confidence: f64,
    /// The global threshold of the demographic breakdown is the one giving this overall
    /// FMR (default 1e-3), unless `demographic_threshold` is set.
    pub demographic_fmr: f64,
    /// An explicit global threshold for the demographic breakdown.
    pub demographic_threshold: Option<f32>,
    /// Name of the protocol that produced the scores (`scores` for a score file).
    pub protocol: String,
}

impl Default for VerificationOptions {
    fn default() -> Self {
        Self {
            fmr_points: vec![1e-2, 1e-3, 1e-4],
            bootstrap: None,
            seed: 0x5EED,
            confidence: 0.95,
            demographic_fmr: 1e-3,
            demographic_threshold: None,
            protocol: "scores".into(),
        }
    }
}

impl VerificationOptions {
    fn check(&self) -> Result<(), EvalError> {
        for &a in self.fmr_points.iter().chain([self.demographic_fmr].iter()) {
            if !(a > 0.0 && a < 1.0) {
                return Err(EvalError::InvalidOption(format!(
                    "FMR level {a} is outside (0, 1)"
                )));
            }
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(EvalError::InvalidOption(format!(
                "confidence {} is outside (0, 1)",
                self.confidence
            )));
        }
        if let Some(t) = self.demographic_threshold {
            if !t.is_finite() {
                return Err(EvalError::InvalidOption(
                    "demographic threshold must be finite".into(),
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- report types

/// The conventions every figure follows, repeated in each report.
#[derive(Debug, Clone, Serialize)]
pub struct Conventions {
    /// Score direction.
    pub score: String,
    /// The decision rule.
    pub decision: String,
    /// Which thresholds are considered.
    pub thresholds: String,
    /// Numeric precision.
    pub precision: String,
    /// How failures count.
    pub failures: String,
    /// The rule behind `eer`.
    pub eer_rule: String,
    /// The rule behind `eer_fvc_interval`.
    pub eer_fvc_rule: String,
    /// The rule behind the FNMR-at-FMR points.
    pub fmr_point_rule: String,
}

fn conventions() -> Conventions {
    Conventions {
        score: "higher = more alike".into(),
        decision: "a comparison is a match when score >= threshold; FMR(t) = impostor scores >= t / all impostor comparisons; FNMR(t) = (genuine scores < t + genuine failures) / all genuine comparisons".into(),
        thresholds: "every distinct score value, plus the value just above the highest score (nothing matches); reported thresholds are such score values".into(),
        precision: "scores are rounded to f32 on input (Huella's Score type); all counts and rates are then exact: every score is kept and sorted, none is binned".into(),
        failures: "ISO/IEC 19795-1: a failure to enrol or acquire (empty score, 'failure' column fte/fta) counts as a non-match at every threshold: a genuine failure is a false non-match, an impostor failure a correct rejection; both stay in the denominators".into(),
        eer_rule: "linear interpolation between the last threshold with FNMR < FMR and the first with FNMR >= FMR, where the segment between the two (FMR, FNMR) points meets FMR = FNMR".into(),
        eer_fvc_rule: "FVC2000 (Maio et al. 2002): t1 = highest threshold with FNMR <= FMR, t2 = lowest with FNMR >= FMR; [low, high] = [FNMR(t1), FMR(t1)] if FNMR(t1)+FMR(t1) <= FNMR(t2)+FMR(t2), else [FMR(t2), FNMR(t2)]; value = (low+high)/2 (the rule pyeer uses)".into(),
        fmr_point_rule: "FNMR at the lowest threshold whose FMR <= the target (so the achieved FMR never exceeds it)".into(),
    }
}

/// Comparison counts.
#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    /// Genuine comparisons attempted (scores + failures).
    pub genuine: u64,
    /// Impostor comparisons attempted (scores + failures).
    pub impostor: u64,
    /// Genuine comparisons that failed (FTE or FTA).
    pub genuine_failures: u64,
    /// Impostor comparisons that failed.
    pub impostor_failures: u64,
    /// Failures to enrol.
    pub failures_to_enrol: u64,
    /// Failures to acquire.
    pub failures_to_acquire: u64,
    /// Distinct probe subjects, when the file names them.
    pub probe_subjects: Option<u64>,
}

/// Failure rates, per comparison attempt.
#[derive(Debug, Clone, Serialize)]
pub struct FailureRates {
    /// Failures to enrol / all comparison attempts.
    pub fte_rate: f64,
    /// Failures to acquire / all comparison attempts.
    pub fta_rate: f64,
    /// How the failures enter FMR and FNMR.
    pub note: String,
}

/// A two-sided confidence interval.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Confidence level, e.g. 0.95.
    pub level: f64,
}

/// The equal error rate by interpolation.
#[derive(Debug, Clone, Serialize)]
pub struct Eer {
    /// The EER (a rate in [0, 1]).
    pub value: f64,
    /// The first threshold at which FNMR >= FMR.
    pub threshold: f64,
    /// Subject-bootstrap interval, if computed.
    pub ci: Option<Interval>,
}

/// The FVC2000 EER interval.
#[derive(Debug, Clone, Serialize)]
pub struct EerInterval {
    /// EER_low.
    pub low: f64,
    /// EER_high.
    pub high: f64,
    /// (low + high) / 2: what pyeer reports as EER.
    pub value: f64,
    /// The threshold (t1 or t2) the interval was taken at.
    pub threshold: f64,
    /// Subject-bootstrap interval of `value`, if computed.
    pub ci: Option<Interval>,
}

/// FNMR at one FMR level (FMR100, FMR1000, FMR10000, ...).
#[derive(Debug, Clone, Serialize)]
pub struct OperatingPoint {
    /// Conventional name: FMR100 for 1e-2, FMR1000 for 1e-3, FMR10000 for 1e-4.
    pub name: String,
    /// The FMR level asked for.
    pub target_fmr: f64,
    /// FNMR at the threshold.
    pub fnmr: f64,
    /// The FMR achieved at the threshold (<= target).
    pub fmr: f64,
    /// The lowest threshold whose FMR <= target.
    pub threshold: f64,
    /// target × impostor comparisons: the false matches the level implies.
    pub expected_false_matches: f64,
    /// False when there are fewer than 1/target impostor comparisons: the figure then
    /// only describes the threshold above every impostor score.
    pub supported: bool,
    /// Subject-bootstrap interval of `fnmr`, if computed.
    pub ci: Option<Interval>,
    /// Why the figure is weak, if it is.
    pub warning: Option<String>,
}

/// A rate and the threshold it is taken at.
#[derive(Debug, Clone, Serialize)]
pub struct RateAt {
    /// The rate: FNMR for `zero_fmr`, FMR for `zero_fnmr`.
    pub rate: f64,
    /// The threshold.
    pub threshold: f64,
}

/// How the intervals were made.
#[derive(Debug, Clone, Serialize)]
pub struct BootstrapInfo {
    /// Replicates used.
    pub replicates: u32,
    /// Replicates dropped because they drew no genuine or no impostor comparison.
    pub skipped_replicates: u32,
    /// Seed (SplitMix64).
    pub seed: u64,
    /// Confidence level.
    pub level: f64,
    /// The resampled unit.
    pub unit: String,
    /// Number of units.
    pub units: u64,
    /// The method in words.
    pub method: String,
}

/// One group's figures at the global threshold.
#[derive(Debug, Clone, Serialize)]
pub struct GroupFigures {
    /// The label.
    pub group: String,
    /// Distinct probe subjects with this label, when the file names subjects.
    pub subjects: Option<u64>,
    /// Genuine comparisons (with failures).
    pub genuine: u64,
    /// Impostor comparisons (with failures).
    pub impostor: u64,
    /// FMR at the global threshold.
    pub fmr: f64,
    /// FNMR at the global threshold.
    pub fnmr: f64,
}

/// Per-group FMR and FNMR at one global threshold, for one label column.
#[derive(Debug, Clone, Serialize)]
pub struct DemographicBreakdown {
    /// The column (e.g. `sex`).
    pub column: String,
    /// The global threshold.
    pub threshold: f64,
    /// How the threshold was chosen.
    pub threshold_rule: String,
    /// Groups in label order.
    pub groups: Vec<GroupFigures>,
    /// Highest group FMR / lowest group FMR (null when the lowest is 0).
    pub fmr_worst_to_best: Option<f64>,
    /// Highest group FNMR / lowest group FNMR (null when the lowest is 0).
    pub fnmr_worst_to_best: Option<f64>,
    /// Comparisons whose label was empty (left out of this breakdown).
    pub unlabelled: u64,
}

/// One sampled point of the ROC / DET curve.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CurvePoint {
    /// Threshold.
    pub threshold: f64,
    /// FMR there.
    pub fmr: f64,
    /// FNMR there.
    pub fnmr: f64,
}

/// Score histograms over common bins.
#[derive(Debug, Clone, Serialize)]
pub struct Histogram {
    /// Bin edges (bins + 1 values); the last bin includes its upper edge.
    pub edges: Vec<f64>,
    /// Genuine scores per bin.
    pub genuine: Vec<u64>,
    /// Impostor scores per bin.
    pub impostor: Vec<u64>,
}

/// Verification report: see the crate docs for the JSON schema.
#[derive(Debug, Clone, Serialize)]
pub struct VerificationReport {
    /// Version of the JSON layout.
    pub schema_version: u32,
    /// Always `verification`.
    pub kind: String,
    /// The protocol that produced the scores.
    pub protocol: String,
    /// `huella-eval <version>`.
    pub software: String,
    /// Rules every figure follows.
    pub conventions: Conventions,
    /// Comparison counts.
    pub counts: Counts,
    /// FTE / FTA rates.
    pub failures: FailureRates,
    /// EER by interpolation.
    pub eer: Eer,
    /// FVC2000 EER interval.
    pub eer_fvc_interval: EerInterval,
    /// FNMR at the FMR levels.
    pub fnmr_at_fmr: Vec<OperatingPoint>,
    /// FNMR at the lowest threshold with no false match.
    pub zero_fmr: RateAt,
    /// FMR at the highest threshold with no false non-match (null with genuine failures).
    pub zero_fnmr: Option<RateAt>,
    /// How the intervals were made (null when skipped; see `notes`).
    pub bootstrap: Option<BootstrapInfo>,
    /// Per-group figures, one entry per label column.
    pub demographics: Vec<DemographicBreakdown>,
    /// Figures too weak to lean on.
    pub warnings: Vec<String>,
    /// Other remarks.
    pub notes: Vec<String>,
    /// Sampled ROC / DET points, ascending threshold.
    pub curve: Vec<CurvePoint>,
    /// Score histograms.
    pub histogram: Histogram,
}

/// Conventional name of an FMR level.
pub fn fmr_point_name(level: f64, prefix: &str) -> String {
    let inv = 1.0 / level;
    if (inv - inv.round()).abs() < 1e-6 && inv >= 1.0 {
        format!("{prefix}{}", inv.round() as u64)
    } else {
        format!("{prefix}@{level}")
    }
}

// ---------------------------------------------------------------- accumulation

enum Store {
    Plain(Vec<u32>),
    Subj(Vec<u64>),
}

impl Store {
    fn push(&mut self, k: u32, s: u32) {
        match self {
            Store::Plain(v) => v.push(k),
            Store::Subj(v) => v.push(((k as u64) << 32) | s as u64),
        }
    }
    fn sort(&mut self) {
        match self {
            Store::Plain(v) => v.sort_unstable(),
            Store::Subj(v) => v.sort_unstable(),
        }
    }
}

struct GroupAcc {
    label: String,
    first_line: u64,
    gen: Vec<u32>,
    imp: Vec<u32>,
    gen_fail: u64,
    imp_fail: u64,
}

struct GroupColumn {
    name: String,
    index: HashMap<String, usize>,
    groups: Vec<GroupAcc>,
    subject_label: HashMap<u32, usize>,
    unlabelled: u64,
}

/// Accumulates comparisons one at a time (bounded memory: 4 bytes per score, 8 with a
/// `probe_subject`, plus 4 per score per group column), then computes the report.
pub struct VerificationBuilder {
    options: VerificationOptions,
    source: PathBuf,
    has_subjects: bool,
    gen: Store,
    imp: Store,
    subjects: HashMap<Box<str>, u32>,
    per_subject: Vec<[u64; 4]>, // genuine scores, impostor scores, genuine failures, impostor failures
    gen_fail: u64,
    imp_fail: u64,
    fte: u64,
    fta: u64,
    groups: Vec<GroupColumn>,
    last_line: u64,
}

impl std::fmt::Debug for VerificationBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationBuilder")
            .field("source", &self.source)
            .field("last_line", &self.last_line)
            .finish()
    }
}

impl VerificationBuilder {
    /// A builder for comparisons from `source` (used in error messages). With
    /// `has_subjects`, every row must name its probe subject; `group_columns` names the
    /// label columns in the order of [`ScoreRow::groups`].
    pub fn new(
        options: VerificationOptions,
        source: impl Into<PathBuf>,
        has_subjects: bool,
        group_columns: Vec<String>,
    ) -> Result<Self, EvalError> {
        options.check()?;
        let store = || {
            if has_subjects {
                Store::Subj(Vec::new())
            } else {
                Store::Plain(Vec::new())
            }
        };
        Ok(Self {
            options,
            source: source.into(),
            has_subjects,
            gen: store(),
            imp: store(),
            subjects: HashMap::new(),
            per_subject: Vec::new(),
            gen_fail: 0,
            imp_fail: 0,
            fte: 0,
            fta: 0,
            groups: group_columns
                .into_iter()
                .map(|name| GroupColumn {
                    name,
                    index: HashMap::new(),
                    groups: Vec::new(),
                    subject_label: HashMap::new(),
                    unlabelled: 0,
                })
                .collect(),
            last_line: 1,
        })
    }

    /// Add one comparison found at `line` of the source.
    pub fn push(&mut self, row: &ScoreRow<'_>, line: u64) -> Result<(), EvalError> {
        self.last_line = line;
        let src = self.source.clone();
        let bad = |col: &str, reason: String| EvalError::bad(&src, line, Some(col), reason);
        if row.groups.len() != self.groups.len() {
            return Err(bad(
                "group",
                format!(
                    "{} group labels for {} group columns",
                    row.groups.len(),
                    self.groups.len()
                ),
            ));
        }
        let subject = if self.has_subjects {
            let name = row
                .probe_subject
                .filter(|s| !s.is_empty())
                .ok_or_else(|| bad("probe_subject", "empty probe subject".into()))?;
            if let Some(r) = row.reference_subject.filter(|s| !s.is_empty()) {
                if row.mated && r != name {
                    return Err(bad(
                        "reference_subject",
                        format!("mated comparison of different subjects '{name}' and '{r}'"),
                    ));
                }
                if !row.mated && r == name {
                    return Err(bad(
                        "reference_subject",
                        format!("impostor comparison of subject '{name}' with itself"),
                    ));
                }
            }
            let next = self.subjects.len() as u32;
            let id = *self.subjects.entry(name.into()).or_insert(next);
            if id == next {
                self.per_subject.push([0; 4]);
            }
            id
        } else {
            0
        };
        let k = match (row.score, row.failure) {
            (Some(s), None) => {
                if !s.is_finite() {
                    return Err(bad("score", format!("{s} is not a finite score")));
                }
                Some(key(s))
            }
            (None, Some(f)) => {
                match f {
                    Failure::Enrol => self.fte += 1,
                    Failure::Acquire => self.fta += 1,
                }
                None
            }
            (Some(_), Some(_)) => {
                return Err(bad(
                    "score",
                    "a failed comparison must have an empty score".into(),
                ))
            }
            (None, None) => {
                return Err(bad(
                    "score",
                    "empty score (mark failures with a 'failure' column: fte or fta)".into(),
                ))
            }
        };
        let slot = (if row.mated { 0 } else { 1 }) + if k.is_none() { 2 } else { 0 };
        if self.has_subjects {
            self.per_subject[subject as usize][slot] += 1;
        }
        match (k, row.mated) {
            (Some(k), true) => self.gen.push(k, subject),
            (Some(k), false) => self.imp.push(k, subject),
            (None, true) => self.gen_fail += 1,
            (None, false) => self.imp_fail += 1,
        }
        for (col, &label) in self.groups.iter_mut().zip(row.groups) {
            if label.is_empty() {
                col.unlabelled += 1;
                continue;
            }
            let next = col.groups.len();
            let gi = *col.index.entry(label.to_string()).or_insert(next);
            if gi == next {
                col.groups.push(GroupAcc {
                    label: label.to_string(),
                    first_line: line,
                    gen: vec![],
                    imp: vec![],
                    gen_fail: 0,
                    imp_fail: 0,
                });
            }
            if self.has_subjects {
                let prev = *col.subject_label.entry(subject).or_insert(gi);
                if prev != gi {
                    let name = row.probe_subject.unwrap_or("");
                    return Err(bad(
                        &col.name,
                        format!(
                            "subject '{name}' is labelled '{label}' here but '{}' earlier",
                            col.groups[prev].label
                        ),
                    ));
                }
            }
            let g = &mut col.groups[gi];
            match (k, row.mated) {
                (Some(k), true) => g.gen.push(k),
                (Some(k), false) => g.imp.push(k),
                (None, true) => g.gen_fail += 1,
                (None, false) => g.imp_fail += 1,
            }
        }
        Ok(())
    }

    /// Compute every figure. Errors when there is no genuine or no impostor comparison,
    /// or a labelled group lacks either.
    pub fn finish(mut self) -> Result<VerificationReport, EvalError> {
        let (ng, ni) = (store_len(&self.gen), store_len(&self.imp));
        let line = self.last_line;
        if ng as u64 + self.gen_fail == 0 {
            return Err(EvalError::bad(
                &self.source,
                line,
                Some("mated"),
                "no genuine comparisons (mated = 1): FNMR is undefined",
            ));
        }
        if ni as u64 + self.imp_fail == 0 {
            return Err(EvalError::bad(
                &self.source,
                line,
                Some("mated"),
                "no impostor comparisons (mated = 0): FMR is undefined",
            ));
        }
        for col in &self.groups {
            for g in &col.groups {
                let (gn, im) = (
                    g.gen.len() as u64 + g.gen_fail,
                    g.imp.len() as u64 + g.imp_fail,
                );
                if gn == 0 || im == 0 {
                    let which = if gn == 0 { "genuine" } else { "impostor" };
                    return Err(EvalError::bad(
                        &self.source,
                        g.first_line,
                        Some(&col.name),
                        format!(
                            "group '{}' has no {which} comparisons, so its {} cannot be computed",
                            g.label,
                            if gn == 0 { "FNMR" } else { "FMR" }
                        ),
                    ));
                }
            }
        }
        self.gen.sort();
        self.imp.sort();
        match (&self.gen, &self.imp) {
            (Store::Plain(g), Store::Plain(i)) => Ok(self.report(g.as_slice(), i.as_slice())),
            (Store::Subj(g), Store::Subj(i)) => Ok(self.report(g.as_slice(), i.as_slice())),
            _ => unreachable!("both stores are built alike"),
        }
    }

    fn report<K: Keys + ?Sized>(&self, g: &K, i: &K) -> VerificationReport {
        let o = &self.options;
        let totals = Totals {
            genuine: g.n() as u64 + self.gen_fail,
            impostor: i.n() as u64 + self.imp_fail,
            genuine_failures: self.gen_fail,
        };
        let mut levels = o.fmr_points.clone();
        levels.push(o.demographic_fmr);
        let w = walk(g, i, |_| 1, totals, i.n() as u64, &levels);
        let thr = |k: u32| unkey(k) as f64;
        let mut warnings = Vec::new();
        let mut notes = Vec::new();

        // Bootstrap over probe subjects.
        let boot = self.bootstrap(g, i, &mut notes);
        let ci = |vals: Option<&Vec<f64>>| {
            vals.map(|v| {
                let a = (1.0 - o.confidence) / 2.0;
                Interval {
                    low: percentile(v, a),
                    high: percentile(v, 1.0 - a),
                    level: o.confidence,
                }
            })
        };
        let (boot_info, boot_vals) = match boot {
            Some((info, vals)) => (Some(info), Some(vals)),
            None => (None, None),
        };

        let eer_v = eer_interpolated(&w, &totals);
        let (lo, hi, tk, _) = eer_fvc(&w, &totals);
        let mut fnmr_at_fmr = Vec::new();
        for (j, &level) in o.fmr_points.iter().enumerate() {
            let p = w.at_fmr[j];
            let expected = level * totals.impostor as f64;
            let name = fmr_point_name(level, "FMR");
            let supported = expected >= 1.0;
            let warning = if !supported {
                Some(format!(
                    "{name}: {} impostor comparisons cannot resolve FMR = {level} (at least {} are needed); the figure is the FNMR at the threshold above every impostor score",
                    totals.impostor,
                    (1.0 / level).ceil()
                ))
            } else if expected < 30.0 {
                Some(format!(
                    "{name}: only {expected:.1} false matches are expected at FMR = {level} from {} impostor comparisons; the rule of 30 (Doddington et al., ISO/IEC 19795-1) asks for at least {} for ±30% at 90% confidence",
                    totals.impostor,
                    (30.0 / level).ceil()
                ))
            } else {
                None
            };
            if let Some(wn) = &warning {
                warnings.push(wn.clone());
            }
            fnmr_at_fmr.push(OperatingPoint {
                name,
                target_fmr: level,
                fnmr: totals.fnmr(&p),
                fmr: totals.fmr(&p),
                threshold: thr(p.key),
                expected_false_matches: expected,
                supported,
                ci: ci(boot_vals.as_ref().map(|v: &Vec<Vec<f64>>| &v[2 + j])),
                warning,
            });
        }
        if totals.genuine < 30 {
            warnings.push(format!(
                "only {} genuine comparisons: FNMR figures move in steps of {:.3}",
                totals.genuine,
                1.0 / totals.genuine as f64
            ));
        }

        let demographics = self.demographics(&w, &totals, o, &mut notes);
        let failures = totals.genuine + totals.impostor;
        let all = failures as f64;
        VerificationReport {
            schema_version: SCHEMA_VERSION,
            kind: "verification".into(),
            protocol: o.protocol.clone(),
            software: format!("huella-eval {VERSION}"),
            conventions: conventions(),
            counts: Counts {
                genuine: totals.genuine,
                impostor: totals.impostor,
                genuine_failures: self.gen_fail,
                impostor_failures: self.imp_fail,
                failures_to_enrol: self.fte,
                failures_to_acquire: self.fta,
                probe_subjects: self.has_subjects.then_some(self.subjects.len() as u64),
            },
            failures: FailureRates {
                fte_rate: self.fte as f64 / all,
                fta_rate: self.fta as f64 / all,
                note: "rates per comparison attempt; each failure is scored as a non-match (ISO/IEC 19795-1), so genuine failures are inside FNMR and impostor failures inside the FMR denominator".into(),
            },
            eer: Eer { value: eer_v, threshold: thr(w.cross.key), ci: ci(boot_vals.as_ref().map(|v| &v[0])) },
            eer_fvc_interval: EerInterval {
                low: lo,
                high: hi,
                value: (lo + hi) / 2.0,
                threshold: thr(tk),
                ci: ci(boot_vals.as_ref().map(|v| &v[1])),
            },
            fnmr_at_fmr,
            zero_fmr: RateAt { rate: totals.fnmr(&w.zero_fmr), threshold: thr(w.zero_fmr.key) },
            zero_fnmr: w.zero_fnmr.map(|p| RateAt { rate: totals.fmr(&p), threshold: thr(p.key) }),
            bootstrap: boot_info,
            demographics,
            warnings,
            notes,
            curve: sample_curve(g, i, &totals, &w),
            histogram: histogram(g, i),
        }
    }

    /// Returns (info, per-metric sorted replicate values: eer, eer_fvc, fnmr@level...).
    fn bootstrap<K: Keys + ?Sized>(
        &self,
        g: &K,
        i: &K,
        notes: &mut Vec<String>,
    ) -> Option<(BootstrapInfo, Vec<Vec<f64>>)> {
        let o = &self.options;
        if o.bootstrap == Some(0) {
            notes.push("bootstrap turned off".into());
            return None;
        }
        if !self.has_subjects {
            notes.push("no probe_subject column: the subject bootstrap was skipped (resampling comparisons as if they were independent would understate the uncertainty, so no interval is given)".into());
            return None;
        }
        let n = (g.n() + i.n()).max(1) as u64;
        let b = match o.bootstrap {
            Some(b) => b,
            None => {
                let fit = (3_000_000_000u64 / n).min(1000) as u32;
                if fit < 100 {
                    notes.push(format!("bootstrap skipped: {n} comparisons x 100 replicates exceeds the work budget; ask for replicates explicitly"));
                    return None;
                }
                if fit < 1000 {
                    notes.push(format!(
                        "bootstrap lowered to {fit} replicates to fit the work budget"
                    ));
                }
                fit
            }
        };
        let s = self.per_subject.len();
        let mut rng = SplitMix64::new(o.seed);
        let mut vals: Vec<Vec<f64>> = vec![Vec::with_capacity(b as usize); 2 + o.fmr_points.len()];
        let mut m = vec![0u64; s];
        let mut skipped = 0;
        for _ in 0..b {
            m.iter_mut().for_each(|x| *x = 0);
            for _ in 0..s {
                m[rng.below(s)] += 1;
            }
            let mut t = Totals {
                genuine: 0,
                impostor: 0,
                genuine_failures: 0,
            };
            let mut imp_scores = 0;
            for (c, k) in self.per_subject.iter().zip(&m) {
                t.genuine += k * (c[0] + c[2]);
                t.impostor += k * (c[1] + c[3]);
                t.genuine_failures += k * c[2];
                imp_scores += k * c[1];
            }
            if t.genuine == 0 || t.impostor == 0 {
                skipped += 1;
                continue;
            }
            let w = walk(g, i, |sub| m[sub as usize], t, imp_scores, &o.fmr_points);
            vals[0].push(eer_interpolated(&w, &t));
            let (lo, hi, _, _) = eer_fvc(&w, &t);
            vals[1].push((lo + hi) / 2.0);
            for (j, p) in w.at_fmr.iter().enumerate() {
                vals[2 + j].push(t.fnmr(p));
            }
        }
        for v in &mut vals {
            v.sort_by(f64::total_cmp);
        }
        Some((
            BootstrapInfo {
                replicates: b,
                skipped_replicates: skipped,
                seed: o.seed,
                level: o.confidence,
                unit: "probe_subject".into(),
                units: s as u64,
                method: "subjects bootstrap: draw as many probe subjects as there are, with replacement; every comparison (genuine, impostor, failure) of a drawn subject enters once per draw; percentile interval".into(),
            },
            vals,
        ))
    }

    fn demographics(
        &self,
        w: &Walk,
        totals: &Totals,
        o: &VerificationOptions,
        notes: &mut Vec<String>,
    ) -> Vec<DemographicBreakdown> {
        if self.groups.is_empty() {
            return Vec::new();
        }
        let (tkey, rule) = match o.demographic_threshold {
            Some(t) => (key(t), format!("given: {t}")),
            None => {
                let p: Point = w.at_fmr[o.fmr_points.len()];
                (
                    p.key,
                    format!(
                        "global threshold giving overall FMR <= {} (achieved {:.3e})",
                        o.demographic_fmr,
                        totals.fmr(&p)
                    ),
                )
            }
        };
        let mut out = Vec::new();
        for col in &self.groups {
            let mut groups: Vec<GroupFigures> = Vec::new();
            let mut sorted: Vec<&GroupAcc> = col.groups.iter().collect();
            sorted.sort_by(|a, b| a.label.cmp(&b.label));
            for g in sorted {
                let mut gen = g.gen.clone();
                let mut imp = g.imp.clone();
                gen.sort_unstable();
                imp.sort_unstable();
                let gt = gen.len() as u64 + g.gen_fail;
                let it = imp.len() as u64 + g.imp_fail;
                let fm = (imp.len() - count_lt(imp.as_slice(), tkey)) as u64;
                let fnm = count_lt(gen.as_slice(), tkey) as u64 + g.gen_fail;
                let gi = col.index[&g.label];
                groups.push(GroupFigures {
                    group: g.label.clone(),
                    subjects: self
                        .has_subjects
                        .then(|| col.subject_label.values().filter(|&&v| v == gi).count() as u64),
                    genuine: gt,
                    impostor: it,
                    fmr: fm as f64 / it as f64,
                    fnmr: fnm as f64 / gt as f64,
                });
            }
            let ratio = |f: fn(&GroupFigures) -> f64| {
                let max = groups.iter().map(f).fold(f64::MIN, f64::max);
                let min = groups.iter().map(f).fold(f64::MAX, f64::min);
                (min > 0.0).then(|| max / min)
            };
            let fmr_ratio = ratio(|g| g.fmr);
            let fnmr_ratio = ratio(|g| g.fnmr);
            if fmr_ratio.is_none() || fnmr_ratio.is_none() {
                notes.push(format!("column '{}': a group has zero errors at the global threshold, so a worst/best ratio is undefined (null)", col.name));
            }
            out.push(DemographicBreakdown {
                column: col.name.clone(),
                threshold: unkey(tkey) as f64,
                threshold_rule: rule.clone(),
                groups,
                fmr_worst_to_best: fmr_ratio,
                fnmr_worst_to_best: fnmr_ratio,
                unlabelled: col.unlabelled,
            });
        }
        out
    }
}

fn store_len(s: &Store) -> usize {
    match s {
        Store::Plain(v) => v.len(),
        Store::Subj(v) => v.len(),
    }
}

/// At most ~900 points: every distinct threshold for small sets, otherwise impostor
/// quantiles at log-spaced FMR levels and genuine quantiles at even FNMR levels, plus
/// the EER and FMR-point thresholds.
pub(crate) fn sample_curve<K: Keys + ?Sized>(
    g: &K,
    i: &K,
    t: &Totals,
    w: &Walk,
) -> Vec<CurvePoint> {
    let (ng, ni) = (g.n(), i.n());
    let mut keys: Vec<u32> = Vec::new();
    if ng + ni <= 2000 {
        keys.extend((0..ng).map(|j| g.key_at(j)));
        keys.extend((0..ni).map(|j| i.key_at(j)));
    } else {
        if ni > 0 {
            let steps = 400;
            let lmin = (1.0 / ni as f64).log10();
            for s in 0..=steps {
                let a = 10f64.powf(lmin * (1.0 - s as f64 / steps as f64));
                let c = ((a * ni as f64).ceil() as usize).clamp(1, ni);
                keys.push(i.key_at(ni - c));
            }
        }
        if ng > 0 {
            for s in 0..=400 {
                keys.push(g.key_at(s * (ng - 1) / 400));
            }
        }
    }
    keys.push(w.cross.key);
    keys.extend(w.at_fmr.iter().map(|p| p.key));
    if let Some(b) = w.before_cross {
        keys.push(b.key);
    }
    let top = w.zero_fmr.key.max(w.cross.key);
    let last = (0..ng)
        .map(|j| g.key_at(j))
        .last()
        .into_iter()
        .chain((0..ni).map(|j| i.key_at(j)).last())
        .max();
    keys.push(last.map_or(top, |l| l.saturating_add(1)));
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let p = Point {
                key: k,
                fm: (ni - count_lt(i, k)) as u64,
                fnm: count_lt(g, k) as u64 + t.genuine_failures,
            };
            CurvePoint {
                threshold: unkey(k) as f64,
                fmr: t.fmr(&p),
                fnmr: t.fnmr(&p),
            }
        })
        .collect()
}

fn histogram<K: Keys + ?Sized>(g: &K, i: &K) -> Histogram {
    let (ng, ni) = (g.n(), i.n());
    let firsts = [(ng > 0).then(|| g.key_at(0)), (ni > 0).then(|| i.key_at(0))];
    let lasts = [
        (ng > 0).then(|| g.key_at(ng - 1)),
        (ni > 0).then(|| i.key_at(ni - 1)),
    ];
    let (Some(lo), Some(hi)) = (firsts.iter().flatten().min(), lasts.iter().flatten().max()) else {
        return Histogram {
            edges: vec![],
            genuine: vec![],
            impostor: vec![],
        };
    };
    let (lo, hi) = (unkey(*lo) as f64, unkey(*hi) as f64);
    let bins = 60usize;
    let span = if hi > lo { hi - lo } else { 1.0 };
    let edges: Vec<f64> = (0..=bins)
        .map(|b| lo + span * b as f64 / bins as f64)
        .collect();
    let count = |a: &K, n: usize| -> Vec<u64> {
        let mut cum: Vec<usize> = vec![0];
        for e in &edges[1..bins] {
            cum.push(count_lt(a, key(*e as f32)));
        }
        cum.push(n);
        cum.windows(2).map(|w| (w[1] - w[0]) as u64).collect()
    };
    Histogram {
        genuine: count(g, ng),
        impostor: count(i, ni),
        edges,
    }
}

// ---------------------------------------------------------------- files

/// The known columns of a score file; every other column is a group label column.
pub const SCORE_COLUMNS: [&str; 5] = [
    "score",
    "mated",
    "probe_subject",
    "reference_subject",
    "failure",
];

fn parse_mated(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "genuine" | "mated" => Some(true),
        "0" | "false" | "no" | "impostor" | "nonmated" | "non-mated" => Some(false),
        _ => None,
    }
}

impl VerificationReport {
    /// Read a score file (columns `score,mated`, optionally `probe_subject`,
    /// `reference_subject`, `failure`, and any number of group label columns) as a
    /// stream, and compute the report.
    pub fn from_csv(path: &Path, options: VerificationOptions) -> Result<Self, EvalError> {
        let what = "score,mated[,probe_subject,reference_subject,failure,group...]";
        let mut csv = CsvInput::open(path, what)?;
        let cs = csv.require("score", what)?;
        let cm = csv.require("mated", what)?;
        let cp = csv.column("probe_subject");
        let cr = csv.column("reference_subject");
        let cf = csv.column("failure");
        let group_cols: Vec<usize> = (0..csv.header.len())
            .filter(|&c| !SCORE_COLUMNS.contains(&csv.header[c].as_str()))
            .collect();
        let mut b = VerificationBuilder::new(
            options,
            csv.path().to_path_buf(),
            cp.is_some(),
            group_cols.iter().map(|&c| csv.header[c].clone()).collect(),
        )?;
        let mut rows = 0u64;
        while csv.next()? {
            rows += 1;
            let st = csv.field(cs)?;
            let failure = match cf {
                Some(c) => match csv.field(c)?.to_ascii_lowercase().as_str() {
                    "" => None,
                    "fte" => Some(Failure::Enrol),
                    "fta" => Some(Failure::Acquire),
                    other => {
                        return Err(csv.bad(
                            Some(c),
                            format!("'{other}' is not a failure kind (fte, fta or empty)"),
                        ))
                    }
                },
                None => None,
            };
            let score = if st.is_empty() && failure.is_some() {
                None
            } else if st.is_empty() {
                return Err(csv.bad(
                    Some(cs),
                    "empty score (mark failures with a 'failure' column: fte or fta)",
                ));
            } else {
                Some(parse_score(st).map_err(|r| csv.bad(Some(cs), r))?)
            };
            let mt = csv.field(cm)?;
            let mated = parse_mated(mt)
                .ok_or_else(|| csv.bad(Some(cm), format!("'{mt}' is not 1/0 (or true/false)")))?;
            let labels: Vec<&str> = group_cols
                .iter()
                .map(|&c| csv.field(c))
                .collect::<Result<_, _>>()?;
            let row = ScoreRow {
                score,
                failure,
                mated,
                probe_subject: cp.map(|c| csv.field(c)).transpose()?,
                reference_subject: cr.map(|c| csv.field(c)).transpose()?,
                groups: &labels,
            };
            let line = csv.line;
            b.push(&row, line)?;
        }
        if rows == 0 {
            return Err(csv.bad(None, "no comparisons after the header"));
        }
        b.finish()
    }

    /// Compute a report from in-memory rows (line numbers in errors count rows from 2,
    /// as if a header were line 1).
    pub fn from_rows<'a>(
        rows: impl IntoIterator<Item = ScoreRow<'a>>,
        group_columns: Vec<String>,
        options: VerificationOptions,
    ) -> Result<Self, EvalError> {
        let mut it = rows.into_iter().peekable();
        let has_subjects = it.peek().is_some_and(|r| r.probe_subject.is_some());
        let mut b = VerificationBuilder::new(options, "<rows>", has_subjects, group_columns)?;
        let mut n = 0u64;
        for (j, row) in it.enumerate() {
            b.push(&row, j as u64 + 2)?;
            n += 1;
        }
        if n == 0 {
            return Err(EvalError::bad(
                Path::new("<rows>"),
                1,
                None,
                "no comparisons",
            ));
        }
        b.finish()
    }

    /// Compute a report from plain genuine and impostor score lists.
    pub fn from_scores(
        genuine: &[f32],
        impostor: &[f32],
        options: VerificationOptions,
    ) -> Result<Self, EvalError> {
        let rows = genuine
            .iter()
            .map(|&s| (s, true))
            .chain(impostor.iter().map(|&s| (s, false)))
            .map(|(s, mated)| ScoreRow {
                score: Some(s),
                failure: None,
                mated,
                probe_subject: None,
                reference_subject: None,
                groups: &[],
            });
        Self::from_rows(rows, Vec::new(), options)
    }
}
