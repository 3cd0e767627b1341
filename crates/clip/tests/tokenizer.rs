//! CLIP's tokenizer against open_clip and transformers on 10,000+ varied
//! strings (tests/fixtures/tokenizer/gen_tokenizer_fixtures.py).

use std::io::Read;
use std::path::{Path, PathBuf};

use pairguard_clip::tokenizer::{CONTEXT, Flavor, Tokenizer};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer")
}

fn gunzip(path: &Path) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_string(&mut s).unwrap();
    s
}

struct Row {
    text: String,
    open_clip: Vec<u32>,
    hf: Vec<u32>,
    mojibake: bool,
}

fn corpus() -> Vec<Row> {
    gunzip(&dir().join("corpus.jsonl.gz"))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let ids = |k: &str| v[k].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
            Row {
                text: v["text"].as_str().unwrap().to_string(),
                open_clip: ids("open_clip"),
                hf: ids("hf"),
                mojibake: v["mojibake"].as_bool().unwrap(),
            }
        })
        .collect()
}

/// The Hub file, unpacked under its own name.
fn hub_tokenizer(tmp: &Path) -> Tokenizer {
    let path = tmp.join("tokenizer.json");
    std::fs::write(&path, gunzip(&dir().join("tokenizer.json.gz"))).unwrap();
    Tokenizer::from_file(&path).unwrap()
}

fn report(name: &str, failures: &[(String, Vec<u32>, Vec<u32>)]) -> String {
    let shown: Vec<String> = failures.iter().take(8).map(|(t, want, got)| format!("{t:?}\n  want {want:?}\n  got  {got:?}")).collect();
    format!("{name}: {} strings differ\n{}", failures.len(), shown.join("\n"))
}

#[test]
fn hugging_face_file_matches_transformers_on_every_string() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = hub_tokenizer(tmp.path());
    assert_eq!((tok.flavor(), tok.vocab_size(), tok.start_token(), tok.end_token()), (Flavor::HuggingFace, 49408, 49406, 49407));
    let rows = corpus();
    assert!(rows.len() >= 10_000, "{} strings", rows.len());
    let failures: Vec<_> = rows.iter().map(|r| (r.text.clone(), r.hf.clone(), tok.tokenize(&r.text, CONTEXT))).filter(|(_, w, g)| w != g).collect();
    assert!(failures.is_empty(), "{}", report("tokenizer.json vs transformers", &failures));
}

#[test]
fn open_clip_vocab_matches_open_clip_except_mojibake_repair() {
    let tok = Tokenizer::from_file(&dir().join("bpe_simple_vocab_16e6.txt.gz")).unwrap();
    assert_eq!((tok.flavor(), tok.vocab_size(), tok.start_token(), tok.end_token()), (Flavor::OpenClip, 49408, 49406, 49407));
    let rows = corpus();
    let (mut failures, mut mojibake_differs, mut long) = (Vec::new(), 0, 0);
    for r in &rows {
        let got = tok.tokenize(&r.text, CONTEXT);
        long += usize::from(got.len() == CONTEXT);
        if got != r.open_clip {
            if r.mojibake {
                mojibake_differs += 1;
            } else {
                failures.push((r.text.clone(), r.open_clip.clone(), got));
            }
        }
    }
    assert!(failures.is_empty(), "{}", report("bpe_simple_vocab vs open_clip", &failures));
    // ftfy's heuristic repair of mojibake is the one step not reproduced:
    // the strings it changes are the only ones that may differ, and they
    // are few. Their count is fixed by the fixture, so a tokenizer change
    // that alters one of them shows here.
    let flagged = rows.iter().filter(|r| r.mojibake).count();
    assert!(flagged < rows.len() / 50, "{flagged} of {} strings are flagged as mojibake", rows.len());
    assert_eq!((mojibake_differs, flagged), (112, 128), "flagged strings that differ, of those flagged");
    assert!(long > 200, "only {long} strings reach the context; truncation is not exercised");
}

#[test]
fn the_two_files_agree_on_plain_text_and_keep_the_end_token() {
    let tmp = tempfile::tempdir().unwrap();
    let hf = hub_tokenizer(tmp.path());
    let oc = Tokenizer::from_file(&dir().join("bpe_simple_vocab_16e6.txt.gz")).unwrap();
    for text in ["a photo of a raised middle finger.", "Two people shaking hands, 2 dogs & a cat!", "it's 12:30 o'clock"] {
        assert_eq!(hf.tokenize(text, CONTEXT), oc.tokenize(text, CONTEXT), "{text}");
    }
    let long = "word ".repeat(200);
    let ids = oc.tokenize(&long, CONTEXT);
    assert_eq!((ids.len(), ids[0], ids[CONTEXT - 1]), (CONTEXT, 49406, 49407));
    assert_eq!(oc.tokenize(&long, 5), vec![49406, ids[1], ids[2], ids[3], 49407]);
}

#[test]
fn broken_vocabulary_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let short = tmp.path().join("bpe.txt");
    std::fs::write(&short, "#version\na b\n").unwrap();
    let e = Tokenizer::from_file(&short).unwrap_err().to_string();
    assert!(e.contains("bpe.txt") && e.contains("lines"), "{e}");
    let json = tmp.path().join("tokenizer.json");
    let text = gunzip(&dir().join("tokenizer.json.gz"));
    for (from, to, needle) in
        [("\"Lowercase\"", "\"Strip\"", "normalizer"), ("\"BPE\"", "\"WordPiece\"", "CLIP's is BPE"), ("<|endoftext|>", "<|eot|>", "<|endoftext|>")]
    {
        std::fs::write(&json, text.replacen(from, to, 1)).unwrap();
        let e = Tokenizer::from_file(&json).unwrap_err().to_string();
        assert!(e.contains("tokenizer.json") && e.contains(needle), "{from}: {e}");
    }
    std::fs::write(&json, "{").unwrap();
    assert!(Tokenizer::from_file(&json).unwrap_err().to_string().contains("not a tokenizer.json"));
    assert!(Tokenizer::from_file(&tmp.path().join("missing.txt.gz")).unwrap_err().to_string().contains("missing.txt.gz"));
}
