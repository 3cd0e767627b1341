//! The report's markdown: what was run, on what, and what came out.

use std::fmt::Write as _;

use pairguard_model::metrics::Metric;
use pairguard_model::{NormKind, Optimizer};

use super::{CODE_VERSION, Results};
use crate::config::Experiment;
use crate::error::Result;
use crate::summary::{budget_to_reach, compare, overtake};
use crate::sweep::FitRow;

fn fmt(v: f64) -> String {
    if v.is_finite() { format!("{v:.3}") } else { "n/a".into() }
}

/// The whole report; `plots` are the PNGs written beside it.
pub(super) fn render(r: &Results, plots: &[String]) -> Result<String> {
    let mut md = String::new();
    header(&mut md, r)?;
    sample_efficiency(&mut md, r)?;
    baselines(&mut md, r)?;
    for t in &r.tests {
        test_set(&mut md, r, t, plots)?;
    }
    writeln!(md, "\n## Configuration\n\n```toml\n{}\n```", r.inp.config_text.trim_end())?;
    Ok(md)
}

/// What was run: the experiment, the code, the encoder, training, data and inputs.
fn header(md: &mut String, r: &Results) -> Result<()> {
    let (exp, inp) = (r.exp, r.inp);
    writeln!(md, "# Sweep report: {}\n", exp.name)?;
    if !exp.description.is_empty() {
        writeln!(md, "{}\n", exp.description.trim())?;
    }
    writeln!(md, "- config: `{}`", inp.config_path.display())?;
    writeln!(md, "- code: {CODE_VERSION}")?;
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
    writeln!(md, "- fits: {} rows in `fits.csv` (one per head and test set)\n", r.rows.len())?;
    writeln!(md, "## Inputs\n\n| file | sha256 |\n|---|---|")?;
    for (f, h) in &inp.identity.data_sha256 {
        writeln!(md, "| `{f}` | `{h}` |")?;
    }
    Ok(())
}

/// The budget each strategy needs to reach the experiment's target.
fn sample_efficiency(md: &mut String, r: &Results) -> Result<()> {
    let exp = r.exp;
    let Some(target) = &exp.report.target else { return Ok(()) };
    writeln!(md, "\n## Sample efficiency\n")?;
    writeln!(
        md,
        "Budget at which the mean {} on the `{}` test set first reaches {} (log-interpolated):\n",
        target.metric, target.test, target.value
    )?;
    writeln!(md, "| strategy | budget needed | samples saved vs {} |\n|---|---|---|", exp.report.baseline)?;
    let curve = |s: &str| -> Vec<(usize, f64)> {
        let mut c: Vec<(usize, f64)> =
            r.summary_of(&target.test, target.metric).iter().filter(|row| row.strategy == s).map(|row| (row.budget, row.mean)).collect();
        c.sort_by_key(|p| p.0);
        c
    };
    let base = budget_to_reach(&curve(&exp.report.baseline), target.value);
    for s in &r.strategies {
        let b = budget_to_reach(&curve(s), target.value);
        let ratio = match (b, base) {
            (Some(b), Some(base)) => format!("{:.2}x", base / b),
            (Some(_), None) => "baseline never reaches it".into(),
            _ => "-".into(),
        };
        let need = b.map(|v| format!("{v:.0}")).unwrap_or_else(|| "not reached".into());
        writeln!(md, "| {s} | {need} | {ratio} |")?;
    }
    Ok(())
}

