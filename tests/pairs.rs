//! `pairguard pairs generate` as a user runs it: with the built-in editor,
//! with a local command, and with the HTTP editor against a real server on
//! the loopback interface that the test starts. The server edits images as
//! the built-in editor does and injects the faults an image API shows:
//! server errors, rate limits with `Retry-After`, malformed base64, an image
//! of the wrong size, a dropped connection and a timeout.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::{copy_fixture_encoder, fixture_encoder, ok, ok_env, pairguard_env as pairguard};

/// The synthetic benchmark's images, the fixture encoder, and a verifier
/// trained on the benchmark's given pairs.
fn setup(d: &Path) {
    ok(&["synth", "--preset", "tiny", "--images", "120", "--coarse-images", "40", "--out", "bench"], d);
    copy_fixture_encoder(d);
    ok(&["embed", "bench/images.toml", "--model", "enc", "--device", "cpu"], d);
    ok(&["train", "--train", "bench/images.toml", "--device", "cpu", "--out", "verifier.safetensors"], d);
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn generate<'a>(out: &'a str, editor: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "pairs",
        "generate",
        "--data",
        "bench/coarse-images.toml",
        "--policy",
        "bench/policy.toml",
        "--editor",
        editor,
        "--verifier",
        "verifier.safetensors",
        "--out",
        out,
        "--device",
        "cpu",
    ];
    a.extend_from_slice(extra);
    a
}

/// The files that make the pair set.
fn pair_set(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![("manifest.jsonl".to_string(), std::fs::read(dir.join("manifest.jsonl")).unwrap())];
    for row in json_lines(&dir.join("manifest.jsonl")) {
        let image = row["image"].as_str().unwrap().to_string();
        files.push((image.clone(), std::fs::read(dir.join(&image)).unwrap()));
    }
    files
}

