//! Guards as deployed: a linear guard on CLIP ViT-B/32 (seeded random
//! weights, unit-length embeddings) exported whole (`export-onnx
//! --pipeline`) in f32 and in int8 and run in onnxruntime, beside
//! onnxruntime's own `quantize_dynamic` applied to the f32 export, and
//! beside pairguard's own encoder and head in f32, bf16 and int8 on the
//! same images, in the same run (`PAIRGUARD_PYTHON`, default `python3`,
//! with onnxruntime, onnx and numpy).
//!
//!     $CARGO_TARGET_DIR/debug/examples/bench_onnx [batch] [batches] [--rounds R] [--threads N]
//!
//! Each side warms up with one pass and runs on N threads (default: every
//! core); the sides take turns for R rounds (default 3). Accuracy is
//! against pairguard's f32 probabilities (and, for the int8 graph, its
//! int8 path): the largest and mean difference in P(unsafe) and the share
//! of verdicts that agree. The head's scale puts the f32 logits of the batch
//! within [-4, 4], where probabilities do not saturate.

// The allocator of the `pairguard` binary, so these figures are its figures
// (see crates/alloc).
#[global_allocator]
static ALLOCATOR: pairguard_alloc::MiMalloc = pairguard_alloc::MiMalloc;

mod peer;

use std::time::Instant;

use pairguard_clip::{ClipVisionModelWithProjection, ImageEncoder, VisionConfig};
use pairguard_data::Precision;
use pairguard_model::head::{HeadKind, HeadWeights};
use pairguard_model::normalize::{FeatureNorm, NormKind};
use pairguard_model::onnx::export_pipeline;
use pairguard_model::{Device, GuardModel};

/// The encoder of `model` (one set of weights for every precision) in `precision`.
fn encoder(model: &ClipVisionModelWithProjection, precision: Precision) -> ImageEncoder {
    peer::random_encoder("random ViT-B/32", VisionConfig::vit_b_32(), model.clone(), &Device::flex())
        .with_precision(precision)
        .expect("a CPU precision")
}

/// A linear guard on unit embeddings for `encoder`'s identity, its logits
/// on `reference` (f32 embeddings) scaled into [-4, 4] around their median.
fn guard(encoder: &ImageEncoder, reference: &[f32]) -> GuardModel {
    let d = encoder.config.projection_dim;
    let w: Vec<f32> = (0..d).map(|i| (i * 7919 % 101) as f32 / 101.0 - 0.5).collect();
    let raw: Vec<f32> = reference.chunks(d).map(|e| e.iter().zip(&w).map(|(a, b)| a * b).sum()).collect();
    let centre = peer::median(raw.iter().map(|&v| f64::from(v)).collect()) as f32;
    let scale = 4.0 / raw.iter().map(|r| (r - centre).abs()).fold(1e-12f32, f32::max);
    let head = HeadWeights {
        kind: HeadKind::Linear,
        input_dim: d,
        outputs: 1,
        w1: w.iter().map(|v| v * scale).collect(),
        b1: vec![-centre * scale],
        w2: None,
        b2: None,
        middle: Vec::new(),
    };
    GuardModel::fixed(head, FeatureNorm { kind: NormKind::L2, ..FeatureNorm::identity(d) }, encoder.id.clone(), 0.5).expect("shapes match")
}

/// P(unsafe) of `guard` on `encoder`'s embeddings of the pixels.
fn probabilities(encoder: &ImageEncoder, guard: &GuardModel, pixels: &[f32], batch: usize) -> Vec<f64> {
    guard.probabilities(&encoder.embed_pixels(pixels.to_vec(), batch), &Device::flex()).expect("embeddings fit the guard").0
}

/// Largest and mean difference, and share of agreeing verdicts (at 0.5).
fn compare(a: &[f64], b: &[f64]) -> String {
    let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let mean = a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len() as f64;
    let agree = a.iter().zip(b).filter(|(x, y)| (**x >= 0.5) == (**y >= 0.5)).count();
    format!("largest difference {worst:.4}, mean {mean:.4}, verdicts agree {agree}/{}", a.len())
}

