//! Fingerprints on the command line: `extract --finger` and `verify --finger A --finger B`.

use std::path::{Path, PathBuf};

use crate::input::{read_sample, source_image};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use huella_engine::finger::{
    finger_quality, render_match_svg, render_minutiae_svg, FingerExtractor, FingerQuality,
    FingerTemplate, Matcher, MinutiaeRecord, RecordFormat,
};
use huella_engine::{FingerPosition, GreyImage, Limits, NewTemplate};

/// Decision threshold of `verify --finger` (MCC score, `[0, 1]`, higher = more alike).
///
/// Chosen on FVC2002 DB1-4 B (development set, `../shared/datasets/fvc2002`) as the
/// lowest threshold with FMR <= 0.1 % over all impostor pairs of the four databases
/// pooled (11,520 comparisons; at most 11 false matches): the output of
/// `huella eval fvc --data ../shared/datasets/fvc2002 --source images --scores-csv s.csv`
/// with the extractor and matcher of commit b632bae (mean EER 1.88 %), taking the pooled
/// `impostor` rows: the 12th highest impostor score is 0.028510, so the threshold is the
/// next value at the CSV's six decimals, where FMR is 11/11,520 = 0.095 % and FNMR 5.1 %
/// over the 1,120 pooled genuine pairs. Retune when the extractor or the matcher changes
/// (their scores shift).
pub const FINGER_THRESHOLD: f32 = 0.028_511;

/// Finger images scoring below this quality are flagged `low_quality` at enrolment and
/// search (and warned about on stderr), so that an operator can recapture. On FVC2002
/// the lowest tenth of impressions score below 36, and leaving them out lowers the EER
/// from 2.05% to 1.49% (`examples/quality_erc.rs`, BENCHMARKS.md); 25 flags the clearly
/// poor ones (25 of the 320 FVC2002 impressions) without refusing anything.
pub const FINGER_LOW_QUALITY: u8 = 25;

/// Largest canvas drawn for a record without an image (pixels).
const MAX_CANVAS_PIXELS: u64 = 16 << 20;

/// Output format of `extract --finger`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TemplateFormat {
    /// The template and its quality as JSON.
    Json,
    /// ISO/IEC 19794-2:2005 minutiae record (binary, needs --out).
    Iso,
    /// ANSI INCITS 378-2004 minutiae record (binary, needs --out).
    Ansi,
}

/// Flags of `huella extract`.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Fingerprint image (TIFF, PNG, BMP, PGM, JPEG, WSQ).
    #[arg(long)]
    finger: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TemplateFormat::Json)]
    format: TemplateFormat,
    /// Output file (required for iso and ansi; json goes to standard output without it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also draw the minutiae over the image into this SVG file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Image resolution in pixels per inch, when the file does not state it (default
    /// 500) or states it wrongly.
    #[arg(long)]
    ppi: Option<f32>,
}

/// One side of a comparison: an image run through the extractor, or a record.
pub(crate) struct Finger {
    template: FingerTemplate,
    /// The image, when the input was one.
    image: Option<GreyImage>,
    /// `finger_quality` for an image; the record's stated view quality otherwise.
    quality: u8,
    /// The full quality breakdown, for images.
    breakdown: Option<FingerQuality>,
}

fn decode_image(bytes: &[u8], path: &Path) -> Result<(GreyImage, Option<f32>)> {
    let img = huella_engine::decode(bytes, &Limits::default())
        .with_context(|| format!("cannot decode image {}", path.display()))?;
    let ppi = img.ppi();
    Ok((img.to_grey(), ppi))
}

fn extract_image(img: GreyImage, ppi: Option<f32>, path: &Path) -> Result<Finger> {
    if let Some(p) = ppi {
        if !p.is_finite() || p <= 0.0 {
            bail!("--ppi must be a positive number, got {p}");
        }
    }
    let ex = FingerExtractor::default()
        .extract(&img, ppi)
        .with_context(|| format!("{}", path.display()))?;
    let q = finger_quality(&ex);
    Ok(Finger {
        template: ex.template,
        image: Some(img),
        quality: q.score,
        breakdown: Some(q),
    })
}

