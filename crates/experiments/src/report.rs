//! The results folder: CSV tables, plots, a markdown report and a manifest
//! naming every input (config, code version, data hashes, encoder).

use std::fmt::Write as _;
use std::path::Path;

use pairguard_data::hash::write_atomic;
use pairguard_model::{NormKind, Optimizer};

use crate::baselines::BaselineRow;
use crate::config::Experiment;
use crate::error::{Error, Result};
use crate::plot::{Level, plot_metric};
use crate::summary::{SummaryRow, budget_to_reach, compare, overtake, summarize};
use crate::sweep::{FitRow, RunIdentity, SweepData, to_csv};

/// The code that produced a result: the crate version and the commit the
/// binary was built from (`-dirty` when the work tree had changes), as the
/// build script found them.
pub const CODE_VERSION: &str = concat!("pairguard ", env!("CARGO_PKG_VERSION"), " (", env!("PAIRGUARD_COMMIT"), ")");

fn fmt(v: f64) -> String {
    if v.is_finite() { format!("{v:.3}") } else { "n/a".into() }
}

/// One row of `comparisons.csv`: a strategy minus the baseline at one
/// budget, paired by seed.
#[derive(Debug, serde::Serialize)]
struct ComparisonRow<'a> {
    test: &'a str,
    strategy: &'a str,
    baseline: &'a str,
    budget: usize,
    metric: &'a str,
    n: usize,
    mean_diff: f64,
    ci_low: f64,
    ci_high: f64,
    verdict: &'a str,
}

/// The training options that took effect, in words.
fn describe_training(exp: &Experiment) -> String {
    let t = &exp.train;
    let optimizer = match t.optimizer {
        Optimizer::Lbfgs { iterations } => format!("L-BFGS, at most {iterations} iterations"),
        Optimizer::Adamw { learning_rate, epochs, batch_size } => {
            format!("AdamW, learning rate {learning_rate}, {epochs} epochs, batches of {batch_size}")
        }
    };
    let norm = match t.normalization {
        NormKind::Standardize => "features L2-normalised, then standardised with each training set's own mean and deviation",
        NormKind::L2 => "features L2-normalised",
        NormKind::None => "raw features",
    };
    let decay = if t.weight_decay_grid.is_empty() {
        format!("weight decay {}", t.weight_decay)
    } else {
        format!("weight decay selected on validation from {:?}", t.weight_decay_grid)
    };
    let stop = t
        .early_stopping
        .map(|e| format!("; early stopping after {} evaluations without improvement, one every {}", e.patience, e.every))
        .unwrap_or_default();
    format!("{optimizer}; {norm}; {decay}{stop}; class balance {}", t.class_balance)
}

fn describe_calibration(exp: &Experiment, validation: Option<usize>) -> String {
    let c = &exp.calibration;
    match validation {
        None => format!("no validation data: temperature 1, decision threshold {} (fixed)", c.threshold.name()),
        Some(n) => format!(
            "calibrated on {n} validation samples: threshold rule {}, temperature {}",
            c.threshold.name(),
            if c.temperature { "fitted" } else { "1" }
        ),
    }
}

#[derive(Debug)]
pub struct ReportInputs<'a> {
    pub exp: &'a Experiment,
    pub config_text: &'a str,
    pub config_path: &'a Path,
    pub rows: &'a [FitRow],
    pub data: &'a SweepData,
    pub identity: &'a RunIdentity,
    /// Baseline guards' metrics (see [`crate::baselines`]).
    pub baselines: &'a [BaselineRow],
}

