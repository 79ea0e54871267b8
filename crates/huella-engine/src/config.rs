//! Engine configuration: the embedding models a gallery holds and how it indexes them.

use crate::{ConfigError, Engine};
use huella_core::{AlgorithmId, Modality};
use huella_index::{FlatScan, HnswParams};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// The modality family an index serves: faces are only compared with faces, fingers
/// with fingers (of any position, since positions on legacy cards are often wrong).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Face templates.
    Face,
    /// Finger templates of any position.
    Finger,
}

impl Family {
    /// The family of a modality.
    pub fn of(m: Modality) -> Self {
        match m {
            Modality::Face => Family::Face,
            Modality::Finger(_) => Family::Finger,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Face => "face",
            Family::Finger => "finger",
        })
    }
}

/// An embedding model whose templates the gallery indexes: `face:dlib-resnet@1:128`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EmbeddingModel {
    /// Which family of modality the model embeds.
    pub family: Family,
    /// The algorithm and version stamped on its templates.
    pub algorithm: AlgorithmId,
    /// The embedding dimension.
    pub dimension: usize,
}

impl fmt::Display for EmbeddingModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.family, self.algorithm, self.dimension)
    }
}

impl FromStr for EmbeddingModel {
    type Err = ConfigError;
    /// Parses `face|finger:name@version:dimension`.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let bad = |reason: String| ConfigError::Invalid {
            setting: "model",
            reason,
        };
        let mut parts = s.split(':');
        let (Some(family), Some(algorithm), Some(dim), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(format!("{s:?} is not family:name@version:dimension")));
        };
        let family = match family {
            "face" => Family::Face,
            "finger" => Family::Finger,
            other => return Err(bad(format!("family {other:?} is neither face nor finger"))),
        };
        let algorithm: AlgorithmId = algorithm.parse().map_err(|e| bad(format!("{e}")))?;
        let dimension: usize = dim
            .parse()
            .ok()
            .filter(|d| (1..=huella_core::MAX_DIMENSION).contains(d))
            .ok_or_else(|| {
                bad(format!(
                    "dimension {dim:?} outside 1..={}",
                    huella_core::MAX_DIMENSION
                ))
            })?;
        Ok(Self {
            family,
            algorithm,
            dimension,
        })
    }
}

/// Which index serves 1:N search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// Exact scan ([`huella_index::FlatIndex`], int8 with f32 re-ranking).
    Flat,
    /// Approximate graph search ([`huella_index::HnswIndex`]).
    Hnsw,
    /// Approximate search by cross-polytope hashing ([`huella_index::LshIndex`]): on
    /// identity-structured embeddings at 1M x 192 it reaches mate-recall 0.99 6.6x faster
    /// than HNSW (BENCHMARKS.md). Its tables are sized for the template
    /// count when the index is built (at least 100,000).
    Lsh,
    /// Flat while a model has fewer than `approximate_from` templates when the engine
    /// opens, LSH from then on.
    Auto {
        /// Size from which the LSH index is used.
        approximate_from: usize,
    },
}

impl Default for IndexKind {
    fn default() -> Self {
        // The exact int8 scan answers 1M x 192 in ~16 ms on one core with mate-recall
        // 1.0; LSH answers in ~0.6 ms at 0.99 (HNSW: ~4 ms), BENCHMARKS.md. Below a few
        // million templates exactness is the better trade.
        IndexKind::Auto {
            approximate_from: 2_000_000,
        }
    }
}

impl FromStr for IndexKind {
    type Err = ConfigError;
    /// Parses `flat`, `hnsw`, `lsh`, `auto` or `auto:N`.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "flat" => Ok(IndexKind::Flat),
            "hnsw" => Ok(IndexKind::Hnsw),
            "lsh" => Ok(IndexKind::Lsh),
            "auto" => Ok(IndexKind::default()),
            _ => s
                .strip_prefix("auto:")
                .and_then(|n| n.parse().ok())
                .map(|approximate_from| IndexKind::Auto { approximate_from })
                .ok_or_else(|| ConfigError::Invalid {
                    setting: "index",
                    reason: format!("{s:?} is not flat, hnsw, lsh, auto or auto:N"),
                }),
        }
    }
}

/// Builds an [`Engine`]; see [`Engine::builder`].
#[derive(Debug, Clone, Default)]
pub struct EngineBuilder {
    pub(crate) gallery: Option<PathBuf>,
    pub(crate) create: bool,
    pub(crate) models: Vec<EmbeddingModel>,
    pub(crate) index: IndexKind,
    pub(crate) hnsw: HnswParams,
    pub(crate) flat_scan: FlatScan,
    pub(crate) pool: Option<Arc<rayon::ThreadPool>>,
    pub(crate) face: Option<Arc<huella_face::FacePipeline>>,
    pub(crate) fingers: bool,
    pub(crate) finger_short_list: Option<f64>,
}

impl EngineBuilder {
    /// The gallery directory.
    pub fn gallery(mut self, dir: impl Into<PathBuf>) -> Self {
        self.gallery = Some(dir.into());
        self
    }

    /// Create the gallery if the directory holds none (otherwise opening a missing
    /// gallery is an error).
    pub fn create_if_missing(mut self, yes: bool) -> Self {
        self.create = yes;
        self
    }

