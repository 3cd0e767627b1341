//! The README's generated-pairs figures against the script that makes them:
//! `experiments/generated-pairs.sh` run afresh must write exactly the files
//! under `docs/generated-pairs/`, and the README's tables must say what
//! those files say. A figure edited by hand, or one the code no longer
//! produces, fails here.

mod common;

use std::path::Path;

use common::{SMALL_SWEEP, fails, ok, tree};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn the_generated_pairs_script_writes_the_committed_figures() {
    let dir = tempfile::tempdir().unwrap();
    let docs = run_script("generated-pairs.sh", dir.path());
    let made = tree(&docs.join("generated-pairs"), &[]);
    let committed = tree(&repo().join("docs/generated-pairs"), &[]);
    let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&made), names(&committed));
    for ((name, a), (_, b)) in made.iter().zip(&committed) {
        assert!(a == b, "docs/generated-pairs/{name} is not what experiments/generated-pairs.sh writes now");
    }
}

/// Runs `experiments/<script>` with this build's binary, its results and
/// docs under `dir`; the docs folder it wrote.
fn run_script(script: &str, dir: &Path) -> std::path::PathBuf {
    let (results, docs) = (dir.join("results"), dir.join("docs"));
    let out = std::process::Command::new("bash")
        .arg(repo().join("experiments").join(script))
        .env("PAIRGUARD", env!("CARGO_BIN_EXE_pairguard"))
        .env("PAIRGUARD_RESULTS", &results)
        .env("PAIRGUARD_DOCS", &docs)
        .output()
        .unwrap();
    assert!(out.status.success(), "experiments/{script} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    docs
}

/// The first line of `file` starting with `prefix`.
fn line<'a>(file: &'a str, prefix: &str) -> &'a str {
    file.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no line starting {prefix:?}"))
}

/// The cells of a Markdown table row.
fn cells(row: &str) -> Vec<&str> {
    row.trim_matches('|').split('|').map(str::trim).collect()
}

