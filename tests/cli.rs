//! End-to-end tests of the `pairguard` binary on the embedded benchmark.

mod common;

use std::process::Command;

use common::{SMALL_SWEEP, card, copy_fixture_encoder, fails, fixture_encoder, ok, ok_env, ok_said, pairguard, pairguard_env, tree};

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
    copy_fixture_encoder(d);
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
    ok(&["export-onnx", "--model", "../g.safetensors", "--pipeline", "--encoder", "../enc", "--precision", "f16", "--out", "half.onnx"], &e2);
    assert!(std::fs::metadata(e2.join("half.onnx")).unwrap().len() < std::fs::metadata(e2.join("pipe.onnx")).unwrap().len() * 6 / 10);
    let e = fails(&["export-onnx", "--model", "../g.safetensors", "--precision", "f16", "--out", "x.onnx"], &e2);
    assert!(e.contains("--pipeline"), "{e}");
    let e =
        fails(&["export-onnx", "--model", "../g.safetensors", "--pipeline", "--encoder", "../enc", "--precision", "bf16", "--out", "x.onnx"], &e2);
    assert!(e.contains("f32, f16 or int8"), "{e}");
    assert!(!e2.join("x.onnx").exists(), "nothing written on a refusal");
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

/// embed, sweep and robustness as shards (index from --shard, from a Slurm
/// array's variables and from an Indexed Job's), merged or collected to
/// exactly the files of a one-machine run; and the refusals.
#[test]
fn shards_of_embed_sweep_and_robustness_merge_to_one_machine_results() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--preset", "tiny", "--images", "24", "--out", "bench"], d);
    copy_fixture_encoder(d);
    let embed = ["embed", "bench/images.toml", "--model", "enc", "--chunk", "8", "--batch", "4", "--device", "cpu"];
    let with = |extra: &[&'static str]| -> Vec<&str> { embed.iter().copied().chain(extra.iter().copied()).collect() };
    ok(&with(&["--out", "whole.safetensors"]), d);
    // 24 images in 3 chunks, one per shard, each told its index another way.
    let printed = ok(&with(&["--out", "s.safetensors", "--shard", "2/3"]), d);
    assert!(printed.trim().ends_with("s.safetensors.parts/shards/2-of-3.json"), "{printed}");
    let e = fails(&["merge", "s.safetensors"], d);
    assert!(e.contains("shards not finished: 0/3, 1/3"), "{e}");
    ok_env(&with(&["--out", "s.safetensors"]), d, &[("SLURM_ARRAY_TASK_ID", "0"), ("SLURM_ARRAY_TASK_COUNT", "3"), ("SLURM_ARRAY_TASK_MIN", "0")]);
    ok_env(&with(&["--out", "s.safetensors", "--shards", "3"]), d, &[("JOB_COMPLETION_INDEX", "1")]);
    assert_eq!(ok(&["merge", "s.safetensors"], d).trim(), "s.safetensors");
    for f in ["whole.safetensors", "whole.json", "whole.failures.json"] {
        let sharded = f.replace("whole", "s");
        assert_eq!(std::fs::read(d.join(f)).unwrap(), std::fs::read(d.join(&sharded)).unwrap(), "{f} vs {sharded}");
    }
    for (extra, needle) in [
        (vec!["--shard", "3/3"], "out of range for 3 shards"),
        (vec!["--shard", "one/3"], "expected I/N"),
        (vec!["--shards", "3"], "neither is set; give --shard I/3 instead"),
        (vec!["--shard", "0/3", "--shards", "3"], "cannot be used with"),
    ] {
        let mut args = with(&["--out", "bad.safetensors"]);
        args.extend(extra.iter().copied());
        let e = fails(&args, d);
        assert!(e.contains(needle), "{extra:?}: {e}");
    }
    let e =
        String::from_utf8(pairguard_env(&with(&["--out", "bad.safetensors", "--shards", "2"]), d, &[("JOB_COMPLETION_INDEX", "2")]).stderr).unwrap();
    assert!(e.contains("JOB_COMPLETION_INDEX: shard index 2 is out of range"), "{e}");
    assert!(fails(&["merge", "nowhere.safetensors"], d).contains("no shard of this store has started"));

    // A sweep in two folders with relative paths: whole, and as 2 shards.
    for f in ["one", "two"] {
        std::fs::create_dir(d.join(f)).unwrap();
        std::fs::write(d.join(f).join("exp.toml"), SMALL_SWEEP).unwrap();
    }
    let sweep = ["sweep", "exp.toml", "--out", "res", "--device", "cpu"];
    ok(&sweep, &d.join("one"));
    let e = fails(&[&sweep[..], &["--collect"]].concat(), &d.join("two"));
    assert!(e.contains("no shard has finished yet"), "{e}");
    for i in ["1", "0"] {
        ok_env(&sweep, &d.join("two"), &[("SLURM_ARRAY_TASK_ID", i), ("SLURM_ARRAY_TASK_COUNT", "2")]);
    }
    assert!(!d.join("two/res/report.md").exists());
    assert!(fails(&[&sweep[..], &["--collect", "--shard", "0/2"]].concat(), &d.join("two")).contains("cannot be used with"));
    assert_eq!(ok(&[&sweep[..], &["--collect"]].concat(), &d.join("two")).trim(), "res/report.md");
    let (one, two) = (tree(&d.join("one/res"), &[]), tree(&d.join("two/res"), &["shards"]));
    assert_eq!(one.iter().map(|f| &f.0).collect::<Vec<_>>(), two.iter().map(|f| &f.0).collect::<Vec<_>>());
    for (a, b) in one.iter().zip(&two) {
        assert!(a.1 == b.1, "{} differs between the one-machine and the sharded sweep", a.0);
    }

    // Robustness: up to 8 images in batches of 3, whole and as 2 shards (one
    // of them a rerun of one task of a Slurm array, which keeps --shards).
    ok(&embed, d);
    ok(&["train", "--train", "bench/images.toml", "--validation-fraction", "0.3", "--device", "cpu", "--out", "g.safetensors"], d);
    let rob = |out: &'static str| -> Vec<&str> {
        vec![
            "robustness",
            "--model",
            "g.safetensors",
            "--data",
            "bench/images.toml",
            "--samples",
            "8",
            "--eps",
            "0.05",
            "--attacks",
            "fgsm,gn",
            "--corruptions",
            "jpeg:30",
            "--batch",
            "3",
            "--device",
            "cpu",
            "--out",
            out,
        ]
    };
    ok(&rob("rob-whole"), d);
    let e = fails(&[&rob("rob-sharded")[..], &["--collect"]].concat(), d);
    assert!(e.contains("no shard has drawn the images yet"), "{e}");
    let printed = ok(&[&rob("rob-sharded")[..], &["--shard", "0/2"]].concat(), d);
    assert_eq!(printed.trim(), "rob-sharded/shards/0-of-2.json");
    let e = fails(&[&rob("rob-sharded")[..], &["--collect"]].concat(), d);
    assert!(e.contains("shards not finished: 1/2"), "{e}");
    let rerun = [("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_COUNT", "1"), ("SLURM_ARRAY_TASK_MIN", "1")];
    ok_env(&[&rob("rob-sharded")[..], &["--shards", "2"]].concat(), d, &rerun);
    assert_eq!(ok(&[&rob("rob-sharded")[..], &["--collect"]].concat(), d).trim(), "rob-sharded/robustness.json");
    assert!(tree(&d.join("rob-whole"), &[]) == tree(&d.join("rob-sharded"), &["shards"]), "collected shards differ from the one-machine run");
}

