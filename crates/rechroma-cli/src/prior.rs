//! `rechroma prior`: the colour prior of a photo folder.

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use rechroma::color::LabImage;
use rechroma::data;
use rechroma::quantize::{PriorAccumulator, PriorConfig, Smoothing};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Folder of training photos (searched recursively: JPEG, PNG, WebP, TIFF, BMP).
    #[arg(long)]
    data: PathBuf,
    /// Where to write the prior (JSON); missing folders are created.
    #[arg(short, long = "output", alias = "out", default_value = "prior.json")]
    out: PathBuf,
    /// Where to write the picture of the prior and weights [default: OUT with the extension .png].
    #[arg(long)]
    picture: Option<PathBuf>,
    /// Smoothing of the measured distribution: `ab2d` (Zhang et al.: 2-D Gaussian in ab space),
    /// `index1d` (MLEU: 1-D Gaussian along the bin index) or `none`.
    #[arg(long, value_enum, default_value_t = SmoothingArg::Ab2d)]
    smoothing: SmoothingArg,
    /// Standard deviation of the smoothing Gaussian (ab units for ab2d, bins for index1d).
    #[arg(long, default_value_t = 5.0)]
    sigma: f64,
    /// λ: weight of the uniform distribution mixed into the prior.
    #[arg(long, default_value_t = 0.5)]
    lambda: f64,
    /// α: exponent of the rebalancing weights.
    #[arg(long, default_value_t = 1.0)]
    alpha: f64,
    /// A photo whose pixels all have |ab| ≤ this is grayscale and not counted.
    #[arg(long, default_value_t = 5.0)]
    gray_threshold: f32,
    /// Shrink each photo so its shorter side is at most this many pixels before counting (every photo
    /// then weighs about the same, as in training crops); 0 counts photos at full size.
    #[arg(long, default_value_t = 256)]
    resize: u32,
    /// Replace OUT and the picture if they exist (they are refused otherwise).
    #[arg(long)]
    force: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SmoothingArg {
    Ab2d,
    Index1d,
    None,
}

pub fn run(args: Args) -> Result<()> {
    let picture = args.picture.clone().unwrap_or_else(|| args.out.with_extension("png"));
    crate::outputs::check_new(&[&args.out, &picture], args.force)?;
    for p in [&args.out, &picture] {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let config = PriorConfig {
        smoothing: match args.smoothing {
            SmoothingArg::Ab2d => Smoothing::Ab2d,
            SmoothingArg::Index1d => Smoothing::Index1d,
            SmoothingArg::None => Smoothing::None,
        },
        sigma: args.sigma,
        lambda: args.lambda,
        alpha: args.alpha,
        gray_threshold: args.gray_threshold,
    };
    let files =
        data::scan(&args.data).with_context(|| format!("cannot read the photo folder {}", args.data.display()))?;
    if files.is_empty() {
        bail!("{}: no photos found (JPEG, PNG, WebP, TIFF, BMP)", args.data.display());
    }
    let bar = ProgressBar::new(files.len() as u64).with_style(
        ProgressStyle::with_template("{prefix} {bar:40} {pos}/{len} photos {per_sec} eta {eta}")
            .expect("valid template"),
    );
    bar.set_prefix("counting");
    let (acc, failures) = files
        .par_iter()
        .fold(
            || (PriorAccumulator::new(config.gray_threshold), Vec::new()),
            |(mut acc, mut failures), path| {
                match data::load_rgb(path) {
                    Ok(img) => {
                        let img = if args.resize > 0 {
                            data::shrink_to_short_side(img, args.resize)
                        } else {
                            img
                        };
                        let lab = LabImage::from_rgb8(&img);
                        let (a, b) = lab.ab().split_at(lab.pixels());
                        acc.add_image(a, b);
                    }
                    Err(e) => {
                        bar.suspend(|| eprintln!("warning: skipping {}", crate::outputs::chain(&e)));
                        failures.push(e);
                    }
                }
                bar.inc(1);
                (acc, failures)
            },
        )
        .reduce(
            || (PriorAccumulator::new(config.gray_threshold), Vec::new()),
            |(mut a, mut fa), (b, fb)| {
                a.merge(&b);
                fa.extend(fb);
                (a, fa)
            },
        );
    bar.finish_and_clear();
    let prior = acc
        .finish(config)
        .with_context(|| format!("no prior for {}", args.data.display()))?;
    prior.save(&args.out)?;
    let img = rechroma::plot::prior_picture(&prior)?;
    rechroma::fsutil::save_image_atomic(&image::DynamicImage::ImageRgb8(img), &picture)?;

    let mut order: Vec<usize> = (0..prior.counts.len()).collect();
    order.sort_by(|&x, &y| prior.empirical[y].total_cmp(&prior.empirical[x]));
    let (w_min, w_max) = prior
        .weights
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    println!(
        "photos      {} counted, {} grayscale skipped, {} unreadable",
        prior.images,
        prior.skipped_gray,
        failures.len()
    );
    println!("pixels      {}", prior.pixels);
    println!("bins        {} of 313 never hit", prior.empty_bins());
    let top: Vec<String> = order[..5]
        .iter()
        .map(|&q| {
            format!(
                "({:.0},{:.0}) {:.1}%",
                prior.bins[q][0],
                prior.bins[q][1],
                100.0 * prior.empirical[q]
            )
        })
        .collect();
    println!("commonest   {}", top.join("  "));
    println!("weights     {w_min:.3} .. {w_max:.3} (Σ P̃·w = 1)");
    println!("wrote       {} and {}", args.out.display(), picture.display());
    Ok(())
}
