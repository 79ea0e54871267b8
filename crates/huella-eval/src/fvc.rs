//! The FVC fingerprint verification protocol (Maio et al., "FVC2002: Second Fingerprint
//! Verification Competition", ICPR 2002) on scores computed elsewhere.
//!
//! A database folder holds `NNN_K.<ext>` images (finger `NNN`, impression `K`), each
//! optionally beside a `NNN_K.iso` minutiae template. [`read_fvc_databases`] finds the
//! samples, [`FvcPairs::new`] lists the comparisons, the caller scores them with its own
//! pipeline and [`fvc_figures`] turns each score list into the figures FVC reports.
//!
//! * **Genuine**: every pair of impressions of one finger, no symmetric repeats
//!   (10 x C(8,2) = 280 on an FVC B set).
//! * **FVC impostors**: the first impression of each finger against the first impression
//!   of every other finger, no symmetric repeats (C(10,2) = 45).
//! * **All impostors** (the larger set): every impression of finger a against every
//!   impression of finger b, a < b (45 x 64 = 2,880).
//! * A comparison that failed (either side failed to enrol or to match) gets score 0,
//!   the lowest a matcher in `[0, 1]` gives, as FVC counts it.
//! * **EER**: the FVC2000 interval `[EER_low, EER_high]` where FMR and FNMR cross, and
//!   its midpoint; **FMR100**, **FMR1000**: the lowest FNMR with FMR <= 1%, <= 0.1%;
//!   **ZeroFMR**: the lowest FNMR with no false match.

use crate::{EvalError, VerificationOptions, VerificationReport, SCHEMA_VERSION, VERSION};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Image extensions a database folder may use.
const IMAGE_EXTENSIONS: [&str; 7] = ["tif", "tiff", "png", "bmp", "pgm", "wsq", "jpg"];
/// Most samples one database folder may hold (FVC sets have 80 or 880).
const MAX_SAMPLES: usize = 100_000;

/// One impression of one finger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FvcSample {
    /// Finger number (`NNN`).
    pub finger: u32,
    /// Impression number (`K`).
    pub impression: u32,
    /// The image.
    pub image: PathBuf,
    /// The `NNN_K.iso` template beside it, if present.
    pub template: Option<PathBuf>,
}

/// One database: its folder name and samples ordered by finger, then impression.
#[derive(Debug, Clone)]
pub struct FvcDatabase {
    /// The folder name, e.g. `DB1_B`.
    pub name: String,
    /// The samples.
    pub samples: Vec<FvcSample>,
}

