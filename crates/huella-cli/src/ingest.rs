//! `huella ingest`: legacy records from a CSV manifest into a gallery.
//!
//! The manifest's header names its columns, a subset of
//! `record_id,name,date_of_birth,nationality,document_number,encounter_date,office,face,finger_1,...,finger_10`
//! in any order (`record_id` is required; a missing column reads as empty cells). Image
//! paths are relative to the manifest. Each row becomes one encounter of subject
//! `record_id`, with the biographic fields (and `record_id` itself) kept as the
//! encounter's biographic fields, `office` also as its location, and `encounter_date`
//! (RFC 3339 or `YYYY-MM-DD`, midnight UTC; empty: the time of ingest) as its capture
//! time.
//!
//! Choices on bad input:
//! - an unknown or repeated column rejects the whole manifest, naming the column (a
//!   misspelt `finger_11` or `fase` would otherwise silently drop biometrics);
//! - a row longer than [`MAX_RECORD_BYTES`] stops the run (the CSV reader cannot resync);
//! - everything else is an error row in the errors file (`record_id,line,column,reason`,
//!   never image content or biographic values) while the other rows go on: a field over
//!   [`MAX_FIELD_BYTES`], bytes that are not UTF-8 (legacy Latin-1 names: re-encode the
//!   manifest), a malformed date, a record_id seen on an earlier line (the first is
//!   kept), a row without any biometric cell, a missing or unreadable image, no face
//!   found, a low-quality face;
//! - a store failure (disk full, I/O error) stops the run: every record committed
//!   before it is durable, and the next run carries on.
//!
//! Resumability: a record is done when the store holds an encounter of subject
//! `record_id` whose biographic field `record_id` is that id. The encounter and its
//! templates are committed in one fsynced transaction (`Engine::enroll`), so after a
//! `kill -9` a record is either wholly in the store or not at all; a rerun skips the
//! done ones and redoes the rest. The indexes catch up from the store's change log on
//! open, so a kill between the store commit and the index update loses nothing.
//!
//! Exit status: 0 when every row was ingested (or already was), 1 otherwise.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use huella_engine::{
    EngineError, FacePipeline, FingerPosition, IdentifyOptions, NewEncounter, NewTemplate,
    StoreError, SubjectId,
};
use rayon::prelude::*;

use crate::face::FaceArgs;

/// Longest accepted cell (bytes).
pub const MAX_FIELD_BYTES: usize = 4096;
/// Longest accepted row (bytes, quoted line breaks included).
pub const MAX_RECORD_BYTES: u64 = 64 << 10;
/// Most rows in one manifest (split larger ones).
pub const MAX_ROWS: usize = 10_000_000;

/// The columns a manifest may have.
const COLUMNS: [&str; 18] = [
    "record_id",
    "name",
    "date_of_birth",
    "nationality",
    "document_number",
    "encounter_date",
    "office",
    "face",
    "finger_1",
    "finger_2",
    "finger_3",
    "finger_4",
    "finger_5",
    "finger_6",
    "finger_7",
    "finger_8",
    "finger_9",
    "finger_10",
];
/// Columns copied into the encounter's biographic fields when not empty.
const BIOGRAPHIC: [&str; 5] = [
    "name",
    "date_of_birth",
    "nationality",
    "document_number",
    "office",
];

/// Flags of `huella ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    gallery: crate::GalleryArgs,
    /// The CSV manifest.
    #[arg(long)]
    manifest: PathBuf,
    /// Extraction threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Where the failed rows are written (`record_id,line,column,reason`); rewritten on
    /// every run (a rerun retries the failed rows).
    #[arg(long, default_value = "errors.csv")]
    errors: PathBuf,
    /// Ignore the face column.
    #[arg(long, conflicts_with = "face_only")]
    fingers_only: bool,
    /// Ignore the finger columns.
    #[arg(long)]
    face_only: bool,
    /// Resolution of finger images that do not state it (default 500 ppi).
    #[arg(long)]
    ppi: Option<f32>,
    /// Candidates reported per record at enrolment (the de-duplication check).
    #[arg(long, default_value_t = 5)]
    max_candidates: usize,
    /// Only report enrolment candidates scoring at least this.
    #[arg(long)]
    threshold: Option<f32>,
}

/// One failed row (or cell) as written to the errors file.
#[derive(Debug, Clone, PartialEq)]
struct ErrorRow {
    record_id: String,
    line: u64,
    column: String,
    reason: String,
}

