//! Fuzzing of every parser that reads files made by others: dataset
//! manifests (JSONL, CSV), descriptors, experiment files, policies, the
//! tokenizer on arbitrary text, embedding stores, guard files, Q16 prompt
//! files (npy), and the editors' answers (HTTP body, command line).
//!
//! Mutation fuzzing from valid seeds: bit flips, bytes and tokens a parser
//! treats specially, insertions, deletions, repeats, splices of two seeds,
//! truncation. Inputs are at most 64 KiB. Each input must give a result or a
//! named error: no panic, no call may allocate more than
//! `64 MiB + 64 x the input's length` at once (counted by the allocator),
//! and none may take more than 10 s (a watchdog ends the test). A failing
//! input is written to `target/fuzz-failures/` for replay.
//!
//! Each target runs `PAIRGUARD_FUZZ_SECONDS` seconds (default 2, so the
//! README's test command stays short); `.ci/run` gives them 20 each. The
//! generator is seeded (`PAIRGUARD_FUZZ_SEED`, default 0) and the number of
//! inputs each target saw is printed.

mod common;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::ok;
use pairguard_alloc::Counting;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MAX_INPUT: usize = 64 << 10;

/// Bytes and tokens the formats give meaning to.
const DICTIONARY: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"=",
    b"\n",
    b"\r\n",
    b"\0",
    b"#",
    b"'",
    b"[[",
    b"]]",
    b"\"\"\"",
    b"NaN",
    b"nan",
    b"inf",
    b"-inf",
    b"1e999",
    b"-1",
    b"0",
    b"18446744073709551616",
    b"99999999999999999999999",
    b"4294967295",
    b"true",
    b"null",
    b"..",
    b"../../",
    b"/etc/passwd",
    b"\\u0000",
    b"\\ud800",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xe2\x80\xae",
    b"\xf0\x9f\x98\x80",
    b"\xcc\x81",
    b"safe",
    b"unsafe",
    b"category",
    b"label",
    b"image",
    b"id",
    b"shape",
    b"dtype",
    b"data_offsets",
    b"F32",
    b"F64",
    b"BF16",
    b"<f4",
    b"<f2",
    b"(2, 4)",
    b"(1099511627776, 1099511627776)",
];

fn mutate(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut x = seeds[rng.random_range(0..seeds.len())].clone();
    for _ in 0..rng.random_range(1..=6) {
        let at = |rng: &mut StdRng, x: &Vec<u8>| rng.random_range(0..=x.len());
        match rng.random_range(0..8) {
            0 if !x.is_empty() => {
                let i = rng.random_range(0..x.len());
                x[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !x.is_empty() => {
                let i = rng.random_range(0..x.len());
                x[i] = rng.random();
            }
            2 => {
                let i = at(rng, &x);
                let token = DICTIONARY[rng.random_range(0..DICTIONARY.len())];
                x.splice(i..i, token.iter().copied());
            }
            3 if !x.is_empty() => {
                let i = rng.random_range(0..x.len());
                let j = (i + rng.random_range(1..=16)).min(x.len());
                x.drain(i..j);
            }
            4 if !x.is_empty() => {
                // A piece repeated: long lines, deep nesting.
                let i = rng.random_range(0..x.len());
                let piece: Vec<u8> = x[i..(i + rng.random_range(1..=32)).min(x.len())].to_vec();
                let times = rng.random_range(2..=256);
                x.splice(i..i, piece.iter().copied().cycle().take(piece.len() * times));
            }
            5 => {
                let other = &seeds[rng.random_range(0..seeds.len())];
                let (i, j) = (at(rng, &x), rng.random_range(0..=other.len()));
                x.truncate(i);
                x.extend_from_slice(&other[j..]);
            }
            6 => {
                let i = at(rng, &x);
                x.truncate(i);
            }
            _ => {
                let i = at(rng, &x);
                let digits = rng.random_range(1..=24);
                x.splice(i..i, (0..digits).map(|_| b'0' + rng.random_range(0..10u8)));
            }
        }
    }
    x.truncate(MAX_INPUT);
    x
}

/// Parses one input, dropping the result: only a panic or an allocation counts.
type Parse<'a> = Box<dyn Fn(&[u8]) + 'a>;

struct Target<'a> {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    run: Parse<'a>,
}

fn seconds() -> f64 {
    std::env::var("PAIRGUARD_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0)
}

fn failures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-failures")
}

/// The longest one input may take to parse.
const SLOW: Duration = Duration::from_secs(10);

/// The input being parsed, and since when, for the watchdog.
type Current = Mutex<Option<(&'static str, Instant, Vec<u8>)>>;

/// Ends the process, after saving the input, when one input takes longer
/// than [`SLOW`]: a parse that never ends cannot be interrupted in place.
fn watchdog(current: &'static Current) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let guard = current.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((name, since, input)) = guard.as_ref().filter(|c| c.1.elapsed() > SLOW) {
                std::fs::create_dir_all(failures_dir()).unwrap();
                let saved = failures_dir().join(format!("{name}-slow.bin"));
                std::fs::write(&saved, input).unwrap();
                eprintln!("{name}: an input has been parsing for {:.0} s; saved to {}", since.elapsed().as_secs_f64(), saved.display());
                std::process::exit(101);
            }
        }
    });
}

