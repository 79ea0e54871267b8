//! Replacing templates in place (a model upgrade) and updating settings: ids, owners
//! and sources kept, the change log told, all or nothing.

use crate::common::{encounter, new_gallery, settings, subject};
use huella_core::{AlgorithmId, Embedding, Modality, Template, TemplateId};
use huella_store::{Change, Gallery, StoreError, MAX_REPLACEMENTS};
use std::collections::BTreeMap;

fn upgraded(seed: u64) -> Template {
    let alg = AlgorithmId::new("demo-face", "2").expect("valid");
    let v: Vec<f32> = (0..64).map(|i| ((seed + i) % 7) as f32 - 3.0).collect();
    Template::from_embedding(Modality::Face, alg, Embedding::new(v).expect("non-zero"))
}

/// The field a `BadInput` names.
fn bad_field(e: &StoreError) -> Option<&'static str> {
    match e {
        StoreError::BadInput { field, .. } => Some(*field),
        _ => None,
    }
}

fn set(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect()
}

#[test]
fn replacing_keeps_ids_owners_and_sources_and_logs_the_change() {
    let (_dir, g) = new_gallery();
    // Template 0 of each encounter is a face (see common::template), with a source.
    let a = g.add_encounter(encounter("S-1", 1, 3)).expect("add");
    let b = g.add_encounter(encounter("S-2", 2, 1)).expect("add");
    let before_stats = g.stats().expect("stats");
    let before_a = g.template(a.templates[0]).expect("read").expect("present");
    let generation = g.generation().expect("generation");

    g.replace_templates(
        &[(a.templates[0], upgraded(1)), (b.templates[0], upgraded(2))],
        &set(&[
            ("models", Some("face:demo-face@2:64")),
            ("face.dimension", None),
        ]),
    )
    .expect("replace");

    let after_a = g.template(a.templates[0]).expect("read").expect("present");
    assert_eq!(after_a.template, upgraded(1));
    assert_eq!(
        after_a.source, before_a.source,
        "the source reference is kept"
    );
    assert_eq!(
        (after_a.encounter, &after_a.subject),
        (a.id, &subject("S-1"))
    );
    let after_b = g.template(b.templates[0]).expect("read").expect("present");
    assert_eq!(after_b.template, upgraded(2));
    // The other templates of the encounter are untouched.
    let t1 = g.template(a.templates[1]).expect("read").expect("present");
    assert_eq!(t1.template, crate::common::template(1, 1).template);
    assert_eq!(
        g.encounter(a.id).expect("read").expect("present").templates,
        a.templates
    );

    // One transaction: one generation, settings included.
    assert_eq!(g.generation().expect("generation"), generation + 1);
    let info = g.info().expect("info");
    assert_eq!(info.settings["models"], "face:demo-face@2:64");
    assert!(!info.settings.contains_key("face.dimension"));
    assert_eq!(
        info.settings["face.algorithm"],
        settings()["face.algorithm"]
    );
    assert_eq!(
        g.changes_since(generation).expect("log"),
        Some(vec![
            Change::Removed(a.templates[0]),
            Change::Added(a.templates[0]),
            Change::Removed(b.templates[0]),
            Change::Added(b.templates[0]),
        ])
    );
    let stats = g.verify().expect("consistent");
    assert_eq!(
        stats.templates_per_modality,
        before_stats.templates_per_modality
    );
    assert_eq!(stats.templates, before_stats.templates);

    // Durable: a reopened gallery reads the same.
    let path = g.path().parent().expect("dir").to_path_buf();
    drop(g);
    let g = Gallery::open(&path).expect("reopen");
    assert_eq!(
        g.template(b.templates[0])
            .expect("read")
            .expect("present")
            .template,
        upgraded(2)
    );
    assert_eq!(g.info().expect("info"), info);
}

