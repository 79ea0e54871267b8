use crate::*;
use serde_json::Value;

#[test]
fn init_enrol_identify_verify_merge_delete_stats() {
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("g");
    let g = g.to_str().unwrap();
    ok(&["init", "--gallery", g, "--model", MODEL]);
    fails(&["init", "--gallery", g, "--model", MODEL]); // already exists

    let lines: Vec<String> = (0..50)
        .map(|i| encounter_json(&format!("S{i}"), &embedding(i, 0)))
        .collect();
    let batch = write(&tmp.path().join("batch.jsonl"), &lines.join("\n"));
    let out = ok(&["enroll", "--gallery", g, "--input", &batch]);
    assert_eq!(out.lines().count(), 50);

    // Person 3 comes back under an alias: enrolment reports S3 as the top candidate.
    let alias = write(
        &tmp.path().join("alias.json"),
        &encounter_json("ALIAS-3", &embedding(3, 1)),
    );
    let out: Value = serde_json::from_str(&ok(&[
        "enroll",
        "-g",
        g,
        "--input",
        &alias,
        "--threshold",
        "0.9",
    ]))
    .unwrap();
    assert_eq!(out["candidates"][0]["subject"], "S3");
    assert_eq!(out["candidates"][0]["rank"], 1);

    let probe = |i: usize, k: usize| {
        let path = tmp.path().join(format!("probe-{i}-{k}.json"));
        write(
            &path,
            &serde_json::json!({"templates": [template_json(&embedding(i, k))]}).to_string(),
        )
    };
    let p10 = probe(10, 2);
    let out: Value = serde_json::from_str(&ok(&[
        "identify",
        "-g",
        g,
        "--input",
        &p10,
        "--max-candidates",
        "3",
    ]))
    .unwrap();
    let c = out["candidates"].as_array().unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c[0]["subject"], "S10");
    assert!(c[0]["score"].as_f64().unwrap() > 0.95);
    // Every index kind gives the same answer; the gallery's index follows the flag.
    for kind in ["flat", "hnsw", "lsh"] {
        let args = [
            "identify",
            "-g",
            g,
            "--index",
            kind,
            "--input",
            &p10,
            "--max-candidates",
            "3",
        ];
        let other: Value = serde_json::from_str(&ok(&args)).unwrap();
        assert_eq!(other["candidates"], out["candidates"], "{kind}");
        let stats: Value = serde_json::from_str(&ok(&["stats", "-g", g, "--index", kind])).unwrap();
        assert_eq!(stats["indexes"][0]["kind"], kind);
    }

    let out: Value = serde_json::from_str(&ok(&[
        "identify", "-g", g, "--input", &p10, "--within", "S1", "--within", "S2",
    ]))
    .unwrap();
    assert!(out["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["subject"] == "S1" || c["subject"] == "S2"));

    let out: Value = serde_json::from_str(&ok(&[
        "verify",
        "-g",
        g,
        "--input",
        &p10,
        "--subject",
        "S10",
        "--threshold",
        "0.9",
    ]))
    .unwrap();
    assert_eq!(out["match"], true);
    let p11 = probe(11, 0);
    let out: Value = serde_json::from_str(&ok(&[
        "verify",
        "-g",
        g,
        "--input",
        &p10,
        "--input",
        &p11,
        "--threshold",
        "0.9",
    ]))
    .unwrap();
    assert_eq!(out["match"], false);

    let out: Value = serde_json::from_str(&ok(&[
        "merge", "-g", g, "--from", "ALIAS-3", "--into", "S3",
    ]))
    .unwrap();
    assert_eq!(out["moved_encounters"].as_array().unwrap().len(), 1);
    let out: Value = serde_json::from_str(&ok(&["delete", "-g", g, "--subject", "S3"])).unwrap();
    assert_eq!(out["removed_templates"].as_array().unwrap().len(), 2);
    let stats: Value = serde_json::from_str(&ok(&["stats", "-g", g])).unwrap();
    assert_eq!(stats["gallery"]["subjects"], 49);
    assert_eq!(stats["indexes"][0]["vectors"], 49);
    fails(&["delete", "-g", g, "--subject", "S3"]);
}

#[test]
fn bad_input_files_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("g");
    let g = g.to_str().unwrap();
    ok(&["init", "--gallery", g, "--model", MODEL]);
    let f = |name: &str, text: &str| write(&tmp.path().join(name), text);
    let zero = vec![0.0f32; DIM];
    let cases = [
        ("empty.json", String::new(), "not a valid input"),
        (
            "garbage.json",
            "{\"subject\": ".to_string(),
            "not a valid input",
        ),
        (
            "unknown-field.json",
            encounter_json("S1", &embedding(1, 0)).replace("\"location\"", "\"locaton\""),
            "not a valid input",
        ),
        ("zero.json", encounter_json("S1", &zero), "zero-length"),
        (
            "short.json",
            encounter_json("S1", &embedding(1, 0)[..5]),
            "wrong dimension",
        ),
        (
            "overflow.json",
            encounter_json("S1", &embedding(1, 0)).replacen("[", "[1e999,", 2),
            "not a valid input",
        ),
        (
            "bad-subject.json",
            encounter_json("bad id", &embedding(1, 0)),
            "subject id",
        ),
        (
            "other-model.json",
            encounter_json("S1", &embedding(1, 0)).replace("e2e-face@1", "other@9"),
            "not configured",
        ),
        (
            "bad-time.json",
            encounter_json("S1", &embedding(1, 0)).replace("2026-11-29T08:00:00Z", "yesterday"),
            "RFC 3339",
        ),
    ];
    for (name, text, expect) in cases {
        let path = f(name, &text);
        let err = fails(&["enroll", "-g", g, "--input", &path]);
        assert!(err.contains(expect), "{name}: {err}");
    }
    // A JSON Lines file with a bad line 3 enrols lines 1-2, then names the line.
    let lines = [
        encounter_json("A", &embedding(1, 0)),
        encounter_json("B", &embedding(2, 0)),
        "{".into(),
    ];
    let path = f("bad.jsonl", &lines.join("\n"));
    let err = fails(&["enroll", "-g", g, "--input", &path]);
    assert!(err.contains("bad.jsonl:3"), "{err}");
    let stats: serde_json::Value = serde_json::from_str(&ok(&["stats", "-g", g])).unwrap();
    assert_eq!(stats["gallery"]["encounters"], 2);

    fails(&["enroll", "-g", g, "--input", "/nonexistent/file.json"]);
    fails(&["stats", "-g", tmp.path().join("missing").to_str().unwrap()]);
    fails(&[
        "init",
        "-g",
        tmp.path().join("x").to_str().unwrap(),
        "--model",
        "face:m@1:0",
    ]);
    let empty_probe = f("probe.json", "{\"templates\": []}");
    fails(&["identify", "-g", g, "--input", &empty_probe]);
    fails(&[
        "identify",
        "-g",
        g,
        "--input",
        &empty_probe,
        "--max-candidates",
        "0",
    ]);
    // A finger short list is a share of the gallery.
    let err = fails(&["stats", "-g", g, "--finger-short-list", "1.5"]);
    assert!(err.contains("finger_short_list"), "{err}");
    ok(&["stats", "-g", g, "--finger-short-list", "0.05"]);
    // A gallery whose database file is garbage is a clear error.
    let junk = tmp.path().join("junk");
    std::fs::create_dir(&junk).unwrap();
    std::fs::write(junk.join("gallery.redb"), vec![0xA5u8; 4096]).unwrap();
    fails(&["stats", "-g", junk.to_str().unwrap()]);
}

#[test]
fn demo_runs_and_catches_false_identities() {
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("demo");
    let json = tmp.path().join("demo.json");
    ok(&[
        "demo",
        "-g",
        g.to_str().unwrap(),
        "--people",
        "300",
        "--json",
        json.to_str().unwrap(),
    ]);
    let s: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert!(s["aliases_planted"].as_u64().unwrap() > 10);
    assert_eq!(s["aliases_caught"], s["aliases_planted"]);
    assert_eq!(s["newcomer_false_alarms"], 0);
    assert_eq!(s["returning_rank1_self"], s["returning_same_id"]);
}
