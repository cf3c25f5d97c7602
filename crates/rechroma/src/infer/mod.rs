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
pub mod embedded;

use crate::color::{LabImage, norm};
use crate::model::chromagan::ChromaGan;
use crate::model::mleu::{Head, Mleu, SizeError, check_size};
use crate::quantize::decode::{chroma_gain, decode_planes_offset, entropy_plane, prior_correction};
use crate::quantize::{DecodeConfig, Decoding, Gamut, Prior};
use crate::train::run::{ModelConfig, TrainConfig};
use burn::module::Module;
use burn::store::SafetensorsStore;
use burn::tensor::{Device, Tensor, TensorData};
use image::{DynamicImage, RgbImage};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Nominal working size: the network sees about 256² pixels, like Zhang et al.'s demo and MLEU.
pub const DEFAULT_SIZE: u32 = 256;

/// Errors of loading a model or colorizing a photo.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error("{path}: {reason}")]
    Model { path: PathBuf, reason: String },
    #[error(transparent)]
    Size(#[from] SizeError),
    #[error(
        "the model regresses ab (MLEU regression head or ChromaGAN): it predicts no colour distribution, so no confidence map"
    )]
    NoDistribution,
    #[error("the prior correction needs the training prior (prior.json in the run folder)")]
    NoPrior,
    #[error("working size {0} is out of range (32 ..= 2048)")]
    WorkingSize(u32),
    #[error("this ChromaGAN takes {expected}×{expected} inputs, not {width}×{height}")]
    FixedSize {
        expected: usize,
        width: usize,
        height: usize,
    },
}

fn model_err(path: &Path, reason: impl std::fmt::Display) -> InferError {
    InferError::Model {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
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

/// How [`mleu_predict`] decodes a network's output.
#[derive(Debug, Clone, Copy)]
pub struct PredictOptions<'a> {
    /// Distribution → ab (classification heads).
    pub decoding: Decoding,
    /// Logit offsets added before decoding (the prior correction), one per bin.
    pub offset: Option<&'a [f32]>,
    /// Vividness v ∈ [0, 1]: each pixel's chroma × [`chroma_gain`]; 1 keeps the decoded colours.
    pub vividness: f32,
    /// Also return the per-pixel entropy.
    pub entropy: bool,
}

impl PredictOptions<'_> {
    /// The options of a decode configuration, with no prior correction and no entropy map.
    pub fn new(decode: &DecodeConfig) -> Self {
        Self {
            decoding: decode.decoding,
            offset: None,
            vividness: decode.vividness,
            entropy: false,
        }
    }
}

/// Multiplies each pixel's ab (planar, `n` pixels) by its chroma gain: [`chroma_gain`] of its entropy,
/// or `v` everywhere when there is no distribution.
fn apply_vividness(ab: &mut [f32], entropy: Option<&[f32]>, v: f32) {
    if v >= 1.0 {
        return;
    }
    let n = ab.len() / 2;
    let (a, b) = ab.split_at_mut(n);
    for p in 0..n {
        let g = entropy.map_or(v.clamp(0.0, 1.0), |h| chroma_gain(h[p], v));
        a[p] *= g;
        b[p] *= g;
    }
}

/// What the network predicted at the working size.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Planar a then b, Lab units.
    pub ab: Vec<f32>,
    /// Normalised entropy of the colour distribution per pixel (0 sure … 1 uniform), when asked for.
    pub entropy: Option<Vec<f32>>,
}

/// A colorized photo.
pub struct Colorized {
    /// At the input's size, precision and alpha.
    pub image: DynamicImage,
    /// Heat map of the per-pixel entropy of the predicted colour distribution, at the input's size:
    /// dark purple where the model is sure of the colour, yellow where it hesitates.
    pub confidence: Option<RgbImage>,
}

/// Runs an MLEU model on one L plane (`w × h`, Lab units, sides multiples of 32).
///
/// # Shapes
/// `l`: `w·h` values → ab: `2·w·h` (planar), entropy: `w·h`.
pub fn mleu_predict(
    model: &Mleu,
    l: &[f32],
    (w, h): (usize, usize),
    options: &PredictOptions,
    device: &Device,
) -> Result<Prediction, InferError> {
    let entropy = options.entropy;
    check_size(h, w)?;
    if entropy && !model.head.classifies() {
        return Err(InferError::NoDistribution);
    }
    let x = Tensor::<4>::from_data(TensorData::new(l.to_vec(), [1, 1, h, w]), device);
    let out = model.forward_heads(x);
    let to_vec = |t: Tensor<4>| -> Vec<f32> { t.into_data().convert::<f32>().try_into_vec().expect("f32 data") };
    // The distribution's resolution (a quarter of the input's at class stride 4).
    let s = model.class_stride;
    let (cw, ch) = (w / s, h / s);
    let up = |plane: Vec<f32>| match s {
        1 => plane,
        _ => compose::upsample_bilinear(&plane, cw, ch, w, h),
    };
    let logits = out.logits.map(to_vec);
    let need_entropy = entropy || options.vividness < 1.0;
    let h_plane = logits
        .as_ref()
        .filter(|_| need_entropy)
        .map(|data| up(entropy_plane(data, cw * ch)));
    let mut ab = match (out.ab, &logits) {
        // Regression and joint heads: the regressed ab (the joint head's distribution gives the entropy).
        (Some(ab), _) => to_vec(ab).into_iter().map(norm::signed_to_ab).collect(),
        (None, Some(data)) => {
            let (a, b) = decode_planes_offset(data, cw * ch, options.decoding, options.offset);
            [up(a), up(b)].concat()
        }
        (None, None) => unreachable!("every head has an output"),
    };
    apply_vividness(&mut ab, h_plane.as_deref(), options.vividness);
    Ok(Prediction {
        ab,
        entropy: if entropy { h_plane } else { None },
    })
}

