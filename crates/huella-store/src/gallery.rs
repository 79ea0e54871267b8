//! The gallery: one redb database file in one directory.

use crate::codec::{decode, encode};
use crate::model::{
    Change, ChangeLog, GalleryInfo, GalleryStats, MergeOutcome, MergeRecord, NewEncounter,
    SourceImage, StoredEncounter, StoredTemplate, TemplateOwner,
};
use crate::StoreError;
use huella_core::{EncounterId, SubjectId, Template, TemplateId};
use redb::{
    Database, Durability, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The on-disk format version this release writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// Name of the database file inside a gallery directory.
pub const GALLERY_FILE: &str = "gallery.redb";

/// Most settings a gallery may carry; keys 1-64 characters, values up to 1024.
pub const MAX_SETTINGS: usize = 256;

/// Most templates one [`Gallery::replace_templates`] call may replace.
pub const MAX_REPLACEMENTS: usize = 65_536;

// Table layout, format version 1. Changing a table's name, key or value type, or the
// layout of a record, requires a new FORMAT_VERSION and a fixture test of the old one.
//
// meta:               "format_version" -> u32 little endian (raw, readable by any
//                     future release); "created_at" -> i64; "settings" -> map;
//                     "counters" -> Counters                       (bincode)
// subjects:           subject id -> number of encounters
// subject_encounters: (subject id, encounter id) -> ()
// encounters:         encounter id -> EncounterRecord               (bincode)
// templates:          template id -> TemplateRecord (payload)       (bincode)
// template_owners:    template id -> TemplateOwner (no payload)     (bincode)
// modality_counts:    modality text -> number of templates
// changes:            generation -> Vec<Change>                     (bincode)
// merges:             generation -> MergeAudit                      (bincode)
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const SUBJECTS: TableDefinition<&str, u64> = TableDefinition::new("subjects");
const SUBJECT_ENCOUNTERS: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("subject_encounters");
const ENCOUNTERS: TableDefinition<u64, &[u8]> = TableDefinition::new("encounters");
const TEMPLATES: TableDefinition<u64, &[u8]> = TableDefinition::new("templates");
const OWNERS: TableDefinition<u64, &[u8]> = TableDefinition::new("template_owners");
const MODALITY_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("modality_counts");
const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("changes");
const MERGES: TableDefinition<u64, &[u8]> = TableDefinition::new("merges");

const KEY_FORMAT: &str = "format_version";
const KEY_CREATED: &str = "created_at";
const KEY_SETTINGS: &str = "settings";
const KEY_COUNTERS: &str = "counters";

/// Allocation state, rewritten by every write transaction.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Counters {
    /// The next encounter id to hand out (ids start at 1).
    next_encounter: u64,
    /// The next template id to hand out (ids start at 1).
    next_template: u64,
    /// Number of committed write transactions since creation.
    generation: u64,
    /// The change log holds every generation above this one.
    log_floor: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct EncounterRecord {
    subject: SubjectId,
    captured_at_unix_ms: i64,
    location: Option<String>,
    operator: Option<String>,
    biographic: BTreeMap<String, String>,
    templates: Vec<TemplateId>,
}

/// Written by reference, read back as [`TemplateRecord`]: same fields, same order.
#[derive(Serialize)]
struct TemplateRecordRef<'a> {
    encounter: EncounterId,
    template: &'a Template,
    source: &'a Option<SourceImage>,
}

#[derive(Deserialize)]
struct TemplateRecord {
    encounter: EncounterId,
    template: Template,
    source: Option<SourceImage>,
}

#[derive(Serialize, Deserialize)]
struct MergeAudit {
    at_unix_ms: i64,
    from: SubjectId,
    into: SubjectId,
    moved_encounters: Vec<EncounterId>,
}

/// Map redb errors to [`StoreError`] with the gallery file as context.
/// Whether templates are being added to or removed from the per-modality counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Adjust {
    Add,
    Subtract,
}

/// Apply per-modality template count changes inside a write transaction. A count that
/// would fall below zero means the table disagrees with the templates: `Corrupt`. A count
/// that reaches zero is removed, so the table only lists modalities present.
fn adjust_modality_counts(
    txn: &WriteTransaction,
    f: &Path,
    per_modality: BTreeMap<String, u64>,
    adjust: Adjust,
) -> Result<(), StoreError> {
    let mut counts = txn.open_table(MODALITY_COUNTS).ctx(f)?;
    for (m, k) in per_modality {
        let old = counts.get(m.as_str()).ctx(f)?.map_or(0, |g| g.value());
        let new = match adjust {
            Adjust::Add => old + k,
            Adjust::Subtract => old.checked_sub(k).ok_or_else(|| {
                StoreError::corrupt(format!(
                    "modality_counts[{m}] below the templates it counts"
                ))
            })?,
        };
        if new == 0 {
            counts.remove(m.as_str()).ctx(f)?;
        } else {
            counts.insert(m.as_str(), new).ctx(f)?;
        }
    }
    Ok(())
}

trait Ctx<T> {
    fn ctx(self, file: &Path) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> Ctx<T> for Result<T, E> {
    fn ctx(self, file: &Path) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::from_redb(e, file))
    }
}

/// Run `f`, turning a panic into [`StoreError::Corrupt`].
///
/// redb asserts on some inconsistencies of a damaged file (a header that promises more
/// bytes than the file holds, for instance) instead of returning an error; a gallery
/// that fails such a check is corrupt, and the caller (a server handling many
/// requests) must get a typed error, not a crashed thread. redb's own state stays
/// valid for other transactions: a panicking read only drops its snapshot. With
/// `panic = "abort"` this shield does nothing.
fn shielded<T>(f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(StoreError::corrupt(format!(
            "the database engine failed an internal check: {message}"
        )))
    })
}

