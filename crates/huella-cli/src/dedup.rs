//! `huella dedup`: whole-gallery de-duplication into files a reviewer reads.
//!
//! Writes into `--out`:
//! - `duplicates.csv`: `record_a,record_b,face_score,finger_score,fused_score,decision`
//!   (records are encounter ids; decision `false_identity`, `repeat`, or
//!   `shared_identity` for a non-matching pair under one biographic identity);
//! - `clusters.json`: every cluster with its records (encounter, subject, biographic
//!   fields) and the shared identities;
//! - `summary.json`: counts, threshold and runtime;
//! - `report.html`: one static page, no external resources: false identities, shared
//!   identities and repeat encounters side by side, with the source images the store
//!   names embedded as data URIs when readable (TIFF, PGM and WSQ fingerprints
//!   converted to PNG; else their path), scores and
//!   biographic fields; all text escaped.
//!
//! Nothing biographic or biometric is logged; only counts.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use huella_engine::{
    ClusterKind, DedupOptions, DedupReport, DedupThreshold, EncounterId, Engine, Modality,
};

use crate::GalleryArgs;

/// Largest image file embedded in the report; larger ones are linked by path.
const MAX_EMBED_BYTES: u64 = 2 << 20;

/// Flags of `huella dedup`.
#[derive(Debug, Args)]
pub struct DedupArgs {
    #[command(flatten)]
    gallery: GalleryArgs,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Fused threshold: -log10 of the impostor probability a match must beat.
    #[arg(long, conflicts_with = "target_fpir")]
    threshold: Option<f64>,
    /// Target false positive identification rate for this gallery's size (default 0.01).
    #[arg(long)]
    target_fpir: Option<f64>,
    /// Neighbours searched per record and template.
    #[arg(long, default_value_t = 10)]
    neighbours: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Most clusters of each kind shown in report.html (all are in the CSV and JSON).
    #[arg(long, default_value_t = 200)]
    report_limit: usize,
}

/// Run the command.
pub fn run(args: &DedupArgs) -> Result<()> {
    let threshold = match (args.threshold, args.target_fpir) {
        (Some(t), _) => DedupThreshold::Fused(t),
        (None, Some(f)) => DedupThreshold::TargetFpir(f),
        (None, None) => DedupThreshold::TargetFpir(0.01),
    };
    let pool = crate::input::thread_pool(args.threads)?;
    let engine = pool.install(|| crate::open(&args.gallery))?;
    let opts = DedupOptions {
        neighbours: args.neighbours,
        threshold,
        ..DedupOptions::default()
    };
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} records searched, {per_sec}, ETA {eta}",
        )
        .context("progress bar template")?,
    );
    let report = pool.install(|| {
        engine.deduplicate_with_progress(&opts, |p| {
            bar.set_length(p.records);
            bar.set_position(p.searched);
        })
    });
    bar.finish_and_clear();
    let report = report?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write_csv(&args.out.join("duplicates.csv"), &report)?;
    write_clusters(&args.out.join("clusters.json"), &report)?;
    let summary = serde_json::to_string_pretty(&report.summary)?;
    std::fs::write(args.out.join("summary.json"), summary)
        .with_context(|| format!("cannot write into {}", args.out.display()))?;
    let html = report_html(&engine, &report, args.report_limit)?;
    std::fs::write(args.out.join("report.html"), html)
        .with_context(|| format!("cannot write into {}", args.out.display()))?;
    tracing::info!(
        records = report.summary.records,
        pairs = report.summary.matched_pairs,
        "de-duplication report written"
    );
    crate::print_json(&report.summary)
}

fn opt(v: Option<f32>) -> String {
    v.map(|s| format!("{s:.4}")).unwrap_or_default()
}

fn write_csv(path: &Path, report: &DedupReport) -> Result<()> {
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
    );
    writeln!(
        f,
        "record_a,record_b,face_score,finger_score,fused_score,decision"
    )?;
    for p in &report.pairs {
        writeln!(f, "{}", pair_cells(report, p, 3).join(","))?;
    }
    f.flush()?;
    Ok(())
}

