//! ChromaGAN's critic: a PatchGAN on (L, ab), and the exact gradient of its score with respect to ab,
//! written out so the WGAN-GP penalty can be trained with first-order autodiff.
//!
//! # Layers (authors' Keras code)
//! concat(L/100, (ab+128)/255) → 4×4 convs 64, 128, 256 (stride 2), 512, 1 (stride 1), each but the last
//! followed by LeakyReLU (slope 0.3, Keras' default); TensorFlow "same" padding. At 224² the output is
//! 28×28 patch scores. No normalisation layers (a WGAN-GP critic must not use BatchNorm).
//!
//! # Why the input gradient is written by hand
//! burn 0.22 differentiates to first order only (`burn-autodiff`'s docs: "Only first-order derivatives
//! are supported"; `Device::autodiff()` on an autodiff device does not nest, and `Tensor::grad` returns a
//! tensor detached from the graph). The gradient penalty needs ∂/∂θ of ‖∇ₓD(x)‖, a second derivative.
//! [`Critic::input_gradient`] computes ∇ₓD as a graph of ordinary tracked operations — each convolution's
//! vector–Jacobian product is the transposed convolution with the *same* weight tensor, each LeakyReLU's is
//! a multiplication by its (piecewise-constant) slope mask — so backpropagating a loss on it reaches the
//! critic's weights exactly as double backward would. A test checks it against finite differences.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::leaky_relu;
use burn::tensor::module::conv_transpose2d;
use burn::tensor::ops::ConvTransposeOptions;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Critic architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriticConfig {
    /// Output channels of the 4×4 convolutions before the final 1-channel one. Paper: 64, 128, 256, 512.
    pub widths: [usize; 4],
    /// LeakyReLU negative slope. Keras' default, which the authors use: 0.3.
    pub slope: f64,
}

impl Default for CriticConfig {
    fn default() -> Self {
        Self {
            widths: [64, 128, 256, 512],
            slope: 0.3,
        }
    }
}

/// Strides of the 5 convolutions.
const STRIDES: [usize; 5] = [2, 2, 2, 1, 1];
const KERNEL: usize = 4;

/// TensorFlow "same" padding of a 4×4 convolution on an even-sized input: (before, after).
fn same_padding(stride: usize) -> (usize, usize) {
    let total = KERNEL - stride; // (⌈n/s⌉ − 1)·s + k − n for n divisible by s
    (total / 2, total - total / 2)
}

impl CriticConfig {
    /// A critic with random weights.
    pub fn init(&self, device: &Device) -> Critic {
        let mut c_in = 3;
        let mut convs = Vec::new();
        for (i, &c_out) in self.widths.iter().chain(&[1]).enumerate() {
            let (a, b) = same_padding(STRIDES[i]);
            convs.push(
                Conv2dConfig::new([c_in, c_out], [KERNEL, KERNEL])
                    .with_stride([STRIDES[i]; 2])
                    .with_padding(PaddingConfig2d::Explicit(a, a, b, b))
                    .init(device),
            );
            c_in = c_out;
        }
        Critic {
            convs,
            slope: self.slope,
        }
    }
}

/// The PatchGAN critic (see the module docs).
#[derive(Module, Debug)]
pub struct Critic {
    /// The 5 convolutions 4×4: `widths`, then the 1-channel patch score.
    pub convs: Vec<Conv2d>,
    /// LeakyReLU negative slope.
    #[module(skip)]
    pub slope: f64,
}

impl Critic {
    fn input(l: Tensor<4>, ab_unit: Tensor<4>) -> Tensor<4> {
        Tensor::cat(vec![l / crate::color::norm::L_RANGE, ab_unit], 1)
    }

    /// Pre-activations of every layer (the last one is the patch score map).
    fn pre_activations(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut out = Vec::with_capacity(self.convs.len());
        let mut h = x;
        for (i, conv) in self.convs.iter().enumerate() {
            let p = conv.forward(h);
            h = if i + 1 < self.convs.len() {
                leaky_relu(p.clone(), self.slope)
            } else {
                p.clone()
            };
            out.push(p);
        }
        out
    }

    /// Patch scores.
    ///
    /// # Shapes
    /// `l`: `[B, 1, H, W]` (Lab units), `ab_unit`: `[B, 2, H, W]` as (ab+128)/255, H and W multiples of 8
    /// → `[B, 1, H/8, W/8]`
    pub fn forward(&self, l: Tensor<4>, ab_unit: Tensor<4>) -> Tensor<4> {
        self.pre_activations(Self::input(l, ab_unit)).pop().expect("5 layers")
    }

    /// ∇_ab of each sample's summed patch scores (what Keras' `K.gradients(y_pred, x)` differentiates),
    /// as a graph of tracked operations: a loss on it backpropagates into the critic's weights.
    ///
    /// # Shapes
    /// `l`: `[B, 1, H, W]`, `ab_unit`: `[B, 2, H, W]` → `[B, 2, H, W]`
    pub fn input_gradient(&self, l: Tensor<4>, ab_unit: Tensor<4>) -> Tensor<4> {
        let x = Self::input(l, ab_unit);
        let [_, _, h, w] = x.dims();
        // Input sizes of every layer, to undo each layer's padding.
        let pre = self.pre_activations(x);
        let mut sizes = vec![(h, w)];
        for p in &pre[..pre.len() - 1] {
            sizes.push((p.dims()[2], p.dims()[3]));
        }
        let last = pre.last().expect("5 layers");
        let mut g = Tensor::ones(last.dims(), &last.device());
        for i in (0..self.convs.len()).rev() {
            if i + 1 < self.convs.len() {
                // LeakyReLU' is 1 above zero and `slope` below: a constant mask.
                let mask = pre[i].clone().detach().greater_elem(0.0).float() * (1.0 - self.slope) + self.slope;
                g = g * mask;
            }
            let (a, b) = same_padding(STRIDES[i]);
            let (ih, iw) = sizes[i];
            // The transposed convolution (no padding) maps back onto the padded input; crop the padding.
            let s = STRIDES[i];
            let [_, _, oh, ow] = g.dims();
            let out_pad = |n: usize, o: usize| n + a + b - ((o - 1) * s + KERNEL);
            let options = ConvTransposeOptions::new([s, s], [0, 0], [out_pad(ih, oh), out_pad(iw, ow)], [1, 1], 1);
            g = conv_transpose2d(g, self.convs[i].weight.val(), None, options);
            let [gb, gc, _, _] = g.dims();
            g = g.slice([0..gb, 0..gc, a..a + ih, a..a + iw]);
        }
        let [bsz, _, _, _] = g.dims();
        // Only ab is differentiated (L is given); the chain rule through ab/1 is the identity since the
        // network sees ab_unit directly.
        g.slice([0..bsz, 1..3, 0..h, 0..w])
    }
}
