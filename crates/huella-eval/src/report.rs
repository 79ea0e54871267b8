//! Writers: JSON, CSV curves, plots and the self-contained HTML report.

use crate::identification::IdentificationReport;
use crate::plot::{self, PlotSpec};
use crate::verification::VerificationReport;
use crate::{EvalError, VERSION};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Provenance printed in the HTML report: what produced it.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// The exact command line.
    pub command: String,
    /// The input files.
    pub inputs: Vec<PathBuf>,
    /// The software that ran (e.g. `huella 0.1.0`); `huella-eval`'s version is added.
    pub software: String,
    /// When it ran (the caller's clock; the library reads none).
    pub date: String,
}

fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, EvalError> {
    std::fs::File::create(path)
        .map(std::io::BufWriter::new)
        .map_err(|e| EvalError::io(path, e))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pct(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{:.4}%", v * 100.0)
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> EvalError + '_ {
    move |e| EvalError::io(path, e)
}

const CSS: &str = "body{font-family:sans-serif;margin:16px;color:#222;max-width:1180px}h1{font-size:22px;margin:0 0 6px}\
h2{font-size:18px;margin:22px 0 8px}p.sum{margin:0 0 10px}table{border-collapse:collapse;margin:6px 0}\
td,th{border:1px solid #bbb;padding:3px 8px;text-align:right;font-size:13px}th{background:#eee}td.l,th.l{text-align:left}\
.fig{display:inline-block;vertical-align:top;margin:0 10px 10px 0}.fig svg{width:640px;height:480px}\
.warn{color:#a00}code,pre{font-size:12px;background:#f4f4f4;padding:2px 4px;white-space:pre-wrap;word-break:break-all}";

/// A whole report page: title, summary, figures, body, then titled lists (warnings,
/// notes, conventions: `(title, items, css class)`) and the provenance table.
fn page(
    title: &str,
    summary: &str,
    figures: &[(String, String)],
    body: &str,
    lists: &[(&str, &[String], &str)],
    run: &RunInfo,
    json_schema: u32,
) -> String {
    let mut h = String::new();
    let _ = write!(h, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title><style>{CSS}</style></head><body>", esc(title));
    let _ = write!(h, "<h1>{}</h1><p class=\"sum\">{}</p>", esc(title), summary);
    for (id, svg) in figures {
        let _ = write!(h, "<div class=\"fig\" id=\"{id}\">{svg}</div>");
    }
    h.push_str(body);
    for (title, items, class) in lists {
        h.push_str(&list(title, items, class));
    }
    let _ = write!(
        h,
        "<h2>Provenance</h2><table><tr><th class=\"l\">command</th><td class=\"l\"><code>{}</code></td></tr>\
<tr><th class=\"l\">inputs</th><td class=\"l\">{}</td></tr><tr><th class=\"l\">software</th><td class=\"l\">{} / huella-eval {VERSION} (JSON schema {json_schema})</td></tr>\
<tr><th class=\"l\">date</th><td class=\"l\">{}</td></tr></table></body></html>",
        esc(&run.command),
        run.inputs.iter().map(|p| format!("<code>{}</code>", esc(&p.display().to_string()))).collect::<Vec<_>>().join("<br>"),
        esc(&run.software),
        esc(&run.date)
    );
    h
}

fn list(title: &str, items: &[String], class: &str) -> String {
    if items.is_empty() {
        return String::new();
    }
    let li: String = items
        .iter()
        .map(|w| format!("<li>{}</li>", esc(w)))
        .collect();
    format!("<h2>{title}</h2><ul class=\"{class}\">{li}</ul>")
}

fn ci_text(ci: &Option<crate::Interval>) -> String {
    ci.map_or("–".into(), |c| {
        format!("[{}, {}]", pct(c.low), pct(c.high))
    })
}

impl VerificationReport {
    fn specs(&self) -> Vec<(&'static str, PlotSpec)> {
        let mut marks = vec![(
            self.eer.value,
            self.eer.value,
            format!(" EER {}", pct(self.eer.value)),
        )];
        for p in &self.fnmr_at_fmr {
            if p.supported {
                marks.push((
                    p.fmr.max(p.target_fmr * 0.999),
                    p.fnmr,
                    format!(" {}", p.name),
                ));
            }
        }
        vec![
            (
                "det",
                PlotSpec::Det {
                    title: "DET".into(),
                    x_label: "false match rate (FMR)".into(),
                    y_label: "false non-match rate (FNMR)".into(),
                    curve: self.curve.iter().map(|c| (c.fmr, c.fnmr)).collect(),
                    marks,
                },
            ),
            (
                "roc",
                PlotSpec::Roc {
                    title: "ROC".into(),
                    x_label: "false match rate (FMR, log)".into(),
                    y_label: "true match rate (1 - FNMR)".into(),
                    curve: self.curve.iter().map(|c| (c.fmr, 1.0 - c.fnmr)).collect(),
                },
            ),
            (
                "histogram",
                PlotSpec::Hist {
                    title: "Score distributions".into(),
                    edges: self.histogram.edges.clone(),
                    genuine: self.histogram.genuine.clone(),
                    impostor: self.histogram.impostor.clone(),
                },
            ),
        ]
    }

    /// Write the report as pretty JSON (the schema is in the crate docs).
    pub fn write_json(&self, w: impl Write) -> Result<(), EvalError> {
        serde_json::to_writer_pretty(w, self)
            .map_err(|e| EvalError::io(Path::new("<json>"), e.into()))
    }

    /// Write the sampled curve as CSV: `threshold,fmr,fnmr` (ascending threshold).
    pub fn write_curves_csv(&self, mut w: impl Write) -> Result<(), EvalError> {
        let p = Path::new("<csv>");
        writeln!(w, "threshold,fmr,fnmr").map_err(io_err(p))?;
        for c in &self.curve {
            writeln!(w, "{},{},{}", c.threshold, c.fmr, c.fnmr).map_err(io_err(p))?;
        }
        Ok(())
    }

    /// Write `det`, `roc` and `histogram` as SVG and PNG, and `curves.csv`, into `dir`
    /// (created if missing). Returns the files written.
    pub fn write_plots(&self, dir: &Path) -> Result<Vec<PathBuf>, EvalError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut out = Vec::new();
        for (stem, spec) in self.specs() {
            out.extend(plot::write_both(&spec, dir, stem)?);
        }
        let csv = dir.join("curves.csv");
        let mut f = create(&csv)?;
        self.write_curves_csv(&mut f)?;
        f.flush().map_err(io_err(&csv))?;
        out.push(csv);
        Ok(out)
    }

    /// Write a self-contained HTML report (inline SVG and CSS, no external URL).
    pub fn write_html(&self, path: &Path, run: &RunInfo) -> Result<(), EvalError> {
        let mut figures = Vec::new();
        for (stem, spec) in self.specs() {
            let svg = plot::svg(&spec).map_err(|reason| EvalError::Plot {
                path: path.to_path_buf(),
                reason,
            })?;
            figures.push((stem.to_string(), svg));
        }
        let summary = format!(
            "{} genuine and {} impostor comparisons; EER {} (interpolated), {}",
            self.counts.genuine,
            self.counts.impostor,
            pct(self.eer.value),
            self.fnmr_at_fmr
                .iter()
                .map(|p| format!("{} {}", p.name, pct(p.fnmr)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut b = String::new();
        b.push_str("<h2>Verification metrics</h2><table><tr><th class=\"l\">figure</th><th>value</th><th>threshold</th><th>CI</th><th class=\"l\">note</th></tr>");
        let ci_level = self.bootstrap.as_ref().map_or(String::new(), |bi| {
            format!(" ({:.0}% subject bootstrap)", bi.level * 100.0)
        });
        let _ = write!(b, "<tr><td class=\"l\">EER (interpolated)</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            pct(self.eer.value), self.eer.threshold, ci_text(&self.eer.ci), esc(&self.conventions.eer_rule));
        let f = &self.eer_fvc_interval;
        let _ = write!(b, "<tr><td class=\"l\">EER (FVC interval)</td><td>{} [{}, {}]</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            pct(f.value), pct(f.low), pct(f.high), f.threshold, ci_text(&f.ci), esc(&self.conventions.eer_fvc_rule));
        for p in &self.fnmr_at_fmr {
            let _ = write!(b, "<tr><td class=\"l\">{} (FNMR at FMR {})</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l{}\">achieved FMR {}{}</td></tr>",
                esc(&p.name), p.target_fmr, pct(p.fnmr), p.threshold, ci_text(&p.ci),
                if p.warning.is_some() { " warn" } else { "" }, pct(p.fmr),
                p.warning.as_ref().map_or(String::new(), |w| format!("; {}", esc(w))));
        }
        let _ = write!(b, "<tr><td class=\"l\">ZeroFMR (FNMR)</td><td>{}</td><td>{}</td><td>–</td><td class=\"l\"></td></tr>", pct(self.zero_fmr.rate), self.zero_fmr.threshold);
        match &self.zero_fnmr {
            Some(z) => { let _ = write!(b, "<tr><td class=\"l\">ZeroFNMR (FMR)</td><td>{}</td><td>{}</td><td>–</td><td class=\"l\"></td></tr>", pct(z.rate), z.threshold); }
            None => b.push_str("<tr><td class=\"l\">ZeroFNMR (FMR)</td><td>–</td><td>–</td><td>–</td><td class=\"l\">undefined: genuine failures make FNMR > 0 at every threshold</td></tr>"),
        }
        let c = &self.counts;
        let _ = write!(b, "</table><p>Intervals{}. FTE rate {}, FTA rate {} ({} genuine and {} impostor failures; {}).</p>",
            esc(&ci_level), pct(self.failures.fte_rate), pct(self.failures.fta_rate), c.genuine_failures, c.impostor_failures, esc(&self.failures.note));
        for d in &self.demographics {
            let _ = write!(b, "<h2>Demographic breakdown: {}</h2><p>Threshold {} ({}). Worst/best FMR ratio {}, FNMR ratio {}.</p><table><tr><th class=\"l\">group</th><th>subjects</th><th>genuine</th><th>impostor</th><th>FMR</th><th>FNMR</th></tr>",
                esc(&d.column), d.threshold, esc(&d.threshold_rule),
                d.fmr_worst_to_best.map_or("undefined".into(), |r| format!("{r:.2}")),
                d.fnmr_worst_to_best.map_or("undefined".into(), |r| format!("{r:.2}")));
            for g in &d.groups {
                let _ = write!(b, "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&g.group), g.subjects.map_or("–".into(), |s| s.to_string()), g.genuine, g.impostor, pct(g.fmr), pct(g.fnmr));
            }
            b.push_str("</table>");
        }
        let conv = &self.conventions;
        let conventions = [
            conv.score.clone(),
            conv.decision.clone(),
            conv.thresholds.clone(),
            conv.precision.clone(),
            conv.failures.clone(),
            conv.fmr_point_rule.clone(),
        ];
        let html = page(
            &format!("Huella evaluation: verification ({})", self.protocol),
            &esc(&summary),
            &figures,
            &b,
            &[
                ("Warnings", &self.warnings, "warn"),
                ("Notes", &self.notes, ""),
                ("Conventions", &conventions, ""),
            ],
            run,
            self.schema_version,
        );
        std::fs::write(path, html).map_err(io_err(path))
    }
}

impl IdentificationReport {
    fn specs(&self) -> Vec<(&'static str, PlotSpec)> {
        let mut v = Vec::new();
        if !self.curve.is_empty() {
            let marks = self
                .fnir_at_fpir
                .iter()
                .filter(|p| p.supported)
                .map(|p| {
                    (
                        p.fpir.max(p.target_fpir * 0.999),
                        p.fnir,
                        format!(" {}", p.name),
                    )
                })
                .collect();
            v.push((
                "det",
                PlotSpec::Det {
                    title: "FNIR vs FPIR".into(),
                    x_label: "false positive identification rate (FPIR)".into(),
                    y_label: "false negative identification rate (FNIR)".into(),
                    curve: self.curve.iter().map(|c| (c.fpir, c.fnir)).collect(),
                    marks,
                },
            ));
        }
        v.push((
            "cmc",
            PlotSpec::Cmc {
                title: "CMC".into(),
                points: self.cmc.iter().map(|r| (r.rank, r.hit_rate)).collect(),
            },
        ));
        v
    }

    /// Write the report as pretty JSON (the schema is in the crate docs).
    pub fn write_json(&self, w: impl Write) -> Result<(), EvalError> {
        serde_json::to_writer_pretty(w, self)
            .map_err(|e| EvalError::io(Path::new("<json>"), e.into()))
    }

    /// Write the curves as CSV: `cmc.csv`-style `rank,hit_rate,fnir` rows, then (open-set)
    /// a blank line and `threshold,fpir,fnir` rows.
    pub fn write_curves_csv(&self, mut w: impl Write) -> Result<(), EvalError> {
        let p = Path::new("<csv>");
        writeln!(w, "rank,hit_rate,fnir").map_err(io_err(p))?;
        for r in &self.cmc {
            writeln!(w, "{},{},{}", r.rank, r.hit_rate, r.fnir).map_err(io_err(p))?;
        }
        if !self.curve.is_empty() {
            writeln!(w, "\nthreshold,fpir,fnir").map_err(io_err(p))?;
            for c in &self.curve {
                writeln!(w, "{},{},{}", c.threshold, c.fpir, c.fnir).map_err(io_err(p))?;
            }
        }
        Ok(())
    }

    /// Write `cmc` (and, open-set, `det`: FNIR vs FPIR) as SVG and PNG, plus `cmc.csv`
    /// and `fnir_fpir.csv`, into `dir`.
    pub fn write_plots(&self, dir: &Path) -> Result<Vec<PathBuf>, EvalError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut out = Vec::new();
        for (stem, spec) in self.specs() {
            out.extend(plot::write_both(&spec, dir, stem)?);
        }
        let cmc = dir.join("cmc.csv");
        let mut f = create(&cmc)?;
        writeln!(f, "rank,hit_rate,fnir").map_err(io_err(&cmc))?;
        for r in &self.cmc {
            writeln!(f, "{},{},{}", r.rank, r.hit_rate, r.fnir).map_err(io_err(&cmc))?;
        }
        f.flush().map_err(io_err(&cmc))?;
        out.push(cmc);
        if !self.curve.is_empty() {
            let fp = dir.join("fnir_fpir.csv");
            let mut f = create(&fp)?;
            writeln!(f, "threshold,fpir,fnir").map_err(io_err(&fp))?;
            for c in &self.curve {
                writeln!(f, "{},{},{}", c.threshold, c.fpir, c.fnir).map_err(io_err(&fp))?;
            }
            f.flush().map_err(io_err(&fp))?;
            out.push(fp);
        }
        Ok(out)
    }

    /// Write a self-contained HTML report.
    pub fn write_html(&self, path: &Path, run: &RunInfo) -> Result<(), EvalError> {
        let mut figures = Vec::new();
        for (stem, spec) in self.specs() {
            let svg = plot::svg(&spec).map_err(|reason| EvalError::Plot {
                path: path.to_path_buf(),
                reason,
            })?;
            figures.push((stem.to_string(), svg));
        }
        let summary = format!(
            "{} mode; {} mated and {} non-mated searches; rank-1 hit rate {}",
            self.mode,
            self.counts.mated,
            self.counts.non_mated,
            self.rank_k.first().map_or("–".into(), |r| pct(r.hit_rate))
        );
        let mut b = String::from("<h2>Rank-based (CMC)</h2><table><tr><th>rank</th><th>hit rate</th><th>FNIR (T = 0)</th></tr>");
        for r in &self.rank_k {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                r.rank,
                pct(r.hit_rate),
                pct(r.fnir)
            );
        }
        b.push_str("</table>");
        if !self.fnir_at_fpir.is_empty() {
            let _ = write!(b, "<h2>FNIR at FPIR (rank limit {})</h2><table><tr><th class=\"l\">point</th><th>target FPIR</th><th>FNIR</th><th>achieved FPIR</th><th>threshold</th><th class=\"l\">note</th></tr>",
                self.rank_limit.map_or("whole list".into(), |r| r.to_string()));
            for p in &self.fnir_at_fpir {
                let _ = write!(b, "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l warn\">{}</td></tr>",
                    esc(&p.name), p.target_fpir, pct(p.fnir), pct(p.fpir), p.threshold, esc(p.warning.as_deref().unwrap_or("")));
            }
            b.push_str("</table>");
        }
        let c = &self.conventions;
        let conventions = [
            c.decision.clone(),
            c.fnir.clone(),
            c.fpir.clone(),
            c.fpir_point_rule.clone(),
        ];
        let html = page(
            &format!("Huella evaluation: identification ({})", self.protocol),
            &esc(&summary),
            &figures,
            &b,
            &[
                ("Warnings", &self.warnings, "warn"),
                ("Notes", &self.notes, ""),
                ("Conventions", &conventions, ""),
            ],
            run,
            self.schema_version,
        );
        std::fs::write(path, html).map_err(io_err(path))
    }
}
