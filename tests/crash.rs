//! What a killed run leaves behind. `embed`, `sweep`, `robustness` and
//! `pairs generate` are each killed with SIGKILL at three points drawn at
//! random from the span of an uninterrupted run (measured in the files its
//! output folder holds); the rerun in the same folder must finish with the
//! uninterrupted run's files, byte for byte. Two processes launched on one
//! output folder: the second refuses.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{SMALL_SWEEP, copy_fixture_encoder, ok, pairguard, tree};
use rand::{Rng, SeedableRng};

fn spawn(args: &[&str], cwd: &Path) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pairguard"));
    for var in ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "JOB_COMPLETION_INDEX"] {
        c.env_remove(var);
    }
    c.args(args).current_dir(cwd).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("starts")
}

/// How many files (of any kind, temporary ones included) are under `dir`.
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.flatten().map(|e| if e.path().is_dir() { files_under(&e.path()) } else { 1 }).sum()
}

/// `tree` without what records spending rather than results: the pair
/// generator's request log (every request of every run, killed ones
/// included, each line whole) and its report's request count and cost,
/// which count what was really sent.
fn results(dir: &Path) -> Vec<(String, Vec<u8>)> {
    results_of(tree(dir, &[]))
}

fn results_of(mut files: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    let pair_set = files.iter().any(|f| f.0 == "pairs.toml" || f.0 == "identity.json" && f.1.windows(6).any(|w| w == b"policy"));
    files.retain(|(name, bytes)| {
        if name != "requests.jsonl" {
            return true;
        }
        for line in String::from_utf8(bytes.clone()).unwrap().lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("requests.jsonl holds a cut line ({e}): {line}"));
        }
        false
    });
    for (name, bytes) in &mut files {
        if name == "report.json" && pair_set {
            let mut report: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            report["requests"] = serde_json::Value::Null;
            report["cost"] = serde_json::Value::Null;
            *bytes = serde_json::to_vec(&report).unwrap();
        } else if name == "report.md" && pair_set {
            let text = String::from_utf8(bytes.clone()).unwrap();
            *bytes = text.lines().filter(|l| !l.contains("requests this run")).collect::<Vec<_>>().join("\n").into_bytes();
        }
    }
    files
}

