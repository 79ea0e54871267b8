//! `huella rescore`: re-extract every stored template with the current models after a
//! model upgrade, then switch the gallery to them and rebuild their indexes.
//!
//! The target face model is the one this run's face flags make (`--no-flip` or not,
//! `--models-dir`): a gallery built with `dlib-resnet@1` (`--no-flip`) is upgraded to
//! `dlib-resnet@1+mirror95` by `huella rescore -g G`. Finger minutiae records keep their
//! algorithm; `--force` re-extracts them (and face templates already at the target)
//! from their images all the same.
//!
//! For each template the source image recorded at enrolment is read again (relative
//! paths against `--source-root`, default the current directory; `FILE#N`, record `N`
//! of an ANSI/NIST-ITL transaction that `ingest --nist` read, is found in that file
//! again), its sha256 must
//! equal the one recorded (a changed file is refused, not silently re-extracted), and
//! the current pipeline extracts it. Faces are re-extracted whatever their quality: the
//! decision to enrol them was taken at enrolment (`--min-quality` does not apply).
//! Extraction runs in parallel on `--threads`; commits are fsynced batches of
//! `--batch` templates through the engine ([`huella_engine::Engine::rescore`]).
//!
//! A template that cannot be re-extracted (no source recorded, missing or unreadable
//! file, changed sha256, no face, no finger) is kept as it was and written to the errors
//! file (`template_id,encounter,reason`, never image content or personal data); the
//! others go on, and the exit status is 1. Until no template of the old model is left,
//! the gallery stays mid-rescore and refuses searches of that family: restore the
//! images and run `huella rescore` again, which redoes only what is left (as after a
//! `kill -9`). Standard output gets one JSON line per committed batch
//! (`{"committed": N}`, templates committed so far by this run) and a summary line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use huella_engine::{
    FacePipeline, Family, Modality, QualityPolicy, RescoreOptions, StoredTemplate, Template,
};

use crate::face::FaceArgs;

/// Flags of `huella rescore`.
#[derive(Debug, Args)]
pub struct RescoreArgs {
    #[command(flatten)]
    gallery: crate::GalleryArgs,
    /// Extraction threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Where the failed templates are written (`template_id,encounter,reason`);
    /// rewritten on every run.
    #[arg(long, default_value = "errors.csv")]
    errors: PathBuf,
    /// Re-extract templates already at the current model too, and the finger records.
    #[arg(long)]
    force: bool,
    /// Directory that relative source image paths are resolved against (default: the
    /// current directory).
    #[arg(long)]
    source_root: Option<PathBuf>,
    /// Resolution of finger images that do not state it (default 500 ppi).
    #[arg(long)]
    ppi: Option<f32>,
    /// Templates committed per transaction.
    #[arg(long, default_value_t = huella_engine::DEFAULT_RESCORE_BATCH)]
    batch: usize,
}

/// Re-extracts one stored template from its source image.
fn re_extract(
    t: &StoredTemplate,
    pipeline: Option<&FacePipeline>,
    root: Option<&Path>,
    ppi: Option<f32>,
) -> Result<Template> {
    let source = t
        .source
        .as_ref()
        .context("no source image was recorded for this template")?;
    let path = match root {
        Some(root) => root.join(&source.path),
        None => PathBuf::from(&source.path),
    };
    let from_transaction = crate::ingest::transaction_template(
        &path,
        t.template.modality(),
        pipeline,
        QualityPolicy::Accept,
        ppi,
    );
    let (new, recorded) = match (t.template.modality(), from_transaction) {
        (_, Some(new)) => {
            let new = new?;
            (new.template, new.source)
        }
        (Modality::Face, None) => {
            let pipeline = pipeline.context("no face pipeline")?;
            let (new, _) = crate::face::face_template(pipeline, &path, QualityPolicy::Accept)?;
            (new.template, new.source)
        }
        (Modality::Finger(position), None) => {
            let (mut new, _) = crate::finger::finger_templates(&[(position, path.clone())], ppi)?;
            let new = new.pop().context("no finger template")?;
            (new.template, new.source)
        }
    };
    let sha = recorded.map(|s| s.sha256).unwrap_or_default();
    if sha != source.sha256 {
        bail!(
            "{}: the file changed since enrolment (sha256 {} recorded, {} now)",
            path.display(),
            source.sha256,
            sha
        );
    }
    Ok(new)
}