/// Runs a ChromaGAN generator (its colour branch only) on one L plane of its fixed size.
///
/// # Shapes
/// `l`: `w·h` values → ab: `2·w·h` (planar, Lab units)
pub fn chromagan_predict(
    model: &ChromaGan,
    l: &[f32],
    (w, h): (usize, usize),
    vividness: f32,
    device: &Device,
) -> Result<Prediction, InferError> {
    if w != model.size || h != model.size {
        return Err(InferError::FixedSize {
            expected: model.size,
            width: w,
            height: h,
        });
    }
    let x = Tensor::<4>::from_data(TensorData::new(l.to_vec(), [1, 1, h, w]), device);
    let data: Vec<f32> = model
        .colorize(x)
        .into_data()
        .convert::<f32>()
        .try_into_vec()
        .expect("f32 data");
    let mut ab: Vec<f32> = data.into_iter().map(norm::unit_to_ab).collect();
    apply_vividness(&mut ab, None, vividness);
    Ok(Prediction { ab, entropy: None })
}

/// The networks a run can hold.
enum Network {
    Mleu(Mleu),
    ChromaGan(ChromaGan),
}

/// A trained colorizer, ready to use. Forward passes are serialised (the CPU backend already uses all
/// cores inside one), so a `Colorizer` can be shared by threads that decode and encode in parallel.
pub struct Colorizer {
    network: Mutex<Network>,
    /// The MLEU head; `None` for ChromaGAN (which regresses ab).
    head: Option<Head>,
    /// The model's own decode settings (used where the options name none).
    decode: DecodeConfig,
    /// The training prior's rebalancing weights (when the run folder has its prior).
    weights: Option<Vec<f64>>,
    device: Device,
    /// Where the model came from (a run folder, or "embedded").
    pub source: String,
}

impl Colorizer {
    /// Loads a run folder written by `rechroma train` (`config.json` + `model.safetensors`, and
    /// `prior.json` when there is one).
    pub fn from_run(dir: &Path, device: &Device) -> Result<Self, InferError> {
        let config_path = dir.join("config.json");
        let config = std::fs::read(&config_path).map_err(|e| model_err(&config_path, e))?;
        let weights_path = dir.join("model.safetensors");
        let weights = std::fs::read(&weights_path).map_err(|e| model_err(&weights_path, e))?;
        let prior_path = dir.join("prior.json");
        let prior = match prior_path.is_file() {
            true => Some(Prior::load(&prior_path).map_err(|e| model_err(&prior_path, e))?),
            false => None,
        };
        let source = dir.display().to_string();
        let mut colorizer = Self::from_bytes(&config, &config_path, weights, &weights_path, device, source)?;
        colorizer.weights = prior.map(|p| p.weights);
        Ok(colorizer)
    }

    /// The default model compiled into the binary (see [`embedded`]).
    pub fn embedded(device: &Device) -> Result<Self, InferError> {
        let path = Path::new("<embedded model>");
        let weights = embedded::WEIGHTS.to_vec();
        let mut colorizer = Self::from_bytes(embedded::CONFIG, path, weights, path, device, "embedded".into())?;
        let prior = Prior::from_json(embedded::PRIOR, path).map_err(|e| model_err(path, e))?;
        colorizer.weights = Some(prior.weights);
        Ok(colorizer)
    }

    fn from_bytes(
        config: &[u8],
        config_path: &Path,
        weights: Vec<u8>,
        weights_path: &Path,
        device: &Device,
        source: String,
    ) -> Result<Self, InferError> {
        let config: TrainConfig = serde_json::from_slice(config).map_err(|e| model_err(config_path, e))?;
        let weights = embedded::widen_to_f32(&weights).map_err(|e| model_err(weights_path, e))?;
        let mut store = SafetensorsStore::from_bytes(Some(weights));
        let load = |e: crate::train::run::TrainError| model_err(weights_path, e);
        let network = match &config.model {
            ModelConfig::Mleu(m) => Network::Mleu(
                crate::train::trainee::load_into(m.init(device), &mut store, weights_path)
                    .map_err(load)?
                    .no_grad(),
            ),
            ModelConfig::ChromaGan { chromagan, .. } => Network::ChromaGan(
                crate::train::trainee::load_into(chromagan.init(device), &mut store, weights_path)
                    .map_err(load)?
                    .no_grad(),
            ),
        };
        Ok(Self {
            head: config.model.head(),
            network: Mutex::new(network),
            decode: config.decode,
            weights: None,
            device: device.clone(),
            source,
        })
    }

    /// The MLEU output head (`None`: a ChromaGAN).
    pub fn head(&self) -> Option<Head> {
        self.head
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
            _ if beta == 0.0 || self.head != Some(Head::Classification) => None,
            (Some(w), b) => Some(prior_correction(w, b)),
            (None, _) => return Err(InferError::NoPrior),
        };
        let network = self.network.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let predict = PredictOptions {
            offset: offset.as_deref(),
            entropy: options.confidence,
            ..PredictOptions::new(&decode)
        };
        match &*network {
            Network::Mleu(m) => mleu_predict(m, l, size, &predict, &self.device),
            Network::ChromaGan(_) if options.confidence => Err(InferError::NoDistribution),
            Network::ChromaGan(g) => chromagan_predict(g, l, size, decode.vividness, &self.device),
        }
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
            compose::heat_map(&compose::upsample_bilinear(&e, w, h, fw as usize, fh as usize), fw, fh)
        });
        Ok(Colorized { image, confidence })
    }
}
