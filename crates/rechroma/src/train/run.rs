//! A training run: configuration, the step loop, and checkpoints that make it resumable.
//!
//! # Run folder
//! ```text
//! RUN/config.json         the TrainConfig (architecture, data, optimiser, schedule)
//! RUN/prior.json          the prior the classification loss used (copied in)
//! RUN/model.safetensors   the latest weights (what inference loads)
//! RUN/checkpoint/         model.bpk (weights with parameter ids), optim.bpk (optimiser state), state.json
//! RUN/log.csv             step, loss
//! RUN/val.csv             validation scores of the model and the gray baseline, per validation
//! RUN/sheet.png           contact sheet of the latest validation: gray | model | truth
//! RUN/curves.png          loss, validation PSNR (model vs gray) and colorfulness (model vs truth)
//! ```
//! A checkpoint is written to `checkpoint.tmp/` and renamed over `checkpoint/`, so a run killed at any
//! moment leaves the previous checkpoint whole. Because batch `s` is a pure function of (seed, s)
//! ([`crate::data::Loader`]), a resumed run sees exactly the data the uninterrupted run would have.

use super::gan::GanLossConfig;
use super::trainee::{Trainee, save_safetensors};
use super::validate::{Report, ValidationSet, contact_sheet};
use crate::data::{DatasetConfig, Loader, PhotoDataset};
use crate::model::chromagan::ChromaGanConfig;
use crate::model::critic::CriticConfig;
use crate::model::mleu::{Head, Mleu, MleuConfig};
use crate::quantize::Prior;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The network a run trains. Serialised as the bare MLEU config (what runs and the embedded model wrote
/// before ChromaGAN existed) or `{"chromagan": …, "critic": …, "gan": …, "teacher_weights": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModelConfig {
    Mleu(MleuConfig),
    ChromaGan {
        chromagan: ChromaGanConfig,
        #[serde(default)]
        critic: CriticConfig,
        #[serde(default)]
        gan: GanLossConfig,
        /// EfficientNet-Lite0 weights (with its classifier): the pretrained classifier whose prediction
        /// on the gray photo is the target class distribution. `None` uses a random one (tests only).
        teacher_weights: Option<PathBuf>,
    },
}

impl ModelConfig {
    /// The MLEU head, if this is an MLEU.
    pub fn head(&self) -> Option<Head> {
        match self {
            ModelConfig::Mleu(m) => Some(m.head),
            ModelConfig::ChromaGan { .. } => None,
        }
    }
}

/// Everything that defines a training run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: ModelConfig,
    /// Pretrained backbone weights (safetensors, PyTorch layout); None trains from scratch.
    pub backbone_weights: Option<PathBuf>,
    /// Training photo folder.
    pub data: PathBuf,
    /// Prior file (needed by the classification head).
    pub prior: Option<PathBuf>,
    pub dataset: DatasetConfig,
    pub batch_size: usize,
    /// Total optimiser steps.
    pub steps: u64,
    /// Adam learning rate. The MLEU paper trains at 0.004.
    pub lr: f64,
    /// Adam β1, β2.
    pub betas: [f32; 2],
    /// Step decay of the learning rate: from step `s` (0-based count of steps done) on, use `lr`;
    /// `[(s, lr), …]` in any order, the latest `s` ≤ the step wins. Empty: `lr` throughout.
    #[serde(default)]
    pub lr_drops: Vec<(u64, f64)>,
    /// Data-parallel replicas: the batch is split into this many shards whose gradients are computed on
    /// as many threads and averaged ([`super::parallel`]); 1 is one ordinary step.
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// Weight of the classification term in a joint head's loss (MSE + weight · cross-entropy).
    #[serde(default = "default_joint_class_weight")]
    pub joint_class_weight: f32,
    /// Cosine decay with linear warm-up, multiplying the (stepped) learning rate; `None`: no decay (the
    /// papers').
    #[serde(default)]
    pub cosine: Option<CosineSchedule>,
    /// Decoupled weight decay (AdamW) per unit learning rate; 0 is plain Adam (the papers').
    #[serde(default)]
    pub weight_decay: f64,
    /// Decay of the exponential moving average of the weights that is validated and exported
    /// ([`super::ema`]); `None` validates and exports the raw weights (the papers').
    #[serde(default)]
    pub ema_decay: Option<f64>,
    /// Write a checkpoint every this many steps (and at the end).
    pub checkpoint_every: u64,
    /// Validation photo folder (evaluated with the fixed protocol, model vs gray baseline).
    #[serde(default)]
    pub val: Option<PathBuf>,
    /// Validate every this many steps (and at the end).
    #[serde(default = "default_validate_every")]
    pub validate_every: u64,
    /// How the model's output is decoded, for validation and by default when colorizing (stored flat
    /// in `config.json`: `decoding`, `prior_correction`, `vividness`, `gamut`).
    #[serde(flatten)]
    pub decode: crate::quantize::DecodeConfig,
}

