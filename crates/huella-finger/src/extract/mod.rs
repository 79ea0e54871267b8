//! Minutiae extraction from fingerprint images.
//!
//! [`FingerExtractor::extract`] runs the classical pipeline (Maltoni, Maio, Jain &
//! Prabhakar, *Handbook of Fingerprint Recognition*, 2nd ed., 2009, chapter 3), every
//! stage at 500 ppi:
//!
//! 1. resolution: 450-550 ppi is used as is, 250-1000 ppi is resampled to 500;
//! 2. local normalisation and block foreground segmentation ([`segment`]);
//! 3. orientation field and coherence from the smoothed gradient tensor
//!    ([`orientation`]);
//! 4. ridge frequency from oriented x-signatures ([`frequency`]);
//! 5. contextual enhancement with oriented Gabor filters ([`enhance`]);
//! 6. binarisation and thinning ([`skeleton`]);
//! 7. crossing-number minutiae, their direction and false-minutiae removal
//!    ([`minutiae`]).
//!
//! Everything is sequential and free of randomness: the same image always gives the
//! same template, on any machine and thread count.

mod enhance;
mod frequency;
mod grid;
mod minutiae;
mod orientation;
mod segment;
mod skeleton;

use std::f32::consts::{PI, TAU};

use huella_core::FingerPosition;
use huella_imaging::{resize_bilinear_grey, GreyImage};

use crate::{FingerError, FingerTemplate, Minutia, MAX_MINUTIAE};
use enhance::GaborBank;
use grid::Grid;
use orientation::OrientationField;

/// The resolution every stage works at.
pub const WORKING_PPI: f32 = 500.0;
/// Resolutions used without resampling.
const NATIVE_PPI: std::ops::RangeInclusive<f32> = 450.0..=550.0;
/// Resolutions accepted (resampled to [`WORKING_PPI`]).
const ACCEPTED_PPI: std::ops::RangeInclusive<f32> = 250.0..=1000.0;
/// Smallest image side, pixels at 500 ppi, that can hold a usable fingerprint.
pub const MIN_SIDE: u32 = 64;

/// Settings of [`FingerExtractor`]; lengths are pixels at 500 ppi.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractConfig {
    /// Side of the blocks of [`FeatureMaps`] and of segmentation, 8.
    pub block_size: usize,
    /// Standard deviation, in blocks, of the Gaussian smoothing the orientation
    /// tensor, 1.5.
    pub orientation_smoothing: f32,
    /// Smallest block coherence (before smoothing) a foreground block needs, 0.2.
    pub min_block_coherence: f32,
    /// Gabor envelope standard deviation across the ridges, 3.5.
    pub gabor_sigma_across: f32,
    /// Gabor envelope standard deviation along the ridges, 5.0.
    pub gabor_sigma_along: f32,
    /// Gabor kernel radius, 8 (kernels are `2r+1` square).
    pub gabor_radius: usize,
    /// Minutiae closer than this to the foreground border are dropped, 6.
    pub border_margin: f32,
    /// Spurs, islands and bridges shorter than this are removed, 6.
    pub spur_length: usize,
    /// Two endings facing each other closer than this are one broken ridge, 16.
    pub break_distance: f32,
    /// Skeleton length traced to orient a minutia, 10.
    pub direction_length: usize,
    /// Radius of the dense-cluster test, 16.
    pub cluster_radius: f32,
    /// A minutia with at least this many others within `cluster_radius` is noise, 4.
    pub cluster_count: usize,
    /// Most minutiae kept, the best by quality, at most [`MAX_MINUTIAE`].
    pub max_minutiae: usize,
}

impl Default for ExtractConfig {
    fn default() -> Self {
        ExtractConfig {
            block_size: 8,
            orientation_smoothing: 1.5,
            min_block_coherence: 0.2,
            gabor_sigma_across: 3.5,
            gabor_sigma_along: 5.0,
            gabor_radius: 8,
            border_margin: 6.0,
            spur_length: 6,
            break_distance: 16.0,
            direction_length: 10,
            cluster_radius: 16.0,
            cluster_count: 4,
            max_minutiae: MAX_MINUTIAE,
        }
    }
}