#[test]
fn the_builtin_editor_makes_a_valid_pair_set_and_a_run_resumes_to_the_same_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let printed = ok(&generate("whole", "synthetic", &[]), d);
    assert_eq!(printed.trim(), "whole/pairs.toml");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("whole/report.json")).unwrap()).unwrap();
    assert_eq!((report["drawn"].as_u64(), report["complete"].as_bool()), (Some(40), Some(true)));
    assert!(report["kept"].as_u64().unwrap() >= 30, "{report}");
    ok(&["data", "validate", "--decode", "whole/pairs.toml"], d);
    let stats: serde_json::Value = serde_json::from_str(&ok(&["data", "stats", "--json", "whole/pairs.toml"], d)).unwrap();
    assert_eq!(stats["pairs"], report["kept"]);
    let rows = json_lines(&d.join("whole/manifest.jsonl"));
    assert_eq!(rows[1]["source"], "ai-generated");
    assert_eq!(rows[0]["group"], rows[1]["group"]);
    assert_ne!(rows[0]["label"], rows[1]["label"]);

    // Stopped by a request budget, then resumed: the same pair set.
    let e = String::from_utf8(pairguard(&generate("part", "synthetic", &["--budget", "15"]), d, &[]).stderr).unwrap();
    assert!(e.contains("incomplete"), "{e}");
    let partial: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("part/report.json")).unwrap()).unwrap();
    assert_eq!((partial["requests"].as_u64(), partial["pending"].as_u64()), (Some(15), Some(25)));
    ok(&generate("part", "synthetic", &[]), d);
    assert!(pair_set(&d.join("whole")) == pair_set(&d.join("part")), "a resumed run makes the same pairs");

    // Each check rejects by name: content (cosine) and the label flip.
    ok(&generate("strict", "synthetic", &["--sources", "5", "--min-cosine", "1"]), d);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("strict/report.json")).unwrap()).unwrap();
    assert_eq!(report["by_reason"]["content changed"].as_u64(), Some(5), "{report}");
    // A verifier that learned the scene instead of the cross sees no flip.
    let rows: Vec<serde_json::Value> = json_lines(&d.join("bench/coarse-images.jsonl"))
        .into_iter()
        .map(|mut r| {
            r["label"] = if r["cluster"].as_u64().unwrap() < 2 { "unsafe" } else { "safe" }.into();
            r
        })
        .collect();
    std::fs::write(d.join("bench/scene.jsonl"), rows.iter().map(|r| format!("{r}\n")).collect::<String>()).unwrap();
    let descriptor = std::fs::read_to_string(d.join("bench/coarse-images.toml")).unwrap();
    std::fs::write(d.join("bench/scene.toml"), descriptor.replace("coarse-images.jsonl", "scene.jsonl").replace("synthetic-coarse-images", "scene"))
        .unwrap();
    ok(&["embed", "bench/scene.toml", "--model", "enc", "--device", "cpu"], d);
    ok(&["train", "--train", "bench/scene.toml", "--device", "cpu", "--out", "scene.safetensors"], d);
    let mut args = generate("scene", "synthetic", &["--sources", "5"]);
    args[9] = "scene.safetensors";
    ok(&args, d);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("scene/report.json")).unwrap()).unwrap();
    assert_eq!(report["by_reason"]["label not flipped"].as_u64(), Some(5), "{report}");

    // The verifier's encoder named explicitly, by another path: the same pairs.
    let enc = d.join("enc");
    ok(&generate("named", "synthetic", &["--encoder", enc.to_str().unwrap(), "--sources", "10"]), d);
    assert!(pair_set(&d.join("named")).len() > 1);

    // Refusals, by name.
    std::fs::create_dir(d.join("gelu")).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture_encoder().join("../hf-gelu").join(f), d.join("gelu").join(f)).unwrap();
    }
    for (extra, needle) in [
        (vec!["--min-cosine", "2"], "--min-cosine"),
        (vec!["--margin", "0.7"], "--margin"),
        (vec!["--attempts", "0"], "--attempts"),
        (vec!["--max-outside-change", "-1"], "--max-outside-change"),
        (vec!["--backoff", "5", "--max-backoff", "1"], "backoff"),
        (vec!["--encoder", "gelu"], "encoder mismatch"),
    ] {
        let out = pairguard(&generate("bad", "synthetic", &extra), d, &[]);
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && e.contains(needle), "{extra:?}: {e}");
    }
    let e = String::from_utf8(pairguard(&generate("whole", "synthetic", &["--seed", "4"]), d, &[]).stderr).unwrap();
    assert!(e.contains("other data, policy, editor, verifier or settings"), "{e}");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/safetypairs.toml");
    let mut args = generate("x", "synthetic", &[]);
    args[5] = shipped.to_str().unwrap();
    let e = String::from_utf8(pairguard(&args, d, &[]).stderr).unwrap();
    assert!(e.contains("safetypairs.toml has no category category-0 (14 images)"), "{e}");
}

/// How the loopback server answers the n-th request (counted from 0).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    ServerError,
    RateLimited,
    BadBase64,
    NotAnImage,
    Redirect,
    WrongSize,
    Drop,
    Slow,
}

#[derive(Debug, Default)]
struct Seen {
    paths: Vec<String>,
    authorizations: Vec<String>,
    prompts: Vec<String>,
}

/// A one-request-per-connection HTTP server editing synthetic images.
struct Server {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

fn start_server(truth_file: &Path, faults: Vec<Fault>) -> Server {
    let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(truth_file).unwrap()).unwrap();
    // Every image the benchmark drew, by its pixels: the server finds the
    // source from the image it is sent, as a real editor sees only pixels.
    let bench = truth_file.parent().unwrap().to_path_buf();
    let mut by_pixels: HashMap<Vec<u8>, (PathBuf, bool)> = HashMap::new();
    for (id, t) in truth["images"].as_object().unwrap() {
        let path = bench.join("images").join(format!("{id}.png"));
        if path.is_file() {
            by_pixels.insert(image::open(&path).unwrap().to_rgb8().into_raw(), (path, t["harmful"].as_bool().unwrap()));
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (seen2, faults) = (seen.clone(), Arc::new(faults));
    let count = Arc::new(Mutex::new(0usize));
    let by_pixels = Arc::new(by_pixels);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (seen, faults, count, by_pixels) = (seen2.clone(), faults.clone(), count.clone(), by_pixels.clone());
            std::thread::spawn(move || serve(stream, &seen, &faults, &count, &by_pixels));
        }
    });
    Server { url, seen }
}

