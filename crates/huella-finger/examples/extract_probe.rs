//! Runs the minutiae extractor over FVC-style folders and reports speed, minutiae
//! counts and agreement with the ISO templates stored beside the images.
//!
//! ```text
//! cargo run --release -p huella-finger --example extract_probe -- \
//!     ../shared/datasets/fvc2002/DB1_B ../shared/datasets/fvc2002/DB2_B [--dump OUT]
//! ```
//!
//! For each `NNN_K.tif` with an `NNN_K.iso` beside it, the ISO minutiae are taken as
//! pseudo ground truth: a pair matches within 12 px and 30 degrees, one-to-one, greedily
//! by distance. `--dump OUT` writes each image with its minutiae drawn as PNG.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

use huella_finger::{FingerExtractor, Minutia, MinutiaeRecord};
use huella_imaging::{decode_file, encode_png, Image, Limits};

const MAX_DIST: f32 = 12.0;
const MAX_ANGLE: f32 = 30.0;

fn angle_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(std::f32::consts::TAU);
    d.min(std::f32::consts::TAU - d)
}

/// Greedy one-to-one pairing by distance; `max_angle` in degrees (180 = position only).
fn pair(found: &[Minutia], truth: &[Minutia], max_angle: f32) -> Vec<(usize, usize)> {
    let mut cands = Vec::new();
    for (i, a) in found.iter().enumerate() {
        for (j, b) in truth.iter().enumerate() {
            let d = (f32::from(a.x) - f32::from(b.x)).hypot(f32::from(a.y) - f32::from(b.y));
            if d <= MAX_DIST && angle_diff(a.angle, b.angle).to_degrees() <= max_angle {
                cands.push((d, i, j));
            }
        }
    }
    cands.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut used_a, mut used_b) = (vec![false; found.len()], vec![false; truth.len()]);
    let mut out = Vec::new();
    for (_, i, j) in cands {
        if !used_a[i] && !used_b[j] {
            used_a[i] = true;
            used_b[j] = true;
            out.push((i, j));
        }
    }
    out
}

/// The SecuGen templates describe a 300 x 400 frame centred on the image (cropped or
/// padded); this maps their minutiae into image pixels.
fn in_image_frame(
    t: &huella_finger::FingerTemplate,
    img: &huella_imaging::GreyImage,
) -> Vec<Minutia> {
    let dx = (img.width() as i32 - i32::from(t.width)) / 2;
    let dy = (img.height() as i32 - i32::from(t.height)) / 2;
    t.minutiae
        .iter()
        .filter_map(|m| {
            let (x, y) = (i32::from(m.x) + dx, i32::from(m.y) + dy);
            (x >= 0 && y >= 0 && x < img.width() as i32 && y < img.height() as i32).then_some(
                Minutia {
                    x: x as u16,
                    y: y as u16,
                    ..*m
                },
            )
        })
        .collect()
}

