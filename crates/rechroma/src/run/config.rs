//! What defines a run: the network ([`ModelConfig`]), how it is trained ([`TrainConfig`]) and how its
//! output is decoded ([`DecodeConfig`]), with the papers' defaults and a check of every field.

use crate::data::{AugmentConfig, DatasetConfig};
use crate::model::ModelConfig;
use crate::model::mleu::SIZE_MULTIPLE;
use crate::quantize::{DecodeConfig, Decoding};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The version of `config.json` this build writes. Version 1 nests `model`, `train` and `decode`;
/// version 2 adds colour hints (`model.mleu.hints`, `train.hint_sim`), absent (no hints) in version 1
/// files, which are read and upgraded; files without a version are the flat layout of earlier builds and
/// are still read.
pub const FORMAT_VERSION: u32 = 2;

/// The learning rate of a fine-tune (`train --init`) unless one is given: 1/40 of the MLEU paper's
/// from-scratch 0.004, near where the shipped model's cosine schedule ended its useful range.
pub const FINETUNE_LR: f64 = 1e-4;

/// Default weight of the classification term in the joint head's loss: the rebalanced cross-entropy
/// (≈ 2–5 nats) is ~100× the regression MSE on ab/110 (≈ 0.01–0.03), so 0.01 gives the two terms
/// similar sizes.
pub const DEFAULT_JOINT_CLASS_WEIGHT: f32 = 0.01;

/// Everything that defines a run, stored as the run folder's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// [`FORMAT_VERSION`] of the file.
    pub format_version: u32,
    /// The network.
    pub model: ModelConfig,
    /// How it is (or was) trained.
    #[serde(default)]
    pub train: TrainConfig,
    /// How its output is decoded, for validation and by default when colorizing.
    #[serde(default)]
    pub decode: DecodeConfig,
}

impl RunConfig {
    /// A run of `model` trained with `train`, decoded with the default settings.
    pub fn new(model: ModelConfig, train: TrainConfig) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            model,
            train,
            decode: DecodeConfig::default(),
        }
    }
}

/// The side of `rechroma eval`'s centre crops (its protocol: shorter side resized to it, centre square).
pub const EVAL_CROP: u32 = 256;

/// How a network is trained. Missing fields of a file take [`TrainConfig::mleu`]'s values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Where the weights start (random, the embedded model's, another run's).
    pub init: Init,
    /// Pretrained backbone weights (safetensors, PyTorch layout) for [`Init::Scratch`]; `None` leaves
    /// the backbone random.
    pub backbone_weights: Option<PathBuf>,
    /// Training photo folder.
    pub data: PathBuf,
    /// Prior file (needed by the classification and joint heads).
    pub prior: Option<PathBuf>,
    /// Validation photo folder (scored with the fixed protocol, model vs gray baseline).
    pub val: Option<PathBuf>,
    /// Side of the validation crops of an MLEU: the MLEU recipe's is `rechroma eval`'s protocol
    /// ([`EVAL_CROP`]), so the curve reads like `eval`'s scores; `None` (and a file written before this
    /// field) is the training crop. A ChromaGAN always validates at its training crop, the only size
    /// its generator takes.
    #[serde(default)]
    pub val_crop: Option<u32>,
    /// Crops, augmentation and seed.
    pub dataset: DatasetConfig,
    /// Crops per step.
    pub batch_size: usize,
    /// Total optimiser steps.
    pub steps: u64,
    /// Adam learning rate. MLEU paper: 0.004; ChromaGAN: 2e-5.
    pub lr: f64,
    /// Adam β1, β2. MLEU: 0.9, 0.999 (Keras' defaults); ChromaGAN: 0.5, 0.999.
    pub betas: [f32; 2],
    /// Step decay of the learning rate: from step `s` (0-based count of steps done) on, use `lr`;
    /// `[(s, lr), …]` in any order, the latest `s` ≤ the step wins. Empty: `lr` throughout.
    pub lr_drops: Vec<(u64, f64)>,
    /// Cosine decay with linear warm-up, multiplying the (stepped) learning rate; `None`: no decay (the
    /// papers').
    pub cosine: Option<CosineSchedule>,
    /// Decoupled weight decay (AdamW) per unit learning rate; 0 is plain Adam (the papers').
    pub weight_decay: f64,
    /// Decay of the exponential moving average of the weights that is validated and exported; `None`
    /// validates and exports the raw weights (the papers').
    pub ema_decay: Option<f64>,
    /// Data-parallel replicas: the batch is split into this many shards whose gradients are computed on
    /// as many threads and averaged; 1 is one ordinary step.
    pub replicas: usize,
    /// Weight of the classification term in a joint head's loss (MSE + weight · cross-entropy).
    pub joint_class_weight: f32,
    /// ChromaGAN's loss weights.
    pub gan: GanLossConfig,
    /// ChromaGAN: EfficientNet-Lite0 weights (with its classifier) whose prediction on the gray photo is
    /// the target class distribution. `None` uses a random classifier (tests only).
    pub teacher_weights: Option<PathBuf>,
    /// Write a checkpoint every this many steps (and at the end).
    pub checkpoint_every: u64,
    /// Validate every this many steps (and at the end).
    pub validate_every: u64,
    /// Keep the model of each validation as `RUN/validated/step-NNNNNN/` (half precision, about half the
    /// size of `model.safetensors`), so that the checkpoint can be chosen on the validation photos
    /// afterwards; `false` keeps only the latest model.
    pub keep_validated: bool,
    /// How colour hints are drawn from the truth for a hint-taking model (Zhang et al. 2017).
    pub hint_sim: crate::hints::HintSimConfig,
    /// Keep the U-Net's BatchNorms as they are (statistics and affine), as a fine-tune into a hint-taking
    /// model should: see [`crate::model::mleu::Mleu::freeze_batchnorms`]. Default false (the papers').
    pub freeze_batchnorm: bool,
    /// Train only a hint-taking model's hint weights, everything else frozen: the automatic model stays
    /// exactly as it was. Default false.
    pub hints_only: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self::mleu()
    }
}

