//! The on-disk container shared by every index kind.
//!
//! ```text
//! magic    8 bytes  "HUELLAIX"
//! version  u32      FORMAT_VERSION
//! kind     u32      1 = flat, 2 = hnsw, 3 = lsh
//! body     ...      kind-specific, little-endian
//! crc32    u32      over every byte before it
//! ```
//!
//! Writing goes to `<path>.tmp`, which is fsynced and renamed over `path`; the directory
//! is then fsynced. Reading takes the whole file in one go; every array read checks its
//! length against the bytes actually present before allocating.

use crate::IndexError;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Identifies a Huella index file.
pub(crate) const MAGIC: &[u8; 8] = b"HUELLAIX";
/// The format version this build writes and the highest it reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 16;
const CRC_LEN: usize = 4;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Flat = 1,
    Hnsw = 2,
    Lsh = 3,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Flat => "flat",
            Kind::Hnsw => "hnsw",
            Kind::Lsh => "lsh",
        }
    }
}

/// A `Corrupt` error for `path`.
pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> IndexError {
    IndexError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Streams an index file to `<path>.tmp`, then commits it with [`Writer::commit`].
pub(crate) struct Writer {
    path: PathBuf,
    tmp: PathBuf,
    file: File,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
}

impl Writer {
    const CHUNK: usize = 1 << 16;

    /// Start a file of `kind` at `path` (written to a temporary sibling first).
    pub(crate) fn create(path: &Path, kind: Kind) -> Result<Self, IndexError> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let file = File::create(&tmp).map_err(io_error(&tmp))?;
        let mut w = Self {
            path: path.to_path_buf(),
            tmp,
            file,
            buf: Vec::with_capacity(Self::CHUNK + 64),
            crc: crc32fast::Hasher::new(),
        };
        w.bytes(MAGIC)?;
        w.u32(FORMAT_VERSION)?;
        w.u32(kind as u32)?;
        Ok(w)
    }

    fn flush_chunk(&mut self) -> Result<(), IndexError> {
        self.crc.update(&self.buf);
        self.file
            .write_all(&self.buf)
            .map_err(io_error(&self.tmp))?;
        self.buf.clear();
        Ok(())
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) -> Result<(), IndexError> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= Self::CHUNK {
            self.flush_chunk()?;
        }
        Ok(())
    }

    pub(crate) fn u32(&mut self, v: u32) -> Result<(), IndexError> {
        self.bytes(&v.to_le_bytes())
    }

    pub(crate) fn u64(&mut self, v: u64) -> Result<(), IndexError> {
        self.bytes(&v.to_le_bytes())
    }

    /// A count or index stored as u64.
    pub(crate) fn len(&mut self, v: usize) -> Result<(), IndexError> {
        self.u64(v as u64)
    }

    pub(crate) fn u32s(&mut self, values: impl IntoIterator<Item = u32>) -> Result<(), IndexError> {
        values.into_iter().try_for_each(|v| self.u32(v))
    }

    pub(crate) fn u64s(&mut self, values: impl IntoIterator<Item = u64>) -> Result<(), IndexError> {
        values.into_iter().try_for_each(|v| self.u64(v))
    }

    pub(crate) fn f32s(&mut self, values: &[f32]) -> Result<(), IndexError> {
        for chunk in values.chunks(Self::CHUNK / 4) {
            for v in chunk {
                self.buf.extend_from_slice(&v.to_le_bytes());
            }
            self.flush_chunk()?;
        }
        Ok(())
    }

    /// Append the checksum, fsync, rename over the target and fsync the directory.
    pub(crate) fn commit(mut self) -> Result<(), IndexError> {
        self.flush_chunk()?;
        let crc = self.crc.clone().finalize();
        self.file
            .write_all(&crc.to_le_bytes())
            .map_err(io_error(&self.tmp))?;
        self.file.sync_all().map_err(io_error(&self.tmp))?;
        drop(self.file);
        std::fs::rename(&self.tmp, &self.path).map_err(io_error(&self.path))?;
        sync_parent(&self.path)
    }
}

#[cfg(unix)]
fn sync_parent(path: &Path) -> Result<(), IndexError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

#[cfg(not(unix))]
fn sync_parent(_path: &Path) -> Result<(), IndexError> {
    Ok(())
}

/// A whole index file, its header and checksum verified.
#[derive(Debug)]
pub(crate) struct IndexFile {
    path: PathBuf,
    kind: Kind,
    bytes: Vec<u8>,
}

impl IndexFile {
    /// Read and verify `path`: magic, version, kind and checksum.
    pub(crate) fn read(path: &Path) -> Result<Self, IndexError> {
        let bytes = std::fs::read(path).map_err(io_error(path))?;
        Self::parse(path, bytes)
    }

