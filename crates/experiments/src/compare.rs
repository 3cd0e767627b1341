//! Every guard on one test set, as UnsafeBench sets them side by side:
//! trained guards, zero-shot guards, published classifiers and the scores
//! of guards run elsewhere, each scored on the same samples by F1, accuracy
//! and AUROC overall, per category and per source, and by the pair metrics,
//! each with a 95% percentile-bootstrap interval. The resamples are shared
//! by every guard, so two guards' intervals come from the same draws.

use std::fmt::Write as _;
use std::path::Path;

use pairguard_model::LabeledSet;
use pairguard_model::metrics;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::error::Result;
use crate::plot::{Axes, Curve, Heatmap, Point, plot_heatmap, plot_lines};
use pairguard_run::write_atomic;

/// One guard's probabilities of "unsafe" on the set's rows, and where it
/// calls a sample unsafe.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub probs: Vec<f64>,
    pub threshold: f64,
    /// The guard's file or its score file, and that file's SHA-256: what
    /// the figures were computed from.
    pub file: String,
    pub sha256: String,
}

/// One figure of `compare.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub guard: String,
    /// `overall`, `category:<name>`, `source:<name>` or `pairs`.
    pub slice: String,
    pub metric: &'static str,
    /// Samples (pairs for the pair metrics) in the slice.
    pub n: usize,
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

const SAMPLE_METRICS: [&str; 3] = ["f1", "accuracy", "auroc"];
const PAIR_METRICS: [&str; 3] = ["pair_accuracy", "ordering_accuracy", "flip_rate"];

fn sample_metric(metric: &str, probs: &[f64], labels: &[bool], threshold: f64) -> f64 {
    // Recall, so F1, is undefined without an unsafe sample (a resample can
    // draw none); left out of the interval rather than counted as 0.
    if metric == "f1" && !labels.contains(&true) {
        return f64::NAN;
    }
    match metric {
        "auroc" => metrics::auroc(probs, labels),
        "f1" => metrics::binary(probs, labels, threshold, 0.05).f1,
        _ => metrics::binary(probs, labels, threshold, 0.05).accuracy,
    }
}

fn pair_metric(metric: &str, scores: &[(f64, f64)], threshold: f64) -> f64 {
    let m = metrics::pairs(scores, threshold);
    match metric {
        "pair_accuracy" => m.pair_accuracy,
        "ordering_accuracy" => m.ordering_accuracy,
        _ => m.flip_rate,
    }
}

/// The 2.5% and 97.5% points of the finite values.
fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    (at(0.025), at(0.975))
}

/// The slices of the set: every sample, each category's, each source's.
fn slices(set: &LabeledSet) -> Vec<(String, Vec<usize>)> {
    let mut out = vec![("overall".to_string(), (0..set.len()).collect())];
    for (k, name) in set.categories.iter().enumerate() {
        // A category's unsafe samples and every safe one: F1 and AUROC of
        // telling this harm from safe content.
        let rows: Vec<usize> = (0..set.len()).filter(|&i| set.category[i] == Some(k) || !set.labels[i]).collect();
        if rows.iter().any(|&i| set.labels[i]) {
            out.push((format!("category:{name}"), rows));
        }
    }
    let mut sources = set.sources.clone();
    sources.sort();
    sources.dedup();
    for s in sources {
        out.push((format!("source:{}", s.name()), (0..set.len()).filter(|&i| set.sources[i] == s).collect()));
    }
    out
}

