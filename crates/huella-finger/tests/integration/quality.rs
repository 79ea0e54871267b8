//! Integration tests of `finger_quality` on synthetic impressions: a clean ridge
//! pattern scores higher than degraded versions of it, in range and deterministically.

use std::f32::consts::PI;

use crate::image;
use huella_finger::{finger_quality, FingerExtractor, FingerQuality};
use huella_imaging::GreyImage;

/// Deterministic white noise in `[-1, 1]` for pixel `(x, y)`.
fn noise(x: f32, y: f32) -> f32 {
    let mut s = (x as u32).wrapping_mul(73_856_093) ^ (y as u32).wrapping_mul(19_349_663);
    s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
    s ^= s >> 15;
    s = s.wrapping_mul(2_246_822_519);
    s ^= s >> 13;
    (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
}

/// Ridge phase at `(x, y)`: gently curved ridges of period ~9 px with phase
/// dislocations (one minutia each) scattered over the image.
fn phase(x: f32, y: f32) -> f32 {
    let dislocations = [
        (70.0, 80.0, 1.0),
        (200.0, 90.0, -1.0),
        (120.0, 170.0, 1.0),
        (230.0, 220.0, -1.0),
        (80.0, 240.0, -1.0),
        (170.0, 250.0, 1.0),
    ];
    let bend = 6.0 * (x / 60.0).sin();
    2.0 * PI * (y + bend) / 9.0
        + dislocations
            .iter()
            .map(|&(cx, cy, s): &(f32, f32, f32)| s * (y - cy).atan2(x - cx))
            .sum::<f32>()
}

fn clean() -> GreyImage {
    image(300, 300, |x, y| 128.0 - 90.0 * phase(x, y).cos())
}

/// Faint ridges drowned in noise.
fn low_contrast() -> GreyImage {
    image(300, 300, |x, y| {
        128.0 - 22.0 * phase(x, y).cos() + 45.0 * noise(x, y)
    })
}

/// A mostly blank image with a small patch of ridges.
fn blank_ish() -> GreyImage {
    image(300, 300, |x, y| {
        if (110.0..200.0).contains(&x) && (110.0..200.0).contains(&y) {
            128.0 - 90.0 * phase(x, y).cos()
        } else {
            235.0 + 4.0 * noise(x, y)
        }
    })
}

fn quality(img: &GreyImage) -> FingerQuality {
    let ex = FingerExtractor::default()
        .extract(img, None)
        .expect("these images hold ridges");
    finger_quality(&ex)
}

#[test]
fn degraded_impressions_score_lower_than_a_clean_one() {
    let good = quality(&clean());
    let faint = quality(&low_contrast());
    let small = quality(&blank_ish());
    assert!(good.score >= 50, "clean ridges: {good:?}");
    assert!(
        faint.score < good.score,
        "low contrast {faint:?} vs clean {good:?}"
    );
    assert!(
        small.score < good.score,
        "small patch {small:?} vs clean {good:?}"
    );
    // Why: the patch has little area, the noise blurs the ridge flow.
    assert!(small.components.foreground_area_mm2 < good.components.foreground_area_mm2);
    assert!(faint.components.coherence_mean < good.components.coherence_mean);
}

#[test]
fn scores_are_in_range_and_deterministic() {
    for img in [clean(), low_contrast(), blank_ish()] {
        let a = quality(&img);
        let b = quality(&img);
        assert_eq!(a, b);
        assert!(a.score <= 100);
        let c = a.components;
        assert!((0.0..=1.0).contains(&c.foreground_fraction), "{c:?}");
        assert!((0.0..=1.0).contains(&c.coherence_mean), "{c:?}");
        assert!((0.0..=1.0).contains(&c.frequency_consistency), "{c:?}");
        assert!((0.0..=1.0).contains(&c.minutia_quality_mean), "{c:?}");
        assert!(c.mapped.iter().all(|m| (0.0..=1.0).contains(m)), "{c:?}");
    }
}

#[test]
fn a_template_serialises_its_quality() {
    let q = quality(&clean());
    let json = serde_json::to_string(&q).expect("serialise");
    let back: FingerQuality = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, q);
}
