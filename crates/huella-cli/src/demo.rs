//! `huella demo`: the whole enrol / de-duplicate / identify / merge cycle on a
//! synthetic population, with its measured detection rates.
//!
//! Each synthetic person has an identity centre (a random unit vector); each capture is
//! the centre plus Gaussian noise, normalised, standing in for a face embedding until the
//! face pipeline lands. Wave 1 enrols everyone once. Wave 2 brings everyone back:
//! most under their own subject id, some under a new alias (a false identity), plus
//! people never seen before. Enrolment searches the gallery first, so the demo can count
//! how many aliases were caught and how many newcomers raised a false alarm.

use anyhow::{bail, Result};
use clap::Args;
use huella_engine::{
    Embedding, EmbeddingModel, Engine, IdentifyOptions, Modality, NewEncounter, NewTemplate,
    SubjectId, Template,
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Gallery directory to create (must not exist). Default: a new temporary directory.
    #[arg(long, short = 'g')]
    gallery: Option<PathBuf>,
    /// People enrolled in wave 1.
    #[arg(long, default_value_t = 2000)]
    people: usize,
    /// Share of wave-1 people who come back under a new alias in wave 2.
    #[arg(long, default_value_t = 0.1)]
    alias_rate: f64,
    /// Newcomers in wave 2, as a share of `people`.
    #[arg(long, default_value_t = 0.1)]
    newcomer_rate: f64,
    /// Embedding dimension of the synthetic model.
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// Per-component capture noise around a unit-length centre. At 0.05 and 128-d the
    /// noise vector has length ~0.57, so two captures of one person have cosine ~0.75
    /// while different people stay near 0 (spread ~0.09).
    #[arg(long, default_value_t = 0.05)]
    noise: f32,
    /// Score from which a candidate under another id raises a duplicate alert.
    #[arg(long, default_value_t = 0.5)]
    threshold: f32,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    gallery: String,
    people: usize,
    encounters_enrolled: usize,
    aliases_planted: usize,
    aliases_caught: usize,
    newcomers: usize,
    newcomer_false_alarms: usize,
    returning_same_id: usize,
    returning_rank1_self: usize,
    merged_subjects: usize,
    enrol_ms_mean: f64,
    identify_ms_mean: f64,
}

struct Population {
    rng: StdRng,
    dim: usize,
    noise: f32,
    model: EmbeddingModel,
}

impl Population {
    fn centre(&mut self) -> Vec<f32> {
        let v: Vec<f32> = (0..self.dim)
            .map(|_| self.rng.sample(StandardNormal))
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    fn capture(&mut self, centre: &[f32]) -> Result<Template> {
        let v: Vec<f32> = centre
            .iter()
            .map(|c| c + self.noise * self.rng.sample::<f32, _>(StandardNormal))
            .collect();
        Ok(Template::from_embedding(
            Modality::Face,
            self.model.algorithm.clone(),
            Embedding::new(v)?,
        ))
    }

    fn encounter(&mut self, subject: &str, centre: &[f32], at: i64) -> Result<NewEncounter> {
        Ok(NewEncounter {
            subject: SubjectId::new(subject)?,
            captured_at_unix_ms: at,
            location: Some(format!("Post {}", self.rng.gen_range(1..=5))),
            operator: Some("demo".into()),
            biographic: BTreeMap::from([("name".to_string(), format!("Synthetic {subject}"))]),
            templates: vec![NewTemplate {
                template: self.capture(centre)?,
                source: None,
            }],
        })
    }
}

pub fn run(args: &DemoArgs) -> Result<()> {
    if args.people == 0
        || !(0.0..=1.0).contains(&args.alias_rate)
        || !(0.0..=10.0).contains(&args.newcomer_rate)
    {
        bail!("--people must be positive, --alias-rate in 0..1, --newcomer-rate in 0..10");
    }
    let dir = match &args.gallery {
        Some(d) if d.exists() => bail!(
            "{} already exists; the demo creates a new gallery",
            d.display()
        ),
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("huella-demo-{}", std::process::id())),
    };
    let model: EmbeddingModel = format!("face:demo-face@1:{}", args.dim).parse()?;
    let engine = Engine::builder()
        .gallery(&dir)
        .create_if_missing(true)
        .model(model.clone())
        .build()?;
    let mut pop = Population {
        rng: StdRng::seed_from_u64(args.seed),
        dim: args.dim,
        noise: args.noise,
        model,
    };
    let opts = IdentifyOptions {
        max_candidates: 5,
        threshold: Some(args.threshold),
        restrict_to: None,
        fused_scores: false,
    };
    let mut s = Summary {
        gallery: dir.display().to_string(),
        people: args.people,
        ..Summary::default()
    };
    let day = 86_400_000i64;
    let t0 = 1_764_403_200_000i64;
    let bar = indicatif::ProgressBar::new((args.people as f64 * (2.0 + args.newcomer_rate)) as u64);
    let started = Instant::now();

