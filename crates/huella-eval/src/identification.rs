//! Identification (1:N) metrics from candidate lists, NIST FRTE style.

use crate::input::{parse_score, CsvInput};
use crate::keys::{key, unkey, walk, Totals};
use crate::verification::{fmr_point_name, sample_curve, CurvePoint};
use crate::{EvalError, SCHEMA_VERSION, VERSION};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One candidate-list row. `candidate` is `None` for a probe whose list is empty.
#[derive(Debug, Clone, Copy)]
pub struct CandidateRow<'a> {
    /// The search (probe) id.
    pub probe_id: &'a str,
    /// The probe's true subject; `None` (empty) for a non-mated probe.
    pub probe_subject: Option<&'a str>,
    /// `(candidate subject, 1-based rank, score)`.
    pub candidate: Option<(&'a str, u32, f32)>,
}

/// Settings of an identification evaluation.
#[derive(Debug, Clone)]
pub struct IdentificationOptions {
    /// FPIR levels at which FNIR is reported (default 0.001, 0.003, 0.01, 0.1).
    pub fpir_points: Vec<f64>,
    /// A mate counts as found for FNIR(T) only within this rank (NIST's R); `None` = the
    /// whole candidate list.
    pub rank_limit: Option<u32>,
    /// Ranks reported as hit rates (default 1, 5, 10, 20, 50).
    pub ranks: Vec<u32>,
    /// Name of the protocol (`candidates` for a candidate file).
    pub protocol: String,
}

impl Default for IdentificationOptions {
    fn default() -> Self {
        Self {
            fpir_points: vec![0.001, 0.003, 0.01, 0.1],
            rank_limit: None,
            ranks: vec![1, 5, 10, 20, 50],
            protocol: "candidates".into(),
        }
    }
}

/// Counts of probes.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeCounts {
    /// Mated searches (the probe's subject is enrolled).
    pub mated: u64,
    /// Non-mated searches.
    pub non_mated: u64,
    /// Mated searches whose mate is not in the list at all.
    pub mate_not_listed: u64,
    /// The longest candidate list.
    pub max_rank: u32,
}

/// The hit rate at one rank.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RankRate {
    /// Rank k.
    pub rank: u32,
    /// Fraction of mated searches with the mate at rank <= k (CMC).
    pub hit_rate: f64,
    /// 1 - hit_rate: FNIR(N, R = k, T = 0).
    pub fnir: f64,
}

/// FNIR at one FPIR level.
#[derive(Debug, Clone, Serialize)]
pub struct FpirPoint {
    /// Name, e.g. FPIR1000 for 0.001.
    pub name: String,
    /// The FPIR level asked for.
    pub target_fpir: f64,
    /// FNIR at the threshold.
    pub fnir: f64,
    /// The FPIR achieved (<= target).
    pub fpir: f64,
    /// The lowest threshold whose FPIR <= target.
    pub threshold: f64,
    /// target × non-mated searches.
    pub expected_false_positives: f64,
    /// False when there are fewer than 1/target non-mated searches.
    pub supported: bool,
    /// Why the figure is weak, if it is.
    pub warning: Option<String>,
}

/// A sampled point of the FNIR-vs-FPIR curve.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct IdentCurvePoint {
    /// Threshold.
    pub threshold: f64,
    /// FPIR there.
    pub fpir: f64,
    /// FNIR there.
    pub fnir: f64,
}

