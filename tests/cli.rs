//! End-to-end tests of the `pairguard` binary on the embedded benchmark.

use std::path::Path;
use std::process::{Command, Output};

fn pairguard(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pairguard")).args(args).current_dir(cwd).output().expect("runs")
}

fn ok(args: &[&str], cwd: &Path) -> String {
    let out = pairguard(args, cwd);
    assert!(out.status.success(), "pairguard {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn synth_validate_stats_train_eval_predict() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let listed = ok(&["synth", "--preset", "tiny", "--images", "6", "--out", "bench"], d);
    assert_eq!(listed.lines().count(), 6);
    ok(&["data", "validate", "bench/pairs.toml"], d);
    ok(&["data", "validate", "--decode", "bench/images.toml"], d);
    let stats: serde_json::Value = serde_json::from_str(&ok(&["data", "stats", "--json", "bench/pairs.toml"], d)).unwrap();
    assert_eq!(stats["pairs"], 100);
    assert_eq!(stats["by_label"]["unsafe"], 100);
    assert_eq!(stats["by_label"]["safe"], 100);
    let stats: serde_json::Value =
        serde_json::from_str(&ok(&["data", "stats", "--json", "--split", "0.8,0.1,0.1", "bench/coarse.toml"], d)).unwrap();
    let test = stats["by_split"]["test"].as_u64().unwrap();
    assert!((35..=45).contains(&test), "{test} of 400 in test");

    ok(&["train", "--train", "bench/coarse.toml", "--device", "cpu", "--out", "guard.safetensors", "--wd-grid", "0.0001,0.01"], d);
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("guard.json")).unwrap()).unwrap();
    assert_eq!(card["encoder"]["model"], "synthetic");
    assert!(card["validation_metrics"]["auroc"].as_f64().unwrap() > 0.7);

    let table = ok(&["eval", "--model", "guard.safetensors", "--data", "bench/test-pairs.toml", "--json", "m.json", "--device", "cpu"], d);
    assert!(table.contains("pairs: 50; pair accuracy"), "{table}");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("m.json")).unwrap()).unwrap();
    assert!(m["pairs"]["ordering_accuracy"].as_f64().unwrap() > 0.5);

    let lines = ok(&["predict", "--model", "guard.safetensors", "--data", "bench/test-shifted.toml", "--device", "cpu"], d);
    assert_eq!(lines.lines().count(), 200);
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert!(first["score"].as_f64().unwrap() >= 0.0 && ["safe", "unsafe"].contains(&first["verdict"].as_str().unwrap()));
}

#[test]
fn errors_name_the_problem_and_exit_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--preset", "tiny", "--out", "a"], d);
    let mut other = ok(&["synth", "--preset", "tiny", "--seed", "5", "--out", "b"], d);
    other.clear();
    ok(&["train", "--train", "a/coarse.toml", "--device", "cpu", "--out", "g.safetensors"], d);
    // A model refuses embeddings from another encoder.
    let out = pairguard(&["eval", "--model", "g.safetensors", "--data", "b/test-coarse.toml", "--device", "cpu"], d);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("encoder mismatch"));
    // Validation failures list the row and exit non-zero.
    std::fs::write(d.join("a/pairs.jsonl"), std::fs::read_to_string(d.join("a/pairs.jsonl")).unwrap().replacen("\"label\":\"safe\"", "\"label\":\"unsafe\"", 1)).unwrap();
    let out = pairguard(&["data", "validate", "a/pairs.toml"], d);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pairs.jsonl: row") && text.contains("opposite labels"), "{text}");
}
