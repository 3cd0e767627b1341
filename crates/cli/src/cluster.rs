//! Launch files for the schedulers users already have: a Slurm job array or
//! a Kubernetes Indexed Job runs a command's shards (each worker takes its
//! index from the scheduler's environment), then one more job merges them.
//! pairguard schedules nothing itself.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

/// A sharded command and the step that merges its shards.
#[derive(Debug, Clone)]
pub struct Job {
    /// What the scheduler calls the job.
    pub name: String,
    pub shards: usize,
    /// The command every shard runs (the shard count is appended).
    pub shard: Vec<String>,
    /// The command that merges the finished shards.
    pub merge: Vec<String>,
}

impl Job {
    fn shard_command(&self, binary: &str) -> Vec<String> {
        let mut c = vec![binary.to_string()];
        c.extend(self.shard.iter().cloned());
        c.extend(["--shards".to_string(), self.shards.to_string()]);
        c
    }

    fn merge_command(&self, binary: &str) -> Vec<String> {
        std::iter::once(binary.to_string()).chain(self.merge.iter().cloned()).collect()
    }
}

#[derive(Args, Debug)]
pub struct SlurmArgs {
    /// At most this many shards run at once (the array's %K).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// GPUs per shard (--gres=gpu:G; 0 asks for none).
    #[arg(long, default_value_t = 1)]
    pub gpus: usize,
    /// CPU cores per shard.
    #[arg(long)]
    pub cpus: Option<usize>,
    /// Memory per shard, as Slurm writes it (16G, 4000M).
    #[arg(long)]
    pub mem: Option<String>,
    /// Time limit of each shard and of the merge (04:00:00, 2-00:00:00).
    #[arg(long, default_value = "04:00:00")]
    pub time: String,
    /// Slurm partition of the shards and the merge.
    #[arg(long)]
    pub partition: Option<String>,
    /// Slurm account to charge.
    #[arg(long)]
    pub account: Option<String>,
    /// Folder of the logs: <name>-<array job>_<index>.out per shard, <name>-merge-<job>.out.
    #[arg(long, default_value = "logs")]
    pub logs: PathBuf,
    /// The folder the jobs run in, where relative paths of the command resolve (default: this one).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// The pairguard executable on the nodes (default: this one, by absolute path).
    #[arg(long)]
    pub binary: Option<String>,
}

#[derive(Args, Debug)]
pub struct K8sArgs {
    /// Container image with pairguard on its PATH.
    #[arg(long)]
    pub image: String,
    /// PersistentVolumeClaim shared by every shard: data, models and outputs.
    #[arg(long)]
    pub claim: String,
    /// Where the claim is mounted in the container.
    #[arg(long, default_value = "/work")]
    pub mount: String,
    /// The folder the command runs in (default: the mount).
    #[arg(long)]
    pub workdir: Option<String>,
    /// Pods running at once (default: every shard).
    #[arg(long)]
    pub parallelism: Option<usize>,
    /// Retries of each shard before it counts as failed (backoffLimitPerIndex).
    #[arg(long, default_value_t = 3)]
    pub retries: usize,
    /// GPUs per shard (nvidia.com/gpu; 0 asks for none).
    #[arg(long, default_value_t = 1)]
    pub gpus: usize,
    /// CPU request and limit per shard (a Kubernetes quantity: 4, 500m).
    #[arg(long)]
    pub cpu: Option<String>,
    /// Memory request and limit per shard (16Gi).
    #[arg(long)]
    pub memory: Option<String>,
    /// Namespace of both Jobs.
    #[arg(long)]
    pub namespace: Option<String>,
    /// The pairguard executable in the image.
    #[arg(long, default_value = "pairguard")]
    pub binary: String,
}

/// A word as the shell reads it back unchanged.
fn quote(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if plain { word.to_string() } else { format!("'{}'", word.replace('\'', "'\\''")) }
}

fn quote_all(words: &[String]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
}

