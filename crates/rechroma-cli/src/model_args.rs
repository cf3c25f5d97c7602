//! The model and decoding options `colorize` and `eval` share.

use anyhow::Result;
use rechroma::infer::Colorizer;
use rechroma::quantize::Decoding;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ModelArgs {
    /// A run folder written by `rechroma train` [default: the embedded model].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Annealed-mean temperature (classification models): lower is more vivid, higher more
    /// conservative [default: the model's own, 0.38 as in Zhang et al.].
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Undo this fraction (0–1) of the class rebalancing when decoding a classification model: 0 is the
    /// paper's (most colourful), 1 the calibrated distribution (most faithful) [default: the model's].
    #[arg(long)]
    pub prior_correction: Option<f32>,
}

impl ModelArgs {
    /// The colorizer (on the CPU backend) of --model, or the embedded one.
    pub fn colorizer(&self) -> Result<Colorizer> {
        let device = burn::tensor::Device::flex();
        Ok(match &self.model {
            Some(dir) => Colorizer::from_run(dir, &device)?,
            None => Colorizer::embedded(&device)?,
        })
    }

    /// The decoding named by --temperature.
    pub fn decoding(&self) -> Option<Decoding> {
        self.temperature
            .map(|temperature| Decoding::AnnealedMean { temperature })
    }
}
