//! `pairguard compare`: every guard on one test set, side by side.

use std::path::PathBuf;

use anyhow::Context;
use pairguard_data::EmbeddingStore;
use pairguard_experiments::compare::{self, Entry};
use pairguard_model::GuardModel;
use pairguard_model::scores::ScoreFile;
use pairguard_run::sha256_file;

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
    /// An embedding store of the test set (`embed DATASET --encoder E --out
    /// STORE`), for guards of another encoder than the dataset's own
    /// store: each guard is scored on the store of its encoder. Repeat for
    /// more.
    #[arg(long = "store", value_name = "STORE")]
    stores: Vec<PathBuf>,
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

/// A guard's probabilities on every sample of the test set, before the
/// samples every guard scores are chosen.
struct Scored {
    name: String,
    probs: Vec<Option<f64>>,
    threshold: f64,
    file: PathBuf,
}

pub fn exec(a: Args) -> anyhow::Result<()> {
    if a.models.len() + a.scores.len() == 0 {
        anyhow::bail!("nothing to compare: give guards with --model and outputs with --scores NAME=FILE");
    }
    if a.resamples == 0 {
        anyhow::bail!("--resamples must be at least 1");
    }
    let (ds, set) = labels_of(&a.data, !a.models.is_empty() && a.stores.is_empty())?;

    // Each guard's probability for every sample (None where a score file has none).
    let mut entries: Vec<Scored> = Vec::new();
    if !a.models.is_empty() {
        let dev = a.device.select()?;
        let loaded: Vec<(String, EmbeddingStore)> =
            a.stores.iter().map(|p| Ok((p.display().to_string(), EmbeddingStore::load(p)?))).collect::<anyhow::Result<_>>()?;
        let stores: Vec<(String, &EmbeddingStore)> = ds
            .embeddings
            .iter()
            .map(|s| (format!("the embedding store of {}", a.data.display()), s))
            .chain(loaded.iter().map(|(p, s)| (p.clone(), s)))
            .collect();
        for path in &a.models {
            let guard = GuardModel::load(path)?;
            let (store_name, store) = stores.iter().find(|(_, s)| guard.card.encoder.ensure_matches(&s.encoder, "").is_ok()).with_context(|| {
                format!(
                    "{}: no embedding store of its encoder ({}, weights sha256 {}) among {}; embed the test set with it \
                     (pairguard embed {} --encoder ENCODER --out STORE) and pass --store STORE",
                    path.display(),
                    guard.card.encoder.model,
                    &guard.card.encoder.weights_sha256[..guard.card.encoder.weights_sha256.len().min(12)],
                    if stores.is_empty() { "none".to_string() } else { stores.iter().map(|s| s.0.clone()).collect::<Vec<_>>().join(", ") },
                    a.data.display()
                )
            })?;
            let mut x = Vec::with_capacity(set.len() * store.dim());
            for id in &set.ids {
                x.extend_from_slice(store.get(id).with_context(|| format!("{store_name} has no vector for sample {id:?} of {}", a.data.display()))?);
            }
            let (p, _) = guard.probabilities(&x, &dev).with_context(|| format!("scoring {}", path.display()))?;
            let name = path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned());
            entries.push(Scored { name, probs: p.into_iter().map(Some).collect(), threshold: guard.card.threshold, file: path.clone() });
        }
    }
    for spec in &a.scores {
        let (name, file) = spec.split_once('=').with_context(|| format!("--scores {spec:?}: expected NAME=FILE"))?;
        let path = PathBuf::from(file);
        let scores = ScoreFile::read(&path)?;
        entries.push(Scored { name: name.to_string(), probs: scores.aligned(&set)?, threshold: scores.threshold(a.threshold)?, file: path });
    }
    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        anyhow::bail!("two guards are named {:?}; name score files apart with NAME=FILE", w[0]);
    }

    // The samples every guard scores.
    let rows: Vec<usize> = (0..set.len()).filter(|&i| entries.iter().all(|e| e.probs[i].is_some())).collect();
    if rows.len() < set.len() {
        let short: Vec<String> = entries
            .iter()
            .filter_map(|e| Some(e.probs.iter().filter(|p| p.is_none()).count()).filter(|&n| n > 0).map(|n| format!("{} lacks {n}", e.name)))
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
        .map(|e| {
            Ok(Entry {
                probs: rows.iter().map(|&i| e.probs[i].expect("every guard scores these")).collect(),
                threshold: e.threshold,
                sha256: sha256_file(&e.file)?,
                file: e.file.display().to_string(),
                name: e.name,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    let data = format!("{} ({} samples)", ds.descriptor.name, set.len());
    compare::write(&a.out, &set, &entries, &data, a.resamples, a.seed)?;
    println!("{}", a.out.join("compare.md").display());
    Ok(())
}
