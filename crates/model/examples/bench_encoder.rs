//! Encoder throughput: CLIP ViT-B/32 (seeded random weights, fp32) at a
//! fixed batch on each available backend, and open_clip's throughput on the
//! same machine in the same run when Python with torch and open_clip is
//! available (`PAIRGUARD_PYTHON`, default `python3`).
//!
//!     cargo run -p pairguard-model --example bench_encoder -- [batch] [batches] [--wgpu]

use std::time::Instant;

use burn::tensor::{Tensor, TensorData};
use pairguard_model::clip::model::{ClipVisionModelWithProjection, HostWeights};
use pairguard_model::clip::VisionConfig;
use pairguard_model::device::{select, DeviceChoice};

fn bench(name: &str, device: &burn::tensor::Device, batch: usize, batches: usize) -> f64 {
    let cfg = VisionConfig::vit_b_32();
    let model = ClipVisionModelWithProjection::from_host(&cfg, HostWeights::random(&cfg, 0), device);
    let s = cfg.image_size;
    let px: Vec<f32> = (0..batch * 3 * s * s).map(|i| ((i % 251) as f32 / 125.0) - 1.0).collect();
    let run = || {
        let x: Tensor<4> = Tensor::from_data(TensorData::new(px.clone(), [batch, 3, s, s]), device);
        let y = model.forward(x);
        let _ = y.into_data();
    };
    run(); // warm-up (allocations, kernel compilation)
    let t = Instant::now();
    for _ in 0..batches {
        run();
    }
    let ips = (batch * batches) as f64 / t.elapsed().as_secs_f64();
    println!("pairguard {name:<28} batch {batch:>3}: {ips:7.2} images/s");
    ips
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let batch = nums.first().copied().unwrap_or(32);
    let batches = nums.get(1).copied().unwrap_or(3);
    println!("CLIP ViT-B/32 image encoder, fp32, random weights; {} threads available", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let cpu = bench("cpu (burn flex)", &burn::tensor::Device::flex(), batch, batches);
    let want_wgpu = args.iter().any(|a| a == "--wgpu");
    match select(DeviceChoice::Auto) {
        Ok(sel) if sel.is_wgpu => {
            bench(&sel.description, &sel.device, batch, batches);
        }
        _ if want_wgpu => match select(DeviceChoice::Wgpu) {
            Ok(sel) => {
                bench(&sel.description, &sel.device, batch, batches);
            }
            Err(e) => println!("wgpu: not available ({e})"),
        },
        _ => println!("wgpu: no hardware adapter (software adapters skipped; pass --wgpu to include them)"),
    }
    let python = std::env::var("PAIRGUARD_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../benchmarks/open_clip_peer.py");
    match std::process::Command::new(&python).args([script, &batch.to_string(), &batches.to_string()]).output() {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            print!("{text}");
            if let Some(peer) = text.lines().find_map(|l| l.strip_prefix("images_per_s=")).and_then(|v| v.trim().parse::<f64>().ok()) {
                println!("ratio pairguard cpu / open_clip: {:.2}x", cpu / peer);
            }
        }
        Ok(out) => println!("open_clip peer not run: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")),
        Err(e) => println!("open_clip peer not run: {python}: {e}"),
    }
}
