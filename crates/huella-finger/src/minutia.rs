//! The minutiae template every part of this crate exchanges.

use huella_core::FingerPosition;
use serde::{Deserialize, Serialize};

/// Most minutiae a template may hold (the ISO/IEC 19794-2 per-view limit).
pub const MAX_MINUTIAE: usize = 255;

/// Minutia type as ISO/IEC 19794-2 and ANSI INCITS 378 code it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MinutiaKind {
    /// Type code 0: neither of the others, or not determined.
    Other,
    /// Type code 1: a ridge ending.
    Ending,
    /// Type code 2: a ridge bifurcation.
    Bifurcation,
}

/// One minutia: position in pixels, direction, type and quality.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Minutia {
    /// Column, pixels from the left edge.
    pub x: u16,
    /// Row, pixels from the top edge.
    pub y: u16,
    /// Direction in radians in `[0, 2π)`, counter-clockwise from the x axis as viewed.
    pub angle: f32,
    /// Ending, bifurcation or other.
    pub kind: MinutiaKind,
    /// 0 (unknown or worst) to 100 (best).
    pub quality: u8,
}

/// The minutiae of one finger impression with the facts a matcher needs about its image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FingerTemplate {
    /// Image width in pixels.
    pub width: u16,
    /// Image height in pixels.
    pub height: u16,
    /// Horizontal resolution, pixels per centimetre (197 for 500 ppi), as ISO stores it.
    pub resolution_x: u16,
    /// Vertical resolution, pixels per centimetre.
    pub resolution_y: u16,
    /// Finger position (0 = unknown).
    pub position: FingerPosition,
    /// Impression quality 0-100.
    pub quality: u8,
    /// The minutiae, at most [`MAX_MINUTIAE`].
    pub minutiae: Vec<Minutia>,
}
