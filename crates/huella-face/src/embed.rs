//! The 128-d embedding: dlib's ResNet (`dlib_face_recognition_resnet_model_v1`).

use huella_core::Embedding;
use huella_imaging::Image;
use huella_infer::{Backend, Model};

use crate::align::CHIP_SIZE;
use crate::error::FaceError;

/// Embedding dimension.
pub const DIMENSION: usize = 128;

/// The embedding network, loaded once and shared by threads.
#[derive(Debug)]
pub struct Embedder {
    model: Model,
}

impl Embedder {
    /// Loads the ONNX network.
    pub fn new(onnx: &[u8], backend: &Backend) -> Result<Self, FaceError> {
        let size = CHIP_SIZE as usize;
        let model = Model::load(onnx, &[1, 3, size, size], backend)?;
        let embedder = Embedder { model };
        // A model with another output is not the network this crate was built for.
        let probe = embedder.descriptor(
            &Image::from_raw(CHIP_SIZE, CHIP_SIZE, vec![128; size * size * 3]).ok_or(
                FaceError::ModelCorrupt {
                    model: "embedding",
                    reason: "cannot build a probe image".into(),
                },
            )?,
        )?;
        if probe.len() != DIMENSION {
            return Err(FaceError::ModelCorrupt {
                model: "embedding",
                reason: format!("output has {} values, expected {DIMENSION}", probe.len()),
            });
        }
        Ok(embedder)
    }

    /// The raw network output for one 150x150 RGB crop.
    pub fn descriptor(&self, chip: &Image) -> Result<Vec<f32>, FaceError> {
        let plane = (chip.width() * chip.height()) as usize;
        let mut input = vec![0f32; 3 * plane];
        for (i, px) in chip.as_raw().chunks_exact(3).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                input[c * plane + i] = f32::from(v);
            }
        }
        let out = self.model.run(&input)?;
        Ok(out.into_iter().next().map(|o| o.data).unwrap_or_default())
    }

    /// The unit embedding of one face from one or more crops of it (test-time
    /// augmentation: the descriptors are summed, then normalised).
    pub fn embed(&self, crops: &[Image]) -> Result<Embedding, FaceError> {
        let mut sum = vec![0f32; DIMENSION];
        for crop in crops {
            let d = self.descriptor(crop)?;
            sum.iter_mut().zip(d).for_each(|(a, b)| *a += b);
        }
        Ok(Embedding::with_dimension(sum, DIMENSION)?)
    }
}
