use crate::write;
use huella_eval::*;

/// Each bad file fails with an error naming the file, the line and (where one is to blame)
/// the column.
#[test]
fn bad_score_files_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let case = |name: &str, text: &str, want: &[&str]| {
        let f = write(dir.path(), name, text);
        let e = VerificationReport::from_csv(&f, VerificationOptions::default()).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, EvalError::BadInput { .. }), "{msg}");
        assert!(msg.contains(&f.display().to_string()), "{msg}");
        for w in want {
            assert!(msg.contains(w), "{name}: '{w}' not in '{msg}'");
        }
    };
    case("empty.csv", "", &["line 1", "empty file"]);
    case("header_only.csv", "score,mated\n", &["no comparisons"]);
    case(
        "no_score_column.csv",
        "value,mated\n0.5,1\n",
        &["line 1", "column 'score'", "missing column"],
    );
    case(
        "no_mated_column.csv",
        "score\n0.5\n",
        &["line 1", "column 'mated'"],
    );
    case(
        "text.csv",
        "score,mated\n0.5,1\nhigh,0\n",
        &["line 3", "column 'score'", "'high' is not a number"],
    );
    case(
        "nan.csv",
        "score,mated\n0.5,1\nNaN,0\n",
        &["line 3", "column 'score'", "NaN"],
    );
    case(
        "inf.csv",
        "score,mated\n0.5,1\ninf,0\n",
        &["line 3", "column 'score'", "not a finite"],
    );
    case(
        "empty_score.csv",
        "score,mated\n0.5,1\n,0\n",
        &["line 3", "column 'score'", "empty score"],
    );
    case(
        "mated.csv",
        "score,mated\n0.5,maybe\n",
        &["line 2", "column 'mated'"],
    );
    case(
        "fields.csv",
        "score,mated\n0.5,1\n0.2,0,extra\n",
        &["line 3", "expected 2 fields"],
    );
    case(
        "no_genuine.csv",
        "score,mated\n0.5,0\n0.2,0\n",
        &["line 3", "column 'mated'", "no genuine"],
    );
    case(
        "no_impostor.csv",
        "score,mated\n0.5,1\n0.2,1\n",
        &["line 3", "column 'mated'", "no impostor"],
    );
    case(
        "single.csv",
        "score,mated\n0.5,1\n",
        &["line 2", "no impostor"],
    );
    case(
        "group_no_members.csv",
        "score,mated,region\n0.9,1,north\n0.1,0,north\n0.2,0,south\n0.8,1,north\n",
        &["line 4", "column 'region'", "group 'south' has no genuine"],
    );
    case(
        "label_conflict.csv",
        "score,mated,probe_subject,sex\n0.9,1,a,F\n0.1,0,a,M\n",
        &["line 3", "column 'sex'", "'a'"],
    );
    case(
        "failure_kind.csv",
        "score,mated,failure\n,1,oops\n",
        &["line 2", "column 'failure'"],
    );
    case(
        "mated_pair.csv",
        "score,mated,probe_subject,reference_subject\n0.9,1,a,b\n",
        &["line 2", "column 'reference_subject'"],
    );
}

#[test]
fn bad_options_are_typed_errors() {
    let o = VerificationOptions {
        fmr_points: vec![1.5],
        ..Default::default()
    };
    assert!(matches!(
        VerificationReport::from_scores(&[0.5], &[0.1], o),
        Err(EvalError::InvalidOption(_))
    ));
    let missing = std::path::Path::new("/nonexistent/scores.csv");
    assert!(matches!(
        VerificationReport::from_csv(missing, VerificationOptions::default()),
        Err(EvalError::Io { .. })
    ));
}
