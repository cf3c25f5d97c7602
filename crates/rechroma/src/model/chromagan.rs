//! ChromaGAN's generator (Vitoria, Raad, Ballester, WACV 2020, §3; layer list from the authors' Keras code).
//!
//! L (Lab units) → a pretrained trunk at stride 8 (VGG16 up to `block4_conv3`, 28×28×512 at 224²) →
//! - **global branch**: 4 convs 3×3 (stride 2, 1, 2, 1; ReLU then BatchNorm, as in the authors' code) →
//!   (size/32)² × `width`, flattened, then two heads of fully connected layers:
//!   - 1024 → 512 → `fusion` (256), broadcast over the trunk's grid;
//!   - the **class-distribution head** 4096 → 4096 → `classes` (1000): logits of y, the "semantic class
//!     distribution" (softmax applied by the KL loss). Run only when training ([`ChromaGan::forward`]).
//!   The fully connected layers have no activation between them, as in the authors' code.
//! - **mid-level branch**: conv 3×3 `width` → conv 3×3 `fusion`, each ReLU then BatchNorm;
//! - **fusion + colour decoder**: concat(mid, global) → 1×1 conv 256 → 3×3 128 → ×2 → 3×3 64 → 3×3 64 →
//!   ×2 → 3×3 32 → 3×3 2 with sigmoid → ×2: ab as (ab + 128)/255 ∈ [0, 1] at the input size.
//!
//! With EfficientNet-Lite0 as the trunk (the shippable backbone), the trunk is its stride-8 map (40
//! channels) concatenated with its stride-16 map (112 channels) upsampled ×2: the stride-8 map alone is
//! too thin to carry the semantics VGG's 512 channels do. The trunk is fine-tuned by default, as in the
//! paper. The global branch flattens a fixed grid, so the input side is fixed: [`ChromaGanConfig::size`].

use super::backbone::{BackboneConfig, EmbedsBackbone, efficientnet_input, vgg_input};
use super::efficientnet::EfficientNet;
use super::vgg::Vgg16;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// ChromaGAN generator architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChromaGanConfig {
    /// The pretrained trunk (VGG16, the paper's; or EfficientNet-Lite0).
    pub backbone: BackboneConfig,
    /// Train the trunk too (the paper fine-tunes VGG16). Default true.
    pub finetune_backbone: bool,
    /// Input side in pixels (square, a multiple of 32). Paper: 224.
    pub size: usize,
    /// Channels of the global and mid-level convolutions. Paper: 512.
    pub width: usize,
    /// Hidden fully connected sizes of the global branch. Paper: 1024, 512.
    pub global_fc: [usize; 2],
    /// Channels of the mid-level output and of the broadcast global features. Paper: 256.
    pub fusion: usize,
    /// Hidden fully connected sizes of the class head. Paper: 4096, 4096.
    pub class_fc: [usize; 2],
    /// Classes of the class distribution. Paper: 1000 (ImageNet).
    pub classes: usize,
    /// Widths of the colour decoder's convolutions. Paper: 256, 128, 64, 64, 32.
    pub decoder: [usize; 5],
}

impl ChromaGanConfig {
    /// The paper's generator on the given trunk (≈ 124 M parameters in the class head alone).
    pub fn paper(backbone: BackboneConfig) -> Self {
        Self {
            backbone,
            finetune_backbone: true,
            size: 224,
            width: 512,
            global_fc: [1024, 512],
            fusion: 256,
            class_fc: [4096, 4096],
            classes: 1000,
            decoder: [256, 128, 64, 64, 32],
        }
    }

    /// Channels of the trunk's stride-8 output.
    pub fn trunk_channels(&self) -> usize {
        let c = self.backbone.feature_channels();
        match self.backbone {
            BackboneConfig::Vgg16 { ref vgg16 } => vgg16.widths[3],
            BackboneConfig::EfficientNet(_) => c[2] + c[3],
        }
    }

    /// A generator with random weights (the trunk frozen unless `finetune_backbone`).
    pub fn init(&self, device: &Device) -> ChromaGan {
        let (w, f) = (self.width, self.fusion);
        let crb = |c_in, c_out, k, stride| ConvReluBn::new(c_in, c_out, k, stride, device);
        let grid = self.size / 32;
        let flat = w * grid * grid;
        let lin = |a, b| LinearConfig::new(a, b).init(device);
        let d = self.decoder;
        let conv = |c_in, c_out, k: usize| {
            Conv2dConfig::new([c_in, c_out], [k, k])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        let (backbone, vgg) = self.backbone.init(device).into_fields(true);
        let net = ChromaGan {
            backbone,
            vgg,
            global_convs: vec![
                crb(self.trunk_channels(), w, 3, 2),
                crb(w, w, 3, 1),
                crb(w, w, 3, 2),
                crb(w, w, 3, 1),
            ],
            global_fc: vec![
                lin(flat, self.global_fc[0]),
                lin(self.global_fc[0], self.global_fc[1]),
                lin(self.global_fc[1], f),
            ],
            class_fc: vec![
                lin(flat, self.class_fc[0]),
                lin(self.class_fc[0], self.class_fc[1]),
                lin(self.class_fc[1], self.classes),
            ],
            mid: vec![crb(self.trunk_channels(), w, 3, 1), crb(w, f, 3, 1)],
            decoder: vec![
                conv(2 * f, d[0], 1),
                conv(d[0], d[1], 3),
                conv(d[1], d[2], 3),
                conv(d[2], d[3], 3),
                conv(d[3], d[4], 3),
                conv(d[4], 2, 3),
            ],
            size: self.size,
        };
        if self.finetune_backbone {
            net
        } else {
            net.freeze_backbone()
        }
    }
}

/// conv (with bias) → ReLU → BatchNorm: the order of the authors' Keras layers.
#[derive(Module, Debug)]
pub struct ConvReluBn {
    /// The convolution (with bias).
    pub conv: Conv2d,
    /// The BatchNorm after the ReLU.
    pub bn: BatchNorm,
}

impl ConvReluBn {
    fn new(c_in: usize, c_out: usize, k: usize, stride: usize, device: &Device) -> Self {
        let conv = Conv2dConfig::new([c_in, c_out], [k, k])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Same)
            .init(device);
        Self {
            conv,
            bn: BatchNormConfig::new(c_out).init(device),
        }
    }

