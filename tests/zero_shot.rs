//! Policy text as a guard, through the `pairguard` binary: zero-shot guards,
//! prompt heads trained from them, and the errors that protect them.

mod common;

use std::path::Path;

use common::{card, fails, ok_said as ok};

fn auroc(metrics: &Path) -> f64 {
    card(metrics)["overall"]["auroc"].as_f64().unwrap()
}

#[test]
fn zero_shot_and_prompt_heads_from_a_policy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--out", "demo", "--preset", "tiny"], d);
    let prompts = ["--policy", "demo/policy.toml", "--prompts", "demo/prompts.safetensors"];

    // Uncalibrated: a fixed threshold of 0.5, one output per category.
    let args = [&["zero-shot", "--data", "demo/coarse.toml", "--out", "zs.safetensors"][..], &prompts].concat();
    ok(&args, d);
    let c = card(&d.join("zs.json"));
    assert_eq!((c["head"]["kind"].as_str(), c["threshold"].as_f64(), c["temperature"].as_f64()), (Some("prompt"), Some(0.5), Some(1.0)));
    assert_eq!(c["outputs"].as_array().unwrap().len(), 4);
    assert_eq!(c["prompts"]["policy"], "synthetic");
    assert_eq!(c["prompts"]["prompts"], 6);

    // Calibrated on validation data (absolute paths, from another folder).
    let other = d.join("elsewhere");
    std::fs::create_dir(&other).unwrap();
    let abs = |p: &str| d.join(p).display().to_string();
    let (data, val, policy, table, out) =
        (abs("demo/coarse.toml"), abs("demo/test-coarse.toml"), abs("demo/policy.toml"), abs("demo/prompts.safetensors"), abs("zs-cal.safetensors"));
    let said = ok(
        &["zero-shot", "--data", &data, "--validation", &val, "--policy", &policy, "--prompts", &table, "--threshold", "fpr:0.1", "--out", &out],
        &other,
    );
    assert!(said.contains("validation: AUROC"), "{said}");
    let c = card(&d.join("zs-cal.json"));
    assert_eq!(c["threshold_rule"]["rule"], "target-fpr");
    assert!(c["validation_metrics"]["auroc"].as_f64().unwrap() > 0.5);

    // The zero-shot guard is a model file like any other.
    ok(&["eval", "--model", "zs-cal.safetensors", "--data", "demo/test-shifted.toml", "--json", "zs-eval.json"], d);
    let lines = ok(&["predict", "--model", "zs-cal.safetensors", "--data", "demo/test-pairs.toml"], d);
    let first: serde_json::Value = serde_json::from_str(lines.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(first["categories"].as_object().unwrap().len(), 3);
    ok(&["export-onnx", "--model", "zs-cal.safetensors", "--out", "zs.onnx"], d);
    assert!(std::fs::metadata(d.join("zs.onnx")).unwrap().len() > 500);

    // A prompt head trained from it (Q16), beside a linear probe.
    let args = [&["train", "--train", "demo/coarse.toml", "--head", "prompt", "--out", "q16.safetensors"][..], &prompts].concat();
    ok(&args, d);
    let c = card(&d.join("q16.json"));
    assert_eq!((c["head"]["kind"].as_str(), c["normalization"].as_str()), (Some("prompt"), Some("l2")));
    assert_eq!(c["prompts"]["policy"], "synthetic");
    ok(&["eval", "--model", "q16.safetensors", "--data", "demo/test-shifted.toml", "--json", "q16-eval.json"], d);
    let (zs, q16) = (auroc(&d.join("zs-eval.json")), auroc(&d.join("q16-eval.json")));
    assert!(zs > 0.55 && q16 > 0.55, "zero-shot AUROC {zs}, prompt head {q16}");

    // A linear probe started from the zero-shot guard, and one with the
    // prompts as extra samples.
    let args = [&["train", "--train", "demo/pairs.toml", "--zero-shot-init", "--out", "init.safetensors"][..], &prompts].concat();
    ok(&args, d);
    let c = card(&d.join("init.json"));
    assert_eq!((c["head"]["kind"].as_str(), c["prompts"]["policy"].as_str()), (Some("linear"), Some("synthetic")));
    let args = [&["train", "--train", "demo/pairs.toml", "--text-as-data", "--multilabel", "--out", "text.safetensors"][..], &prompts].concat();
    let said = ok(&args, d);
    assert!(said.contains("adding 6 prompts"), "{said}");
    let plain = card(&{
        ok(&["train", "--train", "demo/pairs.toml", "--multilabel", "--out", "plain.safetensors"], d);
        d.join("plain.json")
    });
    let with_text = card(&d.join("text.json"));
    assert_eq!(with_text["training_samples"].as_u64().unwrap(), plain["training_samples"].as_u64().unwrap() + 6);
    let e =
        fails(&[&["train", "--train", "demo/pairs.toml", "--head", "mlp", "--zero-shot-init", "--out", "m.safetensors"][..], &prompts].concat(), d);
    assert!(e.contains("linear and prompt heads"), "{e}");
}