#[test]
fn the_readme_quotes_the_generated_pairs_files() {
    let docs = repo().join("docs/generated-pairs");
    let read = |name: &str| std::fs::read_to_string(docs.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let says = |row: String| assert!(readme.lines().any(|l| l == row), "the README should have the row\n{row}");

    for (editor, label) in
        [("oracle", "oracle"), ("moderate", "moderate"), ("severe", "severe"), ("severe-no-mask", "severe, no mask"), ("broken", "broken")]
    {
        let v = read(&format!("verification-{editor}.md"));
        // "Verification against the editor's truth: P of N judged edits are true pairs (...); it kept K, of which KP are pairs (precision X, recall Y)."
        let first = v.lines().next().unwrap();
        let between = |a: &str, b: &str| first.split(a).nth(1).unwrap().split(b).next().unwrap().to_string();
        let (pairs, edits) = (between("truth: ", " of"), between(" of ", " judged"));
        let (kept, p, r) = (between("it kept ", ","), between("precision ", ","), between("recall ", ")"));
        says(format!("| {label} | {pairs} of {edits} | {kept} | {p} | {r} |"));
    }

    let sweep = |run: &str| -> (String, String) {
        let s = read(&format!("sweep-{run}.md"));
        let budget = cells(line(&s, "| ratio-0.5 |"))[1].to_string();
        let at16 = cells(s.lines().filter(|l| l.starts_with("| ratio-0.5 |")).nth(1).unwrap())[2].to_string();
        (at16, budget)
    };
    let given = read("sweep-given.md");
    let coarse_budget = cells(line(&given, "| coarse |"))[1].to_string();
    let coarse_at16 = cells(given.lines().filter(|l| l.starts_with("| coarse |")).nth(1).unwrap())[2].to_string();
    says(format!("| none (coarse data only) | {coarse_at16} | {coarse_budget} |"));
    let (a, b) = sweep("given");
    says(format!("| given pairs | {a} | {b} |"));
    for editor in ["oracle", "moderate", "severe", "broken"] {
        let (va, vb) = sweep(&format!("{editor}-verified"));
        let (ua, ub) = sweep(&format!("{editor}-unverified"));
        says(format!("| {editor} editor, verified / unverified | {va} / {ua} | {vb} / {ub} |"));
    }
}

#[test]
fn overlay_puts_curves_of_several_sweeps_on_one_figure_and_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("exp.toml"), SMALL_SWEEP).unwrap();
    ok(&["sweep", "exp.toml", "--out", "runs/a", "--device", "cpu"], d);
    let abs = d.join("runs/a");
    let printed = ok(
        &[
            "overlay",
            "--test",
            "shifted",
            "--out",
            "fig",
            "--title",
            "t",
            "--curve",
            "coarse=runs/a:coarse",
            "--curve",
            &format!("pairs, absolute={}:ratio-0.5", abs.display()),
        ],
        d,
    );
    assert_eq!(printed.trim(), "fig/overlay.csv");
    let csv = std::fs::read_to_string(d.join("fig/overlay.csv")).unwrap();
    let summary = std::fs::read_to_string(abs.join("summary.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "curve,strategy,budget,n,mean,ci_low,ci_high");
    assert_eq!(lines.len(), 1 + 2 * 2, "two curves of two budgets: {csv}");
    // Each point is the sweep's own summary row.
    for l in &lines[1..] {
        let f: Vec<&str> = l.rsplitn(7, ',').collect();
        let (strategy, budget, n, mean, lo, hi) = (f[5], f[4], f[3], f[2], f[1], f[0]);
        let row = format!("shifted,{strategy},{budget},auroc,{n},{mean},");
        let found = summary.lines().find(|s| s.starts_with(&row)).unwrap_or_else(|| panic!("{row} in\n{summary}"));
        assert!(found.ends_with(&format!(",{lo},{hi}")), "{l} against {found}");
    }
    for f in ["overlay.png", "overlay.svg"] {
        assert!(std::fs::metadata(d.join("fig").join(f)).unwrap().len() > 1000, "{f}");
    }

    let e = fails(&["overlay", "--test", "shifted", "--out", "fig", "--curve", "x=runs/a:ratio-0.9"], d);
    assert!(e.contains("runs/a/summary.csv") && e.contains("ratio-0.9") && e.contains("it has: coarse, ratio-0.5"), "{e}");
    let e = fails(&["overlay", "--test", "nosuch", "--out", "fig", "--curve", "x=runs/a:coarse"], d);
    assert!(e.contains("on test \"nosuch\""), "{e}");
    let e = fails(&["overlay", "--test", "shifted", "--out", "fig", "--curve", "x=runs/b:coarse"], d);
    assert!(e.contains("runs/b/summary.csv"), "{e}");
    let e = fails(&["overlay", "--test", "shifted", "--out", "fig", "--curve", "runs/a"], d);
    assert!(e.contains("LABEL=RESULTS_FOLDER:STRATEGY"), "{e}");
}

#[test]
fn the_readme_quotes_the_policy_text_sweeps() {
    // docs/demo-text/*.md, written by experiments/reproduce.sh from the
    // demo, demo-text and demo-text-as-data sweeps.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let rows = [
        ("linear probe, coarse only (`demo.toml`)", "demo", "coarse"),
        ("linear probe, coarse + prompts as data", "demo-text-as-data", "coarse"),
        ("prompt head, coarse only", "demo-text", "coarse"),
        ("linear probe, pairs only (`demo.toml`)", "demo", "pairs"),
        ("linear probe, pairs + prompts as data", "demo-text-as-data", "pairs"),
        ("prompt head, pairs only", "demo-text", "pairs"),
    ];
    for (label, sweep, strategy) in rows {
        let file = std::fs::read_to_string(repo().join(format!("docs/demo-text/{sweep}.md"))).unwrap();
        // The first table row of the strategy after "### auroc" holds the means by budget: 16, 32, ..., 2048.
        let auroc = &file[file.find("### auroc").expect("an AUROC table")..];
        let means: Vec<String> =
            cells(line(auroc, &format!("| {strategy} |")))[1..].iter().map(|c| c.split(' ').next().unwrap().to_string()).collect();
        let over = cells(line(&file, &format!("| zero-shot | 0.909 | {strategy} |")));
        let overtakes = if over[3] == "not within the sweep" { "never".to_string() } else { format!("{} {}", over[3], over[4]) };
        let row = format!("| {label} | {} | {} | {} | {} | {overtakes} |", means[0], means[2], means[4], means[7]);
        assert!(readme.lines().any(|l| l == row), "the README should have the row\n{row}");
    }
}

