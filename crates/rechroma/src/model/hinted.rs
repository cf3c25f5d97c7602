//! The colour-hint inputs of a hint-taking MLEU ([`super::mleu::Mleu::forward_hinted`]).
//!
//! Zhang et al. 2017 concatenate the hint planes (a, b, mask) with L at the network's input. Here the
//! hint weights of such a concatenation are separate zero-initialised convolutions, added after the
//! BatchNorm of the convolution they join (see [`conv_with_hints`]), so a model fine-tuned into a
//! hint-taking one starts as exactly the automatic model. The planes join:
//! - the first encoder conv (the U-Net's input, Zhang's place) and the last decoder block's fuse conv,
//!   whose skip is the U-Net's input (the colour at the hinted pixels themselves);
//! - the first conv of encoder blocks 1–4, pooled to their resolution ([`pooled_hints`]): ours, as the
//!   MLEU embeds its backbone at every encoder level. A hint then reaches the coarse levels, whose
//!   receptive fields cover whole objects, in one step instead of through four strided convolutions that
//!   were trained without hints — which a fine-tune of a few thousand CPU steps cannot teach.

use super::blocks::ConvBnAct;
use super::cpu_conv::conv2d;
use super::mleu::{EncoderBlock, Mleu};
use crate::hints::HINT_PLANES;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor};

/// A 3×3 conv from the hint planes, zero-initialised: a network given it computes what it computed
/// before until training moves the weights.
pub(crate) fn hint_conv(c_out: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([HINT_PLANES, c_out], [3, 3])
        .with_padding(PaddingConfig2d::Same)
        .with_bias(false)
        .with_initializer(Initializer::Zeros)
        .init(device)
}

/// `conv → BN (+ hint term) → activation`: the hint term is added after the BatchNorm, so the running
/// statistics stay those of the L path and a photo without hints is normalised exactly as before. In
/// inference BatchNorm is a per-channel affine map, so this is a conv over the concatenation [L, hints]
/// with the hint weights rescaled. `scale` multiplies the planes (see [`super::mleu::MleuConfig::hint_scale`]).
pub(crate) fn conv_with_hints(
    block: &ConvBnAct,
    x: Tensor<4>,
    hint: Option<(&Conv2d, &Tensor<4>)>,
    scale: f32,
) -> Tensor<4> {
    match hint {
        Some((conv, h)) => block
            .act
            .apply(block.normalized(conv2d(&block.conv, x)) + conv2d(conv, h.clone() * scale)),
        None => block.forward(x),
    }
}

/// The hint planes at stride `s`: per `s × s` cell, the mean revealed a and b (0 where nothing is
/// revealed) and whether anything is revealed (the mask's maximum).
///
/// # Shapes
/// `[B, 3, H, W]` → `[B, 3, H/s, W/s]`
pub fn pooled_hints(planes: Tensor<4>, s: usize) -> Tensor<4> {
    if s == 1 {
        return planes;
    }
    let ab = planes.clone().narrow(1, 0, 2);
    let mask = planes.narrow(1, 2, 1);
    let avg = AvgPoolOptions::new([s, s]).with_stride([s, s]);
    // ab is 0 where nothing is revealed, so mean(ab) / mean(mask) is the mean over revealed pixels.
    let revealed = avg_pool2d(mask.clone(), avg.clone()).clamp_min(1e-6);
    let ab = avg_pool2d(ab, avg) / revealed;
    let mask = max_pool2d(mask, MaxPoolOptions::new([s, s]).with_stride([s, s]));
    Tensor::cat(vec![ab, mask], 1)
}

impl Mleu {
    /// This network with hint inputs added (zero weights) if it has none: a fine-tune of an automatic
    /// model into a hint-taking one starts from exactly the automatic model.
    pub fn with_hint_inputs(mut self, device: &Device) -> Self {
        // `lazy_shape`: reading `val()` would draw the random initial weights the loaded ones replace
        // (a fifth of loading the shipped model).
        let width = |block: &EncoderBlock| block.conv1.conv.weight.lazy_shape()[0];
        if self.hint_in.is_none() {
            self.hint_in = Some(hint_conv(width(&self.encoder[0]), device));
        }
        if self.hint_down.is_empty() {
            self.hint_down = self.encoder[1..].iter().map(|b| hint_conv(width(b), device)).collect();
        }
        if self.hint_skip.is_none() && self.decoder.len() == 5 {
            self.hint_skip = Some(hint_conv(self.decoder[4].fuse_conv.conv.weight.lazy_shape()[0], device));
        }
        self
    }

    /// Whether the network takes hint planes.
    pub fn takes_hints(&self) -> bool {
        self.hint_in.is_some()
    }
}

impl Mleu {
    /// This network with every BatchNorm of the U-Net frozen (its scale, shift and running statistics
    /// kept; inference statistics used in training too), for a hint fine-tune: the hint terms are added
    /// after the BatchNorms they join, but the BatchNorms after them would otherwise learn statistics of
    /// hinted activations, which a photo without hints then meets with the wrong normalisation.
    pub fn freeze_batchnorms(mut self) -> Self {
        for block in self.unet_conv_bns_mut() {
            block.bn = block.bn.clone().freeze();
        }
        self
    }
}

impl Mleu {
    /// This network with everything frozen but its hint weights: a hint fine-tune that leaves the
    /// automatic model exactly as it was (every weight and statistic the same, so a photo without hints
    /// gets exactly the colours it got before).
    pub fn freeze_all_but_hints(self) -> Self {
        // Parameters share their (lazy) state with their clones, so the hint weights are frozen with the
        // rest and then made trainable again.
        let thaw = |c: Conv2d| Conv2d {
            weight: c.weight.set_require_grad(true),
            ..c
        };
        let mut model = self.freeze();
        model.hint_in = model.hint_in.take().map(thaw);
        model.hint_down = std::mem::take(&mut model.hint_down).into_iter().map(thaw).collect();
        model.hint_skip = model.hint_skip.take().map(thaw);
        model
    }
}
