//! Streaming CSV input: one record at a time, never the whole file.

use crate::EvalError;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// A CSV file read record by record, with its header and error locations.
pub(crate) struct CsvInput {
    path: PathBuf,
    reader: csv::Reader<BufReader<File>>,
    pub header: Vec<String>,
    pub record: csv::ByteRecord,
    pub line: u64,
}

impl CsvInput {
    /// Open `path` and read its header; an empty file is an error.
    pub fn open(path: &Path, what: &str) -> Result<Self, EvalError> {
        let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(BufReader::with_capacity(1 << 20, file));
        let mut me = CsvInput {
            path: path.to_path_buf(),
            reader,
            header: Vec::new(),
            record: csv::ByteRecord::new(),
            line: 1,
        };
        if !me.next()? {
            return Err(EvalError::bad(
                path,
                1,
                None,
                format!("empty file: expected a header line with columns {what}"),
            ));
        }
        let mut header = Vec::with_capacity(me.record.len());
        for (c, f) in me.record.iter().enumerate() {
            let name = std::str::from_utf8(f)
                .map_err(|_| {
                    EvalError::bad(
                        path,
                        1,
                        None,
                        format!("header field {} is not UTF-8", c + 1),
                    )
                })?
                .trim()
                .trim_start_matches('\u{feff}')
                .to_string();
            if header.contains(&name) {
                return Err(EvalError::bad(
                    path,
                    1,
                    Some(&name),
                    "column appears twice in the header",
                ));
            }
            header.push(name);
        }
        me.header = header;
        Ok(me)
    }

    /// The index of a required column.
    pub fn require(&self, name: &str, what: &str) -> Result<usize, EvalError> {
        self.column(name).ok_or_else(|| {
            EvalError::bad(
                &self.path,
                1,
                Some(name),
                format!(
                    "missing column (expected {what}; the header has: {})",
                    self.header.join(",")
                ),
            )
        })
    }

    /// The index of an optional column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// Read the next record into `self.record`; false at end of file.
    pub fn next(&mut self) -> Result<bool, EvalError> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(more) => {
                if more {
                    self.line = self.record.position().map_or(self.line + 1, |p| p.line());
                    if !self.header.is_empty() && self.record.len() != self.header.len() {
                        // A blank trailing line reads as one empty field: skip it.
                        if self.record.len() == 1
                            && self.record.get(0).is_some_and(|f| f.is_empty())
                        {
                            return self.next();
                        }
                        return Err(self.bad(
                            None,
                            format!(
                                "expected {} fields, found {}",
                                self.header.len(),
                                self.record.len()
                            ),
                        ));
                    }
                }
                Ok(more)
            }
            Err(e) => {
                let line = e.position().map_or(self.line + 1, |p| p.line());
                Err(match e.into_kind() {
                    csv::ErrorKind::Io(io) => EvalError::io(&self.path, io),
                    other => {
                        EvalError::bad(&self.path, line, None, format!("malformed CSV: {other:?}"))
                    }
                })
            }
        }
    }

    /// Field `c` of the current record, trimmed.
    pub fn field(&self, c: usize) -> Result<&str, EvalError> {
        let raw = self.record.get(c).unwrap_or(b"");
        std::str::from_utf8(raw)
            .map(str::trim)
            .map_err(|_| self.bad(Some(c), "field is not UTF-8"))
    }

    /// An error at the current line, naming column `c`.
    pub fn bad(&self, c: Option<usize>, reason: impl Into<String>) -> EvalError {
        EvalError::bad(
            &self.path,
            self.line,
            c.map(|c| self.header[c].as_str()),
            reason,
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Parse a score: a finite number (rounded to f32). NaN, infinities and text are errors.
pub(crate) fn parse_score(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(v) if v.is_nan() => Err(format!("'{text}' is NaN, not a score")),
        Ok(v) if !v.is_finite() => Err(format!("'{text}' is not a finite score")),
        Ok(v) => Ok(v),
        Err(_) => Err(format!("'{text}' is not a number")),
    }
}
