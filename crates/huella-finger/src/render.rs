//! SVG pictures of minutiae and of a comparison, for a human examiner.
//!
//! The image is embedded as a PNG data URI, so one `.svg` file is self-contained; the
//! markers follow the usual examiner convention: ridge endings as circles, bifurcations
//! as squares (other types as diamonds), each with a tick pointing in the minutia's
//! direction. Angles are counter-clockwise as viewed with y down (see the
//! [crate docs](crate)), so the tick of a minutia at `(x, y)` with angle `a` ends at
//! `(x + L cos a, y − L sin a)`.

use std::fmt::Write;

use huella_imaging::{data_uri, encode_png, GreyImage, Image};

use crate::{FingerTemplate, MatchedPair, MinutiaKind};

/// Marker half-size, pixels.
const MARKER: f32 = 4.0;
/// Direction tick length, pixels.
const TICK: f32 = 12.0;
/// Gap between the two images of a comparison, pixels.
const GAP: u32 = 20;
/// Height of the caption band above a comparison, pixels.
const CAPTION: u32 = 28;

/// `text` safe inside XML character data and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// The grey image as a `data:image/png;base64,...` URI, or `None` if it cannot be
/// encoded (an empty image).
fn png_data_uri(img: &GreyImage) -> Option<String> {
    let rgb: Vec<u8> = img.as_raw().iter().flat_map(|&v| [v, v, v]).collect();
    let rgb = Image::from_raw(img.width(), img.height(), rgb)?;
    let png = encode_png(&rgb).ok()?;
    Some(data_uri("image/png", &png))
}

/// An `<image>` element at `(dx, dy)`, or a grey rectangle when it cannot be encoded.
fn image_element(out: &mut String, img: &GreyImage, dx: u32, dy: u32) {
    let (w, h) = (img.width(), img.height());
    match png_data_uri(img) {
        Some(uri) => {
            let _ = writeln!(
                out,
                r#"<image x="{dx}" y="{dy}" width="{w}" height="{h}" href="{uri}"/>"#
            );
        }
        None => {
            let _ = writeln!(
                out,
                r##"<rect x="{dx}" y="{dy}" width="{w}" height="{h}" fill="#888"/>"##
            );
        }
    }
}

/// One `<g class="minutia">` per minutia of `t`, offset by `(dx, dy)`.
fn markers(out: &mut String, t: &FingerTemplate, dx: f32, dy: f32, colour: &str) {
    let _ = writeln!(
        out,
        r#"<g fill="none" stroke="{colour}" stroke-width="1.5">"#
    );
    for m in &t.minutiae {
        let (x, y) = (f32::from(m.x) + dx, f32::from(m.y) + dy);
        let a = if m.angle.is_finite() { m.angle } else { 0.0 };
        let (tx, ty) = (x + TICK * a.cos(), y - TICK * a.sin());
        let shape = match m.kind {
            MinutiaKind::Ending => format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="{MARKER}"/>"#),
            MinutiaKind::Bifurcation => format!(
                r#"<rect x="{:.1}" y="{:.1}" width="{s}" height="{s}"/>"#,
                x - MARKER,
                y - MARKER,
                s = 2.0 * MARKER
            ),
            MinutiaKind::Other => format!(
                r#"<polygon points="{x:.1},{:.1} {:.1},{y:.1} {x:.1},{:.1} {:.1},{y:.1}"/>"#,
                y - MARKER,
                x + MARKER,
                y + MARKER,
                x - MARKER
            ),
        };
        let _ = writeln!(
            out,
            r#"<g class="minutia">{shape}<line x1="{x:.1}" y1="{y:.1}" x2="{tx:.1}" y2="{ty:.1}"/></g>"#
        );
    }
    out.push_str("</g>\n");
}

