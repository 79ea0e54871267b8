use crate::*;
use huella_engine::*;

#[test]
fn bad_templates_are_typed_errors_and_store_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine(&tmp.path().join("g"), IndexKind::Flat);
    let mut people = People::new(3, 5);
    let opts = IdentifyOptions::default();

    // Empty gallery: identify answers an empty list, not an error.
    assert!(engine
        .identify(&[people.capture(0)], &opts)
        .unwrap()
        .is_empty());

    let other_model = Template::from_embedding(
        Modality::Face,
        AlgorithmId::new("other", "2").unwrap(),
        Embedding::new(vec![1.0; DIM]).unwrap(),
    );
    let wrong_dim = Template::from_embedding(
        Modality::Face,
        model().algorithm,
        Embedding::new(vec![1.0; 7]).unwrap(),
    );
    let opaque = Template::new(
        Modality::Face,
        model().algorithm,
        TemplatePayload::Opaque(vec![1, 2, 3]),
    )
    .unwrap();
    let finger = Template::from_embedding(
        Modality::Finger(FingerPosition::RightIndex),
        model().algorithm,
        Embedding::new(vec![1.0; DIM]).unwrap(),
    );
    for (t, what) in [
        (other_model, "model"),
        (wrong_dim, "dim"),
        (opaque, "opaque"),
        (finger, "family"),
    ] {
        let mut e = people.encounter("S0", 0);
        e.templates[0].template = t.clone();
        let err = engine.enroll(e, &opts).unwrap_err();
        match what {
            "model" | "family" => assert!(
                matches!(err, EngineError::UnknownModel { .. }),
                "{what}: {err}"
            ),
            "dim" => assert!(
                matches!(
                    err,
                    EngineError::Core(CoreError::WrongDimension {
                        expected: DIM,
                        received: 7
                    })
                ),
                "{err}"
            ),
            _ => assert!(matches!(err, EngineError::Unsupported(_)), "{err}"),
        }
        assert!(engine.identify(&[t], &opts).is_err());
    }
    assert_eq!(
        engine.stats().unwrap().gallery.encounters,
        0,
        "nothing stored"
    );

    // Bad options.
    let p = [people.capture(0)];
    let bad = |o: IdentifyOptions| engine.identify(&p, &o).unwrap_err();
    assert!(matches!(
        bad(IdentifyOptions {
            max_candidates: 0,
            ..Default::default()
        }),
        EngineError::BadInput(_)
    ));
    assert!(matches!(
        bad(IdentifyOptions {
            max_candidates: 100_000,
            ..Default::default()
        }),
        EngineError::BadInput(_)
    ));
    assert!(matches!(
        bad(IdentifyOptions {
            threshold: Some(f32::NAN),
            ..Default::default()
        }),
        EngineError::BadInput(_)
    ));
    let ghost = IdentifyOptions {
        restrict_to: Some(vec![SubjectId::new("ghost").unwrap()]),
        ..Default::default()
    };
    assert!(matches!(bad(ghost), EngineError::UnknownSubject(_)));
    assert!(matches!(
        engine.identify(&[], &opts),
        Err(EngineError::BadInput(_))
    ));
    let ghost = SubjectId::new("ghost").unwrap();
    assert!(engine.merge_subjects(&ghost, &ghost).is_err());
    assert!(matches!(
        engine.verify_subject(&p[0], &ghost),
        Err(EngineError::UnknownSubject(_))
    ));
}

#[test]
fn builder_checks_its_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("g");
    assert!(matches!(
        Engine::builder().build(),
        Err(ConfigError::MissingGallery)
    ));
    assert!(matches!(
        Engine::builder()
            .gallery(&dir)
            .create_if_missing(true)
            .build(),
        Err(ConfigError::NoModels)
    ));
    assert!(matches!(
        Engine::builder().gallery(&dir).build(),
        Err(ConfigError::Store(StoreError::NotFound { .. }))
    ));
    assert!(matches!(
        Engine::builder()
            .gallery(&dir)
            .create_if_missing(true)
            .model(model())
            .model(model())
            .build(),
        Err(ConfigError::Invalid { .. })
    ));
    drop(engine(&dir, IndexKind::Flat));
    // Reopening with another model list is refused; with none, the gallery's own is used.
    let other: EmbeddingModel = "face:test-face@2:32".parse().unwrap();
    assert!(matches!(
        Engine::builder().gallery(&dir).model(other).build(),
        Err(ConfigError::ModelMismatch { .. })
    ));
    let e = Engine::builder().gallery(&dir).build().unwrap();
    assert_eq!(e.models(), vec![model()]);
}

#[test]
fn damaged_index_snapshots_are_rebuilt_from_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("g");
    let mut people = People::new(50, 6);
    for kind in [IndexKind::Flat, IndexKind::Hnsw, IndexKind::Lsh] {
        let _ = std::fs::remove_dir_all(&dir);
        {
            let engine = engine(&dir, kind);
            enrol_all(&engine, &mut people, 50);
            engine.checkpoint().unwrap();
        }
        let snapshot = std::fs::read_dir(dir.join("index"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "idx"))
            .unwrap();
        let bytes = std::fs::read(&snapshot).unwrap();
        for damage in 0..3 {
            let mut b = bytes.clone();
            match damage {
                0 => b.truncate(b.len() / 2),
                1 => {
                    let mid = b.len() / 2;
                    b[mid] ^= 0x40;
                }
                _ => b.clear(),
            }
            std::fs::write(&snapshot, &b).unwrap();
            let engine = engine(&dir, kind);
            assert_eq!(engine.stats().unwrap().indexes[0].vectors, 50);
            let c = engine
                .identify(&[people.capture(9)], &IdentifyOptions::default())
                .unwrap();
            assert_eq!(c[0].subject.as_str(), "S9");
        }
        // Damaged sidecar metadata also means a rebuild, not an error.
        std::fs::write(snapshot.with_extension("idx.json"), b"{not json").unwrap();
        assert_eq!(engine(&dir, kind).stats().unwrap().indexes[0].vectors, 50);
    }
}
