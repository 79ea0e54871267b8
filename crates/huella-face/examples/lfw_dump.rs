//! Development probe: extracts every image listed on stdin (paths) and prints one JSON
//! line per image with the box, landmarks, quality and raw descriptors (plain and
//! mirrored), for choosing settings on LFW View 1 in a notebook.
use std::io::BufRead;

use huella_face::{chip, chip_transform, Embedder, FaceConfig, FaceModels, FacePipeline};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let models_dir = std::env::args().nth(1).ok_or("models dir")?;
    let mut models = FaceModels::from_dir(std::path::Path::new(&models_dir))?;
    if std::env::var("DETECTOR").as_deref() == Ok("front") {
        models.detector =
            std::fs::read(std::path::Path::new(&models_dir).join("face/blazeface-front.onnx"))?;
        models.detector_side = 128;
    }
    let config = FaceConfig {
        flip: false,
        ..FaceConfig::default()
    };
    let pipeline = FacePipeline::new(&models, config.clone())?;
    let embedder = Embedder::new(&models.embedder, &config.backend)?;
    for line in std::io::stdin().lock().lines() {
        let path = line?;
        let t0 = std::time::Instant::now();
        let img = huella_imaging::decode_file(std::path::Path::new(&path), &Default::default())?;
        let t1 = std::time::Instant::now();
        let faces = pipeline.faces(&img)?;
        let t2 = std::time::Instant::now();
        let Some(face) = faces.first() else {
            println!("{}", serde_json::json!({"path": path, "faces": 0}));
            continue;
        };
        let crop = chip(&img, &chip_transform(&face.landmarks).ok_or("degenerate")?);
        let d = embedder.descriptor(&crop)?;
        let t3 = std::time::Instant::now();
        let m = embedder.descriptor(&crop.flip_horizontal())?;
        // Scale jitter about the crop centre (test-time augmentation experiment).
        let base = chip_transform(&face.landmarks).ok_or("degenerate")?;
        let mut jitter = Vec::new();
        for k in [0.95f32, 1.05] {
            let jc = chip(&img, &huella_face::zoomed(&base, k));
            jitter.push(embedder.descriptor(&jc)?);
            jitter.push(embedder.descriptor(&jc.flip_horizontal())?);
        }
        let b = face.detection.bbox;
        println!(
            "{}",
            serde_json::json!({
                "path": path, "faces": faces.len(),
                "box": [b.left, b.top, b.right, b.bottom], "score": face.detection.score,
                "landmarks": face.landmarks, "quality": face.quality,
                "desc": d, "desc_flip": m, "jitter": jitter,
                "ms": {"decode": (t1-t0).as_secs_f64()*1e3, "detect_landmarks": (t2-t1).as_secs_f64()*1e3, "embed": (t3-t2).as_secs_f64()*1e3},
            })
        );
    }
    Ok(())
}
