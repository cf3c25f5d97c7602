//! The ab colour space quantized into the 313 in-gamut bins of Zhang et al. 2016 ("Colorful Image
//! Colorization", `pts_in_hull`), soft encoding of ab values over those bins, the class prior with its
//! rebalancing weights ([`prior`]), and decoding a distribution over bins back to ab ([`decode`]).

pub mod decode;
pub mod prior;

use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

pub use decode::{DecodeConfig, Decoding, Gamut, decode_distribution};
pub use prior::{Prior, PriorAccumulator, PriorConfig, PriorError, Smoothing};

/// Number of bins.
pub const Q: usize = 313;
/// Spacing of the bin grid in ab units.
pub const GRID: f32 = 10.0;
/// Index of the neutral bin (a, b) = (0, 0).
pub const NEUTRAL_BIN: usize = 120;

/// The published set, one row per a value: (a, lowest b, highest b); the kept b values are contiguous
/// with step [`GRID`]. Sorted by (a, b), which is the bin order.
const HULL: [(i16, i16, i16); 20] = [
    (-90, 50, 90),
    (-80, 20, 90),
    (-70, 0, 90),
    (-60, -20, 90),
    (-50, -30, 100),
    (-40, -40, 100),
    (-30, -50, 100),
    (-20, -50, 100),
    (-10, -60, 100),
    (0, -70, 100),
    (10, -80, 90),
    (20, -80, 90),
    (30, -90, 90),
    (40, -100, 90),
    (50, -100, 80),
    (60, -110, 80),
    (70, -110, 80),
    (80, -110, 70),
    (90, -110, 70),
    (100, -90, 0),
];

static CENTRES: LazyLock<Vec<[f32; 2]>> = LazyLock::new(|| {
    let mut v = Vec::with_capacity(Q);
    for (a, lo, hi) in HULL {
        for b in (lo..=hi).step_by(GRID as usize) {
            v.push([a as f32, b as f32]);
        }
    }
    assert_eq!(v.len(), Q, "the hull table must list {Q} bins");
    v
});

/// The 313 bin centres (a, b), sorted by (a, b).
pub fn bin_centres() -> &'static [[f32; 2]] {
    &CENTRES
}

/// Soft-encoding parameters (Zhang et al. 2016, §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SoftEncodeConfig {
    /// Number of nearest bins that share a pixel's mass. Paper default: 5.
    pub k: usize,
    /// Standard deviation of the Gaussian over the distance to each bin, in ab units. Paper default: 5.
    pub sigma: f32,
}

impl Default for SoftEncodeConfig {
    fn default() -> Self {
        Self { k: 5, sigma: 5.0 }
    }
}

/// Half-width of the ab window the lookup grid covers; values outside are clamped onto it
/// (every sRGB colour has |a|, |b| < 110).
const EXTENT: f32 = 130.0;
/// Side of a lookup cell in ab units.
const CELL: f32 = 2.0;
const CELLS: usize = (2.0 * EXTENT / CELL) as usize;

/// The quantizer: nearest-bin lookup and soft encoding in O(1) per pixel.
///
/// For each 2×2 cell of a grid over ab ∈ [−130, 130]², it keeps the few bins that can be among the k
/// nearest of *any* point of the cell: if c is the cell centre, r its half-diagonal and d_k(c) the distance
/// from c to its k-th nearest bin, a point p of the cell has d_k(p) ≤ d_k(c) + r, so its k nearest bins lie
/// within d_k(c) + 2r of c. A query sorts only those candidates, so the result equals a brute-force search.
#[derive(Debug, Clone)]
pub struct Quantizer {
    config: SoftEncodeConfig,
    /// Candidate lists, concatenated; `offsets[c]..offsets[c + 1]` belong to cell c.
    candidates: Vec<u16>,
    offsets: Vec<u32>,
}

/// A pixel's soft encoding: bins, nearest first, and their weights (summing to 1).
#[derive(Debug, Clone, PartialEq)]
pub struct SoftCode {
    /// Bin indices, nearest first (k of them).
    pub bins: Vec<u16>,
    /// Gaussian weights of those bins, summing to 1.
    pub weights: Vec<f32>,
}

fn dist2(p: [f32; 2], c: [f32; 2]) -> f32 {
    (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)
}

impl Quantizer {
    /// Builds the lookup grid for `config` (k ≥ 1, σ > 0; k is capped at [`Q`]).
    pub fn new(config: SoftEncodeConfig) -> Self {
        let k = config.k.clamp(1, Q);
        let config = SoftEncodeConfig { k, ..config };
        let centres = bin_centres();
        let r = CELL * std::f32::consts::SQRT_2 / 2.0;
        let mut candidates = Vec::new();
        let mut offsets = Vec::with_capacity(CELLS * CELLS + 1);
        let mut d: Vec<(f32, u16)> = Vec::with_capacity(Q);
        for ia in 0..CELLS {
            for ib in 0..CELLS {
                offsets.push(candidates.len() as u32);
                let c = [-EXTENT + (ia as f32 + 0.5) * CELL, -EXTENT + (ib as f32 + 0.5) * CELL];
                d.clear();
                d.extend(centres.iter().enumerate().map(|(i, &q)| (dist2(c, q).sqrt(), i as u16)));
                let kth = d.select_nth_unstable_by(k - 1, |x, y| x.0.total_cmp(&y.0)).1.0;
                // Small slack so float rounding never drops a bin that belongs.
                let reach = kth + 2.0 * r + 1e-3;
                candidates.extend(d.iter().filter(|(dist, _)| *dist <= reach).map(|&(_, i)| i));
            }
        }
        offsets.push(candidates.len() as u32);
        Self {
            config,
            candidates,
            offsets,
        }
    }

