//! JSON input documents accepted by the CLI.
//!
//! An encounter (for `enroll`, one per line in a JSON Lines file):
//! ```json
//! {"subject": "CASE-1", "captured_at": "2026-11-29T08:00:00Z", "location": "Post 3",
//!  "operator": "op7", "biographic": {"name": "A. Person", "nationality": "XX"},
//!  "templates": [{"modality": "face", "algorithm": "demo-face@1", "embedding": [0.1, ...],
//!                 "source": {"path": "img/1.jpg", "sha256": "<64 hex>"}}]}
//! ```
//! A probe (for `identify` and `verify`) is `{"templates": [...]}` with the same template
//! objects.

use anyhow::{bail, Context, Result};
use huella_engine::{
    AlgorithmId, Embedding, Modality, NewEncounter, NewTemplate, SourceImage, SubjectId, Template,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::Path;

/// Longest accepted input line or document (64 MiB).
const MAX_DOCUMENT_BYTES: u64 = 64 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    modality: String,
    algorithm: String,
    embedding: Vec<f32>,
    #[serde(default)]
    source: Option<SourceInput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceInput {
    path: String,
    sha256: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TimeInput {
    UnixMs(i64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncounterInput {
    subject: String,
    #[serde(default)]
    captured_at: Option<TimeInput>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    operator: Option<String>,
    #[serde(default)]
    biographic: BTreeMap<String, String>,
    templates: Vec<TemplateInput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeInput {
    templates: Vec<TemplateInput>,
}

impl TemplateInput {
    pub fn to_template(&self) -> Result<Template> {
        let modality: Modality = self.modality.parse()?;
        let algorithm: AlgorithmId = self.algorithm.parse()?;
        let embedding = Embedding::new(self.embedding.clone())?;
        Ok(Template::from_embedding(modality, algorithm, embedding))
    }
}

impl EncounterInput {
    /// An encounter described by command-line flags, templates added by the caller.
    pub fn from_flags(
        subject: String,
        captured_at: Option<String>,
        location: Option<String>,
        operator: Option<String>,
        biographic: BTreeMap<String, String>,
    ) -> Self {
        EncounterInput {
            subject,
            captured_at: captured_at.map(TimeInput::Text),
            location,
            operator,
            biographic,
            templates: Vec::new(),
        }
    }

    pub fn into_encounter(self) -> Result<NewEncounter> {
        let captured_at_unix_ms = match self.captured_at {
            None => chrono::Utc::now().timestamp_millis(),
            Some(TimeInput::UnixMs(ms)) => ms,
            Some(TimeInput::Text(s)) => chrono::DateTime::parse_from_rfc3339(&s)
                .with_context(|| format!("captured_at {s:?} is not an RFC 3339 time"))?
                .timestamp_millis(),
        };
        let templates = self
            .templates
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Ok(NewTemplate {
                    template: t.to_template().with_context(|| format!("template {i}"))?,
                    source: t.source.as_ref().map(|s| SourceImage {
                        path: s.path.clone(),
                        sha256: s.sha256.clone(),
                    }),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(NewEncounter {
            subject: SubjectId::new(self.subject)?,
            captured_at_unix_ms,
            location: self.location,
            operator: self.operator,
            biographic: self.biographic,
            templates,
        })
    }
}

impl ProbeInput {
    pub fn templates(&self) -> Result<Vec<Template>> {
        if self.templates.is_empty() {
            bail!("the probe holds no template");
        }
        self.templates
            .iter()
            .enumerate()
            .map(|(i, t)| t.to_template().with_context(|| format!("template {i}")))
            .collect()
    }
}

/// Largest image or minutiae-record file read; the decoders' own limits apply on top.
const MAX_SAMPLE_BYTES: u64 = 64 << 20;

/// Reads a biometric sample file (an image or a minutiae record): at most
/// [`MAX_SAMPLE_BYTES`], and never an empty file.
pub fn read_sample(path: &Path) -> Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_SAMPLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_SAMPLE_BYTES {
        bail!("{} is larger than {MAX_SAMPLE_BYTES} bytes", path.display());
    }
    if bytes.is_empty() {
        bail!("{} is empty", path.display());
    }
    Ok(bytes)
}

/// The gallery's reference to the file a template came from: its path and sha256.
pub fn source_image(path: &Path, bytes: &[u8]) -> SourceImage {
    SourceImage {
        path: path.display().to_string(),
        sha256: format!("{:x}", Sha256::digest(bytes)),
    }
}

/// Read one JSON document from a file (`-` for standard input), bounded in size.
pub fn read_document<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = read_bounded(path)?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid input document", path.display()))
}

fn read_bounded(path: &Path) -> Result<String> {
    let mut text = String::new();
    let reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )
    };
    reader
        .take(MAX_DOCUMENT_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {} as UTF-8 text", path.display()))?;
    if text.len() as u64 > MAX_DOCUMENT_BYTES {
        bail!(
            "{} is larger than {} bytes",
            path.display(),
            MAX_DOCUMENT_BYTES
        );
    }
    Ok(text)
}

/// The non-empty lines of a JSON Lines file, each parsed as `T` and paired with its
/// 1-based line number; a line longer than the document limit is an error, not an
/// allocation.
pub fn read_lines<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<impl Iterator<Item = Result<(usize, T)>>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let shown = path.display().to_string();
    let mut reader = std::io::BufReader::new(file);
    let mut n = 0usize;
    let mut done = false;
    Ok(std::iter::from_fn(move || loop {
        if done {
            return None;
        }
        n += 1;
        let mut buf = Vec::new();
        let read = (&mut reader)
            .take(MAX_DOCUMENT_BYTES + 1)
            .read_until(b'\n', &mut buf);
        let result = match read {
            Err(e) => Err(anyhow::Error::new(e).context(format!("{shown}:{n}: cannot read line"))),
            Ok(0) => return None,
            Ok(len) if len as u64 > MAX_DOCUMENT_BYTES => Err(anyhow::anyhow!(
                "{shown}:{n}: line longer than {MAX_DOCUMENT_BYTES} bytes"
            )),
            Ok(_) if buf.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(_) => serde_json::from_slice(&buf)
                .with_context(|| format!("{shown}:{n}: not a valid encounter"))
                .map(|v| (n, v)),
        };
        done = result.is_err();
        return Some(result);
    }))
}

/// The worker pool of a `--threads` flag: that many threads (at least 1), or one per
/// core when the flag is absent.
pub fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool> {
    let n = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if n == 0 {
        bail!("--threads must be at least 1");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start {n} worker threads: {e}"))
}
