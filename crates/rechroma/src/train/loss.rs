//! The MLEU losses (paper eqs. 3 and 4).
//!
//! - Regression: MSE between the tanh output and the target ab scaled to [−1, 1] (ab / 110).
//! - Classification: cross-entropy between the predicted distribution over the 313 bins and the
//!   soft-encoded target (5 nearest bins, Gaussian σ = 5), each pixel weighted by the rebalancing weight
//!   of its ground-truth bin (the bin nearest its true ab, i.e. the argmax of the soft target):
//!   L = (1 / HW) Σ_pixels w(q*) · (−Σ_q z_q log p̂_q).

use crate::color::norm;
use crate::quantize::{Q, Quantizer};
use burn::tensor::{Device, Tensor, TensorData};

/// Mean squared error on ab / 110.
///
/// # Shapes
/// `pred`: `[B, 2, H, W]` (tanh output), `ab`: `[B, 2, H, W]` in Lab units → scalar `[1]`
pub fn regression_loss(pred: Tensor<4>, ab: Tensor<4>) -> Tensor<1> {
    let target = (ab / norm::AB_SIGNED_SCALE).clamp(-1.0, 1.0);
    (pred - target).powi_scalar(2).mean()
}

/// Per-pixel targets of the classification loss, built on the CPU from the true ab values.
#[derive(Debug, Clone)]
pub struct ClassTargets {
    /// Soft-encoded targets, `[B, 313, H, W]`.
    pub soft: Tensor<4>,
    /// Rebalancing weight of each pixel's nearest bin, `[B, 1, H, W]`.
    pub weight: Tensor<4>,
}

impl ClassTargets {
    /// `ab`: planar a and b of `b` images of `h × w` (as a `[B, 2, H, W]` tensor's data, Lab units);
    /// `weights`: the 313 rebalancing weights of the prior.
    pub fn new(ab: &[f32], dims: [usize; 3], quantizer: &Quantizer, weights: &[f32], device: &Device) -> Self {
        let [b, h, w] = dims;
        let n = h * w;
        assert_eq!(ab.len(), b * 2 * n, "ab must hold [B, 2, H, W] values");
        assert_eq!(weights.len(), Q, "one weight per bin");
        let mut soft = Vec::with_capacity(b * Q * n);
        let mut pixel_weight = Vec::with_capacity(b * n);
        for i in 0..b {
            let (a_plane, b_plane) = ab[i * 2 * n..(i + 1) * 2 * n].split_at(n);
            soft.extend(quantizer.soft_encode_dense(a_plane, b_plane));
            pixel_weight.extend((0..n).map(|p| weights[quantizer.nearest(a_plane[p], b_plane[p])]));
        }
        Self {
            soft: Tensor::from_data(TensorData::new(soft, [b, Q, h, w]), device),
            weight: Tensor::from_data(TensorData::new(pixel_weight, [b, 1, h, w]), device),
        }
    }
}

/// Rebalanced cross-entropy (see the module docs), averaged over pixels.
///
/// # Shapes
/// `logits`: `[B, 313, H, W]` → scalar `[1]`
pub fn classification_loss(logits: Tensor<4>, targets: &ClassTargets) -> Tensor<1> {
    let log_p = burn::tensor::activation::log_softmax(logits, 1);
    let ce = (targets.soft.clone() * log_p).sum_dim(1).neg(); // [B, 1, H, W]
    (ce * targets.weight.clone()).mean()
}