#[test]
fn the_readme_quotes_the_benchmark_outputs() {
    // docs/benchmarks/*.txt, written by `experiments/reproduce.sh --benchmarks`.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    let read = |name: &str| std::fs::read_to_string(repo().join("docs/benchmarks").join(name)).unwrap();
    let says = |text: &str| assert!(readme.contains(text), "the README should say {text:?}");
    // "pairguard cpu f32  median [range] 16.31 [15.36, 17.63] images/s; open_clip fp32 14.23 [12.90, 15.95]; ratio of medians 1.15x",
    // quoted in the README's table as "16.31 [15.36, 17.63] | 14.23 [12.90, 15.95] (1.15x)".
    for file in ["bench_encoder.txt", "bench_encoder_vit-l-14.txt"] {
        let encoder = read(file);
        let ours = |precision: &str| {
            let l = line(&encoder, &format!("pairguard cpu {precision} ")).to_string();
            let median = l.split("median [range] ").nth(1).unwrap().split(" images/s").next().unwrap().to_string();
            (l, median)
        };
        for (precision, peer) in [("f32", "fp32"), ("bf16", "bf16")] {
            let (l, median) = ours(precision);
            let theirs = l.split(&format!("open_clip {peer} ")).nth(1).unwrap().split(';').next().unwrap();
            let ratio = l.rsplit("ratio of medians ").next().unwrap().split(';').next().unwrap();
            says(&format!("| {median} | {theirs} ({ratio}) |"));
        }
        let (_, int8) = ours("int8");
        let (_, bf16) = ours("bf16");
        let median = |m: &str| m.split(' ').next().unwrap().parse::<f64>().unwrap();
        says(&format!("| {int8} ({:.2}x bf16) |", median(&int8) / median(&bf16)));
    }
    let ratio = |file: &str, prefix: &str| -> Vec<String> {
        let l = line(file, prefix).to_string();
        l.split(' ')
            .filter(|w| w.ends_with('x') || w.ends_with("x,") || w.ends_with("x;"))
            .map(|w| w.trim_end_matches([',', ';']).to_string())
            .collect()
    };
    // "pairguard-bf16 median [range] 37.47 [30.68, 38.19] images/s (2.22x open_clip's fastest), peak memory up to 897 MiB; ...",
    // quoted as "37.47 [30.68, 38.19] (2.22x)" and "897 MiB".
    for file in ["embed_end_to_end.txt", "embed_end_to_end_vit-l-14.txt"] {
        let e2e = read(file);
        for side in ["pairguard-f32", "pairguard-bf16", "pairguard-int8", "open_clip-fp32", "open_clip-bf16"] {
            let l = line(&e2e, &format!("{side} median [range] "));
            let figures = l.split("median [range] ").nth(1).unwrap().split(" images/s").next().unwrap();
            let ratio = l.split(" images/s (").nth(1).unwrap().split(' ').next().unwrap();
            let memory = l.split("peak memory up to ").nth(1).unwrap().split(';').next().unwrap();
            says(&format!("{figures} ({ratio})"));
            says(&format!("| {memory} |"));
        }
    }
    // "onnxruntime int8 export (pairguard) (89914377 bytes) median [range] 98.11 [96.88, 102.59] images/s; against pairguard f32:
    // largest difference 0.0402, mean 0.0108, verdicts agree 31/32", quoted as "| 98.11 [96.88, 102.59] | 0.0402 | 0.0108 | 31/32 |".
    let onnx = read("bench_onnx.txt");
    for route in ["pairguard bf16", "pairguard int8", "onnxruntime f32 export", "onnxruntime int8 export", "onnxruntime quantize_dynamic"] {
        let l = line(&onnx, route);
        let figures = l.split("median [range] ").nth(1).unwrap().split(" images/s").next().unwrap();
        let against = l.split("against pairguard f32: ").nth(1).unwrap().split(';').next().unwrap();
        let (largest, rest) = against.trim_start_matches("largest difference ").split_once(", mean ").unwrap();
        let (mean, agree) = rest.split_once(", verdicts agree ").unwrap();
        says(&format!("| {figures} | {largest} | {mean} | {agree} |"));
    }
    let attack = read("bench_attack.txt");
    let r = ratio(&attack, "ratio of medians");
    says(&format!("FGSM and PGD {} and {} torch", r[0], r[1]));
    let probe = read("bench_probe.txt");
    let one = ratio(&probe, "speed-up vs scikit-learn")[0].trim_end_matches('x').parse::<f64>().unwrap();
    let grid = ratio(&probe, "weight-decay sweep speed-up")[0].trim_end_matches('x').parse::<f64>().unwrap();
    let sweep = ratio(&probe, "sweep-shaped speed-up")[0].trim_end_matches('x').parse::<f64>().unwrap();
    says(&format!("probes {one:.1}x (one fit), {grid:.1}x (8 weight decays) and {sweep:.1}x (a sweep's 320 fits)"));
}

