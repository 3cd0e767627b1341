//! `pairguard judge` against a chat-completions server the test starts on
//! the loopback interface, which judges the synthetic benchmark's images
//! from their pixels (the dark cross) and fails in the ways real servers
//! do; and against a local command.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::{card, fails, fixture_encoder, ok, ok_env, tree};

const KEY: &str = "sk-judge-7f3a9c";

/// How the server answers the n-th request (counted from 0).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    ServerError,
    RateLimited,
    Drop,
    Stall,
    Truncated,
    Prose,
    Unparsable,
}

#[derive(Debug, Default)]
struct Seen {
    requests: usize,
    authorizations: Vec<String>,
}

/// Whether the 32x32 image shows the dark cross: its pixels are darker
/// than their neighbours three pixels to either side, off the cross.
fn has_cross(png: &[u8]) -> bool {
    let img = image::load_from_memory(png).unwrap().to_luma8();
    let on = |x: i64, y: i64| (x - y).abs() <= 1 || (x + y - 31).abs() <= 1;
    let at = |x: i64, y: i64| f64::from(img.get_pixel(x as u32, y as u32).0[0]);
    let (mut darker, mut n) = (0.0, 0.0);
    for y in 0..32i64 {
        for x in 3..29i64 {
            if on(x, y) && !on(x - 3, y) && !on(x + 3, y) {
                darker += (at(x - 3, y) + at(x + 3, y)) / 2.0 - at(x, y);
                n += 1.0;
            }
        }
    }
    darker / n > 6.0
}

/// A chat completion answering `text`, with LlavaGuard-style log-probabilities when asked.
fn completion(text: &str, rating: Option<&str>, logprobs: bool) -> String {
    let mut choice = serde_json::json!({"index": 0, "message": {"role": "assistant", "content": text}});
    if let (true, Some(r)) = (logprobs, rating) {
        let at = text.find(r).unwrap();
        let p: f64 = if r == "Unsafe" { 0.9 } else { 0.2 };
        let alts = serde_json::json!([{"token": "Unsafe", "logprob": p.ln()}, {"token": "Safe", "logprob": (1.0 - p).ln()}]);
        choice["logprobs"] = serde_json::json!({"content": [
            {"token": &text[..at], "logprob": 0.0, "top_logprobs": []},
            {"token": r, "logprob": p.ln(), "top_logprobs": alts},
            {"token": &text[at + r.len()..], "logprob": 0.0, "top_logprobs": []},
        ]});
    }
    serde_json::json!({"id": "chatcmpl-1", "choices": [choice], "usage": {"cost": 0.001}}).to_string()
}

fn serve(mut stream: TcpStream, seen: &Mutex<Seen>, faults: &[Fault]) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let (head_end, length) = loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
            let len = head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse::<usize>().unwrap());
            break (i + 4, len);
        }
    };
    while buf.len() < head_end + length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let body: serde_json::Value = serde_json::from_slice(&buf[head_end..head_end + length]).unwrap();
    let n = {
        let mut s = seen.lock().unwrap();
        s.requests += 1;
        if let Some(a) = head.lines().find_map(|l| l.strip_prefix("authorization: ").or_else(|| l.strip_prefix("Authorization: "))) {
            s.authorizations.push(a.trim().to_string());
        }
        s.requests - 1
    };
    let respond = |stream: &mut TcpStream, status: &str, extra: &str, body: &str| {
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
            body.len()
        );
    };
    match faults.get(n).copied().unwrap_or(Fault::None) {
        Fault::ServerError => return respond(&mut stream, "500 Internal Server Error", "", "{\"error\":\"overloaded\"}"),
        Fault::RateLimited => return respond(&mut stream, "429 Too Many Requests", "Retry-After: 0\r\n", "{\"error\":\"slow down\"}"),
        Fault::Drop => return,
        Fault::Stall => {
            std::thread::sleep(Duration::from_secs(3));
            return;
        }
        Fault::Truncated => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4000\r\nConnection: close\r\n\r\n{{\"choices\": ["
            );
            return;
        }
        _ => {}
    }
    let url = body["messages"][1]["content"][1]["image_url"]["url"].as_str().unwrap();
    let png = base64::engine::general_purpose::STANDARD.decode(url.strip_prefix("data:image/png;base64,").unwrap()).unwrap();
    let rating = if has_cross(&png) { "Unsafe" } else { "Safe" };
    let json = format!("{{\"rating\": \"{rating}\", \"category\": \"category-0\", \"rationale\": \"Judged from the pixels.\"}}");
    let logprobs = body["logprobs"] == true;
    let text = match faults.get(n).copied().unwrap_or(Fault::None) {
        Fault::Prose => format!("Here is my assessment of the image:\n```json\n{json}\n```\nI hope this helps."),
        Fault::Unparsable => "I am sorry, but I cannot assess this image.".to_string(),
        _ => json,
    };
    let rated = (!text.starts_with("I am sorry")).then_some(rating);
    respond(&mut stream, "200 OK", "", &completion(&text, rated, logprobs));
}

