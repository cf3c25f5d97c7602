//! What the training loop trains: an MLEU (one network, one optimiser) or a ChromaGAN (generator and
//! critic, two optimisers). The loop in [`super::run`] is shared; these types hold the networks, take
//! one step on a batch, validate, and save or restore their part of a checkpoint.

use super::TrainError;
use super::ema::Ema;
use super::gan::{critic_loss, kl_loss};
use super::loss::{ClassLossContext, mleu_loss};
use crate::color::norm;
use crate::data::ColorBatch;
use crate::engine::FrozenBackbone;
use crate::evaluate::{Report, ValidationSet, evaluate_predictor};
use crate::import::load_backbone;
use crate::model::ModelConfig;
use crate::model::backbone::{Backbone, BackboneConfig};
use crate::model::backbone::{EmbedsBackbone, efficientnet_input};
use crate::model::chromagan::{ChromaGan, ChromaGanConfig};
use crate::model::critic::{Critic, CriticConfig};
use crate::model::efficientnet::{EfficientNet, EfficientNetConfig};
use crate::model::mleu::{Head, Mleu, MleuConfig};
use crate::predict::{PredictError, PredictOptions, chromagan_predict, mleu_predict};
use crate::quantize::decode::prior_correction;
use crate::quantize::{DecodeConfig, Gamut, Prior, Quantizer};
use crate::run::weights::{load_burnpack, load_safetensors, save_burnpack, save_safetensors};
use crate::run::{GanLossConfig, Init, RunConfig, RunError, TrainConfig, embedded};
use burn::module::Module;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use image::RgbImage;
use std::path::Path;

/// Adam (the papers'), or AdamW (decoupled weight decay) when the config asks for weight decay.
fn adam(config: &TrainConfig) -> ModuleOptimizer {
    if config.weight_decay > 0.0 {
        return AdamWConfig::new()
            .with_beta_1(config.betas[0])
            .with_beta_2(config.betas[1])
            .with_weight_decay(config.weight_decay as f32)
            .init();
    }
    AdamConfig::new()
        .with_beta_1(config.betas[0])
        .with_beta_2(config.betas[1])
        .init()
}

fn optim_err(path: &Path, e: impl std::fmt::Debug) -> TrainError {
    TrainError::Optimizer {
        path: path.to_path_buf(),
        // burn's optimiser record errors implement only Debug.
        source: format!("{e:?}").into(),
    }
}

fn load_optim(config: &TrainConfig, path: &Path) -> Result<ModuleOptimizer, TrainError> {
    adam(config).load(path).map_err(|e| optim_err(path, e))
}

fn save_optim(optim: &ModuleOptimizer, path: &Path) -> Result<(), TrainError> {
    optim.save(path).map_err(|e| optim_err(path, e))
}

/// Scores a predictor on `set`'s crops (see [`evaluate_predictor`]).
fn validate_fn(
    set: &ValidationSet,
    gamut: Gamut,
    predict: impl Fn(&[f32], (usize, usize)) -> Result<Vec<f32>, PredictError>,
) -> (Report, Vec<RgbImage>) {
    evaluate_predictor(set, gamut, predict)
        .map(|v| (v.report, v.predictions))
        .expect("validation crops have the size the model was trained at")
}

