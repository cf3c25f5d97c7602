//! The run folder: one place that knows its layout, reads and writes its configuration, loads the
//! model it holds and exports it. Training ([`crate::train`](mod@crate::train)) writes run folders; colorizing
//! ([`crate::infer`]) reads them; neither needs the other.
//!
//! # Layout
//! ```text
//! RUN/config.json         the RunConfig: model, train and decode settings, format version
//! RUN/prior.json          the prior the classification loss used (copied in)
//! RUN/model.safetensors   the weights inference loads (the moving average when there is one)
//! RUN/checkpoint/         model.bpk, optim.bpk (and ema.bpk, or critic.bpk + critic_optim.bpk), state.json
//! RUN/log.csv             step, loss (and every loss term of a ChromaGAN)
//! RUN/val.csv             validation scores of the model and the gray baseline, per validation
//! RUN/sheet.png           contact sheet of the latest validation: gray | model | truth
//! RUN/curves.png          loss, validation PSNR (model vs gray) and colorfulness (model vs truth)
//! RUN/validated/step-NNNNNN/  the model as it was validated at that step, in the exported form
//!                         (config.json, prior.json, f16 model.safetensors): a model folder, so that the
//!                         checkpoint can be chosen on `dev` afterwards (`eval --model RUN/validated/step-…`)
//! ```
//! A checkpoint is written to `checkpoint.tmp/` and swapped in by [`commit_checkpoint`], so a run killed
//! at any moment leaves a whole checkpoint ([`checkpoint_dir`] finds it).

pub mod config;
pub mod embedded;
mod legacy;
pub mod weights;

pub use config::{
    CosineSchedule, DEFAULT_JOINT_CLASS_WEIGHT, FINETUNE_LR, FORMAT_VERSION, GanLossConfig, Init, InvalidConfig,
    RunConfig, TrainConfig,
};

use crate::fsutil::{Cause, WriteError, write_atomic};
use crate::import::ImportError;
use crate::model::{ModelConfig, Network};
use crate::quantize::{DecodeConfig, Prior, PriorError};
use burn::module::Module;
use burn::tensor::Device;
use std::path::{Path, PathBuf};

/// The configuration file of a run folder.
pub const CONFIG_FILE: &str = "config.json";
/// The class prior of a run folder.
pub const PRIOR_FILE: &str = "prior.json";
/// The weights inference loads.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The training checkpoint folder.
pub const CHECKPOINT_DIR: &str = "checkpoint";
/// The loss log.
pub const LOG_FILE: &str = "log.csv";
/// The validation scores.
pub const VAL_FILE: &str = "val.csv";
/// The contact sheet of the latest validation.
pub const SHEET_FILE: &str = "sheet.png";
/// The training curves.
pub const CURVES_FILE: &str = "curves.png";
/// Where a checkpoint is written before it replaces [`CHECKPOINT_DIR`].
const CHECKPOINT_TMP: &str = "checkpoint.tmp";
/// Where the previous checkpoint waits while the new one is swapped in.
const CHECKPOINT_OLD: &str = "checkpoint.old";
/// The progress file inside a checkpoint folder.
pub const STATE_FILE: &str = "state.json";
/// The folder of the models kept at each validation ([`keep_validated`]).
pub const VALIDATED_DIR: &str = "validated";

/// Where [`keep_validated`] puts the model validated after `step` steps: `RUN/validated/step-NNNNNN`
/// (zero-padded, so that the folders sort by step).
pub fn validated_dir(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join(VALIDATED_DIR).join(format!("step-{step:06}"))
}

