//! Lifecycle, reads, validation, delete, merge and the change log.

use crate::common::{assert_template_is, encounter, new_gallery, settings, subject};
use huella_core::{EncounterId, Modality, TemplateId};
use huella_store::{Change, Gallery, StoreError, FORMAT_VERSION, GALLERY_FILE};
use redb::{Database, TableDefinition};
use std::collections::BTreeMap;

#[test]
fn create_open_and_info() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested/gallery");
    let g = Gallery::create(&path, settings()).expect("create");
    assert!(path.join(GALLERY_FILE).is_file());
    let info = g.info().expect("info");
    assert_eq!(info.format_version, FORMAT_VERSION);
    assert_eq!(info.settings, settings());
    assert!(info.created_at_unix_ms > 1_600_000_000_000);
    assert_eq!(g.generation().expect("generation"), 0);
    assert!(matches!(
        Gallery::open(&path),
        Err(StoreError::AlreadyOpen { .. })
    ));
    drop(g);

    assert!(matches!(
        Gallery::create(&path, BTreeMap::new()),
        Err(StoreError::AlreadyExists { path: p }) if p == path.join(GALLERY_FILE)
    ));
    let g = Gallery::open(&path).expect("open");
    assert_eq!(
        g.info().expect("info"),
        info,
        "create over existing changed nothing"
    );

    assert!(matches!(
        Gallery::open(&dir.path().join("missing")),
        Err(StoreError::NotFound { .. })
    ));
    // An existing directory without a gallery file is not a gallery either.
    assert!(matches!(
        Gallery::open(dir.path()),
        Err(StoreError::NotFound { .. })
    ));
    // Bad settings are rejected before anything is created.
    let bad = BTreeMap::from([(String::new(), "x".to_string())]);
    assert!(matches!(
        Gallery::create(&dir.path().join("bad"), bad),
        Err(StoreError::BadInput { .. })
    ));
    assert!(!dir.path().join("bad").join(GALLERY_FILE).exists());
}

#[test]
fn enrol_and_read_back() {
    let (_dir, g) = new_gallery();
    let a = g.add_encounter(encounter("S-A", 2, 3)).expect("add");
    let b = g.add_encounter(encounter("S-B", 5, 1)).expect("add");
    let a0 = g.add_encounter(encounter("S-A", 1, 2)).expect("add"); // captured earlier
    assert_eq!(
        (a.id, b.id, a0.id),
        (EncounterId(1), EncounterId(2), EncounterId(3))
    );
    assert_eq!(
        a.templates,
        vec![TemplateId(1), TemplateId(2), TemplateId(3)]
    );
    assert_eq!(b.templates, vec![TemplateId(4)]);
    assert_eq!(a0.templates, vec![TemplateId(5), TemplateId(6)]);

    let e = g.encounter(a.id).expect("read").expect("present");
    assert_eq!(e, a);
    assert_eq!(e.biographic["name"], "Person Ñandú 2");
    assert_eq!(g.encounter(EncounterId(99)).expect("read"), None);

    for (i, tid) in a.templates.iter().enumerate() {
        let t = g.template(*tid).expect("read").expect("present");
        assert_eq!((t.encounter, &t.subject), (a.id, &subject("S-A")));
        assert_template_is(&t, 2, i);
    }
    assert_eq!(g.template(TemplateId(0)).expect("read"), None);

    let owners = g
        .templates_meta(&[TemplateId(4), TemplateId(42), TemplateId(2)])
        .expect("meta");
    let o4 = owners[0].as_ref().expect("owner of 4");
    assert_eq!(
        (&o4.subject, o4.encounter, o4.modality),
        (&subject("S-B"), b.id, Modality::Face)
    );
    assert_eq!(owners[1], None);
    assert_eq!(
        owners[2].as_ref().map(|o| o.modality.to_string()),
        Some("finger:2".into())
    );

    let history = g.subject_encounters(&subject("S-A")).expect("history");
    assert_eq!(
        history.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![a0.id, a.id],
        "oldest first"
    );
    assert!(g
        .subject_encounters(&subject("nobody"))
        .expect("history")
        .is_empty());
    assert!(g.subject_exists(&subject("S-B")).expect("exists"));
    assert!(!g.subject_exists(&subject("S-C")).expect("exists"));
    assert_eq!(
        g.subjects().expect("subjects"),
        vec![subject("S-A"), subject("S-B")]
    );

    let stats = g.verify().expect("consistent");
    assert_eq!(
        (stats.subjects, stats.encounters, stats.templates),
        (2, 3, 6)
    );
    assert_eq!(stats.generation, 3);
    assert!(stats.file_size_bytes > 0);
    // Templates 0 and 1 of each encounter are face and finger:<i+1>, template 2 is finger:2.
    let expected: BTreeMap<String, u64> =
        [("face".to_string(), 3), ("finger:2".to_string(), 3)].into();
    assert_eq!(stats.templates_per_modality, expected);
    let json = serde_json::to_value(&stats).expect("serialisable");
    assert_eq!(json["templates_per_modality"]["face"], 3);

    let mut seen = Vec::new();
    g.for_each_template(|t| {
        seen.push(t.id);
        Ok(())
    })
    .expect("scan");
    assert_eq!(seen, (1..=6).map(TemplateId).collect::<Vec<_>>());
    // An error from the callback stops the scan and comes back unchanged.
    let mut calls = 0;
    let r = g.for_each_template(|_| {
        calls += 1;
        Err(StoreError::UnknownEncounter(EncounterId(7)))
    });
    assert!(matches!(
        r,
        Err(StoreError::UnknownEncounter(EncounterId(7)))
    ));
    assert_eq!(calls, 1);

    // Everything survives a reopen.
    let dir = g.path().parent().expect("dir").to_path_buf();
    drop(g);
    let g = Gallery::open(&dir).expect("reopen");
    assert_eq!(g.encounter(a.id).expect("read"), Some(a));
    let reopened = g.verify().expect("consistent");
    assert_eq!(
        (reopened.templates, reopened.generation),
        (stats.templates, stats.generation)
    );
    assert_eq!(
        reopened.templates_per_modality,
        stats.templates_per_modality
    );
}

