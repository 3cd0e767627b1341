//! The CPU encoder's products alone: gemmkit's bf16 product (`gemm_fused`,
//! as `--precision bf16` calls it) against its int8 product on prepacked
//! weights (`gemm_i8_packed_b` on tasks of 64 rows, as `--precision int8`
//! calls it), at one ViT-B/32 layer's four shapes for a batch of 32 (1,600
//! token rows).
//!
//!     cargo build --workspace --all-targets
//!     $CARGO_TARGET_DIR/debug/examples/bench_products [--rounds R] [--threads N]
//!
//! Each figure is the fastest of 5 calls after one warm-up call, on one
//! thread and on the pool of N threads (default: every core), in G
//! multiply-adds/s per thread; R rounds (default 3) take turns and report
//! medians with their range. Set against a core's peak rates (`bash
//! benchmarks/dot_products.sh`), this shows how much of int8's
//! instruction-level gain the product keeps, apart from the quantisation
//! and rescaling around it (`bench_encoder` times those).
//! `benchmarks/gemmkit_patch.sh` runs it built against the gemmkit release
//! and against vendor/gemmkit, in turns.

// The allocator of the `pairguard` binary (see crates/alloc).
#[global_allocator]
static ALLOCATOR: pairguard_alloc::MiMalloc = pairguard_alloc::MiMalloc;

mod peer;

use std::time::Instant;

use gemmkit::{MatMut, MatRef, Parallelism, gemm_fused, gemm_i8_packed_b, prepack_rhs_i8};
use half::bf16;
use pairguard_clip::host::kernels::BLOCK;
use rayon::prelude::*;

const ROWS: usize = 1600;
const SHAPES: [(usize, usize); 4] = [(768, 2304), (768, 768), (768, 3072), (3072, 768)];

/// The fastest of 5 calls of `f`, after one, in seconds.
fn fastest(mut f: impl FnMut()) -> f64 {
    f();
    (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// Seconds for the four products in bf16 and in int8 on `par`.
fn round(par: Parallelism) -> (f64, f64) {
    let (mut bf, mut i8_) = (0.0, 0.0);
    for (k, n) in SHAPES {
        // Values spread over the types' ranges; the rates do not depend on them.
        let a8: Vec<i8> = (0..ROWS * k).map(|i| (i * 7 % 255) as u8 as i8).collect();
        let b8: Vec<i8> = (0..k * n).map(|i| (i * 13 % 255) as u8 as i8).collect();
        let ab: Vec<bf16> = (0..ROWS * k).map(|i| bf16::from_f32((i % 17) as f32 * 0.1 - 0.8)).collect();
        let bb: Vec<bf16> = (0..k * n).map(|i| bf16::from_f32((i % 19) as f32 * 0.01 - 0.09)).collect();
        let mut cb = vec![bf16::ZERO; ROWS * n];
        let mut c32 = vec![0i32; ROWS * n];
        let packed = prepack_rhs_i8(MatRef::from_row_major(&b8, k, n));
        bf += fastest(|| {
            let (a, b, c) = (MatRef::from_row_major(&ab, ROWS, k), MatRef::from_row_major(&bb, k, n), MatMut::from_row_major(&mut cb, ROWS, n));
            gemm_fused(bf16::ONE, a, b, bf16::ZERO, c, None, None, par);
        });
        // As the encoder runs it: tasks of `BLOCK` rows, each a serial product
        // into its own column-major accumulator, one task after another on one
        // thread or spread over the pool.
        i8_ += fastest(|| {
            let task = |(a, c): (&[i8], &mut [i32])| {
                let rows = a.len() / k;
                gemm_i8_packed_b(1, MatRef::from_row_major(a, rows, k), &packed, 0, MatMut::from_col_major(c, rows, n), Parallelism::Serial);
            };
            match par {
                Parallelism::Serial => a8.chunks(BLOCK * k).zip(c32.chunks_mut(BLOCK * n)).for_each(task),
                _ => a8.par_chunks(BLOCK * k).zip(c32.par_chunks_mut(BLOCK * n)).for_each(task),
            }
        });
    }
    (bf, i8_)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let setup = peer::Setup::from_args(&args);
    let rounds: usize = peer::option(&args, "--rounds").unwrap_or(3);
    assert!(rounds > 0, "--rounds takes a positive count");
    let dots = pairguard_clip::host::DotProducts::detect();
    println!("gemmkit products at one ViT-B/32 layer's shapes, {ROWS} rows: {SHAPES:?} ([depth, columns] of each weight), {rounds} rounds");
    println!("{}; bf16 dot products: {}, int8 dot products: {}", setup.describe(), dots.bf16, dots.int8);
    let macs: f64 = SHAPES.iter().map(|&(k, n)| (ROWS * k * n) as f64).sum();
    let pool = format!("{} threads", setup.threads);
    for (label, par, threads) in [("1 thread", Parallelism::Serial, 1), (pool.as_str(), Parallelism::Rayon(0), setup.threads)] {
        let (mut bf, mut i8_, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for r in 1..=rounds {
            let (b, i) = round(par);
            println!(
                "round {r}, {label}: bf16 {:.1} ms, {:.0} G multiply-adds/s; int8 {:.1} ms, {:.0} G multiply-adds/s; int8 {:.2}x bf16",
                b * 1e3,
                macs / b / 1e9,
                i * 1e3,
                macs / i / 1e9,
                b / i
            );
            bf.push(macs / b / 1e9 / threads as f64);
            i8_.push(macs / i / 1e9 / threads as f64);
            ratio.push(b / i);
        }
        println!(
            "{label}: G multiply-adds/s per thread, median [range]: bf16 {}, int8 {}; int8 {}x bf16",
            peer::spread(&bf, 0),
            peer::spread(&i8_, 0),
            peer::spread(&ratio, 2)
        );
    }
}
