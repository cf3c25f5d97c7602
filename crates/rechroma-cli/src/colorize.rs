//! `rechroma colorize`: colorize photos and folders at full resolution.

use crate::outputs::chain;
use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use rechroma::hints::{Hint, HintFile};
use rechroma::infer::{ColorizeOptions, Colorizer};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("dest").required(true).args(["output", "out_dir"])))]
pub struct Args {
    /// Photos, or folders searched recursively (JPEG, PNG, WebP, TIFF, BMP).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output file, for a single input photo; its extension picks the format.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Output folder: each photo keeps its file name, and its path relative to an input folder.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Output format for --out-dir (png, jpg, webp, tiff, bmp) [default: each input's own].
    #[arg(long)]
    format: Option<String>,
    #[command(flatten)]
    model: crate::model_args::ModelArgs,
    /// Working size: the network sees about SIZE² pixels (aspect kept); colours are then upsampled to
    /// the photo's own resolution, so fine detail always comes from the photo's own lightness. The
    /// model learnt colours on crops of about its training size: much larger sizes show it objects at
    /// scales it never saw (larger, blotchier colour areas) and cost time and memory quadratically.
    #[arg(long, default_value_t = rechroma::infer::DEFAULT_SIZE, value_parser = clap::value_parser!(u32).range(32..=2048))]
    size: u32,
    /// Also write NAME.confidence.png: the entropy of the predicted colour distribution
    /// (dark = sure of the colour, yellow = unsure).
    #[arg(long)]
    confidence: bool,
    /// Photos processed at once [default: the number of CPUs, at most 4]. Each holds one photo in memory.
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Overwrite existing output files (inputs are never overwritten).
    #[arg(long, conflicts_with = "skip_existing")]
    force: bool,
    /// JPEG quality of the outputs, 1–100 (PNG, TIFF and WebP are lossless) [default: 95].
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: Option<u8>,
    /// Colour hints, a JSON file: for one photo a list `[{"x": 412, "y": 230, "color": "#b03030",
    /// "radius": 4}, …]` (x, y in the photo's pixels as displayed, colour sRGB whose chroma is used,
    /// radius optional in photo pixels); for a folder an object mapping photo names (relative to the
    /// input folder, or bare file names) to such lists. Needs a model that takes hints.
    #[arg(long, value_name = "FILE")]
    hints: Option<PathBuf>,
    /// One colour hint X,Y,#RRGGBB for a single photo (repeatable; added to --hints).
    #[arg(long = "hint", value_name = "X,Y,#RRGGBB")]
    hint: Vec<String>,
    /// Leave photos whose output already exists as they are (finishes an interrupted batch; exit 0
    /// when everything is there).
    #[arg(long)]
    skip_existing: bool,
}

/// Checks, before any work, that each output folder can be created and written: a read-only or
/// missing destination fails in a second, not after minutes of colorizing.
fn check_writable(jobs: &[Job]) -> Result<()> {
    let dirs: std::collections::BTreeSet<PathBuf> = jobs
        .iter()
        .map(|j| {
            j.output
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf()
        })
        .collect();
    for dir in dirs {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the output folder {}", dir.display()))?;
        let swept = rechroma::fsutil::remove_stale_temps_in(&dir);
        if swept > 0 {
            eprintln!(
                "note: {}: removed {swept} temporary file(s) an interrupted earlier run left",
                dir.display()
            );
        }
        let probe = dir.join(format!(".rechroma-write-test.{}.tmp", std::process::id()));
        std::fs::write(&probe, b"").with_context(|| format!("cannot write in the output folder {}", dir.display()))?;
        let _ = std::fs::remove_file(&probe);
    }
    Ok(())
}

