//! Accuracy evaluation for Huella, and for any score file: the figures ISO/IEC 19795-1
//! and NIST's FRTE (FRVT) reports use.
//!
//! * **Verification** ([`VerificationReport`]): FMR(t), FNMR(t), the EER (interpolated,
//!   plus the FVC2000 interval), FNMR at FMR = 1e-2, 1e-3, 1e-4 (FMR100, FMR1000,
//!   FMR10000), ZeroFMR, ZeroFNMR, failure-to-enrol and failure-to-acquire rates (a
//!   failure scores as a non-match), ROC/DET points, subject-bootstrap intervals, warnings
//!   for figures the data cannot support, and per-group FMR/FNMR at one global threshold.
//! * **Identification** ([`IdentificationReport`]): FNIR at FPIR = 0.001, 0.003, 0.01, 0.1
//!   with their thresholds (open set), the CMC and rank-k hit rates (closed set).
//! * **LFW** ([`read_lfw_pairs`], [`lfw_report`] → [`LfwReport`]): the View 1 / View 2
//!   pair lists and the LFW figures (10-fold accuracy, TAR at FAR, FVC EER) on scores
//!   computed elsewhere; JSON keys are listed on [`LfwReport`].
//! * **Outputs**: JSON (below), CSV curves, SVG and PNG plots (DET on normal-deviate axes,
//!   ROC, CMC, score histograms) and a self-contained HTML report.
//!
//! Other protocol runners (FVC, ...) feed [`ScoreRow`]s to a [`VerificationBuilder`] (or
//! [`CandidateRow`]s to an [`IdentificationBuilder`]), set `protocol` in the options, and
//! get the same reports.
//!
//! # Conventions
//!
//! Scores are **higher = more alike**; a comparison is a match when `score >= t`. Every
//! distinct score is a candidate threshold. Scores are rounded to f32 on input (Huella's
//! `Score` type) and kept exactly: every figure is computed on the sorted scores, never on
//! bins. Memory is bounded by 4 bytes per score (8 with a `probe_subject` column, plus 4
//! per score per group column): 10^8 impostor scores fit in 400 MB.
//!
//! * `eer`: linear interpolation of the (FMR, FNMR) segment that crosses FMR = FNMR.
//! * `eer_fvc_interval`: the FVC2000 rule (Maio et al. 2002); its `value` is what pyeer
//!   reports as EER.
//! * FNMR at FMR = a: FNMR at the lowest threshold whose FMR <= a.
//! * Intervals: subjects bootstrap over probe subjects (skipped, with a note, when the
//!   file names no subjects; pairs are never resampled as if independent).
//!
//! # Example
//!
//! ```
//! use huella_eval::{VerificationOptions, VerificationReport};
//!
//! # fn main() -> Result<(), huella_eval::EvalError> {
//! let genuine = [0.9, 0.8, 0.75, 0.4];
//! let impostor = [0.1, 0.2, 0.3, 0.5, 0.35, 0.05, 0.15, 0.25];
//! let report = VerificationReport::from_scores(&genuine, &impostor, VerificationOptions::default())?;
//! // At t = 0.75 nothing false matches and one genuine score (0.4) is rejected.
//! assert_eq!(report.zero_fmr.rate, 0.25);
//! assert_eq!(report.zero_fmr.threshold, 0.75);
//! // The curves cross between t = 0.5 (FMR 1/8, FNMR 1/4)... and t = 0.4 (FMR 1/4, FNMR 0).
//! assert!(report.eer.value > 0.12 && report.eer.value < 0.25);
//! let mut json = Vec::new();
//! report.write_json(&mut json)?;
//! assert!(String::from_utf8_lossy(&json).contains("\"schema_version\": 1"));
//! # Ok(()) }
//! ```
//!
//! # JSON schema (`schema_version` 1)
//!
//! Keys are stable within a schema version; new keys may be added, none renamed or
//! removed without a version bump. Rates are fractions in [0, 1]; thresholds are scores.
//!
//! Verification (`kind: "verification"`):
//!
//! | key | meaning |
//! |---|---|
//! | `schema_version`, `kind`, `protocol`, `software` | layout version, `verification`, the protocol (`scores` for a file), `huella-eval X.Y.Z` |
//! | `conventions.{score,decision,thresholds,precision,failures,eer_rule,eer_fvc_rule,fmr_point_rule}` | the rules above, in words |
//! | `counts.{genuine,impostor}` | comparisons attempted, failures included |
//! | `counts.{genuine_failures,impostor_failures,failures_to_enrol,failures_to_acquire,probe_subjects}` | failures; distinct probe subjects (null without a `probe_subject` column) |
//! | `failures.{fte_rate,fta_rate,note}` | failures per comparison attempt |
//! | `eer.{value,threshold,ci}` | interpolated EER; `ci` = `{low,high,level}` or null |
//! | `eer_fvc_interval.{low,high,value,threshold,ci}` | FVC2000 interval and midpoint |
//! | `fnmr_at_fmr[].{name,target_fmr,fnmr,fmr,threshold,expected_false_matches,supported,ci,warning}` | FMR100, FMR1000, FMR10000 |
//! | `zero_fmr.{rate,threshold}` | FNMR at the lowest threshold with FMR = 0 |
//! | `zero_fnmr.{rate,threshold}` | FMR at the highest threshold with FNMR = 0 (null with genuine failures) |
//! | `bootstrap.{replicates,skipped_replicates,seed,level,unit,units,method}` | null when skipped |
//! | `demographics[].{column,threshold,threshold_rule,groups[].{group,subjects,genuine,impostor,fmr,fnmr},fmr_worst_to_best,fnmr_worst_to_best,unlabelled}` | per group column |
//! | `warnings[]`, `notes[]` | text |
//! | `curve[].{threshold,fmr,fnmr}` | sampled ROC/DET points, ascending threshold |
//! | `histogram.{edges,genuine,impostor}` | score histograms on common bins |
//!
//! Identification (`kind: "identification"`): `schema_version`, `kind`, `mode`
//! (`open-set` / `closed-set`), `protocol`, `software`,
//! `conventions.{decision,fnir,fpir,fpir_point_rule}`,
//! `counts.{mated,non_mated,mate_not_listed,max_rank}`, `rank_k[].{rank,hit_rate,fnir}`,
//! `cmc[].{rank,hit_rate,fnir}`, `rank_limit`,
//! `fnir_at_fpir[].{name,target_fpir,fnir,fpir,threshold,expected_false_positives,supported,warning}`,
//! `curve[].{threshold,fpir,fnir}`, `warnings[]`, `notes[]`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod fvc;
mod identification;
mod input;
mod keys;
mod lfw;
mod plot;
mod report;
mod stats;
mod verification;

