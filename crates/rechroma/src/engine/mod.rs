//! The inference engine: an MLEU network compiled for the CPU, which `colorize`, `serve` and `eval` run
//! instead of the burn module (training keeps burn, which differentiates, and takes a frozen backbone's
//! features from here: [`FrozenBackbone`]).
//!
//! burn's `flex` backend runs a convolution as im2col over the whole input, then a matrix product, then
//! separate passes for the bias, the BatchNorm, the activation, the concatenations and the upsampling.
//! Here:
//! - activations are NHWC, so a pixel's channels are contiguous: a 1×1 convolution is one matrix
//!   product on the map as it is, and a concatenation is two layers writing their channels of one
//!   output ([`conv::Conv::run`]);
//! - the BatchNorms are folded into the convolutions, and bias, residual and activation are applied
//!   to each output tile while it is in cache; outputs are not zeroed before they are written;
//! - 3×3 stride-1 convolutions run by Winograd's F(2×2, 3×3) ([`winograd`]): 4/9 of the
//!   multiply-adds, 16 matrix products per tile of output blocks, the transforms in AVX-512;
//! - the decoder's ×2 nearest upsampling and the 3×3 convolution after it are one Winograd convolution
//!   of the low-resolution map ([`layers::UpConv`]): the upsampled map is never made;
//! - other dense convolutions build their im2col matrix a tile of pixels at a time, in a per-thread
//!   buffer that stays in L2, reading the decoder's skip concatenations in place ([`conv::Src`]); the
//!   tiles (and, on small maps, slices of the output channels) go to rayon, and each runs one
//!   single-threaded product of the `gemm` crate, which uses AVX-512 where the CPU has it;
//! - convolutions of at most 4 input channels (the first layer, the backbone's stem) run directly,
//!   AVX-512 registers holding 8 pixels' outputs ([`small`]);
//! - depthwise convolutions are direct loops over channels;
//! - the hint planes are extra input channels of the convolutions they join, their weights appended to
//!   the folded ones ([`weights`]).
//!
//! The results equal the burn network's up to float rounding (tested on every architecture `rechroma
//! train` makes, in `tests/engine.rs`). ChromaGAN stays on burn.

mod backbone;
pub mod conv;
mod features;
pub mod layers;
mod map;
#[cfg(target_arch = "x86_64")]
mod simd;
mod small;
mod weights;
mod winograd;

use crate::hints::HINT_PLANES;
use crate::model::mleu::{Head, Mleu, SizeError, check_size};
use backbone::Backbone;
use conv::{Act, Conv, Map, Src};
pub use features::FrozenBackbone;
use layers::UpConv;
use rayon::prelude::*;
use weights::{conv_bn_act, conv_bn_act_with_hints, conv_plain, up_conv};

/// What [`Net::forward`] returns, planar (CHW), like [`crate::model::mleu::HeadOutputs`].
#[derive(Debug, Clone)]
pub struct Outputs {
    /// ab / 110 (tanh), `[2, h, w]`, for regression and joint heads.
    pub ab: Option<Vec<f32>>,
    /// Logits over the 313 bins, `[313, h/s, w/s]` (s the class stride), for classification and joint
    /// heads.
    pub logits: Option<Vec<f32>>,
}

/// An encoder block: its first convolution (over the hint planes too, in a hint-taking network) and
/// its stride-2 one.
#[derive(Debug, Clone)]
struct EncoderBlock {
    conv1: Conv,
    conv2: Conv,
}

/// A decoder block: the convolution after the upsampling, and the one over [that, skip (, hints)].
#[derive(Debug, Clone)]
struct DecoderBlock {
    up_conv: UpConv,
    fuse_conv: Conv,
}

/// An MLEU network compiled for inference (see the module docs).
#[derive(Debug, Clone)]
pub struct Net {
    backbone: Option<Backbone>,
    encoder: Vec<EncoderBlock>,
    embed: Vec<Conv>,
    decoder: Vec<DecoderBlock>,
    out: Conv,
    class_out: Option<Conv>,
    /// Which output head(s) the network has.
    pub head: Head,
    /// Resolution divisor of the class logits (1 or 4).
    pub class_stride: usize,
    hints: bool,
}

