//! ISO/IEC 19794-2 and ANSI INCITS 378 minutiae records: real vendor templates (FVC2002,
//! when `../shared/datasets` is present), truncated files, corruption sweeps and property
//! tests.

use std::f32::consts::{PI, TAU};
use std::fs;
use std::path::{Path, PathBuf};

use huella_core::FingerPosition;
use huella_finger::{
    ExtendedData, FingerError, FingerTemplate, FingerView, Minutia, MinutiaKind, MinutiaeRecord,
    RecordFormat, RecordMinutia,
};
use proptest::prelude::*;

use crate::datasets;

/// Every `*.iso` under `fvc2002/DB*_B/`, sorted.
fn fvc_templates(datasets: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for db in 1..=4 {
        let dir = datasets.join(format!("fvc2002/DB{db}_B"));
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        files.extend(
            entries
                .map(|e| e.expect("readable directory entry").path())
                .filter(|p| p.extension().is_some_and(|e| e == "iso")),
        );
    }
    files.sort();
    files
}

fn synthetic(format: RecordFormat) -> MinutiaeRecord {
    MinutiaeRecord {
        format,
        cbeff_product_id: (format == RecordFormat::Ansi378_2004).then_some(0x0033_0001),
        equipment_certification: 1,
        capture_device_id: 42,
        width: 256,
        height: 360,
        resolution_x: 197,
        resolution_y: 197,
        reserved: 0,
        views: vec![
            FingerView {
                position: FingerPosition::LeftThumb,
                view_number: 0,
                impression_type: 1,
                quality: 70,
                minutiae: (0..5u16)
                    .map(|i| RecordMinutia {
                        kind: [MinutiaKind::Ending, MinutiaKind::Bifurcation][usize::from(i % 2)],
                        x: 30 + 40 * i,
                        y: 300 - 50 * i,
                        angle: (i * 35) as u8,
                        quality: 20 * i as u8,
                    })
                    .collect(),
                extended_data: vec![ExtendedData {
                    type_code: 0x0002,
                    data: vec![0x41, 0x00, 0x64, 0x00, 0x80],
                }],
            },
            FingerView {
                position: FingerPosition::LeftThumb,
                view_number: 1,
                impression_type: 1,
                quality: 55,
                minutiae: vec![RecordMinutia {
                    kind: MinutiaKind::Other,
                    x: 255,
                    y: 0,
                    angle: 90,
                    quality: 0,
                }],
                extended_data: Vec::new(),
            },
        ],
    }
}

fn is_typed_decode_error(result: &Result<MinutiaeRecord, FingerError>) -> bool {
    matches!(
        result,
        Err(FingerError::Truncated { .. } | FingerError::Corrupt { .. })
    )
}

#[test]
fn fvc2002_vendor_templates_decode_and_re_encode_byte_exact() {
    let Some(datasets) = datasets() else { return };
    let files = fvc_templates(&datasets);
    assert_eq!(files.len(), 320, "FVC2002 DB1-4 B: 4 x 80 templates");
    let mut counts = Vec::new();
    for path in &files {
        let bytes = fs::read(path).unwrap();
        let record =
            MinutiaeRecord::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            record.format,
            RecordFormat::Iso19794_2_2005,
            "{}",
            path.display()
        );
        assert_eq!(record.encode().unwrap(), bytes, "{}", path.display());
        assert_eq!(record.views.len(), 1, "{}", path.display());
        assert!((100..=2000).contains(&record.width), "{}", path.display());
        assert!((100..=2000).contains(&record.height), "{}", path.display());
        // About 500 ppi, stored in pixels per centimetre.
        assert!(
            (180..=220).contains(&record.resolution_x),
            "{}",
            path.display()
        );
        assert!(
            (180..=220).contains(&record.resolution_y),
            "{}",
            path.display()
        );
        let template = record.to_template(0).unwrap();
        assert!(
            (5..=255).contains(&template.minutiae.len()),
            "{}: {} minutiae",
            path.display(),
            template.minutiae.len()
        );
        assert!(template
            .minutiae
            .iter()
            .all(|m| (0.0..TAU).contains(&m.angle)));
        counts.push(template.minutiae.len());
    }
    let mean = counts.iter().sum::<usize>() as f64 / counts.len() as f64;
    println!(
        "FVC2002 ISO templates: {} files, minutiae min {} / mean {mean:.1} / max {}",
        counts.len(),
        counts.iter().min().unwrap(),
        counts.iter().max().unwrap()
    );
}

