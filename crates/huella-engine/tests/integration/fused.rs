//! Face + finger probes: candidates from either modality, exact re-scoring, levels on
//! the gallery's impostor scores, Fisher fusion; fusion beats each modality alone.

use crate::dedup::encounter;
use crate::fingers::Hands;
use crate::{model, DIM};
use huella_engine::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use std::collections::BTreeMap;

/// Faces noisy enough that some mates lose to impostors.
fn faces(people: usize, sigma: f32, seed: u64) -> impl FnMut(usize) -> Template {
    let mut rng = StdRng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..people)
        .map(|_| (0..DIM).map(|_| rng.sample(StandardNormal)).collect())
        .collect();
    move |p| {
        let v = centres[p]
            .iter()
            .map(|c| c + sigma * rng.sample::<f32, _>(StandardNormal))
            .collect();
        Template::from_embedding(
            Modality::Face,
            model().algorithm,
            Embedding::new(v).unwrap(),
        )
    }
}

#[test]
fn fusion_beats_each_modality_and_explains_its_candidates() {
    const PEOPLE: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::builder()
        .gallery(dir.path())
        .create_if_missing(true)
        .model(model())
        .fingers(true)
        .build()
        .unwrap();
    let mut face = faces(PEOPLE, 1.1, 11);
    let mut hands = Hands::new(PEOPLE, 12).keeping(0.45);
    let opts = IdentifyOptions::default();
    for p in 0..PEOPLE {
        let t = vec![face(p), hands.capture(p, 0)];
        engine
            .enroll(encounter(&format!("S{p}"), BTreeMap::new(), t), &opts)
            .unwrap();
    }
    let (mut face_hits, mut finger_hits, mut fused_hits) = (0, 0, 0);
    for p in 0..PEOPLE {
        let (f, g) = (face(p), hands.capture(p, 0));
        let want = format!("S{p}");
        let top = |probe: &[Template]| engine.identify(probe, &opts).unwrap()[0].clone();
        face_hits += usize::from(top(std::slice::from_ref(&f)).subject.as_str() == want);
        finger_hits += usize::from(top(std::slice::from_ref(&g)).subject.as_str() == want);
        let c = top(&[f, g]);
        fused_hits += usize::from(c.subject.as_str() == want);
        // Every candidate says why: the face and the finger, each with its level.
        assert_eq!(c.scores.len(), 2, "{c:?}");
        assert_eq!(c.scores[0].modality, Modality::Face);
        assert_eq!(
            c.scores[1].modality,
            Modality::Finger(FingerPosition::RightIndex)
        );
        assert!(c
            .scores
            .iter()
            .all(|s| s.level.is_some() && s.compared == 1));
        let levels: Vec<f64> = c.scores.iter().map(|s| s.level.unwrap()).collect();
        assert!((f64::from(c.score.value()) - fusion::fuse_levels(&levels)).abs() < 1e-3);
    }
    eprintln!("rank-1 of {PEOPLE}: face {face_hits}, finger {finger_hits}, fused {fused_hits}");
    assert!(
        face_hits < PEOPLE && finger_hits < PEOPLE,
        "each modality alone must err here"
    );
    assert!(
        fused_hits > face_hits.max(finger_hits),
        "fused {fused_hits} vs face {face_hits}, finger {finger_hits}"
    );

    // A person seen only by their finger (the face changed beyond recognition) is still a
    // candidate, found through the finger search, and the threshold applies to the
    // fused level.
    let stranger_face = faces(1, 0.0, 99)(0);
    let probe = [stranger_face, hands.capture(7, 0)];
    let list = engine.identify(&probe, &opts).unwrap();
    assert!(list.iter().any(|c| c.subject.as_str() == "S7"), "{list:?}");
    let strict = IdentifyOptions {
        threshold: Some(40.0),
        ..IdentifyOptions::default()
    };
    assert!(engine.identify(&probe, &strict).unwrap().is_empty());
    // Enrolment searches with the same fusion.
    let e = engine
        .enroll(
            encounter(
                "ALIAS-9",
                BTreeMap::new(),
                vec![face(9), hands.capture(9, 0)],
            ),
            &opts,
        )
        .unwrap();
    assert_eq!(e.candidates[0].subject.as_str(), "S9");
    assert_eq!(e.candidates[0].scores.len(), 2);
}

#[test]
fn fused_scores_work_on_a_face_only_gallery() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::builder()
        .gallery(dir.path())
        .create_if_missing(true)
        .model(model())
        .build()
        .unwrap();
    let mut face = faces(30, 0.3, 21);
    for p in 0..30 {
        let e = encounter(&format!("S{p}"), BTreeMap::new(), vec![face(p)]);
        engine.enroll(e, &IdentifyOptions::default()).unwrap();
    }
    let opts = IdentifyOptions {
        fused_scores: true,
        ..IdentifyOptions::default()
    };
    let list = engine.identify(&[face(4)], &opts).unwrap();
    assert_eq!(list[0].subject.as_str(), "S4");
    assert_eq!(list[0].scores.len(), 1);
    let level = list[0].scores[0].level.unwrap();
    assert!((f64::from(list[0].score.value()) - level).abs() < 1e-3);
    // A finger probe on it is the typed error of a gallery without fingers.
    let finger = Hands::new(1, 3).capture(0, 0);
    assert!(matches!(
        engine.identify(&[face(4), finger], &opts),
        Err(EngineError::UnknownModel { .. })
    ));
}
