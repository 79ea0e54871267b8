//! Encoding images for human reviewers.

use crate::{Image, ImagingError};

/// The image as PNG bytes (8-bit RGB).
pub fn encode_png(img: &Image) -> Result<Vec<u8>, ImagingError> {
    let mut out = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut out);
    image::ImageEncoder::write_image(
        encoder,
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| ImagingError::Corrupt {
        reason: format!("cannot encode PNG: {e}"),
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips() {
        let data: Vec<u8> = (0..4 * 3 * 3).map(|i| (i * 7) as u8).collect();
        let img = Image::from_raw(4, 3, data).unwrap();
        let back = crate::decode(&encode_png(&img).unwrap(), &crate::Limits::default()).unwrap();
        assert_eq!(back.as_raw(), img.as_raw());
    }
}