/// Loads `path`: a minutiae record when it starts with `FMR\0`, else an image.
fn load(path: &Path, ppi: Option<f32>) -> Result<Finger> {
    load_bytes(&read_sample(path)?, path, ppi)
}

/// [`load`] on the bytes of `path`, already read.
fn load_bytes(bytes: &[u8], path: &Path, ppi: Option<f32>) -> Result<Finger> {
    if bytes.starts_with(b"FMR\0") {
        let record = MinutiaeRecord::decode(bytes)
            .with_context(|| format!("{} is not a valid minutiae record", path.display()))?;
        let template = record
            .to_template(0)
            .with_context(|| format!("{}", path.display()))?;
        return Ok(Finger {
            quality: template.quality,
            template,
            image: None,
            breakdown: None,
        });
    }
    let (img, stated) = decode_image(bytes, path)?;
    extract_image(img, ppi.or(stated), path)
}

/// Parses `POS=PATH`: POS is an ISO/ANSI finger position code 0-10 or its name
/// (`right-thumb` ... `left-little`, `unknown`).
pub fn parse_finger(s: &str) -> Result<(FingerPosition, PathBuf), String> {
    const NAMES: [&str; 11] = [
        "unknown",
        "right-thumb",
        "right-index",
        "right-middle",
        "right-ring",
        "right-little",
        "left-thumb",
        "left-index",
        "left-middle",
        "left-ring",
        "left-little",
    ];
    let (pos, path) = s
        .split_once('=')
        .filter(|(p, f)| !p.is_empty() && !f.is_empty())
        .ok_or_else(|| {
            format!("{s:?} is not POSITION=PATH (e.g. 2=index.tif or right-index=index.tif)")
        })?;
    let code = match pos.parse::<u8>() {
        Ok(code) => code,
        Err(_) => NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(pos))
            .ok_or_else(|| {
                format!(
                    "finger position {pos:?} is neither 0-10 nor one of {}",
                    NAMES.join(", ")
                )
            })? as u8,
    };
    let position = FingerPosition::from_code(code).map_err(|e| e.to_string())?;
    Ok((position, PathBuf::from(path)))
}

/// The gallery template of one finger file (an image or an ISO/ANSI record) at
/// `position`, with its source reference, and what was extracted.
pub(crate) fn finger_file_template(
    position: FingerPosition,
    path: &Path,
    ppi: Option<f32>,
) -> Result<(NewTemplate, Finger)> {
    let bytes = read_sample(path)?;
    let finger = load_bytes(&bytes, path, ppi)?;
    let template = NewTemplate {
        template: huella_engine::finger_template(position, &finger.template)?,
        source: Some(source_image(path, &bytes)),
    };
    Ok((template, finger))
}