#[test]
fn invalid_encounters_write_nothing() {
    let (_dir, g) = new_gallery();
    let mut e = encounter("S1", 1, 1);
    e.templates.clear();
    assert!(matches!(
        g.add_encounter(e),
        Err(StoreError::BadInput {
            field: "templates",
            ..
        })
    ));
    let mut e = encounter("S1", 1, 65);
    assert!(matches!(
        g.add_encounter(e.clone()),
        Err(StoreError::BadInput { .. })
    ));
    e.templates.truncate(64);
    e.biographic.insert("k".repeat(65), "v".into());
    assert!(matches!(
        g.add_encounter(e),
        Err(StoreError::BadInput { .. })
    ));
    let mut e = encounter("S1", 1, 1);
    if let Some(s) = e.templates[0].source.as_mut() {
        s.sha256 = s.sha256.to_uppercase().replace('0', "A");
    }
    assert!(matches!(
        g.add_encounter(e),
        Err(StoreError::BadInput {
            field: "source.sha256",
            ..
        })
    ));
    assert_eq!(g.generation().expect("generation"), 0);
    assert_eq!(g.stats().expect("stats").encounters, 0);
    // 64 templates is fine.
    let e = g
        .add_encounter(encounter("S1", 1, 64))
        .expect("64 templates");
    assert_eq!(e.templates.len(), 64);
}