fn now_unix_ms() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn subject_from_key(key: &str) -> Result<SubjectId, StoreError> {
    SubjectId::new(key).map_err(|e| StoreError::corrupt(format!("subjects: bad key: {e}")))
}

fn check_settings(settings: &BTreeMap<String, String>) -> Result<(), StoreError> {
    if settings.len() > MAX_SETTINGS {
        return Err(StoreError::bad(
            "settings",
            format!("{} entries, at most {MAX_SETTINGS} allowed", settings.len()),
        ));
    }
    for (k, v) in settings {
        let (kn, vn) = (k.chars().count(), v.chars().count());
        if kn == 0 || kn > 64 || vn > 1024 {
            return Err(StoreError::bad(
                "settings",
                format!("key {k:?}: keys must be 1-64 characters and values at most 1024"),
            ));
        }
    }
    Ok(())
}

/// A gallery of subjects, their encounters and their templates: the engine's source of
/// truth. See the [crate docs](crate) for the design.
///
/// `Gallery` is `Send + Sync`: share it in an `Arc`. Readers run concurrently on
/// consistent snapshots; write transactions are serialised by redb, and every write
/// method is one transaction that is durable (fsynced) when it returns `Ok`.
pub struct Gallery {
    /// Always `Some` until dropped; an `Option` so that `Drop` can shield redb's own
    /// drop (which commits allocator state and asserts on a damaged file).
    db: Option<Database>,
    file: PathBuf,
}

impl Drop for Gallery {
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            // A damaged file can make redb's drop panic; the damage is reported by the
            // next open. (A panic while already unwinding would still abort.)
            let _ = catch_unwind(AssertUnwindSafe(move || drop(db)));
        }
    }
}

