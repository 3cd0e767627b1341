//! Logistic-probe fitting speed and quality against scikit-learn's
//! LogisticRegression on the same 10,000 x 512 embeddings (the synthetic
//! benchmark at CLIP's dimension), printed side by side in one run. Both
//! minimise the same objective: class-balanced mean log-loss plus
//! lambda / 2 * ||w||^2 (C = 1 / (lambda N) in scikit-learn's terms).
//! Three workloads: one probe, a bank of 8 weight decays, and a sweep's
//! shape (4 strategies x 10 seeds, each a bank of 8 nested budgets from
//! 64 to 8,192 rows of the pool).
//!
//!     cargo run -p pairguard-model --example bench_probe -- [--rounds R] [--threads N]
//!
//! The peer runs when `PAIRGUARD_PYTHON` (default `python3`) has numpy,
//! scikit-learn and safetensors. Both sides run on N threads (default:
//! every core) with allocators that keep freed pages (see `peer`); the
//! single fit and the grid run R times (default 5) on each side, and
//! medians with their range are printed. scikit-learn fits the float32
//! features as loaded and a float64 copy made outside the timed fits, and
//! its faster input is its figure; the two single fits are compared on the
//! objective and the coefficients, not only AUROC.

// The allocator of the `pairguard` binary, so these figures are its figures
// (see crates/alloc).
#[global_allocator]
static ALLOCATOR: pairguard_alloc::MiMalloc = pairguard_alloc::MiMalloc;

mod peer;

use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use pairguard_data::synthetic::{Benchmark, SyntheticConfig};
use pairguard_model::{BankJob, Device, FeatureNorm, NormKind, TrainConfig, bank_logits, fit_bank, metrics, probe_objective};

