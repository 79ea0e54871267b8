//! Runs the ONNX models behind Huella's extractors.
//!
//! A [`Model`] is loaded once from bytes the caller gives (library code never picks a
//! path), prepared for one fixed input shape, and then shared by any number of threads:
//! [`Model::run`] takes `&self`. Two backends keep the same API:
//!
//! - [`Backend::Tract`] (default): the pure-Rust `tract-onnx` runtime; builds with a bare
//!   `cargo build` and runs each call on the calling thread.
//! - [`Backend::Ort`]: onnxruntime, behind the `ort` cargo feature, loaded at run time from
//!   a shared library the caller names (the `onnxruntime` wheel on PyPI ships one). Without
//!   the feature, asking for it is [`InferError::Unsupported`], never a build error.
//!
//! ```no_run
//! use huella_infer::{Backend, Model};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bytes = huella_infer::read_model_file("models/face/dlib_resnet_v1.onnx".as_ref())?;
//! let model = Model::load(&bytes, &[1, 3, 150, 150], &Backend::Tract)?;
//! let outputs = model.run(&vec![128.0; 3 * 150 * 150])?;
//! assert_eq!(outputs[0].shape, vec![1, 128]);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
#[cfg(feature = "ort")]
mod onnxruntime;

use std::path::PathBuf;

pub use error::InferError;
use tract_onnx::prelude::*;

/// Which runtime executes a model.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// Pure-Rust tract, single-threaded per call.
    Tract,
    /// onnxruntime loaded from `library` (e.g. the PyPI wheel's
    /// `onnxruntime/capi/libonnxruntime.so.*`), with `threads` intra-op threads.
    /// Needs the `ort` feature.
    Ort {
        /// Path of the onnxruntime shared library.
        library: PathBuf,
        /// Intra-op threads per call (1 for a fair single-thread comparison).
        threads: usize,
    },
}

impl Backend {
    /// A short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Tract => "tract",
            Backend::Ort { .. } => "onnxruntime",
        }
    }
}

/// One output tensor, row-major f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, `shape.iter().product()` of them.
    pub data: Vec<f32>,
}

/// A loaded model, prepared for one input shape; `Send + Sync`.
#[derive(Debug)]
pub struct Model {
    input_shape: Vec<usize>,
    runner: Runner,
}

enum Runner {
    Tract(std::sync::Arc<TypedRunnableModel>),
    #[cfg(feature = "ort")]
    Ort(onnxruntime::OrtModel),
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Runner::Tract(_) => f.write_str("Runner::Tract"),
            #[cfg(feature = "ort")]
            Runner::Ort(_) => f.write_str("Runner::Ort"),
        }
    }
}

impl Model {
    /// Parses and optimises an ONNX model for a single f32 input of `input_shape`.
    pub fn load(
        bytes: &[u8],
        input_shape: &[usize],
        backend: &Backend,
    ) -> Result<Self, InferError> {
        if input_shape.is_empty() || input_shape.contains(&0) {
            return Err(InferError::InputShape {
                expected: vec![],
                actual: input_shape.to_vec(),
            });
        }
        let runner = match backend {
            Backend::Tract => Runner::Tract(guarded(
                || load_tract(bytes, input_shape),
                |m| load_error(m),
            )?),
            #[cfg(feature = "ort")]
            Backend::Ort { library, threads } => {
                Runner::Ort(onnxruntime::OrtModel::load(bytes, library, *threads)?)
            }
            #[cfg(not(feature = "ort"))]
            Backend::Ort { .. } => {
                return Err(InferError::Unsupported {
                    backend: "onnxruntime",
                    reason: "huella-infer was built without the `ort` feature".into(),
                })
            }
        };
        Ok(Model {
            input_shape: input_shape.to_vec(),
            runner,
        })
    }

    /// The input shape the model was prepared for.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// Runs the model on one row-major input tensor of [`Model::input_shape`].
    pub fn run(&self, input: &[f32]) -> Result<Vec<Output>, InferError> {
        let expected: usize = self.input_shape.iter().product();
        if input.len() != expected {
            return Err(InferError::InputShape {
                expected: self.input_shape.clone(),
                actual: vec![input.len()],
            });
        }
        if !input.iter().all(|v| v.is_finite()) {
            return Err(InferError::NonFiniteInput);
        }
        match &self.runner {
            Runner::Tract(plan) => guarded(
                || run_tract(plan, &self.input_shape, input),
                |m| run_error(m),
            ),
            #[cfg(feature = "ort")]
            Runner::Ort(model) => model.run(&self.input_shape, input),
        }
    }
}

