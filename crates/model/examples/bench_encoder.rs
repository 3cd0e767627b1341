//! Encoder throughput: CLIP ViT-B/32 (seeded random weights, fp32) at a
//! fixed batch on each available backend, and open_clip's throughput on the
//! same machine in the same run when Python with torch and open_clip is
//! available (`PAIRGUARD_PYTHON`, default `python3`).
//!
//!     cargo run -p pairguard-model --example bench_encoder -- [batch] [batches] [--rounds R] [--wgpu]
//!
//! The CPU backend and open_clip take turns for R rounds (default 3), and the
//! ratio is reported per round and between the medians: on a shared 2-core
//! VM either side's figure moves by a fifth from one minute to the next, so
//! one back-to-back pair of figures is not a comparison.

// The allocator of the `pairguard` binary, so these figures are its figures
// (see crates/alloc).
#[global_allocator]
static ALLOCATOR: pairguard_alloc::MiMalloc = pairguard_alloc::MiMalloc;

mod peer;

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use pairguard_model::clip::{ClipVisionModelWithProjection, VisionConfig};
use pairguard_model::device::{DeviceChoice, select};

/// The encoder on one device with a fixed input batch.
struct Bench {
    model: ClipVisionModelWithProjection,
    device: Device,
    pixels: Vec<f32>,
    batch: usize,
    size: usize,
}

impl Bench {
    fn new(device: &Device, batch: usize) -> Self {
        let cfg = VisionConfig::vit_b_32();
        device.seed(0);
        let model = cfg.init(device);
        let size = cfg.image_size;
        let pixels = (0..batch * 3 * size * size).map(|i| ((i % 251) as f32 / 125.0) - 1.0).collect();
        let bench = Self { model, device: device.clone(), pixels, batch, size };
        bench.run(); // warm-up (allocations, kernel compilation)
        bench
    }

    /// One batch from host pixels to host embeddings.
    fn run(&self) {
        let s = self.size;
        let x: Tensor<4> = Tensor::from_data(TensorData::new(self.pixels.clone(), [self.batch, 3, s, s]), &self.device);
        let _ = self.model.forward(x).into_data();
    }

    /// Images per second over `batches` batches.
    fn images_per_s(&self, batches: usize) -> f64 {
        let t = Instant::now();
        for _ in 0..batches {
            self.run();
        }
        (self.batch * batches) as f64 / t.elapsed().as_secs_f64()
    }
}

/// open_clip's images per second, and its description line.
fn open_clip(python: &str, batch: usize, batches: usize) -> Result<(f64, String), String> {
    let text = peer::run(python, "open_clip_peer.py", &[batch.to_string(), batches.to_string()])?;
    Ok((peer::field(&text, "images_per_s")?, text.lines().next().unwrap_or("open_clip").to_string()))
}

fn main() {
    pairguard_alloc::keep_freed_pages();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map_or(3, |r| r.parse::<usize>().ok().filter(|&r| r > 0).unwrap_or_else(|| panic!("--rounds takes a positive number, not {r:?}")));
    let nums: Vec<usize> =
        args.iter().enumerate().filter(|(i, _)| *i == 0 || args[i - 1] != "--rounds").filter_map(|(_, a)| a.parse().ok()).collect();
    let batch = nums.first().copied().unwrap_or(32);
    let batches = nums.get(1).copied().unwrap_or(3);
    let python = std::env::var("PAIRGUARD_PYTHON").unwrap_or_else(|_| "python3".into());
    println!(
        "CLIP ViT-B/32 image encoder, fp32, random weights, batch {batch} x {batches} per figure, {rounds} rounds; {} threads available",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );

    let cpu = Bench::new(&Device::flex(), batch);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let ips = cpu.images_per_s(batches);
        println!("round {round}: pairguard cpu (burn flex) {ips:7.2} images/s");
        ours.push(ips);
        match open_clip(&python, batch, batches) {
            Ok((theirs_ips, line)) => {
                println!("round {round}: {line}  (ratio {:.2}x)", ips / theirs_ips);
                theirs.push(theirs_ips);
            }
            Err(e) => {
                println!("open_clip peer not run: {e}");
                break;
            }
        }
    }
    let ours_median = peer::median(ours);
    println!("median pairguard cpu (burn flex): {ours_median:7.2} images/s");
    if !theirs.is_empty() {
        let peer_median = peer::median(theirs);
        println!("median open_clip:                 {peer_median:7.2} images/s");
        println!("ratio of medians pairguard cpu / open_clip: {:.2}x", ours_median / peer_median);
    }

    let want_wgpu = args.iter().any(|a| a == "--wgpu");
    let gpu = match select(DeviceChoice::Auto) {
        Ok(sel) if sel.is_wgpu => Some(sel),
        _ if want_wgpu => select(DeviceChoice::Wgpu).map_err(|e| println!("wgpu: not available ({e})")).ok(),
        _ => {
            println!("wgpu: no hardware adapter (software adapters skipped; pass --wgpu to include them)");
            None
        }
    };
    if let Some(sel) = gpu {
        let ips = Bench::new(&sel.device, batch).images_per_s(batches);
        println!("pairguard {}: {ips:7.2} images/s", sel.description);
    }
}
