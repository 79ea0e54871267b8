//! The records callers exchange with the store, and their validation.

use crate::StoreError;
use huella_core::{EncounterId, Modality, SubjectId, Template, TemplateId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most templates one encounter may carry.
pub const MAX_TEMPLATES_PER_ENCOUNTER: usize = 64;
/// Most biographic fields one encounter may carry.
pub const MAX_BIOGRAPHIC_FIELDS: usize = 64;
/// Longest biographic key, in characters (keys are at least 1 character).
pub const MAX_BIOGRAPHIC_KEY_CHARS: usize = 64;
/// Longest biographic value, in characters.
pub const MAX_BIOGRAPHIC_VALUE_CHARS: usize = 1024;
/// Longest `location` or `operator`, in characters.
pub const MAX_LABEL_CHARS: usize = 256;
/// Longest source image path, in characters.
pub const MAX_SOURCE_PATH_CHARS: usize = 4096;

/// What a gallery records about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GalleryInfo {
    /// On-disk format version (see [`crate::FORMAT_VERSION`]).
    pub format_version: u32,
    /// When the gallery was created, milliseconds since the Unix epoch.
    pub created_at_unix_ms: i64,
    /// Free key/values stored by the engine at creation, e.g. `face.algorithm`.
    pub settings: BTreeMap<String, String>,
}

/// The image a template was extracted from, for audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceImage {
    /// Where the image was (1 to [`MAX_SOURCE_PATH_CHARS`] characters).
    pub path: String,
    /// SHA-256 of the image file: 64 lowercase hexadecimal digits.
    pub sha256: String,
}

/// One template to enrol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTemplate {
    /// The template.
    pub template: Template,
    /// The image it came from, if known.
    pub source: Option<SourceImage>,
}

/// An encounter to enrol: one capture session of one subject.
///
/// Limits: 1 to [`MAX_TEMPLATES_PER_ENCOUNTER`] templates (of any modalities and
/// algorithms); at most [`MAX_BIOGRAPHIC_FIELDS`] biographic fields with keys of 1 to
/// [`MAX_BIOGRAPHIC_KEY_CHARS`] and values of at most [`MAX_BIOGRAPHIC_VALUE_CHARS`]
/// characters; `location` and `operator` at most [`MAX_LABEL_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEncounter {
    /// Whom the encounter belongs to; created on first enrolment.
    pub subject: SubjectId,
    /// When the capture happened, milliseconds since the Unix epoch.
    pub captured_at_unix_ms: i64,
    /// Where (free text).
    pub location: Option<String>,
    /// Who captured it (free text).
    pub operator: Option<String>,
    /// Biographic fields (name, nationality, document number...).
    pub biographic: BTreeMap<String, String>,
    /// The templates extracted during the encounter.
    pub templates: Vec<NewTemplate>,
}

/// An encounter as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEncounter {
    /// Assigned by the store; never reused.
    pub id: EncounterId,
    /// The subject it belongs to now (changes on merge).
    pub subject: SubjectId,
    /// When the capture happened, milliseconds since the Unix epoch.
    pub captured_at_unix_ms: i64,
    /// Where.
    pub location: Option<String>,
    /// Who captured it.
    pub operator: Option<String>,
    /// Biographic fields.
    pub biographic: BTreeMap<String, String>,
    /// Its templates, in enrolment order.
    pub templates: Vec<TemplateId>,
}

/// A template as stored, with its owners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTemplate {
    /// Assigned by the store; never reused.
    pub id: TemplateId,
    /// The encounter it was captured in.
    pub encounter: EncounterId,
    /// The subject that encounter belongs to now.
    pub subject: SubjectId,
    /// The template.
    pub template: Template,
    /// The image it came from, if known.
    pub source: Option<SourceImage>,
}

/// Who a template belongs to, without its payload (for search hits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateOwner {
    /// The subject.
    pub subject: SubjectId,
    /// The encounter.
    pub encounter: EncounterId,
    /// The template's modality.
    pub modality: Modality,
}

