//! One search index per embedding model, kept consistent with the gallery store.
//!
//! The store is the source of truth. An index snapshot on disk is tagged with the store
//! generation it reflects; on open the engine loads the snapshot and replays the store's
//! change log since that generation. Replay is idempotent (an addition already present
//! or a removal already applied is skipped), so a crash between a store commit and a
//! snapshot write never leaves the index wrong. A missing, damaged or unreplayable
//! snapshot is rebuilt from the store.

use crate::{EmbeddingModel, EngineError, Family, IndexKind};
use huella_core::{Embedding, TemplateId, TemplatePayload};
use huella_index::{
    FlatIndex, FlatScan, HnswIndex, HnswParams, IndexError, LshIndex, LshParams, VectorIndex,
};
use huella_store::{Change, Gallery, StoreError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How many templates a rebuild inserts per parallel batch.
const REBUILD_BATCH: usize = 8192;
/// The smallest gallery an LSH index's tables are sized for.
const LSH_MIN_SIZE: usize = 100_000;

/// An index of any kind.
#[derive(Debug)]
pub(crate) enum AnyIndex {
    Flat(FlatIndex),
    Hnsw(HnswIndex),
    Lsh(LshIndex),
}

impl AnyIndex {
    pub(crate) fn get(&self) -> &dyn VectorIndex {
        match self {
            AnyIndex::Flat(i) => i,
            AnyIndex::Hnsw(i) => i,
            AnyIndex::Lsh(i) => i,
        }
    }

    pub(crate) fn get_mut(&mut self) -> &mut dyn VectorIndex {
        match self {
            AnyIndex::Flat(i) => i,
            AnyIndex::Hnsw(i) => i,
            AnyIndex::Lsh(i) => i,
        }
    }

    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            AnyIndex::Flat(_) => "flat",
            AnyIndex::Hnsw(_) => "hnsw",
            AnyIndex::Lsh(_) => "lsh",
        }
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        match self {
            AnyIndex::Flat(i) => i.memory_bytes(),
            AnyIndex::Hnsw(i) => i.memory_bytes(),
            AnyIndex::Lsh(i) => i.memory_bytes(),
        }
    }

    pub(crate) fn deleted(&self) -> usize {
        match self {
            AnyIndex::Flat(_) | AnyIndex::Lsh(_) => 0,
            AnyIndex::Hnsw(i) => i.deleted_count(),
        }
    }
}

/// The sidecar that ties a snapshot to a store generation.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotMeta {
    generation: u64,
    kind: String,
    model: String,
}

/// Settings needed to create an index.
#[derive(Debug, Clone)]
pub(crate) struct IndexSettings {
    pub kind: IndexKind,
    pub hnsw: HnswParams,
    pub flat_scan: FlatScan,
}

/// An index together with the model it serves and where its snapshot lives.
#[derive(Debug)]
pub(crate) struct ModelIndex {
    pub model: EmbeddingModel,
    pub index: AnyIndex,
    snapshot: PathBuf,
}

impl ModelIndex {
    /// Load the snapshot and replay the store's changes, or rebuild from the store.
    pub fn open(
        dir: &Path,
        model: EmbeddingModel,
        gallery: &Gallery,
        settings: &IndexSettings,
        template_count: u64,
    ) -> Result<Self, EngineError> {
        let snapshot = dir.join(format!("{}-{}.idx", model.family, model.algorithm));
        let wanted = wanted_kind(settings.kind, template_count);
        let mut this = match Self::load_snapshot(&snapshot, &model, wanted, gallery)? {
            Some(index) => Self {
                model,
                index,
                snapshot,
            },
            None => {
                let mut this = Self {
                    index: new_index(wanted, &model, settings, template_count)?,
                    model,
                    snapshot,
                };
                this.rebuild(gallery)?;
                this
            }
        };
        if let AnyIndex::Flat(f) = &mut this.index {
            f.set_scan(settings.flat_scan);
        }
        Ok(this)
    }

