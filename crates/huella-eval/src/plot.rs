//! Plots (SVG and PNG) drawn with `plotters`, text set in the bundled DejaVu Sans so that
//! rendering never depends on the fonts of the machine.

use crate::stats::probit;
use crate::EvalError;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();
const FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const BLUE_: RGBColor = RGBColor(31, 119, 180);
const RED_: RGBColor = RGBColor(214, 39, 40);
const GREY_: RGBColor = RGBColor(150, 150, 150);

fn init_font() {
    FONT.call_once(|| {
        // The bundled font is valid; failure would only mean text is left out.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_BYTES);
    });
}

/// What to draw.
#[derive(Debug, Clone)]
pub(crate) enum PlotSpec {
    /// Error-rate trade-off on normal-deviate axes; points are (x rate, y rate).
    Det {
        title: String,
        x_label: String,
        y_label: String,
        curve: Vec<(f64, f64)>,
        marks: Vec<(f64, f64, String)>,
    },
    /// ROC: x = FMR (log), y = 1 - FNMR.
    Roc {
        title: String,
        x_label: String,
        y_label: String,
        curve: Vec<(f64, f64)>,
    },
    /// Genuine / impostor score histograms (densities).
    Hist {
        title: String,
        edges: Vec<f64>,
        genuine: Vec<u64>,
        impostor: Vec<u64>,
    },
    /// CMC: hit rate by rank.
    Cmc {
        title: String,
        points: Vec<(u32, f64)>,
    },
}

const TICKS: [(f64, &str); 12] = [
    (1e-6, "0.0001%"),
    (1e-5, "0.001%"),
    (1e-4, "0.01%"),
    (1e-3, "0.1%"),
    (1e-2, "1%"),
    (0.02, "2%"),
    (0.05, "5%"),
    (0.1, "10%"),
    (0.2, "20%"),
    (0.4, "40%"),
    (0.6, "60%"),
    (0.9, "90%"),
];

type R = Result<(), String>;