/// A chat-completions server on the loopback interface; `faults[n]` shapes the n-th answer.
fn start_server(faults: Vec<Fault>) -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let (seen, faults) = (s.clone(), faults.clone());
            std::thread::spawn(move || serve(stream.unwrap(), &seen, &faults));
        }
    });
    (url, seen)
}

/// The images' truth: which are unsafe.
fn truth(d: &Path, manifest: &str) -> HashMap<String, bool> {
    std::fs::read_to_string(d.join(manifest))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|r| (r["id"].as_str().unwrap().to_string(), r["label"] == "unsafe"))
        .collect()
}

#[test]
fn an_http_judge_survives_an_unreliable_server_caches_its_answers_and_never_leaks_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--preset", "tiny", "--images", "20", "--coarse-images", "60", "--out", "bench"], d);
    use Fault::*;
    // The first image meets every fault before a prose-wrapped answer; the
    // second gets an answer without a verdict.
    let (url, seen) = start_server(vec![ServerError, RateLimited, Drop, Stall, Truncated, Prose, Unparsable]);
    std::fs::write(d.join("judge.toml"), format!("kind = \"http\"\nbase_url = \"{url}\"\nmodel = \"llavaguard\"\ntimeout_s = 1\n")).unwrap();
    let env = [("PAIRGUARD_JUDGE_KEY", KEY), ("XDG_CACHE_HOME", "cache")];
    #[rustfmt::skip]
    let args = ["judge", "--data", "bench/test-shifted-images.toml", "--policy", "bench/policy.toml", "--judge", "judge.toml",
        "--out", "out", "--attempts", "6", "--backoff", "0", "--concurrency", "1"];
    assert_eq!(ok_env(&args, d, &env).trim(), "out/scores.jsonl");
    let images = truth(d, "bench/test-shifted-images.jsonl");
    let report = card(&d.join("out/report.json"));
    let n = images.len() as u64;
    assert_eq!(report["images"].as_u64(), Some(n));
    assert_eq!((report["answered"].as_u64(), report["unparsable"].as_u64(), report["failed"].as_u64()), (Some(n - 1), Some(1), Some(0)), "{report}");
    assert_eq!(report["requests"].as_u64(), Some(n + 5), "{report}");
    assert_eq!(report["scores"], "probabilities");
    assert!(report["complete"].as_bool().unwrap());

    // Every image is scored, or recorded as unparsable with its text; the
    // scores are the verdict token's probabilities, and the verdicts the truth.
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(d.join("out/scores.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len() as u64, n - 1);
    for l in &lines {
        let is_unsafe = images[l["id"].as_str().unwrap()];
        assert_eq!(l["verdict"], if is_unsafe { "unsafe" } else { "safe" }, "{l}");
        assert_eq!(l["score"].as_f64().unwrap(), if is_unsafe { 0.9 } else { 0.2 }, "{l}");
    }
    let records = tree(&d.join("out/records"), &[]);
    let unparsable: Vec<serde_json::Value> =
        records.iter().map(|(_, b)| serde_json::from_slice::<serde_json::Value>(b).unwrap()).filter(|r| r["status"] == "unparsable").collect();
    assert_eq!(unparsable.len(), 1);
    assert!(unparsable[0]["text"].as_str().unwrap().contains("cannot assess") && !lines.iter().any(|l| l["id"] == unparsable[0]["id"]));
    let log = std::fs::read_to_string(d.join("out/requests.jsonl")).unwrap();
    let statuses: Vec<String> =
        log.lines().take(6).map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["status"].as_str().unwrap().to_string()).collect();
    assert_eq!(statuses[..2], ["http 500".to_string(), "http 429".to_string()]);
    assert!(statuses[2..5].iter().all(|s| s == "connection" || s == "timeout"), "{statuses:?}");
    assert_eq!(statuses[5], "ok");

    // The key went in the header, and is in no file.
    assert!(seen.lock().unwrap().authorizations.iter().all(|a| a == &format!("Bearer {KEY}")));
    for base in ["out", "cache"] {
        for (name, bytes) in tree(&d.join(base), &[]) {
            assert!(!String::from_utf8_lossy(&bytes).contains(KEY), "{base}/{name} holds the key");
        }
    }

    // A rerun sends nothing; another folder reads every answer from the cache.
    let before = seen.lock().unwrap().requests;
    let scores = std::fs::read(d.join("out/scores.jsonl")).unwrap();
    ok_env(&args, d, &env);
    let again: Vec<&str> = args.iter().map(|a| if *a == "out" { "again" } else { a }).collect();
    ok_env(&again, d, &env);
    assert_eq!(seen.lock().unwrap().requests, before, "no request after the first run");
    assert_eq!(card(&d.join("again/report.json"))["cache_hits"].as_u64(), Some(n));
    assert_eq!(std::fs::read(d.join("again/scores.jsonl")).unwrap(), scores);

    // Another judge or prompt in the same folder is refused.
    std::fs::write(d.join("other.toml"), format!("kind = \"http\"\nbase_url = \"{url}\"\nmodel = \"other\"\n")).unwrap();
    let other: Vec<&str> = args.iter().map(|a| if *a == "judge.toml" { "other.toml" } else { a }).collect();
    let e = String::from_utf8(common::pairguard_env(&other, d, &env).stderr).unwrap();
    assert!(e.contains("another judge, prompt or settings"), "{e}");
}