#[test]
fn delete_removes_everything_and_ids_are_never_reused() {
    let (dir, g) = new_gallery();
    let a1 = g.add_encounter(encounter("S-A", 1, 2)).expect("add");
    let b = g.add_encounter(encounter("S-B", 2, 1)).expect("add");
    let a2 = g.add_encounter(encounter("S-A", 3, 3)).expect("add");
    let removed = g.delete_subject(&subject("S-A")).expect("delete");
    let mut expected: Vec<TemplateId> = a1.templates.iter().chain(&a2.templates).copied().collect();
    expected.sort();
    assert_eq!(removed, expected);
    assert!(!g.subject_exists(&subject("S-A")).expect("exists"));
    assert_eq!(g.encounter(a1.id).expect("read"), None);
    assert_eq!(g.encounter(a2.id).expect("read"), None);
    for t in &removed {
        assert_eq!(g.template(*t).expect("read"), None);
    }
    assert_eq!(
        g.templates_meta(&removed).expect("meta"),
        vec![None; removed.len()]
    );
    assert_eq!(g.encounter(b.id).expect("read"), Some(b.clone()));
    let stats = g.verify().expect("consistent");
    assert_eq!(
        (stats.subjects, stats.encounters, stats.templates),
        (1, 1, 1)
    );
    assert_eq!(
        stats.templates_per_modality,
        BTreeMap::from([("face".to_string(), 1)])
    );

    assert!(matches!(
        g.delete_subject(&subject("S-A")),
        Err(StoreError::UnknownSubject(s)) if s == subject("S-A")
    ));
    assert_eq!(
        g.generation().expect("generation"),
        4,
        "a failed delete commits nothing"
    );

    // Deleting the newest encounter and reopening must not hand its ids out again.
    let b2 = g.add_encounter(encounter("S-B", 4, 2)).expect("add");
    g.delete_subject(&subject("S-B")).expect("delete");
    drop(g);
    let g = Gallery::open(&dir.path().join("g")).expect("reopen");
    let s = g.stats().expect("stats");
    assert_eq!((s.subjects, s.templates), (0, 0));
    assert!(s.templates_per_modality.is_empty());
    let c = g.add_encounter(encounter("S-A", 5, 1)).expect("add");
    assert_eq!(c.id, EncounterId(b2.id.0 + 1));
    assert_eq!(c.templates, vec![TemplateId(b2.templates[1].0 + 1)]);

    let log = g.changes_since(0).expect("log").expect("not pruned");
    let added = log.iter().filter(|c| matches!(c, Change::Added(_))).count();
    let gone = log
        .iter()
        .filter(|c| matches!(c, Change::Removed(_)))
        .count();
    assert_eq!((added, gone), (2 + 1 + 3 + 2 + 1, 5 + 1 + 2));
    assert_eq!(log.last(), Some(&Change::Added(c.templates[0])));
    g.verify().expect("consistent");
}

#[test]
fn merge_moves_histories_and_is_audited() {
    let (_dir, g) = new_gallery();
    let a1 = g.add_encounter(encounter("S-A", 10, 2)).expect("add");
    let b1 = g.add_encounter(encounter("S-B", 5, 1)).expect("add");
    let a2 = g.add_encounter(encounter("S-A", 1, 1)).expect("add");
    let gen = g.generation().expect("generation");

    assert!(matches!(
        g.merge_subjects(&subject("S-A"), &subject("S-A")),
        Err(StoreError::BadInput { .. })
    ));
    assert!(matches!(
        g.merge_subjects(&subject("S-X"), &subject("S-A")),
        Err(StoreError::UnknownSubject(s)) if s == subject("S-X")
    ));
    assert!(matches!(
        g.merge_subjects(&subject("S-A"), &subject("S-X")),
        Err(StoreError::UnknownSubject(s)) if s == subject("S-X")
    ));
    assert_eq!(
        g.generation().expect("generation"),
        gen,
        "failed merges commit nothing"
    );

    let outcome = g
        .merge_subjects(&subject("S-A"), &subject("S-B"))
        .expect("merge");
    assert_eq!(outcome.moved_encounters, vec![a1.id, a2.id]);
    assert!(!g.subject_exists(&subject("S-A")).expect("exists"));
    assert_eq!(g.subjects().expect("subjects"), vec![subject("S-B")]);
    let history: Vec<EncounterId> = g
        .subject_encounters(&subject("S-B"))
        .expect("history")
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        history,
        vec![a2.id, b1.id, a1.id],
        "ordered by capture time, ids unchanged"
    );
    let moved = g.encounter(a1.id).expect("read").expect("kept");
    assert_eq!(moved.subject, subject("S-B"));
    assert_eq!(
        (moved.templates, moved.biographic),
        (a1.templates.clone(), a1.biographic.clone())
    );
    for owner in g.templates_meta(&a1.templates).expect("meta") {
        assert_eq!(owner.expect("present").subject, subject("S-B"));
    }
    let t = g.template(a1.templates[1]).expect("read").expect("present");
    assert_eq!((t.subject, t.encounter), (subject("S-B"), a1.id));
    assert_template_is(
        &g.template(a2.templates[0]).expect("read").expect("present"),
        1,
        0,
    );

    let audit = g.merges().expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (&audit[0].from, &audit[0].into),
        (&subject("S-A"), &subject("S-B"))
    );
    assert_eq!(audit[0].moved_encounters, outcome.moved_encounters);
    assert_eq!(audit[0].generation, gen + 1);
    assert!(audit[0].at_unix_ms > 1_600_000_000_000);
    assert_eq!(g.generation().expect("generation"), gen + 1);
    assert_eq!(
        g.changes_since(gen).expect("log"),
        Some(vec![]),
        "template ids did not change"
    );
    let stats = g.verify().expect("consistent");
    assert_eq!(
        (stats.subjects, stats.encounters, stats.templates),
        (1, 3, 4)
    );

    // The merged-away id can be enrolled again as a fresh subject.
    g.add_encounter(encounter("S-A", 20, 1)).expect("add");
    assert_eq!(
        g.subject_encounters(&subject("S-A"))
            .expect("history")
            .len(),
        1
    );
    g.verify().expect("consistent");
}

