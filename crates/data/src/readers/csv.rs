//! CSV manifests with a header row.

use std::collections::HashMap;
use std::path::Path;

use super::{RawRow, RawValue};
use crate::{DataError, Result};

pub(super) fn read(file: &Path, cols: &[String]) -> Result<Vec<RawRow>> {
    let mut reader = ::csv::Reader::from_path(file).map_err(|e| DataError::parse(file, e))?;
    let headers = reader.headers().map_err(|e| DataError::parse(file, e))?.clone();
    let index: Vec<(String, usize)> = cols.iter().filter_map(|c| headers.iter().position(|h| h == c).map(|i| (c.clone(), i))).collect();
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        // Row numbers count data rows from 1, as a spreadsheet user sees them below the header.
        let row = i + 1;
        let record = record.map_err(|e| DataError::parse(file, format!("row {row}: {e}")))?;
        let fields: HashMap<String, RawValue> = index
            .iter()
            .map(|(c, j)| {
                let v = record.get(*j).unwrap_or("");
                let raw = if v.is_empty() { RawValue::Null } else { RawValue::Str(v.to_string()) };
                (c.clone(), raw)
            })
            .collect();
        rows.push(RawRow { file: file.to_path_buf(), row, fields });
    }
    Ok(rows)
}