impl ExtractConfig {
    fn validate(&self) -> Result<(), FingerError> {
        let bad = |what: &str| Err(FingerError::BadInput(format!("extract config: {what}")));
        let positive = |v: f32| v.is_finite() && v > 0.0;
        if !(4..=32).contains(&self.block_size) {
            return bad("block_size must be 4..=32");
        }
        if !(positive(self.orientation_smoothing)
            && positive(self.gabor_sigma_across)
            && positive(self.gabor_sigma_along))
        {
            return bad("smoothing and Gabor sigmas must be finite and positive");
        }
        if !(1..=16).contains(&self.gabor_radius) {
            return bad("gabor_radius must be 1..=16");
        }
        if !(self.min_block_coherence.is_finite() && (0.0..1.0).contains(&self.min_block_coherence))
        {
            return bad("min_block_coherence must be in [0, 1)");
        }
        if !(self.border_margin.is_finite()
            && self.border_margin >= 0.0
            && self.break_distance.is_finite()
            && self.break_distance >= 0.0
            && self.cluster_radius.is_finite()
            && self.cluster_radius >= 0.0)
        {
            return bad("distances must be finite and non-negative");
        }
        if self.direction_length < 2 || self.direction_length > 64 || self.spur_length > 64 {
            return bad("direction_length must be 2..=64 and spur_length at most 64");
        }
        if self.max_minutiae > MAX_MINUTIAE {
            return bad("max_minutiae exceeds MAX_MINUTIAE");
        }
        Ok(())
    }
}

/// Per-block features of the processed image, for quality assessment and debugging.
///
/// Blocks are `block_size` pixels square in the working frame (the image resampled to
/// 500 ppi, see `scale`), row-major, `blocks_wide * blocks_high` of each map; the last
/// row and column may be partial.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMaps {
    /// Side of a block, pixels of the working frame.
    pub block_size: usize,
    /// Blocks per row.
    pub blocks_wide: usize,
    /// Block rows.
    pub blocks_high: usize,
    /// Working-frame pixels per input pixel (1.0 unless the image was resampled).
    pub scale: f32,
    /// `true` where the block holds fingerprint.
    pub foreground: Vec<bool>,
    /// Ridge orientation in radians `[0, π)`, counter-clockwise from the x axis as
    /// viewed (the minutiae convention, modulo π); meaningful in the foreground.
    pub orientation: Vec<f32>,
    /// Coherence of the smoothed gradient tensor, 0 (isotropic) to 1 (parallel ridges).
    pub coherence: Vec<f32>,
    /// Ridge frequency, ridges per working-frame pixel (1 / period); 0 in the
    /// background.
    pub frequency: Vec<f32>,
}

/// The result of [`FingerExtractor::extract`].
#[derive(Debug, Clone, PartialEq)]
pub struct Extraction {
    /// Minutiae in input-image pixels, with the image size and resolution.
    pub template: FingerTemplate,
    /// The block features the minutiae were found with.
    pub maps: FeatureMaps,
}

/// Classical minutiae extractor: local normalisation, block segmentation, gradient
/// orientation field, x-signature ridge frequency, oriented Gabor enhancement,
/// Guo-Hall thinning, crossing-number minutiae with traced ISO/IEC 19794-2 directions
/// and false-minutiae removal (Maltoni et al., *Handbook of Fingerprint Recognition*,
/// ch. 3). Deterministic and single-threaded; cheap to share, it holds only its
/// configuration and precomputed filters.
///
/// ```no_run
/// use huella_finger::FingerExtractor;
/// use huella_imaging::{decode_file, Limits};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let img = decode_file("101_1.tif".as_ref(), &Limits::default())?.to_grey();
/// let extraction = FingerExtractor::default().extract(&img, img.ppi())?;
/// println!("{} minutiae", extraction.template.minutiae.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FingerExtractor {
    config: ExtractConfig,
    bank: GaborBank,
}

