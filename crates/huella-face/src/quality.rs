//! A per-face quality record in the spirit of ISO/IEC 29794-5 (face image quality): the
//! capture-related measures it names that five landmarks and the aligned crop can give,
//! each reported raw and as a 0-100 component, plus one 0-100 summary.
//!
//! These are transparent heuristics, not the ISO reference implementation (OFIQ): the
//! summary is the weighted geometric mean of the components, so one bad component (a
//! tiny, blurred or turned-away face) pulls the summary down hard.

use huella_imaging::Image;

use crate::detect::Keypoints;

/// Quality measures of one face.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Quality {
    /// Distance between the eye centres in the source image, pixels.
    pub inter_eye_px: f32,
    /// Variance of the Laplacian of the grey 150x150 crop (higher is sharper).
    pub sharpness: f32,
    /// Mean grey level of the crop's central face region, 0-255.
    pub brightness: f32,
    /// Fraction of that region's pixels at or below 5 or at or above 250.
    pub clipped: f32,
    /// Head yaw in degrees, positive when the subject turns to their left (approximate,
    /// from the nose tip's offset between the eyes).
    pub yaw_deg: f32,
    /// Head pitch in degrees, positive when the head tilts down (approximate, from where
    /// the nose tip sits between the eye line and the mouth).
    pub pitch_deg: f32,
    /// Head roll in degrees (the eye line's angle).
    pub roll_deg: f32,
    /// Detector confidence, 0-1.
    pub detector_score: f32,
    /// Components, 0-100 each: size, sharpness, exposure, pose, detection.
    pub components: Components,
    /// The summary, 0-100 (higher is better).
    pub summary: u8,
}

/// Per-measure scores, 0-100.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Components {
    /// From the inter-eye distance: 0 at 16 px or less, 100 from 48 px.
    pub size: f32,
    /// From the Laplacian variance: 100 * (1 - exp(-variance / 60)).
    pub sharpness: f32,
    /// From brightness (ideal 70-190) and clipped pixels.
    pub exposure: f32,
    /// From yaw and pitch: 100 * (1 - (yaw/60)^2) * (1 - (pitch/45)^2), at least 0.
    pub pose: f32,
    /// Detector confidence * 100.
    pub detection: f32,
}

fn ramp(x: f32, zero: f32, full: f32) -> f32 {
    (((x - zero) / (full - zero)).clamp(0.0, 1.0)) * 100.0
}

fn mean((ax, ay): (f32, f32), (bx, by): (f32, f32)) -> (f32, f32) {
    ((ax + bx) / 2.0, (ay + by) / 2.0)
}

/// Assesses one face from its five landmarks (dlib order), the detector's keypoints and
/// score, and the aligned crop.
pub fn assess(
    landmarks: &[(f32, f32)],
    keypoints: &Keypoints,
    detector_score: f32,
    chip: &Image,
) -> Quality {
    // dlib order: subject's left eye (image right) outer, inner; right eye outer, inner; nose.
    let image_right_eye = mean(landmarks[0], landmarks[1]);
    let image_left_eye = mean(landmarks[2], landmarks[3]);
    let (dx, dy) = (
        image_right_eye.0 - image_left_eye.0,
        image_right_eye.1 - image_left_eye.1,
    );
    let inter_eye_px = dx.hypot(dy);
    let roll = dy.atan2(dx);
    // Express the nose tip and mouth in the eye line's frame (origin between the eyes).
    let mid = mean(image_left_eye, image_right_eye);
    let (c, s) = (roll.cos(), roll.sin());
    let local = |(x, y): (f32, f32)| {
        let (x, y) = (x - mid.0, y - mid.1);
        (x * c + y * s, -x * s + y * c)
    };
    let nose = local(keypoints.nose_tip);
    let mouth = local(keypoints.mouth);
    let half = (inter_eye_px / 2.0).max(1.0);
    // The nose tip stands about half an inter-eye distance in front of the eyes, so its
    // sideways offset is 0.5 * IED * sin(yaw) against a projected IED of IED * cos(yaw).
    let yaw_deg = (nose.0 / half).atan().to_degrees();
    // Frontal faces put the nose tip about 45% of the way from the eye line to the mouth.
    let ratio = if mouth.1 > 1.0 {
        nose.1 / mouth.1
    } else {
        0.45
    };
    let pitch_deg = ((ratio - 0.45) * 2.5).clamp(-1.0, 1.0).asin().to_degrees();

    let grey = chip.to_grey();
    let (w, h) = (grey.width() as usize, grey.height() as usize);
    let px = grey.as_raw();
    let mut lap = Vec::with_capacity(w * h);
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let at = |dx: isize, dy: isize| {
                f32::from(px[(y as isize + dy) as usize * w + (x as isize + dx) as usize])
            };
            lap.push(at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1) - 4.0 * at(0, 0));
        }
    }
    let sharpness = variance(&lap);
    // The central half of the crop is skin, eyes, nose and mouth, not background.
    let region: Vec<f32> = (h / 4..3 * h / 4)
        .flat_map(|y| (w / 4..3 * w / 4).map(move |x| (x, y)))
        .map(|(x, y)| f32::from(px[y * w + x]))
        .collect();
    let n = region.len().max(1) as f32;
    let brightness = region.iter().sum::<f32>() / n;
    let clipped = region.iter().filter(|&&v| v <= 5.0 || v >= 250.0).count() as f32 / n;

    let exposure_level = if brightness < 70.0 {
        ramp(brightness, 20.0, 70.0)
    } else {
        100.0 - ramp(brightness, 190.0, 240.0)
    };
    let components = Components {
        size: ramp(inter_eye_px, 16.0, 48.0),
        sharpness: 100.0 * (1.0 - (-sharpness / 60.0).exp()),
        exposure: exposure_level * (1.0 - (clipped * 2.0).min(1.0)),
        pose: 100.0
            * (1.0 - (yaw_deg / 60.0).powi(2)).max(0.0)
            * (1.0 - (pitch_deg / 45.0).powi(2)).max(0.0),
        detection: (detector_score * 100.0).clamp(0.0, 100.0),
    };
    let weighted = [
        (components.size, 2.0),
        (components.sharpness, 1.0),
        (components.exposure, 1.0),
        (components.pose, 2.0),
        (components.detection, 1.0),
    ];
    let total: f32 = weighted.iter().map(|(_, w)| w).sum();
    let log_mean = weighted
        .iter()
        .map(|(v, w)| w * (v / 100.0).max(1e-4).ln())
        .sum::<f32>()
        / total;
    let summary = (100.0 * log_mean.exp()).round().clamp(0.0, 100.0) as u8;
    Quality {
        inter_eye_px,
        sharpness,
        brightness,
        clipped,
        yaw_deg,
        pitch_deg,
        roll_deg: roll.to_degrees(),
        detector_score,
        components,
        summary,
    }
}

fn variance(v: &[f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let n = v.len() as f64;
    let m = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    (v.iter().map(|&x| (f64::from(x) - m).powi(2)).sum::<f64>() / n) as f32
}
