//! Training: the step loop with its checkpoints ([`train`]), what it trains ([`trainee`]), the losses
//! ([`loss`], [`gan`]), data-parallel gradients ([`parallel`]) and the moving average of the weights
//! ([`ema`]). A run writes a run folder ([`crate::run`]); validation scores it with the same protocol
//! and the same prediction code as `rechroma eval` ([`crate::evaluate`], [`crate::predict`]).
//!
//! Because batch `s` is a pure function of (seed, s) ([`crate::data::Loader`]), and a checkpoint saves
//! every piece of state, a resumed run sees exactly the data the uninterrupted run would have.

pub mod ema;
pub mod gan;
pub mod loss;
pub mod parallel;
pub mod trainee;

use crate::data::{ColorBatch, DataError, Loader, PhotoDataset};
use crate::evaluate::{Report, ValidationSet, contact_sheet};
use crate::fsutil::{Cause, WriteError, save_image_atomic, write_atomic};
use crate::import::ImportError;
use crate::model::Architecture;
use crate::plot::PlotError;
use crate::quantize::{DecodeConfig, Prior, PriorError};
use crate::run::{self, Init, InvalidConfig, RunConfig, RunError};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use trainee::Trainee;

/// Errors of a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite: the run stops, its last checkpoint (all finite) kept.
    #[error(
        "the loss became {value} at step {step} (the learning rate is probably too high): stopped; the last checkpoint, from before it, is kept"
    )]
    NonFinite {
        /// The step whose loss was not finite.
        step: u64,
        /// The loss.
        value: f32,
    },
    /// The training or validation photos cannot be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The prior cannot be read or written.
    #[error(transparent)]
    Prior(#[from] PriorError),
    /// Pretrained weights cannot be loaded.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The run folder cannot be read or written.
    #[error(transparent)]
    Run(#[from] RunError),
    /// An output file cannot be written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The training curves cannot be drawn.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// The configuration cannot work.
    #[error("invalid configuration")]
    Config(#[from] InvalidConfig),
    /// A checkpoint's progress file cannot be read.
    #[error("cannot read {path}")]
    ReadState {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint's progress file is not what a run writes.
    #[error("{path}: not a training checkpoint's state")]
    ParseState {
        /// The file.
        path: PathBuf,
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// An optimiser's state cannot be saved or restored.
    #[error("{path}: cannot save or restore the optimiser state")]
    Optimizer {
        /// The file.
        path: PathBuf,
        /// burn's error.
        #[source]
        source: Cause,
    },
    /// `init: default_backbone` on a network whose backbone is not EfficientNet-Lite0.
    #[error("the embedded model's backbone is EfficientNet-Lite0: it cannot start another backbone")]
    BackboneMismatch,
    /// A head that classifies was configured without a prior.
    #[error("the classification head needs a prior file (rechroma prior)")]
    NoPrior,
    /// `--resume` on a folder without a checkpoint.
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

impl RunState {
    /// Reads a checkpoint's `state.json`.
    pub fn load(ckpt: &Path) -> Result<Self, TrainError> {
        let path = ckpt.join(run::STATE_FILE);
        let bytes = std::fs::read(&path).map_err(|source| TrainError::ReadState {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| TrainError::ParseState { path, source })
    }
}

/// What the caller sees as training goes.
pub enum Event {
    /// After every step.
    Step {
        /// Steps done.
        step: u64,
        /// The step's loss.
        loss: f32,
        /// Crops per second of the step.
        images_per_second: f64,
    },
    /// After every validation.
    Validation {
        /// Steps done.
        step: u64,
        /// The scores.
        report: Report,
    },
}

/// Training hints for `batch`, drawn from its truth ([`crate::hints::simulate`]) with a generator
/// seeded by (seed, step), so a resumed run draws the same.
///
/// # Shapes
/// batch ab `[B, 2, S, S]` → `[B, 3, S, S]`
pub fn simulated_hints(batch: &ColorBatch, config: &crate::hints::HintSimConfig, seed: u64, step: u64) -> Tensor<4> {
    use rand::SeedableRng;
    let [b, _, h, w] = batch.ab.dims();
    let ab: Vec<f32> = batch.ab.clone().into_data().try_to_vec().expect("f32 ab");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x4849_4E54 ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let planes = crate::hints::simulate(&ab, (b, h, w), config, &mut rng);
    Tensor::from_data(
        burn::tensor::TensorData::new(planes, [b, crate::hints::HINT_PLANES, h, w]),
        &batch.ab.device(),
    )
}

/// Runs (or resumes) training in `run_dir`. `on_event` is called after every step and validation.
pub fn train(
    config: &RunConfig,
    run_dir: &Path,
    resume: bool,
    device: &Device,
    mut on_event: impl FnMut(&Event),
) -> Result<RunState, TrainError> {
    config.validate()?;
    let t = &config.train;
    run::create_dir(run_dir)?;
    let architecture = config.model.architecture();
    let prior = match &t.prior {
        Some(p) if architecture != Architecture::ChromaGan => Some(Prior::load(p)?),
        // Fine-tuning the embedded model keeps its class rebalancing unless a prior is given.
        None if t.init == Init::Default => Some(Prior::from_json(run::embedded::PRIOR, Path::new("<embedded model>"))?),
        // Fine-tuning a run keeps the prior it was trained with.
        None if matches!(&t.init, Init::Run(dir) if dir.join(run::PRIOR_FILE).is_file()) => match &t.init {
            Init::Run(dir) => Some(Prior::load(&dir.join(run::PRIOR_FILE))?),
            _ => unreachable!("matched above"),
        },
        None if architecture.classifies() => return Err(TrainError::NoPrior),
        _ => None,
    };
    let ckpt = run::checkpoint_dir(run_dir);
    let mut state = match (&ckpt, resume) {
        (Some(dir), true) => RunState::load(dir)?,
        (None, true) => return Err(TrainError::NothingToResume(run_dir.to_path_buf())),
        (_, false) => {
            device.seed(t.dataset.seed); // reproducible initial weights
            RunState::default()
        }
    };
    let mut trainee = Trainee::new(config, prior.as_ref(), ckpt.as_deref().filter(|_| resume), device)?;
    trainee.set_steps_done(state.step);
    config.save(run_dir)?;
    if let Some(p) = &prior {
        p.save(&run_dir.join(run::PRIOR_FILE))?;
    }
    let dataset = PhotoDataset::open(&t.data, t.dataset, |_, _| {})?;
    let loader = Loader::new(&dataset, t.batch_size);
    let val_set = match &t.val {
        Some(dir) => Some(ValidationSet::open(dir, t.val_size(architecture))?),
        None => None,
    };
    // A fine-tune is validated before its first step, in the same protocol: its curve starts from the
    // model it must beat.
    let starts_trained = matches!(t.init, Init::Default | Init::Run(_));
    let scoring = (&config.decode, t.batch_size as u64);
    if let Some(set) = val_set
        .as_ref()
        .filter(|_| !resume && starts_trained && state.step == 0)
    {
        validate_and_draw(&trainee, set, scoring, &mut state, (run_dir, device), &mut on_event)?;
    }
    let takes_hints = matches!(&config.model, crate::model::ModelConfig::Mleu(m) if m.hints);
    while state.step < t.steps {
        let t0 = std::time::Instant::now();
        let mut batch = loader.batch(state.step, device)?;
        if takes_hints {
            batch.hints = Some(simulated_hints(&batch, &t.hint_sim, t.dataset.seed, state.step));
        }
        // The GAN's step draws interpolation weights: seed them by step, so a resumed run draws the same.
        device.seed(t.dataset.seed ^ state.step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let values = trainee.step(&batch, t.lr_at(state.step));
        if let Some(&value) = values.iter().find(|v| !v.is_finite()) {
            return Err(TrainError::NonFinite {
                step: state.step + 1,
                value,
            });
        }
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
        let last = state.step == t.steps;
        let validated = val_set.is_some() && (state.step % t.validate_every.max(1) == 0 || last);
        if let Some(set) = val_set.as_ref().filter(|_| validated) {
            validate_and_draw(&trainee, set, scoring, &mut state, (run_dir, device), &mut on_event)?;
        }
        let checkpointed = state.step % t.checkpoint_every.max(1) == 0 || last;
        if checkpointed {
            checkpoint(&trainee, &state, run_dir)?;
        }
        if validated && t.keep_validated {
            if !checkpointed {
                trainee.save_weights(&run_dir.join(run::WEIGHTS_FILE))?;
            }
            run::keep_validated(run_dir, state.step)?;
        }
    }
    Ok(state)
}

/// Validates, records the scores in `state`, writes `val.csv`, `sheet.png` and `curves.png` (the
/// validation curves against the crops seen, `crops_per_step` a step), and tells `on_event`.
fn validate_and_draw(
    trainee: &Trainee,
    set: &ValidationSet,
    (decode, crops_per_step): (&DecodeConfig, u64),
    state: &mut RunState,
    (run_dir, device): (&Path, &Device),
    on_event: &mut impl FnMut(&Event),
) -> Result<(), TrainError> {
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
    write_atomic(&run_dir.join(run::VAL_FILE), csv.as_bytes())?;
    let sheet = contact_sheet(set, &predictions, 8);
    save_image_atomic(&image::DynamicImage::ImageRgb8(sheet), &run_dir.join(run::SHEET_FILE))?;
    let curves = crate::plot::training_curves(&state.losses, &state.validations, crops_per_step)?;
    save_image_atomic(&image::DynamicImage::ImageRgb8(curves), &run_dir.join(run::CURVES_FILE))?;
    on_event(&Event::Validation {
        step: state.step,
        report,
    });
    Ok(())
}

/// Writes a checkpoint (networks, optimisers, `state.json`) and refreshes `model.safetensors` and
/// `log.csv` at the top of the run folder.
fn checkpoint(trainee: &Trainee, state: &RunState, run_dir: &Path) -> Result<(), TrainError> {
    run::commit_checkpoint(run_dir, |tmp| {
        trainee.save(tmp)?;
        let json = serde_json::to_vec(state).expect("state serialises");
        Ok::<_, TrainError>(write_atomic(&tmp.join(run::STATE_FILE), &json)?)
    })?;
    trainee.save_weights(&run_dir.join(run::WEIGHTS_FILE))?;
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
    Ok(write_atomic(&run_dir.join(run::LOG_FILE), csv.as_bytes())?)
}
