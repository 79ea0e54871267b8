//! Five facial landmarks by an ensemble of regression trees (Kazemi and Sullivan, "One
//! Millisecond Face Alignment with an Ensemble of Regression Trees", CVPR 2014), reading
//! dlib's trained 5-point cascade as converted by `models/scripts/convert_dlib.py`.
//!
//! The points, in dlib's order: the outer and inner corner of the subject's left eye
//! (image right), the outer and inner corner of the right eye (image left), and the base
//! of the nose.

use huella_imaging::{Affine2, Image};
use safetensors::{Dtype, SafeTensors};

use crate::error::FaceError;

/// A box in image pixels, inclusive corners as dlib's `rectangle` has them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BoxF {
    /// Left edge.
    pub left: f32,
    /// Top edge.
    pub top: f32,
    /// Right edge.
    pub right: f32,
    /// Bottom edge.
    pub bottom: f32,
}

impl BoxF {
    /// Width (`right - left`).
    pub fn width(&self) -> f32 {
        self.right - self.left
    }
    /// Height (`bottom - top`).
    pub fn height(&self) -> f32 {
        self.bottom - self.top
    }
    /// Centre point.
    pub fn centre(&self) -> (f32, f32) {
        (
            (self.left + self.right) / 2.0,
            (self.top + self.bottom) / 2.0,
        )
    }
}

struct Tree {
    /// (feature index a, feature index b, threshold) per split node, breadth first.
    splits: Vec<(u32, u32, f32)>,
    /// `splits.len() + 1` leaves of `2 * parts` shape increments each.
    leaves: Vec<f32>,
}

struct Cascade {
    anchors: Vec<u32>,
    deltas: Vec<(f32, f32)>,
    trees: Vec<Tree>,
}

/// A trained shape predictor.
pub struct ShapePredictor {
    /// Mean shape in box-normalised coordinates (0..1 across the box).
    initial: Vec<(f32, f32)>,
    cascades: Vec<Cascade>,
}

impl std::fmt::Debug for ShapePredictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShapePredictor")
            .field("parts", &self.initial.len())
            .field("cascades", &self.cascades.len())
            .finish()
    }
}

fn corrupt(reason: impl Into<String>) -> FaceError {
    FaceError::ModelCorrupt {
        model: "shape predictor",
        reason: reason.into(),
    }
}

fn tensor<'a>(
    st: &'a SafeTensors<'a>,
    name: &str,
    dtype: Dtype,
    rank: usize,
) -> Result<(Vec<usize>, &'a [u8]), FaceError> {
    let t = st
        .tensor(name)
        .map_err(|e| corrupt(format!("{name}: {e}")))?;
    if t.dtype() != dtype || t.shape().len() != rank {
        return Err(corrupt(format!(
            "{name}: expected {dtype:?} of rank {rank}"
        )));
    }
    Ok((t.shape().to_vec(), t.data()))
}

fn f32s(bytes: &[u8]) -> Result<Vec<f32>, FaceError> {
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if v.iter().all(|x| x.is_finite()) {
        Ok(v)
    } else {
        Err(corrupt("non-finite value"))
    }
}

