//! The HTML report opens in headless Chromium and the screenshot shows the DET plot.

use crate::{in_ci, synthetic};
use huella_eval::*;
use std::process::Command;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

#[test]
fn html_report_shows_the_det_plot_in_a_browser() {
    let Some(browser) = chromium() else {
        assert!(
            !in_ci(),
            "CI is set but chromium is missing (run .ci/eval-deps.sh)"
        );
        eprintln!("SKIPPED html_report_shows_the_det_plot_in_a_browser: no chromium (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (g, i) = synthetic(2000, 50_000, 9, false);
    let r = VerificationReport::from_scores(&g, &i, VerificationOptions::default()).unwrap();
    let html = dir.path().join("report.html");
    let run = RunInfo {
        command: "test".into(),
        inputs: vec![],
        software: "test".into(),
        date: "today".into(),
    };
    r.write_html(&html, &run).unwrap();
    let shot = dir.path().join("shot.png");
    let profile = dir.path().join("profile");
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1200,1600")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Ok(keep) = std::env::var("HUELLA_EVAL_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let ch = info.color_type.samples();
    assert!(
        info.width >= 1000 && info.height >= 1000,
        "{}x{}",
        info.width,
        info.height
    );
    // The DET figure is the first one: 640x480 CSS px from about (16, 70).
    let (x0, x1, y0, y1) = (40usize, 640usize, 110usize, 520usize);
    let (mut non_white, mut blue, mut n, mut sum, mut sum2) = (0usize, 0usize, 0usize, 0f64, 0f64);
    for y in y0..y1 {
        for x in x0..x1 {
            let p = &buf[(y * info.width as usize + x) * ch..][..3];
            let lum = (p[0] as f64 + p[1] as f64 + p[2] as f64) / 3.0;
            n += 1;
            sum += lum;
            sum2 += lum * lum;
            if lum < 235.0 {
                non_white += 1;
            }
            // The DET curve colour (31, 119, 180).
            if p[2] > 140 && p[0] < 90 && p[1] > 80 && p[1] < 160 {
                blue += 1;
            }
        }
    }
    let var = sum2 / n as f64 - (sum / n as f64).powi(2);
    let share = non_white as f64 / n as f64;
    eprintln!(
        "screenshot DET region: non-white share {share:.3}, variance {var:.0}, curve pixels {blue}"
    );
    assert!(share > 0.02 && share < 0.6, "non-white share {share}");
    assert!(var > 100.0, "variance {var}");
    assert!(blue > 300, "curve pixels {blue}");
}
