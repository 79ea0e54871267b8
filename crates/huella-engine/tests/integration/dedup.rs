//! Whole-gallery de-duplication: planted false identities, repeat encounters and a
//! shared document number in a face + finger gallery; the in-memory path on flat and
//! HNSW indexes; bad options.

use crate::fingers::Hands;
use crate::{model, DIM};
use huella_engine::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use std::collections::BTreeMap;

/// Face captures: a centre per person plus noise (mate cosine ~0.98, impostors ~N(0, 0.18)).
struct Faces {
    rng: StdRng,
    centres: Vec<Vec<f32>>,
}

impl Faces {
    fn new(n: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let centres = (0..n)
            .map(|_| (0..DIM).map(|_| rng.sample(StandardNormal)).collect())
            .collect();
        Self { rng, centres }
    }

    fn embedding(&mut self, i: usize) -> Embedding {
        let v: Vec<f32> = self.centres[i]
            .iter()
            .map(|c| c + 0.15 * self.rng.sample::<f32, _>(StandardNormal))
            .collect();
        Embedding::new(v).unwrap()
    }

    fn capture(&mut self, i: usize) -> Template {
        Template::from_embedding(Modality::Face, model().algorithm, self.embedding(i))
    }
}

fn bio(name: &str, doc: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("name".to_string(), name.to_string()),
        ("date_of_birth".to_string(), "1990-01-01".to_string()),
        ("document_number".to_string(), doc.to_string()),
    ])
}

pub(crate) fn encounter(
    subject: &str,
    biographic: BTreeMap<String, String>,
    templates: Vec<Template>,
) -> NewEncounter {
    NewEncounter {
        subject: SubjectId::new(subject).unwrap(),
        captured_at_unix_ms: 1_764_403_200_000,
        location: Some("Post 1".into()),
        operator: None,
        biographic,
        templates: templates
            .into_iter()
            .map(|template| NewTemplate {
                template,
                source: None,
            })
            .collect(),
    }
}

#[test]
fn planted_duplicates_are_found_and_labelled() {
    const PEOPLE: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::builder()
        .gallery(dir.path())
        .create_if_missing(true)
        .model(model())
        .fingers(true)
        .build()
        .unwrap();
    let mut faces = Faces::new(PEOPLE, 5);
    let mut hands = Hands::new(PEOPLE, 6);
    let opts = IdentifyOptions::default();
    let full = |p: usize, faces: &mut Faces, hands: &mut Hands| {
        vec![faces.capture(p), hands.capture(p, 0), hands.capture(p, 1)]
    };
    for p in 0..PEOPLE {
        // Persons 10 and 11 are different people who present the same document.
        let doc = if p == 10 || p == 11 {
            "SHARED-DOC".to_string()
        } else {
            format!("D{p}")
        };
        let t = full(p, &mut faces, &mut hands);
        engine
            .enroll(
                encounter(&format!("S{p}"), bio(&format!("Person {p}"), &doc), t),
                &opts,
            )
            .unwrap();
    }
    // Person 3 again under another name: a false identity (face and fingers).
    let t = full(3, &mut faces, &mut hands);
    engine
        .enroll(encounter("ALIAS-3", bio("Someone Else", "Z3"), t), &opts)
        .unwrap();
    // Person 20 again, face only; person 21 again, fingers only (a missing modality).
    let t = vec![faces.capture(20)];
    engine
        .enroll(encounter("ALIAS-20", bio("Other Twenty", "Z20"), t), &opts)
        .unwrap();
    let t = vec![hands.capture(21, 0), hands.capture(21, 1)];
    engine
        .enroll(
            encounter("ALIAS-21", bio("Other Twentyone", "Z21"), t),
            &opts,
        )
        .unwrap();
    // Person 5 met again under the same identity: a repeat encounter.
    let t = full(5, &mut faces, &mut hands);
    engine
        .enroll(encounter("S5", bio("PERSON  5", "d5"), t), &opts)
        .unwrap();

    let report = engine.deduplicate(&DedupOptions::default()).unwrap();
    let s = &report.summary;
    assert_eq!(s.records, PEOPLE + 4);
    assert_eq!(s.records_with_face, PEOPLE + 3);
    assert_eq!(s.records_with_fingers, PEOPLE + 3);
    // Small gallery: every impostor pair is used once.
    assert!(s.face_impostors > 1_500, "{}", s.face_impostors);
    assert!((s.threshold - (-(0.01f64 / 63.0).log10())).abs() < 1e-9);
    assert_eq!(s.mosip_target_fpir, Some(20));

    let subjects = |c: &Cluster| -> Vec<String> {
        c.subjects.iter().map(|s| s.as_str().to_string()).collect()
    };
    let mut false_ids: Vec<Vec<String>> = report
        .clusters
        .iter()
        .filter(|c| c.kind == ClusterKind::FalseIdentity)
        .map(subjects)
        .collect();
    false_ids.sort();
    assert_eq!(
        false_ids,
        vec![
            vec!["ALIAS-20".to_string(), "S20".into()],
            vec!["ALIAS-21".to_string(), "S21".into()],
            vec!["ALIAS-3".to_string(), "S3".into()],
        ],
        "false positives or misses: {:?}",
        report
            .pairs
            .iter()
            .map(|p| (p.a, p.b, p.fused_score))
            .collect::<Vec<_>>()
    );
    let repeats: Vec<&Cluster> = report
        .clusters
        .iter()
        .filter(|c| c.kind == ClusterKind::Repeat)
        .collect();
    assert_eq!(repeats.len(), 1);
    assert_eq!(subjects(repeats[0]), vec!["S5".to_string()]);
    assert_eq!(repeats[0].records.len(), 2);
    assert_eq!(s.matched_pairs, 4);

    // Every match is far above the threshold; the face-only and finger-only pairs
    // carry only their own modality.
    for p in report
        .pairs
        .iter()
        .filter(|p| p.decision != PairDecision::SharedIdentity)
    {
        assert!(p.fused_score >= s.threshold);
        let names = (
            report.records[p.a].subject.as_str(),
            report.records[p.b].subject.as_str(),
        );
        if names.0 == "ALIAS-20" || names.1 == "ALIAS-20" {
            assert!(p.finger_score.is_none() && p.face_score.unwrap() > 0.9);
        }
        if names.0 == "ALIAS-21" || names.1 == "ALIAS-21" {
            assert!(p.face_score.is_none() && p.fingers_compared == 2);
        }
    }

    // The shared document: two people, biometrically apart.
    assert_eq!(
        report.shared_identities.len(),
        1,
        "{:?}",
        report.shared_identities
    );
    let shared = &report.shared_identities[0];
    assert_eq!(shared.key, "document_number");
    assert_eq!(shared.groups.len(), 2);
    let shared_subjects: Vec<&str> = shared
        .records
        .iter()
        .map(|&r| report.records[r].subject.as_str())
        .collect();
    assert_eq!(shared_subjects, vec!["S10", "S11"]);
    let mismatch: Vec<&DuplicatePair> = report
        .pairs
        .iter()
        .filter(|p| p.decision == PairDecision::SharedIdentity)
        .collect();
    assert_eq!(mismatch.len(), 1);
    assert!(mismatch[0].fused_score < s.threshold);

    // A fixed, very high threshold finds nothing; a threshold of 0 links everything
    // the k-NN reaches, and biographic fields never hide a biometric match.
    let strict = DedupOptions {
        threshold: DedupThreshold::Fused(1_000.0),
        ..DedupOptions::default()
    };
    assert_eq!(
        engine.deduplicate(&strict).unwrap().summary.matched_pairs,
        0
    );
    // Progress: one call per record searched, up to the total; a set cancel flag stops
    // the run with a typed error.
    let seen = std::sync::Mutex::new(Vec::new());
    engine
        .deduplicate_with_progress(&DedupOptions::default(), |p| seen.lock().unwrap().push(*p))
        .unwrap();
    let seen = seen.into_inner().unwrap();
    let n = (PEOPLE + 4) as u64;
    assert_eq!(seen.len() as u64, n);
    assert_eq!(seen.iter().map(|p| p.searched).max(), Some(n));
    assert!(seen.iter().all(|p| p.records == n));
    let cancelled = DedupOptions {
        cancel: Some(std::sync::Arc::new(std::sync::atomic::AtomicBool::new(
            true,
        ))),
        ..DedupOptions::default()
    };
    assert!(matches!(
        engine.deduplicate(&cancelled),
        Err(EngineError::Cancelled)
    ));
}

