//! Face pipeline against dlib's own outputs, and hostile input.
#![allow(clippy::unwrap_used)] // test helpers: a failure should stop the test

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use huella_face::{
    BoxF, Embedder, Face, FaceConfig, FaceError, FaceModels, FacePipeline, ShapePredictor,
    PROBE_AREA_SHARE,
};
use huella_imaging::{decode, encode_png, resize_bilinear, Image, Limits};
use huella_infer::Backend;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn models() -> &'static FaceModels {
    static MODELS: OnceLock<FaceModels> = OnceLock::new();
    MODELS.get_or_init(|| {
        FaceModels::from_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")).unwrap()
    })
}

/// One pipeline without test-time flips, shared by the tests (loading costs ~0.5 s).
fn pipeline() -> &'static FacePipeline {
    static P: OnceLock<FacePipeline> = OnceLock::new();
    P.get_or_init(|| {
        FacePipeline::new(
            models(),
            FaceConfig {
                flip: false,
                ..FaceConfig::default()
            },
        )
        .unwrap()
    })
}

fn golden() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture("golden.json")).unwrap()).unwrap()
}

fn image(name: &str) -> Image {
    decode(&std::fs::read(fixture(name)).unwrap(), &Limits::default()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (a.iter().map(|x| x * x).sum::<f32>().sqrt()
        * b.iter().map(|x| x * x).sum::<f32>().sqrt())
}

#[test]
fn embedding_of_dlibs_crop_matches_dlib() {
    // Same 150x150 crop into dlib's network (C++) and our ONNX conversion (tract).
    let embedder = Embedder::new(&models().embedder, &Backend::Tract).unwrap();
    let ours = embedder
        .descriptor(&image("astronaut_chip_dlib.png"))
        .unwrap();
    let reference = floats(&golden()["chip_descriptor"]);
    let max_diff = ours
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(max_diff < 1e-4, "max abs difference {max_diff}");
}

#[test]
fn landmarks_match_dlib_on_its_box() {
    let g = golden();
    let r = floats(&g["rect"]);
    let sp = ShapePredictor::from_bytes(&models().landmarks).unwrap();
    let ours = sp.predict(
        &image("astronaut_face.jpg"),
        &BoxF {
            left: r[0],
            top: r[1],
            right: r[2],
            bottom: r[3],
        },
    );
    for (i, (p, q)) in ours
        .iter()
        .zip(g["landmarks"].as_array().unwrap())
        .enumerate()
    {
        let q = floats(q);
        // dlib rounds its points to whole pixels.
        assert!(
            (p.0 - q[0]).abs() <= 1.0 && (p.1 - q[1]).abs() <= 1.0,
            "landmark {i}: {p:?} vs {q:?}"
        );
    }
}

#[test]
fn end_to_end_embedding_agrees_with_dlibs_pipeline() {
    let sample = pipeline()
        .extract_image(&image("astronaut_face.jpg"))
        .unwrap();
    assert_eq!(sample.faces_found, 1);
    let ours = sample.template.embedding().unwrap().as_slice().to_vec();
    let c = cosine(&ours, &floats(&golden()["chip_descriptor"]));
    // Different detector boxes move the landmarks by about a pixel; the embedding barely moves.
    assert!(c > 0.99, "cosine with dlib's descriptor {c}");
    assert!(!sample.low_quality, "quality {:?}", sample.face.quality);
}

#[test]
fn a_coffee_cup_has_no_face() {
    assert!(golden()["no_face_in_coffee"].as_bool().unwrap());
    let r = pipeline().faces(&image("coffee.jpg")).unwrap();
    assert!(
        r.is_empty(),
        "{:?}",
        r.iter().map(|f| f.detection.score).collect::<Vec<_>>()
    );
    assert!(matches!(
        pipeline().extract_image(&image("coffee.jpg")),
        Err(FaceError::NoBiometricFound)
    ));
}

#[test]
fn hostile_bytes_are_typed_errors() {
    let jpeg = std::fs::read(fixture("astronaut_face.jpg")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated header", jpeg[..20].to_vec()),
        (
            "garbage",
            (0..5000u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ),
        ("text", b"this is not an image at all".to_vec()),
    ];
    for (what, bytes) in cases {
        match pipeline().extract_bytes(&bytes) {
            Err(FaceError::Image(_)) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
    // A PNG header declaring 100 000 x 100 000 pixels is refused before any allocation.
    let mut bomb = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bomb.extend_from_slice(&100_000u32.to_be_bytes());
    bomb.extend_from_slice(&100_000u32.to_be_bytes());
    bomb.extend_from_slice(&[8, 2, 0, 0, 0]);
    let crc = crc32fast::hash(&bomb[12..]);
    bomb.extend_from_slice(&crc.to_be_bytes());
    bomb.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
    let start = std::time::Instant::now();
    let r = pipeline().extract_bytes(&bomb);
    assert!(matches!(r, Err(FaceError::Image(_))), "{r:?}");
    assert!(start.elapsed().as_millis() < 1000);
}

#[test]
fn tiny_grey_and_cmyk_images_give_a_documented_result() {
    let one = Image::from_raw(1, 1, vec![200, 150, 100]).unwrap();
    assert!(matches!(
        pipeline().extract_image(&one),
        Err(FaceError::NoBiometricFound)
    ));
    // A greyscale photo (decoded to RGB with equal channels) still yields the face.
    let grey = image("astronaut_face.jpg").to_grey();
    let rgb: Vec<u8> = grey.as_raw().iter().flat_map(|&v| [v, v, v]).collect();
    let grey_rgb = Image::from_raw(grey.width(), grey.height(), rgb).unwrap();
    let sample = pipeline().extract_image(&grey_rgb).unwrap();
    let colour = pipeline()
        .extract_image(&image("astronaut_face.jpg"))
        .unwrap();
    let c = sample
        .template
        .embedding()
        .unwrap()
        .cosine(colour.template.embedding().unwrap())
        .unwrap();
    assert!(c > 0.9, "grey vs colour cosine {c}");
    // CMYK JPEG decodes (no face in it).
    let cmyk = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../huella-imaging/tests/fixtures/cmyk.jpg"),
    )
    .unwrap();
    assert!(matches!(
        pipeline().extract_bytes(&cmyk),
        Err(FaceError::NoBiometricFound)
    ));
}

/// A canvas with copies of the face at given places and sizes.
fn canvas(w: u32, h: u32, faces: &[(u32, u32, u32)]) -> Image {
    let face = image("astronaut_face.jpg");
    let mut data = vec![90u8; (w * h * 3) as usize];
    for &(x0, y0, side) in faces {
        let f = resize_bilinear(&face, side, side);
        for y in 0..side {
            for x in 0..side {
                let px = f.pixel(x, y).unwrap();
                let at = (((y0 + y) * w + x0 + x) * 3) as usize;
                data[at..at + 3].copy_from_slice(&px);
            }
        }
    }
    Image::from_raw(w, h, data).unwrap()
}

#[test]
fn many_faces_are_all_found_and_the_probe_is_the_most_central_of_the_large_ones() {
    let img = canvas(
        800,
        400,
        &[(20, 100, 200), (300, 100, 200), (580, 100, 200)],
    );
    let faces = pipeline().faces(&img).unwrap();
    assert_eq!(
        faces.len(),
        3,
        "{:?}",
        faces.iter().map(|f| f.detection.bbox).collect::<Vec<_>>()
    );
    // Equal sizes: the most central face leads.
    let (cx, _) = faces[0].detection.bbox.centre();
    assert!((cx - 400.0).abs() < 60.0, "probe centre x {cx}");
    // A face with 0.64 of the largest area leads when it is nearer the centre.
    let img = canvas(600, 260, &[(0, 5, 250), (250, 30, 200)]);
    let faces = pipeline().faces(&img).unwrap();
    assert_eq!(faces.len(), 2);
    let area = |f: &Face| f.detection.bbox.width() * f.detection.bbox.height();
    assert!(area(&faces[0]) >= PROBE_AREA_SHARE * area(&faces[1]));
    assert!(
        faces[0].detection.bbox.centre().0 > 300.0,
        "{:?}",
        faces[0].detection.bbox
    );
    // A face with less than half the largest area never leads, however central.
    let img = canvas(400, 400, &[(0, 0, 250), (250, 150, 150)]);
    let faces = pipeline().faces(&img).unwrap();
    assert_eq!(faces.len(), 2);
    assert!(
        area(&faces[1]) < PROBE_AREA_SHARE * area(&faces[0]),
        "{:?}",
        faces.iter().map(|f| f.detection.bbox).collect::<Vec<_>>()
    );
    assert!(
        faces[0].detection.bbox.centre().0 < 250.0,
        "{:?}",
        faces[0].detection.bbox
    );
}

#[test]
fn a_small_face_on_a_large_page_is_found_by_the_full_range_detector() {
    // A 240 px portrait (face about 100 px wide) on a 1200x900 page: too small for the
    // short-range model.
    let img = canvas(1200, 900, &[(700, 500, 240)]);
    let sample = pipeline().extract_image(&img).unwrap();
    let (x, y) = sample.face.detection.bbox.centre();
    assert!(
        (x - 820.0).abs() < 40.0 && (y - 620.0).abs() < 40.0,
        "centre {x},{y}"
    );
}

#[test]
fn quality_drops_for_blur_and_small_faces() {
    let sharp = pipeline()
        .extract_image(&image("astronaut_face.jpg"))
        .unwrap()
        .face
        .quality;
    let face = image("astronaut_face.jpg");
    let blurred = resize_bilinear(&resize_bilinear(&face, 50, 50), 200, 200);
    let blur = pipeline().extract_image(&blurred).unwrap().face.quality;
    assert!(
        blur.components.sharpness < sharp.components.sharpness - 10.0,
        "{blur:?} vs {sharp:?}"
    );
    assert!(blur.summary < sharp.summary);
    let small = canvas(400, 400, &[(150, 150, 70)]);
    let q = pipeline().extract_image(&small).unwrap().face.quality;
    assert!(q.inter_eye_px < sharp.inter_eye_px && q.components.size < sharp.components.size);
}

#[test]
fn threads_share_one_pipeline_and_get_identical_results() {
    let img = image("astronaut_face.jpg");
    let one = pipeline().extract_image(&img).unwrap().template;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| pipeline().extract_image(&img).unwrap().template))
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), one);
        }
    });
}

