//! `huella ingest`: legacy records from a CSV manifest, or ANSI/NIST-ITL transaction
//! files, into a gallery.
//!
//! Both sources become the same in-memory [`Record`] (record id, biographic fields,
//! capture time, office, and where its face and finger samples are), fed to one
//! pipeline: the resumability check, parallel extraction, enrolment through the
//! engine's single writer, the errors file, the progress bar, the summary and the exit
//! status are shared.
//!
//! ## CSV manifests (`--manifest legacy.csv`)
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
//! ## ANSI/NIST-ITL transactions (`--nist DIR`)
//!
//! Every regular file directly in `DIR` (not in subfolders) whose extension is one of
//! [`NIST_EXTENSIONS`] (any case) is one record, taken in file-name order; other files
//! are counted as ignored. Each is read only when it is at most
//! [`huella_nist::MAX_TRANSACTION_BYTES`] (checked on its size first) and decoded by
//! `huella-nist`:
//! - `record_id` is the transaction control number (1.009 TCN), else the file stem;
//! - biographic fields from the first Type-2 (FBI EBTS numbering: 2.018 NAM as `name`,
//!   2.022 DOB as `date_of_birth` `YYYY-MM-DD`, 2.021 CTZ as `nationality`, 2.017 MNU as
//!   `document_number`), 1.008 ORI as `office` (and the location), 1.005 DAT
//!   (`YYYYMMDD`) as the capture time, and `nist_file`, the file's name;
//! - the face from the first Type-10 whose IMT is `FACE` (JPEG or PNG as the face
//!   pipeline decodes them; `NONE` raw grey or RGB pixels are made an image; JPEG 2000
//!   and lossless JPEG are refused by the decoder, an error row);
//! - fingers from Type-14 and Type-4 records (WSQ, PNG, JPEG, or raw 8-bit pixels),
//!   their resolution from the record (14.008 SLC with 14.009 HPS; Type-4 ISR with 1.012
//!   NTR or 1.011 NSR), else `--ppi`, else the image's own, else 500 ppi; the first
//!   record of a position is used;
//! - Type-9 INCITS 378 minutiae enrolled directly as the finger template of a position
//!   that has no image.
//!
//! Records `huella-nist` reads but Huella cannot use (slap images, Type-9 without the
//! INCITS 378 block, an unsupported finger compression) are skipped and listed in the
//! record's output line under `skipped`. A file that is too large, truncated or
//! malformed, or whose face or finger fails, is one or more error rows naming the file
//! (never its content); the errors file's columns are then
//! `record_id,file,field,reason`. The source reference stored with a template from a
//! transaction is `FILE#N`, record `N` of that file.
//!
//! ## Both
//!
//! Resumability: a record is done when the store holds an encounter of subject
//! `record_id` whose biographic field `record_id` is that id. The encounter and its
//! templates are committed in one fsynced transaction (`Engine::enroll`), so after a
//! `kill -9` a record is either wholly in the store or not at all; a rerun skips the
//! done ones and redoes the rest. The indexes catch up from the store's change log on
//! open, so a kill between the store commit and the index update loses nothing.
//!
//! Exit status: 0 when every record was ingested (or already was), 1 otherwise.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Args};
use huella_engine::finger::{FingerExtractor, FingerTemplate};
use huella_engine::{
    EngineError, FacePipeline, FingerPosition, GreyImage, IdentifyOptions, Limits, Modality,
    NewEncounter, NewTemplate, QualityPolicy, SourceImage, StoreError, SubjectId,
};
use huella_nist::{FaceCompression, FingerCompression, NistError, Transaction};
use rayon::prelude::*;

use crate::face::FaceArgs;

/// Longest accepted cell (bytes).
pub const MAX_FIELD_BYTES: usize = 4096;
/// Longest accepted row (bytes, quoted line breaks included).
pub const MAX_RECORD_BYTES: u64 = 64 << 10;
/// Most rows in one manifest, or transaction files in one folder (split larger ones).
pub const MAX_ROWS: usize = 10_000_000;
/// Extensions (any case) of the files `--nist DIR` reads as transactions.
pub const NIST_EXTENSIONS: [&str; 6] = ["an2", "an2k", "eft", "ebts", "nist", "int"];

