//! `huella eval scores` and `huella eval candidates`: outputs and bad input files.

use crate::*;
use serde_json::Value;

#[test]
fn eval_scores_json_plots_report() {
    let tmp = tempfile::tempdir().unwrap();
    let mut text = String::from("score,mated,probe_subject,reference_subject,sex\n");
    for s in 0..30 {
        let sex = if s % 2 == 0 { "F" } else { "M" };
        for k in 0..4 {
            text += &format!(
                "{},1,S{s},S{s},{sex}\n",
                0.6 + 0.01 * ((s * 7 + k * 3) % 30) as f32
            );
        }
        for k in 0..40 {
            text += &format!(
                "{},0,S{s},S{},{sex}\n",
                0.1 + 0.01 * ((s * 11 + k * 13) % 55) as f32,
                (s + 1 + k % 29) % 30
            );
        }
    }
    let input = write(&tmp.path().join("scores.csv"), &text);
    let plots = tmp.path().join("plots");
    let report = tmp.path().join("report.html");
    let out = ok(&[
        "eval",
        "scores",
        "--input",
        &input,
        "--json",
        "--bootstrap",
        "100",
        "--plots",
        plots.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["counts"]["genuine"], 120);
    assert_eq!(v["counts"]["impostor"], 1200);
    assert_eq!(v["counts"]["probe_subjects"], 30);
    assert!(v["eer"]["ci"]["low"].as_f64().unwrap() <= v["eer"]["value"].as_f64().unwrap());
    assert_eq!(v["fnmr_at_fmr"][1]["name"], "FMR1000");
    assert_eq!(v["demographics"][0]["column"], "sex");
    for f in [
        "det.svg",
        "det.png",
        "roc.png",
        "histogram.svg",
        "curves.csv",
    ] {
        assert!(plots.join(f).exists(), "{f}");
    }
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("<svg")
            && html.contains("eval scores --input")
            && html.contains("scores.csv")
    );
    let text = ok(&["eval", "scores", "--input", &input, "--bootstrap", "0"]);
    assert!(
        text.contains("EER: ") && text.contains("FMR1000: FNMR"),
        "{text}"
    );
}

#[test]
fn eval_candidates_open_set() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(
        &tmp.path().join("cands.csv"),
        "probe_id,probe_subject,candidate_subject,rank,score\np1,A,A,1,0.9\np2,B,C,1,0.8\np2,B,B,2,0.7\nn1,,A,1,0.6\n",
    );
    let v: Value =
        serde_json::from_str(&ok(&["eval", "candidates", "--input", &input, "--json"])).unwrap();
    assert_eq!(v["mode"], "open-set");
    assert_eq!(v["rank_k"][0]["hit_rate"], 0.5);
    assert_eq!(v["fnir_at_fpir"].as_array().unwrap().len(), 4);
}

#[test]
fn eval_bad_inputs_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let f = |name: &str, text: &str| write(&tmp.path().join(name), text);
    let err = fails(&["eval", "scores", "--input", &f("empty.csv", "")]);
    assert!(err.contains("empty.csv") && err.contains("line 1"), "{err}");
    let err = fails(&[
        "eval",
        "scores",
        "--input",
        &f("nan.csv", "score,mated\n0.5,1\nnan,0\n"),
    ]);
    assert!(
        err.contains("line 3") && err.contains("column 'score'"),
        "{err}"
    );
    let err = fails(&["eval", "scores", "--input", &f("cols.csv", "score\n0.5\n")]);
    assert!(err.contains("column 'mated'"), "{err}");
    let err = fails(&[
        "eval",
        "scores",
        "--input",
        &f("imp.csv", "score,mated\n0.5,1\n"),
    ]);
    assert!(err.contains("no impostor"), "{err}");
    let err = fails(&[
        "eval",
        "candidates",
        "--input",
        &f("c.csv", "probe_id,score\n"),
    ]);
    assert!(
        err.contains("c.csv") && err.contains("missing column"),
        "{err}"
    );
    fails(&["eval", "scores", "--input", "/nonexistent/scores.csv"]);
}
