//! Integration tests of the minutiae extractor: typed failures, planted minutiae on
//! synthetic ridge patterns, determinism, resolution handling and FVC images.

use std::f32::consts::{PI, TAU};

use crate::image;
use huella_finger::{ExtractConfig, FingerError, FingerExtractor, Minutia, MinutiaKind};
use huella_imaging::{decode_file, resize_bilinear_grey, GreyImage, Limits};

/// Horizontal dark ridges of period 9 px with phase dislocations (one ridge more on
/// one side than on the other, Larkin & Fletcher 2007) at `(x, y, sign)`: one
/// minutia each.
fn ridges_with_minutiae(w: u32, h: u32, at: &[(f32, f32, f32)]) -> GreyImage {
    image(w, h, |x, y| {
        let phase: f32 = 2.0 * PI * y / 9.0
            + at.iter()
                .map(|&(cx, cy, s)| s * (y - cy).atan2(x - cx))
                .sum::<f32>();
        128.0 - 90.0 * phase.cos()
    })
}

fn near(m: &[Minutia], x: f32, y: f32, r: f32) -> Vec<Minutia> {
    m.iter()
        .copied()
        .filter(|m| (f32::from(m.x) - x).hypot(f32::from(m.y) - y) <= r)
        .collect()
}

fn no_fingerprint(img: &GreyImage) -> bool {
    matches!(
        FingerExtractor::default().extract(img, None),
        Err(FingerError::NoBiometricFound(_))
    )
}

#[test]
fn blank_uniform_tiny_and_noise_images_are_no_fingerprint() {
    assert!(no_fingerprint(&image(300, 300, |_, _| 255.0)));
    assert!(no_fingerprint(&image(300, 300, |_, _| 0.0)));
    assert!(no_fingerprint(&image(300, 300, |_, _| 128.0)));
    // A smooth gradient has contrast but no ridges.
    assert!(no_fingerprint(&image(300, 300, |x, y| (x + y) * 0.4)));
    // Too small, even with perfect ridges.
    assert!(no_fingerprint(&ridges_with_minutiae(40, 40, &[])));
    assert!(no_fingerprint(&image(1, 1, |_, _| 0.0)));
    // White noise from a fixed linear congruential generator.
    let mut state = 12345u32;
    let noise: Vec<u8> = (0..300 * 300)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect();
    let noise = GreyImage::from_raw(300, 300, noise).expect("sized");
    assert!(no_fingerprint(&noise));
}

/// `img` with ridges and valleys swapped.
fn inverted(img: &GreyImage) -> GreyImage {
    let data = img.as_raw().iter().map(|&v| 255 - v).collect();
    GreyImage::from_raw(img.width(), img.height(), data).expect("sized")
}

#[test]
fn planted_minutiae_are_found_with_the_iso_kind_and_direction() {
    // Opposite dislocations: an extra ridge opening to the right at the first, to the
    // left at the second.
    let planted = [(90.0, 100.0, 1.0), (190.0, 160.0, -1.0)];
    let img = ridges_with_minutiae(280, 260, &planted);
    let ex = FingerExtractor::default();
    let dark = ex.extract(&img, None).expect("ridges");
    let light = ex.extract(&inverted(&img), None).expect("ridges");
    for (ex, kind) in [
        (&dark, MinutiaKind::Bifurcation),
        (&light, MinutiaKind::Ending),
    ] {
        let m = &ex.template.minutiae;
        // Nothing else: the rest of the pattern is clean and the border is excluded.
        assert_eq!(m.len(), 2, "{m:?}");
        for (&(x, y, _), expected) in planted.iter().zip([0.0f32, PI]) {
            let close = near(m, x, y, 8.0);
            assert_eq!(close.len(), 1, "one minutia at ({x}, {y}), found {m:?}");
            assert_eq!(close[0].kind, kind);
            // ISO/IEC 19794-2: a bifurcation points between its branches, a ridge ending
            // (the dual, a valley bifurcation) into its ridge, so swapping ridges and
            // valleys swaps the kinds and keeps the directions.
            let a = close[0].angle;
            assert!((0.0..TAU).contains(&a));
            assert!(
                (a - expected).cos() > 0.94,
                "{kind:?} at ({x}, {y}): {} degrees",
                a.to_degrees()
            );
        }
    }
    let maps = &dark.maps;
    assert_eq!(maps.foreground.len(), maps.blocks_wide * maps.blocks_high);
    assert!(
        maps.foreground.iter().all(|&f| f),
        "all of the pattern is print"
    );
    for (i, f) in maps.frequency.iter().enumerate() {
        assert!((f - 1.0 / 9.0).abs() < 0.015, "frequency {f}");
        let o = maps.orientation[i];
        assert!(
            (0.0..PI).contains(&o) && o.sin().abs() < 0.3,
            "orientation {o}"
        );
    }
}