/// Refuses, once and before any work, a batch whose outputs already exist (a plain rerun): says how
/// many, names the first, and offers --skip-existing and --force.
fn refuse_existing(jobs: &[Job], confidence: bool) -> Result<()> {
    let existing: Vec<PathBuf> = jobs
        .iter()
        .flat_map(|j| j.files(confidence))
        .filter(|f| f.exists())
        .collect();
    match existing.as_slice() {
        [] => Ok(()),
        [one] => bail!(
            "{} already exists: --force overwrites it, --skip-existing leaves it",
            one.display()
        ),
        [first, ..] => bail!(
            "{} of the outputs already exist (e.g. {}): --skip-existing colorizes only the missing ones, --force overwrites them",
            existing.len(),
            first.display()
        ),
    }
}

/// Warns about flags that change nothing here: decoding flags the model ignores, a JPEG quality with
/// no JPEG output, spreading flags without hints.
fn warn_unused(args: &Args, jobs: &[Job], colorizer: &Colorizer) {
    use rechroma::model::{Architecture, mleu::Head};
    let decode = &args.model.decode;
    let distribution = colorizer.architecture() == Architecture::Mleu(Head::Classification);
    let model = || format!("{} ({})", colorizer.source, colorizer.architecture().name());
    if decode.temperature.is_some() && !distribution {
        eprintln!(
            "warning: --temperature changes nothing: the model {} regresses its colours",
            model()
        );
    }
    if decode.prior_correction.is_some() && !distribution {
        eprintln!(
            "warning: --prior-correction changes nothing: the model {} regresses its colours",
            model()
        );
    }
    let jpeg = |p: &Path| {
        p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
    };
    if args.quality.is_some() && !jobs.iter().any(|j| jpeg(&j.output)) {
        eprintln!("warning: --quality changes nothing: no output is a JPEG (PNG, TIFF and WebP are lossless)");
    }
    let spread = &args.model.spread;
    let spreading = spread.spread_reach.is_some() || spread.spread_edge.is_some() || spread.spreads.is_some();
    if spreading && jobs.iter().all(|j| j.hints.is_empty()) {
        eprintln!("warning: --spread-reach, --spread-edge and --spreads change nothing without colour hints");
    }
}

/// One photo to colorize.
struct Job {
    input: PathBuf,
    output: PathBuf,
    /// The photo's name relative to its input folder (its file name for a photo given directly): what
    /// a per-photo hints file names it by.
    key: String,
    hints: Vec<Hint>,
    /// False when only the confidence map is missing (--skip-existing): the photo is not rewritten.
    map_only: bool,
}

impl Job {
    /// The files this job writes: its output (unless only its map is missing) and, with `confidence`,
    /// its confidence map.
    fn files(&self, confidence: bool) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if !self.map_only {
            files.push(self.output.clone());
        }
        if confidence {
            files.push(confidence_path(&self.output));
        }
        files
    }
}

/// The hints of `--hints` and `--hint`, given to the jobs they name. Refuses, before any work, a file
/// that does not parse, a list for several photos, names that match no photo, and hints given to a model
/// that takes none.
fn assign_hints(args: &Args, jobs: &mut [Job], colorizer: &Colorizer) -> Result<()> {
    let mut inline = Vec::new();
    for text in &args.hint {
        inline.push(rechroma::hints::parse_inline(text).with_context(|| "--hint".to_string())?);
    }
    let file = match &args.hints {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read the hints file {}", path.display()))?;
            Some(rechroma::hints::parse_hint_file(&bytes).with_context(|| format!("{}", path.display()))?)
        }
        None => None,
    };
    if inline.is_empty() && file.is_none() {
        return Ok(());
    }
    if !colorizer.takes_hints() {
        bail!(
            "the model ({}, {}) takes no colour hints: use the default model or one trained with `rechroma train --hints`",
            colorizer.source,
            colorizer.architecture().name()
        );
    }
    let count = jobs.len();
    let single = |what: &str| -> Result<()> {
        if count != 1 {
            bail!(
                "{what} is for one photo, but there are {count} inputs: give --hints a file that maps photo names to hints"
            );
        }
        Ok(())
    };
    match file {
        Some(HintFile::List(list)) => {
            single("a list of hints")?;
            jobs[0].hints = list;
        }
        Some(HintFile::PerPhoto(map)) => {
            for (name, hints) in map {
                let matching: Vec<usize> = jobs
                    .iter()
                    .enumerate()
                    .filter(|(_, j)| j.key == name || Path::new(&j.key).file_name().is_some_and(|f| f == name.as_str()))
                    .map(|(i, _)| i)
                    .collect();
                match matching.as_slice() {
                    [] => bail!(
                        "{}: {name:?} names none of the input photos",
                        args.hints.as_ref().expect("a file").display()
                    ),
                    [i] => jobs[*i].hints = hints,
                    _ => bail!(
                        "{}: {name:?} names {} input photos: use its path relative to the input folder",
                        args.hints.as_ref().expect("a file").display(),
                        matching.len()
                    ),
                }
            }
        }
        None => {}
    }
    if !inline.is_empty() {
        single("--hint")?;
        jobs[0].hints.extend(inline);
    }
    Ok(())
}

