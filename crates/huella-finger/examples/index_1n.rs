//! 1:N with the index on FVC fingers among synthetic distractors: is the true mate in
//! the short list, and how long do the search and the re-scoring take on one core?
//!
//! ```text
//! cargo run --release -p huella-finger --example index_1n -- \
//!     --data ../shared/datasets/fvc2002 [--source templates|images] [--gallery 1000000] \
//!     [--shortlists 100,300,1000,3000,10000] [--long 100000,300000] \
//!     [--two-fingers 1000,10000] [--pool 20000] [--threads 1,2] \
//!     [--matcher-ceiling [--distinct 1500]] [--hashes H --bits B --inner R --seed S]
//! ```
//!
//! Short lists are reported first as the code alone makes them (the code's `l` best),
//! then, for each `--long L`, as the index's two stages make them: the code's `L` best,
//! of which the `l` with the most similar cylinder sketches.
//!
//! Gallery: every FVC impression (all databases) plus distractors, each made from a
//! randomly drawn FVC impression by rotating (±30°), translating (±40 px), jittering
//! (±4 px, ±0.15 rad), dropping 25% and adding 10% spurious minutiae, then taken through
//! the full pipeline (cylinders, code, sketches) on every core: a million distractors
//! take about 100 s on two cores. Only their codes and sketches are kept, and the prepared templates of the first
//! `--pool` distractors, which stand in for the short-listed distractors when the
//! re-scoring is timed. Probes: every impression; for each other impression of the same
//! finger (a genuine pair) the mate's rank is counted among the gallery minus the probe
//! itself and minus the distractors made from the probe's own finger. The times are each
//! of 10 probes' fastest of three runs, split into the index search (scan, select,
//! sketches) and re-scoring, both on a pool of each of `--threads` threads (default 1:
//! one core; two-finger probes on the first).
//!
//! Until 2026-11-30 only 20,000 distractors were made this way and the rest of the
//! gallery repeated their codes with bit noise. Those copies are much easier to tell from
//! a mate than distinct distractors (in a 9% short list the same code kept the mate for
//! 96.92% of genuine pairs among them, 88.35% among distinct ones), so every figure made
//! that way was optimistic; see BENCHMARKS.md.
//!
//! `--two-fingers L1,L2,..` also reports two-finger probes (virtual subjects of two
//! different FVC fingers, each finger in its own index of `--gallery` entries) with
//! short lists of `L1`, `L2`, ... per finger.
//!
//! `--matcher-ceiling` instead ranks every mate with the full matcher among the first
//! `--distinct` distractors and among the real non-mates (it compares every probe with
//! every one of them): the ceiling of any short list of that size that the matcher
//! itself would rank; and the same with the sketches alone.
use huella_finger::{
    sketch_similarity, CodeIndex, FingerCoder, FingerExtractor, FingerKey, FingerSketch,
    FingerTemplate, IndexCodeParams, Matcher, Minutia, MinutiaeRecord, PreparedFinger,
};
use rayon::prelude::*;
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