fn write_clusters(path: &Path, report: &DedupReport) -> Result<()> {
    let record = |r: usize| {
        let rec = &report.records[r];
        serde_json::json!({
            "record": rec.encounter, "subject": rec.subject, "biographic": rec.biographic,
            "faces": rec.faces, "fingers": rec.fingers,
        })
    };
    let clusters: Vec<serde_json::Value> = report
        .clusters
        .iter()
        .enumerate()
        .map(|(i, c)| {
            serde_json::json!({
                "cluster": i + 1, "kind": c.kind, "subjects": c.subjects,
                "differing": c.differing,
                "records": c.records.iter().map(|&r| record(r)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let shared: Vec<serde_json::Value> = report
        .shared_identities
        .iter()
        .map(|s| {
            serde_json::json!({
                "key": s.key,
                "records": s.records.iter().map(|&r| record(r)).collect::<Vec<_>>(),
                "biometric_groups": s.groups.iter()
                    .map(|g| g.iter().map(|&r| report.records[r].encounter).collect::<Vec<_>>())
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let doc = serde_json::json!({"clusters": clusters, "shared_identities": shared});
    std::fs::write(path, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Escape text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The MIME type of an image a browser shows, from its first bytes.
fn image_mime(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', ..] => Some("image/gif"),
        [b'B', b'M', ..] => Some("image/bmp"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("image/webp"),
        _ => None,
    }
}

/// One pair as the cells of `duplicates.csv` and of the report's tables: record a,
/// record b, face score, finger score, fused score (`digits` decimals), decision. No cell
/// holds markup or commas.
fn pair_cells(
    report: &DedupReport,
    p: &huella_engine::DuplicatePair,
    digits: usize,
) -> [String; 6] {
    [
        report.records[p.a].encounter.to_string(),
        report.records[p.b].encounter.to_string(),
        opt(p.face_score),
        opt(p.finger_score),
        format!("{:.*}", digits, p.fused_score),
        p.decision.as_str().to_string(),
    ]
}

/// An `<img>` for a stored source image, or its path when it cannot be embedded (not
/// readable, too large, or not an image Huella decodes). Formats browsers do not show
/// (TIFF, PGM, WSQ fingerprints) are decoded and embedded as PNG.
fn image_tag(path: &str, label: &str) -> String {
    let embedded = std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file() && m.len() <= MAX_EMBED_BYTES)
        .and_then(|_| std::fs::read(path).ok())
        .and_then(|b| match image_mime(&b) {
            Some(m) => Some((m, b)),
            None => huella_engine::decode(&b, &huella_engine::Limits::default())
                .ok()
                .and_then(|img| huella_engine::encode_png(&img).ok())
                .map(|png| ("image/png", png)),
        });
    match embedded {
        Some((mime, bytes)) => format!(
            "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
            huella_engine::data_uri(mime, &bytes),
            esc(label),
            esc(label)
        ),
        None => format!(
            "<figure class=\"path\"><code>{}</code><figcaption>{}</figcaption></figure>",
            esc(path),
            esc(label)
        ),
    }
}

const CSS: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
h2{border-bottom:2px solid #888;margin-top:2em}\
.cluster{border:1px solid #ccc;border-radius:6px;padding:.6em;margin:1em 0}\
.false_identity{border-left:6px solid #c0392b}.shared_identity{border-left:6px solid #d68910}\
.repeat{border-left:6px solid #1e8449}\
.records{display:flex;flex-wrap:wrap;gap:1em}.record{border:1px solid #ddd;padding:.5em;min-width:16em}\
figure{display:inline-block;margin:.2em}img{max-width:150px;max-height:190px;display:block}\
figure.path code{font-size:.8em;word-break:break-all;max-width:150px;display:block}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}\
dl{margin:.3em 0}dt{font-weight:bold;float:left;clear:left;margin-right:.5em}";

fn report_html(engine: &Engine, report: &DedupReport, limit: usize) -> Result<String> {
    let s = &report.summary;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Huella de-duplication</title>\
         <style>{CSS}</style></head><body><h1>De-duplication report</h1>"
    );
    let _ = write!(
        h,
        "<p>{} records, {} candidate pairs re-scored, {} matching pairs in {} clusters: \
         <b>{} false identities</b>, <b>{} shared identities</b>, {} repeat encounters. \
         Threshold {:.2} (-log10 of the impostor probability{}); runtime {:.1} s.</p>",
        s.records,
        s.candidate_pairs,
        s.matched_pairs,
        s.clusters,
        s.false_identities,
        s.shared_identities,
        s.repeat_clusters,
        s.threshold,
        s.target_fpir
            .map(|f| format!(", target FPIR {f}"))
            .unwrap_or_default(),
        s.runtime_ms as f64 / 1e3
    );
    // Pair scores by record pair, for the tables under each group.
    let mut scores: HashMap<(usize, usize), usize> = HashMap::new();
    for (i, p) in report.pairs.iter().enumerate() {
        scores.insert((p.a, p.b), i);
    }
    let mut sources: BTreeMap<EncounterId, String> = BTreeMap::new();
    let mut card = |r: usize, h: &mut String| -> Result<()> {
        let rec = &report.records[r];
        let html = match sources.entry(rec.encounter) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(record_card(engine, report, r)?)
            }
        };
        h.push_str(html);
        Ok(())
    };
    let pair_table = |members: &[usize], h: &mut String| {
        let mut rows = String::new();
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                if let Some(&i) = scores.get(&(a.min(b), a.max(b))) {
                    let cells = pair_cells(report, &report.pairs[i], 2);
                    let _ = write!(rows, "<tr><td>{}</td></tr>", cells.join("</td><td>"));
                }
            }
        }
        if !rows.is_empty() {
            let _ = write!(
                h,
                "<table><tr><th>record a</th><th>record b</th><th>face</th><th>finger</th>\
                 <th>fused</th><th>decision</th></tr>{rows}</table>"
            );
        }
    };
    for (kind, title) in [
        (ClusterKind::FalseIdentity, "False identities"),
        (ClusterKind::Repeat, "Repeat encounters"),
    ] {
        let shown: Vec<_> = report.clusters.iter().filter(|c| c.kind == kind).collect();
        let _ = write!(h, "<h2>{title} ({})</h2>", shown.len());
        for (i, c) in shown.iter().take(limit).enumerate() {
            let class = if kind == ClusterKind::Repeat {
                "repeat"
            } else {
                "false_identity"
            };
            let _ = write!(
                h,
                "<div class=\"cluster {class}\"><h3>Cluster {} &middot; {} records{}</h3><div class=\"records\">",
                i + 1,
                c.records.len(),
                if c.differing.is_empty() {
                    String::new()
                } else {
                    format!(" &middot; differing: {}", esc(&c.differing.join(", ")))
                }
            );
            for &r in &c.records {
                card(r, &mut h)?;
            }
            h.push_str("</div>");
            pair_table(&c.records, &mut h);
            h.push_str("</div>");
        }
        if shown.len() > limit {
            let _ = write!(h, "<p>{} more in clusters.json.</p>", shown.len() - limit);
        }
    }
    let _ = write!(
        h,
        "<h2>Shared identities ({})</h2>",
        report.shared_identities.len()
    );
    for (i, sh) in report.shared_identities.iter().take(limit).enumerate() {
        let _ = write!(
            h,
            "<div class=\"cluster shared_identity\"><h3>Identity {} &middot; same {} &middot; {} biometric groups</h3><div class=\"records\">",
            i + 1,
            esc(sh.key),
            sh.groups.len()
        );
        for &r in &sh.records {
            card(r, &mut h)?;
        }
        h.push_str("</div>");
        pair_table(&sh.records, &mut h);
        h.push_str("</div>");
    }
    if report.shared_identities.len() > limit {
        let _ = write!(
            h,
            "<p>{} more in clusters.json.</p>",
            report.shared_identities.len() - limit
        );
    }
    h.push_str(
        "<p><small>Biographic fields are evidence for the reviewer; they never suppress a \
         biometric match. Scores: face cosine, finger MCC mean, fused = -log10 of the \
         estimated impostor probability.</small></p></body></html>",
    );
    Ok(h)
}

/// One record: biographic fields and its source images.
fn record_card(engine: &Engine, report: &DedupReport, r: usize) -> Result<String> {
    let rec = &report.records[r];
    let mut h = String::new();
    let _ = write!(
        h,
        "<div class=\"record\"><b>Record {}</b> &middot; subject {}<dl>",
        rec.encounter,
        esc(rec.subject.as_str())
    );
    for (k, v) in &rec.biographic {
        let _ = write!(h, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    }
    h.push_str("</dl>");
    if let Some(e) = engine.gallery().encounter(rec.encounter)? {
        let mut templates = Vec::new();
        for id in e.templates {
            if let Some(t) = engine.gallery().template(id)? {
                templates.push(t);
            }
        }
        // Face first, then fingers by position.
        templates.sort_by_key(|t| match t.template.modality() {
            Modality::Face => 0,
            Modality::Finger(p) => 1 + u32::from(p.code()),
            #[allow(unreachable_patterns)]
            _ => 100,
        });
        for t in templates {
            if let Some(src) = &t.source {
                h.push_str(&image_tag(&src.path, &t.template.modality().to_string()));
            }
        }
    }
    h.push_str("</div>");
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