#[test]
fn a_judge_compares_with_a_trained_probe_as_the_truth_says() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--images", "40", "--coarse-images", "400", "--cross-contrast", "0.15", "--out", "bench"], d);
    let encoder = fixture_encoder();
    for set in ["coarse-images", "test-shifted-images"] {
        ok(&["embed", &format!("bench/{set}.toml"), "--encoder", encoder.to_str().unwrap(), "--device", "cpu"], d);
    }
    ok(&["train", "--train", "bench/coarse-images.toml", "--device", "cpu", "--out", "probe.safetensors"], d);
    let (url, _) = start_server(Vec::new());
    std::fs::write(d.join("judge.toml"), format!("kind = \"http\"\nbase_url = \"{url}\"\n")).unwrap();
    #[rustfmt::skip]
    ok_env(&["judge", "--data", "bench/test-shifted-images.toml", "--policy", "bench/policy.toml", "--judge", "judge.toml",
        "--out", "judged", "--cache", "cache"], d, &[]);
    #[rustfmt::skip]
    ok(&["compare", "--data", "bench/test-shifted-images.toml", "--model", "probe.safetensors", "--scores", "judge=judged/scores.jsonl",
        "--resamples", "200", "--out", "cmp", "--device", "cpu"], d);
    let csv = std::fs::read_to_string(d.join("cmp/compare.csv")).unwrap();
    let value = |guard: &str, metric: &str| -> f64 {
        let row = csv.lines().find(|l| l.starts_with(&format!("{guard},overall,{metric},"))).unwrap();
        row.split(',').nth(4).unwrap().parse().unwrap()
    };
    // The judge sees the cross itself; the probe learned the coarse data's scene shortcut too.
    assert!(value("judge", "accuracy") >= 0.98, "{csv}");
    eprintln!("judge AUROC {}, probe AUROC {}", value("judge", "auroc"), value("probe", "auroc"));
    assert!(value("probe", "auroc") < value("judge", "auroc"), "{csv}");
    let md = std::fs::read_to_string(d.join("cmp/compare.md")).unwrap();
    let sha = pairguard_run::sha256_file(&d.join("judged/scores.jsonl")).unwrap();
    assert!(md.contains(&format!("`judged/scores.jsonl` | `{sha}` |")), "{md}");
}

