use crate::write;
use huella_eval::*;

fn report(g: &[f32], i: &[f32]) -> VerificationReport {
    VerificationReport::from_scores(g, i, VerificationOptions::default()).unwrap()
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn all_genuine_above_all_impostors() {
    let r = report(&[0.9, 0.8], &[0.1, 0.2, 0.3]);
    close(r.eer.value, 0.0);
    assert_eq!(r.eer.threshold as f32, 0.8);
    close(r.eer_fvc_interval.low, 0.0);
    close(r.eer_fvc_interval.high, 0.0);
    for p in &r.fnmr_at_fmr {
        close(p.fnmr, 0.0);
        close(p.fmr, 0.0);
        assert_eq!(p.threshold as f32, 0.8);
    }
    close(r.zero_fmr.rate, 0.0);
    close(r.zero_fnmr.as_ref().unwrap().rate, 0.0);
    // 3 impostor comparisons cannot support FMR100 and below.
    assert!(r
        .fnmr_at_fmr
        .iter()
        .all(|p| !p.supported && p.warning.is_some()));
}

#[test]
fn all_impostors_above_all_genuine() {
    let r = report(&[0.1, 0.2], &[0.8, 0.9]);
    close(r.eer.value, 1.0);
    close(r.eer_fvc_interval.value, 1.0);
}

#[test]
fn ties_hand_computed() {
    // Thresholds 0.1 (FMR 1, FNMR 0), 0.3 (3/4, 0), 0.5 (2/4, 0), 0.7 (0, 2/3), top (0, 1).
    let r = report(&[0.5, 0.5, 0.7], &[0.5, 0.3, 0.5, 0.1]);
    // Interpolated between (0.5, 0) and (0, 2/3): 2/7.
    close(r.eer.value, 2.0 / 7.0);
    assert_eq!(r.eer.threshold as f32, 0.7);
    // FVC: t1 = 0.5 (sum 0.5) beats t2 = 0.7 (sum 2/3): [FNMR, FMR](t1) = [0, 0.5].
    close(r.eer_fvc_interval.low, 0.0);
    close(r.eer_fvc_interval.high, 0.5);
    close(r.eer_fvc_interval.value, 0.25);
    assert_eq!(r.eer_fvc_interval.threshold as f32, 0.5);
    let p = &r.fnmr_at_fmr[0];
    assert_eq!(p.name, "FMR100");
    close(p.fnmr, 2.0 / 3.0);
    assert_eq!(p.threshold as f32, 0.7);
    close(r.zero_fmr.rate, 2.0 / 3.0);
    let z = r.zero_fnmr.as_ref().unwrap();
    close(z.rate, 0.5);
    assert_eq!(z.threshold as f32, 0.5);
    // The curve holds every distinct threshold plus the one above all scores.
    let t: Vec<f32> = r.curve.iter().map(|c| c.threshold as f32).collect();
    assert_eq!(&t[..4], &[0.1, 0.3, 0.5, 0.7]);
    assert_eq!(r.curve.len(), 5);
    close(r.curve[4].fnmr, 1.0);
}

#[test]
fn a_single_score_of_each_kind() {
    let r = report(&[0.6], &[0.4]);
    close(r.eer.value, 0.0);
    assert_eq!(r.eer.threshold as f32, 0.6);
    let e =
        VerificationReport::from_scores(&[0.6], &[], VerificationOptions::default()).unwrap_err();
    assert!(e.to_string().contains("no impostor comparisons"), "{e}");
    let e = VerificationReport::from_scores(&[], &[], VerificationOptions::default()).unwrap_err();
    assert!(e.to_string().contains("no comparisons"), "{e}");
}

#[test]
fn failures_count_as_non_matches() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "s.csv",
        "score,mated,failure\n0.9,1,\n,1,fta\n0.1,0,\n,0,fte\n",
    );
    let r = VerificationReport::from_csv(&f, VerificationOptions::default()).unwrap();
    assert_eq!(
        (
            r.counts.genuine,
            r.counts.impostor,
            r.counts.genuine_failures
        ),
        (2, 2, 1)
    );
    close(r.failures.fta_rate, 0.25);
    close(r.failures.fte_rate, 0.25);
    // FNMR >= 1/2 everywhere, FMR <= 1/2: they meet at 0.5.
    close(r.eer.value, 0.5);
    close(r.zero_fmr.rate, 0.5);
    assert!(r.zero_fnmr.is_none());
}

#[test]
fn too_few_impostors_warn() {
    let (g, i) = crate::synthetic(200, 45, 3, false);
    let r = report(&g, &i);
    let p = r.fnmr_at_fmr.iter().find(|p| p.name == "FMR1000").unwrap();
    assert!(!p.supported);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("FMR1000") && w.contains("45 impostor")),
        "{:?}",
        r.warnings
    );
    let (g, i) = crate::synthetic(200, 5000, 3, false);
    let r = report(&g, &i);
    let p = r.fnmr_at_fmr.iter().find(|p| p.name == "FMR100").unwrap();
    assert!(p.supported && p.warning.is_none());
    let p = r.fnmr_at_fmr.iter().find(|p| p.name == "FMR1000").unwrap();
    assert!(p.supported && p.warning.as_deref().unwrap().contains("rule of 30"));
}

