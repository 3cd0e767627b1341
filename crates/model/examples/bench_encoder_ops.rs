//! Where a CLIP ViT-B/32 encoder layer spends its time on the CPU backend:
//! each operation of one layer at batch 32 (1,600 token rows), timed on
//! burn flex and, when Python with torch is available (`PAIRGUARD_PYTHON`,
//! default `python3`), the same operations in torch on the same machine in
//! the same run. The encoder is twelve of these layers, so this shows which
//! kernel separates the two (on the 2-core AVX-512 machine of the README the
//! GEMMs run at torch's speed, QuickGELU faster, the attention core slower).
//!
//!     cargo run -p pairguard-model --example bench_encoder_ops -- [--threads N]
//!
//! Both sides run on N threads (default: every core) with allocators that
//! keep freed pages (see `peer`), each timing the mean of 5 runs after one
//! warm-up.

// The allocator of the `pairguard` binary, so these figures are its figures
// (see crates/alloc).
#[global_allocator]
static ALLOCATOR: pairguard_alloc::MiMalloc = pairguard_alloc::MiMalloc;

mod peer;

use std::time::Instant;

use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::module::layer_norm;
use burn::tensor::{Device, Tensor, TensorData};
use pairguard_clip::activation::quick_gelu;

const ROWS: usize = 32 * 50;
const HIDDEN: usize = 768;
const MLP: usize = 3072;

fn filled(d: &Device, rows: usize, cols: usize) -> Tensor<2> {
    let v: Vec<f32> = (0..rows * cols).map(|i| ((i * 7919 % 1013) as f32 / 1013.0) - 0.5).collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), d)
}

/// Mean milliseconds of `f` over 5 runs after one warm-up, forcing the result to host memory.
fn time_ms(mut f: impl FnMut() -> Tensor<2>) -> f64 {
    let _ = f().into_data();
    let t = Instant::now();
    for _ in 0..5 {
        let _ = f().into_data();
    }
    t.elapsed().as_secs_f64() * 1e3 / 5.0
}

fn report(name: &str, ms: f64, flops: f64) {
    if flops > 0.0 {
        println!("flex  {name:<28} {ms:8.2} ms  {:6.1} GFLOP/s", flops / ms / 1e6);
    } else {
        println!("flex  {name:<28} {ms:8.2} ms");
    }
}

