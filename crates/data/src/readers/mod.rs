//! Manifest readers. Each turns one manifest file into [`RawRow`]s holding the
//! descriptor's columns as raw values; mapping onto [`crate::Sample`] (and its
//! validation) happens once, in [`crate::dataset`], for every format alike.

mod csv;
mod jsonl;
mod parquet;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Result;
use crate::descriptor::{Descriptor, Format};

#[derive(Clone, PartialEq)]
pub enum RawValue {
    Null,
    Str(String),
    /// An embedded image: encoded bytes and the original file name if known.
    Image {
        bytes: Arc<[u8]>,
        name: Option<String>,
    },
}

impl std::fmt::Debug for RawValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RawValue::Null => write!(f, "Null"),
            RawValue::Str(s) => write!(f, "{s:?}"),
            RawValue::Image { bytes, name } => write!(f, "Image({} bytes, {name:?})", bytes.len()),
        }
    }
}

impl RawValue {
    /// The value as text, with empty strings treated as absent.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            RawValue::Str(s) if !s.trim().is_empty() => Some(s.as_str()),
            _ => None,
        }
    }
}

/// One manifest row: the file it came from, its 1-based data row number and
/// the raw values of the columns the descriptor names (absent columns are
/// missing from the map).
#[derive(Debug, Clone)]
pub struct RawRow {
    pub file: PathBuf,
    pub row: usize,
    pub fields: HashMap<String, RawValue>,
}

impl RawRow {
    pub fn get(&self, column: &str) -> Option<&RawValue> {
        self.fields.get(column)
    }
}

/// The column names a reader must extract, from the descriptor.
pub(crate) fn wanted_columns(d: &Descriptor) -> Vec<String> {
    let c = &d.columns;
    let mut cols = vec![c.label.clone()];
    for col in [&c.id, &c.image, &c.category, &c.source, &c.pair_id, &c.pair_role, &c.group, &c.split].into_iter().flatten() {
        cols.push(col.clone());
    }
    cols
}

pub fn read_manifest(d: &Descriptor, file: &Path) -> Result<Vec<RawRow>> {
    let cols = wanted_columns(d);
    match d.format {
        Format::Jsonl => jsonl::read(file, &cols),
        Format::Csv => csv::read(file, &cols),
        Format::Parquet => parquet::read(file, &cols, d.columns.image.as_deref()),
    }
}
