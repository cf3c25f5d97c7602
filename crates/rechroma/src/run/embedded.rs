//! The default model, compiled into the library so `rechroma colorize photo.jpg` works offline with
//! nothing downloaded.
//!
//! `models/default/` (at the crate root) holds the run's `config.json` and its weights stored in half
//! precision (`model.safetensors`, written by `rechroma export`: [`crate::run::export`]), next to
//! `TRAINING.md` (the exact commands that trained it) and the data manifest. Half precision halves the
//! repository and binary size; the weights are widened back to f32 when loaded
//! ([`crate::run::weights::widen_to_f32`]), so the model computes in f32 as it was trained.

/// The run configuration of the default model.
pub static CONFIG: &[u8] = include_bytes!("../../models/default/config.json");
/// The class prior the default model was trained with (its rebalancing weights).
pub static PRIOR: &[u8] = include_bytes!("../../models/default/prior.json");
/// The default model's weights (safetensors, f16 where lossless enough, else f32).
pub static WEIGHTS: &[u8] = include_bytes!("../../models/default/model.safetensors");