/// Launch files: the sbatch script is valid bash naming the array, limits
/// and merge; the Kubernetes manifests parse back with the fields asked for.
#[test]
fn cluster_writes_launch_files_for_slurm_and_kubernetes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--preset", "tiny", "--images", "4", "--out", "bench"], d);
    let printed = ok(
        &[
            "cluster",
            "slurm",
            "--shards",
            "8",
            "--concurrency",
            "3",
            "--gpus",
            "2",
            "--cpus",
            "6",
            "--mem",
            "32G",
            "--time",
            "1-00:00:00",
            "--partition",
            "gpu",
            "--account",
            "lab",
            "--logs",
            "slurm-logs",
            "--out",
            "jobs/embed.sbatch",
            "--",
            "embed",
            "bench/images.toml",
            "--model",
            "openai/clip-vit-base-patch32",
        ],
        d,
    );
    assert_eq!(printed.trim(), "jobs/embed.sbatch");
    let script = std::fs::read_to_string(d.join("jobs/embed.sbatch")).unwrap();
    let root = d.canonicalize().unwrap();
    for line in [
        "#SBATCH --job-name=pairguard-embed".to_string(),
        "#SBATCH --array=0-7%3".into(),
        format!("#SBATCH --chdir={}", root.display()),
        format!("#SBATCH --output={}/slurm-logs/%x-%A_%a.out", root.display()),
        "#SBATCH --time=1-00:00:00".into(),
        "#SBATCH --partition=gpu".into(),
        "#SBATCH --account=lab".into(),
        "#SBATCH --gres=gpu:2".into(),
        "#SBATCH --cpus-per-task=6".into(),
        "#SBATCH --mem=32G".into(),
    ] {
        assert!(script.lines().any(|l| l == line), "{line} in\n{script}");
    }
    let last = script.lines().last().unwrap();
    assert!(last.starts_with("exec /") && last.ends_with("embed bench/images.toml --model openai/clip-vit-base-patch32 --shards 8"), "{last}");
    assert!(
        script.contains("--dependency=\"afterok:${array%%;*}\"") && script.contains("merge bench/synthetic-images.embeddings.safetensors'"),
        "{script}"
    );
    let syntax = Command::new("bash").arg("-n").arg(d.join("jobs/embed.sbatch")).output().unwrap();
    assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));
    // Without a GPU or a concurrency limit those lines are left out.
    ok(&["cluster", "slurm", "--shards", "2", "--gpus", "0", "--out", "s.sbatch", "--", "sweep", "exp.toml", "--out", "r"], d);
    let script = std::fs::read_to_string(d.join("s.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-1\n") && !script.contains("--gres"), "{script}");
    assert!(script.contains("--wrap='exec ") && script.contains(" sweep exp.toml --out r --collect'"), "{script}");

    let printed = ok(
        &[
            "cluster",
            "k8s",
            "--shards",
            "6",
            "--parallelism",
            "2",
            "--retries",
            "4",
            "--gpus",
            "1",
            "--cpu",
            "8",
            "--memory",
            "24Gi",
            "--image",
            "registry.example/pairguard:0.1",
            "--claim",
            "guards",
            "--mount",
            "/data",
            "--namespace",
            "safety",
            "--name",
            "attack-vitl",
            "--out",
            "k8s/job.yaml",
            "--",
            "robustness",
            "--model",
            "g.safetensors",
            "--data",
            "ub.toml",
            "--out",
            "rob dir",
        ],
        d,
    );
    assert_eq!(printed.lines().collect::<Vec<_>>(), ["k8s/job.yaml", "k8s/job-merge.yaml"]);
    let parse = |f: &str| -> serde_json::Value { serde_saphyr::from_str(&std::fs::read_to_string(d.join(f)).unwrap()).unwrap() };
    let job = parse("k8s/job.yaml");
    assert_eq!((job["apiVersion"].as_str(), job["kind"].as_str()), (Some("batch/v1"), Some("Job")));
    assert_eq!(job["metadata"]["name"], "attack-vitl");
    assert_eq!(job["metadata"]["namespace"], "safety");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!((spec["completions"].as_u64(), spec["parallelism"].as_u64(), spec["backoffLimitPerIndex"].as_u64()), (Some(6), Some(2), Some(4)));
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never", "per-index retries need it");
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "registry.example/pairguard:0.1");
    assert_eq!(c["workingDir"], "/data");
    let command: Vec<&str> = c["command"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(command, ["pairguard", "robustness", "--model", "g.safetensors", "--data", "ub.toml", "--out", "rob dir", "--shards", "6"]);
    assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"].as_u64(), Some(1));
    assert_eq!(c["resources"]["limits"]["memory"], "24Gi");
    assert_eq!(c["resources"]["requests"]["cpu"], "8");
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/data");
    assert_eq!(pod["volumes"][0]["persistentVolumeClaim"]["claimName"], "guards");
    assert_eq!(c["volumeMounts"][0]["name"], pod["volumes"][0]["name"]);
    let merge = parse("k8s/job-merge.yaml");
    assert_eq!(merge["metadata"]["name"], "attack-vitl-merge");
    let mc = &merge["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(mc["command"].as_array().unwrap().last().unwrap(), "--collect");
    assert!(mc["resources"]["limits"].get("nvidia.com/gpu").is_none(), "the merge needs no GPU");

    // Refusals, before anything is written.
    for (args, needle) in [
        (vec!["slurm", "--shards", "2", "--out", "x", "--", "train", "--train", "a"], "only embed, robustness and sweep run as shards"),
        (vec!["slurm", "--shards", "2", "--out", "x", "--", "embed", "bench/images.toml", "--shard", "0/2"], "leave --shard"),
        (vec!["slurm", "--shards", "2", "--out", "x", "--", "sweep", "e.toml", "--collect"], "leave --shard"),
        (vec!["slurm", "--shards", "2", "--out", "x", "--", "embed", "--batch", "2"], "the command after `--`"),
        (vec!["slurm", "--shards", "2", "--out", "x", "--", "embed", "missing.toml"], "missing.toml"),
        (vec!["slurm", "--shards", "0", "--out", "x", "--", "embed", "bench/images.toml"], "--shards must be at least 1"),
        (vec!["slurm", "--shards", "2", "--concurrency", "0", "--out", "x", "--", "embed", "bench/images.toml"], "--concurrency"),
        (
            vec!["k8s", "--shards", "2", "--image", "i", "--claim", "c", "--name", "Big_Name", "--out", "x", "--", "embed", "bench/images.toml"],
            "lowercase",
        ),
        (vec!["k8s", "--shards", "2", "--claim", "c", "--out", "x", "--", "embed", "bench/images.toml"], "--image"),
    ] {
        let args: Vec<&str> = std::iter::once("cluster").chain(args.iter().copied()).collect();
        let e = fails(&args, d);
        assert!(e.contains(needle), "{args:?}: {e}");
        assert!(!d.join("x").exists(), "{args:?} wrote a file");
    }
}

/// `--precision`: stores record it, guards and stores of different
/// precision are refused together, and the bf16 path is refused where
/// gradients are needed.
#[test]
fn reduced_precision_is_recorded_and_never_mixed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--preset", "tiny", "--images", "40", "--out", "bench"], d);
    let enc = fixture_encoder();
    let enc = enc.to_str().unwrap();
    let e = fails(&["embed", "bench/images.toml", "--model", enc, "--precision", "fp8"], d);
    assert!(e.contains("expected one of f32, bf16, f16, int8"), "{e}");
    // The same images in f32 (the descriptor's store) and, through a copy of
    // the descriptor naming its own store, in bf16, f16 and int8.
    ok(&["embed", "bench/images.toml", "--model", enc, "--device", "cpu"], d);
    let text = std::fs::read_to_string(d.join("bench/images.toml")).unwrap();
    for p in ["bf16", "f16", "int8"] {
        let named = text.replacen("name = \"synthetic-images\"", &format!("name = \"{p}\"\nembeddings = \"{p}.safetensors\""), 1);
        std::fs::write(d.join(format!("bench/{p}.toml")), named).unwrap();
        let store = ok(&["embed", &format!("bench/{p}.toml"), "--model", enc, "--device", "cpu", "--precision", p], d);
        assert!(store.trim().ends_with(&format!("bench/{p}.safetensors")), "{store}");
        assert_eq!(card(&d.join(format!("bench/{p}.json")))["encoder"]["precision"], p);
    }
    assert_eq!(card(&d.join("bench/synthetic-images.embeddings.json"))["encoder"]["precision"], "f32");
    ok(&["train", "--train", "bench/images.toml", "--validation-fraction", "0.3", "--device", "cpu", "--out", "g.safetensors"], d);
    ok(&["train", "--train", "bench/bf16.toml", "--validation-fraction", "0.3", "--device", "cpu", "--out", "b.safetensors"], d);
    assert_eq!(card(&d.join("b.json"))["encoder"]["precision"], "bf16");
    let e = fails(&["eval", "--model", "g.safetensors", "--data", "bench/bf16.toml", "--device", "cpu"], d);
    assert!(e.contains("precision f32") && e.contains("precision bf16"), "{e}");
    let e = fails(&["train", "--train", "bench/images.toml", "--validation", "bench/f16.toml", "--device", "cpu", "--out", "x.safetensors"], d);
    assert!(e.contains("precision f16"), "{e}");
    let lines = ok(&["predict", "--model", "b.safetensors", "--data", "bench/bf16.toml", "--device", "cpu"], d);
    assert_eq!(lines.lines().count(), 40);
    // Attacks need gradients: a bf16 guard's encoder is loaded in bf16 and refused.
    let e = fails(&["robustness", "--model", "b.safetensors", "--data", "bench/bf16.toml", "--out", "rob", "--samples", "4", "--device", "cpu"], d);
    assert!(e.contains("gradients") && e.contains("bf16"), "{e}");
    // An int8 guard: trained, used, refused beside f32 data, and exported
    // whole in int8 from the encoder its card names.
    ok(&["train", "--train", "bench/int8.toml", "--validation-fraction", "0.3", "--device", "cpu", "--out", "i.safetensors"], d);
    assert_eq!(card(&d.join("i.json"))["encoder"]["precision"], "int8");
    let e = fails(&["eval", "--model", "i.safetensors", "--data", "bench/images.toml", "--device", "cpu"], d);
    assert!(e.contains("precision int8") && e.contains("precision f32"), "{e}");
    let lines = ok(&["predict", "--model", "i.safetensors", "--data", "bench/int8.toml", "--device", "cpu"], d);
    assert_eq!(lines.lines().count(), 40);
    let e = fails(&["embed", "bench/int8.toml", "--model", enc, "--device", "wgpu", "--precision", "int8"], d);
    assert!(e.contains("int8 runs on the CPU backend") || e.contains("no wgpu adapter"), "{e}");
    ok(&["export-onnx", "--model", "i.safetensors", "--pipeline", "--encoder", enc, "--precision", "int8", "--out", "i.onnx"], d);
    ok(&["export-onnx", "--model", "i.safetensors", "--pipeline", "--encoder", enc, "--out", "i32.onnx"], d);
    let (int8, f32) = (std::fs::metadata(d.join("i.onnx")).unwrap().len(), std::fs::metadata(d.join("i32.onnx")).unwrap().len());
    assert!(int8 * 2 < f32, "int8 weights take a quarter of the f32 ones: {int8} vs {f32} bytes");
}

