//! The host tower's work between its products, on host slices: LayerNorm,
//! residual adds, conversions, attention, and the int8 products'
//! quantisation of their inputs and scaling of their outputs. Each kernel runs compiled for
//! the widest SIMD the CPU has (AVX-512, or AVX2 with FMA), chosen at run
//! time through `pulp`: the workspace is built for baseline x86-64, whose
//! SSE2 leaves these loops a half to a quarter as wide as the CPU's units.
//!
//! The element-wise kernels are plain loops written so that the compiler
//! vectorises them: fixed-width lanes for sums (a float sum is not
//! reordered otherwise) and branch-free rounding to bf16. Attention's
//! products and softmax are written with pulp's vector types, which fixes
//! their register tiles and their polynomial `exp`.

use half::bf16;
use pulp::{Arch, Simd, WithSimd};

/// Runs `f` compiled for the CPU's widest SIMD. `f` must be an
/// `#[inline(always)]` closure, and what it calls `#[inline(always)]` too:
/// otherwise it may stay out of line, compiled for baseline x86-64
/// (measured: attention 25 times slower, its `mul_add`s library calls).
#[inline(always)]
fn simd<R>(f: impl FnOnce() -> R) -> R {
    Arch::new().dispatch(f)
}

/// f32 to bf16, to nearest with ties to even, NaN kept NaN: bit for bit
/// `bf16::from_f32`, without the branches that keep it from vectorising.
#[inline(always)]
fn round(v: f32) -> bf16 {
    let x = v.to_bits();
    let rounded = x.wrapping_add(0x7FFF + ((x >> 16) & 1)) >> 16;
    let nan = (x & 0x7FFF_FFFF) > 0x7F80_0000;
    bf16::from_bits(if nan { (x >> 16) | 0x40 } else { rounded } as u16)
}

/// An integer-valued f32 in -128..=127 as i8 (NaN as 0, as `as i8` has it),
/// through the bits of `v + 1.5 * 2^23`, whose low byte is then `v`'s two's
/// complement: `v as i8` itself does not vectorise.
#[inline(always)]
fn to_i8(v: f32) -> i8 {
    (v + 12_582_912.0).to_bits() as u8 as i8
}

/// bf16 to f32, exactly: `bf16::to_f32` without the branch that quiets a
/// signalling NaN, so that it vectorises.
#[inline(always)]
fn widen(b: bf16) -> f32 {
    f32::from_bits(u32::from(b.to_bits()) << 16)
}

/// `dst = src` rounded to bf16.
pub fn to_bf16(src: &[f32], dst: &mut [bf16]) {
    simd(
        #[inline(always)]
        || dst.iter_mut().zip(src).for_each(|(d, &s)| *d = round(s)),
    )
}

/// `dst = src` widened to f32 (exact).
pub fn to_f32(src: &[bf16], dst: &mut [f32]) {
    simd(
        #[inline(always)]
        || dst.iter_mut().zip(src).for_each(|(d, s)| *d = widen(*s)),
    )
}

/// `acc += x`.
pub fn add_f32(acc: &mut [f32], x: &[f32]) {
    simd(
        #[inline(always)]
        || acc.iter_mut().zip(x).for_each(|(a, &x)| *a += x),
    )
}

/// `acc += x` for bf16 `x`.
pub fn add_bf16(acc: &mut [f32], x: &[bf16]) {
    simd(
        #[inline(always)]
        || acc.iter_mut().zip(x).for_each(|(a, x)| *a += widen(*x)),
    )
}

/// `sum f(v)` in 16 independent lanes, which stay in vector registers (a
/// single running sum is one long dependency chain, and may not be
/// reordered into lanes by the compiler).
#[inline(always)]
fn lanes_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 16];
    let chunks = values.chunks_exact(16);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The largest value, in 16 lanes as [`lanes_sum`].
#[inline(always)]
fn lanes_max(values: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let chunks = values.chunks_exact(16);
    let tail = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = a.max(v);
        }
    }
    acc.into_iter().fold(tail, f32::max)
}

/// How a row of a product's input was quantised: `x ~ scale * (q - zero)`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RowQuant {
    pub scale: f32,
    pub zero: i32,
}