/// Runs one target for the time given; panics (after saving the input) on
/// the first panic or allocation past the limit.
fn fuzz(target: &Target, seed: u64, current: &Current) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds());
    let mut count = 0;
    // The seeds themselves first, then mutants.
    let mut next = target.seeds.clone().into_iter();
    while Instant::now() < deadline || count < target.seeds.len() {
        let input = next.next().unwrap_or_else(|| mutate(&mut rng, &target.seeds));
        *current.lock().unwrap() = Some((target.name, Instant::now(), input.clone()));
        let limit = (64 << 20) + 64 * input.len();
        Counting::reset_peak();
        let before = Counting::live();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| (target.run)(&input)));
        let used = Counting::peak().saturating_sub(before);
        if result.is_err() || used > limit {
            std::fs::create_dir_all(failures_dir()).unwrap();
            let saved = failures_dir().join(format!("{}-{seed}-{count}.bin", target.name));
            std::fs::write(&saved, &input).unwrap();
            let what = if result.is_err() { "panicked".to_string() } else { format!("allocated {used} bytes at once, over {limit}") };
            panic!("{}: input {count} {what}; saved to {}", target.name, saved.display());
        }
        count += 1;
    }
    count
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    let path = path.as_ref();
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn npy_f32(shape: (usize, usize), values: &[f32]) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", shape.0, shape.1);
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    out
}

