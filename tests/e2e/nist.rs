//! `huella ingest --nist DIR`: ANSI/NIST-ITL transaction files into a gallery, with
//! truncated, malformed, empty and oversized files planted among the good ones.

use crate::*;
use huella_engine::finger::{FingerTemplate, Minutia, MinutiaKind, MinutiaeRecord};
use huella_engine::{FingerPosition, Gallery, SubjectId};
use huella_nist::{
    Biographic, FaceCompression, FingerCompression, Record, Transaction, Type4Record,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

const FACE_MODEL: &str = "face:dlib-resnet@1+mirror95:128";

fn face_fixture() -> Vec<u8> {
    let path = format!(
        "{}/../huella-face/tests/fixtures/astronaut_face.jpg",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

/// `../shared/datasets`, or `None` (with a note) when it is absent.
fn shared() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    let ok = dir.join("fvc2002/DB1_B/101_1.tif").is_file()
        && dir.join("lfw/AJ_Cook/AJ_Cook_0001.jpg").is_file();
    if !ok {
        eprintln!("skipped: {} (FVC2002 and LFW) is absent", dir.display());
    }
    ok.then_some(dir)
}

/// A synthetic finger: 40 minutiae spread over a 300x400 image.
fn synthetic_minutiae(seed: u32, position: FingerPosition) -> FingerTemplate {
    let minutiae = (0..40u32)
        .map(|i| {
            let k = i
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed.wrapping_mul(40_503));
            Minutia {
                x: (20 + k % 260) as u16,
                y: (20 + (k / 260) % 360) as u16,
                angle: ((k % 180) as f32 * 2.0).to_radians(),
                kind: if k % 2 == 0 {
                    MinutiaKind::Ending
                } else {
                    MinutiaKind::Bifurcation
                },
                quality: 60,
            }
        })
        .collect();
    FingerTemplate {
        width: 300,
        height: 400,
        resolution_x: 197,
        resolution_y: 197,
        position,
        quality: 70,
        minutiae,
    }
}

fn transaction(tcn: Option<&str>, person: &Biographic) -> Transaction {
    let mut t = Transaction::new();
    t.header = t.header.with_text(5, "20190304").with_text(8, "POST-7");
    if let Some(tcn) = tcn {
        t.header = t.header.with_text(9, tcn);
    }
    t.records.push(Record::biographic(0, person));
    t
}

fn person(name: &str) -> Biographic {
    Biographic {
        name: Some(name.into()),
        date_of_birth: Some("1980-01-02".into()),
        nationality: Some("XX".into()),
        document_number: Some("PP-X123".into()),
    }
}

fn init(g: &Path) {
    ok(&[
        "init",
        "--gallery",
        g.to_str().unwrap(),
        "--model",
        FACE_MODEL,
        "--fingers",
    ]);
}

fn ingest(g: &Path, dir: &Path, errors: &Path) -> std::process::Output {
    huella(&[
        "ingest",
        "--gallery",
        g.to_str().unwrap(),
        "--nist",
        dir.to_str().unwrap(),
        "--threads",
        "2",
        "--errors",
        errors.to_str().unwrap(),
        "--allow-low-quality",
    ])
}

/// The output's record lines and its summary.
fn output(stdout: &[u8]) -> (Vec<Value>, Value) {
    let mut lines: Vec<Value> = String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = lines.pop().expect("a summary line")["summary"].clone();
    (lines, summary)
}

/// The errors file as sorted (record_id, file, field) with the reasons.
fn error_rows(path: &Path) -> Vec<(String, String, String, String)> {
    let mut r = csv::Reader::from_path(path).unwrap();
    assert_eq!(
        r.headers().unwrap(),
        vec!["record_id", "file", "field", "reason"]
    );
    let mut rows: Vec<_> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[0].into(), rec[1].into(), rec[2].into(), rec[3].into())
        })
        .collect();
    rows.sort();
    rows
}