/// Identification report: see the crate docs for the JSON schema.
#[derive(Debug, Clone, Serialize)]
pub struct IdentificationReport {
    /// Version of the JSON layout.
    pub schema_version: u32,
    /// Always `identification`.
    pub kind: String,
    /// `open-set` when there are non-mated searches, else `closed-set`.
    pub mode: String,
    /// The protocol.
    pub protocol: String,
    /// `huella-eval <version>`.
    pub software: String,
    /// Definitions used.
    pub conventions: IdentConventions,
    /// Probe counts.
    pub counts: ProbeCounts,
    /// Hit rates at the requested ranks.
    pub rank_k: Vec<RankRate>,
    /// The full CMC, rank 1 to the longest list.
    pub cmc: Vec<RankRate>,
    /// The rank limit R used for FNIR(T) (null = whole list).
    pub rank_limit: Option<u32>,
    /// FNIR at the FPIR levels (empty in closed-set mode).
    pub fnir_at_fpir: Vec<FpirPoint>,
    /// Sampled FNIR-vs-FPIR points (empty in closed-set mode).
    pub curve: Vec<IdentCurvePoint>,
    /// Figures too weak to lean on.
    pub warnings: Vec<String>,
    /// Other remarks.
    pub notes: Vec<String>,
}

/// The definitions behind an identification report.
#[derive(Debug, Clone, Serialize)]
pub struct IdentConventions {
    /// Score direction and decision.
    pub decision: String,
    /// FNIR.
    pub fnir: String,
    /// FPIR.
    pub fpir: String,
    /// Threshold choice.
    pub fpir_point_rule: String,
}

struct Probe {
    subject: Option<Box<str>>,
    first_line: u64,
    mate_rank: Option<u32>,
    mate_score: Option<f32>, // best mate score within the rank limit
    top_score: Option<f32>,
    max_rank: u32,
}

/// Accumulates candidate rows (memory: one small record per probe), then computes the report.
pub struct IdentificationBuilder {
    options: IdentificationOptions,
    source: PathBuf,
    probes: HashMap<Box<str>, Probe>,
    last_line: u64,
}

impl std::fmt::Debug for IdentificationBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentificationBuilder")
            .field("source", &self.source)
            .field("probes", &self.probes.len())
            .finish()
    }
}

impl IdentificationBuilder {
    /// A builder for rows from `source` (used in error messages).
    pub fn new(
        options: IdentificationOptions,
        source: impl Into<PathBuf>,
    ) -> Result<Self, EvalError> {
        for &a in &options.fpir_points {
            if !(a > 0.0 && a < 1.0) {
                return Err(EvalError::InvalidOption(format!(
                    "FPIR level {a} is outside (0, 1)"
                )));
            }
        }
        if options.rank_limit == Some(0) || options.ranks.contains(&0) {
            return Err(EvalError::InvalidOption("ranks start at 1".into()));
        }
        Ok(Self {
            options,
            source: source.into(),
            probes: HashMap::new(),
            last_line: 1,
        })
    }

    /// Add one row found at `line`.
    pub fn push(&mut self, row: &CandidateRow<'_>, line: u64) -> Result<(), EvalError> {
        self.last_line = line;
        let src = &self.source;
        if row.probe_id.is_empty() {
            return Err(EvalError::bad(
                src,
                line,
                Some("probe_id"),
                "empty probe id",
            ));
        }
        let subject = row.probe_subject.filter(|s| !s.is_empty());
        let p = self
            .probes
            .entry(row.probe_id.into())
            .or_insert_with(|| Probe {
                subject: subject.map(Into::into),
                first_line: line,
                mate_rank: None,
                mate_score: None,
                top_score: None,
                max_rank: 0,
            });
        if p.subject.as_deref() != subject {
            return Err(EvalError::bad(
                src,
                line,
                Some("probe_subject"),
                format!(
                    "probe '{}' has subject '{}' here but '{}' at line {}",
                    row.probe_id,
                    subject.unwrap_or(""),
                    p.subject.as_deref().unwrap_or(""),
                    p.first_line
                ),
            ));
        }
        let Some((cand, rank, score)) = row.candidate else {
            return Ok(());
        };
        if !score.is_finite() {
            return Err(EvalError::bad(
                src,
                line,
                Some("score"),
                format!("{score} is not a finite score"),
            ));
        }
        if rank == 0 {
            return Err(EvalError::bad(src, line, Some("rank"), "ranks start at 1"));
        }
        p.max_rank = p.max_rank.max(rank);
        p.top_score = Some(p.top_score.map_or(score, |t| t.max(score)));
        if subject == Some(cand) {
            p.mate_rank = Some(p.mate_rank.map_or(rank, |r| r.min(rank)));
            if self.options.rank_limit.is_none_or(|r| rank <= r) {
                p.mate_score = Some(p.mate_score.map_or(score, |s| s.max(score)));
            }
        }
        Ok(())
    }

