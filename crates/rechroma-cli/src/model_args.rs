//! The model and decoding options `colorize`, `eval` and `export` share.

use anyhow::Result;
use rechroma::hints::{SpreadConfig, spread::Spreads};
use rechroma::infer::{ColorizeOptions, Colorizer};
use rechroma::quantize::{DecodeConfig, Decoding, Gamut};
use std::path::PathBuf;

/// Out-of-gamut colours, as the command line names them.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum GamutArg {
    /// Convert and clip each RGB channel (the papers' behaviour; shifts hue and lightness).
    Clip,
    /// Reduce the chroma along the hue, at each pixel's own lightness, into the sRGB gamut.
    Fit,
}

/// The decoding flags (no model choice): what `export` can store as a model's defaults.
#[derive(clap::Args)]
pub struct DecodeArgs {
    /// Annealed-mean temperature of a classification head (a joint or regression model ignores it):
    /// below 1 pulls each pixel towards its most likely colour, 1 takes the mean of its distribution.
    /// Which way that moves the colours depends on the most likely colour: with the paper's decoding it
    /// is usually a vivid one (lower T: more colourful), with --prior-correction 1 often gray (lower T:
    /// paler). Pixels the model is sure of keep their colour at any T [default: the model's own, 0.38
    /// as in Zhang et al.].
    #[arg(long, value_parser = crate::parse::positive)]
    pub temperature: Option<f32>,
    /// Undo this fraction (0–1) of the class rebalancing when decoding a classification model: 0 is the
    /// paper's (most colourful), 1 the calibrated distribution (most faithful) [default: the model's].
    #[arg(long, value_parser = crate::parse::unit)]
    pub prior_correction: Option<f32>,
    /// Vividness (0–2): 1 keeps the decoded colours; lower values fade them towards gray, the colours the
    /// model is least sure of first; higher values raise the chroma, of the colours it is most sure of
    /// most (per-pixel entropy; uniformly for models without a distribution; raised colours are fitted
    /// into the gamut along their hue) [default: the model's].
    #[arg(long, value_parser = crate::parse::vividness)]
    pub vividness: Option<f32>,
    /// What to do with colours outside sRGB at their pixel's lightness [default: the model's].
    #[arg(long, value_enum)]
    pub gamut: Option<GamutArg>,
}

/// Which model, on which device (no decoding flags: `serve` takes those per request).
#[derive(clap::Args)]
pub struct ModelChoice {
    /// A run folder written by `rechroma train` [default: the embedded model].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Where the network runs.
    #[arg(long, value_enum, default_value_t)]
    pub device: crate::device::DeviceArg,
}

/// How colour hints spread over their regions after the network (`rechroma::hints::spread`).
#[derive(clap::Args)]
pub struct SpreadArgs {
    /// How far a hint's colour spreads over its region after the network, in pixels of geodesic distance
    /// on a 256² working image (scaled with --size; its effect falls to 1/e there); 0: only the network
    /// spreads hints [default: 96, chosen on dev].
    #[arg(long, value_parser = crate::parse::non_negative)]
    pub spread_reach: Option<f32>,
    /// How strongly edges stop a hint's spreading: the distance, in pixels, each unit of lightness
    /// difference (L, 0–100) adds [default: 2, chosen on dev].
    #[arg(long, value_parser = crate::parse::non_negative)]
    pub spread_edge: Option<f32>,
    /// What a hint spreads: its colour (each pixel moves towards it) or its residual over the network's
    /// prediction (added to it) [default: colour, chosen on dev].
    #[arg(long, value_enum)]
    pub spreads: Option<SpreadsArg>,
}

/// What a hint spreads, as the command line names it.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SpreadsArg {
    /// Its colour.
    Colour,
    /// Its difference from the network's prediction under it.
    Residual,
}

#[derive(clap::Args)]
pub struct ModelArgs {
    #[command(flatten)]
    pub choice: ModelChoice,
    #[command(flatten)]
    pub decode: DecodeArgs,
    #[command(flatten)]
    pub spread: SpreadArgs,
    /// Remove this share (0–1) of the result's overall colour cast (e.g. a sepia or blue tint): 1 makes
    /// the median colour neutral, as a white balance of the colours alone (lightness untouched)
    /// [default: 0].
    #[arg(long, value_parser = crate::parse::unit, default_value_t = 0.0, hide_default_value = true)]
    pub cast_removal: f32,
}

