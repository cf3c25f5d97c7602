//! `rechroma export`: a run folder's config and weights in half precision (the embedded model's form).

use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["run", "model"])))]
pub struct Args {
    /// The run folder to export (as --model; kept for earlier scripts).
    #[arg(hide = true)]
    run: Option<PathBuf>,
    /// A run folder written by `rechroma train`, or `default` (the embedded model).
    #[arg(long, value_name = "RUN")]
    model: Option<PathBuf>,
    /// Where to write config.json, prior.json and model.safetensors (f16).
    #[arg(long = "out-dir", alias = "out", value_name = "DIR")]
    out: PathBuf,
    /// Replace a model already in the output folder (it is refused otherwise).
    #[arg(long)]
    force: bool,
    /// Decoding settings to store as the model's defaults (see `colorize --help`).
    #[command(flatten)]
    decode: crate::model_args::DecodeArgs,
}

pub fn run(args: Args) -> Result<()> {
    let run = args
        .model
        .as_ref()
        .or(args.run.as_ref())
        .expect("clap requires a run folder");
    use rechroma::run::{CONFIG_FILE, PRIOR_FILE, WEIGHTS_FILE};
    let files = [CONFIG_FILE, WEIGHTS_FILE, PRIOR_FILE].map(|f| args.out.join(f));
    let existing: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).filter(|p| p.exists()).collect();
    crate::outputs::check_new(&existing, args.force)?;
    let bytes = if run.as_os_str() == "default" && !run.exists() {
        rechroma::run::export_embedded(&args.out, |d| args.decode.apply(d))
            .context("cannot export the default model")?
    } else {
        rechroma::run::export(run, &args.out, |d| args.decode.apply(d))
            .with_context(|| format!("cannot export {}", run.display()))?
    };
    println!(
        "wrote {} (config.json, model.safetensors: {:.1} MB)",
        args.out.display(),
        bytes as f64 / 1e6
    );
    Ok(())
}