/// One entry of the change log: a template that entered or left the gallery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// The template was enrolled.
    Added(TemplateId),
    /// The template was deleted.
    Removed(TemplateId),
}

/// The change log from some generation up to a later one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeLog {
    /// The generation these changes bring an index up to (the gallery's generation at
    /// the moment the log was read).
    pub through_generation: u64,
    /// The changes, oldest first.
    pub changes: Vec<Change>,
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeOutcome {
    /// The encounters that moved, ascending.
    pub moved_encounters: Vec<EncounterId>,
}

/// One entry of the merge audit table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRecord {
    /// The generation of the transaction that merged.
    pub generation: u64,
    /// When, milliseconds since the Unix epoch.
    pub at_unix_ms: i64,
    /// The subject that ceased to exist.
    pub from: SubjectId,
    /// The subject that received the encounters.
    pub into: SubjectId,
    /// The encounters moved.
    pub moved_encounters: Vec<EncounterId>,
}

/// Counts and sizes, for operators and the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GalleryStats {
    /// Number of subjects.
    pub subjects: u64,
    /// Number of encounters.
    pub encounters: u64,
    /// Number of templates.
    pub templates: u64,
    /// Templates per modality, keyed by the modality's text form (`face`, `finger:2`).
    pub templates_per_modality: BTreeMap<String, u64>,
    /// The gallery's generation.
    pub generation: u64,
    /// Size of `gallery.redb` in bytes.
    pub file_size_bytes: u64,
}

fn check_label(field: &'static str, v: &Option<String>) -> Result<(), StoreError> {
    if let Some(v) = v {
        let n = v.chars().count();
        if n > MAX_LABEL_CHARS {
            return Err(StoreError::bad(
                field,
                format!("{n} characters, at most {MAX_LABEL_CHARS} allowed"),
            ));
        }
    }
    Ok(())
}

fn check_source(index: usize, s: &SourceImage) -> Result<(), StoreError> {
    let n = s.path.chars().count();
    if n == 0 || n > MAX_SOURCE_PATH_CHARS {
        return Err(StoreError::bad(
            "source.path",
            format!("template {index}: {n} characters outside 1..={MAX_SOURCE_PATH_CHARS}"),
        ));
    }
    let hex = s.sha256.len() == 64
        && s.sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex {
        return Err(StoreError::bad(
            "source.sha256",
            format!("template {index}: not 64 lowercase hexadecimal digits"),
        ));
    }
    Ok(())
}