fn main() {
    pairguard_alloc::keep_freed_pages();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let setup = peer::Setup::from_args(&args);
    let d = Device::flex();
    println!("one ViT-B/32 layer's operations at batch 32 ({ROWS} rows)");
    println!("{}", setup.describe());
    let x = filled(&d, ROWS, HIDDEN);
    let h = filled(&d, ROWS, MLP);
    let w_qkv = filled(&d, HIDDEN, 3 * HIDDEN);
    let w_out = filled(&d, HIDDEN, HIDDEN);
    let w_fc1 = filled(&d, HIDDEN, MLP);
    let w_fc2 = filled(&d, MLP, HIDDEN);
    let bias = filled(&d, 1, MLP);
    let gemm = |m: usize, k: usize, n: usize| 2.0 * (m * k * n) as f64;
    let mut total = 0.0;
    for (name, a, w, k, n) in [
        ("qkv_proj 1600x768x2304", &x, &w_qkv, HIDDEN, 3 * HIDDEN),
        ("out_proj 1600x768x768", &x, &w_out, HIDDEN, HIDDEN),
        ("fc1 1600x768x3072", &x, &w_fc1, HIDDEN, MLP),
        ("fc2 1600x3072x768", &h, &w_fc2, MLP, HIDDEN),
    ] {
        let ms = time_ms(|| a.clone().matmul(w.clone()));
        report(name, ms, gemm(ROWS, k, n));
        total += ms;
    }
    // The encoder's QuickGELU takes its input by value, as here (a fresh copy
    // each time, so the in-place host pass applies); burn's composition is
    // shown for comparison.
    let ms = time_ms(|| quick_gelu(h.clone().add_scalar(0.0)));
    report("quick_gelu 1600x3072", ms, 0.0);
    total += ms;
    let ms = time_ms(|| h.clone() * sigmoid(h.clone().mul_scalar(1.702)));
    report("(burn ops x*sigmoid(1.702x))", ms, 0.0);
    let ms = time_ms(|| h.clone() + bias.clone());
    report("bias add 1600x3072", ms, 0.0);
    let (gamma, beta) = (filled(&d, 1, HIDDEN).reshape([HIDDEN]), filled(&d, 1, HIDDEN).reshape([HIDDEN]));
    let ms = time_ms(|| layer_norm(x.clone(), gamma.clone(), Some(beta.clone()), 1e-5));
    report("layer_norm 1600x768", ms, 0.0);
    total += 2.0 * ms;
    let qkv = x.clone().matmul(w_qkv.clone());
    let ms = time_ms(|| {
        let (b, t, heads, hd) = (32, 50, 12, 64);
        let qkv = qkv.clone().reshape([b, t, 3, heads, hd]).permute([2, 0, 3, 1, 4]);
        let q: Tensor<4> = qkv.clone().narrow(0, 0, 1).reshape([b, heads, t, hd]);
        let k: Tensor<4> = qkv.clone().narrow(0, 1, 1).reshape([b, heads, t, hd]);
        let v: Tensor<4> = qkv.narrow(0, 2, 1).reshape([b, heads, t, hd]);
        let scores = q.mul_scalar(0.125).matmul(k.swap_dims(2, 3));
        softmax(scores, 3).matmul(v).swap_dims(1, 2).reshape([b * t, HIDDEN])
    });
    report("attention core (12 heads)", ms, 0.0);
    total += ms;
    println!("flex  layer (main operations)      {total:8.2} ms  -> about {:.2} images/s for 12 layers", 32.0 / (12.0 * total / 1e3));

    // The encoder's layers are burn::nn modules; these rows show what the
    // module forms cost against the bare operations above.
    let linear = burn::nn::LinearConfig::new(HIDDEN, MLP).init(&d);
    let x3: Tensor<3> = x.clone().reshape([32, 50, HIDDEN]);
    let ms = time_ms(|| linear.forward(x3.clone()).reshape([ROWS, MLP]));
    report("nn::Linear fc1 [32,50,768] (+bias)", ms, gemm(ROWS, HIDDEN, MLP));
    let conv = burn::nn::conv::Conv2dConfig::new([3, HIDDEN], [32, 32]).with_stride([32, 32]).with_bias(false).init(&d);
    let pixels: Tensor<4> = filled(&d, 32 * 3 * 224, 224).reshape([32, 3, 224, 224]);
    let patches = 32 * 49;
    let ms = time_ms(|| conv.forward(pixels.clone()).reshape([32, HIDDEN, 49]).swap_dims(1, 2).reshape([patches, HIDDEN]));
    report("nn::Conv2d patch embedding", ms, gemm(patches, 3 * 32 * 32, HIDDEN));
    let kernel = conv.weight.val().reshape([HIDDEN, 3 * 32 * 32]).transpose();
    let ms = time_ms(|| {
        let p = pixels.clone().reshape([32, 3, 7, 32, 7, 32]).permute([0, 2, 4, 1, 3, 5]).reshape([patches, 3 * 32 * 32]);
        p.matmul(kernel.clone())
    });
    report("patchify + matmul (same result)", ms, gemm(patches, 3 * 32 * 32, HIDDEN));

    let python = std::env::var("PAIRGUARD_PYTHON").unwrap_or_else(|_| "python3".into());
    match setup.run(&python, "torch_ops_peer.py", &[]) {
        Ok(text) => print!("{text}"),
        Err(e) => println!("torch peer not run: {e}"),
    }
}