    fn parse(path: &Path, bytes: Vec<u8>) -> Result<Self, IndexError> {
        if bytes.len() < HEADER_LEN + CRC_LEN || &bytes[..8] != MAGIC {
            return Err(corrupt(
                path,
                "not a Huella index file (bad magic or too short)",
            ));
        }
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let version = word(8);
        if version != FORMAT_VERSION {
            return Err(IndexError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let body_end = bytes.len() - CRC_LEN;
        if crc32fast::hash(&bytes[..body_end]) != word(body_end) {
            return Err(corrupt(path, "checksum mismatch"));
        }
        let kind = match word(12) {
            1 => Kind::Flat,
            2 => Kind::Hnsw,
            3 => Kind::Lsh,
            other => return Err(corrupt(path, format!("unknown index kind {other}"))),
        };
        Ok(Self {
            path: path.to_path_buf(),
            kind,
            bytes,
        })
    }

    /// A `Corrupt` error for this file.
    pub(crate) fn corrupt(&self, reason: impl Into<String>) -> IndexError {
        corrupt(&self.path, reason)
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// The body, for a caller that expects `kind`.
    pub(crate) fn body(&self, kind: Kind) -> Result<Reader<'_>, IndexError> {
        if self.kind != kind {
            return Err(corrupt(
                &self.path,
                format!(
                    "file holds a {} index, not {}",
                    self.kind.name(),
                    kind.name()
                ),
            ));
        }
        Ok(Reader {
            path: &self.path,
            rest: &self.bytes[HEADER_LEN..self.bytes.len() - CRC_LEN],
        })
    }
}

/// Reads the body of an index file; every read is bounds-checked.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    path: &'a Path,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A `Corrupt` error for this file.
    pub(crate) fn corrupt(&self, reason: impl Into<String>) -> IndexError {
        corrupt(self.path, reason)
    }

    /// `count` items of `size` bytes, or `Corrupt` if fewer are present.
    fn take(&mut self, count: usize, size: usize, what: &str) -> Result<&'a [u8], IndexError> {
        let n = count
            .checked_mul(size)
            .filter(|&n| n <= self.rest.len())
            .ok_or_else(|| {
                self.corrupt(format!("truncated: {count} {what} declared, fewer present"))
            })?;
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, IndexError> {
        let b = self.take(1, 4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, IndexError> {
        let b = self.take(1, 8, what)?;
        Ok(u64::from_le_bytes(std::array::from_fn(|i| b[i])))
    }

    /// A count stored as u64, which must not exceed `max`.
    pub(crate) fn len(&mut self, what: &str, max: usize) -> Result<usize, IndexError> {
        let v = self.u64(what)?;
        usize::try_from(v)
            .ok()
            .filter(|&v| v <= max)
            .ok_or_else(|| self.corrupt(format!("{what} {v} exceeds {max}")))
    }

    pub(crate) fn u8s(&mut self, count: usize, what: &str) -> Result<Vec<u8>, IndexError> {
        Ok(self.take(count, 1, what)?.to_vec())
    }

    pub(crate) fn u32s(&mut self, count: usize, what: &str) -> Result<Vec<u32>, IndexError> {
        let b = self.take(count, 4, what)?;
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    pub(crate) fn u64s(&mut self, count: usize, what: &str) -> Result<Vec<u64>, IndexError> {
        let b = self.take(count, 8, what)?;
        Ok(b.chunks_exact(8)
            .map(|c| u64::from_le_bytes(std::array::from_fn(|i| c[i])))
            .collect())
    }

    /// `count` f32s, which must all be finite.
    pub(crate) fn f32s(&mut self, count: usize, what: &str) -> Result<Vec<f32>, IndexError> {
        let b = self.take(count, 4, what)?;
        let values: Vec<f32> = b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(self.corrupt(format!("non-finite value in {what}")));
        }
        Ok(values)
    }

    /// `count` rows of `dim` values, each finite and of unit length (within rounding).
    pub(crate) fn unit_rows(
        &mut self,
        count: usize,
        dim: usize,
        what: &str,
    ) -> Result<Vec<f32>, IndexError> {
        let total = count
            .checked_mul(dim)
            .ok_or_else(|| self.corrupt(format!("{what}: {count} rows of {dim} overflow")))?;
        let values = self.f32s(total, what)?;
        if let Some(row) = values.chunks_exact(dim.max(1)).position(|r| {
            let norm: f32 = r.iter().map(|v| v * v).sum();
            (norm - 1.0).abs() > 1e-3
        }) {
            return Err(self.corrupt(format!("{what}: row {row} is not unit length")));
        }
        Ok(values)
    }

    /// Require that the body has been read completely.
    pub(crate) fn finish(self) -> Result<(), IndexError> {
        if !self.rest.is_empty() {
            return Err(self.corrupt(format!("{} unexpected trailing bytes", self.rest.len())));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.idx");
        let mut w = Writer::create(&path, Kind::Flat).unwrap();
        w.u32(7).unwrap();
        w.len(3).unwrap();
        w.f32s(&[1.0, -2.5, 3.0]).unwrap();
        w.commit().unwrap();
        assert!(!dir.path().join("x.idx.tmp").exists());

        let file = IndexFile::read(&path).unwrap();
        assert!(matches!(
            file.body(Kind::Hnsw),
            Err(IndexError::Corrupt { .. })
        ));
        let mut r = file.body(Kind::Flat).unwrap();
        assert_eq!(r.u32("a").unwrap(), 7);
        let n = r.len("n", 10).unwrap();
        // A count larger than the bytes present fails before allocating.
        assert!(Reader {
            path: &path,
            rest: &[0; 8]
        }
        .f32s(usize::MAX / 2, "v")
        .is_err());
        assert_eq!(r.f32s(n, "v").unwrap(), vec![1.0, -2.5, 3.0]);
        r.finish().unwrap();
    }
}
