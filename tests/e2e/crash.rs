//! `kill -9` in the middle of a stream of enrolments: every enrolment the CLI
//! acknowledged (printed) must survive, be searchable, and the gallery must stay usable.

use crate::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn acknowledged_enrolments_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let g = tmp.path().join("g");
    let g = g.to_str().unwrap();
    ok(&["init", "--gallery", g, "--model", MODEL]);
    let n = 5000;
    let lines: Vec<String> = (0..n)
        .map(|i| encounter_json(&format!("S{i}"), &embedding(i, 0)))
        .collect();
    let batch = write(&tmp.path().join("batch.jsonl"), &lines.join("\n"));

    let encounters = || -> usize {
        let stats: Value = serde_json::from_str(&ok(&["stats", "-g", g])).unwrap();
        stats["gallery"]["encounters"].as_u64().unwrap() as usize
    };
    for (round, kill_after) in [(0, 37usize), (1, 151)] {
        let before = encounters();
        let mut child = std::process::Command::new(BIN)
            .args(["enroll", "-g", g, "--input", &batch])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut acked = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
            acked.push(v["encounter"]["subject"].as_str().unwrap().to_string());
            if acked.len() == kill_after {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
        child.wait().unwrap();
        assert_eq!(
            acked.len(),
            kill_after,
            "round {round}: the writer stopped early"
        );

        // Every acknowledged encounter is present and found by its own embedding. The
        // writer runs ahead of this reader by what the pipe holds, so a few encounters
        // past the last one read may have committed too (never fewer).
        let stored = encounters() - before;
        assert!(
            (kill_after..n).contains(&stored),
            "round {round}: {stored} stored"
        );
        for subject in acked.iter().step_by(7) {
            let i: usize = subject[1..].parse().unwrap();
            let probe = write(
                &tmp.path().join("p.json"),
                &serde_json::json!({"templates": [template_json(&embedding(i, 0))]}).to_string(),
            );
            let out: Value =
                serde_json::from_str(&ok(&["identify", "-g", g, "--input", &probe])).unwrap();
            assert_eq!(
                out["candidates"][0]["subject"],
                subject.as_str(),
                "round {round}"
            );
            assert!(out["candidates"][0]["score"].as_f64().unwrap() > 0.999);
        }
    }
}
