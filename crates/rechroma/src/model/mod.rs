//! The networks, as burn modules with their configurations: the MLEU U-Net ([`mleu`]) and ChromaGAN's
//! generator and critic ([`chromagan`], [`critic`]) on a pretrained backbone ([`backbone`]: EfficientNet-Lite
//! or VGG16), the blocks they share ([`blocks`]), and which network a model is ([`config`]).
//! Nothing here reads files: pretrained weights come in through [`crate::import`].

pub mod backbone;
pub mod blocks;
pub mod chromagan;
pub mod config;
pub mod cpu_conv;
pub mod cpu_norm;
pub mod critic;
pub mod efficientnet;
pub mod fold;
pub mod hinted;
pub(crate) mod im2col;
pub mod mleu;
pub mod vgg;

pub use config::{Architecture, ModelConfig, Network};

use crate::color::{F_KNEE, KAPPA_SLOPE, SRGB_GAMMA, SRGB_LINEAR_LIMIT, SRGB_OFFSET, SRGB_SCALE, SRGB_SLOPE};
use burn::tensor::Tensor;

/// The sRGB gray of the same lightness as L (a = b = 0 → Y = f⁻¹((L+16)/116) → sRGB transfer curve),
/// in [0, 1]: the gray photo a pretrained backbone sees.
///
/// # Shapes
/// `[B, 1, H, W]` (Lab units) → `[B, 1, H, W]`
pub fn gray_srgb(l: Tensor<4>) -> Tensor<4> {
    let fy = (l + 16.0) / 116.0;
    // Y = fy³ above the knee (fy > 6/29), (fy − 16/116)/7.787 below.
    let cube = fy.clone().powf_scalar(3.0);
    let linear = (fy.clone() - 16.0 / 116.0) / KAPPA_SLOPE;
    let y = cube.mask_where(fy.lower_equal_elem(F_KNEE), linear).clamp(0.0, 1.0);
    (y.clone().powf_scalar(1.0 / SRGB_GAMMA) * SRGB_SCALE - SRGB_OFFSET)
        .mask_where(y.clone().lower_equal_elem(SRGB_LINEAR_LIMIT), y * SRGB_SLOPE)
}
