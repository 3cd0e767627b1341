//! The vision tower on the CPU in reduced precision, on host memory: every
//! product (patch embedding, projections, MLP) either multiplies bf16
//! operands with f32 accumulation ([`Products::Bf16`]) or int8 operands
//! with i32 accumulation ([`Products::Int8`]), through `gemmkit`, which
//! picks its kernel at run time: `vdpbf16ps` on CPUs with AVX-512 BF16 and
//! `vpdpbusd` on AVX-512 VNNI, widening kernels elsewhere (gemmkit has no
//! kernel for the 256-bit AVX-VNNI of Intel's client cores).
//!
//! bf16 runs the encoder about twice as fast as f32 on AMD's Zen 4 and
//! Zen 5; on Intel cores before AMX `vdpbf16ps` issues on one port where
//! f32 FMAs issue on two, and bf16 gains nothing. int8's dot product does
//! four multiply-adds per 32-bit lane, bf16's two: it is the precision that
//! can pay on both vendors. On Zen 5, where a core's int8 peak is about 2x
//! its bf16 peak, the encoder runs faster in int8 than in bf16; the work
//! around the products (attention, LayerNorm, the quantisation of inputs
//! and rescaling of outputs) bounds how much (docs/benchmarks.md).
//!
//! int8 quantises each weight matrix of the transformer's layers once, per
//! output column (symmetric, scale `max |w| / 127`), packed once into the
//! integer kernel's layout, and each product's input at run time, per token
//! (asymmetric: the row's range onto -128..=127, so GELU's one-sided
//! outputs keep all 256 levels); the i32 accumulator is corrected for the
//! input's zero point with the weights' column sums, scaled back to f32,
//! and the bias added before the one rounding of the output, 64 rows at a
//! time, so that a row block's accumulator is rescaled while it is still
//! in the core's cache. The first and
//! last products, the patch embedding (which reads the pixels) and the
//! projection (which writes the embedding), stay bf16: about 3% of
//! ViT-B/32's multiply-adds and 0.2% of ViT-L/14's, and on the synthetic
//! guard benchmark they carried over two thirds of int8's loss of AUROC
//! (docs/precision.md).
//!
//! What flows between the products is bf16 in both, as in a torch bf16
//! model (the LayerNorms' outputs, the projections' outputs with their
//! bias, the MLP's activation), so each is written once in the form the
//! next product reads. The residual stream stays f32, and LayerNorm and
//! attention compute in f32 (attention's own products in bf16). The
//! activation is a table over all 65,536 bf16 inputs. The work between the
//! products is in [`kernels`].
//!
//! This path records no autodiff graph: it is for embedding, not for
//! attacks that need gradients through the encoder.

pub mod kernels;

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::Tensor;
use gemmkit::{Bias, MatMut, MatRef, PackedRhs, Parallelism, gemm_fused, gemm_i8_packed_b, prepack_rhs_i8};
use half::bf16;
use rayon::prelude::*;

use crate::activation::quick_gelu_in_place;
use crate::config::{Activation, VisionConfig};
use crate::vision::{ClipVisionEmbeddings, ClipVisionModelWithProjection, VisionOps};
use kernels::AttentionScratch;

/// Rows per rayon task in the row-wise passes.
const ROWS: usize = 64;

/// Values per rayon task in the element-wise passes.
const CHUNK: usize = 1 << 15;

/// The arithmetic of the host path's products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Products {
    /// bf16 operands, f32 accumulation.
    Bf16,
    /// int8 weights per output column, int8 inputs per token, i32
    /// accumulation, in the transformer's layers; bf16 in the first and last
    /// products (see the module documentation).
    Int8,
}

/// Which of the host path's products run on the CPU's own dot products
/// (else `gemmkit` widens them to f32 or i32 arithmetic, correct but
/// without the gain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DotProducts {
    /// AVX-512 BF16 (`vdpbf16ps`).
    pub bf16: bool,
    /// AVX-512 VNNI (`vpdpbusd`), with the AVX-512 F and BW its kernel
    /// also uses; gemmkit widens on AVX-VNNI alone.
    pub int8: bool,
}

