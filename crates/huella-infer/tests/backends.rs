//! Both backends on the real face embedding model.
#![allow(clippy::unwrap_used)] // test helpers: a failure should stop the test

use huella_infer::{Backend, Model};

fn model_bytes() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/face/dlib_resnet_v1.onnx"
    );
    huella_infer::read_model_file(path.as_ref()).unwrap()
}

fn input() -> Vec<f32> {
    (0..3 * 150 * 150).map(|i| (i * 37 % 251) as f32).collect()
}

#[test]
fn tract_runs_the_embedder_and_checks_shapes() {
    let model = Model::load(&model_bytes(), &[1, 3, 150, 150], &Backend::Tract).unwrap();
    let out = model.run(&input()).unwrap();
    assert_eq!(out[0].shape, vec![1, 128]);
    assert!(out[0].data.iter().all(|v| v.is_finite()) && out[0].data.iter().any(|v| *v != 0.0));
    assert!(model.run(&input()[..10]).is_err());
    let mut nan = input();
    nan[5] = f32::NAN;
    assert!(matches!(
        model.run(&nan),
        Err(huella_infer::InferError::NonFiniteInput)
    ));
}

/// onnxruntime must give the same numbers. Runs when the library is named by
/// ORT_DYLIB_PATH (CI installs the PyPI wheel and sets it; there, a missing library fails).
#[cfg(feature = "ort")]
#[test]
fn onnxruntime_agrees_with_tract() {
    let Some(lib) = std::env::var_os("ORT_DYLIB_PATH") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set ORT_DYLIB_PATH for the ort feature"
        );
        eprintln!("skipped: ORT_DYLIB_PATH is not set");
        return;
    };
    let bytes = model_bytes();
    let tract = Model::load(&bytes, &[1, 3, 150, 150], &Backend::Tract).unwrap();
    let ort = Model::load(
        &bytes,
        &[1, 3, 150, 150],
        &Backend::Ort {
            library: lib.into(),
            threads: 1,
        },
    )
    .unwrap();
    let (a, b) = (tract.run(&input()).unwrap(), ort.run(&input()).unwrap());
    assert_eq!(a[0].shape, b[0].shape);
    let diff = a[0]
        .data
        .iter()
        .zip(&b[0].data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-4, "max abs difference {diff}");
    assert!(matches!(
        Model::load(
            b"junk",
            &[1],
            &Backend::Ort {
                library: "/nonexistent.so".into(),
                threads: 1
            }
        ),
        Err(_)
    ));
}