    /// The snapshot brought up to date, or `None` when it must be rebuilt.
    fn load_snapshot(
        path: &Path,
        model: &EmbeddingModel,
        wanted: &'static str,
        gallery: &Gallery,
    ) -> Result<Option<AnyIndex>, EngineError> {
        let Ok(text) = std::fs::read_to_string(meta_path(path)) else {
            return Ok(None);
        };
        let meta: SnapshotMeta = match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(_) => {
                tracing::warn!(snapshot = %path.display(), "index snapshot metadata unreadable; rebuilding");
                return Ok(None);
            }
        };
        if meta.kind != wanted || meta.model != model.to_string() {
            return Ok(None);
        }
        let loaded = match wanted {
            "flat" => FlatIndex::load(path).map(AnyIndex::Flat),
            "lsh" => LshIndex::load(path).map(AnyIndex::Lsh),
            _ => HnswIndex::load(path).map(AnyIndex::Hnsw),
        };
        let mut index = match loaded {
            Ok(i) if i.get().dimension() == model.dimension => i,
            Ok(_) | Err(_) => {
                tracing::warn!(snapshot = %path.display(), "index snapshot unusable; rebuilding from the store");
                return Ok(None);
            }
        };
        let Some(changes) = gallery.changes_since(meta.generation)? else {
            return Ok(None);
        };
        for change in changes {
            apply_change(&mut index, model, gallery, change)?;
        }
        Ok(Some(index))
    }

    /// Re-create the index from every template of this model in the store.
    pub fn rebuild(&mut self, gallery: &Gallery) -> Result<(), EngineError> {
        let model = self.model.clone();
        let mut batch: Vec<(TemplateId, Embedding)> = Vec::with_capacity(REBUILD_BATCH);
        let index = self.index.get_mut();
        let mut flush = |batch: &mut Vec<(TemplateId, Embedding)>| -> Result<(), StoreError> {
            index.insert_batch(batch).map_err(|e| StoreError::Corrupt {
                reason: format!("stored template cannot be indexed: {e}"),
            })?;
            batch.clear();
            Ok(())
        };
        gallery.for_each_template(|t| {
            if let Some(e) = embedding_of(&model, &t.template) {
                batch.push((t.id, e.clone()));
                if batch.len() == REBUILD_BATCH {
                    flush(&mut batch)?;
                }
            }
            Ok(())
        })?;
        flush(&mut batch)?;
        Ok(())
    }

    /// Write the snapshot, then the sidecar naming the generation it reflects.
    pub fn checkpoint(&self, generation: u64) -> Result<(), EngineError> {
        if let Some(dir) = self.snapshot.parent() {
            std::fs::create_dir_all(dir).map_err(|source| IndexError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        self.index.get().save(&self.snapshot)?;
        let meta = SnapshotMeta {
            generation,
            kind: self.index.kind_name().to_string(),
            model: self.model.to_string(),
        };
        let text =
            serde_json::to_string(&meta).map_err(|e| EngineError::BadInput(e.to_string()))?;
        write_atomic(&meta_path(&self.snapshot), text.as_bytes())?;
        Ok(())
    }

    /// Delete this index's snapshot and sidecar (best effort), once its model has
    /// left the gallery; a snapshot left behind would only waste disk.
    pub fn discard_snapshot(&self) {
        for path in [meta_path(&self.snapshot), self.snapshot.clone()] {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(snapshot = %path.display(), error = %e, "cannot delete an index snapshot");
                }
            }
        }
    }
}

fn meta_path(snapshot: &Path) -> PathBuf {
    snapshot.with_extension("idx.json")
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IndexError> {
    let io = |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

fn wanted_kind(kind: IndexKind, template_count: u64) -> &'static str {
    match kind {
        IndexKind::Flat => "flat",
        IndexKind::Hnsw => "hnsw",
        IndexKind::Lsh => "lsh",
        IndexKind::Auto { approximate_from } if template_count >= approximate_from as u64 => "lsh",
        IndexKind::Auto { .. } => "flat",
    }
}

fn new_index(
    kind: &'static str,
    model: &EmbeddingModel,
    settings: &IndexSettings,
    template_count: u64,
) -> Result<AnyIndex, IndexError> {
    let dim = model.dimension;
    Ok(match kind {
        "flat" => AnyIndex::Flat(FlatIndex::with_scan(dim, settings.flat_scan)?),
        "lsh" => {
            let size = usize::try_from(template_count).unwrap_or(usize::MAX);
            let params = LshParams::for_gallery(dim, size.max(LSH_MIN_SIZE));
            AnyIndex::Lsh(LshIndex::new(dim, params)?)
        }
        _ => AnyIndex::Hnsw(HnswIndex::new(model.dimension, settings.hnsw)?),
    })
}

/// The embedding of a template when it belongs to `model`.
pub(crate) fn embedding_of<'t>(
    model: &EmbeddingModel,
    t: &'t huella_core::Template,
) -> Option<&'t Embedding> {
    if Family::of(t.modality()) != model.family || t.algorithm() != &model.algorithm {
        return None;
    }
    match t.payload() {
        TemplatePayload::Embedding(e) if e.dimension() == model.dimension => Some(e),
        _ => None,
    }
}

/// Apply one logged store change; already-applied changes are skipped.
fn apply_change(
    index: &mut AnyIndex,
    model: &EmbeddingModel,
    gallery: &Gallery,
    change: Change,
) -> Result<(), EngineError> {
    let index = index.get_mut();
    match change {
        Change::Added(id) if !index.contains(id) => {
            // The template may have been deleted since; then a Removed change follows.
            if let Some(t) = gallery.template(id)? {
                if let Some(e) = embedding_of(model, &t.template) {
                    index.insert(id, e)?;
                }
            }
        }
        Change::Removed(id) if index.contains(id) => index.remove(id)?,
        _ => {}
    }
    Ok(())
}