impl TrainConfig {
    /// The MLEU paper's recipe: Adam at 0.004 (β 0.9, 0.999), 256² crops, no decay, no averaging.
    pub fn mleu() -> Self {
        Self {
            init: Init::Scratch,
            backbone_weights: None,
            data: PathBuf::from("data/train"),
            prior: None,
            val: None,
            dataset: DatasetConfig::default(),
            batch_size: 8,
            steps: 10_000,
            lr: 4e-3,
            betas: [0.9, 0.999],
            lr_drops: Vec::new(),
            cosine: None,
            weight_decay: 0.0,
            ema_decay: None,
            replicas: 1,
            joint_class_weight: DEFAULT_JOINT_CLASS_WEIGHT,
            gan: GanLossConfig::default(),
            teacher_weights: None,
            checkpoint_every: 200,
            validate_every: 500,
            keep_validated: true,
            hint_sim: crate::hints::HintSimConfig::default(),
            freeze_batchnorm: false,
            hints_only: false,
            val_crop: Some(EVAL_CROP),
        }
    }

    /// ChromaGAN's recipe: Adam at 2e-5 with β1 = 0.5, 224² crops, the paper's loss weights.
    pub fn chromagan() -> Self {
        Self {
            lr: 2e-5,
            betas: [0.5, 0.999],
            val_crop: None,
            dataset: DatasetConfig {
                augment: AugmentConfig {
                    size: 224,
                    ..AugmentConfig::default()
                },
                ..DatasetConfig::default()
            },
            ..Self::mleu()
        }
    }

    /// The side of the validation crops of a run of `architecture` (see [`Self::val_crop`]).
    pub fn val_size(&self, architecture: crate::model::Architecture) -> u32 {
        match (self.val_crop, architecture) {
            (_, crate::model::Architecture::ChromaGan) | (None, _) => self.dataset.augment.size,
            (Some(side), _) => side,
        }
    }

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

/// Where a run's weights start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Random weights; the backbone from [`TrainConfig::backbone_weights`] when given (the papers').
    #[default]
    Scratch,
    /// Random weights but the backbone: the embedded default model's (EfficientNet-Lite0, ImageNet), so
    /// no weights file is needed.
    DefaultBackbone,
    /// Every weight of the embedded default model: fine-tunes it (the network must be the same).
    Default,
    /// Every weight of another run folder's `model.safetensors` (the network must be the same).
    Run(PathBuf),
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

/// Weights of ChromaGAN's loss terms (Vitoria et al. 2020, §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GanLossConfig {
    /// Weight of MSE(ab) in the generator loss. Paper: 1.
    pub mse: f64,
    /// Weight of KL(y_teacher ‖ y). Paper: 0.003.
    pub kl: f64,
    /// Weight of the adversarial term (the generator maximises the critic's score). Paper: 0.1.
    pub adversarial: f64,
    /// Weight of the gradient penalty in the critic loss. Paper: 10.
    pub gradient_penalty: f64,
}

impl Default for GanLossConfig {
    fn default() -> Self {
        Self {
            mse: 1.0,
            kl: 0.003,
            adversarial: 0.1,
            gradient_penalty: 10.0,
        }
    }
}

/// A configuration field with a value that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} = {value}: {rule}")]
pub struct InvalidConfig {
    /// The field, as a path into `config.json` (`train.batch_size`).
    pub field: &'static str,
    /// Its value.
    pub value: String,
    /// What it must be.
    pub rule: &'static str,
}