#[test]
fn flip_changes_the_algorithm_id_and_keeps_the_identity() {
    let flip = FacePipeline::new(models(), FaceConfig::default()).unwrap();
    assert_eq!(flip.algorithm().to_string(), "dlib-resnet@1+mirror95");
    assert_eq!(pipeline().algorithm().to_string(), "dlib-resnet@1");
    let img = image("astronaut_face.jpg");
    let a = flip.extract_image(&img).unwrap().template;
    let b = pipeline().extract_image(&img).unwrap().template;
    assert!(
        a.embedding()
            .unwrap()
            .cosine(b.embedding().unwrap())
            .unwrap()
            > 0.95
    );
    assert!(
        a.check_comparable(&b).is_err(),
        "templates of different algorithms must not be compared"
    );
}

#[test]
fn the_crop_is_a_150_pixel_png() {
    let img = image("astronaut_face.jpg");
    let face = &pipeline().faces(&img).unwrap()[0];
    let crop = pipeline().crop(&img, face).unwrap();
    assert_eq!((crop.width(), crop.height()), (150, 150));
    let png = encode_png(&crop).unwrap();
    assert_eq!(
        decode(&png, &Limits::default()).unwrap().as_raw(),
        crop.as_raw()
    );
}

#[test]
fn corrupt_models_are_refused() {
    let mut m = models().clone();
    m.embedder = b"not onnx".to_vec();
    assert!(FacePipeline::new(&m, FaceConfig::default()).is_err());
    let mut m = models().clone();
    m.landmarks.truncate(1000);
    assert!(matches!(
        FacePipeline::new(&m, FaceConfig::default()),
        Err(FaceError::ModelCorrupt { .. })
    ));
    let mut m = models().clone();
    std::mem::swap(&mut m.detector, &mut m.embedder);
    assert!(FacePipeline::new(&m, FaceConfig::default()).is_err());
}