impl NewEncounter {
    /// Check every limit; the gallery calls this before opening a transaction.
    /// Error reasons name the field and the limit, never the rejected value.
    pub fn validate(&self) -> Result<(), StoreError> {
        let n = self.templates.len();
        if n == 0 || n > MAX_TEMPLATES_PER_ENCOUNTER {
            return Err(StoreError::bad(
                "templates",
                format!("{n} templates; an encounter carries 1..={MAX_TEMPLATES_PER_ENCOUNTER}"),
            ));
        }
        for (i, t) in self.templates.iter().enumerate() {
            if let Some(s) = &t.source {
                check_source(i, s)?;
            }
        }
        if self.biographic.len() > MAX_BIOGRAPHIC_FIELDS {
            return Err(StoreError::bad(
                "biographic",
                format!(
                    "{} fields, at most {MAX_BIOGRAPHIC_FIELDS} allowed",
                    self.biographic.len()
                ),
            ));
        }
        for (i, (k, v)) in self.biographic.iter().enumerate() {
            let kn = k.chars().count();
            if kn == 0 || kn > MAX_BIOGRAPHIC_KEY_CHARS {
                return Err(StoreError::bad(
                    "biographic key",
                    format!(
                        "field {i}: key of {kn} characters outside 1..={MAX_BIOGRAPHIC_KEY_CHARS}"
                    ),
                ));
            }
            let vn = v.chars().count();
            if vn > MAX_BIOGRAPHIC_VALUE_CHARS {
                return Err(StoreError::bad(
                    "biographic value",
                    format!("field {i}: value of {vn} characters, at most {MAX_BIOGRAPHIC_VALUE_CHARS} allowed"),
                ));
            }
        }
        check_label("location", &self.location)?;
        check_label("operator", &self.operator)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huella_core::{AlgorithmId, Embedding};

    fn encounter() -> NewEncounter {
        let alg = AlgorithmId::new("demo", "1").expect("valid algorithm id");
        let e = Embedding::new(vec![1.0, 2.0]).expect("valid embedding");
        NewEncounter {
            subject: SubjectId::new("S1").expect("valid subject"),
            captured_at_unix_ms: 0,
            location: None,
            operator: None,
            biographic: BTreeMap::new(),
            templates: vec![NewTemplate {
                template: Template::from_embedding(Modality::Face, alg, e),
                source: None,
            }],
        }
    }

    fn field_of(e: &NewEncounter) -> Option<&'static str> {
        match e.validate() {
            Ok(()) => None,
            Err(StoreError::BadInput { field, .. }) => Some(field),
            Err(other) => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn limits_are_enforced() {
        let ok = encounter();
        assert_eq!(field_of(&ok), None);

        let mut e = ok.clone();
        e.templates.clear();
        assert_eq!(field_of(&e), Some("templates"));
        let mut e = ok.clone();
        e.templates = vec![ok.templates[0].clone(); 65];
        assert_eq!(field_of(&e), Some("templates"));
        e.templates.truncate(64);
        assert_eq!(field_of(&e), None);

        let mut e = ok.clone();
        e.biographic.insert(String::new(), "x".into());
        assert_eq!(field_of(&e), Some("biographic key"));
        let mut e = ok.clone();
        e.biographic.insert("k".repeat(65), "x".into());
        assert_eq!(field_of(&e), Some("biographic key"));
        let mut e = ok.clone();
        e.biographic.insert("k".into(), "é".repeat(1024));
        assert_eq!(field_of(&e), None, "limits count characters, not bytes");
        e.biographic.insert("k".into(), "v".repeat(1025));
        assert_eq!(field_of(&e), Some("biographic value"));
        let mut e = ok.clone();
        for i in 0..65 {
            e.biographic.insert(format!("k{i}"), String::new());
        }
        assert_eq!(field_of(&e), Some("biographic"));

        let mut e = ok.clone();
        e.location = Some("x".repeat(257));
        assert_eq!(field_of(&e), Some("location"));
        let mut e = ok.clone();
        e.operator = Some("x".repeat(256));
        assert_eq!(field_of(&e), None);
        e.operator = Some("x".repeat(257));
        assert_eq!(field_of(&e), Some("operator"));
    }

    #[test]
    fn source_hashes_are_checked() {
        let mut e = encounter();
        let good = "0123456789abcdef".repeat(4);
        e.templates[0].source = Some(SourceImage {
            path: "img/1.png".into(),
            sha256: good.clone(),
        });
        assert_eq!(field_of(&e), None);
        for bad in [
            good.to_uppercase(),
            good[1..].to_string(),
            format!("{}g", &good[1..]),
        ] {
            e.templates[0].source = Some(SourceImage {
                path: "img/1.png".into(),
                sha256: bad,
            });
            assert_eq!(field_of(&e), Some("source.sha256"));
        }
        e.templates[0].source = Some(SourceImage {
            path: String::new(),
            sha256: good,
        });
        assert_eq!(field_of(&e), Some("source.path"));
    }

    #[test]
    fn error_messages_do_not_echo_personal_values() {
        let mut e = encounter();
        e.biographic
            .insert("name".into(), "SECRET-NAME".repeat(100));
        let msg = e.validate().expect_err("too long").to_string();
        assert!(!msg.contains("SECRET"), "{msg}");
    }
}