#[test]
fn the_readme_quotes_the_judge_files() {
    // docs/judge/, written by experiments/judge.sh.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let compare = std::fs::read_to_string(repo().join("docs/judge/compare.md")).unwrap();
    for guard in ["simulated judge", "probe-on-coarse-images", "probe-on-image-pairs"] {
        let cell = |metric: &str| {
            let section = &compare[compare.find(&format!("## {metric}\n")).unwrap()..];
            cells(line(section, &format!("| {guard} |")))[1].to_string()
        };
        let row = format!("| {guard} | {} | {} | {} |", cell("f1"), cell("accuracy"), cell("auroc"));
        assert!(readme.lines().any(|l| l == row), "the README should have the row\n{row}");
    }
    let sweep = std::fs::read_to_string(repo().join("docs/judge/sweep.md")).unwrap();
    let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    for (strategy, words) in [("ratio-0.5", "AUROC at"), ("ratio-0.5-unpaired", "unpaired control at"), ("coarse", "coarse data alone at")] {
        let c = cells(line(&sweep, &format!("| simulated judge | 0.937 | {strategy} |")));
        let (lo, hi) = c[4].trim_matches(['[', ']']).split_once(", ").unwrap();
        let seeds = if c[5] == "10/10" { "all 10 seeds".to_string() } else { c[5].replace('/', " of ") + " seeds" };
        let said = format!("{words} {} ", c[3]);
        let rest = format!("{lo} to {hi}, {seeds})");
        assert!(flat.contains(&said) && flat.contains(&rest), "the README should say {said}... {rest}");
    }
}

/// `experiments/precision_onnx.sh` writes `docs/precision-onnx.md` as
/// committed, the int8 export is at least as accurate as onnxruntime's
/// `quantize_dynamic` (as the README states), and the README quotes the
/// table. It needs a Python with onnxruntime (`PAIRGUARD_PYTHON`); without
/// one it says so and passes, unless `PAIRGUARD_REQUIRE_ONNXRUNTIME=1`.
#[test]
fn the_onnx_precision_script_writes_the_committed_table() {
    let python = std::env::var("PAIRGUARD_PYTHON").unwrap_or_else(|_| "python3".into());
    let has = std::process::Command::new(&python).args(["-c", "import onnxruntime, onnx, numpy, PIL"]).output().is_ok_and(|o| o.status.success());
    if !has {
        assert!(std::env::var("PAIRGUARD_REQUIRE_ONNXRUNTIME").as_deref() != Ok("1"), "{python} lacks onnxruntime, onnx, numpy or Pillow");
        eprintln!("experiments/precision_onnx.sh not run: set PAIRGUARD_PYTHON to a Python with onnxruntime, onnx, numpy and Pillow");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let docs = run_script("precision_onnx.sh", dir.path());
    let made = std::fs::read_to_string(docs.join("precision-onnx.md")).unwrap();
    let committed = std::fs::read_to_string(repo().join("docs/precision-onnx.md")).unwrap();
    assert_eq!(made, committed, "docs/precision-onnx.md is not what the script writes now");
    let auroc = |graph: &str, column: usize| -> f64 { cells(line(&made, &format!("| {graph} |")))[column].parse().unwrap() };
    for column in [1, 3] {
        assert!(auroc("int8 export", column) >= auroc("`quantize_dynamic` of the f32 export", column), "column {column}:\n{made}");
    }
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(readme.contains(made.trim_end()), "the README should hold docs/precision-onnx.md's table:\n{made}");
}

/// `experiments/precision.sh` writes `docs/precision.md` as committed, the
/// guard's AUROC stays within 0.005 of f32 in bf16 and within 0.012 in int8
/// on the preset's draw and on average over the five draws (as the README
/// states), and the README quotes the table.
#[test]
fn the_precision_script_writes_the_committed_table() {
    let dir = tempfile::tempdir().unwrap();
    let docs = run_script("precision.sh", dir.path());
    let made = std::fs::read_to_string(docs.join("precision.md")).unwrap();
    assert_eq!(made, std::fs::read_to_string(repo().join("docs/precision.md")).unwrap(), "docs/precision.md is not what the script writes now");
    let auroc = |p: &str| -> f64 { cells(line(&made, &format!("| {p} |")))[1].parse().unwrap() };
    // "-0.0044 [-0.0079, -0.0021]": the mean difference before the range.
    let mean = |p: &str| -> f64 { cells(line(&made, &format!("| {p} |")))[3].split_whitespace().next().unwrap().parse().unwrap() };
    for (p, within) in [("bf16", 0.005), ("int8", 0.012)] {
        assert!((auroc(p) - auroc("f32")).abs() <= within, "{p}: AUROC {} against f32 {}", auroc(p), auroc("f32"));
        assert!(mean(p).abs() <= within, "{p}: mean difference to f32 {}", mean(p));
    }
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(readme.contains(made.trim_end()), "the README should hold docs/precision.md's table:\n{made}");
}
