use crate::*;
use huella_engine::*;

#[test]
fn enrol_identify_dedup_merge_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine(&tmp.path().join("g"), IndexKind::Flat);
    let mut people = People::new(300, 1);
    enrol_all(&engine, &mut people, 300);

    // 1:N: a fresh capture of every person finds that person at rank 1.
    for i in 0..300 {
        let c = engine
            .identify(&[people.capture(i)], &IdentifyOptions::default())
            .unwrap();
        assert_eq!(c[0].subject.as_str(), format!("S{i}"), "probe {i}: {c:?}");
        assert_eq!(c[0].rank, 1);
        assert!(c
            .windows(2)
            .all(|w| w[0].score.value() >= w[1].score.value()));
        let unique: std::collections::HashSet<_> = c.iter().map(|c| &c.subject).collect();
        assert_eq!(unique.len(), c.len(), "one entry per subject");
    }

    // De-duplication at enrolment: person 7 returns under an alias.
    let opts = IdentifyOptions {
        threshold: Some(0.5),
        ..Default::default()
    };
    let e = engine
        .enroll(people.encounter("ALIAS-7", 7), &opts)
        .unwrap();
    assert_eq!(e.candidates[0].subject.as_str(), "S7");
    assert!(e.candidates.iter().all(|c| c.score.value() >= 0.5));

    // The operator merges the alias into S7: both encounters now under S7.
    let alias = SubjectId::new("ALIAS-7").unwrap();
    let s7 = SubjectId::new("S7").unwrap();
    let outcome = engine.merge_subjects(&alias, &s7).unwrap();
    assert_eq!(outcome.moved_encounters, vec![e.encounter.id]);
    assert_eq!(engine.gallery().subject_encounters(&s7).unwrap().len(), 2);
    let c = engine
        .identify(&[people.capture(7)], &IdentifyOptions::default())
        .unwrap();
    assert_eq!(c[0].subject, s7);
    assert!(c.iter().all(|c| c.subject != alias));

    // Verification: same person high, different people low.
    let (same, _) = engine.verify_subject(&people.capture(7), &s7).unwrap();
    let (other, _) = engine.verify_subject(&people.capture(8), &s7).unwrap();
    assert!(
        same.value() > 0.6 && other.value() < 0.5,
        "{same:?} {other:?}"
    );
    let pair = engine
        .verify(&people.capture(3), &people.capture(3))
        .unwrap();
    assert!(pair.value() > 0.6);

    // Restricted search only returns the listed subjects.
    let within = IdentifyOptions {
        restrict_to: Some(vec![
            SubjectId::new("S1").unwrap(),
            SubjectId::new("S2").unwrap(),
        ]),
        ..Default::default()
    };
    let c = engine.identify(&[people.capture(7)], &within).unwrap();
    assert!(!c.is_empty() && c.iter().all(|c| ["S1", "S2"].contains(&c.subject.as_str())));

    // Deletion removes the subject from search.
    let removed = engine.delete_subject(&s7).unwrap();
    assert_eq!(removed.len(), 2);
    let c = engine
        .identify(&[people.capture(7)], &IdentifyOptions::default())
        .unwrap();
    assert!(c.iter().all(|c| c.subject != s7));
    assert!(matches!(
        engine.delete_subject(&s7),
        Err(EngineError::UnknownSubject(_))
    ));

    let stats = engine.stats().unwrap();
    assert_eq!(stats.gallery.subjects, 299);
    assert_eq!(stats.indexes[0].vectors, 299);
}

#[test]
fn reopen_replays_changes_after_the_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("g");
    let mut people = People::new(120, 2);
    {
        let engine = engine(&dir, IndexKind::Flat);
        enrol_all(&engine, &mut people, 100);
        engine.checkpoint().unwrap();
        // Changes after the checkpoint are only in the store's log.
        for i in 100..120 {
            engine
                .enroll(
                    people.encounter(&format!("S{i}"), i),
                    &IdentifyOptions::default(),
                )
                .unwrap();
        }
        engine
            .delete_subject(&SubjectId::new("S5").unwrap())
            .unwrap();
    }
    let engine = engine(&dir, IndexKind::Flat);
    assert_eq!(engine.stats().unwrap().indexes[0].vectors, 119);
    for i in [0usize, 50, 110, 119] {
        let c = engine
            .identify(&[people.capture(i)], &IdentifyOptions::default())
            .unwrap();
        assert_eq!(c[0].subject.as_str(), format!("S{i}"));
    }
    let c = engine
        .identify(&[people.capture(5)], &IdentifyOptions::default())
        .unwrap();
    assert!(c.iter().all(|c| c.subject.as_str() != "S5"));

    // A checkpoint prunes the replay log it made unnecessary; the snapshot still loads.
    let before = engine.gallery().generation().unwrap();
    engine.checkpoint().unwrap();
    assert_eq!(engine.gallery().changes_since(0).unwrap(), None);
    assert_eq!(
        engine.gallery().changes_since(before).unwrap(),
        Some(vec![])
    );
    drop(engine);
    let reopened = Engine::builder().gallery(&dir).build().unwrap();
    assert_eq!(reopened.stats().unwrap().indexes[0].vectors, 119);
}

#[test]
fn approximate_and_flat_engines_agree_at_rank_one() {
    let tmp = tempfile::tempdir().unwrap();
    let mut people = People::new(1000, 3);
    let flat = engine(&tmp.path().join("flat"), IndexKind::Flat);
    let approximate = [
        (engine(&tmp.path().join("hnsw"), IndexKind::Hnsw), "hnsw"),
        (engine(&tmp.path().join("lsh"), IndexKind::Lsh), "lsh"),
    ];
    for i in 0..1000 {
        let e = people.encounter(&format!("S{i}"), i);
        flat.enroll(e.clone(), &IdentifyOptions::default()).unwrap();
        for (engine, _) in &approximate {
            engine
                .enroll(e.clone(), &IdentifyOptions::default())
                .unwrap();
        }
    }
    for (engine, kind) in &approximate {
        let mut agree = 0;
        for i in 0..300 {
            let p = people.capture(i);
            let a = flat
                .identify(std::slice::from_ref(&p), &IdentifyOptions::default())
                .unwrap();
            let b = engine.identify(&[p], &IdentifyOptions::default()).unwrap();
            agree += usize::from(a[0].subject == b[0].subject);
        }
        assert!(agree >= 297, "{kind}: rank-1 agreement {agree}/300");
        assert_eq!(engine.stats().unwrap().indexes[0].kind, *kind);
    }
}

#[test]
fn concurrent_readers_with_one_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine(&tmp.path().join("g"), IndexKind::Flat);
    let mut people = People::new(200, 4);
    enrol_all(&engine, &mut people, 100);
    let probes: Vec<Template> = (0..100).map(|i| people.capture(i)).collect();
    let new: Vec<NewEncounter> = (100..200)
        .map(|i| people.encounter(&format!("S{i}"), i))
        .collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            for e in new {
                engine.enroll(e, &IdentifyOptions::default()).unwrap();
            }
        });
        for chunk in probes.chunks(25) {
            let engine = &engine;
            s.spawn(move || {
                for (j, p) in chunk.iter().enumerate() {
                    let c = engine
                        .identify(std::slice::from_ref(p), &IdentifyOptions::default())
                        .unwrap();
                    assert!(!c.is_empty(), "probe {j}");
                }
            });
        }
    });
    assert_eq!(engine.stats().unwrap().gallery.encounters, 200);
}