    let centres: Vec<Vec<f32>> = (0..args.people).map(|_| pop.centre()).collect();
    for (i, c) in centres.iter().enumerate() {
        engine.enroll(pop.encounter(&format!("P{i:06}"), c, t0)?, &opts)?;
        bar.inc(1);
    }
    let mut merges = Vec::new();
    for (i, c) in centres.iter().enumerate() {
        let own = format!("P{i:06}");
        let alias = pop.rng.gen_bool(args.alias_rate);
        let claimed = if alias {
            format!("A{i:06}")
        } else {
            own.clone()
        };
        let e = engine.enroll(pop.encounter(&claimed, c, t0 + 30 * day)?, &opts)?;
        let top = e.candidates.first();
        if alias {
            s.aliases_planted += 1;
            if top.is_some_and(|c| c.subject.as_str() == own) {
                s.aliases_caught += 1;
                merges.push((claimed, own));
            }
        } else {
            s.returning_same_id += 1;
            s.returning_rank1_self += usize::from(top.is_some_and(|c| c.subject.as_str() == own));
        }
        bar.inc(1);
    }
    s.newcomers = (args.people as f64 * args.newcomer_rate) as usize;
    for i in 0..s.newcomers {
        let c = pop.centre();
        let e = engine.enroll(
            pop.encounter(&format!("N{i:06}"), &c, t0 + 31 * day)?,
            &opts,
        )?;
        s.newcomer_false_alarms += usize::from(!e.candidates.is_empty());
        bar.inc(1);
    }
    bar.finish_and_clear();
    let enrolled = args.people * 2 + s.newcomers;
    s.encounters_enrolled = enrolled;
    s.enrol_ms_mean = started.elapsed().as_secs_f64() * 1e3 / enrolled as f64;

    // An operator confirms each caught alias: keep both histories under one subject.
    for (from, into) in &merges {
        engine.merge_subjects(
            &SubjectId::new(from.as_str())?,
            &SubjectId::new(into.as_str())?,
        )?;
    }
    s.merged_subjects = merges.len();

    // 1:N identification of fresh captures of the first 200 people.
    let probes = centres.len().min(200);
    let started = Instant::now();
    for c in centres.iter().take(probes) {
        engine.identify(&[pop.capture(c)?], &IdentifyOptions::default())?;
    }
    s.identify_ms_mean = started.elapsed().as_secs_f64() * 1e3 / probes as f64;
    engine.checkpoint()?;

    print_summary(&s, &engine)?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&s)?)?;
    }
    Ok(())
}

fn print_summary(s: &Summary, engine: &Engine) -> Result<()> {
    let pct = |a: usize, b: usize| {
        if b == 0 {
            0.0
        } else {
            100.0 * a as f64 / b as f64
        }
    };
    let stats = engine.stats()?;
    println!("Huella demo: synthetic population, face-like embeddings");
    println!("  gallery                  {}", s.gallery);
    println!(
        "  encounters enrolled      {} (mean {:.2} ms each, search + durable commit)",
        s.encounters_enrolled, s.enrol_ms_mean
    );
    println!(
        "  false identities caught  {}/{} ({:.1}%) at enrolment, then merged",
        s.aliases_caught,
        s.aliases_planted,
        pct(s.aliases_caught, s.aliases_planted)
    );
    println!(
        "  newcomer false alarms    {}/{} ({:.1}%)",
        s.newcomer_false_alarms,
        s.newcomers,
        pct(s.newcomer_false_alarms, s.newcomers)
    );
    println!(
        "  returning, found rank 1  {}/{} ({:.1}%)",
        s.returning_rank1_self,
        s.returning_same_id,
        pct(s.returning_rank1_self, s.returning_same_id)
    );
    println!(
        "  identify (1:N)           mean {:.2} ms per probe",
        s.identify_ms_mean
    );
    println!(
        "  gallery now              {} subjects, {} encounters, {} templates",
        stats.gallery.subjects, stats.gallery.encounters, stats.gallery.templates
    );
    println!("Inspect it with: huella stats --gallery {}", s.gallery);
    Ok(())
}
