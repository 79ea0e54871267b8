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

/// A `data:` URI (RFC 2397) holding `bytes` in base64, for embedding an image in a
/// self-contained HTML or SVG page: `data_uri("image/png", &png)`.
pub fn data_uri(mime: &str, bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(mime.len() + 13 + bytes.len().div_ceil(3) * 4);
    out.push_str("data:");
    out.push_str(mime);
    out.push_str(";base64,");
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * k)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_uri_is_rfc4648_base64() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(
                data_uri("text/plain", plain.as_bytes()),
                format!("data:text/plain;base64,{encoded}")
            );
        }
        assert_eq!(data_uri("x/y", &[0xff, 0xfe, 0xfd]), "data:x/y;base64,//79");
    }

    #[test]
    fn png_round_trips() {
        let data: Vec<u8> = (0..4 * 3 * 3).map(|i| (i * 7) as u8).collect();
        let img = Image::from_raw(4, 3, data).unwrap();
        let back = crate::decode(&encode_png(&img).unwrap(), &crate::Limits::default()).unwrap();
        assert_eq!(back.as_raw(), img.as_raw());
    }
}
