//! `huella rescore`: a face gallery built with `dlib-resnet@1` (`--no-flip`) upgraded
//! to `dlib-resnet@1+mirror95` (the default pipeline) by real re-extraction from the
//! source images; a missing and a changed image; a `kill -9` in the middle of a run.

use crate::*;
use huella_engine::{FaceConfig, FaceModels, FacePipeline, Gallery, TemplateId};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Stdio;

const OLD_MODEL: &str = "face:dlib-resnet@1:128";
const OLD: &str = "dlib-resnet@1";
const NEW: &str = "dlib-resnet@1+mirror95";
const NEW_MODEL: &str = "face:dlib-resnet@1+mirror95:128";

fn face_fixture() -> String {
    format!(
        "{}/../huella-face/tests/fixtures/astronaut_face.jpg",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// `n` distinct photos of the fixture face (mirrored, darker or lighter, cropped), as
/// PNG files `v0.png`... in `dir`: distinct bytes, distinct templates.
fn variants(dir: &Path, n: usize) -> Vec<PathBuf> {
    let bytes = std::fs::read(face_fixture()).unwrap();
    let img = huella_imaging::decode(&bytes, &Default::default()).unwrap();
    (0..n)
        .map(|k| {
            let flipped = if k % 2 == 1 {
                img.flip_horizontal()
            } else {
                img.clone()
            };
            let border = 4 * ((k / 2) % 2) as u32;
            let cropped = flipped
                .crop(
                    border,
                    border,
                    flipped.width() - 2 * border,
                    flipped.height() - 2 * border,
                )
                .unwrap();
            let gain = 1.0 - 0.06 * (k / 4) as f32;
            let raw: Vec<u8> = cropped
                .as_raw()
                .iter()
                .map(|&p| (f32::from(p) * gain).round().min(255.0) as u8)
                .collect();
            let out =
                huella_imaging::Image::from_raw(cropped.width(), cropped.height(), raw).unwrap();
            let path = dir.join(format!("v{k}.png"));
            std::fs::write(&path, huella_imaging::encode_png(&out).unwrap()).unwrap();
            path
        })
        .collect()
}

/// A gallery of `n` subjects `R0`... enrolled from the variants with the old model
/// (`ingest --no-flip`); returns the gallery and the image paths.
fn old_gallery(tmp: &Path, n: usize) -> (PathBuf, Vec<PathBuf>) {
    let images = tmp.join("images");
    std::fs::create_dir(&images).unwrap();
    let paths = variants(&images, n);
    let mut manifest = String::from("record_id,face\n");
    for k in 0..n {
        manifest.push_str(&format!("R{k},v{k}.png\n"));
    }
    let m = images.join("legacy.csv");
    std::fs::write(&m, manifest).unwrap();
    let g = tmp.join("g");
    let gs = g.to_str().unwrap();
    ok(&["init", "-g", gs, "--model", OLD_MODEL]);
    let errors = tmp.join("ingest-errors.csv");
    ok(&[
        "ingest",
        "-g",
        gs,
        "--no-flip",
        "--manifest",
        m.to_str().unwrap(),
        "--threads",
        "2",
        "--errors",
        errors.to_str().unwrap(),
    ]);
    assert_eq!(algorithms(&g), BTreeMap::from([(OLD.to_string(), n)]));
    (g, paths)
}

/// Templates in the store per algorithm.
fn algorithms(g: &Path) -> BTreeMap<String, usize> {
    let gallery = Gallery::open(g).unwrap();
    gallery.verify().unwrap();
    let mut out = BTreeMap::new();
    gallery
        .for_each_template(|t| {
            *out.entry(t.template.algorithm().to_string()).or_default() += 1;
            Ok(())
        })
        .unwrap();
    out
}

fn rescore(g: &Path, errors: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "rescore",
        "-g",
        g.to_str().unwrap(),
        "--threads",
        "2",
        "--errors",
        errors.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    huella(&args)
}

fn summary(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().last().expect("a summary line");
    serde_json::from_str::<Value>(last).unwrap()["summary"].clone()
}

fn error_rows(path: &Path) -> Vec<(u64, u64, String)> {
    let mut r = csv::Reader::from_path(path).unwrap();
    assert_eq!(
        r.headers().unwrap(),
        vec!["template_id", "encounter", "reason"]
    );
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[0].parse().unwrap(),
                rec[1].parse().unwrap(),
                rec[2].to_string(),
            )
        })
        .collect()
}