/// Every entry's metrics on every slice, with intervals from `resamples`
/// bootstrap draws (seeded) shared by the entries.
pub fn compare(set: &LabeledSet, entries: &[Entry], resamples: usize, seed: u64) -> Vec<Row> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut rows = Vec::new();
    for (slice, members) in slices(set) {
        let draws: Vec<Vec<usize>> =
            (0..resamples).map(|_| (0..members.len()).map(|_| members[rng.random_range(0..members.len())]).collect()).collect();
        for e in entries {
            for metric in SAMPLE_METRICS {
                let value_of = |rows: &[usize]| {
                    let p: Vec<f64> = rows.iter().map(|&i| e.probs[i]).collect();
                    let l: Vec<bool> = rows.iter().map(|&i| set.labels[i]).collect();
                    sample_metric(metric, &p, &l, e.threshold)
                };
                let (ci_low, ci_high) = percentiles(draws.iter().map(|d| value_of(d)).collect());
                rows.push(Row { guard: e.name.clone(), slice: slice.clone(), metric, n: members.len(), value: value_of(&members), ci_low, ci_high });
            }
        }
    }
    if !set.pairs.is_empty() {
        let n = set.pairs.len();
        let draws: Vec<Vec<usize>> = (0..resamples).map(|_| (0..n).map(|_| rng.random_range(0..n)).collect()).collect();
        for e in entries {
            let scores: Vec<(f64, f64)> = set.pairs.iter().map(|&(u, s)| (e.probs[u], e.probs[s])).collect();
            for metric in PAIR_METRICS {
                let value_of = |pick: &[usize]| pair_metric(metric, &pick.iter().map(|&i| scores[i]).collect::<Vec<_>>(), e.threshold);
                let (ci_low, ci_high) = percentiles(draws.iter().map(|d| value_of(d)).collect());
                let all: Vec<usize> = (0..n).collect();
                rows.push(Row { guard: e.name.clone(), slice: "pairs".into(), metric, n, value: value_of(&all), ci_low, ci_high });
            }
        }
    }
    rows
}

/// `compare.md`: one table per metric, a guard per row and a slice per column.
pub fn markdown(rows: &[Row], entries: &[Entry], data: &str, resamples: usize) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Guards compared on {data}\n");
    let _ = writeln!(md, "Each value with its 95% percentile-bootstrap interval ({resamples} resamples, shared by the guards).");
    let _ = writeln!(md, "A category's slice holds its unsafe samples and every safe one.\n");
    let _ = writeln!(md, "| guard | threshold | file | sha256 |\n|---|---|---|---|");
    for e in entries {
        let _ = writeln!(md, "| {} | {} | `{}` | `{}` |", e.name, e.threshold, e.file, e.sha256);
    }
    for metric in SAMPLE_METRICS.iter().chain(&PAIR_METRICS) {
        let mut slices: Vec<(&str, usize)> = Vec::new();
        for r in rows.iter().filter(|r| r.metric == *metric) {
            if !slices.iter().any(|s| s.0 == r.slice) {
                slices.push((&r.slice, r.n));
            }
        }
        if slices.is_empty() {
            continue;
        }
        let _ = writeln!(md, "\n## {metric}\n");
        let header: Vec<String> = slices.iter().map(|(s, n)| format!("{s} (n={n})")).collect();
        let _ = writeln!(md, "| guard | {} |\n|---|{}", header.join(" | "), "---|".repeat(slices.len()));
        for e in entries {
            let cells: Vec<String> = slices
                .iter()
                .map(|(s, _)| {
                    rows.iter()
                        .find(|r| r.guard == e.name && r.metric == *metric && r.slice == *s)
                        .map_or("-".to_string(), |r| format!("{:.3} [{:.3}, {:.3}]", r.value, r.ci_low, r.ci_high))
                })
                .collect();
            let _ = writeln!(md, "| {} | {} |", e.name, cells.join(" | "));
        }
    }
    md
}

