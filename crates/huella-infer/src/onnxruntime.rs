//! The onnxruntime backend (feature `ort`), loaded from a shared library at run time.

use std::path::Path;
use std::sync::OnceLock;

use parking_lot::Mutex;

use crate::{load_error, run_error, InferError, Output};

/// onnxruntime allows one environment per process; the first library loaded wins.
static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

fn environment(library: &Path) -> Result<&'static ort::environment::Environment, InferError> {
    ENVIRONMENT
        .get_or_init(|| {
            ort::init_from(library)
                .map_err(|e| e.to_string())?
                .with_name("huella")
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|reason| InferError::Unsupported {
            backend: "onnxruntime",
            reason: reason.clone(),
        })
}

/// An onnxruntime session; `Session::run` needs `&mut`, so calls are serialised.
pub(crate) struct OrtModel {
    session: Mutex<ort::session::Session>,
}

impl OrtModel {
    pub(crate) fn load(bytes: &[u8], library: &Path, threads: usize) -> Result<Self, InferError> {
        let env = environment(library)?;
        let session = ort::session::Session::builder(env)
            .map_err(load_error)?
            .with_intra_threads(threads.max(1))
            .map_err(load_error)?
            .with_inter_threads(1)
            .map_err(load_error)?
            .commit_from_memory(bytes)
            .map_err(load_error)?;
        Ok(OrtModel {
            session: Mutex::new(session),
        })
    }

    pub(crate) fn run(&self, shape: &[usize], input: &[f32]) -> Result<Vec<Output>, InferError> {
        let tensor =
            ort::value::Tensor::from_array((shape.to_vec(), input.to_vec())).map_err(run_error)?;
        let mut session = self.session.lock();
        let outputs = session.run(ort::inputs![tensor]).map_err(run_error)?;
        outputs
            .iter()
            .map(|(_, value)| {
                let (shape, data) = value.try_extract_tensor::<f32>().map_err(run_error)?;
                let shape = shape
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(run_error))
                    .collect::<Result<_, _>>()?;
                Ok(Output {
                    shape,
                    data: data.to_vec(),
                })
            })
            .collect()
    }
}