    /// The parameters in force (k after capping).
    pub fn config(&self) -> SoftEncodeConfig {
        self.config
    }

    fn cell_candidates(&self, a: f32, b: f32) -> &[u16] {
        let cell = |v: f32| (((v.clamp(-EXTENT, EXTENT - 1e-3) + EXTENT) / CELL) as usize).min(CELLS - 1);
        let c = cell(a) * CELLS + cell(b);
        &self.candidates[self.offsets[c] as usize..self.offsets[c + 1] as usize]
    }

    /// Fills `out` with the `out.len()` nearest bins of (a, b), nearest first; ties go to the lower index.
    /// Values outside [−130, 130] are clamped onto that square first.
    fn nearest_into(&self, a: f32, b: f32, out: &mut [(f32, u16)]) {
        let p = [a.clamp(-EXTENT, EXTENT), b.clamp(-EXTENT, EXTENT)];
        let n = out.len();
        let less = |x: (f32, u16), y: (f32, u16)| x.0 < y.0 || (x.0 == y.0 && x.1 < y.1);
        let mut filled = 0;
        for &i in self.cell_candidates(a, b) {
            let item = (dist2(p, bin_centres()[i as usize]), i);
            if filled == n && !less(item, out[n - 1]) {
                continue;
            }
            // Insertion into a short sorted list (k is small); when full, the last entry falls off.
            let mut pos = filled.min(n - 1);
            while pos > 0 && less(item, out[pos - 1]) {
                out[pos] = out[pos - 1];
                pos -= 1;
            }
            out[pos] = item;
            filled = (filled + 1).min(n);
        }
        debug_assert_eq!(filled, n);
    }

    /// Index of the bin nearest to (a, b).
    pub fn nearest(&self, a: f32, b: f32) -> usize {
        let mut out = [(0.0, 0u16)];
        self.nearest_into(a, b, &mut out);
        out[0].1 as usize
    }

    /// Soft encoding of one ab value: the k nearest bins weighted by exp(−d²/2σ²), normalised to sum 1.
    pub fn soft_encode(&self, a: f32, b: f32) -> SoftCode {
        let k = self.config.k;
        let mut bins = vec![0u16; k];
        let mut weights = vec![0f32; k];
        self.soft_encode_into(a, b, &mut bins, &mut weights);
        SoftCode { bins, weights }
    }

    /// Allocation-free [`Self::soft_encode`]: `bins` and `weights` must have length k.
    pub fn soft_encode_into(&self, a: f32, b: f32, bins: &mut [u16], weights: &mut [f32]) {
        let k = self.config.k;
        assert!(
            bins.len() == k && weights.len() == k,
            "soft_encode_into needs slices of length k = {k}"
        );
        let mut near = [(0f32, 0u16); 32];
        let near: &mut [(f32, u16)] = if k <= 32 {
            &mut near[..k]
        } else {
            &mut vec![(0.0, 0); k]
        };
        self.nearest_into(a, b, near);
        let two_s2 = 2.0 * self.config.sigma * self.config.sigma;
        // Subtract the smallest distance before exponentiating: far-out values (d ≈ 100) would underflow.
        let d0 = near[0].0;
        let mut sum = 0.0;
        for (j, &(d2, i)) in near.iter().enumerate() {
            bins[j] = i;
            weights[j] = (-(d2 - d0) / two_s2).exp();
            sum += weights[j];
        }
        weights.iter_mut().for_each(|w| *w /= sum);
    }

    /// Dense soft encoding of planar a and b planes into a `[Q, pixels]` row-major buffer (the target
    /// layout of the classification loss: bin-major, like a `[313, H, W]` tensor).
    pub fn soft_encode_dense(&self, a: &[f32], b: &[f32]) -> Vec<f32> {
        let n = a.len();
        assert_eq!(n, b.len(), "a and b planes must have the same length");
        let k = self.config.k;
        let mut out = vec![0f32; Q * n];
        let (mut bins, mut w) = (vec![0u16; k], vec![0f32; k]);
        for p in 0..n {
            self.soft_encode_into(a[p], b[p], &mut bins, &mut w);
            for j in 0..k {
                out[bins[j] as usize * n + p] = w[j];
            }
        }
        out
    }
}

impl Default for Quantizer {
    fn default() -> Self {
        Self::new(SoftEncodeConfig::default())
    }
}