impl Net {
    /// Compiles a network (its BatchNorms are folded here if they are not already).
    pub fn new(model: &Mleu) -> Self {
        Self::compile(model.clone())
    }

    /// [`Self::new`], taking the network: no copy of its weights is made to fold them.
    pub fn compile(model: Mleu) -> Self {
        let m = model.fold_batchnorms();
        let hints = m.takes_hints();
        let scale = m.hint_scale;
        // Layer by layer in parallel: reading and repacking 22 MB of weights is a share of a
        // process's start.
        let encoder = m
            .encoder
            .par_iter()
            .enumerate()
            .map(|(i, b)| {
                let hint = if i == 0 {
                    m.hint_in.as_ref()
                } else {
                    m.hint_down.get(i - 1)
                };
                EncoderBlock {
                    conv1: match hint.filter(|_| hints) {
                        Some(h) => conv_bn_act_with_hints(&b.conv1, h, scale),
                        None => conv_bn_act(&b.conv1),
                    },
                    conv2: conv_bn_act(&b.conv2),
                }
            })
            .collect();
        let decoder = m
            .decoder
            .par_iter()
            .enumerate()
            .map(|(j, b)| DecoderBlock {
                up_conv: up_conv(&b.up_conv),
                fuse_conv: match m.hint_skip.as_ref().filter(|_| hints && j == 4) {
                    Some(h) => conv_bn_act_with_hints(&b.fuse_conv, h, scale),
                    None => conv_bn_act(&b.fuse_conv),
                },
            })
            .collect();
        let out_act = if m.head.regresses() { Act::Tanh } else { Act::Identity };
        Self {
            backbone: m
                .backbone
                .as_ref()
                .map(Backbone::efficientnet)
                .or_else(|| m.vgg.as_ref().map(Backbone::vgg16)),
            encoder,
            embed: m.embed.par_iter().map(conv_bn_act).collect(),
            decoder,
            out: conv_plain(&m.out, out_act),
            class_out: m.class_out.as_ref().map(|c| conv_plain(c, Act::Identity)),
            head: m.head,
            class_stride: m.class_stride,
            hints,
        }
    }

    /// Floating-point operations (2 per multiply-add) of the network's forward pass on a `w × h` plane:
    /// its convolutions, which are all but a sliver of the work, counted as the network defines them
    /// (the engine computes the decoder's upsampling convolutions in fewer, see [`layers::UpConv`]).
    pub fn flops(&self, (w, h): (usize, usize)) -> f64 {
        let mut total = self.backbone.as_ref().map_or(0.0, |b| b.flops((h, w)));
        let (mut hh, mut ww) = (h, w);
        for (i, b) in self.encoder.iter().enumerate() {
            total += b.conv1.flops(hh, ww);
            total += b.conv2.flops(hh, ww);
            (hh, ww) = b.conv2.out_size(hh, ww);
            total += self.embed.get(i).map_or(0.0, |e| e.flops(hh, ww));
        }
        for (j, b) in self.decoder.iter().enumerate() {
            total += b.up_conv.flops(hh, ww);
            (hh, ww) = (2 * hh, 2 * ww);
            total += b.fuse_conv.flops(hh, ww);
            if j == 2 && self.class_stride == 4 {
                total += self.class_out.as_ref().map_or(0.0, |c| c.flops(hh, ww));
            }
        }
        total += self.out.flops(hh, ww);
        if self.class_stride == 1 {
            total += self.class_out.as_ref().map_or(0.0, |c| c.flops(hh, ww));
        }
        total
    }

    /// Whether the network takes colour hints.
    pub fn takes_hints(&self) -> bool {
        self.hints
    }

