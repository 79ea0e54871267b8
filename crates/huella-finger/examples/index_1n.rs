//! 1:N with the index code on FVC fingers among synthetic distractors: is the true mate
//! in the short list, and how long do the scan and the re-scoring take on one core?
//!
//! ```text
//! cargo run --release -p huella-finger --example index_1n -- \
//!     --data ../shared/datasets/fvc2002 [--source templates|images] [--gallery 1000000] \
//!     [--distinct 20000] [--shortlists 100,300,1000,3000,10000] [--matcher-ceiling] \
//!     [--two-fingers]
//! ```
//!
//! `--matcher-ceiling` instead ranks every mate with the full matcher among the
//! `--distinct` distractors and among the real non-mates (use a small `--distinct`: it
//! compares every probe with every distractor). On FVC2002 DB1-4 B with 1,500
//! distractors the full matcher keeps the mate in its top 1% for 96.65% of genuine
//! pairs, top 3% 98.12%, top 5% 98.39%, top 9% and 10% 99.06% (among the real non-mates:
//! top 10% 98.79%): the ceiling of any short list of that size that the matcher ranks.
//!
//! With the defaults, `--gallery 1000000 --distinct 20000` on one core: scan 85 ms per
//! probe; mate kept for 72.3% of genuine pairs in a 100-entry short list, 81.7% at
//! 1,000, 85.9% at 3,000, 90.7% at 10,000, 93.9% at 30,000, 96.4% at 70,000 (983 ms
//! with re-scoring on a loaded machine), 97.4% at 100,000. Single-cell hash bits gave
//! 59.2%, 76.8%, 84.3%, 90.8%, 94.2% and 96.9% in the same session. The times are
//! each probe's fastest of three runs, split into scan + select and re-scoring.
//!
//! `--two-fingers` also reports two-finger probes (virtual subjects of two different
//! FVC fingers, each finger in its own index of `--gallery` entries): with a 10,000-entry
//! short list per finger the subject was kept for 99.17% of two-finger genuine pairs in
//! 576 ms per probe on a quiet machine (single finger: 96.92% within 981 ms at 90,000).
//!
//! Gallery: every FVC impression (all databases) plus distractors. Distractors are FVC
//! impressions replicated with noise, in two stages: `--distinct` templates are made by
//! rotating (±30°), translating (±40 px), jittering (±4 px, ±0.15 rad), dropping 25% and
//! adding 10% spurious minutiae, then coded with the full pipeline; the rest of the
//! gallery repeats those codes with bit noise (each set bit dropped with p = 1/8, each
//! clear bit set with p = 1/128), since building a million cylinder sets would take an
//! hour here. Probes: every impression; for each other impression of the same finger (a
//! genuine pair) the mate's rank is counted among the gallery minus the probe itself and
//! minus the distractors made from the probe's own finger.
use huella_finger::{
    CodeIndex, FingerCode, FingerCoder, FingerExtractor, FingerTemplate, IndexCodeParams, Matcher,
    Minutia, MinutiaeRecord, PreparedFinger,
};
use std::error::Error;
use std::f32::consts::TAU;
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn between(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
}

