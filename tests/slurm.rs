//! `pairguard cluster slurm` on a real scheduler: a single-node Slurm
//! cluster (Debian's `slurm-wlm` and `munge`, as root) started in a
//! temporary folder, running the generated sbatch script for a sharded
//! embed of the synthetic benchmark's images with the small fixture encoder.
//! The merged store must equal the one-machine store byte for byte, also
//! after one task of a second array is cancelled and resubmitted.
//!
//! Run with `cargo test --workspace -- --ignored slurm` (`.ci/run` installs
//! the packages); the daemons are stopped by their process ids at the end.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::copy_fixture_encoder;

/// munged, slurmctld and slurmd, with their state, logs and sockets in one
/// temporary folder and ports of their own.
struct Cluster {
    dir: tempfile::TempDir,
    daemons: Vec<(&'static str, Child)>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["munge", "state", "spool", "log"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        std::fs::copy("/etc/munge/munge.key", d.join("munge/key")).expect("/etc/munge/munge.key (apt-get install munge slurm-wlm)");
        let mut cluster = Cluster { dir, daemons: Vec::new() };
        let d = cluster.dir.path().to_path_buf();
        let spawn = |name: &str, cmd: &mut Command| cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| panic!("{name}: {e}"));
        let munged = spawn(
            "munged",
            Command::new("munged").arg("-F").arg("--force").arg(format!("--socket={}", d.join("munge/sock").display())).args([
                format!("--key-file={}", d.join("munge/key").display()),
                format!("--log-file={}", d.join("munge/log").display()),
                format!("--pid-file={}", d.join("munge/pid").display()),
                format!("--seed-file={}", d.join("munge/seed").display()),
            ]),
        );
        cluster.daemons.push(("munged", munged));
        cluster.wait_for("munge's socket", || d.join("munge/sock").exists());

