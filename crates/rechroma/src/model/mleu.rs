//! MLEU: the Multi-Level Embedding U-Net (Nguyen-Quynh, Do, Kim 2020).
//!
//! L (Lab units) → a U-Net of 5 encoder blocks (conv-BN-ReLU, the block's last conv with stride 2 instead
//! of max-pooling) and 5 decoder blocks (upsample ×2, conv-BN-ReLU, concatenation with the skip of the same
//! resolution, conv-BN-ReLU) → a final 1×1 conv: 2 filters + tanh (regression, ab/110 ∈ [−1, 1]) or 313
//! filters (classification logits over the ab bins; softmax is applied by the loss and the decoder).
//!
//! Two options beyond the paper (defaults keep the paper's network):
//! - [`MleuConfig::class_stride`] 4 predicts the 313-bin distribution at a quarter of the resolution,
//!   from the decoder's stride-4 output, as Zhang et al. do (their 56² output for 224² inputs): a
//!   classification-only network then has 3 decoder blocks instead of 5, and the 313-channel logits
//!   and their loss cost 16× less. The decoded ab is upsampled bilinearly.
//! - [`Head::Joint`] has both heads on one U-Net: the regression conv at full resolution and the
//!   classification conv at the class stride, trained on a weighted sum of the two losses.
//!
//! **Multi-level embedding.** A pretrained backbone ([`Backbone`](super::backbone::Backbone): EfficientNet-Lite0 or VGG16) sees the
//! same gray photo;
//! its feature map at stride 2^(i+1) has exactly the resolution of encoder block i's output. It is
//! projected by a 1×1 conv-BN-ReLU to half the block's width and *concatenated* to the block's output, so
//! the skip connection and the next block both receive it. Concatenation (rather than addition) keeps the
//! U-Net's own low-level features intact and lets the following convs weigh the semantic ones; the
//! projection keeps the deep backbone maps (112, 320 channels) from dominating the narrow encoder.
//! The backbone is frozen by default (its BatchNorm then uses its ImageNet statistics).

use super::backbone::{BackboneConfig, EmbedsBackbone, efficientnet_features, vgg_features};
use super::blocks::{Act, ConvBnAct};
use super::cpu_conv::conv2d;
use super::efficientnet::{EfficientNet, EfficientNetConfig};
use super::hinted::{conv_with_hints, pooled_hints};
use super::vgg::Vgg16;
use crate::quantize::Q;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// The output head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Head {
    /// 2 channels, tanh: ab / 110 ∈ [−1, 1], trained with MSE.
    Regression,
    /// 313 channels: logits over the ab bins, trained with rebalanced cross-entropy.
    Classification,
    /// Both: the regression conv at full resolution and the classification conv at the class stride.
    Joint,
}

impl Head {
    /// Channels of the full-resolution output conv (`out`).
    pub fn channels(self) -> usize {
        match self {
            Head::Regression | Head::Joint => 2,
            Head::Classification => Q,
        }
    }

    /// Whether the network predicts ab directly (regression or joint).
    pub fn regresses(self) -> bool {
        matches!(self, Head::Regression | Head::Joint)
    }

    /// Whether the network predicts a distribution over the bins (classification or joint).
    pub fn classifies(self) -> bool {
        matches!(self, Head::Classification | Head::Joint)
    }
}

/// What [`Mleu::forward_heads`] returns.
pub struct HeadOutputs {
    /// ab / 110 (tanh), `[B, 2, H, W]`, for regression and joint heads.
    pub ab: Option<Tensor<4>>,
    /// Logits over the 313 bins, `[B, 313, H/s, W/s]` with s the class stride, for classification and
    /// joint heads.
    pub logits: Option<Tensor<4>>,
}

fn default_class_stride() -> usize {
    1
}