/// Writes fits.csv, summary.csv, comparisons.csv, baselines.csv (with
/// baselines), plots/, report.md and manifest.json into `out`. Returns the
/// report's path.
pub fn write(out: &Path, inp: &ReportInputs) -> Result<std::path::PathBuf> {
    let exp = inp.exp;
    let mut rows = inp.rows.to_vec();
    rows.sort_by(|a, b| (&a.test, &a.strategy, a.budget, a.seed).cmp(&(&b.test, &b.strategy, b.budget, b.seed)));
    write_atomic(&out.join("fits.csv"), &to_csv(&rows)?)?;
    let all_metrics: Vec<&str> = crate::config::METRICS.to_vec();
    let summary = summarize(&rows, &all_metrics);
    write_atomic(&out.join("summary.csv"), &to_csv(&summary)?)?;
    let mut comparisons = Vec::new();
    for m in &exp.report.metrics {
        comparisons.extend(compare(&rows, &exp.report.baseline, m));
    }
    let flat: Vec<ComparisonRow> = comparisons
        .iter()
        .map(|c| ComparisonRow {
            test: &c.test,
            strategy: &c.strategy,
            baseline: &exp.report.baseline,
            budget: c.budget,
            metric: &c.metric,
            n: c.diff.n,
            mean_diff: c.diff.mean,
            ci_low: c.diff.ci_low,
            ci_high: c.diff.ci_high,
            verdict: c.verdict,
        })
        .collect();
    write_atomic(&out.join("comparisons.csv"), &to_csv(&flat)?)?;
    if !inp.baselines.is_empty() {
        write_atomic(&out.join("baselines.csv"), &to_csv(inp.baselines)?)?;
    }
    let baseline_names: Vec<&str> = exp.baselines.iter().map(|b| b.name()).collect();
    let level = |name: &str, test: &str, metric: &str| -> f64 {
        inp.baselines.iter().find(|r| r.baseline == name && r.test == test && r.metric == metric).map_or(f64::NAN, |r| r.value)
    };

    let strategies: Vec<String> = exp.sweep.strategies.iter().map(|s| s.name()).collect();
    let tests: Vec<String> = inp.data.tests.iter().map(|(n, _)| n.clone()).collect();
    std::fs::create_dir_all(out.join("plots")).map_err(|e| Error::io(out.join("plots"), e))?;
    let mut plots = Vec::new();
    for t in &tests {
        for m in &exp.report.metrics {
            let sel: Vec<&SummaryRow> = summary.iter().filter(|r| &r.test == t && &r.metric == m).collect();
            if sel.is_empty() {
                continue;
            }
            let stem = out.join("plots").join(format!("{t}_{m}"));
            let levels: Vec<Level> = baseline_names.iter().map(|b| Level { label: b.to_string(), value: level(b, t, m) }).collect();
            plot_metric(&sel, &strategies, &levels, &format!("{m} on the {t} test set"), m, &stem)?;
            plots.push(format!("plots/{t}_{m}.png"));
        }
    }

    let version = CODE_VERSION;
    let mut md = String::new();
    writeln!(md, "# Sweep report: {}\n", exp.name)?;
    if !exp.description.is_empty() {
        writeln!(md, "{}\n", exp.description.trim())?;
    }
    writeln!(md, "- config: `{}`", inp.config_path.display())?;
    writeln!(md, "- code: {version}")?;
    let e = &inp.data.encoder;
    let revision = e.revision.as_ref().map(|r| format!(" at revision {r}")).unwrap_or_default();
    writeln!(md, "- encoder: {}{revision} (weights sha256 {}, preprocessing {}, dimension {})", e.model, e.weights_sha256, e.preprocess, e.dim)?;
    writeln!(md, "- head: {}; {}", exp.train.head.name(), describe_training(exp))?;
    writeln!(md, "- {}", describe_calibration(exp, inp.data.validation.as_ref().map(|v| v.len())))?;
    writeln!(
        md,
        "- pools: {} coarse samples, {} pair-pool samples ({} pairs)",
        inp.data.coarse.len(),
        inp.data.pairs.len(),
        inp.data.pairs.pairs.len()
    )?;
    writeln!(md, "- seeds: {:?}; budgets: {:?}", exp.sweep.seeds, exp.sweep.budgets()?)?;
    writeln!(md, "- fits: {} rows in `fits.csv` (one per head and test set)\n", rows.len())?;
    writeln!(md, "## Inputs\n\n| file | sha256 |\n|---|---|")?;
    for (f, h) in &inp.identity.data_sha256 {
        writeln!(md, "| `{f}` | `{h}` |")?;
    }

    if let Some(target) = &exp.report.target {
        writeln!(md, "\n## Sample efficiency\n")?;
        writeln!(
            md,
            "Budget at which the mean {} on the `{}` test set first reaches {} (log-interpolated):\n",
            target.metric, target.test, target.value
        )?;
        writeln!(md, "| strategy | budget needed | samples saved vs {} |\n|---|---|---|", exp.report.baseline)?;
        let curve = |s: &str| -> Vec<(usize, f64)> {
            let mut c: Vec<(usize, f64)> = summary
                .iter()
                .filter(|r| r.strategy == s && r.test == target.test && r.metric == target.metric)
                .map(|r| (r.budget, r.mean))
                .collect();
            c.sort_by_key(|p| p.0);
            c
        };
        let base = budget_to_reach(&curve(&exp.report.baseline), target.value);
        for s in &strategies {
            let b = budget_to_reach(&curve(s), target.value);
            let ratio = match (b, base) {
                (Some(b), Some(base)) => format!("{:.2}x", base / b),
                (Some(_), None) => "baseline never reaches it".into(),
                _ => "-".into(),
            };
            let need = b.map(|v| format!("{v:.0}")).unwrap_or_else(|| "not reached".into());
            writeln!(md, "| {s} | {need} | {ratio} |")?;
        }
    }

    if !baseline_names.is_empty() {
        writeln!(md, "\n## Baselines\n")?;
        writeln!(md, "Guards that need no training budget (dashed lines on the plots; `baselines.csv`):\n")?;
        write!(md, "| baseline | test |")?;
        for m in &exp.report.metrics {
            write!(md, " {m} |")?;
        }
        writeln!(md, "\n|---|---|{}", "---|".repeat(exp.report.metrics.len()))?;
        for b in &baseline_names {
            for t in &tests {
                write!(md, "| {b} | {t} |")?;
                for m in &exp.report.metrics {
                    write!(md, " {} |", fmt(level(b, t, m)))?;
                }
                writeln!(md)?;
            }
        }
        // Where the curves overtake them: on the target's test and metric,
        // else the first metric on the first test set.
        let (metric, test) = match &exp.report.target {
            Some(t) => (t.metric.clone(), t.test.clone()),
            None => (exp.report.metrics[0].clone(), tests.first().cloned().unwrap_or_default()),
        };
        writeln!(
            md,
            "\nBudget at which each strategy's mean {metric} on `{test}` overtakes each baseline (log-interpolated), with a 95% bootstrap interval over seeds and the seeds whose own curve overtakes it:\n"
        )?;
        writeln!(md, "| baseline | its {metric} | strategy | budget | 95% interval | seeds |\n|---|---|---|---|---|---|")?;
        for b in &baseline_names {
            let v = level(b, &test, &metric);
            for s in &strategies {
                let o = overtake(&rows, s, &test, &metric, v);
                let budget = o.budget.map_or_else(|| "not within the sweep".into(), |x| format!("{x:.0}"));
                let bound = |x: f64| if x.is_finite() { format!("{x:.0}") } else { "not reached".into() };
                writeln!(
                    md,
                    "| {b} | {} | {s} | {budget} | [{}, {}] | {}/{} |",
                    fmt(v),
                    bound(o.ci_low),
                    bound(o.ci_high),
                    o.seeds_reaching,
                    o.seeds
                )?;
            }
        }
    }

    for t in &tests {
        writeln!(md, "\n## Test set `{t}`\n")?;
        for m in &exp.report.metrics {
            let sel: Vec<&SummaryRow> = summary.iter().filter(|r| &r.test == t && &r.metric == m).collect();
            if sel.is_empty() {
                continue;
            }
            let mut budgets: Vec<usize> = sel.iter().map(|r| r.budget).collect();
            budgets.sort_unstable();
            budgets.dedup();
            writeln!(md, "### {m} (mean [95% CI] over seeds)\n")?;
            write!(md, "| strategy |")?;
            for b in &budgets {
                write!(md, " {b} |")?;
            }
            writeln!(md, "\n|---|{}", "---|".repeat(budgets.len()))?;
            for s in &strategies {
                write!(md, "| {s} |")?;
                for b in &budgets {
                    match sel.iter().find(|r| &r.strategy == s && r.budget == *b) {
                        Some(r) => write!(md, " {} [{}, {}] |", fmt(r.mean), fmt(r.ci_low), fmt(r.ci_high))?,
                        None => write!(md, " - |")?,
                    }
                }
                writeln!(md)?;
            }
            // The effect of pairing itself: each strategy against its
            // unpaired control (same budget, same images, no pairs).
            for s in &strategies {
                let control = format!("{s}-unpaired");
                if !strategies.contains(&control) {
                    continue;
                }
                let sub: Vec<FitRow> = rows.iter().filter(|r| &r.test == t && (&r.strategy == s || r.strategy == control)).cloned().collect();
                let cs = compare(&sub, &control, m);
                if !cs.is_empty() {
                    writeln!(md, "\nEffect of pairing: `{s}` minus its unpaired control `{control}` (same seeds), 95% CI:\n")?;
                    writeln!(md, "| budget | difference | verdict |\n|---|---|---|")?;
                    for c in cs {
                        writeln!(md, "| {} | {} [{}, {}] | {} |", c.budget, fmt(c.diff.mean), fmt(c.diff.ci_low), fmt(c.diff.ci_high), c.verdict)?;
                    }
                }
            }
            let cs: Vec<_> = comparisons.iter().filter(|c| &c.test == t && &c.metric == m).collect();
            if !cs.is_empty() {
                writeln!(md, "\nPaired difference from `{}` (same seeds), 95% CI:\n", exp.report.baseline)?;
                writeln!(md, "| strategy | budget | difference | verdict |\n|---|---|---|---|")?;
                for c in cs {
                    writeln!(
                        md,
                        "| {} | {} | {} [{}, {}] | {} |",
                        c.strategy,
                        c.budget,
                        fmt(c.diff.mean),
                        fmt(c.diff.ci_low),
                        fmt(c.diff.ci_high),
                        c.verdict
                    )?;
                }
            }
            if plots.contains(&format!("plots/{t}_{m}.png")) {
                writeln!(md, "\n![{m} on {t}](plots/{t}_{m}.png)\n")?;
            }
        }
    }
    writeln!(md, "\n## Configuration\n\n```toml\n{}\n```", inp.config_text.trim_end())?;
    let report = out.join("report.md");
    write_atomic(&report, md.as_bytes())?;

    let manifest = serde_json::json!({
        "experiment": exp,
        "config_path": inp.config_path,
        "config_text": inp.config_text,
        "code_version": version,
        "encoder": inp.data.encoder,
        "identity": inp.identity,
        "outputs": ["fits.csv", "summary.csv", "comparisons.csv", "baselines.csv", "report.md", "plots/"],
    });
    write_atomic(&out.join("manifest.json"), &serde_json::to_vec_pretty(&manifest)?)?;
    Ok(report)
}