        let host = run(Command::new("hostname").arg("-s")).trim().to_string();
        let cpus = std::thread::available_parallelism().unwrap().get();
        let conf = format!(
            "ClusterName=pairguard-test\nSlurmctldHost={host}\nAuthType=auth/munge\nAuthInfo=socket={sock}\nCredType=cred/munge\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n\
             MpiDefault=none\nJobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n\
             SlurmUser=root\nSlurmdUser=root\nSlurmctldPort={ctld}\nSlurmdPort={slurmd}\nReturnToService=2\n\
             StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\nSlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/log/slurmctld.log\nSlurmdLogFile={d}/log/slurmd.log\n\
             NodeName={host} CPUs={cpus} RealMemory=1000 State=UNKNOWN\nPartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            sock = d.join("munge/sock").display(),
            ctld = free_port(),
            slurmd = free_port(),
            d = d.display(),
        );
        std::fs::write(d.join("slurm.conf"), conf).unwrap();
        let ctld = spawn("slurmctld", Command::new("slurmctld").args(["-D", "-i"]).env("SLURM_CONF", d.join("slurm.conf")));
        cluster.daemons.push(("slurmctld", ctld));
        let slurmd = spawn("slurmd", Command::new("slurmd").args(["-D", "-N", &host]).env("SLURM_CONF", d.join("slurm.conf")));
        cluster.daemons.push(("slurmd", slurmd));
        cluster.wait_for("the node to be idle", || {
            let out = cluster.command("sinfo").args(["-h", "-o", "%t"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim() == "idle"
        });
        cluster
    }

    /// A client command talking to this cluster.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.dir.path().join("slurm.conf"));
        c
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let t0 = Instant::now();
        while !done() {
            assert!(t0.elapsed() < Duration::from_secs(120), "timed out waiting for {what}; logs in {}", self.dir.path().display());
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Every task of a job, as (array task id or "-", state, reason).
    fn states(&self, job: &str) -> Vec<(String, String, String)> {
        let out = self.command("scontrol").args(["show", "job", "-o", job]).output().unwrap();
        let field = |line: &str, key: &str| line.split_whitespace().find_map(|w| w.strip_prefix(&format!("{key}="))).unwrap_or("-").to_string();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| (field(l, "ArrayTaskId"), field(l, "JobState"), field(l, "Reason")))
            .collect()
    }

    /// Waits until no task of `job` is pending or running; returns the states.
    fn wait(&self, job: &str) -> Vec<(String, String, String)> {
        let mut last = Vec::new();
        self.wait_for(&format!("job {job}"), || {
            last = self.states(job);
            !last.is_empty() && last.iter().all(|(_, s, _)| !matches!(s.as_str(), "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING"))
        });
        last
    }

    /// Submits an sbatch script written by `pairguard cluster slurm`:
    /// returns the ids of the shards' array job and of the merge job.
    fn submit(&self, script: &Path, cwd: &Path, tasks: Option<&str>) -> (String, String) {
        let mut c = self.command("bash");
        c.arg(script).current_dir(cwd);
        if let Some(t) = tasks {
            c.arg(t);
        }
        let out = run(&mut c);
        let line = out.lines().find(|l| l.starts_with("shards: job")).unwrap_or_else(|| panic!("{out}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        (words[2].trim_end_matches(';').to_string(), words[5].to_string())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in self.daemons.iter_mut().rev() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let t0 = Instant::now();
            while child.try_wait().ok().flatten().is_none() && t0.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn pairguard(args: &[&str], cwd: &Path) -> String {
    run(Command::new(env!("CARGO_BIN_EXE_pairguard")).args(args).current_dir(cwd))
}

fn store_files(dir: &Path, stem: &str) -> Vec<Vec<u8>> {
    ["safetensors", "json", "failures.json"].iter().map(|x| std::fs::read(dir.join(format!("{stem}.{x}"))).unwrap()).collect()
}

#[test]
#[ignore = "starts a Slurm cluster: needs root, slurm-wlm and munge (installed by .ci/run); run with --ignored slurm"]
fn slurm_runs_a_sharded_embed_and_its_merge_to_the_one_machine_store() {
    let cluster = Cluster::start();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    pairguard(&["synth", "--preset", "tiny", "--images", "24", "--out", "bench"], w);
    copy_fixture_encoder(w);
    let embed = ["embed", "bench/images.toml", "--model", "enc", "--chunk", "6", "--batch", "3", "--device", "cpu"];
    pairguard(&[&embed[..], &["--out", "whole.safetensors"]].concat(), w);
    let whole = store_files(w, "whole");

    // Four shards, two at a time, then the merge; every scheduler value the
    // launch file quotes goes through a real sbatch.
    #[rustfmt::skip]
    let args = ["cluster", "slurm", "--shards", "4", "--concurrency", "2", "--gpus", "0", "--time", "00:10:00", "--partition", "debug",
        "--account", "lab.x-1", "--out", "embed.sbatch", "--"];
    pairguard(&[&args[..], &embed[..], &["--out", "a.safetensors"]].concat(), w);
    let (shards, merge) = cluster.submit(&w.join("embed.sbatch"), w, None);
    let states = cluster.wait(&shards);
    assert_eq!(states.len(), 4, "{states:?}");
    assert!(states.iter().all(|(_, s, _)| s == "COMPLETED"), "{states:?}");
    assert_eq!(cluster.wait(&merge)[0].1, "COMPLETED");
    assert!(store_files(w, "a") == whole, "the merged store differs from the one-machine store");
    let logs: Vec<_> = std::fs::read_dir(w.join("logs")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(logs.len(), 5, "a log per shard and one for the merge: {logs:?}");

    // A second array, one task at a time, each slowed down so that task 1
    // is cancelled while it runs. The merge then never starts; the task is
    // resubmitted (its merge replacing the stuck one) and the store is
    // still the same.
    let slow = w.join("slow-pairguard");
    std::fs::write(&slow, format!("#!/bin/sh\nsleep 3\nexec {} \"$@\"\n", env!("CARGO_BIN_EXE_pairguard"))).unwrap();
    run(Command::new("chmod").arg("+x").arg(&slow));
    let args =
        ["cluster", "slurm", "--shards", "4", "--concurrency", "1", "--gpus", "0", "--binary", slow.to_str().unwrap(), "--out", "b.sbatch", "--"];
    pairguard(&[&args[..], &embed[..], &["--out", "b.safetensors"]].concat(), w);
    let (shards, merge) = cluster.submit(&w.join("b.sbatch"), w, None);
    cluster.wait_for("task 1 to run", || cluster.states(&format!("{shards}_1")).iter().any(|(_, s, _)| s == "RUNNING"));
    run(cluster.command("scancel").arg(format!("{shards}_1")));
    let states = cluster.wait(&shards);
    let state_of = |t: &str| states.iter().find(|(id, _, _)| id == t).map(|(_, s, _)| s.clone());
    assert_eq!(state_of("1").as_deref(), Some("CANCELLED"), "{states:?}");
    assert!(["0", "2", "3"].iter().all(|t| state_of(t).as_deref() == Some("COMPLETED")), "{states:?}");
    cluster.wait_for("the merge to be stuck", || cluster.states(&merge).iter().any(|(_, _, r)| r == "DependencyNeverSatisfied"));
    assert!(!w.join("b.safetensors").exists());
    let e = Command::new(env!("CARGO_BIN_EXE_pairguard")).args(["merge", "b.safetensors"]).current_dir(w).output().unwrap();
    assert!(String::from_utf8_lossy(&e.stderr).contains("shards not finished: 1/4"), "{}", String::from_utf8_lossy(&e.stderr));
    let stuck = merge;
    let (again, merge) = cluster.submit(&w.join("b.sbatch"), w, Some("1"));
    assert_eq!(cluster.wait(&stuck)[0].1, "CANCELLED", "the rerun replaces the waiting merge");
    assert_eq!(cluster.wait(&again).iter().map(|(_, s, _)| s.as_str()).collect::<Vec<_>>(), ["COMPLETED"]);
    assert_eq!(cluster.wait(&merge)[0].1, "COMPLETED");
    assert!(store_files(w, "b") == whole, "the store after a resubmitted shard differs from the one-machine store");
}
