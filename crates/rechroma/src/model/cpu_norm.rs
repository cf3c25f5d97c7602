//! BatchNorm and the activation after it for training on the CPU: on burn's `flex` backend with
//! autodiff, a batch-statistics BatchNorm and its clamp (ReLU, ReLU6) are one operation, forward and
//! backward.
//!
//! burn's `batch_norm_train` builds the statistics and the gradients out of generic tensor operations:
//! transposed copies of the activation (`swap_dims`) and a dozen passes in the backward, then the
//! activation's own mask and product. Here the forward is three passes over the activation (the
//! per-channel mean, the variance about it, then normalise, scale, shift and clamp into the output)
//! and the backward two (the per-channel sums of the masked gradient and of its product with x̂, then
//! the input gradient):
//!
//! g = dy·[lo < y < hi],  dβ = Σ g,  dγ = Σ g·x̂,  dx = γ/σ · (g − dβ/M − x̂·dγ/M)
//!
//! with x̂ = (x − μ)/σ, σ = √(var + ε), var the biased batch variance and M = N·H·W (burn's and
//! PyTorch's training BatchNorm). The running statistics are updated as burn's `BatchNorm` does.
//! Tested equal to burn's BatchNorm and activation (`tests/cpu_conv.rs`).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::BatchNorm;
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

type Ad = Autodiff<Flex>;

/// `clamp(bn(x), lo, hi)` with `range = Some((lo, hi))` (ReLU is `(0, ∞)`), `bn(x)` with `None`, for
/// a BatchNorm in training on burn's autodiff CPU backend; `Err(x)` (the input back) for anything
/// else, which the caller then runs through burn.
///
/// # Shapes
/// `[B, C, H, W]` → the same
pub fn batch_norm_train(bn: &BatchNorm, x: Tensor<4>, range: Option<(f32, f32)>) -> Result<Tensor<4>, Tensor<4>> {
    if !(x.device().is_autodiff() && bn.training.is_enabled()) || x.dtype() != DType::F32 {
        return Err(x);
    }
    let (Ok(xa), Ok(ga), Ok(ba)) = (
        x.clone().try_into_primitive::<Ad>(),
        bn.gamma.val().try_into_primitive::<Ad>(),
        bn.beta.val().try_into_primitive::<Ad>(),
    ) else {
        return Err(x);
    };
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let xf = xa.primitive().clone();
    let xv = super::cpu_conv::values(&xf);
    let planes = Planes { c, hw: h * w };
    let count = (n * h * w) as f64;
    let x3 = [&xv[..], &xv[..], &xv[..]];
    let mean: Vec<f64> = planes
        .channel_sums(x3, |_, x, _, _| (x, 0.0))
        .iter()
        .map(|s| s.0 / count)
        .collect();
    let var: Vec<f64> = planes
        .channel_sums(x3, |ch, x, _, _| ((x - mean[ch] as f32).powi(2), 0.0))
        .iter()
        .map(|s| s.0 / count)
        .collect();
    let inv: Vec<f32> = var.iter().map(|v| (1.0 / (v + bn.epsilon).sqrt()) as f32).collect();
    let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    let (gamma, beta) = (values_of(ga.primitive()), values_of(ba.primitive()));
    let (lo, hi) = range.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
    let mut y = vec![0.0f32; xv.len()];
    y.par_chunks_mut(planes.hw.max(1))
        .zip(xv.par_chunks(planes.hw.max(1)))
        .enumerate()
        .for_each(|(i, (y, x))| {
            let ch = i % c;
            let scale = gamma[ch] * inv[ch];
            let shift = beta[ch] - mean[ch] * scale;
            for (y, x) in y.iter_mut().zip(x) {
                *y = (x * scale + shift).clamp(lo, hi);
            }
        });
    drop(xv);
    let yf = FlexTensor::from_data(TensorData::new(y, [n, c, h, w]));
    let out = match NormBackward
        .prepare::<NoCheckpointing>([xa.node(), ga.node(), ba.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = State {
                x: xf,
                y: yf.clone(),
                gamma,
                mean: mean.clone(),
                inv,
                range: (lo, hi),
            };
            prep.finish(state, yf)
        }
        OpsKind::UnTracked(prep) => prep.finish(yf),
    };
    // The running statistics, as burn's BatchNorm updates them (momentum, the biased variance).
    let m = bn.momentum;
    let stat = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [c]), &device);
    let var: Vec<f32> = var.iter().map(|&v| v as f32).collect();
    let running_mean = bn
        .running_mean
        .value_sync()
        .to_device(&device)
        .mul_scalar(1.0 - m)
        .add(stat(mean).mul_scalar(m));
    let running_var = bn
        .running_var
        .value_sync()
        .to_device(&device)
        .mul_scalar(1.0 - m)
        .add(stat(var).mul_scalar(m));
    bn.running_mean.update(running_mean.detach());
    bn.running_var.update(running_var.detach());
    Ok(Tensor::from_primitive::<Ad>(out))
}