/// A fresh MLEU for `config.init`: random, with a pretrained backbone, or another model's weights.
fn initial_mleu(config: &TrainConfig, mc: &MleuConfig, device: &Device) -> Result<Mleu, TrainError> {
    // A hint-taking fine-tune of a model without hint inputs starts from that model, hint weights zero.
    let trained = |bytes: &[u8], path: &Path| -> Result<Mleu, TrainError> {
        let has_hints = safetensors::SafeTensors::deserialize(bytes)
            .is_ok_and(|t| t.names().iter().any(|n| n.starts_with("hint_in")));
        if mc.hints && !has_hints {
            let automatic = MleuConfig {
                hints: false,
                ..mc.clone()
            };
            return Ok(load_safetensors(automatic.init(device), bytes, path)?.with_hint_inputs(device));
        }
        Ok(load_safetensors(mc.init(device), bytes, path)?)
    };
    let mut model = match &config.init {
        Init::Scratch | Init::DefaultBackbone => mc.init(device),
        Init::Default => trained(embedded::WEIGHTS, Path::new("<embedded model>"))?,
        Init::Run(dir) => {
            let path = dir.join(crate::run::WEIGHTS_FILE);
            let bytes = std::fs::read(&path).map_err(|source| RunError::Read {
                path: path.clone(),
                source,
            })?;
            trained(&bytes, &path)?
        }
    };
    match (&config.init, &mc.backbone) {
        (Init::Scratch, Some(bcfg)) => {
            if let Some(w) = &config.backbone_weights {
                model.set_backbone(load_backbone(bcfg, w, device)?, mc.finetune_backbone);
            }
        }
        (Init::DefaultBackbone, backbone) => {
            let lite0 = BackboneConfig::EfficientNet(EfficientNetConfig::lite0());
            let default = RunConfig::from_json(embedded::CONFIG, Path::new("<embedded model>"))?;
            let ModelConfig::Mleu(default) = default.model else {
                unreachable!("the embedded model is an MLEU")
            };
            if backbone.as_ref() != Some(&lite0) || default.backbone.as_ref() != Some(&lite0) {
                return Err(TrainError::BackboneMismatch);
            }
            let default = load_safetensors(default.init(device), embedded::WEIGHTS, Path::new("<embedded model>"))?;
            let net = default.backbone.expect("the embedded model embeds EfficientNet-Lite0");
            model.set_backbone(Backbone::EfficientNet(net), mc.finetune_backbone);
        }
        (Init::Default | Init::Run(_), _) if !mc.finetune_backbone => model = model.freeze_backbone(),
        _ => {}
    }
    if config.freeze_batchnorm {
        model = model.freeze_batchnorms();
    }
    if config.hints_only {
        model = model.freeze_all_but_hints();
    }
    Ok(model)
}

/// An MLEU being trained.
pub struct MleuTrainee {
    /// The network being optimised.
    pub model: Mleu,
    /// The moving average of the weights (when the config asks for one): what validation scores and
    /// what is exported.
    pub ema: Option<Ema<Mleu>>,
    /// Steps done (the EMA's warm-up counter).
    steps: u64,
    optim: ModuleOptimizer,
    quantizer: Quantizer,
    weights: Option<Vec<f32>>,
    /// Weight of the joint head's classification term.
    class_weight: f32,
    /// Data-parallel replicas per step ([`super::parallel`]).
    replicas: usize,
    /// The frozen backbone compiled by the engine, which computes its features on the CPU (burn's
    /// autodiff backend would run it as slowly as a trained layer, for no gradient).
    frozen: Option<FrozenBackbone>,
}

impl MleuTrainee {
    /// A fresh trainee (pretrained backbone loaded when the config names its weights), or the one a
    /// checkpoint folder `ckpt` holds. `class_weights` (313 rebalancing weights, from the prior) are
    /// needed by the classification and joint heads.
    pub fn new(
        config: &TrainConfig,
        mc: &MleuConfig,
        class_weights: Option<Vec<f32>>,
        ckpt: Option<&Path>,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let (model, optim, ema) = match ckpt {
            Some(dir) => {
                let model = load_burnpack(mc.init(device), &dir.join("model.bpk"))?;
                let model = if mc.finetune_backbone {
                    model
                } else {
                    model.freeze_backbone()
                };
                let model = if config.freeze_batchnorm {
                    model.freeze_batchnorms()
                } else {
                    model
                };
                let model = if config.hints_only {
                    model.freeze_all_but_hints()
                } else {
                    model
                };
                let ema = match config.ema_decay {
                    Some(d) if dir.join("ema.bpk").is_file() => Some(Ema {
                        model: load_burnpack(mc.init(device), &dir.join("ema.bpk"))?.valid(),
                        decay: d,
                    }),
                    Some(d) => Some(Ema::new(&model, d)),
                    None => None,
                };
                (model, load_optim(config, &dir.join("optim.bpk"))?, ema)
            }
            None => {
                let model = initial_mleu(config, mc, device)?;
                let ema = config.ema_decay.map(|d| Ema::new(&model, d));
                (model, adam(config), ema)
            }
        };
        // On the CPU, a frozen backbone's features come from the engine (on a GPU, burn's are fast).
        let on_cpu = device.clone().without_autodiff() == Device::flex();
        let frozen = (on_cpu && !mc.finetune_backbone)
            .then(|| FrozenBackbone::new(&model))
            .flatten();
        Ok(Self {
            model,
            ema,
            steps: 0,
            optim,
            quantizer: Quantizer::default(),
            weights: class_weights,
            class_weight: config.joint_class_weight,
            replicas: config.replicas.max(1),
            frozen,
        })
    }

