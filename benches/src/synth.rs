//! Deterministic, identity-structured synthetic embeddings.
//!
//! Each identity has a centre drawn uniformly on the unit sphere. Each of its samples is
//! `normalise(centre + sigma * z)` with `z ~ N(0, I_d)`. Two samples of one identity then
//! have an expected cosine close to `1 / (1 + d sigma^2)`, so `sigma` is chosen from the
//! requested mean mate cosine; samples of different identities are nearly orthogonal
//! (cosine ~ N(0, 1/d)). The gallery holds `samples_per_identity` samples per identity;
//! each query identity also gets one held-out probe sample that is not in the gallery.
//!
//! Everything is a pure function of the configuration: each identity draws from its own
//! generator seeded from `(seed, identity)`, so the output does not depend on the number
//! of threads, and the gallery does not depend on the number of queries.

use huella_core::Embedding;
use rand::seq::index::sample;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use rayon::prelude::*;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Number of identities in the gallery.
    pub identities: usize,
    /// Gallery samples per identity.
    pub samples_per_identity: usize,
    /// Embedding dimension.
    pub dim: usize,
    /// Number of query identities (each gets one held-out probe); at most `identities`.
    pub queries: usize,
    /// Target mean cosine between two samples of one identity, in (0, 1).
    pub mate_cosine: f64,
    /// Master seed.
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            identities: 1000,
            samples_per_identity: 4,
            dim: 192,
            queries: 100,
            mate_cosine: 0.7,
            seed: 42,
        }
    }
}

impl SynthConfig {
    /// Per-component noise standard deviation giving the target mean mate cosine.
    pub fn noise_sigma(&self) -> f64 {
        let m = self.mate_cosine.clamp(1e-3, 0.999);
        ((1.0 / m - 1.0) / self.dim as f64).sqrt()
    }
}

/// A generated data set. Gallery row `r` belongs to identity `gallery_labels[r]`; the
/// benchmark indexes it as `TemplateId(r)`.
#[derive(Debug, Clone)]
pub struct SynthData {
    /// Embedding dimension.
    pub dim: usize,
    /// Gallery samples per identity ("mates" of a probe).
    pub samples_per_identity: usize,
    /// Row-major gallery vectors, unit length, `gallery_len() x dim`.
    pub gallery: Vec<f32>,
    /// Identity of each gallery row.
    pub gallery_labels: Vec<u32>,
    /// Row-major probe vectors, unit length, `queries x dim`.
    pub queries: Vec<f32>,
    /// Identity of each probe.
    pub query_labels: Vec<u32>,
    /// The noise standard deviation used.
    pub noise_sigma: f64,
}

impl SynthData {
    /// Number of gallery rows.
    pub fn gallery_len(&self) -> usize {
        self.gallery_labels.len()
    }

    /// Gallery row `r`.
    pub fn gallery_row(&self, r: usize) -> &[f32] {
        &self.gallery[r * self.dim..(r + 1) * self.dim]
    }

    /// Probe `q`.
    pub fn query(&self, q: usize) -> &[f32] {
        &self.queries[q * self.dim..(q + 1) * self.dim]
    }
}

/// SplitMix64 finaliser: decorrelates per-identity seeds.
fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Write `normalise(centre + sigma * z)` into `out`, normalised exactly as
/// [`Embedding::new`] does so the stored values are the indexed values.
fn noisy_sample(rng: &mut StdRng, centre: &[f32], sigma: f32, out: &mut [f32]) {
    let v: Vec<f32> = centre
        .iter()
        .map(|&c| c + sigma * rng.sample::<f32, _>(StandardNormal))
        .collect();
    out.copy_from_slice(unit(v).as_slice());
}

fn unit(v: Vec<f32>) -> Embedding {
    // A sum of a unit vector and Gaussian noise, or a Gaussian vector, is zero with
    // probability 0; fall back to a basis vector rather than panic.
    let dim = v.len();
    Embedding::new(v).unwrap_or_else(|_| {
        let mut e = vec![0.0; dim];
        e[0] = 1.0;
        Embedding::new(e).unwrap_or_else(|_| unreachable!("a basis vector is a valid embedding"))
    })
}

/// Replay identity `id`'s generator: its centre, then its gallery samples, then (if
/// `probe` is given) its held-out probe.
fn identity_samples(cfg: &SynthConfig, id: usize, gallery: &mut [f32], probe: Option<&mut [f32]>) {
    let d = cfg.dim;
    let sigma = cfg.noise_sigma() as f32;
    let mut rng = StdRng::seed_from_u64(mix(cfg.seed, id as u64 + 1));
    let centre: Vec<f32> = (0..d)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    let centre = unit(centre);
    for s in 0..cfg.samples_per_identity {
        noisy_sample(
            &mut rng,
            centre.as_slice(),
            sigma,
            &mut gallery[s * d..(s + 1) * d],
        );
    }
    if let Some(p) = probe {
        noisy_sample(&mut rng, centre.as_slice(), sigma, p);
    }
}

