//! The whole path from an image to a face template.

use std::path::Path;

use huella_core::{AlgorithmId, Extractor, Modality, Template};
use huella_imaging::{decode, Image, Limits};
use huella_infer::Backend;

use crate::align::{chip, chip_transform, zoomed};
use crate::detect::{Detection, Detector, DetectorSettings};
use crate::embed::Embedder;
use crate::error::FaceError;
use crate::landmarks::{BoxF, ShapePredictor};
use crate::quality::{assess, Quality};

/// Field of view of the mirrored crop relative to the aligned one.
const MIRROR_CROP_SCALE: f32 = 0.95;

/// The probe face is the one nearest the image centre among the faces whose box has at
/// least this share of the largest box's area: a subject in front of the camera is
/// centred, and a bystander must be more than twice as large (closer to the lens) to
/// take the lead. Chosen on LFW View 1 (0.8 before: DevTrain 99.00% -> 99.09%, DevTest
/// 98.6% -> 98.7%; 0.3 and 0 gave the same).
pub const PROBE_AREA_SHARE: f32 = 0.5;

/// File names of the default models inside a models directory (see `models/README.md`).
pub mod files {
    /// BlazeFace short-range detector, 128x128 input (faces filling much of the image).
    pub const DETECTOR: &str = "face/blazeface-front.onnx";
    /// BlazeFace full-range detector, 256x256 input (small faces), tried when the
    /// short-range one finds none.
    pub const FALLBACK_DETECTOR: &str = "face/blazeface-back.onnx";
    /// dlib's 5-point landmark cascade.
    pub const LANDMARKS: &str = "face/dlib_shape5.safetensors";
    /// dlib's ResNet embedder (committed in parts `.00`, `.01`: see
    /// [`huella_infer::read_model_file`]).
    pub const EMBEDDER: &str = "face/dlib_resnet_v1.onnx";
}

/// The three model files' bytes; the caller decides where they come from.
#[derive(Clone)]
pub struct FaceModels {
    /// BlazeFace ONNX bytes.
    pub detector: Vec<u8>,
    /// The detector's input side (128 short-range, 256 full-range).
    pub detector_side: usize,
    /// A second detector and its side, run only when the first finds no face.
    pub fallback_detector: Option<(Vec<u8>, usize)>,
    /// Landmark cascade (safetensors).
    pub landmarks: Vec<u8>,
    /// Embedder ONNX bytes.
    pub embedder: Vec<u8>,
}

impl std::fmt::Debug for FaceModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceModels")
            .field("detector_side", &self.detector_side)
            .finish_non_exhaustive()
    }
}

impl FaceModels {
    /// Reads the default model files from a models directory given by the caller.
    pub fn from_dir(dir: &Path) -> std::io::Result<Self> {
        let read = |name: &str| {
            huella_infer::read_model_file(&dir.join(name)).map_err(|e| {
                std::io::Error::new(e.kind(), format!("{}: {e}", dir.join(name).display()))
            })
        };
        Ok(FaceModels {
            detector: read(files::DETECTOR)?,
            detector_side: 128,
            fallback_detector: Some((read(files::FALLBACK_DETECTOR)?, 256)),
            landmarks: read(files::LANDMARKS)?,
            embedder: read(files::EMBEDDER)?,
        })
    }
}

/// How the pipeline runs.
#[derive(Debug, Clone)]
pub struct FaceConfig {
    /// Inference backend for the detector and the embedder.
    pub backend: Backend,
    /// Also embed a mirrored crop, 5% tighter than the aligned one, and average: test-time
    /// augmentation chosen on LFW View 1 (DevTest 98.3% -> 98.6% against the mirror of
    /// the same crop); twice the embedding cost.
    pub flip: bool,
    /// Detector thresholds.
    pub detector: DetectorSettings,
    /// Thresholds of the full-range fallback detector: its scores run lower on real
    /// faces and higher on face-like objects, so it needs more confidence (0.75: 1% of
    /// LFW View 1 faces score below it; a coffee cup scored 0.65).
    pub fallback_detector: DetectorSettings,
    /// Faces whose quality summary is below this are flagged ([`FaceSample::low_quality`]).
    pub min_quality: u8,
    /// Decoding limits for [`FacePipeline::extract_bytes`].
    pub limits: Limits,
}

