//! Alignment to the embedding model's canonical crop.
//!
//! dlib's `get_face_chip_details(shape, 150, 0.25)`: a least-squares similarity transform
//! takes the five landmarks to fixed positions of a mean face, padded by 25% of the face
//! size on every side, in a 150x150 crop.

use huella_imaging::{warp_affine, Affine2, Image};

/// Crop side in pixels.
pub const CHIP_SIZE: u32 = 150;
/// Padding around the landmark template, as a fraction of its size.
pub const CHIP_PADDING: f32 = 0.25;

/// dlib's 5-point mean face (dlib/image_transforms/interpolation.h), in the landmark
/// order of [`crate::ShapePredictor`], normalised to the unpadded unit square.
const TEMPLATE: [(f32, f32); 5] = [
    (0.859_567_46, 0.213_498_15),
    (0.646_060_5, 0.228_967_44),
    (0.120_575_06, 0.213_727_45),
    (0.334_085_06, 0.229_064_24),
    (0.490_112_3, 0.627_797_5),
];

/// Where each landmark lands in the crop, in crop pixels.
pub fn template_points() -> [(f32, f32); 5] {
    let s = CHIP_SIZE as f32;
    TEMPLATE.map(|(x, y)| {
        let k = s / (2.0 * CHIP_PADDING + 1.0);
        ((CHIP_PADDING + x) * k, (CHIP_PADDING + y) * k)
    })
}

/// The map from crop pixels to image pixels for five landmarks; `None` when the
/// landmarks are degenerate (all at one point).
pub fn chip_transform(landmarks: &[(f32, f32)]) -> Option<Affine2> {
    let m = Affine2::similarity_from_points(&template_points(), landmarks)?;
    (m.is_finite() && (m.a * m.d - m.b * m.c).abs() > 1e-6).then_some(m)
}

/// The aligned 150x150 crop of the face with these landmarks.
pub fn chip(img: &Image, to_image: &Affine2) -> Image {
    warp_affine(img, to_image, CHIP_SIZE, CHIP_SIZE)
}

/// The same alignment with the crop's field of view scaled by `k` about the crop centre
/// (`k` < 1 is a tighter crop).
pub fn zoomed(to_image: &Affine2, k: f32) -> Affine2 {
    let c = CHIP_SIZE as f32 / 2.0 * (1.0 - k);
    let m = to_image;
    Affine2 {
        a: m.a * k,
        b: m.b * k,
        c: m.c * k,
        d: m.d * k,
        tx: m.a * c + m.b * c + m.tx,
        ty: m.c * c + m.d * c + m.ty,
    }
}
