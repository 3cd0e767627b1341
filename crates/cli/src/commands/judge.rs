//! `pairguard judge`: a vision-language model's verdict on every image of a dataset.

use std::path::PathBuf;

use anyhow::Context;
use pairguard_experiments::judge::{self, JudgeConfig, JudgeInputs, JudgeOptions, JudgeSettings, Prompt};

use crate::args::{RequestArgs, key_from_env, load};
use crate::progress::Bar;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The dataset whose images are judged.
    #[arg(long)]
    data: PathBuf,
    /// The policy the judge is given (its categories and their phrases).
    #[arg(long)]
    policy: PathBuf,
    /// The judge: a TOML file (kind = "http" or "command").
    /// PAIRGUARD_JUDGE_URL and PAIRGUARD_JUDGE_MODEL override an HTTP
    /// judge's base_url and model; its key comes from its key_env variable.
    #[arg(long)]
    judge: PathBuf,
    /// Output folder: scores.jsonl, records, request log and report.
    #[arg(long)]
    out: PathBuf,
    /// Sent with every request, for servers that sample reproducibly.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    requests: RequestArgs,
    /// The answer cache (default: $XDG_CACHE_HOME/pairguard/judge, else ~/.cache/pairguard/judge).
    #[arg(long)]
    cache: Option<PathBuf>,
}

pub fn exec(a: Args) -> anyhow::Result<()> {
    let policy = pairguard_data::Policy::from_file(&a.policy)?;
    let mut cfg = JudgeConfig::from_file(&a.judge)?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    cfg.override_endpoint(env("PAIRGUARD_JUDGE_URL"), env("PAIRGUARD_JUDGE_MODEL"));
    if let Some(w) = cfg.insecure_warning() {
        eprintln!("warning: {w}");
    }
    let prompt = Prompt::build(&policy, cfg.prompt_template())?;
    let key = key_from_env(cfg.key_env());
    let ds = load(&a.data, false, false)?;
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    let judge = cfg.open(&a.out, key)?;
    eprintln!("judge: {}", judge.describe());
    let cache = a.cache.clone().or_else(judge::run::default_cache).context("no cache folder: set XDG_CACHE_HOME or HOME, or pass --cache")?;
    let settings =
        JudgeSettings { seed: a.seed, attempts: a.requests.attempts, backoff_s: a.requests.backoff, max_backoff_s: a.requests.max_backoff };
    let opts = JudgeOptions { concurrency: a.requests.concurrency, budget: a.requests.budget, cache };
    let inputs = JudgeInputs { data: &ds, judge: judge.as_ref(), judge_identity: &cfg.identity(), prompt: &prompt };
    let t0 = std::time::Instant::now();
    let r = judge::judge(&inputs, &settings, &opts, &a.out, &Bar::new())?;
    eprintln!(
        "{} images: answered {} ({} unsafe), unparsable {}, failed {}, not yet asked {}; {} requests, {} from the cache, in {:.1}s; scores from {}",
        r.images,
        r.answered,
        r.unsafe_verdicts,
        r.unparsable,
        r.failed,
        r.pending,
        r.requests,
        r.cache_hits,
        t0.elapsed().as_secs_f64(),
        r.scores
    );
    if !r.complete {
        eprintln!("incomplete: run the same command again to ask for the failed and remaining images");
    }
    println!("{}", a.out.join("scores.jsonl").display());
    Ok(())
}
