//! Encoder throughput: CLIP ViT-B/32 or ViT-L/14 (seeded random weights) at
//! a fixed batch on the CPU in f32, bf16 and int8, and on wgpu when there
//! is a GPU, against open_clip in fp32 and bf16 on the same machine in the
//! same run when Python with torch and open_clip is available
//! (`PAIRGUARD_PYTHON`, default `python3`).
//!
//!     cargo run -p pairguard-model --example bench_encoder -- [batch] [batches] [--model vit-b-32|vit-l-14] [--rounds R] [--threads N] [--wgpu]
//!
//! Each side warms up with one pass over the batch, runs on N threads
//! (default: every core) with an allocator that keeps freed pages (see
//! `peer`). Each precision and its open_clip peer take turns for R rounds
//! (default 3), and the ratio is reported per round and between the
//! medians, with each side's per-round range: on a shared 2-core VM either
//! side's figure moves by a fifth from one minute to the next, so one
//! back-to-back pair of figures is not a comparison. int8 has no open_clip
//! peer; it is compared with open_clip's faster precision. The reduced
//! precisions' worst cosines to the f32 embeddings are printed too.

// The allocator of the `pairguard` binary, so these figures are its figures
// (see crates/alloc).
#[global_allocator]
static ALLOCATOR: pairguard_alloc::MiMalloc = pairguard_alloc::MiMalloc;

mod peer;

use std::time::Instant;

use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Device, Tensor, TensorData};
use pairguard_clip::host::{HostCompute, HostWeights, Pixels, Products};
use pairguard_clip::vision::{ClipVisionEmbeddings, VisionOps};
use pairguard_clip::{Activation, ClipVisionModelWithProjection, VisionConfig};
use pairguard_model::device::{DeviceChoice, select};

/// The encoder on one device with a fixed input batch.
struct Bench {
    model: ClipVisionModelWithProjection,
    config: VisionConfig,
    device: Device,
    pixels: Vec<f32>,
    batch: usize,
    /// Set for the CPU's bf16 and int8 paths.
    host: Option<HostWeights>,
}

impl Bench {
    fn new(config: &VisionConfig, device: &Device, batch: usize) -> Self {
        device.seed(0);
        let model = config.init(device);
        let size = config.image_size;
        let pixels = (0..batch * 3 * size * size).map(|i| ((i % 251) as f32 / 125.0) - 1.0).collect();
        let bench = Self { model, config: config.clone(), device: device.clone(), pixels, batch, host: None };
        bench.run(); // warm-up (allocations, kernel compilation), and the weights drawn
        bench
    }

    /// The same encoder, weights and input with bf16 or int8 products.
    fn host(&self, products: Products) -> Self {
        let host = Some(HostWeights::of(&self.model, &self.config, products));
        let bench = Self {
            model: self.model.clone(),
            config: self.config.clone(),
            device: self.device.clone(),
            pixels: self.pixels.clone(),
            batch: self.batch,
            host,
        };
        bench.run();
        bench
    }

    /// One batch from host pixels to host embeddings.
    fn run(&self) -> Vec<f32> {
        if let Some(weights) = &self.host {
            return self.model.run(&mut HostCompute { weights }, Pixels { values: &self.pixels, batch: self.batch });
        }
        let s = self.config.image_size;
        let x: Tensor<4> = Tensor::from_data(TensorData::new(self.pixels.clone(), [self.batch, 3, s, s]), &self.device);
        self.model.forward(x).into_data().try_into_vec::<f32>().expect("f32")
    }

    /// Images per second over `batches` batches.
    fn images_per_s(&self, batches: usize) -> f64 {
        let t = Instant::now();
        for _ in 0..batches {
            self.run();
        }
        (self.batch * batches) as f64 / t.elapsed().as_secs_f64()
    }

