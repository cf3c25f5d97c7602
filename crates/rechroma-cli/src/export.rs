//! `rechroma export`: a run folder's config and weights in half precision (the embedded model's form),
//! or the network as an ONNX graph.

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
    /// Where to write config.json, prior.json and model.safetensors (f16) [--format run].
    #[arg(
        long = "out-dir",
        alias = "out",
        value_name = "DIR",
        required_unless_present = "output"
    )]
    out: Option<PathBuf>,
    /// What to write: `run` (a model folder, f16) or `onnx` (the network as an ONNX graph: input L in
    /// Lab units, outputs ab in Lab units and class logits; see the README).
    #[arg(long, value_enum, default_value_t = Format::Run)]
    format: Format,
    /// The ONNX file to write [--format onnx].
    #[arg(short, long, value_name = "FILE", conflicts_with = "out")]
    output: Option<PathBuf>,
    /// Replace a model already in the output folder (it is refused otherwise).
    #[arg(long)]
    force: bool,
    /// Decoding settings to store as the model's defaults (see `colorize --help`).
    #[command(flatten)]
    decode: crate::model_args::DecodeArgs,
}

/// What `export` writes.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A model folder (config.json, prior.json, model.safetensors in f16).
    Run,
    /// An ONNX graph (opset 17) with the weights inside.
    Onnx,
}

/// `--format onnx`: the network of the run (or the embedded model) as an ONNX file.
fn export_onnx(run: &std::path::Path, args: &Args) -> Result<()> {
    let Some(out) = &args.output else {
        anyhow::bail!("--format onnx writes one file: give it with -o FILE.onnx");
    };
    crate::outputs::check_folder(out)?;
    crate::outputs::check_new(&[out.as_path()], args.force)?;
    let device = burn::tensor::Device::flex();
    let model = if run.as_os_str() == "default" && !run.exists() {
        rechroma::run::embedded_model(&device)?
    } else {
        rechroma::run::Model::load(run, &device).with_context(|| format!("cannot load {}", run.display()))?
    };
    let bytes = rechroma::onnx::export(&model.network).with_context(|| format!("cannot export {}", run.display()))?;
    rechroma::fsutil::write_atomic(out, &bytes)?;
    println!(
        "wrote {} ({:.1} MB, ONNX opset {})",
        out.display(),
        bytes.len() as f64 / 1e6,
        rechroma::onnx::OPSET
    );
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    let run = args
        .model
        .as_ref()
        .or(args.run.as_ref())
        .expect("clap requires a run folder");
    if args.format == Format::Onnx {
        return export_onnx(run, &args);
    }
    let Some(out_dir) = &args.out else {
        anyhow::bail!("--format run writes a model folder: give it with --out-dir DIR");
    };
    use rechroma::run::{CONFIG_FILE, PRIOR_FILE, WEIGHTS_FILE};
    let files = [CONFIG_FILE, WEIGHTS_FILE, PRIOR_FILE].map(|f| out_dir.join(f));
    let existing: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).filter(|p| p.exists()).collect();
    crate::outputs::check_new(&existing, args.force)?;
    let bytes = if run.as_os_str() == "default" && !run.exists() {
        rechroma::run::export_embedded(out_dir, |d| args.decode.apply(d)).context("cannot export the default model")?
    } else {
        rechroma::run::export(run, out_dir, |d| args.decode.apply(d))
            .with_context(|| format!("cannot export {}", run.display()))?
    };
    println!(
        "wrote {} (config.json, model.safetensors: {:.1} MB)",
        out_dir.display(),
        bytes as f64 / 1e6
    );
    Ok(())
}
