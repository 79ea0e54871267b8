//! 1:N matcher throughput on real templates: every ISO template under a folder is
//! prepared once, then each one is compared against all of them on one thread.
//!
//! `cargo run --release -p huella-finger --example match_speed -- ../shared/datasets/fvc2002 [--rounds N] [--scores FILE]`
//!
//! `--rounds` repeats the all-against-all pass and reports each round (the median is the
//! figure to quote); `--scores` writes every score's bits, one `probe gallery bits` line
//! per comparison, so that two builds of the matcher can be checked for identical scores
//! with `cmp`.
use huella_finger::{Matcher, MinutiaeRecord, PreparedFinger};
use std::io::Write;
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
    let usage = "usage: match_speed <folder of .iso templates> [--rounds N] [--scores FILE]";
    let mut args = std::env::args().skip(1);
    let (mut dir, mut rounds, mut scores_path) = (None, 1usize, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => rounds = args.next().ok_or(usage)?.parse()?,
            "--scores" => scores_path = Some(args.next().ok_or(usage)?),
            _ if dir.is_none() => dir = Some(arg),
            _ => return Err(usage.into()),
        }
    }
    let dir = dir.ok_or(usage)?;
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
    let n = (gallery.len() * gallery.len()) as f64;
    let mut times = Vec::new();
    for _ in 0..rounds.max(1) {
        let t1 = Instant::now();
        let mut checksum = 0.0f64;
        for probe in &gallery {
            for g in &gallery {
                checksum += matcher.compare(probe, g) as f64;
            }
        }
        let secs = t1.elapsed().as_secs_f64();
        times.push(secs * 1e6 / n);
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
    }
    if times.len() > 1 {
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "median of {} rounds: {:.2} us each, {:.0} per second",
            times.len(),
            median,
            1e6 / median
        );
    }
    if let Some(path) = scores_path {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for (i, probe) in gallery.iter().enumerate() {
            for (j, g) in gallery.iter().enumerate() {
                writeln!(out, "{i} {j} {:08x}", matcher.compare(probe, g).to_bits())?;
            }
        }
        out.flush()?;
    }
    Ok(())
}
