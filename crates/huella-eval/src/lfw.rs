//! The LFW protocol (Labeled Faces in the Wild, Huang et al. 2007; reporting rules of
//! UM-CS-2014-003) on similarity scores computed elsewhere: reading the pair lists of
//! View 1 and View 2, and the figures LFW results are quoted with.
//!
//! This module knows nothing about faces: a caller reads the pairs with
//! [`read_lfw_pairs`], scores every pair with its own pipeline, and hands the scores to
//! [`lfw_report`].
//!
//! Every figure follows the definitions of `benches/face_recognition_peer.py`, so the two
//! can be compared pair for pair (its `--scores-csv` uses the same fold numbers):
//!
//! * **Best threshold** on a set of pairs: the candidates are `min - 1`, every midpoint
//!   between consecutive distinct sorted scores, and `max + 1`; the candidate with the
//!   highest accuracy wins, ties go to the lowest candidate. A pair is accepted (called
//!   "same") iff `score >= threshold`.
//! * **View 2**: 10-fold accuracy; each fold's threshold is chosen on the other nine.
//!   Reported: per-fold threshold and accuracy, the mean, the sample standard deviation
//!   (ddof = 1) and the standard error `std / sqrt(folds)`.
//! * **View 1**: the threshold is chosen on `pairsDevTrain` (fold 0), the accuracy is
//!   measured on `pairsDevTest` (fold 1).
//! * **TAR at FAR = a** over the evaluation pairs (View 2: all pairs; View 1:
//!   `pairsDevTest`): `t*` is the smallest observed score (or +inf) with
//!   `#{impostor >= t*} <= floor(a * N_imp)`; ties at `t*` are accepted;
//!   `TAR = #{genuine >= t*} / N_gen`. No interpolation. Flagged (`resolvable: false`)
//!   when `N_imp < 1 / a`.
//! * **EER**: the FVC2000 interval midpoint (Maio et al. 2002) over the distinct scores
//!   plus +inf, the rule of the crate's `eer_fvc_interval` (and the same code).
//!
//! A pair whose score is `None` (either image failed to enrol) is never accepted, at any
//! threshold: a genuine pair with a failure is a false non-match, an impostor pair with
//! one a correct rejection, and both stay in every denominator. Failures add no candidate
//! thresholds.

use crate::keys::{eer_fvc, walk, Totals};
use crate::{EvalError, SCHEMA_VERSION, VERSION};
use serde::Serialize;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// The FAR levels of [`LfwPooled::tar_at_far`].
pub const LFW_FAR_TARGETS: [f64; 2] = [1e-3, 1e-2];

/// Longest protocol line accepted, in bytes (official lines are under 80).
const MAX_LINE: u64 = 4096;
/// Most folds a View 2 header may announce.
const MAX_FOLDS: u64 = 1000;
/// Most matched (or mismatched) pairs one fold or one View 1 file may announce.
const MAX_PAIRS_PER_BLOCK: u64 = 1_000_000;
/// Most pairs a View 2 header may announce in all.
const MAX_PAIRS_TOTAL: u64 = 10_000_000;

/// Which LFW view: View 1 for development, View 2 for the reported figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LfwView {
    /// `pairsDevTrain.txt` (fold 0) and `pairsDevTest.txt` (fold 1).
    View1,
    /// `pairs.txt`: 10 folds of 300 matched and 300 mismatched pairs, folds 1..=10.
    View2,
}

impl LfwView {
    /// The view's number: 1 or 2.
    pub fn number(self) -> u8 {
        match self {
            LfwView::View1 => 1,
            LfwView::View2 => 2,
        }
    }
}

/// One pair of an LFW pair list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LfwPair {
    /// View 2: the fold, 1..=10 (in file order). View 1: 0 = `pairsDevTrain`,
    /// 1 = `pairsDevTest`. The same numbers as the peer script's `--scores-csv`.
    pub fold: usize,
    /// True for a matched (same person) pair, false for a mismatched one.
    pub genuine: bool,
    /// First image, relative to the LFW root: `<name>/<name>_<n as 4 digits>.jpg`.
    pub a: PathBuf,
    /// Second image, relative to the LFW root.
    pub b: PathBuf,
}

/// Read the pair list of `view` from `<root>/protocol/` (`pairs.txt` for View 2,
/// `pairsDevTrain.txt` then `pairsDevTest.txt` for View 1), in file order: per fold (or
/// file) the matched pairs, then the mismatched ones.
///
/// Parsing is strict: fields are separated by whitespace (the files use tabs); the header
/// must give sane counts; every fold must hold exactly the announced number of matched
/// lines (`name n1 n2`) followed by as many mismatched lines (`name1 n1 name2 n2`); image
/// numbers are 1..=9999 in decimal digits; nothing but blank lines may follow the last
/// pair. Any deviation is an [`EvalError::BadInput`] naming the file and the 1-based line
/// (the header is line 1).
pub fn read_lfw_pairs(root: &Path, view: LfwView) -> Result<Vec<LfwPair>, EvalError> {
    let dir = root.join("protocol");
    let mut out = Vec::new();
    match view {
        LfwView::View2 => read_pairs_file(&dir.join("pairs.txt"), Header::Folds, 1, &mut out)?,
        LfwView::View1 => {
            read_pairs_file(&dir.join("pairsDevTrain.txt"), Header::Count, 0, &mut out)?;
            read_pairs_file(&dir.join("pairsDevTest.txt"), Header::Count, 1, &mut out)?;
        }
    }
    Ok(out)
}

/// The header a pair file starts with.
#[derive(Clone, Copy)]
enum Header {
    /// `folds n` (View 2).
    Folds,
    /// `n` (View 1).
    Count,
}

/// A text file read line by line, each line capped at [`MAX_LINE`] bytes.
struct Lines {
    path: PathBuf,
    reader: BufReader<File>,
    /// 1-based number of the line last read.
    line: u64,
    buf: Vec<u8>,
}

impl Lines {
    fn open(path: &Path) -> Result<Self, EvalError> {
        let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
        Ok(Lines {
            path: path.to_path_buf(),
            reader: BufReader::new(file),
            line: 0,
            buf: Vec::new(),
        })
    }

    /// The next line without its line ending; None at end of file.
    fn next(&mut self) -> Result<Option<String>, EvalError> {
        self.buf.clear();
        let n = (&mut self.reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| EvalError::io(&self.path, e))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        } else if n as u64 > MAX_LINE {
            return Err(self.bad(None, format!("line longer than {MAX_LINE} bytes")));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        let line = self.line;
        std::str::from_utf8(&self.buf)
            .map(|t| Some(t.to_string()))
            .map_err(|_| EvalError::bad(&self.path, line, None, "line is not UTF-8"))
    }

    fn bad(&self, column: Option<&str>, reason: impl Into<String>) -> EvalError {
        EvalError::bad(&self.path, self.line, column, reason)
    }
}

/// Parse a count from a header field: decimal digits, 1..=max.
fn parse_count(lines: &Lines, text: &str, column: &str, max: u64) -> Result<u64, EvalError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(lines.bad(
            Some(column),
            format!("'{text}' is not a count (decimal digits)"),
        ));
    }
    match text.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(lines.bad(
            Some(column),
            format!("count {text} is out of range (1..={max})"),
        )),
    }
}

