//! Which network a model is: the configuration stored with every run and with the embedded model.

use super::chromagan::{ChromaGan, ChromaGanConfig};
use super::critic::CriticConfig;
use super::mleu::{Head, Mleu, MleuConfig};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// The network of a model: an MLEU with one of its heads, or a ChromaGAN generator with the critic it
/// was (or will be) trained against. Serialised as `{"mleu": {…}}` or
/// `{"chromagan": {"generator": {…}, "critic": {…}}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelConfig {
    /// Nguyen-Quynh et al.'s multi-level embedding U-Net.
    Mleu(MleuConfig),
    /// Vitoria et al.'s ChromaGAN.
    #[serde(rename = "chromagan")]
    ChromaGan {
        /// The generator (what colorizes).
        generator: ChromaGanConfig,
        /// The PatchGAN critic (training only).
        #[serde(default)]
        critic: CriticConfig,
    },
}

/// What kind of colorizer a model is, as the rest of the program needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// An MLEU with the given head.
    Mleu(Head),
    /// A ChromaGAN generator (regresses ab at a fixed square size).
    ChromaGan,
}

impl Architecture {
    /// Whether the model predicts a distribution over the 313 ab bins (needed by the confidence map,
    /// the prior correction and the entropy-driven vividness).
    pub fn classifies(self) -> bool {
        matches!(self, Architecture::Mleu(h) if h.classifies())
    }

    /// A short human name: "MLEU classification", "ChromaGAN", …
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Mleu(Head::Regression) => "MLEU regression",
            Architecture::Mleu(Head::Classification) => "MLEU classification",
            Architecture::Mleu(Head::Joint) => "MLEU joint (regression + classification)",
            Architecture::ChromaGan => "ChromaGAN",
        }
    }
}

impl ModelConfig {
    /// The kind of colorizer this configures.
    pub fn architecture(&self) -> Architecture {
        match self {
            ModelConfig::Mleu(m) => Architecture::Mleu(m.head),
            ModelConfig::ChromaGan { .. } => Architecture::ChromaGan,
        }
    }

    /// The colorizing network with random weights (load trained ones into it).
    pub fn init(&self, device: &Device) -> Network {
        match self {
            ModelConfig::Mleu(m) => Network::Mleu(m.init(device)),
            ModelConfig::ChromaGan { generator, .. } => Network::ChromaGan(generator.init(device)),
        }
    }
}

/// A colorizing network: what inference runs and what a run folder's `model.safetensors` holds.
#[derive(Debug)]
pub enum Network {
    /// An MLEU U-Net.
    Mleu(Mleu),
    /// A ChromaGAN generator.
    ChromaGan(ChromaGan),
}