/// The columns a manifest may have.
pub(crate) const COLUMNS: [&str; 18] = [
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
#[command(group(ArgGroup::new("source").required(true).args(["manifest", "nist"])))]
pub struct IngestArgs {
    #[command(flatten)]
    gallery: crate::GalleryArgs,
    /// The CSV manifest.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// A folder of ANSI/NIST-ITL 1-2011 transaction files (.an2 .an2k .eft .ebts .nist
    /// .int), one record each.
    #[arg(long)]
    nist: Option<PathBuf>,
    /// Extraction threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Where the failed records are written (`record_id,line,column,reason`, or
    /// `record_id,file,field,reason` with --nist); rewritten on every run (a rerun
    /// retries the failed records).
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

/// Where a record came from, as the errors file and the output name it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// A manifest line.
    Line(u64),
    /// The name of a transaction file in the `--nist` folder.
    File(String),
}

impl fmt::Display for Origin {
    /// The errors file's cell.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line(n) => write!(f, "{n}"),
            Origin::File(name) => f.write_str(name),
        }
    }
}

impl Origin {
    /// "on line 3", "in a.an2".
    fn place(&self) -> String {
        match self {
            Origin::Line(n) => format!("on line {n}"),
            Origin::File(name) => format!("in {name}"),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Origin::Line(n) => serde_json::json!({ "line": n }),
            Origin::File(name) => serde_json::json!({ "file": name }),
        }
    }
}

/// One failed record (or one of its cells or fields) as written to the errors file.
#[derive(Debug, Clone, PartialEq)]
struct ErrorRow {
    record_id: String,
    origin: Origin,
    column: String,
    reason: String,
}

/// A record to ingest, from a manifest row or a transaction file, after the checks that
/// need no image.
#[derive(Debug)]
struct Record {
    origin: Origin,
    record_id: String,
    subject: SubjectId,
    captured_at_unix_ms: i64,
    location: Option<String>,
    biographic: BTreeMap<String, String>,
    biometrics: Biometrics,
}

/// Where a record's biometric samples are.
#[derive(Debug)]
enum Biometrics {
    /// Image or minutiae-record files named by a manifest row.
    Files {
        face: Option<PathBuf>,
        fingers: Vec<(FingerPosition, PathBuf)>,
    },
    /// A transaction file, read and decoded again by the worker (so that the records
    /// waiting for a worker hold no image); whether it holds a face and finger records.
    Nist {
        path: PathBuf,
        face: bool,
        fingers: bool,
    },
}

impl Biometrics {
    fn has_face(&self) -> bool {
        match self {
            Biometrics::Files { face, .. } => face.is_some(),
            Biometrics::Nist { face, .. } => *face,
        }
    }

    fn has_fingers(&self) -> bool {
        match self {
            Biometrics::Files { fingers, .. } => !fingers.is_empty(),
            Biometrics::Nist { fingers, .. } => *fingers,
        }
    }
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
fn read_manifest(path: &Path, wanted: Use) -> Result<(Vec<Record>, Vec<ErrorRow>)> {
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
    let mut seen: HashMap<String, Origin> = HashMap::new();
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
    seen: &mut HashMap<String, Origin>,
) -> Result<Record, Vec<ErrorRow>> {
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
            origin: Origin::Line(line),
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
        Some(id) => match new_subject(id, Origin::Line(line), seen) {
            Ok(s) => Some(s),
            Err(reason) => {
                err("record_id", reason);
                None
            }
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
            Ok(Record {
                origin: Origin::Line(line),
                record_id,
                subject,
                captured_at_unix_ms,
                location: cells.get("office").map(|s| s.to_string()),
                biographic,
                biometrics: Biometrics::Files { face, fingers },
            })
        }
        _ => Err(errors),
    }
}

/// The subject of `record_id`, unless it is not a valid id or an earlier record of this
/// run has it; the reason otherwise.
fn new_subject(
    record_id: &str,
    origin: Origin,
    seen: &mut HashMap<String, Origin>,
) -> Result<SubjectId, String> {
    let subject = SubjectId::new(record_id).map_err(|e| format!("not a valid subject id: {e}"))?;
    claim(record_id, origin, seen)?;
    Ok(subject)
}

