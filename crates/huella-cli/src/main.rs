//! `huella`: the command-line front end of the Huella engine.
//!
//! Glue only: parse flags, validate them into engine settings, call the engine, print
//! JSON. Logs go to standard error through `tracing` (`-v`, `-vv`, or `RUST_LOG`) and
//! never contain templates or biographic data.

mod dedup;
mod demo;
mod eval;
mod face;
mod finger;
mod fvc;
mod ingest;
mod input;
mod lfw;
mod population;
mod rescore;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use huella_engine::{EmbeddingModel, Engine, IdentifyOptions, IndexKind, SubjectId};
use input::{EncounterInput, ProbeInput};
use std::path::{Path, PathBuf};

#[derive(Debug, Parser)]
#[command(
    name = "huella",
    version,
    about = "Biometric identification and de-duplication"
)]
struct Cli {
    /// More log output on standard error (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(flatten)]
    face: face::FaceArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an empty gallery for the given embedding models.
    Init {
        #[command(flatten)]
        gallery: GalleryArgs,
        /// Embedding model, `face|finger:name@version:dimension`; repeatable.
        #[arg(long = "model", required_unless_present = "fingers")]
        models: Vec<String>,
        /// Hold fingerprints (ISO minutiae records matched by Huella's MCC matcher).
        #[arg(long)]
        fingers: bool,
    },
    /// Enrol encounters (search first, then store): one JSON document, JSON Lines with
    /// one encounter per line, or a face photo (`--face photo.jpg --subject S`). Prints
    /// one JSON result per encounter.
    Enroll {
        #[command(flatten)]
        gallery: GalleryArgs,
        /// Encounter JSON file (`-` for standard input), or a `.jsonl` file.
        #[arg(long, required_unless_present_any = ["face", "fingers"], conflicts_with_all = ["face", "fingers"])]
        input: Option<PathBuf>,
        /// A face photo to enrol (JPEG, PNG, TIFF, BMP, PGM).
        #[arg(long, requires = "subject")]
        face: Option<PathBuf>,
        /// A finger to enrol, `POSITION=PATH` (ISO position 0-10 or a name such as
        /// right-index; an image or an ISO/ANSI minutiae record); repeatable.
        #[arg(long = "finger", value_name = "POS=PATH", value_parser = finger::parse_finger, requires = "subject")]
        fingers: Vec<(huella_engine::FingerPosition, PathBuf)>,
        /// Resolution of finger images that do not state it (default 500 ppi).
        #[arg(long)]
        ppi: Option<f32>,
        #[command(flatten)]
        encounter: EncounterFlags,
        #[command(flatten)]
        search: SearchArgs,
    },
    /// 1:N search of a probe (templates or a face photo) against the gallery.
    Identify {
        #[command(flatten)]
        gallery: GalleryArgs,
        /// Probe JSON file `{"templates": [...]}` (`-` for standard input).
        #[arg(long, required_unless_present_any = ["face", "fingers"], conflicts_with_all = ["face", "fingers"])]
        input: Option<PathBuf>,
        /// A face photo as the probe (with --finger: face and fingers fused).
        #[arg(long)]
        face: Option<PathBuf>,
        /// Probe fingers, `POSITION=PATH`; several are fused per subject; repeatable.
        #[arg(long = "finger", value_name = "POS=PATH", value_parser = finger::parse_finger)]
        fingers: Vec<(huella_engine::FingerPosition, PathBuf)>,
        /// Resolution of finger images that do not state it (default 500 ppi).
        #[arg(long)]
        ppi: Option<f32>,
        #[command(flatten)]
        search: SearchArgs,
        /// Only search among these subjects; repeatable.
        #[arg(long = "within")]
        within: Vec<String>,
        /// With --face and --finger: keep only candidates whose fused level reaches the
        /// threshold for this false positive identification rate in this gallery
        /// (`-log10(FPIR / records)`; 0.01 is MOSIP's targetFPIR 20).
        #[arg(long, requires_all = ["face", "fingers"], conflicts_with = "threshold")]
        fpir: Option<f64>,
    },
    /// 1:1 comparison: two face photos (`--face A --face B`, no gallery needed), two
    /// fingerprints (`--finger A --finger B`, images or ISO/ANSI records, no gallery
    /// needed), two probe files (`--input A --input B`, first template of each), or one
    /// probe against an enrolled subject (`--input A --subject S` or `--face A --subject S`).
    Verify {
        /// Gallery directory (for --subject).
        #[arg(long, short = 'g')]
        gallery: Option<PathBuf>,
        /// Probe JSON files.
        #[arg(long = "input", num_args = 1)]
        inputs: Vec<PathBuf>,
        /// Face photos (a document portrait and a live capture, say).
        #[arg(long = "face", num_args = 1)]
        faces: Vec<PathBuf>,
        /// Fingerprints: images, or ISO/IEC 19794-2 / ANSI INCITS 378 minutiae records.
        #[arg(long = "finger", num_args = 1, conflicts_with_all = ["faces", "inputs", "subject"])]
        fingers: Vec<PathBuf>,
        /// With --finger: draw the matched minutiae side by side into this SVG file.
        #[arg(long, requires = "fingers")]
        svg: Option<PathBuf>,
        /// With --finger: resolution of images that do not state it (default 500).
        #[arg(long, requires = "fingers")]
        ppi: Option<f32>,
        /// Compare against this enrolled subject instead of a second file.
        #[arg(long)]
        subject: Option<String>,
        /// Decision threshold; when given, the output says whether it is a match.
        #[arg(long)]
        threshold: Option<f32>,
    },
    /// Extract a fingerprint's minutiae (`--finger IMG`) as JSON, an ISO/IEC 19794-2 or
    /// ANSI INCITS 378 record, and optionally an SVG for an examiner.
    Extract(finger::ExtractArgs),
    /// Gallery and index statistics.
    Stats {
        #[command(flatten)]
        gallery: GalleryArgs,
    },
    /// Delete a subject with all its encounters and templates.
    Delete {
        #[command(flatten)]
        gallery: GalleryArgs,
        /// The subject to delete.
        #[arg(long)]
        subject: String,
    },
    /// Merge two subjects an operator confirmed are one person.
    Merge {
        #[command(flatten)]
        gallery: GalleryArgs,
        /// The subject that ceases to exist.
        #[arg(long)]
        from: String,
        /// The subject that keeps both histories.
        #[arg(long)]
        into: String,
    },
    /// Write the aligned face crop a reviewer sees (PNG), with the face's box,
    /// landmarks and quality on standard output.
    FaceCrop {
        /// The photo.
        #[arg(long)]
        face: PathBuf,
        /// Output PNG (with --all, numbered files beside it).
        #[arg(long)]
        out: PathBuf,
        /// Every face in the photo, not only the probe face.
        #[arg(long)]
        all: bool,
    },
    /// Run the end-to-end demonstration on a synthetic population: enrol, catch
    /// planted false identities at enrolment, identify, merge.
    Demo(demo::DemoArgs),
    /// Accuracy evaluation: verification and identification metrics, plots, reports.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Ingest legacy records from a CSV manifest (`--manifest`) or a folder of
    /// ANSI/NIST-ITL transaction files (`--nist`): parallel extraction, resumable,
    /// failed records written to an errors file.
    Ingest(ingest::IngestArgs),
    /// Whole-gallery de-duplication: false identities, shared identities and repeat
    /// encounters, written as CSV, JSON and a static HTML report.
    Dedup(dedup::DedupArgs),
    /// Re-extract every stored template with the current models (a model upgrade),
    /// then switch the gallery to them and rebuild their indexes; resumable, failed
    /// templates kept and written to an errors file.
    Rescore(rescore::RescoreArgs),
}