/// Errors reading, writing or exporting a run folder; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A weights file holds NaN or infinite values (a run whose training diverged).
    #[error("{path}: tensor {tensor} holds NaN or infinite values (its training diverged): not a usable model")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The first such tensor.
        tensor: String,
    },
    /// A file of the run cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is not JSON of a run configuration.
    #[error("{path}: not a rechroma run configuration")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// `config.json` was written by a newer rechroma.
    #[error("{path}: format version {found}, but this build reads versions up to {FORMAT_VERSION}")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version it declares.
        found: u64,
    },
    /// A field of the configuration cannot work.
    #[error("{path}: invalid configuration")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field at fault.
        #[source]
        source: InvalidConfig,
    },
    /// The prior cannot be read.
    #[error(transparent)]
    Prior(#[from] PriorError),
    /// The weights do not fit the network.
    #[error(transparent)]
    Weights(#[from] ImportError),
    /// The weights file is not a safetensors file.
    #[error("{path}: not a safetensors file")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The safetensors parser's error.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// A module could not be serialised.
    #[error("cannot save {path}")]
    Save {
        /// The file.
        path: PathBuf,
        /// burn's error.
        #[source]
        source: Cause,
    },
    /// A folder could not be created.
    #[error("cannot create {path}")]
    CreateFolder {
        /// The folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint folder could not be renamed or removed.
    #[error("cannot replace {path}")]
    Replace {
        /// The folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a file failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

fn read(path: &Path) -> Result<Vec<u8>, RunError> {
    std::fs::read(path).map_err(|source| RunError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Creates a folder and its parents.
pub fn create_dir(path: &Path) -> Result<(), RunError> {
    std::fs::create_dir_all(path).map_err(|source| RunError::CreateFolder {
        path: path.to_path_buf(),
        source,
    })
}

impl RunConfig {
    /// Parses and validates a `config.json` (this version's, or the flat layout of earlier builds);
    /// `path` names it in errors.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self, RunError> {
        let parse = |source| RunError::Parse {
            path: path.to_path_buf(),
            source,
        };
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(parse)?;
        let config = match value.get("format_version").map(|v| v.as_u64()) {
            None => RunConfig::from(serde_json::from_value::<legacy::LegacyConfig>(value).map_err(parse)?),
            Some(Some(v)) if v > u64::from(FORMAT_VERSION) => {
                return Err(RunError::Version {
                    path: path.to_path_buf(),
                    found: v,
                });
            }
            // Version 1 differs only by fields that default to "no hints".
            Some(_) => RunConfig {
                format_version: FORMAT_VERSION,
                ..serde_json::from_value(value).map_err(parse)?
            },
        };
        config.validate().map_err(|source| RunError::Invalid {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(config)
    }

    /// Reads `RUN/config.json`.
    pub fn load(run_dir: &Path) -> Result<Self, RunError> {
        let path = run_dir.join(CONFIG_FILE);
        Self::from_json(&read(&path)?, &path)
    }

    /// The configuration as `config.json` holds it (pretty-printed JSON).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a run configuration serialises")
    }

    /// Writes `RUN/config.json` atomically (the folder must exist).
    pub fn save(&self, run_dir: &Path) -> Result<(), RunError> {
        Ok(write_atomic(&run_dir.join(CONFIG_FILE), &self.to_json())?)
    }
}

/// A trained model, ready to colorize: its configuration, its network with the trained weights, and
/// the prior it was trained with (when it has one).
pub struct Model {
    /// The run's configuration (its `decode` part is the model's default decoding).
    pub config: RunConfig,
    /// The network, weights loaded, outside autodiff.
    pub network: Network,
    /// The training prior (its rebalancing weights drive the prior correction).
    pub prior: Option<Prior>,
}

impl Model {
    /// Loads a run folder (`config.json`, `model.safetensors`, and `prior.json` when there is one).
    pub fn load(run_dir: &Path, device: &Device) -> Result<Self, RunError> {
        let config = RunConfig::load(run_dir)?;
        let weights_path = run_dir.join(WEIGHTS_FILE);
        let network = load_network(&config.model, &read(&weights_path)?, &weights_path, device)?;
        let prior_path = run_dir.join(PRIOR_FILE);
        let prior = match prior_path.is_file() {
            true => Some(Prior::load(&prior_path)?),
            false => None,
        };
        Ok(Self { config, network, prior })
    }

    /// A model from the bytes of its three files (the embedded model); `source` names it in errors.
    pub fn from_bytes(
        config: &[u8],
        weights: &[u8],
        prior: Option<&[u8]>,
        source: &Path,
        device: &Device,
    ) -> Result<Self, RunError> {
        let config = RunConfig::from_json(config, source)?;
        let network = load_network(&config.model, weights, source, device)?;
        let prior = prior.map(|p| Prior::from_json(p, source)).transpose()?;
        Ok(Self { config, network, prior })
    }
}

/// The network of `model` with the weights of a safetensors file's bytes, outside autodiff.
pub fn load_network(model: &ModelConfig, weights: &[u8], path: &Path, device: &Device) -> Result<Network, RunError> {
    Ok(match model.init(device) {
        Network::Mleu(m) => Network::Mleu(weights::load_safetensors(m, weights, path)?.no_grad()),
        Network::ChromaGan(g) => Network::ChromaGan(weights::load_safetensors(g, weights, path)?.no_grad()),
    })
}

/// The embedded default model, loaded.
pub fn embedded_model(device: &Device) -> Result<Model, RunError> {
    Model::from_bytes(
        embedded::CONFIG,
        embedded::WEIGHTS,
        Some(embedded::PRIOR),
        Path::new("<embedded model>"),
        device,
    )
}

/// Writes a run's `config.json` (in this version's format), `prior.json` (if any) and its weights
/// narrowed to f16 ([`weights::narrow_to_f16`]) into `out_dir`: the layout of `models/default/`, and a
/// run folder [`Model::load`] reads. `edit` may change the decode settings stored with the model (its
/// defaults when colorizing). Returns the size of the written weights in bytes.
pub fn export(run_dir: &Path, out_dir: &Path, edit: impl FnOnce(&mut DecodeConfig)) -> Result<usize, RunError> {
    let mut config = RunConfig::load(run_dir)?;
    edit(&mut config.decode);
    let config_path = run_dir.join(CONFIG_FILE);
    config.validate().map_err(|source| RunError::Invalid {
        path: config_path,
        source,
    })?;
    let weights_path = run_dir.join(WEIGHTS_FILE);
    let weights = weights::narrow_to_f16(&read(&weights_path)?).map_err(|source| RunError::Safetensors {
        path: weights_path,
        source,
    })?;
    create_dir(out_dir)?;
    config.save(out_dir)?;
    let prior = run_dir.join(PRIOR_FILE);
    if prior.is_file() {
        write_atomic(&out_dir.join(PRIOR_FILE), &read(&prior)?)?;
    }
    write_atomic(&out_dir.join(WEIGHTS_FILE), &weights)?;
    Ok(weights.len())
}

/// [`export`] of the embedded default model (`rechroma export --model default`): its files as shipped,
/// the decode settings edited.
pub fn export_embedded(out_dir: &Path, edit: impl FnOnce(&mut DecodeConfig)) -> Result<usize, RunError> {
    let mut config = RunConfig::from_json(embedded::CONFIG, Path::new("<embedded model>"))?;
    edit(&mut config.decode);
    config.validate().map_err(|source| RunError::Invalid {
        path: PathBuf::from("<embedded model>"),
        source,
    })?;
    create_dir(out_dir)?;
    config.save(out_dir)?;
    write_atomic(&out_dir.join(PRIOR_FILE), embedded::PRIOR)?;
    write_atomic(&out_dir.join(WEIGHTS_FILE), embedded::WEIGHTS)?;
    Ok(embedded::WEIGHTS.len())
}

/// Keeps the run's current model (`config.json`, `prior.json`, `model.safetensors`, which the caller has
/// just refreshed) as [`validated_dir`]`(run_dir, step)`, exported as [`export`] does. It is written to
/// a `.tmp` folder first and renamed, so a folder that exists is whole; an existing one is replaced.
pub fn keep_validated(run_dir: &Path, step: u64) -> Result<PathBuf, RunError> {
    let dest = validated_dir(run_dir, step);
    let tmp = dest.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let _writing = crate::fsutil::writing(&tmp);
    export(run_dir, &tmp, |_| {})?;
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(|source| RunError::Replace {
            path: dest.clone(),
            source,
        })?;
    }
    std::fs::rename(&tmp, &dest).map_err(|source| RunError::Replace {
        path: dest.clone(),
        source,
    })?;
    Ok(dest)
}

/// The run's last whole checkpoint folder, if it has one. A run killed between the two renames of
/// [`commit_checkpoint`] left it in `checkpoint.old`.
pub fn checkpoint_dir(run_dir: &Path) -> Option<PathBuf> {
    [CHECKPOINT_DIR, CHECKPOINT_OLD]
        .map(|d| run_dir.join(d))
        .into_iter()
        .find(|d| d.join(STATE_FILE).is_file())
}

/// Removes every checkpoint folder of a run and the models kept at its validations (a run replaced
/// with `--force` must not be resumed, nor leave the old run's models beside the new one's).
pub fn remove_checkpoints(run_dir: &Path) -> Result<(), RunError> {
    for d in [CHECKPOINT_DIR, CHECKPOINT_OLD, CHECKPOINT_TMP, VALIDATED_DIR] {
        let path = run_dir.join(d);
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|source| RunError::Replace { path, source })?;
        }
    }
    Ok(())
}

/// Writes a checkpoint: `write` fills a fresh `checkpoint.tmp/`, which then replaces `checkpoint/`
/// (kept as `checkpoint.old` during the swap).
pub fn commit_checkpoint<E: From<RunError>>(
    run_dir: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let tmp = run_dir.join(CHECKPOINT_TMP);
    let _ = std::fs::remove_dir_all(&tmp);
    let writing = crate::fsutil::writing(&tmp);
    create_dir(&tmp)?;
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let dest = run_dir.join(CHECKPOINT_DIR);
    let old = run_dir.join(CHECKPOINT_OLD);
    let _ = std::fs::remove_dir_all(&old);
    let rename = |from: &Path, to: &Path| {
        std::fs::rename(from, to).map_err(|source| RunError::Replace {
            path: to.to_path_buf(),
            source,
        })
    };
    if dest.exists() {
        rename(&dest, &old)?;
    }
    rename(&tmp, &dest)?;
    drop(writing);
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}