/// Distractor `k`: an FVC impression (which one drawn by `k`'s own generator, so that
/// distractors can be made in any order and on any thread) moved and disturbed by
/// [`perturb`]. Returns the source impression too.
fn distractor(samples: &[Sample], k: usize) -> (usize, FingerTemplate) {
    let mut rng = Rng(0x5EED ^ (k as u64).wrapping_mul(0xD129_0E4D_5A3B_8C71));
    let src = (rng.next() % samples.len() as u64) as usize;
    (src, perturb(&samples[src].2, &mut rng))
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
    let distinct: usize = flag("--distinct").map_or(Ok(1_500), |s| s.parse())?;
    let pool: usize = flag("--pool").map_or(Ok(20_000), |s| s.parse())?;
    let lists = |name: &str, default: &str| -> Result<Vec<usize>, std::num::ParseIntError> {
        flag(name)
            .unwrap_or_else(|| default.into())
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse())
            .collect()
    };
    let shortlists = lists("--shortlists", "100,300,1000,3000,10000")?;
    let longs = lists("--long", "")?;
    let two_finger_lists = lists("--two-fingers", "")?;
    let search_pools = lists("--threads", "1")?
        .into_iter()
        .map(|n| rayon::ThreadPoolBuilder::new().num_threads(n).build())
        .collect::<Result<Vec<_>, _>>()?;

    let samples = load_all(&data, images)?;
    let matcher = Matcher::default();
    let defaults = IndexCodeParams::default();
    let coder = FingerCoder::new(IndexCodeParams {
        hashes: flag("--hashes").map_or(Ok(defaults.hashes), |s| s.parse())?,
        bits_per_hash: flag("--bits").map_or(Ok(defaults.bits_per_hash), |s| s.parse())?,
        inner_radius: flag("--inner").map_or(Ok(defaults.inner_radius), |s| s.parse())?,
        seed: flag("--seed").map_or(Ok(defaults.seed), |s| s.parse())?,
    })?;
    let real: Vec<PreparedFinger> = samples.iter().map(|s| matcher.prepare(&s.2)).collect();
    let finger_of = |i: usize| (samples[i].0.as_str(), samples[i].1);
    let t0 = Instant::now();
    if args.iter().any(|a| a == "--matcher-ceiling") {
        // The full matcher as the filter: where each mate ranks among `distinct`
        // distractors and among the real non-mates (what no pre-filter is likely to beat).
        let (parents, distractors): (Vec<usize>, Vec<PreparedFinger>) = (0..distinct)
            .map(|k| {
                let (src, t) = distractor(&samples, k);
                (src, matcher.prepare(&t))
            })
            .unzip();
        // Where each mate ranks by `score(probe, distractor)` / `real(probe, other)`.
        let ceiling = |name: &str,
                       score: &dyn Fn(usize, usize) -> f32,
                       real_score: &dyn Fn(usize, usize) -> f32| {
            let mut ranks = Vec::new();
            for i in 0..real.len() {
                let ds: Vec<f32> = (0..distinct)
                    .filter(|&d| finger_of(parents[d]) != finger_of(i))
                    .map(|d| score(i, d))
                    .collect();
                let rs: Vec<f32> = (0..real.len())
                    .filter(|&j| j != i && finger_of(j) != finger_of(i))
                    .map(|j| real_score(i, j))
                    .collect();
                for j in 0..real.len() {
                    if j == i || finger_of(j) != finger_of(i) {
                        continue;
                    }
                    let s = real_score(i, j);
                    let better = ds.iter().filter(|&&x| x >= s).count();
                    let better_real = rs.iter().filter(|&&x| x >= s).count();
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
                    "{name}: mate within top {q} of distractors: {:.2}%, of real non-mates: {:.2}%",
                    100.0 * k as f64 / ranks.len() as f64,
                    100.0 * kr as f64 / ranks.len() as f64
                );
            }
        };
        ceiling(
            "matcher",
            &|i, d| matcher.compare(&real[i], &distractors[d]),
            &|i, j| matcher.compare(&real[i], &real[j]),
        );
        let sketches: Vec<FingerSketch> = distractors.iter().map(|p| coder.sketch(p)).collect();
        let real_sketches: Vec<FingerSketch> = real.iter().map(|p| coder.sketch(p)).collect();
        ceiling(
            "sketches",
            &|i, d| sketch_similarity(&real_sketches[i], &sketches[d]),
            &|i, j| sketch_similarity(&real_sketches[i], &real_sketches[j]),
        );
        return Ok(());
    }
    // Every distractor through the full pipeline (perturbed template, cylinders, code,
    // sketches), on every core; only the codes and sketches are kept, and the prepared templates of the first
    // `pool` distractors, which stand in for the short-listed ones when re-scoring is
    // timed (a million prepared templates would take about 10 GB).
    let count = gallery_size.saturating_sub(real.len());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = count.div_ceil(threads).max(1);
    let parts: Vec<Vec<(usize, FingerKey, Option<PreparedFinger>)>> = std::thread::scope(|scope| {
        let (samples, matcher, coder) = (&samples, &matcher, &coder);
        let handles: Vec<_> = (0..count)
            .step_by(chunk)
            .map(|lo| {
                scope.spawn(move || {
                    (lo..(lo + chunk).min(count))
                        .map(|k| {
                            let (src, t) = distractor(samples, k);
                            let prepared = matcher.prepare(&t);
                            (src, coder.key(&prepared), (k < pool).then_some(prepared))
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a distractor thread panicked"))
            .collect()
    });
    let mut index = CodeIndex::new(&coder);
    // Entry -> (source sample, whether it is a distractor).
    let mut origin: Vec<(usize, bool)> = Vec::with_capacity(gallery_size.max(real.len()));
    for (i, p) in real.iter().enumerate() {
        index.push(coder.key(p))?;
        origin.push((i, false));
    }
    let mut timing_pool: Vec<PreparedFinger> = Vec::with_capacity(pool.min(count));
    for (src, key, prepared) in parts.into_iter().flatten() {
        index.push(key)?;
        origin.push((src, true));
        timing_pool.extend(prepared);
    }
    println!(
        "gallery {} codes ({} MB), {} distractors made in {:.1} s on {} threads",
        index.len(),
        index.memory_bytes() >> 20,
        count,
        t0.elapsed().as_secs_f64(),
        threads
    );

    // Ranks of every genuine pair (with its finger) in each list: by code alone (the
    // first), then through each long list by sketch; and the scan time per probe.
    let probe_keys: Vec<FingerKey> = real.iter().map(|p| coder.key(p)).collect();
    let mut ranks: Vec<Vec<usize>> = vec![Vec::new(); 1 + longs.len()];
    let mut pair_finger = Vec::new();
    let mut scan_s = 0.0;
    for (i, probe) in probe_keys.iter().enumerate() {
        let t = Instant::now();
        let scores = index.scores(&probe.code);
        scan_s += t.elapsed().as_secs_f64();
        // Every counted entry as a key that sorts best-first (scores are non-negative,
        // so their bits order like the values), ties by position: the mate's rank is
        // the number of keys below its own.
        let key = |s: f32, k: usize| u64::from(!s.to_bits()) << 32 | k as u64;
        let mut keys: Vec<u64> = (0..scores.len())
            .filter(|&k| k != i && (!origin[k].1 || finger_of(origin[k].0) != finger_of(i)))
            .map(|k| key(scores[k], k))
            .collect();
        keys.sort_unstable();
        let mates: Vec<usize> = (0..real.len())
            .filter(|&j| j != i && finger_of(j) == finger_of(i))
            .collect();
        let code_rank: Vec<usize> = mates
            .iter()
            .map(|&j| keys.partition_point(|&x| x < key(scores[j], j)))
            .collect();
        ranks[0].extend(&code_rank);
        pair_finger.extend(mates.iter().map(|_| finger_of(i)));
        // The sketches of the longest long list, and the mates' own.
        let longest = longs.iter().copied().max().unwrap_or(0).min(keys.len());
        let sketched: Vec<(usize, f32)> = keys[..longest]
            .iter()
            .map(|&x| (x & 0xFFFF_FFFF) as usize)
            .map(|k| (k, index.sketch_similarity(&probe.sketch, k)))
            .collect();
        let mate_sketched: Vec<f32> = mates
            .iter()
            .map(|&j| index.sketch_similarity(&probe.sketch, j))
            .collect();
        for (r, &long) in longs.iter().enumerate() {
            let mut in_list: Vec<u64> = sketched[..long.min(sketched.len())]
                .iter()
                .map(|&(k, s)| key(s, k))
                .collect();
            in_list.sort_unstable();
            for ((&j, &c), &s) in mates.iter().zip(&code_rank).zip(&mate_sketched) {
                ranks[1 + r].push(if c < long {
                    in_list.partition_point(|&x| x < key(s, j))
                } else {
                    usize::MAX
                });
            }
        }
    }
    let scan_ms = scan_s * 1e3 / real.len() as f64;
    println!(
        "{} genuine pairs; scan of {} codes: {:.1} ms per probe",
        ranks[0].len(),
        index.len(),
        scan_ms
    );
    // Search (scan, select, sketches), and re-scoring with the full matcher, for a long
    // list of `long` and a short list of `l` entries: mean over 10 probes of each
    // probe's fastest of 3 runs (the machine is shared: the fastest run is the one least
    // slowed by other work).
    let shortlist_cost = |search_pool: &rayon::ThreadPool, long: usize, l: usize| -> (f64, f64) {
        let probes = 10.min(real.len());
        let (mut select_s, mut rescore_s) = (0.0, 0.0);
        let mut sink = 0.0f32;
        for (probe, key) in real.iter().zip(&probe_keys).take(probes) {
            let (mut best_select, mut best_rescore) = (f64::INFINITY, f64::INFINITY);
            for _ in 0..3 {
                let t = Instant::now();
                let hits = search_pool.install(|| index.search(key, long, l, |_| true));
                best_select = best_select.min(t.elapsed().as_secs_f64());
                let t = Instant::now();
                sink += search_pool.install(|| {
                    hits.par_iter()
                        .map(|&(k, _)| {
                            let g = match origin[k] {
                                (src, false) => &real[src],
                                _ => &timing_pool[k % timing_pool.len().max(1)],
                            };
                            matcher.compare(probe, g)
                        })
                        .sum::<f32>()
                });
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
    // The long list of each rank list (0: the code alone, so the short list itself).
    let long_of = |r: usize, l: usize| if r == 0 { l } else { longs[r - 1].max(l) };
    for (r, rank) in ranks.iter().enumerate() {
        for &l in &shortlists {
            let long = long_of(r, l);
            let kept = rank.iter().filter(|&&x| x < l).count();
            for pool in &search_pools {
                let (select_ms, rescore_ms) = shortlist_cost(pool, long, l);
                println!(
                    "long list {:>7}, short list {:>6} ({:.3}% of the gallery): mate kept for {:.2}% of genuine pairs; {} thread(s): search {:.0} ms + re-score {:.0} ms ({:.2} us per comparison) = {:.0} ms per probe",
                    long,
                    l,
                    100.0 * l as f64 / index.len() as f64,
                    100.0 * kept as f64 / rank.len() as f64,
                    pool.current_num_threads(),
                    select_ms,
                    rescore_ms,
                    rescore_ms * 1e3 / l.min(index.len()) as f64,
                    select_ms + rescore_ms
                );
            }
        }
    }
    // Two-finger probes: virtual subjects made of two different FVC fingers (every
    // genuine pair of one finger with every genuine pair of another), each finger
    // searched in its own index of the gallery's size. The subject is kept when
    // either finger's mate is in that finger's short list of `l`; every subject
    // in either list is then scored on both fingers (2l comparisons per finger).
    for (r, rank) in ranks.iter().enumerate() {
        for &l in &two_finger_lists {
            let (mut kept, mut total) = (0u64, 0u64);
            for (x, (&ra, fa)) in rank.iter().zip(&pair_finger).enumerate() {
                for (&rb, fb) in rank[x + 1..].iter().zip(&pair_finger[x + 1..]) {
                    if fa != fb {
                        total += 1;
                        kept += u64::from(ra < l || rb < l);
                    }
                }
            }
            // Per finger: search for l, and score 2l entries (timed as a short list
            // of 2l).
            let pool = &search_pools[0];
            let (select_ms, _) = shortlist_cost(pool, long_of(r, l), l);
            let (_, rescore_ms) = shortlist_cost(pool, 2 * l, 2 * l);
            println!(
                "two fingers, long list {:>7}, short list {:>6} per finger: subject kept for {:.3}% of {} genuine two-finger pairs; 2 x (search {:.0} ms + score 2 x {} {:.0} ms) = {:.0} ms per probe",
                long_of(r, l),
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
