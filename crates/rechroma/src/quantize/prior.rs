//! The empirical distribution of training colours over the 313 bins, its smoothing, and the class
//! rebalancing weights of Zhang et al. 2016 (§3.1, eq. 4), also used by MLEU's weighted cross-entropy.
//!
//! w ∝ ((1 − λ)·P̃ + λ/Q)^(−α), normalised so that Σ P̃·w = 1 (the expected weight of a training pixel
//! is 1), where P̃ is the smoothed prior. Paper defaults: σ = 5, λ = 0.5, α = 1.
//!
//! # File format
//! A prior is saved as JSON (`prior.json`), shared by training and inference:
//! ```text
//! { "format": "rechroma-prior/1",
//!   "config": { "smoothing": "ab2d" | "index1d" | "none", "sigma": 5.0, "lambda": 0.5, "alpha": 1.0,
//!               "gray_threshold": 5.0 },
//!   "images": counted images, "skipped_gray": grayscale images skipped, "pixels": counted pixels,
//!   "bins": [[a, b] × 313], "counts": [u64 × 313], "empirical": [P × 313],
//!   "smoothed": [P̃ × 313], "weights": [w × 313] }
//! ```

use super::{Q, Quantizer, bin_centres};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How the empirical distribution is smoothed before the weights are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Smoothing {
    /// Zhang et al.: a 2-D Gaussian kernel in ab space, exp(−|c_q − c_j|² / 2σ²), σ in ab units.
    #[default]
    Ab2d,
    /// MLEU (Nguyen-Quynh et al. 2020): a 1-D Gaussian along the bin index, exp(−(q − j)² / 2σ²).
    Index1d,
    /// No smoothing (P̃ = P).
    None,
}

/// Parameters of the prior and the rebalancing weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PriorConfig {
    /// Smoothing kernel. Default: Zhang's 2-D Gaussian in ab space.
    pub smoothing: Smoothing,
    /// Gaussian σ (ab units for `ab2d`, bins for `index1d`). Paper default: 5.
    pub sigma: f64,
    /// Mixing weight λ of the uniform distribution. Paper default: 0.5.
    pub lambda: f64,
    /// Exponent α. Paper default: 1.
    pub alpha: f64,
    /// An image whose pixels all have |ab| ≤ this is grayscale and not counted (Zhang). Default: 5.
    pub gray_threshold: f32,
}

impl Default for PriorConfig {
    fn default() -> Self {
        Self {
            smoothing: Smoothing::Ab2d,
            sigma: 5.0,
            lambda: 0.5,
            alpha: 1.0,
            gray_threshold: 5.0,
        }
    }
}