/// Records with planted duplicates under other names, for the in-memory path.
fn synthetic(people: usize, dups: usize, seed: u64) -> (Vec<DedupRecord>, Vec<Option<Embedding>>) {
    let mut faces = Faces::new(people, seed);
    let mut records = Vec::new();
    let mut embs = Vec::new();
    for p in 0..people + dups {
        let (person, subject) = if p < people {
            (p, format!("S{p}"))
        } else {
            (p - people, format!("ALIAS-{}", p - people))
        };
        records.push(DedupRecord {
            encounter: EncounterId(p as u64),
            subject: SubjectId::new(subject).unwrap(),
            biographic: BTreeMap::new(),
            faces: 1,
            fingers: 0,
        });
        embs.push(Some(faces.embedding(person)));
    }
    (records, embs)
}

#[test]
fn in_memory_flat_hnsw_and_lsh_agree() {
    let (records, faces) = synthetic(3_000, 40, 9);
    let opts = DedupOptions::default();
    let run = |index| deduplicate_embeddings(records.clone(), faces.clone(), index, &opts);
    let flat = run(DedupIndex::Exact).unwrap();
    let hnsw = run(DedupIndex::Hnsw(HnswParams::default())).unwrap();
    let lsh = run(DedupIndex::Lsh { probes: 1024 }).unwrap();
    let clusters = |r: &DedupReport| -> Vec<Vec<usize>> {
        let mut c: Vec<Vec<usize>> = r.clusters.iter().map(|c| c.records.clone()).collect();
        c.sort();
        c
    };
    let want: Vec<Vec<usize>> = (0..40).map(|i| vec![i, 3_000 + i]).collect();
    assert_eq!(clusters(&flat), want);
    assert_eq!(clusters(&hnsw), want);
    assert_eq!(clusters(&lsh), want);
    assert_eq!(flat.summary.false_identities, 40);
    // k-NN, not all pairs: at most k candidates per record.
    assert!(flat.summary.candidate_pairs <= 3_040 * opts.neighbours);
}

#[test]
fn bad_options_are_refused() {
    let (records, faces) = synthetic(100, 2, 1);
    let bad = [
        DedupOptions {
            neighbours: 0,
            ..DedupOptions::default()
        },
        DedupOptions {
            threshold: DedupThreshold::TargetFpir(1.5),
            ..DedupOptions::default()
        },
        DedupOptions {
            threshold: DedupThreshold::Fused(f64::NAN),
            ..DedupOptions::default()
        },
    ];
    for opts in bad {
        let err = deduplicate_embeddings(records.clone(), faces.clone(), DedupIndex::Exact, &opts);
        assert!(matches!(err, Err(EngineError::BadInput(_))), "{opts:?}");
    }
    let err = deduplicate_embeddings(
        records,
        vec![None; 102],
        DedupIndex::Exact,
        &DedupOptions::default(),
    );
    assert!(matches!(err, Err(EngineError::BadInput(_))));
}