/// The checkpoint is `--encoder` (`--model` still works on `embed`), a
/// sharded embed ends with `embed --collect` as sweeps and robustness runs
/// do, and a guard config that gives a prompt head another normalisation
/// than L2 is refused rather than changed.
#[test]
fn embed_takes_encoder_and_collects_its_shards_and_prompt_heads_keep_their_normalisation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--preset", "tiny", "--images", "8", "--out", "bench"], d);
    let enc = fixture_encoder();
    let enc = enc.to_str().unwrap();
    let embed = |extra: &[&str]| -> String {
        let args: Vec<&str> =
            ["embed", "bench/images.toml", "--device", "cpu", "--batch", "4", "--chunk", "4"].iter().copied().chain(extra.iter().copied()).collect();
        ok(&args, d)
    };
    embed(&["--encoder", enc, "--out", "whole.safetensors"]);
    embed(&["--model", enc, "--out", "s.safetensors", "--shard", "1/2"]);
    let e = fails(&["embed", "bench/images.toml", "--out", "s.safetensors", "--collect"], d);
    assert!(e.contains("shards not finished: 0/2"), "{e}");
    embed(&["--encoder", enc, "--out", "s.safetensors", "--shard", "0/2"]);
    // Collecting loads no encoder: the store's parts say what they are.
    assert_eq!(embed(&["--out", "s.safetensors", "--collect"]).trim(), "s.safetensors");
    for f in ["whole.safetensors", "whole.json", "whole.failures.json"] {
        assert_eq!(std::fs::read(d.join(f)).unwrap(), std::fs::read(d.join(f.replace("whole", "s"))).unwrap(), "{f}");
    }
    let e = fails(&["embed", "bench/images.toml", "--out", "x.safetensors", "--collect", "--shard", "0/2"], d);
    assert!(e.contains("cannot be used with"), "{e}");

    std::fs::write(d.join("prompt.toml"), "[train]\nhead = { kind = \"prompt\" }\nnormalization = \"standardize\"\n").unwrap();
    let prompts = ["--policy", "bench/policy.toml", "--prompts", "bench/prompts.safetensors"];
    let args =
        [&["train", "--train", "bench/coarse.toml", "--device", "cpu", "--config", "prompt.toml", "--out", "p.safetensors"][..], &prompts].concat();
    let e = fails(&args, d);
    assert!(e.contains("normalization") && e.contains("l2"), "{e}");
    // Named on the command line, the head brings its normalisation.
    let args = [&["train", "--train", "bench/coarse.toml", "--device", "cpu", "--head", "prompt", "--out", "p.safetensors"][..], &prompts].concat();
    ok(&args, d);
    assert_eq!(card(&d.join("p.json"))["normalization"], "l2");
}

