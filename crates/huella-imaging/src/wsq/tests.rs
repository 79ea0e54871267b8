use super::*;

/// tests/fixtures/ridges.wsq: a synthetic ridge pattern encoded by NBIS (make_wsq.py).
const RIDGES: &[u8] = include_bytes!("../../tests/fixtures/ridges.wsq");

fn ok(bytes: &[u8]) -> Image {
    decode(bytes, &Limits::default()).expect("decodes")
}

/// Offset of the first segment with `marker` among the headers before the first block.
fn segment(bytes: &[u8], marker: u16) -> usize {
    let mut at = 2;
    loop {
        let m = u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        if m == marker {
            return at;
        }
        assert_ne!(m, SOB, "no {marker:04X} before the data");
        at += 2 + usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
    }
}

#[test]
fn fixture_decodes_to_grey_with_its_resolution() {
    let img = ok(RIDGES);
    assert_eq!((img.width(), img.height()), (157, 193));
    assert_eq!(img.source_format(), Some(SourceFormat::Wsq));
    assert_eq!(img.ppi(), Some(500.0));
    assert!(img.as_raw().chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
    // Ridges: both dark and light pixels, not a flat or clipped image.
    let grey = img.to_grey();
    let dark = grey.as_raw().iter().filter(|&&v| v < 100).count();
    let light = grey.as_raw().iter().filter(|&&v| v > 200).count();
    assert!(dark > 3000 && light > 3000, "{dark} dark, {light} light");
}

#[test]
fn resolution_comes_only_from_a_nistcom_comment() {
    let at = RIDGES
        .windows(8)
        .position(|w| w == b"NIST_COM")
        .expect("NBIS writes a NISTCOM");
    let mut plain = RIDGES.to_vec();
    plain[at + 7] = b'N'; // an ordinary comment now
    assert_eq!(ok(&plain).ppi(), None);
    assert_eq!(ok(&plain).as_raw(), ok(RIDGES).as_raw());

    assert_eq!(
        nistcom_ppi(b"NIST_COM 3\nPIX_WIDTH 157\nPPI 500\n"),
        Some(500.0)
    );
    assert_eq!(nistcom_ppi(b"NIST_COM 2\nPPI\t 1000 dpi"), Some(1000.0));
    assert_eq!(nistcom_ppi(b"NIST_COM 2\nPPI -1\n"), None);
    assert_eq!(nistcom_ppi(b"NIST_COM 2\nPPI 0\n"), None);
    assert_eq!(nistcom_ppi(b"NIST_COM 2\nPPI x\n"), None);
    assert_eq!(nistcom_ppi(b"NIST_COM 2\nPPI 99999999999999999999\n"), None);
    assert_eq!(nistcom_ppi(b"NIST_COM 1\nPIX_WIDTH 5\n"), None);
    assert_eq!(nistcom_ppi(b"NIST_COM 2\nPPI \xff\n"), None);
}

#[test]
fn decimal_scaling_matches_single_precision_division() {
    assert_eq!(descale(12_345.0, 0), 12_345.0);
    // Three roundings, as NBIS does: one ulp below the correctly rounded 12.345.
    assert_eq!(descale(12_345.0, 3), 12.344_999);
    assert_eq!(descale(1.0, 255), 0.0);
}

#[test]
fn huffman_codes_are_canonical_and_checked() {
    // Lengths 1, 2, 3: codes 0, 10, 110 (no all-ones code, as the standard requires).
    let mut counts = [0u8; 16];
    counts[..3].copy_from_slice(&[1, 1, 1]);
    let table = Huffman::new(counts, &[7, 8, 9]).expect("valid");
    // 0 | 10 | 110 | 0 | 110 | 10 | padding ones, then an EOI marker.
    let data = [0b0101_1001_u8, 0b1010_1111, 0xFF, 0xA1];
    let mut bits = BitReader {
        data: &data,
        pos: 0,
        byte: 0,
        left: 0,
    };
    let mut got = Vec::new();
    let marker = loop {
        match table.decode(&mut bits).expect("decodes") {
            Token::Symbol(s) => got.push(s),
            Token::Marker(m) => break m,
        }
    };
    assert_eq!(got, [7, 8, 9, 7, 9, 8]);
    assert_eq!(marker, EOI);

    // Three codes of length 1 cannot exist.
    counts = [0; 16];
    counts[0] = 3;
    assert!(matches!(
        Huffman::new(counts, &[1, 2, 3]),
        Err(ImagingError::Corrupt { .. })
    ));
    // A complete table of 256 eight-bit codes is fine.
    counts = [0; 16];
    counts[7] = 255;
    counts[8] = 1;
    assert!(Huffman::new(counts, &[0; 256]).is_ok());
}

#[test]
fn stuffed_ff_bytes_are_data() {
    let data = [0xFF, 0x00, 0x80, 0xFF, 0xA3];
    let mut bits = BitReader {
        data: &data,
        pos: 0,
        byte: 0,
        left: 0,
    };
    assert_eq!(bits.bits(8).expect("byte"), 0xFF);
    assert_eq!(bits.bits(1).expect("bit"), 1);
    assert!(matches!(bits.bits(8), Err(ImagingError::Corrupt { .. })));
    let mut cut = BitReader {
        data: &data[..1],
        pos: 0,
        byte: 0,
        left: 0,
    };
    assert!(matches!(cut.bit(), Err(ImagingError::Truncated { .. })));
}

#[test]
fn unsupported_and_malformed_tables_are_typed_errors() {
    let dtt = segment(RIDGES, DTT);
    let mut even = RIDGES.to_vec();
    even[dtt + 4] = 8; // high-pass length
    assert!(matches!(
        decode(&even, &Limits::default()),
        Err(ImagingError::UnsupportedFeature {
            format: SourceFormat::Wsq,
            ..
        })
    ));
    even[dtt + 4] = 0;
    assert!(matches!(
        decode(&even, &Limits::default()),
        Err(ImagingError::Corrupt { .. })
    ));

    let dht = segment(RIDGES, DHT);
    let mut bad_id = RIDGES.to_vec();
    bad_id[dht + 4] = 8;
    assert!(matches!(
        decode(&bad_id, &Limits::default()),
        Err(ImagingError::Corrupt { .. })
    ));

    // A restart-interval segment right after SOI.
    let drt = [&RIDGES[..2], &[0xFF, 0xA7, 0, 4, 0, 1], &RIDGES[2..]].concat();
    assert!(matches!(
        decode(&drt, &Limits::default()),
        Err(ImagingError::UnsupportedFeature { .. })
    ));

    // No quantisation table: the DQT marker renamed to a comment.
    let dqt = segment(RIDGES, DQT);
    let mut no_dqt = RIDGES.to_vec();
    no_dqt[dqt + 1] = 0xA8;
    assert!(matches!(
        decode(&no_dqt, &Limits::default()),
        Err(ImagingError::Corrupt { .. })
    ));
}

#[test]
fn frame_size_is_checked_against_limits_first() {
    let sof = segment(RIDGES, SOF);
    let mut zero = RIDGES.to_vec();
    zero[sof + 6..sof + 8].copy_from_slice(&[0, 0]); // height
    assert!(matches!(
        decode(&zero, &Limits::default()),
        Err(ImagingError::Corrupt { .. })
    ));
    let small = Limits::default().with_max_width(156);
    assert!(matches!(
        decode(RIDGES, &small),
        Err(ImagingError::TooLarge {
            what: "width",
            limit: 156,
            actual: 157
        })
    ));
}

#[test]
fn data_must_fill_the_subbands_exactly() {
    // EOI straight after the first block header: no coefficients at all.
    let sob = segment(RIDGES, SOB);
    let early = [&RIDGES[..sob + 5], &[0xFF, 0xA1]].concat();
    let err = decode(&early, &Limits::default()).expect_err("no data");
    assert!(matches!(err, ImagingError::Corrupt { .. }), "{err:?}");
}
