mod common;

use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray, StructArray};
use arrow_schema::{DataType, Field, Fields, Schema};
use pairguard_data::{Dataset, ImageRef, Label, LoadOptions, PairRole, Source};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use common::{png, png_bytes, write};

#[test]
fn jsonl_manifest_with_image_folder() {
    let dir = tempfile::tempdir().unwrap();
    png(dir.path(), "img/a.png", 8, 8);
    png(dir.path(), "img/b.png", 8, 8);
    write(
        dir.path(),
        "m.jsonl",
        concat!(
            "{\"id\": \"a\", \"image\": \"img/a.png\", \"label\": \"unsafe\", \"category\": \"violence\", \"source\": \"real\", \"pair_id\": \"p1\", \"pair_role\": \"original\"}\n",
            "\n",
            "{\"id\": \"b\", \"image\": \"img/b.png\", \"label\": 0, \"category\": \"Violence\", \"pair_id\": \"p1\", \"pair_role\": \"counterfactual\", \"split\": \"test\"}\n",
        ),
    );
    let d = write(dir.path(), "d.toml", "name = \"j\"\nformat = \"jsonl\"\nmanifest = [\"m.jsonl\"]\nroot = \".\"\n");
    let ds = Dataset::load(&d, &LoadOptions::default()).unwrap();
    assert_eq!(ds.samples.len(), 2);
    let a = &ds.samples[0];
    assert_eq!((a.label, a.category.as_deref(), a.source), (Label::Unsafe, Some("Violence"), Source::Real));
    assert_eq!(a.pair.as_ref().unwrap().role, PairRole::Original);
    assert_eq!(a.image, Some(ImageRef::Path(dir.path().join("img/a.png"))));
    let b = &ds.samples[1];
    assert_eq!((b.label, b.source), (Label::Safe, Source::Unknown));
    assert_eq!(b.split, Some(pairguard_data::Split::Test));
}

#[test]
fn csv_manifest_with_custom_columns_and_maps() {
    let dir = tempfile::tempdir().unwrap();
    png(dir.path(), "x.png", 4, 4);
    png(dir.path(), "y.png", 4, 4);
    write(dir.path(), "m.csv", "file,verdict,kind,origin\nx.png,Unsafe,Self harm,Laion5B\ny.png,Safe,,Lexica\n");
    let d = write(
        dir.path(),
        "d.toml",
        r#"name = "c"
format = "csv"
manifest = ["m.csv"]
root = "."
[columns]
image = "file"
label = "verdict"
category = "kind"
source = "origin"
[labels]
safe = ["Safe"]
unsafe = ["Unsafe"]
[sources]
real = ["Laion5B"]
ai-generated = ["Lexica"]
"#,
    );
    let ds = Dataset::load(&d, &LoadOptions::default()).unwrap();
    // Without an id column, ids are file stem and row.
    assert_eq!(ds.samples[0].id, "m:1");
    assert_eq!(ds.samples[0].category.as_deref(), Some("Self-harm"));
    assert_eq!(ds.samples[0].source, Source::Real);
    assert_eq!(ds.samples[1].source, Source::AiGenerated);
    assert_eq!(ds.samples[1].category, None);
}