impl DotProducts {
    /// What this CPU has.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            DotProducts {
                bf16: std::arch::is_x86_feature_detected!("avx512bf16"),
                int8: std::arch::is_x86_feature_detected!("avx512vnni")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512f"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            DotProducts { bf16: false, int8: false }
        }
    }
}

/// The CPU as `/proc/cpuinfo` names it, with its family and model numbers
/// and, where they are known here, its core design: `lscpu`'s model name
/// alone ("AMD EPYC") does not tell Zen 4 from Zen 5, whose products run at
/// different rates.
pub fn cpu_name() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| info.lines().find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == name).map(|(_, v)| v.trim().to_string()));
    let Some(model_name) = field("model name") else { return "unknown".into() };
    let number = |name: &str| field(name).and_then(|v| v.parse::<u32>().ok());
    let (Some(family), Some(model)) = (number("cpu family"), number("model")) else { return model_name };
    let vendor = field("vendor_id").unwrap_or_default();
    let design = match (vendor.as_str(), family, model) {
        ("AuthenticAMD", 25, 0x10..=0x1F | 0x60..=0x7F | 0xA0..=0xAF) => Some("Zen 4"),
        ("AuthenticAMD", 25, _) => Some("Zen 3"),
        ("AuthenticAMD", 26, _) => Some("Zen 5"),
        ("GenuineIntel", 6, 0x55) => Some("Skylake-SP or Cascade Lake"),
        ("GenuineIntel", 6, 0x6A | 0x6C) => Some("Ice Lake-SP"),
        ("GenuineIntel", 6, 0x8F) => Some("Sapphire Rapids"),
        ("GenuineIntel", 6, 0xCF) => Some("Emerald Rapids"),
        ("GenuineIntel", 6, 0xAD | 0xAE) => Some("Granite Rapids"),
        _ => None,
    };
    match design {
        Some(d) => format!("{model_name} (family {family}, model {model}: {d})"),
        None => format!("{model_name} (family {family}, model {model})"),
    }
}

/// The tower's parameters on the host, by parameter id: the products'
/// matrices in bf16 or int8 only (row-major `[in, out]`, as burn's `Linear`
/// holds them), the rest in f32; and the activation as a table.
pub struct HostWeights {
    matrices: HashMap<ParamId, Matrix>,
    vectors: HashMap<ParamId, Vector>,
    /// The LayerNorms' epsilon (one per tower; burn keeps a module's private).
    eps: f32,
    /// The activation of every bf16 value, indexed by its bits.
    activation: Vec<bf16>,
    /// While visiting: whether each enclosing module is a `Linear`.
    path: Vec<bool>,
    products: Products,
    /// The `Linear` kept in bf16 whatever `products` says: the projection.
    last: ParamId,
}

#[derive(Debug)]
struct Matrix {
    values: Stored,
    rows: usize,
    cols: usize,
}

/// A weight matrix `[rows, cols]` in int8 per column, as the int8 products
/// (and the int8 ONNX export) use it: `w ~ values * scales[col]`, symmetric
/// (scale `max |w| / 127`, rounding half to even), with each column's sum of
/// `values` for the inputs' zero-point correction.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedColumns {
    pub values: Vec<i8>,
    pub scales: Vec<f32>,
    pub sums: Vec<i32>,
}