/// MLEU architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MleuConfig {
    /// Output channels of the 5 encoder blocks (the decoder mirrors them).
    pub widths: [usize; 5],
    /// Which output head(s) the network has.
    pub head: Head,
    /// The embedded backbone; `None` gives a plain U-Net (an ablation).
    pub backbone: Option<BackboneConfig>,
    /// Train the backbone too (default false: frozen).
    pub finetune_backbone: bool,
    /// Resolution divisor of the classification output: 1 (the paper's full resolution) or 4
    /// (Zhang et al.'s quarter resolution).
    #[serde(default = "default_class_stride")]
    pub class_stride: usize,
    /// Whether the network takes colour hints (Zhang et al. 2017): three planes (a/110, b/110, mask; see
    /// [`crate::hints`]) beside L at the U-Net's input. Absent in configs of format version 1: false.
    #[serde(default)]
    pub hints: bool,
    /// Scale of the hint planes inside the network: the hint weights start at zero, and Adam moves every
    /// weight by about the learning rate a step, so a larger scale lets a short fine-tune give hints
    /// their weight (an effective learning-rate multiplier for the hint weights). Ours.
    #[serde(default = "default_hint_scale")]
    pub hint_scale: f32,
}

/// The default [`MleuConfig::hint_scale`].
pub const DEFAULT_HINT_SCALE: f32 = 10.0;

fn default_hint_scale() -> f32 {
    DEFAULT_HINT_SCALE
}

/// Input sides must be multiples of this (five stride-2 stages).
pub const SIZE_MULTIPLE: usize = 32;

impl MleuConfig {
    /// The paper's U-Net widths (64 … 512) on EfficientNet-Lite0.
    pub fn paper(head: Head) -> Self {
        Self {
            widths: [64, 128, 256, 512, 512],
            head,
            backbone: Some(BackboneConfig::EfficientNet(EfficientNetConfig::lite0())),
            finetune_backbone: false,
            class_stride: 1,
            hints: false,
            hint_scale: default_hint_scale(),
        }
    }

    /// Decoder blocks the network needs: 5, or 3 for a classification-only head at stride 4.
    fn decoder_blocks(&self) -> usize {
        match (self.head, self.class_stride) {
            (Head::Classification, 4) => 3,
            _ => 5,
        }
    }

    /// A network with random weights (the backbone, if any, frozen unless `finetune_backbone`).
    pub fn init(&self, device: &Device) -> Mleu {
        assert!(
            matches!(self.class_stride, 1 | 4),
            "class_stride must be 1 or 4, not {}",
            self.class_stride
        );
        let w = self.widths;
        let proj: Vec<usize> = w.iter().map(|&c| (c / 2).max(1)).collect();
        let feat = self.backbone.as_ref().map(|b| b.feature_channels());
        let mut encoder = Vec::new();
        let mut embed = Vec::new();
        let mut c_in = 1;
        let mut skips = Vec::new();
        for i in 0..5 {
            encoder.push(EncoderBlock {
                conv1: ConvBnAct::new(c_in, w[i], 3, 1, 1, 1e-5, Act::Relu, device),
                conv2: ConvBnAct::new(w[i], w[i], 3, 2, 1, 1e-5, Act::Relu, device),
            });
            c_in = w[i];
            if let Some(f) = &feat {
                embed.push(ConvBnAct::new(f[i], proj[i], 1, 1, 1, 1e-5, Act::Relu, device));
                c_in += proj[i];
            }
            skips.push(c_in);
        }
        // Decoder j upsamples to the resolution of encoder output 3 − j (j < 4) or of the input (j = 4).
        let dec_widths = [w[3], w[2], w[1], w[0], w[0]];
        let mut decoder = Vec::new();
        let mut widths_after = Vec::new();
        for (j, &c_out) in dec_widths.iter().enumerate().take(self.decoder_blocks()) {
            let skip = if j < 4 { skips[3 - j] } else { 1 };
            decoder.push(DecoderBlock {
                up_conv: ConvBnAct::new(c_in, c_out, 3, 1, 1, 1e-5, Act::Relu, device),
                fuse_conv: ConvBnAct::new(c_out + skip, c_out, 3, 1, 1, 1e-5, Act::Relu, device),
            });
            c_in = c_out;
            widths_after.push(c_out);
        }
        // A classification-only stride-4 network ends at stride 4: its `out` is the class conv.
        let out_channels = match (self.head, self.class_stride) {
            (Head::Classification, _) => Q,
            _ => self.head.channels(),
        };
        let out = Conv2dConfig::new([c_in, out_channels], [1, 1]).init(device);
        let class_out = (self.head == Head::Joint).then(|| {
            let c = if self.class_stride == 4 { widths_after[2] } else { c_in };
            Conv2dConfig::new([c, Q], [1, 1]).init(device)
        });
        let mut model = Mleu {
            encoder,
            embed,
            decoder,
            out,
            class_out,
            backbone: None,
            vgg: None,
            head: self.head,
            class_stride: self.class_stride,
            hint_in: None,
            hint_down: Vec::new(),
            hint_skip: None,
            hint_scale: self.hint_scale,
        };
        if self.hints {
            model = model.with_hint_inputs(device);
        }
        if let Some(b) = &self.backbone {
            model.set_backbone(b.init(device), self.finetune_backbone);
        }
        model
    }
}

