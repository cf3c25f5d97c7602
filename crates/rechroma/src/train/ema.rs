//! An exponential moving average (EMA) of a model's weights, for evaluation and export.
//!
//! After every optimiser step, each float tensor of the averaged copy moves towards the trained one:
//! `ema ← d·ema + (1 − d)·θ`, with the decay warmed up as `d = min(decay, (1 + t) / (10 + t))` after
//! `t` steps (TensorFlow's `ExponentialMovingAverage` with `num_updates`), so the average is not
//! dominated by the random initial weights early in a run. BatchNorm's running statistics are averaged
//! like the weights. The average is what validation scores and what `model.safetensors` holds; training
//! itself goes on with the raw weights (Polyak averaging).
//!
//! burn has no EMA of its own; this is the textbook update written with a [`ModuleVisitor`] (read the
//! trained tensors) and a [`ModuleMapper`] (blend them into the copy). Tensors are paired by their
//! place in the module tree, not by [`burn::module::ParamId`]: a loaded BatchNorm running state gets a
//! fresh id, so after a resume the ids of the average and of the trained model no longer match (pairing
//! by id once froze the average's running statistics at the resume point while its weights moved on).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;
use std::collections::VecDeque;

/// The decay warm-up of step `t` (steps done before this update), capped at `decay`.
pub fn warmed_decay(decay: f64, t: u64) -> f64 {
    decay.min((1.0 + t as f64) / (10.0 + t as f64))
}

/// Reads every float tensor of a module (parameters and running states), flattened, in tree order.
struct Collect(VecDeque<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        // The average lives on the plain (non-autodiff) device: take the trained value off the graph.
        let t = if t.is_autodiff() { t.inner() } else { t };
        let n = t.shape().num_elements();
        self.0.push_back(t.reshape([n]));
    }
}

/// Moves every float tensor of the averaged copy towards the trained one at the same place.
struct Blend {
    current: VecDeque<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let current = self
            .current
            .pop_front()
            .expect("the average has the trained model's structure");
        let d = self.decay as f32;
        param.map(|ema| {
            let shape = ema.shape();
            assert_eq!(
                shape.num_elements(),
                current.shape().num_elements(),
                "the average has the trained model's structure"
            );
            let current = current.reshape(shape);
            // A weight that has not moved (a frozen one) stays bit-exact: d·x + (1 − d)·x is not always x
            // in f32, and a hints-only fine-tune must leave the automatic model exactly as it was.
            if ema.clone().equal(current.clone()).all().into_scalar::<bool>() {
                ema
            } else {
                ema * d + current * (1.0 - d)
            }
        })
    }
}

/// The averaged copy of a model and its decay.
#[derive(Debug, Clone)]
pub struct Ema<M> {
    /// The averaged weights (the trained model's structure; its ids may differ after a resume).
    pub model: M,
    /// The decay d of `ema ← d·ema + (1 − d)·θ` at full warm-up.
    pub decay: f64,
}

impl<M: Module> Ema<M> {
    /// Starts the average at `model`'s current weights. The average is kept on the plain device
    /// ([`Module::valid`]), outside the autodiff graph of the trained model.
    pub fn new(model: &M, decay: f64) -> Self {
        Self {
            model: model.valid(),
            decay,
        }
    }

    /// Blends in the trained weights after a step; `t` is the number of steps done before this one.
    pub fn update(&mut self, trained: &M, t: u64) {
        let mut collect = Collect(VecDeque::new());
        trained.visit(&mut collect);
        let mut blend = Blend {
            current: collect.0,
            decay: warmed_decay(self.decay, t),
        };
        self.model = self.model.clone().map(&mut blend);
    }
}
