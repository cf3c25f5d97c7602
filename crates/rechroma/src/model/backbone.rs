//! The pretrained networks MLEU can embed, behind one interface: multi-scale features of the gray photo.

use super::efficientnet::{EfficientNet, EfficientNetConfig};
use super::gray_srgb;
use super::vgg::{IMAGENET_MEAN, IMAGENET_STD, Vgg16, Vgg16Config};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Which backbone, and its shape. Serialised as the bare EfficientNet config or `{"vgg16": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BackboneConfig {
    /// VGG16 in torchvision's layout (the MLEU paper's backbone; users bring `vgg16-397923af.pth`).
    Vgg16 {
        /// The VGG16 shape.
        vgg16: Vgg16Config,
    },
    /// EfficientNet-Lite (Lite0 is what rechroma ships).
    EfficientNet(EfficientNetConfig),
}

impl BackboneConfig {
    /// Channels of the 5 feature maps at strides 2, 4, 8, 16, 32.
    pub fn feature_channels(&self) -> Vec<usize> {
        match self {
            BackboneConfig::Vgg16 { vgg16 } => vgg16.feature_channels(),
            BackboneConfig::EfficientNet(c) => c.feature_channels(),
        }
    }

    /// Random weights (tests, or before [`crate::import::load_backbone`] replaces them).
    pub fn init(&self, device: &Device) -> Backbone {
        match self {
            BackboneConfig::Vgg16 { vgg16 } => Backbone::Vgg16(vgg16.init(device)),
            BackboneConfig::EfficientNet(c) => Backbone::EfficientNet(c.init(device)),
        }
    }
}

/// A backbone network. (Not a burn module enum: [`super::mleu::Mleu`] holds each kind in its own optional
/// field, so weight files name tensors `backbone.…` / `vgg.…` without enum variant segments.)
#[derive(Debug)]
pub enum Backbone {
    /// VGG16 (torchvision layout).
    Vgg16(Vgg16),
    /// EfficientNet-Lite.
    EfficientNet(EfficientNet),
}

impl Backbone {
    /// The network as the pair of optional fields the models hold it in (`backbone`, `vgg`), frozen
    /// unless `trainable`.
    pub fn into_fields(self, trainable: bool) -> (Option<EfficientNet>, Option<Vgg16>) {
        match self {
            Backbone::EfficientNet(n) => (Some(if trainable { n } else { n.freeze() }), None),
            Backbone::Vgg16(v) => (None, Some(if trainable { v } else { v.freeze() })),
        }
    }
}

/// A network that embeds a backbone, held as the pair of optional fields `backbone` (EfficientNet-Lite)
/// and `vgg` (VGG16): MLEU and ChromaGAN's generator.
pub trait EmbedsBackbone: Sized {
    /// The two optional backbone fields.
    fn backbone_fields(&mut self) -> (&mut Option<EfficientNet>, &mut Option<Vgg16>);

    /// Installs pretrained backbone weights, frozen unless `trainable`.
    fn set_backbone(&mut self, backbone: Backbone, trainable: bool) {
        let (e, v) = self.backbone_fields();
        (*e, *v) = backbone.into_fields(trainable);
    }

    /// Freezes whichever backbone is embedded.
    fn freeze_backbone(mut self) -> Self {
        let (e, v) = self.backbone_fields();
        *e = e.take().map(|b| b.freeze());
        *v = v.take().map(|v| v.freeze());
        self
    }
}

/// EfficientNet-Lite's input normalisation: (255·x − 127) / 128 for x ∈ [0, 1].
const LITE_MEAN: f32 = 127.0 / 255.0;
const LITE_SCALE: f32 = 128.0 / 255.0;

/// EfficientNet-Lite features of the gray photo with lightness `l`.
///
/// # Shapes
/// `l`: `[B, 1, H, W]` (Lab units) → five `[B, C_i, H/2^(i+1), W/2^(i+1)]`
pub fn efficientnet_features(net: &EfficientNet, l: Tensor<4>) -> Vec<Tensor<4>> {
    net.features(efficientnet_input(l))
}

/// The gray photo with lightness `l` as EfficientNet-Lite's input.
///
/// # Shapes
/// `[B, 1, H, W]` (Lab units) → `[B, 3, H, W]`
pub fn efficientnet_input(l: Tensor<4>) -> Tensor<4> {
    let x = (gray_srgb(l) - LITE_MEAN) / LITE_SCALE;
    Tensor::cat(vec![x.clone(), x.clone(), x], 1)
}

/// The gray photo with lightness `l` as VGG16's input (torchvision's normalisation).
///
/// # Shapes
/// `[B, 1, H, W]` (Lab units) → `[B, 3, H, W]`
pub fn vgg_input(l: Tensor<4>) -> Tensor<4> {
    let g = gray_srgb(l);
    let ch: Vec<Tensor<4>> = (0..3)
        .map(|c| (g.clone() - IMAGENET_MEAN[c]) / IMAGENET_STD[c])
        .collect();
    Tensor::cat(ch, 1)
}

/// VGG16 features of the gray photo with lightness `l` (torchvision's normalisation).
///
/// # Shapes
/// `l`: `[B, 1, H, W]` (Lab units) → five `[B, C_i, H/2^(i+1), W/2^(i+1)]`
pub fn vgg_features(net: &Vgg16, l: Tensor<4>) -> Vec<Tensor<4>> {
    net.features(vgg_input(l))
}