fn main() -> anyhow::Result<()> {
    pairguard_alloc::keep_freed_pages();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let setup = peer::Setup::from_args(&args);
    let rounds = args.iter().position(|a| a == "--rounds").and_then(|i| args.get(i + 1)).and_then(|r| r.parse::<usize>().ok()).unwrap_or(5).max(1);
    // Noise is raised so the problem is not trivially separable at 512 dimensions.
    let cfg =
        SyntheticConfig { dim: 512, categories: 4, coarse: 10_000, pairs: 10, test: 5_000, test_pairs: 10, noise: 4.0, ..SyntheticConfig::default() };
    let b = Benchmark::generate(&cfg)?;
    let d = cfg.dim;
    let norm = FeatureNorm::fit(NormKind::Standardize, &b.coarse.vectors, d);
    let (mut xtr, mut xte) = (b.coarse.vectors.clone(), b.test_coarse.vectors.clone());
    norm.apply(&mut xtr);
    norm.apply(&mut xte);
    let ytr: Vec<f32> = b.coarse.samples.iter().map(|s| s.label.as_f32()).collect();
    let yte: Vec<bool> = b.test_coarse.samples.iter().map(|s| s.label.is_unsafe()).collect();
    let n = ytr.len();
    let lambda = 1e-3;
    let tc = TrainConfig::default();
    let identity = FeatureNorm::identity(d);
    let dev = Device::flex();
    println!(
        "logistic probe, {n} x {d} training embeddings, {} test; lambda {lambda} (C = {:.4}); {rounds} rounds",
        yte.len(),
        1.0 / (lambda * n as f64)
    );
    println!("{}", setup.describe());

    let job = |lambdas: Vec<f64>| BankJob {
        x: &xtr,
        dim: d,
        targets: &ytr,
        outputs: 1,
        members: vec![(0..n).collect(); lambdas.len()],
        norms: vec![identity.clone(); lambdas.len()],
        lambdas,
        validation: None,
        start: None,
    };
    let grid = vec![1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0];
    // Warm-up: one fit of each kind, as the peer's first round is for it.
    fit_bank(&job(vec![lambda]), &tc, &dev)?;
    let (mut single, mut grids) = (Vec::new(), Vec::new());
    let (mut fit, mut bank) = (None, None);
    for _ in 0..rounds {
        let t = Instant::now();
        fit = Some(fit_bank(&job(vec![lambda]), &tc, &dev)?);
        single.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        bank = Some(fit_bank(&job(grid.clone()), &tc, &dev)?);
        grids.push(t.elapsed().as_secs_f64());
    }
    let (fit, bank) = (fit.expect("a round"), bank.expect("a round"));
    let (secs, bank_secs) = (peer::median(single.clone()), peer::median(grids.clone()));
    let logits = bank_logits(&[&fit.heads[0]], &[&identity], &xte, &dev);
    let auroc = metrics::auroc(&logits.iter().map(|&z| f64::from(z)).collect::<Vec<_>>(), &yte);
    println!(
        "pairguard ({:?}, full batch, {} objective evaluations; float32 input): median {} s, test AUROC {auroc:.4}",
        tc.optimizer,
        fit.evaluations,
        peer::spread(&single, 3)
    );
    println!(
        "pairguard bank of {} heads (a weight-decay grid, {} evaluations): median {} s ({:.3} s per head)",
        grid.len(),
        bank.evaluations,
        peer::spread(&grids, 3),
        bank_secs / grid.len() as f64
    );

    // Sweep-shaped: 4 strategies x 10 seeds, each a bank of 8 nested
    // budgets drawn from the pool, as `sweep` fits them.
    let budgets = [64usize, 128, 256, 512, 1024, 2048, 4096, 8192];
    let groups = 40;
    let perms: Vec<Vec<usize>> = (0..groups)
        .map(|g| {
            let mut p: Vec<usize> = (0..n).collect();
            p.shuffle(&mut ChaCha8Rng::seed_from_u64(g as u64));
            p
        })
        .collect();
    let t = Instant::now();
    let mut sweep_aurocs = Vec::new();
    let mut sweep_fit_secs = 0.0;
    for perm in &perms {
        let members: Vec<Vec<usize>> = budgets.iter().map(|&b| perm[..b].to_vec()).collect();
        let job = BankJob { members, norms: vec![identity.clone(); budgets.len()], lambdas: vec![lambda; budgets.len()], ..job(Vec::new()) };
        let fit_t = Instant::now();
        let bank = fit_bank(&job, &tc, &dev)?;
        sweep_fit_secs += fit_t.elapsed().as_secs_f64();
        for head in &bank.heads {
            let logits = bank_logits(&[head], &[&identity], &xte, &dev);
            sweep_aurocs.push(metrics::auroc(&logits.iter().map(|&z| f64::from(z)).collect::<Vec<_>>(), &yte));
        }
    }
    let sweep_secs = t.elapsed().as_secs_f64();
    println!(
        "pairguard sweep-shaped: {groups} banks of {} budgets ({}..{}) = {} fits: {sweep_fit_secs:.3} s fitting ({sweep_secs:.3} s with test scoring); mean test AUROC {:.4}",
        budgets.len(),
        budgets[0],
        budgets[budgets.len() - 1],
        sweep_aurocs.len(),
        sweep_aurocs.iter().sum::<f64>() / sweep_aurocs.len() as f64
    );

    // The peer: same standardised features and labels through a file.
    let dir = std::env::temp_dir().join(format!("pairguard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("probe.safetensors");
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let yte_f: Vec<f32> = yte.iter().map(|&l| f32::from(u8::from(l))).collect();
    let (a, bb, c, e) = (bytes(&xtr), bytes(&ytr), bytes(&xte), bytes(&yte_f));
    use safetensors::tensor::{Dtype, TensorView};
    let perm_bytes: Vec<u8> = perms.iter().flatten().flat_map(|&i| (i as i64).to_le_bytes()).collect();
    let budget_bytes: Vec<u8> = budgets.iter().flat_map(|&b| (b as i64).to_le_bytes()).collect();
    let views = vec![
        ("perms", TensorView::new(Dtype::I64, vec![groups, n], &perm_bytes)?),
        ("budgets", TensorView::new(Dtype::I64, vec![budgets.len()], &budget_bytes)?),
        ("x_train", TensorView::new(Dtype::F32, vec![n, d], &a)?),
        ("y_train", TensorView::new(Dtype::F32, vec![n], &bb)?),
        ("x_test", TensorView::new(Dtype::F32, vec![yte.len(), d], &c)?),
        ("y_test", TensorView::new(Dtype::F32, vec![yte.len()], &e)?),
    ];
    std::fs::write(&path, safetensors::serialize(views, None)?)?;
    let python = std::env::var("PAIRGUARD_PYTHON").unwrap_or_else(|_| "python3".into());
    let grid_arg = grid.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(",");
    match setup.run(&python, "sklearn_probe.py", &[path.display().to_string(), lambda.to_string(), grid_arg, rounds.to_string()]) {
        Ok(text) => {
            print!("{}", text.lines().filter(|l| !l.contains('=') || l.contains(' ')).map(|l| format!("{l}\n")).collect::<String>());
            let get = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.trim().parse::<f64>().ok());
            let list = |k: &str| -> Vec<f64> {
                text.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect()).unwrap_or_default()
            };
            let (theirs, their_grid) = (list("seconds="), list("grid_seconds="));
            if let (false, Some(pa)) = (theirs.is_empty(), get("auroc=")) {
                println!("speed-up vs scikit-learn, ratio of medians: {:.2}x; AUROC difference {:+.4}", peer::median(theirs) / secs, auroc - pa);
            }
            if !their_grid.is_empty() {
                println!("weight-decay sweep speed-up vs scikit-learn loop, ratio of medians: {:.2}x", peer::median(their_grid) / bank_secs);
            }
            // The same objective, in f64, at each side's solution.
            let coef = list("coef=");
            if let (d2, Some(b2), Some(reported)) = (coef.len(), get("intercept="), get("objective=")) {
                assert_eq!(d2, d, "scikit-learn's coefficients");
                let head = &fit.heads[0];
                let ours_w: Vec<f64> = head.w1.iter().map(|&v| f64::from(v)).collect();
                let ours_obj = probe_objective(&xtr, &ytr, d, &ours_w, f64::from(head.b1[0]), lambda);
                let theirs_obj = probe_objective(&xtr, &ytr, d, &coef, b2, lambda);
                let worst = ours_w.iter().zip(&coef).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                let scale = coef.iter().map(|v| v.abs()).fold(0.0, f64::max);
                println!(
                    "objective at the solution: pairguard {ours_obj:.9}, scikit-learn {theirs_obj:.9} (its own computation {reported:.9}); \
                     largest coefficient difference {worst:.2e} (largest coefficient {scale:.3})"
                );
            }
            if let (Some(ss), Some(theirs)) = (get("sweep_seconds="), text.lines().find_map(|l| l.strip_prefix("sweep_aurocs="))) {
                let theirs: Vec<f64> = theirs.split(',').filter_map(|v| v.parse().ok()).collect();
                let worst = sweep_aurocs.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                println!(
                    "sweep-shaped speed-up vs scikit-learn loop: {:.2}x (fitting only); largest AUROC difference over {} fits {worst:.4}",
                    ss / sweep_fit_secs,
                    theirs.len()
                );
                let by_budget: Vec<String> = budgets
                    .iter()
                    .enumerate()
                    .map(|(b, size)| {
                        let diffs = sweep_aurocs.iter().zip(&theirs).skip(b).step_by(budgets.len()).map(|(a, t)| (a - t).abs());
                        format!("{size}: {:.4}", diffs.fold(0.0, f64::max))
                    })
                    .collect();
                println!("largest AUROC difference by budget: {}", by_budget.join(", "));
                // Where the two differ, scikit-learn converged further.
                if let Some(t) = text.lines().find_map(|l| l.strip_prefix("tight_aurocs=")) {
                    let tight: Vec<f64> = t.split(',').filter_map(|v| v.parse().ok()).collect();
                    let small = budgets.iter().filter(|&&b| b <= 1024).count();
                    for (b, size) in budgets.iter().take(small).enumerate() {
                        let pick = |v: &[f64], per: usize| v.iter().skip(b).step_by(per).copied().collect::<Vec<f64>>();
                        let largest = |a: &[f64], c: &[f64]| a.iter().zip(c).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
                        let tight = pick(&tight, small);
                        println!(
                            "budget {size}, scikit-learn at tol 1e-10: largest AUROC difference {:.4} to pairguard, {:.4} to scikit-learn at its default tol 1e-4",
                            largest(&pick(&sweep_aurocs, budgets.len()), &tight),
                            largest(&pick(&theirs, budgets.len()), &tight)
                        );
                    }
                }
            }
        }
        Err(e) => println!("scikit-learn peer not run: {e}"),
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
