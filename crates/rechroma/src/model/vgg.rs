//! VGG16's convolutional trunk (Simonyan & Zisserman 2015), the MLEU and ChromaGAN papers' backbone,
//! in torchvision's layout: `features.N.weight/bias` for the 13 convolutions (3×3, padding 1, ReLU),
//! max-pooling 2×2 after each of the 5 blocks. The file users bring is torchvision's
//! `vgg16-397923af.pth`; [`crate::import::load_vgg16`] maps its non-contiguous `features.N` indices
//! (the ReLU and pooling layers hold no weights) onto [`Vgg16::features`].

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// torchvision's input normalisation (RGB in [0, 1]).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// Per-channel standard deviation of torchvision's input normalisation (RGB in [0, 1]).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The VGG16 trunk's shape: widths and convolutions of its 5 blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vgg16Config {
    /// Output channels of the 5 blocks. VGG16: 64, 128, 256, 512, 512.
    pub widths: [usize; 5],
    /// Convolutions per block. VGG16: 2, 2, 3, 3, 3.
    pub convs: [usize; 5],
}

impl Vgg16Config {
    /// VGG16 as trained on ImageNet: widths 64…512, 2-2-3-3-3 convolutions.
    pub fn vgg16() -> Self {
        Self {
            widths: [64, 128, 256, 512, 512],
            convs: [2, 2, 3, 3, 3],
        }
    }

    /// Channels of the 5 pooled feature maps (strides 2 … 32).
    pub fn feature_channels(&self) -> Vec<usize> {
        self.widths.to_vec()
    }

    /// A trunk with random weights.
    pub fn init(&self, device: &Device) -> Vgg16 {
        let mut features = Vec::new();
        let mut c_in = 3;
        for (&w, &n) in self.widths.iter().zip(&self.convs) {
            for _ in 0..n {
                features.push(
                    Conv2dConfig::new([c_in, w], [3, 3])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(device),
                );
                c_in = w;
            }
        }
        Vgg16 {
            features,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            convs: self.convs,
        }
    }
}

/// VGG16's convolutional trunk (see the module docs).
#[derive(Module, Debug)]
pub struct Vgg16 {
    /// The 13 convolutions in order (torchvision's `features.0, 2, 5, 7, 10, …`).
    pub features: Vec<Conv2d>,
    /// The 2×2 stride-2 max-pooling after each block.
    pub pool: MaxPool2d,
    #[module(skip)]
    /// Convolutions per block (see [`Vgg16Config::convs`]).
    pub convs: [usize; 5],
}

impl Vgg16 {
    /// The 5 block outputs after pooling.
    ///
    /// # Shapes
    /// `[B, 3, H, W]` (ImageNet-normalised RGB) → five `[B, C_i, H/2^(i+1), W/2^(i+1)]`
    pub fn features(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut convs = self.features.iter();
        let mut x = x;
        let mut out = Vec::with_capacity(5);
        for &n in &self.convs {
            for conv in convs.by_ref().take(n) {
                x = burn::tensor::activation::relu(conv.forward(x));
            }
            x = self.pool.forward(x);
            out.push(x.clone());
        }
        out
    }

    /// The trunk ChromaGAN builds on: blocks 1–3 (pooled) and block 4's three convolutions without its
    /// pooling, i.e. Keras' `block4_conv3` output.
    ///
    /// # Shapes
    /// `[B, 3, H, W]` (ImageNet-normalised RGB) → `[B, 512, H/8, W/8]`
    pub fn block4_conv3(&self, x: Tensor<4>) -> Tensor<4> {
        let mut convs = self.features.iter();
        let mut x = x;
        for (block, &n) in self.convs.iter().enumerate().take(4) {
            for conv in convs.by_ref().take(n) {
                x = burn::tensor::activation::relu(conv.forward(x));
            }
            if block < 3 {
                x = self.pool.forward(x);
            }
        }
        x
    }
}