/// Quantises each row of `a` (as many rows as `rows` has entries) to int8
/// over its own range, widened to include 0 so that 0 stays exact:
/// `q = clamp(round(x / scale) + zero, -128, 127)`, rounding half to even.
pub fn quantize_rows(a: &[bf16], q: &mut [i8], rows: &mut [RowQuant]) {
    simd(
        #[inline(always)]
        || {
            let k = a.len() / rows.len();
            let mut wide = vec![0.0f32; k];
            for ((a, q), r) in a.chunks_exact(k).zip(q.chunks_exact_mut(k)).zip(rows.iter_mut()) {
                wide.iter_mut().zip(a).for_each(|(w, &v)| *w = widen(v));
                let hi = lanes_max(&wide).max(0.0);
                let lo = -lanes_max_of(&wide, |v| -v).max(0.0);
                let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
                let zero = (-128.0 - lo / scale).round_ties_even().clamp(-128.0, 127.0);
                let inv = 1.0 / scale;
                q.iter_mut().zip(&wide).for_each(|(q, &v)| *q = to_i8(((v * inv).round_ties_even() + zero).clamp(-128.0, 127.0)));
                *r = RowQuant { scale, zero: zero as i32 };
            }
        },
    )
}

/// Rows of a weight matrix (as many columns as `scales`) in int8 per
/// column: `round_ties_even(w / scale)`, within -127..=127.
pub fn quantize_columns(values: &[f32], scales: &[f32], q: &mut [i8]) {
    simd(
        #[inline(always)]
        || {
            for (q, row) in q.chunks_exact_mut(scales.len()).zip(values.chunks_exact(scales.len())) {
                q.iter_mut().zip(row).zip(scales).for_each(|((q, &w), &s)| *q = to_i8((w / s).round_ties_even().clamp(-127.0, 127.0)));
            }
        },
    )
}

/// An accumulator corrected for its input's zero point, `acc - zero *
/// col_sum`, in wrapping arithmetic: the true value fits an i32 (it is at
/// most 255 x 127 x the depth), and the overflow checks of checked
/// arithmetic keep the loops around it from vectorising.
#[inline(always)]
fn corrected(acc: i32, zero: i32, col_sum: i32) -> i32 {
    acc.wrapping_sub(zero.wrapping_mul(col_sum))
}

/// Side of the square blocks [`dequantize_columns`] works through: 64 x 64
/// f32 is 16 KiB, which stays in L1. It bounds the rows per call, so the
/// int8 product's row tasks are at most this long.
pub const BLOCK: usize = 64;

/// An int8 product's rows (one per entry of `quants`, at most [`BLOCK`])
/// back in bf16, `out = scale * col_scale * (acc - zero * col_sum) + bias`
/// rounded once, from their column-major accumulator (column `j` at
/// `acc[j * rows..][..rows]`). Every value is computed the same way on
/// every path, bit for bit (`the_tiled_rescaling_is_the_plain_one`).
///
/// The transposition from columns to rows is the work here. With AVX-512,
/// tiles of 16 rows x 16 columns: 16 columns scaled in vector registers,
/// transposed there (64 shuffles) and stored as 16 rows of 16 bf16. The
/// rows and columns past the last whole tile, and CPUs without AVX-512,
/// go through [`dequantize_block`].
pub fn dequantize_columns(acc: &[i32], quants: &[RowQuant], col_sums: &[i32], col_scales: &[f32], bias: Option<&[f32]>, out: &mut [bf16]) {
    let (r, n) = (quants.len(), col_sums.len());
    assert!(r <= BLOCK, "at most {BLOCK} rows at a time");
    let rescaling = Rescaling { acc, quants, col_sums, col_scales, bias };
    #[cfg(target_arch = "x86_64")]
    if let Some(v4) = pulp::x86::V4::try_new() {
        let (rows, cols) = (r / TILE * TILE, n / TILE * TILE);
        v4.vectorize(
            #[inline(always)]
            || tiles::rescale(v4, &rescaling, rows, cols, out),
        );
        dequantize_block(&rescaling, 0..rows, cols..n, out);
        dequantize_block(&rescaling, rows..r, 0..n, out);
        return;
    }
    dequantize_block(&rescaling, 0..r, 0..n, out);
}

/// Side of [`dequantize_columns`]'s vector tiles: an AVX-512 register's f32
/// lanes.
const TILE: usize = 16;

/// What an int8 product's rescaling reads (see [`dequantize_columns`]).
struct Rescaling<'a> {
    acc: &'a [i32],
    quants: &'a [RowQuant],
    col_sums: &'a [i32],
    col_scales: &'a [f32],
    bias: Option<&'a [f32]>,
}

