//! Colorizing photos: the [`Colorizer`] API, from a run folder or the embedded default model.
//!
//! # Pipeline ([`Colorizer::colorize`])
//! 1. the decoded photo (any colour type; EXIF orientation already applied by [`crate::data::load_image`])
//!    is resized to the working size ([`compose::working_size`]: about n² pixels, aspect kept, sides
//!    multiples of 32) and converted to Lab;
//! 2. the network predicts ab at the working size (classification heads: a distribution over the 313
//!    bins, decoded with the annealed mean, and optionally its per-pixel entropy);
//! 3. ab is upsampled bilinearly to the photo's size and recombined with the photo's **own
//!    full-resolution L** ([`compose::recombine`]); precision (8/16-bit) and alpha are kept. A colour
//!    photo is re-colorized from its own L.

pub mod compose;
pub use crate::run::embedded;

use crate::color::LabImage;
use crate::model::mleu::Head;
use crate::model::{Architecture, Network};
use crate::predict::{PredictError, PredictOptions, Prediction, chromagan_predict, mleu_predict};
use crate::quantize::decode::prior_correction;
use crate::quantize::{DecodeConfig, Decoding, Gamut};
use crate::run::{Model, RunError};
use burn::tensor::Device;
use image::{DynamicImage, RgbImage};
use std::path::Path;
use std::sync::Mutex;

/// Nominal working size: the network sees about 256² pixels, like Zhang et al.'s demo and MLEU.
pub const DEFAULT_SIZE: u32 = 256;

/// Errors of loading a model or colorizing a photo.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The run folder (or the embedded model) cannot be loaded.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The network cannot run on this input.
    #[error(transparent)]
    Predict(#[from] PredictError),
    /// The prior correction was asked of a model whose run folder has no prior.
    #[error("the prior correction needs the training prior (prior.json in the run folder)")]
    NoPrior,
    /// The working size is outside what rechroma runs at.
    #[error("working size {0} is out of range (32 ..= 2048)")]
    WorkingSize(u32),
}

/// Options of [`Colorizer::colorize`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColorizeOptions {
    /// Working size n: the network sees about n² pixels (default 256). Larger gives finer colour
    /// detail, costs time and memory quadratically, and strays from the scale the model was trained at.
    pub size: u32,
    /// How a classification head's distribution becomes ab; `None` uses the model's own setting
    /// (the annealed mean, T = 0.38, unless its run chose otherwise).
    pub decoding: Option<Decoding>,
    /// Fraction β ∈ [0, 1] of the class rebalancing undone when decoding a classification head
    /// (see [`crate::quantize::decode::prior_correction`]); `None` uses the model's own setting.
    pub prior_correction: Option<f32>,
    /// Vividness v ∈ [0, 1] (see [`crate::quantize::decode::chroma_gain`]); `None` uses the model's own.
    pub vividness: Option<f32>,
    /// Out-of-gamut colours clipped or fitted along their hue; `None` uses the model's own setting.
    pub gamut: Option<Gamut>,
    /// Also compute the confidence map (classification heads only).
    pub confidence: bool,
}

impl Default for ColorizeOptions {
    fn default() -> Self {
        Self {
            size: DEFAULT_SIZE,
            decoding: None,
            prior_correction: None,
            vividness: None,
            gamut: None,
            confidence: false,
        }
    }
}

/// A colorized photo.
pub struct Colorized {
    /// At the input's size, precision and alpha.
    pub image: DynamicImage,
    /// Heat map of the per-pixel entropy of the predicted colour distribution, at the input's size:
    /// dark purple where the model is sure of the colour, yellow where it hesitates.
    pub confidence: Option<RgbImage>,
}

/// A trained colorizer, ready to use. Forward passes are serialised (the CPU backend already uses all
/// cores inside one), so a `Colorizer` can be shared by threads that decode and encode in parallel.
pub struct Colorizer {
    network: Mutex<Network>,
    architecture: Architecture,
    /// The model's own decode settings (used where the options name none).
    decode: DecodeConfig,
    /// The training prior's rebalancing weights (when the run folder has its prior).
    weights: Option<Vec<f64>>,
    device: Device,
    /// Where the model came from (a run folder, or "embedded").
    pub source: String,
}