/// Records that `origin` holds `record_id`, unless an earlier record does (the first is
/// kept).
fn claim(
    record_id: &str,
    origin: Origin,
    seen: &mut HashMap<String, Origin>,
) -> Result<(), String> {
    if let Some(first) = seen.get(record_id) {
        return Err(format!("duplicate record_id: first {}", first.place()));
    }
    seen.insert(record_id.to_string(), origin);
    Ok(())
}

/// The transaction files of `--nist DIR` in name order, and how many other entries
/// were ignored.
fn list_nist_dir(dir: &Path) -> Result<(Vec<PathBuf>, usize)> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list the folder {}", dir.display()))?;
    let mut files = Vec::new();
    let mut ignored = 0usize;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list the folder {}", dir.display()))?;
        let path = entry.path();
        // Follows links: a linked transaction is read like any other.
        let is_file = std::fs::metadata(&path).is_ok_and(|m| m.is_file());
        let known = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| NIST_EXTENSIONS.iter().any(|k| k.eq_ignore_ascii_case(e)));
        if is_file && known {
            if files.len() >= MAX_ROWS {
                bail!(
                    "{} holds more than {MAX_ROWS} transaction files: split it",
                    dir.display()
                );
            }
            files.push(path);
        } else {
            ignored += 1;
        }
    }
    files.sort();
    Ok((files, ignored))
}

/// A file's name as the errors file shows it.
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Reads and decodes a transaction file, checking its size before reading it.
fn read_transaction(path: &Path) -> Result<Transaction> {
    let max = huella_nist::MAX_TRANSACTION_BYTES as u64;
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if size > max {
        bail!("{size} bytes, more than the {max} a transaction may have");
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Transaction::decode(&bytes)?)
}

/// `YYYYMMDD` (1.005 DAT) as milliseconds since 1970 at midnight UTC.
fn nist_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y%m%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// Reads the transaction files: the records to ingest and the files already in error.
///
/// The files are read and decoded in parallel on `pool`; the first file (by name) of a
/// record id keeps it, as the first row of a manifest does, even when it fails.
fn read_nist_dir(
    files: &[PathBuf],
    wanted: Use,
    pool: &rayon::ThreadPool,
) -> (Vec<Record>, Vec<ErrorRow>) {
    let scanned: Vec<Result<Record, ScanError>> =
        pool.install(|| files.par_iter().map(|p| nist_record(p, wanted)).collect());
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashMap::new();
    for result in scanned {
        let (record_id, origin) = match &result {
            Ok(r) => (&r.record_id, &r.origin),
            Err(ScanError { row, .. }) => (&row.record_id, &row.origin),
        };
        let claimed = match &result {
            Err(ScanError { decoded: false, .. }) => Ok(()),
            _ => claim(record_id, origin.clone(), &mut seen).map_err(|reason| ErrorRow {
                record_id: record_id.clone(),
                origin: origin.clone(),
                column: "1.009".into(),
                reason,
            }),
        };
        match (result, claimed) {
            (Ok(r), Ok(())) => records.push(r),
            (Ok(_), Err(row)) | (Err(ScanError { row, .. }), _) => errors.push(row),
        }
    }
    (records, errors)
}

/// Why a transaction file is not a record.
struct ScanError {
    /// Whether the file decoded (its record id is the TCN, and it claims that id).
    decoded: bool,
    row: ErrorRow,
}