#[test]
fn truncated_iso_files_are_rejected_as_truncated() {
    let Some(datasets) = datasets() else { return };
    let mut seen = 0;
    for entry in fs::read_dir(datasets.join("iso-invalid")).unwrap() {
        let path = entry.unwrap().path();
        let result = MinutiaeRecord::decode(&fs::read(&path).unwrap());
        assert!(
            matches!(result, Err(FingerError::Truncated { .. })),
            "{}: {result:?}",
            path.display()
        );
        seen += 1;
    }
    assert_eq!(seen, 3);
}

/// Every proper prefix of a valid record is `Truncated` (the magic is a prefix too).
fn assert_every_truncation_is_typed(bytes: &[u8], name: &str) {
    for len in 0..bytes.len() {
        let result = MinutiaeRecord::decode(&bytes[..len]);
        assert!(
            matches!(result, Err(FingerError::Truncated { .. })),
            "{name} cut to {len}: {result:?}"
        );
    }
}

/// Every single-byte corruption decodes to a typed error or to a record that re-encodes
/// to exactly the corrupted bytes.
fn assert_every_corruption_is_handled(bytes: &[u8], name: &str) {
    let mut ok = 0;
    for at in 0..bytes.len() {
        for value in [bytes[at] ^ 0xFF, 0x00, 0xFF] {
            let mut corrupted = bytes.to_vec();
            corrupted[at] = value;
            let result = MinutiaeRecord::decode(&corrupted);
            match &result {
                Ok(record) => {
                    ok += 1;
                    let encoded = record.encode().expect("a decoded record encodes");
                    assert_eq!(encoded, corrupted, "{name} byte {at}");
                }
                _ => assert!(
                    is_typed_decode_error(&result),
                    "{name} byte {at}: {result:?}"
                ),
            }
        }
    }
    // Headers carry fields any value of which is valid (device id, resolution, ...).
    assert!(ok > 0, "{name}: no corruption decoded at all");
}

#[test]
fn truncation_and_corruption_sweeps() {
    for format in [RecordFormat::Iso19794_2_2005, RecordFormat::Ansi378_2004] {
        let bytes = synthetic(format).encode().unwrap();
        let name = format!("synthetic {}", format.name());
        assert_every_truncation_is_typed(&bytes, &name);
        assert_every_corruption_is_handled(&bytes, &name);
    }
    if let Some(datasets) = datasets() {
        let real = fvc_templates(&datasets).into_iter().next().unwrap();
        let bytes = fs::read(&real).unwrap();
        assert_every_truncation_is_typed(&bytes, &real.display().to_string());
        assert_every_corruption_is_handled(&bytes, &real.display().to_string());
    }
}

fn circular_distance(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(TAU);
    d.min(TAU - d)
}

#[test]
fn ansi_and_iso_convert_through_templates() {
    let mut records = vec![synthetic(RecordFormat::Iso19794_2_2005)];
    if let Some(datasets) = datasets() {
        for path in fvc_templates(&datasets) {
            records.push(MinutiaeRecord::decode(&fs::read(path).unwrap()).unwrap());
        }
    }
    let degree = PI / 180.0;
    for iso in records {
        for view in 0..iso.views.len() {
            let original = iso.to_template(view).unwrap();
            let ansi = MinutiaeRecord::from_template(&original, RecordFormat::Ansi378_2004)
                .unwrap()
                .encode()
                .unwrap();
            let ansi = MinutiaeRecord::decode(&ansi).unwrap();
            assert_eq!(ansi.format, RecordFormat::Ansi378_2004);
            let via_ansi = ansi.to_template(0).unwrap();
            let back = MinutiaeRecord::from_template(&via_ansi, RecordFormat::Iso19794_2_2005)
                .unwrap()
                .to_template(0)
                .unwrap();
            for (template, tolerance) in [(&via_ansi, 1.0 * degree), (&back, 1.71 * degree)] {
                assert_eq!(
                    (
                        template.width,
                        template.height,
                        template.position,
                        template.quality
                    ),
                    (
                        original.width,
                        original.height,
                        original.position,
                        original.quality
                    )
                );
                assert_eq!(template.minutiae.len(), original.minutiae.len());
                for (a, b) in template.minutiae.iter().zip(&original.minutiae) {
                    assert_eq!((a.x, a.y, a.kind, a.quality), (b.x, b.y, b.kind, b.quality));
                    assert!(circular_distance(a.angle, b.angle) <= tolerance + 1e-5);
                }
            }
        }
    }
    // A right angle is ISO 64 and ANSI 45.
    let mut iso = synthetic(RecordFormat::Iso19794_2_2005);
    iso.views[0].minutiae[0].angle = 64;
    let ansi =
        MinutiaeRecord::from_template(&iso.to_template(0).unwrap(), RecordFormat::Ansi378_2004)
            .unwrap();
    assert_eq!(ansi.views[0].minutiae[0].angle, 45);
}