/// Plants the bad files every test shares: truncated, a LEN past the end, garbage,
/// empty, larger than a transaction may be; and a file that is not a transaction.
fn plant_bad_files(dir: &Path, good: &[u8]) {
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    write("truncated.an2", &good[..good.len() / 2]);
    let text = String::from_utf8_lossy(&good[..20]).to_string();
    let len_end = text.find('\x1d').unwrap();
    let mut wrong_len = good.to_vec();
    // The Type-1 LEN, one larger: the record no longer ends with FS where LEN says.
    let len: usize = text[6..len_end].parse().unwrap();
    let bigger = (len + 1).to_string();
    assert_eq!(bigger.len(), len_end - 6);
    wrong_len[6..len_end].copy_from_slice(bigger.as_bytes());
    write("wrong-len.an2", &wrong_len);
    let garbage: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    write("garbage.eft", &garbage);
    write("empty.nist", b"");
    let huge = std::fs::File::create(dir.join("huge.an2")).unwrap();
    huge.set_len(huella_nist::MAX_TRANSACTION_BYTES as u64 + 1)
        .unwrap();
    write("README.txt", b"not a transaction");
}

fn assert_stored_once(g: &Path, ids: &[&str]) {
    let gallery = Gallery::open(g).unwrap();
    for id in ids {
        let encounters = gallery
            .subject_encounters(&SubjectId::new(*id).unwrap())
            .unwrap();
        assert_eq!(encounters.len(), 1, "record {id}");
        assert_eq!(encounters[0].biographic["record_id"], *id);
    }
    let stats = gallery.stats().unwrap();
    assert_eq!(stats.encounters as usize, ids.len());
}

