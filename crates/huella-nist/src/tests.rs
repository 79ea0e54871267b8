//! Decoding, encoding and the typed views on valid and hostile transactions.
#![allow(clippy::unwrap_used)]

use huella_core::FingerPosition;
use huella_finger::{FingerTemplate, Minutia, MinutiaKind};
use proptest::prelude::*;

use crate::*;

fn template() -> FingerTemplate {
    FingerTemplate {
        width: 300,
        height: 400,
        resolution_x: 197,
        resolution_y: 197,
        position: FingerPosition::LeftIndex,
        quality: 60,
        minutiae: vec![
            Minutia {
                x: 10,
                y: 20,
                angle: 90f32.to_radians(),
                kind: MinutiaKind::Ending,
                quality: 40,
            },
            Minutia {
                x: 299,
                y: 399,
                angle: 358f32.to_radians(),
                kind: MinutiaKind::Bifurcation,
                quality: 0,
            },
        ],
    }
}

/// A transaction with every record type Huella reads.
fn sample() -> Transaction {
    let mut t = Transaction::new();
    t.header = t
        .header
        .with_text(4, "CAR")
        .with_text(5, "20261129")
        .with_text(9, "TCN-42")
        .with_text(11, "19.69")
        .with_text(12, "19.69");
    t.records.push(Record::biographic(
        0,
        &Biographic {
            name: Some("DOE,JANE".into()),
            date_of_birth: Some("1980-01-02".into()),
            nationality: Some("XX".into()),
            document_number: Some("PP-X123".into()),
        },
    ));
    t.records.push(Record::face(
        1,
        FaceCompression::Jpeg,
        3,
        2,
        b"\xff\xd8 not really a jpeg \x1c\x1d".to_vec(),
    ));
    t.records.push(Record::finger_image(
        2,
        FingerPosition::RightIndex,
        FingerCompression::None,
        4,
        3,
        Some(500),
        (0u8..12).collect(),
    ));
    t.records.push(Record::Type4(Type4Record {
        idc: 3,
        impression: 1,
        positions: [7, 255, 255, 255, 255, 255],
        resolution: 0,
        width: 2,
        height: 2,
        compression: 0,
        data: vec![1, 2, 3, 4],
    }));
    t.records.push(Record::minutiae(4, &template()));
    t
}

#[test]
fn a_transaction_round_trips_and_reads_back() {
    let t = sample();
    let bytes = t.encode().unwrap();
    let back = Transaction::decode(&bytes).unwrap();
    assert_eq!(back, t);
    assert_eq!(back.encode().unwrap(), bytes);
    assert_eq!(back.version(), Some("0500"));
    assert_eq!(back.control_number(), Some("TCN-42"));
    let b = back.biographic().unwrap();
    assert_eq!(b.name.as_deref(), Some("DOE,JANE"));
    assert_eq!(b.date_of_birth.as_deref(), Some("1980-01-02"));
    assert_eq!(b.nationality.as_deref(), Some("XX"));
    assert_eq!(b.document_number.as_deref(), Some("PP-X123"));

    let faces = back.faces();
    let face = faces[0].as_ref().unwrap();
    assert_eq!((face.record_index, face.width, face.height), (2, 3, 2));
    assert_eq!(face.compression, FaceCompression::Jpeg);
    assert!(face.data.ends_with(b"\x1c\x1d"));

    let fingers = back.finger_images();
    assert_eq!(fingers.len(), 2);
    let f14 = fingers[0].as_ref().unwrap();
    assert_eq!(
        (f14.record_type, f14.position, f14.width, f14.height),
        (14, FingerPosition::RightIndex, 4, 3)
    );
    assert_eq!(f14.ppi, Some(500.0));
    assert_eq!(f14.data.len(), 12);
    let f4 = fingers[1].as_ref().unwrap();
    assert_eq!(
        (f4.record_type, f4.position, f4.compression),
        (4, FingerPosition::LeftIndex, FingerCompression::None)
    );
    assert!((f4.ppi.unwrap() - 500.1).abs() < 0.1, "{:?}", f4.ppi);

    let minutiae = back.finger_minutiae();
    let m = minutiae[0].as_ref().unwrap();
    assert_eq!(m.position(), FingerPosition::LeftIndex);
    let want = template();
    assert_eq!(m.template.minutiae.len(), 2);
    assert_eq!(
        (m.template.width, m.template.height, m.template.quality),
        (300, 400, 60)
    );
    for (got, want) in m.template.minutiae.iter().zip(&want.minutiae) {
        assert_eq!(
            (got.x, got.y, got.kind, got.quality),
            (want.x, want.y, want.kind, want.quality)
        );
        let d = (got.angle - want.angle).abs();
        assert!(
            d < 1f32.to_radians() + 1e-4,
            "{} vs {}",
            got.angle,
            want.angle
        );
    }
}