fn u32s(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

impl ShapePredictor {
    /// Reads the safetensors file written by `convert_dlib.py`, checking every index so
    /// that prediction can never read out of bounds.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FaceError> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| corrupt(e.to_string()))?;
        let (shape, data) = tensor(&st, "initial_shape", Dtype::F32, 1)?;
        let init = f32s(data)?;
        if shape[0] == 0 || shape[0] % 2 != 0 {
            return Err(corrupt("initial shape must hold (x, y) pairs"));
        }
        let parts = shape[0] / 2;
        let initial: Vec<(f32, f32)> = init.chunks_exact(2).map(|p| (p[0], p[1])).collect();

        let (sshape, sdata) = tensor(&st, "split_idx", Dtype::U32, 4)?;
        let (tshape, tdata) = tensor(&st, "split_thresh", Dtype::F32, 3)?;
        let (lshape, ldata) = tensor(&st, "leaf_values", Dtype::F32, 4)?;
        let (ashape, adata) = tensor(&st, "anchor_idx", Dtype::U32, 2)?;
        let (dshape, ddata) = tensor(&st, "deltas", Dtype::F32, 3)?;
        let (n_casc, n_trees, n_splits) = (sshape[0], sshape[1], sshape[2]);
        let n_feat = ashape[1];
        let consistent = sshape[3] == 2
            && tshape == [n_casc, n_trees, n_splits]
            && lshape == [n_casc, n_trees, n_splits + 1, 2 * parts]
            && ashape[0] == n_casc
            && dshape == [n_casc, n_feat, 2]
            && (n_splits + 1).is_power_of_two();
        if !consistent || n_casc == 0 {
            return Err(corrupt("tensor shapes disagree"));
        }
        let idx = u32s(sdata);
        let thresh = f32s(tdata)?;
        let leaves = f32s(ldata)?;
        let anchors = u32s(adata);
        let deltas = f32s(ddata)?;
        if idx.iter().any(|&i| i as usize >= n_feat) || anchors.iter().any(|&a| a as usize >= parts)
        {
            return Err(corrupt("index out of range"));
        }
        let leaf_len = (n_splits + 1) * 2 * parts;
        let cascades = (0..n_casc)
            .map(|c| Cascade {
                anchors: anchors[c * n_feat..(c + 1) * n_feat].to_vec(),
                deltas: deltas[c * n_feat * 2..(c + 1) * n_feat * 2]
                    .chunks_exact(2)
                    .map(|d| (d[0], d[1]))
                    .collect(),
                trees: (0..n_trees)
                    .map(|t| {
                        let k = c * n_trees + t;
                        Tree {
                            splits: (0..n_splits)
                                .map(|s| {
                                    let j = k * n_splits + s;
                                    (idx[2 * j], idx[2 * j + 1], thresh[j])
                                })
                                .collect(),
                            leaves: leaves[k * leaf_len..(k + 1) * leaf_len].to_vec(),
                        }
                    })
                    .collect(),
            })
            .collect();
        Ok(ShapePredictor { initial, cascades })
    }

    /// Number of landmarks predicted.
    pub fn parts(&self) -> usize {
        self.initial.len()
    }

    /// Predicts the landmarks of the face in `rect` (image pixels).
    pub fn predict(&self, img: &Image, rect: &BoxF) -> Vec<(f32, f32)> {
        let parts = self.initial.len();
        let mut shape: Vec<f32> = self.initial.iter().flat_map(|&(x, y)| [x, y]).collect();
        let to_image =
            |(x, y): (f32, f32)| (rect.left + x * rect.width(), rect.top + y * rect.height());
        let mut features = Vec::new();
        for cascade in &self.cascades {
            // The rotation and scale taking the mean shape to the current estimate; the
            // sampling offsets were learnt relative to the mean shape.
            let current: Vec<(f32, f32)> = shape.chunks_exact(2).map(|p| (p[0], p[1])).collect();
            let tform = Affine2::similarity_from_points(&self.initial, &current)
                .unwrap_or(Affine2::IDENTITY);
            features.clear();
            features.extend(
                cascade
                    .anchors
                    .iter()
                    .zip(&cascade.deltas)
                    .map(|(&a, &(dx, dy))| {
                        let (ax, ay) = current[a as usize];
                        let p = (
                            tform.a * dx + tform.b * dy + ax,
                            tform.c * dx + tform.d * dy + ay,
                        );
                        intensity(img, to_image(p))
                    }),
            );
            for tree in &cascade.trees {
                let mut i = 0usize;
                while i < tree.splits.len() {
                    let (a, b, t) = tree.splits[i];
                    i = if features[a as usize] - features[b as usize] > t {
                        2 * i + 1
                    } else {
                        2 * i + 2
                    };
                }
                let leaf = i - tree.splits.len();
                let values = &tree.leaves[leaf * 2 * parts..(leaf + 1) * 2 * parts];
                shape.iter_mut().zip(values).for_each(|(s, v)| *s += v);
            }
        }
        shape
            .chunks_exact(2)
            .map(|p| to_image((p[0], p[1])))
            .collect()
    }
}

/// dlib's grey level of an RGB pixel (the integer mean of the channels) at the nearest
/// pixel, 0 outside the image.
fn intensity(img: &Image, (x, y): (f32, f32)) -> f32 {
    let (x, y) = (x.round(), y.round());
    if x < 0.0 || y < 0.0 || x >= img.width() as f32 || y >= img.height() as f32 {
        return 0.0;
    }
    img.pixel(x as u32, y as u32).map_or(0.0, |[r, g, b]| {
        ((u16::from(r) + u16::from(g) + u16::from(b)) / 3) as f32
    })
}