#[test]
fn change_log_replays_and_prunes() {
    let (_dir, g) = new_gallery();
    let a = g.add_encounter(encounter("S-A", 1, 2)).expect("add");
    let snapshot = g.generation().expect("generation");
    let b = g.add_encounter(encounter("S-B", 2, 1)).expect("add");
    g.delete_subject(&subject("S-A")).expect("delete");
    let log = g
        .change_log_since(snapshot)
        .expect("log")
        .expect("available");
    assert_eq!(log.through_generation, g.generation().expect("generation"));
    assert_eq!(
        log.changes,
        vec![
            Change::Added(b.templates[0]),
            Change::Removed(a.templates[0]),
            Change::Removed(a.templates[1])
        ]
    );
    let now = log.through_generation;
    assert_eq!(g.changes_since(now).expect("log"), Some(vec![]));
    assert_eq!(
        g.changes_since(now + 1).expect("log"),
        None,
        "from the future"
    );

    assert!(matches!(
        g.prune_changes(now + 5),
        Err(StoreError::BadInput { .. })
    ));
    g.prune_changes(snapshot).expect("prune");
    assert_eq!(g.changes_since(snapshot - 1).expect("log"), None, "pruned");
    assert_eq!(
        g.changes_since(snapshot).expect("log").map(|c| c.len()),
        Some(3)
    );
    g.prune_changes(now).expect("prune");
    assert_eq!(g.changes_since(now).expect("log"), Some(vec![]));
    assert_eq!(g.changes_since(snapshot).expect("log"), None);
    g.verify().expect("consistent");
}

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

#[test]
fn newer_format_version_is_refused() {
    let (dir, g) = new_gallery();
    g.add_encounter(encounter("S-A", 1, 1)).expect("add");
    drop(g);
    let file = dir.path().join("g").join(GALLERY_FILE);
    {
        let db = Database::open(&file).expect("raw open");
        let txn = db.begin_write().expect("txn");
        txn.open_table(META)
            .expect("meta")
            .insert("format_version", 2u32.to_le_bytes().as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }
    match Gallery::open(&dir.path().join("g")) {
        Err(StoreError::UnsupportedVersion {
            found: 2,
            supported: 1,
        }) => {}
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
}

#[test]
fn a_panic_in_the_scan_callback_stays_the_callers() {
    let (_dir, g) = new_gallery();
    g.add_encounter(encounter("S-A", 1, 1)).expect("add");
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = g.for_each_template(|_| panic!("caller bug"));
    }));
    let payload = r.expect_err("the caller's panic propagates, not a Corrupt error");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"caller bug"));
    // The gallery is still usable afterwards.
    assert_eq!(g.verify().expect("consistent").templates, 1);
}