/// Runs `args` to the end while watching `watch`; returns the most files
/// it held at once.
fn watched_run(args: &[&str], cwd: &Path, watch: &Path) -> usize {
    let mut child = spawn(args, cwd);
    let mut most = 0;
    loop {
        most = most.max(files_under(watch));
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{args:?} failed");
            return most;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Starts `args` and kills it with SIGKILL once `watch` holds `files`
/// files; returns whether it was still running then.
fn kill_at(args: &[&str], cwd: &Path, watch: &Path, files: usize) -> bool {
    let mut child = spawn(args, cwd);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{args:?} failed before it was killed");
            return false;
        }
        if files_under(watch) >= files {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        assert!(Instant::now() < deadline, "{args:?} never reached {files} files");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The uninterrupted run of `args` writes `out` (watched through `watch`,
/// the folder its partial work goes to); then, three times, a run killed
/// at a random point and rerun must leave exactly the same files.
fn killed_runs_resume_to_the_same_files(name: &str, args: &[&str], cwd: &Path, out: &str, watch: &str, seed: u64) {
    let (out_path, watch_path) = (cwd.join(out), cwd.join(watch));
    let most = watched_run(args, cwd, &watch_path);
    assert!(most >= 3, "{name}: too little happens in {watch} to kill it part way ({most} files)");
    let reference = results(&out_path);
    std::fs::rename(&out_path, cwd.join(format!("{out}.reference"))).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut killed = 0;
    for _ in 0..3 {
        let at = rng.random_range(1..most);
        let was_running = kill_at(args, cwd, &watch_path, at);
        eprintln!("{name}: killed at {at} of {most} files: {}", if was_running { "was running" } else { "had ended" });
        killed += usize::from(was_running);
        ok(args, cwd);
        let again = results(&out_path);
        assert_eq!(
            reference.iter().map(|f| &f.0).collect::<Vec<_>>(),
            again.iter().map(|f| &f.0).collect::<Vec<_>>(),
            "{name}: killed at {at} files"
        );
        for (a, b) in reference.iter().zip(&again) {
            assert!(a.1 == b.1, "{name}: {} differs after a kill at {at} files and a rerun", a.0);
        }
        std::fs::remove_dir_all(&out_path).unwrap();
        if watch_path.exists() {
            std::fs::remove_dir_all(&watch_path).unwrap();
        }
    }
    assert!(killed >= 2, "{name}: only {killed} of 3 runs were still running when killed");
}

/// The synthetic benchmark's images, the fixture encoder, their store, a
/// guard and a verifier.
fn setup(d: &Path) {
    ok(&["synth", "--preset", "tiny", "--images", "48", "--coarse-images", "40", "--out", "bench"], d);
    copy_fixture_encoder(d);
    ok(&["embed", "bench/images.toml", "--encoder", "enc", "--device", "cpu"], d);
    ok(&["train", "--train", "bench/images.toml", "--validation-fraction", "0.3", "--device", "cpu", "--out", "guard.safetensors"], d);
}

/// The small sweep with more to kill: 3 budgets, 4 seeds.
fn sweep() -> String {
    SMALL_SWEEP.replace("budgets = [16, 32]", "budgets = [16, 32, 64]").replace("seeds = [0, 1, 2]", "seeds = [0, 1, 2, 3]")
}

#[test]
fn runs_killed_at_random_points_resume_to_an_uninterrupted_runs_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);

    let embed =
        ["embed", "bench/images.toml", "--encoder", "enc", "--chunk", "4", "--batch", "2", "--device", "cpu", "--out", "store/images.safetensors"];
    killed_runs_resume_to_the_same_files("embed", &embed, d, "store", "store", 1);

    std::fs::write(d.join("exp.toml"), sweep()).unwrap();
    killed_runs_resume_to_the_same_files("sweep", &["sweep", "exp.toml", "--out", "res", "--device", "cpu"], d, "res", "res", 2);

    #[rustfmt::skip]
    let robustness = ["robustness", "--model", "guard.safetensors", "--data", "bench/images.toml", "--samples", "24", "--eps", "0.05",
        "--attacks", "fgsm,gn", "--corruptions", "jpeg:30", "--batch", "2", "--device", "cpu", "--out", "rob"];
    killed_runs_resume_to_the_same_files("robustness", &robustness, d, "rob", "rob", 3);

    #[rustfmt::skip]
    let generate = ["pairs", "generate", "--data", "bench/coarse-images.toml", "--policy", "bench/policy.toml", "--editor", "synthetic",
        "--verifier", "guard.safetensors", "--out", "gen", "--device", "cpu"];
    killed_runs_resume_to_the_same_files("pairs generate", &generate, d, "gen", "gen", 4);
}

/// A second process on an output folder in use refuses, naming the folder;
/// two different shards of one job may share it, one shard twice may not.
#[test]
fn a_second_process_on_the_same_output_folder_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("exp.toml"), sweep().replace("seeds = [0, 1, 2, 3]", "seeds = [0, 1, 2, 3, 4, 5, 6, 7]")).unwrap();
    let sweep = ["sweep", "exp.toml", "--out", "res", "--device", "cpu"];
    for (first, second, refused) in [
        (vec![], vec![], true),
        (vec!["--shard", "0/2"], vec!["--shard", "0/2"], true),
        (vec!["--shard", "0/2"], vec![], true),
        (vec!["--shard", "0/2"], vec!["--collect"], true),
        (vec!["--shard", "0/2"], vec!["--shard", "1/2"], false),
    ] {
        let _ = std::fs::remove_dir_all(d.join("res"));
        let mut child = spawn(&[&sweep[..], &first[..]].concat(), d);
        // The first holds the folder from its claim on; it is stopped there
        // (SIGSTOP) while the second starts, so that it cannot end first.
        while !d.join("res/identity.json").exists() {
            assert!(child.try_wait().unwrap().is_none(), "the first run ended before the second started");
            std::thread::sleep(Duration::from_micros(200));
        }
        signal(&child, "STOP");
        let second_args = [&sweep[..], &second[..]].concat();
        let out = pairguard(&second_args, d);
        let e = String::from_utf8_lossy(&out.stderr).to_string();
        if refused {
            assert!(!out.status.success(), "{first:?} then {second:?} was not refused");
            assert!(e.contains("is in use by another pairguard process") && e.contains("res"), "{first:?} then {second:?}: {e}");
        } else {
            assert!(out.status.success(), "{first:?} then {second:?}: {e}");
        }
        signal(&child, "CONT");
        assert!(child.wait().unwrap().success(), "the first run of {first:?} failed");
    }
    // Once the first has ended, the folder is free again.
    ok(&sweep, d);
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").arg(format!("-{name}")).arg(child.id().to_string()).status().unwrap();
    assert!(status.success(), "kill -{name} {}", child.id());
}

/// A tmpfs mounted for one test, unmounted at the end.
struct Disk {
    path: std::path::PathBuf,
}

