//! Agreement with pyeer (PyPI) on the same score sets.
//!
//! Tolerances: pyeer's EER is the FVC2000 midpoint, the same rule as our
//! `eer_fvc_interval.value`, so those must agree to 1e-9. Our interpolated `eer` must be
//! within 0.005 (0.5 percentage points) of it. pyeer's FNMR at an FMR point is taken at
//! the threshold whose FMR is *closest* to the target (it may exceed it), ours at the
//! lowest threshold whose FMR <= target: where pyeer's chosen FMR <= target the two
//! must agree to 1e-9; otherwise (ties or too few impostors: pyeer's closest FMR lies
//! above the target) ours must be the lowest threshold with FMR <= target, checked
//! against the raw scores; the FNMR gap is then one step of the curve.

use crate::{in_ci, synthetic, write};
use huella_eval::*;
use std::process::Command;

const SCRIPT: &str = r#"
import json, sys
import numpy as np
from pyeer.eer_stats import calculate_roc, get_eer_values, get_fmr_op
g = np.loadtxt(sys.argv[1], dtype=np.float64, ndmin=1)
i = np.loadtxt(sys.argv[2], dtype=np.float64, ndmin=1)
thr, fmr, fnmr = calculate_roc(g, i)
_, low, high, eer = get_eer_values(fmr, fnmr)
out = {"eer": float(eer), "low": float(low), "high": float(high), "points": []}
for op in (1e-2, 1e-3, 1e-4):
    idx, v = get_fmr_op(fmr, fnmr, op)
    out["points"].append({"target": op, "fnmr": float(v), "fmr": float(fmr[idx]), "threshold": float(thr[idx])})
print(json.dumps(out))
"#;

fn pyeer_available() -> bool {
    Command::new("python3")
        .args(["-c", "import pyeer.eer_stats"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn agrees_with_pyeer() {
    if !pyeer_available() {
        assert!(
            !in_ci(),
            "CI is set but python3 with pyeer is missing (run .ci/eval-deps.sh)"
        );
        eprintln!(
            "SKIPPED agrees_with_pyeer: python3 -c 'import pyeer' failed (pip install pyeer)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = write(dir.path(), "p.py", SCRIPT);
    let sets = [
        ("continuous", synthetic(3000, 200_000, 1, false)),
        ("discrete-ties", synthetic(2000, 100_000, 2, true)),
        ("small", synthetic(60, 500, 3, false)),
        ("overlapping", {
            let (g, i) = synthetic(1000, 20_000, 4, false);
            (g.iter().map(|v| v - 0.3).collect(), i)
        }),
    ];
    for (name, (g, i)) in sets {
        let lines = |v: &[f32]| v.iter().map(|x| format!("{x}\n")).collect::<String>();
        let gf = write(dir.path(), "g.txt", &lines(&g));
        let imf = write(dir.path(), "i.txt", &lines(&i));
        let out = Command::new("python3")
            .arg(&script)
            .arg(&gf)
            .arg(&imf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let r = VerificationReport::from_scores(
            &g,
            &i,
            VerificationOptions {
                bootstrap: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
        let pe = p["eer"].as_f64().unwrap();
        eprintln!(
            "pyeer {name}: EER pyeer {pe:.6} fvc {:.6} interpolated {:.6} (diff {:.2e})",
            r.eer_fvc_interval.value,
            r.eer.value,
            (r.eer.value - pe).abs()
        );
        assert!(
            (r.eer_fvc_interval.value - pe).abs() < 1e-9,
            "{name}: FVC EER {} vs pyeer {pe}",
            r.eer_fvc_interval.value
        );
        assert!((r.eer_fvc_interval.low - p["low"].as_f64().unwrap()).abs() < 1e-9);
        assert!((r.eer_fvc_interval.high - p["high"].as_f64().unwrap()).abs() < 1e-9);
        assert!(
            (r.eer.value - pe).abs() <= 0.005,
            "{name}: interpolated EER {} vs pyeer {pe}",
            r.eer.value
        );
        for (ours, theirs) in r.fnmr_at_fmr.iter().zip(p["points"].as_array().unwrap()) {
            let (tf, tfmr) = (
                theirs["fnmr"].as_f64().unwrap(),
                theirs["fmr"].as_f64().unwrap(),
            );
            eprintln!(
                "pyeer {name}: {} ours FNMR {:.6} (FMR {:.2e}) pyeer FNMR {tf:.6} (FMR {tfmr:.2e})",
                ours.name, ours.fnmr, ours.fmr
            );
            if tfmr <= ours.target_fmr {
                assert!(
                    (ours.fnmr - tf).abs() < 1e-9,
                    "{name} {}: {} vs {tf}",
                    ours.name,
                    ours.fnmr
                );
            } else {
                // pyeer took the closest FMR from above; ours must be the lowest threshold
                // with FMR <= target: every score in between still has FMR > target.
                let tt = theirs["threshold"].as_f64().unwrap() as f32;
                assert!(
                    ours.fmr <= ours.target_fmr && ours.fnmr >= tf && ours.threshold as f32 > tt,
                    "{name} {}",
                    ours.name
                );
                let fmr_at = |t: f32| i.iter().filter(|&&s| s >= t).count() as f64 / i.len() as f64;
                for &s in g
                    .iter()
                    .chain(&i)
                    .filter(|&&s| s > tt && s < ours.threshold as f32)
                {
                    assert!(
                        fmr_at(s) > ours.target_fmr,
                        "{name} {}: threshold {s} already has FMR <= target",
                        ours.name
                    );
                }
            }
        }
    }
}