fn main() {
    pairguard_alloc::keep_freed_pages();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let setup = peer::Setup::from_args(&args);
    let rounds = peer::option::<usize>(&args, "--rounds").unwrap_or(3).max(1);
    let nums = peer::positional(&args, &["--rounds", "--threads"]);
    let batch = nums.first().copied().unwrap_or(32);
    let batches = nums.get(1).copied().unwrap_or(2);
    let python = std::env::var("PAIRGUARD_PYTHON").unwrap_or_else(|_| "python3".into());
    println!("a linear guard on CLIP ViT-B-32 (random weights), image -> P(unsafe), batch {batch} x {batches} per figure, {rounds} rounds");
    println!("{}", setup.describe());

    Device::flex().seed(0);
    let model = VisionConfig::vit_b_32().init(&Device::flex());
    let encoders: Vec<(&str, ImageEncoder)> = [("f32", Precision::F32), ("bf16", Precision::Bf16), ("int8", Precision::Int8)]
        .into_iter()
        .map(|(name, p)| (name, encoder(&model, p)))
        .collect();
    let s = encoders[0].1.config.image_size;
    // Images that differ as wholes (a colour and a stripe frequency each),
    // so that their embeddings spread further apart than any precision
    // moves them.
    let pixels: Vec<f32> = (0..batch * 3 * s * s)
        .map(|i| {
            let (img, c, y, x) = (i / (3 * s * s), i / (s * s) % 3, i / s % s, i % s);
            let colour = ((img * 37 + c * 11) % 17) as f32 / 8.0 - 1.0;
            let stripes = ((x + y) as f32 * (1 + img % 5) as f32 * 0.05).sin();
            colour + 0.5 * stripes
        })
        .collect();
    let reference = encoders[0].1.embed_pixels(pixels.clone(), batch);
    let guards: Vec<GuardModel> = encoders.iter().map(|(_, e)| guard(e, &reference)).collect();
    let native: Vec<Vec<f64>> = encoders.iter().zip(&guards).map(|((_, e), g)| probabilities(e, g, &pixels, batch)).collect();
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("pixels.bin"), pixels.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).expect("write pixels");
    for (name, i) in [("f32", 0), ("int8", 2)] {
        let precision = if name == "int8" { Precision::Int8 } else { Precision::F32 };
        let bytes = export_pipeline(&encoders[i].1, &guards[i], precision).expect("export");
        std::fs::write(dir.path().join(format!("{name}.onnx")), &bytes).expect("write graph");
        println!("{name}.onnx: {} bytes", bytes.len());
    }

    let mut ours: Vec<Vec<f64>> = vec![Vec::new(); encoders.len()];
    let mut theirs: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let graphs = ["f32", "int8", "qd"];
    let dir_arg = dir.path().display().to_string();
    for round in 1..=rounds {
        for (k, ((name, e), g)) in encoders.iter().zip(&guards).enumerate() {
            let t = Instant::now();
            for _ in 0..batches {
                probabilities(e, g, &pixels, batch);
            }
            let ips = (batch * batches) as f64 / t.elapsed().as_secs_f64();
            println!("round {round}: pairguard {name:<4} (encoder and head) {ips:7.2} images/s");
            ours[k].push(ips);
        }
        match setup.run(&python, "onnxruntime_peer.py", &[dir_arg.clone(), batch.to_string(), batches.to_string()]) {
            Ok(text) => {
                for (k, graph) in graphs.iter().enumerate() {
                    let ips = text
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("graph={graph} images_per_s=")))
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or_else(|| panic!("no figure for {graph} in {text}"));
                    println!("round {round}: onnxruntime {graph:<4} graph {ips:7.2} images/s");
                    theirs[k].push(ips);
                }
            }
            Err(e) => {
                println!("onnxruntime peer not run: {e}");
                break;
            }
        }
    }
    for (k, (name, _)) in encoders.iter().enumerate() {
        println!(
            "pairguard {name:<4} median [range] {} images/s; against pairguard f32: {}",
            peer::spread(&ours[k], 2),
            compare(&native[k], &native[0])
        );
    }
    let label = ["f32 export", "int8 export (pairguard)", "quantize_dynamic of the f32 export"];
    for (k, graph) in graphs.iter().enumerate() {
        if theirs[k].is_empty() {
            continue;
        }
        let bytes = std::fs::read(dir.path().join(format!("ort-{graph}.bin"))).expect("the peer's probabilities");
        let p: Vec<f64> = bytes.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes")))).collect();
        let size = std::fs::metadata(dir.path().join(format!("{graph}.onnx"))).map_or(0, |m| m.len());
        print!(
            "onnxruntime {} ({size} bytes) median [range] {} images/s; against pairguard f32: {}",
            label[k],
            peer::spread(&theirs[k], 2),
            compare(&p, &native[0])
        );
        if *graph == "int8" {
            print!("; against pairguard int8: {}", compare(&p, &native[2]));
        }
        println!();
    }
}
