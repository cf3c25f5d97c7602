//! Training-time augmentation (MLEU paper §4: random crops, flips, rotations) and the fixed centre crop
//! used for evaluation.
//!
//! A random crop is one affine resampling of the source photo: pick a square of side
//! `scale · min(W, H)` (scale uniform in [`AugmentConfig::min_scale`], [`AugmentConfig::max_scale`]),
//! rotate it by an angle uniform in ±[`AugmentConfig::max_rotation_deg`] (shrinking the square if the
//! rotated square would leave the photo, so no border is ever invented), place it uniformly at random,
//! mirror it horizontally with probability ½, and sample it bilinearly at `size × size`. The result goes
//! to Lab without passing through 8 bits again.

use crate::color::{LabImage, srgb_to_lab};
use image::RgbImage;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Augmentation parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Side of the square crop fed to the network, in pixels. Default 256 (the MLEU working size).
    pub size: u32,
    /// Smallest crop side as a fraction of the photo's shorter side. Default 0.5.
    pub min_scale: f32,
    /// Largest crop side as a fraction of the photo's shorter side. Default 1.0.
    pub max_scale: f32,
    /// Mirror left-right with probability ½. Default true.
    pub hflip: bool,
    /// Rotation angle drawn uniformly in ± this many degrees. Default 10 (skies stay up).
    pub max_rotation_deg: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            size: 256,
            min_scale: 0.5,
            max_scale: 1.0,
            hflip: true,
            max_rotation_deg: 10.0,
        }
    }
}

impl AugmentConfig {
    /// The shorter side a photo needs so that the smallest crop is sampled at no less than 1:1
    /// (photos are shrunk to this once, with a proper low-pass filter, before cropping).
    pub fn source_short_side(&self) -> u32 {
        (self.size as f32 / self.min_scale.max(1e-3)).ceil() as u32
    }
}

/// Bilinear sample of `img` at continuous pixel coordinates (pixel centres at +0.5), edges clamped.
/// Returns encoded sRGB in [0, 1].
fn sample(img: &RgbImage, x: f64, y: f64) -> [f64; 3] {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (fx, fy) = (x - 0.5, y - 0.5);
    let (x0, y0) = (fx.floor(), fy.floor());
    let (tx, ty) = (fx - x0, fy - y0);
    let px = |xi: i64, yi: i64| img.get_pixel(xi.clamp(0, w - 1) as u32, yi.clamp(0, h - 1) as u32).0;
    let (x0, y0) = (x0 as i64, y0 as i64);
    let (p00, p10, p01, p11) = (px(x0, y0), px(x0 + 1, y0), px(x0, y0 + 1), px(x0 + 1, y0 + 1));
    std::array::from_fn(|c| {
        let top = f64::from(p00[c]) * (1.0 - tx) + f64::from(p10[c]) * tx;
        let bottom = f64::from(p01[c]) * (1.0 - tx) + f64::from(p11[c]) * tx;
        (top * (1.0 - ty) + bottom * ty) / 255.0
    })
}

/// Resamples the square centred at (cx, cy) of side `side`, rotated by `angle` radians and optionally
/// mirrored, into a `size × size` Lab image.
fn resample(img: &RgbImage, cx: f64, cy: f64, side: f64, angle: f64, flip: bool, size: u32) -> LabImage {
    let n = size as usize * size as usize;
    let mut data = vec![0f32; 3 * n];
    let (sin, cos) = angle.sin_cos();
    let step = side / size as f64;
    for j in 0..size as usize {
        for i in 0..size as usize {
            let mut u = (i as f64 + 0.5 - size as f64 / 2.0) * step;
            let v = (j as f64 + 0.5 - size as f64 / 2.0) * step;
            if flip {
                u = -u;
            }
            let lab = srgb_to_lab(sample(img, cx + cos * u - sin * v, cy + sin * u + cos * v));
            let p = j * size as usize + i;
            (data[p], data[n + p], data[2 * n + p]) = (lab[0], lab[1], lab[2]);
        }
    }
    LabImage {
        width: size,
        height: size,
        data,
    }
}

/// A random augmented crop of `img` (see the module docs).
pub fn random_crop(img: &RgbImage, cfg: &AugmentConfig, rng: &mut impl Rng) -> LabImage {
    let (w, h) = (img.width() as f64, img.height() as f64);
    let short = w.min(h);
    let (lo, hi) = (
        cfg.min_scale.min(cfg.max_scale) as f64,
        cfg.max_scale.max(cfg.min_scale) as f64,
    );
    let scale = if hi > lo { rng.random_range(lo..=hi) } else { hi };
    let max_rot = f64::from(cfg.max_rotation_deg.abs()).to_radians();
    let angle = if max_rot > 0.0 {
        rng.random_range(-max_rot..=max_rot)
    } else {
        0.0
    };
    let flip = cfg.hflip && rng.random_bool(0.5);
    // Half-extent of the rotated square's bounding box is side/2 · (|cos| + |sin|): shrink to fit.
    let spread = angle.cos().abs() + angle.sin().abs();
    let side = (scale * short).min(short / spread);
    let half = side * spread / 2.0;
    let pick = |extent: f64, rng: &mut dyn rand::RngCore| {
        if extent - half > half {
            rng.random_range(half..=extent - half)
        } else {
            extent / 2.0
        }
    };
    let cx = pick(w, rng);
    let cy = pick(h, rng);
    resample(img, cx, cy, side, angle, flip, cfg.size)
}

/// The longest aspect ratio [`center_crop`] resizes whole; a thinner photo is cut to it first.
pub const CROP_MAX_ASPECT: u32 = 16;

/// The evaluation crop: shorter side resized to `size` (Lanczos-3), then the centred `size × size` square.
pub fn center_crop(img: &RgbImage, size: u32) -> RgbImage {
    // A strip thinner than 1:16 is first cut to its central 1:16 part: resizing all of a 1 × 20000 strip
    // to a shorter side of 256 would take 5 million × 256 pixels (`eval` aborted on it) for a crop that
    // keeps only its middle.
    let (w, h) = img.dimensions();
    let cap = |long: u32, short: u32| long.min(short.max(1).saturating_mul(CROP_MAX_ASPECT));
    let (cw, ch) = (cap(w, h), cap(h, w));
    if (cw, ch) != (w, h) {
        let part = image::imageops::crop_imm(img, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image();
        return center_crop(&part, size);
    }
    let scale = size as f64 / w.min(h) as f64;
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(size),
        ((h as f64 * scale).round() as u32).max(size),
    );
    let resized = super::resize(img, nw, nh);
    image::imageops::crop_imm(&resized, (nw - size) / 2, (nh - size) / 2, size, size).to_image()
}