/// The zero points and scales of up to `N` rows, zero-padded to `N`.
#[inline(always)]
fn unzip<const N: usize>(quants: &[RowQuant]) -> ([i32; N], [f32; N]) {
    let (mut zeros, mut scales) = ([0i32; N], [0.0f32; N]);
    for ((z, s), q) in zeros.iter_mut().zip(&mut scales).zip(quants) {
        (*z, *s) = (q.zero, q.scale);
    }
    (zeros, scales)
}

/// [`dequantize_columns`] on the rows and columns given, a block of
/// columns at a time: each column's rows are contiguous, so they are scaled
/// in vector lanes into a column-major block in cache, which is then
/// written out row by row. (Reading a row across the columns directly
/// touches a different page for every value.)
fn dequantize_block(x: &Rescaling, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>, out: &mut [bf16]) {
    if rows.is_empty() || cols.is_empty() {
        return;
    }
    simd(
        #[inline(always)]
        || {
            let n = x.col_sums.len();
            let h = rows.len();
            let (zeros, scales) = unzip::<BLOCK>(&x.quants[rows.clone()]);
            let (zeros, scales) = (&zeros[..h], &scales[..h]);
            let mut block = [0.0f32; BLOCK * BLOCK];
            for j0 in cols.clone().step_by(BLOCK) {
                let w = BLOCK.min(cols.end - j0);
                for (jj, values) in block.chunks_exact_mut(BLOCK).take(w).enumerate() {
                    let j = j0 + jj;
                    let (sum, scale, b) = (x.col_sums[j], x.col_scales[j], x.bias.map_or(0.0, |b| b[j]));
                    let column = &x.acc[j * x.quants.len() + rows.start..][..h];
                    values
                        .iter_mut()
                        .zip(column)
                        .zip(zeros.iter().zip(scales))
                        .for_each(|((v, &a), (&z, &s))| *v = (corrected(a, z, sum) as f32) * (s * scale) + b);
                }
                for (t, out) in out[rows.start * n..rows.end * n].chunks_exact_mut(n).enumerate() {
                    out[j0..j0 + w].iter_mut().enumerate().for_each(|(jj, o)| *o = round(block[jj * BLOCK + t]));
                }
            }
        },
    )
}

/// [`dequantize_columns`]'s AVX-512 tiles.
#[cfg(target_arch = "x86_64")]
mod tiles {
    use core::arch::x86_64::{__m256i, __m512, __m512i};

    use half::bf16;
    use pulp::cast;
    use pulp::x86::V4;

    use super::{Rescaling, TILE};

    /// Rows `0..rows` and columns `0..cols` (whole tiles) of `x` into `out`.
    #[inline(always)]
    pub(super) fn rescale(v4: V4, x: &Rescaling, rows: usize, cols: usize, out: &mut [bf16]) {
        let avx = v4.avx512f;
        let (r, n) = (x.quants.len(), x.col_sums.len());
        for i0 in (0..rows).step_by(TILE) {
            let quants = &x.quants[i0..i0 + TILE];
            let (zeros, scales) = super::unzip::<TILE>(quants);
            let (zeros, scales): (__m512i, __m512) = (cast(zeros), cast(scales));
            for j0 in (0..cols).step_by(TILE) {
                // Column j0 + c of the tile's rows, as bf16 bits in 32-bit lanes.
                // (Plain loops: an intrinsic in a closure that is not inlined
                // into the vectorised function becomes a call.)
                let mut columns = [avx._mm512_setzero_si512(); TILE];
                for (c, column) in columns.iter_mut().enumerate() {
                    let j = j0 + c;
                    let acc: __m512i = cast::<[i32; TILE], _>(x.acc[j * r + i0..][..TILE].try_into().unwrap());
                    let corrected = avx._mm512_sub_epi32(acc, avx._mm512_mullo_epi32(zeros, avx._mm512_set1_epi32(x.col_sums[j])));
                    let scale = avx._mm512_mul_ps(scales, avx._mm512_set1_ps(x.col_scales[j]));
                    let bias = avx._mm512_set1_ps(x.bias.map_or(0.0, |b| b[j]));
                    let v = avx._mm512_add_ps(avx._mm512_mul_ps(avx._mm512_cvtepi32_ps(corrected), scale), bias);
                    *column = round(v4, v);
                }
                for (t, row) in transpose(v4, columns).into_iter().enumerate() {
                    let bits: [u16; TILE] = cast::<__m256i, _>(avx._mm512_cvtepi32_epi16(row));
                    out[(i0 + t) * n + j0..][..TILE].iter_mut().zip(bits).for_each(|(o, b)| *o = bf16::from_bits(b));
                }
            }
        }
    }