/// Values a user passes to `cluster slurm` never run as shell: what Slurm
/// would not accept is refused by name, and what it would is quoted where
/// the script passes it to `sbatch`.
#[test]
fn slurm_launch_files_refuse_hostile_values_and_quote_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let slurm = |extra: &[&str]| -> Vec<String> {
        ["cluster", "slurm", "--shards", "2", "--gpus", "0", "--out", "s.sbatch"]
            .iter()
            .chain(extra)
            .chain(["--", "sweep", "exp.toml"].iter())
            .map(|s| s.to_string())
            .collect()
    };
    for (option, value) in [
        ("--time", "01:00:00; touch pwned"),
        ("--time", "1 day"),
        ("--partition", "gpu debug"),
        ("--partition", "gpu;id"),
        ("--account", "lab$(id)"),
        ("--account", "a'b"),
        ("--mem", "16G;id"),
    ] {
        let args = slurm(&[option, value]);
        let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), d);
        assert!(e.contains(option) && e.contains("expected"), "{option} {value:?}: {e}");
        assert!(!d.join("s.sbatch").exists(), "{option} {value:?} wrote a launch file");
    }
    let args = slurm(&["--time", "2-00:00:00", "--partition", "gpu,debug", "--account", "lab.x-1", "--mem", "16G"]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>(), d);
    let script = std::fs::read_to_string(d.join("s.sbatch")).unwrap();
    assert!(
        script.contains("#SBATCH --partition=gpu,debug") && script.contains("--time=2-00:00:00 --partition=gpu,debug --account=lab.x-1"),
        "{script}"
    );
    let syntax = Command::new("bash").arg("-n").arg(d.join("s.sbatch")).output().unwrap();
    assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));
}

