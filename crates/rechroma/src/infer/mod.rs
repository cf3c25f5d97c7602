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
use crate::color::{fit_to_gamut, lab_to_srgb8};
use crate::engine::Forward;
use crate::hints::{Hint, SpreadConfig, check_hints, patches, render, spread::spread_stoppable, to_hex};
use crate::model::chromagan::ChromaGan;
use crate::model::mleu::Head;
use crate::model::{Architecture, Network};
use crate::predict::{PredictError, PredictOptions, Prediction, chromagan_predict, mleu_logits, mleu_predict};
use crate::quantize::decode::prior_correction;
use crate::quantize::{DecodeConfig, Decoding, Gamut};
use crate::quantize::{Q, bin_centres};
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
    /// Hints were given to a model that takes none.
    #[error(
        "this model takes no colour hints ({0}): train one with `rechroma train --hints`, or use the default model"
    )]
    NoHints(&'static str),
    /// A hint is malformed or outside the photo.
    #[error(transparent)]
    Hint(#[from] crate::hints::HintError),
    /// The work was stopped between two stages (its request was abandoned).
    #[error("stopped: the request was abandoned")]
    Stopped,
    /// Suggestions were asked of a model that predicts no colour distribution.
    #[error("this model predicts no colour distribution ({0}), so it suggests no colours")]
    NoSuggestions(&'static str),
}

/// A colour the model suggests at a point: one of the few most likely distinct colours of its
/// distribution there (Zhang et al. 2017's "suggested colours").
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Suggestion {
    /// sRGB `#rrggbb` at the photo's own lightness there (fitted into the gamut along its hue).
    pub color: String,
    /// Lab a, b (the bin's centre, or the probability-weighted mean of merged bins).
    pub ab: [f32; 2],
    /// Probability of this colour (the merged bins' sum).
    pub probability: f32,
}

/// Bins closer than this in ab (Lab units) are merged into one suggestion: two grid steps of the 313
/// bins (10), so neighbouring bins of one hue-and-chroma do not crowd out distinct colours.
pub const SUGGESTION_MERGE_DISTANCE: f32 = 20.0;

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
    /// Vividness v ∈ [0, 2] (see [`crate::quantize::decode::chroma_gain`]): below 1 fades, above 1
    /// raises the colours the model is sure of (fitted into the gamut along their hue); `None` uses the
    /// model's own.
    pub vividness: Option<f32>,
    /// Share (0–1) of the result's overall colour cast removed ([`crate::predict::remove_cast`]): 0 keeps
    /// the model's colours (default), 1 makes their median neutral. Hints keep their own colours.
    pub cast_removal: f32,
    /// Out-of-gamut colours clipped or fitted along their hue; `None` uses the model's own setting.
    pub gamut: Option<Gamut>,
    /// Also compute the confidence map (classification heads only).
    pub confidence: bool,
    /// How colour hints spread over their regions after the network ([`crate::hints::spread`]).
    pub spread: SpreadConfig,
}

impl Default for ColorizeOptions {
    fn default() -> Self {
        Self {
            size: DEFAULT_SIZE,
            decoding: None,
            prior_correction: None,
            vividness: None,
            cast_removal: 0.0,
            gamut: None,
            confidence: false,
            spread: SpreadConfig::default(),
        }
    }
}

/// A colorized photo.
pub struct Colorized {
    /// At the input's size, precision and alpha.
    pub image: DynamicImage,
    /// Heat map of the per-pixel entropy of the predicted colour distribution, at the input's size:
    /// dark purple where the model is sure of the colour, yellow where it hesitates (the scale spans
    /// [`compose::CONFIDENCE_RANGE`] of normalised entropy).
    pub confidence: Option<RgbImage>,
}

/// The `count` most likely distinct colours of one pixel's distribution (`logits` over the 313 bins),
/// shown at lightness `l`: bins in order of probability, each merged into an earlier suggestion closer
/// than [`SUGGESTION_MERGE_DISTANCE`] in ab (its probability added, its ab averaged by weight) or starting
/// a new one.
pub fn suggestions(logits: &[f32], l: f32, count: usize) -> Vec<Suggestion> {
    assert_eq!(logits.len(), Q, "one logit per bin");
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f64> = logits.iter().map(|&z| f64::from(z - max).exp()).collect();
    let total: f64 = exp.iter().sum();
    let mut order: Vec<usize> = (0..Q).collect();
    order.sort_by(|&i, &j| exp[j].total_cmp(&exp[i]));
    let centres = bin_centres();
    // (probability, weighted a sum, weighted b sum, anchor ab)
    let mut groups: Vec<(f64, f64, f64, [f32; 2])> = Vec::new();
    for q in order {
        let p = exp[q] / total;
        let [a, b] = centres[q];
        let near = groups
            .iter_mut()
            .find(|g| ((g.3[0] - a).powi(2) + (g.3[1] - b).powi(2)).sqrt() < SUGGESTION_MERGE_DISTANCE);
        match near {
            Some(g) => {
                g.0 += p;
                g.1 += p * f64::from(a);
                g.2 += p * f64::from(b);
            }
            None => groups.push((p, p * f64::from(a), p * f64::from(b), [a, b])),
        }
    }
    groups.sort_by(|x, y| y.0.total_cmp(&x.0));
    groups
        .into_iter()
        .take(count)
        .map(|(p, sa, sb, _)| {
            let ab = [(sa / p) as f32, (sb / p) as f32];
            let fitted = fit_to_gamut([l, ab[0], ab[1]]);
            Suggestion {
                color: to_hex(lab_to_srgb8([l, fitted[0], fitted[1]])),
                ab,
                probability: p as f32,
            }
        })
        .collect()
}

/// A network in the form colorizing runs it.
enum Runner {
    /// An MLEU: compiled by the inference engine on the CPU, burn's on a GPU.
    Mleu(Box<dyn Forward>),
    /// A ChromaGAN generator, on burn.
    ChromaGan(ChromaGan),
}

/// A trained colorizer, ready to use. Forward passes are serialised (each one already uses all cores),
/// so a `Colorizer` can be shared by threads that decode and encode in parallel.
pub struct Colorizer {
    network: Mutex<Runner>,
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
            // The inference form: an MLEU compiled by the engine (BatchNorms folded in).
            network: Mutex::new(match model.network {
                Network::Mleu(m) => Runner::Mleu(crate::engine::for_device(m, device)),
                Network::ChromaGan(g) => Runner::ChromaGan(g),
            }),
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
            Runner::Mleu(_) => compose::working_size(width, height, size),
            Runner::ChromaGan(g) => (g.size as u32, g.size as u32),
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

    /// Whether the model takes colour hints.
    pub fn takes_hints(&self) -> bool {
        let network = self.network.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        matches!(&*network, Runner::Mleu(m) if m.takes_hints())
    }

    /// Refuses hints for a `width × height` photo that this model cannot take or that are malformed or
    /// outside the photo: call it before any work.
    pub fn check_hints(&self, hints: &[Hint], width: u32, height: u32) -> Result<(), InferError> {
        if hints.is_empty() {
            return Ok(());
        }
        if !self.takes_hints() {
            return Err(InferError::NoHints(self.architecture.name()));
        }
        Ok(check_hints(hints, width as usize, height as usize)?)
    }

    /// Predicts ab (and optionally the entropy) for one L plane of `w × h` (sides multiples of 32).
    pub fn predict(
        &self,
        l: &[f32],
        size: (usize, usize),
        options: &ColorizeOptions,
    ) -> Result<Prediction, InferError> {
        self.predict_hinted(l, size, options, None)
    }

    /// [`Self::predict`] with colour hint planes at the working size (`[3, h, w]`, see
    /// [`crate::hints::render`]).
    pub fn predict_hinted(
        &self,
        l: &[f32],
        size: (usize, usize),
        options: &ColorizeOptions,
        hints: Option<&[f32]>,
    ) -> Result<Prediction, InferError> {
        self.predict_stoppable(l, size, options, hints, &|| false)
    }

    /// [`Self::predict_hinted`], asking `stop` once the network is free (forward passes run one at a
    /// time): abandoned work queued behind another forward pass ends there.
    fn predict_stoppable(
        &self,
        l: &[f32],
        size: (usize, usize),
        options: &ColorizeOptions,
        hints: Option<&[f32]>,
        stop: &dyn Fn() -> bool,
    ) -> Result<Prediction, InferError> {
        let decode = self.resolve(options);
        let beta = decode.prior_correction;
        let offset = match (&self.weights, beta) {
            _ if beta == 0.0 || self.architecture != Architecture::Mleu(Head::Classification) => None,
            (Some(w), b) => Some(prior_correction(w, b)),
            (None, _) => return Err(InferError::NoPrior),
        };
        let network = self.network.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if stop() {
            return Err(InferError::Stopped);
        }
        let predict = PredictOptions {
            offset: offset.as_deref(),
            entropy: options.confidence,
            hints,
            ..PredictOptions::new(&decode)
        };
        Ok(match &*network {
            Runner::Mleu(m) => mleu_predict(m.as_ref(), l, size, &predict)?,
            Runner::ChromaGan(_) if options.confidence => return Err(PredictError::NoDistribution.into()),
            Runner::ChromaGan(g) => chromagan_predict(g, l, size, decode.vividness, &self.device)?,
        })
    }

    /// The colours the model suggests at photo pixel (`x`, `y`): the `count` most likely distinct colours
    /// of its distribution there, given `hints` (see [`suggestions`]).
    pub fn suggest(
        &self,
        img: &DynamicImage,
        options: &ColorizeOptions,
        hints: &[Hint],
        at: (f64, f64),
        count: usize,
    ) -> Result<Vec<Suggestion>, InferError> {
        self.check_point(img, at)?;
        self.check_hints(hints, img.width(), img.height())?;
        let (l, (w, h)) = self.working_l(img, options)?;
        self.suggest_working(img, (&l, (w, h)), hints, at, count)
    }

    fn check_point(&self, img: &DynamicImage, (x, y): (f64, f64)) -> Result<(), InferError> {
        let probe = Hint {
            x,
            y,
            color: "#808080".into(),
            radius: None,
        };
        check_hints(
            std::slice::from_ref(&probe),
            img.width() as usize,
            img.height() as usize,
        )?;
        if !self.architecture.classifies() {
            return Err(InferError::NoSuggestions(self.architecture.name()));
        }
        Ok(())
    }

    /// [`Self::suggest`] from the photo's working L (`working`, from [`Self::working_l`]); hints must
    /// have passed [`Self::check_hints`].
    pub fn suggest_working(
        &self,
        img: &DynamicImage,
        (l, (w, h)): (&[f32], (usize, usize)),
        hints: &[Hint],
        (x, y): (f64, f64),
        count: usize,
    ) -> Result<Vec<Suggestion>, InferError> {
        self.check_point(img, (x, y))?;
        let planes = (!hints.is_empty()).then(|| render(hints, (img.width() as usize, img.height() as usize), (w, h)));
        let (logits, (cw, ch)) = {
            let network = self.network.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let Runner::Mleu(m) = &*network else {
                return Err(InferError::NoSuggestions(self.architecture.name()));
            };
            mleu_logits(m.as_ref(), l, (w, h), planes.as_deref())?
        };
        // The distribution's cell that holds the point, and the photo's own lightness there.
        let cx = ((x / f64::from(img.width()) * cw as f64) as usize).min(cw - 1);
        let cy = ((y / f64::from(img.height()) * ch as f64) as usize).min(ch - 1);
        let n = cw * ch;
        let logit: Vec<f32> = (0..Q).map(|q| logits[q * n + cy * cw + cx]).collect();
        let px = img.crop_imm(x as u32, y as u32, 1, 1).to_rgb8().get_pixel(0, 0).0;
        let lightness = crate::color::srgb8_to_lab(px)[0];
        Ok(suggestions(&logit, lightness, count))
    }

    /// Colorizes a decoded photo at its own resolution (see the module docs for the pipeline).
    pub fn colorize(&self, img: &DynamicImage, options: &ColorizeOptions) -> Result<Colorized, InferError> {
        self.colorize_with_hints(img, options, &[])
    }

    /// The photo's L at the working size for `options` (what the network sees), and that size.
    pub fn working_l(
        &self,
        img: &DynamicImage,
        options: &ColorizeOptions,
    ) -> Result<(Vec<f32>, (usize, usize)), InferError> {
        if !(32..=2048).contains(&options.size) {
            return Err(InferError::WorkingSize(options.size));
        }
        let (w, h) = self.working_size(img.width(), img.height(), options.size);
        let lab = LabImage::from_rgb8(&compose::working_image(img, w, h));
        Ok((lab.l().to_vec(), (w as usize, h as usize)))
    }

    /// [`Self::colorize`] with colour hints in the photo's own pixels (refused, before any work, by a model
    /// that takes none, or when one lies outside the photo).
    pub fn colorize_with_hints(
        &self,
        img: &DynamicImage,
        options: &ColorizeOptions,
        hints: &[Hint],
    ) -> Result<Colorized, InferError> {
        self.check_hints(hints, img.width(), img.height())?;
        let (l, (w, h)) = self.working_l(img, options)?;
        self.colorize_working(img, (img.width(), img.height()), (&l, (w, h)), options, hints, &|| {
            false
        })
    }

    /// Colorizes `target` from the working L of a photo of `photo` = (width, height) pixels (`working`:
    /// the L plane and its `w × h`, from [`Self::working_l`] with the same options), so interactive
    /// re-runs with other hints skip the resize, and a preview (`target` a smaller copy of the photo) gets
    /// exactly the colours of the full-size result. Hints are in the photo's pixels and must have passed
    /// [`Self::check_hints`]. `stop` is asked between the stages (before the forward pass, before the
    /// recombination): when it says so, the work ends with [`InferError::Stopped`].
    pub fn colorize_working(
        &self,
        target: &DynamicImage,
        photo: (u32, u32),
        (l, (w, h)): (&[f32], (usize, usize)),
        options: &ColorizeOptions,
        hints: &[Hint],
        stop: &dyn Fn() -> bool,
    ) -> Result<Colorized, InferError> {
        let img = target;
        let planes = (!hints.is_empty()).then(|| render(hints, (photo.0 as usize, photo.1 as usize), (w, h)));
        if stop() {
            return Err(InferError::Stopped);
        }
        let mut prediction = self.predict_stoppable(l, (w, h), options, planes.as_deref(), stop)?;
        crate::predict::remove_cast(&mut prediction.ab, options.cast_removal);
        if !hints.is_empty() {
            let patches = patches(hints, (photo.0 as usize, photo.1 as usize), (w, h));
            let spread_out = spread_stoppable(
                &mut prediction.ab,
                l,
                (w, h),
                &patches,
                &options.spread.at_working_size((w, h)),
                stop,
            );
            if !spread_out {
                return Err(InferError::Stopped);
            }
        }
        if stop() {
            return Err(InferError::Stopped);
        }
        let decode = self.resolve(options);
        // Raised chroma would leave the gamut often: fitted along the hue, it keeps its hue.
        let gamut = if decode.vividness > 1.0 {
            Gamut::Fit
        } else {
            decode.gamut
        };
        let image = compose::recombine(img, &prediction.ab, (w, h), gamut);
        let confidence = prediction.entropy.map(|e| {
            let (fw, fh) = (img.width(), img.height());
            compose::heat_map(
                &crate::predict::upsample_bilinear(&e, w, h, fw as usize, fh as usize),
                fw,
                fh,
                compose::CONFIDENCE_RANGE,
            )
        });
        Ok(Colorized { image, confidence })
    }
}