fn serve(mut stream: TcpStream, seen: &Mutex<Seen>, faults: &[Fault], count: &Mutex<usize>, by_pixels: &HashMap<Vec<u8>, (PathBuf, bool)>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = stream.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let header =
        |name: &str| head.lines().find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string()));
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = &buf[header_end..header_end + length];
    let boundary = header("content-type").and_then(|v| v.split("boundary=").nth(1).map(|b| b.trim_matches('"').to_string())).unwrap();
    let mut fields: HashMap<String, Vec<u8>> = HashMap::new();
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut starts: Vec<usize> = text.windows(delimiter.len()).enumerate().filter(|(_, w)| *w == delimiter.as_bytes()).map(|(i, _)| i).collect();
    starts.push(text.len());
    for w in starts.windows(2) {
        let part = &text[w[0] + delimiter.len()..w[1]];
        let Some(p) = part.windows(4).position(|x| x == b"\r\n\r\n") else { continue };
        let headers = String::from_utf8_lossy(&part[..p]);
        let Some(name) = headers.split("name=\"").nth(1).and_then(|n| n.split('"').next()) else { continue };
        let content = &part[p + 4..part.len().saturating_sub(2)];
        fields.insert(name.to_string(), content.to_vec());
    }
    let n = {
        let mut c = count.lock().unwrap();
        *c += 1;
        *c - 1
    };
    {
        let mut s = seen.lock().unwrap();
        s.paths.push(head.lines().next().unwrap_or_default().to_string());
        s.authorizations.push(header("authorization").unwrap_or_default());
        s.prompts.push(String::from_utf8_lossy(fields.get("prompt").map(Vec::as_slice).unwrap_or_default()).to_string());
    }
    let fault = faults.get(n).copied().unwrap_or(Fault::None);
    let respond = |stream: &mut TcpStream, status: &str, extra: &str, body: &str| {
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        );
    };
    let png = |img: &image::RgbImage| {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        base64::engine::general_purpose::STANDARD.encode(out.into_inner())
    };
    match fault {
        Fault::ServerError => respond(&mut stream, "500 Internal Server Error", "", "{\"error\": \"busy\"}"),
        Fault::RateLimited => respond(&mut stream, "429 Too Many Requests", "Retry-After: 1\r\n", "{\"error\": \"slow down\"}"),
        Fault::BadBase64 => respond(&mut stream, "200 OK", "", "{\"data\": [{\"b64_json\": \"not base64 at all!\"}]}"),
        Fault::Redirect => respond(&mut stream, "302 Found", "Location: http://127.0.0.1:9/elsewhere\r\n", "{}"),
        Fault::NotAnImage => respond(&mut stream, "200 OK", "", "{\"data\": [{\"b64_json\": \"aGVsbG8gd29ybGQ=\"}]}"),
        Fault::WrongSize => {
            let small = png(&image::RgbImage::from_pixel(16, 16, image::Rgb([1, 2, 3])));
            respond(&mut stream, "200 OK", "", &format!("{{\"data\": [{{\"b64_json\": \"{small}\"}}]}}"));
        }
        Fault::Drop => drop(stream),
        Fault::Slow => std::thread::sleep(Duration::from_secs(3)),
        Fault::None => {
            let source = image::load_from_memory(&fields["image"]).unwrap().to_rgb8();
            let Some((path, harmful)) = by_pixels.get(source.as_raw()) else {
                respond(&mut stream, "400 Bad Request", "", "{\"error\": \"unknown image\"}");
                return;
            };
            // The pair partner drawn by the benchmark: the same image with the cross flipped.
            let id = path.file_stem().unwrap().to_string_lossy().to_string();
            let truth: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path.parent().unwrap().parent().unwrap().join("images-truth.json")).unwrap()).unwrap();
            let t = &truth["images"][&id];
            let edited = render(t, !harmful, &truth);
            respond(&mut stream, "200 OK", "", &format!("{{\"created\": 0, \"data\": [{{\"b64_json\": \"{}\"}}], \"cost\": 0.25}}", png(&edited)));
        }
    }
}