impl Default for FaceConfig {
    fn default() -> Self {
        FaceConfig {
            backend: Backend::Tract,
            flip: true,
            detector: DetectorSettings::default(),
            fallback_detector: DetectorSettings {
                min_score: 0.75,
                ..DetectorSettings::default()
            },
            min_quality: 30,
            limits: Limits::default(),
        }
    }
}

/// One face found in an image.
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    /// The detector's output.
    pub detection: Detection,
    /// The five landmarks (dlib order: subject's left eye outer and inner corner, right
    /// eye outer and inner corner, nose base), image pixels.
    pub landmarks: [(f32, f32); 5],
    /// Quality record.
    pub quality: Quality,
}

/// The template of the probe face, with what a reviewer needs to trust it.
#[derive(Debug, Clone)]
pub struct FaceSample {
    /// The template (unit 128-d embedding, stamped with the algorithm).
    pub template: Template,
    /// The face it came from.
    pub face: Face,
    /// How many faces the image held.
    pub faces_found: usize,
    /// The quality summary is below [`FaceConfig::min_quality`]: do not enrol silently.
    pub low_quality: bool,
}

/// Detector, landmarks and embedder, loaded once; `Send + Sync`.
#[derive(Debug)]
pub struct FacePipeline {
    detector: Detector,
    fallback: Option<Detector>,
    shape: ShapePredictor,
    embedder: Embedder,
    config: FaceConfig,
    algorithm: AlgorithmId,
}

impl FacePipeline {
    /// Loads the models.
    pub fn new(models: &FaceModels, config: FaceConfig) -> Result<Self, FaceError> {
        let detector = Detector::new(
            &models.detector,
            models.detector_side,
            &config.backend,
            config.detector,
        )?;
        let fallback = match &models.fallback_detector {
            Some((bytes, side)) => Some(Detector::new(
                bytes,
                *side,
                &config.backend,
                config.fallback_detector,
            )?),
            None => None,
        };
        let shape = ShapePredictor::from_bytes(&models.landmarks)?;
        if shape.parts() != 5 {
            return Err(FaceError::ModelCorrupt {
                model: "shape predictor",
                reason: format!("{} landmarks, expected 5", shape.parts()),
            });
        }
        let embedder = Embedder::new(&models.embedder, &config.backend)?;
        let version = if config.flip { "1+mirror95" } else { "1" };
        let algorithm = AlgorithmId::new("dlib-resnet", version)?;
        Ok(FacePipeline {
            detector,
            fallback,
            shape,
            embedder,
            config,
            algorithm,
        })
    }

    /// The algorithm stamped on templates (`dlib-resnet@1+mirror95` with the mirrored
    /// second crop, `dlib-resnet@1` without).
    pub fn algorithm(&self) -> &AlgorithmId {
        &self.algorithm
    }