#[test]
fn the_length_fields_are_computed() {
    let bytes = sample().encode().unwrap();
    // The Type-1's LEN counts the whole record, its own field included.
    let fs = bytes.iter().position(|b| *b == FS).unwrap();
    let text = std::str::from_utf8(&bytes[..fs]).unwrap();
    let len: usize = text[6..text.find('\x1d').unwrap()].parse().unwrap();
    assert_eq!(len, fs + 1);
    assert!(
        text.contains("1.003:1\x1f5\x1e2\x1f00\x1e10\x1f01\x1e14\x1f02\x1e4\x1f03\x1e9\x1f04"),
        "{text:?}"
    );
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = sample().encode().unwrap();
    for n in 0..bytes.len() {
        assert!(
            Transaction::decode(&bytes[..n]).is_err(),
            "{n} of {} bytes decoded",
            bytes.len()
        );
    }
}

/// Replaces the first occurrence of `from` by `to` in an encoded transaction.
fn patch(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
    [&bytes[..at], to, &bytes[at + from.len()..]].concat()
}

/// The (offset, LEN) of the tagged record of type `t` in an encoded transaction.
fn len_of(bytes: &[u8], t: &str) -> (usize, usize) {
    let tag = format!("{t}.001:");
    let at = bytes
        .windows(tag.len())
        .position(|w| w == tag.as_bytes())
        .unwrap();
    let start = at + tag.len();
    let end = start + bytes[start..].iter().position(|b| *b == GS).unwrap();
    (
        at,
        std::str::from_utf8(&bytes[start..end])
            .unwrap()
            .parse()
            .unwrap(),
    )
}

#[test]
fn a_len_larger_than_the_bytes_left_is_truncation() {
    let bytes = sample().encode().unwrap();
    let (_, len) = len_of(&bytes, "10");
    let bad = patch(
        &bytes,
        format!("10.001:{len}").as_bytes(),
        format!("10.001:{}", len + 10_000_000).as_bytes(),
    );
    match Transaction::decode(&bad) {
        Err(NistError::Truncated {
            record_index: 2,
            record_type: 10,
            needed,
            ..
        }) => {
            assert!(needed > 10_000_000)
        }
        other => panic!("{other:?}"),
    }
    // A LEN of 10 digits, far past the input, allocates nothing.
    let bad = patch(
        &bytes,
        format!("10.001:{len}").as_bytes(),
        b"10.001:9999999999",
    );
    assert!(matches!(
        Transaction::decode(&bad),
        Err(NistError::Truncated { .. })
    ));
    // Type-4: LEN in its first four bytes.
    let mut t = sample();
    t.records.truncate(4);
    let bytes = t.encode().unwrap();
    let at = bytes.len() - (TYPE4_HEADER_BYTES + 4);
    let mut bad = bytes.clone();
    bad[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Transaction::decode(&bad),
        Err(NistError::Truncated {
            record_index: 4,
            record_type: 4,
            ..
        })
    ));
}

