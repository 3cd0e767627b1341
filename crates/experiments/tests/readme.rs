//! The README's demo figures against the code: runs `experiments/demo.toml`
//! (seconds), computes every number the README's "The demo's result"
//! section quotes, formats each at the README's rounding, and fails unless
//! the README says exactly that. A figure edited by hand, or one the code
//! no longer produces, fails here.

use std::collections::BTreeMap;
use std::path::Path;

use pairguard_experiments::stats::{MeanCi, mean_ci};
use pairguard_experiments::summary::{budget_to_reach, overtake};
use pairguard_experiments::{FitRow, RunOptions, run_experiment};
use pairguard_model::metrics::Metric;
use pairguard_run::Assignment;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// `a - b` per seed, for one metric of two strategies on the shifted test set.
fn paired(rows: &[FitRow], a: &str, b: &str, budget: usize, metric: impl Fn(&FitRow) -> f64) -> MeanCi {
    let of = |s: &str| -> BTreeMap<u64, f64> {
        rows.iter().filter(|r| r.strategy == s && r.test == "shifted" && r.budget == budget).map(|r| (r.seed, metric(r))).collect()
    };
    let (x, y) = (of(a), of(b));
    mean_ci(&x.iter().map(|(k, v)| v - y[k]).collect::<Vec<_>>())
}

fn mean(rows: &[FitRow], strategy: &str, budget: usize, metric: impl Fn(&FitRow) -> f64) -> f64 {
    let v: Vec<f64> = rows.iter().filter(|r| r.strategy == strategy && r.test == "shifted" && r.budget == budget).map(metric).collect();
    mean_ci(&v).mean
}

/// A budget as the README writes it: to the nearest 10, with a thousands comma.
fn samples(b: f64) -> String {
    let n = ((b / 10.0).round() * 10.0) as u64;
    if n >= 1000 { format!("{},{:03}", n / 1000, n % 1000) } else { n.to_string() }
}

#[test]
fn the_readme_quotes_what_the_demo_computes() {
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions { device: pairguard_model::Device::flex(), hub: Default::default(), max_groups: None, assignment: Assignment::Whole };
    let outcome = run_experiment(&repo().join("experiments/demo.toml"), dir.path(), &opts, &pairguard_run::Silent).unwrap();
    assert!(matches!(outcome, pairguard_run::Outcome::Done(_)));
    let rows: Vec<FitRow> = csv::Reader::from_path(dir.path().join("fits.csv")).unwrap().deserialize().map(Result::unwrap).collect();
    let baselines = std::fs::read_to_string(dir.path().join("baselines.csv")).unwrap();
    let zero_shot: f64 = baselines
        .lines()
        .find(|l| l.starts_with("zero-shot,shifted,auroc,"))
        .and_then(|l| l.rsplit(',').next())
        .unwrap_or_else(|| panic!("no zero-shot AUROC on shifted in\n{baselines}"))
        .parse()
        .unwrap();

    let auroc = |r: &FitRow| r.auroc;
    let pairing: Vec<MeanCi> = [16, 32, 64].iter().map(|&b| paired(&rows, "ratio-0.5", "ratio-0.5-unpaired", b, auroc)).collect();
    let curve = |s: &str| -> Vec<(usize, f64)> {
        let mut budgets: Vec<usize> = rows.iter().filter(|r| r.strategy == s).map(|r| r.budget).collect();
        budgets.sort();
        budgets.dedup();
        budgets.into_iter().map(|b| (b, mean(&rows, s, b, auroc))).collect()
    };
    let reach = |s: &str| samples(budget_to_reach(&curve(s), 0.85).unwrap_or_else(|| panic!("{s} never reaches 0.85")));
    assert_eq!(budget_to_reach(&curve("coarse"), 0.85), None, "coarse data now reaches 0.85 AUROC");
    let over = |s: &str| overtake(&rows, s, "shifted", Metric::Auroc, zero_shot);
    let (o_pairs, o_ratio, o_unpaired) = (over("pairs"), over("ratio-0.5"), over("ratio-0.5-unpaired"));
    let robust = |r: &FitRow| r.robust_accuracy;
    let robust_pairing: Vec<MeanCi> = [16, 32, 64].iter().map(|&b| paired(&rows, "ratio-0.5", "ratio-0.5-unpaired", b, robust)).collect();
    let accuracy = |r: &FitRow| r.accuracy;
    let seeds = |o: &pairguard_experiments::summary::Overtake| {
        if o.seeds_reaching == o.seeds { format!("all {} seeds", o.seeds) } else { format!("{} of {} seeds", o.seeds_reaching, o.seeds) }
    };

    let quoted = [
        format!(
            "by {:.2} AUROC at 16 samples (95% CI\n{:.2} to {:.2}), {:.2} at 32 and {:.2} at 64",
            pairing[0].mean, pairing[0].ci_low, pairing[0].ci_high, pairing[1].mean, pairing[2].mean
        ),
        format!("({:.2} at\n2048 samples)", mean(&rows, "coarse", 2048, auroc)),
        format!(
            "the pair mix reaches it at about {} samples, its unpaired\ncontrol at about {}, pairs alone at about {}",
            reach("ratio-0.5"),
            reach("ratio-0.5-unpaired"),
            reach("pairs")
        ),
        format!("({zero_shot:.3} AUROC on the shifted set, uncalibrated)"),
        format!(
            "Pairs alone\novertake it at about {} samples (95% bootstrap interval over seeds {} to\n{}, {}), the pair mix at about {} ({} to {}, {}), its\nunpaired control at about {} ({})",
            samples(o_pairs.budget.unwrap()),
            samples(o_pairs.ci_low),
            samples(o_pairs.ci_high),
            seeds(&o_pairs),
            samples(o_ratio.budget.unwrap()),
            samples(o_ratio.ci_low),
            samples(o_ratio.ci_high),
            seeds(&o_ratio),
            samples(o_unpaired.budget.unwrap()),
            seeds(&o_unpaired),
        ),
        format!(
            "by {:.3} (95% CI {:.3} to {:.3}) at 16 samples, {:.3} at 32\nand {:.3} at 64",
            robust_pairing[0].mean, robust_pairing[0].ci_low, robust_pairing[0].ci_high, robust_pairing[1].mean, robust_pairing[2].mean
        ),
        format!(
            "accuracy is\n{:.3} against {:.3} and robust accuracy {:.3} against {:.3}",
            mean(&rows, "ratio-0.5", 16, accuracy),
            mean(&rows, "ratio-0.5-unpaired", 16, accuracy),
            mean(&rows, "ratio-0.5", 16, robust),
            mean(&rows, "ratio-0.5-unpaired", 16, robust)
        ),
    ];
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = &readme[readme.find("## The demo's result").unwrap()..readme.find("## Real data, from a fresh machine").unwrap()];
    // Line breaks in the README are free: compare with runs of white space as one.
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let missing: Vec<String> = quoted.iter().map(|q| flat(q)).filter(|q| !flat(section).contains(q.as_str())).collect();
    assert!(missing.is_empty(), "the README's demo section should say, as the demo computes:\n{}", missing.join("\n"));
}