/// An encoder block: two 3×3 conv-BN-ReLU, the second with stride 2.
#[derive(Module, Debug)]
pub struct EncoderBlock {
    /// The block's first conv, 3×3 stride 1.
    pub conv1: ConvBnAct,
    /// The block's last conv, stride 2 (replaces max-pooling).
    pub conv2: ConvBnAct,
}

/// A decoder block: upsample ×2, conv-BN-ReLU, concatenation with the skip, conv-BN-ReLU.
#[derive(Module, Debug)]
pub struct DecoderBlock {
    /// 3×3 conv after the ×2 upsampling.
    pub up_conv: ConvBnAct,
    /// 3×3 conv over the upsampled features concatenated with the skip.
    pub fuse_conv: ConvBnAct,
}

/// The MLEU network (see the module docs).
#[derive(Module, Debug)]
pub struct Mleu {
    /// The 5 encoder blocks.
    pub encoder: Vec<EncoderBlock>,
    /// 1×1 projections of the backbone features, one per encoder block (empty without a backbone).
    pub embed: Vec<ConvBnAct>,
    /// The decoder blocks: 5, or 3 for a classification-only head at class stride 4.
    pub decoder: Vec<DecoderBlock>,
    /// The last 1×1 conv: regression (2) or, for a classification-only head, the 313 logits.
    pub out: Conv2d,
    /// The joint head's classification conv (313 logits at the class stride).
    pub class_out: Option<Conv2d>,
    /// The EfficientNet-Lite backbone, if that is the embedded one.
    pub backbone: Option<EfficientNet>,
    /// The VGG16 backbone, if that is the embedded one.
    pub vgg: Option<Vgg16>,
    /// Which output head(s) the network has.
    #[module(skip)]
    pub head: Head,
    /// Resolution divisor of the classification logits (1 or 4).
    #[module(skip)]
    pub class_stride: usize,
    /// The hint planes' weights in the first encoder conv (3 → widths[0], 3×3): the part of a conv over
    /// [L, hints] that sees the hints, added after the L part's BatchNorm (see [`Mleu::forward_hinted`]).
    pub hint_in: Option<Conv2d>,
    /// The pooled hint planes' weights in the first conv of encoder blocks 1–4 (see
    /// [`super::hinted`]).
    pub hint_down: Vec<Conv2d>,
    /// The hint planes' weights in the last decoder block's fuse conv, whose skip is the U-Net's input.
    pub hint_skip: Option<Conv2d>,
    /// Scale of the hint planes ([`MleuConfig::hint_scale`]).
    #[module(skip)]
    pub hint_scale: f32,
}

/// Input size errors.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("MLEU needs input sides that are multiples of {SIZE_MULTIPLE}, got {height}×{width}")]
pub struct SizeError {
    /// Input height in pixels.
    pub height: usize,
    /// Input width in pixels.
    pub width: usize,
}

/// Checks that a `height × width` input fits the network.
pub fn check_size(height: usize, width: usize) -> Result<(), SizeError> {
    if height == 0 || width == 0 || height % SIZE_MULTIPLE != 0 || width % SIZE_MULTIPLE != 0 {
        Err(SizeError { height, width })
    } else {
        Ok(())
    }
}

impl EmbedsBackbone for Mleu {
    fn backbone_fields(&mut self) -> (&mut Option<EfficientNet>, &mut Option<Vgg16>) {
        (&mut self.backbone, &mut self.vgg)
    }
}

impl Mleu {
    /// The main output: ab / 110 for regression and joint heads, the logits for classification.
    ///
    /// # Shapes
    /// `l`: `[B, 1, H, W]` in Lab units (0..100), H and W multiples of 32 (see [`check_size`]) →
    /// `[B, 2, H, W]` (regression and joint, tanh) or `[B, 313, H/s, W/s]` (classification logits,
    /// s the class stride).
    pub fn forward(&self, l: Tensor<4>) -> Tensor<4> {
        let out = self.forward_heads(l);
        out.ab.or(out.logits).expect("every head has an output")
    }

