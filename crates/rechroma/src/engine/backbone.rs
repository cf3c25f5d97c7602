//! The embedded backbones in the engine: EfficientNet-Lite (1×1 convolutions on the matrix product,
//! direct depthwise convolutions) and VGG16, each giving the five feature maps at strides 2 … 32 that
//! [`crate::model::backbone`] gives.

use super::conv::{Act, Conv, Map, Src};
use super::layers::{Depthwise, max_pool2};
use super::weights::{conv_bn_act, conv_plain};
use crate::color::{F_KNEE, KAPPA_SLOPE, SRGB_GAMMA, SRGB_LINEAR_LIMIT, SRGB_OFFSET, SRGB_SCALE, SRGB_SLOPE};
use crate::model::efficientnet::{EfficientNet, MbConv};
use crate::model::vgg::{IMAGENET_MEAN, IMAGENET_STD, Vgg16};
use rayon::prelude::*;

/// The sRGB gray of lightness `l` (Lab units), in [0, 1]: [`crate::model::gray_srgb`] per value.
pub fn gray_srgb(l: f32) -> f32 {
    let fy = (l + 16.0) / 116.0;
    let y = if fy <= F_KNEE as f32 {
        (fy - 16.0 / 116.0) / KAPPA_SLOPE as f32
    } else {
        fy.powf(3.0)
    }
    .clamp(0.0, 1.0);
    if y <= SRGB_LINEAR_LIMIT as f32 {
        y * SRGB_SLOPE as f32
    } else {
        y.powf(1.0 / SRGB_GAMMA as f32) * SRGB_SCALE as f32 - SRGB_OFFSET as f32
    }
}

/// EfficientNet-Lite's input normalisation, (255·x − 127) / 128 for x ∈ [0, 1]
/// ([`crate::model::backbone::efficientnet_input`]).
const LITE_MEAN: f32 = 127.0 / 255.0;
const LITE_SCALE: f32 = 128.0 / 255.0;

/// One MBConv block, compiled.
#[derive(Debug, Clone)]
pub struct Block {
    expand: Option<Conv>,
    depthwise: Depthwise,
    project: Conv,
    skip: bool,
}

impl Block {
    fn new(b: &MbConv) -> Self {
        let dw = &b.depthwise_conv;
        let (w, shape, bias) = super::weights::conv_values(&dw.conv);
        Self {
            expand: b.expand_conv.as_ref().map(conv_bn_act),
            depthwise: Depthwise::new(&w, shape, bias.as_deref(), dw.conv.stride[0], dw.act.into()),
            project: conv_bn_act(&b.project_conv),
            skip: b.skip,
        }
    }

    /// # Shapes
    /// `[h, w, c_in]` → `[h/stride, w/stride, c_out]`
    fn forward(&self, x: &Map) -> Map {
        let expanded;
        let h = match &self.expand {
            Some(e) => {
                expanded = e.forward(&[Src::plain(x)]);
                &expanded
            }
            None => x,
        };
        let d = self.depthwise.forward(h);
        let mut out = Map::zeros(d.h, d.w, self.project.c_out);
        self.project.run(&[Src::plain(&d)], &mut out, 0, self.skip.then_some(x));
        out
    }
}

/// A backbone, compiled.
#[derive(Debug, Clone)]
pub enum Backbone {
    /// EfficientNet-Lite: the stem (its three equal input channels summed into one), the MBConv blocks.
    EfficientNet {
        /// The 3×3 stride-2 stem over the one gray channel.
        stem: Conv,
        /// The MBConv blocks.
        blocks: Vec<Block>,
    },
    /// VGG16: its convolutions, in blocks ending in a 2×2 max-pool.
    Vgg16 {
        /// The convolutions (3×3, bias, ReLU).
        convs: Vec<Conv>,
        /// Convolutions per block.
        per_block: [usize; 5],
    },
}

impl Backbone {
    /// From a network whose BatchNorms are folded.
    pub fn efficientnet(net: &EfficientNet) -> Self {
        // The input's three channels are the same gray (and pad with the same 0), so the stem over
        // them is the stem with its weights summed over the input channels, over one channel.
        let (w, [c_out, c_in, k, _], bias) = super::weights::conv_values(&net.conv_stem.conv);
        let mut summed = vec![0.0; c_out * k * k];
        for co in 0..c_out {
            for ci in 0..c_in {
                for t in 0..k * k {
                    summed[co * k * k + t] += w[(co * c_in + ci) * k * k + t];
                }
            }
        }
        let stem = Conv::new(
            &summed,
            [c_out, 1, k, k],
            bias.as_deref(),
            net.conv_stem.conv.stride[0],
            net.conv_stem.act.into(),
        );
        Backbone::EfficientNet {
            stem,
            blocks: net.blocks.par_iter().map(Block::new).collect(),
        }
    }

