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

/// The CLIP encoder's reference embeddings (see `pairguard-clip`'s tests)
/// on wgpu, where QuickGELU and LayerNorm are composed from burn ops
/// instead of flex's host kernels.
#[test]
#[ignore = "needs a wgpu adapter (a GPU, or Mesa's lavapipe); run with --ignored"]
fn wgpu_encoder_matches_the_reference() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../clip/tests/fixtures/clip");
    let bytes = std::fs::read(fixtures.join("reference.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let reference = |name: &str| -> (Vec<f32>, Vec<usize>) {
        let t = st.tensor(name).unwrap();
        (t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(), t.shape().to_vec())
    };
    let l2 = |v: &[f32], d: usize| -> Vec<f32> {
        v.chunks(d)
            .flat_map(|r| {
                let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
                r.iter().map(move |x| x / n)
            })
            .collect()
    };
    let sel = select(DeviceChoice::Wgpu).unwrap();
    assert!(sel.is_wgpu, "{}", sel.description);
    for (dir, reference_name) in [("hf-quickgelu", "embeds_quickgelu"), ("hf-gelu", "embeds_gelu")] {
        let enc = pairguard_clip::ImageEncoder::load(&fixtures.join(dir).join("model.safetensors"), None, false, &sel.device).unwrap();
        let (pixels, shape) = reference("pixels");
        let (want, _) = reference(reference_name);
        let got = enc.embed_pixels(pixels, shape[0]);
        let d = enc.config.projection_dim;
        let err = l2(&got, d).iter().zip(l2(&want, d)).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(err <= 1e-4, "{reference_name}: max abs difference {err} on L2-normalised embeddings");
    }
}
