//! Errors of `huella-eval`.

use std::path::PathBuf;

/// What went wrong while reading input, computing metrics or writing outputs.
///
/// Bad input always names the file, the 1-based line (the header is line 1) and, where
/// one is to blame, the column.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A score or candidate file (or row) is malformed or cannot support the metrics.
    #[error("{}: line {line}{}: {reason}", .path.display(), column_part(.column))]
    BadInput {
        /// The file (or `<rows>` for in-memory input).
        path: PathBuf,
        /// 1-based line; the header is line 1.
        line: u64,
        /// The column at fault, if one is.
        column: Option<String>,
        /// What is wrong, in words.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An option is out of range (for example an FMR point outside (0, 1)).
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Drawing a plot failed.
    #[error("plot {}: {reason}", .path.display())]
    Plot {
        /// The plot file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

fn column_part(column: &Option<String>) -> String {
    match column {
        Some(c) => format!(", column '{c}'"),
        None => String::new(),
    }
}

impl EvalError {
    pub(crate) fn bad(
        path: &std::path::Path,
        line: u64,
        column: Option<&str>,
        reason: impl Into<String>,
    ) -> Self {
        EvalError::BadInput {
            path: path.to_path_buf(),
            line,
            column: column.map(str::to_string),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