/// One transaction file as a record, after the checks that need no image decoding.
fn nist_record(path: &Path, wanted: Use) -> Result<Record, ScanError> {
    let name = file_name(path);
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let origin = Origin::File(name.clone());
    let error = |record_id: &str, column: &str, reason: String| ScanError {
        decoded: true,
        row: ErrorRow {
            record_id: record_id.to_string(),
            origin: origin.clone(),
            column: column.to_string(),
            reason,
        },
    };
    let t = read_transaction(path).map_err(|e| ScanError {
        decoded: false,
        ..error(&stem, "", format!("{e:#}"))
    })?;
    let record_id = t.control_number().unwrap_or(&stem).to_string();
    let subject = SubjectId::new(record_id.as_str())
        .map_err(|e| error(&record_id, "1.009", format!("not a valid subject id: {e}")))?;
    let person = t
        .biographic()
        .map_err(|e| error(&record_id, "Type-2", e.to_string()))?;
    let captured_at_unix_ms = match t.header.text(5) {
        None => chrono::Utc::now().timestamp_millis(),
        Some(d) => nist_date(d)
            .ok_or_else(|| error(&record_id, "1.005", "DAT is not a YYYYMMDD date".into()))?,
    };
    let office = t
        .header
        .first_item(8)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let mut biographic: BTreeMap<String, String> = [
        ("name", person.name),
        ("date_of_birth", person.date_of_birth),
        ("nationality", person.nationality),
        ("document_number", person.document_number),
        ("office", office.clone()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
    .collect();
    biographic.insert("record_id".into(), record_id.clone());
    biographic.insert("nist_file".into(), name);
    let face = wanted.face && !t.faces().is_empty();
    let fingers =
        wanted.fingers && !(t.finger_images().is_empty() && t.finger_minutiae().is_empty());
    if !face && !fingers {
        let what = match (wanted.face, wanted.fingers) {
            (true, true) => "no Type-10 face, Type-14, Type-4 or Type-9 finger record",
            (true, false) => "no Type-10 face record (finger records ignored by --face-only)",
            _ => "no Type-14, Type-4 or Type-9 finger record (faces ignored by --fingers-only)",
        };
        return Err(error(&record_id, "", format!("no biometric: {what}")));
    }
    Ok(Record {
        origin,
        record_id,
        subject,
        captured_at_unix_ms,
        location: office,
        biographic,
        biometrics: Biometrics::Nist {
            path: path.to_path_buf(),
            face,
            fingers,
        },
    })
}

/// Whether the store already holds this record's encounter (a previous run committed it).
fn is_done(gallery: &huella_engine::Gallery, record: &Record) -> Result<bool> {
    Ok(gallery
        .subject_encounters(&record.subject)?
        .iter()
        .any(|e| e.biographic.get("record_id") == Some(&record.record_id)))
}

/// One biometric sample, ready for extraction.
enum Sample<'a> {
    /// A file named by a manifest cell: read and decoded as `enroll --face/--finger` do
    /// (an image, or for fingers an ISO/ANSI minutiae record).
    File(PathBuf),
    /// An encoded image from a transaction record, with the resolution the record states.
    Encoded {
        bytes: Cow<'a, [u8]>,
        source: SourceImage,
        ppi: Option<f32>,
    },
    /// Raw grey finger pixels from a transaction record.
    Grey {
        image: GreyImage,
        source: SourceImage,
        ppi: Option<f32>,
    },
    /// Type-9 minutiae, enrolled as they are.
    Minutiae(FingerTemplate),
}

/// A record's samples, each with the label its error rows carry.
#[derive(Default)]
struct Samples<'a> {
    face: Option<(String, Sample<'a>)>,
    fingers: Vec<(FingerPosition, String, Sample<'a>)>,
    /// Records skipped as unusable (slaps...), described without content.
    skipped: Vec<String>,
}

/// What the extraction workers share.
struct Workers<'a> {
    pipeline: Option<&'a FacePipeline>,
    face_args: &'a FaceArgs,
    ppi: Option<f32>,
    wanted: Use,
}

/// The source reference of record `index` of a transaction file.
fn record_source(path: &Path, index: usize, bytes: &[u8]) -> SourceImage {
    crate::input::source_image(Path::new(&format!("{}#{index}", path.display())), bytes)
}

/// The samples of a decoded transaction; `Err` lists (field, reason) of every record
/// that fails.
fn nist_samples<'t>(
    t: &'t Transaction,
    path: &Path,
    wanted: Use,
) -> Result<Samples<'t>, Vec<(String, String)>> {
    let mut samples = Samples::default();
    let mut errors = Vec::new();
    let label = |what: &str, index: usize| format!("{what} (record {index})");
    if wanted.face {
        match t.faces().into_iter().next() {
            None => {}
            Some(Err(e)) => errors.push(("face".into(), e.to_string())),
            Some(Ok(face)) => match raw_face(&face) {
                Ok(bytes) => {
                    let source = record_source(path, face.record_index, face.data);
                    samples.face = Some((
                        label("face", face.record_index),
                        Sample::Encoded {
                            bytes,
                            source,
                            ppi: None,
                        },
                    ))
                }
                Err(e) => errors.push((label("face", face.record_index), format!("{e:#}"))),
            },
        }
    }
    if !wanted.fingers {
        return if errors.is_empty() {
            Ok(samples)
        } else {
            Err(errors)
        };
    }
    let images = usable(t.finger_images(), &mut samples.skipped, &mut errors);
    let minutiae = usable(t.finger_minutiae(), &mut samples.skipped, &mut errors);
    for image in images {
        let index = image.record_index;
        if samples.fingers.iter().any(|(p, _, _)| *p == image.position) {
            samples.skipped.push(format!(
                "record {index} (Type-{}): a second image of finger {}",
                image.record_type,
                image.position.code()
            ));
            continue;
        }
        let source = record_source(path, index, image.data);
        let sample = match image.compression {
            FingerCompression::None => {
                match GreyImage::from_raw(image.width, image.height, image.data.to_vec()) {
                    Some(grey) => Sample::Grey {
                        image: grey,
                        source,
                        ppi: image.ppi,
                    },
                    None => {
                        errors.push((
                            label("finger", index),
                            "raw pixels do not fill the image".into(),
                        ));
                        continue;
                    }
                }
            }
            _ => Sample::Encoded {
                bytes: Cow::Borrowed(image.data),
                source,
                ppi: image.ppi,
            },
        };
        let what = format!("finger {}", image.position.code());
        samples
            .fingers
            .push((image.position, label(&what, index), sample));
    }
    for m in minutiae {
        let position = m.position();
        if samples.fingers.iter().any(|(p, _, _)| *p == position) {
            continue; // the image of this finger is used
        }
        let what = format!("finger {} minutiae", position.code());
        samples.fingers.push((
            position,
            label(&what, m.record_index),
            Sample::Minutiae(m.template),
        ));
    }
    if errors.is_empty() {
        Ok(samples)
    } else {
        Err(errors)
    }
}

