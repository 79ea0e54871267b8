//! Face pipeline speed on one thread: end-to-end (read + decode + detect + landmarks +
//! align + embed) per image, and the embedding network alone under tract and, with
//! `--features ort` and `--ort-lib`, under onnxruntime in the same run.
//!
//! ```sh
//! cargo run --release -p huella-benches --features ort --bin bench-face -- \
//!   --models models --images /path/to/lfw --count 300 \
//!   --ort-lib "$(python3 -c 'import onnxruntime,glob,os;print(glob.glob(os.path.dirname(onnxruntime.__file__)+"/capi/libonnxruntime.so*")[0])')"
//! ```
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use huella_face::{Embedder, FaceConfig, FaceModels, FacePipeline};
use huella_infer::Backend;

#[derive(Parser)]
struct Args {
    /// Models directory.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// A folder searched recursively for .jpg files (e.g. LFW), taken in sorted order.
    #[arg(long)]
    images: PathBuf,
    /// How many images.
    #[arg(long, default_value_t = 300)]
    count: usize,
    /// onnxruntime shared library (needs the `ort` feature).
    #[arg(long)]
    ort_lib: Option<PathBuf>,
    /// Write the JSON result here as well as to stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn jpegs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            jpegs(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "jpg") {
            out.push(p);
        }
    }
    Ok(())
}

fn stats(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    serde_json::json!({"n": ms.len(), "p50_ms": at(0.5), "p90_ms": at(0.9), "mean_ms": ms.iter().sum::<f64>() / ms.len() as f64})
}

fn end_to_end(pipeline: &FacePipeline, images: &[PathBuf]) -> Result<(serde_json::Value, usize)> {
    let mut ms = Vec::new();
    let mut failures = 0;
    for p in images {
        let t = Instant::now();
        let bytes = std::fs::read(p)?;
        failures += usize::from(pipeline.extract_bytes(&bytes).is_err());
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok((stats(ms), failures))
}

fn embed_only(embedder: &Embedder, chips: &[huella_imaging::Image]) -> Result<serde_json::Value> {
    let mut ms = Vec::new();
    for c in chips {
        let t = Instant::now();
        embedder.descriptor(c)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(stats(ms))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut images = Vec::new();
    jpegs(&args.images, &mut images)
        .with_context(|| format!("cannot list {}", args.images.display()))?;
    images.truncate(args.count);
    anyhow::ensure!(
        !images.is_empty(),
        "no .jpg files under {}",
        args.images.display()
    );
    let models = FaceModels::from_dir(&args.models)?;
    let flip = FacePipeline::new(&models, FaceConfig::default())?;
    let plain = FacePipeline::new(
        &models,
        FaceConfig {
            flip: false,
            ..FaceConfig::default()
        },
    )?;
    // Warm up caches and lazy allocations.
    end_to_end(&flip, &images[..images.len().min(10)])?;
    let (e2e_flip, fail) = end_to_end(&flip, &images)?;
    let (e2e_plain, _) = end_to_end(&plain, &images)?;
    // Aligned crops for the network-only comparison.
    let mut chips = Vec::new();
    for p in &images {
        let img = plain.decode(&std::fs::read(p)?)?;
        if let Some(face) = plain.faces(&img)?.first() {
            chips.push(plain.crop(&img, face)?);
        }
    }
    let tract = Embedder::new(&models.embedder, &Backend::Tract)?;
    let tract_ms = embed_only(&tract, &chips)?;
    let mut result = serde_json::json!({
        "images": images.len(), "failures": fail,
        "end_to_end_tract_flip": e2e_flip, "end_to_end_tract_no_flip": e2e_plain,
        "embed_tract": tract_ms,
    });
    if let Some(lib) = &args.ort_lib {
        let backend = Backend::Ort {
            library: lib.clone(),
            threads: 1,
        };
        let ort = Embedder::new(&models.embedder, &backend)?;
        let ort_ms = embed_only(&ort, &chips)?;
        // Same crops, both runtimes: the outputs must agree.
        let max_diff = chips
            .iter()
            .take(20)
            .try_fold(0f32, |m, c| -> Result<f32> {
                let (a, b) = (tract.descriptor(c)?, ort.descriptor(c)?);
                Ok(a.iter()
                    .zip(&b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(m, f32::max))
            })?;
        let ort_pipeline = FacePipeline::new(
            &models,
            FaceConfig {
                backend,
                ..FaceConfig::default()
            },
        )?;
        let (e2e_ort, _) = end_to_end(&ort_pipeline, &images)?;
        result["embed_onnxruntime"] = ort_ms.clone();
        result["end_to_end_onnxruntime_flip"] = e2e_ort;
        result["embed_tract_over_onnxruntime_p50"] = serde_json::json!(
            tract_ms["p50_ms"].as_f64().unwrap_or(f64::NAN)
                / ort_ms["p50_ms"].as_f64().unwrap_or(f64::NAN)
        );
        result["embed_max_abs_diff_tract_vs_onnxruntime"] = serde_json::json!(max_diff);
    }
    let text = serde_json::to_string_pretty(&result)?;
    println!("{text}");
    if let Some(out) = &args.out {
        std::fs::write(out, text)?;
    }
    Ok(())
}