    /// [`super::round`] in 16 lanes: the bf16's bits in each lane's low half.
    #[inline(always)]
    fn round(v4: V4, v: __m512) -> __m512i {
        let avx = v4.avx512f;
        let x = avx._mm512_castps_si512(v);
        let one = avx._mm512_set1_epi32(1);
        let odd = avx._mm512_and_si512(avx._mm512_srli_epi32::<16>(x), one);
        let rounded = avx._mm512_srli_epi32::<16>(avx._mm512_add_epi32(x, avx._mm512_add_epi32(avx._mm512_set1_epi32(0x7FFF), odd)));
        let magnitude = avx._mm512_and_si512(x, avx._mm512_set1_epi32(0x7FFF_FFFF));
        let nan = avx._mm512_cmpgt_epi32_mask(magnitude, avx._mm512_set1_epi32(0x7F80_0000));
        let quiet = avx._mm512_or_si512(avx._mm512_srli_epi32::<16>(x), avx._mm512_set1_epi32(0x40));
        avx._mm512_mask_blend_epi32(nan, rounded, quiet)
    }

    /// The 16 x 16 transpose of 32-bit lanes: lane `j` of output `i` is lane
    /// `i` of input `j`.
    #[inline(always)]
    fn transpose(v4: V4, m: [__m512i; TILE]) -> [__m512i; TILE] {
        let avx = v4.avx512f;
        // Within each 128-bit lane k, t[2p] holds inputs 2p and 2p+1's
        // elements 4k, 4k+1 interleaved; t[2p+1] elements 4k+2, 4k+3.
        let mut t = [avx._mm512_setzero_si512(); TILE];
        for p in 0..TILE / 2 {
            t[2 * p] = avx._mm512_unpacklo_epi32(m[2 * p], m[2 * p + 1]);
            t[2 * p + 1] = avx._mm512_unpackhi_epi32(m[2 * p], m[2 * p + 1]);
        }
        // u[4g + e], 128-bit lane k: inputs 4g..4g+4's element 4k + e.
        let mut u = [avx._mm512_setzero_si512(); TILE];
        for g in 0..TILE / 4 {
            u[4 * g] = avx._mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
            u[4 * g + 1] = avx._mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
            u[4 * g + 2] = avx._mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
            u[4 * g + 3] = avx._mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
        }
        // Output 4k + e gathers 128-bit lane k of u[e], u[4 + e], u[8 + e], u[12 + e].
        let mut o = [avx._mm512_setzero_si512(); TILE];
        for e in 0..4 {
            let x0 = avx._mm512_shuffle_i32x4::<0x88>(u[e], u[4 + e]);
            let x1 = avx._mm512_shuffle_i32x4::<0xDD>(u[e], u[4 + e]);
            let y0 = avx._mm512_shuffle_i32x4::<0x88>(u[8 + e], u[12 + e]);
            let y1 = avx._mm512_shuffle_i32x4::<0xDD>(u[8 + e], u[12 + e]);
            o[e] = avx._mm512_shuffle_i32x4::<0x88>(x0, y0);
            o[8 + e] = avx._mm512_shuffle_i32x4::<0xDD>(x0, y0);
            o[4 + e] = avx._mm512_shuffle_i32x4::<0x88>(x1, y1);
            o[12 + e] = avx._mm512_shuffle_i32x4::<0xDD>(x1, y1);
        }
        o
    }
}

/// The largest `f(v)`, in 16 lanes as [`lanes_max`].
#[inline(always)]
fn lanes_max_of(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let chunks = values.chunks_exact(16);
    let tail = chunks.remainder().iter().map(|&v| f(v)).fold(f32::NEG_INFINITY, f32::max);
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = a.max(f(v));
        }
    }
    acc.into_iter().fold(tail, f32::max)
}

/// LayerNorm of each row of `input` (rows as long as `gamma`) into `out`,
/// in f32 and rounded once to bf16.
pub fn layer_norm(input: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [bf16]) {
    simd(
        #[inline(always)]
        || normalise(input, gamma, beta, eps, out),
    )
}

#[inline(always)]
fn normalise(input: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [bf16]) {
    let w = gamma.len();
    for (out, row) in out.chunks_exact_mut(w).zip(input.chunks_exact(w)) {
        let mean = lanes_sum(row, |v| v) / w as f32;
        let var = lanes_sum(row, |v| (v - mean) * (v - mean)) / w as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for (((o, &v), &g), &b) in out.iter_mut().zip(row).zip(gamma).zip(beta) {
            *o = round((v - mean) * inv * g + b);
        }
    }
}

