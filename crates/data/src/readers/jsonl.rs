//! JSON Lines manifests: one JSON object per line.

use std::collections::HashMap;
use std::path::Path;

use super::{RawRow, RawValue};
use crate::{DataError, Result};

pub(super) fn read(file: &Path, cols: &[String]) -> Result<Vec<RawRow>> {
    let text = std::fs::read_to_string(file).map_err(|e| DataError::io(file, e))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row = i + 1;
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| DataError::parse(file, format!("line {row}: not valid JSON: {e}")))?;
        let obj = value.as_object().ok_or_else(|| DataError::parse(file, format!("line {row}: expected a JSON object")))?;
        let mut fields = HashMap::new();
        for col in cols {
            if let Some(v) = obj.get(col) {
                let raw = match v {
                    serde_json::Value::Null => RawValue::Null,
                    serde_json::Value::String(s) => RawValue::Str(s.clone()),
                    serde_json::Value::Bool(b) => RawValue::Str(b.to_string()),
                    serde_json::Value::Number(n) => RawValue::Str(n.to_string()),
                    other => {
                        return Err(DataError::field(file, row, col, format!("expected a scalar, found {other}")));
                    }
                };
                fields.insert(col.clone(), raw);
            }
        }
        rows.push(RawRow { file: file.to_path_buf(), row, fields });
    }
    Ok(rows)
}
