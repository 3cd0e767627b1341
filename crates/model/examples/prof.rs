use burn::tensor::{Tensor, TensorData, Device};
use burn::optim::{AdamWConfig, GradientsParams};
use pairguard_model::{HeadBank, HeadKind};
use std::time::Instant;
fn main() {
    let (n, d) = (10_000usize, 512usize);
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let x: Vec<f32> = (0..n * d).map(|i| ((i * 7919 % 1013) as f32 / 1013.0) - 0.5).collect();
    let xa: Tensor<2> = Tensor::from_data(TensorData::new(x.clone(), [n, d]), &ad);
    let y: Tensor<3> = Tensor::from_data(TensorData::new(vec![1.0f32; n], [1, n, 1]), &ad);
    let w: Tensor<3> = Tensor::from_data(TensorData::new(vec![1.0f32 / n as f32; n], [1, n, 1]), &ad);
    let lam: Tensor<3> = Tensor::from_data(TensorData::new(vec![1e-3f32], [1, 1, 1]), &ad);
    let mut bank = HeadBank::init(HeadKind::Linear, 1, d, 1, 0, &ad);
    let mut opt = AdamWConfig::new().with_weight_decay(0.0).init();
    let (mut tf, mut tl, mut tb, mut ts) = (0.0, 0.0, 0.0, 0.0);
    for _ in 0..50 {
        let t = Instant::now();
        let z = bank.forward(xa.clone(), None);
        tf += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let bce = z.clone().clamp_min(0.0) - z.clone() * y.clone() + z.abs().neg().exp().log1p();
        let loss = (bce * w.clone()).sum() + bank.l2_penalty(lam.clone());
        tl += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let g = GradientsParams::from_grads(loss.backward(), &bank);
        tb += t.elapsed().as_secs_f64();
        let t = Instant::now();
        bank = opt.step(0.05, bank, g);
        ts += t.elapsed().as_secs_f64();
    }
    println!("per step ms: forward {:.2} loss {:.2} backward {:.2} step {:.2}", tf * 20.0, tl * 20.0, tb * 20.0, ts * 20.0);
}