/// Writes `compare.csv`, `compare.md`, the ROC curves of every guard on
/// one plot (`roc.png`, `roc.svg`) and F1 per category as a heatmap
/// (`f1-by-category.png`, `.svg`) into `out`.
pub fn write(out: &Path, set: &LabeledSet, entries: &[Entry], data: &str, resamples: usize, seed: u64) -> Result<Vec<Row>> {
    let rows = compare(set, entries, resamples, seed);
    write_atomic(&out.join("compare.csv"), &crate::sweep::to_csv(&rows)?)?;
    write_atomic(&out.join("compare.md"), markdown(&rows, entries, data, resamples).as_bytes())?;
    let curves: Vec<Curve> = entries
        .iter()
        .map(|e| {
            let auroc = metrics::auroc(&e.probs, &set.labels);
            Curve {
                label: format!("{} (AUROC {auroc:.3})", e.name),
                points: metrics::roc_curve(&e.probs, &set.labels)
                    .into_iter()
                    .map(|(fpr, tpr)| Point { x: fpr, mean: tpr, ci_low: f64::NAN, ci_high: f64::NAN })
                    .collect(),
            }
        })
        .collect();
    plot_lines(&curves, Axes { title: &format!("ROC on {data}"), x: "false positive rate", y: "true positive rate" }, &out.join("roc"))?;
    // F1 per category, a guard per row: where each guard is weak.
    let columns: Vec<String> = set.categories.iter().filter(|c| rows.iter().any(|r| r.slice == format!("category:{c}"))).cloned().collect();
    let values = entries
        .iter()
        .map(|e| {
            columns
                .iter()
                .map(|c| {
                    rows.iter().find(|r| r.guard == e.name && r.metric == "f1" && r.slice == format!("category:{c}")).map_or(f64::NAN, |r| r.value)
                })
                .collect()
        })
        .collect();
    let title = format!("F1 per category on {data}");
    plot_heatmap(&Heatmap { title: &title, rows: entries.iter().map(|e| e.name.clone()).collect(), columns, values }, &out.join("f1-by-category"))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pairguard_data::Source;

    fn set() -> LabeledSet {
        LabeledSet {
            dim: 0,
            x: Vec::new(),
            ids: (0..8).map(|i| i.to_string()).collect(),
            labels: vec![true, false, true, false, true, false, true, false],
            category: vec![Some(0), None, Some(1), None, Some(0), None, Some(1), None],
            categories: vec!["x".into(), "y".into()],
            sources: [Source::Real, Source::Real, Source::AiGenerated, Source::AiGenerated].repeat(2),
            pairs: vec![(0, 1), (2, 3), (4, 5), (6, 7)],
        }
    }

    fn entries() -> Vec<Entry> {
        vec![
            Entry {
                name: "perfect".into(),
                probs: vec![0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4],
                threshold: 0.5,
                file: "perfect.jsonl".into(),
                sha256: "00".into(),
            },
            Entry {
                name: "coin".into(),
                probs: vec![0.6, 0.7, 0.4, 0.3, 0.6, 0.7, 0.4, 0.3],
                threshold: 0.5,
                file: "coin.jsonl".into(),
                sha256: "11".into(),
            },
        ]
    }

    #[test]
    fn values_are_the_metrics_of_the_whole_slice_and_intervals_hold_them() {
        let rows = compare(&set(), &entries(), 200, 1);
        let get = |g: &str, s: &str, m: &str| rows.iter().find(|r| r.guard == g && r.slice == s && r.metric == m).unwrap().clone();
        let r = get("perfect", "overall", "auroc");
        assert_eq!((r.value, r.ci_low, r.ci_high, r.n), (1.0, 1.0, 1.0, 8));
        let c = get("coin", "overall", "accuracy");
        assert_eq!(c.value, 0.5);
        assert!(c.ci_low < 0.5 && c.ci_high > 0.5, "{c:?}");
        // Category x: its two unsafe samples and the four safe ones.
        assert_eq!(get("perfect", "category:x", "f1").n, 6);
        assert_eq!(get("coin", "pairs", "pair_accuracy").value, 0.0);
        assert_eq!(get("perfect", "pairs", "ordering_accuracy").value, 1.0);
        assert_eq!(get("perfect", "source:real", "auroc").n, 4);
        assert!(get("coin", "source:real", "auroc").value.is_finite());
        // The same seed gives the same intervals.
        assert_eq!(format!("{rows:?}"), format!("{:?}", compare(&set(), &entries(), 200, 1)));
        let md = markdown(&rows, &entries(), "test", 200);
        assert!(md.contains("| perfect | 1.000 [1.000, 1.000] |"), "{md}");
    }
}