/// `eval --scores`: another guard's outputs get exactly the metrics a
/// trained guard gets (a guard's own predictions, read back, give its
/// evaluation to the bit), verdicts alone are scored as 0 or 1, and every
/// mismatch with the dataset is named.
#[test]
fn eval_scores_gives_a_trained_guards_metrics_and_names_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--preset", "tiny", "--out", "bench"], d);
    ok(&["train", "--train", "bench/coarse.toml", "--device", "cpu", "--out", "g.safetensors"], d);
    let data = "bench/test-pairs.toml";
    ok(&["eval", "--model", "g.safetensors", "--data", data, "--device", "cpu", "--json", "model.json"], d);
    let lines = ok(&["predict", "--model", "g.safetensors", "--data", data, "--device", "cpu"], d);
    let lines: Vec<&str> = lines.lines().filter(|l| l.starts_with('{')).collect();
    std::fs::write(d.join("scores.jsonl"), lines.join("\n")).unwrap();
    let threshold = card(&d.join("g.json"))["threshold"].as_f64().unwrap().to_string();
    let said = ok(&["eval", "--scores", "scores.jsonl", "--data", data, "--threshold", &threshold, "--json", "scores.json"], d);
    assert!(said.contains(&format!("scores.jsonl: scores, unsafe at >= {threshold}; {n} of {n} samples scored", n = lines.len())), "{said}");
    let (model, scores) = (card(&d.join("model.json")), card(&d.join("scores.json")));
    assert_eq!(scores["evaluation"], model, "the same metrics as the guard itself");
    assert!(model["pairs"]["pairs"].as_u64().unwrap() > 0 && model["by_source"].as_object().unwrap().len() == 2, "{model}");

    // Verdicts only, one sample missing.
    let verdicts: Vec<String> = lines[1..]
        .iter()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("score");
            v.to_string()
        })
        .collect();
    std::fs::write(d.join("verdicts.jsonl"), verdicts.join("\n")).unwrap();
    let missing_id = serde_json::from_str::<serde_json::Value>(lines[0]).unwrap()["id"].as_str().unwrap().to_string();
    let e = fails(&["eval", "--scores", "verdicts.jsonl", "--data", data], d);
    assert!(e.contains("verdicts.jsonl: no score for 1 of the dataset's") && e.contains(&missing_id) && e.contains("--allow-missing"), "{e}");
    let said = ok(&["eval", "--scores", "verdicts.jsonl", "--data", data, "--allow-missing", "--json", "verdicts.json"], d);
    assert!(said.contains("verdicts only") && said.contains("missing: 1 samples"), "{said}");
    let v = card(&d.join("verdicts.json"));
    assert_eq!((v["missing"].as_u64(), v["missing_ids"][0].as_str()), (Some(1), Some(missing_id.as_str())));
    assert!(v["evaluation"]["overall"]["ece"].is_null(), "no calibration for verdicts: {}", v["evaluation"]["overall"]);

    // Mismatches, each named.
    std::fs::write(d.join("dup.jsonl"), format!("{}\n{}\n", lines[0], lines[0])).unwrap();
    std::fs::write(d.join("stranger.jsonl"), format!("{}\n{{\"id\":\"nobody\",\"score\":0.5}}\n", lines.join("\n"))).unwrap();
    std::fs::write(d.join("range.jsonl"), lines[0].replacen("\"score\":", "\"score\":-", 1)).unwrap();
    for (file, needle) in
        [("dup.jsonl", "line 2:"), ("stranger.jsonl", "1 ids the dataset lacks, such as [\"nobody\"]"), ("range.jsonl", "line 1: score -")]
    {
        let e = fails(&["eval", "--scores", file, "--data", data, "--allow-missing"], d);
        assert!(e.contains(file) && e.contains(needle), "{file}: {e}");
    }
    assert!(fails(&["eval", "--scores", "verdicts.jsonl", "--data", data, "--allow-missing", "--threshold", "0.3"], d).contains("verdicts only"));
    assert!(fails(&["eval", "--model", "g.safetensors", "--scores", "scores.jsonl", "--data", data], d).contains("cannot be used with"));
    assert!(fails(&["eval", "--data", data], d).contains("required arguments were not provided:\n  --model <MODEL>"));
}

