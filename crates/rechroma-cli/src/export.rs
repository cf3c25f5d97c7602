//! `rechroma export`: a run folder's config and weights in half precision (the embedded model's form).

use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A run folder written by `rechroma train`.
    run: PathBuf,
    /// Where to write config.json and model.safetensors (f16).
    #[arg(long)]
    out: PathBuf,
    /// Decoding settings to store as the model's defaults (see `colorize --help`).
    #[command(flatten)]
    decode: crate::model_args::DecodeArgs,
}

pub fn run(args: Args) -> Result<()> {
    let bytes = rechroma::run::export(&args.run, &args.out, |d| args.decode.apply(d))
        .with_context(|| format!("cannot export {}", args.run.display()))?;
    println!(
        "wrote {} (config.json, model.safetensors: {:.1} MB)",
        args.out.display(),
        bytes as f64 / 1e6
    );
    Ok(())
}