#[test]
fn a_len_smaller_than_its_header_is_malformed() {
    let bytes = sample().encode().unwrap();
    let (_, len) = len_of(&bytes, "2");
    for small in ["0", "5", "8"] {
        let bad = patch(
            &bytes,
            format!("2.001:{len}").as_bytes(),
            format!("2.001:{small}").as_bytes(),
        );
        assert!(
            matches!(
                Transaction::decode(&bad),
                Err(NistError::Malformed {
                    record_index: 1,
                    record_type: 2,
                    ..
                })
            ),
            "{small}: {:?}",
            Transaction::decode(&bad)
        );
    }
    let mut t = sample();
    t.records.truncate(4);
    let bytes = t.encode().unwrap();
    let at = bytes.len() - (TYPE4_HEADER_BYTES + 4);
    for small in [0u32, 17] {
        let mut bad = bytes.clone();
        bad[at..at + 4].copy_from_slice(&small.to_be_bytes());
        assert!(matches!(
            Transaction::decode(&bad),
            Err(NistError::Malformed {
                record_index: 4,
                record_type: 4,
                field: Some(1),
                ..
            })
        ));
    }
}

#[test]
fn cnt_must_agree_with_the_records() {
    let t = sample();
    let bytes = t.encode().unwrap();
    // The records of a shorter transaction under this one's Type-1: fewer records.
    let (_, header_len) = len_of(&bytes, "1");
    let mut short = t.clone();
    short.records.truncate(2);
    let short_bytes = short.encode().unwrap();
    let (_, short_header) = len_of(&short_bytes, "1");
    let fewer = [&bytes[..header_len], &short_bytes[short_header..]].concat();
    assert_eq!(
        Transaction::decode(&fewer),
        Err(NistError::CountMismatch {
            declared: 5,
            found: 2
        })
    );
    // Extra bytes after the last record.
    let more = [&bytes[..], b"2.001:3"].concat();
    assert!(matches!(
        Transaction::decode(&more),
        Err(NistError::Malformed {
            record_index: 0,
            field: Some(3),
            ..
        })
    ));
    // The count in CNT's first subfield disagrees with the list.
    let bad = patch(&bytes, b"1.003:1\x1f5", b"1.003:1\x1f6");
    assert!(matches!(
        Transaction::decode(&bad),
        Err(NistError::Malformed {
            record_index: 0,
            field: Some(3),
            ..
        })
    ));
    // CNT names a Type-2 where a Type-10 is.
    let bad = patch(&bytes, b"\x1e10\x1f01", b"\x1e2\x1f001");
    assert!(matches!(
        Transaction::decode(&bad),
        Err(NistError::Malformed {
            record_index: 2,
            ..
        })
    ));
    // The IDC differs.
    let bad = patch(&bytes, b"\x1e10\x1f01", b"\x1e10\x1f07");
    assert!(matches!(
        Transaction::decode(&bad),
        Err(NistError::Malformed {
            record_index: 2,
            field: Some(2),
            ..
        })
    ));
    // No CNT at all.
    let bare = b"1.001:20\x1d1.002:0500\x1c";
    assert!(matches!(
        Transaction::decode(bare),
        Err(NistError::Malformed { field: Some(3), .. })
    ));
}

#[test]
fn tags_must_be_numeric_and_unique() {
    let bytes = sample().encode().unwrap();
    for (from, to) in [
        (&b"2.018:"[..], &b"2.X18:"[..]),
        (b"2.018:", b"2.018;"),
        (b"2.018:", b"2.:018"),
        (b"2.018:", b"9.018:"),
    ] {
        let bad = patch(&bytes, from, to);
        assert!(
            matches!(
                Transaction::decode(&bad),
                Err(NistError::Malformed {
                    record_index: 1,
                    record_type: 2,
                    ..
                })
            ),
            "{:?}: {:?}",
            String::from_utf8_lossy(to),
            Transaction::decode(&bad)
        );
    }
    let bad = patch(&bytes, b"2.018:", b"2.021:");
    assert_eq!(
        Transaction::decode(&bad),
        Err(NistError::DuplicateField {
            record_index: 1,
            record_type: 2,
            field: 21
        })
    );
    let bad = patch(&bytes, b"2.018:", b"2.001:");
    assert!(matches!(
        Transaction::decode(&bad),
        Err(NistError::DuplicateField { field: 1, .. })
    ));
}

