//! `huella dedup`: planted duplicates in a gallery enrolled through the CLI, the four
//! output files, escaping and embedded source images in the HTML report, bad flags.

use crate::*;
use serde_json::{json, Value};

/// A 1x1 PNG, the source image of one template.
const PNG: [u8; 70] = [
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0,
    0, 0, 31, 21, 196, 137, 0, 0, 0, 13, 73, 68, 65, 84, 120, 218, 99, 100, 248, 207, 80, 15, 0, 3,
    134, 1, 128, 90, 52, 125, 107, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

fn record(subject: &str, name: &str, doc: &str, v: &[f32], source: Option<&str>) -> String {
    let mut t = template_json(v);
    if let Some(path) = source {
        t["source"] = json!({"path": path, "sha256": "0".repeat(64)});
    }
    json!({
        "subject": subject, "captured_at": "2026-11-29T08:00:00Z",
        "biographic": {"name": name, "date_of_birth": "1990-01-01", "document_number": doc},
        "templates": [t]
    })
    .to_string()
}

#[test]
fn dedup_writes_csv_json_and_an_escaped_self_contained_report() {
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("g");
    let g = g.to_str().unwrap();
    ok(&["init", "--gallery", g, "--model", MODEL]);
    let png = tmp.path().join("face-3.png");
    std::fs::write(&png, PNG).unwrap();
    let png = png.to_str().unwrap();

    let mut lines: Vec<String> = (0..40)
        .map(|i| {
            let doc = if i == 6 || i == 7 {
                "SAME-DOC".to_string()
            } else {
                format!("D{i}")
            };
            let src = (i == 3).then_some(png);
            record(
                &format!("S{i}"),
                &format!("Person {i}"),
                &doc,
                &embedding(i, 0),
                src,
            )
        })
        .collect();
    // Person 3 under an alias whose name is markup; person 4 met again as S4.
    lines.push(record(
        "ALIAS-3",
        "<script>x</script>",
        "Z3",
        &embedding(3, 1),
        None,
    ));
    lines.push(record("S4", "person 4", "D4", &embedding(4, 2), None));
    let batch = write(&tmp.path().join("batch.jsonl"), &lines.join("\n"));
    ok(&["enroll", "--gallery", g, "--input", &batch]);

    let out = tmp.path().join("out");
    let out_s = out.to_str().unwrap();
    let summary: Value = serde_json::from_str(&ok(&[
        "dedup",
        "--gallery",
        g,
        "--out",
        out_s,
        "--threads",
        "2",
    ]))
    .unwrap();
    assert_eq!(summary["records"], 42);
    assert_eq!(summary["false_identities"], 1, "{summary}");
    assert_eq!(summary["repeat_clusters"], 1, "{summary}");
    assert_eq!(summary["shared_identities"], 1, "{summary}");
    assert_eq!(summary["matched_pairs"], 2, "{summary}");
    assert_eq!(summary["mosip_target_fpir"], 20);
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(on_disk, summary);

    let csv = std::fs::read_to_string(out.join("duplicates.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "record_a,record_b,face_score,finger_score,fused_score,decision"
    );
    assert_eq!(rows.len(), 4, "{csv}");
    let decisions: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r.rsplit(',').next().unwrap())
        .collect();
    assert_eq!(
        decisions.iter().filter(|d| **d == "false_identity").count(),
        1
    );
    assert_eq!(decisions.iter().filter(|d| **d == "repeat").count(), 1);
    assert_eq!(
        decisions
            .iter()
            .filter(|d| **d == "shared_identity")
            .count(),
        1
    );
    // Face-only gallery: the finger column is empty.
    assert!(rows[1..].iter().all(|r| r.split(',').nth(3) == Some("")));

    let clusters: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("clusters.json")).unwrap()).unwrap();
    let first = &clusters["clusters"][0];
    assert_eq!(first["kind"], "false_identity");
    assert_eq!(first["subjects"], json!(["ALIAS-3", "S3"]));
    assert_eq!(clusters["shared_identities"][0]["key"], "document_number");

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
    assert!(!html.contains("<script>"));
    assert!(html.contains("data:image/png;base64,iVBORw0KGgo"));
    assert!(
        !html.contains("src=\"http"),
        "the report must be self-contained"
    );

    // Bad flags fail cleanly.
    fails(&[
        "dedup",
        "--gallery",
        g,
        "--out",
        out_s,
        "--target-fpir",
        "2",
    ]);
    fails(&["dedup", "--gallery", g, "--out", out_s, "--threads", "0"]);
    let missing = tmp.path().join("nope");
    fails(&[
        "dedup",
        "--gallery",
        missing.to_str().unwrap(),
        "--out",
        out_s,
    ]);
}
