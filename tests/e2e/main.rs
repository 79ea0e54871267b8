//! End-to-end tests of the `huella` binary: the commands a user runs, bad input files,
//! and a `kill -9` in the middle of a stream of enrolments.
#![allow(clippy::unwrap_used)] // test helpers: a failure should stop the test

mod cli;
mod crash;
mod dedup;
mod eval;
mod face;
mod finger;
mod ingest;
mod nist;
mod population;
mod rescore;

use std::path::Path;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_huella");
pub const DIM: usize = 16;
pub const MODEL: &str = "face:e2e-face@1:16";

/// Run `huella args...` and return its output.
pub fn huella(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run huella")
}

/// Run and require success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = huella(args);
    assert!(
        out.status.success(),
        "huella {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run and require a clean failure (exit 1, a message, no panic); returns stderr.
pub fn fails(args: &[&str]) -> String {
    let out = huella(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "huella {args:?} should fail cleanly: {err}"
    );
    assert!(
        err.starts_with("error: ") && !err.contains("panicked"),
        "{err}"
    );
    err
}

/// A deterministic embedding for person `i`, capture `k` (mates close, others far).
pub fn embedding(i: usize, k: usize) -> Vec<f32> {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 2001) as f32 / 1000.0 - 1.0
    };
    let centre: Vec<f32> = (0..DIM).map(|_| next()).collect();
    centre
        .iter()
        .enumerate()
        .map(|(d, c)| c + 0.05 * (((d * 7 + k * 13) % 11) as f32 - 5.0) / 5.0)
        .collect()
}

pub fn template_json(v: &[f32]) -> serde_json::Value {
    serde_json::json!({"modality": "face", "algorithm": "e2e-face@1", "embedding": v})
}

pub fn encounter_json(subject: &str, v: &[f32]) -> String {
    serde_json::json!({
        "subject": subject, "captured_at": "2026-11-29T08:00:00Z", "location": "Post 1",
        "biographic": {"name": "Test Person"}, "templates": [template_json(v)]
    })
    .to_string()
}

pub fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap();
    path.to_str().unwrap().to_string()
}
