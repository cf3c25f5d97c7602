//! `rechroma suggest`: the colours the model suggests at a point of a photo (Zhang et al. 2017's
//! "suggested colours"), to pick a hint from.

use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The photo.
    photo: PathBuf,
    /// The point X,Y in the photo's pixels as displayed (after EXIF orientation).
    #[arg(long, value_name = "X,Y")]
    at: String,
    #[command(flatten)]
    model: crate::model_args::ModelArgs,
    /// Working size, as `colorize --size`.
    #[arg(long, default_value_t = rechroma::infer::DEFAULT_SIZE, value_parser = clap::value_parser!(u32).range(32..=2048))]
    size: u32,
    /// Hints already placed (a JSON list, as `colorize --hints`): the suggestions reflect them.
    #[arg(long, value_name = "FILE")]
    hints: Option<PathBuf>,
    /// A hint already placed, X,Y,#RRGGBB (repeatable).
    #[arg(long = "hint", value_name = "X,Y,#RRGGBB")]
    hint: Vec<String>,
    /// How many colours to list.
    #[arg(long, default_value_t = 6, value_parser = crate::parse::count)]
    count: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Parses "X,Y".
fn point(text: &str) -> Result<(f64, f64)> {
    let bad = || anyhow::anyhow!("--at {text:?} is not X,Y (e.g. 412,230)");
    let (x, y) = text.split_once(',').ok_or_else(bad)?;
    let (x, y): (f64, f64) = (
        x.trim().parse().map_err(|_| bad())?,
        y.trim().parse().map_err(|_| bad())?,
    );
    if !(x.is_finite() && y.is_finite()) {
        return Err(bad());
    }
    Ok((x, y))
}

pub fn run(args: Args) -> Result<()> {
    let at = point(&args.at)?;
    let mut hints = match &args.hints {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read the hints file {}", path.display()))?;
            rechroma::hints::parse_hints(&bytes).with_context(|| format!("{}", path.display()))?
        }
        None => Vec::new(),
    };
    for text in &args.hint {
        hints.push(rechroma::hints::parse_inline(text).context("--hint")?);
    }
    let colorizer = args.model.colorizer()?;
    let (img, _) = rechroma::data::load_image_with_metadata(&args.photo)?;
    let options = args.model.options(args.size, false);
    let suggestions = colorizer
        .suggest(&img, &options, &hints, at, args.count)
        .with_context(|| format!("{}", args.photo.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&suggestions)?);
        return Ok(());
    }
    println!("suggested colours at ({}, {}) of {}:", at.0, at.1, args.photo.display());
    for s in &suggestions {
        println!(
            "  {}  {:>5.1} %   a {:>6.1}  b {:>6.1}",
            s.color,
            100.0 * s.probability,
            s.ab[0],
            s.ab[1]
        );
    }
    Ok(())
}