fn values_of(t: &FlexTensor) -> Vec<f32> {
    super::cpu_conv::values(t).into_owned()
}

/// The planes of a `[N, C, H, W]` activation: plane `i` is channel `i % c`.
#[derive(Debug, Clone, Copy)]
struct Planes {
    c: usize,
    hw: usize,
}

impl Planes {
    /// Per channel, the sums of `f`'s two values over its planes' elements of `a`, `b` and `c`
    /// (three activations of the same shape); channels in parallel.
    fn channel_sums(
        &self,
        [a, b, c]: [&[f32]; 3],
        f: impl Fn(usize, f32, f32, f32) -> (f32, f32) + Sync,
    ) -> Vec<(f64, f64)> {
        let planes = a.len() / (self.c * self.hw).max(1);
        (0..self.c)
            .into_par_iter()
            .map(|ch| {
                (0..planes).fold((0.0, 0.0), |(sa, sb), i| {
                    let r = (i * self.c + ch) * self.hw..(i * self.c + ch + 1) * self.hw;
                    let (da, db) = lanes([&a[r.clone()], &b[r.clone()], &c[r]], |x, y, z| f(ch, x, y, z));
                    (sa + da, sb + db)
                })
            })
            .collect()
    }
}

/// `Σ f(a, b, c)` over three slices of one length, both values, in 16 independent f32 lanes (so
/// that it vectorises) added up in f64.
fn lanes([a, b, c]: [&[f32]; 3], f: impl Fn(f32, f32, f32) -> (f32, f32)) -> (f64, f64) {
    let (mut u, mut v) = ([0f32; 16], [0f32; 16]);
    let (ca, cb, cc) = (a.chunks_exact(16), b.chunks_exact(16), c.chunks_exact(16));
    let rest = (ca.remainder(), cb.remainder(), cc.remainder());
    for ((x, y), z) in ca.zip(cb).zip(cc) {
        let (x, y, z): (&[f32; 16], &[f32; 16], &[f32; 16]) = (
            x.try_into().expect("16"),
            y.try_into().expect("16"),
            z.try_into().expect("16"),
        );
        for l in 0..16 {
            let (p, q) = f(x[l], y[l], z[l]);
            u[l] += p;
            v[l] += q;
        }
    }
    let mut sums = (
        u.iter().map(|&x| f64::from(x)).sum::<f64>(),
        v.iter().map(|&x| f64::from(x)).sum::<f64>(),
    );
    for ((&x, &y), &z) in rest.0.iter().zip(rest.1).zip(rest.2) {
        let (p, q) = f(x, y, z);
        sums.0 += f64::from(p);
        sums.1 += f64::from(q);
    }
    sums
}

#[derive(Debug, Clone)]
struct State {
    x: FlexTensor,
    y: FlexTensor,
    gamma: Vec<f32>,
    mean: Vec<f32>,
    inv: Vec<f32>,
    range: (f32, f32),
}

#[derive(Debug)]
struct NormBackward;

impl Backward<Flex, 3> for NormBackward {
    type State = State;

    fn backward(self, ops: Ops<State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let State {
            x,
            y,
            gamma,
            mean,
            inv,
            range: (lo, hi),
        } = ops.state;
        let shape = x.layout().shape();
        let [n, c, h, w] = [shape[0], shape[1], shape[2], shape[3]];
        let (xv, yv, dyv) = (
            super::cpu_conv::values(&x),
            super::cpu_conv::values(&y),
            super::cpu_conv::values(&dy),
        );
        let planes = Planes { c, hw: h * w };
        let count = (n * h * w) as f32;
        // g, the gradient through the clamp: none where it held the value.
        let g = |y: f32, dy: f32| if y > lo && y < hi { dy } else { 0.0 };
        let sums = planes.channel_sums([&dyv, &yv, &xv], |ch, dy, y, x| {
            let g = g(y, dy);
            (g, g * (x - mean[ch]) * inv[ch])
        });
        let dbeta: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
        let dgamma: Vec<f32> = sums.iter().map(|s| s.1 as f32).collect();
        let [node_x, node_gamma, node_beta] = ops.parents;
        if let Some(node) = node_x {
            let mut dx = vec![0.0f32; xv.len()];
            let hw = planes.hw.max(1);
            dx.par_chunks_mut(hw).enumerate().for_each(|(i, d)| {
                let ch = i % c;
                let scale = gamma[ch] * inv[ch];
                let (mb, mg) = (dbeta[ch] / count, dgamma[ch] / count);
                let r = i * hw..(i + 1) * hw;
                for (((d, &dy), &y), &x) in d.iter_mut().zip(&dyv[r.clone()]).zip(&yv[r.clone()]).zip(&xv[r]) {
                    *d = scale * (g(y, dy) - mb - (x - mean[ch]) * inv[ch] * mg);
                }
            });
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, [n, c, h, w])));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dgamma, [c])));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dbeta, [c])));
        }
    }
}
