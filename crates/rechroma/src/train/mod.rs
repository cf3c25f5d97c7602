//! Training: losses (and, next, the loops, checkpoints and validation).

pub mod gan;
pub mod loss;
pub mod run;
pub mod trainee;
pub mod validate;

use crate::data::ColorBatch;
use crate::model::mleu::{Head, Mleu};
use crate::quantize::Quantizer;
use burn::tensor::Tensor;
use loss::{ClassTargets, classification_loss, regression_loss};

/// What the MLEU classification loss needs besides the batch.
pub struct ClassLossContext<'a> {
    pub quantizer: &'a Quantizer,
    /// The prior's rebalancing weights (313).
    pub weights: &'a [f32],
}

/// The MLEU training loss of a batch for the model's head (regression: MSE; classification: rebalanced
/// cross-entropy, which needs `class`).
///
/// # Shapes
/// batch L `[B, 1, S, S]`, ab `[B, 2, S, S]` → scalar `[1]`
pub fn mleu_loss(model: &Mleu, batch: &ColorBatch, class: Option<&ClassLossContext>) -> Tensor<1> {
    let out = model.forward(batch.l.clone());
    match model.head {
        Head::Regression => regression_loss(out, batch.ab.clone()),
        Head::Classification => {
            let ctx = class.expect("the classification loss needs the quantizer and the prior's weights");
            let [b, _, h, w] = batch.ab.dims();
            let ab: Vec<f32> = batch.ab.clone().into_data().try_to_vec().expect("f32 ab");
            let targets = ClassTargets::new(&ab, [b, h, w], ctx.quantizer, ctx.weights, &batch.ab.device());
            classification_loss(out, &targets)
        }
    }
}
