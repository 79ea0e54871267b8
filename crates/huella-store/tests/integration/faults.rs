//! Damaged files: flipped bytes, truncation, records that do not decode.

use crate::common::{assert_template_is, encounter, new_gallery, subject};
use huella_core::{EncounterId, TemplateId};
use huella_store::{Gallery, StoreError, StoredTemplate, GALLERY_FILE};
use redb::{Database, TableDefinition};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

const TEMPLATES: TableDefinition<u64, &[u8]> = TableDefinition::new("templates");
const OWNERS: TableDefinition<u64, &[u8]> = TableDefinition::new("template_owners");
const ENCOUNTERS: TableDefinition<u64, &[u8]> = TableDefinition::new("encounters");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Overwrite one value behind the store's back.
fn poke(file: &Path, table: TableDefinition<u64, &[u8]>, key: u64, value: &[u8]) {
    let db = Database::open(file).expect("raw open");
    let txn = db.begin_write().expect("txn");
    txn.open_table(table)
        .expect("table")
        .insert(key, value)
        .expect("insert");
    txn.commit().expect("commit");
}

fn is_corrupt<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    match r {
        Err(StoreError::Corrupt { reason }) => {
            assert!(!reason.is_empty());
            true
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn records_that_do_not_decode_are_corrupt() {
    let (dir, g) = new_gallery();
    let a = g.add_encounter(encounter("S-A", 1, 2)).expect("add");
    let b = g.add_encounter(encounter("S-B", 2, 2)).expect("add");
    drop(g);
    let gdir = dir.path().join("g");
    let file = gdir.join(GALLERY_FILE);

    // A template payload that is garbage, one that is truncated, one with a trailing byte.
    let garbage = [0xFFu8; 9];
    poke(&file, TEMPLATES, a.templates[0].0, &garbage);
    let g = Gallery::open(&gdir).expect("open: payloads are not read at open");
    assert!(is_corrupt(g.template(a.templates[0])));
    assert!(is_corrupt(g.for_each_template(|_| Ok(()))));
    assert!(is_corrupt(g.verify()));
    // Other records stay readable.
    assert_template_is(
        &g.template(b.templates[1]).expect("read").expect("present"),
        2,
        1,
    );
    drop(g);

    let good = {
        let db = Database::open(&file).expect("raw open");
        let txn = db.begin_read().expect("txn");
        let t = txn.open_table(TEMPLATES).expect("table");
        let v = t
            .get(b.templates[0].0)
            .expect("get")
            .expect("present")
            .value()
            .to_vec();
        v
    };
    poke(&file, TEMPLATES, b.templates[0].0, &good[..good.len() / 2]);
    let mut longer = good.clone();
    longer.push(0);
    poke(&file, TEMPLATES, b.templates[1].0, &longer);
    let g = Gallery::open(&gdir).expect("open");
    assert!(is_corrupt(g.template(b.templates[0])));
    assert!(is_corrupt(g.template(b.templates[1])));
    drop(g);

    // An embedding that decodes as bytes but breaks the core invariants (NaN).
    let mut nan = good.clone();
    if let Some(pos) = nan.windows(4).position(|w| {
        f32::from_le_bytes([w[0], w[1], w[2], w[3]]).abs() > 0.001
            && f32::from_le_bytes([w[0], w[1], w[2], w[3]]).abs() < 1.0
    }) {
        nan[pos..pos + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    }
    poke(&file, TEMPLATES, b.templates[0].0, &nan);
    let g = Gallery::open(&gdir).expect("open");
    assert!(is_corrupt(g.template(b.templates[0])));
    drop(g);

    // Owners, encounters and counters.
    poke(&file, OWNERS, b.templates[0].0, &[1, 2, 3]);
    poke(&file, ENCOUNTERS, a.id.0, &[]);
    let g = Gallery::open(&gdir).expect("open");
    assert!(is_corrupt(g.templates_meta(&[b.templates[0]])));
    assert!(is_corrupt(g.encounter(a.id)));
    assert!(is_corrupt(g.subject_encounters(&subject("S-A"))));
    assert!(is_corrupt(g.delete_subject(&subject("S-A"))));
    assert!(is_corrupt(
        g.merge_subjects(&subject("S-A"), &subject("S-B"))
    ));
    assert_eq!(g.encounter(EncounterId(99)).expect("absent is fine"), None);
    drop(g);
    {
        let db = Database::open(&file).expect("raw open");
        let txn = db.begin_write().expect("txn");
        txn.open_table(META)
            .expect("meta")
            .insert("counters", [0xFFu8; 3].as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }
    assert!(is_corrupt(Gallery::open(&gdir)));
    {
        let db = Database::open(&file).expect("raw open");
        let txn = db.begin_write().expect("txn");
        txn.open_table(META)
            .expect("meta")
            .insert("format_version", [1u8].as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }
    assert!(is_corrupt(Gallery::open(&gdir)));
}

#[test]
fn a_file_that_is_not_a_gallery_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join(GALLERY_FILE),
        b"this is not a redb file at all",
    )
    .expect("write");
    let r = Gallery::open(dir.path());
    assert!(
        matches!(
            r,
            Err(StoreError::Corrupt { .. } | StoreError::Database(_) | StoreError::Io { .. })
        ),
        "{r:?}"
    );
    // A valid redb file without our tables (e.g. a crash during create).
    let other = dir.path().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    Database::create(other.join(GALLERY_FILE)).expect("empty redb");
    assert!(is_corrupt(Gallery::open(&other)));
}

/// What a full read of a (possibly damaged) gallery gave.
#[derive(Debug)]
enum Outcome {
    Intact,
    Error(String),
}

/// Open and read everything; never panics past this function, never takes over 20 s.
fn full_read(
    dir: PathBuf,
    expected: &BTreeMap<TemplateId, StoredTemplate>,
    label: &str,
) -> Outcome {
    let expected = expected.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = catch_unwind(AssertUnwindSafe(
            || -> Result<BTreeMap<TemplateId, StoredTemplate>, StoreError> {
                let g = Gallery::open(&dir)?;
                let mut seen = BTreeMap::new();
                g.for_each_template(|t| {
                    seen.insert(t.id, t);
                    Ok(())
                })?;
                let stats = g.stats()?;
                assert_eq!(stats.templates, seen.len() as u64, "stats and scan agree");
                g.verify()?;
                Ok(seen)
            },
        ));
        let _ = tx.send(result.map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        }));
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Err(_) => panic!("{label}: open or read hung"),
        Ok(Err(panic)) => panic!("{label}: panicked instead of returning an error: {panic}"),
        Ok(Ok(Err(e))) => Outcome::Error(format!("{e:?}")),
        Ok(Ok(Ok(seen))) => {
            // Whatever redb recovered must be real data: templates that decode, under
            // their own ids. redb may legitimately roll back to its previous commit.
            for (id, t) in &seen {
                if let Some(orig) = expected.get(id) {
                    assert_eq!(t, orig, "{label}: template {id} came back altered");
                } else {
                    panic!("{label}: template {id} appeared from nowhere");
                }
            }
            Outcome::Intact
        }
    }
}