/// Runs without `../shared`: faces from the repository's fixture (JPEG and raw RGB),
/// fingers as Type-9 minutiae, a slap that is skipped, and bad files.
#[test]
fn nist_folder_keeps_good_transactions_and_reports_each_bad_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nist");
    std::fs::create_dir(&dir).unwrap();
    let jpeg = face_fixture();

    // 1: face (JPEG) + a finger as minutiae, TCN given.
    let mut t1 = transaction(Some("TCN-1"), &person("DOE,JANE"));
    t1.records.push(Record::face(
        1,
        FaceCompression::Jpeg,
        250,
        250,
        jpeg.clone(),
    ));
    t1.records.push(Record::minutiae(
        2,
        &synthetic_minutiae(1, FingerPosition::RightIndex),
    ));
    let good1 = t1.encode().unwrap();
    std::fs::write(dir.join("a-good.an2"), &good1).unwrap();

    // 2: no TCN (the file stem is the id); minutiae of two fingers and a slap image.
    let mut t2 = transaction(None, &person("ROE,RICHARD"));
    t2.records.push(Record::minutiae(
        1,
        &synthetic_minutiae(2, FingerPosition::RightThumb),
    ));
    t2.records.push(Record::minutiae(
        2,
        &synthetic_minutiae(3, FingerPosition::LeftIndex),
    ));
    // ... and a WSQ image in a Type-4 (GCA 1).
    let wsq = std::fs::read(format!(
        "{}/../huella-imaging/tests/fixtures/ridges.wsq",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let ridges = huella_engine::decode(&wsq, &huella_engine::Limits::default()).unwrap();
    t2.records.push(Record::Type4(Type4Record {
        idc: 3,
        impression: 1,
        positions: [3, 255, 255, 255, 255, 255],
        resolution: 0,
        width: ridges.width() as u16,
        height: ridges.height() as u16,
        compression: 1,
        data: wsq.clone(),
    }));
    let mut slap = t2.clone();
    slap.records.push(Record::finger_image(
        4,
        FingerPosition::Unknown,
        FingerCompression::Png,
        10,
        10,
        Some(500),
        vec![1, 2, 3],
    ));
    let Record::Tagged(r) = slap.records.last_mut().unwrap() else {
        panic!()
    };
    r.fields.iter_mut().find(|f| f.number == 13).unwrap().value =
        huella_nist::FieldValue::Text("13".into());
    std::fs::write(dir.join("b-good.EFT"), slap.encode().unwrap()).unwrap();

    // 3: the face as raw RGB pixels (CGA NONE).
    let img = huella_engine::decode(&jpeg, &huella_engine::Limits::default()).unwrap();
    let mut t3 = transaction(Some("TCN-3"), &person("POE,EDGAR"));
    t3.records.push(Record::face(
        1,
        FaceCompression::None,
        img.width(),
        img.height(),
        img.as_raw().to_vec(),
    ));
    // ... and a WSQ finger in a Type-14 that states no resolution.
    t3.records.push(Record::finger_image(
        2,
        FingerPosition::RightMiddle,
        FingerCompression::Wsq,
        ridges.width(),
        ridges.height(),
        None,
        wsq,
    ));
    std::fs::write(dir.join("c-good.nist"), t3.encode().unwrap()).unwrap();

    // Bad: the same TCN again, minutiae outside their image, a bad date of birth.
    std::fs::write(dir.join("d-dup.an2"), &good1).unwrap();
    let mut outside = synthetic_minutiae(4, FingerPosition::LeftThumb);
    outside.width = 100;
    let mut t5 = transaction(Some("TCN-5"), &person("DOE,JOHN"));
    t5.records.push(Record::minutiae(1, &outside));
    std::fs::write(dir.join("e-outside.an2"), t5.encode().unwrap()).unwrap();
    let mut t6 = transaction(
        Some("TCN-6"),
        &Biographic {
            date_of_birth: Some("1980-13-01".into()),
            ..person("DOE,JIM")
        },
    );
    t6.records.push(Record::minutiae(
        1,
        &synthetic_minutiae(5, FingerPosition::LeftThumb),
    ));
    std::fs::write(dir.join("f-dob.int"), t6.encode().unwrap()).unwrap();
    plant_bad_files(&dir, &good1);

    let g = tmp.path().join("g");
    init(&g);
    let errors = tmp.path().join("errors.csv");
    let out = ingest(&g, &dir, &errors);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("8 of the transaction files failed"),
        "{stderr}"
    );
    let (lines, s) = output(&out.stdout);
    assert_eq!(
        (
            s["rows"].as_u64(),
            s["ingested"].as_u64(),
            s["failed"].as_u64()
        ),
        (Some(11), Some(3), Some(8))
    );
    assert_eq!(s["files_ignored"], 1);

    let rows = error_rows(&errors);
    let cells: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(id, file, field, _)| (id.as_str(), file.as_str(), field.as_str()))
        .collect();
    assert_eq!(
        cells,
        vec![
            ("TCN-1", "d-dup.an2", "1.009"),
            ("TCN-5", "e-outside.an2", "finger"),
            ("TCN-6", "f-dob.int", "Type-2"),
            ("empty", "empty.nist", ""),
            ("garbage", "garbage.eft", ""),
            ("huge", "huge.an2", ""),
            ("truncated", "truncated.an2", ""),
            ("wrong-len", "wrong-len.an2", ""),
        ]
    );
    let reason = |file: &str| &rows.iter().find(|r| r.1 == file).unwrap().3;
    for (file, expected) in [
        ("d-dup.an2", "duplicate record_id: first in a-good.an2"),
        ("e-outside.an2", "outside the 100x400 image"),
        ("f-dob.int", "2.022"),
        ("truncated.an2", "truncated"),
        ("huge.an2", "more than the"),
        ("empty.nist", "truncated"),
        ("garbage.eft", "LEN"),
        ("wrong-len.an2", "FS"),
    ] {
        assert!(reason(file).contains(expected), "{file}: {}", reason(file));
    }
    // Never biographic values in the errors file.
    let text = std::fs::read_to_string(&errors).unwrap();
    assert!(!text.contains("DOE") && !text.contains("1980"), "{text}");

    // The skipped slap is listed on b-good's line.
    let b = lines.iter().find(|l| l["record_id"] == "b-good").unwrap();
    assert_eq!(b["file"], "b-good.EFT");
    let skipped = b["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].as_str().unwrap().contains("slap"), "{skipped:?}");

    // What was stored.
    let gallery = Gallery::open(&g).unwrap();
    let e = &gallery
        .subject_encounters(&SubjectId::new("TCN-1").unwrap())
        .unwrap()[0];
    assert_eq!(e.biographic["name"], "DOE,JANE");
    assert_eq!(e.biographic["date_of_birth"], "1980-01-02");
    assert_eq!(e.biographic["nationality"], "XX");
    assert_eq!(e.biographic["document_number"], "PP-X123");
    assert_eq!(e.biographic["office"], "POST-7");
    assert_eq!(e.biographic["nist_file"], "a-good.an2");
    assert_eq!(e.location.as_deref(), Some("POST-7"));
    assert_eq!(e.captured_at_unix_ms, 1_551_657_600_000); // 2019-03-04T00:00:00Z
    assert_eq!(e.templates.len(), 2);
    let templates = |ids: &[huella_engine::TemplateId]| -> Vec<huella_engine::StoredTemplate> {
        ids.iter()
            .map(|id| gallery.template(*id).unwrap().unwrap())
            .collect()
    };
    let stored = templates(&e.templates);
    let face = stored
        .iter()
        .find(|t| !huella_engine::is_finger_template(&t.template))
        .unwrap();
    assert!(face.source.as_ref().unwrap().path.ends_with("a-good.an2#2"));
    let finger = stored
        .iter()
        .find(|t| huella_engine::is_finger_template(&t.template))
        .unwrap();
    let minutiae = huella_engine::finger_minutiae(&finger.template).unwrap();
    let sent = synthetic_minutiae(1, FingerPosition::RightIndex);
    assert_eq!(minutiae.position, FingerPosition::RightIndex);
    assert_eq!(minutiae.minutiae.len(), sent.minutiae.len());
    assert_eq!(
        (minutiae.minutiae[0].x, minutiae.minutiae[0].y),
        (sent.minutiae[0].x, sent.minutiae[0].y)
    );
    let b = &gallery
        .subject_encounters(&SubjectId::new("b-good").unwrap())
        .unwrap()[0];
    assert_eq!(b.templates.len(), 3);
    let c = &gallery
        .subject_encounters(&SubjectId::new("TCN-3").unwrap())
        .unwrap()[0];
    let c = templates(&c.templates);
    assert_eq!(c.len(), 2);
    // The raw face gives the template the JPEG gave (the same pixels).
    let (fa, fc) = (
        &face.template,
        &c.iter()
            .find(|t| !huella_engine::is_finger_template(&t.template))
            .unwrap()
            .template,
    );
    let cos = fa
        .embedding()
        .unwrap()
        .cosine(fc.embedding().unwrap())
        .unwrap();
    assert!(cos > 0.99, "{cos}");
    drop(gallery);

    // A rerun retries only the failed files: nothing is stored twice.
    let out = ingest(&g, &dir, &errors);
    assert_eq!(out.status.code(), Some(1));
    let (_, s) = output(&out.stdout);
    assert_eq!(
        (s["already_ingested"].as_u64(), s["ingested"].as_u64()),
        (Some(3), Some(0))
    );
    assert_stored_once(&g, &["TCN-1", "b-good", "TCN-3"]);
}