fn perturb(t: &FingerTemplate, rng: &mut Rng) -> FingerTemplate {
    let rot = rng.between(-0.52, 0.52);
    let (dx, dy) = (rng.between(-40.0, 40.0), rng.between(-40.0, 40.0));
    let (s, c) = rot.sin_cos();
    let (cx, cy) = (t.width as f32 / 2.0, t.height as f32 / 2.0);
    let inside = |x: f32, y: f32| x >= 0.0 && y >= 0.0 && x < t.width as f32 && y < t.height as f32;
    let mut minutiae = Vec::with_capacity(t.minutiae.len() * 2);
    for m in &t.minutiae {
        if rng.unit() < 0.25 {
            continue;
        }
        let (u, v) = (m.x as f32 - cx, m.y as f32 - cy);
        let x = cx + c * u + s * v + dx + rng.between(-4.0, 4.0);
        let y = cy - s * u + c * v + dy + rng.between(-4.0, 4.0);
        let angle = (m.angle + rot + rng.between(-0.15, 0.15)).rem_euclid(TAU);
        if inside(x, y) {
            minutiae.push(Minutia {
                x: x as u16,
                y: y as u16,
                angle,
                ..*m
            });
        }
    }
    let extra = (t.minutiae.len() as f32 * 0.1).round() as usize;
    for _ in 0..extra {
        let x = rng.between(0.0, t.width as f32 - 1.0);
        let y = rng.between(0.0, t.height as f32 - 1.0);
        minutiae.push(Minutia {
            x: x as u16,
            y: y as u16,
            angle: rng.between(0.0, TAU),
            ..t.minutiae[0]
        });
    }
    FingerTemplate {
        minutiae,
        ..t.clone()
    }
}

fn noisy(code: &FingerCode, rng: &mut Rng) -> FingerCode {
    // Rebuild through the public API: a code is its words.
    let words: Vec<u64> = code
        .as_words()
        .iter()
        .map(|&w| {
            let keep = rng.next() | rng.next() | rng.next();
            let add = rng.next()
                & rng.next()
                & rng.next()
                & rng.next()
                & rng.next()
                & rng.next()
                & rng.next();
            (w & keep) | add
        })
        .collect();
    FingerCode::from_words(words)
}

/// One impression: database folder, finger number, template.
type Sample = (String, u32, FingerTemplate);

