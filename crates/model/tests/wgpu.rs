//! The wgpu path, on whatever adapter exists (Mesa's lavapipe in CI). Runs
//! when PAIRGUARD_TEST_WGPU=1 (set by .ci/run after installing the Vulkan
//! driver); elsewhere it says it did not run.

#![cfg(feature = "wgpu")]

use pairguard_model::device::{select, wgpu_adapters};
use pairguard_model::{bank_logits, fit_bank, BankJob, DeviceChoice, TrainConfig};

#[test]
fn wgpu_trains_and_matches_the_cpu_backend() {
    if std::env::var("PAIRGUARD_TEST_WGPU").as_deref() != Ok("1") {
        eprintln!("wgpu test not run: set PAIRGUARD_TEST_WGPU=1 on a machine with a wgpu adapter");
        return;
    }
    let adapters = wgpu_adapters();
    assert!(!adapters.is_empty(), "PAIRGUARD_TEST_WGPU=1 but wgpu sees no adapter");
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
        validation: None,
        epochs: None,
    };
    let cfg = TrainConfig { epochs: 30, ..TrainConfig::default() };
    let on_gpu = fit_bank(&job, &cfg, &sel.device).unwrap();
    let on_cpu = fit_bank(&job, &cfg, &pairguard_model::Device::flex()).unwrap();
    for (a, b) in on_gpu.heads[0].w1.iter().zip(&on_cpu.heads[0].w1) {
        assert!((a - b).abs() < 1e-3, "wgpu {a} vs cpu {b}");
    }
    let lg = bank_logits(&[&on_gpu.heads[0]], &x, &sel.device);
    let host = on_gpu.heads[0].logits_host(&x);
    for (a, b) in lg.iter().zip(&host) {
        assert!((a - b).abs() < 1e-4);
    }
    let acc = (0..n).filter(|&i| (lg[i] > 0.0) == (y[i] > 0.5)).count();
    let cpu_logits = on_cpu.heads[0].logits_host(&x);
    let cpu_acc = (0..n).filter(|&i| (cpu_logits[i] > 0.0) == (y[i] > 0.5)).count();
    assert!(acc >= 48, "wgpu-trained probe learns (chance is 32/64): {acc}/{n}");
    assert!(acc.abs_diff(cpu_acc) <= 1, "wgpu {acc}/{n} vs cpu {cpu_acc}/{n}");
}