    /// # Shapes
    /// `[B, c_in, H, W]` → `[B, c_out, ⌈H/stride⌉, ⌈W/stride⌉]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.forward(relu(super::cpu_conv::conv2d(&self.conv, x)))
    }
}

/// ChromaGAN's generator (see the module docs).
#[derive(Module, Debug)]
pub struct ChromaGan {
    /// EfficientNet-Lite trunk (when it is the backbone).
    pub backbone: Option<EfficientNet>,
    /// VGG16 trunk (when it is the backbone).
    pub vgg: Option<Vgg16>,
    /// Global branch: the 4 convolutions 3×3 (strides 2, 1, 2, 1).
    pub global_convs: Vec<ConvReluBn>,
    /// Global branch: fully connected layers → `global_fc[0]` → `global_fc[1]` → `fusion`.
    pub global_fc: Vec<Linear>,
    /// Class head: fully connected layers → `class_fc[0]` → `class_fc[1]` → `classes` logits.
    pub class_fc: Vec<Linear>,
    /// Mid-level branch: convolutions 3×3 `width`, then `fusion`.
    pub mid: Vec<ConvReluBn>,
    /// Colour decoder: 1×1 conv, then five 3×3 convs, the last giving the 2 ab channels.
    pub decoder: Vec<Conv2d>,
    /// Input side in pixels (see [`ChromaGanConfig::size`]).
    #[module(skip)]
    pub size: usize,
}

fn up2(x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([2 * h, 2 * w]),
    )
}

impl EmbedsBackbone for ChromaGan {
    fn backbone_fields(&mut self) -> (&mut Option<EfficientNet>, &mut Option<Vgg16>) {
        (&mut self.backbone, &mut self.vgg)
    }
}

impl ChromaGan {
    /// # Shapes
    /// `[B, 1, S, S]` (Lab units) → `[B, C, S/8, S/8]`
    fn trunk(&self, l: Tensor<4>) -> Tensor<4> {
        if let Some(vgg) = &self.vgg {
            return vgg.block4_conv3(vgg_input(l));
        }
        let net = self.backbone.as_ref().expect("a trunk is configured");
        let mut f = net.features(efficientnet_input(l));
        let s16 = f.swap_remove(3);
        Tensor::cat(vec![f.swap_remove(2), up2(s16)], 1)
    }

    fn run(&self, l: Tensor<4>, with_classes: bool) -> (Tensor<4>, Option<Tensor<2>>) {
        let [b, _, h, w] = l.dims();
        assert!(
            h == self.size && w == self.size,
            "ChromaGAN takes {0}×{0} inputs, not {w}×{h}",
            self.size
        );
        let trunk = self.trunk(l);
        let [_, _, th, tw] = trunk.dims();
        let mut g = trunk.clone();
        for layer in &self.global_convs {
            g = layer.forward(g);
        }
        let flat: Tensor<2> = g.flatten(1, 3);
        let mut v = flat.clone();
        for fc in &self.global_fc {
            v = fc.forward(v);
        }
        let [_, f] = v.dims();
        let global = v.reshape([b, f, 1, 1]).expand([b, f, th, tw]);
        let classes = with_classes.then(|| self.class_fc.iter().fold(flat, |x, fc| fc.forward(x)));
        let mut m = trunk;
        for layer in &self.mid {
            m = layer.forward(m);
        }
        let x = Tensor::cat(vec![m, global], 1);
        let d = &self.decoder;
        let x = relu(d[1].forward(relu(d[0].forward(x))));
        let x = relu(d[3].forward(relu(d[2].forward(up2(x)))));
        let x = sigmoid(d[5].forward(relu(d[4].forward(up2(x)))));
        (up2(x), classes)
    }

    /// ab and the class-distribution logits.
    ///
    /// # Shapes
    /// `l`: `[B, 1, S, S]` (Lab units, S = [`ChromaGanConfig::size`]) → (`[B, 2, S, S]` ab as
    /// (ab + 128)/255, `[B, classes]` logits)
    pub fn forward(&self, l: Tensor<4>) -> (Tensor<4>, Tensor<2>) {
        let (ab, classes) = self.run(l, true);
        (ab, classes.expect("asked for"))
    }

    /// ab only: the class head is not run (colorizing).
    ///
    /// # Shapes
    /// `l`: `[B, 1, S, S]` (Lab units) → `[B, 2, S, S]` ab as (ab + 128)/255
    pub fn colorize(&self, l: Tensor<4>) -> Tensor<4> {
        self.run(l, false).0
    }
}
