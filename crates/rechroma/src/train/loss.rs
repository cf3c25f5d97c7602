//! The MLEU losses (paper eqs. 3 and 4).
//!
//! - Regression: MSE between the tanh output and the target ab scaled to [−1, 1] (ab / 110).
//! - Classification: cross-entropy between the predicted distribution over the 313 bins and the
//!   soft-encoded target (5 nearest bins, Gaussian σ = 5), each pixel weighted by the rebalancing weight
//!   of its ground-truth bin (the bin nearest its true ab, i.e. the argmax of the soft target):
//!   L = (1 / HW) Σ_pixels w(q*) · (−Σ_q z_q log p̂_q).

use crate::color::norm;
use crate::data::ColorBatch;
use crate::engine::FrozenBackbone;
use crate::model::mleu::Mleu;
use crate::quantize::{Q, Quantizer};
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Mean squared error on ab / 110.
///
/// # Shapes
/// `pred`: `[B, 2, H, W]` (tanh output), `ab`: `[B, 2, H, W]` in Lab units → scalar `[1]`
pub fn regression_loss(pred: Tensor<4>, ab: Tensor<4>) -> Tensor<1> {
    let target = (ab / norm::AB_SIGNED_SCALE).clamp(-1.0, 1.0);
    (pred - target).powi_scalar(2).mean()
}

/// Per-pixel targets of the classification loss, built on the CPU from the true ab values. The soft
/// target is kept sparse: its k bins and weights per pixel (k = 5), not a dense 313-channel map.
#[derive(Debug, Clone)]
pub struct ClassTargets {
    /// The k bins of each pixel's soft encoding, `[B, k, H, W]`.
    pub bins: Tensor<4, Int>,
    /// Their weights (summing to 1 over k), `[B, k, H, W]`.
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
        let k = quantizer.config().k;
        assert_eq!(ab.len(), b * 2 * n, "ab must hold [B, 2, H, W] values");
        assert_eq!(weights.len(), Q, "one weight per bin");
        let mut bins = vec![0i64; b * k * n];
        let mut soft = vec![0f32; b * k * n];
        let mut pixel_weight = Vec::with_capacity(b * n);
        let (mut code_bins, mut code_w) = (vec![0u16; k], vec![0f32; k]);
        for i in 0..b {
            let (a_plane, b_plane) = ab[i * 2 * n..(i + 1) * 2 * n].split_at(n);
            for p in 0..n {
                quantizer.soft_encode_into(a_plane[p], b_plane[p], &mut code_bins, &mut code_w);
                for j in 0..k {
                    bins[(i * k + j) * n + p] = i64::from(code_bins[j]);
                    soft[(i * k + j) * n + p] = code_w[j];
                }
                // The nearest bin (the soft target's argmax) comes first.
                pixel_weight.push(weights[code_bins[0] as usize]);
            }
        }
        Self {
            bins: Tensor::from_data(TensorData::new(bins, [b, k, h, w]), device),
            soft: Tensor::from_data(TensorData::new(soft, [b, k, h, w]), device),
            weight: Tensor::from_data(TensorData::new(pixel_weight, [b, 1, h, w]), device),
        }
    }
}

/// Rebalanced cross-entropy (see the module docs), averaged over pixels.
///
/// # Shapes
/// `logits`: `[B, 313, H, W]` → scalar `[1]`
pub fn classification_loss(logits: Tensor<4>, targets: &ClassTargets) -> Tensor<1> {
    let log_p = burn::tensor::activation::log_softmax(logits, 1).gather(1, targets.bins.clone()); // [B, k, H, W]
    let ce = (targets.soft.clone() * log_p).sum_dim(1).neg(); // [B, 1, H, W]
    (ce * targets.weight.clone()).mean()
}

/// What the MLEU classification loss needs besides the batch.
pub struct ClassLossContext<'a> {
    /// The 313 bins (soft encoding of the targets).
    pub quantizer: &'a Quantizer,
    /// The prior's rebalancing weights (313).
    pub weights: &'a [f32],
}

/// The MLEU training loss of a batch for the model's head: regression, MSE; classification, rebalanced
/// cross-entropy (which needs `class`) against targets at the logits' resolution (ab average-pooled
/// by the class stride first); joint, MSE + `class_weight` · cross-entropy. `frozen`: the model's
/// frozen backbone compiled by the engine, which then computes its features (on the CPU).
///
/// # Shapes
/// batch L `[B, 1, S, S]`, ab `[B, 2, S, S]`, hints `[B, 3, S, S]` (for a hint-taking model) → scalar `[1]`
pub fn mleu_loss(
    model: &Mleu,
    batch: &ColorBatch,
    class: Option<&ClassLossContext>,
    class_weight: f32,
    frozen: Option<&FrozenBackbone>,
) -> Tensor<1> {
    // A frozen backbone's features carry no gradient: the engine computes them, when given.
    let features = frozen.map(|f| f.features(&batch.l));
    let out = model.forward_with_features(batch.l.clone(), batch.hints.clone(), features);
    let regression = out.ab.map(|ab| regression_loss(ab, batch.ab.clone()));
    let classification = out.logits.map(|logits| {
        let ctx = class.expect("the classification loss needs the quantizer and the prior's weights");
        let s = model.class_stride;
        let ab = match s {
            1 => batch.ab.clone(),
            _ => avg_pool2d(batch.ab.clone(), AvgPoolOptions::new([s, s]).with_stride([s, s])),
        };
        let [b, _, h, w] = ab.dims();
        let device = ab.device();
        let ab: Vec<f32> = ab.into_data().try_to_vec().expect("f32 ab");
        let targets = ClassTargets::new(&ab, [b, h, w], ctx.quantizer, ctx.weights, &device);
        classification_loss(logits, &targets)
    });
    match (regression, classification) {
        (Some(r), Some(c)) => r + c * class_weight,
        (Some(r), None) => r,
        (None, Some(c)) => c,
        (None, None) => unreachable!("every head has an output"),
    }
}
