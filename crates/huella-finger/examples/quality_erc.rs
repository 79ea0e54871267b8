//! Does [`finger_quality`] predict matching difficulty? The NFIQ 2.0 test (Tabassi et
//! al., NIST IR 8382): an error-versus-reject curve on FVC-style databases.
//!
//! `cargo run --release -p huella-finger --example quality_erc -- [DATA [COMPONENTS.csv]]`
//! (default `../shared/datasets/fvc2002`: `DBn_X` folders of `NNN_K.tif`; the optional
//! CSV receives each impression's quality components, for refitting the ramps).
//!
//! For every database: extract each impression (a failure to enrol scores 0 on every
//! comparison and quality 0), compare with the MCC matcher every genuine pair (all
//! impressions of a finger) and every impostor pair (all impressions of different
//! fingers). Pooled over the databases it reports
//!
//! * the Spearman rank correlation between `min(quality_a, quality_b)` and the genuine
//!   score (positive = the score predicts how well a mated pair matches);
//! * for reject fractions 0-30 %: the pooled EER and the FNMR at the threshold that
//!   gives FMR 0.1 % before any rejection, after dropping the lowest-quality impressions
//!   (every comparison involving them), against the mean over 200 random drops of the
//!   same number of impressions (fixed seed).

use std::path::{Path, PathBuf};

use huella_finger::{finger_quality, FingerExtractor, Matcher, PreparedFinger};
use huella_imaging::{decode_file, Limits};

struct Sample {
    db: usize,
    finger: u32,
    quality: u8,
    components: Option<huella_finger::QualityComponents>,
    prepared: Option<PreparedFinger>,
}

struct Comparison {
    a: usize,
    b: usize,
    score: f32,
}

fn databases(data: &Path) -> Result<Vec<PathBuf>> {
    let mut dbs: Vec<PathBuf> = std::fs::read_dir(data)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dbs.sort();
    if dbs.is_empty() {
        dbs.push(data.to_path_buf());
    }
    Ok(dbs)
}