    /// One optimiser step; returns `[loss]`.
    pub fn step(&mut self, batch: &ColorBatch, lr: f64) -> Vec<f32> {
        let ctx = self.weights.as_ref().map(|w| ClassLossContext {
            quantizer: &self.quantizer,
            weights: w,
        });
        let (value, grads) = super::parallel::gradients(&self.model, batch, self.replicas, |m, shard| {
            mleu_loss(m, shard, ctx.as_ref(), self.class_weight, self.frozen.as_ref())
        });
        self.model = self.optim.step(lr, self.model.clone(), grads);
        if let Some(ema) = &mut self.ema {
            ema.update(&self.model, self.steps);
        }
        self.steps += 1;
        vec![value]
    }

    /// Tells the trainee how many steps a resumed run has done (the EMA's warm-up counter).
    pub fn set_steps_done(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// The weights that are scored and exported: the moving average when there is one.
    pub fn evaluated(&self) -> &Mleu {
        self.ema.as_ref().map_or(&self.model, |e| &e.model)
    }

    /// Scores the evaluated weights on `set` (run by the inference engine on the CPU, whatever device
    /// trains: `_device` is the ChromaGAN trainee's).
    pub fn validate(&self, set: &ValidationSet, decode: &DecodeConfig, _device: &Device) -> (Report, Vec<RgbImage>) {
        let model = self.evaluated().valid();
        // The prior correction, as colorizing applies it (classification head only).
        let offset = match (&self.weights, model.head) {
            (Some(w), Head::Classification) if decode.prior_correction > 0.0 => {
                let w: Vec<f64> = w.iter().map(|&x| f64::from(x)).collect();
                Some(prior_correction(&w, decode.prior_correction))
            }
            _ => None,
        };
        let options = PredictOptions {
            offset: offset.as_deref(),
            ..PredictOptions::new(decode)
        };
        // Scored as colorizing runs it: compiled by the inference engine.
        let net = crate::engine::Net::new(&model);
        validate_fn(set, decode.gamut, |l, size| {
            mleu_predict(&net, l, size, &options).map(|p| p.ab)
        })
    }

    /// Writes the network, its moving average and the optimiser state into the checkpoint folder `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), TrainError> {
        save_burnpack(&self.model, &dir.join("model.bpk"))?;
        if let Some(ema) = &self.ema {
            save_burnpack(&ema.model, &dir.join("ema.bpk"))?;
        }
        save_optim(&self.optim, &dir.join("optim.bpk"))
    }
}

/// A ChromaGAN being trained: generator, critic, their optimisers, and the frozen classifier whose
/// prediction on the gray photo is the class distribution the generator's y is pulled towards.
pub struct GanTrainee {
    /// The generator (what colorizes).
    pub generator: ChromaGan,
    /// The PatchGAN critic.
    pub critic: Critic,
    g_optim: ModuleOptimizer,
    d_optim: ModuleOptimizer,
    teacher: EfficientNet,
    losses: GanLossConfig,
}