/// `e^x` to about 2 ulp (Cephes' `expf` polynomial) in each lane;
/// inputs are clamped to where the result is a normal f32.
#[inline(always)]
fn exp<S: Simd>(simd: S, x: S::f32s) -> S::f32s {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 x 2^23 rounds to an integer, held in the low mantissa
    // bits: `n` as a float and as an integer without a conversion.
    const MAGIC: f32 = 12_582_912.0;
    let f = |v: f32| simd.splat_f32s(v);
    let x = simd.min_f32s(simd.max_f32s(x, f(-87.0)), f(88.0));
    let t = simd.mul_add_f32s(x, f(std::f32::consts::LOG2_E), f(MAGIC));
    let n = simd.sub_f32s(t, f(MAGIC));
    let r = simd.mul_add_f32s(n, f(-LN2_LO), simd.mul_add_f32s(n, f(-LN2_HI), x));
    let mut p = f(1.987_569_1e-4);
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
        p = simd.mul_add_f32s(p, r, f(c));
    }
    let e = simd.add_f32s(simd.mul_add_f32s(simd.mul_f32s(p, r), r, r), f(1.0));
    let u = |v: u32| simd.splat_u32s(v);
    let exponent = simd.add_u32s(simd.sub_u32s(simd.transmute_u32s_f32s(t), u(MAGIC.to_bits())), u(127));
    simd.mul_f32s(e, simd.transmute_f32s_u32s(simd.wrapping_dyn_shl_u32s(exponent, u(23))))
}

/// Softmax of a row whose first `t` values are scores and whose length is
/// a whole number of vectors; the rest are set to 0.
#[inline(always)]
fn softmax<S: Simd>(simd: S, row: &mut [f32], t: usize) {
    let max = simd.splat_f32s(lanes_max(&row[..t]));
    let (vectors, _) = S::as_mut_simd_f32s(row);
    vectors.iter_mut().for_each(|v| *v = exp(simd, simd.sub_f32s(*v, max)));
    row[t..].fill(0.0);
    let (vectors, _) = S::as_mut_simd_f32s(row);
    let sum = vectors.iter().fold(simd.splat_f32s(0.0), |acc, &v| simd.add_f32s(acc, v));
    let inv = simd.splat_f32s(1.0 / simd.reduce_sum_f32s(sum));
    vectors.iter_mut().for_each(|v| *v = simd.mul_f32s(*v, inv));
}

/// Scratch for one image's attention, kept between images by a worker.
#[derive(Debug, Default)]
pub struct AttentionScratch {
    q: Vec<f32>,
    kt: Vec<f32>,
    v: Vec<f32>,
    s: Vec<f32>,
    o: Vec<f32>,
}

/// One image's multi-head attention: `qkv` is `[t, 3 h]` (queries, keys,
/// values side by side, heads contiguous within each), `out` is `[tq, h]`
/// for the first `tq` queries. Scores, softmax and the weighted sum are f32
/// in buffers a few tens of KB long, which stay in the core's L1/L2 cache;
/// only the result is rounded to bf16, as the projection after it reads it.
pub fn attention(qkv: &[bf16], t: usize, heads: usize, out: &mut [bf16], tq: usize, scratch: &mut AttentionScratch) {
    Arch::new().dispatch(Attention { qkv, t, heads, out, tq, scratch })
}

/// [`attention`]'s arguments, for `pulp` to call back with the CPU's SIMD.
struct Attention<'a> {
    qkv: &'a [bf16],
    t: usize,
    heads: usize,
    out: &'a mut [bf16],
    tq: usize,
    scratch: &'a mut AttentionScratch,
}

impl WithSimd for Attention<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Attention { qkv, t, heads, out, tq, scratch } = self;
        attend(simd, qkv, t, heads, out, tq, scratch)
    }
}