/// `huella rescore`.
pub fn run(args: &RescoreArgs, face_args: &FaceArgs) -> Result<()> {
    let started = Instant::now();
    let pool = crate::input::thread_pool(args.threads)?;
    let threads = pool.current_num_threads();
    let engine = crate::open(&args.gallery)?;
    let has_face = engine.models().iter().any(|m| m.family == Family::Face);
    let has_fingers = {
        let finger = format!("finger:{}", huella_engine::finger_model());
        engine.stats()?.indexes.iter().any(|i| i.model == finger)
    };
    let pipeline = if has_face {
        Some(face_args.pipeline()?)
    } else {
        None
    };
    let models: Vec<_> = pipeline
        .iter()
        .map(|p| huella_engine::face_model(p))
        .collect();
    if let Some(under_way) = engine.rescore_in_progress()? {
        let mut want = models.clone();
        let mut have = under_way.clone();
        want.sort();
        have.sort();
        if want != have {
            let names: Vec<String> = under_way.iter().map(ToString::to_string).collect();
            bail!(
                "a rescore to [{}] is under way in {}: finish it with the face flags that make \
                 that model (this run's make [{}]; --no-flip selects dlib-resnet@1)",
                names.join(", "),
                args.gallery.gallery.display(),
                models
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let mut errors = csv::Writer::from_path(&args.errors)
        .with_context(|| format!("cannot create {}", args.errors.display()))?;
    errors.write_record(["template_id", "encounter", "reason"])?;
    errors.flush()?;

    let bar = indicatif::ProgressBar::new(0).with_style(indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} templates, {per_sec}, ETA {eta} ({msg})",
    )?);
    bar.set_message("0 failed");
    let opts = RescoreOptions {
        models,
        force: args.force,
        fingers: args.force && has_fingers,
        batch: args.batch,
        cancel: None,
    };
    let committed = std::sync::atomic::AtomicU64::new(0);
    let stdout = std::io::stdout();
    let (root, ppi) = (args.source_root.as_deref(), args.ppi);
    let report = pool.install(|| {
        engine.rescore(
            &opts,
            |t| re_extract(t, pipeline.as_deref(), root, ppi).map_err(|e| anyhow!("{e:#}")),
            |p| {
                bar.set_length(p.total);
                bar.set_position(p.done);
                bar.set_message(format!("{} failed", p.failed));
                // One line per committed batch, so a supervisor can follow the run.
                if committed.fetch_max(p.committed, std::sync::atomic::Ordering::Relaxed)
                    < p.committed
                {
                    let mut out = stdout.lock();
                    let _ = writeln!(out, "{}", serde_json::json!({ "committed": p.committed }));
                    let _ = out.flush();
                }
            },
        )
    });
    bar.finish_and_clear();
    let report = report?;
    for f in &report.failed {
        errors
            .write_record([&f.template.to_string(), &f.encounter.to_string(), &f.reason])
            .with_context(|| format!("cannot write {}", args.errors.display()))?;
    }
    errors.flush()?;
    // Snapshot the indexes so the next open loads instead of rebuilding.
    if let Err(e) = engine.checkpoint() {
        tracing::warn!(error = %e, "could not save the index snapshots");
    }
    let elapsed = started.elapsed().as_secs_f64();
    crate::print_json(&serde_json::json!({
        "summary": {
            "re_extracted": report.re_extracted,
            "skipped": report.skipped,
            "failed": report.failed.len(),
            "remaining": report.remaining,
            "switched": report.switched,
            "models": report.models.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "threads": threads,
            "seconds": elapsed,
            "templates_per_second": if elapsed > 0.0 { report.re_extracted as f64 / elapsed } else { 0.0 },
            "errors_file": args.errors.display().to_string(),
        }
    }))?;
    if !report.failed.is_empty() {
        bail!(
            "{} templates could not be re-extracted and were kept as they were (see {}); \
             the gallery stays mid-rescore until a rerun re-extracts them",
            report.failed.len(),
            args.errors.display()
        );
    }
    Ok(())
}
