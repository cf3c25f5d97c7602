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
    /// Store this prior correction β (0–1) as the model's default decoding (see `colorize --help`).
    #[arg(long)]
    prior_correction: Option<f32>,
}

pub fn run(args: Args) -> Result<()> {
    let bytes = rechroma::infer::embedded::export_run(&args.run, &args.out, args.prior_correction)
        .with_context(|| format!("cannot export {}", args.run.display()))?;
    println!(
        "wrote {} (config.json, model.safetensors: {:.1} MB)",
        args.out.display(),
        bytes as f64 / 1e6
    );
    Ok(())
}