/// An sbatch script that, run with `bash`, submits the shards as a job array
/// and the merge as a job that waits for all of them; under Slurm it is
/// each shard's body.
pub fn slurm(job: &Job, a: &SlurmArgs, file: &Path) -> anyhow::Result<String> {
    anyhow::ensure!(job.shards >= 1, "--shards must be at least 1");
    anyhow::ensure!(a.concurrency != Some(0), "--concurrency must be at least 1");
    anyhow::ensure!(
        !job.name.is_empty() && job.name.chars().all(|c| c.is_ascii_graphic() && !"'\"\\$`".contains(c)),
        "job name {:?}: Slurm job names here are printable ASCII without spaces or quotes",
        job.name
    );
    let workdir = absolute(a.workdir.as_deref().unwrap_or(Path::new(".")))?;
    let logs = absolute(&workdir.join(&a.logs))?;
    let binary = match &a.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.display().to_string(),
    };
    let array = format!("0-{}{}", job.shards - 1, a.concurrency.map(|k| format!("%{k}")).unwrap_or_default());
    let (name, dir, logs_q) = (&job.name, quote(&workdir.display().to_string()), logs.display().to_string());
    check_slurm_values(a)?;
    let mut common = vec![format!("--time={}", a.time)];
    common.extend(a.partition.iter().map(|p| format!("--partition={p}")));
    common.extend(a.account.iter().map(|p| format!("--account={p}")));

    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/bash");
    let file = quote(&file.display().to_string());
    let _ = writeln!(s, "# {name}: `pairguard {}` as {} shards, then `pairguard {}`.", quote_all(&job.shard), job.shards, quote_all(&job.merge));
    let _ = writeln!(s, "#");
    let _ = writeln!(s, "# Submit:         bash {file}      (the shards as a job array, and the merge once all succeed)");
    let _ = writeln!(s, "# Rerun shards:   bash {file} 2,5  (those array indices, and a new merge after them instead of the waiting one)");
    let _ = writeln!(s, "# A finished shard is skipped when it runs again, and an interrupted one resumes.");
    let _ = writeln!(s, "# Logs: {logs_q}/");
    let _ = writeln!(s, "#SBATCH --job-name={name}");
    let _ = writeln!(s, "#SBATCH --array={array}");
    let _ = writeln!(s, "#SBATCH --chdir={}", workdir.display());
    let _ = writeln!(s, "#SBATCH --output={logs_q}/%x-%A_%a.out");
    for c in &common {
        let _ = writeln!(s, "#SBATCH {c}");
    }
    if a.gpus > 0 {
        let _ = writeln!(s, "#SBATCH --gres=gpu:{}", a.gpus);
    }
    if let Some(c) = a.cpus {
        let _ = writeln!(s, "#SBATCH --cpus-per-task={c}");
    }
    if let Some(m) = &a.mem {
        let _ = writeln!(s, "#SBATCH --mem={m}");
    }
    let _ = writeln!(s, "set -euo pipefail\n");
    let _ = writeln!(s, "if [ -z \"${{SLURM_JOB_ID:-}}\" ]; then");
    let _ = writeln!(s, "  mkdir -p {}", quote(&logs_q));
    let _ = writeln!(s, "  # A rerun replaces the merge still waiting on the failed shards.");
    let _ = writeln!(s, "  if [ -n \"${{1:-}}\" ]; then scancel --name={name}-merge --state=PENDING || true; fi");
    let _ = writeln!(s, "  array=$(sbatch --parsable --array=\"${{1:-{array}}}\" \"$0\")");
    let merge = format!("exec {}", quote_all(&job.merge_command(&binary)));
    let _ = writeln!(
        s,
        "  merge=$(sbatch --parsable --dependency=\"afterok:${{array%%;*}}\" --job-name={name}-merge --chdir={dir} --output={}/%x-%j.out {} --wrap={})",
        quote(&logs_q),
        quote_all(&common),
        quote(&merge)
    );
    let _ = writeln!(s, "  echo \"shards: job $array; merge: job $merge\"");
    let _ = writeln!(s, "  exit 0");
    let _ = writeln!(s, "fi");
    let _ = writeln!(s, "exec {}", quote_all(&job.shard_command(&binary)));
    Ok(s)
}

/// Refuses option values that Slurm would not accept, before they reach a
/// script: a time limit in one of Slurm's forms, partition and account
/// names of letters, digits, `_`, `.` and `-` (partitions may be a comma
/// list), and memory as a number with an optional K, M, G or T.
fn check_slurm_values(a: &SlurmArgs) -> anyhow::Result<()> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let clock = |s: &str| {
        let parts: Vec<&str> = s.split(':').collect();
        parts.len() <= 3 && parts.iter().all(|p| digits(p))
    };
    let time_ok = matches!(a.time.as_str(), "UNLIMITED" | "infinite")
        || match a.time.split_once('-') {
            Some((days, rest)) => digits(days) && clock(rest),
            None => clock(&a.time),
        };
    anyhow::ensure!(time_ok, "--time {:?}: expected a Slurm time limit such as 30, 04:00:00 or 2-00:00:00", a.time);
    let name = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if let Some(p) = &a.partition {
        anyhow::ensure!(p.split(',').all(name), "--partition {p:?}: expected partition names of letters, digits, _ . - (comma-separated)");
    }
    if let Some(acct) = &a.account {
        anyhow::ensure!(name(acct), "--account {acct:?}: expected an account name of letters, digits, _ . -");
    }
    if let Some(m) = &a.mem {
        let number = m.strip_suffix(['K', 'M', 'G', 'T']).unwrap_or(m);
        anyhow::ensure!(digits(number), "--mem {m:?}: expected a size such as 4000M or 16G");
    }
    Ok(())
}