impl DecodeArgs {
    /// Overwrites the settings these flags name.
    pub fn apply(&self, decode: &mut DecodeConfig) {
        if let Some(temperature) = self.temperature {
            decode.decoding = Decoding::AnnealedMean { temperature };
        }
        if let Some(beta) = self.prior_correction {
            decode.prior_correction = beta;
        }
        if let Some(v) = self.vividness {
            decode.vividness = v;
        }
        if let Some(g) = self.gamut {
            decode.gamut = g.into();
        }
    }
}

impl SpreadArgs {
    /// The spreading these flags set (the defaults where they name none).
    pub fn config(&self) -> SpreadConfig {
        let default = SpreadConfig::default();
        SpreadConfig {
            reach: self.spread_reach.unwrap_or(default.reach),
            edge: self.spread_edge.unwrap_or(default.edge),
            what: match self.spreads {
                None => default.what,
                Some(SpreadsArg::Colour) => Spreads::Colour,
                Some(SpreadsArg::Residual) => Spreads::Residual,
            },
        }
    }
}

impl From<GamutArg> for Gamut {
    fn from(g: GamutArg) -> Self {
        match g {
            GamutArg::Clip => Gamut::Clip,
            GamutArg::Fit => Gamut::Fit,
        }
    }
}

impl ModelArgs {
    /// The colorizer (on --device) of --model, or the embedded one.
    pub fn colorizer(&self) -> Result<Colorizer> {
        self.choice.colorizer()
    }
}

/// Hands back to the kernel what loading used and the colorizer no longer needs (about 35 MB of a
/// 12-megapixel colorize's peak here):
/// - the memory freed while loading (the decoded weights, burn's model the engine was compiled from):
///   the allocator keeps freed memory for the forward passes to reuse (`keep_freed_memory` in
///   main.rs), but these blocks are mostly ones no later allocation fits;
/// - with the embedded model, the binary's pages holding its weights file, read once to decode it.
///   They are clean pages of the executable's file: read again (export) they come back from it.
fn hand_back_loading_memory(embedded: bool) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the kernel. madvise(MADV_DONTNEED) is given
    // whole pages inside the embedded weights, a read-only part of the executable's file mapping:
    // their contents are unchanged, and reloaded from the file when next read.
    unsafe {
        libc::malloc_trim(0);
        let page = libc::sysconf(libc::_SC_PAGESIZE).max(1) as usize;
        let weights = rechroma::run::embedded::WEIGHTS;
        let start = (weights.as_ptr() as usize).next_multiple_of(page);
        let end = (weights.as_ptr() as usize + weights.len()) / page * page;
        if embedded && end > start {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

impl ModelChoice {
    /// The colorizer (on --device) of --model, or the embedded one.
    pub fn colorizer(&self) -> Result<Colorizer> {
        let device = self.device.device()?;
        let colorizer = match &self.model {
            // A run's weights file named instead of its folder: the folder is meant.
            Some(file) if file.is_file() && file.parent().is_some() => {
                Colorizer::from_run(file.parent().expect("checked"), &device)?
            }
            Some(dir) => Colorizer::from_run(dir, &device)?,
            None => Colorizer::embedded(&device)?,
        };
        hand_back_loading_memory(self.model.is_none());
        Ok(colorizer)
    }
}

impl ModelArgs {
    /// The colorize options of these flags at working size `size`.
    pub fn options(&self, size: u32, confidence: bool) -> ColorizeOptions {
        let d = &self.decode;
        ColorizeOptions {
            size,
            decoding: d.temperature.map(|temperature| Decoding::AnnealedMean { temperature }),
            prior_correction: d.prior_correction,
            vividness: d.vividness,
            gamut: d.gamut.map(Gamut::from),
            confidence,
            spread: self.spread.config(),
            cast_removal: self.cast_removal,
        }
    }
}
