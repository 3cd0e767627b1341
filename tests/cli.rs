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

/// Runs a command that must fail; returns its standard error.
fn fails(args: &[&str], cwd: &Path) -> String {
    let out = pairguard(args, cwd);
    assert!(!out.status.success(), "pairguard {args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

fn card(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The small CLIP encoder of the model crate's fixtures (config + weights).
fn fixture_encoder() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/clip/hf-quickgelu").canonicalize().unwrap()
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
    let stats: serde_json::Value = serde_json::from_str(&ok(&["data", "stats", "--json", "--split", "0.8,0.1,0.1", "bench/coarse.toml"], d)).unwrap();
    let test = stats["by_split"]["test"].as_u64().unwrap();
    assert!((35..=45).contains(&test), "{test} of 400 in test");

    ok(
        &[
            "train",
            "--train",
            "bench/coarse.toml",
            "--device",
            "cpu",
            "--out",
            "guard.safetensors",
            "--wd-grid",
            "0.0001,0.01",
            "--threshold",
            "fpr:0.1",
        ],
        d,
    );
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("guard.json")).unwrap()).unwrap();
    assert_eq!(card["encoder"]["model"], "synthetic");
    assert!(card["validation_metrics"]["auroc"].as_f64().unwrap() > 0.7);
    assert_eq!(card["threshold_rule"]["rule"], "target-fpr");

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
    std::fs::write(
        d.join("a/pairs.jsonl"),
        std::fs::read_to_string(d.join("a/pairs.jsonl")).unwrap().replacen("\"label\":\"safe\"", "\"label\":\"unsafe\"", 1),
    )
    .unwrap();
    let out = pairguard(&["data", "validate", "a/pairs.toml"], d);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pairs.jsonl: row") && text.contains("opposite labels"), "{text}");
}

#[test]
fn every_head_kind_trains_with_its_defaults_and_kinds_are_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--preset", "tiny", "--out", "b"], d);
    for (head, optimizer) in [("linear", "lbfgs"), ("mlp", "adamw")] {
        let out = format!("{head}.safetensors");
        ok(&["train", "--train", "b/coarse.toml", "--head", head, "--device", "cpu", "--out", &out], d);
        let c = card(&d.join(format!("{head}.json")));
        assert_eq!(c["head"]["kind"], head);
        assert_eq!(c["config"]["train"]["optimizer"]["kind"], optimizer, "{head}");
        assert!(c["validation_metrics"]["auroc"].as_f64().unwrap() > 0.7, "{head}: {}", c["validation_metrics"]);
    }
    ok(
        &["train", "--train", "b/coarse.toml", "--head", "mlp", "--hidden", "16", "--dropout", "0", "--device", "cpu", "--out", "small.safetensors"],
        d,
    );
    assert_eq!(card(&d.join("small.json"))["head"]["hidden"], 16);
    // Kinds are checked when parsed, with the known ones listed.
    for (args, needle) in [
        (vec!["train", "--train", "b/coarse.toml", "--head", "tree", "--out", "x.safetensors"], "linear, mlp"),
        (vec!["train", "--train", "b/coarse.toml", "--threshold", "f1", "--out", "x.safetensors"], "best-f1"),
        (vec!["train", "--train", "b/coarse.toml", "--device", "tpu", "--out", "x.safetensors"], "auto, cpu, wgpu"),
        (vec!["synth", "--preset", "huge", "--out", "y"], "default, tiny"),
        (vec!["train", "--train", "b/coarse.toml", "--hidden", "8", "--out", "x.safetensors"], "--head mlp"),
    ] {
        let e = fails(&args, d);
        assert!(e.contains(needle), "{args:?}: {e}");
    }
    // An options file with a field no optimiser has is refused by name.
    std::fs::write(d.join("g.toml"), "[train]\noptimizer = { kind = \"lbfgs\", learning_rate = 0.1 }\n").unwrap();
    let e = fails(&["train", "--train", "b/coarse.toml", "--config", "g.toml", "--out", "x.safetensors"], d);
    assert!(e.contains("learning_rate"), "{e}");
}

