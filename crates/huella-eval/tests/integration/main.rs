//! Integration tests of huella-eval: hand-computed edge cases, bad input files,
//! identification, demographics, the bootstrap, agreement with pyeer, and the HTML report
//! in a real browser.
#![allow(clippy::unwrap_used)]

mod bad_input;
mod browser;
mod identification;
mod pyeer;
mod verification;

use std::path::Path;

/// Write `text` to `dir/name` and return the path.
pub fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// True when the test must not skip for a missing tool (CI sets CI=true).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Deterministic scores: genuine ~ N(0.7, 0.1), impostor ~ N(0.3, 0.1) by Box-Muller on
/// SplitMix64, rounded to f32; with `discrete`, rounded to integers in 0..=60 (many ties).
pub fn synthetic(ng: usize, ni: usize, seed: u64, discrete: bool) -> (Vec<f32>, Vec<f32>) {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut normal = move |m: f64, sd: f64| {
        let (u1, u2) = (next().max(1e-300), next());
        m + sd * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    };
    let mut draw = |m: f64, n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                let v = normal(m, 0.1);
                if discrete {
                    (v * 60.0).round().clamp(0.0, 60.0) as f32
                } else {
                    v as f32
                }
            })
            .collect()
    };
    let g = draw(0.7, ng);
    let i = draw(0.3, ni);
    (g, i)
}