/// The benchmark's drawing, through the data crate.
fn render(t: &serde_json::Value, harmful: bool, truth: &serde_json::Value) -> image::RgbImage {
    let all: pairguard_data::synthetic::ImagesTruth = serde_json::from_value(truth.clone()).unwrap();
    let t: pairguard_data::synthetic::ImageTruth = serde_json::from_value(t.clone()).unwrap();
    all.render(&t, harmful)
}

#[test]
fn the_http_editor_survives_an_unreliable_server_and_never_leaks_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    use Fault::*;
    let server = start_server(&d.join("bench/images-truth.json"), vec![ServerError, RateLimited, BadBase64, WrongSize, Drop, Slow]);
    std::fs::write(
        d.join("editor.toml"),
        format!("kind = \"http\"\nbase_url = \"{}\"\nmodel = \"edit-model-1\"\nkey_env = \"TEST_EDITOR_KEY\"\ntimeout_s = 1.0\n", server.url),
    )
    .unwrap();
    let key = "sk-test-0123456789-secret";
    let args = generate("http", "editor.toml", &["--concurrency", "1", "--attempts", "6", "--backoff", "0.05", "--sources", "12"]);
    ok_env(&args, d, &[("TEST_EDITOR_KEY", key)]);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("http/report.json")).unwrap()).unwrap();
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(report["by_reason"]["size 16x16, the original is 32x32"].as_u64(), Some(1), "{report}");
    assert_eq!(report["kept"].as_u64().unwrap() + report["rejected"].as_u64().unwrap(), 12);
    // 12 sources; 5 faults cost a retry each (the wrong size is a rejection, not a retry).
    assert_eq!(report["requests"].as_u64(), Some(17), "{report}");
    let log = json_lines(&d.join("http/requests.jsonl"));
    let statuses: Vec<&str> = log.iter().map(|l| l["status"].as_str().unwrap()).collect();
    assert_eq!(&statuses[..6], ["http 500", "http 429", "malformed response", "ok", "connection", "timeout"], "{statuses:?}");
    // The retry after the 429 waited the second the server asked for.
    let started = |i: usize| log[i]["started"].as_f64().unwrap();
    assert!(started(2) - started(1) >= 1.0, "Retry-After honoured: {} s", started(2) - started(1));
    // Eleven edits came back whole, at 0.25 each.
    assert!((report["cost"].as_f64().unwrap() - 0.25 * 11.0).abs() < 1e-9, "{report}");
    // Every request went to the configured endpoint, with the key, and the
    // key is nowhere in what was written.
    let seen = server.seen.lock().unwrap();
    assert!(seen.paths.iter().all(|p| p.starts_with("POST /v1/images/edits HTTP/1.1")), "{:?}", seen.paths);
    assert!(seen.authorizations.iter().all(|a| a == &format!("Bearer {key}")));
    assert!(seen.prompts.iter().all(|p| p.contains("a dark cross")));
    let mut stack = vec![d.join("http")];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let f = e.unwrap().path();
            if f.is_dir() {
                stack.push(f);
            } else {
                let bytes = std::fs::read(&f).unwrap();
                assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()), "the key is in {}", f.display());
            }
        }
    }
    drop(seen);

    // The same sources through a well-behaved server make the same pair set.
    let calm = start_server(&d.join("bench/images-truth.json"), vec![]);
    std::fs::write(d.join("calm.toml"), format!("kind = \"http\"\nbase_url = \"{}\"\nkey_env = \"TEST_EDITOR_KEY\"\n", calm.url)).unwrap();
    ok(&generate("calm", "calm.toml", &["--sources", "12"]), d);
    let calm_rows = json_lines(&d.join("calm/manifest.jsonl"));
    let rows = json_lines(&d.join("http/manifest.jsonl"));
    assert_eq!(calm_rows.len(), rows.len() + 2, "one pair fewer: the wrong-size edit was rejected");

    // With --resize, an edit of another size is resized and judged on its content.
    let resized = start_server(&d.join("bench/images-truth.json"), vec![WrongSize]);
    std::fs::write(d.join("resized.toml"), format!("kind = \"http\"\nbase_url = \"{}\"\n", resized.url)).unwrap();
    ok(&generate("resized", "resized.toml", &["--sources", "1", "--resize"]), d);
    let record = std::fs::read_dir(d.join("resized/records")).unwrap().next().unwrap().unwrap().path();
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(record).unwrap()).unwrap();
    let reasons = record["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty() && reasons.iter().all(|r| !r.as_str().unwrap().starts_with("size")), "{record}");

    // Bytes that are not an image are a rejection, said so.
    let garbled = start_server(&d.join("bench/images-truth.json"), vec![NotAnImage]);
    std::fs::write(d.join("garbled.toml"), format!("kind = \"http\"\nbase_url = \"{}\"\n", garbled.url)).unwrap();
    ok(&generate("garbled", "garbled.toml", &["--sources", "1"]), d);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("garbled/report.json")).unwrap()).unwrap();
    assert_eq!(report["by_reason"]["undecodable"].as_u64(), Some(1), "{report}");
    let category = report["by_category"].as_object().unwrap().keys().next().unwrap().clone();
    assert_eq!(report["by_category_reason"][&category]["undecodable"].as_u64(), Some(1), "{report}");

    // A redirect is not followed: requests go to the configured URL only.
    let moved = start_server(&d.join("bench/images-truth.json"), vec![Redirect]);
    std::fs::write(d.join("moved.toml"), "kind = \"http\"\n").unwrap();
    let e = String::from_utf8(
        pairguard(&generate("moved", "moved.toml", &["--sources", "1"]), d, &[("PAIRGUARD_EDITOR_URL", moved.url.as_str())]).stderr,
    )
    .unwrap();
    assert!(e.contains("failed 1"), "{e}");
    let log = json_lines(&d.join("moved/requests.jsonl"));
    assert_eq!((log.len(), log[0]["status"].as_str()), (1, Some("http 302")));
    let e = String::from_utf8(pairguard(&generate("nowhere", "moved.toml", &["--sources", "1"]), d, &[]).stderr).unwrap();
    assert!(e.contains("no base_url"), "{e}");

    // A server that never answers usably: the sources are recorded as
    // failed, and the next run tries them again.
    let broken = start_server(&d.join("bench/images-truth.json"), vec![ServerError; 100]);
    std::fs::write(d.join("broken.toml"), format!("kind = \"http\"\nbase_url = \"{}\"\n", broken.url)).unwrap();
    let args = generate("retry", "broken.toml", &["--sources", "3", "--attempts", "2", "--backoff", "0"]);
    for run in 1..=2 {
        let out = pairguard(&args, d, &[]);
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && e.contains("failed 3") && e.contains("incomplete"), "{e}");
        assert_eq!(json_lines(&d.join("retry/requests.jsonl")).len(), 6 * run);
    }
}