#[test]
fn unknown_record_types_are_unsupported() {
    let bytes = sample().encode().unwrap();
    for (t, want) in [("50\x1f0", 50u8), ("0\x1f00", 0), ("11\x1f0", 11)] {
        let bad = patch(&bytes, b"\x1e2\x1f00", format!("\x1e{t}").as_bytes());
        assert!(
            matches!(Transaction::decode(&bad), Err(NistError::Unsupported { record_index: 1, record_type, .. }) if record_type == want),
            "{t:?}: {:?}",
            Transaction::decode(&bad)
        );
    }
    // Other tagged types, and the binary Types 3, 5-8, are carried, uninterpreted.
    let mut t = sample();
    t.records.push(Record::Tagged(
        TaggedRecord::new(17)
            .with_text(2, "05")
            .with_text(3, "1")
            .with_data(vec![0x1c; 3]),
    ));
    for (k, record_type) in [3u8, 5, 6, 7, 8].into_iter().enumerate() {
        t.records.push(Record::Opaque(OpaqueRecord {
            record_type,
            idc: 6 + k as u8,
            body: vec![0x1c, 0x1d, record_type],
        }));
    }
    let bytes = t.encode().unwrap();
    let back = Transaction::decode(&bytes).unwrap();
    assert_eq!(back, t);
    assert_eq!(back.finger_images().len(), 2);
    // An opaque record's LEN is checked like any other.
    let at = bytes.len() - 8;
    let mut bad = bytes.clone();
    bad[at..at + 4].copy_from_slice(&4u32.to_be_bytes());
    assert!(matches!(
        Transaction::decode(&bad),
        Err(NistError::Malformed {
            record_type: 8,
            field: Some(1),
            ..
        })
    ));
    bad[at..at + 4].copy_from_slice(&9u32.to_be_bytes());
    assert!(matches!(
        Transaction::decode(&bad),
        Err(NistError::Truncated {
            record_type: 8,
            needed: 9,
            available: 8,
            ..
        })
    ));
    let mut t = sample();
    t.records.push(Record::Opaque(OpaqueRecord {
        record_type: 4,
        idc: 9,
        body: vec![],
    }));
    assert!(matches!(
        t.encode(),
        Err(NistError::Encode { record_type: 4, .. })
    ));
}

#[test]
fn text_must_be_ascii_unless_utf8_is_declared() {
    let mut t = sample();
    let Record::Tagged(r) = &mut t.records[0] else {
        panic!()
    };
    r.fields.iter_mut().find(|f| f.number == NAM).unwrap().value =
        FieldValue::Text("NÚÑEZ,ANA".into());
    assert!(matches!(
        t.encode(),
        Err(NistError::Encode {
            field: Some(18),
            ..
        })
    ));
    // Latin-1 bytes in a file without DCS.
    let bytes = sample().encode().unwrap();
    let bad = patch(&bytes, b"DOE,JANE", b"D\xd3E,JANE");
    assert_eq!(
        Transaction::decode(&bad),
        Err(NistError::NotText {
            record_index: 1,
            record_type: 2,
            field: 18,
            offset: 1,
            expected: "ASCII"
        })
    );
    // With 1.015 DCS naming UTF-8, UTF-8 names read and write.
    t.header = t.header.with_items(15, &[&["3", "UTF-8", ""]]);
    let back = Transaction::decode(&t.encode().unwrap()).unwrap();
    assert_eq!(
        back.biographic().unwrap().name.as_deref(),
        Some("NÚÑEZ,ANA")
    );
    // ... but still not Latin-1.
    let bad = patch(&t.encode().unwrap(), "Ú".as_bytes(), b"\xda\x20");
    assert!(matches!(
        Transaction::decode(&bad),
        Err(NistError::NotText {
            expected: "UTF-8",
            ..
        })
    ));
}