impl QuantizedColumns {
    /// Quantises row-major `values` of `cols` columns.
    pub fn of(values: &[f32], cols: usize) -> Self {
        let mut scales = vec![0.0f32; cols];
        for row in values.chunks_exact(cols) {
            scales.iter_mut().zip(row).for_each(|(s, v)| *s = s.max(v.abs()));
        }
        // A zero column quantises to zeros with any scale.
        scales.iter_mut().for_each(|s| *s = if *s > 0.0 { *s / 127.0 } else { 1.0 });
        // ViT-L/14's 300 million weights are quantised at every load.
        let mut q = vec![0i8; values.len()];
        q.par_chunks_mut(ROWS * cols).zip(values.par_chunks(ROWS * cols)).for_each(|(q, v)| kernels::quantize_columns(v, &scales, q));
        let mut sums = vec![0i32; cols];
        for row in q.chunks_exact(cols) {
            // At most 127 x the depth: wrapping is exact, and vectorises.
            sums.iter_mut().zip(row).for_each(|(s, &v)| *s = s.wrapping_add(i32::from(v)));
        }
        QuantizedColumns { values: q, scales, sums }
    }
}

enum Stored {
    Bf16(Vec<bf16>),
    /// `w ~ values * scales[col]`, `values` packed for the integer kernel,
    /// with each column's sum of `values`.
    Int8 {
        packed: PackedRhs<i8>,
        scales: Vec<f32>,
        sums: Vec<i32>,
    },
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stored::Bf16(_) => "Bf16",
            Stored::Int8 { .. } => "Int8",
        })
    }
}

impl Matrix {
    /// `[rows, cols]` row-major f32 values in the products' arithmetic.
    fn new(values: &[f32], rows: usize, cols: usize, products: Products) -> Self {
        let values = match products {
            Products::Bf16 => Stored::Bf16(values.iter().map(|&v| bf16::from_f32(v)).collect()),
            Products::Int8 => {
                let q = QuantizedColumns::of(values, cols);
                let packed = prepack_rhs_i8(MatRef::from_row_major(&q.values, rows, cols));
                Stored::Int8 { packed, scales: q.scales, sums: q.sums }
            }
        };
        Matrix { values, rows, cols }
    }
}

/// A vector in f32 and in bf16 (a bias as the products' epilogue adds it).
#[derive(Debug)]
struct Vector {
    f32: Vec<f32>,
    bf16: Vec<bf16>,
}

impl HostWeights {
    /// Copies a tower's parameters to the host, once per encoder, its
    /// matrices in the arithmetic of `products`.
    pub fn of(model: &ClipVisionModelWithProjection, config: &VisionConfig, products: Products) -> Self {
        let mut activation: Vec<f32> = (0..=u16::MAX).map(|b| bf16::from_bits(b).to_f32()).collect();
        match config.hidden_act {
            Activation::QuickGelu => quick_gelu_in_place(&mut activation),
            Activation::Gelu => activation.iter_mut().for_each(|v| *v = gelu(*v)),
        }
        let mut w = HostWeights {
            matrices: HashMap::new(),
            vectors: HashMap::new(),
            eps: config.layer_norm_eps as f32,
            activation: activation.into_iter().map(bf16::from_f32).collect(),
            path: Vec::new(),
            products,
            last: model.visual_projection.weight.id,
        };
        model.visit(&mut w);
        // The patch embedding's kernel `[hidden, 3, p, p]` as the `[3 p p, hidden]`
        // matrix that multiplies flattened patches.
        let k = &model.vision_model.embeddings.patch_embedding.weight;
        let [h, c, p, q] = k.dims();
        let kernel = w.vectors.remove(&k.id).expect("visited").f32;
        let values: Vec<f32> = (0..c * p * q).flat_map(|i| (0..h).map(move |o| (i, o))).map(|(i, o)| kernel[o * c * p * q + i]).collect();
        w.matrices.insert(k.id, Matrix::new(&values, c * p * q, h, Products::Bf16));
        w
    }

    fn matrix<const D: usize>(&self, p: &Param<Tensor<D>>) -> &Matrix {
        self.matrices.get(&p.id).expect("a parameter of the tower these weights were copied from")
    }

    fn vector<const D: usize>(&self, p: &Param<Tensor<D>>) -> &[f32] {
        &self.vectors.get(&p.id).expect("a parameter of the tower these weights were copied from").f32
    }

    fn bias(&self, p: &Param<Tensor<1>>) -> &Vector {
        self.vectors.get(&p.id).expect("a parameter of the tower these weights were copied from")
    }