pub use error::EvalError;
pub use fvc::{
    fvc_figures, read_fvc_databases, FvcDatabase, FvcDatabaseReport, FvcFigures, FvcPairs,
    FvcReport, FvcSample, FvcSummary,
};
pub use identification::{
    CandidateRow, FpirPoint, IdentConventions, IdentCurvePoint, IdentificationBuilder,
    IdentificationOptions, IdentificationReport, ProbeCounts, RankRate, CANDIDATE_COLUMNS,
};
pub use lfw::{
    lfw_report, read_lfw_pairs, LfwConventions, LfwCounts, LfwDev, LfwEer, LfwFold, LfwPair,
    LfwPooled, LfwReport, LfwTarAtFar, LfwTenFold, LfwView, LFW_FAR_TARGETS,
};
pub use report::RunInfo;
pub use stats::probit;
pub use verification::{
    fmr_point_name, BootstrapInfo, Conventions, Counts, CurvePoint, DemographicBreakdown, Eer,
    EerInterval, Failure, FailureRates, GroupFigures, Histogram, Interval, OperatingPoint, RateAt,
    ScoreRow, VerificationBuilder, VerificationOptions, VerificationReport, SCORE_COLUMNS,
};

/// Version of the JSON layout written by [`VerificationReport::write_json`] and
/// [`IdentificationReport::write_json`].
pub const SCHEMA_VERSION: u32 = 1;

/// This crate's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