    /// Compute the report; errors when there is no mated search.
    pub fn finish(self) -> Result<IdentificationReport, EvalError> {
        let o = &self.options;
        let mut mated = Vec::new();
        let mut nonmated_top: Vec<u32> = Vec::new();
        let mut nonmated_empty = 0u64;
        let mut max_rank = 0;
        let mut mate_ranks: Vec<u32> = Vec::new();
        let mut not_listed = 0;
        for p in self.probes.values() {
            max_rank = max_rank.max(p.max_rank);
            if p.subject.is_some() {
                mated.push(p.mate_score.map(key));
                match p.mate_rank {
                    Some(r) => mate_ranks.push(r),
                    None => not_listed += 1,
                }
            } else {
                match p.top_score {
                    Some(s) => nonmated_top.push(key(s)),
                    None => nonmated_empty += 1,
                }
            }
        }
        if mated.is_empty() {
            return Err(EvalError::bad(
                &self.source,
                self.last_line,
                Some("probe_subject"),
                "no mated searches (every probe_subject is empty): FNIR and the CMC are undefined",
            ));
        }
        let nm = mated.len() as u64;
        mate_ranks.sort_unstable();
        let hit = |k: u32| mate_ranks.partition_point(|&r| r <= k) as f64 / nm as f64;
        let cmc: Vec<RankRate> = (1..=max_rank.max(1))
            .map(|k| RankRate {
                rank: k,
                hit_rate: hit(k),
                fnir: 1.0 - hit(k),
            })
            .collect();
        let rank_k = o
            .ranks
            .iter()
            .map(|&k| RankRate {
                rank: k,
                hit_rate: hit(k),
                fnir: 1.0 - hit(k),
            })
            .collect();
        let n_nonmated = nonmated_top.len() as u64 + nonmated_empty;
        let mut warnings = Vec::new();
        let mut notes = Vec::new();
        let (mode, fnir_at_fpir, curve) = if n_nonmated == 0 {
            notes.push("closed-set: no non-mated searches, so FPIR and FNIR at FPIR are not defined; only the CMC is reported".into());
            ("closed-set", Vec::new(), Vec::new())
        } else {
            let mut g: Vec<u32> = mated.iter().flatten().copied().collect();
            let misses = nm - g.len() as u64;
            g.sort_unstable();
            nonmated_top.sort_unstable();
            let t = Totals {
                genuine: nm,
                impostor: n_nonmated,
                genuine_failures: misses,
            };
            let w = walk(
                g.as_slice(),
                nonmated_top.as_slice(),
                |_| 1,
                t,
                nonmated_top.len() as u64,
                &o.fpir_points,
            );
            let pts = o
                .fpir_points
                .iter()
                .zip(&w.at_fmr)
                .map(|(&level, p)| {
                    let expected = level * n_nonmated as f64;
                    let name = fmr_point_name(level, "FPIR");
                    let warning = if expected < 1.0 {
                        Some(format!("{name}: {n_nonmated} non-mated searches cannot resolve FPIR = {level}"))
                    } else if expected < 30.0 {
                        Some(format!("{name}: only {expected:.1} false positives expected at FPIR = {level} from {n_nonmated} non-mated searches (rule of 30 asks for {})", (30.0 / level).ceil()))
                    } else {
                        None
                    };
                    if let Some(wn) = &warning {
                        warnings.push(wn.clone());
                    }
                    FpirPoint {
                        name,
                        target_fpir: level,
                        fnir: t.fnmr(p),
                        fpir: t.fmr(p),
                        threshold: unkey(p.key) as f64,
                        expected_false_positives: expected,
                        supported: expected >= 1.0,
                        warning,
                    }
                })
                .collect();
            let curve = sample_curve(g.as_slice(), nonmated_top.as_slice(), &t, &w)
                .into_iter()
                .map(|c: CurvePoint| IdentCurvePoint {
                    threshold: c.threshold,
                    fpir: c.fmr,
                    fnir: c.fnmr,
                })
                .collect();
            ("open-set", pts, curve)
        };
        Ok(IdentificationReport {
            schema_version: SCHEMA_VERSION,
            kind: "identification".into(),
            mode: mode.into(),
            protocol: o.protocol.clone(),
            software: format!("huella-eval {VERSION}"),
            conventions: IdentConventions {
                decision: "higher score = more alike; a candidate is returned at threshold T when its score >= T".into(),
                fnir: "FNIR(N, R, T) = mated searches whose mate is not at rank <= R with score >= T / mated searches (a missing mate is a miss)".into(),
                fpir: "FPIR(N, T) = non-mated searches with any candidate scoring >= T / non-mated searches (an empty list is a correct rejection)".into(),
                fpir_point_rule: "FNIR at the lowest threshold whose FPIR <= the target".into(),
            },
            counts: ProbeCounts { mated: nm, non_mated: n_nonmated, mate_not_listed: not_listed, max_rank },
            rank_k,
            cmc,
            rank_limit: o.rank_limit,
            fnir_at_fpir,
            curve,
            warnings,
            notes,
        })
    }
}