impl GanTrainee {
    /// A fresh trainee (pretrained trunk loaded when the config names its weights), or the one a
    /// checkpoint folder `ckpt` holds.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &TrainConfig,
        gc: &ChromaGanConfig,
        cc: &CriticConfig,
        losses: GanLossConfig,
        teacher: EfficientNet,
        ckpt: Option<&Path>,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let (generator, critic, g_optim, d_optim) = match ckpt {
            Some(dir) => {
                let g = load_burnpack(gc.init(device), &dir.join("model.bpk"))?;
                let g = if gc.finetune_backbone { g } else { g.freeze_backbone() };
                (
                    g,
                    load_burnpack(cc.init(device), &dir.join("critic.bpk"))?,
                    load_optim(config, &dir.join("optim.bpk"))?,
                    load_optim(config, &dir.join("critic_optim.bpk"))?,
                )
            }
            None => {
                let mut g = gc.init(device);
                if let Some(w) = &config.backbone_weights {
                    g.set_backbone(load_backbone(&gc.backbone, w, device)?, gc.finetune_backbone);
                }
                (g, cc.init(device), adam(config), adam(config))
            }
        };
        Ok(Self {
            generator,
            critic,
            g_optim,
            d_optim,
            teacher: teacher.freeze(),
            losses,
        })
    }

    /// One generator step then one critic step (the authors' order, 1:1). Returns
    /// [generator loss, MSE, KL, mean critic score of the fake, critic loss, Wasserstein estimate, GP].
    pub fn step(&mut self, batch: &ColorBatch, lr: f64) -> Vec<f32> {
        let real = (batch.ab.clone() + norm::AB_UNIT_OFFSET) / norm::AB_UNIT_SCALE;
        let (g, fake) = self.generator_step(batch.l.clone(), real.clone(), lr);
        let d = self.critic_step(batch.l.clone(), real, fake, lr);
        [g, d].concat()
    }

    /// Updates the generator on 1·MSE + 0.003·KL − 0.1·critic score (the critic's weights get gradients
    /// too, but only the generator's are applied). Returns [loss, MSE, KL, critic score] and the
    /// generated ab, detached.
    ///
    /// # Shapes
    /// `l`: `[B, 1, S, S]` (Lab units), `real`: `[B, 2, S, S]` as (ab+128)/255
    pub fn generator_step(&mut self, l: Tensor<4>, real: Tensor<4>, lr: f64) -> (Vec<f32>, Tensor<4>) {
        let w = self.losses;
        let target = softmax(self.teacher.classify(efficientnet_input(l.clone())), 1).detach();
        let (fake, logits) = self.generator.forward(l.clone());
        let mse = (fake.clone() - real).powi_scalar(2).mean();
        let kl = kl_loss(target, logits);
        let adv = self.critic.forward(l, fake.clone()).mean();
        let loss = mse.clone() * w.mse + kl.clone() * w.kl - adv.clone() * w.adversarial;
        let values = [&loss, &mse, &kl, &adv]
            .map(|t| t.clone().into_scalar::<f32>())
            .to_vec();
        let grads = GradientsParams::from_grads(loss.backward(), &self.generator);
        self.generator = self.g_optim.step(lr, self.generator.clone(), grads);
        (values, fake.detach())
    }

    /// Updates the critic on E[D(fake)] − E[D(real)] + 10·GP. Returns [loss, Wasserstein estimate, GP].
    ///
    /// # Shapes
    /// `l`: `[B, 1, S, S]`, `real`, `fake`: `[B, 2, S, S]` as (ab+128)/255
    pub fn critic_step(&mut self, l: Tensor<4>, real: Tensor<4>, fake: Tensor<4>, lr: f64) -> Vec<f32> {
        let (loss, wasserstein, gp) = critic_loss(&self.critic, l, real, fake, &self.losses);
        let values = [&loss, &wasserstein, &gp]
            .map(|t| t.clone().into_scalar::<f32>())
            .to_vec();
        let grads = GradientsParams::from_grads(loss.backward(), &self.critic);
        self.critic = self.d_optim.step(lr, self.critic.clone(), grads);
        values
    }

    /// Scores the generator on `set`.
    pub fn validate(&self, set: &ValidationSet, decode: &DecodeConfig, device: &Device) -> (Report, Vec<RgbImage>) {
        let generator = self.generator.valid();
        validate_fn(set, decode.gamut, |l, size| {
            chromagan_predict(&generator, l, size, decode.vividness, device).map(|p| p.ab)
        })
    }

    /// Writes both networks and both optimiser states into the checkpoint folder `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), TrainError> {
        save_burnpack(&self.generator, &dir.join("model.bpk"))?;
        save_burnpack(&self.critic, &dir.join("critic.bpk"))?;
        save_optim(&self.g_optim, &dir.join("optim.bpk"))?;
        save_optim(&self.d_optim, &dir.join("critic_optim.bpk"))
    }
}

