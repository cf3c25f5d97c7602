//! Training: the losses, the step loop with its checkpoints ([`run`]), what it trains ([`trainee`]),
//! the moving average of the weights ([`ema`]) and validation ([`validate`]).

pub mod ema;
pub mod gan;
pub mod loss;
pub mod parallel;
pub mod run;
pub mod trainee;
pub mod validate;

use crate::data::ColorBatch;
use crate::model::mleu::Mleu;
use crate::quantize::Quantizer;
use burn::tensor::Tensor;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use loss::{ClassTargets, classification_loss, regression_loss};

/// What the MLEU classification loss needs besides the batch.
pub struct ClassLossContext<'a> {
    pub quantizer: &'a Quantizer,
    /// The prior's rebalancing weights (313).
    pub weights: &'a [f32],
}

/// Default weight of the classification term in the joint head's loss: the rebalanced cross-entropy
/// (≈ 2–5 nats) is ~100× the regression MSE on ab/110 (≈ 0.01–0.03), so 0.01 gives the two terms
/// similar sizes.
pub const DEFAULT_JOINT_CLASS_WEIGHT: f32 = 0.01;

/// The MLEU training loss of a batch for the model's head: regression, MSE; classification, rebalanced
/// cross-entropy (which needs `class`) against targets at the logits' resolution (ab average-pooled
/// by the class stride first); joint, MSE + `class_weight` · cross-entropy.
///
/// # Shapes
/// batch L `[B, 1, S, S]`, ab `[B, 2, S, S]` → scalar `[1]`
pub fn mleu_loss(model: &Mleu, batch: &ColorBatch, class: Option<&ClassLossContext>, class_weight: f32) -> Tensor<1> {
    let out = model.forward_heads(batch.l.clone());
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
