//! The networks: shared blocks, the EfficientNet-Lite backbone, and the MLEU U-Net.

pub mod blocks;
pub mod efficientnet;
pub mod mleu;
pub mod vgg;

use burn::tensor::Tensor;

/// ImageNet normalisation of the EfficientNet-Lite weights: (255·x − 127) / 128 for x ∈ [0, 1].
pub const LITE_MEAN: f32 = 127.0 / 255.0;
pub const LITE_SCALE: f32 = 128.0 / 255.0;

/// The gray photo a backbone sees: L (Lab units, 0..100) → the sRGB gray of the same lightness
/// (a = b = 0 → Y = f⁻¹((L+16)/116) → sRGB transfer curve), replicated to 3 channels and normalised
/// with the Lite weights' (x − 127/255) / (128/255).
///
/// # Shapes
/// `[B, 1, H, W]` → `[B, 3, H, W]`
pub fn backbone_input(l: Tensor<4>) -> Tensor<4> {
    let fy = (l.clone() + 16.0) / 116.0;
    // Y = fy³ above the knee (fy > 6/29), (fy − 16/116)/7.787 below.
    let cube = fy.clone().powf_scalar(3.0);
    let linear = (fy.clone() - 16.0 / 116.0) / 7.787;
    let y = cube.mask_where(fy.lower_equal_elem(0.2068966), linear).clamp(0.0, 1.0);
    let gamma =
        (y.clone().powf_scalar(1.0 / 2.4) * 1.055 - 0.055).mask_where(y.clone().lower_equal_elem(0.0031308), y * 12.92);
    let g = (gamma - LITE_MEAN) / LITE_SCALE;
    Tensor::cat(vec![g.clone(), g.clone(), g], 1)
}