    /// Every head's output.
    ///
    /// # Shapes
    /// `l`: `[B, 1, H, W]` → ab `[B, 2, H, W]` (tanh; regression, joint), logits `[B, 313, H/s, W/s]`
    /// (classification, joint).
    pub fn forward_heads(&self, l: Tensor<4>) -> HeadOutputs {
        self.forward_hinted(l, None)
    }

    /// Every head's output, given colour hints (ignored by a network that takes none; `None` is the same
    /// as no hint anywhere).
    ///
    /// # Shapes
    /// `l`: `[B, 1, H, W]`, `hints`: `[B, 3, H, W]` (a/110, b/110, mask) → as [`Self::forward_heads`].
    pub fn forward_hinted(&self, l: Tensor<4>, hints: Option<Tensor<4>>) -> HeadOutputs {
        self.forward_with_features(l, hints, None)
    }

    /// [`Self::forward_hinted`] given the backbone's five feature maps of `l` (computed elsewhere:
    /// training takes a frozen backbone's from the inference engine), or `None` to compute them.
    /// Ignored by a network without a backbone.
    ///
    /// # Shapes
    /// `features`: five `[B, C_i, H/2^(i+1), W/2^(i+1)]`; otherwise as [`Self::forward_hinted`].
    pub fn forward_with_features(
        &self,
        l: Tensor<4>,
        hints: Option<Tensor<4>>,
        features: Option<Vec<Tensor<4>>>,
    ) -> HeadOutputs {
        let hints = hints.filter(|_| self.takes_hints());
        let [_, _, h, w] = l.dims();
        assert!(check_size(h, w).is_ok(), "{}", SizeError { height: h, width: w });
        let has_backbone = self.backbone.is_some() || self.vgg.is_some();
        let features = features.filter(|_| has_backbone).or_else(|| {
            self.backbone
                .as_ref()
                .map(|b| efficientnet_features(b, l.clone()))
                .or_else(|| self.vgg.as_ref().map(|v| vgg_features(v, l.clone())))
        });
        let input = l / crate::color::norm::L_RANGE; // the paper's [0, 1]
        let mut x = input.clone();
        let mut skips = Vec::with_capacity(5);
        for (i, block) in self.encoder.iter().enumerate() {
            let conv = if i == 0 {
                self.hint_in.as_ref()
            } else {
                self.hint_down.get(i - 1)
            };
            let pooled = hints
                .as_ref()
                .filter(|_| conv.is_some())
                .map(|h| pooled_hints(h.clone(), 1 << i));
            let hint = conv.zip(pooled.as_ref());
            x = block
                .conv2
                .forward(conv_with_hints(&block.conv1, x, hint, self.hint_scale));
            if let Some(f) = &features {
                x = Tensor::cat(vec![x, self.embed[i].forward(f[i].clone())], 1);
            }
            skips.push(x.clone());
        }
        skips.pop(); // the bottleneck is x itself
        let mut class_features = None;
        for (j, block) in self.decoder.iter().enumerate() {
            let [_, _, hh, ww] = x.dims();
            let up = interpolate(
                x,
                InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([2 * hh, 2 * ww]),
            );
            let skip = if j < 4 { skips[3 - j].clone() } else { input.clone() };
            let hint = (j == 4).then(|| self.hint_skip.as_ref().zip(hints.as_ref())).flatten();
            x = conv_with_hints(
                &block.fuse_conv,
                Tensor::cat(vec![block.up_conv.forward(up), skip], 1),
                hint,
                self.hint_scale,
            );
            if j == 2 && self.class_stride == 4 {
                class_features = Some(x.clone());
            }
        }
        let y = conv2d(&self.out, x.clone());
        match self.head {
            Head::Regression => HeadOutputs {
                ab: Some(y.tanh()),
                logits: None,
            },
            Head::Classification => HeadOutputs {
                ab: None,
                logits: Some(y),
            },
            Head::Joint => {
                let class_out = self.class_out.as_ref().expect("a joint head has its class conv");
                HeadOutputs {
                    ab: Some(y.tanh()),
                    logits: Some(conv2d(class_out, class_features.unwrap_or(x))),
                }
            }
        }
    }
}