fn kind() -> impl Strategy<Value = MinutiaKind> {
    prop_oneof![
        Just(MinutiaKind::Other),
        Just(MinutiaKind::Ending),
        Just(MinutiaKind::Bifurcation)
    ]
}

fn position() -> impl Strategy<Value = FingerPosition> {
    (0u8..=10).prop_map(|c| FingerPosition::from_code(c).expect("codes 0..=10 are positions"))
}

fn record_strategy() -> impl Strategy<Value = MinutiaeRecord> {
    let format = prop_oneof![
        Just(RecordFormat::Iso19794_2_2005),
        Just(RecordFormat::Ansi378_2004)
    ];
    (format, 1u16..=20_000, 1u16..=20_000).prop_flat_map(|(format, width, height)| {
        let steps = format.angle_steps();
        let minutia = (
            kind(),
            0..width.min(0x4000),
            0..height.min(0x4000),
            0..steps,
            0u8..=100,
        )
            .prop_map(|(kind, x, y, angle, quality)| RecordMinutia {
                kind,
                x,
                y,
                angle: angle as u8,
                quality,
            });
        let area = (any::<u16>(), prop::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(type_code, data)| ExtendedData { type_code, data });
        let view = (
            position(),
            0u8..16,
            0u8..16,
            0u8..=100,
            prop::collection::vec(minutia, 0..40),
            prop::collection::vec(area, 0..3),
        )
            .prop_map(
                |(position, view_number, impression_type, quality, minutiae, extended_data)| {
                    FingerView {
                        position,
                        view_number,
                        impression_type,
                        quality,
                        minutiae,
                        extended_data,
                    }
                },
            );
        (
            any::<u32>(),
            0u8..16,
            0u16..0x1000,
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
            prop::collection::vec(view, 0..4),
        )
            .prop_map(
                move |(product, certification, device, res_x, res_y, reserved, views)| {
                    MinutiaeRecord {
                        format,
                        cbeff_product_id: (format == RecordFormat::Ansi378_2004).then_some(product),
                        equipment_certification: certification,
                        capture_device_id: device,
                        width,
                        height,
                        resolution_x: res_x,
                        resolution_y: res_y,
                        reserved,
                        views,
                    }
                },
            )
    })
}

fn template_strategy() -> impl Strategy<Value = FingerTemplate> {
    (1u16..=20_000, 1u16..=20_000).prop_flat_map(|(width, height)| {
        let minutia = (
            0..width.min(0x4000),
            0..height.min(0x4000),
            0.0f32..TAU,
            kind(),
            0u8..=100,
        )
            .prop_map(|(x, y, angle, kind, quality)| Minutia {
                x,
                y,
                angle,
                kind,
                quality,
            });
        (
            any::<u16>(),
            any::<u16>(),
            position(),
            0u8..=100,
            prop::collection::vec(minutia, 0..60),
        )
            .prop_map(
                move |(resolution_x, resolution_y, position, quality, minutiae)| FingerTemplate {
                    width,
                    height,
                    resolution_x,
                    resolution_y,
                    position,
                    quality,
                    minutiae,
                },
            )
    })
}

proptest! {
    // No lib.rs beside an integration test for proptest to store regressions against.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(prop::test_runner::FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    })]

    #[test]
    fn records_round_trip(record in record_strategy()) {
        let bytes = record.encode().unwrap();
        let decoded = MinutiaeRecord::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &record);
        prop_assert_eq!(MinutiaeRecord::decode_as(&bytes, record.format).unwrap(), record);
    }

    #[test]
    fn templates_survive_a_record(template in template_strategy()) {
        for format in [RecordFormat::Iso19794_2_2005, RecordFormat::Ansi378_2004] {
            let bytes = MinutiaeRecord::from_template(&template, format).unwrap().encode().unwrap();
            let back = MinutiaeRecord::decode(&bytes).unwrap().to_template(0).unwrap();
            prop_assert_eq!(
                (back.width, back.height, back.resolution_x, back.resolution_y),
                (template.width, template.height, template.resolution_x, template.resolution_y)
            );
            prop_assert_eq!((back.position, back.quality), (template.position, template.quality));
            prop_assert_eq!(back.minutiae.len(), template.minutiae.len());
            let half_unit = TAU / f32::from(format.angle_steps()) / 2.0;
            for (a, b) in back.minutiae.iter().zip(&template.minutiae) {
                prop_assert_eq!((a.x, a.y, a.kind, a.quality), (b.x, b.y, b.kind, b.quality));
                prop_assert!((0.0..TAU).contains(&a.angle));
                prop_assert!(circular_distance(a.angle, b.angle) <= half_unit + 1e-5);
            }
        }
    }
}