/// Lists (input, output) pairs: folders are searched recursively and mirrored under --out-dir, leaving
/// out what is already under the output folder (a folder colorized into a subfolder of itself must not
/// colorize its own results on the next run). Notes on skipped files go to `notes`.
fn plan(args: &Args, notes: &mut Vec<String>) -> Result<(Vec<Job>, Vec<String>)> {
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    let out_dir = args.out_dir.as_ref().and_then(|d| d.canonicalize().ok());
    let rename = |p: PathBuf| match &args.format {
        Some(ext) => p.with_extension(ext),
        None => p,
    };
    for input in &args.inputs {
        if input.is_dir() {
            let Some(dir) = &args.out_dir else {
                bail!(
                    "{}: is a folder; use --out-dir (-o takes a single photo)",
                    input.display()
                );
            };
            if out_dir.is_some() && input.canonicalize().ok() == out_dir {
                bail!(
                    "{}: --out-dir is this input folder itself, so the outputs would replace the photos: choose another folder (e.g. {})",
                    input.display(),
                    input.join("colour").display()
                );
            }
            let scan = rechroma::data::scan_all(input)?;
            if let Some(summary) = scan.skipped_summary() {
                notes.push(format!("{}: skipped {summary}", input.display()));
            }
            let (mine, photos): (Vec<PathBuf>, Vec<PathBuf>) = scan
                .photos
                .into_iter()
                .partition(|p| out_dir.as_ref().is_some_and(|o| resolved(p).starts_with(o)));
            if !mine.is_empty() {
                notes.push(format!(
                    "{}: left out {} photo(s) inside the output folder {}",
                    input.display(),
                    mine.len(),
                    dir.display()
                ));
            }
            // Results of an earlier run (into another output folder inside this one) are not photos.
            let mut lists = std::collections::HashMap::new();
            let (earlier, photos): (Vec<PathBuf>, Vec<PathBuf>) = photos.into_iter().partition(|p| {
                let dir = p.parent().unwrap_or(Path::new(".")).to_path_buf();
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                lists
                    .entry(dir)
                    .or_insert_with_key(|d| crate::outputs::written_in(d))
                    .contains(&name)
            });
            if !earlier.is_empty() {
                notes.push(format!(
                    "{}: left out {} photo(s) an earlier `rechroma colorize` wrote (listed in {} beside them), e.g. {}",
                    input.display(),
                    earlier.len(),
                    crate::outputs::WRITTEN_LIST,
                    crate::outputs::shown(&earlier[0])
                ));
            }
            for photo in photos {
                let rel = photo.strip_prefix(input).unwrap_or(&photo).to_path_buf();
                jobs.push(Job {
                    output: rename(dir.join(&rel)),
                    key: rel.to_string_lossy().into_owned(),
                    input: photo,
                    hints: Vec::new(),
                    map_only: false,
                });
            }
        } else if !input.exists() {
            // A link whose target is missing or loops is not "no such file": say which.
            let reason = match std::fs::symlink_metadata(input) {
                Ok(m) if m.file_type().is_symlink() => "a symbolic link that leads nowhere (missing target or a loop)",
                _ => "no such file or folder",
            };
            errors.push(format!("{}: {reason}", input.display()));
        } else {
            let output = match (&args.output, &args.out_dir) {
                (Some(o), _) => o.clone(),
                (None, Some(dir)) => rename(dir.join(input.file_name().unwrap_or(input.as_os_str()))),
                (None, None) => unreachable!("clap requires -o or --out-dir"),
            };
            jobs.push(Job {
                key: input
                    .file_name()
                    .unwrap_or(input.as_os_str())
                    .to_string_lossy()
                    .into_owned(),
                input: input.clone(),
                output,
                hints: Vec::new(),
                map_only: false,
            });
        }
    }
    if args.output.is_some() && jobs.len() + errors.len() > 1 {
        bail!("-o names one output file but there are several inputs; use --out-dir");
    }
    Ok((jobs, errors))
}

