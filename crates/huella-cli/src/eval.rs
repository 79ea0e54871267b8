//! `huella eval ...`: accuracy evaluation through `huella-eval`.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use huella_eval::{
    IdentificationOptions, IdentificationReport, RunInfo, VerificationOptions, VerificationReport,
};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Evaluation commands.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Verification metrics (EER, FNMR at FMR, DET, ...) from a score file.
    Scores {
        /// CSV with columns score,mated[,probe_subject,reference_subject,failure,group...].
        #[arg(long)]
        input: PathBuf,
        /// Bootstrap replicates over probe subjects (0 = off; default 1000 within a work budget).
        #[arg(long)]
        bootstrap: Option<u32>,
        /// Bootstrap seed.
        #[arg(long, default_value_t = 0x5EED)]
        seed: u64,
        /// Confidence level of the intervals.
        #[arg(long, default_value_t = 0.95)]
        confidence: f64,
        /// The demographic breakdown uses the global threshold that gives this overall FMR.
        #[arg(long, default_value_t = 1e-3)]
        demographic_fmr: f64,
        /// Or this explicit global threshold.
        #[arg(long)]
        demographic_threshold: Option<f32>,
        #[command(flatten)]
        out: Outputs,
    },
    /// Identification metrics (FNIR at FPIR, CMC) from candidate lists.
    Candidates {
        /// CSV with columns probe_id,probe_subject,candidate_subject,rank,score
        /// (probe_subject empty for a non-mated probe).
        #[arg(long)]
        input: PathBuf,
        /// Count a mate as found for FNIR(T) only within this rank (default: whole list).
        #[arg(long)]
        rank_limit: Option<u32>,
        #[command(flatten)]
        out: Outputs,
    },
    /// The LFW face verification protocol through the face pipeline: View 2 10-fold
    /// accuracy, TAR at FAR 1e-3, failures to enrol, extraction time.
    Lfw(crate::lfw::LfwArgs),
    /// The FVC fingerprint verification protocol per database (genuine pairs, FVC and
    /// all-pairs impostor sets): EER, FMR100, FMR1000, ZeroFMR, failures to enrol, times.
    Fvc(crate::fvc::FvcArgs),
    /// A virtual population (LFW identities paired with FVC fingers): FNIR at FPIR for
    /// face alone, finger alone and fused; or, with --manifest-dir, an ingest manifest
    /// of it with planted false identities, repeats and a shared document.
    Population(crate::population::PopulationArgs),
}

/// Where the results go.
#[derive(Debug, Args)]
pub struct Outputs {
    /// Print the JSON report on stdout (default: a short text summary).
    #[arg(long)]
    json: bool,
    /// Write SVG and PNG plots and CSV curves into this directory.
    #[arg(long)]
    plots: Option<PathBuf>,
    /// Write a self-contained HTML report to this file.
    #[arg(long)]
    report: Option<PathBuf>,
}

fn run_info(input: &Path) -> RunInfo {
    let quote = |a: String| {
        if !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c))
        {
            a
        } else {
            format!("'{}'", a.replace('\'', "'\\''"))
        }
    };
    RunInfo {
        command: std::env::args().map(quote).collect::<Vec<_>>().join(" "),
        inputs: vec![std::fs::canonicalize(input).unwrap_or_else(|_| input.to_path_buf())],
        software: format!("huella {}", env!("CARGO_PKG_VERSION")),
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

pub fn run(cmd: EvalCommand, face: &crate::face::FaceArgs) -> Result<()> {
    let stdout = std::io::stdout();
    let mut so = stdout.lock();
    match cmd {
        EvalCommand::Lfw(args) => return crate::lfw::run(&args, face),
        EvalCommand::Fvc(args) => return crate::fvc::run(&args),
        EvalCommand::Population(args) => return crate::population::run(&args, face),
        EvalCommand::Scores {
            input,
            bootstrap,
            seed,
            confidence,
            demographic_fmr,
            demographic_threshold,
            out,
        } => {
            let options = VerificationOptions {
                bootstrap,
                seed,
                confidence,
                demographic_fmr,
                demographic_threshold,
                ..Default::default()
            };
            let r = VerificationReport::from_csv(&input, options)?;
            if let Some(dir) = &out.plots {
                r.write_plots(dir)?;
            }
            if let Some(path) = &out.report {
                r.write_html(path, &run_info(&input))?;
            }
            if out.json {
                r.write_json(&mut so)?;
                writeln!(so)?;
            } else {
                let ci = |c: &Option<huella_eval::Interval>| {
                    c.map_or(String::new(), |c| {
                        format!(" [{:.4}%, {:.4}%]", c.low * 100.0, c.high * 100.0)
                    })
                };
                writeln!(
                    so,
                    "comparisons: {} genuine, {} impostor",
                    r.counts.genuine, r.counts.impostor
                )?;
                writeln!(
                    so,
                    "EER: {:.4}%{} at threshold {}",
                    r.eer.value * 100.0,
                    ci(&r.eer.ci),
                    r.eer.threshold
                )?;
                let f = &r.eer_fvc_interval;
                writeln!(
                    so,
                    "EER (FVC): {:.4}% [{:.4}%, {:.4}%]",
                    f.value * 100.0,
                    f.low * 100.0,
                    f.high * 100.0
                )?;
                for p in &r.fnmr_at_fmr {
                    writeln!(
                        so,
                        "{}: FNMR {:.4}%{} at threshold {}",
                        p.name,
                        p.fnmr * 100.0,
                        ci(&p.ci),
                        p.threshold
                    )?;
                }
                writeln!(so, "ZeroFMR: FNMR {:.4}%", r.zero_fmr.rate * 100.0)?;
                for w in &r.warnings {
                    writeln!(so, "warning: {w}")?;
                }
            }
        }
        EvalCommand::Candidates {
            input,
            rank_limit,
            out,
        } => {
            let options = IdentificationOptions {
                rank_limit,
                ..Default::default()
            };
            let r = IdentificationReport::from_csv(&input, options)?;
            if let Some(dir) = &out.plots {
                r.write_plots(dir)?;
            }
            if let Some(path) = &out.report {
                r.write_html(path, &run_info(&input))?;
            }
            if out.json {
                r.write_json(&mut so)?;
                writeln!(so)?;
            } else {
                writeln!(
                    so,
                    "{}: {} mated, {} non-mated searches",
                    r.mode, r.counts.mated, r.counts.non_mated
                )?;
                for k in &r.rank_k {
                    writeln!(so, "rank {}: hit rate {:.4}%", k.rank, k.hit_rate * 100.0)?;
                }
                for p in &r.fnir_at_fpir {
                    writeln!(
                        so,
                        "FNIR at FPIR {}: {:.4}% at threshold {}",
                        p.target_fpir,
                        p.fnir * 100.0,
                        p.threshold
                    )?;
                }
                for w in &r.warnings {
                    writeln!(so, "warning: {w}")?;
                }
            }
        }
    }
    so.flush().context("writing to stdout")?;
    Ok(())
}
