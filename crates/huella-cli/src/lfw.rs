//! `huella eval lfw`: the LFW protocol run end to end through the face pipeline.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use huella_engine::{FaceError, FacePipeline};
use huella_eval::{lfw_report, read_lfw_pairs, LfwPair, LfwView};
use rayon::prelude::*;

use crate::face::FaceArgs;
use crate::input::read_sample;

/// Flags of `huella eval lfw`.
#[derive(Debug, Args)]
pub struct LfwArgs {
    /// LFW root: `<Name>/<Name>_NNNN.jpg` images and `protocol/` with the pairs files.
    #[arg(long)]
    data: PathBuf,
    /// 2 (the 10-fold test protocol) or 1 (development: train/test).
    #[arg(long, default_value_t = 2)]
    view: u8,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write per-pair scores here (fold,label,score,path_a,path_b; empty score for a
    /// failure to enrol).
    #[arg(long)]
    scores_csv: Option<PathBuf>,
    /// Extraction threads (timings are per image on one thread either way).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

struct Extracted {
    embedding: Option<huella_engine::Embedding>,
    failure: Option<String>,
    ms: f64,
}

fn extract(pipeline: &FacePipeline, root: &Path, rel: &Path) -> Extracted {
    let start = Instant::now();
    let result = read_sample(&root.join(rel))
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            pipeline.extract_bytes(&bytes).map_err(|e| match e {
                FaceError::NoBiometricFound => "no face found".to_string(),
                other => other.to_string(),
            })
        });
    let ms = start.elapsed().as_secs_f64() * 1e3;
    match result {
        Ok(sample) => Extracted {
            embedding: sample.template.embedding().cloned(),
            failure: None,
            ms,
        },
        Err(reason) => Extracted {
            embedding: None,
            failure: Some(reason),
            ms,
        },
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub fn run(args: &LfwArgs, face: &FaceArgs) -> Result<()> {
    let view = match args.view {
        1 => LfwView::View1,
        2 => LfwView::View2,
        v => anyhow::bail!("--view {v}: LFW has views 1 and 2"),
    };
    let pairs: Vec<LfwPair> = read_lfw_pairs(&args.data, view)?;
    let images: Vec<PathBuf> = {
        let mut set: Vec<PathBuf> = pairs
            .iter()
            .flat_map(|p| [p.a.clone(), p.b.clone()])
            .collect();
        set.sort();
        set.dedup();
        set
    };
    let pipeline = face.pipeline()?;
    let pool = crate::input::thread_pool(Some(args.threads))?;
    let bar = indicatif::ProgressBar::new(images.len() as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} images, {per_sec}, eta {eta}",
        )?,
    );
    let started = Instant::now();
    let extracted: Vec<Extracted> = pool.install(|| {
        images
            .par_iter()
            .map(|rel| {
                let e = extract(&pipeline, &args.data, rel);
                bar.inc(1);
                e
            })
            .collect()
    });
    bar.finish_and_clear();
    let wall_s = started.elapsed().as_secs_f64();
    let by_path: BTreeMap<&Path, &Extracted> = images
        .iter()
        .map(PathBuf::as_path)
        .zip(&extracted)
        .collect();
    let scores: Vec<Option<f64>> = pairs
        .iter()
        .map(|p| {
            let (a, b) = (
                by_path[p.a.as_path()].embedding.as_ref()?,
                by_path[p.b.as_path()].embedding.as_ref()?,
            );
            a.cosine(b).ok().map(f64::from)
        })
        .collect();
    let report = lfw_report(view, &pairs, &scores)?;
    let mut ms: Vec<f64> = extracted.iter().map(|e| e.ms).collect();
    ms.sort_by(f64::total_cmp);
    let failures: Vec<_> = images
        .iter()
        .zip(&extracted)
        .filter_map(|(p, e)| {
            e.failure
                .as_ref()
                .map(|f| serde_json::json!({"image": p.display().to_string(), "reason": f}))
        })
        .collect();
    let summary = serde_json::json!({
        "pipeline": {
            "algorithm": pipeline.algorithm().to_string(),
            "backend": face.backend()?.name(),
            "flip": !face.no_flip,
            "detector": "blazeface short-range 128, full-range 256 fallback",
            "landmarks": "dlib 5-point ERT",
            "embedder": "dlib_face_recognition_resnet_model_v1 (128-d); with flip: plus a mirrored crop 5% tighter",
            "score": "cosine similarity",
        },
        "images": images.len(),
        "failure_to_enrol": failures.len(),
        "failures": failures,
        "extraction_ms": {
            "what": "read + decode + detect + landmarks + align + embed, per image, one thread",
            "mean": ms.iter().sum::<f64>() / ms.len().max(1) as f64,
            "p50": percentile(&ms, 0.5),
            "p90": percentile(&ms, 0.9),
        },
        "threads": args.threads,
        "wall_s": wall_s,
        "lfw": report,
    });
    if let Some(path) = &args.json {
        let mut f = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        serde_json::to_writer_pretty(&mut f, &summary)?;
        writeln!(f)?;
    }
    if let Some(path) = &args.scores_csv {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        );
        writeln!(f, "fold,label,score,path_a,path_b")?;
        for (p, s) in pairs.iter().zip(&scores) {
            let score = s.map_or(String::new(), |s| format!("{s:.9}"));
            writeln!(
                f,
                "{},{},{},{},{}",
                p.fold,
                u8::from(p.genuine),
                score,
                p.a.display(),
                p.b.display()
            )?;
        }
        f.flush()?;
    }
    let lfw = &summary["lfw"];
    match view {
        LfwView::View2 => println!(
            "LFW View 2: accuracy {:.4} +- {:.4} (10 folds), TAR {:.4} at FAR 1e-3, failures to enrol {}, {:.1} ms/image (p50)",
            lfw["ten_fold"]["accuracy_mean"].as_f64().unwrap_or(f64::NAN),
            lfw["ten_fold"]["accuracy_std"].as_f64().unwrap_or(f64::NAN),
            lfw["pooled"]["tar_at_far"][0]["tar"].as_f64().unwrap_or(f64::NAN),
            failures.len(),
            percentile(&ms, 0.5),
        ),
        _ => println!(
            "LFW View 1: test accuracy {:.4} (threshold from DevTrain), failures to enrol {}, {:.1} ms/image (p50)",
            lfw["dev"]["test_accuracy"].as_f64().unwrap_or(f64::NAN),
            failures.len(),
            percentile(&ms, 0.5),
        ),
    }
    Ok(())
}