/// The path a file would have once created: the canonical parent joined with the file name.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match (parent.canonicalize(), path.file_name()) {
        (Ok(p), Some(name)) => p.join(name),
        _ => path.to_path_buf(),
    }
}

fn confidence_path(output: &Path) -> PathBuf {
    let stem = output.file_stem().unwrap_or_default().to_string_lossy();
    output.with_file_name(format!("{stem}.confidence.png"))
}

/// Whether a photo has colour of its own (mean chroma of a thumbnail above the gray threshold).
fn has_colour(img: &image::DynamicImage) -> bool {
    img.color().has_color()
        && rechroma::color::LabImage::from_rgb8(&img.thumbnail(64, 64).to_rgb8()).mean_chroma()
            >= rechroma::evaluate::GRAY_CHROMA
}

/// Colorizes one photo; returns a one-line error naming the file.
#[allow(clippy::too_many_arguments)]
fn run_one(
    job: &Job,
    colorizer: &Colorizer,
    options: &ColorizeOptions,
    inputs: &HashSet<PathBuf>,
    force: bool,
    quality: u8,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let name = |p: &Path| crate::outputs::shown(p);
    rechroma::fsutil::output_format(&job.output).map_err(|e| chain(&e))?;
    let outputs = job.files(options.confidence);
    // The output folders were created by `check_writable` before any job started.
    for out in &outputs {
        if inputs.contains(&resolved(out)) {
            return Err(format!("{}: is an input photo; refusing to overwrite it", name(out)));
        }
        if !force && out.exists() {
            return Err(format!("{}: already exists (--force overwrites it)", name(out)));
        }
    }
    let (img, metadata) = rechroma::data::load_image_with_metadata(&job.input).map_err(|e| chain(&e))?;
    if metadata.animated {
        notes.push(format!(
            "{}: holds several images (an animation or pages): only the first is colorized",
            name(&job.input)
        ));
    }
    if metadata
        .icc
        .as_ref()
        .is_some_and(|icc| !rechroma::fsutil::is_rgb_profile(icc))
    {
        notes.push(format!(
            "{}: its ICC profile is not an RGB one (a gray profile): the colour output carries no profile (sRGB)",
            name(&job.input)
        ));
    }
    if has_colour(&img) {
        notes.push(format!(
            "{}: a colour photo: its colours are replaced by the model's, from its lightness",
            name(&job.input)
        ));
    }
    colorizer
        .check_hints(&job.hints, img.width(), img.height())
        .map_err(|e| format!("{}: {}", name(&job.input), chain(&e)))?;
    let result = colorizer
        .colorize_with_hints(&img, options, &job.hints)
        .map_err(|e| format!("{}: {}", name(&job.input), chain(&e)))?;
    drop(img);
    let save = rechroma::fsutil::SaveOptions {
        metadata: Some(&metadata),
        jpeg_quality: quality,
    };
    if !job.map_only {
        rechroma::fsutil::save_image_atomic_with(&result.image, &job.output, &save).map_err(|e| chain(&e))?;
    }
    if let Some(map) = result.confidence {
        rechroma::fsutil::save_image_atomic(&image::DynamicImage::ImageRgb8(map), &confidence_path(&job.output))
            .map_err(|e| chain(&e))?;
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    let mut notes = Vec::new();
    let (jobs, mut errors) = plan(&args, &mut notes)?;
    for n in &notes {
        eprintln!("note: {n}");
    }
    if jobs.is_empty() && errors.is_empty() {
        bail!("no photos found in the inputs (JPEG, PNG, WebP, TIFF, BMP)");
    }
    let colorizer = args.model.colorizer()?;
    let options = args.model.options(args.size, args.confidence);
    if args.confidence && !colorizer.architecture().classifies() {
        bail!(
            "--confidence needs a classification model; {} regresses ab (no colour distribution)",
            colorizer.source
        );
    }
    let inputs: HashSet<PathBuf> = jobs.iter().map(|j| resolved(&j.input)).collect();
    // Every file each job writes (its confidence map included), claimed before any work: a job whose
    // file another job already claims is refused, never silently replaced.
    let mut claimed = HashSet::new();
    let mut kept = Vec::new();
    for job in jobs {
        let files: Vec<PathBuf> = job.files(options.confidence).iter().map(|f| resolved(f)).collect();
        match files.iter().find(|f| claimed.contains(*f)) {
            Some(taken) => errors.push(format!(
                "{}: another input already writes {}",
                job.input.display(),
                taken.display()
            )),
            None => {
                claimed.extend(files);
                kept.push(job);
            }
        }
    }
    let mut jobs = kept;
    assign_hints(&args, &mut jobs, &colorizer)?;
    let mut skipped = 0;
    if args.skip_existing {
        let before = jobs.len();
        // A job is done when every file it writes is there (a confidence map asked for now counts).
        jobs.retain(|j| !j.output.exists() || (options.confidence && !confidence_path(&j.output).exists()));
        for j in &mut jobs {
            j.map_only = j.output.exists();
        }
        skipped = before - jobs.len();
    }
    if !args.force && !args.skip_existing {
        refuse_existing(&jobs, options.confidence)?;
    }
    warn_unused(&args, &jobs, &colorizer);
    check_writable(&jobs)?;
    let threads = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(4))
        .max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start worker threads")?;
    let bar = crate::progress::Progress::new(jobs.len() as u64, "colorizing", "photo");
    for e in &errors {
        bar.suspend(|| eprintln!("error: {e}"));
    }
    let quality = args.quality.unwrap_or(rechroma::fsutil::JPEG_QUALITY);
    let start = std::time::Instant::now();
    let results: Vec<Result<Vec<PathBuf>, String>> = pool.install(|| {
        jobs.par_iter()
            .map(|job| {
                let mut notes = Vec::new();
                let r = run_one(job, &colorizer, &options, &inputs, args.force, quality, &mut notes);
                for n in notes {
                    bar.suspend(|| eprintln!("note: {n}"));
                }
                if let Err(e) = &r {
                    bar.suspend(|| eprintln!("error: {e}"));
                }
                bar.inc(&job.input.display().to_string());
                r.map(|()| job.files(options.confidence))
            })
            .collect()
    });
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let written: Vec<PathBuf> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .flatten()
        .cloned()
        .collect();
    if let Err(e) = crate::outputs::mark_written(&written) {
        eprintln!("warning: cannot list the outputs as rechroma's own: {e:#}");
    }
    bar.finish();
    let failures = failed.len() + errors.len();
    let done = jobs.len() - failed.len();
    let total = jobs.len() + errors.len();
    eprintln!(
        "colorized {done} of {total} photos in {:.1} s with the {} model{}{}",
        start.elapsed().as_secs_f64(),
        colorizer.source,
        if skipped > 0 {
            format!("; {skipped} already done (--skip-existing)")
        } else {
            String::new()
        },
        if failures > 0 {
            format!("; {failures} failed")
        } else {
            String::new()
        }
    );
    if failures > 0 {
        bail!("{failures} of {total} photos failed");
    }
    Ok(())
}