/// Read the databases under `root`: `root` itself when it holds `NNN_K` images,
/// otherwise every sub-folder that does, in name order.
///
/// Errors: `root` unreadable, no database found, a database with one finger only or
/// more than [`MAX_SAMPLES`] samples.
pub fn read_fvc_databases(root: &Path) -> Result<Vec<FvcDatabase>, EvalError> {
    if let Some(db) = read_database(root)? {
        return Ok(vec![db]);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| EvalError::io(root, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut dbs = Vec::new();
    for dir in dirs {
        if let Some(db) = read_database(&dir)? {
            dbs.push(db);
        }
    }
    if dbs.is_empty() {
        return Err(EvalError::bad(
            root,
            0,
            None,
            "no FVC database: no folder with NNN_K.tif (or .png, .bmp, .pgm, .wsq) images",
        ));
    }
    Ok(dbs)
}

fn read_database(dir: &Path) -> Result<Option<FvcDatabase>, EvalError> {
    let mut samples = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| EvalError::io(dir, e))? {
        let path = entry.map_err(|e| EvalError::io(dir, e))?.path();
        let Some((finger, impression)) = sample_key(&path) else {
            continue;
        };
        if samples.len() >= MAX_SAMPLES {
            return Err(EvalError::bad(
                dir,
                0,
                None,
                format!("more than {MAX_SAMPLES} samples"),
            ));
        }
        let template = Some(path.with_extension("iso")).filter(|t| t.is_file());
        samples.insert(
            (finger, impression),
            FvcSample {
                finger,
                impression,
                image: path,
                template,
            },
        );
    }
    if samples.is_empty() {
        return Ok(None);
    }
    let samples: Vec<FvcSample> = samples.into_values().collect();
    let fingers = samples
        .iter()
        .map(|s| s.finger)
        .collect::<std::collections::BTreeSet<_>>();
    if fingers.len() < 2 {
        return Err(EvalError::bad(
            dir,
            0,
            None,
            "a database needs at least two fingers",
        ));
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    Ok(Some(FvcDatabase { name, samples }))
}

/// `(finger, impression)` of an image named `NNN_K.<image extension>`.
fn sample_key(path: &Path) -> Option<(u32, u32)> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    if !IMAGE_EXTENSIONS.contains(&ext.as_str()) {
        return None;
    }
    let (finger, impression) = path.file_stem()?.to_str()?.split_once('_')?;
    let number = |s: &str| {
        (!s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    Some((number(finger)?, number(impression)?))
}

/// The comparisons of the protocol, as index pairs into [`FvcDatabase::samples`]
/// (first index < second).
#[derive(Debug, Clone, Default)]
pub struct FvcPairs {
    /// Same finger, every pair of impressions.
    pub genuine: Vec<(usize, usize)>,
    /// First impressions of different fingers.
    pub fvc_impostor: Vec<(usize, usize)>,
    /// Every impression of finger a against every impression of finger b, a < b.
    pub all_impostor: Vec<(usize, usize)>,
}

impl FvcPairs {
    /// List the comparisons of a database.
    pub fn new(db: &FvcDatabase) -> Self {
        let s = &db.samples;
        let first = |i: usize| {
            s.iter()
                .all(|o| o.finger != s[i].finger || o.impression >= s[i].impression)
        };
        let mut pairs = FvcPairs::default();
        for i in 0..s.len() {
            for j in (i + 1)..s.len() {
                if s[i].finger == s[j].finger {
                    pairs.genuine.push((i, j));
                } else {
                    pairs.all_impostor.push((i, j));
                    if first(i) && first(j) {
                        pairs.fvc_impostor.push((i, j));
                    }
                }
            }
        }
        pairs
    }
}

/// The FVC figures of one score set. Rates are fractions in `[0, 1]`.
#[derive(Debug, Clone, Serialize)]
pub struct FvcFigures {
    /// Genuine comparisons.
    pub genuine: usize,
    /// Impostor comparisons.
    pub impostor: usize,
    /// Comparisons that failed and were scored 0.
    pub failed: usize,
    /// Midpoint of the EER interval.
    pub eer: f64,
    /// `EER_low`.
    pub eer_low: f64,
    /// `EER_high`.
    pub eer_high: f64,
    /// Lowest FNMR with FMR <= 1%.
    pub fmr100: f64,
    /// Lowest FNMR with FMR <= 0.1% (with fewer than 1,000 impostors this is ZeroFMR).
    pub fmr1000: f64,
    /// Lowest FNMR with no false match.
    pub zero_fmr: f64,
}

/// Figures of one score set; `None` scores are failures, scored 0.
///
/// Errors: no genuine or no impostor score, or a score that is not finite.
pub fn fvc_figures(
    genuine: &[Option<f32>],
    impostor: &[Option<f32>],
) -> Result<FvcFigures, EvalError> {
    let fill = |v: &[Option<f32>]| v.iter().map(|s| s.unwrap_or(0.0)).collect::<Vec<f32>>();
    let options = VerificationOptions {
        fmr_points: vec![1e-2, 1e-3],
        bootstrap: Some(0),
        protocol: "fvc".into(),
        ..VerificationOptions::default()
    };
    let report = VerificationReport::from_scores(&fill(genuine), &fill(impostor), options)?;
    let fnmr_at = |name: &str| {
        report
            .fnmr_at_fmr
            .iter()
            .find(|p| p.name == name)
            .map_or(f64::NAN, |p| p.fnmr)
    };
    Ok(FvcFigures {
        genuine: genuine.len(),
        impostor: impostor.len(),
        failed: genuine
            .iter()
            .chain(impostor)
            .filter(|s| s.is_none())
            .count(),
        eer: report.eer_fvc_interval.value,
        eer_low: report.eer_fvc_interval.low,
        eer_high: report.eer_fvc_interval.high,
        fmr100: fnmr_at("FMR100"),
        fmr1000: fnmr_at("FMR1000"),
        zero_fmr: report.zero_fmr.rate,
    })
}

/// One database's results.
#[derive(Debug, Clone, Serialize)]
pub struct FvcDatabaseReport {
    /// The folder name.
    pub name: String,
    /// Samples (images or templates) read.
    pub samples: usize,
    /// Samples that failed to enrol.
    pub failures_to_enrol: usize,
    /// `failures_to_enrol / samples`.
    pub fte_rate: f64,
    /// Figures with the FVC impostor set (45 on a B set).
    pub fvc: FvcFigures,
    /// Figures with every impostor pair (2,880 on a B set).
    pub all_impostors: FvcFigures,
    /// Mean time to extract (or decode) one sample, milliseconds, one thread.
    pub mean_extract_ms: f64,
    /// Mean time of one comparison, microseconds, one thread.
    pub mean_compare_us: f64,
}

/// Means over the databases.
#[derive(Debug, Clone, Serialize)]
pub struct FvcSummary {
    /// Mean EER with the FVC impostor set.
    pub mean_eer_fvc: f64,
    /// Mean EER with every impostor pair.
    pub mean_eer_all_impostors: f64,
    /// Highest per-database EER with every impostor pair.
    pub max_eer_all_impostors: f64,
    /// Mean FMR100 / FMR1000 / ZeroFMR with every impostor pair.
    pub mean_fmr100_all_impostors: f64,
    /// Mean FMR1000 with every impostor pair.
    pub mean_fmr1000_all_impostors: f64,
    /// Mean ZeroFMR with every impostor pair.
    pub mean_zero_fmr_all_impostors: f64,
    /// Mean failure-to-enrol rate.
    pub mean_fte_rate: f64,
    /// Mean extraction time, milliseconds.
    pub mean_extract_ms: f64,
    /// Mean comparison time, microseconds.
    pub mean_compare_us: f64,
}

/// A whole FVC run.
#[derive(Debug, Clone, Serialize)]
pub struct FvcReport {
    /// Version of the JSON layout.
    pub schema_version: u32,
    /// Always `fvc`.
    pub kind: String,
    /// `images` or `templates`.
    pub source: String,
    /// The algorithm that extracted and compared.
    pub algorithm: String,
    /// `huella-eval <version>`.
    pub software: String,
    /// The rules, in words.
    pub conventions: Vec<String>,
    /// Per database.
    pub databases: Vec<FvcDatabaseReport>,
    /// Means over the databases.
    pub summary: FvcSummary,
}

impl FvcReport {
    /// Assemble a report from per-database results (at least one).
    pub fn new(
        source: &str,
        algorithm: &str,
        databases: Vec<FvcDatabaseReport>,
    ) -> Result<Self, EvalError> {
        if databases.is_empty() {
            return Err(EvalError::InvalidOption(
                "an FVC report needs a database".into(),
            ));
        }
        let mean = |f: &dyn Fn(&FvcDatabaseReport) -> f64| {
            databases.iter().map(f).sum::<f64>() / databases.len() as f64
        };
        let summary = FvcSummary {
            mean_eer_fvc: mean(&|d| d.fvc.eer),
            mean_eer_all_impostors: mean(&|d| d.all_impostors.eer),
            max_eer_all_impostors: databases
                .iter()
                .map(|d| d.all_impostors.eer)
                .fold(0.0, f64::max),
            mean_fmr100_all_impostors: mean(&|d| d.all_impostors.fmr100),
            mean_fmr1000_all_impostors: mean(&|d| d.all_impostors.fmr1000),
            mean_zero_fmr_all_impostors: mean(&|d| d.all_impostors.zero_fmr),
            mean_fte_rate: mean(&|d| d.fte_rate),
            mean_extract_ms: mean(&|d| d.mean_extract_ms),
            mean_compare_us: mean(&|d| d.mean_compare_us),
        };
        Ok(Self {
            schema_version: SCHEMA_VERSION,
            kind: "fvc".into(),
            source: source.into(),
            algorithm: algorithm.into(),
            software: format!("huella-eval {VERSION}"),
            conventions: [
                "genuine: every pair of impressions of one finger, no symmetric repeats",
                "fvc impostors: first impressions of different fingers, no symmetric repeats",
                "all impostors: every impression of finger a against every impression of finger b, a < b",
                "a failed comparison (either side failed to enrol) scores 0, the lowest score",
                "eer: midpoint of the FVC2000 interval where FMR and FNMR cross",
                "fmr100 / fmr1000 / zero_fmr: lowest FNMR with FMR <= 1% / <= 0.1% / = 0",
                "times: one thread, wall clock",
            ]
            .map(String::from)
            .to_vec(),
            databases,
            summary,
        })
    }

    /// Write the report as pretty JSON.
    pub fn write_json(&self, mut w: impl Write) -> Result<(), EvalError> {
        serde_json::to_writer_pretty(&mut w, self)
            .map_err(|e| EvalError::InvalidOption(format!("JSON: {e}")))?;
        writeln!(w).map_err(|e| EvalError::io(Path::new("<json>"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(fingers: u32, impressions: u32) -> FvcDatabase {
        let mut samples = Vec::new();
        for f in 0..fingers {
            for k in 1..=impressions {
                samples.push(FvcSample {
                    finger: 101 + f,
                    impression: k,
                    image: PathBuf::from(format!("{}_{k}.tif", 101 + f)),
                    template: None,
                });
            }
        }
        FvcDatabase {
            name: "DB".into(),
            samples,
        }
    }

    #[test]
    fn pair_counts_follow_the_protocol() {
        let p = FvcPairs::new(&db(10, 8));
        assert_eq!(p.genuine.len(), 280);
        assert_eq!(p.fvc_impostor.len(), 45);
        assert_eq!(p.all_impostor.len(), 2880);
        let d = db(10, 8);
        assert!(p
            .fvc_impostor
            .iter()
            .all(|&(i, j)| d.samples[i].impression == 1 && d.samples[j].impression == 1));
    }

    #[test]
    fn sample_names_are_parsed_strictly() {
        assert_eq!(sample_key(Path::new("a/101_3.tif")), Some((101, 3)));
        assert_eq!(sample_key(Path::new("101_3.TIF")), Some((101, 3)));
        assert_eq!(sample_key(Path::new("101_3.iso")), None);
        assert_eq!(sample_key(Path::new("101-3.tif")), None);
        assert_eq!(sample_key(Path::new("101_x.tif")), None);
        assert_eq!(sample_key(Path::new("_3.tif")), None);
    }

    #[test]
    fn figures_separate_perfect_and_overlapping_scores() {
        let g: Vec<Option<f32>> = (0..20).map(|i| Some(0.5 + i as f32 / 100.0)).collect();
        let i: Vec<Option<f32>> = (0..20).map(|i| Some(i as f32 / 100.0)).collect();
        let f = fvc_figures(&g, &i).unwrap();
        assert_eq!((f.eer, f.zero_fmr), (0.0, 0.0));
        // One genuine failure scores 0, below every impostor: FNMR at zero FMR is 1/20.
        let mut g2 = g.clone();
        g2[0] = None;
        let f = fvc_figures(&g2, &i).unwrap();
        assert_eq!(f.failed, 1);
        assert!((f.zero_fmr - 0.05).abs() < 1e-12);
        assert!(f.eer > 0.0 && f.eer <= 0.05);
    }
}