/// A cosine learning-rate decay (Loshchilov & Hutter's SGDR without restarts) after a linear warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CosineSchedule {
    /// Steps of linear warm-up from lr/warmup to lr.
    pub warmup: u64,
    /// Step at which the decay reaches its floor (and stays there).
    pub total: u64,
    /// The floor as a fraction of the learning rate.
    pub final_fraction: f64,
}

impl CosineSchedule {
    /// The multiplier of the learning rate for the step that follows `done` steps.
    pub fn factor(&self, done: u64) -> f64 {
        if done < self.warmup {
            return (done + 1) as f64 / self.warmup as f64;
        }
        let span = self.total.saturating_sub(self.warmup).max(1) as f64;
        let progress = ((done - self.warmup) as f64 / span).min(1.0);
        self.final_fraction + (1.0 - self.final_fraction) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

impl TrainConfig {
    /// The learning rate of the step that follows `done` completed steps.
    pub fn lr_at(&self, done: u64) -> f64 {
        let stepped = self
            .lr_drops
            .iter()
            .filter(|(s, _)| *s <= done)
            .max_by_key(|(s, _)| *s)
            .map_or(self.lr, |(_, lr)| *lr);
        stepped * self.cosine.map_or(1.0, |c| c.factor(done))
    }
}

fn default_replicas() -> usize {
    1
}

fn default_joint_class_weight() -> f32 {
    super::DEFAULT_JOINT_CLASS_WEIGHT
}

fn default_validate_every() -> u64 {
    500
}

/// Errors of a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Prior(#[from] crate::quantize::PriorError),
    #[error(transparent)]
    Import(#[from] crate::import::ImportError),
    #[error(transparent)]
    Write(#[from] crate::fsutil::WriteError),
    #[error("{path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    #[error("the classification head needs a prior file (rechroma prior)")]
    NoPrior,
    #[error("nothing to resume at {}: it holds no training checkpoint", .0.display())]
    NothingToResume(PathBuf),
}

/// Progress of a run, saved in every checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunState {
    /// Steps done.
    pub step: u64,
    /// (step, loss) of every step done.
    pub losses: Vec<(u64, f32)>,
    /// (step, scores) of every validation.
    #[serde(default)]
    pub validations: Vec<(u64, Report)>,
    /// (step, every loss term) of every step, for models with several (ChromaGAN).
    #[serde(default)]
    pub parts: Vec<(u64, Vec<f32>)>,
}

pub(crate) fn ckpt_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Saves the weights of an MLEU as safetensors, atomically.
pub fn save_weights(model: &Mleu, path: &Path) -> Result<(), TrainError> {
    save_safetensors(model, path)
}

/// What the caller sees as training goes.
pub enum Event {
    /// After every step.
    Step {
        step: u64,
        loss: f32,
        images_per_second: f64,
    },
    /// After every validation.
    Validation { step: u64, report: Report },
}

/// Runs (or resumes) training in `run_dir`. `on_step` is called after every step.
pub fn train(
    config: &TrainConfig,
    run_dir: &Path,
    resume: bool,
    device: &Device,
    mut on_event: impl FnMut(&Event),
) -> Result<RunState, TrainError> {
    std::fs::create_dir_all(run_dir).map_err(|e| ckpt_err(run_dir, e))?;
    // A run killed between the two renames of `checkpoint()` left its last checkpoint in `checkpoint.old`.
    let ckpt = ["checkpoint", "checkpoint.old"]
        .map(|d| run_dir.join(d))
        .into_iter()
        .find(|d| d.join("state.json").is_file())
        .unwrap_or_else(|| run_dir.join("checkpoint"));
    let prior = match (&config.prior, config.model.head()) {
        (Some(p), Some(_)) => Some(Prior::load(p)?),
        (None, Some(h)) if h.classifies() => return Err(TrainError::NoPrior),
        _ => None,
    };
    if resume && !ckpt.join("state.json").is_file() {
        return Err(TrainError::NothingToResume(run_dir.to_path_buf()));
    }
    let mut state: RunState = if resume {
        serde_json::from_slice(&std::fs::read(ckpt.join("state.json")).map_err(|e| ckpt_err(&ckpt, e))?)
            .map_err(|e| ckpt_err(&ckpt, e))?
    } else {
        device.seed(config.dataset.seed); // reproducible initial weights
        RunState::default()
    };
    let mut trainee = Trainee::new(config, prior.as_ref(), resume.then_some(ckpt.as_path()), device)?;
    trainee.set_steps_done(state.step);
    let config_json = serde_json::to_vec_pretty(config).expect("config serialises");
    crate::fsutil::write_atomic(&run_dir.join("config.json"), &config_json)?;
    if let Some(p) = &prior {
        p.save(&run_dir.join("prior.json"))?;
    }
    let dataset = PhotoDataset::open(&config.data, config.dataset, |_, _| {})?;
    let loader = Loader::new(&dataset, config.batch_size);
    let val_set = match &config.val {
        Some(dir) => Some(ValidationSet::open(dir, config.dataset.augment.size)?),
        None => None,
    };
    while state.step < config.steps {
        let t0 = std::time::Instant::now();
        let batch = loader.batch(state.step, device)?;
        // The GAN's step draws interpolation weights: seed them by step, so a resumed run draws the same.
        device.seed(config.dataset.seed ^ state.step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let values = trainee.step(&batch, config.lr_at(state.step));
        state.step += 1;
        state.losses.push((state.step, values[0]));
        if values.len() > 1 {
            state.parts.push((state.step, values.clone()));
        }
        let ips = loader.batch_size() as f64 / t0.elapsed().as_secs_f64();
        on_event(&Event::Step {
            step: state.step,
            loss: values[0],
            images_per_second: ips,
        });
        let last = state.step == config.steps;
        if let Some(set) = &val_set
            && (state.step % config.validate_every.max(1) == 0 || last)
        {
            let report = validate_and_draw(&trainee, set, &config.decode, &mut state, run_dir, device)?;
            on_event(&Event::Validation {
                step: state.step,
                report,
            });
        }
        if state.step % config.checkpoint_every == 0 || last {
            checkpoint(&trainee, &state, run_dir)?;
        }
    }
    Ok(state)
}

/// Validates, records the scores in `state`, and writes `val.csv`, `sheet.png` and `curves.png`.
fn validate_and_draw(
    trainee: &Trainee,
    set: &ValidationSet,
    decode: &crate::quantize::DecodeConfig,
    state: &mut RunState,
    run_dir: &Path,
    device: &Device,
) -> Result<Report, TrainError> {
    let (report, predictions) = trainee.validate(set, decode, &device.clone().without_autodiff());
    state.validations.push((state.step, report));
    let mut csv = String::from(
        "step,psnr,ssim,colorfulness,auc,gray_psnr,gray_ssim,gray_colorfulness,gray_auc,truth_colorfulness,\
         beats_gray,median_gain_db\n",
    );
    for (s, r) in &state.validations {
        let (m, g) = (r.model, r.gray);
        csv.push_str(&format!(
            "{s},{:.4},{:.4},{:.3},{:.4},{:.4},{:.4},{:.3},{:.4},{:.3},{:.4},{:.4}\n",
            m.psnr,
            m.ssim,
            m.colorfulness,
            m.auc,
            g.psnr,
            g.ssim,
            g.colorfulness,
            g.auc,
            r.truth_colorfulness,
            r.beats_gray,
            r.median_gain_db
        ));
    }
    crate::fsutil::write_atomic(&run_dir.join("val.csv"), csv.as_bytes())?;
    let sheet = contact_sheet(set, &predictions, 8);
    crate::fsutil::save_image_atomic(&image::DynamicImage::ImageRgb8(sheet), &run_dir.join("sheet.png"))?;
    let curves = crate::plot::training_curves(&state.losses, &state.validations).map_err(|e| ckpt_err(run_dir, e))?;
    crate::fsutil::save_image_atomic(&image::DynamicImage::ImageRgb8(curves), &run_dir.join("curves.png"))?;
    Ok(report)
}

/// Writes `checkpoint.tmp/` and renames it over `checkpoint/`; also refreshes `model.safetensors` and
/// `log.csv` at the top of the run folder.
fn checkpoint(trainee: &Trainee, state: &RunState, run_dir: &Path) -> Result<(), TrainError> {
    let tmp = run_dir.join("checkpoint.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| ckpt_err(&tmp, e))?;
    // Burnpack keeps the parameter ids the optimiser state is keyed by (safetensors does not).
    trainee.save(&tmp)?;
    crate::fsutil::write_atomic(
        &tmp.join("state.json"),
        &serde_json::to_vec(state).expect("state serialises"),
    )?;
    let dest = run_dir.join("checkpoint");
    let old = run_dir.join("checkpoint.old");
    let _ = std::fs::remove_dir_all(&old);
    if dest.exists() {
        std::fs::rename(&dest, &old).map_err(|e| ckpt_err(&dest, e))?;
    }
    std::fs::rename(&tmp, &dest).map_err(|e| ckpt_err(&dest, e))?;
    let _ = std::fs::remove_dir_all(&old);
    trainee.save_weights(&run_dir.join("model.safetensors"))?;
    let mut csv = format!("step,{}\n", trainee.loss_names().join(","));
    if state.parts.is_empty() {
        for (s, l) in &state.losses {
            csv.push_str(&format!("{s},{l}\n"));
        }
    } else {
        for (s, v) in &state.parts {
            let v: Vec<String> = v.iter().map(|x| x.to_string()).collect();
            csv.push_str(&format!("{s},{}\n", v.join(",")));
        }
    }
    Ok(crate::fsutil::write_atomic(&run_dir.join("log.csv"), csv.as_bytes())?)
}