/// The finger records that can be used: a record Huella cannot use (a slap, an
/// unsupported compression) is listed as skipped; a damaged one fails the file.
fn usable<T>(
    records: Vec<Result<T, NistError>>,
    skipped: &mut Vec<String>,
    errors: &mut Vec<(String, String)>,
) -> Vec<T> {
    let mut ok = Vec::with_capacity(records.len());
    for r in records {
        match r {
            Ok(r) => ok.push(r),
            Err(e @ NistError::Unsupported { .. }) => skipped.push(e.to_string()),
            Err(e) => errors.push(("finger".to_string(), e.to_string())),
        }
    }
    ok
}

/// A face record's bytes for the face pipeline: as stored, or raw pixels made a PNG.
fn raw_face<'t>(face: &huella_nist::FaceImage<'t>) -> Result<Cow<'t, [u8]>> {
    if face.compression != FaceCompression::None {
        return Ok(Cow::Borrowed(face.data));
    }
    let pixels = u64::from(face.width) * u64::from(face.height);
    if pixels > Limits::default().max_pixels() {
        bail!(
            "a raw face of {} x {} pixels is too large",
            face.width,
            face.height
        );
    }
    let rgb = match face.raw_channels {
        Some(3) => face.data.to_vec(),
        _ => face.data.iter().flat_map(|g| [*g; 3]).collect(),
    };
    let image = huella_engine::Image::from_raw(face.width, face.height, rgb)
        .context("raw face pixels do not fill the image")?;
    Ok(Cow::Owned(huella_engine::encode_png(&image)?))
}

/// The samples of a record: its files, or its transaction read again.
fn samples_of<'t>(
    record: &Record,
    transaction: &'t mut Option<Transaction>,
    wanted: Use,
) -> Result<Samples<'t>, Vec<(String, String)>> {
    match &record.biometrics {
        Biometrics::Files { face, fingers } => Ok(Samples {
            face: face
                .clone()
                .filter(|_| wanted.face)
                .map(|p| ("face".to_string(), Sample::File(p))),
            fingers: fingers
                .iter()
                .filter(|_| wanted.fingers)
                .map(|(pos, p)| {
                    (
                        *pos,
                        format!("finger_{}", pos.code()),
                        Sample::File(p.clone()),
                    )
                })
                .collect(),
            skipped: Vec::new(),
        }),
        Biometrics::Nist { path, .. } => {
            let t = read_transaction(path).map_err(|e| vec![(String::new(), format!("{e:#}"))])?;
            nist_samples(transaction.insert(t), path, wanted)
        }
    }
}