    /// Add an embedding model. A new gallery records its models; reopening with a
    /// different list is a [`ConfigError::ModelMismatch`]. Leave empty to accept the
    /// gallery's own.
    pub fn model(mut self, model: EmbeddingModel) -> Self {
        self.models.push(model);
        self
    }

    /// Which index serves 1:N search (default [`IndexKind::Auto`]).
    pub fn index(mut self, kind: IndexKind) -> Self {
        self.index = kind;
        self
    }

    /// HNSW parameters (when HNSW is used).
    pub fn hnsw_params(mut self, params: HnswParams) -> Self {
        self.hnsw = params;
        self
    }

    /// How the flat index scans (default int8 with f32 re-ranking).
    pub fn flat_scan(mut self, scan: FlatScan) -> Self {
        self.flat_scan = scan;
        self
    }

    /// Hold fingers: a new gallery records that it accepts finger templates
    /// ([`crate::finger_template`]); opening a gallery created without them is a
    /// [`ConfigError::Invalid`]. A gallery created with fingers loads them whatever
    /// this says.
    pub fn fingers(mut self, yes: bool) -> Self {
        self.fingers = yes;
        self
    }

    /// The thread pool used for index (re)builds. Default: the caller's current pool.
    pub fn thread_pool(mut self, pool: Arc<rayon::ThreadPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Face models: enables [`Engine::face_sample`], [`Engine::identify_face`] and
    /// [`Engine::verify_faces`]. When models are listed, the pipeline's model is added
    /// to them if missing, so a new gallery indexes its templates.
    pub fn face(mut self, pipeline: Arc<huella_face::FacePipeline>) -> Self {
        self.face = Some(pipeline);
        self
    }

    /// Share of a finger gallery larger than [`crate::EXACT_SEARCH_UP_TO`] that the
    /// index hands to the matcher, in `(0, 1]` (default
    /// [`crate::DEFAULT_FINGER_SHORT_LIST`], never fewer than [`crate::MIN_SHORT_LIST`]
    /// fingers; the index picks it by cylinder sketches from a long list
    /// [`crate::LONG_LIST_FACTOR`] times longer, by code, at most
    /// [`crate::LONG_LIST_MAX_SHARE`] of the gallery). More finds more mates of
    /// single-finger probes and costs one matcher comparison (about 10 us) and ten
    /// sketch comparisons (about 1 us each) per finger in the list; 1.0 compares with
    /// every finger.
    pub fn finger_short_list(mut self, share: f64) -> Self {
        self.finger_short_list = Some(share);
        self
    }

    /// The finger short-list share: the one set, or the default.
    pub(crate) fn finger_short_list_share(&self) -> f64 {
        self.finger_short_list
            .unwrap_or(crate::DEFAULT_FINGER_SHORT_LIST)
    }

    /// Check the settings, open or create the gallery and bring its indexes up to date.
    pub fn build(mut self) -> Result<Engine, ConfigError> {
        if let Some(face) = &self.face {
            let model = crate::face::face_model(face);
            if !self.models.is_empty() && !self.models.contains(&model) {
                self.models.push(model);
            }
        }
        if let IndexKind::Auto {
            approximate_from: 0,
        } = self.index
        {
            return Err(ConfigError::Invalid {
                setting: "index",
                reason: "auto:0 would never use the flat index; say lsh".into(),
            });
        }
        let share = self.finger_short_list_share();
        if !(share > 0.0 && share <= 1.0) {
            return Err(ConfigError::Invalid {
                setting: "finger_short_list",
                reason: format!("{share} is not a share in (0, 1]"),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for m in &self.models {
            if !seen.insert((m.family, m.algorithm.clone())) {
                return Err(ConfigError::Invalid {
                    setting: "model",
                    reason: format!("model {}:{} listed twice", m.family, m.algorithm),
                });
            }
        }
        Engine::open_with(self)
    }
}

/// Text form of a model list, as stored in the gallery settings.
pub(crate) fn models_to_setting(models: &[EmbeddingModel]) -> String {
    models
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(";")
}

/// Parse the gallery's model list setting.
pub(crate) fn models_from_setting(s: &str) -> Result<Vec<EmbeddingModel>, ConfigError> {
    s.split(';')
        .filter(|p| !p.is_empty())
        .map(str::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_specs_parse_and_print() {
        let m: EmbeddingModel = "face:dlib-resnet@1:128".parse().unwrap();
        assert_eq!(m.dimension, 128);
        assert_eq!(m.to_string(), "face:dlib-resnet@1:128");
        for bad in [
            "face:x@1",
            "iris:x@1:3",
            "face:x:3",
            "face:x@1:0",
            "face:x@1:99999",
            "face:x@1:3:4",
        ] {
            assert!(bad.parse::<EmbeddingModel>().is_err(), "{bad}");
        }
        let list = vec![m.clone(), "finger:code@2:256".parse().unwrap()];
        assert_eq!(
            models_from_setting(&models_to_setting(&list)).unwrap(),
            list
        );
        assert_eq!("lsh".parse::<IndexKind>().unwrap(), IndexKind::Lsh);
        assert_eq!(
            "auto:5".parse::<IndexKind>().unwrap(),
            IndexKind::Auto {
                approximate_from: 5
            }
        );
        assert!("fast".parse::<IndexKind>().is_err());
    }
}