/// Every refusal writes nothing: not the valid replacements listed before the bad one,
/// not the settings, not a generation.
#[test]
fn a_refused_replacement_writes_nothing() {
    let (_dir, g) = new_gallery();
    let a = g.add_encounter(encounter("S-1", 1, 2)).expect("add");
    let generation = g.generation().expect("generation");
    let original = g.template(a.templates[0]).expect("read").expect("present");
    let settings_update = set(&[("models", Some("face:demo-face@2:64"))]);
    let unchanged = |g: &Gallery| {
        assert_eq!(g.generation().expect("generation"), generation);
        assert_eq!(
            g.template(a.templates[0]).expect("read").expect("present"),
            original
        );
        assert!(!g.info().expect("info").settings.contains_key("models"));
        g.verify().expect("consistent");
    };

    let unknown = TemplateId(999);
    let err = g
        .replace_templates(
            &[(a.templates[0], upgraded(1)), (unknown, upgraded(2))],
            &settings_update,
        )
        .expect_err("unknown id");
    assert!(
        matches!(err, StoreError::UnknownTemplate(id) if id == unknown),
        "{err}"
    );
    unchanged(&g);

    let err = g
        .replace_templates(
            &[(a.templates[0], upgraded(1)), (a.templates[0], upgraded(2))],
            &settings_update,
        )
        .expect_err("listed twice");
    assert_eq!(bad_field(&err), Some("replacements"), "{err}");
    unchanged(&g);

    // Template 1 is a finger: a face template cannot take its place.
    let err = g
        .replace_templates(&[(a.templates[1], upgraded(1))], &settings_update)
        .expect_err("modality changed");
    assert_eq!(bad_field(&err), Some("template"), "{err}");
    unchanged(&g);

    let bad_settings = set(&[("", Some("x"))]);
    let err = g
        .replace_templates(&[(a.templates[0], upgraded(1))], &bad_settings)
        .expect_err("bad settings");
    assert_eq!(bad_field(&err), Some("settings"), "{err}");
    unchanged(&g);

    let too_many: Vec<(TemplateId, Template)> = (1..=MAX_REPLACEMENTS as u64 + 1)
        .map(|i| (TemplateId(i), upgraded(i)))
        .collect();
    let err = g
        .replace_templates(&too_many, &BTreeMap::new())
        .expect_err("too many");
    assert_eq!(bad_field(&err), Some("replacements"), "{err}");
    unchanged(&g);

    // A deleted template is unknown too (ids are never reused).
    g.delete_subject(&subject("S-1")).expect("delete");
    let err = g
        .replace_templates(&[(a.templates[0], upgraded(1))], &BTreeMap::new())
        .expect_err("deleted");
    assert!(matches!(err, StoreError::UnknownTemplate(_)), "{err}");
}

#[test]
fn settings_are_updated_atomically() {
    let (_dir, g) = new_gallery();
    let generation = g.generation().expect("generation");
    g.update_settings(&set(&[
        ("rescore.models", Some("face:x@2:4")),
        ("face.dimension", None),
    ]))
    .expect("update");
    assert_eq!(g.generation().expect("generation"), generation + 1);
    let s = g.info().expect("info").settings;
    assert_eq!(s["rescore.models"], "face:x@2:4");
    assert!(!s.contains_key("face.dimension"));
    // Removing a key that is absent is not an error; an empty update changes nothing
    // but is still a (durable, empty) transaction.
    g.update_settings(&set(&[("absent", None)]))
        .expect("update");
    g.update_settings(&BTreeMap::new()).expect("update");
    assert_eq!(g.info().expect("info").settings, s);
    // Over the limits: refused, nothing written.
    let huge = "v".repeat(1025);
    let err = g
        .update_settings(&set(&[("rescore.models", Some(huge.as_str()))]))
        .expect_err("value too long");
    assert_eq!(bad_field(&err), Some("settings"), "{err}");
    assert_eq!(g.info().expect("info").settings, s);
    // With no template, a replacement call only updates settings and logs nothing.
    let generation = g.generation().expect("generation");
    g.replace_templates(&[], &set(&[("rescore.models", None)]))
        .expect("settings only");
    assert!(!g
        .info()
        .expect("info")
        .settings
        .contains_key("rescore.models"));
    assert_eq!(g.changes_since(generation).expect("log"), Some(vec![]));
}