/// `compare`: guard files and score files on one test set; a guard's own
/// predictions read back score exactly as the guard, and `eval` agrees.
#[test]
fn compare_sets_guards_and_score_files_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--preset", "tiny", "--out", "bench"], d);
    ok(&["train", "--train", "bench/coarse.toml", "--device", "cpu", "--out", "probe.safetensors"], d);
    ok(&["train", "--train", "bench/pairs.toml", "--head", "mlp", "--device", "cpu", "--out", "mlp.safetensors"], d);
    let data = "bench/test-pairs.toml";
    let lines = ok(&["predict", "--model", "probe.safetensors", "--data", data, "--device", "cpu"], d);
    let lines: Vec<&str> = lines.lines().filter(|l| l.starts_with('{')).collect();
    std::fs::write(d.join("probe.jsonl"), lines.join("\n")).unwrap();
    let threshold = card(&d.join("probe.json"))["threshold"].as_f64().unwrap().to_string();
    #[rustfmt::skip]
    let args = ["compare", "--data", data, "--model", "probe.safetensors", "--model", "mlp.safetensors", "--scores", "again=probe.jsonl",
        "--threshold", &threshold, "--resamples", "300", "--out", "cmp", "--device", "cpu"];
    assert_eq!(ok(&args, d).trim(), "cmp/compare.md");
    let csv = std::fs::read_to_string(d.join("cmp/compare.csv")).unwrap();
    let of = |guard: &str| -> Vec<String> {
        csv.lines().filter(|l| l.starts_with(&format!("{guard},"))).map(|l| l.split_once(',').unwrap().1.to_string()).collect()
    };
    assert_eq!(of("probe"), of("again"), "a guard's predictions score as the guard, intervals included");
    assert_ne!(of("probe"), of("mlp"));
    for slice in ["overall", "category:category-0", "source:real", "source:ai-generated", "pairs"] {
        assert!(csv.contains(&format!("mlp,{slice},")), "{slice} in\n{csv}");
    }
    ok(&["eval", "--model", "probe.safetensors", "--data", data, "--device", "cpu", "--json", "eval.json"], d);
    let auroc = card(&d.join("eval.json"))["overall"]["auroc"].as_f64().unwrap();
    let row = csv.lines().find(|l| l.starts_with("probe,overall,auroc,")).unwrap();
    assert_eq!(row.split(',').nth(4).unwrap().parse::<f64>().unwrap(), auroc, "{row}");
    let md = std::fs::read_to_string(d.join("cmp/compare.md")).unwrap();
    assert!(md.contains("## pair_accuracy") && md.contains("| again |"), "{md}");
    for figure in ["roc", "f1-by-category"] {
        assert!(std::fs::metadata(d.join(format!("cmp/{figure}.png"))).unwrap().len() > 10_000 && d.join(format!("cmp/{figure}.svg")).exists());
    }

    // A score file short of samples is refused unless told, then the
    // comparison runs on the samples every guard scores.
    std::fs::write(d.join("short.jsonl"), lines[1..].join("\n")).unwrap();
    let short = ["compare", "--data", data, "--model", "probe.safetensors", "--scores", "short=short.jsonl", "--out", "cmp2", "--device", "cpu"];
    let e = fails(&short, d);
    assert!(e.contains("short lacks 1") && e.contains("--allow-missing"), "{e}");
    let said = ok_said(&[&short[..], &["--allow-missing"]].concat(), d);
    assert!(said.contains(&format!("comparing on the {} of {} samples", lines.len() - 1, lines.len())), "{said}");
    let e = fails(&["compare", "--data", data, "--model", "probe.safetensors", "--scores", "probe=probe.jsonl", "--out", "cmp3"], d);
    assert!(e.contains("two guards are named \"probe\""), "{e}");
    assert!(fails(&["compare", "--data", data, "--scores", "nofile", "--out", "cmp4"], d).contains("expected NAME=FILE"));
    assert!(fails(&["compare", "--data", data, "--out", "cmp5"], d).contains("nothing to compare"));
}