/// Errors reading, writing or building a prior.
#[derive(Debug, thiserror::Error)]
pub enum PriorError {
    /// Every counted image was gray.
    #[error("no colour pixels were counted ({skipped} grayscale images skipped): the prior is undefined")]
    Empty {
        /// Grayscale images skipped.
        skipped: u64,
    },
    /// The prior file cannot be read.
    #[error("cannot read {path}")]
    Io {
        /// The prior file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON of a prior's shape.
    #[error("{path}: not a rechroma prior")]
    Parse {
        /// The prior file.
        path: PathBuf,
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The file parses but fails a check (its format tag, the length of a table, a value out of range).
    #[error("{path}: not a rechroma prior: {reason}")]
    Format {
        /// The prior file.
        path: PathBuf,
        /// The check that failed.
        reason: String,
    },
    /// Writing the prior failed.
    #[error(transparent)]
    Write(crate::fsutil::WriteError),
    /// A smoothing or rebalancing parameter is out of range.
    #[error("invalid prior parameter: {0}")]
    Config(String),
}

/// Counts training pixels per bin (hard assignment to the nearest bin).
#[derive(Debug, Clone)]
pub struct PriorAccumulator {
    quantizer: Quantizer,
    gray_threshold: f32,
    counts: Vec<u64>,
    images: u64,
    skipped_gray: u64,
}

impl PriorAccumulator {
    /// An empty accumulator; images with |ab| ≤ `gray_threshold` at every pixel are skipped as grayscale.
    pub fn new(gray_threshold: f32) -> Self {
        let quantizer = Quantizer::new(super::SoftEncodeConfig { k: 1, sigma: 1.0 });
        Self {
            quantizer,
            gray_threshold,
            counts: vec![0; Q],
            images: 0,
            skipped_gray: 0,
        }
    }

    /// Adds one image given as its a and b planes. Returns false (and counts nothing) when the image
    /// is grayscale: |ab| ≤ `gray_threshold` at every pixel.
    pub fn add_image(&mut self, a: &[f32], b: &[f32]) -> bool {
        let t2 = self.gray_threshold * self.gray_threshold;
        if a.iter().zip(b).all(|(&x, &y)| x * x + y * y <= t2) {
            self.skipped_gray += 1;
            return false;
        }
        for (&x, &y) in a.iter().zip(b) {
            self.counts[self.quantizer.nearest(x, y)] += 1;
        }
        self.images += 1;
        true
    }

    /// Merges another accumulator (for parallel counting).
    pub fn merge(&mut self, other: &PriorAccumulator) {
        self.counts.iter_mut().zip(&other.counts).for_each(|(c, o)| *c += o);
        self.images += other.images;
        self.skipped_gray += other.skipped_gray;
    }

    /// Pixels counted per bin (313 values, in bin order).
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Builds the prior and weights from the counts.
    pub fn finish(&self, config: PriorConfig) -> Result<Prior, PriorError> {
        Prior::from_counts(&self.counts, self.images, self.skipped_gray, config)
    }
}

/// A measured prior with its smoothed version and rebalancing weights (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    /// Format tag, `rechroma-prior/1`.
    pub format: String,
    /// The parameters the prior and weights were computed with.
    pub config: PriorConfig,
    /// Images counted.
    pub images: u64,
    /// Grayscale images skipped.
    pub skipped_gray: u64,
    /// Pixels counted (the sum of `counts`).
    pub pixels: u64,
    /// The 313 bin centres (a, b).
    pub bins: Vec<[f32; 2]>,
    /// Pixels per bin.
    pub counts: Vec<u64>,
    /// Empirical distribution P over the bins (`counts / pixels`).
    pub empirical: Vec<f64>,
    /// Smoothed distribution P̃ (sums to 1).
    pub smoothed: Vec<f64>,
    /// Rebalancing weights w, normalised so Σ P̃·w = 1.
    pub weights: Vec<f64>,
}

const FORMAT: &str = "rechroma-prior/1";

/// Smooths a distribution over the bins with `smoothing` and renormalises it to sum 1.
pub fn smooth(p: &[f64], smoothing: Smoothing, sigma: f64) -> Vec<f64> {
    let kernel = |q: usize, j: usize| -> f64 {
        let d2 = match smoothing {
            Smoothing::None => return if q == j { 1.0 } else { 0.0 },
            Smoothing::Index1d => (q as f64 - j as f64).powi(2),
            Smoothing::Ab2d => {
                let (cq, cj) = (bin_centres()[q], bin_centres()[j]);
                f64::from(cq[0] - cj[0]).powi(2) + f64::from(cq[1] - cj[1]).powi(2)
            }
        };
        (-d2 / (2.0 * sigma * sigma)).exp()
    };
    let s: Vec<f64> = (0..Q).map(|q| (0..Q).map(|j| p[j] * kernel(q, j)).sum()).collect();
    let total: f64 = s.iter().sum();
    s.into_iter().map(|v| v / total).collect()
}

/// Rebalancing weights w ∝ ((1 − λ)·P̃ + λ/Q)^(−α), normalised so Σ P̃·w = 1.
pub fn rebalance_weights(smoothed: &[f64], lambda: f64, alpha: f64) -> Vec<f64> {
    let raw: Vec<f64> = smoothed
        .iter()
        .map(|&p| ((1.0 - lambda) * p + lambda / Q as f64).powf(-alpha))
        .collect();
    let expected: f64 = raw.iter().zip(smoothed).map(|(w, p)| w * p).sum();
    raw.into_iter().map(|w| w / expected).collect()
}

impl Prior {
    /// Builds a prior from per-bin pixel counts.
    pub fn from_counts(
        counts: &[u64],
        images: u64,
        skipped_gray: u64,
        config: PriorConfig,
    ) -> Result<Self, PriorError> {
        if counts.len() != Q {
            return Err(PriorError::Config(format!(
                "{} counts given, {Q} expected",
                counts.len()
            )));
        }
        if !(config.sigma > 0.0 || config.smoothing == Smoothing::None) {
            return Err(PriorError::Config(format!("sigma must be > 0, got {}", config.sigma)));
        }
        if !(0.0..=1.0).contains(&config.lambda) || config.lambda == 0.0 && config.alpha != 0.0 {
            return Err(PriorError::Config(format!(
                "lambda must be in (0, 1], got {}",
                config.lambda
            )));
        }
        let pixels: u64 = counts.iter().sum();
        if pixels == 0 {
            return Err(PriorError::Empty { skipped: skipped_gray });
        }
        let empirical: Vec<f64> = counts.iter().map(|&c| c as f64 / pixels as f64).collect();
        let smoothed = smooth(&empirical, config.smoothing, config.sigma);
        let weights = rebalance_weights(&smoothed, config.lambda, config.alpha);
        Ok(Self {
            format: FORMAT.into(),
            config,
            images,
            skipped_gray,
            pixels,
            bins: bin_centres().to_vec(),
            counts: counts.to_vec(),
            empirical,
            smoothed,
            weights,
        })
    }

