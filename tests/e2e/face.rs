//! Face photos through the binary: enrol, identify, verify, crop, and bad files.

use crate::*;
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../huella-face/tests/fixtures");

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

#[test]
fn enrol_identify_verify_and_crop_from_photos() {
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("g");
    let g = g.to_str().unwrap();
    let face = fixture("astronaut_face.jpg");
    let model = "face:dlib-resnet@1+mirror95:128";
    ok(&["init", "--gallery", g, "--model", model]);

    let out: Value = serde_json::from_str(&ok(&[
        "enroll",
        "-g",
        g,
        "--face",
        &face,
        "--subject",
        "CASE-1",
        "--field",
        "name=E. Collins",
        "--location",
        "Post 2",
    ]))
    .unwrap();
    assert_eq!(out["face"]["faces_found"], 1);
    assert!(out["face"]["quality"]["summary"].as_u64().unwrap() > 30);
    assert!(out["enrolment"]["candidates"]
        .as_array()
        .unwrap()
        .is_empty());

    // The same person under another name is found at enrolment.
    let out: Value = serde_json::from_str(&ok(&[
        "enroll",
        "-g",
        g,
        "--face",
        &face,
        "--subject",
        "ALIAS-9",
    ]))
    .unwrap();
    assert_eq!(out["enrolment"]["candidates"][0]["subject"], "CASE-1");
    assert!(out["enrolment"]["candidates"][0]["score"].as_f64().unwrap() > 0.99);

    let out: Value = serde_json::from_str(&ok(&["identify", "-g", g, "--face", &face])).unwrap();
    assert_eq!(out["candidates"].as_array().unwrap().len(), 2);

    // 1:1 without a gallery: a photo against itself, mirrored.
    let mirrored = tmp.path().join("mirrored.png");
    let img = huella_imaging::decode(&std::fs::read(&face).unwrap(), &Default::default()).unwrap();
    std::fs::write(
        &mirrored,
        huella_imaging::encode_png(&img.flip_horizontal()).unwrap(),
    )
    .unwrap();
    let out: Value = serde_json::from_str(&ok(&[
        "verify",
        "--face",
        &face,
        "--face",
        mirrored.to_str().unwrap(),
        "--threshold",
        "0.9",
    ]))
    .unwrap();
    assert_eq!(out["match"], true, "{out}");

    // A photo against an enrolled subject.
    let out: Value = serde_json::from_str(&ok(&[
        "verify",
        "-g",
        g,
        "--face",
        &face,
        "--subject",
        "CASE-1",
    ]))
    .unwrap();
    assert!(out["score"].as_f64().unwrap() > 0.99);

    let crop = tmp.path().join("crop.png");
    let out: Value = serde_json::from_str(&ok(&[
        "face-crop",
        "--face",
        &face,
        "--out",
        crop.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(out["faces_found"], 1);
    let png = huella_imaging::decode(&std::fs::read(&crop).unwrap(), &Default::default()).unwrap();
    assert_eq!((png.width(), png.height()), (150, 150));
}

/// A new gallery for the default face model, under `dir`.
fn face_gallery(dir: &std::path::Path) -> String {
    let g = dir.join("g").to_str().unwrap().to_string();
    ok(&[
        "init",
        "--gallery",
        &g,
        "--model",
        "face:dlib-resnet@1+mirror95:128",
    ]);
    g
}

#[test]
fn photos_without_faces_and_broken_files_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let g = face_gallery(tmp.path());
    let g = g.as_str();
    let err = fails(&[
        "enroll",
        "-g",
        g,
        "--face",
        &fixture("coffee.jpg"),
        "--subject",
        "X",
    ]);
    assert!(err.contains("no biometric found"), "{err}");
    let fake = write(&tmp.path().join("fake.jpg"), "definitely not a jpeg");
    let err = fails(&["identify", "-g", g, "--face", &fake]);
    assert!(err.contains("fake.jpg"), "{err}");
    let empty = write(&tmp.path().join("empty.png"), "");
    fails(&[
        "verify",
        "--face",
        &empty,
        "--face",
        &fixture("astronaut_face.jpg"),
    ]);
    fails(&[
        "face-crop",
        "--face",
        &fixture("coffee.jpg"),
        "--out",
        tmp.path().join("c.png").to_str().unwrap(),
    ]);
    // Nothing was enrolled by the failures.
    let stats: Value = serde_json::from_str(&ok(&["stats", "-g", g])).unwrap();
    assert_eq!(stats["gallery"]["encounters"], 0, "{stats}");
}

#[test]
fn a_low_quality_face_is_refused_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let g = face_gallery(tmp.path());
    let g = g.as_str();
    let face = fixture("astronaut_face.jpg");
    let err = fails(&[
        "enroll",
        "-g",
        g,
        "--face",
        &face,
        "--subject",
        "Q",
        "--min-quality",
        "100",
    ]);
    assert!(err.contains("quality"), "{err}");
    let out: Value = serde_json::from_str(&ok(&[
        "enroll",
        "-g",
        g,
        "--face",
        &face,
        "--subject",
        "Q",
        "--min-quality",
        "100",
        "--allow-low-quality",
    ]))
    .unwrap();
    assert_eq!(out["face"]["low_quality"], true);
}