fn draw(img: &huella_imaging::GreyImage, found: &[Minutia], truth: &[Minutia]) -> Image {
    let (w, h) = (img.width() as i32, img.height() as i32);
    let mut rgb: Vec<u8> = img.as_raw().iter().flat_map(|&v| [v, v, v]).collect();
    let mut put = |x: i32, y: i32, c: [u8; 3]| {
        if x >= 0 && y >= 0 && x < w && y < h {
            let i = (y * w + x) as usize * 3;
            rgb[i..i + 3].copy_from_slice(&c);
        }
    };
    for (list, colour, r) in [(truth, [0, 160, 255], 5), (found, [255, 0, 0], 3)] {
        for m in list {
            let (x, y) = (i32::from(m.x), i32::from(m.y));
            for t in -r..=r {
                put(x + t, y - r, colour);
                put(x + t, y + r, colour);
                put(x - r, y + t, colour);
                put(x + r, y + t, colour);
            }
            for s in 0..12 {
                let s = s as f32;
                put(
                    x + (s * m.angle.cos()).round() as i32,
                    y - (s * m.angle.sin()).round() as i32,
                    colour,
                );
            }
        }
    }
    Image::from_raw(w as u32, h as u32, rgb).expect("sized")
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut dirs = Vec::new();
    let mut dump: Option<PathBuf> = None;
    let mut search = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--search-offset" {
            search = true;
        } else if a == "--dump" {
            dump = Some(args.next().ok_or("--dump needs a folder")?.into());
        } else {
            dirs.push(PathBuf::from(a));
        }
    }
    let extractor = FingerExtractor::default();
    let (mut all_ms, mut all_n) = (0.0f64, 0usize);
    for dir in &dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "tif" || e == "png"))
            .collect();
        files.sort();
        let (mut ms, mut count, mut errors) = (0.0f64, 0usize, 0usize);
        let mut offset_votes = vec![0usize; 61 * 61];
        let (mut n_found, mut n_truth, mut n_match, mut n_pos, mut n_flip) = (0, 0, 0, 0, 0);
        for path in &files {
            let img = decode_file(path, &Limits::default())?.to_grey();
            let t = Instant::now();
            let result = extractor.extract(&img, None);
            ms += t.elapsed().as_secs_f64() * 1e3;
            count += 1;
            let ex = match result {
                Ok(ex) => ex,
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    errors += 1;
                    continue;
                }
            };
            let found = &ex.template.minutiae;
            let iso = path.with_extension("iso");
            let truth = match std::fs::read(&iso) {
                Ok(bytes) => in_image_frame(&MinutiaeRecord::decode(&bytes)?.to_template(0)?, &img),
                Err(_) => Vec::new(),
            };
            if search {
                for dy in (-60..=60).step_by(2) {
                    for dx in (-60..=60).step_by(2) {
                        let shifted: Vec<Minutia> = truth
                            .iter()
                            .map(|m| Minutia {
                                x: (i32::from(m.x) + dx).max(0) as u16,
                                y: (i32::from(m.y) + dy).max(0) as u16,
                                ..*m
                            })
                            .collect();
                        let k = ((dy + 60) / 2 * 61 + (dx + 60) / 2) as usize;
                        offset_votes[k] += pair(found, &shifted, 180.0).len();
                    }
                }
            }
            n_found += found.len();
            n_truth += truth.len();
            n_match += pair(found, &truth, MAX_ANGLE).len();
            let by_pos = pair(found, &truth, 180.0);
            n_pos += by_pos.len();
            n_flip += by_pos
                .iter()
                .filter(|&&(i, j)| angle_diff(found[i].angle, truth[j].angle).to_degrees() > 150.0)
                .count();
            if let Some(out) = &dump {
                std::fs::create_dir_all(out)?;
                let name = format!(
                    "{}_{}.png",
                    dir.file_name().and_then(|n| n.to_str()).unwrap_or("db"),
                    path.file_stem().and_then(|n| n.to_str()).unwrap_or("img")
                );
                std::fs::write(
                    Path::new(out).join(name),
                    encode_png(&draw(&img, found, &truth))?,
                )?;
            }
        }
        if search {
            let best = (0..offset_votes.len())
                .max_by_key(|&k| offset_votes[k])
                .unwrap_or(0);
            println!(
                "best extra offset dx {} dy {} ({} pairs)",
                (best % 61) as i32 * 2 - 60,
                (best / 61) as i32 * 2 - 60,
                offset_votes[best]
            );
        }
        let precision = n_match as f64 / n_found.max(1) as f64;
        let recall = n_match as f64 / n_truth.max(1) as f64;
        println!(
            "{}: {count} images, {errors} errors, {:.1} ms/image, {:.1} minutiae/image (ISO {:.1}), \
             precision {:.3} recall {:.3}; position-only pairs {n_pos}, of which reversed {n_flip}",
            dir.display(),
            ms / count.max(1) as f64,
            n_found as f64 / count.max(1) as f64,
            n_truth as f64 / count.max(1) as f64,
            precision,
            recall,
        );
        all_ms += ms;
        all_n += count;
    }
    println!(
        "all: {all_n} images, {:.1} ms/image",
        all_ms / all_n.max(1) as f64
    );
    Ok(())
}
