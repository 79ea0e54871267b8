//! Image decoding for untrusted input, and the geometry face and fingerprint code needs.
//!
//! - [`decode`] / [`decode_file`] read JPEG, PNG, TIFF, BMP, PNM and FBI WSQ fingerprint
//!   images (format from the content, never the file name) into an 8-bit RGB [`Image`],
//!   enforcing [`Limits`] before any allocation sized by the file's header. 16-bit, grey,
//!   alpha and CMYK inputs are converted; EXIF orientation is applied; a stated
//!   resolution is kept (for WSQ, the NISTCOM comment's `PPI`). The WSQ decoder is our
//!   own (pure Rust) and matches the NIST reference decoder pixel for pixel.
//! - [`Image::to_grey`] gives a BT.601 [`GreyImage`]; both crop and flip.
//! - [`Affine2::similarity_from_points`], [`warp_affine`] and [`resize_bilinear`] (with
//!   `_grey` twins) align and scale.
//!
//! No function panics on any input bytes; every failure is a typed [`ImagingError`].
//!
//! ```
//! use huella_imaging::{decode, resize_bilinear, warp_affine, Affine2, Limits};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A 2x1 binary PGM: black then white.
//! let img = decode(b"P5\n2 1\n255\n\x00\xff", &Limits::default())?;
//! assert_eq!((img.width(), img.height()), (2, 1));
//! assert_eq!(img.pixel(1, 0), Some([255, 255, 255]));
//! assert_eq!(img.to_grey().as_raw(), &[0, 255]);
//!
//! // Alignment: fit landmarks (source) to template positions (output), then warp with
//! // the inverse, since `warp_affine` maps output pixels back to source pixels.
//! let landmarks = [(0.0, 0.0), (1.0, 0.0)];
//! let template = [(0.0, 0.0), (2.0, 0.0)];
//! let fit = Affine2::similarity_from_points(&landmarks, &template).ok_or("degenerate")?;
//! let aligned = warp_affine(&img, &fit.inverse().ok_or("singular")?, 4, 1);
//! assert_eq!(aligned.pixel(2, 0), Some([255, 255, 255]));
//!
//! let big = resize_bilinear(&img, 8, 4);
//! assert_eq!(big.as_raw().len(), 8 * 4 * 3);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod decode;
mod encode;
mod error;
mod geometry;
mod limits;
mod meta;
mod raster;
mod resample;
mod wsq;

pub use decode::{decode, decode_file, SourceFormat};
pub use encode::{data_uri, encode_png};
pub use error::ImagingError;
pub use geometry::Affine2;
pub use limits::Limits;
pub use raster::{GreyImage, Image};
pub use resample::{resize_bilinear, resize_bilinear_grey, warp_affine, warp_affine_grey};
