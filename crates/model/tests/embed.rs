//! The embedding pipeline: chunks, resuming, and bad images reported by id.

use std::path::Path;

use pairguard_data::Silent;
use pairguard_data::synthetic::{Benchmark, SyntheticConfig};
use pairguard_data::{Dataset, EmbeddingStore, LoadOptions};
use pairguard_model::Device;
use pairguard_model::clip::Encoder;
use pairguard_model::embed::{EmbedOptions, embed_samples, failures_path, parts_dir};

fn encoder() -> Encoder {
    let w = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip/hf-quickgelu/model.safetensors");
    Encoder::load(&w, None, true, &Device::flex()).unwrap()
}

#[test]
fn interrupted_embedding_resumes_to_an_identical_store_and_reports_bad_images() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SyntheticConfig { images: 14, ..SyntheticConfig::tiny() };
    Benchmark::generate(&cfg).unwrap().write(dir.path()).unwrap();
    // Truncate one PNG after its header: it passes the header check, fails to decode.
    let victim = dir.path().join("images/img-p0002-o.png");
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    let ds = Dataset::load(&dir.path().join("images.toml"), &LoadOptions::default()).unwrap();
    assert_eq!(ds.samples.len(), 14);
    let enc = encoder();
    let opts = EmbedOptions { batch: 2, chunk: 4, workers: 2, ..Default::default() };

    let full = dir.path().join("full.safetensors");
    let r = embed_samples(&ds.samples, &enc, &full, &opts, &Silent).unwrap();
    assert!(r.finished);
    assert_eq!(r.embedded, 13);
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].id, "img-p0002-o");
    assert!(r.failures[0].error.contains("not a decodable image"), "{}", r.failures[0].error);
    let listed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(failures_path(&full)).unwrap()).unwrap();
    assert_eq!(listed[0]["id"], "img-p0002-o");

    let part = dir.path().join("part.safetensors");
    let r = embed_samples(&ds.samples, &enc, &part, &EmbedOptions { max_chunks: Some(2), ..opts.clone() }, &Silent).unwrap();
    assert!(!r.finished && !part.exists() && parts_dir(&part).is_dir());
    let r = embed_samples(&ds.samples, &enc, &part, &opts, &Silent).unwrap();
    assert!(r.finished);
    assert_eq!(r.chunks_reused, 2);
    assert_eq!(std::fs::read(&full).unwrap(), std::fs::read(&part).unwrap(), "resumed store differs");
    assert!(!parts_dir(&part).exists());

    let store = EmbeddingStore::load(&full).unwrap();
    assert_eq!(store.encoder, enc.id);
    assert_eq!(store.dim(), 32);
    assert!(store.get("img-p0002-o").is_none());
    // The two members of a pair differ only by the drawn cross, and the
    // encoder sees the difference.
    assert_ne!(store.get("img-p0000-o").unwrap(), store.get("img-p0000-c").unwrap());
}
