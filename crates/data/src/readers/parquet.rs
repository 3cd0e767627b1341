//! Hugging Face parquet shards. An `Image` feature is stored as a struct of
//! `bytes` (the encoded file) and `path` (its original name); `ClassLabel`
//! features are integers whose names live in the file's `huggingface`
//! key-value metadata, which is read so labels stay human-readable.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use parquet::schema::types::Type;

use super::{RawRow, RawValue};
use crate::{DataError, Result};

/// Reads the columns `cols` that the file has, row by row (parquet's record
/// API: the shards are read once into samples, so columnar batches would buy
/// nothing here).
pub(super) fn read(file: &Path, cols: &[String], image_col: Option<&str>) -> Result<Vec<RawRow>> {
    let f = std::fs::File::open(file).map_err(|e| DataError::io(file, e))?;
    let reader = SerializedFileReader::new(f).map_err(|e| DataError::parse(file, format!("not a readable parquet file: {e}")))?;
    let meta = reader.metadata().file_metadata();
    let class_names = class_label_names(meta.key_value_metadata());
    let schema = meta.schema();
    let present = schema.get_fields().iter().filter(|f| cols.iter().any(|c| c == f.name())).cloned().collect();
    let projection = Type::group_type_builder(schema.name()).with_fields(present).build().map_err(|e| DataError::parse(file, e))?;
    let rows_iter = reader.get_row_iter(Some(projection)).map_err(|e| DataError::parse(file, e))?;

    let mut rows = Vec::new();
    for (i, row) in rows_iter.enumerate() {
        let n = i + 1;
        let row = row.map_err(|e| DataError::parse(file, format!("row {n}: {e}")))?;
        let fields = row
            .into_columns()
            .into_iter()
            .map(|(name, value)| {
                let is_image = image_col == Some(name.as_str());
                let value = cell(file, n, &name, value, is_image, class_names.get(&name))?;
                Ok((name, value))
            })
            .collect::<Result<HashMap<_, _>>>()?;
        rows.push(RawRow { file: file.to_path_buf(), row: n, fields });
    }
    Ok(rows)
}

/// ClassLabel names per column from the `huggingface` metadata entry.
fn class_label_names(kv: Option<&Vec<parquet::file::metadata::KeyValue>>) -> HashMap<String, Vec<String>> {
    let mut out = HashMap::new();
    let Some(entry) = kv.and_then(|kv| kv.iter().find(|e| e.key == "huggingface")) else {
        return out;
    };
    let Some(json) = entry.value.as_deref().and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok()) else {
        return out;
    };
    if let Some(features) = json.pointer("/info/features").and_then(|f| f.as_object()) {
        for (name, feature) in features {
            if feature.get("_type").and_then(|t| t.as_str()) == Some("ClassLabel")
                && let Some(names) = feature.get("names").and_then(|n| n.as_array())
            {
                out.insert(name.clone(), names.iter().filter_map(|n| n.as_str().map(str::to_string)).collect());
            }
        }
    }
    out
}

fn cell(file: &Path, row: usize, col: &str, value: Field, is_image: bool, class_names: Option<&Vec<String>>) -> Result<RawValue> {
    let err = |m: String| DataError::field(file, row, col, m);
    let text = |s: String| -> Result<RawValue> {
        match class_names {
            Some(names) => {
                let idx: usize = s.parse().map_err(|_| err(format!("ClassLabel value {s:?} is not an index")))?;
                names
                    .get(idx)
                    .map(|n| RawValue::Str(n.clone()))
                    .ok_or_else(|| err(format!("ClassLabel index {idx} out of range ({} names)", names.len())))
            }
            None => Ok(RawValue::Str(s)),
        }
    };
    match value {
        Field::Null => Ok(RawValue::Null),
        Field::Str(s) => text(s),
        Field::Bool(v) => text(v.to_string()),
        Field::Byte(v) => text(v.to_string()),
        Field::Short(v) => text(v.to_string()),
        Field::Int(v) => text(v.to_string()),
        Field::Long(v) => text(v.to_string()),
        Field::UByte(v) => text(v.to_string()),
        Field::UShort(v) => text(v.to_string()),
        Field::UInt(v) => text(v.to_string()),
        Field::ULong(v) => text(v.to_string()),
        Field::Bytes(b) if is_image => Ok(RawValue::Image { bytes: Arc::from(b.data()), name: None }),
        Field::Group(group) if is_image => {
            let mut bytes = None;
            let mut name = None;
            for (key, part) in group.into_columns() {
                match (key.as_str(), part) {
                    ("bytes", Field::Bytes(b)) => bytes = Some(Arc::<[u8]>::from(b.data())),
                    ("path", Field::Str(p)) => name = Some(p),
                    _ => {}
                }
            }
            match (bytes, name) {
                (Some(bytes), name) => Ok(RawValue::Image { bytes, name }),
                // An Image struct with only a path refers to a file next to the shard.
                (None, Some(path)) => Ok(RawValue::Str(path)),
                (None, None) => Ok(RawValue::Null),
            }
        }
        other => Err(err(format!("unsupported column type {}", kind(&other)))),
    }
}

/// A value's parquet type, for messages.
fn kind(value: &Field) -> &'static str {
    match value {
        Field::Float16(_) => "Float16",
        Field::Float(_) => "Float32",
        Field::Double(_) => "Float64",
        Field::Decimal(_) => "Decimal",
        Field::Bytes(_) => "Binary",
        Field::Date(_) => "Date",
        Field::TimeMillis(_) | Field::TimeMicros(_) => "Time",
        Field::TimestampMillis(_) | Field::TimestampMicros(_) => "Timestamp",
        Field::Group(_) => "Struct",
        Field::ListInternal(_) => "List",
        Field::MapInternal(_) => "Map",
        _ => "scalar",
    }
}