/// The columns of a candidate file.
pub const CANDIDATE_COLUMNS: [&str; 5] = [
    "probe_id",
    "probe_subject",
    "candidate_subject",
    "rank",
    "score",
];

impl IdentificationReport {
    /// Read a candidate file (columns `probe_id,probe_subject,candidate_subject,rank,score`;
    /// `probe_subject` empty for a non-mated probe; a row with empty
    /// `candidate_subject,rank,score` declares a probe with an empty list).
    pub fn from_csv(path: &Path, options: IdentificationOptions) -> Result<Self, EvalError> {
        let what = "probe_id,probe_subject,candidate_subject,rank,score";
        let mut csv = CsvInput::open(path, what)?;
        let c: Vec<usize> = CANDIDATE_COLUMNS
            .iter()
            .map(|n| csv.require(n, what))
            .collect::<Result<_, _>>()?;
        let mut b = IdentificationBuilder::new(options, csv.path().to_path_buf())?;
        let mut rows = 0u64;
        while csv.next()? {
            rows += 1;
            let cand = csv.field(c[2])?;
            let (rt, st) = (csv.field(c[3])?, csv.field(c[4])?);
            let candidate = if cand.is_empty() {
                if !rt.is_empty() || !st.is_empty() {
                    return Err(csv.bad(
                        Some(c[2]),
                        "empty candidate subject on a row with a rank or score",
                    ));
                }
                None
            } else {
                let rank = rt.parse::<u32>().ok().filter(|&r| r > 0).ok_or_else(|| {
                    csv.bad(Some(c[3]), format!("'{rt}' is not a rank (1, 2, ...)"))
                })?;
                let score = parse_score(st).map_err(|r| csv.bad(Some(c[4]), r))?;
                Some((cand, rank, score))
            };
            let row = CandidateRow {
                probe_id: csv.field(c[0])?,
                probe_subject: Some(csv.field(c[1])?),
                candidate,
            };
            let line = csv.line;
            b.push(&row, line)?;
        }
        if rows == 0 {
            return Err(csv.bad(None, "no rows after the header"));
        }
        b.finish()
    }

    /// Compute a report from in-memory rows.
    pub fn from_candidates<'a>(
        rows: impl IntoIterator<Item = CandidateRow<'a>>,
        options: IdentificationOptions,
    ) -> Result<Self, EvalError> {
        let mut b = IdentificationBuilder::new(options, "<rows>")?;
        for (j, row) in rows.into_iter().enumerate() {
            b.push(&row, j as u64 + 2)?;
        }
        b.finish()
    }
}