#[test]
fn prompt_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--out", "demo", "--preset", "tiny"], d);
    ok(&["synth", "--out", "other", "--preset", "tiny", "--seed", "9"], d);
    fn zs<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        [&["zero-shot", "--data", "demo/coarse.toml", "--out", "zs.safetensors"][..], extra].concat()
    }

    let e = fails(&zs(&["--prompts", "demo/prompts.safetensors"]), d);
    assert!(e.contains("--policy"), "{e}");
    // Text of another checkpoint than the images'.
    let e = fails(&zs(&["--policy", "demo/policy.toml", "--prompts", "other/prompts.safetensors"]), d);
    assert!(e.contains("one CLIP checkpoint"), "{e}");
    // A policy that misses a category of the data.
    let text = std::fs::read_to_string(d.join("demo/policy.toml")).unwrap();
    let cut = text.rfind("[[category]]").unwrap();
    std::fs::write(d.join("short.toml"), &text[..cut]).unwrap();
    let e = fails(&zs(&["--policy", "short.toml", "--prompts", "demo/prompts.safetensors"]), d);
    assert!(e.contains("category-2") && e.contains("no prompts"), "{e}");
    // A rule that needs validation data, without it.
    let e = fails(&zs(&["--policy", "demo/policy.toml", "--prompts", "demo/prompts.safetensors", "--threshold", "best-f1"]), d);
    assert!(e.contains("--validation"), "{e}");
    // Not a prompt embeddings file.
    let e = fails(&zs(&["--policy", "demo/policy.toml", "--prompts", "demo/coarse.safetensors"]), d);
    assert!(e.contains("coarse.safetensors") && e.contains("not a prompt embeddings file"), "{e}");
    // Prompts belong to prompt heads.
    let e = fails(&["train", "--train", "demo/coarse.toml", "--out", "m.safetensors", "--policy", "demo/policy.toml"], d);
    assert!(e.contains("--head prompt"), "{e}");
    let e = fails(&["train", "--train", "demo/coarse.toml", "--out", "m.safetensors", "--head", "prompt"], d);
    assert!(e.contains("--policy"), "{e}");

    // embed-text needs a full checkpoint and a tokenizer that fits it.
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clip/tests/fixtures/clip-full/openai").canonicalize().unwrap();
    let vision_only = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clip/tests/fixtures/clip/hf-quickgelu").canonicalize().unwrap();
    let bpe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clip/tests/fixtures/tokenizer/bpe_simple_vocab_16e6.txt.gz").canonicalize().unwrap();
    let (full, vision_only, bpe) = (full.to_str().unwrap(), vision_only.to_str().unwrap(), bpe.to_str().unwrap());
    let e = fails(&["embed-text", "--policy", "demo/policy.toml", "--model", full, "--out", "p.safetensors"], d);
    assert!(e.contains("no tokenizer") && e.contains("--tokenizer"), "{e}");
    let e = fails(&["embed-text", "--policy", "demo/policy.toml", "--model", full, "--tokenizer", bpe, "--out", "p.safetensors"], d);
    assert!(e.contains("49408 tokens") && e.contains("1000"), "{e}");
    let e = fails(&["embed-text", "--policy", "demo/policy.toml", "--model", "no/such-model", "--out", "p.safetensors"], d);
    assert!(e.contains("no/such-model"), "{e}");
    let e = fails(&["embed-text", "--policy", "demo/policy.toml", "--model", vision_only, "--tokenizer", bpe, "--out", "p.safetensors"], d);
    assert!(e.contains("config.json"), "{e}");
    assert!(!d.join("p.safetensors").exists());
}