/// The guards that need no budget, and where each strategy overtakes them.
fn baselines(md: &mut String, r: &Results) -> Result<()> {
    let exp = r.exp;
    if r.baselines.is_empty() {
        return Ok(());
    }
    writeln!(md, "\n## Baselines\n")?;
    writeln!(md, "Guards that need no training budget (dashed lines on the plots; `baselines.csv`):\n")?;
    write!(md, "| baseline | test |")?;
    for m in &exp.report.metrics {
        write!(md, " {m} |")?;
    }
    writeln!(md, "\n|---|---|{}", "---|".repeat(exp.report.metrics.len()))?;
    for b in &r.baselines {
        // A score file scores one test set; the others have no row.
        for t in r.tests.iter().filter(|t| exp.report.metrics.iter().any(|&m| !r.level(b, t, m).is_nan())) {
            write!(md, "| {b} | {t} |")?;
            for &m in &exp.report.metrics {
                write!(md, " {} |", fmt(r.level(b, t, m)))?;
            }
            writeln!(md)?;
        }
    }
    // Where the curves overtake them: on the target's test and metric,
    // else the first metric on the first test set.
    let (metric, test): (Metric, String) = match &exp.report.target {
        Some(t) => (t.metric, t.test.clone()),
        None => (exp.report.metrics[0], r.tests.first().cloned().unwrap_or_default()),
    };
    writeln!(
        md,
        "\nBudget at which each strategy's mean {metric} on `{test}` overtakes each baseline (log-interpolated), with a 95% bootstrap interval over seeds and the seeds whose own curve overtakes it:\n"
    )?;
    writeln!(md, "| baseline | its {metric} | strategy | budget | 95% interval | seeds |\n|---|---|---|---|---|---|")?;
    for b in &r.baselines {
        let v = r.level(b, &test, metric);
        if v.is_nan() {
            continue;
        }
        for s in &r.strategies {
            let o = overtake(&r.rows, s, &test, metric, v);
            let budget = o.budget.map_or_else(|| "not within the sweep".into(), |x| format!("{x:.0}"));
            let bound = |x: f64| if x.is_finite() { format!("{x:.0}") } else { "not reached".into() };
            writeln!(md, "| {b} | {} | {s} | {budget} | [{}, {}] | {}/{} |", fmt(v), bound(o.ci_low), bound(o.ci_high), o.seeds_reaching, o.seeds)?;
        }
    }
    Ok(())
}

/// One test set: each reported metric's curve as a table, the effect of
/// pairing, the differences from the baseline strategy, and the plot.
fn test_set(md: &mut String, r: &Results, t: &str, plots: &[String]) -> Result<()> {
    writeln!(md, "\n## Test set `{t}`\n")?;
    for &m in &r.exp.report.metrics {
        let sel = r.summary_of(t, m);
        if sel.is_empty() {
            continue;
        }
        let mut budgets: Vec<usize> = sel.iter().map(|row| row.budget).collect();
        budgets.sort_unstable();
        budgets.dedup();
        writeln!(md, "### {m} (mean [95% CI] over seeds)\n")?;
        write!(md, "| strategy |")?;
        for b in &budgets {
            write!(md, " {b} |")?;
        }
        writeln!(md, "\n|---|{}", "---|".repeat(budgets.len()))?;
        for s in &r.strategies {
            write!(md, "| {s} |")?;
            for b in &budgets {
                match sel.iter().find(|row| &row.strategy == s && row.budget == *b) {
                    Some(row) => write!(md, " {} [{}, {}] |", fmt(row.mean), fmt(row.ci_low), fmt(row.ci_high))?,
                    None => write!(md, " - |")?,
                }
            }
            writeln!(md)?;
        }
        pairing_effects(md, r, t, m)?;
        let cs: Vec<_> = r.comparisons.iter().filter(|c| c.test == t && c.metric == m).collect();
        if !cs.is_empty() {
            writeln!(md, "\nPaired difference from `{}` (same seeds), 95% CI:\n", r.exp.report.baseline)?;
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
    Ok(())
}

/// The effect of pairing itself: each strategy against its unpaired
/// control (same budget, same images, no pairs).
fn pairing_effects(md: &mut String, r: &Results, t: &str, m: Metric) -> Result<()> {
    for s in &r.strategies {
        let control = format!("{s}-unpaired");
        if !r.strategies.contains(&control) {
            continue;
        }
        let sub: Vec<FitRow> = r.rows.iter().filter(|row| row.test == t && (&row.strategy == s || row.strategy == control)).cloned().collect();
        let cs = compare(&sub, &control, m);
        if !cs.is_empty() {
            writeln!(md, "\nEffect of pairing: `{s}` minus its unpaired control `{control}` (same seeds), 95% CI:\n")?;
            writeln!(md, "| budget | difference | verdict |\n|---|---|---|")?;
            for c in cs {
                writeln!(md, "| {} | {} [{}, {}] | {} |", c.budget, fmt(c.diff.mean), fmt(c.diff.ci_low), fmt(c.diff.ci_high), c.verdict)?;
            }
        }
    }
    Ok(())
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
