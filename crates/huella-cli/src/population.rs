//! `huella eval population`: a virtual multimodal population from real data.
//!
//! No public dataset holds faces and fingerprints of the same people, so multimodal
//! systems are evaluated on **virtual persons**: each LFW identity with at least
//! [`CAPTURES`] photos is paired with one FVC finger (eight impressions), an accepted
//! practice when modalities are independent. The pairing is a seeded shuffle of both
//! lists, so a run is reproducible and another seed gives another population. There are
//! as many persons as FVC fingers (40 from the four FVC2002 B sets).
//!
//! Two uses:
//! - **Measure** (default): every person is enrolled once (photo 1 and impression 1,
//!   the finger at position 2, right index); each later capture `k = 2..8` (photo `k`,
//!   impression `k`) is searched three ways: face alone, finger alone, and fused (face
//!   and finger, [`IdentifyOptions::fused_scores`]). Each capture gives a mated search
//!   against the whole gallery and a non-mated search against the gallery without its
//!   own person (the person's records masked through `restrict_to`), so mated and
//!   non-mated searches are equally many. A capture whose face or finger cannot be
//!   extracted (failure to acquire) still searches, with an empty list for that
//!   modality alone and the other modality for the fused search, as ISO/IEC 19795-1
//!   counts it. Reported per way: FNIR at FPIR 1% and 10%, rank-1 and rank-5 hit rates
//!   (`huella-eval`), and the failures.
//! - **Write a manifest** (`--manifest-dir DIR`): the population as an ingest manifest
//!   (`manifest.csv`, absolute image paths) with planted cases, and `truth.csv`
//!   (`record_id,person,kind`) saying which record is which person: `--plant N`
//!   persons come back under another name, date of birth and document (`false_identity`),
//!   five come back under their own identity (`repeat`), and the last two persons claim
//!   the same document number (`shared_document`). A de-duplication of the ingested
//!   manifest is then checked against the truth.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use huella_engine::{
    face_model, Engine, FingerPosition, IdentifyOptions, NewEncounter, NewTemplate, SubjectId,
    Template,
};
use huella_eval::{CandidateRow, IdentificationOptions, IdentificationReport};
use rand::{seq::SliceRandom, SeedableRng};
use rayon::prelude::*;

use crate::face::FaceArgs;

/// Captures per virtual person (FVC impressions per finger).
pub const CAPTURES: usize = 8;
/// The finger position the FVC finger is filed under.
const POSITION: FingerPosition = FingerPosition::RightIndex;
/// Persons planted as repeat encounters in a written manifest.
const REPEATS: usize = 5;
/// Candidates kept per search.
const LIST: usize = 20;

/// Flags of `huella eval population`.
#[derive(Debug, Args)]
pub struct PopulationArgs {
    /// LFW root (`<Name>/<Name>_NNNN.jpg`).
    #[arg(long)]
    lfw: PathBuf,
    /// FVC root: one `DBn_B` folder or a folder of them (`NNN_K` images).
    #[arg(long)]
    fvc: PathBuf,
    /// Seed of the pairing.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads for extraction (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Write the JSON report to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Instead of measuring, write `manifest.csv` and `truth.csv` into this directory.
    #[arg(long)]
    manifest_dir: Option<PathBuf>,
    /// With --manifest-dir: persons planted under a second identity.
    #[arg(long, default_value_t = 10)]
    plant: usize,
}

/// One virtual person: an LFW identity and an FVC finger.
#[derive(Debug, Clone)]
struct Person {
    name: String,
    faces: Vec<PathBuf>,
    finger: Vec<PathBuf>,
}