/// `--nist` and `--manifest` exclude each other, and one of them is required.
#[test]
fn nist_and_manifest_are_exclusive() {
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("g");
    let gs = g.to_str().unwrap();
    let t = tmp.path().to_str().unwrap();
    let out = huella(&["ingest", "-g", gs, "--nist", t, "--manifest", "m.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
    let out = huella(&["ingest", "-g", gs]);
    assert_eq!(out.status.code(), Some(2));
    init(&g);
    let err = fails(&["ingest", "-g", gs, "--nist", &format!("{t}/nowhere")]);
    assert!(err.contains("cannot list the folder"), "{err}");
}

/// Real data: LFW faces as JPEG in Type-10; FVC2002 fingers as PNG in Type-14, as raw
/// pixels in Type-4, and their vendor ISO templates as Type-9; each enrolled finger is
/// then found by another impression of it.
#[test]
fn nist_transactions_of_real_faces_and_fingers() {
    let Some(data) = shared() else { return };
    let fvc = data.join("fvc2002/DB1_B");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nist");
    std::fs::create_dir(&dir).unwrap();
    let limits = huella_engine::Limits::default();
    let people = ["AJ_Cook", "Aaron_Eckhart", "Aaron_Peirsol"];
    let mut ids = Vec::new();
    for (k, name) in people.iter().enumerate() {
        let finger = 101 + k;
        let jpeg = std::fs::read(data.join(format!("lfw/{name}/{name}_0001.jpg"))).unwrap();
        let tif = std::fs::read(fvc.join(format!("{finger}_1.tif"))).unwrap();
        let img = huella_engine::decode(&tif, &limits).unwrap();
        let (w, h) = (img.width(), img.height());
        let id = format!("TCN-{finger}");
        let mut t = transaction(Some(&id), &person(&name.replace('_', ",").to_uppercase()));
        t.header = t.header.with_text(12, "19.69");
        t.records
            .push(Record::face(1, FaceCompression::Jpeg, 250, 250, jpeg));
        match k {
            // Right index as PNG in a Type-14.
            0 => t.records.push(Record::finger_image(
                2,
                FingerPosition::RightIndex,
                FingerCompression::Png,
                w,
                h,
                Some(500),
                huella_engine::encode_png(&img).unwrap(),
            )),
            // Right index as raw grey pixels in a Type-4 at the Type-1's NTR.
            1 => t.records.push(Record::Type4(Type4Record {
                idc: 2,
                impression: 1,
                positions: [2, 255, 255, 255, 255, 255],
                resolution: 0,
                width: w as u16,
                height: h as u16,
                compression: 0,
                data: img.to_grey().as_raw().to_vec(),
            })),
            // Right index as the vendor's minutiae in a Type-9.
            _ => {
                let iso = std::fs::read(fvc.join(format!("{finger}_1.iso"))).unwrap();
                let template = MinutiaeRecord::decode(&iso)
                    .unwrap()
                    .to_template(0)
                    .unwrap();
                let template = FingerTemplate {
                    position: FingerPosition::RightIndex,
                    ..template
                };
                t.records.push(Record::minutiae(2, &template));
            }
        }
        let bytes = t.encode().unwrap();
        if k == 0 {
            plant_bad_files(&dir, &bytes);
        }
        std::fs::write(dir.join(format!("{id}.an2")), bytes).unwrap();
        ids.push(id);
    }
    let g = tmp.path().join("g");
    init(&g);
    let errors = tmp.path().join("errors.csv");
    let out = ingest(&g, &dir, &errors);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let (_, s) = output(&out.stdout);
    assert_eq!(
        (s["ingested"].as_u64(), s["failed"].as_u64()),
        (Some(3), Some(5)),
        "{s}"
    );
    assert_eq!(error_rows(&errors).len(), 5);

    let gallery = Gallery::open(&g).unwrap();
    for id in &ids {
        let e = &gallery
            .subject_encounters(&SubjectId::new(id.as_str()).unwrap())
            .unwrap()[0];
        assert_eq!(e.templates.len(), 2, "{id}: a face and a finger");
        assert_eq!(e.biographic["date_of_birth"], "1980-01-02");
    }
    drop(gallery);
    // Each enrolled finger is the top candidate for its second impression.
    let gs = g.to_str().unwrap();
    for (k, id) in ids.iter().enumerate() {
        // The Type-9 finger holds the vendor's minutiae: probe with the vendor's too.
        let probe = fvc.join(format!(
            "{}_2.{}",
            101 + k,
            if k == 2 { "iso" } else { "tif" }
        ));
        let found: Value = serde_json::from_str(&ok(&[
            "identify",
            "-g",
            gs,
            "--finger",
            &format!("2={}", probe.display()),
        ]))
        .unwrap();
        assert_eq!(found["candidates"][0]["subject"], id.as_str(), "{found}");
    }
    let out = ingest(&g, &dir, &errors);
    let (_, s) = output(&out.stdout);
    assert_eq!(s["already_ingested"], 3);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_stored_once(&g, &refs);
}

#[test]
fn rescore_re_extracts_templates_from_their_transaction_records() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nist");
    std::fs::create_dir(&dir).unwrap();
    // A JPEG face (Type-10) and a WSQ finger (Type-14, 500 ppi) in one transaction.
    let wsq = std::fs::read(format!(
        "{}/../huella-imaging/tests/fixtures/ridges.wsq",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let ridges = huella_engine::decode(&wsq, &huella_engine::Limits::default()).unwrap();
    let mut t = transaction(Some("TCN-R"), &person("DOE,JANE"));
    t.records.push(Record::face(
        1,
        FaceCompression::Jpeg,
        250,
        250,
        face_fixture(),
    ));
    t.records.push(Record::finger_image(
        2,
        FingerPosition::RightIndex,
        FingerCompression::Wsq,
        ridges.width(),
        ridges.height(),
        Some(500),
        wsq,
    ));
    std::fs::write(dir.join("r.an2"), t.encode().unwrap()).unwrap();
    // Enrolled with the one-crop model, then upgraded (and the finger redone, --force).
    let g = tmp.path().join("g");
    let gs = g.to_str().unwrap();
    ok(&[
        "init",
        "-g",
        gs,
        "--model",
        "face:dlib-resnet@1:128",
        "--fingers",
    ]);
    let errors = tmp.path().join("errors.csv");
    let es = errors.to_str().unwrap();
    let ds = dir.to_str().unwrap();
    ok(&[
        "ingest",
        "-g",
        gs,
        "--nist",
        ds,
        "--errors",
        es,
        "--no-flip",
        "--allow-low-quality",
    ]);
    let before = Gallery::open(&g)
        .unwrap()
        .subject_encounters(&SubjectId::new("TCN-R").unwrap());
    let before = before.unwrap()[0].templates.clone();
    let out = ok(&["rescore", "-g", gs, "--errors", es, "--force"]);
    let summary: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["summary"]["failed"], 0, "{out}");
    assert_eq!(summary["summary"]["re_extracted"], 2, "{out}");
    let gallery = Gallery::open(&g).unwrap();
    let face = gallery.template(before[0]).unwrap().unwrap();
    assert_eq!(
        face.template.algorithm().to_string(),
        "dlib-resnet@1+mirror95"
    );
    assert!(face.source.unwrap().path.contains("r.an2#"));
    drop(gallery);
    // A transaction changed since enrolment is refused, the template kept.
    let mut changed = t.clone();
    if let Record::Tagged(r) = &mut changed.records[1] {
        let data = r.fields.iter_mut().find(|f| f.number == 999).unwrap();
        if let huella_nist::FieldValue::Binary(bytes) = &mut data.value {
            bytes.push(0);
        }
    }
    std::fs::write(dir.join("r.an2"), changed.encode().unwrap()).unwrap();
    let out = huella(&["rescore", "-g", gs, "--errors", es, "--force"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{said}");
    let reasons = std::fs::read_to_string(&errors).unwrap();
    assert!(
        reasons.contains("changed since enrolment"),
        "{reasons} {said}"
    );
}