    /// Every head's output for one L plane, with optional hint planes (ignored by a network that takes
    /// none; `None` is the same as no hint anywhere).
    ///
    /// # Shapes
    /// `l`: `[h, w]` (Lab units, sides multiples of 32), `hints`: `[3, h, w]` (a/110, b/110, mask) →
    /// ab `[2, h, w]`, logits `[313, h/s, w/s]` (see [`Outputs`]).
    pub fn forward(&self, l: &[f32], (w, h): (usize, usize), hints: Option<&[f32]>) -> Result<Outputs, SizeError> {
        check_size(h, w)?;
        assert_eq!(l.len(), w * h, "an L plane of {w}×{h}");
        let l_map = Map {
            h,
            w,
            c: 1,
            data: l.to_vec(),
        };
        let input = Map {
            data: l.iter().map(|v| v / crate::color::norm::L_RANGE).collect(),
            ..l_map.clone()
        };
        // The hint planes at each encoder level's resolution (zero planes when none are given).
        let levels: Vec<Map> = if self.hints {
            let planes = hints.map_or_else(|| vec![0.0; HINT_PLANES * w * h], <[f32]>::to_vec);
            hint_levels(&planes, (w, h), self.encoder.len())
        } else {
            Vec::new()
        };
        // Encoder block i's convolutions, into a map with room for its embedding's channels.
        let encode = |i: usize, x: &Map| {
            let block = &self.encoder[i];
            let mut srcs = vec![Src::plain(x)];
            srcs.extend(levels.get(i).map(Src::plain));
            let t = block.conv1.forward(&srcs);
            let (oh, ow) = block.conv2.out_size(t.h, t.w);
            let embed = if self.backbone.is_some() {
                self.embed[i].c_out
            } else {
                0
            };
            let mut out = Map::zeros(oh, ow, block.conv2.c_out + embed);
            block.conv2.run(&[Src::plain(&t)], &mut out, 0, None);
            out
        };
        // Each level of the backbone beside the encoder block that does not need it yet (block i takes
        // the embedding of level i − 1): the backbone's many small layers leave a core idle between
        // them, which the block's tiles fill.
        let mut walk = self.backbone.as_ref().map(|b| b.walk(&l_map));
        let mut x = input.clone();
        let mut skips: Vec<Map> = Vec::with_capacity(5);
        for i in 0..self.encoder.len() {
            let (feature, mut out) = rayon::join(|| walk.as_mut().map(|w| w.next_level()), || encode(i, &x));
            if let Some(f) = &feature {
                let c = self.encoder[i].conv2.c_out;
                self.embed[i].run(&[Src::plain(f)], &mut out, c, None);
            }
            skips.push(std::mem::replace(&mut x, out));
        }
        let mut class_features = None;
        for (j, block) in self.decoder.iter().enumerate() {
            let up = block.up_conv.forward(&x);
            let skip = if j < 4 { &skips[4 - j] } else { &input };
            let mut srcs = vec![Src::plain(&up), Src::plain(skip)];
            if j == 4 {
                srcs.extend(levels.first().map(Src::plain));
            }
            x = block.fuse_conv.forward(&srcs);
            if j == 2 && self.class_stride == 4 {
                class_features = Some(x.clone());
            }
        }
        let y = self.out.forward_planar(&x);
        Ok(match self.head {
            Head::Regression => Outputs {
                ab: Some(y),
                logits: None,
            },
            Head::Classification => Outputs {
                ab: None,
                logits: Some(y),
            },
            Head::Joint => {
                let class_out = self.class_out.as_ref().expect("a joint head has its class conv");
                let f = class_features.as_ref().unwrap_or(&x);
                Outputs {
                    ab: Some(y),
                    logits: Some(class_out.forward_planar(f)),
                }
            }
        })
    }
}

/// An MLEU network that runs on one L plane: the engine's [`Net`] (on the CPU), or the burn network on
/// its device ([`OnDevice`], for a GPU).
pub trait Forward: Send {
    /// Which output head(s) the network has.
    fn head(&self) -> Head;
    /// Resolution divisor of the class logits (1 or 4).
    fn class_stride(&self) -> usize;
    /// Whether the network takes colour hints.
    fn takes_hints(&self) -> bool;
    /// Every head's output, planar (see [`Net::forward`]).
    fn forward(&self, l: &[f32], size: (usize, usize), hints: Option<&[f32]>) -> Result<Outputs, SizeError>;
}