/// Pair LFW identities with FVC fingers (see the module docs).
fn population(lfw: &Path, fvc: &Path, seed: u64) -> Result<Vec<Person>> {
    let mut fingers: Vec<Vec<PathBuf>> = Vec::new();
    for db in huella_eval::read_fvc_databases(fvc)? {
        let mut by_finger: BTreeMap<u32, Vec<(u32, PathBuf)>> = BTreeMap::new();
        for s in db.samples {
            by_finger
                .entry(s.finger)
                .or_default()
                .push((s.impression, s.image));
        }
        for (_, mut imp) in by_finger {
            if imp.len() >= CAPTURES {
                imp.sort();
                fingers.push(imp.into_iter().take(CAPTURES).map(|i| i.1).collect());
            }
        }
    }
    let mut people: Vec<(String, Vec<PathBuf>)> = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(lfw)
        .with_context(|| format!("cannot read {}", lfw.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "protocol"))
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut photos: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("jpg")))
            .collect();
        if photos.len() >= CAPTURES {
            photos.sort();
            photos.truncate(CAPTURES);
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().replace('_', " "))
                .unwrap_or_default();
            people.push((name, photos));
        }
    }
    if fingers.len() < 2 || people.len() < fingers.len() {
        bail!(
            "a population needs at least 2 fingers with {CAPTURES} impressions ({} found under {}) \
             and as many identities with {CAPTURES} photos ({} found under {})",
            fingers.len(),
            fvc.display(),
            people.len(),
            lfw.display()
        );
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    people.shuffle(&mut rng);
    fingers.shuffle(&mut rng);
    Ok(fingers
        .into_iter()
        .zip(people)
        .map(|(finger, (name, faces))| Person {
            name,
            faces,
            finger,
        })
        .collect())
}

