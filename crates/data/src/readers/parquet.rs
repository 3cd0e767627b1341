//! Hugging Face parquet shards. An `Image` feature is stored as a struct of
//! `bytes` (the encoded file) and `path` (its original name); `ClassLabel`
//! features are integers whose names live in the file's `huggingface`
//! key-value metadata, which is read so labels stay human-readable.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{RawRow, RawValue};
use crate::{DataError, Result};

pub(super) fn read(file: &Path, cols: &[String], image_col: Option<&str>) -> Result<Vec<RawRow>> {
    let f = std::fs::File::open(file).map_err(|e| DataError::io(file, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| DataError::parse(file, format!("not a readable parquet file: {e}")))?;
    let class_names = class_label_names(builder.metadata().file_metadata().key_value_metadata());
    let schema = builder.schema().clone();
    let present: Vec<usize> = cols.iter().filter_map(|c| schema.index_of(c).ok()).collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), present.iter().copied());
    let reader = builder.with_projection(mask).build().map_err(|e| DataError::parse(file, e))?;

    let mut rows = Vec::new();
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| DataError::parse(file, e))?;
        let base = rows.len();
        let mut columns: Vec<(String, Vec<RawValue>)> = Vec::new();
        for field in batch.schema().fields() {
            let name = field.name().clone();
            let array = batch.column_by_name(&name).expect("field from this batch");
            let is_image = image_col == Some(name.as_str());
            let values = (0..batch.num_rows())
                .map(|i| cell(file, base + i + 1, &name, array, i, is_image, class_names.get(&name)))
                .collect::<Result<Vec<_>>>()?;
            columns.push((name, values));
        }
        for i in 0..batch.num_rows() {
            let fields = columns.iter().map(|(n, v)| (n.clone(), v[i].clone())).collect();
            rows.push(RawRow { file: file.to_path_buf(), row: base + i + 1, fields });
        }
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

fn cell(file: &Path, row: usize, col: &str, array: &ArrayRef, i: usize, is_image: bool, class_names: Option<&Vec<String>>) -> Result<RawValue> {
    if array.is_null(i) {
        return Ok(RawValue::Null);
    }
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
    match array.data_type() {
        DataType::Utf8 => text(array.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => text(array.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => text(array.as_string_view().value(i).to_string()),
        DataType::Boolean => text(array.as_boolean().value(i).to_string()),
        DataType::Int8 => text(array.as_primitive::<Int8Type>().value(i).to_string()),
        DataType::Int16 => text(array.as_primitive::<Int16Type>().value(i).to_string()),
        DataType::Int32 => text(array.as_primitive::<Int32Type>().value(i).to_string()),
        DataType::Int64 => text(array.as_primitive::<Int64Type>().value(i).to_string()),
        DataType::UInt8 => text(array.as_primitive::<UInt8Type>().value(i).to_string()),
        DataType::UInt16 => text(array.as_primitive::<UInt16Type>().value(i).to_string()),
        DataType::UInt32 => text(array.as_primitive::<UInt32Type>().value(i).to_string()),
        DataType::UInt64 => text(array.as_primitive::<UInt64Type>().value(i).to_string()),
        DataType::Binary if is_image => Ok(RawValue::Image { bytes: Arc::from(array.as_binary::<i32>().value(i)), name: None }),
        DataType::LargeBinary if is_image => Ok(RawValue::Image { bytes: Arc::from(array.as_binary::<i64>().value(i)), name: None }),
        DataType::Struct(_) if is_image => {
            let s = array.as_struct();
            let bytes = s.column_by_name("bytes").filter(|b| !b.is_null(i)).and_then(|b| match b.data_type() {
                DataType::Binary => Some(Arc::<[u8]>::from(b.as_binary::<i32>().value(i))),
                DataType::LargeBinary => Some(Arc::<[u8]>::from(b.as_binary::<i64>().value(i))),
                _ => None,
            });
            let name = s.column_by_name("path").filter(|p| !p.is_null(i)).and_then(|p| match p.data_type() {
                DataType::Utf8 => Some(p.as_string::<i32>().value(i).to_string()),
                DataType::LargeUtf8 => Some(p.as_string::<i64>().value(i).to_string()),
                _ => None,
            });
            match (bytes, name) {
                (Some(bytes), name) => Ok(RawValue::Image { bytes, name }),
                // An Image struct with only a path refers to a file next to the shard.
                (None, Some(path)) => Ok(RawValue::Str(path)),
                (None, None) => Ok(RawValue::Null),
            }
        }
        other => Err(err(format!("unsupported column type {other}"))),
    }
}
