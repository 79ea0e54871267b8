//! The virtual population (LFW identities x FVC2002 fingers, issue 5's acceptance): a
//! manifest with planted false identities, repeats and a shared document is ingested and
//! de-duplicated, and fused identification beats each modality alone.

use crate::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const FACE_MODEL: &str = "face:dlib-resnet@1+mirror95:128";
const PLANTED: usize = 10;

/// LFW and FVC2002 under ../shared/datasets, or `None` (with a note) when absent.
fn data() -> Option<(PathBuf, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    let (lfw, fvc) = (root.join("lfw"), root.join("fvc2002"));
    if lfw.join("protocol/pairs.txt").is_file() && fvc.join("DB1_B/101_1.tif").is_file() {
        Some((lfw, fvc))
    } else {
        eprintln!(
            "skipped: the LFW and FVC2002 datasets are absent under {}",
            root.display()
        );
        None
    }
}

fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records()
        .map(|row| {
            let row = row.unwrap();
            header
                .iter()
                .cloned()
                .zip(row.iter().map(String::from))
                .collect()
        })
        .collect()
}

#[test]
fn planted_duplicates_in_a_virtual_population_are_found_by_dedup() {
    let Some((lfw, fvc)) = data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (m, g, out) = (
        tmp.path().join("m"),
        tmp.path().join("g"),
        tmp.path().join("d"),
    );
    let (m_s, g_s, out_s) = (
        m.to_str().unwrap(),
        g.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let (lfw, fvc) = (lfw.to_str().unwrap(), fvc.to_str().unwrap());
    let plant = PLANTED.to_string();
    ok(&[
        "eval",
        "population",
        "--lfw",
        lfw,
        "--fvc",
        fvc,
        "--manifest-dir",
        m_s,
        "--plant",
        &plant,
    ]);
    ok(&["init", "-g", g_s, "--model", FACE_MODEL, "--fingers"]);
    let manifest = m.join("manifest.csv");
    let errors = tmp.path().join("errors.csv");
    ok(&[
        "ingest",
        "-g",
        g_s,
        "--manifest",
        manifest.to_str().unwrap(),
        "--threads",
        "2",
        "--errors",
        errors.to_str().unwrap(),
    ]);
    let summary: Value = serde_json::from_str(&ok(&["dedup", "-g", g_s, "--out", out_s])).unwrap();

    // Truth: record id -> (person, kind).
    let truth: BTreeMap<String, (String, String)> = read_csv(&m.join("truth.csv"))
        .into_iter()
        .map(|r| {
            (
                r["record_id"].clone(),
                (r["person"].clone(), r["kind"].clone()),
            )
        })
        .collect();
    assert_eq!(summary["records"], truth.len());
    // Clusters, by record id (ingest files each record under its record id).
    let clusters: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("clusters.json")).unwrap()).unwrap();
    let mut encounter_of_record: BTreeMap<String, String> = BTreeMap::new();
    let mut found: BTreeMap<String, String> = BTreeMap::new(); // planted record -> cluster kind
    for c in clusters["clusters"].as_array().unwrap() {
        let records: Vec<(String, String)> = c["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["record"].to_string(),
                    r["subject"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let persons: BTreeSet<&String> = records.iter().map(|(_, s)| &truth[s].0).collect();
        for (encounter, subject) in &records {
            encounter_of_record.insert(encounter.clone(), subject.clone());
            if persons.len() == 1 && truth[subject].1 != "enrolled" {
                found.insert(subject.clone(), c["kind"].as_str().unwrap().to_string());
            }
        }
    }
    // Every planted duplicate is in one cluster with its person, labelled as planted.
    for (record, (_, kind)) in &truth {
        let want = match kind.as_str() {
            "false_identity" => "false_identity",
            "repeat" => "repeat",
            _ => continue,
        };
        assert_eq!(
            found.get(record).map(String::as_str),
            Some(want),
            "{record}: {found:?}"
        );
    }
    // False positive pairs: matched pairs of two different persons.
    let pairs = read_csv(&out.join("duplicates.csv"));
    let person = |e: &str| &truth[&encounter_of_record[e]].0;
    let false_pairs = pairs
        .iter()
        .filter(|p| p["decision"] != "shared_identity")
        .filter(|p| person(&p["record_a"]) != person(&p["record_b"]))
        .count();
    let matched = pairs
        .iter()
        .filter(|p| p["decision"] != "shared_identity")
        .count();
    eprintln!("dedup: {matched} matched pairs, {false_pairs} between different persons");
    assert!(false_pairs <= 1, "{false_pairs} false positive pairs");
    assert_eq!(summary["false_identities"], PLANTED);
    // The two persons presenting one document are reported as a shared identity.
    assert_eq!(summary["shared_identities"], 1);
    let shared = &clusters["shared_identities"][0];
    assert_eq!(shared["key"], "document_number");
    assert_eq!(shared["biometric_groups"].as_array().unwrap().len(), 2);
    // The reviewer's page shows the photos and the (TIFF) fingerprints, not their paths.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("data:image/jpeg;base64,") && html.contains("data:image/png;base64,"));
    assert!(
        !html.contains(".tif</code>"),
        "a fingerprint shown as a path"
    );

    // A later capture of person 20 (photo 4, impression 4) identified with face and
    // finger fused, above the threshold of FPIR 1% for this gallery.
    let rows = read_csv(&manifest);
    let row = rows.iter().find(|r| r["record_id"] == "R0020").unwrap();
    let photo = row["face"].replace("_0001.jpg", "_0004.jpg");
    let finger = format!("2={}", row["finger_2"].replace("_1.tif", "_4.tif"));
    let out: Value = serde_json::from_str(&ok(&[
        "identify", "-g", g_s, "--face", &photo, "--finger", &finger, "--fpir", "0.01",
    ]))
    .unwrap();
    let top = &out["candidates"][0];
    assert_eq!(top["subject"], "R0020", "{out}");
    let parts: Vec<&str> = top["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["modality"].as_str().unwrap())
        .collect();
    assert_eq!(parts, ["face", "finger:2"], "{out}");
    assert!(top["score"].as_f64().unwrap() >= out["threshold_level"].as_f64().unwrap());
    assert_eq!(out["mosip_target_fpir"], 20);
}

#[test]
fn fusion_beats_face_alone_and_finger_alone_on_the_virtual_population() {
    let Some((lfw, fvc)) = data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("population.json");
    ok(&[
        "eval",
        "population",
        "--lfw",
        lfw.to_str().unwrap(),
        "--fvc",
        fvc.to_str().unwrap(),
        "--threads",
        "2",
        "--json",
        json.to_str().unwrap(),
    ]);
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["searches"]["mated"], r["searches"]["non_mated"]);
    assert!(r["searches"]["mated"].as_u64().unwrap() >= 200);
    let fnir = |way: &str| r["ways"][way]["fnir_at_fpir_1pct"].as_f64().unwrap();
    let (face, finger, fused) = (fnir("face"), fnir("finger"), fnir("fused"));
    eprintln!("FNIR at FPIR 1%: face {face:.4}, finger {finger:.4}, fused {fused:.4}");
    assert!(
        fused < face.min(finger),
        "face {face}, finger {finger}, fused {fused}"
    );
}
