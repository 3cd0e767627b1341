//! The embedding pipeline: chunks, resuming, sharding, and bad images
//! reported by id.

use std::path::Path;

use pairguard_clip::ImageEncoder;
use pairguard_data::synthetic::{Benchmark, SyntheticConfig};
use pairguard_data::{Dataset, EmbeddingStore, LoadOptions};
use pairguard_experiments::embed::{EmbedOptions, Store, collect as merge, embed_samples, failures_path, parts_dir};
use pairguard_model::Device;
use pairguard_run::{Assignment, Outcome, Shard, Silent};

fn encoder() -> ImageEncoder {
    encoder_at("../clip/tests/fixtures/clip/hf-quickgelu/model.safetensors")
}

/// The fixture encoder, named by `path` under the crate's folder.
fn encoder_at(path: &str) -> ImageEncoder {
    ImageEncoder::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(path), None, true, &Device::flex()).unwrap()
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
    assert_eq!(r.embedded_now, 13);
    let Outcome::Done(Store { embedded, failures }) = r.outcome else { panic!("{:?}", r.outcome) };
    assert_eq!(embedded, 13);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].id, "img-p0002-o");
    assert!(failures[0].error.contains("not a decodable image"), "{}", failures[0].error);
    let listed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(failures_path(&full)).unwrap()).unwrap();
    assert_eq!(listed[0]["id"], "img-p0002-o");

    let part = dir.path().join("part.safetensors");
    let r = embed_samples(&ds.samples, &enc, &part, &EmbedOptions { max_chunks: Some(2), ..opts.clone() }, &Silent).unwrap();
    assert!(r.outcome == Outcome::Interrupted && !part.exists() && parts_dir(&part).is_dir());
    let r = embed_samples(&ds.samples, &enc, &part, &opts, &Silent).unwrap();
    assert!(matches!(r.outcome, Outcome::Done(Store { embedded: 13, .. })));
    assert_eq!((r.chunks_reused, r.embedded_now), (2, 6));
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

/// Shards of one store, run in any order (one interrupted and resumed),
/// merge to the store a one-machine run writes, byte for byte.
#[test]
fn shards_merge_to_the_one_machine_store() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SyntheticConfig { images: 22, ..SyntheticConfig::tiny() };
    Benchmark::generate(&cfg).unwrap().write(dir.path()).unwrap();
    let ds = Dataset::load(&dir.path().join("images.toml"), &LoadOptions::default()).unwrap();
    let enc = encoder();
    // 22 samples in 11 batches: shards of 2, 3, 3 and 3 batches, so of
    // samples 0..4 (one chunk), 4..10 (chunks 4..8 and 8..10), 10..16
    // (10..12, 12..16) and 16..22 (16..20, 20..22).
    let opts = EmbedOptions { batch: 2, chunk: 4, workers: 2, ..Default::default() };
    let whole = dir.path().join("whole.safetensors");
    embed_samples(&ds.samples, &enc, &whole, &opts, &Silent).unwrap();

    let out = dir.path().join("sharded.safetensors");
    let shard = |i| EmbedOptions { assignment: Assignment::Shard(Shard::new(i, 4).unwrap()), ..opts.clone() };
    for i in [3, 0] {
        let r = embed_samples(&ds.samples, &enc, &out, &shard(i), &Silent).unwrap();
        assert!(matches!(r.outcome, Outcome::Shard { .. }), "{:?}", r.outcome);
        let b = Shard::new(i, 4).unwrap().range(11);
        assert_eq!((r.samples.clone(), r.samples_total), (2 * b.start..(2 * b.end).min(22), 22));
    }
    assert!(!out.exists(), "a shard never writes the store");
    let e = merge(&out).unwrap_err().to_string();
    assert!(e.contains("shards not finished: 1/4, 2/4"), "{e}");
    // Shard 1 is interrupted after one of its two chunks, then resumed.
    let r = embed_samples(&ds.samples, &enc, &out, &EmbedOptions { max_chunks: Some(1), ..shard(1) }, &Silent).unwrap();
    assert_eq!(r.outcome, Outcome::Interrupted);
    assert!(merge(&out).unwrap_err().to_string().contains("shards not finished: 1/4, 2/4"));
    let r = embed_samples(&ds.samples, &enc, &out, &shard(1), &Silent).unwrap();
    assert_eq!(r.chunks_reused, 1);
    // The same weights by another path are the same encoder.
    let renamed = encoder_at("../clip/tests/fixtures/clip/../clip/hf-quickgelu/model.safetensors");
    assert_ne!(renamed.id.model, enc.id.model);
    embed_samples(&ds.samples, &renamed, &out, &shard(2), &Silent).unwrap();
    // A finished shard run again does nothing.
    let r = embed_samples(&ds.samples, &enc, &out, &shard(2), &Silent).unwrap();
    assert_eq!((r.embedded_now, r.chunks, r.chunks_reused), (0, 2, 2));
    // Work of other settings is refused, not mixed in.
    let other = EmbedOptions { batch: 3, ..shard(0) };
    assert!(embed_samples(&ds.samples, &enc, &out, &other, &Silent).unwrap_err().to_string().contains("holds partial work"));
    assert!(matches!(merge(&out).unwrap(), Store { embedded: 22, .. }));
    assert_eq!(std::fs::read(&whole).unwrap(), std::fs::read(&out).unwrap());
    assert_eq!(std::fs::read(EmbeddingStore::index_path(&whole)).unwrap(), std::fs::read(EmbeddingStore::index_path(&out)).unwrap());
    assert_eq!(std::fs::read(failures_path(&whole)).unwrap(), std::fs::read(failures_path(&out)).unwrap());
    assert!(!parts_dir(&out).exists());
    assert!(merge(&out).unwrap_err().to_string().contains("no shard of this store has started"));

    // A whole run resumed after a shard, both with other chunk sizes, cuts
    // the samples differently and still gives the same store: shard 1/3
    // has batches 3..7, samples 6..14 in chunks (of 3, rounded up to whole
    // batches: 4) 6..8, 8..12 and 12..14, which cover the whole run's
    // chunk 6..12.
    let mixed = dir.path().join("mixed.safetensors");
    let one_of_three = EmbedOptions { assignment: Assignment::Shard(Shard::new(1, 3).unwrap()), chunk: 3, ..opts.clone() };
    embed_samples(&ds.samples, &enc, &mixed, &one_of_three, &Silent).unwrap();
    let r = embed_samples(&ds.samples, &enc, &mixed, &EmbedOptions { chunk: 6, ..opts.clone() }, &Silent).unwrap();
    assert_eq!((r.chunks, r.chunks_reused, r.embedded_now), (4, 1, 16), "{r:?}");
    assert_eq!(std::fs::read(&whole).unwrap(), std::fs::read(&mixed).unwrap());
}