#[test]
fn extraction_is_deterministic() {
    let img = ridges_with_minutiae(256, 256, &[(100.0, 120.0, 1.0), (170.0, 90.0, 1.0)]);
    let a = FingerExtractor::default()
        .extract(&img, None)
        .expect("ridges");
    let b = FingerExtractor::default()
        .extract(&img, None)
        .expect("ridges");
    assert_eq!(a, b);
}

#[test]
fn resolution_is_checked_recorded_and_normalised() {
    let ex = FingerExtractor::default();
    let img = ridges_with_minutiae(256, 256, &[(128.0, 128.0, 1.0)]);
    for bad in [Some(100.0), Some(2000.0), Some(f32::NAN), Some(-500.0)] {
        assert!(matches!(
            ex.extract(&img, bad),
            Err(FingerError::Resolution { .. })
        ));
    }
    assert_eq!(
        ex.extract(&img, None).expect("ok").template.resolution_x,
        197
    );
    assert_eq!(
        ex.extract(&img, Some(508.0))
            .expect("ok")
            .template
            .resolution_x,
        200
    );
    // The same pattern scanned at 1000 ppi: resampled to 500, coordinates stay in the
    // input's pixels, the input resolution is recorded.
    let big = resize_bilinear_grey(&img, 512, 512);
    let t = ex.extract(&big, Some(1000.0)).expect("ok");
    assert_eq!((t.template.width, t.template.height), (512, 512));
    assert_eq!(t.template.resolution_x, 394);
    assert!((t.maps.scale - 0.5).abs() < 1e-6);
    assert_eq!(
        near(&t.template.minutiae, 256.0, 256.0, 14.0).len(),
        1,
        "{:?}",
        t.template.minutiae
    );
    // 250 ppi doubles the image.
    let small = resize_bilinear_grey(
        &ridges_with_minutiae(512, 512, &[(256.0, 256.0, 1.0)]),
        256,
        256,
    );
    let t = ex.extract(&small, Some(250.0)).expect("ok");
    assert_eq!(
        near(&t.template.minutiae, 128.0, 128.0, 8.0).len(),
        1,
        "{:?}",
        t.template.minutiae
    );
}

#[test]
fn bad_configurations_are_rejected() {
    let bad = [
        ExtractConfig {
            block_size: 0,
            ..ExtractConfig::default()
        },
        ExtractConfig {
            gabor_sigma_across: f32::NAN,
            ..ExtractConfig::default()
        },
        ExtractConfig {
            max_minutiae: 1000,
            ..ExtractConfig::default()
        },
    ];
    for c in bad {
        assert!(matches!(
            FingerExtractor::new(c),
            Err(FingerError::BadInput(_))
        ));
    }
    let few = FingerExtractor::new(ExtractConfig {
        max_minutiae: 1,
        ..ExtractConfig::default()
    })
    .expect("valid");
    let img = ridges_with_minutiae(280, 260, &[(90.0, 100.0, 1.0), (190.0, 160.0, -1.0)]);
    assert_eq!(
        few.extract(&img, None).expect("ok").template.minutiae.len(),
        1
    );
}

#[test]
fn fvc2002_images_give_plausible_templates() {
    let Some(root) = crate::datasets().map(|d| d.join("fvc2002")) else {
        return;
    };
    let ex = FingerExtractor::default();
    for (db, sample) in [
        ("DB1_B", "101_1"),
        ("DB2_B", "104_3"),
        ("DB3_B", "107_5"),
        ("DB4_B", "110_8"),
    ] {
        let path = root.join(db).join(format!("{sample}.tif"));
        let img = decode_file(&path, &Limits::default())
            .expect("decodes")
            .to_grey();
        let t = ex.extract(&img, None).expect("a fingerprint").template;
        let n = t.minutiae.len();
        assert!((15..=100).contains(&n), "{db}/{sample}: {n} minutiae");
        assert_eq!(
            (u32::from(t.width), u32::from(t.height)),
            (img.width(), img.height())
        );
        for m in &t.minutiae {
            assert!(u32::from(m.x) < img.width() && u32::from(m.y) < img.height());
            assert!((0.0..TAU).contains(&m.angle) && m.quality <= 100);
        }
        // Best quality first.
        assert!(t.minutiae.windows(2).all(|w| w[0].quality >= w[1].quality));
    }
}