/// Generate the data set, in parallel on the current rayon pool.
///
/// Panics if `dim` or `samples_per_identity` is 0 or there are more identities than
/// `u32` labels.
pub fn generate(cfg: &SynthConfig) -> SynthData {
    assert!(
        cfg.dim > 0 && cfg.samples_per_identity > 0,
        "empty configuration"
    );
    assert!(u32::try_from(cfg.identities).is_ok(), "too many identities");
    let d = cfg.dim;
    let per = cfg.samples_per_identity;
    let mut gallery = vec![0.0f32; cfg.identities * per * d];
    gallery
        .par_chunks_mut(per * d)
        .enumerate()
        .for_each(|(id, chunk)| identity_samples(cfg, id, chunk, None));
    let gallery_labels = (0..cfg.identities)
        .flat_map(|id| std::iter::repeat_n(id as u32, per))
        .collect();

    let q = cfg.queries.min(cfg.identities);
    let mut pick = StdRng::seed_from_u64(mix(cfg.seed, 0));
    let mut query_ids = sample(&mut pick, cfg.identities, q).into_vec();
    query_ids.sort_unstable();
    let mut queries = vec![0.0f32; q * d];
    queries
        .par_chunks_mut(d)
        .zip(query_ids.par_iter())
        .for_each(|(out, &id)| {
            let mut scratch = vec![0.0f32; per * d];
            identity_samples(cfg, id, &mut scratch, Some(out));
        });
    SynthData {
        dim: d,
        samples_per_identity: per,
        gallery,
        gallery_labels,
        queries,
        query_labels: query_ids.iter().map(|&i| i as u32).collect(),
        noise_sigma: cfg.noise_sigma(),
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// How well separated mates and non-mates are, from probe-to-gallery cosines.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Separation {
    /// Mate pairs measured: every probe against each of its gallery samples.
    pub mate_pairs: usize,
    /// Mean mate cosine.
    pub mate_mean: f64,
    /// Lowest mate cosine.
    pub mate_min: f64,
    /// 1st percentile of mate cosines.
    pub mate_p1: f64,
    /// Random non-mate (probe, gallery row) pairs sampled.
    pub nonmate_pairs: usize,
    /// Mean sampled non-mate cosine.
    pub nonmate_mean: f64,
    /// 99.99th percentile of sampled non-mate cosines.
    pub nonmate_p9999: f64,
    /// Highest sampled non-mate cosine.
    pub nonmate_max: f64,
}

/// Measure mate and non-mate cosines: all probe-to-mate pairs, and `nonmate_pairs`
/// random probe-to-other-identity pairs drawn with `seed`.
pub fn separation(data: &SynthData, nonmate_pairs: usize, seed: u64) -> Separation {
    let per = data.samples_per_identity;
    let mut mates = Vec::with_capacity(data.query_labels.len() * per);
    for (q, &label) in data.query_labels.iter().enumerate() {
        let first = label as usize * per;
        for r in first..first + per {
            mates.push(f64::from(dot(data.query(q), data.gallery_row(r))));
        }
    }
    let mut nonmates = Vec::with_capacity(nonmate_pairs);
    let mut rng = StdRng::seed_from_u64(mix(seed, u64::MAX));
    let nq = data.query_labels.len();
    let ng = data.gallery_len();
    let two_identities = data
        .gallery_labels
        .first()
        .is_some_and(|&f| data.gallery_labels.iter().any(|&l| l != f));
    while nq > 0 && two_identities && nonmates.len() < nonmate_pairs {
        let q = rng.gen_range(0..nq);
        let r = rng.gen_range(0..ng);
        if data.gallery_labels[r] != data.query_labels[q] {
            nonmates.push(f64::from(dot(data.query(q), data.gallery_row(r))));
        }
    }
    let pct = |v: &[f64], p| crate::stats::percentile(v, p).unwrap_or(f64::NAN);
    Separation {
        mate_pairs: mates.len(),
        mate_mean: crate::stats::mean(&mates),
        mate_min: mates.iter().copied().fold(f64::INFINITY, f64::min),
        mate_p1: pct(&mates, 1.0),
        nonmate_pairs: nonmates.len(),
        nonmate_mean: crate::stats::mean(&nonmates),
        nonmate_p9999: pct(&nonmates, 99.99),
        nonmate_max: nonmates.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SynthConfig {
        SynthConfig {
            identities: 300,
            dim: 64,
            queries: 40,
            ..SynthConfig::default()
        }
    }

    #[test]
    fn deterministic_and_thread_independent() {
        let a = generate(&small());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let b = pool.install(|| generate(&small()));
        assert_eq!(a.gallery, b.gallery);
        assert_eq!(a.queries, b.queries);
        assert_eq!(a.query_labels, b.query_labels);
        let c = generate(&SynthConfig { seed: 7, ..small() });
        assert_ne!(a.gallery, c.gallery);
        // More queries leave the gallery untouched.
        let d = generate(&SynthConfig {
            queries: 80,
            ..small()
        });
        assert_eq!(a.gallery, d.gallery);
    }

    #[test]
    fn shapes_labels_and_unit_length() {
        let data = generate(&small());
        assert_eq!(data.gallery.len(), 300 * 4 * 64);
        assert_eq!(data.gallery_labels[..8], [0, 0, 0, 0, 1, 1, 1, 1]);
        assert_eq!(data.queries.len(), 40 * 64);
        let mut distinct = data.query_labels.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), 40, "query identities are distinct");
        for r in 0..data.gallery_len() {
            let n: f32 = data.gallery_row(r).iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-4);
        }
        // Probes are held out: no gallery row equals a probe.
        let q0 = data.query(0);
        assert!((0..data.gallery_len()).all(|r| data.gallery_row(r) != q0));
    }

    #[test]
    fn mates_are_separated_from_non_mates() {
        let data = generate(&SynthConfig {
            dim: 192,
            ..small()
        });
        let s = separation(&data, 100_000, 1);
        assert_eq!(s.mate_pairs, 160);
        assert!(
            (s.mate_mean - 0.7).abs() < 0.05,
            "mate mean {}",
            s.mate_mean
        );
        assert!(s.nonmate_mean.abs() < 0.01);
        assert!(s.nonmate_max < s.mate_min, "{s:?}");
    }
}
