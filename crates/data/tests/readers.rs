mod common;

use std::sync::Arc;

use pairguard_data::{Dataset, ImageRef, Label, LoadOptions, PairRole, Source};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::parser::parse_message_type;

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
    let schema = "message schema {
        optional group image { optional binary bytes; optional binary path (STRING); }
        optional binary safety_label (STRING);
        optional binary category (STRING);
        optional binary source (STRING);
        optional int64 style;
    }";
    let mut images = vec![png_bytes(5, 5), png_bytes(6, 6), png_bytes(7, 7)];
    if broken_row {
        images[2] = b"not an image".to_vec();
    }
    let hf = r#"{"info": {"features": {"style": {"_type": "ClassLabel", "names": ["photo", "art"]}}}}"#;
    let props = WriterProperties::builder().set_key_value_metadata(Some(vec![KeyValue::new("huggingface".into(), hf.to_string())])).build();
    let file = std::fs::File::create(path).unwrap();
    let mut w = SerializedFileWriter::new(file, Arc::new(parse_message_type(schema).unwrap()), Arc::new(props)).unwrap();
    let mut rows = w.next_row_group().unwrap();
    // Definition levels: 2 is a present field inside the present `image`
    // struct, 1 a missing one (the third image has no path); the top-level
    // columns are all present (1).
    let bytes: Vec<ByteArray> = images.into_iter().map(ByteArray::from).collect();
    strings(&mut rows, &bytes, &[2, 2, 2]);
    strings(&mut rows, &["a.png".into(), "b.png".into()], &[2, 2, 1]);
    strings(&mut rows, &["Safe".into(), "Unsafe".into(), "Unsafe".into()], &[1, 1, 1]);
    strings(&mut rows, &["Hate".into(), "Violence".into(), "Spam".into()], &[1, 1, 1]);
    strings(&mut rows, &["Laion5B".into(), "Lexica".into(), "Lexica".into()], &[1, 1, 1]);
    let mut style = rows.next_column().unwrap().unwrap();
    style.typed::<Int64Type>().write_batch(&[0, 1, 1], Some(&[1, 1, 1]), None).unwrap();
    style.close().unwrap();
    rows.close().unwrap();
    w.close().unwrap();
}

/// Writes the row group's next column, a binary or string one.
fn strings(rows: &mut SerializedRowGroupWriter<'_, std::fs::File>, values: &[ByteArray], definition: &[i16]) {
    let mut column = rows.next_column().unwrap().unwrap();
    column.typed::<ByteArrayType>().write_batch(values, Some(definition), None).unwrap();
    column.close().unwrap();
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
        hub: pairguard_data::hub::HubOptions { offline: true, cache_dir: Some(cache.path().to_path_buf()), token: None, endpoint: None },
        ..Default::default()
    };
    let ds = Dataset::load(&d, &opts).unwrap();
    assert_eq!(ds.samples.len(), 3);
    assert!(ds.manifest_files[0].starts_with(cache.path()));
}