#[test]
fn parsers_of_others_files_never_panic_or_overallocate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--preset", "tiny", "--images", "6", "--coarse-images", "4", "--out", "bench"], d);
    ok(&["train", "--train", "bench/coarse.toml", "--device", "cpu", "--out", "guard.safetensors"], d);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let work = d.join("fuzz");
    std::fs::create_dir(&work).unwrap();
    let at = |name: &str, bytes: &[u8]| {
        let p = work.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };

    let offline = pairguard_data::LoadOptions {
        image_check: pairguard_data::images::ImageCheck::None,
        embeddings: false,
        hub: pairguard_data::hub::HubOptions { offline: true, ..Default::default() },
        ..Default::default()
    };
    let jsonl_descriptor = format!(
        "name = \"f\"\nformat = \"jsonl\"\nmanifest = [\"m.jsonl\"]\nroot = \"{}\"\n[columns]\nimage = \"image\"\nlabel = \"label\"\ncategory = \"category\"\nsource = \"source\"\npair_id = \"pair_id\"\npair_role = \"pair_role\"\n",
        d.join("bench").display()
    );
    let csv_descriptor = "name = \"c\"\nformat = \"csv\"\nmanifest = [\"m.csv\"]\nroot = \".\"\n[columns]\nimage = \"file\"\nlabel = \"verdict\"\ncategory = \"kind\"\nsource = \"origin\"\n[labels]\nsafe = [\"Safe\"]\nunsafe = [\"Unsafe\"]\n[sources]\nreal = [\"Laion5B\"]\nai-generated = [\"Lexica\"]\n";
    at("j.toml", jsonl_descriptor.as_bytes());
    at("c.toml", csv_descriptor.as_bytes());
    let tokenizer = pairguard_clip::Tokenizer::from_file(&repo.join("crates/clip/tests/fixtures/tokenizer/bpe_simple_vocab_16e6.txt.gz")).unwrap();
    let encoder = pairguard_data::EncoderId { dim: 4, ..pairguard_data::EmbeddingStore::load(&d.join("bench/coarse.safetensors")).unwrap().encoder };
    let store = pairguard_data::EmbeddingStore::load(&d.join("bench/coarse.safetensors")).unwrap();
    store.save(&work.join("s.safetensors")).unwrap();
    let (store_tensor, store_index) = (read(work.join("s.safetensors")), read(work.join("s.json")));

    let targets: Vec<Target> = vec![
        Target {
            name: "jsonl-manifest",
            seeds: vec![read(d.join("bench/images.jsonl")), read(d.join("bench/pairs.jsonl"))],
            run: Box::new(|b| drop(pairguard_data::Dataset::load_with_report(&{ at("m.jsonl", b); work.join("j.toml") }, &offline))),
        },
        Target {
            name: "csv-manifest",
            seeds: vec![b"file,verdict,kind,origin\nx.png,Unsafe,Self harm,Laion5B\ny.png,Safe,,Lexica\n".to_vec()],
            run: Box::new(|b| drop(pairguard_data::Dataset::load_with_report(&{ at("m.csv", b); work.join("c.toml") }, &offline))),
        },
        Target {
            name: "descriptor",
            seeds: vec![read(d.join("bench/images.toml")), read(repo.join("datasets/unsafebench.toml")), csv_descriptor.as_bytes().to_vec()],
            run: Box::new(|b| drop(pairguard_data::Descriptor::from_file(&at("d.toml", b)))),
        },
        Target {
            name: "experiment",
            seeds: vec![read(repo.join("experiments/demo.toml")), read(repo.join("experiments/generated-pairs.toml"))],
            run: Box::new(|b| drop(pairguard_experiments::Experiment::from_file(&at("e.toml", b)))),
        },
        Target {
            name: "policy",
            seeds: vec![read(d.join("bench/policy.toml"))],
            run: Box::new(|b| drop(pairguard_data::Policy::from_file(&at("p.toml", b)))),
        },
        Target {
            name: "tokenizer",
            seeds: vec![b"a photo of a cat, 12 dogs & a hand-drawn \xe2\x9c\x8c sign!".to_vec(), "Ünïcödé 日本語 テキスト 🙂".as_bytes().to_vec()],
            run: Box::new(|b| {
                let text = String::from_utf8_lossy(b);
                let ids = tokenizer.tokenize(&text, 77);
                assert!((2..=77).contains(&ids.len()), "start and end tokens, cut to the context: {} ids", ids.len());
            }),
        },
        Target {
            name: "store-tensor",
            seeds: vec![store_tensor.clone()],
            run: Box::new(|b| {
                // The index's hash follows the tensor file, so the parser itself is reached.
                let mut index: serde_json::Value = serde_json::from_slice(&store_index).unwrap();
                index["tensor_sha256"] = pairguard_run::sha256_bytes(b).into();
                at("t.json", &serde_json::to_vec(&index).unwrap());
                drop(pairguard_data::EmbeddingStore::load(&at("t.safetensors", b)));
            }),
        },
        Target {
            name: "store-index",
            seeds: vec![store_index.clone()],
            run: Box::new(|b| {
                at("i.safetensors", &store_tensor);
                at("i.json", b);
                drop(pairguard_data::EmbeddingStore::load(&work.join("i.safetensors")));
            }),
        },
        Target {
            name: "guard-file",
            seeds: vec![read(d.join("guard.safetensors"))],
            run: Box::new(|b| drop(pairguard_model::GuardModel::load(&at("g.safetensors", b)))),
        },
        Target {
            name: "q16-npy",
            seeds: vec![npy_f32((2, 4), &[0.5, -0.5, 0.25, 1.0, 0.0, 0.1, -0.2, 0.3])],
            run: Box::new(|b| drop(pairguard_model::published::q16(&at("q.npy", b), &encoder))),
        },
        Target {
            name: "http-editor-answer",
            seeds: vec![br#"{"data": [{"b64_json": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="}], "usage": {"cost": 0.04}}"#.to_vec()],
            run: Box::new(|b| drop(pairguard_experiments::pairs::http::parse_answer(b))),
        },
        Target {
            name: "command-editor-answer",
            seeds: vec![br#"{"id": "a", "image": "a-edit.png", "mask": "m.png", "cost": 1.5}"#.to_vec(), br#"{"id": "a", "error": "out of memory"}"#.to_vec()],
            run: Box::new(|b| drop(pairguard_experiments::pairs::command::Answer::parse(&String::from_utf8_lossy(b), "a"))),
        },
        Target {
            name: "http-judge-answer",
            seeds: vec![
                br#"{"choices": [{"message": {"content": "Sure: {\"rating\": \"Unsafe\", \"category\": \"O2\"}"}, "logprobs": {"content": [{"token": "{\"rating\": \"", "logprob": 0.0, "top_logprobs": []}, {"token": "Unsafe", "logprob": -0.1, "top_logprobs": [{"token": "Unsafe", "logprob": -0.1}, {"token": "Safe", "logprob": -2.3}]}]}}], "usage": {"cost": 0.01}}"#.to_vec(),
            ],
            run: Box::new(|b| {
                if let Ok(reply) = pairguard_experiments::judge::http::parse_reply(b) {
                    drop(pairguard_experiments::judge::answer::parse(&reply.text));
                }
            }),
        },
        Target {
            name: "judge-verdict-text",
            seeds: vec![b"Here you go {\"rating\": \"Safe\", \"rationale\": \"a {nested} brace\"} done".to_vec(), b"Unsafe. A cross.".to_vec()],
            run: Box::new(|b| drop(pairguard_experiments::judge::answer::parse(&String::from_utf8_lossy(b)))),
        },
        Target {
            name: "command-judge-answer",
            seeds: vec![br#"{"id": "a", "text": "{\"rating\": \"Unsafe\"}", "p_unsafe": 0.8}"#.to_vec()],
            run: Box::new(|b| drop(pairguard_experiments::judge::command::Answer::parse(&String::from_utf8_lossy(b), "a"))),
        },
    ];
    let seed: u64 = std::env::var("PAIRGUARD_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    static CURRENT: Current = Mutex::new(None);
    watchdog(&CURRENT);
    for target in &targets {
        let t0 = Instant::now();
        let n = fuzz(target, seed, &CURRENT);
        eprintln!("fuzz {}: {n} inputs in {:.1} s, no panic, allocations within the limit", target.name, t0.elapsed().as_secs_f64());
        assert!(n > target.seeds.len(), "{}: no mutant ran", target.name);
    }
}
