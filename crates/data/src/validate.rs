//! Validation findings. Every problem with a dataset is a [`Finding`] that
//! names the file, row, sample id and field, so a user can fix the source;
//! rows are dropped only when asked to, and then every drop is reported.

use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub file: PathBuf,
    /// 1-based data row within `file` (0 for findings about the whole dataset).
    pub row: usize,
    pub id: Option<String>,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.row > 0 {
            write!(f, ": row {}", self.row)?;
        }
        if let Some(id) = &self.id {
            write!(f, " (id {id:?})")?;
        }
        write!(f, ", field `{}`: {}", self.field, self.message)
    }
}

/// All findings of one load, in manifest order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Ids of samples dropped because of the findings (with `skip_invalid`).
    pub dropped: Vec<String>,
    /// Rows dropped before an id could be read (file, row).
    pub dropped_rows: usize,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}
