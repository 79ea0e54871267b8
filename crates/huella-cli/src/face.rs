//! Face images on the command line: model loading, `--face` inputs and `face-crop`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use huella_engine::{Backend, FaceConfig, FaceModels, FacePipeline, FaceSample, NewTemplate};

/// Face model and extraction settings shared by every face command.
#[derive(Debug, Args, Clone)]
pub struct FaceArgs {
    /// Models directory (default: $HUELLA_MODELS, else the `models/` folder of the
    /// source tree this binary was built in, else ./models).
    #[arg(long, global = true)]
    pub models_dir: Option<PathBuf>,
    /// Embed one crop per face instead of the crop plus a tighter mirrored crop (faster,
    /// a little less accurate; templates are not comparable across this setting).
    #[arg(long, global = true)]
    pub no_flip: bool,
    /// Inference backend: tract (built in) or ort (onnxruntime, needs a build with
    /// `--features ort` and --ort-lib).
    #[arg(long, global = true, default_value = "tract")]
    pub backend: String,
    /// onnxruntime shared library for --backend ort (or $ORT_DYLIB_PATH).
    #[arg(long, global = true)]
    pub ort_lib: Option<PathBuf>,
    /// Faces whose quality summary (0-100) is below this are refused unless
    /// --allow-low-quality.
    #[arg(long, global = true, default_value_t = 30)]
    pub min_quality: u8,
    /// Use low-quality faces anyway (they stay flagged in the output).
    #[arg(long, global = true)]
    pub allow_low_quality: bool,
}

impl FaceArgs {
    /// The models directory this run uses.
    pub fn models_dir(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.models_dir {
            return Ok(dir.clone());
        }
        if let Some(dir) = std::env::var_os("HUELLA_MODELS") {
            return Ok(PathBuf::from(dir));
        }
        let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        let candidates = [built_in, PathBuf::from("models")];
        candidates
            .into_iter()
            .find(|d| d.join(huella_engine::face_files::LANDMARKS).is_file())
            .context("no models directory found: pass --models-dir DIR or set HUELLA_MODELS")
    }

    /// The inference backend asked for.
    pub fn backend(&self) -> Result<Backend> {
        match self.backend.as_str() {
            "tract" => Ok(Backend::Tract),
            "ort" => {
                let library = self
                    .ort_lib
                    .clone()
                    .or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from))
                    .context("--backend ort needs --ort-lib PATH or ORT_DYLIB_PATH")?;
                Ok(Backend::Ort {
                    library,
                    threads: 1,
                })
            }
            other => bail!("unknown backend {other:?}: use tract or ort"),
        }
    }

    /// Loads the face pipeline.
    pub fn pipeline(&self) -> Result<Arc<FacePipeline>> {
        let dir = self.models_dir()?;
        let models = FaceModels::from_dir(&dir).context("cannot read the face models")?;
        let config = FaceConfig {
            backend: self.backend()?,
            flip: !self.no_flip,
            min_quality: self.min_quality,
            ..FaceConfig::default()
        };
        Ok(Arc::new(FacePipeline::new(&models, config).with_context(
            || format!("cannot load the face models from {}", dir.display()),
        )?))
    }

    /// The quality policy of these flags.
    pub fn policy(&self) -> huella_engine::QualityPolicy {
        if self.allow_low_quality {
            huella_engine::QualityPolicy::Accept
        } else {
            huella_engine::QualityPolicy::Reject
        }
    }
}

/// The face template of an image file, with its source reference for the gallery.
pub fn face_template(
    pipeline: &FacePipeline,
    path: &Path,
    policy: huella_engine::QualityPolicy,
) -> Result<(NewTemplate, FaceSample)> {
    let bytes = crate::input::read_sample(path)?;
    let sample = huella_engine::face_sample(pipeline, &bytes, policy)
        .with_context(|| format!("{}", path.display()))?;
    let source = crate::input::source_image(path, &bytes);
    Ok((
        NewTemplate {
            template: sample.template.clone(),
            source: Some(source),
        },
        sample,
    ))
}

/// What the CLI prints about a face (never the template or pixels).
pub fn describe(sample: &FaceSample) -> serde_json::Value {
    serde_json::json!({
        "box": sample.face.detection.bbox,
        "detector_score": sample.face.detection.score,
        "landmarks": sample.face.landmarks,
        "quality": sample.face.quality,
        "low_quality": sample.low_quality,
        "faces_found": sample.faces_found,
        "algorithm": sample.template.algorithm().to_string(),
    })
}

/// `huella face-crop`: the aligned crop of every face (or the probe face) as PNG.
pub fn crop(
    pipeline: &FacePipeline,
    input: &Path,
    out: &Path,
    all: bool,
) -> Result<serde_json::Value> {
    let img = pipeline.decode(&crate::input::read_sample(input)?)?;
    let faces = pipeline.faces(&img)?;
    if faces.is_empty() {
        bail!("no face found in {}", input.display());
    }
    let take = if all { faces.len() } else { 1 };
    let mut written = Vec::new();
    for (i, face) in faces.iter().take(take).enumerate() {
        let path = if all {
            numbered(out, i)
        } else {
            out.to_path_buf()
        };
        let png = huella_engine::encode_png(&pipeline.crop(&img, face)?)?;
        std::fs::write(&path, png).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(serde_json::json!({
            "file": path.display().to_string(), "box": face.detection.bbox,
            "landmarks": face.landmarks, "quality": face.quality,
        }));
    }
    Ok(serde_json::json!({ "faces_found": faces.len(), "crops": written }))
}

fn numbered(out: &Path, i: usize) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(|| "face".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}-{i}.png"))
}