/// Parse an image number: decimal digits, 1..=9999.
fn parse_index(lines: &Lines, text: &str, column: &str) -> Result<u32, EvalError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(lines.bad(
            Some(column),
            format!("'{text}' is not an image number (decimal digits)"),
        ));
    }
    match text.parse::<u32>() {
        Ok(n) if (1..=9999).contains(&n) => Ok(n),
        _ => Err(lines.bad(
            Some(column),
            format!("image number {text} is out of range (1..=9999)"),
        )),
    }
}

/// Check a person's name: it becomes a directory name, so no separators, no `.`/`..`.
fn check_name<'a>(lines: &Lines, text: &'a str, column: &str) -> Result<&'a str, EvalError> {
    if text == "."
        || text == ".."
        || text.contains(['/', '\\', '\0'])
        || text.chars().any(char::is_control)
    {
        return Err(lines.bad(
            Some(column),
            format!("'{}' is not a person's name", text.escape_debug()),
        ));
    }
    Ok(text)
}

/// The image path of (name, n), relative to the LFW root.
fn image_path(name: &str, n: u32) -> PathBuf {
    PathBuf::from(name).join(format!("{name}_{n:04}.jpg"))
}

/// Read one pair file, appending its pairs; View 2 folds are numbered from `first_fold`,
/// a View 1 file is fold `first_fold`.
fn read_pairs_file(
    path: &Path,
    header: Header,
    first_fold: usize,
    out: &mut Vec<LfwPair>,
) -> Result<(), EvalError> {
    let mut lines = Lines::open(path)?;
    let expected_header = match header {
        Header::Folds => "'<folds> <pairs per fold>' (e.g. '10 300')",
        Header::Count => "'<pairs>' (e.g. '1100')",
    };
    let Some(text) = lines.next()? else {
        return Err(EvalError::bad(
            path,
            1,
            None,
            format!("empty file: expected a header line {expected_header}"),
        ));
    };
    let fields: Vec<&str> = text.split_whitespace().collect();
    let (folds, n) = match (header, fields.as_slice()) {
        (Header::Folds, [f, n]) => {
            let folds = parse_count(&lines, f, "folds", MAX_FOLDS)?;
            let n = parse_count(&lines, n, "pairs", MAX_PAIRS_PER_BLOCK)?;
            if folds * 2 * n > MAX_PAIRS_TOTAL {
                return Err(lines.bad(
                    None,
                    format!(
                        "{folds} folds x {} pairs is more than {MAX_PAIRS_TOTAL} pairs",
                        2 * n
                    ),
                ));
            }
            (folds, n)
        }
        (Header::Count, [n]) => (1, parse_count(&lines, n, "pairs", MAX_PAIRS_PER_BLOCK)?),
        _ => {
            return Err(lines.bad(
                None,
                format!(
                    "bad header '{}': expected {expected_header}",
                    text.escape_debug()
                ),
            ))
        }
    };
    for f in 0..folds {
        let fold = first_fold + f as usize;
        for genuine in [true, false] {
            let kind = if genuine { "matched" } else { "mismatched" };
            for k in 1..=n {
                let what = match header {
                    Header::Folds => format!("{kind} pair {k} of {n} in fold {fold}"),
                    Header::Count => format!("{kind} pair {k} of {n}"),
                };
                let Some(text) = lines.next()? else {
                    let at = lines.line + 1;
                    return Err(EvalError::bad(
                        path,
                        at,
                        None,
                        format!("file ends early: expected {what}"),
                    ));
                };
                let fields: Vec<&str> = text.split_whitespace().collect();
                let pair = match (genuine, fields.as_slice()) {
                    (true, [name, n1, n2]) => {
                        let name = check_name(&lines, name, "name")?;
                        let n1 = parse_index(&lines, n1, "n1")?;
                        let n2 = parse_index(&lines, n2, "n2")?;
                        if n1 == n2 {
                            return Err(lines
                                .bad(Some("n2"), format!("{what} pairs image {n1} with itself")));
                        }
                        LfwPair {
                            fold,
                            genuine,
                            a: image_path(name, n1),
                            b: image_path(name, n2),
                        }
                    }
                    (false, [name1, n1, name2, n2]) => {
                        let name1 = check_name(&lines, name1, "name1")?;
                        let n1 = parse_index(&lines, n1, "n1")?;
                        let name2 = check_name(&lines, name2, "name2")?;
                        let n2 = parse_index(&lines, n2, "n2")?;
                        if name1 == name2 {
                            return Err(lines.bad(
                                Some("name2"),
                                format!("{what} names the same person twice"),
                            ));
                        }
                        LfwPair {
                            fold,
                            genuine,
                            a: image_path(name1, n1),
                            b: image_path(name2, n2),
                        }
                    }
                    _ => {
                        let layout = if genuine {
                            "'name n1 n2' (3 fields)"
                        } else {
                            "'name1 n1 name2 n2' (4 fields)"
                        };
                        let hint = match (genuine, fields.len()) {
                            (true, 4) => "; a mismatched line here means the fold has fewer matched lines than the header says",
                            (false, 3) => "; a matched line here means the previous fold has more matched lines than the header says",
                            (_, 0) => "; blank lines are allowed only after the last pair",
                            _ => "",
                        };
                        return Err(lines.bad(
                            None,
                            format!(
                                "expected {what} as {layout}, found {} fields{hint}",
                                fields.len()
                            ),
                        ));
                    }
                };
                out.push(pair);
            }
        }
    }
    while let Some(text) = lines.next()? {
        if !text.trim().is_empty() {
            return Err(lines.bad(
                None,
                format!(
                    "extra line after the last pair (the header announces {folds} x {} pairs)",
                    2 * n
                ),
            ));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------ report

/// The rules behind the figures, in words.
#[derive(Debug, Clone, Serialize)]
pub struct LfwConventions {
    /// Score direction and the acceptance rule.
    pub score: String,
    /// How a pair with a failure is counted.
    pub failures: String,
    /// How a threshold is chosen on training pairs.
    pub best_threshold: String,
    /// The accuracy protocol of the view.
    pub accuracy: String,
    /// The TAR at FAR rule.
    pub tar_at_far: String,
    /// The EER rule.
    pub eer: String,
}

/// Pair counts.
#[derive(Debug, Clone, Serialize)]
pub struct LfwCounts {
    /// All pairs given.
    pub pairs: usize,
    /// Matched (same person) pairs.
    pub genuine: usize,
    /// Mismatched pairs.
    pub impostor: usize,
    /// Pairs without a score (either image failed to enrol).
    pub pairs_with_failure: usize,
}

/// One fold of the View 2 10-fold protocol.
#[derive(Debug, Clone, Serialize)]
pub struct LfwFold {
    /// The fold (1..=10 for `pairs.txt`).
    pub fold: usize,
    /// Pairs in the fold.
    pub n_pairs: usize,
    /// Pairs of the fold with a failure.
    pub pairs_with_failure: usize,
    /// Threshold chosen on the other folds; null when they hold no score (then every
    /// pair of the fold is rejected).
    pub threshold_score: Option<f64>,
    /// Accuracy of that threshold on the other folds.
    pub train_accuracy: f64,
    /// Accuracy of that threshold on this fold.
    pub accuracy: f64,
}

/// View 2: 10-fold cross-validated accuracy.
#[derive(Debug, Clone, Serialize)]
pub struct LfwTenFold {
    /// Mean of the fold accuracies.
    pub accuracy_mean: f64,
    /// Sample standard deviation (ddof = 1) of the fold accuracies.
    pub accuracy_std: f64,
    /// Standard error: `accuracy_std / sqrt(folds)`.
    pub accuracy_stderr: f64,
    /// Per fold, ascending fold number.
    pub folds: Vec<LfwFold>,
}

/// View 1: threshold from `pairsDevTrain`, accuracy on `pairsDevTest`.
#[derive(Debug, Clone, Serialize)]
pub struct LfwDev {
    /// Pairs of `pairsDevTrain` (fold 0).
    pub train_pairs: usize,
    /// Pairs of `pairsDevTest` (fold 1).
    pub test_pairs: usize,
    /// Threshold chosen on `pairsDevTrain`; null when it holds no score.
    pub train_threshold_score: Option<f64>,
    /// Accuracy of that threshold on `pairsDevTrain`.
    pub train_accuracy: f64,
    /// Accuracy of that threshold on `pairsDevTest`.
    pub test_accuracy: f64,
}

/// TAR at one FAR level.
#[derive(Debug, Clone, Serialize)]
pub struct LfwTarAtFar {
    /// The FAR level.
    pub far_target: f64,
    /// Genuine pairs accepted at `threshold_score`, over all genuine pairs.
    pub tar: f64,
    /// Impostor pairs accepted there, over all impostor pairs.
    pub far_achieved: f64,
    /// Impostor pairs accepted there.
    pub impostors_accepted: u64,
    /// `floor(far_target * N_imp)`.
    pub max_impostors_allowed: u64,
    /// `t*`: the smallest observed score that keeps the impostors accepted within the
    /// allowance; null for +inf (no score does, and nothing is accepted).
    pub threshold_score: Option<f64>,
    /// `1 / N_imp`: the FAR step.
    pub far_resolution: f64,
    /// False when `N_imp * far_target < 1`: the level cannot be resolved.
    pub resolvable: bool,
}

/// The FVC2000 EER.
#[derive(Debug, Clone, Serialize)]
pub struct LfwEer {
    /// `(eer_low + eer_high) / 2`.
    pub eer: f64,
    /// Lower end of the FVC2000 interval.
    pub eer_low: f64,
    /// Upper end of the FVC2000 interval.
    pub eer_high: f64,
    /// The threshold the interval was read at; null for +inf.
    pub threshold_score: Option<f64>,
}

/// Threshold-free figures over the evaluation pairs.
#[derive(Debug, Clone, Serialize)]
pub struct LfwPooled {
    /// Which pairs: `all pairs` (View 2) or `pairsDevTest` (View 1).
    pub scope: String,
    /// Genuine pairs in scope.
    pub n_genuine: usize,
    /// Impostor pairs in scope.
    pub n_impostor: usize,
    /// Pairs in scope with a failure.
    pub pairs_with_failure: usize,
    /// TAR at FAR = 1e-3 and 1e-2 (empty without both genuine and impostor pairs).
    pub tar_at_far: Vec<LfwTarAtFar>,
    /// FVC2000 EER (null without both genuine and impostor pairs).
    pub eer: Option<LfwEer>,
}

/// LFW report. JSON keys: `schema_version`, `kind` (`lfw`), `protocol` (`lfw-view1` /
/// `lfw-view2`), `software`, `view`, `conventions.{score,failures,best_threshold,accuracy,
/// tar_at_far,eer}`, `counts.{pairs,genuine,impostor,pairs_with_failure}`,
/// `ten_fold.{accuracy_mean,accuracy_std,accuracy_stderr,folds[].{fold,n_pairs,
/// pairs_with_failure,threshold_score,train_accuracy,accuracy}}` (View 2, else null),
/// `dev.{train_pairs,test_pairs,train_threshold_score,train_accuracy,test_accuracy}`
/// (View 1, else null), `pooled.{scope,n_genuine,n_impostor,pairs_with_failure,
/// tar_at_far[].{far_target,tar,far_achieved,impostors_accepted,max_impostors_allowed,
/// threshold_score,far_resolution,resolvable},eer.{eer,eer_low,eer_high,threshold_score}}`,
/// `warnings[]`.
#[derive(Debug, Clone, Serialize)]
pub struct LfwReport {
    /// Version of the JSON layout.
    pub schema_version: u32,
    /// Always `lfw`.
    pub kind: String,
    /// `lfw-view1` or `lfw-view2`.
    pub protocol: String,
    /// `huella-eval <version>`.
    pub software: String,
    /// 1 or 2.
    pub view: u8,
    /// The rules, in words.
    pub conventions: LfwConventions,
    /// Counts over all pairs given.
    pub counts: LfwCounts,
    /// View 2: the 10-fold accuracy; null for View 1.
    pub ten_fold: Option<LfwTenFold>,
    /// View 1: the development split; null for View 2.
    pub dev: Option<LfwDev>,
    /// TAR at FAR and EER over the evaluation pairs.
    pub pooled: LfwPooled,
    /// Figures too weak to lean on, and departures from the standard protocol.
    pub warnings: Vec<String>,
}

impl LfwReport {
    /// Write the report as pretty JSON.
    pub fn write_json(&self, w: impl Write) -> Result<(), EvalError> {
        serde_json::to_writer_pretty(w, self)
            .map_err(|e| EvalError::io(Path::new("<json>"), e.into()))
    }
}

fn conventions(view: LfwView) -> LfwConventions {
    LfwConventions {
        score: "higher = more alike; a pair is accepted (same person) iff score >= threshold".into(),
        failures: "a pair without a score is never accepted: a genuine one is a false non-match, an impostor one a correct rejection; both stay in every denominator and add no candidate threshold".into(),
        best_threshold: "candidates: min-1, midpoints of consecutive distinct sorted scores, max+1; highest accuracy, ties -> lowest candidate".into(),
        accuracy: match view {
            LfwView::View2 => "10-fold: each fold's threshold chosen on the other folds; mean, std (ddof=1), stderr = std/sqrt(folds)".into(),
            LfwView::View1 => "threshold chosen on pairsDevTrain (fold 0), accuracy on pairsDevTest (fold 1)".into(),
        },
        tar_at_far: "t* = smallest observed score (or +inf) with #imp>=t* <= floor(far*N_imp), ties accepted; TAR = #gen>=t*/N_gen; no interpolation".into(),
        eer: "FVC2000 interval midpoint over distinct scores + {+inf}".into(),
    }
}

/// A pair as the metrics see it: its score (None = failure) and its class.
#[derive(Debug, Clone, Copy)]
struct Scored {
    score: Option<f64>,
    genuine: bool,
}

/// Compute the LFW figures of `view` from one score per pair.
///
/// `scores[i]` is the similarity of `pairs[i]` (higher = more alike), or `None` when
/// either image failed to enrol. View 2 uses every fold present (10 for `pairs.txt`);
/// View 1 needs folds 0 and 1 and nothing else.
///
/// Errors ([`EvalError::BadInput`], the line being the 1-based pair index): `scores` and
/// `pairs` differ in length, a score is NaN or infinite, no pairs, View 2 with fewer than
/// two folds, View 1 with a fold other than 0 and 1 or without one of them.
pub fn lfw_report(
    view: LfwView,
    pairs: &[LfwPair],
    scores: &[Option<f64>],
) -> Result<LfwReport, EvalError> {
    let scores_path = Path::new("<scores>");
    let pairs_path = Path::new("<pairs>");
    if pairs.is_empty() {
        return Err(EvalError::bad(pairs_path, 1, None, "no pairs"));
    }
    if scores.len() != pairs.len() {
        let at = scores.len().min(pairs.len()) as u64 + 1;
        return Err(EvalError::bad(
            scores_path,
            at,
            None,
            format!("{} scores for {} pairs", scores.len(), pairs.len()),
        ));
    }
    if pairs.len() > u32::MAX as usize / 2 {
        return Err(EvalError::bad(pairs_path, 1, None, "too many pairs"));
    }
    let mut scored = Vec::with_capacity(pairs.len());
    for (j, (p, &s)) in pairs.iter().zip(scores).enumerate() {
        if let Some(v) = s {
            if !v.is_finite() {
                return Err(EvalError::bad(
                    scores_path,
                    j as u64 + 1,
                    None,
                    format!("score {v} is not finite"),
                ));
            }
        }
        if view == LfwView::View1 && p.fold > 1 {
            return Err(EvalError::bad(
                pairs_path,
                j as u64 + 1,
                None,
                format!(
                    "View 1 pair in fold {} (only 0 = pairsDevTrain, 1 = pairsDevTest)",
                    p.fold
                ),
            ));
        }
        scored.push(Scored {
            // -0.0 and +0.0 are one score.
            score: s.map(|v| if v == 0.0 { 0.0 } else { v }),
            genuine: p.genuine,
        });
    }
    let counts = LfwCounts {
        pairs: pairs.len(),
        genuine: pairs.iter().filter(|p| p.genuine).count(),
        impostor: pairs.iter().filter(|p| !p.genuine).count(),
        pairs_with_failure: scores.iter().filter(|s| s.is_none()).count(),
    };
    let mut warnings = Vec::new();
    if counts.pairs_with_failure > 0 {
        warnings.push(format!(
            "{} of {} pairs have no score (failure to enrol); they count as rejected at every threshold",
            counts.pairs_with_failure, counts.pairs
        ));
    }
    let mut folds: Vec<usize> = pairs.iter().map(|p| p.fold).collect();
    folds.sort_unstable();
    folds.dedup();

    let (ten_fold, dev, pooled) = match view {
        LfwView::View2 => {
            if folds.len() < 2 {
                return Err(EvalError::bad(
                    pairs_path,
                    1,
                    None,
                    format!(
                        "View 2 needs at least 2 folds, the pairs have {}",
                        folds.len()
                    ),
                ));
            }
            if folds.len() != 10 {
                warnings.push(format!(
                    "{} folds: the LFW View 2 protocol has 10",
                    folds.len()
                ));
            }
            let mut per = Vec::with_capacity(folds.len());
            for &f in &folds {
                let train: Vec<Scored> = (0..pairs.len())
                    .filter(|&j| pairs[j].fold != f)
                    .map(|j| scored[j])
                    .collect();
                let test: Vec<Scored> = (0..pairs.len())
                    .filter(|&j| pairs[j].fold == f)
                    .map(|j| scored[j])
                    .collect();
                let (thr, train_acc) = best_threshold(&train);
                per.push(LfwFold {
                    fold: f,
                    n_pairs: test.len(),
                    pairs_with_failure: test.iter().filter(|s| s.score.is_none()).count(),
                    threshold_score: thr,
                    train_accuracy: train_acc,
                    accuracy: accuracy_at(&test, thr),
                });
            }
            let acc: Vec<f64> = per.iter().map(|p| p.accuracy).collect();
            let (mean, std) = mean_std(&acc);
            let ten = LfwTenFold {
                accuracy_mean: mean,
                accuracy_std: std,
                accuracy_stderr: std / (acc.len() as f64).sqrt(),
                folds: per,
            };
            (Some(ten), None, pooled(&scored, "all pairs", &mut warnings))
        }
        LfwView::View1 => {
            for (f, name) in [(0, "pairsDevTrain"), (1, "pairsDevTest")] {
                if !folds.contains(&f) {
                    return Err(EvalError::bad(
                        pairs_path,
                        1,
                        None,
                        format!("View 1 needs fold {f} ({name}); the pairs have none"),
                    ));
                }
            }
            let pick = |f: usize| -> Vec<Scored> {
                (0..pairs.len())
                    .filter(|&j| pairs[j].fold == f)
                    .map(|j| scored[j])
                    .collect()
            };
            let (train, test) = (pick(0), pick(1));
            let (thr, train_acc) = best_threshold(&train);
            let dev = LfwDev {
                train_pairs: train.len(),
                test_pairs: test.len(),
                train_threshold_score: thr,
                train_accuracy: train_acc,
                test_accuracy: accuracy_at(&test, thr),
            };
            (
                None,
                Some(dev),
                pooled(&test, "pairsDevTest", &mut warnings),
            )
        }
    };
    Ok(LfwReport {
        schema_version: SCHEMA_VERSION,
        kind: "lfw".into(),
        protocol: format!("lfw-view{}", view.number()),
        software: format!("huella-eval {VERSION}"),
        view: view.number(),
        conventions: conventions(view),
        counts,
        ten_fold,
        dev,
        pooled,
        warnings,
    })
}

/// Mean and sample standard deviation (ddof = 1; 0 for one value).
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let ss: f64 = v.iter().map(|x| (x - mean) * (x - mean)).sum();
    (mean, (ss / (n - 1.0)).sqrt())
}

/// The distinct finite scores of `set`, ascending.
fn distinct_scores(set: &[Scored]) -> Vec<f64> {
    let mut u: Vec<f64> = set.iter().filter_map(|s| s.score).collect();
    u.sort_unstable_by(f64::total_cmp);
    u.dedup();
    u
}

/// Index of `x` in the sorted distinct scores `u` (x must be one of them).
fn rank(u: &[f64], x: f64) -> usize {
    u.partition_point(|&v| v < x)
}

/// Best-accuracy threshold on `set` (see the module docs) and its accuracy there.
/// `None` when `set` holds no score: then every pair is rejected.
fn best_threshold(set: &[Scored]) -> (Option<f64>, f64) {
    let n = set.len();
    if n == 0 {
        return (None, 0.0);
    }
    let u = distinct_scores(set);
    let m = u.len();
    let imp_fail = set
        .iter()
        .filter(|s| !s.genuine && s.score.is_none())
        .count();
    if m == 0 {
        return (None, imp_fail as f64 / n as f64);
    }
    // Candidate j accepts exactly the scores >= u[j] (j = m: none).
    let mut gen_at = vec![0usize; m];
    let mut imp_at = vec![0usize; m];
    for s in set {
        if let Some(x) = s.score {
            let r = rank(&u, x);
            if s.genuine {
                gen_at[r] += 1;
            } else {
                imp_at[r] += 1;
            }
        }
    }
    let mut tp: usize = gen_at.iter().sum();
    let mut tn = imp_fail;
    let (mut best_j, mut best) = (0usize, tp + tn);
    for j in 1..=m {
        tp -= gen_at[j - 1];
        tn += imp_at[j - 1];
        if tp + tn > best {
            best = tp + tn;
            best_j = j;
        }
    }
    let t = if best_j == 0 {
        u[0] - 1.0
    } else if best_j == m {
        u[m - 1] + 1.0
    } else {
        (u[best_j - 1] + u[best_j]) / 2.0
    };
    (Some(t), best as f64 / n as f64)
}

/// Accuracy on `set` of accepting iff `score >= t` (nothing when `t` is None).
fn accuracy_at(set: &[Scored], t: Option<f64>) -> f64 {
    if set.is_empty() {
        return 0.0;
    }
    let correct = set
        .iter()
        .filter(|s| {
            let accepted = matches!((s.score, t), (Some(x), Some(t)) if x >= t);
            accepted == s.genuine
        })
        .count();
    correct as f64 / set.len() as f64
}

/// TAR at FAR and the FVC2000 EER over `set`, through the crate's threshold walk on
/// the ranks of the distinct scores (exact in f64: no rounding to f32 keys).
fn pooled(set: &[Scored], scope: &str, warnings: &mut Vec<String>) -> LfwPooled {
    let n_genuine = set.iter().filter(|s| s.genuine).count();
    let n_impostor = set.len() - n_genuine;
    let pairs_with_failure = set.iter().filter(|s| s.score.is_none()).count();
    let mut out = LfwPooled {
        scope: scope.into(),
        n_genuine,
        n_impostor,
        pairs_with_failure,
        tar_at_far: Vec::new(),
        eer: None,
    };
    if n_genuine == 0 || n_impostor == 0 {
        warnings.push(format!(
            "{scope}: {n_genuine} genuine and {n_impostor} impostor pairs; TAR at FAR and EER need both"
        ));
        return out;
    }
    let u = distinct_scores(set);
    let mut g: Vec<u32> = Vec::new();
    let mut i: Vec<u32> = Vec::new();
    for s in set {
        if let Some(x) = s.score {
            // m <= pairs <= u32::MAX / 2, checked by the caller.
            let r = rank(&u, x) as u32;
            if s.genuine {
                g.push(r);
            } else {
                i.push(r);
            }
        }
    }
    g.sort_unstable();
    i.sort_unstable();
    let totals = Totals {
        genuine: n_genuine as u64,
        impostor: n_impostor as u64,
        genuine_failures: (n_genuine - g.len()) as u64,
    };
    // floor(far * N_imp) as the peer computes it; fm / N_imp <= k / N_imp iff fm <= k,
    // since distinct fractions with denominator N_imp are far more than an ulp apart.
    let allowed: Vec<u64> = LFW_FAR_TARGETS
        .iter()
        .map(|&far| (far * n_impostor as f64 + 1e-9).floor() as u64)
        .collect();
    let levels: Vec<f64> = allowed
        .iter()
        .map(|&k| k as f64 / n_impostor as f64)
        .collect();
    let w = walk(
        g.as_slice(),
        i.as_slice(),
        |_| 1,
        totals,
        i.len() as u64,
        &levels,
    );
    let score_of = |k: u32| u.get(k as usize).copied();
    for (j, &far) in LFW_FAR_TARGETS.iter().enumerate() {
        let p = w.at_fmr[j];
        let resolvable = n_impostor as f64 * far >= 1.0;
        if !resolvable {
            warnings.push(format!(
                "{scope}: {n_impostor} impostor pairs cannot resolve FAR = {far} (at least {} are needed)",
                (1.0 / far).ceil()
            ));
        }
        out.tar_at_far.push(LfwTarAtFar {
            far_target: far,
            tar: (n_genuine as u64 - p.fnm) as f64 / n_genuine as f64,
            far_achieved: p.fm as f64 / n_impostor as f64,
            impostors_accepted: p.fm,
            max_impostors_allowed: allowed[j],
            threshold_score: score_of(p.key),
            far_resolution: 1.0 / n_impostor as f64,
            resolvable,
        });
    }
    let (lo, hi, tk, _) = eer_fvc(&w, &totals);
    out.eer = Some(LfwEer {
        eer: (lo + hi) / 2.0,
        eer_low: lo,
        eer_high: hi,
        threshold_score: score_of(tk),
    });
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sc(s: &[(f64, bool)]) -> Vec<Scored> {
        s.iter()
            .map(|&(x, g)| Scored {
                score: Some(x),
                genuine: g,
            })
            .collect()
    }

    fn pair(fold: usize, genuine: bool) -> LfwPair {
        LfwPair {
            fold,
            genuine,
            a: "a".into(),
            b: "b".into(),
        }
    }

    // ---------------------------------------------------------------- threshold choice

    #[test]
    fn threshold_separable_takes_lowest_perfect_midpoint() {
        // Sorted: 0.1 i, 0.2 i, 0.6 g, 0.9 g. Candidates: -0.9, 0.15, 0.4, 0.75, 1.9 with
        // correct counts 2, 3, 4, 3, 2: the midpoint 0.4 wins.
        let set = sc(&[(0.9, true), (0.6, true), (0.2, false), (0.1, false)]);
        assert_eq!(best_threshold(&set), (Some(0.4), 1.0));
    }

    #[test]
    fn threshold_ties_go_to_lowest_candidate() {
        // 0.3 g, 0.5 i, 0.7 g. Candidates -0.7 (2 right), 0.4 (1), 0.6 (2), 1.7 (1):
        // -0.7 and 0.6 tie at 2/3; the lowest wins.
        let set = sc(&[(0.3, true), (0.5, false), (0.7, true)]);
        assert_eq!(best_threshold(&set), (Some(0.3 - 1.0), 2.0 / 3.0));
        // All impostors: max + 1 rejects them all.
        let set = sc(&[(0.3, false), (0.5, false)]);
        assert_eq!(best_threshold(&set), (Some(1.5), 1.0));
    }

    #[test]
    fn threshold_with_equal_scores_and_failures() {
        // Genuine and impostor share 0.5: accepted together or rejected together.
        // 0.5 g, 0.5 i, 0.8 g, failure g, failure i (always rejected).
        // Candidates: -0.5 -> acc g,g (0.5,0.8) right, i 0.5 wrong, fail g wrong, fail i right = 3
        //             0.65 -> 0.8 g right, 0.5 i right, 0.5 g wrong, fail g wrong, fail i right = 3
        //             1.8  -> 2 right (0.5 i, fail i)
        let set = vec![
            Scored {
                score: Some(0.5),
                genuine: true,
            },
            Scored {
                score: Some(0.5),
                genuine: false,
            },
            Scored {
                score: Some(0.8),
                genuine: true,
            },
            Scored {
                score: None,
                genuine: true,
            },
            Scored {
                score: None,
                genuine: false,
            },
        ];
        assert_eq!(best_threshold(&set), (Some(-0.5), 0.6));
        assert_eq!(accuracy_at(&set, Some(0.65)), 0.6);
        assert_eq!(accuracy_at(&set, None), 0.4);
        let only_failures = vec![set[3], set[4]];
        assert_eq!(best_threshold(&only_failures), (None, 0.5));
    }

    // ---------------------------------------------------------------- 10-fold

    /// 10 folds, each 2 genuine (0.8, 0.7) and 2 impostor (0.3, 0.2) pairs.
    fn ten_folds() -> (Vec<LfwPair>, Vec<Option<f64>>) {
        let mut pairs = Vec::new();
        let mut scores = Vec::new();
        for f in 1..=10 {
            for (s, g) in [(0.8, true), (0.7, true), (0.3, false), (0.2, false)] {
                pairs.push(pair(f, g));
                scores.push(Some(s));
            }
        }
        (pairs, scores)
    }

    #[test]
    fn ten_fold_separable_is_perfect() {
        let (pairs, scores) = ten_folds();
        let r = lfw_report(LfwView::View2, &pairs, &scores).unwrap();
        let t = r.ten_fold.as_ref().unwrap();
        assert_eq!(t.folds.len(), 10);
        for f in &t.folds {
            assert_eq!(f.threshold_score, Some(0.5));
            assert_eq!((f.accuracy, f.train_accuracy, f.n_pairs), (1.0, 1.0, 4));
        }
        assert_eq!(
            (t.accuracy_mean, t.accuracy_std, t.accuracy_stderr),
            (1.0, 0.0, 0.0)
        );
        assert!(r.dev.is_none());
        assert_eq!(r.counts.pairs, 40);
        assert_eq!(r.counts.genuine, 20);
        assert_eq!(r.counts.pairs_with_failure, 0);
        let e = r.pooled.eer.as_ref().unwrap();
        assert_eq!((e.eer, e.eer_low, e.eer_high), (0.0, 0.0, 0.0));
        // 20 impostors: FAR 1e-2 and 1e-3 allow 0; t* = 0.7 (the lowest genuine score).
        for p in &r.pooled.tar_at_far {
            assert_eq!(p.max_impostors_allowed, 0);
            assert_eq!(p.threshold_score, Some(0.7));
            assert_eq!((p.tar, p.far_achieved), (1.0, 0.0));
            assert!(!p.resolvable);
        }
    }

    #[test]
    fn ten_fold_with_one_swapped_pair() {
        // In fold 3 the genuine 0.7 becomes 0.25: a genuine pair below an impostor.
        let (pairs, mut scores) = ten_folds();
        scores[2 * 4 + 1] = Some(0.25);
        let r = lfw_report(LfwView::View2, &pairs, &scores).unwrap();
        let t = r.ten_fold.as_ref().unwrap();
        for f in &t.folds {
            if f.fold == 3 {
                // Trained on 9 clean folds: t = 0.5; 0.25 g is rejected: 3 of 4 right.
                assert_eq!(f.threshold_score, Some(0.5));
                assert_eq!((f.accuracy, f.train_accuracy), (0.75, 1.0));
            } else {
                // Training holds the 0.25 g: 0.5 still best (35 of 36), and the fold
                // itself is clean.
                assert_eq!(f.threshold_score, Some(0.5));
                assert_eq!(f.train_accuracy, 35.0 / 36.0);
                assert_eq!(f.accuracy, 1.0);
            }
        }
        // Accuracies: nine 1.0 and one 0.75. Mean 0.975; deviations 0.025 (x9) and
        // -0.225; std (ddof 1) = sqrt((9 * 0.025^2 + 0.225^2) / 9) = sqrt(0.00625).
        let mean = 0.975;
        let var = (9.0 * 0.025f64.powi(2) + 0.225f64.powi(2)) / 9.0;
        assert!((t.accuracy_mean - mean).abs() < 1e-12);
        assert!((t.accuracy_std - var.sqrt()).abs() < 1e-12);
        assert!((t.accuracy_stderr - var.sqrt() / 10f64.sqrt()).abs() < 1e-12);
        assert!((t.accuracy_std - 0.079_056_941_504_209_48).abs() < 1e-12);
    }

    #[test]
    fn pooled_figures_by_hand() {
        // Genuine: 0.9, 0.8, 0.4, failure. Impostor: 0.5, 0.3, 0.2, 0.1 (N_imp = 4).
        // Thresholds (distinct scores + inf) and (FMR, FNMR):
        //   0.1: (4/4, 1/4)  0.2: (3/4, 1/4)  0.3: (2/4, 1/4)  0.4: (1/4, 1/4)
        //   0.5: (1/4, 2/4)  0.8: (0, 2/4)    0.9: (0, 3/4)    inf: (0, 4/4)
        // FVC: t1 = 0.4 (last FNMR <= FMR), t2 = 0.4 (first FNMR >= FMR): EER = 0.25.
        // FAR 1e-2 and 1e-3: 0 impostors allowed; smallest t with FMR 0 is 0.8: TAR 2/4.
        let pairs: Vec<LfwPair> = [true, true, true, true, false, false, false, false]
            .iter()
            .map(|&g| pair(1, g))
            .chain([pair(2, true), pair(2, false)])
            .collect();
        let scores = [
            Some(0.9),
            Some(0.8),
            Some(0.4),
            None,
            Some(0.5),
            Some(0.3),
            Some(0.2),
            Some(0.1),
            Some(0.95),
            Some(0.05),
        ];
        // Fold 2 adds a genuine 0.95 and impostor 0.05: N_gen = 5, N_imp = 5.
        //   0.05: (5/5, 1/5) 0.1: (4/5, 1/5) 0.2: (3/5, 1/5) 0.3: (2/5, 1/5)
        //   0.4: (1/5, 1/5)  0.5: (1/5, 2/5) 0.8: (0, 2/5)   0.9: (0, 3/5)
        //   0.95: (0, 4/5)   inf: (0, 5/5)
        // EER: t1 = t2 = 0.4 -> [0.2, 0.2]. TAR@FAR: t* = 0.8 -> TAR = 3/5.
        let r = lfw_report(LfwView::View2, &pairs, &scores).unwrap();
        let e = r.pooled.eer.as_ref().unwrap();
        assert_eq!((e.eer_low, e.eer_high, e.eer), (0.2, 0.2, 0.2));
        assert_eq!(e.threshold_score, Some(0.4));
        let p = &r.pooled.tar_at_far[0];
        assert_eq!(p.far_target, 1e-3);
        assert_eq!(p.threshold_score, Some(0.8));
        assert_eq!(
            (p.tar, p.impostors_accepted, p.far_resolution),
            (0.6, 0, 0.2)
        );
        assert_eq!(r.counts.pairs_with_failure, 1);
        assert_eq!(r.pooled.pairs_with_failure, 1);
        assert!(r.warnings.iter().any(|w| w.contains("no score")));
        assert!(r.warnings.iter().any(|w| w.contains("2 folds")));
        // Fold 1 is tested with the threshold from fold 2 alone: candidates 0.05-1,
        // 0.5, 1.95 -> 0.5 (2 of 2). Fold 1 at t = 0.5: g 0.9, 0.8 right, 0.4 and the
        // failure wrong; all 4 impostors: 0.5 accepted (wrong), others right -> 5 of 8.
        let t = r.ten_fold.as_ref().unwrap();
        assert_eq!(t.folds[0].threshold_score, Some(0.5));
        assert_eq!(t.folds[0].accuracy, 5.0 / 8.0);
        // Fold 2 is tested with the threshold chosen on fold 1 (with its failure):
        let train = sc(&[
            (0.9, true),
            (0.8, true),
            (0.4, true),
            (0.5, false),
            (0.3, false),
            (0.2, false),
            (0.1, false),
        ]);
        let mut with_fail = train.clone();
        with_fail.push(Scored {
            score: None,
            genuine: true,
        });
        // Right counts (of 8; the genuine failure is always wrong): -0.9: 3, 0.15: 4,
        // 0.25: 5, 0.35: 6, 0.45: 5 (0.4 g lost), 0.65: 6 (0.5 i rejected), 0.85: 5,
        // 1.9: 4. Best 6 at 0.35 (the lower of the two), accuracy 6/8. On fold 2
        // (g 0.95, i 0.05) it is right twice.
        assert_eq!(best_threshold(&with_fail), (Some(0.35), 0.75));
        assert_eq!(t.folds[1].threshold_score, Some(0.35));
        assert_eq!(t.folds[1].accuracy, 1.0);
    }

    #[test]
    fn tar_at_far_allows_floor_far_n_impostors_with_ties() {
        // 1000 impostors at 0.0 except 0.5, 0.5 and 0.9; genuine 0.6, 0.5, 0.95, 0.4.
        // FAR 1e-3: 1 impostor allowed. Impostors >= t: t = 0.9 -> 1 (ok); t = 0.6 -> 1
        // (ok); t = 0.5 -> 3 (no). t* = 0.6: TAR = (0.6, 0.95) = 2/4.
        // FAR 1e-2: 10 allowed: t = 0.4 -> 3 ok, t = 0.0 -> 1000 no; t* = 0.4: TAR 1.
        let mut pairs = Vec::new();
        let mut scores = Vec::new();
        for (j, &g) in [0.6, 0.5, 0.95, 0.4].iter().enumerate() {
            pairs.push(pair(j % 2, true));
            scores.push(Some(g));
        }
        for j in 0..1000 {
            pairs.push(pair(j % 2, false));
            scores.push(Some(match j {
                0 | 1 => 0.5,
                2 => 0.9,
                _ => 0.0,
            }));
        }
        let r = lfw_report(LfwView::View2, &pairs, &scores).unwrap();
        let [a, b] = [&r.pooled.tar_at_far[0], &r.pooled.tar_at_far[1]];
        assert_eq!(a.max_impostors_allowed, 1);
        assert_eq!(
            (a.threshold_score, a.tar, a.impostors_accepted),
            (Some(0.6), 0.5, 1)
        );
        assert!(a.resolvable);
        assert_eq!(b.max_impostors_allowed, 10);
        assert_eq!(
            (b.threshold_score, b.tar, b.impostors_accepted),
            (Some(0.4), 1.0, 3)
        );
        assert_eq!(b.far_achieved, 0.003);
    }

    #[test]
    fn eer_agrees_with_the_crate_fvc_interval() {
        // Scores exact in f32, so the f32-keyed VerificationReport sees the same values.
        let g: Vec<f32> = (0..40).map(|k| 0.3 + (k % 17) as f32 / 32.0).collect();
        let i: Vec<f32> = (0..90).map(|k| (k % 23) as f32 / 32.0).collect();
        let v = crate::VerificationReport::from_scores(&g, &i, Default::default()).unwrap();
        let pairs: Vec<LfwPair> = g
            .iter()
            .map(|_| pair(0, true))
            .chain(i.iter().map(|_| pair(1, false)))
            .collect();
        let scores: Vec<Option<f64>> = g.iter().chain(&i).map(|&s| Some(s as f64)).collect();
        let mut r = lfw_report(LfwView::View2, &pairs, &scores).unwrap();
        let e = r.pooled.eer.take().unwrap();
        assert_eq!(e.eer, v.eer_fvc_interval.value);
        assert_eq!(e.eer_low, v.eer_fvc_interval.low);
        assert_eq!(e.eer_high, v.eer_fvc_interval.high);
    }

    #[test]
    fn view1_uses_train_threshold_on_test() {
        // Train: g 0.9, 0.7; i 0.4, 0.2 -> t = 0.55. Test: g 0.6 (right), 0.5 (wrong);
        // i 0.3 (right), 0.58 (wrong at 0.55) -> 0.5.
        let pairs = vec![
            pair(0, true),
            pair(0, true),
            pair(0, false),
            pair(0, false),
            pair(1, true),
            pair(1, true),
            pair(1, false),
            pair(1, false),
        ];
        let scores = [0.9, 0.7, 0.4, 0.2, 0.6, 0.5, 0.3, 0.58].map(Some);
        let r = lfw_report(LfwView::View1, &pairs, &scores).unwrap();
        let d = r.dev.as_ref().unwrap();
        assert!((d.train_threshold_score.unwrap() - 0.55).abs() < 1e-15);
        assert_eq!((d.train_accuracy, d.test_accuracy), (1.0, 0.5));
        assert_eq!((d.train_pairs, d.test_pairs), (4, 4));
        assert!(r.ten_fold.is_none());
        assert_eq!(r.pooled.scope, "pairsDevTest");
        assert_eq!((r.pooled.n_genuine, r.pooled.n_impostor), (2, 2));
        let mut json = Vec::new();
        r.write_json(&mut json).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["protocol"], "lfw-view1");
        assert_eq!(v["view"], 1);
        assert!(v["ten_fold"].is_null());
        assert_eq!(v["counts"]["pairs_with_failure"], 0);
        assert_eq!(v["pooled"]["tar_at_far"][0]["resolvable"], false);
    }

    #[test]
    fn report_rejects_bad_arguments() {
        let pairs = vec![pair(0, true), pair(1, false)];
        let err = |r: Result<LfwReport, EvalError>| match r {
            Err(EvalError::BadInput { line, reason, .. }) => (line, reason),
            other => panic!("expected BadInput, got {other:?}"),
        };
        let (line, _) = err(lfw_report(LfwView::View1, &pairs, &[Some(1.0)]));
        assert_eq!(line, 2);
        let (line, _) = err(lfw_report(
            LfwView::View1,
            &pairs,
            &[Some(1.0), Some(f64::NAN)],
        ));
        assert_eq!(line, 2);
        let (_, reason) = err(lfw_report(LfwView::View1, &pairs[..1], &[Some(1.0)]));
        assert!(reason.contains("fold 1"), "{reason}");
        let (_, reason) = err(lfw_report(LfwView::View2, &pairs[..1], &[Some(1.0)]));
        assert!(reason.contains("2 folds"), "{reason}");
        let (line, _) = err(lfw_report(
            LfwView::View1,
            &[pair(0, true), pair(2, false)],
            &[None, None],
        ));
        assert_eq!(line, 2);
        assert!(lfw_report(LfwView::View2, &[], &[]).is_err());
    }

    // ---------------------------------------------------------------- parsing

    fn root_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("protocol")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join("protocol").join(name), text).unwrap();
        }
        dir
    }

    const VIEW2: &str = "2\t2\n\
        Abel_Pacheco\t1\t4\n\
        Akhmed_Zakayev\t1\t3\n\
        Abdel_Madi_Shabneh\t1\tDean_Barker\t1\n\
        Abdel_Madi_Shabneh\t1\tGiancarlo_Fisichella\t1\n\
        Bob_A\t10\t24\n\
        Bob_B\t2\t3\n\
        George_W_Bush\t12\tJohn_Kerry\t8\n\
        Zico\t1\tZoe_Ball\t1\n";

    #[test]
    fn parses_view2() {
        let dir = root_with(&[("pairs.txt", VIEW2)]);
        let p = read_lfw_pairs(dir.path(), LfwView::View2).unwrap();
        assert_eq!(p.len(), 8);
        assert_eq!(
            p[0],
            LfwPair {
                fold: 1,
                genuine: true,
                a: PathBuf::from("Abel_Pacheco/Abel_Pacheco_0001.jpg"),
                b: PathBuf::from("Abel_Pacheco/Abel_Pacheco_0004.jpg"),
            }
        );
        assert_eq!(
            p[6],
            LfwPair {
                fold: 2,
                genuine: false,
                a: PathBuf::from("George_W_Bush/George_W_Bush_0012.jpg"),
                b: PathBuf::from("John_Kerry/John_Kerry_0008.jpg"),
            }
        );
        assert_eq!(
            p.iter().map(|p| (p.fold, p.genuine)).collect::<Vec<_>>(),
            [
                (1, true),
                (1, true),
                (1, false),
                (1, false),
                (2, true),
                (2, true),
                (2, false),
                (2, false)
            ]
        );
        assert_eq!(p[4].b, PathBuf::from("Bob_A/Bob_A_0024.jpg"));
        // Spaces, CRLF and trailing blank lines are fine.
        let loose = VIEW2.replace('\t', "  ").replace('\n', "\r\n") + "\n  \n";
        let dir = root_with(&[("pairs.txt", &loose)]);
        assert_eq!(read_lfw_pairs(dir.path(), LfwView::View2).unwrap(), p);
    }

    #[test]
    fn parses_view1() {
        let dir = root_with(&[
            ("pairsDevTrain.txt", "1\nA_B\t1\t2\nA_B\t1\tC_D\t3\n"),
            (
                "pairsDevTest.txt",
                "2\nE\t1\t2\nE\t3\t4\nE\t1\tF\t1\nG\t9\tH\t999\n",
            ),
        ]);
        let p = read_lfw_pairs(dir.path(), LfwView::View1).unwrap();
        assert_eq!(p.len(), 6);
        assert_eq!(
            p.iter().map(|p| (p.fold, p.genuine)).collect::<Vec<_>>(),
            [
                (0, true),
                (0, false),
                (1, true),
                (1, true),
                (1, false),
                (1, false)
            ]
        );
        assert_eq!(p[5].b, PathBuf::from("H/H_0999.jpg"));
        assert_eq!(p[1].b, PathBuf::from("C_D/C_D_0003.jpg"));
    }

    /// Parse `text` as pairs.txt and return (file name, line, reason) of the error.
    fn view2_error(text: &str) -> (String, u64, String) {
        let dir = root_with(&[("pairs.txt", text)]);
        match read_lfw_pairs(dir.path(), LfwView::View2) {
            Err(EvalError::BadInput {
                path, line, reason, ..
            }) => (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                line,
                reason,
            ),
            other => panic!("expected BadInput, got {other:?}"),
        }
    }

    #[test]
    fn malformed_view2_files_name_file_and_line() {
        let cases: Vec<(String, u64, &str)> = vec![
            // Wrong headers.
            ("".into(), 1, "empty file"),
            ("10\n".into(), 1, "bad header"),
            ("10 300 7\n".into(), 1, "bad header"),
            ("ten 300\n".into(), 1, "not a count"),
            ("0 300\n".into(), 1, "out of range"),
            ("10 -3\n".into(), 1, "not a count"),
            // Absurd counts are refused before anything is read or allocated.
            ("10 99999999999999999999\n".into(), 1, "out of range"),
            ("1000 1000000\n".into(), 1, "more than"),
            // A short fold: fold 1 has one matched line, so a mismatched one sits at line 3.
            (
                VIEW2.replacen("Akhmed_Zakayev\t1\t3\n", "", 1),
                3,
                "fewer matched lines",
            ),
            // A bad index.
            (
                VIEW2.replace("Bob_B\t2\t3", "Bob_B\tx\t3"),
                7,
                "not an image number",
            ),
            (
                VIEW2.replace("Bob_B\t2\t3", "Bob_B\t0\t3"),
                7,
                "out of range",
            ),
            (
                VIEW2.replace("Bob_B\t2\t3", "Bob_B\t2\t10000"),
                7,
                "out of range",
            ),
            (
                VIEW2.replace("Bob_B\t2\t3", "Bob_B\t+2\t3"),
                7,
                "not an image number",
            ),
            // A missing tab: '1' and '4' run together -> 2 fields.
            (
                VIEW2.replace("Abel_Pacheco\t1\t4", "Abel_Pacheco\t14"),
                2,
                "found 2 fields",
            ),
            (
                VIEW2.replace("Zico\t1\tZoe_Ball\t1", "Zico\t1Zoe_Ball\t1"),
                9,
                "found 3 fields",
            ),
            // Same image, same person in a mismatched pair, a path in a name.
            (
                VIEW2.replace("Bob_B\t2\t3", "Bob_B\t2\t2"),
                7,
                "with itself",
            ),
            (VIEW2.replace("Zoe_Ball", "Zico"), 9, "same person"),
            (VIEW2.replace("Bob_A", "../x"), 6, "not a person's name"),
            // File ends early; extra lines; a blank line inside a fold.
            (
                VIEW2.replacen("Zico\t1\tZoe_Ball\t1\n", "", 1),
                9,
                "ends early",
            ),
            (VIEW2.to_string() + "X\t1\t2\n", 10, "extra line"),
            (VIEW2.replacen("\nBob_A", "\n\nBob_A", 1), 6, "blank lines"),
        ];
        for (text, line, needle) in cases {
            let (file, l, reason) = view2_error(&text);
            assert_eq!(file, "pairs.txt");
            assert_eq!(l, line, "{reason} / {text:?}");
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
        }
    }

    #[test]
    fn malformed_view1_names_the_test_file() {
        let dir = root_with(&[
            ("pairsDevTrain.txt", "1\nA_B\t1\t2\nA_B\t1\tC_D\t3\n"),
            ("pairsDevTest.txt", "1 1\nE\t1\t2\nE\t1\tF\t1\n"),
        ]);
        match read_lfw_pairs(dir.path(), LfwView::View1) {
            Err(e @ EvalError::BadInput { line: 1, .. }) => {
                assert!(e.to_string().contains("pairsDevTest.txt: line 1"), "{e}");
            }
            other => panic!("expected BadInput, got {other:?}"),
        }
        // A missing file is an I/O error naming it.
        let dir = root_with(&[]);
        match read_lfw_pairs(dir.path(), LfwView::View1) {
            Err(EvalError::Io { path, .. }) => assert!(path.ends_with("pairsDevTrain.txt")),
            other => panic!("expected Io, got {other:?}"),
        }
    }

    #[test]
    fn overlong_line_is_refused() {
        let text = format!("1\t1\n{}\t1\t2\nA\t1\tB\t1\n", "N".repeat(5000));
        let (_, line, reason) = view2_error(&text);
        assert_eq!(line, 2);
        assert!(reason.contains("longer than"), "{reason}");
    }

    // ---------------------------------------------------------------- the real files

    #[test]
    fn official_lfw_protocol_files() {
        let root = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/datasets/lfw"
        ));
        if !root.join("protocol").is_dir() {
            eprintln!(
                "SKIPPED official_lfw_protocol_files: {} is absent",
                root.display()
            );
            return;
        }
        let v2 = read_lfw_pairs(root, LfwView::View2).unwrap();
        assert_eq!(v2.len(), 6000);
        assert_eq!(v2.iter().filter(|p| p.genuine).count(), 3000);
        for f in 1..=10 {
            let fold: Vec<&LfwPair> = v2.iter().filter(|p| p.fold == f).collect();
            assert_eq!(fold.len(), 600);
            assert_eq!(fold.iter().filter(|p| p.genuine).count(), 300);
        }
        assert_eq!(v2[0].a, PathBuf::from("Abel_Pacheco/Abel_Pacheco_0001.jpg"));
        assert!(root.join(&v2[0].a).is_file());
        assert!(root.join(&v2[5999].b).is_file());
        let v1 = read_lfw_pairs(root, LfwView::View1).unwrap();
        assert_eq!(v1.iter().filter(|p| p.fold == 0).count(), 2200);
        assert_eq!(v1.iter().filter(|p| p.fold == 1).count(), 1000);
        assert_eq!(v1.iter().filter(|p| p.genuine).count(), 1600);
        // The protocol runs end to end on them: scoring by whether the two names agree
        // separates the classes perfectly.
        let scores: Vec<Option<f64>> = v2
            .iter()
            .map(|p| {
                Some(if p.a.parent() == p.b.parent() {
                    1.0
                } else {
                    0.0
                })
            })
            .collect();
        let r = lfw_report(LfwView::View2, &v2, &scores).unwrap();
        assert_eq!(r.ten_fold.as_ref().unwrap().accuracy_mean, 1.0);
        assert!(r
            .pooled
            .tar_at_far
            .iter()
            .all(|t| t.resolvable && t.tar == 1.0));
    }
}