/// Either kind of trainee.
pub enum Trainee {
    /// An MLEU.
    Mleu(MleuTrainee),
    /// A ChromaGAN.
    Gan(GanTrainee),
}

impl Trainee {
    /// Builds the trainee of `config`, fresh or from the checkpoint folder `ckpt`.
    pub fn new(
        config: &RunConfig,
        prior: Option<&Prior>,
        ckpt: Option<&Path>,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let t = &config.train;
        Ok(match &config.model {
            ModelConfig::Mleu(mc) => {
                Trainee::Mleu(MleuTrainee::new(t, mc, prior.map(|p| p.weights_f32()), ckpt, device)?)
            }
            ModelConfig::ChromaGan { generator, critic } => {
                let teacher = match &t.teacher_weights {
                    Some(path) => crate::import::load_efficientnet(&EfficientNetConfig::lite0(), path, device)?,
                    None => {
                        tracing::warn!(
                            "no teacher weights: the class targets come from a random classifier (tests only)"
                        );
                        EfficientNetConfig::lite0().init(device)
                    }
                };
                Trainee::Gan(GanTrainee::new(t, generator, critic, t.gan, teacher, ckpt, device)?)
            }
        })
    }

    /// One training step; the first value is the loss the run's curve shows.
    pub fn step(&mut self, batch: &ColorBatch, lr: f64) -> Vec<f32> {
        match self {
            Trainee::Mleu(t) => t.step(batch, lr),
            Trainee::Gan(t) => t.step(batch, lr),
        }
    }

    /// Tells the trainee how many steps a resumed run has done.
    pub fn set_steps_done(&mut self, steps: u64) {
        if let Trainee::Mleu(t) = self {
            t.set_steps_done(steps);
        }
    }

    /// Names of the values [`Self::step`] returns (the columns of `log.csv`).
    pub fn loss_names(&self) -> &'static [&'static str] {
        match self {
            Trainee::Mleu(_) => &["loss"],
            Trainee::Gan(_) => &["loss", "mse", "kl", "critic_fake", "critic_loss", "wasserstein", "gp"],
        }
    }

    /// Scores the weights that would be exported on `set`.
    pub fn validate(&self, set: &ValidationSet, decode: &DecodeConfig, device: &Device) -> (Report, Vec<RgbImage>) {
        match self {
            Trainee::Mleu(t) => t.validate(set, decode, device),
            Trainee::Gan(t) => t.validate(set, decode, device),
        }
    }

    /// Writes the networks and optimiser states into the checkpoint folder `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), TrainError> {
        match self {
            Trainee::Mleu(t) => t.save(dir),
            Trainee::Gan(t) => t.save(dir),
        }
    }

    /// Writes the weights inference needs (MLEU, or ChromaGAN's generator) as safetensors.
    pub fn save_weights(&self, path: &Path) -> Result<(), TrainError> {
        match self {
            Trainee::Mleu(t) => Ok(save_safetensors(t.evaluated(), path)?),
            Trainee::Gan(t) => Ok(save_safetensors(&t.generator, path)?),
        }
    }
}