#[inline(always)]
fn attend<S: Simd>(simd: S, qkv: &[bf16], t: usize, heads: usize, out: &mut [bf16], tq: usize, scratch: &mut AttentionScratch) {
    let h = qkv.len() / (3 * t);
    let hd = h / heads;
    // Padded so that the products run in whole tiles (see `tiles`).
    let (tq4, tp, dp) = (tq.next_multiple_of(TILE_ROWS), t.next_multiple_of(TILE_COLUMNS), hd.next_multiple_of(TILE_COLUMNS));
    let scale = (hd as f32).powf(-0.5);
    let AttentionScratch { q, kt, v, s, o } = scratch;
    for (buf, len) in [(&mut *q, tq4 * hd), (&mut *kt, hd * tp), (&mut *v, t * dp), (&mut *s, tq4 * tp), (&mut *o, tq4 * dp)] {
        buf.clear();
        buf.resize(len, 0.0);
    }
    for head in 0..heads {
        let col = head * hd;
        for (row, x) in q.chunks_exact_mut(hd).zip(qkv.chunks_exact(3 * h).take(tq)) {
            row.iter_mut().zip(&x[col..col + hd]).for_each(|(q, &x)| *q = widen(x) * scale);
        }
        for (j, x) in qkv.chunks_exact(3 * h).enumerate() {
            for (d, &x) in x[h + col..h + col + hd].iter().enumerate() {
                kt[d * tp + j] = widen(x);
            }
        }
        for (row, x) in v.chunks_exact_mut(dp).zip(qkv.chunks_exact(3 * h)) {
            row[..hd].iter_mut().zip(&x[2 * h + col..2 * h + col + hd]).for_each(|(v, &x)| *v = widen(x));
        }
        tiles(simd, q, hd, hd, kt, tp, s);
        for row in s.chunks_exact_mut(tp).take(tq) {
            softmax(simd, row, t);
        }
        tiles(simd, s, tp, t, v, dp, o);
        for (out, o) in out.chunks_exact_mut(h).zip(o.chunks_exact(dp)) {
            out[col..col + hd].iter_mut().zip(o).for_each(|(out, &o)| *out = round(o));
        }
    }
}

/// Rows of a tile of [`tiles`].
const TILE_ROWS: usize = 4;

/// What a tile's columns are padded to: two vectors of the widest SIMD
/// (16 f32 lanes on AVX-512).
const TILE_COLUMNS: usize = 32;