    /// The fastest of 3 passes over the batch, whole and per kind of operation.
    fn profile(&self) -> Option<String> {
        let weights = self.host.as_ref()?;
        let mut best: Option<(f64, std::collections::BTreeMap<&str, f64>)> = None;
        for _ in 0..3 {
            let mut ops = HostCompute { weights };
            let mut timed = Timed { ops: &mut ops, seconds: Default::default() };
            let t = Instant::now();
            self.model.run(&mut timed, Pixels { values: &self.pixels, batch: self.batch });
            let total = t.elapsed().as_secs_f64();
            let best = best.get_or_insert_with(|| (total, timed.seconds.clone()));
            best.0 = best.0.min(total);
            best.1.iter_mut().for_each(|(k, v)| *v = v.min(timed.seconds[k]));
        }
        let (total, seconds) = best.expect("3 passes");
        let parts: Vec<String> = seconds.iter().map(|(k, v)| format!("{k} {:.0} ms", v * 1e3)).collect();
        Some(format!("{:.0} ms; {}", total * 1e3, parts.join(", ")))
    }
}

/// open_clip's images per second, and its description line.
fn open_clip(setup: &peer::Setup, python: &str, model: &str, batch: usize, batches: usize, dtype: &str) -> Result<(f64, String), String> {
    let text = setup.run(python, "open_clip_peer.py", &[batch.to_string(), batches.to_string(), dtype.into(), model.into()])?;
    Ok((peer::field(&text, "images_per_s")?, text.lines().next().unwrap_or("open_clip").to_string()))
}

/// The worst cosine between corresponding rows.
fn worst_cosine(a: &[f32], b: &[f32], dim: usize) -> f64 {
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum::<f64>();
    a.chunks_exact(dim).zip(b.chunks_exact(dim)).map(|(x, y)| dot(x, y) / (dot(x, x) * dot(y, y)).sqrt()).fold(1.0, f64::min)
}

fn main() {
    pairguard_alloc::keep_freed_pages();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let setup = peer::Setup::from_args(&args);
    let rounds = peer::option::<usize>(&args, "--rounds").unwrap_or(3);
    assert!(rounds > 0, "--rounds takes a positive number");
    let model_name = peer::option::<String>(&args, "--model").unwrap_or_else(|| "vit-b-32".into());
    let (config, open_clip_name) = match model_name.as_str() {
        "vit-b-32" => (VisionConfig::vit_b_32(), "ViT-B-32"),
        "vit-l-14" => (VisionConfig::vit_l_14(), "ViT-L-14"),
        other => panic!("--model is vit-b-32 or vit-l-14, not {other:?}"),
    };
    let nums = peer::positional(&args, &["--rounds", "--threads", "--model"]);
    let batch = nums.first().copied().unwrap_or(32);
    let batches = nums.get(1).copied().unwrap_or(3);
    let python = std::env::var("PAIRGUARD_PYTHON").unwrap_or_else(|_| "python3".into());
    println!("CLIP {open_clip_name} image encoder, random weights, batch {batch} x {batches} per figure, {rounds} rounds");
    println!("{}", setup.describe());

    let f32_cpu = Bench::new(&config, &Device::flex(), batch);
    let bf16_cpu = f32_cpu.host(Products::Bf16);
    let int8_cpu = f32_cpu.host(Products::Int8);
    let dim = config.projection_dim;
    let reference = f32_cpu.run();
    for (name, bench) in [("bf16", &bf16_cpu), ("int8", &int8_cpu)] {
        println!("{name} against f32 embeddings: worst cosine {:.6} over {batch} inputs", worst_cosine(&reference, &bench.run(), dim));
        if let Some(profile) = bench.profile() {
            println!("{name} batch of {batch}, fastest of 3 passes: {profile}");
        }
    }
    // Each pairguard precision and the open_clip precision it is timed against.
    let sides = [("f32", Some("fp32"), &f32_cpu), ("bf16", Some("bf16"), &bf16_cpu), ("int8", None, &int8_cpu)];
    let mut ours: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    let mut theirs: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    let mut peer_ok = true;
    for round in 1..=rounds {
        for (i, (name, dtype, bench)) in sides.iter().enumerate() {
            let ips = bench.images_per_s(batches);
            println!("round {round}: pairguard cpu {name:<4} {ips:7.2} images/s");
            ours[i].push(ips);
            let Some(dtype) = dtype.filter(|_| peer_ok) else { continue };
            match open_clip(&setup, &python, open_clip_name, batch, batches, dtype) {
                Ok((theirs_ips, line)) => {
                    println!("round {round}: {line}  (ratio {:.2}x)", ips / theirs_ips);
                    theirs[i].push(theirs_ips);
                }
                Err(e) => {
                    println!("open_clip peer not run: {e}");
                    peer_ok = false;
                }
            }
        }
    }
    let medians: Vec<f64> = theirs.iter().filter(|t| !t.is_empty()).map(|t| peer::median(t.clone())).collect();
    let fastest_peer = medians.iter().copied().fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    for (i, (name, dtype, _)) in sides.iter().enumerate() {
        let ours_median = peer::median(ours[i].clone());
        print!("pairguard cpu {name:<4} median [range] {} images/s", peer::spread(&ours[i], 2));
        if let (Some(dtype), false) = (dtype, theirs[i].is_empty()) {
            let ratio = ours_median / peer::median(theirs[i].clone());
            print!("; open_clip {dtype} {}; ratio of medians {ratio:.2}x", peer::spread(&theirs[i], 2));
        }
        if let Some(fastest) = fastest_peer {
            print!("; {:.2}x open_clip's faster precision", ours_median / fastest);
        }
        println!();
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
        let ips = Bench::new(&config, &sel.device, batch).images_per_s(batches);
        println!("pairguard {}: {ips:7.2} images/s", sel.description);
    }
}