fn draw<DB: DrawingBackend>(spec: &PlotSpec, root: &DrawingArea<DB, Shift>) -> R
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let font = ("sans-serif", 14).into_font();
    match spec {
        PlotSpec::Det {
            title,
            x_label,
            y_label,
            curve,
            marks,
        } => {
            let smallest = curve
                .iter()
                .flat_map(|&(x, y)| [x, y])
                .filter(|&v| v > 0.0)
                .fold(1e-3, f64::min);
            let lo = smallest.max(1e-6) * 0.8;
            let hi = 0.95;
            let (a, b) = (probit(lo), probit(hi));
            let keys: Vec<(f64, &str)> = TICKS
                .iter()
                .filter(|(p, _)| *p >= lo && *p <= hi)
                .map(|(p, l)| (probit(*p), *l))
                .collect();
            let mut chart = ChartBuilder::on(root)
                .caption(title, ("sans-serif", 20))
                .margin(15)
                .x_label_area_size(50)
                .y_label_area_size(70)
                .build_cartesian_2d(a..b, a..b)
                .map_err(e)?;
            // Normal-deviate axes: grid lines and labels at round percentages.
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(0)
                .y_labels(0)
                .x_desc(x_label.as_str())
                .y_desc(y_label.as_str())
                .axis_desc_style(font.clone())
                .draw()
                .map_err(e)?;
            let grid = RGBColor(225, 225, 225);
            for &(k, label) in &keys {
                chart
                    .draw_series(LineSeries::new([(k, a), (k, b)], grid.stroke_width(1)))
                    .map_err(e)?;
                chart
                    .draw_series(LineSeries::new([(a, k), (b, k)], grid.stroke_width(1)))
                    .map_err(e)?;
                let (px, py) = chart.backend_coord(&(k, a));
                let st = TextStyle::from(font.clone()).pos(Pos::new(HPos::Center, VPos::Top));
                root.draw(&Text::new(label, (px, py + 6), st)).map_err(e)?;
                let (px, py) = chart.backend_coord(&(a, k));
                let st = TextStyle::from(font.clone()).pos(Pos::new(HPos::Right, VPos::Center));
                root.draw(&Text::new(label, (px - 6, py), st)).map_err(e)?;
            }
            chart
                .draw_series(LineSeries::new([(a, a), (b, b)], GREY_.stroke_width(1)))
                .map_err(e)?;
            let c = |v: f64| probit(v.clamp(lo, hi));
            chart
                .draw_series(LineSeries::new(
                    curve.iter().map(|&(x, y)| (c(x), c(y))),
                    BLUE_.stroke_width(3),
                ))
                .map_err(e)?;
            for (x, y, label) in marks {
                let p = (c(*x), c(*y));
                chart
                    .draw_series([Circle::new(p, 5, RED_.filled())])
                    .map_err(e)?;
                chart
                    .draw_series([Text::new(label.clone(), p, ("sans-serif", 13).into_font())])
                    .map_err(e)?;
            }
        }
        PlotSpec::Roc {
            title,
            x_label,
            y_label,
            curve,
        } => {
            let lo = curve
                .iter()
                .map(|p| p.0)
                .filter(|&v| v > 0.0)
                .fold(1e-3, f64::min)
                .max(1e-7)
                * 0.8;
            let mut chart = ChartBuilder::on(root)
                .caption(title, ("sans-serif", 20))
                .margin(15)
                .x_label_area_size(50)
                .y_label_area_size(60)
                .build_cartesian_2d((lo..1.0).log_scale(), 0.0..1.0)
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc(x_label.as_str())
                .y_desc(y_label.as_str())
                .x_label_formatter(&|v| format!("{v:.0e}"))
                .label_style(font.clone())
                .axis_desc_style(font.clone())
                .draw()
                .map_err(e)?;
            chart
                .draw_series(LineSeries::new(
                    curve.iter().map(|&(x, y)| (x.max(lo), y)),
                    BLUE_.stroke_width(3),
                ))
                .map_err(e)?;
        }
        PlotSpec::Hist {
            title,
            edges,
            genuine,
            impostor,
        } => {
            if edges.len() < 2 {
                return Ok(());
            }
            let dens = |c: &[u64]| {
                let n: u64 = c.iter().sum::<u64>().max(1);
                let w = edges[1] - edges[0];
                c.iter()
                    .map(|&v| v as f64 / n as f64 / w)
                    .collect::<Vec<f64>>()
            };
            let (dg, di) = (dens(genuine), dens(impostor));
            let top = dg
                .iter()
                .chain(&di)
                .fold(0.0f64, |a, &b| a.max(b))
                .max(1e-9)
                * 1.1;
            let (x0, x1) = (edges[0], edges[edges.len() - 1]);
            let mut chart = ChartBuilder::on(root)
                .caption(title, ("sans-serif", 20))
                .margin(15)
                .x_label_area_size(50)
                .y_label_area_size(60)
                .build_cartesian_2d(x0..x1, 0.0..top)
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc("score")
                .y_desc("density")
                .label_style(font.clone())
                .axis_desc_style(font.clone())
                .draw()
                .map_err(e)?;
            for (d, color, name) in [(&di, RED_, "impostor"), (&dg, BLUE_, "genuine")] {
                chart
                    .draw_series(d.iter().enumerate().map(|(k, &v)| {
                        Rectangle::new(
                            [(edges[k], 0.0), (edges[k + 1], v)],
                            color.mix(0.45).filled(),
                        )
                    }))
                    .map_err(e)?
                    .label(name)
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled())
                    });
            }
            chart
                .configure_series_labels()
                .label_font(font.clone())
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(e)?;
        }
        PlotSpec::Cmc { title, points } => {
            let max = points.iter().map(|p| p.0).max().unwrap_or(1).max(2) as f64;
            let mut chart = ChartBuilder::on(root)
                .caption(title, ("sans-serif", 20))
                .margin(15)
                .x_label_area_size(50)
                .y_label_area_size(60)
                .build_cartesian_2d(1.0..max, 0.0..1.0)
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc("rank")
                .y_desc("identification rate")
                .label_style(font.clone())
                .axis_desc_style(font.clone())
                .draw()
                .map_err(e)?;
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|&(r, h)| (r as f64, h)),
                    BLUE_.stroke_width(3),
                ))
                .map_err(e)?;
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&(r, h)| Circle::new((r as f64, h), 3, BLUE_.filled())),
                )
                .map_err(e)?;
        }
    }
    root.present().map_err(e)
}

pub(crate) const SIZE: (u32, u32) = (640, 480);

/// The plot as an SVG document.
pub(crate) fn svg(spec: &PlotSpec) -> Result<String, String> {
    init_font();
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, SIZE).into_drawing_area();
        draw(spec, &root)?;
    }
    Ok(s)
}

/// Write `<stem>.svg` and `<stem>.png` into `dir`.
pub(crate) fn write_both(
    spec: &PlotSpec,
    dir: &Path,
    stem: &str,
) -> Result<Vec<std::path::PathBuf>, EvalError> {
    init_font();
    let sp = dir.join(format!("{stem}.svg"));
    let pp = dir.join(format!("{stem}.png"));
    let s = svg(spec).map_err(|reason| EvalError::Plot {
        path: sp.clone(),
        reason,
    })?;
    std::fs::write(&sp, s).map_err(|e| EvalError::io(&sp, e))?;
    {
        let root = BitMapBackend::new(&pp, SIZE).into_drawing_area();
        draw(spec, &root).map_err(|reason| EvalError::Plot {
            path: pp.clone(),
            reason,
        })?;
    }
    Ok(vec![sp, pp])
}
