//! A minimal `.npy` (NumPy format 1.0) writer and reader for 2-D little-endian arrays of
//! `f32` (`<f4`) or `u32` (`<u4`), C order. Enough to hand vectors to Python and back;
//! not a general NumPy reader.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8] = b"\x93NUMPY";
/// Largest header accepted by the reader; real headers are well under 200 bytes.
const MAX_HEADER: usize = 4096;

/// Why an `.npy` file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NpyError {
    /// Reading or writing failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an `.npy` array this module reads, or disagrees with the request.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The data length is not rows x cols.
    #[error("data has {len} values, expected {rows} x {cols}")]
    Shape {
        /// Values given.
        len: usize,
        /// Rows requested.
        rows: usize,
        /// Columns requested.
        cols: usize,
    },
}

/// Element types this module handles.
pub trait NpyElement: Copy {
    /// The NumPy `descr` string.
    const DESCR: &'static str;
    /// Little-endian bytes.
    fn to_le(self) -> [u8; 4];
    /// From little-endian bytes.
    fn from_le(bytes: [u8; 4]) -> Self;
}

impl NpyElement for f32 {
    const DESCR: &'static str = "<f4";
    fn to_le(self) -> [u8; 4] {
        self.to_le_bytes()
    }
    fn from_le(bytes: [u8; 4]) -> Self {
        f32::from_le_bytes(bytes)
    }
}

impl NpyElement for u32 {
    const DESCR: &'static str = "<u4";
    fn to_le(self) -> [u8; 4] {
        self.to_le_bytes()
    }
    fn from_le(bytes: [u8; 4]) -> Self {
        u32::from_le_bytes(bytes)
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> NpyError + '_ {
    move |source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn header(descr: &str, rows: usize, cols: usize) -> Vec<u8> {
    let dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // magic(6) + version(2) + header length(2) + dict + padding + '\n' is a multiple of 64.
    let unpadded = MAGIC.len() + 4 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let mut out = Vec::with_capacity(unpadded + pad);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    let len = (dict.len() + pad + 1) as u16;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    out
}

/// Write `data` (row-major, `rows x cols`) to `path`.
pub fn write<T: NpyElement>(
    path: &Path,
    data: &[T],
    rows: usize,
    cols: usize,
) -> Result<(), NpyError> {
    if rows.checked_mul(cols) != Some(data.len()) {
        return Err(NpyError::Shape {
            len: data.len(),
            rows,
            cols,
        });
    }
    let file = std::fs::File::create(path).map_err(io_err(path))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(&header(T::DESCR, rows, cols))
        .map_err(io_err(path))?;
    for chunk in data.chunks(1 << 16) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le()).collect();
        w.write_all(&bytes).map_err(io_err(path))?;
    }
    w.flush().map_err(io_err(path))?;
    Ok(())
}

/// Read a 2-D array written by [`write`] (or by NumPy with the same dtype and C order).
/// Returns `(data, rows, cols)`.
pub fn read<T: NpyElement>(path: &Path) -> Result<(Vec<T>, usize, usize), NpyError> {
    let bad = |reason: &str| NpyError::Format {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut pre = [0u8; 10];
    file.read_exact(&mut pre).map_err(io_err(path))?;
    if &pre[..6] != MAGIC || pre[6] != 1 {
        return Err(bad("not an .npy version 1 file"));
    }
    let hlen = usize::from(u16::from_le_bytes([pre[8], pre[9]]));
    if hlen > MAX_HEADER {
        return Err(bad("header too long"));
    }
    let mut h = vec![0u8; hlen];
    file.read_exact(&mut h).map_err(io_err(path))?;
    let h = String::from_utf8(h).map_err(|_| bad("header is not UTF-8"))?;
    if !h.contains(&format!("'descr': '{}'", T::DESCR)) {
        return Err(bad(&format!("expected dtype {}", T::DESCR)));
    }
    if !h.contains("'fortran_order': False") {
        return Err(bad("only C order is supported"));
    }
    let shape = h
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("bad shape")))
        .collect::<Result<_, _>>()?;
    let [rows, cols] = dims[..] else {
        return Err(bad("expected a 2-D array"));
    };
    let n = rows
        .checked_mul(cols)
        .ok_or_else(|| bad("shape overflows"))?;
    let expected_bytes = n.checked_mul(4).ok_or_else(|| bad("shape overflows"))?;
    let actual = file.metadata().map_err(io_err(path))?.len();
    // Check the size on disk before allocating anything sized by the header.
    if actual != (10 + hlen + expected_bytes) as u64 {
        return Err(bad("file size disagrees with the shape"));
    }
    let mut bytes = Vec::with_capacity(expected_bytes);
    file.read_to_end(&mut bytes).map_err(io_err(path))?;
    let data = bytes
        .chunks_exact(4)
        .map(|c| T::from_le([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((data, rows, cols))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_aligned_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
        write(&p, &data, 3, 4).unwrap();
        let raw = std::fs::read(&p).unwrap();
        assert_eq!((raw.len() - 48) % 64, 0, "header padded to 64 bytes");
        let (back, r, c) = read::<f32>(&p).unwrap();
        assert_eq!((back, r, c), (data, 3, 4));
        assert!(read::<u32>(&p).is_err(), "dtype is checked");

        let labels: Vec<u32> = vec![7, 8, 9];
        let q = dir.path().join("l.npy");
        write(&q, &labels, 3, 1).unwrap();
        assert_eq!(read::<u32>(&q).unwrap(), (labels, 3, 1));
    }

    #[test]
    fn rejects_wrong_shape_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        assert!(matches!(
            write(&p, &[1.0f32; 5], 2, 3),
            Err(NpyError::Shape { .. })
        ));
        write(&p, &[1.0f32; 6], 2, 3).unwrap();
        let raw = std::fs::read(&p).unwrap();
        std::fs::write(&p, &raw[..raw.len() - 1]).unwrap();
        assert!(matches!(read::<f32>(&p), Err(NpyError::Format { .. })));
    }
}
