//! `rechroma eval`: the fixed evaluation protocol, model vs gray baseline.

use anyhow::{Context, Result};
use rechroma::color::LabImage;
use rechroma::evaluate::{ValidationSet, contact_sheet, validate_with};
use rechroma::model::Architecture;
use rechroma::model::mleu::Head;
use rechroma::quantize::{DecodeConfig, Decoding, Gamut};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Folder of colour photos to score (searched recursively); also accepted as --data.
    #[arg(value_name = "DIR", required_unless_present = "data", conflicts_with = "data")]
    folder: Option<PathBuf>,
    /// Folder of colour photos to score (searched recursively).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    #[command(flatten)]
    model: crate::model_args::ModelArgs,
    /// Side of the centre crop every photo is scored on, after resizing its shorter side to it
    /// (a multiple of 32).
    #[arg(long, default_value_t = 256)]
    crop: u32,
    /// Working size of the model, as `colorize --size` [default: the crop itself].
    #[arg(long, alias = "working-size")]
    size: Option<u32>,
    /// Reveal this many points of each photo's true colour as hints (Zhang et al. 2017's protocol: random
    /// places, a fixed seed per photo, each the mean colour of a --hint-side² patch) to a model that takes
    /// hints.
    /// Several counts (e.g. 0,1,2,5,10,20,50) score each and print the curve.
    #[arg(long, value_name = "N[,N…]", value_delimiter = ',', default_value = "0")]
    hints: Vec<usize>,
    /// With several --hints counts: draw PSNR against the count (model and gray) into this PNG.
    #[arg(long, value_name = "PNG")]
    curve: Option<PathBuf>,
    /// Side in pixels of the patch each revealed point averages (at the crop's scale).
    #[arg(long, default_value_t = 3, value_parser = crate::parse::count)]
    hint_side: usize,
    /// Seed of the revealed points' places.
    #[arg(long, default_value_t = 0)]
    hint_seed: u64,
    /// Print the table as JSON instead.
    #[arg(long)]
    json: bool,
    /// Write a contact sheet (gray | model | truth, one row per photo) to this PNG.
    #[arg(long)]
    sheet: Option<PathBuf>,
    /// Replace the sheet if it exists (it is refused otherwise).
    #[arg(long)]
    force: bool,
}

/// "MLEU classification, annealed mean T = 0.38, prior correction 0.5, vividness 0.8, gamut fit",
/// "MLEU regression" or "ChromaGAN" (settings at their defaults are left out).
fn describe(architecture: Architecture, d: &DecodeConfig) -> String {
    let mut parts = vec![architecture.name().to_string()];
    if architecture == Architecture::Mleu(Head::Classification) {
        parts.push(match d.decoding {
            Decoding::AnnealedMean { temperature } => format!("annealed mean T = {temperature}"),
            other => format!("{other:?}"),
        });
        if d.prior_correction != 0.0 {
            parts.push(format!("prior correction {}", d.prior_correction));
        }
    }
    if d.vividness < 1.0 {
        parts.push(format!("vividness {}", d.vividness));
    }
    if d.gamut == Gamut::Fit {
        parts.push("gamut fit".into());
    }
    parts.join(", ")
}

