use crate::write;
use huella_eval::*;

const FILE: &str = "probe_id,probe_subject,candidate_subject,rank,score\n\
p1,A,A,1,0.9\np1,A,B,2,0.5\n\
p2,B,C,1,0.8\np2,B,B,2,0.7\n\
p3,C,A,1,0.6\np3,C,B,2,0.4\n\
n1,,A,1,0.85\nn1,,C,2,0.3\n\
n2,,B,1,0.5\n\
n3,,,,\n";

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn open_set_hand_computed() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "c.csv", FILE);
    let opts = IdentificationOptions {
        fpir_points: vec![0.001, 0.4],
        ..Default::default()
    };
    let r = IdentificationReport::from_csv(&f, opts).unwrap();
    assert_eq!(r.mode, "open-set");
    assert_eq!(
        (
            r.counts.mated,
            r.counts.non_mated,
            r.counts.mate_not_listed,
            r.counts.max_rank
        ),
        (3, 3, 1, 2)
    );
    close(r.cmc[0].hit_rate, 1.0 / 3.0);
    close(r.cmc[1].hit_rate, 2.0 / 3.0);
    close(r.rank_k[0].fnir, 2.0 / 3.0);
    // FPIR <= 0.001 needs T above 0.85: only p1's mate (0.9) is found.
    close(r.fnir_at_fpir[0].fnir, 2.0 / 3.0);
    assert_eq!(r.fnir_at_fpir[0].threshold as f32, 0.9);
    assert!(!r.fnir_at_fpir[0].supported);
    // FPIR <= 0.4 first at T = 0.7 (FPIR 1/3): p1 and p2 found, p3 missed.
    close(r.fnir_at_fpir[1].fnir, 1.0 / 3.0);
    close(r.fnir_at_fpir[1].fpir, 1.0 / 3.0);
    assert_eq!(r.fnir_at_fpir[1].threshold as f32, 0.7);
    // With R = 1, p2's mate (rank 2) no longer counts.
    let opts = IdentificationOptions {
        fpir_points: vec![0.4],
        rank_limit: Some(1),
        ..Default::default()
    };
    let r = IdentificationReport::from_csv(&f, opts).unwrap();
    close(r.fnir_at_fpir[0].fnir, 2.0 / 3.0);
    assert_eq!(r.fnir_at_fpir[0].threshold as f32, 0.85);
    let plots = r.write_plots(&dir.path().join("p")).unwrap();
    assert!(
        plots.iter().any(|p| p.ends_with("cmc.png"))
            && plots.iter().any(|p| p.ends_with("det.svg"))
    );
    r.write_html(&dir.path().join("i.html"), &RunInfo::default())
        .unwrap();
}

#[test]
fn closed_set_without_non_mated_probes() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "c.csv", "probe_id,probe_subject,candidate_subject,rank,score\np1,A,A,1,0.9\np2,B,A,1,0.8\np2,B,B,2,0.7\n");
    let r = IdentificationReport::from_csv(&f, IdentificationOptions::default()).unwrap();
    assert_eq!(r.mode, "closed-set");
    assert!(r.fnir_at_fpir.is_empty());
    close(r.rank_k[0].hit_rate, 0.5);
    close(r.rank_k[1].hit_rate, 1.0);
}

#[test]
fn candidate_files_with_errors() {
    let dir = tempfile::tempdir().unwrap();
    let case = |name: &str, text: &str, want: &[&str]| {
        let f = write(dir.path(), name, text);
        let e = IdentificationReport::from_csv(&f, IdentificationOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains(name), "{e}");
        for w in want {
            assert!(e.contains(w), "{name}: '{w}' not in '{e}'");
        }
    };
    let h = "probe_id,probe_subject,candidate_subject,rank,score\n";
    case("empty.csv", "", &["line 1", "empty file"]);
    case(
        "cols.csv",
        "probe_id,rank,score\np,1,0.5\n",
        &["line 1", "column 'probe_subject'", "missing column"],
    );
    case(
        "rank.csv",
        &format!("{h}p,A,A,first,0.5\n"),
        &["line 2", "column 'rank'"],
    );
    case(
        "nan.csv",
        &format!("{h}p,A,A,1,0.5\np,A,B,2,NaN\n"),
        &["line 3", "column 'score'", "NaN"],
    );
    case(
        "nomated.csv",
        &format!("{h}p,,A,1,0.5\n"),
        &["no mated searches", "column 'probe_subject'"],
    );
    case(
        "subject.csv",
        &format!("{h}p,A,A,1,0.5\np,B,B,2,0.4\n"),
        &["line 3", "column 'probe_subject'"],
    );
}