/// A finger template from a decoded grey image at a resolution.
fn finger_from_image(image: &GreyImage, ppi: Option<f32>) -> Result<FingerTemplate> {
    Ok(FingerExtractor::default().extract(image, ppi)?.template)
}

/// The template of one finger sample.
fn finger_sample(
    position: FingerPosition,
    sample: &Sample<'_>,
    default_ppi: Option<f32>,
) -> Result<Vec<NewTemplate>> {
    let (minutiae, source) = match sample {
        Sample::File(path) => {
            return Ok(crate::finger::finger_templates(&[(position, path.clone())], default_ppi)?.0)
        }
        Sample::Encoded { bytes, source, ppi } => {
            let img = huella_engine::decode(bytes, &Limits::default())
                .context("cannot decode the finger image")?;
            let ppi = ppi.or(default_ppi).or(img.ppi());
            (finger_from_image(&img.to_grey(), ppi)?, Some(source))
        }
        Sample::Grey { image, source, ppi } => {
            if u64::from(image.width()) * u64::from(image.height()) > Limits::default().max_pixels()
            {
                bail!(
                    "a raw finger image of {} x {} pixels is too large",
                    image.width(),
                    image.height()
                );
            }
            (finger_from_image(image, ppi.or(default_ppi))?, Some(source))
        }
        Sample::Minutiae(t) => (t.clone(), None),
    };
    Ok(vec![NewTemplate {
        template: huella_engine::finger_template(position, &minutiae)?,
        source: source.cloned(),
    }])
}

/// The template of the face sample.
fn face_sample(
    sample: &Sample<'_>,
    pipeline: &FacePipeline,
    policy: QualityPolicy,
) -> Result<NewTemplate> {
    match sample {
        Sample::File(path) => Ok(crate::face::face_template(pipeline, path, policy)?.0),
        Sample::Encoded { bytes, source, .. } => {
            let sample = huella_engine::face_sample(pipeline, bytes, policy)?;
            Ok(NewTemplate {
                template: sample.template,
                source: Some(source.clone()),
            })
        }
        Sample::Grey { .. } | Sample::Minutiae(_) => bail!("not a face image"),
    }
}

/// Re-extracts the sample a stored template came from when its source names a record of
/// a transaction file (`FILE#N`, as `--nist` records it), for `huella rescore`; `None`
/// when `source` is not such a reference. The new template's source carries the sha256
/// of the record's data as it is now, for the caller to compare.
pub(crate) fn transaction_template(
    source: &Path,
    modality: Modality,
    pipeline: Option<&FacePipeline>,
    policy: QualityPolicy,
    ppi: Option<f32>,
) -> Option<Result<NewTemplate>> {
    let text = source.to_str()?;
    let (file, index) = text.rsplit_once('#')?;
    let file = Path::new(file);
    if source.exists() || index.parse::<usize>().is_err() || !file.is_file() {
        return None;
    }
    let run = || -> Result<NewTemplate> {
        let t = read_transaction(file)?;
        let wanted = Use {
            face: modality == Modality::Face,
            fingers: modality != Modality::Face,
        };
        let samples = nist_samples(&t, file, wanted).map_err(|errors| {
            let reasons: Vec<String> = errors
                .into_iter()
                .map(|(f, r)| format!("{f}: {r}"))
                .collect();
            anyhow::anyhow!("{}: {}", file.display(), reasons.join("; "))
        })?;
        let is_this = |sample: &Sample<'_>| match sample {
            Sample::Encoded { source: s, .. } | Sample::Grey { source: s, .. } => s.path == text,
            Sample::File(_) | Sample::Minutiae(_) => false,
        };
        if let Some((_, sample)) = samples.face.as_ref().filter(|(_, s)| is_this(s)) {
            return face_sample(sample, pipeline.context("no face pipeline")?, policy);
        }
        for (position, _, sample) in &samples.fingers {
            if is_this(sample) && Modality::Finger(*position) == modality {
                let mut t = finger_sample(*position, sample, ppi)?;
                return t.pop().context("no finger template");
            }
        }
        bail!("{}: no {modality} sample in record {index}", file.display())
    };
    Some(run())
}

