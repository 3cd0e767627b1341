//! The catalogue of bad inputs, met as a new user meets them: broken images
//! in every command that reads pixels, a decompression bomb, an extreme
//! panorama, paths escaping the dataset root, truncated safetensors, NaN in
//! a store, a pickle where weights are expected, an empty dataset, a dataset
//! of one class, a policy without a category, an experiment file with an
//! unknown key, and a sweep whose budget exceeds its pool. Each one is an
//! error naming the file, row, id or field and exits non-zero, or, where a
//! run goes on past a bad image, the image is listed by id and the rest is
//! done.

mod common;

use std::io::Cursor;
use std::path::Path;

use common::{copy_fixture_encoder, fails, ok, ok_said};

/// CRC-32 (IEEE) of PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn encoded(img: &image::RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A picture with detail, so that its encodings are not trivially short.
fn picture() -> image::RgbImage {
    image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x * y) % 251) as u8]))
}

/// The broken images, each with the needle its error must hold.
fn broken_images(dir: &Path) -> Vec<(&'static str, &'static str)> {
    std::fs::create_dir_all(dir).unwrap();
    let jpeg = encoded(&picture(), image::ImageFormat::Jpeg);
    std::fs::write(dir.join("truncated.jpg"), &jpeg[..jpeg.len() * 3 / 5]).unwrap();
    let png = encoded(&picture(), image::ImageFormat::Png);
    std::fs::write(dir.join("truncated.png"), &png[..png.len() * 3 / 5]).unwrap();
    let mut corrupt = png.clone();
    let middle = corrupt.len() / 2;
    for b in &mut corrupt[middle..middle + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(dir.join("corrupt.png"), corrupt).unwrap();
    let webp = encoded(&picture(), image::ImageFormat::WebP);
    std::fs::write(dir.join("truncated.webp"), &webp[..webp.len() * 3 / 5]).unwrap();
    // A 1 x 1 PNG whose header says 60000 x 60000 (3.6 billion pixels).
    let mut bomb = encoded(&image::RgbImage::new(1, 1), image::ImageFormat::Png);
    bomb[16..20].copy_from_slice(&60_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&60_000u32.to_be_bytes());
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(dir.join("bomb.png"), bomb).unwrap();
    std::fs::write(dir.join("text.png"), "this is not an image\n").unwrap();
    vec![
        ("truncated.jpg", "JPEG data is truncated"),
        ("truncated.png", "truncated.png"),
        ("corrupt.png", "corrupt.png"),
        ("truncated.webp", "truncated.webp"),
        ("bomb.png", "over the limit"),
        ("text.png", "text.png"),
    ]
}

/// A copy of the benchmark's image descriptor named `name` reading `rows`.
fn dataset(d: &Path, name: &str, rows: &[serde_json::Value]) {
    std::fs::write(d.join(format!("bench/{name}.jsonl")), rows.iter().map(|r| format!("{r}\n")).collect::<String>()).unwrap();
    let descriptor = std::fs::read_to_string(d.join("bench/images.toml")).unwrap();
    std::fs::write(
        d.join(format!("bench/{name}.toml")),
        descriptor.replace("\"images.jsonl\"", &format!("\"{name}.jsonl\"")).replace("\"synthetic-images\"", &format!("\"{name}\"")),
    )
    .unwrap();
}

fn rows(d: &Path, file: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(d.join(file)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn setup(d: &Path) {
    ok(&["synth", "--preset", "tiny", "--images", "24", "--coarse-images", "12", "--out", "bench"], d);
    copy_fixture_encoder(d);
    ok(&["embed", "bench/images.toml", "--encoder", "enc", "--device", "cpu"], d);
    ok(&["train", "--train", "bench/images.toml", "--validation-fraction", "0.3", "--device", "cpu", "--out", "guard.safetensors"], d);
}

#[test]
fn broken_images_are_named_in_every_command_that_reads_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let broken = broken_images(&d.join("bench/broken"));
    // The benchmark's first 12 images, then one broken image per kind, then
    // a valid 100000 x 2 panorama.
    image::RgbImage::from_fn(100_000, 2, |x, _| image::Rgb([(x % 256) as u8, 90, 30])).save(d.join("bench/broken/wide.png")).unwrap();
    let good = rows(d, "bench/images.jsonl");
    let mut all: Vec<serde_json::Value> = good[..12].to_vec();
    for (i, (file, _)) in broken.iter().chain([&("wide.png", "")]).enumerate() {
        let mut r = good[12 + i % 12].clone();
        r["id"] = format!("bad-{file}").into();
        r["image"] = format!("broken/{file}").into();
        r.as_object_mut().unwrap().remove("pair_id");
        r.as_object_mut().unwrap().remove("pair_role");
        all.push(r);
    }
    dataset(d, "broken", &all);

    // validate --decode lists every broken image by row and file, and passes the panorama.
    let out = common::pairguard(&["data", "validate", "--decode", "bench/broken.toml"], d);
    assert!(!out.status.success());
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    for (file, needle) in &broken {
        let line = listed.lines().find(|l| l.contains(&format!("bad-{file}"))).unwrap_or_else(|| panic!("{file} not listed:\n{listed}"));
        assert!(line.contains("broken.jsonl: row") && line.contains(needle), "{file}: {line}");
    }
    assert!(!listed.contains("bad-wide.png"), "{listed}");

    // embed refuses the dataset by row unless told to skip invalid rows;
    // then it embeds every image that decodes (the panorama too) and lists
    // the ones that do not by id.
    let e = fails(&["embed", "bench/broken.toml", "--encoder", "enc", "--device", "cpu", "--out", "broken.safetensors"], d);
    assert!(e.contains("bad-bomb.png") && e.contains("over the limit"), "{e}");
    let said = ok_said(&["embed", "bench/broken.toml", "--encoder", "enc", "--device", "cpu", "--skip-invalid", "--out", "broken.safetensors"], d);
    for (file, needle) in &broken {
        assert!(said.contains(&format!("bad-{file}")), "{file}: {needle}\n{said}");
    }
    let failures: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(d.join("broken.failures.json")).unwrap()).unwrap();
    let ids: Vec<&str> = failures.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["bad-truncated.jpg", "bad-truncated.png", "bad-corrupt.png", "bad-truncated.webp"], "{failures:?}");
    let index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("broken.json")).unwrap()).unwrap();
    assert_eq!(index["count"], 13, "12 images and the panorama");
    assert!(index["ids"].as_array().unwrap().iter().any(|i| i == "bad-wide.png"));

    // robustness: attacked images that do not decode are named and skipped.
    #[rustfmt::skip]
    let e = fails(&["robustness", "--model", "guard.safetensors", "--data", "bench/broken.toml", "--samples", "40", "--attacks", "fgsm",
        "--eps", "0.05", "--corruptions", "none", "--device", "cpu", "--out", "rob"], d);
    assert!(e.contains("bad-bomb.png") && e.contains("over the limit"), "{e}");

    // pairs generate: a source that does not decode is rejected, its record naming why.
    let mut sources: Vec<serde_json::Value> = rows(d, "bench/coarse-images.jsonl")[..4].to_vec();
    for (file, _) in &broken[..4] {
        let mut r = sources[0].clone();
        r["id"] = format!("bad-{file}").into();
        r["image"] = format!("broken/{file}").into();
        sources.push(r);
    }
    dataset(d, "broken-sources", &sources);
    #[rustfmt::skip]
    let run = common::pairguard(&["pairs", "generate", "--data", "bench/broken-sources.toml", "--policy", "bench/policy.toml", "--editor",
        "synthetic", "--verifier", "guard.safetensors", "--out", "gen", "--device", "cpu"], d);
    let e = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success() && e.contains("rejected for source image: 4"), "{e}");
    for (file, needle) in &broken[..4] {
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(format!("gen/records/bad-{file}.json"))).unwrap()).unwrap();
        assert_eq!(record["status"], "rejected", "{record}");
        let reasons = record["reasons"].to_string();
        assert!(reasons.contains("source image") && reasons.contains(needle), "{file}: {reasons}");
    }
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("gen/report.json")).unwrap()).unwrap();
    assert_eq!(report["by_reason"]["source image"].as_u64(), Some(4), "{report}");
}

