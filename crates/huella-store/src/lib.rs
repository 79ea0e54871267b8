//! The Huella gallery store: subjects, their encounters and their biometric templates,
//! on disk, crash-safe. It is the engine's source of truth; search indexes are derived
//! from it and can always be rebuilt from it ([`Gallery::for_each_template`]) or
//! brought up to date by replaying its change log ([`Gallery::changes_since`]).
//!
//! ```
//! use huella_core::{AlgorithmId, Embedding, Modality, SubjectId, Template};
//! use huella_store::{Change, Gallery, NewEncounter, NewTemplate};
//! use std::collections::BTreeMap;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let settings = BTreeMap::from([("face.algorithm".to_string(), "demo@1".to_string())]);
//! let gallery = Gallery::create(&dir.path().join("gallery"), settings)?;
//!
//! let face = Template::from_embedding(
//!     Modality::Face,
//!     AlgorithmId::new("demo", "1")?,
//!     Embedding::new(vec![0.6, 0.8])?,
//! );
//! let stored = gallery.add_encounter(NewEncounter {
//!     subject: SubjectId::new("CASE-0001")?,
//!     captured_at_unix_ms: 1_767_225_600_000,
//!     location: Some("Terminal 2".into()),
//!     operator: None,
//!     biographic: BTreeMap::from([("nationality".to_string(), "XX".to_string())]),
//!     templates: vec![NewTemplate { template: face, source: None }],
//! })?; // durable once this returns
//!
//! let owners = gallery.templates_meta(&stored.templates)?;
//! assert_eq!(owners[0].as_ref().map(|o| o.encounter), Some(stored.id));
//! assert_eq!(gallery.changes_since(0)?, Some(vec![Change::Added(stored.templates[0])]));
//! drop(gallery);
//!
//! let reopened = Gallery::open(&dir.path().join("gallery"))?;
//! assert_eq!(reopened.stats()?.templates, 1);
//! assert_eq!(reopened.info()?.settings["face.algorithm"], "demo@1");
//! # Ok(()) }
//! ```
//!
//! # Storage engine: why redb
//!
//! A gallery is one directory holding one [redb](https://docs.rs/redb) file,
//! `gallery.redb`. redb was chosen over SQLite because it is pure Rust (no C
//! toolchain to cross-compile for border-post hardware, and no `unsafe` FFI surface in
//! our dependency tree beyond redb's own audited code), it gives ACID transactions whose
//! commit fsyncs by default (`Durability::Immediate`), its copy-on-write B-trees keep
//! two commit slots with checksums so a torn write rolls back to the last commit
//! instead of corrupting the file, and its tables are typed (`u64` keys for ids,
//! `(&str, u64)` for the subject index), so no SQL text or schema migration layer sits
//! between the engine and its data. Many readers run concurrently on MVCC snapshots
//! while redb serialises writers, which is the engine's access pattern: many searches,
//! few enrolments.
//!
//! Every write commits with `Durability::Immediate` and redb's two-phase commit (one
//! extra fsync, and the active commit slot never depends on a checksum). After an
//! unclean shutdown redb's repair walks the file and verifies checksums on the next
//! open, which takes time proportional to the gallery size; redb's `quick_repair`
//! would make that instant at the cost of slower commits and is not enabled.
//!
//! redb asserts (panics) on some kinds of file damage instead of returning an error;
//! the store catches those panics and reports [`StoreError::Corrupt`], so a damaged
//! gallery never takes a server thread down (this needs `panic = "unwind"`, the
//! default).
//!
//! # Records: why bincode
//!
//! Records are serde structs encoded with bincode 2 (standard configuration). Against
//! JSON: f32 embedding components are stored as 4 exact bytes instead of ~10 characters
//! of decimal text (3x smaller and bit-exact without relying on float printing), and
//! encoding is much faster. Every decode has a size limit (4 MiB), so a damaged length
//! prefix cannot request a huge allocation, and any record that fails to decode, or
//! leaves trailing bytes, is reported as [`StoreError::Corrupt`], never a panic. The
//! cost is that bincode is not self-describing: any change to a record layout needs a
//! new [`FORMAT_VERSION`]. Decoding goes through the core types' serde validation
//! (embeddings re-checked, subject ids re-validated).
//!
//! # Tables (format version 1)
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `format_version`, `created_at`, `settings`, `counters` | raw `u32` LE for the version (readable by any release), bincode for the rest; counters hold the next ids, the generation and the change-log floor |
//! | `subjects` | subject id | number of encounters |
//! | `subject_encounters` | (subject id, encounter id) | `()` |
//! | `encounters` | encounter id | subject, capture time, location, operator, biographic fields, template ids |
//! | `templates` | template id | encounter id, [`huella_core::Template`], source image |
//! | `template_owners` | template id | [`TemplateOwner`]: subject, encounter, modality (no payload, so search hits resolve without decoding templates) |
//! | `modality_counts` | modality text | number of templates |
//! | `changes` | generation | the template ids added or removed by that transaction |
//! | `merges` | generation | merge audit: when, from, into, encounters moved |
//!
//! Ids start at 1 and come from counters in `meta` that only grow, so an id is never
//! reused, even after deletes. Every write method is one transaction that bumps the
//! generation.
//!
//! # Model upgrades
//!
//! [`Gallery::replace_templates`] swaps the payload and algorithm of stored templates
//! (re-extracted from their source images by a newer model) and updates settings (the
//! configured model, a rescore marker) in the same transaction. Ids, encounters,
//! owners and source references stay; the modality may not change. Each replacement is
//! logged as `Removed(id)` then `Added(id)`, which an index replaying the log (it
//! re-reads the template as it now is) handles like any other change, and which a
//! release that predates replacements reads too: the on-disk layout is unchanged, so
//! the format stays version 1. Being one fsynced transaction, a batch is either wholly
//! replaced or not at all after a crash, so a caller that skips templates already at
//! the new algorithm can resume an interrupted upgrade without losing or redoing any.
//!
//! # Privacy
//!
//! The store does no logging, and error messages name tables, fields and ids, never
//! biographic values or template bytes.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;
mod error;
mod gallery;
mod model;

pub use error::StoreError;
pub use gallery::{Gallery, FORMAT_VERSION, GALLERY_FILE, MAX_REPLACEMENTS, MAX_SETTINGS};
pub use model::{
    Change, ChangeLog, GalleryInfo, GalleryStats, MergeOutcome, MergeRecord, NewEncounter,
    NewTemplate, SourceImage, StoredEncounter, StoredTemplate, TemplateOwner,
    MAX_BIOGRAPHIC_FIELDS, MAX_BIOGRAPHIC_KEY_CHARS, MAX_BIOGRAPHIC_VALUE_CHARS, MAX_LABEL_CHARS,
    MAX_SOURCE_PATH_CHARS, MAX_TEMPLATES_PER_ENCOUNTER,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gallery_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Gallery>();
    }
}