#[derive(Debug, Args)]
struct GalleryArgs {
    /// Gallery directory.
    #[arg(long, short = 'g')]
    gallery: PathBuf,
    /// Index for 1:N search: flat, hnsw, lsh, auto or auto:N (LSH from N templates).
    #[arg(long, default_value = "auto")]
    index: String,
    /// Share of a finger gallery over 5,000 fingers that the index hands to the
    /// matcher, in (0, 1] (default 0.01: against a million fingers one finger's mate is
    /// kept for about 92% of FVC2002 genuine pairs in 0.33 s; 0.05 for 94.8% in 0.8 s).
    #[arg(long, value_name = "SHARE")]
    finger_short_list: Option<f64>,
}

/// Encounter details for `enroll --face`.
#[derive(Debug, Args)]
struct EncounterFlags {
    /// Subject id the encounter is enrolled under.
    #[arg(long)]
    subject: Option<String>,
    /// Capture time, RFC 3339 (default: now).
    #[arg(long)]
    captured_at: Option<String>,
    /// Office or location.
    #[arg(long)]
    location: Option<String>,
    /// Operator.
    #[arg(long)]
    operator: Option<String>,
    /// A biographic field, `key=value` (name, date_of_birth, nationality,
    /// document_number...); repeatable.
    #[arg(long = "field", value_parser = parse_field)]
    fields: Vec<(String, String)>,
}