impl Disk {
    fn mount(path: &Path) -> Disk {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount").args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"]).arg(path).status().unwrap();
        assert!(status.success(), "mount -t tmpfs {} (this test runs as root: cargo test -- --ignored full_disk)", path.display());
        Disk { path: path.to_path_buf() }
    }

    fn resize(&self, bytes: usize) {
        let status = Command::new("mount").args(["-o", &format!("remount,size={bytes}")]).arg(&self.path).status().unwrap();
        assert!(status.success(), "remount {} with {bytes} bytes", self.path.display());
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// What `tree`'s files take on a tmpfs (whole pages).
fn pages(files: &[(String, Vec<u8>)]) -> usize {
    files.iter().map(|f| f.1.len().div_ceil(4096).max(1) * 4096).sum()
}

/// `args` writes `out` on a disk that fills half way through: the run fails
/// naming a path under `out` and the error, every finished file it left is
/// the uninterrupted run's, and once space is freed the rerun ends with the
/// uninterrupted run's files.
fn full_disk_then_space(name: &str, args: &[&str], cwd: &Path, disk: &Disk, out: &str) {
    let out_path = cwd.join(out);
    ok(args, cwd);
    let reference = tree(&out_path, &[]);
    std::fs::remove_dir_all(&out_path).unwrap();
    disk.resize(pages(&reference) / 2);
    let reference = results_of(reference);
    let run = pairguard(args, cwd);
    let e = String::from_utf8_lossy(&run.stderr).to_string();
    assert!(!run.status.success(), "{name} succeeded on a disk with half the space it needs");
    assert!(e.contains("No space left on device") && e.contains(out), "{name}: {e}");
    eprintln!("{name} on a full disk: {}", e.trim().lines().last().unwrap_or(""));
    // The request log is appended to, not replaced: a line the disk cut is
    // dropped by the next run (checked after the rerun, by `results`).
    let left: Vec<_> = tree(&out_path, &[]).into_iter().filter(|f| f.0 != "requests.jsonl").collect();
    let left = results_of(left);
    for (file, bytes) in &left {
        assert!(!file.contains(".tmp"), "{name}: a temporary file was left behind: {file}");
        match reference.iter().find(|r| &r.0 == file) {
            Some(done) => assert!(&done.1 == bytes, "{name}: {file} was left unlike the uninterrupted run's"),
            // Partial work the finished run removes: whole files only.
            None if file.contains(".parts/") => {
                if file.ends_with(".json") {
                    serde_json::from_slice::<serde_json::Value>(bytes).unwrap_or_else(|e| panic!("{name}: {file} was left half-written: {e}"));
                }
            }
            None => assert!(file.ends_with(".lock"), "{name}: {file} is not a file of the uninterrupted run"),
        }
    }
    disk.resize(64 << 20);
    ok(args, cwd);
    assert!(results(&out_path) == reference, "{name}: the rerun after a full disk differs from an uninterrupted run");
    std::fs::remove_dir_all(&out_path).unwrap();
}

/// Needs root (it mounts a tmpfs); run with `cargo test -- --ignored full_disk`.
#[test]
#[ignore]
fn full_disk_fails_by_name_keeps_what_was_done_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let disk = Disk::mount(&d.join("disk"));

    let embed = [
        "embed",
        "bench/images.toml",
        "--encoder",
        "enc",
        "--chunk",
        "4",
        "--batch",
        "2",
        "--device",
        "cpu",
        "--out",
        "disk/store/images.safetensors",
    ];
    full_disk_then_space("embed", &embed, d, &disk, "disk/store");

    std::fs::write(d.join("exp.toml"), sweep()).unwrap();
    full_disk_then_space("sweep", &["sweep", "exp.toml", "--out", "disk/res", "--device", "cpu"], d, &disk, "disk/res");

    #[rustfmt::skip]
    let robustness = ["robustness", "--model", "guard.safetensors", "--data", "bench/images.toml", "--samples", "24", "--eps", "0.05",
        "--attacks", "fgsm,gn", "--corruptions", "jpeg:30", "--batch", "2", "--device", "cpu", "--out", "disk/rob"];
    full_disk_then_space("robustness", &robustness, d, &disk, "disk/rob");

    #[rustfmt::skip]
    let generate = ["pairs", "generate", "--data", "bench/coarse-images.toml", "--policy", "bench/policy.toml", "--editor", "synthetic",
        "--verifier", "guard.safetensors", "--out", "disk/gen", "--device", "cpu"];
    full_disk_then_space("pairs generate", &generate, d, &disk, "disk/gen");
}