/// Decodes and extracts every biometric of a record (on a worker thread): the encounter
/// and the records skipped.
fn extract(
    record: &Record,
    cx: &Workers<'_>,
) -> Result<(NewEncounter, Vec<String>), Vec<ErrorRow>> {
    let row = |column: String, reason: String| ErrorRow {
        record_id: record.record_id.clone(),
        origin: record.origin.clone(),
        column,
        reason,
    };
    let mut transaction = None;
    let samples = samples_of(record, &mut transaction, cx.wanted)
        .map_err(|e| e.into_iter().map(|(c, r)| row(c, r)).collect::<Vec<_>>())?;
    let mut templates: Vec<NewTemplate> = Vec::new();
    let mut errors = Vec::new();
    if let (Some((label, sample)), Some(pipeline)) = (&samples.face, cx.pipeline) {
        match face_sample(sample, pipeline, cx.face_args.policy()) {
            Ok(t) => templates.push(t),
            Err(e) => errors.push(row(label.clone(), format!("{e:#}"))),
        }
    }
    for (position, label, sample) in &samples.fingers {
        match finger_sample(*position, sample, cx.ppi) {
            Ok(mut t) => templates.append(&mut t),
            Err(e) => errors.push(row(label.clone(), format!("{e:#}"))),
        }
    }
    if errors.is_empty() && templates.is_empty() {
        errors.push(row(
            String::new(),
            "no biometric: every face and finger record was skipped".into(),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((
        NewEncounter {
            subject: record.subject.clone(),
            captured_at_unix_ms: record.captured_at_unix_ms,
            location: record.location.clone(),
            operator: None,
            biographic: record.biographic.clone(),
            templates,
        },
        samples.skipped,
    ))
}

/// The errors file: a CSV written and flushed row by row.
struct ErrorsFile {
    out: csv::Writer<std::fs::File>,
    path: PathBuf,
    count: usize,
}

impl ErrorsFile {
    /// `where_column` names the second column: `line` (manifests) or `file`.
    fn create(path: &Path, header: [&str; 4]) -> Result<Self> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = csv::Writer::from_writer(file);
        out.write_record(header)?;
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
                .write_record([&r.record_id, &r.origin.to_string(), &r.column, &r.reason])
                .and_then(|()| self.out.flush().map_err(csv::Error::from))
                .with_context(|| format!("cannot write {}", self.path.display()))?;
        }
        // A record counts once however many of its cells failed.
        let mut origins: Vec<&Origin> = rows.iter().map(|r| &r.origin).collect();
        origins.dedup();
        self.count += origins.len();
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
    let pool = crate::input::thread_pool(args.threads)?;
    let threads = pool.current_num_threads();
    let (records, parse_errors, header, what, ignored) = match (&args.manifest, &args.nist) {
        (Some(manifest), None) => {
            let (records, errors) = read_manifest(manifest, wanted)?;
            let header = ["record_id", "line", "column", "reason"];
            (records, errors, header, "the manifest's records", None)
        }
        (None, Some(dir)) => {
            let (files, ignored) = list_nist_dir(dir)?;
            let (records, errors) = read_nist_dir(&files, wanted, &pool);
            let header = ["record_id", "file", "field", "reason"];
            (
                records,
                errors,
                header,
                "the transaction files",
                Some(ignored),
            )
        }
        _ => bail!("give --manifest FILE or --nist DIR"),
    };
    let engine = crate::open(&args.gallery)?;
    let has_fingers = {
        let finger = format!("finger:{}", huella_engine::finger_model());
        engine.stats()?.indexes.iter().any(|i| i.model == finger)
    };
    let mut errors = ErrorsFile::create(&args.errors, header)?;
    errors.write(&parse_errors)?;

    let total_rows = records.len() + errors.count;
    let mut pending = Vec::with_capacity(records.len());
    let mut skipped = 0usize;
    for record in records {
        if is_done(engine.gallery(), &record)? {
            tracing::debug!(record = %record.record_id, "already ingested");
            skipped += 1;
        } else {
            pending.push(record);
        }
    }
    let needs_face = pending.iter().any(|r| r.biometrics.has_face());
    let needs_fingers = pending.iter().any(|r| r.biometrics.has_fingers());
    let g = args.gallery.gallery.display();
    if needs_fingers && !has_fingers {
        bail!(
            "the records have fingers but gallery {g} was created without fingers \
             (create it with `huella init --gallery G --fingers ...`, or pass --face-only)"
        );
    }
    let pipeline = if needs_face {
        let pipeline = face_args.pipeline()?;
        let model = huella_engine::face_model(&pipeline);
        if !engine.models().contains(&model) {
            let held: Vec<String> = engine.models().iter().map(|m| m.to_string()).collect();
            bail!(
                "the records have face images but gallery {g} has no face model {model} \
                 (it holds [{}]); create it with `huella init --gallery G --model {model}`, \
                 or pass --fingers-only",
                held.join(", ")
            );
        }
        Some(pipeline)
    } else {
        None
    };

    let opts = IdentifyOptions {
        max_candidates: args.max_candidates,
        threshold: args.threshold,
        ..IdentifyOptions::default()
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
    let cx = Workers {
        pipeline: pipeline.as_deref(),
        face_args,
        ppi: args.ppi,
        wanted,
    };
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel(threads * 4);
        let (pending, stop, cx) = (&pending, &stop, &cx);
        let pool = &pool;
        scope.spawn(move || {
            pool.install(|| {
                pending.par_iter().for_each_with(tx, |tx, record| {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let result = extract(record, cx);
                    // The receiver is gone only when the run stopped.
                    let _ = tx.send((record, result));
                })
            })
        });
        for (record, result) in rx {
            bar.inc(1);
            let (encounter, skipped_records) = match result {
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
                    let mut line = record.origin.json();
                    line["record_id"] = record.record_id.clone().into();
                    line["encounter"] = serde_json::to_value(enrolment.encounter.id)?;
                    line["candidates"] = serde_json::to_value(&enrolment.candidates)?;
                    if !skipped_records.is_empty() {
                        line["skipped"] = skipped_records.into();
                    }
                    let mut out = stdout.lock();
                    writeln!(out, "{line}")?;
                    out.flush()?;
                }
                Err(e) if is_fatal(&e) => {
                    stop.store(true, Ordering::Relaxed);
                    fatal = Some(anyhow::Error::new(e).context(format!(
                        "the gallery cannot take more records (stopped at the record {}; \
                         the {ingested} records ingested by this run are stored, \
                         rerun to continue)",
                        record.origin.place()
                    )));
                    break;
                }
                Err(e) => {
                    errors.write(&[ErrorRow {
                        record_id: record.record_id.clone(),
                        origin: record.origin.clone(),
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
    let mut summary = serde_json::json!({
        "rows": total_rows,
        "ingested": ingested,
        "already_ingested": skipped,
        "failed": errors.count,
        "threads": threads,
        "seconds": elapsed,
        "records_per_second": if elapsed > 0.0 { ingested as f64 / elapsed } else { 0.0 },
        "errors_file": args.errors.display().to_string(),
    });
    if let Some(ignored) = ignored {
        summary["files_ignored"] = ignored.into();
    }
    crate::print_json(&serde_json::json!({ "summary": summary }))?;
    if let Some(e) = fatal {
        return Err(e);
    }
    if errors.count > 0 {
        bail!(
            "{} of {what} failed; see {}",
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
        let Biometrics::Files { face, .. } = &row.biometrics else {
            panic!("a manifest row names files")
        };
        assert_eq!(face.as_deref(), Some(Path::new("dir/a.jpg")));
        assert_eq!(row.biographic["record_id"], "R2");
        assert_eq!(row.origin, Origin::Line(4));
    }

    #[test]
    fn transaction_dates_and_folders() {
        assert_eq!(nist_date("19700102"), Some(86_400_000));
        for bad in ["1970-01-02", "19701302", "", "2026112"] {
            assert_eq!(nist_date(bad), None, "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.AN2", "a.eft", "notes.txt", "c.nist"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.an2")).unwrap();
        let (files, ignored) = list_nist_dir(dir.path()).unwrap();
        let names: Vec<String> = files.iter().map(|p| file_name(p)).collect();
        assert_eq!(names, ["a.eft", "b.AN2", "c.nist"]);
        assert_eq!(ignored, 2);
    }
}