#[test]
fn a_full_checkpoint_embeds_images_and_policy_text() {
    // Images embedded by the vision tower of a full checkpoint; the zero-shot
    // guard embeds the policy with the text tower of the same file, found
    // from the store's encoder, or reads what embed-text wrote.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clip/tests/fixtures/clip-full/hf").canonicalize().unwrap();
    let full = full.to_str().unwrap();
    ok(&["synth", "--out", "demo", "--preset", "tiny", "--images", "6"], d);
    ok(&["embed", "demo/images.toml", "--model", full], d);
    ok(&["zero-shot", "--data", "demo/images.toml", "--policy", "demo/policy.toml", "--out", "a.safetensors"], d);
    let said = ok(&["embed-text", "--policy", "demo/policy.toml", "--model", full, "--out", "prompts.safetensors"], d);
    assert!(said.contains("embedded 6 prompts"), "{said}");
    ok(&["zero-shot", "--data", "demo/images.toml", "--policy", "demo/policy.toml", "--prompts", "prompts.safetensors", "--out", "b.safetensors"], d);
    assert_eq!(std::fs::read(d.join("a.safetensors")).unwrap(), std::fs::read(d.join("b.safetensors")).unwrap());
    assert_eq!(card(&d.join("a.json"))["prompts"]["tokenizer"], "tokenizer.json");
    let lines = ok(&["predict", "--model", "a.safetensors", "--data", "demo/images.toml"], d);
    assert_eq!(lines.lines().filter(|l| l.starts_with('{')).count(), 6);
    // The synthetic benchmark's own prompts belong to its synthetic encoder.
    let e = fails(
        &[
            "zero-shot",
            "--data",
            "demo/images.toml",
            "--policy",
            "demo/policy.toml",
            "--prompts",
            "demo/prompts.safetensors",
            "--out",
            "c.safetensors",
        ],
        d,
    );
    assert!(e.contains("one CLIP checkpoint"), "{e}");
}

