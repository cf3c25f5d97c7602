//! From a predicted distribution over the 313 bins back to one ab value per pixel.
//!
//! Zhang et al. 2016 (§3.2) interpolate between the mean of the distribution (T = 1: desaturated but
//! spatially consistent) and its mode (T → 0: vibrant but patchy) with the *annealed mean*:
//! re-normalise z^(1/T) and take its expectation over the bin centres. Their default is T = 0.38.

use super::{Q, bin_centres};
use serde::{Deserialize, Serialize};

/// Paper default temperature of the annealed mean.
pub const DEFAULT_TEMPERATURE: f32 = 0.38;

/// How a distribution is turned into a single ab value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decoding {
    /// Expectation of the distribution sharpened by 1/T (T = 1 is the mean, T → 0 the mode).
    AnnealedMean {
        /// Temperature T (T ≤ 1e-6 decodes the mode). Paper default: [`DEFAULT_TEMPERATURE`] (0.38).
        temperature: f32,
    },
    /// Expectation of the distribution as given (same as `AnnealedMean { temperature: 1 }`).
    Mean,
    /// Centre of the most probable bin (the T → 0 limit); ties go to the lower index.
    Mode,
}

impl Default for Decoding {
    fn default() -> Self {
        Decoding::AnnealedMean {
            temperature: DEFAULT_TEMPERATURE,
        }
    }
}

/// Default vividness: 1, the model's colours as decoded (no damping; the papers' behaviour).
pub const DEFAULT_VIVIDNESS: f32 = 1.0;

/// What happens to a predicted colour that lies outside the sRGB gamut at its pixel's L.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gamut {
    /// Convert as is and clip each RGB channel (what the papers' code does; shifts hue and lightness).
    #[default]
    Clip,
    /// Reduce the chroma along the hue, at the pixel's own L, to the gamut boundary
    /// ([`crate::color::fit_to_gamut`]).
    Fit,
}

/// Every setting that turns a network's output into the output photo's ab.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DecodeConfig {
    /// How a classification head's distribution becomes one ab (annealed mean, T = 0.38).
    #[serde(default)]
    pub decoding: Decoding,
    /// Fraction β ∈ [0, 1] of the class rebalancing undone when decoding (see [`prior_correction`]):
    /// 0 is the paper's decoding (the default).
    #[serde(default)]
    pub prior_correction: f32,
    /// Vividness v ∈ [0, 2]: each pixel's chroma is multiplied by [`chroma_gain`]`(H, v)`: below 1 it
    /// damps the colours the model is unsure of (high entropy H) first, above 1 it raises those it is
    /// sure of most. 1 keeps the decoded colours (default).
    #[serde(default = "default_vividness")]
    pub vividness: f32,
    /// Out-of-gamut colours: clipped per channel (default, the papers') or fitted along their hue.
    #[serde(default)]
    pub gamut: Gamut,
}

fn default_vividness() -> f32 {
    DEFAULT_VIVIDNESS
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self {
            decoding: Decoding::default(),
            prior_correction: 0.0,
            vividness: DEFAULT_VIVIDNESS,
            gamut: Gamut::default(),
        }
    }
}

/// Highest vividness: twice the decoded chroma where the model is sure (`rechroma colorize --vividness`).
pub const MAX_VIVIDNESS: f32 = 2.0;

/// The chroma multiplier of a pixel whose predicted distribution has normalised entropy `h` ∈ [0, 1]
/// ([`entropy_plane`]), at vividness `v` ∈ [0, [`MAX_VIVIDNESS`]]:
///
/// - v ≤ 1 fades: v^(½ + h). v = 1 keeps the decoded colours, v = 0 is gray; in between every colour
///   fades in proportion to a power of v, the colours the model hesitates over (high h) faster
///   (at v = ½: × 0.71 where it is sure, × 0.35 where its distribution is uniform).
/// - v > 1 raises: 1 + (v − 1)·√(1 − h). Where the model is sure the chroma is multiplied by v,
///   where its distribution is uniform it is kept (raised colours are fitted into the gamut along their
///   hue by [`crate::infer`]).
///
/// Models that predict no distribution have no h: they scale every pixel by v.
pub fn chroma_gain(h: f32, v: f32) -> f32 {
    let h = h.clamp(0.0, 1.0);
    let v = v.clamp(0.0, MAX_VIVIDNESS);
    if v <= 0.0 {
        0.0
    } else if v <= 1.0 {
        v.powf(0.5 + h)
    } else {
        1.0 + (v - 1.0) * (1.0 - h).sqrt()
    }
}