#[test]
fn a_type4_with_huge_dimensions_is_refused_without_allocating() {
    let mut t = sample();
    let Record::Type4(r) = &mut t.records[3] else {
        panic!()
    };
    r.width = u16::MAX;
    r.height = u16::MAX;
    let back = Transaction::decode(&t.encode().unwrap()).unwrap();
    let fingers = back.finger_images();
    assert!(matches!(
        fingers[1],
        Err(NistError::Malformed {
            record_index: 4,
            record_type: 4,
            ..
        })
    ));
    // The Type-14 beside it is still read.
    assert!(fingers[0].is_ok());
    // Zero sides and a compression other than none/WSQ.
    let Record::Type4(r) = &mut t.records[3] else {
        panic!()
    };
    r.width = 0;
    assert!(matches!(
        Transaction::decode(&t.encode().unwrap())
            .unwrap()
            .finger_images()[1],
        Err(NistError::Malformed { .. })
    ));
    let Record::Type4(r) = &mut t.records[3] else {
        panic!()
    };
    r.compression = 2;
    assert!(matches!(
        Transaction::decode(&t.encode().unwrap())
            .unwrap()
            .finger_images()[1],
        Err(NistError::Unsupported { field: Some(8), .. })
    ));
}

/// The sample with field `number` of the Type-9 replaced.
fn with_type9_field(number: u32, value: &str) -> Transaction {
    let mut t = sample();
    let Record::Tagged(r) = &mut t.records[4] else {
        panic!()
    };
    match r.fields.iter_mut().find(|f| f.number == number) {
        Some(f) => f.value = FieldValue::Text(value.into()),
        None => r.fields.push(Field {
            number,
            value: FieldValue::Text(value.into()),
        }),
    }
    t
}

#[test]
fn type9_minutia_counts_must_match() {
    for nom in ["1", "3", "300"] {
        let t = with_type9_field(136, nom);
        let back = Transaction::decode(&t.encode().unwrap()).unwrap();
        assert!(
            matches!(
                back.finger_minutiae()[0],
                Err(NistError::Malformed {
                    record_index: 5,
                    record_type: 9,
                    field: Some(136),
                    ..
                })
            ),
            "{nom}"
        );
    }
    // No minutiae at all is fine when NOM says so.
    let mut t = sample();
    t.records[4] = Record::minutiae(
        4,
        &FingerTemplate {
            minutiae: vec![],
            ..template()
        },
    );
    let back = Transaction::decode(&t.encode().unwrap()).unwrap();
    assert!(back.finger_minutiae()[0]
        .as_ref()
        .unwrap()
        .template
        .minutiae
        .is_empty());
}

#[test]
fn type9_minutiae_must_lie_inside_the_image() {
    for fmd in [
        "1\x1f300\x1f20\x1f45\x1f40\x1f1",
        "1\x1f10\x1f400\x1f45\x1f40\x1f1",
        "1\x1f10\x1f20\x1f180\x1f40\x1f1",
        "1\x1f10\x1f20\x1f45\x1f101\x1f1",
        "1\x1f10\x1f20\x1f45\x1f40\x1f3",
        "1\x1f10\x1f20\x1f45\x1f40",
        "1\x1f10\x1f-2\x1f45\x1f40\x1f1",
    ] {
        let t = with_type9_field(137, &format!("{fmd}\x1e2\x1f1\x1f1\x1f0\x1f0\x1f0"));
        let back = Transaction::decode(&t.encode().unwrap()).unwrap();
        assert!(
            matches!(
                back.finger_minutiae()[0],
                Err(NistError::Malformed {
                    field: Some(137),
                    ..
                })
            ),
            "{fmd:?}: {:?}",
            back.finger_minutiae()[0]
        );
    }
}

