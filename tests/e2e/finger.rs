//! Fingerprints through the binary: `extract --finger` to JSON, ISO and SVG, `verify
//! --finger` on images and records, and bad files.

use crate::*;
use serde_json::Value;
use std::path::PathBuf;

/// An FVC2002 image, or `None` (with a note) when the shared datasets are absent.
fn fvc(name: &str) -> Option<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/datasets/fvc2002/DB1_B")
        .join(name);
    if path.is_file() {
        Some(path.to_str().unwrap().to_string())
    } else {
        eprintln!(
            "skipped: {} is absent (the shared FVC2002 datasets are not on this machine)",
            path.display()
        );
        None
    }
}

fn verify(a: &str, b: &str) -> Value {
    serde_json::from_str(&ok(&["verify", "--finger", a, "--finger", b])).unwrap()
}

fn score(v: &Value) -> f64 {
    v["score"].as_f64().unwrap()
}

#[test]
fn extract_to_iso_and_verify_against_images() {
    let (Some(img), Some(mate), Some(other)) =
        (fvc("101_1.tif"), fvc("101_2.tif"), fvc("102_1.tif"))
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let iso = tmp.path().join("101_1.iso");
    let iso_s = iso.to_str().unwrap();
    let svg = tmp.path().join("101_1.svg");
    let out: Value = serde_json::from_str(&ok(&[
        "extract",
        "--finger",
        &img,
        "--format",
        "iso",
        "--out",
        iso_s,
        "--svg",
        svg.to_str().unwrap(),
    ]))
    .unwrap();
    let n = out["minutiae"].as_u64().unwrap();
    assert!(n >= 10, "{out}");
    let bytes = std::fs::read(&iso).unwrap();
    assert!(bytes.starts_with(b"FMR\0 20\0"));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
    assert_eq!(text.matches(r#"class="minutia""#).count() as u64, n);

    // The record against its own image: a near-perfect score, above the threshold.
    let same = verify(iso_s, &img);
    assert!(score(&same) > 0.8, "{same}");
    assert_eq!(same["decision"], "match");
    assert_eq!(same["quality_a"], out["quality"]["score"]);
    // A mate scores above a non-mate, and the non-mate is rejected.
    let mated = verify(iso_s, &mate);
    let non_mated = verify(iso_s, &other);
    assert!(score(&mated) > score(&non_mated), "{mated} vs {non_mated}");
    assert_eq!(mated["decision"], "match", "{mated}");
    assert_eq!(non_mated["decision"], "non-match", "{non_mated}");
    for v in [&same, &mated, &non_mated] {
        let q = v["quality_b"].as_u64().unwrap();
        assert!(q <= 100, "{v}");
        assert!(v["matched_pairs"].as_u64().is_some(), "{v}");
    }

    // The comparison drawn for an examiner: one line per matched pair.
    let msvg = tmp.path().join("match.svg");
    let v: Value = serde_json::from_str(&ok(&[
        "verify",
        "--finger",
        iso_s,
        "--finger",
        &mate,
        "--svg",
        msvg.to_str().unwrap(),
    ]))
    .unwrap();
    let text = std::fs::read_to_string(&msvg).unwrap();
    assert_eq!(
        text.matches(r#"class="pair""#).count() as u64,
        v["matched_pairs"].as_u64().unwrap()
    );
}

#[test]
fn extract_json_parses_and_matches_the_ansi_record() {
    let Some(img) = fvc("103_3.tif") else {
        return;
    };
    let doc: Value = serde_json::from_str(&ok(&["extract", "--finger", &img])).unwrap();
    let minutiae = doc["template"]["minutiae"].as_array().unwrap();
    assert!(!minutiae.is_empty());
    assert!(minutiae[0]["angle"].as_f64().is_some());
    let q = doc["quality"]["score"].as_u64().unwrap();
    assert!(q <= 100);
    assert_eq!(doc["template"]["quality"].as_u64().unwrap(), q);

    let tmp = tempfile::tempdir().unwrap();
    let ansi = tmp.path().join("t.ansi");
    ok(&[
        "extract",
        "--finger",
        &img,
        "--format",
        "ansi",
        "--out",
        ansi.to_str().unwrap(),
    ]);
    let v = verify(ansi.to_str().unwrap(), &img);
    assert!(score(&v) > 0.8, "{v}");
}

#[test]
fn bad_fingerprint_inputs_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = write(&tmp.path().join("empty.png"), "");
    assert!(fails(&["extract", "--finger", &empty]).contains("empty"));
    let junk = write(&tmp.path().join("junk.png"), "not an image at all");
    fails(&["extract", "--finger", &junk]);
    let missing = tmp.path().join("missing.tif");
    fails(&["extract", "--finger", missing.to_str().unwrap()]);

    // A blank image decodes but holds no fingerprint.
    let blank = tmp.path().join("blank.png");
    let img = huella_imaging::Image::from_raw(200, 200, vec![255; 200 * 200 * 3]).unwrap();
    std::fs::write(&blank, huella_imaging::encode_png(&img).unwrap()).unwrap();
    let err = fails(&["extract", "--finger", blank.to_str().unwrap()]);
    assert!(err.contains("no fingerprint"), "{err}");

    // A corrupt record: right magic, nonsense after it.
    let corrupt = tmp.path().join("corrupt.iso");
    std::fs::write(&corrupt, b"FMR\0 20\0\xff\xff\xff\xffgarbage-garbage").unwrap();
    let c = corrupt.to_str().unwrap();
    let err = fails(&["verify", "--finger", c, "--finger", c]);
    assert!(err.contains("minutiae record"), "{err}");

    // Binary formats need --out; one --finger is not a comparison.
    fails(&["extract", "--finger", &empty, "--format", "iso"]);
    fails(&["verify", "--finger", c]);

    let Some(img) = fvc("101_1.tif") else {
        return;
    };
    // A truncated ISO record.
    let iso = tmp.path().join("a.iso");
    ok(&[
        "extract",
        "--finger",
        &img,
        "--format",
        "iso",
        "--out",
        iso.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&iso).unwrap();
    let cut = tmp.path().join("cut.iso");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    let err = fails(&[
        "verify",
        "--finger",
        cut.to_str().unwrap(),
        "--finger",
        &img,
    ]);
    assert!(err.contains("truncated"), "{err}");
    // An unusable stated resolution.
    let err = fails(&["extract", "--finger", &img, "--ppi", "100"]);
    assert!(err.contains("ppi"), "{err}");
}

#[test]
fn fingers_enrol_and_identify_through_a_gallery() {
    let names = [
        "101_1.tif",
        "102_1.tif",
        "103_1.tif",
        "103_4.tif",
        "101_1.iso",
    ];
    let Some(paths) = names.iter().map(|n| fvc(n)).collect::<Option<Vec<_>>>() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("g");
    let g = g.to_str().unwrap();
    ok(&["init", "--gallery", g, "--fingers"]);
    for (subject, path) in [
        ("S101", &paths[0]),
        ("S102", &paths[1]),
        ("S103", &paths[2]),
    ] {
        let finger = format!("right-index={path}");
        ok(&[
            "enroll",
            "--gallery",
            g,
            "--subject",
            subject,
            "--finger",
            &finger,
        ]);
    }
    // Another impression of finger 103 is found first, through the CLI's own extraction.
    let probe = format!("2={}", paths[3]);
    let out: Value =
        serde_json::from_str(&ok(&["identify", "--gallery", g, "--finger", &probe])).unwrap();
    assert_eq!(out["candidates"][0]["subject"], "S103", "{out}");
    assert_eq!(out["fingers"][0]["position"], 2);
    // An ISO record enters the same way.
    let record = format!("2={}", paths[4]);
    ok(&[
        "enroll",
        "--gallery",
        g,
        "--subject",
        "S101",
        "--finger",
        &record,
    ]);
    let stats: Value = serde_json::from_str(&ok(&["stats", "--gallery", g])).unwrap();
    assert_eq!(stats["gallery"]["templates"], 4, "{stats}");
    // A bad position, a missing file and a finger probe on a face-only gallery fail cleanly.
    let bad = format!("11={}", paths[0]);
    let out = huella(&["identify", "--gallery", g, "--finger", &bad]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("finger position") && !err.contains("panicked"),
        "{err}"
    );
    fails(&["identify", "--gallery", g, "--finger", "2=/nonexistent.tif"]);
    let faces = tmp.path().join("faces");
    ok(&[
        "init",
        "--gallery",
        faces.to_str().unwrap(),
        "--model",
        "face:f@1:4",
    ]);
    fails(&[
        "identify",
        "--gallery",
        faces.to_str().unwrap(),
        "--finger",
        &probe,
    ]);
}
