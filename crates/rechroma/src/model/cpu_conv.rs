//! Convolutions for training on the CPU: on burn's `flex` backend with autodiff, a convolution's
//! forward and backward run here as im2col matrix products on the `gemm` crate.
//!
//! Why not burn's: burn-flex computes the weight gradient as a convolution of the input by the output
//! gradient, whose products have as many rows as the kernel has taps (9) and run far below the GEMM
//! rate, and the input gradient through a transposed convolution's loops. On the shipped recipe's
//! step (8 × 128², `rechroma bench --train-step`) its backward took 1.0 s of a 1.5 s step. Here each
//! image's three products have the long side as their inner dimension:
//! - forward `Y = W · col(X)`, `W` as `[c_out, c_in·k·k]`, `col(X)` as `[c_in·k·k, pixels]`;
//! - weight gradient `dW += dY · col(X)ᵀ` (and the bias's, `dY`'s row sums);
//! - input gradient `dX = col2im(Wᵀ · dY)`.
//!
//! `col(X)` is built for a band of output rows at a time ([`super::im2col::BAND_FLOATS`]), so it stays a few
//! megabytes at any photo size; a 1×1 stride-1 convolution uses the input itself. Images are rayon
//! tasks, each product runs on its task's thread.
//!
//! [`conv2d`] takes this path for tensors of burn's autodiff Flex backend (training on the CPU), f32,
//! ungrouped and undilated; anything else (inference, a GPU, depthwise convolutions) goes to burn's
//! own `Conv2d::forward`. Both are tested equal (`tests/train.rs`).

use super::im2col::Geometry;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Tensor, TensorData};
use std::borrow::Cow;

/// The autodiff Flex backend: training on the CPU.
type Ad = Autodiff<Flex>;

/// `conv.forward(x)`, through this module's products when `x` and the weights are tensors of
/// burn's autodiff CPU backend (see the module's documentation), through burn's otherwise.
///
/// # Shapes
/// `[B, c_in, H, W]` → `[B, c_out, H', W']`, as `Conv2d::forward`
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if conv.groups != 1 || conv.dilation != [1, 1] || x.dtype() != DType::F32 {
        return conv.forward(x);
    }
    let Ok(xa) = x.clone().try_into_primitive::<Ad>() else {
        return conv.forward(x);
    };
    let Ok(wa) = conv.weight.val().try_into_primitive::<Ad>() else {
        return conv.forward(x);
    };
    let ba = match conv.bias.as_ref().map(|b| b.val().try_into_primitive::<Ad>()) {
        Some(Ok(b)) => Some(b),
        Some(Err(_)) => return conv.forward(x),
        None => None,
    };
    let [n, c, h, w] = x.dims();
    let [o, _, kh, kw] = conv.weight.dims();
    let (pt, pb) = padding(&conv.padding, h, kh, conv.stride[0], |(t, _, b, _)| (t, b));
    let (pl, pr) = padding(&conv.padding, w, kw, conv.stride[1], |(_, l, _, r)| (l, r));
    let g = Geometry {
        n,
        c,
        h,
        w,
        o,
        kh,
        kw,
        sh: conv.stride[0],
        sw: conv.stride[1],
        pt,
        pl,
        ho: (h + pt + pb - kh) / conv.stride[0] + 1,
        wo: (w + pl + pr - kw) / conv.stride[1] + 1,
    };
    let (xf, wf) = (xa.primitive().clone(), wa.primitive().clone());
    let bias = ba.as_ref().map(|b| values(b.primitive()).into_owned());
    let y = FlexTensor::from_data(TensorData::new(
        g.forward(&values(&xf), &values(&wf), bias.as_deref()),
        [n, o, g.ho, g.wo],
    ));
    let state = State { x: xf, w: wf, g };
    match ba {
        Some(ba) => record([xa.node(), wa.node(), ba.node()], state, y),
        None => record([xa.node(), wa.node()], state, y),
    }
}

/// `y` as the output of a convolution on the autodiff graph (its backward recorded when an input is
/// tracked): the input, the weights and, if any, the bias.
fn record<const N: usize>(inputs: [NodeGuard; N], state: State, y: FlexTensor) -> Tensor<4> {
    let out = match ConvBackward
        .prepare::<NoCheckpointing>(inputs)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Tensor::from_primitive::<Ad>(out)
}

/// The (before, after) padding of one axis for burn's padding configuration: "same" as
/// TensorFlow and burn place it (an odd row or column after), explicit as given (`pick` takes the
/// axis's pair from (top, left, bottom, right)).
fn padding(
    config: &PaddingConfig2d,
    size: usize,
    k: usize,
    stride: usize,
    pick: impl Fn((usize, usize, usize, usize)) -> (usize, usize),
) -> (usize, usize) {
    match config {
        PaddingConfig2d::Valid => (0, 0),
        PaddingConfig2d::Same => {
            let out = size.div_ceil(stride);
            let total = ((out - 1) * stride + k).saturating_sub(size);
            (total / 2, total - total / 2)
        }
        PaddingConfig2d::Explicit(t, l, b, r) => pick((*t, *l, *b, *r)),
    }
}

/// A flex tensor's values in row-major order (borrowed when it is contiguous).
pub(super) fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(v) => Cow::Borrowed(v),
        None => Cow::Owned(t.to_contiguous().as_slice::<f32>().expect("contiguous").to_vec()),
    }
}

#[derive(Debug, Clone)]
struct State {
    x: FlexTensor,
    w: FlexTensor,
    g: Geometry,
}

#[derive(Debug)]
struct ConvBackward;

impl<const N: usize> Backward<Flex, N> for ConvBackward {
    type State = State;

    fn backward(self, ops: Ops<State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let State { x, w, g } = ops.state;
        let [node_x, node_w] = [&ops.parents[0], &ops.parents[1]];
        let node_b = ops.parents.get(2).and_then(|p| p.as_ref());
        let grads_of = g.backward(
            &values(&x),
            &values(&w),
            &values(&dy),
            node_x.is_some(),
            node_w.is_some() || node_b.is_some(),
        );
        let tensor = |v: Vec<f32>, shape: Vec<usize>| FlexTensor::from_data(TensorData::new(v, shape));
        if let (Some(node), Some(dx)) = (node_x, grads_of.dx) {
            grads.register::<Flex>(node.id, tensor(dx, vec![g.n, g.c, g.h, g.w]));
        }
        if let (Some(node), Some(dw)) = (node_w, grads_of.dw) {
            grads.register::<Flex>(node.id, tensor(dw, vec![g.o, g.c, g.kh, g.kw]));
        }
        if let (Some(node), Some(db)) = (node_b, grads_of.db) {
            grads.register::<Flex>(node.id, tensor(db, vec![g.o]));
        }
    }
}
