//! The networks: shared blocks, the EfficientNet-Lite backbone, and the MLEU U-Net.

pub mod backbone;
pub mod blocks;
pub mod chromagan;
pub mod critic;
pub mod efficientnet;
pub mod mleu;
pub mod vgg;

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
    let linear = (fy.clone() - 16.0 / 116.0) / 7.787;
    let y = cube.mask_where(fy.lower_equal_elem(0.2068966), linear).clamp(0.0, 1.0);
    (y.clone().powf_scalar(1.0 / 2.4) * 1.055 - 0.055).mask_where(y.clone().lower_equal_elem(0.0031308), y * 12.92)
}
