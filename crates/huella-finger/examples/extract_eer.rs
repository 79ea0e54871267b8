//! Quick verification EER of the extractor with the MCC matcher on FVC-style folders,
//! for tuning the extractor (the full protocol and report live in `huella eval fvc`).
//!
//! ```text
//! cargo run --release -p huella-finger --example extract_eer -- \
//!     ../shared/datasets/fvc2002/DB1_B ... [--templates]
//! ```
//!
//! Genuine pairs: every two impressions of a finger; impostors: every two images of
//! different fingers. `--templates` scores the `.iso` templates instead, as reference.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use huella_finger::{FingerExtractor, FingerTemplate, Matcher, MinutiaeRecord};
use huella_imaging::{decode_file, Limits};

/// Equal error rate: the threshold where the false match and false non-match rates
/// cross (the mean of the two at the closest threshold).
fn eer(genuine: &[f32], impostor: &[f32]) -> f64 {
    let mut all: Vec<(f32, bool)> = genuine
        .iter()
        .map(|&s| (s, true))
        .chain(impostor.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (ng, ni) = (genuine.len() as f64, impostor.len() as f64);
    // Threshold above position k: rejected = all[..k].
    let (mut g_below, mut i_below) = (0.0, 0.0);
    let mut best = (f64::INFINITY, 1.0);
    let mut k = 0;
    while k <= all.len() {
        let fnmr = g_below / ng;
        let fmr = (ni - i_below) / ni;
        let gap = (fnmr - fmr).abs();
        if gap < best.0 {
            best = (gap, (fnmr + fmr) / 2.0);
        }
        if k == all.len() {
            break;
        }
        // Advance over ties together.
        let s = all[k].0;
        while k < all.len() && all[k].0 == s {
            if all[k].1 {
                g_below += 1.0;
            } else {
                i_below += 1.0;
            }
            k += 1;
        }
    }
    best.1
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut dirs = Vec::new();
    let mut templates = false;
    for a in std::env::args().skip(1) {
        if a == "--templates" {
            templates = true;
        } else {
            dirs.push(PathBuf::from(a));
        }
    }
    let extractor = FingerExtractor::default();
    let matcher = Matcher::default();
    let mut eers = Vec::new();
    for dir in &dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "tif"))
            .collect();
        files.sort();
        let started = Instant::now();
        let mut samples = Vec::new();
        for path in &files {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let finger = stem.split('_').next().unwrap_or_default().to_string();
            let template: Option<FingerTemplate> = if templates {
                let bytes = std::fs::read(path.with_extension("iso"))?;
                Some(MinutiaeRecord::decode(&bytes)?.to_template(0)?)
            } else {
                let img = decode_file(path, &Limits::default())?.to_grey();
                extractor.extract(&img, None).ok().map(|e| e.template)
            };
            samples.push((finger, template.map(|t| matcher.prepare(&t))));
        }
        let extract_s = started.elapsed().as_secs_f64();
        let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
        for i in 0..samples.len() {
            for j in i + 1..samples.len() {
                let score = match (&samples[i].1, &samples[j].1) {
                    (Some(a), Some(b)) => matcher.compare(a, b),
                    _ => 0.0,
                };
                if samples[i].0 == samples[j].0 {
                    genuine.push(score);
                } else {
                    impostor.push(score);
                }
            }
        }
        let e = eer(&genuine, &impostor);
        eers.push(e);
        println!(
            "{}: EER {:.2}% ({} genuine, {} impostor, {:.1} ms/image)",
            dir.display(),
            100.0 * e,
            genuine.len(),
            impostor.len(),
            extract_s * 1e3 / samples.len().max(1) as f64
        );
    }
    let mean = eers.iter().sum::<f64>() / eers.len().max(1) as f64;
    let max = eers.iter().copied().fold(0.0, f64::max);
    println!("mean EER {:.2}%, max {:.2}%", 100.0 * mean, 100.0 * max);
    Ok(())
}
