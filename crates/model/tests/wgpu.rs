//! The wgpu path, on whatever adapter exists (Mesa's lavapipe in CI). Ignored
//! by default, as a machine may have no adapter; `.ci/run` installs the
//! Vulkan driver and runs it with `--ignored`.

#![cfg(feature = "wgpu")]

use pairguard_model::device::{select, wgpu_adapters};
use pairguard_model::{BankJob, DeviceChoice, FeatureNorm, NormKind, Optimizer, TrainConfig, bank_logits, fit_bank};

#[test]
#[ignore = "needs a wgpu adapter (a GPU, or Mesa's lavapipe); run with --ignored"]
fn wgpu_trains_and_matches_the_cpu_backend() {
    let adapters = wgpu_adapters();
    assert!(!adapters.is_empty(), "wgpu sees no adapter");
    let sel = select(DeviceChoice::Wgpu).unwrap();
    assert!(sel.is_wgpu, "{}", sel.description);
    // A tiny separable problem: wgpu on a software adapter is slow.
    let (n, d) = (64usize, 8usize);
    let x: Vec<f32> = (0..n * d).map(|i| (((i * 7919) % 97) as f32 / 97.0) - 0.5).collect();
    let y: Vec<f32> = (0..n).map(|i| f32::from(u8::from(x[i * d] + x[i * d + 1] > 0.0))).collect();
    let job = BankJob {
        x: &x,
        dim: d,
        targets: &y,
        outputs: 1,
        members: vec![(0..n).collect()],
        lambdas: vec![1e-3],
        norms: vec![FeatureNorm::fit(NormKind::Standardize, &x, d)],
        validation: None,
        start: None,
    };
    let cfg = TrainConfig { optimizer: Optimizer::Lbfgs { iterations: 30 }, ..TrainConfig::default() };
    let on_gpu = fit_bank(&job, &cfg, &sel.device).unwrap();
    let on_cpu = fit_bank(&job, &cfg, &pairguard_model::Device::flex()).unwrap();
    for (a, b) in on_gpu.heads[0].w1.iter().zip(&on_cpu.heads[0].w1) {
        assert!((a - b).abs() < 1e-3, "wgpu {a} vs cpu {b}");
    }
    let norm = &job.norms[0];
    let lg = bank_logits(&[&on_gpu.heads[0]], &[norm], &x, &sel.device);
    let mut xs = x.clone();
    norm.apply(&mut xs);
    let host = on_gpu.heads[0].logits_host(&xs);
    for (a, b) in lg.iter().zip(&host) {
        assert!((a - b).abs() < 1e-4);
    }
    let acc = (0..n).filter(|&i| (lg[i] > 0.0) == (y[i] > 0.5)).count();
    let cpu_logits = on_cpu.heads[0].logits_host(&xs);
    let cpu_acc = (0..n).filter(|&i| (cpu_logits[i] > 0.0) == (y[i] > 0.5)).count();
    assert!(acc >= 48, "wgpu-trained probe learns (chance is 32/64): {acc}/{n}");
    assert!(acc.abs_diff(cpu_acc) <= 1, "wgpu {acc}/{n} vs cpu {cpu_acc}/{n}");
}