#[test]
fn a_local_command_edits_over_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    // The command answers each request with the benchmark's partner image
    // (copied by a shell script from a table of sources to partners), and,
    // when $MASK names one, with that mask (copied into the exchange
    // folder), or, when $ANSWER names a file, with that file as the image.
    let script = d.join("edit.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nwhile IFS= read -r line; do\n  id=$(printf '%s' \"$line\" | sed 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/')\n  out=$(printf '%s' \"$line\" | sed 's/.*\"out\":\"\\([^\"]*\\)\".*/\\1/')\n  cp \"partners/$id.png\" \"$out\"\n  if [ -n \"$MASK\" ]; then cp \"$MASK\" \"$(dirname \"$out\")/mask.png\"; printf '{\"id\":\"%s\",\"mask\":\"mask.png\"}\\n' \"$id\"; elif [ -n \"$ANSWER\" ]; then printf '{\"id\":\"%s\",\"image\":\"%s\"}\\n' \"$id\" \"$ANSWER\"; else printf '{\"id\":\"%s\",\"cost\":1.5}\\n' \"$id\"; fi\ndone\n",
    )
    .unwrap();
    std::fs::create_dir(d.join("partners")).unwrap();
    let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("bench/images-truth.json")).unwrap()).unwrap();
    for (id, t) in truth["images"].as_object().unwrap() {
        if id.starts_with("coarse-images") {
            render(t, !t["harmful"].as_bool().unwrap(), &truth).save(d.join("partners").join(format!("{id}.png"))).unwrap();
        }
    }
    std::fs::write(d.join("command.toml"), format!("kind = \"command\"\ncommand = [\"sh\", \"{}\"]\n", script.display())).unwrap();
    ok(&generate("cmd", "command.toml", &["--sources", "10"]), d);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("cmd/report.json")).unwrap()).unwrap();
    assert_eq!(report["complete"], true, "{report}");
    assert!((report["cost"].as_f64().unwrap() - 15.0).abs() < 1e-9);
    ok(&generate("builtin", "synthetic", &["--sources", "10"]), d);
    let images = |dir: &str| pair_set(&d.join(dir));
    assert!(images("cmd") == images("builtin"), "the command's edits are the built-in editor's");

    // A mask claiming nothing changed: every edit changed pixels outside it.
    image::GrayImage::new(32, 32).save(d.join("nothing.png")).unwrap();
    let mask = d.join("nothing.png");
    ok_env(&generate("masked", "command.toml", &["--sources", "4", "--max-outside-change", "0"]), d, &[("MASK", mask.to_str().unwrap())]);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("masked/report.json")).unwrap()).unwrap();
    assert_eq!(report["by_reason"]["changed outside the editor's mask"].as_u64(), Some(4), "{report}");

    // An answer naming a file outside the exchange folder is never read.
    let outside = d.join("bench/policy.toml");
    let run = pairguard(&generate("escaped", "command.toml", &["--sources", "2", "--attempts", "1"]), d, &[("ANSWER", outside.to_str().unwrap())]);
    let e = String::from_utf8_lossy(&run.stderr);
    let requests = std::fs::read_to_string(d.join("escaped/requests.jsonl")).unwrap();
    assert!(requests.contains("outside the exchange folder"), "{e}\n{requests}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("escaped/report.json")).unwrap()).unwrap();
    assert_eq!(report["kept"].as_u64(), Some(0), "{report}");
}

