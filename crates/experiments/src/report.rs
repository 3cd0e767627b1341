//! The results folder: CSV tables, plots, a markdown report and a manifest
//! naming every input (config, code version, data hashes, encoder).

use std::fmt::Write as _;
use std::path::Path;

use pairguard_data::hash::write_atomic;

use crate::config::Experiment;
use crate::plot::plot_metric;
use crate::summary::{budget_to_reach, compare, summarize, SummaryRow};
use crate::sweep::{to_csv, FitRow, RunIdentity, SweepData};

/// The code that produced a result: crate version and, when run inside a
/// git checkout, the commit (with `-dirty` for uncommitted changes).
pub fn code_version(dir: &Path) -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown commit".into());
    let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    format!("pairguard {} ({commit}{})", env!("CARGO_PKG_VERSION"), if dirty { "-dirty" } else { "" })
}

fn fmt(v: f64) -> String {
    if v.is_finite() { format!("{v:.3}") } else { "n/a".into() }
}

#[derive(Debug)]
pub struct ReportInputs<'a> {
    pub exp: &'a Experiment,
    pub config_text: &'a str,
    pub config_path: &'a Path,
    pub rows: &'a [FitRow],
    pub data: &'a SweepData,
    pub identity: &'a RunIdentity,
}

/// Writes fits.csv, summary.csv, comparisons.csv, plots/, report.md and
/// manifest.json into `out`. Returns the report's path.
pub fn write(out: &Path, inp: &ReportInputs) -> anyhow::Result<std::path::PathBuf> {
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
    let flat: Vec<_> = comparisons
        .iter()
        .map(|c| {
            serde_json::json!({"test": c.test, "strategy": c.strategy, "baseline": exp.report.baseline, "budget": c.budget,
                "metric": c.metric, "n": c.diff.n, "mean_diff": c.diff.mean, "ci_low": c.diff.ci_low, "ci_high": c.diff.ci_high,
                "verdict": c.verdict})
        })
        .collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["test", "strategy", "baseline", "budget", "metric", "n", "mean_diff", "ci_low", "ci_high", "verdict"])?;
    for c in &flat {
        let rec: Vec<String> = ["test", "strategy", "baseline", "budget", "metric", "n", "mean_diff", "ci_low", "ci_high", "verdict"]
            .iter()
            .map(|k| match &c[k] {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            })
            .collect();
        w.write_record(rec)?;
    }
    write_atomic(&out.join("comparisons.csv"), &w.into_inner()?)?;

    let strategies: Vec<String> = exp.sweep.strategies.iter().map(|s| s.name()).collect();
    let tests: Vec<String> = inp.data.tests.iter().map(|(n, _)| n.clone()).collect();
    std::fs::create_dir_all(out.join("plots"))?;
    let mut plots = Vec::new();
    for t in &tests {
        for m in &exp.report.metrics {
            let sel: Vec<&SummaryRow> = summary.iter().filter(|r| &r.test == t && &r.metric == m).collect();
            if sel.is_empty() {
                continue;
            }
            let stem = out.join("plots").join(format!("{t}_{m}"));
            plot_metric(&sel, &strategies, &format!("{m} on the {t} test set"), m, &stem)?;
            plots.push(format!("plots/{t}_{m}.png"));
        }
    }

    let version = code_version(inp.config_path.parent().unwrap_or(Path::new(".")));
    let mut md = String::new();
    writeln!(md, "# Sweep report: {}\n", exp.name)?;
    if !exp.description.is_empty() {
        writeln!(md, "{}\n", exp.description.trim())?;
    }
    writeln!(md, "- config: `{}`", inp.config_path.display())?;
    writeln!(md, "- code: {version}")?;
    writeln!(
        md,
        "- encoder: {} (rev {:?}, weights sha256 {}, preprocess {}, dim {})",
        inp.data.encoder.model, inp.data.encoder.revision, inp.data.encoder.weights_sha256, inp.data.encoder.preprocess, inp.data.encoder.dim
    )?;
    writeln!(
        md,
        "- head: {}, normalisation {:?}, weight decay {}, {} epochs max, learning rate {}",
        exp.train.head.name(), exp.train.normalization, exp.train.weight_decay, exp.train.epochs, exp.train.learning_rate
    )?;
    writeln!(md, "- pools: {} coarse samples, {} pair-pool samples ({} pairs)", inp.data.coarse.len(), inp.data.pairs.len(), inp.data.pairs.pairs.len())?;
    writeln!(md, "- seeds: {:?}; budgets: {:?}", exp.sweep.seeds, exp.sweep.budgets()?)?;
    writeln!(md, "- fits: {} rows in `fits.csv` (one per head and test set)\n", rows.len())?;
    writeln!(md, "## Inputs\n\n| file | sha256 |\n|---|---|")?;
    for (f, h) in &inp.identity.data_sha256 {
        writeln!(md, "| `{f}` | `{h}` |")?;
    }

    if let Some(target) = &exp.report.target {
        writeln!(md, "\n## Sample efficiency\n")?;
        writeln!(md, "Budget at which the mean {} on the `{}` test set first reaches {} (log-interpolated):\n", target.metric, target.test, target.value)?;
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
                    writeln!(md, "| {} | {} | {} [{}, {}] | {} |", c.strategy, c.budget, fmt(c.diff.mean), fmt(c.diff.ci_low), fmt(c.diff.ci_high), c.verdict)?;
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
        "outputs": ["fits.csv", "summary.csv", "comparisons.csv", "report.md", "plots/"],
    });
    write_atomic(&out.join("manifest.json"), &serde_json::to_vec_pretty(&manifest)?)?;
    Ok(report)
}