/// An SVG of `img` with the minutiae of `t` drawn over it (`t` in `img`'s pixels).
pub fn render_minutiae_svg(img: &GreyImage, t: &FingerTemplate) -> String {
    let (w, h) = (img.width(), img.height());
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#
    );
    let _ = writeln!(
        out,
        "<title>{}</title>",
        escape(&format!("{} minutiae", t.minutiae.len()))
    );
    image_element(&mut out, img, 0, 0);
    markers(&mut out, t, 0.0, 0.0, "#e00000");
    out.push_str("</svg>\n");
    out
}

/// Colour of a matched pair of similarity `s` in `[0, 1]`: red (weak) through yellow to
/// green (strong).
fn similarity_colour(s: f32) -> String {
    let s = if s.is_finite() {
        s.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (r, g) = if s < 0.5 {
        (255.0, 510.0 * s)
    } else {
        (510.0 * (1.0 - s), 255.0)
    };
    format!("#{:02x}{:02x}00", r.round() as u8, g.round() as u8)
}

/// An SVG of two impressions side by side (`a` left, `b` right) with their minutiae,
/// a line joining each matched pair (coloured by its similarity, red to green) and the
/// score in a caption. Pairs whose indices are out of range are skipped.
pub fn render_match_svg(
    a_img: &GreyImage,
    a_t: &FingerTemplate,
    b_img: &GreyImage,
    b_t: &FingerTemplate,
    pairs: &[MatchedPair],
    score: f32,
) -> String {
    let w = a_img.width() + GAP + b_img.width();
    let h = CAPTION + a_img.height().max(b_img.height());
    let bx = a_img.width() + GAP;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#
    );
    let caption = format!(
        "score {:.3}, {} matched pairs, {} and {} minutiae",
        score,
        pairs.len(),
        a_t.minutiae.len(),
        b_t.minutiae.len()
    );
    let _ = writeln!(out, "<title>{}</title>", escape(&caption));
    let _ = writeln!(
        out,
        r#"<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="4" y="19" font-family="sans-serif" font-size="16">{}</text>"#,
        escape(&caption)
    );
    image_element(&mut out, a_img, 0, CAPTION);
    image_element(&mut out, b_img, bx, CAPTION);
    markers(&mut out, a_t, 0.0, CAPTION as f32, "#0050ff");
    markers(&mut out, b_t, bx as f32, CAPTION as f32, "#0050ff");
    out.push_str("<g stroke-width=\"1.5\">\n");
    for p in pairs {
        let (Some(ma), Some(mb)) = (a_t.minutiae.get(p.a), b_t.minutiae.get(p.b)) else {
            continue;
        };
        let _ = writeln!(
            out,
            r#"<line class="pair" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>"#,
            ma.x,
            u32::from(ma.y) + CAPTION,
            u32::from(mb.x) + bx,
            u32::from(mb.y) + CAPTION,
            similarity_colour(p.similarity)
        );
    }
    out.push_str("</g>\n</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape("<a & 'b'>\"\u{1}"),
            "&lt;a &amp; &apos;b&apos;&gt;&quot;"
        );
    }

    #[test]
    fn colours_run_red_to_green() {
        assert_eq!(similarity_colour(0.0), "#ff0000");
        assert_eq!(similarity_colour(0.5), "#ffff00");
        assert_eq!(similarity_colour(1.0), "#00ff00");
        assert_eq!(similarity_colour(f32::NAN), "#ff0000");
    }

    /// Tags open and close in order (a well-formedness check without an XML parser);
    /// returns how many elements of each name were seen.
    fn balanced(svg: &str) -> std::collections::BTreeMap<String, usize> {
        let mut stack: Vec<String> = Vec::new();
        let mut seen = std::collections::BTreeMap::new();
        let mut rest = svg;
        while let Some(open) = rest.find('<') {
            let close = rest[open..].find('>').expect("unclosed tag") + open;
            let tag = &rest[open + 1..close];
            assert!(!tag.contains('<'), "stray < in {tag:?}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            } else {
                let name = tag.split_whitespace().next().expect("tag name").to_string();
                *seen
                    .entry(name.trim_end_matches('/').to_string())
                    .or_insert(0) += 1;
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[close + 1..];
        }
        assert!(stack.is_empty(), "unclosed {stack:?}");
        seen
    }

    fn template(kinds: &[MinutiaKind]) -> FingerTemplate {
        FingerTemplate {
            width: 40,
            height: 30,
            resolution_x: 197,
            resolution_y: 197,
            position: huella_core::FingerPosition::Unknown,
            quality: 50,
            minutiae: kinds
                .iter()
                .enumerate()
                .map(|(i, &kind)| crate::Minutia {
                    x: 5 + 10 * i as u16,
                    y: 15,
                    angle: std::f32::consts::FRAC_PI_2,
                    kind,
                    quality: 60,
                })
                .collect(),
        }
    }

    #[test]
    fn minutiae_svg_is_well_formed_with_one_marker_each() {
        let img = GreyImage::from_raw(40, 30, vec![128; 40 * 30]).unwrap();
        let t = template(&[
            MinutiaKind::Ending,
            MinutiaKind::Bifurcation,
            MinutiaKind::Other,
        ]);
        let svg = render_minutiae_svg(&img, &t);
        let seen = balanced(&svg);
        assert_eq!(svg.matches(r#"class="minutia""#).count(), 3);
        assert_eq!(seen["circle"], 1);
        assert_eq!(seen["rect"], 1);
        assert_eq!(seen["polygon"], 1);
        assert!(
            svg.contains("href=\"data:image/png;base64,iVBORw0KGgo"),
            "PNG embedded"
        );
        // Angle π/2 points up the image: the tick of (5, 15) ends at (5, 3).
        assert!(
            svg.contains(r#"x1="5.0" y1="15.0" x2="5.0" y2="3.0""#),
            "{svg}"
        );
    }

    #[test]
    fn match_svg_joins_each_pair_and_prints_the_score() {
        let a = GreyImage::from_raw(40, 30, vec![200; 40 * 30]).unwrap();
        let b = GreyImage::from_raw(30, 50, vec![50; 30 * 50]).unwrap();
        let (ta, tb) = (
            template(&[MinutiaKind::Ending, MinutiaKind::Bifurcation]),
            template(&[
                MinutiaKind::Bifurcation,
                MinutiaKind::Ending,
                MinutiaKind::Ending,
            ]),
        );
        let pairs = [
            MatchedPair {
                a: 0,
                b: 1,
                similarity: 0.9,
            },
            MatchedPair {
                a: 1,
                b: 0,
                similarity: 0.2,
            },
            MatchedPair {
                a: 7,
                b: 0,
                similarity: 0.5,
            },
        ];
        let svg = render_match_svg(&a, &ta, &b, &tb, &pairs, 0.4321);
        balanced(&svg);
        assert_eq!(svg.matches(r#"class="minutia""#).count(), 5);
        // The out-of-range pair is skipped.
        assert_eq!(svg.matches(r#"class="pair""#).count(), 2);
        assert!(svg.contains("score 0.432"));
        assert_eq!(svg.matches("<image ").count(), 2);
        // Pair (a0, b1): a's (5, 15) to b's (15, 15) shifted right of a (40 + gap) and
        // both below the caption.
        assert!(svg.contains(&format!(
            r#"x1="5" y1="{}" x2="{}" y2="{}""#,
            15 + CAPTION,
            15 + 40 + GAP,
            15 + CAPTION
        )));
    }

    #[test]
    fn empty_template_and_image_still_render() {
        let img = GreyImage::from_raw(0, 0, Vec::new()).unwrap();
        let svg = render_minutiae_svg(&img, &template(&[]));
        balanced(&svg);
        assert_eq!(svg.matches(r#"class="minutia""#).count(), 0);
    }
}
