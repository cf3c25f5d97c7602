//! The flat `config.json` of builds before [`super::FORMAT_VERSION`] 1 (no `format_version` field):
//! read, never written, so runs and exported models of earlier builds keep loading.

use super::config::{DEFAULT_JOINT_CLASS_WEIGHT, GanLossConfig, RunConfig, TrainConfig};
use crate::data::DatasetConfig;
use crate::model::ModelConfig;
use crate::model::chromagan::ChromaGanConfig;
use crate::model::critic::CriticConfig;
use crate::model::mleu::MleuConfig;
use crate::quantize::DecodeConfig;
use serde::Deserialize;
use std::path::PathBuf;

/// The network: the bare MLEU config, or ChromaGAN with its training settings mixed in.
#[derive(Deserialize)]
#[serde(untagged)]
enum LegacyModel {
    Mleu(MleuConfig),
    ChromaGan {
        chromagan: ChromaGanConfig,
        #[serde(default)]
        critic: CriticConfig,
        #[serde(default)]
        gan: GanLossConfig,
        teacher_weights: Option<PathBuf>,
    },
}

/// Version 0: the training settings at the top level, the decode settings flattened in.
#[derive(Deserialize)]
pub(super) struct LegacyConfig {
    model: LegacyModel,
    backbone_weights: Option<PathBuf>,
    data: PathBuf,
    prior: Option<PathBuf>,
    dataset: DatasetConfig,
    batch_size: usize,
    steps: u64,
    lr: f64,
    betas: [f32; 2],
    #[serde(default)]
    lr_drops: Vec<(u64, f64)>,
    #[serde(default = "one")]
    replicas: usize,
    #[serde(default = "joint_class_weight")]
    joint_class_weight: f32,
    #[serde(default)]
    cosine: Option<super::config::CosineSchedule>,
    #[serde(default)]
    weight_decay: f64,
    #[serde(default)]
    ema_decay: Option<f64>,
    checkpoint_every: u64,
    #[serde(default)]
    val: Option<PathBuf>,
    #[serde(default = "validate_every")]
    validate_every: u64,
    #[serde(flatten)]
    decode: DecodeConfig,
}

fn one() -> usize {
    1
}

fn joint_class_weight() -> f32 {
    DEFAULT_JOINT_CLASS_WEIGHT
}

fn validate_every() -> u64 {
    500
}

impl From<LegacyConfig> for RunConfig {
    fn from(c: LegacyConfig) -> Self {
        let (model, gan, teacher_weights) = match c.model {
            LegacyModel::Mleu(m) => (ModelConfig::Mleu(m), GanLossConfig::default(), None),
            LegacyModel::ChromaGan {
                chromagan,
                critic,
                gan,
                teacher_weights,
            } => (
                ModelConfig::ChromaGan {
                    generator: chromagan,
                    critic,
                },
                gan,
                teacher_weights,
            ),
        };
        // Legacy runs validated at their training crop: they keep doing so when resumed.
        let val_crop = None;
        let train = TrainConfig {
            init: super::config::Init::Scratch,
            backbone_weights: c.backbone_weights,
            data: c.data,
            prior: c.prior,
            val: c.val,
            dataset: c.dataset,
            batch_size: c.batch_size,
            steps: c.steps,
            lr: c.lr,
            betas: c.betas,
            lr_drops: c.lr_drops,
            cosine: c.cosine,
            weight_decay: c.weight_decay,
            ema_decay: c.ema_decay,
            replicas: c.replicas,
            joint_class_weight: c.joint_class_weight,
            gan,
            teacher_weights,
            checkpoint_every: c.checkpoint_every,
            validate_every: c.validate_every,
            keep_validated: true,
            hint_sim: Default::default(),
            freeze_batchnorm: false,
            hints_only: false,
            val_crop,
        };
        RunConfig {
            decode: c.decode,
            ..RunConfig::new(model, train)
        }
    }
}