/// `compare` with guards of two encoders: each is scored on the embedding
/// store of its own encoder, and the report names every file it read.
#[test]
fn compare_scores_guards_of_different_encoders_on_their_own_stores() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gelu = fixture_encoder().join("../hf-gelu");
    let gelu = gelu.to_str().unwrap();
    let quick = fixture_encoder();
    let quick = quick.to_str().unwrap();
    // The same benchmark twice, each embedded by one encoder.
    for (folder, encoder) in [("a", quick), ("b", gelu)] {
        ok(&["synth", "--images", "120", "--coarse-images", "200", "--out", folder], d);
        for set in ["coarse-images", "test-shifted-images"] {
            ok(&["embed", &format!("{folder}/{set}.toml"), "--encoder", encoder, "--device", "cpu"], d);
        }
        ok(&["train", "--train", &format!("{folder}/coarse-images.toml"), "--device", "cpu", "--out", &format!("{folder}.safetensors")], d);
    }
    let store_b = std::fs::read_dir(d.join("b"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("test-shifted-images.embeddings.safetensors"))
        .unwrap();
    let data = "a/test-shifted-images.toml";
    let store = store_b.to_str().unwrap();
    #[rustfmt::skip]
    let args = ["compare", "--data", data, "--model", "a.safetensors", "--model", "b.safetensors", "--store", store,
        "--resamples", "50", "--out", "cmp", "--device", "cpu"];
    ok(&args, d);
    // Each guard's AUROC is what `eval` gives on its own encoder's data.
    let csv = std::fs::read_to_string(d.join("cmp/compare.csv")).unwrap();
    for (guard, eval_data) in [("a", data), ("b", "b/test-shifted-images.toml")] {
        ok(&["eval", "--model", &format!("{guard}.safetensors"), "--data", eval_data, "--device", "cpu", "--json", "e.json"], d);
        let auroc = card(&d.join("e.json"))["overall"]["auroc"].as_f64().unwrap();
        let row = csv.lines().find(|l| l.starts_with(&format!("{guard},overall,auroc,"))).unwrap();
        assert_eq!(row.split(',').nth(4).unwrap().parse::<f64>().unwrap(), auroc, "{row}");
    }
    // The report names each guard's file and its SHA-256.
    let md = std::fs::read_to_string(d.join("cmp/compare.md")).unwrap();
    for guard in ["a", "b"] {
        let sha = pairguard_run::sha256_file(&d.join(format!("{guard}.safetensors"))).unwrap();
        assert!(md.contains(&format!("| {guard} | ")) && md.contains(&format!("`{guard}.safetensors` | `{sha}` |")), "{md}");
    }
    // Without the other encoder's store, the guard is refused by name.
    let e = fails(&["compare", "--data", data, "--model", "b.safetensors", "--out", "cmp2", "--device", "cpu"], d);
    assert!(e.contains("b.safetensors: no embedding store of its encoder") && e.contains("--store STORE"), "{e}");
}

