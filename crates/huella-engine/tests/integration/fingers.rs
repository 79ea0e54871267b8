//! Fingers in the gallery: ISO records stored, matched, fused, deleted, reloaded.

use huella_engine::finger::{FingerTemplate, Minutia, MinutiaKind};
use huella_engine::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::BTreeMap;
use std::f32::consts::TAU;

/// Synthetic fingers: a random minutiae set per (person, finger), and captures of it
/// moved, jittered and thinned as a new impression would be (also used by `dedup`).
pub(crate) struct Hands {
    rng: StdRng,
    fingers: Vec<Vec<(f32, f32, f32)>>,
    /// Chance that a minutia shows in a capture.
    keep: f64,
}

impl Hands {
    pub(crate) fn new(people: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let fingers = (0..people * 2)
            .map(|_| {
                (0..40)
                    .map(|_| {
                        (
                            rng.gen_range(40.0..260.0),
                            rng.gen_range(40.0..360.0),
                            rng.gen_range(0.0..TAU),
                        )
                    })
                    .collect()
            })
            .collect();
        Self {
            rng,
            fingers,
            keep: 0.85,
        }
    }

    /// Captures that show only this share of the finger's minutiae (poor impressions).
    pub(crate) fn keeping(mut self, keep: f64) -> Self {
        self.keep = keep;
        self
    }

    /// Impression of finger `f` (0 or 1) of person `p`.
    pub(crate) fn capture(&mut self, p: usize, f: usize) -> Template {
        let rot: f32 = self.rng.gen_range(-0.3..0.3);
        let (dx, dy) = (
            self.rng.gen_range(-15.0..15.0),
            self.rng.gen_range(-15.0..15.0),
        );
        let (s, c) = rot.sin_cos();
        let mut minutiae = Vec::new();
        for (x, y, a) in self.fingers[p * 2 + f].clone() {
            if !self.rng.gen_bool(self.keep) {
                continue;
            }
            let (u, v) = (x - 150.0, y - 200.0);
            let (jx, jy): (f32, f32) =
                (self.rng.gen_range(-2.0..2.0), self.rng.gen_range(-2.0..2.0));
            minutiae.push(Minutia {
                x: (150.0 + c * u + s * v + dx + jx).clamp(0.0, 299.0) as u16,
                y: (200.0 - s * u + c * v + dy + jy).clamp(0.0, 399.0) as u16,
                angle: (a + rot).rem_euclid(TAU),
                kind: MinutiaKind::Ending,
                quality: 60,
            });
        }
        let t = FingerTemplate {
            width: 300,
            height: 400,
            resolution_x: 197,
            resolution_y: 197,
            position: FingerPosition::Unknown,
            quality: 60,
            minutiae,
        };
        let position = if f == 0 {
            FingerPosition::RightIndex
        } else {
            FingerPosition::LeftIndex
        };
        finger_template(position, &t).unwrap()
    }

    fn encounter(&mut self, subject: &str, p: usize) -> NewEncounter {
        NewEncounter {
            subject: SubjectId::new(subject).unwrap(),
            captured_at_unix_ms: 1_764_403_200_000,
            location: None,
            operator: None,
            biographic: BTreeMap::new(),
            templates: (0..2)
                .map(|f| NewTemplate {
                    template: self.capture(p, f),
                    source: None,
                })
                .collect(),
        }
    }
}

fn finger_engine(dir: &std::path::Path) -> Engine {
    Engine::builder()
        .gallery(dir)
        .create_if_missing(true)
        .fingers(true)
        .build()
        .unwrap()
}

