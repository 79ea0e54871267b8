//! `huella eval fvc`: the FVC fingerprint protocol run end to end, from the images
//! through our extractor or from the ISO templates beside them, through our matcher.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use huella_engine::finger::{
    FingerExtractor, FingerTemplate, Matcher, MinutiaeRecord, PreparedFinger,
};
use huella_engine::Limits;
use huella_eval::{
    fvc_figures, read_fvc_databases, FvcDatabase, FvcDatabaseReport, FvcPairs, FvcReport,
};

/// Where the minutiae come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FvcSource {
    /// Our extractor on the images.
    Images,
    /// The `NNN_K.iso` ISO/IEC 19794-2 templates beside the images.
    Templates,
}

/// Flags of `huella eval fvc`.
#[derive(Debug, Args)]
pub struct FvcArgs {
    /// A folder of `DBn_X` folders (or one such folder) holding `NNN_K.tif` images and,
    /// for `--source templates`, `NNN_K.iso` templates.
    #[arg(long)]
    data: PathBuf,
    /// Minutiae from the images (our extractor) or from the ISO templates.
    #[arg(long, value_enum, default_value_t = FvcSource::Images)]
    source: FvcSource,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write every comparison here (db,set,a,b,score; empty score for a failure).
    #[arg(long)]
    scores_csv: Option<PathBuf>,
}

/// Minutiae of one sample, or why there are none.
fn load(
    source: FvcSource,
    extractor: &FingerExtractor,
    image: &std::path::Path,
    template: Option<&std::path::Path>,
) -> Result<FingerTemplate> {
    match source {
        FvcSource::Templates => {
            let path = template.context("no .iso template beside the image")?;
            let bytes = crate::input::read_sample(path)?;
            Ok(MinutiaeRecord::decode(&bytes)?.to_template(0)?)
        }
        FvcSource::Images => {
            let img = huella_engine::decode_file(image, &Limits::default())?;
            Ok(extractor.extract(&img.to_grey(), img.ppi())?.template)
        }
    }
}

struct Scored {
    report: FvcDatabaseReport,
    rows: Vec<(&'static str, usize, usize, Option<f32>)>,
}

fn run_database(
    db: &FvcDatabase,
    source: FvcSource,
    extractor: &FingerExtractor,
    matcher: &Matcher,
) -> Result<Scored> {
    let started = Instant::now();
    let prepared: Vec<Option<PreparedFinger>> = db
        .samples
        .iter()
        .map(|s| {
            load(source, extractor, &s.image, s.template.as_deref())
                .map(|t| matcher.prepare(&t))
                .map_err(|e| tracing::warn!("{}: failed to enrol: {e:#}", s.image.display()))
                .ok()
        })
        .collect();
    let extract_ms = started.elapsed().as_secs_f64() * 1e3 / db.samples.len() as f64;
    let pairs = FvcPairs::new(db);
    let started = Instant::now();
    let mut compared = 0usize;
    let mut score = |&(i, j): &(usize, usize)| -> Option<f32> {
        let (a, b) = (prepared[i].as_ref()?, prepared[j].as_ref()?);
        compared += 1;
        Some(matcher.compare(a, b))
    };
    let genuine: Vec<Option<f32>> = pairs.genuine.iter().map(&mut score).collect();
    let all: Vec<Option<f32>> = pairs.all_impostor.iter().map(&mut score).collect();
    let compare_us = started.elapsed().as_secs_f64() * 1e6 / compared.max(1) as f64;
    let fvc: Vec<Option<f32>> = pairs
        .fvc_impostor
        .iter()
        .map(|p| {
            all[pairs
                .all_impostor
                .binary_search(p)
                .expect("FVC impostor pairs are a subset of all")]
        })
        .collect();
    let fte = prepared.iter().filter(|p| p.is_none()).count();
    let rows = [
        ("genuine", &pairs.genuine, &genuine),
        ("impostor", &pairs.all_impostor, &all),
    ]
    .into_iter()
    .flat_map(|(set, p, s)| {
        p.iter()
            .zip(s.iter())
            .map(move |(&(i, j), &s)| (set, i, j, s))
    })
    .collect();
    Ok(Scored {
        report: FvcDatabaseReport {
            name: db.name.clone(),
            samples: db.samples.len(),
            failures_to_enrol: fte,
            fte_rate: fte as f64 / db.samples.len() as f64,
            fvc: fvc_figures(&genuine, &fvc)?,
            all_impostors: fvc_figures(&genuine, &all)?,
            mean_extract_ms: extract_ms,
            mean_compare_us: compare_us,
        },
        rows,
    })
}

pub fn run(args: &FvcArgs) -> Result<()> {
    let dbs = read_fvc_databases(&args.data)?;
    let matcher = Matcher::default();
    let extractor = FingerExtractor::default();
    let mut reports = Vec::new();
    let mut csv = match &args.scores_csv {
        Some(path) => {
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            );
            writeln!(f, "db,set,a,b,score")?;
            Some(f)
        }
        None => None,
    };
    for db in &dbs {
        let scored = run_database(db, args.source, &extractor, &matcher)?;
        let r = &scored.report;
        println!(
            "{}: EER {:.2}% (FVC impostors {:.2}%), FMR100 {:.2}%, FMR1000 {:.2}%, ZeroFMR {:.2}%, FTE {}/{}, extract {:.1} ms, compare {:.1} us",
            r.name,
            100.0 * r.all_impostors.eer,
            100.0 * r.fvc.eer,
            100.0 * r.all_impostors.fmr100,
            100.0 * r.all_impostors.fmr1000,
            100.0 * r.all_impostors.zero_fmr,
            r.failures_to_enrol,
            r.samples,
            r.mean_extract_ms,
            r.mean_compare_us,
        );
        if let Some(f) = csv.as_mut() {
            let name = |i: usize| {
                let s = &db.samples[i];
                format!("{}_{}", s.finger, s.impression)
            };
            for (set, i, j, s) in &scored.rows {
                let score = s.map_or(String::new(), |s| format!("{s:.6}"));
                writeln!(f, "{},{set},{},{},{score}", db.name, name(*i), name(*j))?;
            }
        }
        reports.push(scored.report);
    }
    if let Some(f) = csv.as_mut() {
        f.flush()?;
    }
    let source = match args.source {
        FvcSource::Images => "images",
        FvcSource::Templates => "templates",
    };
    let report = FvcReport::new(source, "huella-mcc@1", reports)?;
    let s = &report.summary;
    println!(
        "mean over {} databases: EER {:.2}% with all impostors (max {:.2}%), {:.2}% with the FVC impostors; FMR100 {:.2}%, FMR1000 {:.2}%, ZeroFMR {:.2}%",
        report.databases.len(),
        100.0 * s.mean_eer_all_impostors,
        100.0 * s.max_eer_all_impostors,
        100.0 * s.mean_eer_fvc,
        100.0 * s.mean_fmr100_all_impostors,
        100.0 * s.mean_fmr1000_all_impostors,
        100.0 * s.mean_zero_fmr_all_impostors,
    );
    if let Some(path) = &args.json {
        let f = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        report.write_json(std::io::BufWriter::new(f))?;
    }
    Ok(())
}
