//! Shared fixtures: deterministic encounters and galleries in temporary directories.

use huella_core::{
    AlgorithmId, Embedding, FingerPosition, Modality, SubjectId, Template, TemplatePayload,
};
use huella_store::{Gallery, NewEncounter, NewTemplate, SourceImage, StoredTemplate};
use std::collections::BTreeMap;

pub fn subject(s: &str) -> SubjectId {
    SubjectId::new(s).expect("valid subject id")
}

/// A deterministic pseudo-random unit vector.
pub fn embedding(seed: u64, dim: usize) -> Embedding {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v = (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2001) as f32 / 1000.0 - 1.0 + 1e-3
        })
        .collect();
    Embedding::new(v).expect("non-zero vector")
}

/// The `i`-th template of encounter `seed`: faces, fingers and opaque records mixed.
pub fn template(seed: u64, i: usize) -> NewTemplate {
    let face_alg = AlgorithmId::new("demo-face", "1").expect("valid");
    let finger_alg = AlgorithmId::new("demo-finger", "2").expect("valid");
    let template = match i % 3 {
        0 => Template::from_embedding(
            Modality::Face,
            face_alg,
            embedding(seed * 64 + i as u64, 128),
        ),
        1 => Template::from_embedding(
            Modality::Finger(FingerPosition::from_code((i % 10 + 1) as u8).expect("valid")),
            finger_alg,
            embedding(seed * 64 + i as u64, 16),
        ),
        _ => Template::new(
            Modality::Finger(FingerPosition::RightIndex),
            finger_alg,
            TemplatePayload::Opaque((0..40).map(|b| (b as u64 * 31 + seed) as u8).collect()),
        )
        .expect("valid opaque template"),
    };
    let source = i.is_multiple_of(2).then(|| SourceImage {
        path: format!("cards/{seed}/{i}.png"),
        sha256: format!("{:064x}", seed * 1000 + i as u64),
    });
    NewTemplate { template, source }
}

/// Encounter number `seed` of `subject`, with `n` templates; every field derives from
/// `seed`, so a test can rebuild what it expects to read back.
pub fn encounter(subject_id: &str, seed: u64, n: usize) -> NewEncounter {
    NewEncounter {
        subject: subject(subject_id),
        captured_at_unix_ms: 1_700_000_000_000 + seed as i64 * 1000,
        location: Some(format!("post-{}", seed % 5)),
        operator: seed.is_multiple_of(2).then(|| "op-7".to_string()),
        biographic: BTreeMap::from([
            ("seed".to_string(), seed.to_string()),
            ("name".to_string(), format!("Person Ñandú {seed}")),
        ]),
        templates: (0..n).map(|i| template(seed, i)).collect(),
    }
}

/// Asserts that a stored template is exactly the `i`-th template of encounter `seed`.
pub fn assert_template_is(t: &StoredTemplate, seed: u64, i: usize) {
    let expected = template(seed, i);
    assert_eq!(t.template, expected.template, "template {} payload", t.id);
    assert_eq!(t.source, expected.source, "template {} source", t.id);
}

pub fn settings() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("face.algorithm".to_string(), "demo-face@1".to_string()),
        ("face.dimension".to_string(), "128".to_string()),
    ])
}

pub fn new_gallery() -> (tempfile::TempDir, Gallery) {
    let dir = tempfile::tempdir().expect("temp dir");
    let gallery = Gallery::create(&dir.path().join("g"), settings()).expect("create gallery");
    (dir, gallery)
}