#[test]
fn subject_bootstrap_brackets_the_estimate_and_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let (g, i) = crate::synthetic(400, 8000, 11, false);
    let mut text = String::from("score,mated,probe_subject,reference_subject\n");
    for (k, s) in g.iter().enumerate() {
        text += &format!("{s},1,S{},S{}\n", k % 40, k % 40);
    }
    for (k, s) in i.iter().enumerate() {
        text += &format!("{s},0,S{},R{}\n", k % 40, k % 7);
    }
    let f = write(dir.path(), "s.csv", &text);
    let opts = VerificationOptions {
        bootstrap: Some(200),
        ..Default::default()
    };
    let r = VerificationReport::from_csv(&f, opts.clone()).unwrap();
    let b = r.bootstrap.as_ref().unwrap();
    assert_eq!(
        (b.replicates, b.units, b.unit.as_str()),
        (200, 40, "probe_subject")
    );
    let ci = r.eer.ci.unwrap();
    assert!(
        ci.low <= r.eer.value && r.eer.value <= ci.high && ci.low < ci.high,
        "{ci:?} {}",
        r.eer.value
    );
    let ci100 = r.fnmr_at_fmr[0].ci.unwrap();
    assert!(
        ci100.low <= r.fnmr_at_fmr[0].fnmr + 1e-9 && r.fnmr_at_fmr[0].fnmr <= ci100.high + 1e-9
    );
    let again = VerificationReport::from_csv(&f, opts).unwrap();
    assert_eq!(again.eer.ci.unwrap().low, ci.low);
    // Without subject ids there is no interval, and the report says why.
    let plain = VerificationReport::from_scores(&g, &i, VerificationOptions::default()).unwrap();
    assert!(plain.bootstrap.is_none() && plain.eer.ci.is_none());
    assert!(plain
        .notes
        .iter()
        .any(|n| n.contains("subject bootstrap was skipped")));
    close(plain.eer.value, r.eer.value);
}

#[test]
fn demographic_breakdown_at_a_global_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let text = "score,mated,probe_subject,sex\n\
        0.9,1,a,M\n0.8,1,b,M\n0.4,1,c,M\n0.1,0,a,M\n0.2,0,b,M\n0.6,0,c,M\n0.3,0,a,M\n\
        0.7,1,d,F\n0.6,1,e,F\n0.55,0,d,F\n0.65,0,e,F\n0.2,0,d,F\n0.1,0,e,F\n";
    let f = write(dir.path(), "d.csv", text);
    let opts = VerificationOptions {
        demographic_threshold: Some(0.5),
        ..Default::default()
    };
    let r = VerificationReport::from_csv(&f, opts).unwrap();
    let d = &r.demographics[0];
    assert_eq!(d.column, "sex");
    let (fg, mg) = (&d.groups[0], &d.groups[1]);
    assert_eq!((fg.group.as_str(), mg.group.as_str()), ("F", "M"));
    close(mg.fmr, 0.25);
    close(mg.fnmr, 1.0 / 3.0);
    close(fg.fmr, 0.5);
    close(fg.fnmr, 0.0);
    assert_eq!((fg.subjects, mg.subjects), (Some(2), Some(3)));
    close(d.fmr_worst_to_best.unwrap(), 2.0);
    assert!(d.fnmr_worst_to_best.is_none());
}

#[test]
fn outputs_json_csv_plots_html() {
    let dir = tempfile::tempdir().unwrap();
    let (g, i) = crate::synthetic(1000, 20000, 5, false);
    let r = report(&g, &i);
    let mut json = Vec::new();
    r.write_json(&mut json).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    for k in [
        "schema_version",
        "eer",
        "eer_fvc_interval",
        "fnmr_at_fmr",
        "zero_fmr",
        "zero_fnmr",
        "counts",
        "curve",
        "conventions",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["fnmr_at_fmr"][1]["name"], "FMR1000");
    let files = r.write_plots(&dir.path().join("plots")).unwrap();
    for name in [
        "det.svg",
        "det.png",
        "roc.svg",
        "roc.png",
        "histogram.svg",
        "histogram.png",
        "curves.csv",
    ] {
        let p = dir.path().join("plots").join(name);
        assert!(
            files.contains(&p) && std::fs::metadata(&p).unwrap().len() > 500,
            "{name}"
        );
    }
    let csv = std::fs::read_to_string(dir.path().join("plots/curves.csv")).unwrap();
    assert!(csv.starts_with("threshold,fmr,fnmr\n") && csv.lines().count() > 100);
    let html = dir.path().join("r.html");
    let run = RunInfo {
        command: "huella eval scores --input <x>".into(),
        inputs: vec!["x.csv".into()],
        software: "test".into(),
        date: "2026-01-01".into(),
    };
    r.write_html(&html, &run).unwrap();
    let h = std::fs::read_to_string(&html).unwrap();
    assert!(
        h.contains("<svg")
            && h.contains("huella eval scores --input &lt;x&gt;")
            && h.contains(VERSION)
    );
    assert!(
        !h.contains("http://") || h.matches("http://").all(|_| h.contains("xmlns")),
        "no external URLs"
    );
    assert!(!h.contains("https://"));
}