#[test]
fn unsupported_type9_content_is_typed() {
    let mut t = sample();
    t.records[4] = Record::Tagged(
        TaggedRecord::new(9)
            .with_text(2, "04")
            .with_text(3, "0")
            .with_text(4, "S")
            .with_text(10, "1")
            .with_text(12, "1\x1f01230456090\x1f0\x1fA"),
    );
    let back = Transaction::decode(&t.encode().unwrap()).unwrap();
    assert!(matches!(
        back.finger_minutiae()[0],
        Err(NistError::Unsupported {
            record_type: 9,
            field: Some(12),
            ..
        })
    ));
    let t = with_type9_field(134, "13");
    let back = Transaction::decode(&t.encode().unwrap()).unwrap();
    assert!(matches!(
        back.finger_minutiae()[0],
        Err(NistError::Unsupported {
            field: Some(134),
            ..
        })
    ));
}

#[test]
fn slaps_are_skipped_records_not_failed_transactions() {
    let mut t = sample();
    t.records.push(Record::finger_image(
        5,
        FingerPosition::Unknown,
        FingerCompression::Png,
        10,
        10,
        None,
        vec![1],
    ));
    let Record::Tagged(r) = t.records.last_mut().unwrap() else {
        panic!()
    };
    r.fields.iter_mut().find(|f| f.number == 13).unwrap().value = FieldValue::Text("13".into());
    let back = Transaction::decode(&t.encode().unwrap()).unwrap();
    let fingers = back.finger_images();
    assert_eq!(fingers.len(), 3);
    assert!(fingers[0].is_ok() && fingers[1].is_ok());
    assert!(matches!(
        fingers[2],
        Err(NistError::Unsupported {
            record_index: 6,
            record_type: 14,
            field: Some(13),
            ..
        })
    ));
}

#[test]
fn bad_biographic_dates_and_raw_sizes_are_reported() {
    let mut t = sample();
    let Record::Tagged(r) = &mut t.records[0] else {
        panic!()
    };
    r.fields.iter_mut().find(|f| f.number == DOB).unwrap().value =
        FieldValue::Text("19801302".into());
    let back = Transaction::decode(&t.encode().unwrap()).unwrap();
    assert!(matches!(
        back.biographic(),
        Err(NistError::Malformed {
            record_index: 1,
            field: Some(22),
            ..
        })
    ));
    // A raw face whose data does not fill width x height x 1 or 3.
    let mut t = sample();
    t.records[1] = Record::face(1, FaceCompression::None, 3, 2, vec![0; 7]);
    let back = Transaction::decode(&t.encode().unwrap()).unwrap();
    assert!(matches!(
        back.faces()[0],
        Err(NistError::Malformed {
            field: Some(999),
            ..
        })
    ));
    t.records[1] = Record::face(1, FaceCompression::None, 3, 2, vec![0; 18]);
    let back = Transaction::decode(&t.encode().unwrap()).unwrap();
    assert_eq!(back.faces()[0].as_ref().unwrap().raw_channels, Some(3));
}

#[test]
fn oversized_input_is_refused_first() {
    let big = vec![b'1'; MAX_TRANSACTION_BYTES + 1];
    assert_eq!(
        Transaction::decode(&big),
        Err(NistError::TooLarge {
            len: MAX_TRANSACTION_BYTES + 1,
            max: MAX_TRANSACTION_BYTES
        })
    );
    assert!(matches!(
        Transaction::decode(b""),
        Err(NistError::Truncated {
            record_index: 0,
            ..
        })
    ));
    assert!(matches!(
        Transaction::decode(b"GIF89a"),
        Err(NistError::Malformed {
            record_index: 0,
            ..
        })
    ));
}

