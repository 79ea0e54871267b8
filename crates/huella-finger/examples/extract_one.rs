//! Extracts one image and prints its minutiae (debugging aid).
//!
//! `cargo run --release -p huella-finger --example extract_one -- IMAGE [PPI]`
use huella_finger::FingerExtractor;
use huella_imaging::{decode_file, Limits};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: extract_one IMAGE [PPI]")?;
    let ppi = args.next().map(|p| p.parse::<f32>()).transpose()?;
    let img = decode_file(path.as_ref(), &Limits::default())?.to_grey();
    let ex = FingerExtractor::default().extract(&img, ppi)?;
    println!(
        "{} minutiae, quality {}",
        ex.template.minutiae.len(),
        ex.template.quality
    );
    for m in &ex.template.minutiae {
        println!(
            "{:4} {:4} {:6.1} {:?} q{}",
            m.x,
            m.y,
            m.angle.to_degrees(),
            m.kind,
            m.quality
        );
    }
    Ok(())
}