/// `(finger, impression, path)` of the `NNN_K.tif` files of `dir`, sorted.
type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn images(dir: &Path) -> Result<Vec<(u32, u32, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        if path.extension().is_none_or(|x| x != "tif") {
            continue;
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if let Some((f, k)) = stem.split_once('_') {
            if let (Ok(f), Ok(k)) = (f.parse(), k.parse()) {
                out.push((f, k, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Average ranks (1-based), ties sharing their mean rank.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = mean;
        }
        i = j + 1;
    }
    r
}

fn spearman(x: &[f64], y: &[f64]) -> f64 {
    let (rx, ry) = (ranks(x), ranks(y));
    let n = rx.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

/// FNMR at `t`: genuine scores below it.
fn fnmr(genuine: &[f32], t: f32) -> f64 {
    genuine.iter().filter(|&&s| s < t).count() as f64 / genuine.len().max(1) as f64
}

/// The lowest threshold (a score, or just above the top impostor) with FMR <= `target`.
fn threshold_at_fmr(impostor: &[f32], target: f64) -> f32 {
    let mut s = impostor.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    let allowed = (target * s.len() as f64).floor() as usize;
    // Accepting the top `allowed` impostors: the threshold is just above the next one.
    match s.get(allowed) {
        // The next f32 above `v` (scores are positive and finite).
        Some(&v) => f32::from_bits(v.max(0.0).to_bits() + 1),
        None => 0.0,
    }
}

/// EER by the FVC2000 interval rule, from the evaluation crate (the figure `huella eval
/// fvc` reports).
fn eer(genuine: &[f32], impostor: &[f32]) -> f64 {
    let wrap = |v: &[f32]| v.iter().map(|&s| Some(s)).collect::<Vec<_>>();
    huella_eval::fvc_figures(&wrap(genuine), &wrap(impostor)).map_or(f64::NAN, |f| f.eer)
}

fn split(comparisons: &[Comparison], keep: &[bool]) -> Vec<f32> {
    comparisons
        .iter()
        .filter(|c| keep[c.a] && keep[c.b])
        .map(|c| c.score)
        .collect()
}

fn main() -> Result<()> {
    let data = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "../shared/datasets/fvc2002".into()),
    );
    if data.to_string_lossy().contains("holdout") {
        return Err("the holdout set is not for development measurements".into());
    }
    let components_csv = std::env::args().nth(2).map(PathBuf::from);
    let extractor = FingerExtractor::default();
    let matcher = Matcher::default();
    let mut samples = Vec::new();
    for (db, dir) in databases(&data)?.iter().enumerate() {
        for (finger, _, path) in images(dir)? {
            let img = decode_file(&path, &Limits::default())?;
            let (quality, components, prepared) = match extractor.extract(&img.to_grey(), img.ppi())
            {
                Ok(ex) => {
                    let q = finger_quality(&ex);
                    (
                        q.score,
                        Some(q.components),
                        Some(matcher.prepare(&ex.template)),
                    )
                }
                Err(_) => (0, None, None),
            };
            samples.push(Sample {
                db,
                finger,
                quality,
                components,
                prepared,
            });
        }
    }
    let n = samples.len();
    if n == 0 {
        return Err(format!("no NNN_K.tif images under {}", data.display()).into());
    }
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for a in 0..n {
        for b in a + 1..n {
            let (sa, sb) = (&samples[a], &samples[b]);
            if sa.db != sb.db {
                continue;
            }
            let score = match (&sa.prepared, &sb.prepared) {
                (Some(x), Some(y)) => matcher.compare(x, y),
                _ => 0.0,
            };
            let c = Comparison { a, b, score };
            if sa.finger == sb.finger {
                genuine.push(c);
            } else {
                impostor.push(c);
            }
        }
    }
    if let Some(path) = components_csv {
        let mut text = String::from(
            "db,finger,score,area_mm2,coherence_mean,coherence_std,frequency_consistency,minutiae,minutia_quality,mean_genuine\n",
        );
        for (i, s) in samples.iter().enumerate() {
            let mates: Vec<f32> = genuine
                .iter()
                .filter(|c| c.a == i || c.b == i)
                .map(|c| c.score)
                .collect();
            let mean = mates.iter().sum::<f32>() / mates.len().max(1) as f32;
            let c = s.components.unwrap_or(huella_finger::QualityComponents {
                foreground_fraction: 0.0,
                foreground_area_mm2: 0.0,
                coherence_mean: 0.0,
                coherence_std: 0.0,
                frequency_consistency: 0.0,
                minutiae_in_foreground: 0,
                minutia_quality_mean: 0.0,
                mapped: [0.0; 6],
            });
            text += &format!(
                "{},{},{},{},{},{},{},{},{},{}\n",
                s.db + 1,
                s.finger,
                s.quality,
                c.foreground_area_mm2,
                c.coherence_mean,
                c.coherence_std,
                c.frequency_consistency,
                c.minutiae_in_foreground,
                c.minutia_quality_mean,
                mean
            );
        }
        std::fs::write(&path, text)?;
    }
    let fte = samples.iter().filter(|s| s.prepared.is_none()).count();
    let mut qs: Vec<u8> = samples.iter().map(|s| s.quality).collect();
    qs.sort_unstable();
    println!(
        "{n} impressions ({fte} failed to enrol), {} genuine and {} impostor comparisons",
        genuine.len(),
        impostor.len()
    );
    println!(
        "quality: min {} p10 {} median {} p90 {} max {}",
        qs[0],
        qs[n / 10],
        qs[n / 2],
        qs[n * 9 / 10],
        qs[n - 1]
    );
    let q_pair: Vec<f64> = genuine
        .iter()
        .map(|c| f64::from(samples[c.a].quality.min(samples[c.b].quality)))
        .collect();
    let g_scores: Vec<f64> = genuine.iter().map(|c| f64::from(c.score)).collect();
    println!(
        "Spearman rho(min quality, genuine score) = {:.3} over {} genuine pairs",
        spearman(&q_pair, &g_scores),
        genuine.len()
    );
    for db in 0..=samples.last().map_or(0, |s| s.db) {
        let (q, s): (Vec<f64>, Vec<f64>) = genuine
            .iter()
            .filter(|c| samples[c.a].db == db)
            .map(|c| {
                (
                    f64::from(samples[c.a].quality.min(samples[c.b].quality)),
                    f64::from(c.score),
                )
            })
            .unzip();
        println!("  DB {}: rho = {:.3}", db + 1, spearman(&q, &s));
    }

    let all = vec![true; n];
    let t = threshold_at_fmr(&split(&impostor, &all), 0.001);
    println!("threshold at FMR 0.1% before rejection: {t:.4}");
    println!("reject  | by quality: EER    FNMR@t | at random (mean of 200): EER    FNMR@t");
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (samples[i].quality, i));
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for reject in [0.0, 0.05, 0.10, 0.15, 0.20, 0.30] {
        let k = (reject * n as f64).round() as usize;
        let mut keep = vec![true; n];
        for &i in &order[..k] {
            keep[i] = false;
        }
        let (g, im) = (split(&genuine, &keep), split(&impostor, &keep));
        let (q_eer, q_fnmr) = (eer(&g, &im), fnmr(&g, t));
        let runs = 200;
        let (mut r_eer, mut r_fnmr) = (0.0, 0.0);
        for _ in 0..runs {
            let mut idx: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                idx.swap(i, (next() % (i as u64 + 1)) as usize);
            }
            let mut keep = vec![true; n];
            for &i in &idx[..k] {
                keep[i] = false;
            }
            let (g, im) = (split(&genuine, &keep), split(&impostor, &keep));
            r_eer += eer(&g, &im);
            r_fnmr += fnmr(&g, t);
        }
        println!(
            "{:5.1}%  |            {:5.2}%  {:5.2}% |                        {:5.2}%  {:5.2}%",
            100.0 * reject,
            100.0 * q_eer,
            100.0 * q_fnmr,
            100.0 * r_eer / runs as f64,
            100.0 * r_fnmr / runs as f64
        );
    }
    Ok(())
}