impl Default for FingerExtractor {
    fn default() -> Self {
        let config = ExtractConfig::default();
        let bank = bank_for(&config);
        FingerExtractor { config, bank }
    }
}

fn bank_for(c: &ExtractConfig) -> GaborBank {
    GaborBank::new(c.gabor_sigma_across, c.gabor_sigma_along, c.gabor_radius)
}

impl FingerExtractor {
    /// An extractor with `config`; [`FingerError::BadInput`] if a setting is out of
    /// range.
    pub fn new(config: ExtractConfig) -> Result<FingerExtractor, FingerError> {
        config.validate()?;
        let bank = bank_for(&config);
        Ok(FingerExtractor { config, bank })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ExtractConfig {
        &self.config
    }

    /// Extracts the minutiae of `img`, whose resolution is `ppi` (`None`: assume 500).
    ///
    /// Errors: [`FingerError::Resolution`] outside 250-1000 ppi;
    /// [`FingerError::NoBiometricFound`] for images that are too small (under
    /// [`MIN_SIDE`] pixels a side at 500 ppi), blank, uniform or without ridges;
    /// [`FingerError::BadInput`] for images wider or taller than 65535 pixels.
    pub fn extract(&self, img: &GreyImage, ppi: Option<f32>) -> Result<Extraction, FingerError> {
        let c = &self.config;
        let (work, scale, ppi) = working_image(img, ppi)?;
        let (w, h) = (work.width() as usize, work.height() as usize);
        if w < MIN_SIDE as usize || h < MIN_SIDE as usize {
            return Err(FingerError::NoBiometricFound(format!(
                "image is {w}x{h} pixels at 500 ppi, under {MIN_SIDE} a side"
            )));
        }
        let plane = Grid {
            w,
            h,
            data: work.as_raw().iter().map(|&v| f32::from(v)).collect(),
        };
        let norm = segment::normalise(&plane, c.block_size);
        let field = OrientationField::estimate(&plane, c.block_size, c.orientation_smoothing);
        let mask = segment::foreground(&norm, &field, c.block_size, c.min_block_coherence);
        let fg_blocks = mask.data.iter().filter(|&&m| m).count();
        if fg_blocks * c.block_size * c.block_size < (MIN_SIDE * MIN_SIDE) as usize {
            return Err(FingerError::NoBiometricFound(
                "no fingerprint area found (blank or uniform image)".into(),
            ));
        }
        if mean_coherence(&mask, &field) < MIN_MEAN_COHERENCE {
            return Err(FingerError::NoBiometricFound(
                "no ridge flow in the foreground (noise or texture)".into(),
            ));
        }
        let period = frequency::estimate(&norm.image, &field, &mask, 0.1).ok_or_else(|| {
            FingerError::NoBiometricFound("no ridge pattern found in the foreground".into())
        })?;
        let enhanced = self.bank.apply(&norm.image, &field, &period, &mask);
        let skel = skeleton::thin(&skeleton::binarise(&enhanced));
        let pixel_mask = Grid {
            w,
            h,
            data: (0..w * h)
                .map(|i| mask.at((i % w) / c.block_size, (i / w) / c.block_size))
                .collect(),
        };
        let border = segment::border_distance(&pixel_mask);
        let mut found = minutiae::detect(&skel, &field, &border, c);
        // Best first; ties broken by position so the order never depends on anything else.
        found.sort_by(|a, b| {
            b.quality
                .total_cmp(&a.quality)
                .then(a.y.total_cmp(&b.y))
                .then(a.x.total_cmp(&b.x))
        });
        found.truncate(c.max_minutiae);
        let to_u16 = |v: f32, max: u32| (v / scale).round().clamp(0.0, (max - 1) as f32) as u16;
        let minutiae = found
            .iter()
            .map(|f| Minutia {
                x: to_u16(f.x, img.width()),
                y: to_u16(f.y, img.height()),
                // Image angles run clockwise as viewed (y down); ISO runs counter-clockwise.
                angle: iso_angle(f.angle),
                kind: f.kind,
                quality: (f.quality * 100.0).round().clamp(0.0, 100.0) as u8,
            })
            .collect();
        let ppcm = (ppi / 2.54).round() as u16;
        let template = FingerTemplate {
            width: img.width() as u16,
            height: img.height() as u16,
            resolution_x: ppcm,
            resolution_y: ppcm,
            position: FingerPosition::Unknown,
            quality: image_quality(&mask, &field),
            minutiae,
        };
        Ok(Extraction {
            template,
            maps: feature_maps(&mask, &field, &period, c.block_size, scale),
        })
    }
}

/// The image at 500 ppi, the scale applied and the input resolution to record.
fn working_image(img: &GreyImage, ppi: Option<f32>) -> Result<(GreyImage, f32, f32), FingerError> {
    if img.width() > u32::from(u16::MAX) || img.height() > u32::from(u16::MAX) {
        return Err(FingerError::BadInput(format!(
            "image {}x{} exceeds 65535 pixels a side",
            img.width(),
            img.height()
        )));
    }
    let ppi_value = ppi.unwrap_or(WORKING_PPI);
    if !ppi_value.is_finite() || !ACCEPTED_PPI.contains(&ppi_value) {
        return Err(FingerError::Resolution {
            ppi,
            min: *ACCEPTED_PPI.start(),
            max: *ACCEPTED_PPI.end(),
        });
    }
    if NATIVE_PPI.contains(&ppi_value) {
        return Ok((img.clone(), 1.0, ppi_value));
    }
    let scale = WORKING_PPI / ppi_value;
    let w = ((img.width() as f32 * scale).round() as u32).max(1);
    let h = ((img.height() as f32 * scale).round() as u32).max(1);
    Ok((resize_bilinear_grey(img, w, h), scale, ppi_value))
}

/// Image angle (clockwise as viewed) to the ISO convention, in `[0, 2π)`.
fn iso_angle(image_angle: f32) -> f32 {
    let a = (-image_angle).rem_euclid(TAU);
    // rem_euclid can round up to exactly TAU for tiny negative inputs.
    if a >= TAU {
        0.0
    } else {
        a
    }
}

/// Below this mean foreground coherence there is no ridge flow (FVC2002 prints score
/// 0.45-0.8, white noise under 0.1).
const MIN_MEAN_COHERENCE: f32 = 0.2;

/// Mean smoothed coherence over the foreground blocks (0 if there are none).
fn mean_coherence(mask: &Grid<bool>, field: &OrientationField) -> f32 {
    let (sum, n) = mask
        .data
        .iter()
        .zip(&field.coherence.data)
        .filter(|(&m, _)| m)
        .fold((0.0f32, 0usize), |(s, n), (_, &c)| (s + c, n + 1));
    sum / n.max(1) as f32
}

/// Impression quality 0-100: mean coherence of the foreground.
fn image_quality(mask: &Grid<bool>, field: &OrientationField) -> u8 {
    (mean_coherence(mask, field) * 100.0)
        .round()
        .clamp(0.0, 100.0) as u8
}

fn feature_maps(
    mask: &Grid<bool>,
    field: &OrientationField,
    period: &Grid<f32>,
    block_size: usize,
    scale: f32,
) -> FeatureMaps {
    let orientation = (0..mask.h)
        .flat_map(|by| (0..mask.w).map(move |bx| (bx, by)))
        .map(|(bx, by)| (PI - field.block_angle(bx, by)).rem_euclid(PI))
        .map(|a| if a >= PI { 0.0 } else { a })
        .collect();
    FeatureMaps {
        block_size,
        blocks_wide: mask.w,
        blocks_high: mask.h,
        scale,
        foreground: mask.data.clone(),
        orientation,
        coherence: field.coherence.data.clone(),
        frequency: period
            .data
            .iter()
            .map(|&p| if p > 0.0 { 1.0 / p } else { 0.0 })
            .collect(),
    }
}