#[test]
fn a_realistic_builtin_editor_records_its_truth_and_the_report_scores_verification() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    std::fs::create_dir(d.join("editors")).unwrap();
    std::fs::write(
        d.join("editors/noisy.toml"),
        "kind = \"synthetic\"\ntruth = \"../bench/images-truth.json\"\nrealism = { fail = 0.2, partial = 0.2, outside = 0.2, resize = 0.2 }\n",
    )
    .unwrap();
    ok(&generate("noisy", "editors/noisy.toml", &[]), d);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("noisy/report.json")).unwrap()).unwrap();
    let v = &report["verification"];

    // The score, recomputed from the records' truth and status.
    let records: Vec<serde_json::Value> = std::fs::read_dir(d.join("noisy/records"))
        .unwrap()
        .map(|e| serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    assert_eq!(records.len(), 40);
    let is_pair = |r: &serde_json::Value| r["truth"]["flipped"] == true && r["truth"]["only_feature"] == true;
    let kept = |r: &serde_json::Value| r["status"] == "kept";
    let count = |f: &dyn Fn(&serde_json::Value) -> bool| records.iter().filter(|r| f(r)).count() as u64;
    let (pairs, n_kept, kept_pairs) = (count(&is_pair), count(&kept), count(&|r| is_pair(r) && kept(r)));
    assert_eq!((v["edits"].as_u64(), v["pairs"].as_u64()), (Some(40), Some(pairs)));
    assert_eq!((v["kept"].as_u64(), v["kept_pairs"].as_u64()), (Some(n_kept), Some(kept_pairs)));
    assert!((v["precision"].as_f64().unwrap() - kept_pairs as f64 / n_kept as f64).abs() < 1e-12);
    assert!((v["recall"].as_f64().unwrap() - kept_pairs as f64 / pairs as f64).abs() < 1e-12);
    // Every defect occurred, each edit's truth says what it did, and no
    // resized or outside-changed edit was kept (their checks rejected them).
    for defect in ["exact", "fail", "partial", "outside", "resize"] {
        assert!(v["defects"][defect][0].as_u64().unwrap() > 0, "{defect}: {v}");
    }
    for r in &records {
        match r["truth"]["defect"].as_str().unwrap() {
            "resize" => assert!(r["reasons"][0].as_str().unwrap().starts_with("size 48x48"), "{r}"),
            "outside" => assert!(r["reasons"].to_string().contains("changed outside the editor's mask"), "{r}"),
            "fail" => assert!(!kept(r) && r["truth"]["flipped"] == false, "{r}"),
            _ => {}
        }
    }
    assert_eq!(v["checks"]["size"]["rejected"], v["defects"]["resize"][0]);
    let md = std::fs::read_to_string(d.join("noisy/report.md")).unwrap();
    assert!(md.contains(&format!("{pairs} of 40 judged edits are true pairs")), "{md}");

    // Both pair sets: the verified one, and every edit that decoded with the
    // labels the edit was asked for.
    ok(&["data", "validate", "--decode", "noisy/pairs.toml"], d);
    ok(&["data", "validate", "--decode", "noisy/pairs-unverified.toml"], d);
    let verified = json_lines(&d.join("noisy/manifest.jsonl"));
    let unverified = json_lines(&d.join("noisy/manifest-unverified.jsonl"));
    assert_eq!(verified.len() as u64, 2 * n_kept);
    assert_eq!(unverified.len(), 80, "every edit of the built-in editor decodes");
    for pair in unverified.chunks(2) {
        assert_eq!((pair[0]["pair_role"].as_str(), pair[1]["pair_role"].as_str()), (Some("original"), Some("counterfactual")));
        assert_ne!(pair[0]["label"], pair[1]["label"]);
    }
    assert!(verified.iter().all(|r| unverified.contains(r)), "the verified pairs are among the unverified ones");

    // Bad settings are refused, naming them.
    std::fs::write(
        d.join("editors/bad.toml"),
        "kind = \"synthetic\"\ntruth = \"../bench/images-truth.json\"\nrealism = { fail = 0.8, partial = 0.4 }\n",
    )
    .unwrap();
    let e = String::from_utf8(pairguard(&generate("bad", "editors/bad.toml", &[]), d, &[]).stderr).unwrap();
    assert!(e.contains("fail 0.8, partial 0.4") && e.contains("summing to at most 1"), "{e}");
    std::fs::write(d.join("editors/typo.toml"), "kind = \"synthetic\"\ntruth = \"../bench/images-truth.json\"\nrealism = { fails = 0.1 }\n").unwrap();
    let e = String::from_utf8(pairguard(&generate("bad", "editors/typo.toml", &[]), d, &[]).stderr).unwrap();
    assert!(e.contains("typo.toml") && e.contains("fails"), "{e}");
}