    /// The arithmetic of the products.
    pub fn products(&self) -> Products {
        self.products
    }
}

impl std::fmt::Debug for HostWeights {
    /// Counts, not the tens of millions of values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostWeights")
            .field("products", &self.products)
            .field("matrices", &self.matrices.len())
            .field("vectors", &self.vectors.len())
            .field("eps", &self.eps)
            .finish()
    }
}

impl ModuleVisitor for HostWeights {
    fn enter_module(&mut self, _: &str, container: &str) {
        self.path.push(container == "Struct:Linear");
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    /// A `Linear`'s weight is kept as a bf16 or int8 matrix only (it is
    /// read by products alone); everything else in f32, and 1-D parameters
    /// in bf16 too (biases enter the bf16 products' epilogue).
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let dims = t.dims();
        let values = t.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 after convert");
        if D == 2 && self.path.last() == Some(&true) {
            let products = if param.id == self.last { Products::Bf16 } else { self.products };
            self.matrices.insert(param.id, Matrix::new(&values, dims[0], dims[1], products));
            return;
        }
        let bf16 = if D == 1 { values.iter().map(|&v| bf16::from_f32(v)).collect() } else { Vec::new() };
        self.vectors.insert(param.id, Vector { f32: values, bf16 });
    }
}

/// The exact (erf) GELU.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Normalised pixels `[batch, 3, size, size]`, row-major, on the host.
#[derive(Debug, Clone, Copy)]
pub struct Pixels<'a> {
    pub values: &'a [f32],
    pub batch: usize,
}

/// A `[batch, tokens, width]` sequence on the host: the residual stream in
/// f32, what feeds a product in bf16.
#[derive(Debug, Clone)]
pub struct Tokens {
    values: Values,
    batch: usize,
    tokens: usize,
    width: usize,
}

#[derive(Debug, Clone)]
enum Values {
    F32(Vec<f32>),
    Bf16(Vec<bf16>),
}

impl Values {
    fn into_f32(self) -> Vec<f32> {
        match self {
            Values::F32(v) => v,
            Values::Bf16(v) => {
                let mut out = vec![0.0; v.len()];
                out.par_chunks_mut(CHUNK).zip(v.par_chunks(CHUNK)).for_each(|(o, v)| kernels::to_f32(v, o));
                out
            }
        }
    }

    fn into_bf16(self) -> Vec<bf16> {
        match self {
            Values::F32(v) => {
                let mut out = vec![bf16::ZERO; v.len()];
                out.par_chunks_mut(CHUNK).zip(v.par_chunks(CHUNK)).for_each(|(o, v)| kernels::to_bf16(v, o));
                out
            }
            Values::Bf16(v) => v,
        }
    }
}

/// [`VisionOps`] in reduced precision on the host; see the module documentation.
#[derive(Debug)]
pub struct HostCompute<'a> {
    pub weights: &'a HostWeights,
}

/// Rows per int8 task: each task quantises its rows, multiplies them and
/// scales the accumulator back while it is still in the core's cache (64
/// rows x 3,072 columns of i32 is 768 KiB), in one call of
/// [`kernels::dequantize_columns`]. On ViT-B/32 on Zen 5, a batch of 32
/// spent 238 ms in its products with 64 rows a task, 246 with 128.
const INT8_ROWS: usize = kernels::BLOCK;

/// A thread's buffers for its int8 tasks, kept between products: fresh
/// ones would be zeroed (and page-faulted in) for every product.
#[derive(Default)]
struct Int8Scratch {
    q: Vec<i8>,
    acc: Vec<i32>,
    inputs: Vec<kernels::RowQuant>,
}

thread_local! {
    static INT8_SCRATCH: std::cell::RefCell<Int8Scratch> = std::cell::RefCell::default();
}