fn damaged_copy(root: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(GALLERY_FILE), bytes).expect("write damaged copy");
    dir
}

fn build_sample() -> (
    tempfile::TempDir,
    Vec<u8>,
    BTreeMap<TemplateId, StoredTemplate>,
) {
    let (dir, g) = new_gallery();
    for seed in 0..12u64 {
        g.add_encounter(encounter(
            &format!("SUBJ-{:04}", seed % 4),
            seed,
            1 + (seed % 3) as usize,
        ))
        .expect("add");
    }
    g.merge_subjects(&subject("SUBJ-0003"), &subject("SUBJ-0001"))
        .expect("merge");
    let mut expected = BTreeMap::new();
    g.for_each_template(|t| {
        expected.insert(t.id, t);
        Ok(())
    })
    .expect("scan");
    drop(g);
    let bytes = std::fs::read(dir.path().join("g").join(GALLERY_FILE)).expect("read file");
    (dir, bytes, expected)
}

/// Positions worth damaging: the header and commit slots, pages holding records
/// (found by searching for known content) and a uniform sample of the rest.
fn sample_positions(bytes: &[u8]) -> Vec<usize> {
    let mut positions = vec![0, 3, 9, 16, 40, 64, 100, 200, 300, 400, 511];
    for needle in [
        b"SUBJ-0001".as_slice(),
        b"demo-face".as_slice(),
        b"post-3".as_slice(),
        b"cards/".as_slice(),
    ] {
        let hits: Vec<usize> = bytes
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle)
            .map(|(i, _)| i + 2)
            .collect();
        positions.extend(hits.iter().step_by(hits.len().div_ceil(3).max(1)));
    }
    let n = bytes.len();
    positions.extend((1..16).map(|k| k * n / 16));
    positions.retain(|&p| p < n);
    positions.sort_unstable();
    positions.dedup();
    positions
}

#[test]
fn flipped_bytes_give_data_or_typed_errors() {
    let (dir, bytes, expected) = build_sample();
    let positions = sample_positions(&bytes);
    assert!(
        positions.len() >= 25,
        "only {} positions sampled",
        positions.len()
    );
    let (mut intact, mut errors) = (0, 0);
    for pos in positions {
        let mut damaged = bytes.clone();
        damaged[pos] ^= 0xA5;
        let d = damaged_copy(dir.path(), &format!("flip-{pos}"), &damaged);
        match full_read(d, &expected, &format!("byte {pos} flipped")) {
            Outcome::Intact => intact += 1,
            Outcome::Error(e) => {
                errors += 1;
                eprintln!("byte {pos} flipped: {e}");
            }
        }
    }
    eprintln!("flipped bytes: {intact} intact or rolled back, {errors} typed errors");
    assert!(
        errors > 0,
        "no flip was detected: the sample missed every live page"
    );
}

#[test]
fn truncated_files_give_data_or_typed_errors() {
    let (dir, bytes, expected) = build_sample();
    let n = bytes.len();
    let mut lengths = vec![
        0,
        1,
        100,
        511,
        512,
        4096,
        n / 4,
        n / 2,
        3 * n / 4,
        n.saturating_sub(4096),
        n - 1,
    ];
    lengths.retain(|&l| l < n);
    lengths.sort_unstable();
    lengths.dedup();
    for len in lengths {
        let d = damaged_copy(dir.path(), &format!("trunc-{len}"), &bytes[..len]);
        let outcome = full_read(d, &expected, &format!("truncated to {len} of {n} bytes"));
        if len < 512 {
            assert!(
                matches!(outcome, Outcome::Error(_)),
                "truncated to {len}: {outcome:?}"
            );
        }
    }
}
