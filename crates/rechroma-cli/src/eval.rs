//! `rechroma eval`: the fixed evaluation protocol, model vs gray baseline.

use anyhow::{Context, Result};
use rechroma::color::LabImage;
use rechroma::infer::ColorizeOptions;
use rechroma::quantize::Decoding;
use rechroma::train::validate::{ValidationSet, contact_sheet, validate_with};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Folder of colour photos to score (searched recursively).
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    model: crate::model_args::ModelArgs,
    /// Side of the centre crop every photo is scored on, after resizing its shorter side to it
    /// (a multiple of 32).
    #[arg(long, default_value_t = 256)]
    size: u32,
    /// Working size of the model (as `colorize --size`) [default: SIZE, the crop itself].
    #[arg(long)]
    working_size: Option<u32>,
    /// Print the table as JSON instead.
    #[arg(long)]
    json: bool,
    /// Write a contact sheet (gray | model | truth, one row per photo) to this PNG.
    #[arg(long)]
    sheet: Option<PathBuf>,
}

/// "MLEU classification, annealed mean T = 0.38", "MLEU regression" or "ChromaGAN".
fn describe(head: Option<rechroma::model::mleu::Head>, decoding: Decoding, beta: f32) -> String {
    use rechroma::model::mleu::Head;
    let decoding = match decoding {
        Decoding::AnnealedMean { temperature } => format!("annealed mean T = {temperature}"),
        d => format!("{d:?}"),
    };
    let name = architecture(head);
    match head {
        Some(Head::Classification) if beta == 0.0 => format!("{name}, {decoding}"),
        Some(Head::Classification) => format!("{name}, {decoding}, prior correction {beta}"),
        _ => name.into(),
    }
}

/// "ChromaGAN", "MLEU regression" or "MLEU classification".
fn architecture(head: Option<rechroma::model::mleu::Head>) -> &'static str {
    use rechroma::model::mleu::Head;
    match head {
        None => "ChromaGAN",
        Some(Head::Regression) => "MLEU regression",
        Some(Head::Classification) => "MLEU classification",
    }
}

pub fn run(args: Args) -> Result<()> {
    rechroma::model::mleu::check_size(args.size as usize, args.size as usize)?;
    let colorizer = args.model.colorizer()?;
    let decoding = args.model.decoding();
    let set = ValidationSet::open(&args.data, args.size)
        .with_context(|| format!("cannot read the photos of {}", args.data.display()))?;
    // Each crop goes through the same pipeline as `rechroma colorize`.
    let options = ColorizeOptions {
        size: args.working_size.unwrap_or(args.size),
        decoding,
        prior_correction: args.model.prior_correction,
        confidence: false,
    };
    let (report, predictions) = validate_with(&set, |truth, _| {
        let out = colorizer.colorize(&image::DynamicImage::ImageRgb8(truth.clone()), &options)?;
        Ok::<_, rechroma::infer::InferError>(LabImage::from_rgb8(&out.image.to_rgb8()).ab().to_vec())
    })?;
    if let Some(path) = &args.sheet {
        let sheet = contact_sheet(&set, &predictions, predictions.len());
        rechroma::fsutil::save_image_atomic(&image::DynamicImage::ImageRgb8(sheet), path)?;
    }
    let decoding = decoding.unwrap_or(colorizer.decoding());
    let beta = args.model.prior_correction.unwrap_or(colorizer.prior_correction());
    // What the model really ran at: ChromaGAN's input side is fixed whatever was asked.
    let (working, _) = colorizer.working_size(args.size, args.size, options.size);
    let classifies = colorizer.head() == Some(rechroma::model::mleu::Head::Classification);
    if args.json {
        let json = serde_json::json!({
            "data": args.data,
            "photos": set.names.len(),
            "size": args.size,
            "working_size": working,
            "model": colorizer.source,
            "architecture": architecture(colorizer.head()),
            "head": colorizer.head(),
            "decoding": classifies.then_some(decoding),
            "prior_correction": classifies.then_some(beta),
            "model_scores": report.model,
            "gray_scores": report.gray,
            "truth_colorfulness": report.truth_colorfulness,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    println!(
        "{} photos of {}, shorter side → {s}, centre crop {s}², working size {}; model: {} ({})",
        set.names.len(),
        args.data.display(),
        working,
        colorizer.source,
        describe(colorizer.head(), decoding, beta),
        s = args.size,
    );
    println!(
        "{:<8} {:>9} {:>7} {:>13} {:>7}",
        "", "PSNR dB", "SSIM", "colorfulness", "AuC"
    );
    for (name, s) in [("model", report.model), ("gray", report.gray)] {
        println!(
            "{name:<8} {:>9.2} {:>7.4} {:>13.1} {:>7.4}",
            s.psnr, s.ssim, s.colorfulness, s.auc
        );
    }
    println!(
        "{:<8} {:>9} {:>7} {:>13.1} {:>7}",
        "truth", "", "", report.truth_colorfulness, ""
    );
    if let Some(path) = &args.sheet {
        println!("contact sheet: {}", path.display());
    }
    Ok(())
}
