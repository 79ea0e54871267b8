//! Write a deterministic score file for benchmarks:
//! `cargo run --release -p huella-eval --example gen_scores -- IMPOSTORS GENUINE OUT.csv`
//!
//! Genuine scores ~ N(0.7, 0.1), impostor ~ N(0.3, 0.1) (SplitMix64 + Box-Muller, seed
//! 42), six decimals, columns `score,mated`, genuine rows spread through the file.

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        return Err("usage: gen_scores IMPOSTORS GENUINE OUT.csv".into());
    }
    let ni: u64 = args[1].parse()?;
    let ng: u64 = args[2].parse()?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&args[3])?);
    out.write_all(b"score,mated\n")?;
    let mut s: u64 = 42;
    let mut uniform = move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let total = ni + ng;
    let every = total.checked_div(ng).unwrap_or(u64::MAX);
    let mut written_g = 0;
    let mut line = Vec::with_capacity(32);
    for k in 0..total {
        let genuine = written_g < ng && (k % every == every - 1 || total - k <= ng - written_g);
        written_g += genuine as u64;
        let (u1, u2) = (uniform().max(1e-300), uniform());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let v = if genuine { 0.7 } else { 0.3 } + 0.1 * z;
        // Fixed six decimals without the float formatter (fast for 10^8 rows).
        let micros = (v * 1e6).round() as i64;
        line.clear();
        if micros < 0 {
            line.push(b'-');
        }
        let m = micros.unsigned_abs();
        writeln!(
            line,
            "{}.{:06},{}",
            m / 1_000_000,
            m % 1_000_000,
            genuine as u8
        )?;
        out.write_all(&line)?;
    }
    out.flush()?;
    Ok(())
}