/// Decodes one distribution given as **log-probabilities or logits** (any additive constant is
/// irrelevant): `log_p[q]` for each of the 313 bins. Working in log space keeps small T stable.
///
/// Returns (a, b).
pub fn decode_distribution(log_p: &[f32], decoding: Decoding) -> [f32; 2] {
    assert_eq!(log_p.len(), Q, "a distribution over the {Q} bins is expected");
    let t = match decoding {
        Decoding::Mode => return mode(log_p),
        Decoding::Mean => 1.0,
        Decoding::AnnealedMean { temperature } if temperature <= 1e-6 => return mode(log_p),
        Decoding::AnnealedMean { temperature } => temperature,
    };
    let max = log_p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mut sum, mut a, mut b) = (0f64, 0f64, 0f64);
    for (q, &lp) in log_p.iter().enumerate() {
        let w = f64::from((lp - max) / t).exp();
        let [ca, cb] = bin_centres()[q];
        sum += w;
        a += w * f64::from(ca);
        b += w * f64::from(cb);
    }
    [(a / sum) as f32, (b / sum) as f32]
}

fn mode(log_p: &[f32]) -> [f32; 2] {
    let mut best = 0;
    for (q, &v) in log_p.iter().enumerate() {
        if v > log_p[best] {
            best = q;
        }
    }
    bin_centres()[best]
}

/// Decodes a bin-major `[Q, pixels]` buffer of logits (a `[313, H, W]` tensor's data) into planar
/// a and b planes, in parallel.
pub fn decode_planes(logits: &[f32], pixels: usize, decoding: Decoding) -> (Vec<f32>, Vec<f32>) {
    decode_planes_offset(logits, pixels, decoding, None)
}

/// [`decode_planes`] with `offset[q]` added to every pixel's logit of bin q first (a log-prior
/// adjustment, see [`prior_correction`]).
pub fn decode_planes_offset(
    logits: &[f32],
    pixels: usize,
    decoding: Decoding,
    offset: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>) {
    use rayon::prelude::*;
    assert_eq!(logits.len(), Q * pixels, "logits must be [{Q}, pixels]");
    let zeros = [0f32; Q];
    let offset = offset.unwrap_or(&zeros);
    assert_eq!(offset.len(), Q, "one offset per bin");
    let ab: Vec<[f32; 2]> = (0..pixels)
        .into_par_iter()
        .map_init(
            || vec![0f32; Q],
            |col, p| {
                for q in 0..Q {
                    col[q] = logits[q * pixels + p] + offset[q];
                }
                decode_distribution(col, decoding)
            },
        )
        .collect();
    ab.into_iter().map(|[a, b]| (a, b)).unzip()
}

/// Entropy of the softmax of each pixel's logits, divided by ln Q so it lies in [0, 1]: 0 when one bin
/// holds all the mass (the model is sure of the colour), 1 when all 313 bins are equally likely.
/// `logits` is bin-major `[Q, pixels]`, as in [`decode_planes`].
pub fn entropy_plane(logits: &[f32], pixels: usize) -> Vec<f32> {
    use rayon::prelude::*;
    assert_eq!(logits.len(), Q * pixels, "logits must be [{Q}, pixels]");
    let ln_q = (Q as f64).ln();
    (0..pixels)
        .into_par_iter()
        .map(|p| {
            let max = (0..Q).map(|q| logits[q * pixels + p]).fold(f32::NEG_INFINITY, f32::max);
            // H = ln Z − Σ e^(x−max)·(x−max) / Z, with Z = Σ e^(x−max).
            let (mut z, mut s) = (0f64, 0f64);
            for q in 0..Q {
                let x = f64::from(logits[q * pixels + p] - max);
                let e = x.exp();
                z += e;
                s += e * x;
            }
            ((z.ln() - s / z) / ln_q).clamp(0.0, 1.0) as f32
        })
        .collect()
}

/// Logit offsets −β·ln w(q) that undo a fraction β ∈ [0, 1] of class rebalancing at decoding time.
///
/// Training with each pixel weighted by w(q*) of its true bin makes the network's optimum
/// p̂(q | x) ∝ w(q)·p(q | x): rare (saturated) colours are over-predicted on purpose, which is what makes
/// the classification head colourful. Dividing by w (β = 1) recovers the calibrated distribution (the
/// logit adjustment of long-tail classification); β = 0 is the paper's decoding. Values in between trade
/// vividness for fidelity.
pub fn prior_correction(weights: &[f64], beta: f32) -> Vec<f32> {
    weights.iter().map(|&w| -beta * (w.max(1e-12).ln() as f32)).collect()
}