/// Run the command.
pub fn run(args: &PopulationArgs, face: &FaceArgs) -> Result<()> {
    let people = population(&args.lfw, &args.fvc, args.seed)?;
    if let Some(dir) = &args.manifest_dir {
        return write_manifest(dir, &people, args.plant);
    }
    let pool = crate::input::thread_pool(args.threads)?;
    let report = pool.install(|| measure(&people, face))?;
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.json {
        std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut so = std::io::stdout().lock();
    writeln!(
        so,
        "{} persons, {} mated and {} non-mated searches per way",
        people.len(),
        report["searches"]["mated"],
        report["searches"]["non_mated"]
    )?;
    for way in WAYS {
        let r = &report["ways"][way];
        writeln!(
            so,
            "{way:>6}: FNIR at FPIR 1% {:.2}%, rank-1 {:.2}%",
            r["fnir_at_fpir_1pct"].as_f64().unwrap_or(f64::NAN) * 100.0,
            r["rank1"].as_f64().unwrap_or(f64::NAN) * 100.0
        )?;
    }
    Ok(())
}

const WAYS: [&str; 3] = ["face", "finger", "fused"];

/// Extract every capture, enrol the first of each person, search the others.
fn measure(people: &[Person], face_args: &FaceArgs) -> Result<serde_json::Value> {
    let start = Instant::now();
    let pipeline = face_args.pipeline()?;
    // Every capture's face and finger template; None where extraction failed.
    let captures: Vec<(Option<Template>, Option<Template>)> = people
        .par_iter()
        .flat_map_iter(|p| p.faces.iter().zip(&p.finger))
        .map(|(photo, print)| {
            let face = crate::face::face_template(&pipeline, photo, face_args.policy())
                .ok()
                .map(|(t, _)| t.template);
            let finger = crate::finger::finger_file_template(POSITION, print, None)
                .ok()
                .map(|(t, _)| t.template);
            (face, finger)
        })
        .collect();
    let extract_s = start.elapsed().as_secs_f64();
    let failures = |f: fn(&(Option<Template>, Option<Template>)) -> bool| {
        captures.iter().filter(|c| f(c)).count()
    };
    let (face_fta, finger_fta) = (failures(|c| c.0.is_none()), failures(|c| c.1.is_none()));

    let dir = std::env::temp_dir().join(format!(
        "huella-population-{}-{}",
        std::process::id(),
        start.elapsed().as_nanos()
    ));
    let engine = Engine::builder()
        .gallery(&dir)
        .create_if_missing(true)
        .model(face_model(&pipeline))
        .fingers(true)
        .face(pipeline.clone())
        .build()?;
    let result = search_all(&engine, &captures);
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
    let (ways, mated, non_mated, enrolled) = result?;
    Ok(serde_json::json!({
        "protocol": "virtual population: LFW identities x FVC fingers, first capture enrolled, \
                     captures 2-8 searched mated (whole gallery) and non-mated (own person masked)",
        "persons": people.len(),
        "enrolled": enrolled,
        "captures": captures.len(),
        "failures_to_acquire": {"face": face_fta, "finger": finger_fta},
        "searches": {"mated": mated, "non_mated": non_mated},
        "ways": ways,
        "extract_seconds": extract_s,
        "seconds": start.elapsed().as_secs_f64(),
    }))
}

/// Enrol and search, `captures` holding [`CAPTURES`] (face, finger) per person in
/// order; returns the per-way reports, the search counts and the persons enrolled.
fn search_all(
    engine: &Engine,
    captures: &[(Option<Template>, Option<Template>)],
) -> Result<(serde_json::Value, usize, usize, usize)> {
    let persons = captures.len() / CAPTURES;
    let capture = |p: usize, k: usize| &captures[p * CAPTURES + k];
    let subject = |p: usize| SubjectId::new(format!("P{p:04}"));
    let mut enrolled = Vec::new();
    for p in 0..persons {
        let (face, finger) = capture(p, 0);
        let templates: Vec<NewTemplate> = [face, finger]
            .into_iter()
            .flatten()
            .map(|t| NewTemplate {
                template: t.clone(),
                source: None,
            })
            .collect();
        if templates.is_empty() {
            continue;
        }
        engine.enroll(
            NewEncounter {
                subject: subject(p)?,
                captured_at_unix_ms: 0,
                location: None,
                operator: None,
                biographic: BTreeMap::new(),
                templates,
            },
            &IdentifyOptions::default(),
        )?;
        enrolled.push(p);
    }
    let mut ways = serde_json::Map::new();
    let (mut mated, mut non_mated) = (0, 0);
    for way in WAYS {
        // (probe id, true subject for a mated search, candidate list).
        let mut lists: Vec<(String, Option<String>, Vec<huella_engine::Candidate>)> = Vec::new();
        for &p in &enrolled {
            let others: Vec<SubjectId> = enrolled
                .iter()
                .filter(|&&q| q != p)
                .map(|&q| subject(q))
                .collect::<Result<_, _>>()?;
            for k in 1..CAPTURES {
                let (face, finger) = capture(p, k);
                let probe: Vec<Template> = match way {
                    "face" => face.iter().cloned().collect(),
                    "finger" => finger.iter().cloned().collect(),
                    _ => [face, finger].into_iter().flatten().cloned().collect(),
                };
                for masked in [false, true] {
                    let opts = IdentifyOptions {
                        max_candidates: LIST,
                        threshold: None,
                        restrict_to: masked.then(|| others.clone()),
                        fused_scores: way == "fused",
                    };
                    let list = if probe.is_empty() {
                        Vec::new()
                    } else {
                        engine.identify(&probe, &opts)?
                    };
                    let truth = (!masked).then(|| subject(p).map(|s| s.to_string()));
                    lists.push((format!("{p}:{k}:{masked}"), truth.transpose()?, list));
                }
            }
        }
        mated = lists.iter().filter(|l| l.1.is_some()).count();
        non_mated = lists.len() - mated;
        let names: Vec<Vec<String>> = lists
            .iter()
            .map(|l| l.2.iter().map(|c| c.subject.to_string()).collect())
            .collect();
        let rows = lists
            .iter()
            .zip(&names)
            .flat_map(|((id, truth, list), names)| {
                let row = move |candidate| CandidateRow {
                    probe_id: id,
                    probe_subject: truth.as_deref(),
                    candidate,
                };
                let mut rows: Vec<CandidateRow<'_>> = list
                    .iter()
                    .zip(names)
                    .map(|(c, n)| row(Some((n.as_str(), c.rank, c.score.value()))))
                    .collect();
                if rows.is_empty() {
                    rows.push(row(None));
                }
                rows
            });
        let report = IdentificationReport::from_candidates(
            rows,
            IdentificationOptions {
                fpir_points: vec![0.01, 0.1],
                ranks: vec![1, 5],
                protocol: format!("virtual-population/{way}"),
                ..IdentificationOptions::default()
            },
        )?;
        let at = |f: f64| {
            report
                .fnir_at_fpir
                .iter()
                .find(|p| (p.target_fpir - f).abs() < 1e-12)
                .map(|p| p.fnir)
        };
        ways.insert(
            way.to_string(),
            serde_json::json!({
                "fnir_at_fpir_1pct": at(0.01),
                "fnir_at_fpir_10pct": at(0.1),
                "rank1": report.rank_k.first().map(|r| r.hit_rate),
                "report": report,
            }),
        );
    }
    Ok((
        serde_json::Value::Object(ways),
        mated,
        non_mated,
        enrolled.len(),
    ))
}

/// Write `manifest.csv` and `truth.csv` (see the module docs).
fn write_manifest(dir: &Path, people: &[Person], plant: usize) -> Result<()> {
    let n = people.len();
    if plant + REPEATS + 2 > n {
        bail!(
            "--plant {plant}: the population has {n} persons, at most {} can be planted",
            n.saturating_sub(REPEATS + 2)
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut manifest = csv::Writer::from_path(dir.join("manifest.csv"))?;
    let mut truth = csv::Writer::from_path(dir.join("truth.csv"))?;
    // record_id ... face, finger_1, finger_2: the right index is position 2.
    manifest.write_record(&crate::ingest::COLUMNS[..10])?;
    truth.write_record(["record_id", "person", "kind"])?;
    let mut row = |id: String,
                   p: usize,
                   k: usize,
                   name: &str,
                   dob: String,
                   doc: String,
                   kind: &str|
     -> Result<()> {
        let (face, finger) = (abs(&people[p].faces[k]), abs(&people[p].finger[k]));
        manifest.write_record([
            id.as_str(),
            name,
            &dob,
            "XX",
            &doc,
            &format!("2025-{:02}-01", 1 + k),
            "Post A",
            &face.to_string_lossy(),
            "",
            &finger.to_string_lossy(),
        ])?;
        truth.write_record([id.as_str(), &p.to_string(), kind])?;
        Ok(())
    };
    let dob = |p: usize| format!("19{:02}-{:02}-{:02}", 50 + p % 45, 1 + p % 12, 1 + p % 28);
    let doc = |p: usize| format!("DOC{p:05}");
    for (p, person) in people.iter().enumerate() {
        // The last two persons are different people presenting one document.
        let (d, kind) = if p == n - 1 {
            (doc(n - 2), "shared_document")
        } else {
            (doc(p), "enrolled")
        };
        row(format!("R{p:04}"), p, 0, &person.name, dob(p), d, kind)?;
    }
    for p in 0..plant {
        row(
            format!("R{p:04}-ALIAS"),
            p,
            1,
            &format!("Alias Number {p}"),
            dob(p + 1),
            format!("FAKE{p:05}"),
            "false_identity",
        )?;
    }
    for (p, person) in people.iter().enumerate().skip(plant).take(REPEATS) {
        row(
            format!("R{p:04}-AGAIN"),
            p,
            2,
            &person.name,
            dob(p),
            doc(p),
            "repeat",
        )?;
    }
    manifest.flush()?;
    truth.flush()?;
    crate::print_json(&serde_json::json!({
        "persons": n,
        "records": n + plant + REPEATS,
        "false_identities": plant,
        "repeats": REPEATS,
        "shared_documents": 1,
        "manifest": dir.join("manifest.csv"),
        "truth": dir.join("truth.csv"),
    }))
}
