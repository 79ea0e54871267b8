//! Decodes WSQ (or any supported) files, reports the best of 20 decode times, and writes
//! each as a binary PGM for comparison with a reference decoder.
//!
//! `cargo run --release -p huella-imaging --example wsq_decode -- OUT_DIR FILE...`
//! (tests/fixtures/compare_wsq.py drives it against NBIS).

use std::path::Path;
use std::time::{Duration, Instant};

use huella_imaging::{decode, Limits};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out_dir = args.next().ok_or("usage: wsq_decode OUT_DIR FILE...")?;
    for path in args {
        let bytes = std::fs::read(&path)?;
        let mut best = Duration::MAX;
        let mut image = None;
        for _ in 0..20 {
            let start = Instant::now();
            let decoded = decode(&bytes, &Limits::default())?;
            best = best.min(start.elapsed());
            image = Some(decoded);
        }
        let grey = image.ok_or("no decode")?.to_grey();
        let name = Path::new(&path).file_stem().ok_or("no file name")?;
        let out = Path::new(&out_dir).join(name).with_extension("pgm");
        let mut pgm = format!("P5\n{} {}\n255\n", grey.width(), grey.height()).into_bytes();
        pgm.extend_from_slice(grey.as_raw());
        std::fs::write(&out, pgm)?;
        println!(
            "{path}: {}x{} ppi {:?} decoded in {:.2} ms",
            grey.width(),
            grey.height(),
            grey.ppi(),
            best.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