pub fn run(args: Args) -> Result<()> {
    let data = args
        .data
        .clone()
        .or(args.folder.clone())
        .expect("clap requires a folder");
    rechroma::model::mleu::check_size(args.crop as usize, args.crop as usize)
        .context("--crop must be a positive multiple of 32")?;
    for out in [&args.sheet, &args.curve].into_iter().flatten() {
        crate::outputs::check_new(&[out], args.force)?;
        crate::outputs::check_folder(out)?;
        crate::outputs::check_not_input(out, &data)?;
    }
    if args.curve.is_some() && args.hints.len() < 2 {
        anyhow::bail!("--curve needs several --hints counts, e.g. --hints 0,1,2,5,10,20,50");
    }
    let colorizer = args.model.colorizer()?;
    let most = args.hints.iter().copied().max().unwrap_or(0);
    if most > 0 && !colorizer.takes_hints() {
        anyhow::bail!("--hints {most}: the model ({}) takes no colour hints", colorizer.source);
    }
    let set = ValidationSet::open(&data, args.crop)
        .with_context(|| format!("cannot read the photos of {}", data.display()))?;
    // Each crop goes through the same pipeline as `rechroma colorize`.
    let options = args.model.options(args.size.unwrap_or(args.crop), false);
    let score = |count: usize| {
        let photo = std::sync::atomic::AtomicU64::new(0);
        validate_with(&set, |truth, lab| {
            // The same points for every model: seeded by (seed, photo index).
            let i = photo.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let size = (lab.width as usize, lab.height as usize);
            let hints = rechroma::hints::eval_hints(&lab.data, size, (count, args.hint_side), (args.hint_seed, i));
            let out =
                colorizer.colorize_with_hints(&image::DynamicImage::ImageRgb8(truth.clone()), &options, &hints)?;
            Ok::<_, rechroma::infer::InferError>(LabImage::from_rgb8(&out.image.to_rgb8()).ab().to_vec())
        })
    };
    if args.hints.len() > 1 {
        return curve(&args, &set, &data, &colorizer.source, score);
    }
    let validated = score(args.hints[0])?;
    let (report, predictions) = (validated.report, &validated.predictions);
    if let Some(path) = &args.sheet {
        let sheet = contact_sheet(&set, predictions, predictions.len());
        let labels: Vec<String> = set
            .names
            .iter()
            .zip(&validated.photo_scores)
            .zip(&set.gray_photo_scores)
            .map(|((name, m), g)| format!("{name}\n{:+.2} dB over gray", m.psnr.min(100.0) - g.psnr.min(100.0)))
            .collect();
        let sheet = rechroma::plot::labelled_sheet(&sheet, &labels, &["gray", "model", "truth"], args.crop, 4)?;
        rechroma::fsutil::save_image_atomic(&image::DynamicImage::ImageRgb8(sheet), path)?;
    }
    let decode = colorizer.resolve(&options);
    // What the model really ran at: ChromaGAN's input side is fixed whatever was asked.
    let (working, _) = colorizer.working_size(args.crop, args.crop, options.size);
    let architecture = colorizer.architecture();
    let classifies = architecture == Architecture::Mleu(Head::Classification);
    let head = match architecture {
        Architecture::Mleu(h) => Some(h),
        Architecture::ChromaGan => None,
    };
    if args.json {
        let json = serde_json::json!({
            "data": data,
            "photos": set.names.len(),
            "skipped_gray": set.skipped_gray,
            "crop": args.crop,
            "working_size": working,
            "model": colorizer.source,
            "architecture": architecture.name(),
            "head": head,
            "decoding": classifies.then_some(decode.decoding),
            "prior_correction": classifies.then_some(decode.prior_correction),
            "vividness": decode.vividness,
            "gamut": decode.gamut,
            "hints": args.hints[0],
            "model_scores": report.model,
            "gray_scores": report.gray,
            "truth_colorfulness": report.truth_colorfulness,
            "beats_gray": report.beats_gray,
            "median_gain_db": report.median_gain_db,
            "photo_scores": set.names.iter().zip(&validated.photo_scores).zip(&set.gray_photo_scores)
                .map(|((name, m), g)| serde_json::json!({
                    "photo": name, "model": m, "gray": g, "gain_db": m.psnr.min(100.0) - g.psnr.min(100.0),
                }))
                .collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    println!(
        "{} photos of {}, shorter side → {s}, centre crop {s}², working size {}; model: {} ({})",
        set.names.len(),
        data.display(),
        working,
        colorizer.source,
        describe(architecture, &decode),
        s = args.crop,
    );
    if args.hints[0] > 0 {
        println!(
            "{} true colours revealed per photo as hints ({}² patches, seed {})",
            args.hints[0], args.hint_side, args.hint_seed
        );
    }
    if !set.skipped_gray.is_empty() {
        println!(
            "skipped {} grayscale photo(s) (no colour to score): {}",
            set.skipped_gray.len(),
            set.skipped_gray.join(", ")
        );
    }
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
    println!(
        "the model beats gray on {:.0} % of the photos; median PSNR gain {:+.2} dB",
        100.0 * report.beats_gray,
        report.median_gain_db
    );
    if let Some(path) = &args.sheet {
        println!("contact sheet: {}", path.display());
    }
    Ok(())
}

/// `--hints N,N,…`: the protocol once per count; a table (or JSON) of PSNR against the count, and the
/// plot with `--curve`.
fn curve(
    args: &Args,
    set: &ValidationSet,
    data: &std::path::Path,
    source: &str,
    score: impl Fn(usize) -> Result<rechroma::evaluate::Validated, rechroma::infer::InferError>,
) -> Result<()> {
    let mut rows = Vec::new();
    for &n in &args.hints {
        rows.push((n, score(n)?.report));
    }
    let gray = set.gray_scores.psnr;
    if args.json {
        let json: Vec<_> = rows
            .iter()
            .map(|(n, r)| serde_json::json!({"hints": n, "model_scores": r.model, "gray_scores": r.gray, "beats_gray": r.beats_gray, "median_gain_db": r.median_gain_db}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"data": data, "model": source, "curve": json}))?
        );
    } else {
        println!(
            "{} photos of {}, model {source}; revealed points (true colours, {}² patches, seed {}):",
            set.names.len(),
            data.display(),
            args.hint_side,
            args.hint_seed
        );
        println!(
            "{:>7} {:>9} {:>12} {:>13} {:>11}",
            "points", "PSNR dB", "over gray", "over 0 hints", "above gray"
        );
        let none = rows[0].1.model.psnr;
        for (n, r) in &rows {
            println!(
                "{n:>7} {:>9.2} {:>+12.2} {:>+13.2} {:>10.0} %",
                r.model.psnr,
                r.model.psnr - gray,
                r.model.psnr - none,
                100.0 * r.beats_gray
            );
        }
        println!("{:>7} {:>9.2}", "gray", gray);
    }
    if let Some(path) = &args.curve {
        let name = data
            .file_name()
            .map_or("photos".into(), |n| n.to_string_lossy().into_owned());
        let points = rows.iter().map(|(n, r)| (*n, r.model.psnr)).collect();
        let picture = rechroma::plot::hint_curve(&[(name, points, gray)])?;
        rechroma::fsutil::save_image_atomic(&image::DynamicImage::ImageRgb8(picture), path)?;
        println!("curve: {}", path.display());
    }
    Ok(())
}