/// A manifest row that passed the checks that need no image.
#[derive(Debug)]
struct Row {
    line: u64,
    record_id: String,
    subject: SubjectId,
    captured_at_unix_ms: i64,
    location: Option<String>,
    biographic: BTreeMap<String, String>,
    face: Option<PathBuf>,
    fingers: Vec<(FingerPosition, PathBuf)>,
}

/// Counts the bytes read since the last reset and fails past a limit, so that one
/// hostile row cannot make the CSV reader buffer without bound.
struct Bounded<R> {
    inner: R,
    since_reset: Arc<AtomicU64>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // The CSV reader buffers ahead; allow one buffer's worth on top of the row limit.
        if self.since_reset.load(Ordering::Relaxed) > MAX_RECORD_BYTES + (64 << 10) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a row is longer than {MAX_RECORD_BYTES} bytes"),
            ));
        }
        let n = self.inner.read(buf)?;
        self.since_reset.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Which columns this run reads.
#[derive(Debug, Clone, Copy)]
struct Use {
    face: bool,
    fingers: bool,
}

/// Reads and checks the manifest: the rows to ingest and the rows already in error.
fn read_manifest(path: &Path, wanted: Use) -> Result<(Vec<Row>, Vec<ErrorRow>)> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the manifest {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let counter = Arc::new(AtomicU64::new(0));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(Bounded {
            inner: file,
            since_reset: counter.clone(),
        });
    let mut record = csv::ByteRecord::new();
    let shown = path.display();
    if !reader
        .read_byte_record(&mut record)
        .with_context(|| format!("cannot read the header of {shown}"))?
    {
        bail!("{shown} is empty: the manifest needs a header line");
    }
    let mut columns: Vec<&'static str> = Vec::with_capacity(record.len());
    for (i, raw) in record.iter().enumerate() {
        let name = std::str::from_utf8(raw).map(str::trim).unwrap_or("");
        // A UTF-8 byte-order mark before the first name.
        let name = if i == 0 {
            name.trim_start_matches('\u{feff}')
        } else {
            name
        };
        let Some(known) = COLUMNS.iter().find(|c| **c == name) else {
            bail!(
                "{shown}: unknown column {:?} (column {}); the manifest's columns are {}",
                String::from_utf8_lossy(raw),
                i + 1,
                COLUMNS.join(",")
            );
        };
        if columns.contains(known) {
            bail!("{shown}: column {known:?} appears twice");
        }
        columns.push(known);
    }
    if !columns.contains(&"record_id") {
        bail!("{shown}: the header has no record_id column");
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    loop {
        counter.store(0, Ordering::Relaxed);
        let more = reader
            .read_byte_record(&mut record)
            .with_context(|| format!("cannot read {shown}"))?;
        if !more {
            break;
        }
        let line = record.position().map_or(0, |p| p.line());
        if rows.len() + errors.len() >= MAX_ROWS {
            bail!("{shown} has more than {MAX_ROWS} rows: split it");
        }
        if record.len() == 1 && record.get(0).is_some_and(|f| f.trim_ascii().is_empty()) {
            continue; // a blank line
        }
        match check_row(&record, &columns, line, &base, wanted, &mut seen) {
            Ok(row) => rows.push(row),
            Err(mut e) => errors.append(&mut e),
        }
    }
    Ok((rows, errors))
}

/// Parses a date cell: `YYYY-MM-DD` (midnight UTC) or RFC 3339; milliseconds since 1970.
fn parse_date(s: &str) -> Option<i64> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis());
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn check_row(
    record: &csv::ByteRecord,
    columns: &[&'static str],
    line: u64,
    base: &Path,
    wanted: Use,
    seen: &mut HashMap<String, u64>,
) -> Result<Row, Vec<ErrorRow>> {
    let mut errors = Vec::new();
    let id_raw = columns
        .iter()
        .position(|c| *c == "record_id")
        .and_then(|i| record.get(i))
        .unwrap_or(b"");
    let record_id = String::from_utf8_lossy(&id_raw[..id_raw.len().min(MAX_FIELD_BYTES)])
        .trim()
        .to_string();
    let failures = std::cell::Cell::new(0usize);
    let mut err = |column: &str, reason: String| {
        failures.set(failures.get() + 1);
        errors.push(ErrorRow {
            record_id: record_id.clone(),
            line,
            column: column.to_string(),
            reason,
        })
    };
    if record.len() != columns.len() {
        err(
            "",
            format!(
                "{} fields where the header has {}",
                record.len(),
                columns.len()
            ),
        );
        return Err(errors);
    }
    let mut cells: HashMap<&'static str, &str> = HashMap::new();
    for (column, raw) in columns.iter().zip(record.iter()) {
        if raw.len() > MAX_FIELD_BYTES {
            err(
                column,
                format!("{} bytes, at most {MAX_FIELD_BYTES} allowed", raw.len()),
            );
            continue;
        }
        match std::str::from_utf8(raw) {
            Ok(s) if !s.trim().is_empty() => {
                cells.insert(column, s.trim());
            }
            Ok(_) => {}
            Err(e) => err(
                column,
                format!(
                    "not valid UTF-8 (byte {}); re-encode the manifest as UTF-8",
                    e.valid_up_to()
                ),
            ),
        }
    }
    let subject = match cells.get("record_id") {
        None => {
            err("record_id", "empty".into());
            None
        }
        Some(id) => match SubjectId::new(*id) {
            Err(e) => {
                err("record_id", format!("not a valid subject id: {e}"));
                None
            }
            Ok(s) => match seen.get(*id) {
                Some(first) => {
                    err(
                        "record_id",
                        format!("duplicate record_id: first on line {first}"),
                    );
                    None
                }
                None => {
                    seen.insert(id.to_string(), line);
                    Some(s)
                }
            },
        },
    };
    if let Some(dob) = cells.get("date_of_birth") {
        if chrono::NaiveDate::parse_from_str(dob, "%Y-%m-%d").is_err() {
            err("date_of_birth", "not a YYYY-MM-DD date".into());
        }
    }
    let captured_at_unix_ms = match cells.get("encounter_date") {
        None => chrono::Utc::now().timestamp_millis(),
        Some(d) => parse_date(d).unwrap_or_else(|| {
            err(
                "encounter_date",
                "not a YYYY-MM-DD date or an RFC 3339 time".into(),
            );
            0
        }),
    };
    let face = cells
        .get("face")
        .filter(|_| wanted.face)
        .map(|p| base.join(p));
    let mut fingers = Vec::new();
    if wanted.fingers {
        for code in 1..=10u8 {
            let column = COLUMNS[7 + usize::from(code)];
            if let Some(p) = cells.get(column) {
                match FingerPosition::from_code(code) {
                    Ok(pos) => fingers.push((pos, base.join(p))),
                    Err(e) => err(column, e.to_string()),
                }
            }
        }
    }
    if face.is_none() && fingers.is_empty() && failures.get() == 0 {
        let what = match (wanted.face, wanted.fingers) {
            (true, true) => "the face and finger cells are empty",
            (true, false) => "the face cell is empty (finger cells ignored by --face-only)",
            _ => "the finger cells are empty (face cell ignored by --fingers-only)",
        };
        err("", format!("no biometric: {what}"));
    }
    match subject {
        Some(subject) if errors.is_empty() => {
            let mut biographic: BTreeMap<String, String> = BIOGRAPHIC
                .iter()
                .filter_map(|c| cells.get(c).map(|v| (c.to_string(), v.to_string())))
                .collect();
            biographic.insert("record_id".into(), record_id.clone());
            Ok(Row {
                line,
                record_id,
                subject,
                captured_at_unix_ms,
                location: cells.get("office").map(|s| s.to_string()),
                biographic,
                face,
                fingers,
            })
        }
        _ => Err(errors),
    }
}

/// Whether the store already holds this row's encounter (a previous run committed it).
fn is_done(gallery: &huella_engine::Gallery, row: &Row) -> Result<bool> {
    Ok(gallery
        .subject_encounters(&row.subject)?
        .iter()
        .any(|e| e.biographic.get("record_id") == Some(&row.record_id)))
}

/// Decodes and extracts every biometric of a row (on a worker thread).
fn extract(
    row: &Row,
    pipeline: Option<&FacePipeline>,
    face_args: &FaceArgs,
    ppi: Option<f32>,
) -> Result<NewEncounter, Vec<ErrorRow>> {
    let mut templates: Vec<NewTemplate> = Vec::new();
    let mut errors = Vec::new();
    let mut err = |column: String, e: anyhow::Error| {
        errors.push(ErrorRow {
            record_id: row.record_id.clone(),
            line: row.line,
            column,
            reason: format!("{e:#}"),
        })
    };
    if let (Some(path), Some(pipeline)) = (&row.face, pipeline) {
        match crate::face::face_template(pipeline, path, face_args.policy()) {
            Ok((t, _)) => templates.push(t),
            Err(e) => err("face".into(), e),
        }
    }
    for (pos, path) in &row.fingers {
        match crate::finger::finger_templates(&[(*pos, path.clone())], ppi) {
            Ok((mut t, _)) => templates.append(&mut t),
            Err(e) => err(format!("finger_{}", pos.code()), e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NewEncounter {
        subject: row.subject.clone(),
        captured_at_unix_ms: row.captured_at_unix_ms,
        location: row.location.clone(),
        operator: None,
        biographic: row.biographic.clone(),
        templates,
    })
}

/// The errors file: a CSV written and flushed row by row.
struct ErrorsFile {
    out: csv::Writer<std::fs::File>,
    path: PathBuf,
    count: usize,
}

impl ErrorsFile {
    fn create(path: &Path) -> Result<Self> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = csv::Writer::from_writer(file);
        out.write_record(["record_id", "line", "column", "reason"])?;
        out.flush()?;
        Ok(Self {
            out,
            path: path.to_path_buf(),
            count: 0,
        })
    }

    fn write(&mut self, rows: &[ErrorRow]) -> Result<()> {
        for r in rows {
            self.out
                .write_record([&r.record_id, &r.line.to_string(), &r.column, &r.reason])
                .and_then(|()| self.out.flush().map_err(csv::Error::from))
                .with_context(|| format!("cannot write {}", self.path.display()))?;
        }
        // A record counts once however many of its cells failed.
        let mut lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        lines.dedup();
        self.count += lines.len();
        Ok(())
    }
}

/// Whether an enrolment failure means the gallery cannot take more (stop the run)
/// rather than that this record is bad (report it and go on).
fn is_fatal(e: &EngineError) -> bool {
    match e {
        EngineError::Store(StoreError::BadInput { .. }) => false,
        EngineError::Store(_) | EngineError::Index(_) => true,
        _ => false,
    }
}

/// `huella ingest`.
pub fn run(args: &IngestArgs, face_args: &FaceArgs) -> Result<()> {
    let started = Instant::now();
    let wanted = Use {
        face: !args.fingers_only,
        fingers: !args.face_only,
    };
    let (rows, parse_errors) = read_manifest(&args.manifest, wanted)?;
    let engine = crate::open(&args.gallery)?;
    let has_fingers = {
        let finger = format!("finger:{}", huella_engine::finger_model());
        engine.stats()?.indexes.iter().any(|i| i.model == finger)
    };
    let mut errors = ErrorsFile::create(&args.errors)?;
    errors.write(&parse_errors)?;

    let total_rows = rows.len() + errors.count;
    let mut pending = Vec::with_capacity(rows.len());
    let mut skipped = 0usize;
    for row in rows {
        if is_done(engine.gallery(), &row)? {
            tracing::debug!(record = %row.record_id, "already ingested");
            skipped += 1;
        } else {
            pending.push(row);
        }
    }
    let needs_face = pending.iter().any(|r| r.face.is_some());
    let needs_fingers = pending.iter().any(|r| !r.fingers.is_empty());
    let g = args.gallery.gallery.display();
    if needs_fingers && !has_fingers {
        bail!(
            "the manifest has finger images but gallery {g} was created without fingers \
             (create it with `huella init --gallery G --fingers ...`, or pass --face-only)"
        );
    }
    let pipeline = if needs_face {
        let pipeline = face_args.pipeline()?;
        let model = huella_engine::face_model(&pipeline);
        if !engine.models().contains(&model) {
            let held: Vec<String> = engine.models().iter().map(|m| m.to_string()).collect();
            bail!(
                "the manifest has face images but gallery {g} has no face model {model} \
                 (it holds [{}]); create it with `huella init --gallery G --model {model}`, \
                 or pass --fingers-only",
                held.join(", ")
            );
        }
        Some(pipeline)
    } else {
        None
    };

    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let opts = IdentifyOptions {
        max_candidates: args.max_candidates,
        threshold: args.threshold,
        restrict_to: None,
        fused_scores: false,
    };
    let bar = indicatif::ProgressBar::new(pending.len() as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} records, {per_sec}, ETA {eta} ({msg})",
        )?,
    );
    bar.set_message("0 failed");

    let stop = AtomicBool::new(false);
    let mut ingested = 0usize;
    let mut fatal: Option<anyhow::Error> = None;
    let stdout = std::io::stdout();
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel(threads * 4);
        let (pending, stop, pipeline) = (&pending, &stop, pipeline.as_deref());
        let ppi = args.ppi;
        let pool = &pool;
        scope.spawn(move || {
            pool.install(|| {
                pending.par_iter().for_each_with(tx, |tx, row| {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let result = extract(row, pipeline, face_args, ppi);
                    // The receiver is gone only when the run stopped.
                    let _ = tx.send((row, result));
                })
            })
        });
        for (row, result) in rx {
            bar.inc(1);
            let encounter = match result {
                Ok(e) => e,
                Err(rows) => {
                    errors.write(&rows)?;
                    bar.set_message(format!("{} failed", errors.count));
                    continue;
                }
            };
            match engine.enroll(encounter, &opts) {
                Ok(enrolment) => {
                    ingested += 1;
                    let line = serde_json::json!({
                        "record_id": row.record_id,
                        "line": row.line,
                        "encounter": enrolment.encounter.id,
                        "candidates": enrolment.candidates,
                    });
                    let mut out = stdout.lock();
                    writeln!(out, "{line}")?;
                    out.flush()?;
                }
                Err(e) if is_fatal(&e) => {
                    stop.store(true, Ordering::Relaxed);
                    fatal = Some(anyhow::Error::new(e).context(format!(
                        "the gallery cannot take more records (stopped at line {}; \
                         the {ingested} records ingested by this run are stored, \
                         rerun to continue)",
                        row.line
                    )));
                    break;
                }
                Err(e) => {
                    errors.write(&[ErrorRow {
                        record_id: row.record_id.clone(),
                        line: row.line,
                        column: String::new(),
                        reason: format!("{e:#}"),
                    }])?;
                    bar.set_message(format!("{} failed", errors.count));
                }
            }
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    // Snapshot the indexes so the next open loads instead of replaying; not needed for
    // correctness, and it may fail for the same reason the run stopped.
    if let Err(e) = engine.checkpoint() {
        tracing::warn!(error = %e, "could not save the index snapshots");
    }
    let elapsed = started.elapsed().as_secs_f64();
    crate::print_json(&serde_json::json!({
        "summary": {
            "rows": total_rows,
            "ingested": ingested,
            "already_ingested": skipped,
            "failed": errors.count,
            "threads": threads,
            "seconds": elapsed,
            "records_per_second": if elapsed > 0.0 { ingested as f64 / elapsed } else { 0.0 },
            "errors_file": args.errors.display().to_string(),
        }
    }))?;
    if let Some(e) = fatal {
        return Err(e);
    }
    if errors.count > 0 {
        bail!(
            "{} of the manifest's records failed; see {}",
            errors.count,
            args.errors.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_as_utc_milliseconds() {
        assert_eq!(parse_date("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_date("1970-01-01T01:00:00+01:00"), Some(0));
        for bad in ["1980-13-02", "02/01/1980", "1980-02-30", "", "yesterday"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_reader_refuses_an_endless_row() {
        let counter = Arc::new(AtomicU64::new(0));
        let mut r = Bounded {
            inner: std::io::repeat(b'x'),
            since_reset: counter.clone(),
        };
        // Read as the CSV reader does, in 8 KiB chunks.
        let mut buf = [0u8; 8192];
        let mut total = 0u64;
        let err = loop {
            match r.read(&mut buf) {
                Ok(n) => total += n as u64,
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains("longer than"));
        assert!(total <= MAX_RECORD_BYTES + (64 << 10) + 8192, "{total}");
        // A new row starts the count again.
        counter.store(0, Ordering::Relaxed);
        assert_eq!(r.read(&mut buf).unwrap(), 8192);
    }

    #[test]
    fn a_row_reports_every_bad_cell() {
        let columns = ["record_id", "date_of_birth", "encounter_date", "face"];
        let record = csv::ByteRecord::from(vec!["R1", "1980-00-01", "soon", ""]);
        let mut seen = HashMap::new();
        let wanted = Use {
            face: true,
            fingers: true,
        };
        let errors = check_row(&record, &columns, 2, Path::new(""), wanted, &mut seen).unwrap_err();
        let cols: Vec<&str> = errors.iter().map(|e| e.column.as_str()).collect();
        assert_eq!(cols, ["date_of_birth", "encounter_date"]);
        // The id was seen: the same id again is a duplicate.
        let record = csv::ByteRecord::from(vec!["R1", "", "", "a.jpg"]);
        let errors = check_row(&record, &columns, 3, Path::new(""), wanted, &mut seen).unwrap_err();
        assert_eq!(errors[0].reason, "duplicate record_id: first on line 2");
        let record = csv::ByteRecord::from(vec!["R2", "", "", "a.jpg"]);
        let row = check_row(&record, &columns, 4, Path::new("dir"), wanted, &mut seen).unwrap();
        assert_eq!(row.face.as_deref(), Some(Path::new("dir/a.jpg")));
        assert_eq!(row.biographic["record_id"], "R2");
    }
}