/// Any [`VisionOps`] with the time spent in each kind of operation.
struct Timed<'a, O> {
    ops: &'a mut O,
    seconds: std::collections::BTreeMap<&'static str, f64>,
}

impl<O: VisionOps> Timed<'_, O> {
    fn time<R>(&mut self, name: &'static str, f: impl FnOnce(&mut O) -> R) -> R {
        let t = Instant::now();
        let r = f(self.ops);
        *self.seconds.entry(name).or_default() += t.elapsed().as_secs_f64();
        r
    }
}

impl<O: VisionOps> VisionOps for Timed<'_, O> {
    type Pixels = O::Pixels;
    type Tokens = O::Tokens;
    type Embeddings = O::Embeddings;
    fn embed(&mut self, p: O::Pixels, e: &ClipVisionEmbeddings) -> O::Tokens {
        self.time("embed", |o| o.embed(p, e))
    }
    fn layer_norm(&mut self, x: O::Tokens, n: &LayerNorm) -> O::Tokens {
        self.time("layer_norm", |o| o.layer_norm(x, n))
    }
    fn linear(&mut self, x: O::Tokens, l: &Linear) -> O::Tokens {
        self.time("linear", |o| o.linear(x, l))
    }
    fn projection(&mut self, x: O::Tokens, l: &Linear) -> O::Tokens {
        self.time("linear", |o| o.projection(x, l))
    }
    fn activation(&mut self, x: O::Tokens, a: Activation) -> O::Tokens {
        self.time("activation", |o| o.activation(x, a))
    }
    fn add(&mut self, a: O::Tokens, b: O::Tokens) -> O::Tokens {
        self.time("add", |o| o.add(a, b))
    }
    fn attention(&mut self, qkv: O::Tokens, heads: usize, queries: Option<usize>) -> O::Tokens {
        self.time("attention", |o| o.attention(qkv, heads, queries))
    }
    fn first_tokens(&mut self, x: O::Tokens, n: Option<usize>) -> O::Tokens {
        self.time("first_tokens", |o| o.first_tokens(x, n))
    }
    fn class_token(&mut self, x: O::Tokens) -> O::Embeddings {
        self.time("class_token", |o| o.class_token(x))
    }
}
