//! Engine integration tests: enrolment with de-duplication, identification,
//! verification, deletion, merging, persistence and bad input.
#![allow(clippy::unwrap_used)] // test helpers: a failure should stop the test

mod dedup;
mod faults;
mod fingers;
mod fused;
mod lifecycle;

use huella_engine::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use std::collections::BTreeMap;
use std::path::Path;

pub const DIM: usize = 32;

pub fn model() -> EmbeddingModel {
    format!("face:test-face@1:{DIM}").parse().unwrap()
}

/// Identity-structured synthetic captures: a centre per person plus noise.
#[derive(Debug)]
pub struct People {
    pub rng: StdRng,
    pub centres: Vec<Vec<f32>>,
}

impl People {
    pub fn new(n: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let centres = (0..n)
            .map(|_| (0..DIM).map(|_| rng.sample(StandardNormal)).collect())
            .collect();
        Self { rng, centres }
    }

    /// A fresh capture of person `i` (mate cosine about 0.92, rarely below 0.8).
    pub fn capture(&mut self, i: usize) -> Template {
        let v: Vec<f32> = self.centres[i]
            .iter()
            .map(|c| c + 0.3 * self.rng.sample::<f32, _>(StandardNormal))
            .collect();
        Template::from_embedding(
            Modality::Face,
            model().algorithm,
            Embedding::new(v).unwrap(),
        )
    }

    pub fn encounter(&mut self, subject: &str, i: usize) -> NewEncounter {
        NewEncounter {
            subject: SubjectId::new(subject).unwrap(),
            captured_at_unix_ms: 1_764_403_200_000,
            location: Some("Post 1".into()),
            operator: Some("op".into()),
            biographic: BTreeMap::from([("name".to_string(), format!("Person {i}"))]),
            templates: vec![NewTemplate {
                template: self.capture(i),
                source: None,
            }],
        }
    }
}

pub fn engine(dir: &Path, kind: IndexKind) -> Engine {
    Engine::builder()
        .gallery(dir)
        .create_if_missing(true)
        .model(model())
        .index(kind)
        .build()
        .unwrap()
}

/// Enrol person i as subject `S{i}` for i in 0..n.
pub fn enrol_all(engine: &Engine, people: &mut People, n: usize) {
    for i in 0..n {
        engine
            .enroll(
                people.encounter(&format!("S{i}"), i),
                &IdentifyOptions::default(),
            )
            .unwrap();
    }
}