/// `a [m, k] . w [k, n] + bias` in the matrix's arithmetic, rounded once to bf16.
fn product(a: &[bf16], m: usize, w: &Matrix, bias: Option<&Vector>) -> Vec<bf16> {
    let (k, n) = (w.rows, w.cols);
    debug_assert_eq!(a.len(), m * k);
    let mut c = vec![bf16::ZERO; m * n];
    match &w.values {
        Stored::Bf16(values) => {
            // The bias is added to the accumulator before the rounding.
            let (a, b, out) = (MatRef::from_row_major(a, m, k), MatRef::from_row_major(values, k, n), MatMut::from_row_major(&mut c, m, n));
            gemm_fused(bf16::ONE, a, b, bf16::ZERO, out, bias.map(|b| Bias::PerCol(&b.bf16[..])), None, Parallelism::Rayon(0));
        }
        Stored::Int8 { packed, scales, sums } => {
            let bias = bias.map(|b| &b.f32[..]);
            c.par_chunks_mut(INT8_ROWS * n).zip(a.par_chunks(INT8_ROWS * k)).for_each(|(c, a)| {
                INT8_SCRATCH.with_borrow_mut(|s| {
                    let rows = a.len() / k;
                    grow(&mut s.q, rows * k);
                    grow(&mut s.acc, rows * n);
                    grow(&mut s.inputs, rows);
                    let (q, acc, inputs) = (&mut s.q[..rows * k], &mut s.acc[..rows * n], &mut s.inputs[..rows]);
                    kernels::quantize_rows(a, q, inputs);
                    // The packed weights take a column-major accumulator:
                    // column `j` holds `acc[j * rows..][..rows]`.
                    gemm_i8_packed_b(1, MatRef::from_row_major(q, rows, k), packed, 0, MatMut::from_col_major(acc, rows, n), Parallelism::Serial);
                    kernels::dequantize_columns(acc, inputs, sums, scales, bias, c);
                })
            });
        }
    }
    c
}

/// Lengthens `v` to at least `len` (never shortens it).
fn grow<T: Clone + Default>(v: &mut Vec<T>, len: usize) {
    if v.len() < len {
        v.resize(len, T::default());
    }
}

impl<'a> VisionOps for HostCompute<'a> {
    type Pixels = Pixels<'a>;
    type Tokens = Tokens;
    type Embeddings = Vec<f32>;

    fn embed(&mut self, pixels: Pixels<'a>, e: &ClipVisionEmbeddings) -> Tokens {
        let [h, c, p, _] = e.patch_embedding.weight.dims();
        let b = pixels.batch;
        let s = ((pixels.values.len() / (b * c)) as f64).sqrt() as usize;
        let n = s / p;
        // Patches as rows of `c * p * p` (channel, row, column), as the
        // convolution's kernel is flattened.
        let cpp = c * p * p;
        let mut patches = vec![bf16::ZERO; b * n * n * cpp];
        patches.par_chunks_mut(cpp).enumerate().for_each(|(row, out)| {
            let (img, cell) = (row / (n * n), row % (n * n));
            let (gy, gx) = (cell / n, cell % n);
            for ch in 0..c {
                for y in 0..p {
                    let src = ((img * c + ch) * s + gy * p + y) * s + gx * p;
                    kernels::to_bf16(&pixels.values[src..src + p], &mut out[(ch * p + y) * p..(ch * p + y + 1) * p]);
                }
            }
        });
        let x = product(&patches, b * n * n, self.weights.matrix(&e.patch_embedding.weight), None);
        let (cls, pos) = (self.weights.vector(&e.class_embedding), self.weights.vector(&e.position_embedding.weight));
        let t = n * n + 1;
        let mut values = vec![0.0f32; b * t * h];
        values.par_chunks_mut(h).enumerate().for_each(|(row, out)| {
            let (img, tok) = (row / t, row % t);
            let pos = &pos[tok * h..(tok + 1) * h];
            if tok == 0 {
                out.iter_mut().zip(cls).zip(pos).for_each(|((o, &v), &q)| *o = v + q);
            } else {
                out.iter_mut().zip(&x[(img * n * n + tok - 1) * h..][..h]).zip(pos).for_each(|((o, v), &q)| *o = v.to_f32() + q);
            }
        });
        Tokens { values: Values::F32(values), batch: b, tokens: t, width: h }
    }

