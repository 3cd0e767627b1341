//! `pairguard export-onnx`: the head alone, or the whole pipeline.

use std::path::PathBuf;

use pairguard_data::Precision;
use pairguard_model::{Device, GuardModel};
use pairguard_run::write_atomic;

use crate::args::{GuardEncoderArgs, precision};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The guard (`.safetensors`, with its `.json` card beside it).
    #[arg(long)]
    model: PathBuf,
    /// Output .onnx file.
    #[arg(long)]
    out: PathBuf,
    /// Include the CLIP encoder: pixels in, probabilities out. The encoder
    /// must be the one the guard was trained on (checked).
    #[arg(long)]
    pipeline: bool,
    /// The encoder's arithmetic in a --pipeline graph: f32; f16 (float16
    /// weights and products, half the file; LayerNorm and the head stay
    /// f32); or int8 (int8 weights per column as `embed --precision int8`
    /// holds them, inputs quantised per batch, `MatMulInteger` with int32
    /// accumulation, in the form onnxruntime fuses into its integer kernel;
    /// a quarter of the file).
    #[arg(long, default_value = "f32", value_parser = precision, requires = "pipeline")]
    precision: Precision,
    /// The encoder for --pipeline.
    #[command(flatten)]
    encoder: GuardEncoderArgs,
}

pub fn exec(a: Args) -> anyhow::Result<()> {
    let model = GuardModel::load(&a.model)?;
    let bytes = if a.pipeline {
        let enc = a.encoder.load(&model, &Device::flex())?;
        pairguard_model::onnx::export_pipeline(&enc, &model, a.precision)?
    } else {
        pairguard_model::onnx::export_head(&model)
    };
    write_atomic(&a.out, &bytes)?;
    eprintln!("wrote {} ({} bytes, opset {})", a.out.display(), bytes.len(), pairguard_model::onnx::OPSET);
    println!("{}", a.out.display());
    Ok(())
}