/// `c [m, n] = a [m, k] . b [k, n]`, where `a`'s rows are `lda` apart, `m`
/// is a multiple of [`TILE_ROWS`] and `n` of [`TILE_COLUMNS`]: tiles of 4
/// rows by 2 vectors, whose 8 accumulators stay in registers while `k`
/// runs (enough independent multiply-adds to cover their latency).
#[inline(always)]
fn tiles<S: Simd>(simd: S, a: &[f32], lda: usize, k: usize, b: &[f32], n: usize, c: &mut [f32]) {
    let vectors = n / S::F32_LANES;
    let (b, _) = S::as_simd_f32s(b);
    for (a, c) in a.chunks_exact(TILE_ROWS * lda).zip(c.chunks_exact_mut(TILE_ROWS * n)) {
        let rows = [&a[..k], &a[lda..lda + k], &a[2 * lda..2 * lda + k], &a[3 * lda..3 * lda + k]];
        let (c, _) = S::as_mut_simd_f32s(c);
        for col in (0..vectors).step_by(2) {
            let mut acc = [[simd.splat_f32s(0.0); 2]; TILE_ROWS];
            for (d, b) in b.chunks_exact(vectors).take(k).enumerate() {
                let (b0, b1) = (b[col], b[col + 1]);
                for (acc, row) in acc.iter_mut().zip(rows) {
                    let x = simd.splat_f32s(row[d]);
                    acc[0] = simd.mul_add_f32s(x, b0, acc[0]);
                    acc[1] = simd.mul_add_f32s(x, b1, acc[1]);
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                c[r * vectors + col] = acc[0];
                c[r * vectors + col + 1] = acc[1];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_i8_conversion_is_the_cast() {
        for v in -128..=127 {
            assert_eq!(to_i8(v as f32), v as i8, "{v}");
        }
        assert_eq!(to_i8(-0.0), 0);
        // NaN to 0, as the cast.
        assert_eq!(to_i8(f32::NAN), 0);
        assert_eq!(to_i8(-f32::NAN), 0);
    }

    /// Every path of the rescaling (AVX-512 tiles, the blocks around them,
    /// the blocks alone) gives each value as one plain expression and
    /// `bf16::from_f32` give it, bit for bit: on shapes with and without
    /// whole tiles, extreme accumulators, and a NaN scale.
    #[test]
    fn the_tiled_rescaling_is_the_plain_one() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for (r, n) in [(1, 1), (15, 17), (16, 16), (17, 33), (33, 70), (64, 768), (64, 15)] {
            let acc: Vec<i32> = (0..r * n).map(|i| if i % 97 == 5 { i32::MIN + (i % 3) as i32 } else { next() as i32 }).collect();
            let quants: Vec<RowQuant> = (0..r)
                .map(|i| RowQuant { scale: if i == 3 { f32::NAN } else { (next() % 1000) as f32 * 1e-5 + 1e-6 }, zero: (next() % 256) as i32 - 128 })
                .collect();
            let col_sums: Vec<i32> = (0..n).map(|_| (next() % 200_001) as i32 - 100_000).collect();
            let col_scales: Vec<f32> = (0..n).map(|_| (next() % 1000) as f32 * 1e-4 + 1e-5).collect();
            let bias: Vec<f32> = (0..n).map(|_| (next() % 2001) as f32 * 1e-3 - 1.0).collect();
            for bias in [None, Some(&bias[..])] {
                let mut out = vec![bf16::ZERO; r * n];
                dequantize_columns(&acc, &quants, &col_sums, &col_scales, bias, &mut out);
                for i in 0..r {
                    for j in 0..n {
                        let q = quants[i];
                        let v = (corrected(acc[j * r + i], q.zero, col_sums[j]) as f32) * (q.scale * col_scales[j]) + bias.map_or(0.0, |b| b[j]);
                        assert_eq!(out[i * n + j].to_bits(), bf16::from_f32(v).to_bits(), "{r}x{n} at ({i}, {j}), bias {}", bias.is_some());
                    }
                }
            }
        }
    }

    #[test]
    fn the_zero_point_correction_is_exact_at_its_extremes() {
        // The largest accumulators of a 4,096-deep product (ViT-L/14's
        // widest) with the largest zero point and column sums.
        let depth = 4096;
        for (acc, zero, sum) in [(255 * 127 * depth, -128, 127 * depth), (-128 * 127 * depth, 127, -127 * depth), (0, -128, -127 * depth)] {
            let exact = i64::from(acc) - i64::from(zero) * i64::from(sum);
            assert_eq!(i64::from(corrected(acc, zero, sum)), exact, "{acc} {zero} {sum}");
        }
    }

    #[test]
    fn rounding_is_bf16_from_f32_bit_for_bit() {
        let mut state = 0x9E37_79B9u32;
        let specials = [0.0f32, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -f32::NAN, f32::MAX, f32::MIN_POSITIVE, 1e-40];
        // Ties (lower half exactly 0x8000) with odd and even upper halves.
        let ties = [0x3F80_8000u32, 0x3F81_8000, 0xBF80_8000, 0x7F7F_8000].map(f32::from_bits);
        let random = (0..200_000).map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            f32::from_bits(state)
        });
        let values: Vec<f32> = specials.into_iter().chain(ties).chain(random).collect();
        let mut got = vec![bf16::ZERO; values.len()];
        to_bf16(&values, &mut got);
        for (v, g) in values.iter().zip(&got) {
            assert_eq!(g.to_bits(), bf16::from_f32(*v).to_bits(), "{v:e} ({:#010x})", v.to_bits());
        }
        let mut back = vec![0.0f32; got.len()];
        to_f32(&got, &mut back);
        for (b, g) in back.iter().zip(&got) {
            assert_eq!(b.to_bits(), g.to_f32().to_bits());
        }
    }

    /// `exp` over a slice, compiled as the kernels are.
    struct Exp<'a>(&'a mut [f32]);

    impl WithSimd for Exp<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            let (vectors, tail) = S::as_mut_simd_f32s(self.0);
            vectors.iter_mut().for_each(|v| *v = exp(simd, *v));
            let (tail, _) = pulp::Scalar::as_mut_simd_f32s(tail);
            tail.iter_mut().for_each(|v| *v = exp(pulp::Scalar, *v));
        }
    }

    #[test]
    fn exp_is_within_3_ulp_of_std() {
        let xs: Vec<f32> = (-87_000..88_000).map(|i| i as f32 / 1000.0 + 0.000_37).collect();
        let mut widest = xs.clone();
        Arch::new().dispatch(Exp(&mut widest));
        let mut scalar = xs.clone();
        Simd::vectorize(pulp::Scalar, Exp(&mut scalar));
        let mut runs = vec![("widest", widest), ("scalar", scalar)];
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = pulp::x86::V3::try_new() {
            let mut avx2 = xs.clone();
            Simd::vectorize(v3, Exp(&mut avx2));
            runs.push(("AVX2", avx2));
        }
        for (isa, got) in &runs {
            for (&x, &got) in xs.iter().zip(got) {
                let want = x.exp();
                let ulp = (want.to_bits() as i64 - got.to_bits() as i64).abs();
                assert!(ulp <= 3, "{isa}: exp({x}) = {got}, std says {want} ({ulp} ulp)");
            }
        }
        let mut edges = [-1e4, -87.0, f32::NEG_INFINITY];
        Arch::new().dispatch(Exp(&mut edges));
        assert!(edges[1].is_normal() && edges[1] > 0.0, "{edges:?}");
        assert_eq!(edges, [edges[1]; 3]);
    }

    /// The plain definition, in f64.
    fn attention_reference(qkv: &[f32], t: usize, heads: usize, tq: usize) -> Vec<f32> {
        let h = qkv.len() / (3 * t);
        let hd = h / heads;
        let at = |j: usize, part: usize, head: usize, d: usize| f64::from(qkv[j * 3 * h + part * h + head * hd + d]);
        let mut out = vec![0.0f32; tq * h];
        for head in 0..heads {
            for i in 0..tq {
                let scores: Vec<f64> =
                    (0..t).map(|j| (0..hd).map(|d| at(i, 0, head, d) * at(j, 1, head, d)).sum::<f64>() / (hd as f64).sqrt()).collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                for d in 0..hd {
                    out[i * h + head * hd + d] = ((0..t).map(|j| e[j] * at(j, 2, head, d)).sum::<f64>() / sum) as f32;
                }
            }
        }
        out
    }

    #[test]
    fn attention_matches_its_definition_at_padded_and_whole_tile_shapes() {
        // (tokens, heads, head width, queries): 50 x 64 is ViT-B/32's; the
        // others leave partial tiles in every padded dimension.
        for (t, heads, hd, tq) in [(50, 2, 64, 50), (5, 4, 16, 5), (7, 3, 20, 1), (17, 1, 8, 17)] {
            let h = heads * hd;
            let qkv: Vec<bf16> = (0..t * 3 * h).map(|i| bf16::from_f32(((i * 7919 % 1013) as f32 / 253.0) - 2.0)).collect();
            let want = attention_reference(&qkv.iter().map(|v| v.to_f32()).collect::<Vec<_>>(), t, heads, tq);
            // The CPU's widest SIMD, then each narrower one it has (vectors
            // of 16, 8 and 1 lanes on an AVX-512 CPU).
            let mut runs = vec![("widest", vec![bf16::ZERO; tq * h])];
            attention(&qkv, t, heads, &mut runs[0].1, tq, &mut AttentionScratch::default());
            let mut scratch = AttentionScratch::default();
            #[cfg(target_arch = "x86_64")]
            if let Some(v3) = pulp::x86::V3::try_new() {
                let mut out = vec![bf16::ZERO; tq * h];
                Simd::vectorize(v3, Attention { qkv: &qkv, t, heads, out: &mut out, tq, scratch: &mut scratch });
                runs.push(("AVX2", out));
            }
            let mut out = vec![bf16::ZERO; tq * h];
            attend(pulp::Scalar, &qkv, t, heads, &mut out, tq, &mut scratch);
            runs.push(("scalar", out));
            for (isa, out) in &runs {
                for (i, (g, w)) in out.iter().zip(&want).enumerate() {
                    assert!((g.to_f32() - w).abs() <= 4e-3 * w.abs().max(1.0), "{isa}, t {t} heads {heads} hd {hd}: [{i}] {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn layer_norm_rows_are_normalised_then_scaled() {
        let w = 40;
        let input: Vec<f32> = (0..3 * w).map(|i| (i as f32 * 0.37).sin() * 5.0 + i as f32 * 0.01).collect();
        let gamma: Vec<f32> = (0..w).map(|i| 1.0 + i as f32 / 100.0).collect();
        let beta: Vec<f32> = (0..w).map(|i| i as f32 / 50.0).collect();
        let mut out = vec![bf16::ZERO; input.len()];
        layer_norm(&input, &gamma, &beta, 1e-5, &mut out);
        for (row, got) in input.chunks(w).zip(out.chunks(w)) {
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / w as f64;
            let var = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / w as f64;
            for (((v, g), gm), bt) in row.iter().zip(got).zip(&gamma).zip(&beta) {
                let want = (f64::from(*v) - mean) / (var + 1e-5).sqrt() * f64::from(*gm) + f64::from(*bt);
                assert!((f64::from(g.to_f32()) - want).abs() <= 4e-3 * want.abs().max(1.0), "{g} vs {want}");
            }
        }
    }
}
