//! Data-parallel gradients on one machine: the batch is split into `n` shards, each replica of the
//! model computes its shard's loss and gradients on its own thread, and the gradients are averaged
//! (weighted by shard size), as one step of the whole batch would — except that BatchNorm normalises
//! each shard by its own statistics, as in multi-GPU training without synchronised BatchNorm.
//!
//! Why: burn's CPU backend keeps about 1.2 of 2 cores busy during a training step, so two shards on two
//! threads might fill the idle core. Measured with `rechroma bench` on 2 cores, it gains 8–10 % for the
//! regression and joint heads and nothing for the classification head (flex's large ops already use
//! both cores). burn has no data-parallel helper for a single CPU device; this is a thread per shard
//! with [`std::thread::scope`] and the gradients summed parameter by parameter.

use crate::data::ColorBatch;
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// The batch cut into at most `n` shards along the batch dimension, as even as possible.
pub fn shards(batch: &ColorBatch, n: usize) -> Vec<ColorBatch> {
    let b = batch.l.dims()[0];
    let n = n.clamp(1, b.max(1));
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let len = b / n + usize::from(i < b % n);
        out.push(ColorBatch {
            l: batch.l.clone().narrow(0, start, len),
            ab: batch.ab.clone().narrow(0, start, len),
            hints: batch.hints.clone().map(|h| h.narrow(0, start, len)),
        });
        start += len;
    }
    out
}

/// Adds `weight ×` the gradients of `other` into `acc`, parameter by parameter.
struct Accumulate<'a> {
    acc: &'a mut GradientsParams,
    other: GradientsParams,
    weight: f32,
    /// The weight of what `acc` already holds (applied once, the first time a parameter is seen).
    first_weight: f32,
}

impl ModuleVisitor for Accumulate<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let id: ParamId = param.id;
        let theirs = self.other.remove::<D>(id);
        let ours = self.acc.remove::<D>(id);
        let sum = match (ours, theirs) {
            (Some(a), Some(b)) => a * self.first_weight + b * self.weight,
            (Some(a), None) => a * self.first_weight,
            (None, Some(b)) => b * self.weight,
            (None, None) => return,
        };
        self.acc.register(id, sum);
    }
}

/// Loss values and gradients of `model` on `batch`, computed on `n` threads (one shard each) and
/// averaged with weights proportional to the shard sizes. `loss(model, shard)` must return the mean
/// loss of the shard (a scalar tensor). Returns the batch's mean loss and the averaged gradients.
pub fn gradients<M, F>(model: &M, batch: &ColorBatch, n: usize, loss: F) -> (f32, GradientsParams)
where
    M: Module + Send,
    F: Fn(&M, &ColorBatch) -> Tensor<1> + Sync,
{
    let total = batch.l.dims()[0] as f32;
    let parts = shards(batch, n);
    let one = |m: &M, shard: &ColorBatch| {
        let l = loss(m, shard);
        let value: f32 = l.clone().into_scalar();
        (
            value,
            GradientsParams::from_grads(l.backward(), m),
            shard.l.dims()[0] as f32,
        )
    };
    let mut results: Vec<(f32, GradientsParams, f32)> = if parts.len() == 1 {
        vec![one(model, &parts[0])]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .iter()
                .map(|shard| {
                    let replica = model.clone();
                    let one = &one;
                    s.spawn(move || one(&replica, shard))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a gradient thread panicked"))
                .collect()
        })
    };
    let (v0, mut grads, n0) = results.remove(0);
    let mut value = v0 * n0 / total;
    let mut first_weight = n0 / total;
    for (v, g, size) in results {
        value += v * size / total;
        let mut acc = Accumulate {
            acc: &mut grads,
            other: g,
            weight: size / total,
            first_weight,
        };
        model.visit(&mut acc);
        first_weight = 1.0;
    }
    (value, grads)
}
