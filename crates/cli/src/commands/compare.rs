//! `pairguard compare`: every guard on one test set, side by side.

use std::path::PathBuf;

use anyhow::Context;
use pairguard_experiments::compare::{self, Entry};
use pairguard_model::scores::ScoreFile;
use pairguard_model::{GuardModel, LabeledSet};

use crate::args::{DeviceArg, labels_of};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The test set (with an embedding store of the guards' encoder when
    /// --model is given).
    #[arg(long)]
    data: PathBuf,
    /// A guard file: trained, zero-shot or imported. Repeat for more.
    #[arg(long = "model")]
    models: Vec<PathBuf>,
    /// Another guard's outputs as NAME=FILE (JSON lines, as for `eval
    /// --scores`). Repeat for more.
    #[arg(long = "scores", value_name = "NAME=FILE")]
    scores: Vec<String>,
    /// Where the score files call a sample unsafe (default 0.5; verdicts take none).
    #[arg(long)]
    threshold: Option<f64>,
    /// Compare on the samples every score file scores, and say how many
    /// are left out, instead of refusing.
    #[arg(long)]
    allow_missing: bool,
    /// Bootstrap resamples behind each 95% interval.
    #[arg(long, default_value_t = 1000)]
    resamples: usize,
    /// Seed of the resamples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for compare.csv, compare.md and roc.png/svg.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn exec(a: Args) -> anyhow::Result<()> {
    if a.models.len() + a.scores.len() == 0 {
        anyhow::bail!("nothing to compare: give guards with --model and outputs with --scores NAME=FILE");
    }
    if a.resamples == 0 {
        anyhow::bail!("--resamples must be at least 1");
    }
    let (ds, set) = labels_of(&a.data, !a.models.is_empty())?;

    // Each guard's probability for every sample (None where a score file has none).
    let mut entries: Vec<(String, Vec<Option<f64>>, f64)> = Vec::new();
    if !a.models.is_empty() {
        let dev = a.device.select()?;
        for path in &a.models {
            let guard = GuardModel::load(path)?;
            let with_vectors =
                LabeledSet::from_dataset(&ds, None, Some(&guard.card.encoder)).with_context(|| format!("scoring {}", path.display()))?;
            let (p, _) = guard.probabilities(&with_vectors.x, &dev)?;
            let name = path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned());
            entries.push((name, p.into_iter().map(Some).collect(), guard.card.threshold));
        }
    }
    for spec in &a.scores {
        let (name, file) = spec.split_once('=').with_context(|| format!("--scores {spec:?}: expected NAME=FILE"))?;
        let file = ScoreFile::read(std::path::Path::new(file))?;
        entries.push((name.to_string(), file.aligned(&set)?, file.threshold(a.threshold)?));
    }
    let mut names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        anyhow::bail!("two guards are named {:?}; name score files apart with NAME=FILE", w[0]);
    }

    // The samples every guard scores.
    let rows: Vec<usize> = (0..set.len()).filter(|&i| entries.iter().all(|e| e.1[i].is_some())).collect();
    if rows.len() < set.len() {
        let short: Vec<String> = entries
            .iter()
            .filter_map(|e| Some(e.1.iter().filter(|p| p.is_none()).count()).filter(|&n| n > 0).map(|n| format!("{} lacks {n}", e.0)))
            .collect();
        if !a.allow_missing {
            anyhow::bail!(
                "not every guard scores every sample of {} ({}); pass --allow-missing to compare on the {} they all score",
                a.data.display(),
                short.join(", "),
                rows.len()
            );
        }
        eprintln!("comparing on the {} of {} samples every guard scores ({})", rows.len(), set.len(), short.join(", "));
    }
    let set = set.subset(&rows);
    let entries: Vec<Entry> = entries
        .into_iter()
        .map(|(name, p, threshold)| Entry { name, probs: rows.iter().map(|&i| p[i].expect("every guard scores these")).collect(), threshold })
        .collect();
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    let data = format!("{} ({} samples)", ds.descriptor.name, set.len());
    compare::write(&a.out, &set, &entries, &data, a.resamples, a.seed)?;
    println!("{}", a.out.join("compare.md").display());
    Ok(())
}
