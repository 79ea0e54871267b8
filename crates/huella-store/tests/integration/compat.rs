//! Format compatibility: a gallery written by format version 1 must keep opening and
//! reading the same, whatever the code becomes (STYLE.md rule 10).
//!
//! `tests/fixtures/gallery-v1/gallery.redb.gz` was made by [`write_v1_fixture`]:
//! `HUELLA_STORE_WRITE_FIXTURE=1 cargo test -p huella-store --test integration
//! compat::write_v1_fixture -- --ignored`, then `gzip -9` (redb files are mostly
//! preallocated zeros: 2.7 MB raw, 8 KB compressed). Never regenerate it for an
//! existing version; add a new fixture for a new version.

use crate::common::{assert_template_is, encounter, subject};
use huella_core::{EncounterId, TemplateId};
use huella_store::{Change, Gallery, GALLERY_FILE};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gallery-v1")
}

fn fixture_settings() -> BTreeMap<String, String> {
    BTreeMap::from([("face.algorithm".to_string(), "demo-face@1".to_string())])
}

/// The content of the fixture: three subjects, a merge and a delete.
fn populate(g: &Gallery) {
    g.add_encounter(encounter("F-1", 1, 3)).expect("add");
    g.add_encounter(encounter("F-2", 2, 1)).expect("add");
    g.add_encounter(encounter("F-3", 3, 2)).expect("add");
    g.add_encounter(encounter("F-1", 4, 1)).expect("add");
    g.merge_subjects(&subject("F-3"), &subject("F-1"))
        .expect("merge");
    g.delete_subject(&subject("F-2")).expect("delete");
}

#[test]
#[ignore = "writes the committed fixture; run by hand for a new format version only"]
fn write_v1_fixture() {
    if std::env::var_os("HUELLA_STORE_WRITE_FIXTURE").is_none() {
        return;
    }
    let dir = fixture_dir();
    let _ = std::fs::remove_file(dir.join(GALLERY_FILE));
    let g = Gallery::create(&dir, fixture_settings()).expect("create");
    populate(&g);
    drop(g);
    let mut db = redb::Database::open(dir.join(GALLERY_FILE)).expect("raw open");
    while db.compact().expect("compact") {}
}

fn copy_fixture() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("g");
    std::fs::create_dir(&dir).expect("mkdir");
    let gz = std::fs::File::open(fixture_dir().join("gallery.redb.gz")).expect("fixture present");
    let mut out = std::fs::File::create(dir.join(GALLERY_FILE)).expect("create copy");
    std::io::copy(&mut flate2::read::GzDecoder::new(gz), &mut out).expect("decompress fixture");
    (tmp, dir)
}

#[test]
fn v1_fixture_opens_and_reads_the_same() {
    let (_tmp, dir) = copy_fixture();
    let g = Gallery::open(&dir).expect("open v1 fixture");
    let info = g.info().expect("info");
    assert_eq!(
        (info.format_version, info.settings),
        (1, fixture_settings())
    );
    let stats = g.verify().expect("consistent");
    assert_eq!(
        (
            stats.subjects,
            stats.encounters,
            stats.templates,
            stats.generation
        ),
        (1, 3, 6, 6)
    );
    assert_eq!(g.subjects().expect("subjects"), vec![subject("F-1")]);
    let history: Vec<EncounterId> = g
        .subject_encounters(&subject("F-1"))
        .expect("history")
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        history,
        vec![EncounterId(1), EncounterId(3), EncounterId(4)]
    );
    // Encounter 1 (seed 1): templates 1-3; encounter 3 (seed 3): 5-6; encounter 4 (seed 4): 7.
    for (tid, seed, i) in [
        (1, 1, 0),
        (2, 1, 1),
        (3, 1, 2),
        (5, 3, 0),
        (6, 3, 1),
        (7, 4, 0),
    ] {
        let t = g.template(TemplateId(tid)).expect("read").expect("present");
        assert_eq!(t.subject, subject("F-1"));
        assert_template_is(&t, seed, i);
    }
    assert_eq!(
        g.template(TemplateId(4)).expect("read"),
        None,
        "deleted with F-2"
    );
    let merges = g.merges().expect("audit");
    assert_eq!(merges.len(), 1);
    assert_eq!(merges[0].moved_encounters, vec![EncounterId(3)]);
    let log = g.changes_since(5).expect("log").expect("kept");
    assert_eq!(log, vec![Change::Removed(TemplateId(4))]);
    // And it accepts new writes with fresh ids.
    let e = g.add_encounter(encounter("F-9", 9, 1)).expect("add");
    assert_eq!((e.id, e.templates[0]), (EncounterId(5), TemplateId(8)));
    // ... and a model upgrade in place: replacing needs no new table or record layout.
    let upgraded = huella_core::Template::from_embedding(
        huella_core::Modality::Face,
        huella_core::AlgorithmId::new("demo-face", "2").expect("valid"),
        crate::common::embedding(77, 128),
    );
    let update = std::collections::BTreeMap::from([(
        "face.algorithm".to_string(),
        Some("demo-face@2".to_string()),
    )]);
    g.replace_templates(&[(TemplateId(1), upgraded.clone())], &update)
        .expect("replace in a v1 gallery");
    let t = g.template(TemplateId(1)).expect("read").expect("present");
    assert_eq!((t.template, t.encounter), (upgraded, EncounterId(1)));
    assert_eq!(g.info().expect("info").format_version, 1);
    g.verify().expect("consistent");
}