/// Where the merge Job of a manifest at `out` goes: `<stem>-merge.<ext>`.
pub fn merge_manifest_path(out: &Path) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = out.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    out.with_file_name(format!("{stem}-merge{ext}"))
}

/// Kubernetes object names are DNS labels.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 57
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    anyhow::ensure!(ok, "job name {name:?}: Kubernetes needs lowercase letters, digits and '-', at most 57 characters (the merge Job adds 6)");
    Ok(())
}

/// An Indexed Job running the shards, and a Job that merges them, as YAML.
pub fn k8s(job: &Job, a: &K8sArgs, file: &Path) -> anyhow::Result<(String, String)> {
    anyhow::ensure!(job.shards >= 1, "--shards must be at least 1");
    anyhow::ensure!(a.parallelism != Some(0), "--parallelism must be at least 1");
    check_name(&job.name)?;
    let workdir = a.workdir.clone().unwrap_or_else(|| a.mount.clone());
    let mut resources = serde_json::Map::new();
    let mut limits = serde_json::Map::new();
    if let Some(c) = &a.cpu {
        limits.insert("cpu".into(), json!(c));
    }
    if let Some(m) = &a.memory {
        limits.insert("memory".into(), json!(m));
    }
    if !limits.is_empty() {
        resources.insert("requests".into(), json!(limits.clone()));
    }
    let merge_resources = json!(resources.clone());
    if a.gpus > 0 {
        limits.insert("nvidia.com/gpu".into(), json!(a.gpus));
    }
    if !limits.is_empty() {
        resources.insert("limits".into(), json!(limits));
    }
    let pod = |command: Vec<String>, resources: serde_json::Value| {
        json!({
            "metadata": { "labels": { "app.kubernetes.io/name": "pairguard", "app.kubernetes.io/instance": job.name } },
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "pairguard",
                    "image": a.image,
                    "workingDir": workdir,
                    "command": command,
                    "resources": resources,
                    "volumeMounts": [{ "name": "work", "mountPath": a.mount }],
                }],
                "volumes": [{ "name": "work", "persistentVolumeClaim": { "claimName": a.claim } }],
            }
        })
    };
    let metadata = |name: String| {
        let mut m = json!({ "name": name, "labels": { "app.kubernetes.io/name": "pairguard" } });
        if let Some(ns) = &a.namespace {
            m["namespace"] = json!(ns);
        }
        m
    };
    let shards = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(job.name.clone()),
        "spec": {
            "completionMode": "Indexed",
            "completions": job.shards,
            "parallelism": a.parallelism.unwrap_or(job.shards),
            "backoffLimitPerIndex": a.retries,
            "template": pod(job.shard_command(&a.binary), json!(resources)),
        }
    });
    let merge = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(format!("{}-merge", job.name)),
        "spec": {
            "completions": 1,
            "backoffLimit": a.retries,
            "template": pod(job.merge_command(&a.binary), merge_resources),
        }
    });
    let ns = a.namespace.as_ref().map(|n| format!(" -n {}", quote(n))).unwrap_or_default();
    let (name, shard_cmd, merge_cmd) = (&job.name, quote_all(&job.shard), quote_all(&job.merge));
    let (file, merge_file) = (quote(&file.display().to_string()), quote(&merge_manifest_path(file).display().to_string()));
    let head = format!(
        "# {name}: `pairguard {shard_cmd}` as {} shards (an Indexed Job: each pod's JOB_COMPLETION_INDEX is its shard).\n\
         # Run:   kubectl apply{ns} -f {file}\n\
         # Merge: kubectl wait{ns} --for=condition=complete job/{name} --timeout=24h && kubectl apply{ns} -f {merge_file}\n",
        job.shards
    );
    let merge_head = format!("# {name}-merge: `pairguard {merge_cmd}` once every shard of job/{name} has finished.\n");
    let yaml = |v: &serde_json::Value| -> anyhow::Result<String> {
        let text = serde_saphyr::to_string(v)?;
        Ok(if text.ends_with('\n') { text } else { text + "\n" })
    };
    Ok((head + &yaml(&shards)?, merge_head + &yaml(&merge)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(quote("data/x.toml"), "data/x.toml");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
        let words: Vec<String> = ["pairguard", "embed", "my data/x.toml", "--out", "$HOME/it's"].iter().map(|s| s.to_string()).collect();
        let echoed = std::process::Command::new("bash").arg("-c").arg(format!("printf '%s\\n' {}", quote_all(&words))).output().unwrap();
        assert_eq!(String::from_utf8(echoed.stdout).unwrap(), words.join("\n") + "\n");
    }

    #[test]
    fn kubernetes_names_are_checked() {
        assert!(check_name("pairguard-embed").is_ok());
        for bad in ["Embed", "-x", "x-", "a_b", ""] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(merge_manifest_path(Path::new("k/embed.yaml")), Path::new("k/embed-merge.yaml"));
    }
}
