//! huella-finger integration tests, one binary: extraction on synthetic and FVC images,
//! ISO/ANSI records (vendor templates, truncation and corruption sweeps, property
//! tests), the matcher on vendor templates, and quality.
//!
//! Tests that read `../shared/datasets` skip with a message when it is absent.

mod extract;
mod matcher;
mod quality;
mod record;

use huella_imaging::GreyImage;
use std::path::{Path, PathBuf};

/// `../shared/datasets` beside the checkout, or `None` (with a message) when absent.
pub fn datasets() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/datasets not found ({})", dir.display());
        None
    }
}

/// A grey image whose pixel `(x, y)` is `f(x, y)`, rounded and clamped to 0..=255.
pub fn image(w: u32, h: u32, f: impl Fn(f32, f32) -> f32) -> GreyImage {
    let data = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .map(|(x, y)| f(x as f32, y as f32).round().clamp(0.0, 255.0) as u8)
        .collect();
    GreyImage::from_raw(w, h, data).expect("sized")
}