/// The template of the subject enrolled from variant `k` (one encounter each).
fn template_of(g: &Path, k: usize) -> (TemplateId, huella_engine::Template) {
    let gallery = Gallery::open(g).unwrap();
    let e = gallery
        .subject_encounters(&huella_engine::SubjectId::new(format!("R{k}")).unwrap())
        .unwrap();
    let t = gallery.template(e[0].templates[0]).unwrap().unwrap();
    (t.id, t.template)
}

#[test]
fn rescore_upgrades_the_face_model_and_keeps_what_it_cannot_redo() {
    let tmp = tempfile::tempdir().unwrap();
    let (g, images) = old_gallery(tmp.path(), 6);
    let gs = g.to_str().unwrap();
    let errors = tmp.path().join("errors.csv");

    // One image was moved away: its template is an error row and stays as it was.
    let (moved_id, moved_before) = template_of(&g, 2);
    let elsewhere = tmp.path().join("moved.png");
    std::fs::rename(&images[2], &elsewhere).unwrap();
    let out = rescore(&g, &errors, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("could not be re-extracted"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let s = summary(&out.stdout);
    assert_eq!(
        (
            &s["re_extracted"],
            &s["failed"],
            &s["remaining"],
            &s["switched"]
        ),
        (
            &Value::from(5),
            &Value::from(1),
            &Value::from(1),
            &Value::from(false)
        ),
        "{s}"
    );
    let rows = error_rows(&errors);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, moved_id.0);
    assert!(rows[0].2.contains("No such file"), "{}", rows[0].2);
    assert_eq!(
        template_of(&g, 2),
        (moved_id, moved_before),
        "kept as it was"
    );
    assert_eq!(
        algorithms(&g),
        BTreeMap::from([(OLD.to_string(), 1), (NEW.to_string(), 5)])
    );
    // Mid-rescore the face family is refused, with either model, rather than half-searched.
    let probe = images[0].to_str().unwrap();
    let err = fails(&["identify", "-g", gs, "--face", probe]);
    assert!(err.contains("rescore of the face templates"), "{err}");
    let err = fails(&["identify", "-g", gs, "--no-flip", "--face", probe]);
    assert!(err.contains("under way"), "{err}");
    // A rerun with the other face flags names the rescore under way.
    let out = rescore(&g, &errors, &["--no-flip"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is under way"));

    // The image is back: the rerun does only that one and switches the gallery.
    std::fs::rename(&elsewhere, &images[2]).unwrap();
    let out = rescore(&g, &errors, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out.stdout);
    assert_eq!(
        (&s["re_extracted"], &s["skipped"]),
        (&Value::from(1), &Value::from(5))
    );
    assert_eq!(s["switched"], true);
    assert_eq!(s["models"], serde_json::json!([NEW_MODEL]));
    assert_eq!(error_rows(&errors), vec![]);
    assert_eq!(algorithms(&g), BTreeMap::from([(NEW.to_string(), 6)]));

    // A real re-extraction: each template is what the new pipeline makes of its image.
    let pipeline = FacePipeline::new(
        &FaceModels::from_dir(&models_dir()).unwrap(),
        FaceConfig::default(),
    )
    .unwrap();
    for (k, path) in images.iter().enumerate() {
        let expected = pipeline
            .extract_bytes(&std::fs::read(path).unwrap())
            .unwrap();
        assert_eq!(template_of(&g, k).1, expected.template, "variant {k}");
    }
    // Identification answers with the new model: each photo finds its own subject first.
    for k in [0, 3, 5] {
        let out: Value = serde_json::from_str(&ok(&[
            "identify",
            "-g",
            gs,
            "--face",
            images[k].to_str().unwrap(),
        ]))
        .unwrap();
        let top = &out["candidates"][0];
        assert_eq!(top["subject"], format!("R{k}"), "{out}");
        assert!(top["score"].as_f64().unwrap() > 0.999, "{out}");
        assert_eq!(out["candidates"].as_array().unwrap().len(), 6);
    }
    let err = fails(&["identify", "-g", gs, "--no-flip", "--face", probe]);
    assert!(err.contains("not configured"), "{err}");
    let st: Value = serde_json::from_str(&ok(&["stats", "-g", gs])).unwrap();
    assert_eq!(st["indexes"][0]["model"], NEW_MODEL);
    assert_eq!(st["indexes"][0]["vectors"], 6);

    // A changed image is refused, not silently re-extracted; --force redoes the others.
    let (changed_id, changed_before) = template_of(&g, 4);
    std::fs::copy(&images[5], &images[4]).unwrap();
    let out = rescore(&g, &errors, &["--force"]);
    assert_eq!(out.status.code(), Some(1));
    let s = summary(&out.stdout);
    assert_eq!(
        (&s["re_extracted"], &s["failed"]),
        (&Value::from(5), &Value::from(1))
    );
    let rows = error_rows(&errors);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, changed_id.0);
    assert!(
        rows[0].2.contains("changed since enrolment"),
        "{}",
        rows[0].2
    );
    assert_eq!(template_of(&g, 4), (changed_id, changed_before));
    // A forced pass keeps the model, so it does not hold searches back.
    ok(&["identify", "-g", gs, "--face", probe]);
}

#[test]
fn rescore_killed_with_sigkill_resumes_without_loss_or_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 12;
    let (g, _) = old_gallery(tmp.path(), n);
    let errors = tmp.path().join("errors.csv");

    let mut child = std::process::Command::new(BIN)
        .args(["rescore", "-g", g.to_str().unwrap(), "--threads", "2"])
        .args(["--batch", "2", "--errors", errors.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut committed = 0;
    while committed < 4 {
        let line = lines.next().expect("rescore ended early").unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        committed = v["committed"].as_u64().expect("a progress line");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(lines);

    // Whole batches only: every template is of one model or the other, none lost.
    let counts = algorithms(&g);
    let done = counts.get(NEW).copied().unwrap_or(0);
    assert!(done >= 4 && done < n, "{counts:?}");
    assert_eq!(
        done % 2,
        0,
        "batches of two are committed whole: {counts:?}"
    );
    assert_eq!(counts.values().sum::<usize>(), n);
    let err = fails(&[
        "identify",
        "-g",
        g.to_str().unwrap(),
        "--face",
        &face_fixture(),
    ]);
    assert!(err.contains("under way"), "{err}");

    let out = rescore(&g, &errors, &["--batch", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out.stdout);
    assert_eq!(s["skipped"].as_u64().unwrap() as usize, done);
    assert_eq!(s["re_extracted"].as_u64().unwrap() as usize, n - done);
    assert_eq!(s["switched"], true);
    assert_eq!(algorithms(&g), BTreeMap::from([(NEW.to_string(), n)]));
    // The store's subjects and encounters are those ingested, once each.
    let gallery = Gallery::open(&g).unwrap();
    let stats = gallery.stats().unwrap();
    assert_eq!(
        (stats.subjects, stats.encounters, stats.templates),
        (n as u64, n as u64, n as u64)
    );
    drop(gallery);
    let st: Value = serde_json::from_str(&ok(&["stats", "-g", g.to_str().unwrap()])).unwrap();
    assert_eq!(st["indexes"][0]["model"], NEW_MODEL);
    assert_eq!(st["indexes"][0]["vectors"], n);
}
