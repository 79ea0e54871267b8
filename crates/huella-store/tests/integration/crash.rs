//! Kill -9 a writer mid-stream: every acknowledged encounter must survive.
//!
//! The parent test re-executes this test binary with `HUELLA_STORE_CRASH_WRITER=<dir>`
//! and a filter that runs only [`crash_writer_child`]. The child enrols encounters in a
//! loop and prints `ACK <seed> <encounter id> <template ids...>` after each
//! `add_encounter` returns `Ok`; the parent kills it after a number of acks.

use crate::common::{assert_template_is, encounter};
use huella_core::{EncounterId, TemplateId};
use huella_store::Gallery;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

const CHILD_ENV: &str = "HUELLA_STORE_CRASH_WRITER";

fn templates_for(seed: u64) -> usize {
    1 + (seed % 3) as usize
}

/// The writer process. A no-op unless started by [`kill_9_loses_no_acknowledged_encounter`].
#[test]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let g = Gallery::open(dir).expect("child opens the gallery");
    let first_seed: u64 = std::env::var("HUELLA_STORE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for seed in first_seed..first_seed + 100_000 {
        let e = g
            .add_encounter(encounter(
                &format!("S{}", seed % 5),
                seed,
                templates_for(seed),
            ))
            .expect("child enrols");
        let ids: Vec<String> = e.templates.iter().map(|t| t.0.to_string()).collect();
        writeln!(out, "ACK {seed} {} {}", e.id.0, ids.join(" ")).expect("stdout");
        out.flush().expect("flush");
    }
}

struct Ack {
    seed: u64,
    encounter: EncounterId,
    templates: Vec<TemplateId>,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut words = line.strip_prefix("ACK ")?.split(' ');
    let seed = words.next()?.parse().ok()?;
    let encounter = EncounterId(words.next()?.parse().ok()?);
    let templates = words
        .map(|w| w.parse().map(TemplateId))
        .collect::<Result<_, _>>()
        .ok()?;
    Some(Ack {
        seed,
        encounter,
        templates,
    })
}

/// Runs the child until `kill_after` acks arrive (or it exits), then SIGKILLs it.
fn run_and_kill(dir: &Path, first_seed: u64, kill_after: usize) -> Vec<Ack> {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([
            "crash::crash_writer_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .env("HUELLA_STORE_CRASH_SEED", first_seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut acks = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read child stdout");
        if let Some(ack) = parse_ack(&line) {
            acks.push(ack);
            if acks.len() >= kill_after {
                break;
            }
        }
    }
    child.kill().expect("SIGKILL the writer");
    child.wait().expect("reap the writer");
    assert_eq!(acks.len(), kill_after, "the writer stopped early");
    acks
}

#[test]
fn kill_9_loses_no_acknowledged_encounter() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("g");
    Gallery::create(&dir, BTreeMap::new()).expect("create");
    let mut acked: Vec<Ack> = Vec::new();
    let mut seed = 0;
    let mut extra_writes = 0;
    for kill_after in [1, 7, 23, 4] {
        let acks = run_and_kill(&dir, seed, kill_after);
        acked.extend(acks);

        let g = Gallery::open(&dir).expect("reopen after SIGKILL");
        let stats = g.verify().expect("consistent after SIGKILL");
        for a in &acked {
            let e = g
                .encounter(a.encounter)
                .expect("read")
                .expect("acknowledged encounter survives");
            assert_eq!(e.templates, a.templates, "encounter {}", a.encounter);
            assert_eq!(e.biographic["seed"], a.seed.to_string());
        }
        // Everything present is intact: the acknowledged encounters and whatever the
        // child committed between its last ack being read and the SIGKILL landing.
        let mut present = 0;
        let mut max_seed = 0;
        for s in g.subjects().expect("subjects") {
            for e in g.subject_encounters(&s).expect("history") {
                present += 1;
                let seed: u64 = e.biographic["seed"].parse().expect("seed field");
                max_seed = max_seed.max(seed);
                let expected = encounter(&format!("S{}", seed % 5), seed, templates_for(seed));
                assert_eq!(e.subject, expected.subject);
                assert_eq!(e.captured_at_unix_ms, expected.captured_at_unix_ms);
                assert_eq!(
                    (&e.location, &e.operator),
                    (&expected.location, &expected.operator)
                );
                assert_eq!(e.biographic, expected.biographic);
                assert_eq!(e.templates.len(), templates_for(seed));
                for (i, t) in e.templates.iter().enumerate() {
                    let stored = g
                        .template(*t)
                        .expect("read")
                        .expect("template of a present encounter");
                    assert_eq!((stored.encounter, &stored.subject), (e.id, &e.subject));
                    assert_template_is(&stored, seed, i);
                }
            }
        }
        assert_eq!(present, stats.encounters);
        assert!(stats.encounters >= acked.len() as u64);
        // The next child continues after the last seed that reached the disk.
        seed = max_seed + 1;
        assert_eq!(
            stats.generation,
            stats.encounters + extra_writes,
            "one write transaction per encounter"
        );
        let max_encounter = acked.iter().map(|a| a.encounter).max().expect("acks");
        let probe = g
            .add_encounter(encounter("S-probe", 999_999, 2))
            .expect("enrol after crash");
        assert!(probe.id > max_encounter);
        assert!(probe.templates[0] > *acked.iter().flat_map(|a| &a.templates).max().expect("acks"));
        assert_eq!(g.generation().expect("generation"), stats.generation + 1);
        g.delete_subject(&crate::common::subject("S-probe"))
            .expect("remove probe");
        extra_writes += 2;
        g.verify().expect("consistent");
    }
}