#[test]
fn bad_files_and_settings_get_errors_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let good = rows(d, "bench/images.jsonl");

    // Paths escaping the dataset root, spelled three ways.
    std::fs::create_dir(d.join("outside")).unwrap();
    std::fs::copy(d.join("bench/images/img-p0000-o.png"), d.join("outside/x.png")).unwrap();
    std::os::unix::fs::symlink(d.join("outside"), d.join("bench/link")).unwrap();
    let mut escaping = good[..4].to_vec();
    for (i, path) in ["../outside/x.png", d.join("outside/x.png").to_str().unwrap(), "link/x.png"].iter().enumerate() {
        escaping[i]["image"] = (*path).into();
    }
    dataset(d, "escaping", &escaping);
    let out = common::pairguard(&["data", "validate", "bench/escaping.toml"], d);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    for needle in ["row 1", "escapes the dataset root", "row 2", "is absolute", "row 3", "outside the dataset root"] {
        assert!(listed.contains(needle), "{needle}:\n{listed}");
    }

    // Truncated safetensors: a guard file, a store, encoder weights.
    let guard = std::fs::read(d.join("guard.safetensors")).unwrap();
    std::fs::write(d.join("cut.safetensors"), &guard[..guard.len() / 2]).unwrap();
    std::fs::copy(d.join("guard.json"), d.join("cut.json")).unwrap();
    let e = fails(&["eval", "--model", "cut.safetensors", "--data", "bench/images.toml", "--device", "cpu"], d);
    assert!(e.contains("cut.safetensors"), "{e}");
    let store = d.join("bench/synthetic-images.embeddings.safetensors");
    let whole = std::fs::read(&store).unwrap();
    std::fs::write(&store, &whole[..whole.len() - 7]).unwrap();
    let e = fails(&["eval", "--model", "guard.safetensors", "--data", "bench/images.toml", "--device", "cpu"], d);
    assert!(e.contains("synthetic-images.embeddings.safetensors") && e.contains("do not match"), "{e}");
    std::fs::write(&store, &whole).unwrap();
    std::fs::create_dir(d.join("enc-cut")).unwrap();
    std::fs::copy(d.join("enc/config.json"), d.join("enc-cut/config.json")).unwrap();
    let weights = std::fs::read(d.join("enc/model.safetensors")).unwrap();
    std::fs::write(d.join("enc-cut/model.safetensors"), &weights[..weights.len() / 3]).unwrap();
    let e = fails(&["embed", "bench/images.toml", "--encoder", "enc-cut", "--device", "cpu", "--out", "x.safetensors"], d);
    assert!(e.contains("enc-cut") && e.contains("model.safetensors"), "{e}");

    // NaN in a store (its hash made to match, as a careless tool would).
    let mut nan = whole.clone();
    let header = u64::from_le_bytes(nan[..8].try_into().unwrap()) as usize;
    nan[8 + header..8 + header + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&store, &nan).unwrap();
    let index_path = d.join("bench/synthetic-images.embeddings.json");
    let index_text = std::fs::read_to_string(&index_path).unwrap();
    let mut index: serde_json::Value = serde_json::from_str(&index_text).unwrap();
    let first_id = index["ids"][0].as_str().unwrap().to_string();
    index["tensor_sha256"] = pairguard_run::sha256_bytes(&nan).into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let e = fails(&["eval", "--model", "guard.safetensors", "--data", "bench/images.toml", "--device", "cpu"], d);
    assert!(e.contains("non-finite") && e.contains(&first_id), "{e}");
    std::fs::write(&store, &whole).unwrap();
    std::fs::write(&index_path, index_text).unwrap();

    // A pickle where weights are expected.
    std::fs::create_dir(d.join("enc-pickle")).unwrap();
    std::fs::copy(d.join("enc/config.json"), d.join("enc-pickle/config.json")).unwrap();
    std::fs::write(d.join("enc-pickle/pytorch_model.bin"), b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.").unwrap();
    let e = fails(&["embed", "bench/images.toml", "--encoder", "enc-pickle", "--device", "cpu", "--out", "x.safetensors"], d);
    assert!(e.contains("pickle"), "{e}");
    std::fs::write(d.join("q16.pkl"), b"\x80\x02").unwrap();
    let e = fails(&["import", "q16", "--prompts", "q16.pkl", "--data", "bench/images.toml", "--out", "q.safetensors"], d);
    assert!(e.contains("q16.pkl") && e.contains("pickle"), "{e}");

    // An empty dataset, and one of a single class.
    dataset(d, "empty", &[]);
    let e = fails(&["train", "--train", "bench/empty.toml", "--device", "cpu", "--out", "x.safetensors"], d);
    assert!(e.contains("empty") && e.contains("no samples"), "{e}");
    let mut safe: Vec<serde_json::Value> = good.iter().filter(|r| r["label"] == "safe").cloned().collect();
    for r in &mut safe {
        r.as_object_mut().unwrap().retain(|k, _| k != "pair_id" && k != "pair_role");
    }
    dataset(d, "one-class", &safe);
    ok(&["embed", "bench/one-class.toml", "--encoder", "enc", "--device", "cpu"], d);
    let e = fails(&["train", "--train", "bench/one-class.toml", "--device", "cpu", "--out", "x.safetensors"], d);
    assert!(e.contains("one-class") && e.contains("unsafe"), "{e}");

    // A policy missing a category of the data.
    let policy = std::fs::read_to_string(d.join("bench/policy.toml")).unwrap();
    let cut = policy.find("[[category]]\nname = \"category-2\"").expect("category-2 in the policy");
    std::fs::write(d.join("partial-policy.toml"), &policy[..cut]).unwrap();
    #[rustfmt::skip]
    let e = fails(&["pairs", "generate", "--data", "bench/coarse-images.toml", "--policy", "partial-policy.toml", "--editor", "synthetic",
        "--verifier", "guard.safetensors", "--out", "gen", "--device", "cpu"], d);
    assert!(e.contains("category-2") && e.contains("partial-policy.toml"), "{e}");
    let e = fails(
        &[
            "zero-shot",
            "--data",
            "bench/images.toml",
            "--policy",
            "partial-policy.toml",
            "--prompts",
            "bench/prompts.safetensors",
            "--out",
            "z.safetensors",
        ],
        d,
    );
    assert!(e.contains("category-2"), "{e}");

    // An experiment file with an unknown key, and a budget past the pool.
    let experiment = "name = \"x\"\n[data.synthetic]\ndim = 16\ncoarse = 40\npairs = 10\ntest = 40\ntest_pairs = 10\n[sweep]\nbudgets = [8, 500]\nstrategies = [{ kind = \"coarse-only\" }]\nseeds = [0]\n";
    std::fs::write(d.join("typo.toml"), experiment.replace("[sweep]\n", "[sweep]\nbudget = [8]\n")).unwrap();
    let e = fails(&["sweep", "typo.toml", "--out", "typo", "--device", "cpu"], d);
    assert!(e.contains("typo.toml") && e.contains("unknown field `budget`"), "{e}");
    std::fs::write(d.join("big.toml"), experiment).unwrap();
    let e = fails(&["sweep", "big.toml", "--out", "big", "--device", "cpu"], d);
    assert!(e.contains("no strategy can fill budget 500: coarse at budget 500 needs 500 coarse samples, the pool has 40"), "{e}");
    // A budget only some strategies cannot fill leaves them out, and says so
    // in the log of a batch job too (standard error is not a terminal here).
    let mixed =
        experiment.replace("[8, 500]", "[8, 30]").replace("[{ kind = \"coarse-only\" }]", "[{ kind = \"coarse-only\" }, { kind = \"pairs-only\" }]");
    std::fs::write(d.join("mixed.toml"), mixed).unwrap();
    let said = ok_said(&["sweep", "mixed.toml", "--out", "mixed", "--device", "cpu"], d);
    assert!(said.contains("skipping pairs at budget 30: pairs at budget 30 needs 15 pairs, the pool has 10"), "{said}");
}
