//! Helpers the end-to-end tests of the `pairguard` binary share.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `pairguard` in `cwd` with `env` added, and without the variables a
/// scheduler sets, so that no test is sharded by the environment it runs in.
pub fn pairguard_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pairguard"));
    for var in ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "JOB_COMPLETION_INDEX"] {
        c.env_remove(var);
    }
    c.args(args).current_dir(cwd).envs(env.iter().copied()).output().expect("runs")
}

pub fn pairguard(args: &[&str], cwd: &Path) -> Output {
    pairguard_env(args, cwd, &[])
}

/// Runs a command that must succeed; returns its standard output.
pub fn ok_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> String {
    let out = pairguard_env(args, cwd, env);
    assert!(out.status.success(), "pairguard {args:?} ({env:?}) failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

pub fn ok(args: &[&str], cwd: &Path) -> String {
    ok_env(args, cwd, &[])
}

/// Runs a command that must succeed; returns what it said on standard
/// output and then on standard error.
pub fn ok_said(args: &[&str], cwd: &Path) -> String {
    let out = pairguard(args, cwd);
    assert!(out.status.success(), "pairguard {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap()
}

/// Runs a command that must fail; returns its standard error.
pub fn fails(args: &[&str], cwd: &Path) -> String {
    let out = pairguard(args, cwd);
    assert!(!out.status.success(), "pairguard {args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

/// A JSON file (a model card, metrics).
pub fn card(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The small CLIP encoder of the CLIP crate's fixtures (config + weights).
pub fn fixture_encoder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clip/tests/fixtures/clip/hf-quickgelu").canonicalize().unwrap()
}

/// A copy of the fixture encoder in `dir/enc`, as a user's local checkpoint.
pub fn copy_fixture_encoder(dir: &Path) {
    std::fs::create_dir(dir.join("enc")).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture_encoder().join(f), dir.join("enc").join(f)).unwrap();
    }
}

/// A small synthetic sweep: 2 strategies, budgets 16 and 32, 3 seeds.
pub const SMALL_SWEEP: &str = r#"
name = "small"
[data.synthetic]
dim = 16
categories = 3
clusters = 4
coarse = 200
pairs = 60
test = 100
test_pairs = 30
seed = 2

[train]
optimizer = { kind = "lbfgs", iterations = 20 }

[sweep]
budgets = [16, 32]
strategies = [{ kind = "coarse-only" }, { kind = "ratio", pair_fraction = 0.5 }]
seeds = [0, 1, 2]

[report]
metrics = ["auroc"]
baseline = "coarse"
"#;

/// Every file under `dir` (relative path, bytes), leaving out the folders named.
pub fn tree(dir: &Path, skip: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if skip.contains(&rel.as_str()) {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    files.sort();
    files
}