/// Writes a parquet shard in the Hugging Face `datasets` layout UnsafeBench
/// uses: an Image struct column, string labels and sources, and a ClassLabel
/// integer column whose names sit in the `huggingface` metadata.
fn unsafebench_shard(path: &std::path::Path, broken_row: bool) {
    let img_fields = Fields::from(vec![Field::new("bytes", DataType::Binary, true), Field::new("path", DataType::Utf8, true)]);
    let mut bytes: Vec<Option<Vec<u8>>> = vec![Some(png_bytes(5, 5)), Some(png_bytes(6, 6)), Some(png_bytes(7, 7))];
    if broken_row {
        bytes[2] = Some(b"not an image".to_vec());
    }
    let image = StructArray::new(
        img_fields.clone(),
        vec![
            Arc::new(BinaryArray::from_iter(bytes.iter().map(|b| b.as_deref()))) as ArrayRef,
            Arc::new(StringArray::from(vec![Some("a.png"), Some("b.png"), None])) as ArrayRef,
        ],
        None,
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("image", DataType::Struct(img_fields), true),
        Field::new("safety_label", DataType::Utf8, true),
        Field::new("category", DataType::Utf8, true),
        Field::new("source", DataType::Utf8, true),
        Field::new("style", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(image),
            Arc::new(StringArray::from(vec!["Safe", "Unsafe", "Unsafe"])),
            Arc::new(StringArray::from(vec!["Hate", "Violence", "Spam"])),
            Arc::new(StringArray::from(vec!["Laion5B", "Lexica", "Lexica"])),
            Arc::new(Int64Array::from(vec![0, 1, 1])),
        ],
    )
    .unwrap();
    let hf = r#"{"info": {"features": {"style": {"_type": "ClassLabel", "names": ["photo", "art"]}}}}"#;
    let props = WriterProperties::builder().set_key_value_metadata(Some(vec![KeyValue::new("huggingface".into(), hf.to_string())])).build();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

const UNSAFEBENCH_DESCRIPTOR: &str = r#"name = "ub"
format = "parquet"
manifest = ["train.parquet"]
taxonomy = "unsafebench"
[columns]
image = "image"
label = "safety_label"
category = "category"
source = "source"
split = "style"
[labels]
safe = ["Safe"]
unsafe = ["Unsafe"]
[sources]
real = ["Laion5B"]
ai-generated = ["Lexica"]
"#;

#[test]
fn hugging_face_parquet_with_image_structs() {
    let dir = tempfile::tempdir().unwrap();
    unsafebench_shard(&dir.path().join("train.parquet"), false);
    // "style" is a ClassLabel: its names must be resolved (and then they are
    // not valid splits), which shows the metadata was read.
    let d = write(dir.path(), "d.toml", UNSAFEBENCH_DESCRIPTOR);
    let ds = Dataset::load_with_report(&d, &LoadOptions::default()).unwrap();
    assert_eq!(ds.report.findings.len(), 3);
    assert!(ds.report.findings[0].message.contains("unknown split \"photo\""), "{:?}", ds.report.findings[0]);

    let d = write(dir.path(), "d.toml", &UNSAFEBENCH_DESCRIPTOR.replace("split = \"style\"\n", ""));
    let ds = Dataset::load(&d, &LoadOptions::default()).unwrap();
    assert_eq!(ds.samples.len(), 3);
    assert_eq!(ds.samples[1].label, Label::Unsafe);
    assert_eq!(ds.samples[1].source, Source::AiGenerated);
    assert_eq!(ds.samples[0].category.as_deref(), Some("Hate"));
    match &ds.samples[0].image {
        Some(ImageRef::Bytes { bytes, name }) => {
            assert_eq!(name.as_deref(), Some("a.png"));
            assert_eq!(image::load_from_memory(bytes).unwrap().width(), 5);
        }
        other => panic!("expected embedded bytes, got {other:?}"),
    }
}

#[test]
fn parquet_undecodable_image_is_reported_by_row() {
    let dir = tempfile::tempdir().unwrap();
    unsafebench_shard(&dir.path().join("train.parquet"), true);
    let d = write(dir.path(), "d.toml", &UNSAFEBENCH_DESCRIPTOR.replace("split = \"style\"\n", ""));
    let e = Dataset::load(&d, &LoadOptions::default()).unwrap_err().to_string();
    assert!(e.contains("train.parquet: row 3") && e.contains("not a decodable image"), "{e}");
}

#[test]
fn hub_descriptor_resolves_manifests_from_an_offline_cache() {
    let cache = tempfile::tempdir().unwrap();
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let snap = cache.path().join("datasets--yiting--UnsafeBench/snapshots").join(sha).join("data");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(cache.path().join("datasets--yiting--UnsafeBench/refs")).unwrap();
    std::fs::write(cache.path().join("datasets--yiting--UnsafeBench/refs/main"), sha).unwrap();
    unsafebench_shard(&snap.join("train.parquet"), false);

    let dir = tempfile::tempdir().unwrap();
    let base =
        UNSAFEBENCH_DESCRIPTOR.replace("split = \"style\"\n", "").replace("manifest = [\"train.parquet\"]", "manifest = [\"data/train.parquet\"]");
    let text = format!("{base}[hub]\nrepo = \"yiting/UnsafeBench\"\nrevision = \"{sha}\"\nfiles = [\"data/train.parquet\"]\n");
    let d = write(dir.path(), "ub.toml", &text);
    let opts = LoadOptions {
        hub: pairguard_data::hub::HubOptions { offline: true, cache_dir: Some(cache.path().to_path_buf()), token: None },
        ..Default::default()
    };
    let ds = Dataset::load(&d, &opts).unwrap();
    assert_eq!(ds.samples.len(), 3);
    assert!(ds.manifest_files[0].starts_with(cache.path()));
}