    fn layer_norm(&mut self, x: Tokens, n: &LayerNorm) -> Tokens {
        let (gamma, beta) = (self.weights.vector(&n.gamma), n.beta.as_ref().map(|b| self.weights.vector(b)));
        let (eps, w) = (self.weights.eps, x.width);
        let input = x.values.into_f32();
        let mut out = vec![bf16::ZERO; input.len()];
        let zeros = vec![0.0; w];
        let beta = beta.unwrap_or(&zeros);
        out.par_chunks_mut(ROWS * w).zip(input.par_chunks(ROWS * w)).for_each(|(out, rows)| kernels::layer_norm(rows, gamma, beta, eps, out));
        Tokens { values: Values::Bf16(out), ..x }
    }

    fn linear(&mut self, x: Tokens, l: &Linear) -> Tokens {
        let w = self.weights.matrix(&l.weight);
        let rows = x.batch * x.tokens;
        let y = product(&x.values.into_bf16(), rows, w, l.bias.as_ref().map(|b| self.weights.bias(b)));
        Tokens { values: Values::Bf16(y), width: w.cols, ..x }
    }

    fn activation(&mut self, x: Tokens, _: Activation) -> Tokens {
        // The table was made for the tower's activation.
        let table = &self.weights.activation;
        let mut v = x.values.into_bf16();
        v.par_chunks_mut(ROWS * x.width).for_each(|c| c.iter_mut().for_each(|v| *v = table[usize::from(v.to_bits())]));
        Tokens { values: Values::Bf16(v), ..x }
    }

    fn add(&mut self, a: Tokens, b: Tokens) -> Tokens {
        let mut sum = a.values.into_f32();
        let w = a.width;
        match &b.values {
            Values::F32(b) => sum.par_chunks_mut(ROWS * w).zip(b.par_chunks(ROWS * w)).for_each(|(a, b)| kernels::add_f32(a, b)),
            Values::Bf16(b) => sum.par_chunks_mut(ROWS * w).zip(b.par_chunks(ROWS * w)).for_each(|(a, b)| kernels::add_bf16(a, b)),
        }
        Tokens { values: Values::F32(sum), ..a }
    }

    fn attention(&mut self, qkv: Tokens, heads: usize, queries: Option<usize>) -> Tokens {
        let (b, t, h) = (qkv.batch, qkv.tokens, qkv.width / 3);
        let tq = queries.unwrap_or(t).min(t);
        let x = qkv.values.into_bf16();
        let mut ctx = vec![bf16::ZERO; b * tq * h];
        // An image per task, all its heads in cache-sized buffers: batched
        // products over the images, head by head, spent as long again in
        // dispatch and in passes over whole-batch score buffers.
        ctx.par_chunks_mut(tq * h)
            .zip(x.par_chunks(t * 3 * h))
            .for_each_init(AttentionScratch::default, |scratch, (out, x)| kernels::attention(x, t, heads, out, tq, scratch));
        Tokens { values: Values::Bf16(ctx), batch: b, tokens: tq, width: h }
    }

    fn first_tokens(&mut self, x: Tokens, n: Option<usize>) -> Tokens {
        let n = match n {
            Some(n) if n < x.tokens => n,
            _ => return x,
        };
        let (per_image, keep) = (x.tokens * x.width, n * x.width);
        let values = match x.values {
            Values::F32(v) => Values::F32(v.chunks_exact(per_image).flat_map(|img| img[..keep].iter().copied()).collect()),
            Values::Bf16(v) => Values::Bf16(v.chunks_exact(per_image).flat_map(|img| img[..keep].iter().copied()).collect()),
        };
        Tokens { values, tokens: n, ..x }
    }

