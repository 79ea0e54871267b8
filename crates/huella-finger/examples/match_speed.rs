//! 1:N matcher throughput on real templates: every ISO template under a folder is
//! prepared once, then each one is compared against all of them on one thread.
//!
//! `cargo run --release -p huella-finger --example match_speed -- ../shared/datasets/fvc2002`
use huella_finger::{Matcher, MinutiaeRecord, PreparedFinger};
use std::path::Path;
use std::time::Instant;

fn collect(dir: &Path, out: &mut Vec<Vec<u8>>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "iso") {
            out.push(std::fs::read(&p)?);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: match_speed <folder of .iso templates>")?;
    let mut records = Vec::new();
    collect(Path::new(&dir), &mut records)?;
    let matcher = Matcher::default();
    let t0 = Instant::now();
    let gallery: Vec<PreparedFinger> = records
        .iter()
        .filter_map(|b| MinutiaeRecord::decode(b).ok()?.to_template(0).ok())
        .map(|t| matcher.prepare(&t))
        .collect();
    let prep_us = t0.elapsed().as_secs_f64() * 1e6 / gallery.len().max(1) as f64;
    let t1 = Instant::now();
    let mut checksum = 0.0f64;
    for probe in &gallery {
        for g in &gallery {
            checksum += matcher.compare(probe, g) as f64;
        }
    }
    let n = (gallery.len() * gallery.len()) as f64;
    let secs = t1.elapsed().as_secs_f64();
    println!(
        "{} templates, prepare {:.0} us each; {} comparisons in {:.2} s: {:.0} per second, {:.2} us each (checksum {:.3})",
        gallery.len(),
        prep_us,
        n,
        secs,
        n / secs,
        secs * 1e6 / n,
        checksum
    );
    Ok(())
}