#[test]
fn fingers_are_enrolled_identified_fused_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut hands = Hands::new(30, 7);
    {
        let engine = finger_engine(dir.path());
        for p in 0..30 {
            let e = engine
                .enroll(
                    hands.encounter(&format!("S{p}"), p),
                    &IdentifyOptions::default(),
                )
                .unwrap();
            assert!(
                e.candidates.iter().all(|c| c.score.value() < 0.3),
                "person {p}: {:?}",
                e.candidates.first()
            );
        }
        // A returning person under a new name is found at enrolment.
        let back = engine
            .enroll(hands.encounter("ALIAS", 12), &IdentifyOptions::default())
            .unwrap();
        assert_eq!(back.candidates[0].subject.as_str(), "S12");
        let stats = engine.stats().unwrap();
        assert_eq!(
            stats
                .indexes
                .iter()
                .find(|i| i.kind == "mcc+code")
                .unwrap()
                .vectors,
            62
        );
    }
    // Reopened: the fingers are read back from the store.
    let engine = Engine::builder().gallery(dir.path()).build().unwrap();
    let one = [hands.capture(5, 0)];
    let two = [hands.capture(5, 0), hands.capture(5, 1)];
    let c1 = engine.identify(&one, &IdentifyOptions::default()).unwrap();
    let c2 = engine.identify(&two, &IdentifyOptions::default()).unwrap();
    assert_eq!(
        (c1[0].subject.as_str(), c2[0].subject.as_str()),
        ("S5", "S5")
    );
    assert!(matches!(
        c1[0].modality,
        Modality::Finger(FingerPosition::RightIndex)
    ));
    // Two agreeing fingers separate the mate from the runner-up at least as well as one.
    let margin = |c: &[Candidate]| c[0].score.value() - c[1].score.value();
    assert!(
        margin(&c2) > 0.5 * margin(&c1),
        "{} vs {}",
        margin(&c2),
        margin(&c1)
    );
    // 1:1 against the subject, and between two templates.
    let (score, _) = engine
        .verify_subject(&one[0], &SubjectId::new("S5").unwrap())
        .unwrap();
    assert!(score.value() > 0.3);
    let other = hands.capture(6, 0);
    assert!(engine.verify(&one[0], &other).unwrap().value() < score.value());
    // Deleted subjects are gone from the finger search.
    engine
        .delete_subject(&SubjectId::new("S5").unwrap())
        .unwrap();
    let after = engine.identify(&two, &IdentifyOptions::default()).unwrap();
    assert!(after.iter().all(|c| c.subject.as_str() != "S5"));
}

#[test]
fn finger_misuse_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut hands = Hands::new(2, 9);
    let engine = finger_engine(dir.path());
    engine
        .enroll(hands.encounter("A", 0), &IdentifyOptions::default())
        .unwrap();
    // A corrupt record under the finger algorithm is refused before anything is stored.
    let bad = Template::new(
        Modality::Finger(FingerPosition::RightThumb),
        finger_model(),
        huella_core::TemplatePayload::Opaque(b"FMR\0 20\0\0\0\0\x05".to_vec()),
    )
    .unwrap();
    let mut e = hands.encounter("B", 1);
    e.templates.push(NewTemplate {
        template: bad,
        source: None,
    });
    assert!(matches!(
        engine.enroll(e, &IdentifyOptions::default()),
        Err(EngineError::Finger(_))
    ));
    assert_eq!(engine.gallery().stats().unwrap().encounters, 1);
    // A probe mixing a finger and a face cannot be fused without a face model.
    let face = Template::from_embedding(
        Modality::Face,
        AlgorithmId::new("f", "1").unwrap(),
        Embedding::new(vec![1.0, 0.0]).unwrap(),
    );
    let mixed = [hands.capture(0, 0), face];
    assert!(matches!(
        engine.identify(&mixed, &IdentifyOptions::default()),
        Err(EngineError::Unsupported(_))
    ));
    // A face-only gallery does not take fingers, and cannot be opened as a finger one.
    let faces = tempfile::tempdir().unwrap();
    let engine = Engine::builder()
        .gallery(faces.path())
        .create_if_missing(true)
        .model(crate::model())
        .build()
        .unwrap();
    assert!(matches!(
        engine.identify(&[hands.capture(0, 0)], &IdentifyOptions::default()),
        Err(EngineError::UnknownModel { .. })
    ));
    drop(engine);
    assert!(matches!(
        Engine::builder()
            .gallery(faces.path())
            .fingers(true)
            .build(),
        Err(ConfigError::Invalid { .. })
    ));
    // The finger short list is a share of the gallery.
    for share in [0.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
        assert!(
            matches!(
                Engine::builder()
                    .gallery(faces.path())
                    .finger_short_list(share)
                    .build(),
                Err(ConfigError::Invalid {
                    setting: "finger_short_list",
                    ..
                })
            ),
            "share {share}"
        );
    }
}

#[test]
fn vendor_records_enter_as_finger_templates() {
    let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(|d| std::path::PathBuf::from(d).join("../../../shared/datasets/fvc2002/DB1_B"))
        .filter(|d| d.is_dir())
    else {
        eprintln!("skipping: ../shared/datasets/fvc2002 not found");
        return;
    };
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let a =
        finger_template_from_record(&read("101_1.iso"), Some(FingerPosition::RightIndex)).unwrap();
    let mate = finger_template_from_record(&read("101_2.iso"), None).unwrap();
    let other = finger_template_from_record(&read("102_1.iso"), None).unwrap();
    let gallery = tempfile::tempdir().unwrap();
    let engine = finger_engine(gallery.path());
    assert!(engine.verify(&a, &mate).unwrap().value() > engine.verify(&a, &other).unwrap().value());
    assert!(matches!(
        finger_template_from_record(&read("101_1.iso")[..20], None),
        Err(EngineError::Finger(_))
    ));
}