    fn class_token(&mut self, x: Tokens) -> Vec<f32> {
        self.first_tokens(x, Some(1)).values.into_f32()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::Compute;
    use burn::tensor::{Device, TensorData};

    fn cosines(a: &[f32], b: &[f32], d: usize) -> Vec<f64> {
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum::<f64>();
        a.chunks_exact(d).zip(b.chunks_exact(d)).map(|(x, y)| dot(x, y) / (dot(x, x) * dot(y, y)).sqrt()).collect()
    }

    /// Each operation within a cosine of burn's f32: 0.999 for bf16, 0.995
    /// for int8 (the encoder's target for int8 embeddings).
    #[test]
    fn each_operation_matches_burn() {
        for (products, bound) in [(Products::Bf16, 0.999), (Products::Int8, 0.995)] {
            each_operation_matches_burn_on(VisionConfig::new(64, 256, 2, 4, 32, 8, 16), products, bound);
            each_operation_matches_burn_on(VisionConfig::vit_b_32(), products, bound);
        }
    }

    fn each_operation_matches_burn_on(cfg: VisionConfig, products: Products, bound: f64) {
        let heads = cfg.num_attention_heads;
        let device = Device::flex();
        device.seed(3);
        let model = cfg.init(&device);
        let weights = HostWeights::of(&model, &cfg, products);
        let (b, s) = (3, cfg.image_size);
        let px: Vec<f32> = (0..b * 3 * s * s).map(|i| ((i * 7919 % 1013) as f32 / 506.0) - 1.0).collect();
        let x: Tensor<4> = Tensor::from_data(TensorData::new(px.clone(), [b, 3, s, s]), &device);
        let vm = &model.vision_model;
        let mut f = Compute::default();
        let mut h = HostCompute { weights: &weights };
        let want = f.embed(x, &vm.embeddings);
        let got = h.embed(Pixels { values: &px, batch: b }, &vm.embeddings);
        let host = |t: Tensor<3>| t.into_data().try_into_vec::<f32>().unwrap();
        let w = cfg.hidden_size;
        let check = |name: &str, want: Tensor<3>, got: &Tokens| {
            let c = cosines(&host(want), &got.values.clone().into_f32(), w);
            let worst = c.iter().copied().fold(1.0, f64::min);
            assert!(worst > bound, "{products:?} {name}: worst cosine {worst}");
        };
        check("embed", want.clone(), &got);
        let want = f.layer_norm(want, &vm.pre_layrnorm);
        let got = h.layer_norm(got, &vm.pre_layrnorm);
        check("pre-norm", want.clone(), &got);
        let layer = &vm.encoder.layers[0];
        let wq = f.linear(want.clone(), &layer.self_attn.qkv_proj);
        let gq = h.linear(got.clone(), &layer.self_attn.qkv_proj);
        let wa = f.attention(wq, heads, None);
        let ga = h.attention(gq, heads, None);
        check("attention", wa, &ga);
        let want = layer.run(&mut f, want, None);
        let got = layer.run(&mut h, got, None);
        check("layer", want.clone(), &got);
        let want = layer.run(&mut f, want, Some(1));
        let got = layer.run(&mut h, got, Some(1));
        check("last layer", want, &got);
        let x: Tensor<4> = Tensor::from_data(TensorData::new(px.clone(), [b, 3, s, s]), &device);
        let want = model.forward(x).into_data().try_into_vec::<f32>().unwrap();
        let got = model.run(&mut h, Pixels { values: &px, batch: b });
        let c = cosines(&want, &got, cfg.projection_dim);
        assert!(c.iter().all(|&c| c > bound), "{products:?}: {c:?}");
    }

    /// gemmkit's int8 product on prepacked weights (vendor/README.md) is
    /// the exact integer product, on shapes with partial register tiles
    /// (32 rows by 12 columns), depths that are not a multiple of 4, and
    /// depths past one panel.
    #[test]
    fn the_integer_product_is_exact() {
        let byte = |i: usize| ((i.wrapping_mul(2_654_435_761) >> 7) % 256) as u8 as i8;
        for (m, k, n) in [(1, 1, 1), (5, 3, 12), (33, 771, 13), (64, 3072, 70), (37, 4096, 25), (64, 5, 3)] {
            let a: Vec<i8> = (0..m * k).map(byte).collect();
            let b: Vec<i8> = (0..k * n).map(|i| byte(i + 17)).collect();
            let packed = prepack_rhs_i8(MatRef::from_row_major(&b, k, n));
            let mut c = vec![0i32; m * n];
            gemm_i8_packed_b(1, MatRef::from_row_major(&a, m, k), &packed, 0, MatMut::from_col_major(&mut c, m, n), Parallelism::Serial);
            for i in 0..m {
                for j in 0..n {
                    let exact: i32 = (0..k).map(|t| i32::from(a[i * k + t]) * i32::from(b[t * n + j])).sum();
                    assert_eq!(c[j * m + i], exact, "{m}x{k}x{n} at ({i}, {j})");
                }
            }
        }
    }

    /// The int8 product is the exact product of what its operands quantise
    /// to, `scale * (q - zero)` and `col_scale * q`, up to the f32 scaling
    /// and the one rounding to bf16: the integer arithmetic and the zero-point
    /// correction lose nothing. Rows span more than one block of the product
    /// and columns more than one block of the rescaling, each with a part.
    #[test]
    fn the_int8_product_is_exact_on_its_quantised_operands() {
        let (m, k, n) = (INT8_ROWS + 37, 48, 70);
        let val = |i: usize, spread: f32| (((i * 7919 + 13) % 1009) as f32 / 1009.0 - 0.3) * spread;
        let a: Vec<bf16> = (0..m * k).map(|i| bf16::from_f32(val(i, if i / k % 3 == 0 { 0.01 } else { 4.0 }))).collect();
        let w: Vec<f32> = (0..k * n).map(|i| val(i * 31 + 5, 1.0 + (i % n) as f32)).collect();
        let bias: Vec<f32> = (0..n).map(|j| val(j * 17, 2.0)).collect();
        let matrix = Matrix::new(&w, k, n, Products::Int8);
        let vector = Vector { bf16: bias.iter().map(|&b| bf16::from_f32(b)).collect(), f32: bias.clone() };
        let got = product(&a, m, &matrix, Some(&vector));
        let QuantizedColumns { values, scales, .. } = &QuantizedColumns::of(&w, n);
        let mut q = vec![0i8; m * k];
        let mut rows = vec![kernels::RowQuant::default(); m];
        kernels::quantize_rows(&a, &mut q, &mut rows);
        for i in 0..m {
            let r = rows[i];
            assert!(q[i * k..(i + 1) * k].iter().any(|&v| v == -128 || v == 127), "row {i} uses its whole range");
            for j in 0..n {
                let exact: f64 = (0..k)
                    .map(|t| f64::from(r.scale) * f64::from(i32::from(q[i * k + t]) - r.zero) * f64::from(scales[j]) * f64::from(values[t * n + j]))
                    .sum::<f64>()
                    + f64::from(bias[j]);
                let g = f64::from(got[i * n + j].to_f32());
                assert!((g - exact).abs() <= exact.abs() * 2f64.powi(-8) + 1e-5, "({i}, {j}): {g} vs {exact}");
            }
            // Each input within half a step of what it stands for.
            for t in 0..k {
                let x = a[i * k + t].to_f32();
                let back = r.scale * (i32::from(q[i * k + t]) - r.zero) as f32;
                assert!((x - back).abs() <= 0.5001 * r.scale, "row {i}: {x} quantised to {back} (step {})", r.scale);
            }
        }
        // And each weight within half a step of its column's scale, as the
        // plain scalar cast has it.
        for (t, (&w, &q)) in w.iter().zip(values).enumerate() {
            assert!((w - scales[t % n] * f32::from(q)).abs() <= 0.5001 * scales[t % n], "weight {t}");
            assert_eq!(q, (w / scales[t % n]).round_ties_even().clamp(-127.0, 127.0) as i8, "weight {t}");
        }
    }
}