    /// The same counts with other smoothing / weighting parameters.
    pub fn with_config(&self, config: PriorConfig) -> Result<Self, PriorError> {
        Self::from_counts(&self.counts, self.images, self.skipped_gray, config)
    }

    /// Rebalancing weight of bin `q` (f32, as the loss uses it).
    pub fn weights_f32(&self) -> Vec<f32> {
        self.weights.iter().map(|&w| w as f32).collect()
    }

    /// Bins no counted pixel fell into.
    pub fn empty_bins(&self) -> usize {
        self.counts.iter().filter(|&&c| c == 0).count()
    }

    /// Writes the prior as JSON, atomically (a temporary file renamed over the target).
    pub fn save(&self, path: &Path) -> Result<(), PriorError> {
        let json = serde_json::to_vec_pretty(self).expect("a prior always serialises");
        crate::fsutil::write_atomic(path, &json).map_err(PriorError::Write)
    }

    /// Reads and validates a prior written by [`Prior::save`].
    pub fn load(path: &Path) -> Result<Self, PriorError> {
        let bytes = std::fs::read(path).map_err(|source| PriorError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&bytes, path)
    }

    /// Parses and validates the JSON of a prior file; `path` names it in errors.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self, PriorError> {
        let bad = |reason: String| PriorError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let prior: Prior = serde_json::from_slice(bytes).map_err(|source| PriorError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if prior.format != FORMAT {
            return Err(bad(format!("format is {:?}, expected {FORMAT:?}", prior.format)));
        }
        for (name, len) in [
            ("counts", prior.counts.len()),
            ("empirical", prior.empirical.len()),
            ("smoothed", prior.smoothed.len()),
            ("weights", prior.weights.len()),
            ("bins", prior.bins.len()),
        ] {
            if len != Q {
                return Err(bad(format!("{name} has {len} entries, expected {Q}")));
            }
        }
        if prior.bins != bin_centres() {
            return Err(bad("its bins are not the 313 bins of Zhang et al.".into()));
        }
        if prior
            .weights
            .iter()
            .chain(&prior.smoothed)
            .any(|v| !v.is_finite() || *v < 0.0)
        {
            return Err(bad("weights or probabilities are negative or not finite".into()));
        }
        Ok(prior)
    }
}
