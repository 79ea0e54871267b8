//! Identifiers for subjects, encounters and templates.

use crate::CoreError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest accepted subject identifier, in bytes.
pub const MAX_SUBJECT_ID_LEN: usize = 128;

/// The identity a set of encounters is believed to belong to.
///
/// Chosen by the host system (a case number, a UUID); 1 to [`MAX_SUBJECT_ID_LEN`]
/// bytes of ASCII letters, digits and `-_.:@`. The restriction keeps ids safe to
/// print in reports, file names and CSV cells without quoting.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SubjectId(String);

impl SubjectId {
    /// Validate and wrap an identifier.
    pub fn new(id: impl Into<String>) -> Result<Self, CoreError> {
        let id = id.into();
        if id.is_empty() || id.len() > MAX_SUBJECT_ID_LEN {
            return Err(CoreError::Invalid {
                field: "subject id",
                reason: format!("length {} outside 1..={MAX_SUBJECT_ID_LEN}", id.len()),
            });
        }
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-_.:@".contains(*c)))
        {
            return Err(CoreError::Invalid {
                field: "subject id",
                reason: format!("character {c:?} not allowed (use A-Z a-z 0-9 - _ . : @)"),
            });
        }
        Ok(Self(id))
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SubjectId {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self, CoreError> {
        Self::new(s)
    }
}

impl From<SubjectId> for String {
    fn from(id: SubjectId) -> String {
        id.0
    }
}

impl std::str::FromStr for SubjectId {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        Self::new(s)
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

numeric_id!(
    /// One capture session: a person met at a place and time. Assigned by the store,
    /// unique and never reused within a gallery.
    EncounterId
);
numeric_id!(
    /// One biometric template inside an encounter. Assigned by the store, unique and never
    /// reused within a gallery; it is also the key of the template in every index.
    TemplateId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_ids_are_validated() {
        assert!(SubjectId::new("CASE-2026:0001").is_ok());
        assert!(SubjectId::new("").is_err());
        assert!(SubjectId::new("a b").is_err());
        assert!(SubjectId::new("x".repeat(129)).is_err());
        assert!(SubjectId::new("é").is_err());
        let json = serde_json::to_string(&SubjectId::new("S1").unwrap()).unwrap();
        assert_eq!(json, "\"S1\"");
        assert!(serde_json::from_str::<SubjectId>("\"bad id\"").is_err());
    }
}
