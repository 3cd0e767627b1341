//! Attack throughput through the whole pipeline: FGSM and PGD-10 (random
//! start) on CLIP ViT-B/32 (seeded random weights, fp32) with a linear guard
//! on the unit-length embedding, on the CPU backend; and the same attacks in
//! torch (open_clip's tower, plain autograd) in the same run when Python with
//! torch and open_clip is available (`PAIRGUARD_PYTHON`, default `python3`).
//!
//!     cargo run -p pairguard-model --example bench_attack -- [batch] [--rounds R] [--threads N]
//!
//! pairguard and torch take turns for R rounds (default 3), each warmed up
//! by one FGSM pass over the full batch, on N threads each (default: every
//! core) and with allocators that both keep freed pages (see `peer`);
//! medians with their per-round range, and the ratio of medians, are printed.

// The allocator of the `pairguard` binary, so these figures are its figures
// (see crates/alloc).
#[global_allocator]
static ALLOCATOR: pairguard_alloc::MiMalloc = pairguard_alloc::MiMalloc;

mod peer;

use std::time::Instant;

use pairguard_clip::{ImageEncoder, VisionConfig};
use pairguard_model::head::{HeadKind, HeadWeights};
use pairguard_model::normalize::{FeatureNorm, NormKind};
use pairguard_model::robust::attack::{self, Attack};
use pairguard_model::robust::{EpsUnit, GuardDecision};
use pairguard_model::{Device, GuardModel};

const EPS: f64 = 0.01;

fn encoder(device: &Device) -> ImageEncoder {
    let config = VisionConfig::vit_b_32();
    device.seed(0);
    let model = config.init(device);
    peer::random_encoder("random ViT-B/32", config, model, device)
}

fn guard(encoder: &ImageEncoder) -> GuardModel {
    let d = encoder.config.projection_dim;
    let w: Vec<f32> = (0..d).map(|i| ((i * 7919 % 101) as f32 / 101.0 - 0.5) * 4.0).collect();
    let head = HeadWeights { kind: HeadKind::Linear, input_dim: d, outputs: 1, w1: w, b1: vec![0.0], w2: None, b2: None, middle: Vec::new() };
    GuardModel::fixed(head, FeatureNorm { kind: NormKind::L2, ..FeatureNorm::identity(d) }, encoder.id.clone(), 0.5).expect("shapes match")
}

/// Images per second of one attack on one batch (the final evaluation included).
fn images_per_s(target: &GuardDecision, attack: &Attack, batch: usize) -> f64 {
    let s = target.image_size();
    let pixels: Vec<f32> = (0..batch * 3 * s * s).map(|i| ((i % 251) as f32 / 125.0) - 1.0).collect();
    let x = target.images(pixels, batch);
    let labels: Vec<bool> = target.decisions(&x).iter().map(|&z| z >= 0.0).collect();
    let seeds: Vec<u64> = (0..batch as u64).collect();
    let t = Instant::now();
    attack::run(attack, target, &x, &labels, &[EPS], &seeds).expect("valid attack");
    batch as f64 / t.elapsed().as_secs_f64()
}

/// torch's (FGSM, PGD-10) images per second, and its description line.
fn torch(setup: &peer::Setup, python: &str, batch: usize) -> Result<(f64, f64, String), String> {
    let text = setup.run(python, "torch_attack_peer.py", &[batch.to_string()])?;
    Ok((peer::field(&text, "fgsm_images_per_s")?, peer::field(&text, "pgd10_images_per_s")?, text.lines().next().unwrap_or("torch").to_string()))
}

fn main() {
    pairguard_alloc::keep_freed_pages();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let setup = peer::Setup::from_args(&args);
    let rounds = peer::option::<usize>(&args, "--rounds").unwrap_or(3).max(1);
    let batch = args.first().and_then(|a| a.parse().ok()).unwrap_or(8);
    let python = std::env::var("PAIRGUARD_PYTHON").unwrap_or_else(|_| "python3".into());
    println!("attacks on CLIP ViT-B/32 (random weights, fp32) + linear guard, eps {EPS}, batch {batch}, {rounds} rounds");
    println!("{}", setup.describe());
    let device = Device::flex();
    let enc = encoder(&device);
    let g = guard(&enc);
    let target = GuardDecision::new(&g, &enc, EpsUnit::Normalized).expect("same encoder");
    let fgsm = Attack::Fgsm;
    let pgd10 = Attack::Pgd { steps: 10, random_start: true, rel_stepsize: 0.01 / 0.3 };
    images_per_s(&target, &fgsm, batch); // warm-up: the first pass faults its pages in
    let (mut ours, mut theirs) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for round in 1..=rounds {
        let (f, p) = (images_per_s(&target, &fgsm, batch), images_per_s(&target, &pgd10, batch));
        println!("round {round}: pairguard cpu (burn flex)  FGSM {f:6.2} images/s  PGD-10 {p:6.3} images/s");
        ours.0.push(f);
        ours.1.push(p);
        match torch(&setup, &python, batch) {
            Ok((tf, tp, line)) => {
                println!("round {round}: {line}  FGSM {tf:6.2} images/s  PGD-10 {tp:6.3} images/s  (ratios {:.2}x, {:.2}x)", f / tf, p / tp);
                theirs.0.push(tf);
                theirs.1.push(tp);
            }
            Err(e) => {
                println!("torch peer not run: {e}");
                break;
            }
        }
    }
    let (of, op) = (peer::median(ours.0.clone()), peer::median(ours.1.clone()));
    println!("pairguard cpu, median [range]: FGSM {} images/s, PGD-10 {} images/s", peer::spread(&ours.0, 2), peer::spread(&ours.1, 3));
    if !theirs.0.is_empty() {
        let (tf, tp) = (peer::median(theirs.0.clone()), peer::median(theirs.1.clone()));
        println!("torch, median [range]:         FGSM {} images/s, PGD-10 {} images/s", peer::spread(&theirs.0, 2), peer::spread(&theirs.1, 3));
        println!("ratio of medians pairguard / torch: FGSM {:.2}x, PGD-10 {:.2}x", of / tf, op / tp);
    }
}