/// Runs `f`, turning a panic inside the runtime (a hostile model can trigger arithmetic
/// overflow in shape inference) into an error; `Model` holds no state a panic could
/// leave half-updated.
fn guarded<T>(
    f: impl FnOnce() -> Result<T, InferError>,
    err: fn(&str) -> InferError,
) -> Result<T, InferError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str));
        Err(err(&format!(
            "the runtime panicked: {}",
            what.unwrap_or("unknown cause")
        )))
    })
}

/// Largest number of parts a split model file may have.
const MAX_PARTS: usize = 100;

/// Reads a model file the caller names. A model too large for the repository's per-file
/// limit is committed split into `<path>.00`, `<path>.01`, ...; when `path` itself is
/// absent, those parts are read in order and joined.
pub fn read_model_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    let part = |i: usize| {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{i:02}"));
        PathBuf::from(name)
    };
    let mut bytes = Vec::new();
    for i in 0..MAX_PARTS {
        match std::fs::read(part(i)) {
            Ok(b) => bytes.extend_from_slice(&b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && i > 0 => return Ok(bytes),
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", part(i).display()),
                ))
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{} has over {MAX_PARTS} parts", path.display()),
    ))
}

fn load_error(e: impl std::fmt::Display) -> InferError {
    InferError::Load {
        reason: format!("{e:#}"),
    }
}

fn run_error(e: impl std::fmt::Display) -> InferError {
    InferError::Run {
        reason: format!("{e:#}"),
    }
}

fn load_tract(
    bytes: &[u8],
    input_shape: &[usize],
) -> Result<std::sync::Arc<TypedRunnableModel>, InferError> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(bytes))
        .map_err(load_error)?;
    if model.input_outlets().map_err(load_error)?.len() != 1 {
        return Err(InferError::Load {
            reason: "the model must have exactly one input".into(),
        });
    }
    model
        .with_input_fact(0, f32::fact(input_shape).into())
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(load_error)
}

fn run_tract(
    plan: &std::sync::Arc<TypedRunnableModel>,
    shape: &[usize],
    input: &[f32],
) -> Result<Vec<Output>, InferError> {
    let tensor = Tensor::from_shape(shape, input).map_err(run_error)?;
    let outputs = plan.run(tvec!(tensor.into())).map_err(run_error)?;
    outputs
        .iter()
        .map(|t| {
            let view = t.to_plain_array_view::<f32>().map_err(run_error)?;
            Ok(Output {
                shape: view.shape().to_vec(),
                data: view.iter().copied().collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_bytes_are_a_load_error() {
        for bytes in [&b""[..], b"not a model", &[0xff; 64]] {
            assert!(matches!(
                Model::load(bytes, &[1, 3], &Backend::Tract),
                Err(InferError::Load { .. })
            ));
        }
    }

    #[test]
    fn split_model_files_are_joined_in_order() {
        let dir = std::env::temp_dir().join(format!("huella-infer-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let whole = dir.join("m.onnx");
        for (i, part) in [&b"abc"[..], b"de", b"f"].iter().enumerate() {
            std::fs::write(dir.join(format!("m.onnx.{i:02}")), part).unwrap();
        }
        assert_eq!(read_model_file(&whole).unwrap(), b"abcdef");
        std::fs::write(&whole, b"xyz").unwrap();
        assert_eq!(
            read_model_file(&whole).unwrap(),
            b"xyz",
            "a whole file wins over parts"
        );
        assert!(read_model_file(&dir.join("missing.onnx")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_shape_is_rejected() {
        assert!(matches!(
            Model::load(b"x", &[], &Backend::Tract),
            Err(InferError::InputShape { .. })
        ));
        assert!(matches!(
            Model::load(b"x", &[1, 0], &Backend::Tract),
            Err(InferError::InputShape { .. })
        ));
    }

    #[cfg(not(feature = "ort"))]
    #[test]
    fn ort_without_feature_is_unsupported() {
        let backend = Backend::Ort {
            library: "libonnxruntime.so".into(),
            threads: 1,
        };
        assert!(matches!(
            Model::load(b"x", &[1], &backend),
            Err(InferError::Unsupported { .. })
        ));
    }
}