fn load_all(root: &Path, images: bool) -> Result<Vec<Sample>, Box<dyn Error>> {
    let extractor = FingerExtractor::default();
    let mut out = Vec::new();
    let mut dbs: Vec<PathBuf> = std::fs::read_dir(root)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dbs.sort();
    for db in dbs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&db)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "tif"))
            .collect();
        files.sort();
        for f in files {
            let finger: u32 = f
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.split('_').next())
                .and_then(|s| s.parse().ok())
                .ok_or("bad name")?;
            let t = if images {
                let img = huella_imaging::decode_file(&f, &huella_imaging::Limits::default())?;
                extractor.extract(&img.to_grey(), img.ppi())?.template
            } else {
                MinutiaeRecord::decode(&std::fs::read(f.with_extension("iso"))?)?.to_template(0)?
            };
            out.push((db.display().to_string(), finger, t));
        }
    }
    Ok(out)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let data = PathBuf::from(flag("--data").ok_or("--data <FVC root> is required")?);
    let images = flag("--source").as_deref() == Some("images");
    let gallery_size: usize = flag("--gallery").map_or(Ok(1_000_000), |s| s.parse())?;
    let distinct: usize = flag("--distinct").map_or(Ok(20_000), |s| s.parse())?;
    let shortlists: Vec<usize> = flag("--shortlists")
        .unwrap_or_else(|| "100,300,1000,3000,10000".into())
        .split(',')
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;

    let samples = load_all(&data, images)?;
    let matcher = Matcher::default();
    let defaults = IndexCodeParams::default();
    let coder = FingerCoder::new(IndexCodeParams {
        hashes: flag("--hashes").map_or(Ok(defaults.hashes), |s| s.parse())?,
        bits_per_hash: flag("--bits").map_or(Ok(defaults.bits_per_hash), |s| s.parse())?,
        inner_radius: flag("--inner").map_or(Ok(defaults.inner_radius), |s| s.parse())?,
        ..defaults
    })?;
    let real: Vec<PreparedFinger> = samples.iter().map(|s| matcher.prepare(&s.2)).collect();
    let finger_of = |i: usize| (samples[i].0.as_str(), samples[i].1);
    // Distinct distractors through the full pipeline, then noisy copies of their codes.
    let mut rng = Rng(0x5EED);
    let t0 = Instant::now();
    let mut parents: Vec<usize> = Vec::with_capacity(distinct);
    let mut distractors: Vec<PreparedFinger> = Vec::with_capacity(distinct);
    for _ in 0..distinct {
        let src = (rng.next() % samples.len() as u64) as usize;
        parents.push(src);
        distractors.push(matcher.prepare(&perturb(&samples[src].2, &mut rng)));
    }
    let distinct_codes: Vec<FingerCode> = distractors.iter().map(|p| coder.code(p)).collect();
    let prep_s = t0.elapsed().as_secs_f64();
    if args.iter().any(|a| a == "--matcher-ceiling") {
        // The full matcher as the filter: where each mate ranks among the distinct
        // distractors and among the real non-mates (what no pre-filter is likely to beat).
        let mut ranks = Vec::new();
        for i in 0..real.len() {
            let ds: Vec<f32> = (0..distinct)
                .filter(|&d| finger_of(parents[d]) != finger_of(i))
                .map(|d| matcher.compare(&real[i], &distractors[d]))
                .collect();
            let rs: Vec<(usize, f32)> = (0..real.len())
                .filter(|&j| j != i && finger_of(j) != finger_of(i))
                .map(|j| (j, matcher.compare(&real[i], &real[j])))
                .collect();
            for j in 0..real.len() {
                if j == i || finger_of(j) != finger_of(i) {
                    continue;
                }
                let s = matcher.compare(&real[i], &real[j]);
                let better = ds.iter().filter(|&&x| x >= s).count();
                let better_real = rs.iter().filter(|x| x.1 >= s).count();
                ranks.push((
                    better as f64 / ds.len() as f64,
                    better_real as f64 / rs.len() as f64,
                ));
            }
        }
        for q in [0.0, 0.001, 0.01, 0.03, 0.05, 0.07, 0.09, 0.1] {
            let k = ranks.iter().filter(|r| r.0 <= q).count();
            let kr = ranks.iter().filter(|r| r.1 <= q).count();
            println!(
                "matcher: mate within top {q} of distractors: {:.2}%, of real non-mates: {:.2}%",
                100.0 * k as f64 / ranks.len() as f64,
                100.0 * kr as f64 / ranks.len() as f64
            );
        }
        return Ok(());
    }
    let mut index = CodeIndex::new(&coder);
    // Entry -> (source sample, distinct distractor or none for a real impression).
    let mut origin: Vec<(usize, Option<usize>)> = Vec::with_capacity(gallery_size + real.len());
    for (i, p) in real.iter().enumerate() {
        index.push(&coder.code(p))?;
        origin.push((i, None));
    }
    for k in 0..gallery_size.saturating_sub(real.len()) {
        let d = k % distinct;
        let code = if k < distinct {
            distinct_codes[d].clone()
        } else {
            noisy(&distinct_codes[d], &mut rng)
        };
        index.push(&code)?;
        origin.push((parents[d], Some(d)));
    }
    println!(
        "gallery {} codes ({} MB), {} distinct distractors prepared in {:.1} s",
        index.len(),
        index.memory_bytes() >> 20,
        distinct,
        prep_s
    );

    // Ranks of every genuine pair (with its finger), and the scan time per probe.
    let mut ranks = Vec::new();
    let mut pair_finger = Vec::new();
    let mut scan_s = 0.0;
    for i in 0..real.len() {
        let probe = coder.code(&real[i]);
        let t = Instant::now();
        let scores = index.scores(&probe);
        scan_s += t.elapsed().as_secs_f64();
        // Every counted entry as a key that sorts best-first (scores are non-negative,
        // so their bits order like the values), ties by position: the mate's rank is
        // the number of keys below its own.
        let mut keys: Vec<u64> = (0..scores.len())
            .filter(|&k| {
                k != i && (origin[k].1.is_none() || finger_of(origin[k].0) != finger_of(i))
            })
            .map(|k| u64::from(!scores[k].to_bits()) << 32 | k as u64)
            .collect();
        keys.sort_unstable();
        for (j, s) in scores.iter().enumerate().take(real.len()) {
            if j == i || finger_of(j) != finger_of(i) {
                continue;
            }
            let key = u64::from(!s.to_bits()) << 32 | j as u64;
            ranks.push(keys.partition_point(|&x| x < key));
            pair_finger.push(finger_of(i));
        }
    }
    let scan_ms = scan_s * 1e3 / real.len() as f64;
    println!(
        "{} genuine pairs; scan of {} codes: {:.1} ms per probe",
        ranks.len(),
        index.len(),
        scan_ms
    );
    // Scan + select, and re-scoring with the full matcher, for a short list of l entries:
    // mean over 10 probes of each probe's fastest of 3 runs (the machine is shared: the
    // fastest run is the one least slowed by other work).
    let shortlist_cost = |l: usize| -> (f64, f64) {
        let probes = 10.min(real.len());
        let (mut select_s, mut rescore_s) = (0.0, 0.0);
        let mut sink = 0.0f32;
        for probe in real.iter().take(probes) {
            let code = coder.code(probe);
            let (mut best_select, mut best_rescore) = (f64::INFINITY, f64::INFINITY);
            for _ in 0..3 {
                let t = Instant::now();
                let hits = index.search(&code, l);
                best_select = best_select.min(t.elapsed().as_secs_f64());
                let t = Instant::now();
                for (k, _) in hits {
                    let g = match origin[k] {
                        (src, None) => &real[src],
                        (_, Some(d)) => &distractors[d],
                    };
                    sink += matcher.compare(probe, g);
                }
                best_rescore = best_rescore.min(t.elapsed().as_secs_f64());
            }
            select_s += best_select;
            rescore_s += best_rescore;
        }
        std::hint::black_box(sink);
        (
            select_s * 1e3 / probes as f64,
            rescore_s * 1e3 / probes as f64,
        )
    };
    for &l in &shortlists {
        let kept = ranks.iter().filter(|&&r| r < l).count();
        let (select_ms, rescore_ms) = shortlist_cost(l);
        println!(
            "short list {:>6} ({:.3}% of the gallery): mate kept for {:.2}% of genuine pairs; scan + select {:.0} ms + re-score {:.0} ms ({:.2} us per comparison) = {:.0} ms per probe",
            l,
            100.0 * l as f64 / index.len() as f64,
            100.0 * kept as f64 / ranks.len() as f64,
            select_ms,
            rescore_ms,
            rescore_ms * 1e3 / l as f64,
            select_ms + rescore_ms
        );
    }
    if args.iter().any(|a| a == "--two-fingers") {
        // Two-finger probes: virtual subjects made of two different FVC fingers (every
        // genuine pair of one finger with every genuine pair of another), each finger
        // searched in its own index of the gallery's size. The subject is kept when
        // either finger's mate is in that finger's short list of `l`; every subject
        // in either list is then scored on both fingers (2l comparisons per finger).
        for &l in &shortlists {
            let (mut kept, mut total) = (0u64, 0u64);
            for (x, (&ra, fa)) in ranks.iter().zip(&pair_finger).enumerate() {
                for (&rb, fb) in ranks[x + 1..].iter().zip(&pair_finger[x + 1..]) {
                    if fa != fb {
                        total += 1;
                        kept += u64::from(ra < l || rb < l);
                    }
                }
            }
            // Per finger: scan and select l, and score 2l entries (timed as a short
            // list of 2l).
            let (select_ms, _) = shortlist_cost(l);
            let (_, rescore_ms) = shortlist_cost(2 * l);
            println!(
                "two fingers, short list {:>6} per finger: subject kept for {:.3}% of {} genuine two-finger pairs; 2 x (scan + select {:.0} ms + score 2 x {} {:.0} ms) = {:.0} ms per probe",
                l,
                100.0 * kept as f64 / total as f64,
                total,
                select_ms,
                l,
                rescore_ms,
                2.0 * (select_ms + rescore_ms)
            );
        }
    }
    Ok(())
}