    /// From a VGG16.
    pub fn vgg16(net: &Vgg16) -> Self {
        Backbone::Vgg16 {
            convs: net.features.iter().map(|c| conv_plain(c, Act::Relu)).collect(),
            per_block: net.convs,
        }
    }

    /// Floating-point operations of [`Self::features`] on an `h × w` photo (convolutions only).
    pub fn flops(&self, (h, w): (usize, usize)) -> f64 {
        match self {
            Backbone::EfficientNet { stem, blocks } => {
                let mut total = stem.flops(h, w);
                let (mut h, mut w) = stem.out_size(h, w);
                for b in blocks {
                    total += b.expand.as_ref().map_or(0.0, |e| e.flops(h, w));
                    let (f, (oh, ow)) = b.depthwise.flops(h, w);
                    total += f + b.project.flops(oh, ow);
                    (h, w) = (oh, ow);
                }
                total
            }
            Backbone::Vgg16 { convs, per_block } => {
                let (mut h, mut w, mut total) = (h, w, 0.0);
                let mut convs = convs.iter();
                for &n in per_block {
                    for c in convs.by_ref().take(n) {
                        total += c.flops(h, w);
                    }
                    (h, w) = (h / 2, w / 2);
                }
                total
            }
        }
    }

    /// The backbone on the gray photo with lightness `l` (`[h, w, 1]`, Lab units): its five feature
    /// maps at strides 2, 4, 8, 16, 32 (those of [`crate::model::backbone`]), a feature map at a
    /// time ([`Walk::next_level`]), so that each level can run beside the U-Net's work that does not
    /// need it.
    pub fn walk(&self, l: &Map) -> Walk<'_> {
        let x = match self {
            Backbone::EfficientNet { .. } => {
                let mut input = l.clone();
                input
                    .data
                    .par_iter_mut()
                    .for_each(|v| *v = (gray_srgb(*v) - LITE_MEAN) / LITE_SCALE);
                input
            }
            Backbone::Vgg16 { .. } => {
                let mut x = Map::zeros(l.h, l.w, 3);
                for (px, &v) in x.data.chunks_exact_mut(3).zip(&l.data) {
                    let g = gray_srgb(v);
                    for c in 0..3 {
                        px[c] = (g - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
                    }
                }
                x
            }
        };
        Walk {
            backbone: self,
            x,
            at: 0,
            level: 0,
        }
    }
}

/// A backbone part way through its layers (see [`Backbone::walk`]).
pub struct Walk<'a> {
    backbone: &'a Backbone,
    /// The map the next layer reads: the normalised input before the first level.
    x: Map,
    /// The next block (EfficientNet) or convolution (VGG16).
    at: usize,
    /// The next feature level, 0 … 4.
    level: usize,
}

impl Walk<'_> {
    /// The next of the five feature maps, from stride 2 to stride 32.
    ///
    /// # Shapes
    /// level i: `[h/2^(i+1), w/2^(i+1), C_i]`
    pub fn next_level(&mut self) -> Map {
        assert!(self.level < 5, "a backbone has five feature levels");
        self.level += 1;
        match self.backbone {
            Backbone::EfficientNet { stem, blocks } => {
                if self.level == 1 {
                    self.x = stem.forward(&[Src::plain(&self.x)]);
                }
                // A level ends before the block that halves the resolution; the last at the end.
                while let Some(block) = blocks.get(self.at) {
                    self.at += 1;
                    let y = block.forward(&self.x);
                    if y.h < self.x.h {
                        return std::mem::replace(&mut self.x, y);
                    }
                    self.x = y;
                }
                self.x.clone()
            }
            Backbone::Vgg16 { convs, per_block } => {
                for conv in &convs[self.at..self.at + per_block[self.level - 1]] {
                    self.x = conv.forward(&[Src::plain(&self.x)]);
                }
                self.at += per_block[self.level - 1];
                self.x = max_pool2(&self.x);
                self.x.clone()
            }
        }
    }
}
