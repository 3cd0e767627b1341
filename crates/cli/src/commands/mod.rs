//! One module per command: its arguments and an `exec` that resolves them
//! into library calls and says what happened. Decisions about guards,
//! jobs and data belong to the libraries, not here.

use clap::{Parser, Subcommand};

mod cluster;
mod compare;
mod data;
mod devices;
mod embed;
mod embed_text;
mod eval;
mod export_onnx;
mod import;
mod judge;
mod overlay;
mod pairs;
mod predict;
mod robustness;
mod sweep;
mod synth;
mod train;
mod zero_shot;

#[derive(Parser, Debug)]
#[command(
    name = "pairguard",
    version,
    about = "Train lightweight image-safety guards on frozen CLIP embeddings, with counterfactual SafetyPairs mixed into the training data."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write the embedded synthetic benchmark (embeddings, manifests, descriptors).
    Synth(synth::Args),
    /// Inspect and validate datasets.
    #[command(subcommand)]
    Data(data::Command),
    /// Compute an embedding store for a dataset's images with the frozen CLIP encoder.
    Embed(embed::Args),
    /// Train a guard head on an embedded dataset.
    Train(train::Args),
    /// Evaluate a guard on a labelled dataset: metrics JSON and a table.
    Eval(eval::Args),
    /// Every guard on one test set: F1, accuracy and AUROC per category and
    /// source, pair metrics, 95% bootstrap intervals, ROC curves.
    Compare(compare::Args),
    /// Score samples: JSON lines with scores, category scores and verdicts.
    Predict(predict::Args),
    /// Export a guard to ONNX: the head alone, or the whole pipeline with the encoder.
    ExportOnnx(export_onnx::Args),
    /// Embed a policy's prompts with the text tower of a CLIP checkpoint.
    EmbedText(embed_text::Args),
    /// Make a zero-shot guard from a policy: a model file like a trained
    /// guard's, calibrated on validation data when given.
    ZeroShot(zero_shot::Args),
    /// Ask a vision-language model for a verdict on every image of a
    /// dataset (chat-completions API or a local command): scores.jsonl for
    /// `eval --scores`, `compare` and sweeps' baselines.
    Judge(judge::Args),
    /// Turn a published fixed head into a guard model file.
    #[command(subcommand)]
    Import(import::Command),
    /// Run a sample-efficiency sweep from an experiment file.
    Sweep(sweep::Args),
    /// Put one strategy's curve from each of several sweeps on one figure
    /// (overlay.csv, overlay.png/svg): pair pools that need a sweep each.
    Overlay(overlay::Args),
    /// Attack a guard through the whole pipeline (pixels, encoder, head) and
    /// corrupt its images: robust accuracy per attack, epsilon, category and source.
    Robustness(robustness::Args),
    /// Make counterfactual pairs with an image editor.
    #[command(subcommand)]
    Pairs(pairs::Command),
    /// Assemble an embedding store from the shards of `embed --shard` once
    /// all of them have finished: the same as `embed --collect`.
    Merge(embed::MergeArgs),
    /// Write launch files that run embed, robustness or sweep as shards on
    /// a Slurm cluster or Kubernetes, with the step that collects them.
    #[command(subcommand)]
    Cluster(cluster::Command),
    /// List compute devices and say which one `--device auto` picks.
    Devices,
}

pub fn exec(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Synth(a) => synth::exec(a),
        Command::Data(c) => data::exec(c),
        Command::Embed(a) => embed::exec(a),
        Command::Train(a) => train::exec(a),
        Command::Eval(a) => eval::exec(a),
        Command::Compare(a) => compare::exec(a),
        Command::Predict(a) => predict::exec(a),
        Command::ExportOnnx(a) => export_onnx::exec(a),
        Command::EmbedText(a) => embed_text::exec(a),
        Command::ZeroShot(a) => zero_shot::exec(a),
        Command::Import(c) => import::exec(c),
        Command::Judge(a) => judge::exec(a),
        Command::Sweep(a) => sweep::exec(a),
        Command::Overlay(a) => overlay::exec(a),
        Command::Robustness(a) => robustness::exec(a),
        Command::Pairs(c) => pairs::exec(c),
        Command::Merge(a) => embed::merge(a),
        Command::Cluster(c) => cluster::exec(c),
        Command::Devices => devices::exec(),
    }
}