fn check(ok: bool, field: &'static str, value: impl std::fmt::Debug, rule: &'static str) -> Result<(), InvalidConfig> {
    match ok {
        true => Ok(()),
        false => Err(InvalidConfig {
            field,
            value: format!("{value:?}"),
            rule,
        }),
    }
}

impl RunConfig {
    /// Refuses a configuration that cannot run, naming the first field at fault.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        check(
            self.format_version == FORMAT_VERSION,
            "format_version",
            self.format_version,
            "must be the version this build writes",
        )?;
        let size = self.train.dataset.augment.size as usize;
        match &self.model {
            ModelConfig::Mleu(m) => {
                check(
                    m.widths.iter().all(|&w| w > 0),
                    "model.mleu.widths",
                    m.widths,
                    "must all be ≥ 1",
                )?;
                check(
                    matches!(m.class_stride, 1 | 4),
                    "model.mleu.class_stride",
                    m.class_stride,
                    "must be 1 or 4",
                )?;
            }
            ModelConfig::ChromaGan { generator, .. } => {
                check(
                    generator.size > 0 && generator.size % SIZE_MULTIPLE == 0,
                    "model.chromagan.generator.size",
                    generator.size,
                    "must be a positive multiple of 32",
                )?;
                check(
                    size == generator.size,
                    "train.dataset.augment.size",
                    size,
                    "must equal the ChromaGAN generator's size",
                )?;
            }
        }
        let t = &self.train;
        check(
            size > 0 && size % SIZE_MULTIPLE == 0,
            "train.dataset.augment.size",
            size,
            "must be a positive multiple of 32",
        )?;
        let a = &t.dataset.augment;
        check(
            a.min_scale > 0.0 && a.min_scale <= a.max_scale && a.max_scale <= 1.0,
            "train.dataset.augment.min_scale",
            (a.min_scale, a.max_scale),
            "need 0 < min_scale ≤ max_scale ≤ 1",
        )?;
        check(t.batch_size >= 1, "train.batch_size", t.batch_size, "must be ≥ 1")?;
        check(t.steps >= 1, "train.steps", t.steps, "must be ≥ 1")?;
        check(
            t.lr.is_finite() && t.lr > 0.0,
            "train.lr",
            t.lr,
            "must be a positive number",
        )?;
        check(
            t.betas.iter().all(|b| (0.0..1.0).contains(b)),
            "train.betas",
            t.betas,
            "must be in [0, 1)",
        )?;
        check(
            t.lr_drops.iter().all(|(_, lr)| lr.is_finite() && *lr > 0.0),
            "train.lr_drops",
            &t.lr_drops,
            "learning rates must be positive numbers",
        )?;
        if let Some(c) = t.cosine {
            check(
                c.total > c.warmup,
                "train.cosine.total",
                c.total,
                "must exceed the warm-up steps",
            )?;
            check(
                (0.0..=1.0).contains(&c.final_fraction),
                "train.cosine.final_fraction",
                c.final_fraction,
                "must be in [0, 1]",
            )?;
        }
        check(
            t.weight_decay.is_finite() && t.weight_decay >= 0.0,
            "train.weight_decay",
            t.weight_decay,
            "must be ≥ 0",
        )?;
        check(
            t.ema_decay.is_none_or(|d| d > 0.0 && d < 1.0),
            "train.ema_decay",
            t.ema_decay,
            "must be in (0, 1)",
        )?;
        check(
            (1..=64).contains(&t.replicas) && t.replicas <= t.batch_size,
            "train.replicas",
            t.replicas,
            "must be 1 to 64 and at most the batch size",
        )?;
        check(
            t.joint_class_weight.is_finite() && t.joint_class_weight >= 0.0,
            "train.joint_class_weight",
            t.joint_class_weight,
            "must be ≥ 0",
        )?;
        check(
            t.checkpoint_every >= 1,
            "train.checkpoint_every",
            t.checkpoint_every,
            "must be ≥ 1",
        )?;
        check(
            t.validate_every >= 1,
            "train.validate_every",
            t.validate_every,
            "must be ≥ 1",
        )?;
        let d = &self.decode;
        if let Decoding::AnnealedMean { temperature } = d.decoding {
            check(
                temperature.is_finite() && temperature > 0.0,
                "decode.decoding.temperature",
                temperature,
                "must be a positive number",
            )?;
        }
        check(
            (0.0..=1.0).contains(&d.prior_correction),
            "decode.prior_correction",
            d.prior_correction,
            "must be in [0, 1]",
        )?;
        check(
            (0.0..=crate::quantize::decode::MAX_VIVIDNESS).contains(&d.vividness),
            "decode.vividness",
            d.vividness,
            "must be in [0, 2]",
        )
    }
}