#[test]
fn encode_refuses_what_decode_would_not_read_back() {
    let mut t = sample();
    t.header = t.header.with_text(3, "1\x1f0");
    assert!(matches!(
        t.encode(),
        Err(NistError::Encode { field: Some(3), .. })
    ));
    let mut t = sample();
    t.records.push(Record::Tagged(
        TaggedRecord::new(2).with_text(2, "9").with_text(1, "12"),
    ));
    assert!(matches!(
        t.encode(),
        Err(NistError::Encode { field: Some(1), .. })
    ));
    let mut t = sample();
    t.records.push(Record::Tagged(
        TaggedRecord::new(2)
            .with_text(2, "9")
            .with_text(18, "A\x1dB"),
    ));
    assert!(matches!(
        t.encode(),
        Err(NistError::Encode {
            field: Some(18),
            ..
        })
    ));
    let mut t = sample();
    t.records
        .push(Record::Tagged(TaggedRecord::new(2).with_text(18, "A")));
    assert!(matches!(
        t.encode(),
        Err(NistError::Encode { field: Some(2), .. })
    ));
    let mut t = sample();
    t.records.push(Record::Tagged(
        TaggedRecord::new(10)
            .with_text(2, "9")
            .with_data(vec![1])
            .with_text(3, "FACE"),
    ));
    assert!(matches!(
        t.encode(),
        Err(NistError::Encode {
            field: Some(999),
            ..
        })
    ));
    let mut t = sample();
    t.records
        .push(Record::Tagged(TaggedRecord::new(7).with_text(2, "9")));
    assert!(matches!(
        t.encode(),
        Err(NistError::Encode { record_type: 7, .. })
    ));
}

/// Printable ASCII text with subfield and item separators.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![8 => 0x20u8..=0x7E, 1 => Just(RS), 1 => Just(US)],
        1..20,
    )
    .prop_map(|b| String::from_utf8(b).unwrap())
}

fn tagged() -> impl Strategy<Value = Record> {
    (
        prop_oneof![Just(2u8), Just(9), Just(10), Just(14), Just(17), Just(99)],
        any::<u8>(),
        proptest::collection::btree_map(3u32..1200, text(), 0..6),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
    )
        .prop_map(|(t, idc, fields, data)| {
            let mut r = TaggedRecord::new(t).with_text(2, idc.to_string());
            for (number, value) in fields.into_iter().filter(|(n, _)| *n != 999) {
                r = r.with_text(number, value);
            }
            if let Some(data) = data.filter(|_| !matches!(t, 2 | 9)) {
                r = r.with_data(data);
            }
            Record::Tagged(r)
        })
}

fn type4() -> impl Strategy<Value = Record> {
    (
        any::<[u8; 12]>(),
        any::<u16>(),
        any::<u16>(),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(h, width, height, data)| {
            Record::Type4(Type4Record {
                idc: h[0],
                impression: h[1],
                positions: [h[2], h[3], h[4], h[5], h[6], h[7]],
                resolution: h[8],
                width,
                height,
                compression: h[9],
                data,
            })
        })
}

fn opaque() -> impl Strategy<Value = Record> {
    (
        prop_oneof![Just(3u8), Just(5), Just(6), Just(7), Just(8)],
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(record_type, idc, body)| {
            Record::Opaque(OpaqueRecord {
                record_type,
                idc,
                body,
            })
        })
}

proptest! {
    #[test]
    fn arbitrary_transactions_round_trip(
        header in proptest::collection::btree_map(4u32..30, text(), 0..5),
        records in proptest::collection::vec(prop_oneof![tagged(), type4(), opaque()], 0..6),
    ) {
        let mut t = Transaction::new();
        for (n, v) in header {
            t.header = t.header.with_text(n, v);
        }
        t.records = records;
        let bytes = t.encode().unwrap();
        let back = Transaction::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &t);
        prop_assert_eq!(back.encode().unwrap(), bytes);
    }

    #[test]
    fn damaged_transactions_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = sample().encode().unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(t) = Transaction::decode(&bytes) {
            // Whatever decodes reads without panicking and re-encodes to itself.
            let _ = (t.biographic(), t.faces(), t.finger_images(), t.finger_minutiae());
            prop_assert_eq!(Transaction::decode(&t.encode().unwrap()).unwrap(), t);
        }
    }
}