impl Colorizer {
    /// Loads a run folder written by `rechroma train` (see [`crate::run`]).
    pub fn from_run(dir: &Path, device: &Device) -> Result<Self, InferError> {
        Ok(Self::new(Model::load(dir, device)?, device, dir.display().to_string()))
    }

    /// The default model compiled into the binary (see [`embedded`]).
    pub fn embedded(device: &Device) -> Result<Self, InferError> {
        Ok(Self::new(
            crate::run::embedded_model(device)?,
            device,
            "embedded".into(),
        ))
    }

    /// A colorizer of a loaded model; `source` says where it came from.
    pub fn new(model: Model, device: &Device, source: String) -> Self {
        Self {
            architecture: model.config.model.architecture(),
            network: Mutex::new(model.network),
            decode: model.config.decode,
            weights: model.prior.map(|p| p.weights),
            device: device.clone(),
            source,
        }
    }

    /// What kind of colorizer this is.
    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    /// The working size for a `width × height` photo: MLEU runs at about `size`² pixels with the
    /// photo's aspect; ChromaGAN at its fixed square size.
    pub fn working_size(&self, width: u32, height: u32, size: u32) -> (u32, u32) {
        let network = self.network.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*network {
            Network::Mleu(_) => compose::working_size(width, height, size),
            Network::ChromaGan(g) => (g.size as u32, g.size as u32),
        }
    }

    /// The model's own decode settings, used where the options name none.
    pub fn decode_config(&self) -> DecodeConfig {
        self.decode
    }

    /// The decode settings `options` resolve to: each one given there, else the model's own.
    pub fn resolve(&self, options: &ColorizeOptions) -> DecodeConfig {
        DecodeConfig {
            decoding: options.decoding.unwrap_or(self.decode.decoding),
            prior_correction: options.prior_correction.unwrap_or(self.decode.prior_correction),
            vividness: options.vividness.unwrap_or(self.decode.vividness),
            gamut: options.gamut.unwrap_or(self.decode.gamut),
        }
    }

    /// Predicts ab (and optionally the entropy) for one L plane of `w × h` (sides multiples of 32).
    pub fn predict(
        &self,
        l: &[f32],
        size: (usize, usize),
        options: &ColorizeOptions,
    ) -> Result<Prediction, InferError> {
        let decode = self.resolve(options);
        let beta = decode.prior_correction;
        let offset = match (&self.weights, beta) {
            _ if beta == 0.0 || self.architecture != Architecture::Mleu(Head::Classification) => None,
            (Some(w), b) => Some(prior_correction(w, b)),
            (None, _) => return Err(InferError::NoPrior),
        };
        let network = self.network.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let predict = PredictOptions {
            offset: offset.as_deref(),
            entropy: options.confidence,
            ..PredictOptions::new(&decode)
        };
        Ok(match &*network {
            Network::Mleu(m) => mleu_predict(m, l, size, &predict, &self.device)?,
            Network::ChromaGan(_) if options.confidence => return Err(PredictError::NoDistribution.into()),
            Network::ChromaGan(g) => chromagan_predict(g, l, size, decode.vividness, &self.device)?,
        })
    }

    /// Colorizes a decoded photo at its own resolution (see the module docs for the pipeline).
    pub fn colorize(&self, img: &DynamicImage, options: &ColorizeOptions) -> Result<Colorized, InferError> {
        if !(32..=2048).contains(&options.size) {
            return Err(InferError::WorkingSize(options.size));
        }
        let (w, h) = self.working_size(img.width(), img.height(), options.size);
        let lab = LabImage::from_rgb8(&compose::working_image(img, w, h));
        let (w, h) = (w as usize, h as usize);
        let prediction = self.predict(lab.l(), (w, h), options)?;
        let gamut = self.resolve(options).gamut;
        let image = compose::recombine(img, &prediction.ab, (w, h), gamut);
        let confidence = prediction.entropy.map(|e| {
            let (fw, fh) = (img.width(), img.height());
            compose::heat_map(
                &crate::predict::upsample_bilinear(&e, w, h, fw as usize, fh as usize),
                fw,
                fh,
            )
        });
        Ok(Colorized { image, confidence })
    }
}