    /// Every face in the image with landmarks and quality (the short-range detector
    /// first, the full-range one only when it finds none), the probe face first: among
    /// the boxes at least [`PROBE_AREA_SHARE`] of the largest one's area, the one nearest
    /// the image centre.
    pub fn faces(&self, img: &Image) -> Result<Vec<Face>, FaceError> {
        let mut detections = self.detector.detect(img)?;
        if let (true, Some(fallback)) = (detections.is_empty(), &self.fallback) {
            detections = fallback.detect(img)?;
        }
        let mut faces = Vec::new();
        for detection in detections {
            let points = self.shape.predict(img, &landmark_box(&detection.bbox));
            let landmarks: [(f32, f32); 5] =
                [points[0], points[1], points[2], points[3], points[4]];
            let Some(to_image) = chip_transform(&landmarks) else {
                continue;
            };
            let crop = chip(img, &to_image);
            let quality = assess(&landmarks, &detection.keypoints, detection.score, &crop);
            faces.push(Face {
                detection,
                landmarks,
                quality,
            });
        }
        let area = |f: &Face| f.detection.bbox.width() * f.detection.bbox.height();
        let largest = faces.iter().map(area).fold(0.0, f32::max);
        let (cx, cy) = (img.width() as f32 / 2.0, img.height() as f32 / 2.0);
        let off_centre = |f: &Face| {
            let (x, y) = f.detection.bbox.centre();
            (x - cx).hypot(y - cy)
        };
        let large = |f: &Face| area(f) >= PROBE_AREA_SHARE * largest;
        faces.sort_by(|a, b| {
            large(b)
                .cmp(&large(a))
                .then(off_centre(a).total_cmp(&off_centre(b)))
                .then(area(b).total_cmp(&area(a)))
        });
        Ok(faces)
    }

    /// Faces whose quality summary is below this are flagged.
    pub fn min_quality(&self) -> u8 {
        self.config.min_quality
    }

    /// The aligned 150x150 crop of a face, as the embedder sees it.
    pub fn crop(&self, img: &Image, face: &Face) -> Result<Image, FaceError> {
        let to_image = chip_transform(&face.landmarks).ok_or(FaceError::NoBiometricFound)?;
        Ok(chip(img, &to_image))
    }

    /// The template of the probe face; [`FaceError::NoBiometricFound`] without a face.
    pub fn extract_image(&self, img: &Image) -> Result<FaceSample, FaceError> {
        let faces = self.faces(img)?;
        let faces_found = faces.len();
        let face = faces
            .into_iter()
            .next()
            .ok_or(FaceError::NoBiometricFound)?;
        let to_image = chip_transform(&face.landmarks).ok_or(FaceError::NoBiometricFound)?;
        let mut crops = vec![chip(img, &to_image)];
        if self.config.flip {
            crops.push(chip(img, &zoomed(&to_image, MIRROR_CROP_SCALE)).flip_horizontal());
        }
        let embedding = self.embedder.embed(&crops)?;
        let template = Template::from_embedding(Modality::Face, self.algorithm.clone(), embedding);
        let low_quality = face.quality.summary < self.config.min_quality;
        Ok(FaceSample {
            template,
            face,
            faces_found,
            low_quality,
        })
    }

    /// Decodes an image within the configured limits.
    pub fn decode(&self, bytes: &[u8]) -> Result<Image, FaceError> {
        Ok(decode(bytes, &self.config.limits)?)
    }

    /// Decodes (within the configured limits) and extracts.
    pub fn extract_bytes(&self, bytes: &[u8]) -> Result<FaceSample, FaceError> {
        self.extract_image(&self.decode(bytes)?)
    }
}

/// The box the landmark cascade expects. dlib trained it on its HOG detector's boxes,
/// which sit higher and a little left of BlazeFace's: the median offsets, as fractions of
/// the BlazeFace box, measured on 236 LFW View 1 DevTrain images
/// (`models/scripts/calibrate_landmark_box.py`).
fn landmark_box(b: &BoxF) -> BoxF {
    let (w, h) = (b.width(), b.height());
    BoxF {
        left: b.left - 0.026 * w,
        top: b.top - 0.050 * h,
        right: b.right - 0.046 * w,
        bottom: b.bottom - 0.067 * h,
    }
}

impl Extractor for FacePipeline {
    type Input = Image;
    type Error = FaceError;

    fn algorithm(&self) -> &AlgorithmId {
        &self.algorithm
    }

    fn extract(&self, input: &Image) -> Result<Template, FaceError> {
        Ok(self.extract_image(input)?.template)
    }
}