impl std::fmt::Debug for Gallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gallery")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl Gallery {
    /// Create a new, empty gallery in `dir` (created if needed) with the engine's
    /// settings.
    ///
    /// Errors: [`StoreError::AlreadyExists`] when `dir` already holds a gallery,
    /// [`StoreError::BadInput`] for oversized settings, [`StoreError::Io`].
    pub fn create(dir: &Path, settings: BTreeMap<String, String>) -> Result<Gallery, StoreError> {
        check_settings(&settings)?;
        fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let file = dir.join(GALLERY_FILE);
        // create_new makes the existence check and the creation one atomic step.
        let handle = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&file)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    StoreError::AlreadyExists { path: file.clone() }
                }
                _ => StoreError::Io {
                    path: file.clone(),
                    source,
                },
            })?;
        let result = shielded(|| {
            let db = Database::builder().create_file(handle).ctx(&file)?;
            let gallery = Gallery {
                db: Some(db),
                file: file.clone(),
            };
            gallery.initialise(settings)?;
            Ok(gallery)
        });
        if result.is_err() {
            // Best effort: a half-made gallery would otherwise block a retry.
            let _ = fs::remove_file(&file);
        }
        result
    }

    fn initialise(&self, settings: BTreeMap<String, String>) -> Result<(), StoreError> {
        let f = &self.file;
        let mut txn = self.db()?.begin_write().ctx(f)?;
        txn.set_durability(Durability::Immediate);
        txn.set_two_phase_commit(true);
        {
            let mut meta = txn.open_table(META).ctx(f)?;
            meta.insert(KEY_FORMAT, FORMAT_VERSION.to_le_bytes().as_slice())
                .ctx(f)?;
            meta.insert(KEY_CREATED, encode(&now_unix_ms())?.as_slice())
                .ctx(f)?;
            meta.insert(KEY_SETTINGS, encode(&settings)?.as_slice())
                .ctx(f)?;
            let counters = Counters {
                next_encounter: 1,
                next_template: 1,
                generation: 0,
                log_floor: 0,
            };
            meta.insert(KEY_COUNTERS, encode(&counters)?.as_slice())
                .ctx(f)?;
            txn.open_table(SUBJECTS).ctx(f)?;
            txn.open_table(SUBJECT_ENCOUNTERS).ctx(f)?;
            txn.open_table(ENCOUNTERS).ctx(f)?;
            txn.open_table(TEMPLATES).ctx(f)?;
            txn.open_table(OWNERS).ctx(f)?;
            txn.open_table(MODALITY_COUNTS).ctx(f)?;
            txn.open_table(CHANGES).ctx(f)?;
            txn.open_table(MERGES).ctx(f)?;
        }
        txn.commit().ctx(f)
    }

    /// Open the gallery in `dir`.
    ///
    /// Errors: [`StoreError::NotFound`] when `dir` holds no gallery,
    /// [`StoreError::UnsupportedVersion`] for a gallery written by a newer release,
    /// [`StoreError::Corrupt`] for a damaged one, [`StoreError::AlreadyOpen`] when it
    /// is open elsewhere. redb repairs the file after an unclean shutdown (rolling back
    /// to the last committed transaction) before this returns.
    pub fn open(dir: &Path) -> Result<Gallery, StoreError> {
        shielded(|| {
            let file = dir.join(GALLERY_FILE);
            match fs::metadata(&file) {
                Ok(m) if m.is_file() => {}
                Ok(_) => {
                    return Err(StoreError::corrupt(format!(
                        "{} is not a file",
                        file.display()
                    )))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(StoreError::NotFound {
                        path: dir.to_path_buf(),
                    })
                }
                Err(source) => return Err(StoreError::Io { path: file, source }),
            }
            let db = Database::builder().open(&file).ctx(&file)?;
            let gallery = Gallery { db: Some(db), file };
            let txn = gallery.read()?;
            gallery.check_format(&txn)?;
            gallery.counters(&txn)?;
            Ok(gallery)
        })
    }

    /// The gallery file (`<dir>/gallery.redb`).
    pub fn path(&self) -> &Path {
        &self.file
    }

    fn db(&self) -> Result<&Database, StoreError> {
        self.db
            .as_ref()
            .ok_or_else(|| StoreError::Database("the gallery is closed".into()))
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        self.db()?.begin_read().ctx(&self.file)
    }

    fn check_format(&self, txn: &ReadTransaction) -> Result<u32, StoreError> {
        let meta = txn.open_table(META).ctx(&self.file)?;
        let raw = meta
            .get(KEY_FORMAT)
            .ctx(&self.file)?
            .ok_or_else(|| StoreError::corrupt("meta: format_version is missing"))?;
        let bytes: [u8; 4] = raw
            .value()
            .try_into()
            .map_err(|_| StoreError::corrupt("meta: format_version is not 4 bytes"))?;
        match u32::from_le_bytes(bytes) {
            0 => Err(StoreError::corrupt("meta: format_version is 0")),
            v if v > FORMAT_VERSION => Err(StoreError::UnsupportedVersion {
                found: v,
                supported: FORMAT_VERSION,
            }),
            v => Ok(v),
        }
    }

    fn meta_value<T: serde::de::DeserializeOwned>(
        &self,
        meta: &impl ReadableTable<&'static str, &'static [u8]>,
        key: &'static str,
    ) -> Result<T, StoreError> {
        let raw = meta
            .get(key)
            .ctx(&self.file)?
            .ok_or_else(|| StoreError::corrupt(format!("meta: {key} is missing")))?;
        decode(raw.value(), || format!("meta: {key}"))
    }

    fn counters(&self, txn: &ReadTransaction) -> Result<Counters, StoreError> {
        let meta = txn.open_table(META).ctx(&self.file)?;
        self.meta_value(&meta, KEY_COUNTERS)
    }

    /// Run `body` in one write transaction; the generation is bumped before `body`
    /// runs (so `body` sees the generation it commits as) and the counters are saved.
    /// Nothing is written if `body` fails.
    fn write<R>(
        &self,
        body: impl FnOnce(&WriteTransaction, &mut Counters) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let f = &self.file;
        let mut txn = self.db()?.begin_write().ctx(f)?;
        // Immediate is redb's default; stated so a change of default cannot weaken the
        // "durable when Ok" promise. Two-phase commit costs one more fsync per write and
        // makes the commit slot valid without trusting a checksum (redb's defence
        // against crafted partial commits; enrolment data comes from outside).
        txn.set_durability(Durability::Immediate);
        txn.set_two_phase_commit(true);
        let mut counters: Counters = {
            let meta = txn.open_table(META).ctx(f)?;
            self.meta_value(&meta, KEY_COUNTERS)?
        };
        counters.generation = counters
            .generation
            .checked_add(1)
            .ok_or_else(|| StoreError::corrupt("meta: generation overflow"))?;
        // `meta` is closed while `body` runs, so that `body` may open it (settings).
        let result = body(&txn, &mut counters)?;
        txn.open_table(META)
            .ctx(f)?
            .insert(KEY_COUNTERS, encode(&counters)?.as_slice())
            .ctx(f)?;
        txn.commit().ctx(f)?;
        Ok(result)
    }

    /// Format version, creation time and settings.
    pub fn info(&self) -> Result<GalleryInfo, StoreError> {
        shielded(|| {
            let txn = self.read()?;
            let format_version = self.check_format(&txn)?;
            let meta = txn.open_table(META).ctx(&self.file)?;
            Ok(GalleryInfo {
                format_version,
                created_at_unix_ms: self.meta_value(&meta, KEY_CREATED)?,
                settings: self.meta_value(&meta, KEY_SETTINGS)?,
            })
        })
    }

    /// Enrol one encounter with its templates in one ACID transaction, durable when
    /// this returns `Ok`. Creates the subject on its first encounter. Assigns the
    /// encounter id and the template ids (in the order given), all greater than any id
    /// ever assigned before in this gallery.
    ///
    /// Errors: [`StoreError::BadInput`] when a limit of [`NewEncounter`] is exceeded.
    pub fn add_encounter(&self, e: NewEncounter) -> Result<StoredEncounter, StoreError> {
        shielded(|| {
            e.validate()?;
            let f = &self.file;
            self.write(|txn, counters| {
                let id = EncounterId(counters.next_encounter);
                counters.next_encounter =
                    id.0.checked_add(1)
                        .ok_or_else(|| StoreError::corrupt("meta: encounter id overflow"))?;
                let first_template = counters.next_template;
                let n = e.templates.len() as u64;
                counters.next_template = first_template
                    .checked_add(n)
                    .ok_or_else(|| StoreError::corrupt("meta: template id overflow"))?;
                let template_ids: Vec<TemplateId> = (first_template..first_template + n)
                    .map(TemplateId)
                    .collect();

                let mut templates = txn.open_table(TEMPLATES).ctx(f)?;
                let mut owners = txn.open_table(OWNERS).ctx(f)?;
                let mut per_modality: BTreeMap<String, u64> = BTreeMap::new();
                for (tid, t) in template_ids.iter().zip(&e.templates) {
                    let record = TemplateRecordRef {
                        encounter: id,
                        template: &t.template,
                        source: &t.source,
                    };
                    templates
                        .insert(tid.0, encode(&record)?.as_slice())
                        .ctx(f)?;
                    let owner = TemplateOwner {
                        subject: e.subject.clone(),
                        encounter: id,
                        modality: t.template.modality(),
                    };
                    owners.insert(tid.0, encode(&owner)?.as_slice()).ctx(f)?;
                    *per_modality.entry(owner.modality.to_string()).or_default() += 1;
                }
                adjust_modality_counts(txn, f, per_modality, Adjust::Add)?;

                let record = EncounterRecord {
                    subject: e.subject,
                    captured_at_unix_ms: e.captured_at_unix_ms,
                    location: e.location,
                    operator: e.operator,
                    biographic: e.biographic,
                    templates: template_ids,
                };
                txn.open_table(ENCOUNTERS)
                    .ctx(f)?
                    .insert(id.0, encode(&record)?.as_slice())
                    .ctx(f)?;
                let subject = record.subject.as_str();
                txn.open_table(SUBJECT_ENCOUNTERS)
                    .ctx(f)?
                    .insert((subject, id.0), ())
                    .ctx(f)?;
                let mut subjects = txn.open_table(SUBJECTS).ctx(f)?;
                let old = subjects
                    .get(subject)
                    .ctx(f)?
                    .map(|g| g.value())
                    .unwrap_or(0);
                subjects.insert(subject, old + 1).ctx(f)?;

                let changes: Vec<Change> =
                    record.templates.iter().map(|&t| Change::Added(t)).collect();
                txn.open_table(CHANGES)
                    .ctx(f)?
                    .insert(counters.generation, encode(&changes)?.as_slice())
                    .ctx(f)?;
                Ok(stored_encounter(id, record))
            })
        })
    }

    /// Replace the payload (and algorithm) of stored templates, for a model upgrade
    /// (re-extraction from the source images), and update settings, in one ACID
    /// transaction, durable when this returns `Ok`.
    ///
    /// Each template keeps its id, its encounter, its subject and its source image
    /// reference; only the [`Template`] changes, and it must keep its modality (so the
    /// per-modality counts and the owner records stay as they are). Each replacement is
    /// logged as [`Change::Removed`] followed by [`Change::Added`] of the same id in this
    /// transaction's generation, so an index replaying the log drops the old vector and
    /// re-reads the template as it now is (and skips it when it is no longer of its
    /// model). `settings` maps keys to `Some(value)` (set) or `None` (remove); the
    /// resulting settings must pass the same checks as at creation. Either everything
    /// here is committed or nothing is: a crash leaves the gallery as before the call.
    ///
    /// Errors: [`StoreError::UnknownTemplate`] for an id that is not stored (nothing is
    /// written); [`StoreError::BadInput`] for an id listed twice, more than
    /// [`MAX_REPLACEMENTS`] templates, a changed modality, or settings out of limits.
    pub fn replace_templates(
        &self,
        replacements: &[(TemplateId, Template)],
        settings: &BTreeMap<String, Option<String>>,
    ) -> Result<(), StoreError> {
        shielded(|| {
            if replacements.len() > MAX_REPLACEMENTS {
                return Err(StoreError::bad(
                    "replacements",
                    format!(
                        "{} templates, at most {MAX_REPLACEMENTS} per transaction",
                        replacements.len()
                    ),
                ));
            }
            let mut seen = BTreeSet::new();
            for (id, _) in replacements {
                if !seen.insert(id.0) {
                    return Err(StoreError::bad(
                        "replacements",
                        format!("template {id} is listed twice"),
                    ));
                }
            }
            let f = &self.file;
            self.write(|txn, counters| {
                let mut templates = txn.open_table(TEMPLATES).ctx(f)?;
                let mut changes = Vec::with_capacity(2 * replacements.len());
                for (id, new) in replacements {
                    let old: TemplateRecord = {
                        let raw = templates
                            .get(id.0)
                            .ctx(f)?
                            .ok_or(StoreError::UnknownTemplate(*id))?;
                        decode(raw.value(), || format!("templates[{id}]"))?
                    };
                    if old.template.modality() != new.modality() {
                        return Err(StoreError::bad(
                            "template",
                            format!(
                                "template {id} is {}; a replacement cannot make it {}",
                                old.template.modality(),
                                new.modality()
                            ),
                        ));
                    }
                    let record = TemplateRecordRef {
                        encounter: old.encounter,
                        template: new,
                        source: &old.source,
                    };
                    templates.insert(id.0, encode(&record)?.as_slice()).ctx(f)?;
                    changes.push(Change::Removed(*id));
                    changes.push(Change::Added(*id));
                }
                if !changes.is_empty() {
                    txn.open_table(CHANGES)
                        .ctx(f)?
                        .insert(counters.generation, encode(&changes)?.as_slice())
                        .ctx(f)?;
                }
                self.apply_settings(txn, settings)
            })
        })
    }

    /// Set (`Some`) or remove (`None`) settings in one durable transaction, for example
    /// the engine's configured models after a model upgrade. The resulting settings
    /// must pass the same checks as at creation ([`MAX_SETTINGS`]).
    pub fn update_settings(
        &self,
        settings: &BTreeMap<String, Option<String>>,
    ) -> Result<(), StoreError> {
        shielded(|| self.write(|txn, _| self.apply_settings(txn, settings)))
    }

    fn apply_settings(
        &self,
        txn: &WriteTransaction,
        update: &BTreeMap<String, Option<String>>,
    ) -> Result<(), StoreError> {
        if update.is_empty() {
            return Ok(());
        }
        let f = &self.file;
        let mut meta = txn.open_table(META).ctx(f)?;
        let mut settings: BTreeMap<String, String> = self.meta_value(&meta, KEY_SETTINGS)?;
        for (k, v) in update {
            match v {
                Some(v) => settings.insert(k.clone(), v.clone()),
                None => settings.remove(k),
            };
        }
        check_settings(&settings)?;
        meta.insert(KEY_SETTINGS, encode(&settings)?.as_slice())
            .ctx(f)?;
        Ok(())
    }

    /// One encounter, or `None` if there is no encounter with this id.
    pub fn encounter(&self, id: EncounterId) -> Result<Option<StoredEncounter>, StoreError> {
        shielded(|| {
            let txn = self.read()?;
            let table = txn.open_table(ENCOUNTERS).ctx(&self.file)?;
            let raw = table.get(id.0).ctx(&self.file)?;
            raw.map(|raw| {
                let record = decode(raw.value(), || format!("encounters[{id}]"))?;
                Ok(stored_encounter(id, record))
            })
            .transpose()
        })
    }

    /// One template with its payload, or `None` if there is no template with this id.
    pub fn template(&self, id: TemplateId) -> Result<Option<StoredTemplate>, StoreError> {
        shielded(|| {
            let txn = self.read()?;
            let templates = txn.open_table(TEMPLATES).ctx(&self.file)?;
            let Some(raw) = templates.get(id.0).ctx(&self.file)? else {
                return Ok(None);
            };
            let owners = txn.open_table(OWNERS).ctx(&self.file)?;
            let owner = owners
                .get(id.0)
                .ctx(&self.file)?
                .ok_or_else(|| StoreError::corrupt(format!("template_owners[{id}] is missing")))?;
            let owner: TemplateOwner = decode(owner.value(), || format!("template_owners[{id}]"))?;
            let record: TemplateRecord = decode(raw.value(), || format!("templates[{id}]"))?;
            stored_template(id, record, owner).map(Some)
        })
    }

    /// Owners of many templates at once, in the order asked, `None` for unknown ids.
    /// Reads only the compact owner table, never template payloads: this is the lookup
    /// behind every search hit.
    pub fn templates_meta(
        &self,
        ids: &[TemplateId],
    ) -> Result<Vec<Option<TemplateOwner>>, StoreError> {
        shielded(|| {
            let txn = self.read()?;
            let owners = txn.open_table(OWNERS).ctx(&self.file)?;
            ids.iter()
                .map(|id| {
                    owners
                        .get(id.0)
                        .ctx(&self.file)?
                        .map(|raw| decode(raw.value(), || format!("template_owners[{id}]")))
                        .transpose()
                })
                .collect()
        })
    }

    fn encounter_ids(
        &self,
        table: &impl ReadableTable<(&'static str, u64), ()>,
        subject: &SubjectId,
    ) -> Result<Vec<EncounterId>, StoreError> {
        let s = subject.as_str();
        table
            .range((s, 0u64)..=(s, u64::MAX))
            .ctx(&self.file)?
            .map(|entry| Ok(EncounterId(entry.ctx(&self.file)?.0.value().1)))
            .collect()
    }

    /// All encounters of a subject, oldest capture first (ties by encounter id); empty
    /// when the subject does not exist.
    pub fn subject_encounters(&self, s: &SubjectId) -> Result<Vec<StoredEncounter>, StoreError> {
        shielded(|| {
            let txn = self.read()?;
            let index = txn.open_table(SUBJECT_ENCOUNTERS).ctx(&self.file)?;
            let encounters = txn.open_table(ENCOUNTERS).ctx(&self.file)?;
            let mut out = Vec::new();
            for id in self.encounter_ids(&index, s)? {
                let raw = encounters.get(id.0).ctx(&self.file)?.ok_or_else(|| {
                    StoreError::corrupt(format!("subject_encounters names missing encounter {id}"))
                })?;
                out.push(stored_encounter(
                    id,
                    decode(raw.value(), || format!("encounters[{id}]"))?,
                ));
            }
            out.sort_by_key(|e| (e.captured_at_unix_ms, e.id));
            Ok(out)
        })
    }

    /// Whether the subject has at least one encounter.
    pub fn subject_exists(&self, s: &SubjectId) -> Result<bool, StoreError> {
        shielded(|| {
            let txn = self.read()?;
            let subjects = txn.open_table(SUBJECTS).ctx(&self.file)?;
            Ok(subjects.get(s.as_str()).ctx(&self.file)?.is_some())
        })
    }

    /// All subjects, in id order.
    pub fn subjects(&self) -> Result<Vec<SubjectId>, StoreError> {
        shielded(|| {
            let txn = self.read()?;
            let subjects = txn.open_table(SUBJECTS).ctx(&self.file)?;
            subjects
                .iter()
                .ctx(&self.file)?
                .map(|entry| subject_from_key(entry.ctx(&self.file)?.0.value()))
                .collect()
        })
    }

    /// Delete a subject with all its encounters and templates, in one transaction.
    /// Returns the removed template ids, ascending; they are logged as
    /// [`Change::Removed`] and never reassigned.
    ///
    /// Errors: [`StoreError::UnknownSubject`].
    pub fn delete_subject(&self, s: &SubjectId) -> Result<Vec<TemplateId>, StoreError> {
        shielded(|| {
            let f = &self.file;
            self.write(|txn, counters| {
                let mut index = txn.open_table(SUBJECT_ENCOUNTERS).ctx(f)?;
                let ids = self.encounter_ids(&index, s)?;
                if ids.is_empty() {
                    return Err(StoreError::UnknownSubject(s.clone()));
                }
                let mut encounters = txn.open_table(ENCOUNTERS).ctx(f)?;
                let mut templates = txn.open_table(TEMPLATES).ctx(f)?;
                let mut owners = txn.open_table(OWNERS).ctx(f)?;
                let mut removed = Vec::new();
                let mut per_modality: BTreeMap<String, u64> = BTreeMap::new();
                for id in ids {
                    let raw = encounters.remove(id.0).ctx(f)?.ok_or_else(|| {
                        StoreError::corrupt(format!(
                            "subject_encounters names missing encounter {id}"
                        ))
                    })?;
                    let record: EncounterRecord =
                        decode(raw.value(), || format!("encounters[{id}]"))?;
                    drop(raw);
                    for tid in record.templates {
                        templates.remove(tid.0).ctx(f)?;
                        let owner = owners.remove(tid.0).ctx(f)?.ok_or_else(|| {
                            StoreError::corrupt(format!("template_owners[{tid}] is missing"))
                        })?;
                        let owner: TemplateOwner =
                            decode(owner.value(), || format!("template_owners[{tid}]"))?;
                        *per_modality.entry(owner.modality.to_string()).or_default() += 1;
                        removed.push(tid);
                    }
                    index.remove((s.as_str(), id.0)).ctx(f)?;
                }
                adjust_modality_counts(txn, f, per_modality, Adjust::Subtract)?;
                txn.open_table(SUBJECTS).ctx(f)?.remove(s.as_str()).ctx(f)?;
                removed.sort_unstable();
                let changes: Vec<Change> = removed.iter().map(|&t| Change::Removed(t)).collect();
                txn.open_table(CHANGES)
                    .ctx(f)?
                    .insert(counters.generation, encode(&changes)?.as_slice())
                    .ctx(f)?;
                Ok(removed)
            })
        })
    }

    /// Move every encounter of `from` under `into`, in one transaction: encounter and
    /// template ids and histories are kept, `from` ceases to exist, and the merge is
    /// recorded in the audit table (see [`Gallery::merges`]). Template ids do not
    /// change, so the change log gets no entry; an index that maps template ids to
    /// subjects must re-read owners with [`Gallery::templates_meta`].
    ///
    /// Errors: [`StoreError::BadInput`] when `from == into`,
    /// [`StoreError::UnknownSubject`] when either does not exist.
    pub fn merge_subjects(
        &self,
        from: &SubjectId,
        into: &SubjectId,
    ) -> Result<MergeOutcome, StoreError> {
        shielded(|| {
            if from == into {
                return Err(StoreError::bad(
                    "into",
                    "a subject cannot be merged into itself",
                ));
            }
            let f = &self.file;
            self.write(|txn, counters| {
                let mut subjects = txn.open_table(SUBJECTS).ctx(f)?;
                let into_count = subjects
                    .get(into.as_str())
                    .ctx(f)?
                    .map(|g| g.value())
                    .ok_or_else(|| StoreError::UnknownSubject(into.clone()))?;
                let mut index = txn.open_table(SUBJECT_ENCOUNTERS).ctx(f)?;
                let moved = self.encounter_ids(&index, from)?;
                if moved.is_empty() {
                    return Err(StoreError::UnknownSubject(from.clone()));
                }
                let mut encounters = txn.open_table(ENCOUNTERS).ctx(f)?;
                let mut owners = txn.open_table(OWNERS).ctx(f)?;
                for &id in &moved {
                    let mut record: EncounterRecord = {
                        let raw = encounters.get(id.0).ctx(f)?.ok_or_else(|| {
                            StoreError::corrupt(format!(
                                "subject_encounters names missing encounter {id}"
                            ))
                        })?;
                        decode(raw.value(), || format!("encounters[{id}]"))?
                    };
                    record.subject = into.clone();
                    encounters
                        .insert(id.0, encode(&record)?.as_slice())
                        .ctx(f)?;
                    for tid in &record.templates {
                        let mut owner: TemplateOwner = {
                            let raw = owners.get(tid.0).ctx(f)?.ok_or_else(|| {
                                StoreError::corrupt(format!("template_owners[{tid}] is missing"))
                            })?;
                            decode(raw.value(), || format!("template_owners[{tid}]"))?
                        };
                        owner.subject = into.clone();
                        owners.insert(tid.0, encode(&owner)?.as_slice()).ctx(f)?;
                    }
                    index.remove((from.as_str(), id.0)).ctx(f)?;
                    index.insert((into.as_str(), id.0), ()).ctx(f)?;
                }
                subjects.remove(from.as_str()).ctx(f)?;
                subjects
                    .insert(into.as_str(), into_count + moved.len() as u64)
                    .ctx(f)?;
                let audit = MergeAudit {
                    at_unix_ms: now_unix_ms(),
                    from: from.clone(),
                    into: into.clone(),
                    moved_encounters: moved.clone(),
                };
                txn.open_table(MERGES)
                    .ctx(f)?
                    .insert(counters.generation, encode(&audit)?.as_slice())
                    .ctx(f)?;
                Ok(MergeOutcome {
                    moved_encounters: moved,
                })
            })
        })
    }

    /// The merge audit trail, oldest first.
    pub fn merges(&self) -> Result<Vec<MergeRecord>, StoreError> {
        shielded(|| {
            let txn = self.read()?;
            let merges = txn.open_table(MERGES).ctx(&self.file)?;
            merges
                .iter()
                .ctx(&self.file)?
                .map(|entry| {
                    let (k, v) = entry.ctx(&self.file)?;
                    let generation = k.value();
                    let a: MergeAudit = decode(v.value(), || format!("merges[{generation}]"))?;
                    Ok(MergeRecord {
                        generation,
                        at_unix_ms: a.at_unix_ms,
                        from: a.from,
                        into: a.into,
                        moved_encounters: a.moved_encounters,
                    })
                })
                .collect()
        })
    }

    /// Call `f` with every template, in template id order, from one consistent
    /// snapshot (writers are not blocked meanwhile). Stops at the first error, from
    /// `f` or from the store.
    pub fn for_each_template(
        &self,
        mut f: impl FnMut(StoredTemplate) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // A panic in `f` is the caller's and is resumed as is; only panics inside the
        // database engine become `Corrupt`.
        let mut caller_panic = None;
        let result = shielded(|| {
            let txn = self.read()?;
            self.for_each_template_in(
                &txn,
                &mut |t| match catch_unwind(AssertUnwindSafe(|| f(t))) {
                    Ok(r) => r,
                    Err(payload) => {
                        caller_panic = Some(payload);
                        Err(StoreError::Database("callback panicked".into()))
                    }
                },
            )
        });
        if let Some(payload) = caller_panic {
            resume_unwind(payload);
        }
        result
    }

    fn for_each_template_in(
        &self,
        txn: &ReadTransaction,
        f: &mut impl FnMut(StoredTemplate) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let file = &self.file;
        let templates = txn.open_table(TEMPLATES).ctx(file)?;
        let owners = txn.open_table(OWNERS).ctx(file)?;
        let mut owners_iter = owners.iter().ctx(file)?;
        for entry in templates.iter().ctx(file)? {
            let (k, v) = entry.ctx(file)?;
            let id = TemplateId(k.value());
            let (ok, ov) = owners_iter
                .next()
                .ok_or_else(|| StoreError::corrupt(format!("template_owners[{id}] is missing")))?
                .ctx(file)?;
            if ok.value() != id.0 {
                return Err(StoreError::corrupt(format!(
                    "templates and template_owners disagree at template {id}"
                )));
            }
            let owner: TemplateOwner = decode(ov.value(), || format!("template_owners[{id}]"))?;
            let record: TemplateRecord = decode(v.value(), || format!("templates[{id}]"))?;
            f(stored_template(id, record, owner)?)?;
        }
        if owners_iter.next().is_some() {
            return Err(StoreError::corrupt(
                "template_owners has entries without templates",
            ));
        }
        Ok(())
    }

    /// Number of committed write transactions since creation (0 for a new gallery).
    pub fn generation(&self) -> Result<u64, StoreError> {
        shielded(|| Ok(self.counters(&self.read()?)?.generation))
    }

    /// Template additions and removals committed after `generation`, oldest first.
    ///
    /// `None` when the log cannot bring that generation up to date: the part after it
    /// was pruned ([`Gallery::prune_changes`]), or `generation` is newer than this
    /// gallery's (the snapshot belongs to another gallery). Either way: rebuild.
    pub fn changes_since(&self, generation: u64) -> Result<Option<Vec<Change>>, StoreError> {
        shielded(|| Ok(self.change_log_since(generation)?.map(|log| log.changes)))
    }

    /// Like [`Gallery::changes_since`], also telling the generation the changes reach,
    /// read in the same snapshot: tag the updated index with `through_generation`.
    pub fn change_log_since(&self, generation: u64) -> Result<Option<ChangeLog>, StoreError> {
        shielded(|| {
            let txn = self.read()?;
            let counters = self.counters(&txn)?;
            if generation < counters.log_floor || generation > counters.generation {
                return Ok(None);
            }
            let table = txn.open_table(CHANGES).ctx(&self.file)?;
            let mut changes = Vec::new();
            for entry in table
                .range(generation.saturating_add(1)..)
                .ctx(&self.file)?
            {
                let (k, v) = entry.ctx(&self.file)?;
                let g = k.value();
                let batch: Vec<Change> = decode(v.value(), || format!("changes[{g}]"))?;
                changes.extend(batch);
            }
            Ok(Some(ChangeLog {
                through_generation: counters.generation,
                changes,
            }))
        })
    }

    /// Drop change-log entries up to and including `through` (typically the generation
    /// of the oldest index snapshot still in use). Afterwards `changes_since(g)` is
    /// `None` for every `g < through`. This is itself a write transaction.
    ///
    /// Errors: [`StoreError::BadInput`] when `through` is beyond the current generation.
    pub fn prune_changes(&self, through: u64) -> Result<(), StoreError> {
        shielded(|| {
            let f = &self.file;
            self.write(|txn, counters| {
                // `counters.generation` is already this transaction's generation.
                if through >= counters.generation {
                    return Err(StoreError::bad(
                        "through",
                        format!("generation {through} is not below {}", counters.generation),
                    ));
                }
                if through > counters.log_floor {
                    let mut table = txn.open_table(CHANGES).ctx(f)?;
                    let keys: Vec<u64> = table
                        .range(..=through)
                        .ctx(f)?
                        .map(|e| Ok(e.ctx(f)?.0.value()))
                        .collect::<Result<_, StoreError>>()?;
                    for k in keys {
                        table.remove(k).ctx(f)?;
                    }
                    counters.log_floor = through;
                }
                Ok(())
            })
        })
    }

    /// Counts and file size.
    pub fn stats(&self) -> Result<GalleryStats, StoreError> {
        shielded(|| self.stats_in(&self.read()?))
    }

    fn stats_in(&self, txn: &ReadTransaction) -> Result<GalleryStats, StoreError> {
        let f = &self.file;
        let counters = self.counters(txn)?;
        let counts = txn.open_table(MODALITY_COUNTS).ctx(f)?;
        let templates_per_modality = counts
            .iter()
            .ctx(f)?
            .map(|e| {
                let (k, v) = e.ctx(f)?;
                Ok((k.value().to_string(), v.value()))
            })
            .collect::<Result<_, StoreError>>()?;
        let file_size_bytes = fs::metadata(f)
            .map_err(|source| StoreError::Io {
                path: f.clone(),
                source,
            })?
            .len();
        Ok(GalleryStats {
            subjects: txn.open_table(SUBJECTS).ctx(f)?.len().ctx(f)?,
            encounters: txn.open_table(ENCOUNTERS).ctx(f)?.len().ctx(f)?,
            templates: txn.open_table(TEMPLATES).ctx(f)?.len().ctx(f)?,
            templates_per_modality,
            generation: counters.generation,
            file_size_bytes,
        })
    }

    /// Read and cross-check every table in one snapshot: every record decodes, every
    /// template has an owner and an encounter that lists it, every encounter is indexed
    /// under its subject, counts match, and no id reaches the next id to be assigned.
    /// Returns the stats on success and [`StoreError::Corrupt`] naming the first
    /// inconsistency otherwise. Reads the whole gallery: for `huella gallery check`
    /// and tests, not for every request.
    pub fn verify(&self) -> Result<GalleryStats, StoreError> {
        shielded(|| {
            let f = &self.file;
            let txn = self.read()?;
            self.check_format(&txn)?;
            let counters = self.counters(&txn)?;
            let bad = |m: String| StoreError::corrupt(m);

            // Encounters, and which templates they claim.
            let mut template_encounter: BTreeMap<u64, (EncounterId, SubjectId)> = BTreeMap::new();
            let mut per_subject: BTreeMap<SubjectId, BTreeSet<u64>> = BTreeMap::new();
            let encounters = txn.open_table(ENCOUNTERS).ctx(f)?;
            for entry in encounters.iter().ctx(f)? {
                let (k, v) = entry.ctx(f)?;
                let id = EncounterId(k.value());
                if id.0 == 0 || id.0 >= counters.next_encounter {
                    return Err(bad(format!(
                        "encounter {id} is not below next id {}",
                        counters.next_encounter
                    )));
                }
                let record: EncounterRecord = decode(v.value(), || format!("encounters[{id}]"))?;
                if record.templates.is_empty() {
                    return Err(bad(format!("encounter {id} has no templates")));
                }
                for t in &record.templates {
                    if template_encounter
                        .insert(t.0, (id, record.subject.clone()))
                        .is_some()
                    {
                        return Err(bad(format!("template {t} is claimed by two encounters")));
                    }
                }
                per_subject.entry(record.subject).or_default().insert(id.0);
            }

            // Templates and owners agree with each other and with the encounters.
            let mut modality_counts: BTreeMap<String, u64> = BTreeMap::new();
            let mut templates = 0u64;
            self.for_each_template_in(&txn, &mut |t| {
                templates += 1;
                if t.id.0 == 0 || t.id.0 >= counters.next_template {
                    return Err(bad(format!(
                        "template {} is not below next id {}",
                        t.id, counters.next_template
                    )));
                }
                match template_encounter.remove(&t.id.0) {
                    Some((e, s)) if e == t.encounter && s == t.subject => {}
                    _ => {
                        return Err(bad(format!(
                            "template {} disagrees with its encounter",
                            t.id
                        )))
                    }
                }
                *modality_counts
                    .entry(t.template.modality().to_string())
                    .or_default() += 1;
                Ok(())
            })?;
            if let Some(t) = template_encounter.keys().next() {
                return Err(bad(format!("an encounter lists missing template {t}")));
            }
            let counts = txn.open_table(MODALITY_COUNTS).ctx(f)?;
            let mut stored_counts = BTreeMap::new();
            for entry in counts.iter().ctx(f)? {
                let (k, v) = entry.ctx(f)?;
                stored_counts.insert(k.value().to_string(), v.value());
            }
            if stored_counts != modality_counts {
                return Err(bad("modality_counts disagree with the templates".into()));
            }

            // The subject index and subject counts.
            let index = txn.open_table(SUBJECT_ENCOUNTERS).ctx(f)?;
            let mut indexed: BTreeMap<SubjectId, BTreeSet<u64>> = BTreeMap::new();
            for entry in index.iter().ctx(f)? {
                let (k, _) = entry.ctx(f)?;
                let (s, e) = k.value();
                indexed.entry(subject_from_key(s)?).or_default().insert(e);
            }
            if indexed != per_subject {
                return Err(bad(
                    "subject_encounters disagrees with the encounters".into()
                ));
            }
            let subjects = txn.open_table(SUBJECTS).ctx(f)?;
            let mut subject_count = 0u64;
            for entry in subjects.iter().ctx(f)? {
                let (k, v) = entry.ctx(f)?;
                let s = subject_from_key(k.value())?;
                subject_count += 1;
                if per_subject.get(&s).map(|e| e.len() as u64) != Some(v.value()) {
                    return Err(bad(format!(
                        "subjects: wrong encounter count for subject #{subject_count}"
                    )));
                }
            }
            if subject_count != per_subject.len() as u64 {
                return Err(bad("subjects disagrees with the encounters".into()));
            }

            // Logs never run ahead of the generation.
            for (name, table) in [("changes", CHANGES), ("merges", MERGES)] {
                let t = txn.open_table(table).ctx(f)?;
                let last = t.last().ctx(f)?.map(|(k, _)| k.value());
                if last.is_some_and(|g| g > counters.generation) {
                    return Err(bad(format!(
                        "{name} has an entry after generation {}",
                        counters.generation
                    )));
                }
            }
            let changes = txn.open_table(CHANGES).ctx(f)?;
            let first = changes.first().ctx(f)?.map(|(k, _)| k.value());
            if first.is_some_and(|g| g <= counters.log_floor) {
                return Err(bad("changes has entries below its floor".into()));
            }
            let stats = self.stats_in(&txn)?;
            if stats.templates != templates {
                return Err(bad(
                    "templates table length disagrees with its entries".into()
                ));
            }
            Ok(stats)
        })
    }
}

fn stored_encounter(id: EncounterId, r: EncounterRecord) -> StoredEncounter {
    StoredEncounter {
        id,
        subject: r.subject,
        captured_at_unix_ms: r.captured_at_unix_ms,
        location: r.location,
        operator: r.operator,
        biographic: r.biographic,
        templates: r.templates,
    }
}

fn stored_template(
    id: TemplateId,
    r: TemplateRecord,
    owner: TemplateOwner,
) -> Result<StoredTemplate, StoreError> {
    if owner.encounter != r.encounter || owner.modality != r.template.modality() {
        return Err(StoreError::corrupt(format!(
            "template_owners[{id}] disagrees with templates[{id}]"
        )));
    }
    Ok(StoredTemplate {
        id,
        encounter: r.encounter,
        subject: owner.subject,
        template: r.template,
        source: r.source,
    })
}