fn parse_field(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

#[derive(Debug, Args)]
struct SearchArgs {
    /// Longest candidate list.
    #[arg(long, default_value_t = 10)]
    max_candidates: usize,
    /// Only report candidates scoring at least this (faces: cosine -1..1; fingers: MCC
    /// 0..1; face + fingers: fused level, -log10 FMR).
    #[arg(long)]
    threshold: Option<f32>,
}

impl SearchArgs {
    fn options(&self, within: &[String]) -> Result<IdentifyOptions> {
        let restrict_to = if within.is_empty() {
            None
        } else {
            Some(
                within
                    .iter()
                    .map(SubjectId::new)
                    .collect::<Result<Vec<_>, _>>()?,
            )
        };
        Ok(IdentifyOptions {
            max_candidates: self.max_candidates,
            threshold: self.threshold,
            restrict_to,
            fused_scores: false,
        })
    }
}

/// The engine settings the gallery flags give.
fn builder(args: &GalleryArgs) -> Result<huella_engine::EngineBuilder> {
    let kind: IndexKind = args.index.parse()?;
    let builder = Engine::builder().gallery(&args.gallery).index(kind);
    Ok(match args.finger_short_list {
        Some(share) => builder.finger_short_list(share),
        None => builder,
    })
}

fn open(args: &GalleryArgs) -> Result<Engine> {
    open_with(args, None)
}

/// Opens the gallery, with the face pipeline when face photos are involved.
fn open_with(
    args: &GalleryArgs,
    face: Option<std::sync::Arc<huella_engine::FacePipeline>>,
) -> Result<Engine> {
    let mut builder = builder(args)?;
    if let Some(face) = face {
        builder = builder.face(face);
    }
    builder
        .build()
        .with_context(|| format!("cannot open gallery {}", args.gallery.display()))
}

/// Opens the gallery with the face pipeline and extracts the probe face of `photo`.
fn open_with_face(
    gallery: &GalleryArgs,
    face_args: &face::FaceArgs,
    photo: &Path,
) -> Result<(
    Engine,
    huella_engine::NewTemplate,
    huella_engine::FaceSample,
)> {
    let pipeline = face_args.pipeline()?;
    let engine = open_with(gallery, Some(pipeline.clone()))?;
    let (template, sample) = face::face_template(&pipeline, photo, face_args.policy())?;
    Ok((engine, template, sample))
}

const VERIFY_USAGE: &str =
    "give two --face photos, two --input files, or one of them with --subject";

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(cli.command, &cli.face) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(command: Command, face_args: &face::FaceArgs) -> Result<()> {
    match command {
        Command::Init {
            gallery,
            models,
            fingers,
        } => {
            let models = models
                .iter()
                .map(|m| m.parse::<EmbeddingModel>())
                .collect::<Result<Vec<_>, _>>()?;
            if gallery.gallery.join("gallery.redb").exists() {
                bail!("{} already holds a gallery", gallery.gallery.display());
            }
            let mut builder = builder(&gallery)?.create_if_missing(true).fingers(fingers);
            for m in models {
                builder = builder.model(m);
            }
            let engine = builder.build()?;
            print_json(&engine.stats()?)
        }
        Command::Enroll {
            gallery,
            input,
            face,
            fingers,
            ppi,
            encounter,
            search,
        } => {
            let opts = search.options(&[])?;
            if face.is_some() || !fingers.is_empty() {
                let (engine, face_template) = match &face {
                    Some(photo) => {
                        let (engine, t, sample) = open_with_face(&gallery, face_args, photo)?;
                        (engine, Some((t, sample)))
                    }
                    None => (open(&gallery)?, None),
                };
                let (finger_templates, finger_info) = finger::finger_templates(&fingers, ppi)?;
                let doc = input::EncounterInput::from_flags(
                    encounter.subject.unwrap_or_default(),
                    encounter.captured_at,
                    encounter.location,
                    encounter.operator,
                    encounter.fields.into_iter().collect(),
                );
                let mut new = doc.into_encounter()?;
                let face_info = face_template.map(|(t, sample)| {
                    new.templates.push(t);
                    face::describe(&sample)
                });
                new.templates.extend(finger_templates);
                let enrolment = engine.enroll(new, &opts)?;
                engine.checkpoint()?;
                return print_json(&serde_json::json!({
                    "enrolment": enrolment, "face": face_info, "fingers": finger_info,
                }));
            }
            let engine = open(&gallery)?;
            let input = input.context("--input or --face is required")?;
            let result = enroll_file(&engine, &input, &opts);
            // Snapshot the indexes even after a failure part-way through: everything
            // enrolled before it is durable and should be loaded, not replayed, next time.
            engine.checkpoint()?;
            result
        }
        Command::Identify {
            gallery,
            input,
            face,
            fingers,
            ppi,
            search,
            within,
            fpir,
        } => {
            let mut opts = search.options(&within)?;
            if let (Some(photo), false) = (&face, fingers.is_empty()) {
                let (engine, face_probe, sample) = open_with_face(&gallery, face_args, photo)?;
                let (probe, info) = finger::finger_templates(&fingers, ppi)?;
                let mut templates = vec![face_probe.template];
                templates.extend(probe.into_iter().map(|t| t.template));
                let records = engine.stats()?.gallery.encounters as usize;
                let level = fpir
                    .map(|f| huella_engine::fusion::threshold_for_fpir(f, records))
                    .transpose()?;
                opts.threshold = level.map(|l| l as f32).or(opts.threshold);
                let candidates = engine.identify(&templates, &opts)?;
                return print_json(&serde_json::json!({
                    "candidates": candidates,
                    "face": face::describe(&sample),
                    "fingers": info,
                    "score": "fused level: -log10 of the estimated false match rate",
                    "target_fpir": fpir,
                    "mosip_target_fpir": fpir.map(huella_engine::fusion::mosip_target_fpir),
                    "threshold_level": level,
                }));
            }
            if !fingers.is_empty() {
                let engine = open(&gallery)?;
                let (probe, info) = finger::finger_templates(&fingers, ppi)?;
                let probe: Vec<_> = probe.into_iter().map(|t| t.template).collect();
                let candidates = engine.identify(&probe, &opts)?;
                return print_json(
                    &serde_json::json!({ "candidates": candidates, "fingers": info }),
                );
            }
            if let Some(photo) = face {
                let (engine, probe, sample) = open_with_face(&gallery, face_args, &photo)?;
                let candidates = engine.identify(&[probe.template], &opts)?;
                return print_json(
                    &serde_json::json!({ "candidates": candidates, "face": face::describe(&sample) }),
                );
            }
            let engine = open(&gallery)?;
            let input = input.context("--input or --face is required")?;
            let probe: ProbeInput = input::read_document(&input)?;
            let candidates = engine.identify(&probe.templates()?, &opts)?;
            print_json(&serde_json::json!({ "candidates": candidates }))
        }
        Command::Verify {
            gallery,
            inputs,
            faces,
            fingers,
            svg,
            ppi,
            subject,
            threshold,
        } => {
            if !fingers.is_empty() {
                return finger::verify(&fingers, svg.as_deref(), threshold, ppi);
            }
            if faces.len() == 2 && inputs.is_empty() && subject.is_none() {
                let pipeline = face_args.pipeline()?;
                let (a, b) = (
                    input::read_sample(&faces[0])?,
                    input::read_sample(&faces[1])?,
                );
                let cmp = huella_engine::compare_faces(&pipeline, &a, &b, face_args.policy())?;
                let decision = threshold.map(|t| cmp.score.value() >= t);
                return print_json(&serde_json::json!({
                    "score": cmp.score, "threshold": threshold, "match": decision,
                    "a": face::describe(&cmp.a), "b": face::describe(&cmp.b),
                }));
            }
            let gallery = GalleryArgs {
                gallery: gallery
                    .context("--gallery is required unless comparing two --face photos")?,
                index: "auto".into(),
                finger_short_list: None,
            };
            let first = |p: &Path| -> Result<_> {
                let probe: ProbeInput = input::read_document(p)?;
                Ok(probe.templates()?.remove(0))
            };
            let (engine, a) = match (faces.as_slice(), inputs.first()) {
                ([photo], None) => {
                    let (engine, t, _) = open_with_face(&gallery, face_args, photo)?;
                    (engine, t.template)
                }
                ([], Some(first_input)) => (open(&gallery)?, first(first_input)?),
                _ => bail!(VERIFY_USAGE),
            };
            let probes = inputs.len() + faces.len();
            let (score, template) = match (&subject, inputs.get(1), probes) {
                (Some(s), None, 1) => {
                    let (score, t) = engine.verify_subject(&a, &SubjectId::new(s.as_str())?)?;
                    (score, Some(t))
                }
                (None, Some(b), 2) => (engine.verify(&a, &first(b)?)?, None),
                _ => bail!(VERIFY_USAGE),
            };
            let decision = threshold.map(|t| score.value() >= t);
            print_json(&serde_json::json!({
                "score": score, "template": template, "threshold": threshold, "match": decision
            }))
        }
        Command::Extract(args) => finger::extract(&args),
        Command::Stats { gallery } => print_json(&open(&gallery)?.stats()?),
        Command::Delete { gallery, subject } => {
            let engine = open(&gallery)?;
            let removed = engine.delete_subject(&SubjectId::new(subject)?)?;
            engine.checkpoint()?;
            print_json(&serde_json::json!({ "removed_templates": removed }))
        }
        Command::Merge {
            gallery,
            from,
            into,
        } => {
            let engine = open(&gallery)?;
            let outcome = engine.merge_subjects(&SubjectId::new(from)?, &SubjectId::new(into)?)?;
            print_json(&outcome)
        }
        Command::FaceCrop { face, out, all } => {
            print_json(&face::crop(&*face_args.pipeline()?, &face, &out, all)?)
        }
        Command::Demo(args) => demo::run(&args),
        Command::Eval(cmd) => eval::run(cmd, face_args),
        Command::Ingest(args) => ingest::run(&args, face_args),
        Command::Dedup(args) => dedup::run(&args),
        Command::Rescore(args) => rescore::run(&args, face_args),
    }
}

/// Enrol every encounter of a JSON document or JSON Lines file, printing a result line
/// for each; stops at the first failure (everything before it stays enrolled).
fn enroll_file(engine: &Engine, input: &Path, opts: &IdentifyOptions) -> Result<()> {
    let is_lines = input.extension().is_some_and(|e| e == "jsonl");
    if !is_lines {
        let doc: EncounterInput = input::read_document(input)?;
        return print_json(&engine.enroll(doc.into_encounter()?, opts)?);
    }
    let bar =
        indicatif::ProgressBar::new_spinner().with_style(indicatif::ProgressStyle::with_template(
            "{spinner} {pos} encounters enrolled, {per_sec}, {elapsed}",
        )?);
    for item in input::read_lines::<EncounterInput>(input)? {
        let (line, doc) = item?;
        let enrolment = engine
            .enroll(
                doc.into_encounter()
                    .with_context(|| format!("line {line}"))?,
                opts,
            )
            .with_context(|| format!("line {line}"))?;
        print_json(&enrolment)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}