/// `[[baselines]] kind = "scores"`: another guard's outputs on one test set
/// drawn on a sweep's curves; a guard's own predictions score as the guard
/// does as a `kind = "guard"` baseline.
#[test]
fn a_sweep_draws_a_score_file_as_a_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let target = "[report]\nmetrics = [\"auroc\"]\nbaseline = \"coarse\"\ntarget = { metric = \"auroc\", test = \"shifted\", value = 0.99 }\n";
    let base = SMALL_SWEEP.replace("[report]\nmetrics = [\"auroc\"]\nbaseline = \"coarse\"\n", target);
    std::fs::write(d.join("plain.toml"), &base).unwrap();
    ok(&["sweep", "plain.toml", "--out", "plain", "--device", "cpu"], d);
    // A guard trained on the sweep's generated coarse pool, and its predictions on the shifted test set.
    ok(&["train", "--train", "plain/data/coarse.toml", "--device", "cpu", "--out", "g.safetensors"], d);
    let lines = ok(&["predict", "--model", "g.safetensors", "--data", "plain/data/test-shifted.toml", "--device", "cpu"], d);
    std::fs::write(d.join("g.jsonl"), lines.lines().filter(|l| l.starts_with('{')).collect::<Vec<_>>().join("\n")).unwrap();
    let threshold = card(&d.join("g.json"))["threshold"].as_f64().unwrap();
    let with = format!(
        "{base}\n[[baselines]]\nkind = \"guard\"\nname = \"guard\"\nmodel = \"g.safetensors\"\n\n[[baselines]]\nkind = \"scores\"\nname = \"judge\"\nscores = \"g.jsonl\"\ntest = \"shifted\"\nthreshold = {threshold}\n"
    );
    std::fs::write(d.join("with.toml"), &with).unwrap();
    ok(&["sweep", "with.toml", "--out", "with", "--device", "cpu"], d);
    let csv = std::fs::read_to_string(d.join("with/baselines.csv")).unwrap();
    let of = |b: &str| -> Vec<String> {
        csv.lines().filter(|l| l.starts_with(&format!("{b},shifted,"))).map(|l| l.split_once(',').unwrap().1.to_string()).collect()
    };
    assert!(!of("judge").is_empty() && of("judge") == of("guard"), "the score file scores as its guard:\n{csv}");
    assert!(!csv.lines().any(|l| l.starts_with("judge,") && !l.starts_with("judge,shifted,")), "a score file scores its own test set only:\n{csv}");
    let report = std::fs::read_to_string(d.join("with/report.md")).unwrap();
    assert!(report.contains("| judge | shifted |") && !report.contains("| judge | coarse |"), "{report}");
    // The baselines' files are inputs, named with their hashes.
    for f in ["g.jsonl", "g.safetensors", "g.json"] {
        let sha = pairguard_run::sha256_file(&d.join(f)).unwrap();
        assert!(report.lines().any(|l| l.starts_with("| `") && l.contains(&format!("{f}` | `{sha}` |"))), "{f} among the inputs:\n{report}");
    }
    // A test set the sweep lacks, and a file short of that set's samples, are named.
    std::fs::write(d.join("bad.toml"), with.replace("test = \"shifted\"", "test = \"nope\"")).unwrap();
    let e = fails(&["sweep", "bad.toml", "--out", "bad", "--device", "cpu"], d);
    assert!(e.contains("baseline \"judge\": no test set \"nope\" in this sweep (it has"), "{e}");
    let short: Vec<&str> = lines.lines().filter(|l| l.starts_with('{')).skip(1).collect();
    std::fs::write(d.join("short.jsonl"), short.join("\n")).unwrap();
    std::fs::write(d.join("short.toml"), with.replace("g.jsonl", "short.jsonl")).unwrap();
    let e = fails(&["sweep", "short.toml", "--out", "short", "--device", "cpu"], d);
    assert!(e.contains("baseline \"judge\"") && e.contains("short.jsonl: no score for 1 of the dataset's"), "{e}");
}

/// `devices` names the CPU and says whether it has the dot products the
/// bf16 and int8 paths use, as /proc/cpuinfo's flags say.
#[test]
fn devices_names_the_cpu_and_its_dot_products() {
    let dir = tempfile::tempdir().unwrap();
    let said = ok(&["devices"], dir.path());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = cpuinfo.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let answer = |b: bool| if b { "yes" } else { "no" };
    let line = |prefix: &str| said.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in\n{said}")).to_string();
    // The model name with the family and model numbers, which tell core
    // designs apart that share a model name ("AMD EPYC": Zen 4 or Zen 5).
    let field = |name: &str| cpuinfo.lines().find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == name).map(|(_, v)| v.trim().to_string()));
    if let (Some(name), Some(family), Some(model)) = (field("model name"), field("cpu family"), field("model")) {
        assert!(line("cpu: ").starts_with(&format!("cpu: {name} (family {family}, model {model}")), "{said}");
    } else {
        assert!(said.lines().any(|l| l.starts_with("cpu: ")), "{said}");
    }
    assert!(line("cpu bf16 dot products").contains(&format!(": {}", answer(has("avx512_bf16")))), "{said}");
    let int8 = has("avx512_vnni") || has("avx_vnni");
    assert!(line("cpu int8 dot products").contains(&format!(": {}", answer(int8))), "{said}");
    assert!(said.contains("auto picks: "), "{said}");
}