/// Finger templates for the gallery from `POS=PATH` arguments (images or ISO/ANSI
/// records), with what the CLI reports about each (never the minutiae).
pub fn finger_templates(
    fingers: &[(FingerPosition, PathBuf)],
    ppi: Option<f32>,
) -> Result<(Vec<NewTemplate>, Vec<serde_json::Value>)> {
    let mut templates = Vec::with_capacity(fingers.len());
    let mut described = Vec::with_capacity(fingers.len());
    for (position, path) in fingers {
        let (template, finger) = finger_file_template(*position, path, ppi)?;
        templates.push(template);
        // Only our own quality score flags a capture: a record's stated quality may be a
        // vendor's scale or 0 for "not given".
        let low = finger.breakdown.is_some() && finger.quality < FINGER_LOW_QUALITY;
        if low {
            tracing::warn!(
                position = position.code(),
                quality = finger.quality,
                "poor finger capture: consider recapturing"
            );
        }
        described.push(serde_json::json!({
            "position": position.code(),
            "minutiae": finger.template.minutiae.len(),
            "quality": finger.quality,
            "low_quality": low,
        }));
    }
    Ok((templates, described))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// `huella extract --finger IMG ...`.
pub fn extract(args: &ExtractArgs) -> Result<()> {
    let format = match args.format {
        TemplateFormat::Json => None,
        TemplateFormat::Iso => Some(RecordFormat::Iso19794_2_2005),
        TemplateFormat::Ansi => Some(RecordFormat::Ansi378_2004),
    };
    if format.is_some() && args.out.is_none() {
        bail!("--format iso and --format ansi write binary records: give --out FILE");
    }
    let bytes = read_sample(&args.finger)?;
    if bytes.starts_with(b"FMR\0") {
        bail!(
            "{} is already a minutiae record, not an image",
            args.finger.display()
        );
    }
    let (img, stated) = decode_image(&bytes, &args.finger)?;
    let mut finger = extract_image(img, args.ppi.or(stated), &args.finger)?;
    let quality = finger
        .breakdown
        .context("an image has a quality breakdown")?;
    // The record carries the impression quality the score gives.
    finger.template.quality = quality.score;
    if let (Some(svg), Some(img)) = (&args.svg, &finger.image) {
        write_file(svg, render_minutiae_svg(img, &finger.template).as_bytes())?;
    }
    let summary = serde_json::json!({
        "minutiae": finger.template.minutiae.len(),
        "quality": quality,
    });
    match (format, &args.out) {
        (Some(format), Some(out)) => {
            let record = MinutiaeRecord::from_template(&finger.template, format)?.encode()?;
            write_file(out, &record)?;
            crate::print_json(&summary)
        }
        (_, out) => {
            let doc = serde_json::json!({ "template": finger.template, "quality": quality });
            match out {
                Some(out) => {
                    write_file(out, serde_json::to_string_pretty(&doc)?.as_bytes())?;
                    crate::print_json(&summary)
                }
                None => crate::print_json(&doc),
            }
        }
    }
}

/// `huella verify --finger A --finger B [--svg FILE] [--threshold T]`.
pub fn verify(
    paths: &[PathBuf],
    svg: Option<&Path>,
    threshold: Option<f32>,
    ppi: Option<f32>,
) -> Result<()> {
    let [a, b] = paths else {
        bail!("give exactly two --finger files (images or ISO/ANSI minutiae records)");
    };
    let threshold = threshold.unwrap_or(FINGER_THRESHOLD);
    if !threshold.is_finite() {
        bail!("--threshold must be a finite number");
    }
    let (fa, fb) = (load(a, ppi)?, load(b, ppi)?);
    let matcher = Matcher::default();
    let (pa, pb) = (matcher.prepare(&fa.template), matcher.prepare(&fb.template));
    let score = matcher.compare(&pa, &pb);
    let pairs = matcher.matched_pairs(&pa, &pb);
    if let Some(svg) = svg {
        // A record has no image: draw its minutiae on a blank canvas of its size.
        let canvas = |f: &Finger| -> Result<GreyImage> {
            if let Some(img) = &f.image {
                return Ok(img.clone());
            }
            let (w, h) = (u32::from(f.template.width), u32::from(f.template.height));
            // A record states any size up to 65535 a side: never allocate for a hostile one.
            if u64::from(w) * u64::from(h) > MAX_CANVAS_PIXELS {
                bail!("the record's image size {w}x{h} is too large to draw");
            }
            GreyImage::from_raw(w, h, vec![230; w as usize * h as usize])
                .context("cannot make a canvas of the record's image size")
        };
        let text = render_match_svg(
            &canvas(&fa)?,
            &fa.template,
            &canvas(&fb)?,
            &fb.template,
            &pairs,
            score,
        );
        write_file(svg, text.as_bytes())?;
    }
    let is_match = score >= threshold;
    crate::print_json(&serde_json::json!({
        "score": score,
        "threshold": threshold,
        "decision": if is_match { "match" } else { "non-match" },
        "match": is_match,
        "matched_pairs": pairs.len(),
        "minutiae_a": fa.template.minutiae.len(),
        "minutiae_b": fb.template.minutiae.len(),
        "quality_a": fa.quality,
        "quality_b": fb.quality,
    }))
}