#[test]
fn published_heads_import_as_guards() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/published").canonicalize().unwrap();
    let checker = fixtures.join("sd-safety-checker");
    let checker = checker.to_str().unwrap();
    ok(&["synth", "--out", "demo", "--preset", "tiny", "--images", "6"], d);
    // The checker reads its own tower's embeddings.
    let said = ok(&["import", "sd-safety-checker", "--weights", checker, "--out", "sd.safetensors"], d);
    assert!(said.contains("17 concepts, 3 special-care"), "{said}");
    assert_eq!(card(&d.join("sd.json"))["head"]["kind"], "concepts");
    ok(&["embed", "demo/images.toml", "--model", checker], d);
    let lines = ok(&["predict", "--model", "sd.safetensors", "--data", "demo/images.toml"], d);
    assert_eq!(lines.lines().filter(|l| l.starts_with('{')).count(), 6);
    ok(&["export-onnx", "--model", "sd.safetensors", "--out", "sd.onnx"], d);
    // Embeddings of another encoder are refused.
    let e = fails(&["eval", "--model", "sd.safetensors", "--data", "demo/coarse.toml"], d);
    assert!(e.contains("encoder mismatch"), "{e}");

    // Q16 for the synthetic encoder's 16-dimensional embeddings: a [2, 16] matrix.
    let rows: Vec<f32> = (0..32).map(|i| ((i * 37 % 11) as f32) - 5.0).collect();
    let npy = d.join("q16.npy");
    let mut header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 16), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(rows.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(&npy, bytes).unwrap();
    ok(&["import", "q16", "--prompts", "q16.npy", "--data", "demo/coarse.toml", "--out", "q16.safetensors"], d);
    ok(&["eval", "--model", "q16.safetensors", "--data", "demo/test-coarse.toml"], d);
    let e =
        fails(&["import", "q16", "--prompts", fixtures.join("q16.p").to_str().unwrap(), "--data", "demo/coarse.toml", "--out", "x.safetensors"], d);
    assert!(e.contains("pickle"), "{e}");
    let e =
        fails(&["import", "q16", "--prompts", fixtures.join("q16.npy").to_str().unwrap(), "--data", "demo/coarse.toml", "--out", "x.safetensors"], d);
    assert!(e.contains("[2, 16]"), "{e}");

    // The LAION detector (input width 32, as the checker's tower gives),
    // from a copy beside the data, named relative to the working folder.
    std::fs::copy(fixtures.join("laion-nsfw-l14.safetensors"), d.join("demo/laion.safetensors")).unwrap();
    let said = ok(&["import", "laion-nsfw", "--weights", "demo/laion.safetensors", "--data", "demo/images.toml", "--out", "laion.safetensors"], d);
    assert!(said.contains("relu-4"), "{said}");
    let c = card(&d.join("laion.json"));
    assert_eq!((c["head"]["kind"].as_str(), c["normalization"].as_str()), (Some("relu"), Some("standardize")));
    let lines = ok(&["predict", "--model", "laion.safetensors", "--data", "demo/images.toml"], d);
    assert_eq!(lines.lines().filter(|l| l.starts_with('{')).count(), 6);
    ok(&["export-onnx", "--model", "laion.safetensors", "--out", "laion.onnx"], d);
    let e = fails(&["import", "laion-nsfw", "--weights", "demo/laion.safetensors", "--data", "demo/coarse.toml", "--out", "x.safetensors"], d);
    assert!(e.contains("normalises 16 dimensions") && e.contains("laion.safetensors"), "{e}");
    let pth = fixtures.join("laion-nsfw-l14.pth");
    let e = fails(&["import", "laion-nsfw", "--weights", pth.to_str().unwrap(), "--data", "demo/images.toml", "--out", "x.safetensors"], d);
    assert!(e.contains("pickle"), "{e}");

    // Unsafe Diffusion's heads read embeddings that are not unit length:
    // refused on the normalised store, imported on a raw one (a copy of the
    // descriptor naming its own store), from the folder given absolute.
    let heads = fixtures.join("unsafe-diffusion");
    let heads = heads.to_str().unwrap();
    let e = fails(&["import", "unsafe-diffusion", "--weights", heads, "--data", "demo/images.toml", "--out", "x.safetensors"], d);
    assert!(e.contains("--no-normalize"), "{e}");
    let text = std::fs::read_to_string(d.join("demo/images.toml")).unwrap();
    let raw = text.replacen("name = \"synthetic-images\"", "name = \"raw\"\nembeddings = \"raw.safetensors\"", 1);
    assert_ne!(raw, text, "the descriptor's name line was found");
    std::fs::write(d.join("demo/raw.toml"), raw).unwrap();
    ok(&["embed", "demo/raw.toml", "--model", checker, "--no-normalize"], d);
    let said = ok(&["import", "unsafe-diffusion", "--weights", heads, "--data", "demo/raw.toml", "--out", "ud.safetensors"], d);
    assert!(said.contains("sexual, violent, disturbing, hateful, political"), "{said}");
    let lines = ok(&["predict", "--model", "ud.safetensors", "--data", "demo/raw.toml"], d);
    let first: serde_json::Value = serde_json::from_str(lines.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(first["categories"].as_object().unwrap().len(), 5, "{first}");
    let top = first["categories"].as_object().unwrap().values().map(|v| v.as_f64().unwrap()).fold(0.0, f64::max);
    assert!((first["score"].as_f64().unwrap() - top).abs() < 1e-6, "unsafe is the highest category: {first}");
    ok(&["export-onnx", "--model", "ud.safetensors", "--out", "ud.onnx"], d);
    let missing = d.join("two-heads");
    std::fs::create_dir(&missing).unwrap();
    std::fs::copy(fixtures.join("unsafe-diffusion/sexual.safetensors"), missing.join("sexual.safetensors")).unwrap();
    let e = fails(&["import", "unsafe-diffusion", "--weights", "two-heads", "--data", "demo/raw.toml", "--out", "x.safetensors"], d);
    assert!(e.contains("violent.safetensors"), "{e}");
}

/// The README's table of guards on the default benchmark, from the commands
/// it gives, at its rounding (three decimals).
#[test]
fn the_readme_table_of_policy_text_guards_is_what_the_commands_give() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--out", "demo"], d);
    let prompts = ["--policy", "demo/policy.toml", "--prompts", "demo/prompts.safetensors"];
    let zero_shot =
        [&["zero-shot", "--data", "demo/coarse.toml", "--validation", "demo/test-coarse.toml", "--out", "zero-shot.safetensors"][..], &prompts];
    ok(&zero_shot.concat(), d);
    ok(&[&["train", "--train", "demo/coarse.toml", "--head", "prompt", "--out", "prompt.safetensors"][..], &prompts].concat(), d);
    ok(&["train", "--train", "demo/coarse.toml", "--out", "probe.safetensors"], d);
    let mut rows = Vec::new();
    for (guard, model) in [("linear probe", "probe"), ("zero-shot policy text, no training", "zero-shot"), ("prompt head trained from it", "prompt")]
    {
        let json = format!("{model}-eval.json");
        ok(&["eval", "--model", &format!("{model}.safetensors"), "--data", "demo/test-shifted.toml", "--json", &json], d);
        rows.push(format!("| {guard} | {:.3} |", auroc(&d.join(&json))));
    }
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let table = format!("| guard | AUROC on test-shifted |\n|---|---|\n{}\n", rows.join("\n"));
    assert!(readme.contains(&table), "the README should hold, as the commands give:\n{table}");
    // The zero-shot figure the demo section quotes is the same guard's.
    let zs = auroc(&d.join("zero-shot-eval.json"));
    assert!(readme.contains(&format!("({zs:.3} AUROC on the shifted set, uncalibrated)")), "zero-shot AUROC {zs:.3}");
}