impl Forward for Net {
    fn head(&self) -> Head {
        self.head
    }
    fn class_stride(&self) -> usize {
        self.class_stride
    }
    fn takes_hints(&self) -> bool {
        self.hints
    }
    fn forward(&self, l: &[f32], size: (usize, usize), hints: Option<&[f32]>) -> Result<Outputs, SizeError> {
        Net::forward(self, l, size, hints)
    }
}

/// The burn network on its device (BatchNorms folded): what runs when the device is not the CPU.
pub struct OnDevice {
    /// The network.
    pub model: Mleu,
    /// Its device.
    pub device: burn::tensor::Device,
}

impl Forward for OnDevice {
    fn head(&self) -> Head {
        self.model.head
    }
    fn class_stride(&self) -> usize {
        self.model.class_stride
    }
    fn takes_hints(&self) -> bool {
        self.model.takes_hints()
    }
    fn forward(&self, l: &[f32], (w, h): (usize, usize), hints: Option<&[f32]>) -> Result<Outputs, SizeError> {
        use burn::tensor::{Tensor, TensorData};
        check_size(h, w)?;
        let x = Tensor::<4>::from_data(TensorData::new(l.to_vec(), [1, 1, h, w]), &self.device);
        let hints = hints
            .filter(|_| self.model.takes_hints())
            .map(|p| Tensor::<4>::from_data(TensorData::new(p.to_vec(), [1, HINT_PLANES, h, w]), &self.device));
        let out = self.model.forward_hinted(x, hints);
        Ok(Outputs {
            ab: out.ab.map(weights::values),
            logits: out.logits.map(weights::values),
        })
    }
}

/// The form colorizing runs `model` in on `device`: compiled by the engine on the CPU, burn's own on any
/// other device (a GPU).
pub fn for_device(model: Mleu, device: &burn::tensor::Device) -> Box<dyn Forward> {
    if *device == burn::tensor::Device::flex() {
        Box::new(Net::compile(model))
    } else {
        Box::new(OnDevice {
            model: model.fold_batchnorms(),
            device: device.clone(),
        })
    }
}

/// The hint planes at strides 1, 2, 4, … (one per encoder block), as NHWC maps, pooled as
/// [`crate::model::hinted::pooled_hints`] pools them: per s × s cell, the mean revealed a and b and
/// whether anything is revealed.
fn hint_levels(planes: &[f32], (w, h): (usize, usize), n: usize) -> Vec<Map> {
    let full = Map::from_planar(planes, h, w, HINT_PLANES);
    (0..n)
        .map(|i| {
            let s = 1 << i;
            if s == 1 {
                return full.clone();
            }
            let (ph, pw) = (h / s, w / s);
            let cells = (s * s) as f32;
            let mut out = Map::zeros(ph, pw, HINT_PLANES);
            for (cell, px) in out.data.chunks_exact_mut(HINT_PLANES).enumerate() {
                let (cy, cx) = (cell / pw, cell % pw);
                let (mut a, mut b, mut m, mut max) = (0f32, 0f32, 0f32, f32::NEG_INFINITY);
                for y in cy * s..(cy + 1) * s {
                    for v in full.data[(y * w + cx * s) * HINT_PLANES..][..s * HINT_PLANES].chunks_exact(HINT_PLANES) {
                        a += v[0];
                        b += v[1];
                        m += v[2];
                        max = max.max(v[2]);
                    }
                }
                // ab is 0 where nothing is revealed, so mean(ab) / mean(mask) is the mean over
                // revealed pixels.
                let revealed = (m / cells).max(1e-6);
                px.copy_from_slice(&[a / cells / revealed, b / cells / revealed, max]);
            }
            out
        })
        .collect()
}
