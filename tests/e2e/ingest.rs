//! `huella ingest`: a legacy CSV manifest into a gallery, bad rows, a `kill -9` in the
//! middle of a run, and a full disk.

use crate::*;
use serde_json::Value;
use std::io::BufRead;
use std::path::Path;
use std::process::Stdio;

const FACE_MODEL: &str = "face:dlib-resnet@1+mirror95:128";
const HEADER: &str = "record_id,name,date_of_birth,nationality,document_number,encounter_date,office,face,finger_1,finger_2,finger_3,finger_4,finger_5,finger_6,finger_7,finger_8,finger_9,finger_10";

fn face_fixture(name: &str) -> String {
    format!(
        "{}/../huella-face/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The FVC2002 DB1_B folder, or `None` (with a note) when the shared datasets are absent.
fn fvc_dir() -> Option<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/fvc2002/DB1_B");
    if dir.join("101_1.tif").is_file() {
        Some(dir)
    } else {
        eprintln!("skipped the finger rows: {} is absent", dir.display());
        None
    }
}

/// A manifest row: `record_id` and the face cell, other cells given as (column, value).
fn row(id: &str, face: &str, extra: &[(&str, &str)]) -> String {
    HEADER
        .split(',')
        .map(|c| match c {
            "record_id" => id.to_string(),
            "face" => face.to_string(),
            _ => extra
                .iter()
                .find(|(k, _)| *k == c)
                .map_or(String::new(), |(_, v)| v.to_string()),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A folder with `a.jpg` (a face), `c.jpg` (no face), `bad.jpg` (not an image).
fn images(dir: &Path) {
    std::fs::copy(face_fixture("astronaut_face.jpg"), dir.join("a.jpg")).unwrap();
    std::fs::copy(face_fixture("coffee.jpg"), dir.join("c.jpg")).unwrap();
    std::fs::write(dir.join("bad.jpg"), b"\xff\xd8\xff\xe0 truncated").unwrap();
}

fn init(g: &Path, fingers: bool) {
    let g = g.to_str().unwrap();
    let mut args = vec!["init", "--gallery", g, "--model", FACE_MODEL];
    if fingers {
        args.push("--fingers");
    }
    ok(&args);
}

fn ingest(g: &Path, manifest: &Path, errors: &Path) -> std::process::Output {
    huella(&[
        "ingest",
        "--gallery",
        g.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
        "--threads",
        "2",
        "--errors",
        errors.to_str().unwrap(),
    ])
}

fn summary(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().last().expect("a summary line");
    serde_json::from_str::<Value>(last).unwrap()["summary"].clone()
}

/// Every id has exactly one encounter in the store, tagged with its record_id; and the
/// store holds nothing else.
fn assert_stored_once(g: &Path, ids: &[String]) {
    let gallery = huella_engine::Gallery::open(g).unwrap();
    for id in ids {
        let subject = huella_engine::SubjectId::new(id.as_str()).unwrap();
        let encounters = gallery.subject_encounters(&subject).unwrap();
        assert_eq!(encounters.len(), 1, "record {id}");
        assert_eq!(encounters[0].biographic["record_id"], *id);
    }
    let stats = gallery.stats().unwrap();
    assert_eq!(stats.subjects as usize, ids.len());
    assert_eq!(stats.encounters as usize, ids.len());
}

/// The errors file as (record_id, line, column) with the reasons.
fn error_rows(path: &Path) -> Vec<(String, u64, String, String)> {
    let mut r = csv::Reader::from_path(path).unwrap();
    assert_eq!(
        r.headers().unwrap(),
        vec!["record_id", "line", "column", "reason"]
    );
    let mut rows: Vec<_> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[0].to_string(),
                rec[1].parse().unwrap(),
                rec[2].to_string(),
                rec[3].to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn ingest_keeps_good_rows_and_reports_each_bad_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("legacy");
    std::fs::create_dir(&data).unwrap();
    images(&data);
    let fvc = fvc_dir();
    let finger = fvc.as_ref().map(|d| d.join("101_1.tif"));
    let finger_cell = finger
        .as_ref()
        .map_or(String::new(), |p| p.display().to_string());
    let lines = vec![
        HEADER.to_string(),
        // line 2: face + (when available) a finger, every biographic field
        row(
            "R1",
            "a.jpg",
            &[
                ("name", "Ana Núñez"),
                ("date_of_birth", "1980-01-02"),
                ("nationality", "XX"),
                ("document_number", "D1"),
                ("encounter_date", "2019-03-04"),
                ("office", "Post 1"),
                ("finger_2", &finger_cell),
            ],
        ),
        row("R2", "a.jpg", &[("date_of_birth", "1980-13-02")]), // 3: bad date
        row("R3", "missing.jpg", &[]),                          // 4: missing file
        row("R1", "a.jpg", &[("name", "Dup")]),                 // 5: duplicate id
        row("R4", "", &[]),                                     // 6: no biometric
        row("R5", "c.jpg", &[]),                                // 7: no face in it
        row("R6", "bad.jpg", &[]),                              // 8: not an image
        row("R7", "a.jpg", &[("encounter_date", "2020-01-01T10:00:00Z")]), // 9: fine
        row("R8", "a.jpg", &[("encounter_date", "04/03/2019")]), // 10: bad date
    ];
    // line 11: a Latin-1 name (not UTF-8)
    let mut bytes = (lines.join("\n") + "\n").into_bytes();
    bytes.extend_from_slice(b"R9,\xe9lise,,,,,,a.jpg,,,,,,,,,,\n");
    let manifest = data.join("legacy.csv");
    std::fs::write(&manifest, bytes).unwrap();

    let g = tmp.path().join("g");
    init(&g, true);
    let errors = tmp.path().join("errors.csv");
    let out = ingest(&g, &manifest, &errors);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("8 of the manifest's records failed"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let s = summary(&out.stdout);
    assert_eq!(s["rows"], 10);
    assert_eq!(s["ingested"], 2);
    assert_eq!(s["failed"], 8);

    let rows = error_rows(&errors);
    let cells: Vec<(&str, u64, &str)> = rows
        .iter()
        .map(|(id, line, col, _)| (id.as_str(), *line, col.as_str()))
        .collect();
    assert_eq!(
        cells,
        vec![
            ("R1", 5, "record_id"),
            ("R2", 3, "date_of_birth"),
            ("R3", 4, "face"),
            ("R4", 6, ""),
            ("R5", 7, "face"),
            ("R6", 8, "face"),
            ("R8", 10, "encounter_date"),
            ("R9", 11, "name"),
        ]
    );
    let reason = |id: &str| &rows.iter().find(|r| r.0 == id).unwrap().3;
    assert!(reason("R1").contains("duplicate record_id: first on line 2"));
    assert!(reason("R3").contains("No such file"), "{}", reason("R3"));
    assert!(reason("R4").contains("no biometric"));
    assert!(
        reason("R5").contains("no biometric found"),
        "{}",
        reason("R5")
    );
    assert!(reason("R9").contains("UTF-8"));
    // Never biographic values in the errors file.
    assert!(!std::fs::read_to_string(&errors).unwrap().contains("Dup"));

    // What was stored: the first R1 with its fields, face and finger, and R7.
    let gallery = huella_engine::Gallery::open(&g).unwrap();
    let r1 = gallery
        .subject_encounters(&huella_engine::SubjectId::new("R1").unwrap())
        .unwrap();
    assert_eq!(r1.len(), 1);
    let e = &r1[0];
    assert_eq!(e.biographic["name"], "Ana Núñez");
    assert_eq!(e.biographic["date_of_birth"], "1980-01-02");
    assert_eq!(e.biographic["document_number"], "D1");
    assert_eq!(e.biographic["office"], "Post 1");
    assert_eq!(e.location.as_deref(), Some("Post 1"));
    assert_eq!(e.captured_at_unix_ms, 1_551_657_600_000); // 2019-03-04T00:00:00Z
    assert_eq!(e.templates.len(), if finger.is_some() { 2 } else { 1 });
    let r7 = gallery
        .subject_encounters(&huella_engine::SubjectId::new("R7").unwrap())
        .unwrap();
    assert_eq!(r7[0].captured_at_unix_ms, 1_577_872_800_000);
    drop(gallery);

    // A rerun retries only the failed rows: nothing is stored twice.
    let out = ingest(&g, &manifest, &errors);
    assert_eq!(out.status.code(), Some(1));
    let s = summary(&out.stdout);
    assert_eq!(s["already_ingested"], 2);
    assert_eq!(s["ingested"], 0);
    assert_stored_once(&g, &["R1".into(), "R7".into()]);
}

#[test]
fn bad_manifests_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    images(tmp.path());
    let g = tmp.path().join("g");
    init(&g, false);
    let gs = g.to_str().unwrap();
    let errors = tmp.path().join("errors.csv");
    let es = errors.to_str().unwrap();
    let run = |manifest: &Path| {
        fails(&[
            "ingest",
            "-g",
            gs,
            "--manifest",
            manifest.to_str().unwrap(),
            "--errors",
            es,
        ])
    };

    let err = run(&tmp.path().join("nowhere.csv"));
    assert!(err.contains("cannot open the manifest"), "{err}");

    let m = tmp.path().join("empty.csv");
    std::fs::write(&m, "").unwrap();
    assert!(run(&m).contains("needs a header"));

    let m = tmp.path().join("unknown.csv");
    std::fs::write(&m, "record_id,name,fase\nR1,A,a.jpg\n").unwrap();
    let err = run(&m);
    assert!(err.contains("unknown column \"fase\""), "{err}");

    let m = tmp.path().join("twice.csv");
    std::fs::write(&m, "record_id,face,face\nR1,a.jpg,a.jpg\n").unwrap();
    assert!(run(&m).contains("column \"face\" appears twice"));

    let m = tmp.path().join("noid.csv");
    std::fs::write(&m, "name,face\nA,a.jpg\n").unwrap();
    assert!(run(&m).contains("no record_id column"));

    // Fingers in the manifest, but a gallery made without them.
    let m = tmp.path().join("fingers.csv");
    std::fs::write(&m, "record_id,finger_1\nR1,f.tif\n").unwrap();
    let err = run(&m);
    assert!(err.contains("created without fingers"), "{err}");

    // ... unless they are ignored with --face-only.
    let m = tmp.path().join("face-and-fingers.csv");
    std::fs::write(&m, "record_id,face,finger_1\nR1,a.jpg,f.tif\n").unwrap();
    let out = ok(&[
        "ingest",
        "-g",
        gs,
        "--manifest",
        m.to_str().unwrap(),
        "--errors",
        es,
        "--face-only",
    ]);
    assert_eq!(summary(out.as_bytes())["ingested"], 1);

    // A gallery without the face model.
    let g2 = tmp.path().join("g2");
    ok(&["init", "-g", g2.to_str().unwrap(), "--model", MODEL]);
    let m = tmp.path().join("faces.csv");
    std::fs::write(&m, "record_id,face\nR1,a.jpg\n").unwrap();
    let err = fails(&[
        "ingest",
        "-g",
        g2.to_str().unwrap(),
        "--manifest",
        m.to_str().unwrap(),
        "--errors",
        es,
    ]);
    assert!(
        err.contains(&format!("has no face model {FACE_MODEL}")),
        "{err}"
    );

    // Only a header: nothing to do, success.
    let m = tmp.path().join("header.csv");
    std::fs::write(&m, format!("{HEADER}\n")).unwrap();
    let out = ok(&[
        "ingest",
        "-g",
        gs,
        "--manifest",
        m.to_str().unwrap(),
        "--errors",
        es,
    ]);
    let s = summary(out.as_bytes());
    assert_eq!(s["rows"], 0);
    assert_eq!(s["ingested"], 0);

    // A row too long for the reader stops the run with a clear message.
    let m = tmp.path().join("long.csv");
    let long = "x".repeat(200_000);
    std::fs::write(&m, format!("record_id,name,face\nR1,{long},a.jpg\n")).unwrap();
    let err = run(&m);
    assert!(err.contains("longer than"), "{err}");

    // A field over the cell limit is an error row.
    let m = tmp.path().join("field.csv");
    let big = "x".repeat(5000);
    std::fs::write(&m, format!("record_id,name,face\nR1,{big},a.jpg\n")).unwrap();
    run(&m);
    let rows = error_rows(&errors);
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].0.as_str(), rows[0].2.as_str()), ("R1", "name"));
}

fn face_manifest(dir: &Path, n: usize) -> (std::path::PathBuf, Vec<String>) {
    images(dir);
    let ids: Vec<String> = (1..=n).map(|i| format!("REC-{i:03}")).collect();
    let mut text = String::from("record_id,name,office,face\n");
    for id in &ids {
        text.push_str(&format!("{id},Person {id},Post 7,a.jpg\n"));
    }
    let manifest = dir.join("legacy.csv");
    std::fs::write(&manifest, text).unwrap();
    (manifest, ids)
}

#[test]
fn ingest_killed_with_sigkill_resumes_without_loss_or_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let (manifest, ids) = face_manifest(tmp.path(), 30);
    let g = tmp.path().join("g");
    init(&g, false);
    let errors = tmp.path().join("errors.csv");

    let mut child = std::process::Command::new(BIN)
        .args(["ingest", "-g", g.to_str().unwrap(), "--threads", "2"])
        .args(["--manifest", manifest.to_str().unwrap()])
        .args(["--errors", errors.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = 0;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    while seen < 5 {
        let line = lines.next().expect("ingest ended early").unwrap();
        assert!(line.contains("\"record_id\""), "{line}");
        seen += 1;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(lines);

    let stored = huella_engine::Gallery::open(&g).unwrap().stats().unwrap();
    assert!(
        (5..30).contains(&(stored.encounters as usize)),
        "killed after {} records",
        stored.encounters
    );
    let out = ingest(&g, &manifest, &errors);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out.stdout);
    assert_eq!(s["already_ingested"], stored.encounters);
    assert_eq!(
        s["ingested"].as_u64().unwrap() + stored.encounters,
        ids.len() as u64
    );
    assert_stored_once(&g, &ids);
    // The indexes caught up with the store: every record is searchable.
    let st: Value = serde_json::from_str(&ok(&["stats", "-g", g.to_str().unwrap()])).unwrap();
    assert_eq!(st["indexes"][0]["vectors"], 30);
}

#[test]
fn a_full_disk_stops_the_run_and_loses_nothing() {
    if !Path::new("/usr/bin/prlimit").is_file() {
        eprintln!("skipped: prlimit (util-linux) is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (manifest, ids) = face_manifest(tmp.path(), 30);
    let g = tmp.path().join("g");
    init(&g, false);
    let errors = tmp.path().join("errors.csv");
    // RLIMIT_FSIZE makes every write past 1.8 MB fail with EFBIG (SIGXFSZ ignored), as a
    // full disk would fail it with ENOSPC; it binds root too. The gallery file starts
    // near 3.7 MB with free pages, so the first few commits fit and then one fails.
    let script = format!(
        "trap '' XFSZ; exec prlimit --fsize=1800000 {BIN} ingest -g {} --manifest {} \
         --threads 2 --errors {}",
        g.display(),
        manifest.display(),
        errors.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the gallery cannot take more records"),
        "{stderr}"
    );
    let first = summary(&out.stdout)["ingested"].as_u64().unwrap();
    eprintln!("{first} records stored before the write failure");
    assert!((1..30).contains(&first), "{first}");

    let out = ingest(&g, &manifest, &errors);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out.stdout);
    assert_eq!(s["already_ingested"].as_u64().unwrap(), first);
    assert_stored_once(&g, &ids);
}

/// `huella args...` as an unprivileged user: directly when not root; as `nobody` through
/// `setpriv` when root (file permissions do not bind root); `None` when neither works.
fn unprivileged(args: &[&str]) -> Option<std::process::Output> {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    if me != 0 {
        return Some(huella(args));
    }
    if !Path::new("/usr/bin/setpriv").is_file() {
        return None;
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(args)
        .output()
        .unwrap();
    Some(out)
}

#[test]
fn unreadable_images_are_error_rows_and_a_rerun_finishes_the_rest() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    images(dir);
    // Each record has its own copy of the photo; two of them are readable by root only.
    let ids: Vec<String> = (1..=8).map(|i| format!("P-{i}")).collect();
    let mut text = String::from("record_id,name,face\n");
    for (i, id) in ids.iter().enumerate() {
        std::fs::copy(dir.join("a.jpg"), dir.join(format!("{i}.jpg"))).unwrap();
        text.push_str(&format!("{id},Person {i},{i}.jpg\n"));
    }
    let manifest = dir.join("legacy.csv");
    std::fs::write(&manifest, text).unwrap();
    let locked = |mode: u32| {
        for i in [2, 5] {
            let p = dir.join(format!("{i}.jpg"));
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    };
    locked(0o600);
    let g = dir.join("g");
    init(&g, false);
    for entry in std::fs::read_dir(&g).unwrap() {
        std::os::unix::fs::chown(entry.unwrap().path(), Some(65534), Some(65534)).ok();
    }
    std::os::unix::fs::chown(&g, Some(65534), Some(65534)).ok();
    let errors = dir.join("errors.csv");
    let args = [
        "ingest",
        "-g",
        g.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
        "--threads",
        "2",
        "--errors",
        errors.to_str().unwrap(),
    ];
    let Some(out) = unprivileged(&args) else {
        eprintln!("skipped: running as root without setpriv, permissions cannot be denied");
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(summary(&out.stdout)["ingested"], 6, "{stderr}");
    let rows = error_rows(&errors);
    let failed: Vec<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.2.as_str())).collect();
    assert_eq!(failed, [("P-3", "face"), ("P-6", "face")]);
    assert!(
        rows.iter().all(|r| r.3.contains("Permission denied")),
        "{rows:?}"
    );
    // Readable again: the rerun stores the two, and nothing twice.
    locked(0o644);
    let out = unprivileged(&args).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary(&out.stdout)["already_ingested"], 6);
    assert_stored_once(&g, &ids);
}