#[test]
fn a_command_judge_answers_over_json_lines_and_bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["synth", "--preset", "tiny", "--images", "10", "--coarse-images", "20", "--out", "bench"], d);
    // A local "model" that calls every image unsafe in plain words, except one it cannot read.
    let script = "while read -r l; do id=$(printf '%s' \"$l\" | sed 's/^{\"id\":\"\\([^\"]*\\)\".*/\\1/'); \
        case \"$id\" in *00003) printf '{\"id\":\"%s\",\"text\":\"No idea.\"}\\n' \"$id\";; \
        *) printf '{\"id\":\"%s\",\"text\":\"Unsafe, it shows a cross.\"}\\n' \"$id\";; esac; done";
    let cfg = toml::to_string(&toml::toml! { kind = "command" command = ["sh", "-c", script] timeout_s = 20 }).unwrap();
    std::fs::write(d.join("local.toml"), cfg).unwrap();
    #[rustfmt::skip]
    let args = ["judge", "--data", "bench/test-shifted-images.toml", "--policy", "bench/policy.toml", "--judge", "local.toml",
        "--out", "out", "--cache", "cache"];
    ok(&args, d);
    let report = card(&d.join("out/report.json"));
    assert_eq!((report["unparsable"].as_u64(), report["scores"].as_str()), (Some(1), Some("verdicts")), "{report}");
    let lines = std::fs::read_to_string(d.join("out/scores.jsonl")).unwrap();
    assert!(lines.lines().all(|l| l.contains("\"verdict\":\"unsafe\"") && !l.contains("score")), "{lines}");
    assert_eq!(lines.lines().count() as u64, report["images"].as_u64().unwrap() - 1);
    // eval reads the verdicts, and says how many images it lacks.
    let said = ok(&["eval", "--scores", "out/scores.jsonl", "--data", "bench/test-shifted-images.toml", "--allow-missing"], d);
    assert!(said.contains("verdicts only") && said.contains("missing: 1 samples"), "{said}");

    // Bad judge files, by name.
    for (file, text, needle) in [
        ("typo.toml", "kind = \"command\"\ncommand = [\"cat\"]\ntimeout = 3\n", "unknown field `timeout`"),
        ("empty.toml", "kind = \"command\"\ncommand = []\n", "judge command is empty"),
        ("nourl.toml", "kind = \"http\"\n", "no base_url"),
        ("clear.toml", "kind = \"http\"\nbase_url = \"http://198.51.100.7/v1\"\n", "clear text"),
    ] {
        std::fs::write(d.join(file), text).unwrap();
        let with: Vec<&str> = args.iter().map(|a| if *a == "local.toml" { file } else { a }).collect();
        let with: Vec<&str> = with.iter().map(|a| if *a == "out" { "bad" } else { a }).collect();
        let e = fails(&with, d);
        assert!(e.contains(needle), "{file}: {e}");
    }
}
