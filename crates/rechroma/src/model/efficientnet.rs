//! EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant: ReLU6, no squeeze-excitation, fixed stem and
//! head), the ImageNet-pretrained backbone rechroma ships with.
//!
//! Field names follow the `efficientnet_pytorch` state dict without its leading underscores
//! (`_conv_stem` → `conv_stem`, `_blocks.3._depthwise_conv` → `blocks.3.depthwise_conv`); see
//! [`crate::import`]. Convolutions use TensorFlow "same" padding and BatchNorm ε = 1e-3, as the weights
//! were trained with.

use super::blocks::{Act, ConvBnAct};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// BatchNorm ε of the TF-trained weights.
pub const BN_EPS: f64 = 1e-3;

/// One stage of MBConv blocks: (kernel, stride of its first block, expansion, output channels, repeats).
pub type Stage = (usize, usize, usize, usize, usize);

/// EfficientNet-Lite0's stages (the B0 layout at width and depth multiplier 1).
pub const LITE0_STAGES: [Stage; 7] = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
];

/// Architecture of an EfficientNet-Lite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EfficientNetConfig {
    /// Stem output channels (32 for Lite0).
    pub stem: usize,
    /// The MBConv stages, in order (see [`Stage`]).
    pub stages: Vec<Stage>,
    /// Head channels before pooling (1280 for Lite0).
    pub head: usize,
    /// Classes of the classifier (1000 for ImageNet).
    pub classes: usize,
}

impl EfficientNetConfig {
    /// EfficientNet-Lite0 as pretrained on ImageNet-1k.
    pub fn lite0() -> Self {
        Self {
            stem: 32,
            stages: LITE0_STAGES.to_vec(),
            head: 1280,
            classes: 1000,
        }
    }

    /// Channels of the multi-scale features [`EfficientNet::features`] returns: the last map before each
    /// stride-2 stage, and the final one (Lite0: 16, 24, 40, 112, 320 at strides 2, 4, 8, 16, 32).
    pub fn feature_channels(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut c = self.stem;
        for &(_, stride, _, c_out, _) in &self.stages {
            if stride == 2 {
                out.push(c);
            }
            c = c_out;
        }
        out.push(c);
        out
    }

    /// A network with random weights.
    pub fn init(&self, device: &Device) -> EfficientNet {
        let conv_stem = ConvBnAct::new(3, self.stem, 3, 2, 1, BN_EPS, Act::Relu6, device);
        let mut blocks = Vec::new();
        let mut c_in = self.stem;
        for &(k, stride, expand, c_out, repeats) in &self.stages {
            for r in 0..repeats {
                blocks.push(MbConv::new(
                    c_in,
                    c_out,
                    k,
                    if r == 0 { stride } else { 1 },
                    expand,
                    device,
                ));
                c_in = c_out;
            }
        }
        let conv_head = ConvBnAct::new(c_in, self.head, 1, 1, 1, BN_EPS, Act::Relu6, device);
        let fc = LinearConfig::new(self.head, self.classes).init(device);
        EfficientNet {
            conv_stem,
            blocks,
            conv_head,
            fc,
        }
    }
}

/// Mobile inverted bottleneck: optional 1×1 expansion, k×k depthwise, 1×1 projection; identity skip
/// when the shape is kept.
#[derive(Module, Debug)]
pub struct MbConv {
    /// 1×1 expansion to `c_in · expand` channels (absent when the expansion is 1).
    pub expand_conv: Option<ConvBnAct>,
    /// k×k depthwise convolution (carries the block's stride).
    pub depthwise_conv: ConvBnAct,
    /// 1×1 linear projection to `c_out` channels.
    pub project_conv: ConvBnAct,
    /// Whether the identity skip is added (stride 1 and `c_in == c_out`).
    #[module(skip)]
    pub skip: bool,
}

impl MbConv {
    fn new(c_in: usize, c_out: usize, k: usize, stride: usize, expand: usize, device: &Device) -> Self {
        let mid = c_in * expand;
        let expand_conv = (expand != 1).then(|| ConvBnAct::new(c_in, mid, 1, 1, 1, BN_EPS, Act::Relu6, device));
        Self {
            expand_conv,
            depthwise_conv: ConvBnAct::new(mid, mid, k, stride, mid, BN_EPS, Act::Relu6, device),
            project_conv: ConvBnAct::new(mid, c_out, 1, 1, 1, BN_EPS, Act::Identity, device),
            skip: stride == 1 && c_in == c_out,
        }
    }

    /// # Shapes
    /// `[B, c_in, H, W]` → `[B, c_out, H/stride, W/stride]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = match &self.expand_conv {
            Some(e) => e.forward(x.clone()),
            None => x.clone(),
        };
        let h = self.project_conv.forward(self.depthwise_conv.forward(h));
        if self.skip { h + x } else { h }
    }
}

/// EfficientNet-Lite: stem, MBConv blocks, head, classifier.
#[derive(Module, Debug)]
pub struct EfficientNet {
    /// 3×3 stride-2 stem convolution.
    pub conv_stem: ConvBnAct,
    /// The MBConv blocks of all stages, in order.
    pub blocks: Vec<MbConv>,
    /// 1×1 head convolution to `head` channels.
    pub conv_head: ConvBnAct,
    /// The ImageNet classifier.
    pub fc: Linear,
}

impl EfficientNet {
    /// The last feature map of each resolution: strides 2, 4, 8, 16 and 32.
    ///
    /// # Shapes
    /// `[B, 3, H, W]` (normalised RGB, see [`super::backbone::efficientnet_input`]) → five `[B, C_i, H/2^(i+1), W/2^(i+1)]`
    /// with C = [`EfficientNetConfig::feature_channels`] (Lite0: 16, 24, 40, 112, 320).
    pub fn features(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut x = self.conv_stem.forward(x);
        let mut out = Vec::with_capacity(5);
        for block in &self.blocks {
            let [_, _, h, _] = x.dims();
            let y = block.forward(x.clone());
            if y.dims()[2] < h {
                out.push(x);
            }
            x = y;
        }
        out.push(x);
        out
    }

    /// ImageNet class logits.
    ///
    /// # Shapes
    /// `[B, 3, H, W]` → `[B, classes]`
    pub fn classify(&self, x: Tensor<4>) -> Tensor<2> {
        let last = self.features(x).pop().expect("at least one feature map");
        let h = self.conv_head.forward(last);
        let [b, c, _, _] = h.dims();
        let pooled = h.mean_dim(3).mean_dim(2).reshape([b, c]);
        self.fc.forward(pooled)
    }
}