#[test]
fn validation_that_overlaps_training_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--preset", "tiny", "--out", "b"], d);
    let out = pairguard(&["train", "--train", "b/coarse.toml", "--validation", "b/coarse.toml", "--device", "cpu", "--out", "g.safetensors"], d);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning:") && err.contains("also training samples"), "{err}");
    let c = card(&d.join("g.json"));
    assert!(c["temperature"].as_f64().unwrap() >= 0.2, "temperature {}", c["temperature"]);
}

/// The whole flow from a fresh folder, as a user runs it: images ->
/// validate -> embed -> train -> eval -> predict -> export, with the encoder
/// named by relative and absolute paths, and a descriptor that names its store.
#[test]
fn descriptor_embed_train_eval_predict_export_from_a_fresh_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--preset", "tiny", "--images", "40", "--out", "bench"], d);
    std::fs::create_dir(d.join("enc")).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture_encoder().join(f), d.join("enc").join(f)).unwrap();
    }
    ok(&["data", "validate", "--decode", "bench/images.toml"], d);
    // No `embeddings` line: embed writes beside the descriptor, train finds it.
    let e = fails(&["train", "--train", "bench/images.toml", "--out", "g.safetensors"], d);
    assert!(e.contains("pairguard embed bench/images.toml"), "the error names the command that fixes it: {e}");
    let e = fails(&["embed", "bench/images.toml", "--model", "enc/modle.safetensors", "--device", "cpu"], d);
    assert!(e.contains("enc/modle.safetensors") && e.contains("not a Hub repo id"), "a mistyped path is not fetched from the Hub: {e}");
    let store = ok(&["embed", "bench/images.toml", "--model", "enc/model.safetensors", "--device", "cpu"], d);
    assert!(store.trim().ends_with("bench/synthetic-images.embeddings.safetensors"), "{store}");
    ok(&["train", "--train", "bench/images.toml", "--validation-fraction", "0.3", "--device", "cpu", "--out", "g.safetensors"], d);
    // The same weights named by an absolute path give the same encoder.
    let abs = d.join("enc/model.safetensors");
    std::fs::write(
        d.join("bench/again.toml"),
        std::fs::read_to_string(d.join("bench/images.toml")).unwrap().replace("name = \"synthetic-images\"", "name = \"again\""),
    )
    .unwrap();
    ok(&["embed", "bench/again.toml", "--model", abs.to_str().unwrap(), "--device", "cpu"], d);
    let table = ok(&["eval", "--model", "g.safetensors", "--data", "bench/again.toml", "--device", "cpu"], d);
    assert!(table.contains("overall") && table.contains("pairs: 20"), "{table}");
    let lines = ok(&["predict", "--model", "g.safetensors", "--data", "bench/again.toml", "--device", "cpu"], d);
    assert_eq!(lines.lines().count(), 40);
    // A descriptor that names its store: embed creates it, train reads it.
    let named = std::fs::read_to_string(d.join("bench/images.toml"))
        .unwrap()
        .replace("name = \"synthetic-images\"", "name = \"named\"\nembeddings = \"named-store.safetensors\"");
    std::fs::write(d.join("bench/named.toml"), named).unwrap();
    let e = fails(&["train", "--train", "bench/named.toml", "--out", "n.safetensors"], d);
    assert!(e.contains("does not exist yet") && e.contains("pairguard embed bench/named.toml"), "{e}");
    let store = ok(&["embed", "bench/named.toml", "--model", "enc", "--device", "cpu"], d);
    assert!(store.trim().ends_with("bench/named-store.safetensors"), "{store}");
    ok(&["train", "--train", "bench/named.toml", "--validation-fraction", "0.3", "--device", "cpu", "--out", "n.safetensors"], d);
    // Exports, run from another folder with the encoder given explicitly.
    std::fs::create_dir(d.join("elsewhere")).unwrap();
    let e2 = d.join("elsewhere");
    ok(&["export-onnx", "--model", "../g.safetensors", "--out", "head.onnx"], &e2);
    ok(&["export-onnx", "--model", "../g.safetensors", "--pipeline", "--encoder", "../enc", "--out", "pipe.onnx"], &e2);
    assert!(std::fs::metadata(e2.join("pipe.onnx")).unwrap().len() > std::fs::metadata(e2.join("head.onnx")).unwrap().len());
    // A truncated JPEG is refused by validate and reported by embed, by id.
    let photo = image::RgbImage::from_fn(320, 240, |x, y| image::Rgb([((x * 7) ^ (y * 3)) as u8, (x * y) as u8, 90]));
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(photo).write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
    std::fs::write(d.join("bench/images/cut.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    std::fs::write(d.join("bench/cut.jsonl"), "{\"id\": \"cut\", \"image\": \"images/cut.jpg\", \"label\": \"safe\"}\n").unwrap();
    std::fs::write(d.join("bench/cut.toml"), "name = \"cut\"\nformat = \"jsonl\"\nmanifest = [\"cut.jsonl\"]\nroot = \".\"\n").unwrap();
    let out = pairguard(&["data", "validate", "--decode", "bench/cut.toml"], d);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"cut\"") && text.contains("truncated"), "{text}");
    let err = String::from_utf8(pairguard(&["embed", "bench/cut.toml", "--model", "enc", "--device", "cpu"], d).stderr).unwrap();
    assert!(err.contains("not embedded: cut") && err.contains("truncated"), "{err}");
}

