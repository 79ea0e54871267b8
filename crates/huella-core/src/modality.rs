//! Biometric modalities and finger positions.

use crate::CoreError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Finger position codes of ISO/IEC 19794-2 and ANSI/NIST-ITL (0 = unknown, 1-10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
#[repr(u8)]
#[allow(missing_docs)]
pub enum FingerPosition {
    Unknown = 0,
    RightThumb = 1,
    RightIndex = 2,
    RightMiddle = 3,
    RightRing = 4,
    RightLittle = 5,
    LeftThumb = 6,
    LeftIndex = 7,
    LeftMiddle = 8,
    LeftRing = 9,
    LeftLittle = 10,
}

impl FingerPosition {
    /// All positions in code order.
    pub const ALL: [FingerPosition; 11] = [
        Self::Unknown,
        Self::RightThumb,
        Self::RightIndex,
        Self::RightMiddle,
        Self::RightRing,
        Self::RightLittle,
        Self::LeftThumb,
        Self::LeftIndex,
        Self::LeftMiddle,
        Self::LeftRing,
        Self::LeftLittle,
    ];

    /// The ISO/ANSI code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Position from its ISO/ANSI code.
    pub fn from_code(code: u8) -> Result<Self, CoreError> {
        Self::ALL
            .get(code as usize)
            .copied()
            .ok_or_else(|| CoreError::Invalid {
                field: "finger position",
                reason: format!("code {code} outside 0..=10"),
            })
    }
}

impl TryFrom<u8> for FingerPosition {
    type Error = CoreError;
    fn try_from(code: u8) -> Result<Self, CoreError> {
        Self::from_code(code)
    }
}

impl From<FingerPosition> for u8 {
    fn from(p: FingerPosition) -> u8 {
        p.code()
    }
}

/// What kind of biometric a template holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Modality {
    /// A face image.
    Face,
    /// One finger at a given position.
    Finger(FingerPosition),
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Modality::Face => f.write_str("face"),
            Modality::Finger(p) => write!(f, "finger:{}", p.code()),
        }
    }
}

impl std::str::FromStr for Modality {
    type Err = CoreError;
    /// Parses `face` or `finger:N` with N the ISO/ANSI position code.
    fn from_str(s: &str) -> Result<Self, CoreError> {
        if s == "face" {
            return Ok(Modality::Face);
        }
        let bad = || CoreError::Invalid {
            field: "modality",
            reason: format!("{s:?} is neither \"face\" nor \"finger:<0-10>\""),
        };
        let code = s
            .strip_prefix("finger:")
            .ok_or_else(bad)?
            .parse::<u8>()
            .map_err(|_| bad())?;
        Ok(Modality::Finger(FingerPosition::from_code(code)?))
    }
}

impl TryFrom<String> for Modality {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self, CoreError> {
        s.parse()
    }
}

impl From<Modality> for String {
    fn from(m: Modality) -> String {
        m.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modality_text_round_trips() {
        for p in FingerPosition::ALL {
            let m = Modality::Finger(p);
            assert_eq!(m.to_string().parse::<Modality>().unwrap(), m);
        }
        assert_eq!("face".parse::<Modality>().unwrap(), Modality::Face);
        assert!("finger:11".parse::<Modality>().is_err());
        assert!("finger:-1".parse::<Modality>().is_err());
        assert!("iris".parse::<Modality>().is_err());
        assert_eq!(
            FingerPosition::from_code(7).unwrap(),
            FingerPosition::LeftIndex
        );
    }
}