/// `robustness` as a user runs it: relative paths, then absolute ones from
/// another folder, every option, and the refusals.
#[test]
fn robustness_attacks_a_trained_guard_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--preset", "tiny", "--images", "24", "--out", "bench"], d);
    for (name, src) in [("enc", "hf-quickgelu"), ("gelu", "hf-gelu")] {
        std::fs::create_dir(d.join(name)).unwrap();
        for f in ["config.json", "model.safetensors"] {
            std::fs::copy(fixture_encoder().join("..").join(src).join(f), d.join(name).join(f)).unwrap();
        }
    }
    ok(&["embed", "bench/images.toml", "--model", "enc", "--device", "cpu"], d);
    ok(&["train", "--train", "bench/images.toml", "--validation-fraction", "0.3", "--device", "cpu", "--out", "g.safetensors"], d);

    let args = [
        "robustness",
        "--model",
        "g.safetensors",
        "--data",
        "bench/images.toml",
        "--out",
        "rob",
        "--samples",
        "8",
        "--eps",
        "0.05,0.2",
        "--attacks",
        "fgsm,pgd,deepfool",
        "--corruptions",
        "jpeg:30,blur:2",
        "--batch",
        "4",
        "--save-adversarial",
        "--device",
        "cpu",
    ];
    let printed = ok(&args, d);
    assert_eq!(printed.trim(), "rob/robustness.json");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("rob/robustness.json")).unwrap()).unwrap();
    assert_eq!(report["selection"]["selected"].as_array().unwrap().len(), 8);
    assert_eq!(report["config"]["attacks"][1]["steps"], 100, "pgd runs UnsafeBench's 100 steps");
    let csv = std::fs::read_to_string(d.join("rob/robustness.csv")).unwrap();
    assert!(csv.starts_with("attack,kind,eps,eps_unit,slice,n,robust_accuracy,ci_low,ci_high,success_rate,norm,mean_norm,max_norm"), "{csv}");
    for needle in [
        "fgsm,attack,0.05,normalized,all,8,",
        "pgd,attack,0.2,normalized,source:ai-generated,8,",
        "jpeg,corruption,30.0,,all,8,",
        "blur,corruption,2.0,",
    ] {
        assert!(csv.contains(needle), "{needle} in\n{csv}");
    }
    for f in ["robustness.md", "robustness.png", "robustness.svg"] {
        assert!(d.join("rob").join(f).is_file(), "{f}");
    }
    assert_eq!(std::fs::read_dir(d.join("rob/adversarial/pgd/eps-0.2")).unwrap().count(), 8);
    // Run again: everything is reused, and the files are the same.
    let before = std::fs::read(d.join("rob/robustness.csv")).unwrap();
    ok(&args, d);
    assert_eq!(std::fs::read(d.join("rob/robustness.csv")).unwrap(), before);

    // From another folder, with absolute paths, pixel units and a source filter.
    std::fs::create_dir(d.join("elsewhere")).unwrap();
    let (model, data, enc) = (d.join("g.safetensors"), d.join("bench/images.toml"), d.join("enc"));
    let printed = ok(
        &[
            "robustness",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--encoder",
            enc.to_str().unwrap(),
            "--out",
            "px",
            "--samples",
            "4",
            "--eps",
            "1,4",
            "--eps-unit",
            "pixel",
            "--attacks",
            "gn,fgsm",
            "--corruptions",
            "none",
            "--source",
            "ai-generated",
            "--seed",
            "3",
            "--device",
            "cpu",
        ],
        &d.join("elsewhere"),
    );
    assert_eq!(printed.trim(), "px/robustness.json");
    let csv = std::fs::read_to_string(d.join("elsewhere/px/robustness.csv")).unwrap();
    assert!(csv.contains("fgsm,attack,4.0,pixel,all,4,") && !csv.contains("corruption"), "{csv}");
    let fgsm4 = csv.lines().find(|l| l.starts_with("fgsm,attack,4.0,pixel,all,")).unwrap();
    let max_norm: f64 = fgsm4.rsplit(',').next().unwrap().parse().unwrap();
    assert!(max_norm <= 4.0 + 1e-3, "FGSM at 4 levels moves pixels at most 4 levels: {fgsm4}");

    // Refusals name the problem, before any output is written.
    let base = ["robustness", "--model", "g.safetensors", "--data", "bench/images.toml", "--out", "bad", "--device", "cpu"];
    for (extra, needle) in [
        (vec!["--eps", "0"], "--eps 0"),
        (vec!["--eps", "NaN"], "--eps NaN"),
        (vec!["--eps", "-1"], "--eps -1"),
        (vec!["--attacks", "cw"], "unknown attack \"cw\""),
        (vec!["--samples", "0"], "--samples 0"),
        (vec!["--eps-unit", "bits"], "normalized, pixel"),
        (vec!["--corruptions", "jpeg:0"], "out of range"),
        (vec!["--corruptions", "fog:2"], "unknown corruption"),
        (vec!["--source", "painted"], "real, ai-generated or all"),
        (vec!["--source", "real"], "no images of source real"),
        (vec!["--encoder", "gelu"], "encoder mismatch"),
        (vec!["--encoder", "missing-folder/model.safetensors"], "missing-folder/model.safetensors"),
    ] {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        let e = fails(&args, d);
        assert!(e.contains(needle), "{extra:?}: {e}");
        if !needle.contains("source real") {
            assert!(!d.join("bad").exists(), "{extra:?} wrote output");
        }
    }
    let e = fails(&["robustness", "--model", "g.safetensors", "--data", "bench/coarse.toml", "--out", "bad2", "--device", "cpu"], d);
    assert!(e.contains("has no images"), "{e}");
    // A guard trained on stored embeddings of an encoder this machine does not have.
    ok(&["train", "--train", "bench/coarse.toml", "--device", "cpu", "--out", "emb.safetensors"], d);
    let e = fails(&["robustness", "--model", "emb.safetensors", "--data", "bench/images.toml", "--out", "bad3", "--device", "cpu"], d);
    assert!(e.contains("loading the guard's encoder \"synthetic\"") && e.contains("--encoder"), "{e}");
}
