//! Colour science: sRGB (IEC 61966-2-1) ↔ linear RGB ↔ CIE XYZ ↔ CIE L\*a\*b\*, D65 white point.
//!
//! The constants are those of scikit-image's `rgb2lab` / `lab2rgb` (the reference the tests compare with):
//! the sRGB primaries matrix of IEC 61966-2-1 with 6 decimals, the D65 "2°" white point
//! (0.95047, 1.0, 1.08883), and CIE's linear segment (ε = 0.008856, κ-slope 7.787).
//! Conversions compute in `f64` and store `f32`, so an 8-bit sRGB → Lab → 8-bit sRGB round trip is exact
//! for all 2²⁴ colours (see the tests).
//!
//! Images are handled as planar [`LabImage`]s (an L plane, then a, then b), the layout the models consume.

use rayon::prelude::*;
use std::sync::LazyLock;

/// RGB (linear) → XYZ, IEC 61966-2-1 / ITU-R BT.709 primaries, D65.
pub const XYZ_FROM_RGB: [[f64; 3]; 3] = [
    [0.412453, 0.357580, 0.180423],
    [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227],
];

/// Reference white D65 (CIE 1931 2° observer), Y normalised to 1.
pub const D65: [f64; 3] = [0.95047, 1.0, 1.08883];

/// CIE ε: below it f(t) is linear.
pub const EPSILON: f64 = 0.008856;
/// Slope of the linear segment of f(t).
pub const KAPPA_SLOPE: f64 = 7.787;
/// cbrt(ε) as scikit-image writes it: the knee of f⁻¹ (linear below it).
pub const F_KNEE: f64 = 0.2068966;
/// sRGB encoding: linear light at or below this is scaled by [`SRGB_SLOPE`], above it follows the power law.
pub const SRGB_LINEAR_LIMIT: f64 = 0.0031308;
/// sRGB encoding: slope of the linear segment near black.
pub const SRGB_SLOPE: f64 = 12.92;
/// sRGB encoding: exponent of the power law (encoded = 1.055 · linear^(1/2.4) − 0.055).
pub const SRGB_GAMMA: f64 = 2.4;
/// sRGB encoding: scale of the power-law segment.
pub const SRGB_SCALE: f64 = 1.055;
/// sRGB encoding: offset of the power-law segment.
pub const SRGB_OFFSET: f64 = 0.055;

/// XYZ → linear RGB: the exact inverse of [`XYZ_FROM_RGB`] (computed once).
static RGB_FROM_XYZ: LazyLock<[[f64; 3]; 3]> = LazyLock::new(|| invert3(&XYZ_FROM_RGB));

/// sRGB 8-bit code → linear value, precomputed for all 256 codes.
static LINEAR_FROM_CODE: LazyLock<[f64; 256]> =
    LazyLock::new(|| std::array::from_fn(|i| srgb_to_linear(i as f64 / 255.0)));

fn invert3(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let c = |r0: usize, c0: usize, r1: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    [
        [c(1, 1, 2, 2) / det, -c(0, 1, 2, 2) / det, c(0, 1, 1, 2) / det],
        [-c(1, 0, 2, 2) / det, c(0, 0, 2, 2) / det, -c(0, 0, 1, 2) / det],
        [c(1, 0, 2, 1) / det, -c(0, 0, 2, 1) / det, c(0, 0, 1, 1) / det],
    ]
}

fn mul3(m: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    std::array::from_fn(|r| m[r][0] * v[0] + m[r][1] * v[1] + m[r][2] * v[2])
}

/// sRGB transfer curve, decoding: encoded value in [0, 1] → linear light.
pub fn srgb_to_linear(c: f64) -> f64 {
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// sRGB transfer curve, encoding: linear light → encoded value (not clipped).
pub fn linear_to_srgb(c: f64) -> f64 {
    if c <= SRGB_LINEAR_LIMIT {
        SRGB_SLOPE * c
    } else {
        SRGB_SCALE * c.powf(1.0 / SRGB_GAMMA) - SRGB_OFFSET
    }
}

/// Linear RGB → CIE XYZ (D65).
pub fn linear_rgb_to_xyz(rgb: [f64; 3]) -> [f64; 3] {
    mul3(&XYZ_FROM_RGB, rgb)
}

/// CIE XYZ (D65) → linear RGB (not clipped).
pub fn xyz_to_linear_rgb(xyz: [f64; 3]) -> [f64; 3] {
    mul3(&RGB_FROM_XYZ, xyz)
}

/// CIE XYZ → L\*a\*b\* relative to D65.
pub fn xyz_to_lab(xyz: [f64; 3]) -> [f64; 3] {
    let f = |t: f64| {
        if t > EPSILON {
            t.cbrt()
        } else {
            KAPPA_SLOPE * t + 16.0 / 116.0
        }
    };
    let [fx, fy, fz] = [f(xyz[0] / D65[0]), f(xyz[1] / D65[1]), f(xyz[2] / D65[2])];
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// L\*a\*b\* (D65) → CIE XYZ. Like scikit-image, a negative z (b too large for L) is clamped to 0.
pub fn lab_to_xyz(lab: [f64; 3]) -> [f64; 3] {
    let fy = (lab[0] + 16.0) / 116.0;
    let fx = fy + lab[1] / 500.0;
    let fz = (fy - lab[2] / 200.0).max(0.0);
    let finv = |t: f64| {
        if t > F_KNEE {
            t * t * t
        } else {
            (t - 16.0 / 116.0) / KAPPA_SLOPE
        }
    };
    [finv(fx) * D65[0], finv(fy) * D65[1], finv(fz) * D65[2]]
}

/// L of every 8-bit gray code (r = g = b), exactly as [`srgb8_to_lab`] computes it.
static LIGHTNESS_OF_GRAY: LazyLock<[f32; 256]> =
    LazyLock::new(|| std::array::from_fn(|i| srgb8_to_lab([i as u8; 3])[0]));

/// The L of one 8-bit sRGB colour: bit for bit `srgb8_to_lab(rgb)[0]`, at a fraction of its cost (a
/// table for grays, one cube root for colours, where the full conversion takes three). Recombining a
/// 12-megapixel photo reads it once per pixel.
pub fn srgb8_lightness(rgb: [u8; 3]) -> f32 {
    if rgb[0] == rgb[1] && rgb[1] == rgb[2] {
        return LIGHTNESS_OF_GRAY[rgb[0] as usize];
    }
    let lin = rgb.map(|c| LINEAR_FROM_CODE[c as usize]);
    let m = &XYZ_FROM_RGB[1];
    let y = m[0] * lin[0] + m[1] * lin[1] + m[2] * lin[2];
    let t = y / D65[1];
    let fy = if t > EPSILON {
        t.cbrt()
    } else {
        KAPPA_SLOPE * t + 16.0 / 116.0
    };
    (116.0 * fy - 16.0) as f32
}

/// The linear light at which each 8-bit sRGB code's rounding interval ends: code k covers linear
/// values from `ENCODE_THRESHOLDS[k - 1]` up to (not including) `ENCODE_THRESHOLDS[k]`.
static ENCODE_THRESHOLDS: LazyLock<[f64; 255]> =
    LazyLock::new(|| std::array::from_fn(|k| srgb_to_linear((k as f64 + 0.5) / 255.0)));

/// Linear light → 8-bit sRGB code, rounded to nearest and clipped: `(linear_to_srgb(c).clamp(0, 1) ·
/// 255).round()` by a binary search of the codes' boundaries instead of a power (the two differ only
/// on a boundary itself, by one code).
pub fn linear_to_srgb8(c: f64) -> u8 {
    if !(c > 0.0) {
        return 0; // and NaN, as the float → u8 cast of the power route gives
    }
    if c >= 1.0 {
        return 255;
    }
    // The code at the start of c's bucket, then up past the boundaries below c (at most a few, in the
    // darkest buckets, where the codes are densest).
    let mut k = ENCODE_START[(c * ENCODE_BUCKETS as f64) as usize] as usize;
    while k < 255 && ENCODE_THRESHOLDS[k] <= c {
        k += 1;
    }
    k as u8
}

/// Buckets of [`ENCODE_START`] over linear light [0, 1].
const ENCODE_BUCKETS: usize = 4096;

/// The 8-bit code of each bucket's lower end.
static ENCODE_START: LazyLock<Vec<u8>> = LazyLock::new(|| {
    (0..=ENCODE_BUCKETS)
        .map(|i| ENCODE_THRESHOLDS.partition_point(|&t| t <= i as f64 / ENCODE_BUCKETS as f64) as u8)
        .collect()
});

/// Lab → 8-bit sRGB (clipped, rounded to nearest): [`lab_to_srgb8`] without a power per channel.
pub fn lab_to_srgb8_fast(lab: [f32; 3]) -> [u8; 3] {
    xyz_to_linear_rgb(lab_to_xyz(lab.map(f64::from))).map(linear_to_srgb8)
}

/// [`lab_to_srgb8_fast`] of the colour [`fit_to_gamut`] makes of `lab`: the same bytes, with the linear
/// RGB of an in-gamut colour (most are) computed once for the test and the encoding.
pub fn lab_to_srgb8_fitted(lab: [f32; 3]) -> [u8; 3] {
    if let Some(lin) = linear_in_gamut(lab.map(f64::from)) {
        return lin.map(linear_to_srgb8);
    }
    let [a, b] = fit_out_of_gamut(lab);
    lab_to_srgb8_fast([lab[0], a, b])
}

/// One 8-bit sRGB colour → Lab.
pub fn srgb8_to_lab(rgb: [u8; 3]) -> [f32; 3] {
    let lin = rgb.map(|c| LINEAR_FROM_CODE[c as usize]);
    xyz_to_lab(linear_rgb_to_xyz(lin)).map(|v| v as f32)
}

/// Encoded sRGB in [0, 1] (any precision) → Lab.
pub fn srgb_to_lab(rgb: [f64; 3]) -> [f32; 3] {
    xyz_to_lab(linear_rgb_to_xyz(rgb.map(srgb_to_linear))).map(|v| v as f32)
}

/// Lab → encoded sRGB clipped to [0, 1] (out-of-gamut colours are clipped per channel).
pub fn lab_to_srgb(lab: [f32; 3]) -> [f64; 3] {
    let lin = xyz_to_linear_rgb(lab_to_xyz(lab.map(f64::from)));
    lin.map(|c| linear_to_srgb(c).clamp(0.0, 1.0))
}

/// Lab → 8-bit sRGB (clipped, rounded to nearest).
pub fn lab_to_srgb8(lab: [f32; 3]) -> [u8; 3] {
    lab_to_srgb(lab).map(|c| (c * 255.0).round() as u8)
}

/// Lab → 16-bit sRGB (clipped, rounded to nearest).
pub fn lab_to_srgb16(lab: [f32; 3]) -> [u16; 3] {
    lab_to_srgb(lab).map(|c| (c * 65535.0).round() as u16)
}

/// Whether a Lab colour is inside the sRGB gamut: its linear RGB lies in [0, 1] on every channel
/// (with a tolerance of `1e-9` for rounding).
pub fn in_srgb_gamut(lab: [f64; 3]) -> bool {
    linear_in_gamut(lab).is_some()
}

/// Whether a linear RGB channel lies in [0, 1], with a tolerance of `1e-9` for rounding.
fn in_unit(c: f64) -> bool {
    (-1e-9..=1.0 + 1e-9).contains(&c)
}

/// The linear RGB of a Lab colour inside the sRGB gamut (`None` outside it).
fn linear_in_gamut(lab: [f64; 3]) -> Option<[f64; 3]> {
    // lab_to_xyz clamps a negative z; a colour that needs the clamp is out of gamut.
    let fz = (lab[0] + 16.0) / 116.0 - lab[2] / 200.0;
    let lin = xyz_to_linear_rgb(lab_to_xyz(lab));
    (fz >= 0.0 && lin.iter().all(|&c| in_unit(c))).then_some(lin)
}

/// Bisection steps of [`fit_to_gamut`]: the chroma scale is found to within 2⁻¹⁴ (a chroma error
/// below 0.01 for the largest sRGB chroma, far under one 8-bit step).
const GAMUT_STEPS: u32 = 14;

/// The ab of `lab` with its chroma reduced along its own hue, at its own L, until the colour is inside
/// the sRGB gamut (unchanged when it already is). Converting an out-of-gamut colour with
/// [`lab_to_srgb`] clips each channel instead, which shifts its hue and lightness: a pale blue
/// predicted for a white wall (L 95, b −30) would come out as a saturated sky blue, while sRGB holds no
/// b below about −9 at that L.
///
/// Gray (a = b = 0) is inside the gamut at every L in [0, 100], so a solution always exists; the scale
/// is found by bisection (14 steps, to 2⁻¹⁴ of the chroma) and is the largest in-gamut one up to that precision.
pub fn fit_to_gamut(lab: [f32; 3]) -> [f32; 2] {
    if in_srgb_gamut(lab.map(f64::from)) {
        return [lab[1], lab[2]];
    }
    fit_out_of_gamut(lab)
}

/// [`fit_to_gamut`] of a colour known to lie outside the gamut.
fn fit_out_of_gamut(lab: [f32; 3]) -> [f32; 2] {
    let [l, a, b] = lab.map(f64::from);
    let l = l.clamp(0.0, 100.0);
    // `in_srgb_gamut([l, a·s, b·s])` with what does not depend on s computed once (the same arithmetic,
    // so the same answers).
    let finv = |t: f64| {
        if t > F_KNEE {
            t * t * t
        } else {
            (t - 16.0 / 116.0) / KAPPA_SLOPE
        }
    };
    let fy = (l + 16.0) / 116.0;
    let y = finv(fy) * D65[1];
    let m = &*RGB_FROM_XYZ;
    let inside = |s: f64| {
        let fz = fy - (b * s) / 200.0;
        if fz < 0.0 {
            return false;
        }
        let x = finv(fy + (a * s) / 500.0) * D65[0];
        let z = finv(fz) * D65[2];
        m.iter().all(|r| in_unit(r[0] * x + r[1] * y + r[2] * z))
    };
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..GAMUT_STEPS {
        let mid = 0.5 * (lo + hi);
        if inside(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    [(a * lo) as f32, (b * lo) as f32]
}

/// [`fit_to_gamut`] for planes: every pixel's ab (planar a then b, Lab units) fitted at its own L
/// (`l`, one value per pixel).
pub fn fit_planes_to_gamut(l: &[f32], ab: &mut [f32]) {
    let n = l.len();
    assert_eq!(ab.len(), 2 * n, "ab must be 2 planes of {n} pixels");
    let (a, b) = ab.split_at_mut(n);
    for p in 0..n {
        [a[p], b[p]] = fit_to_gamut([l[p], a[p], b[p]]);
    }
}

/// A planar CIE Lab image: `data` holds the L plane, then a, then b, each `width * height` values
/// in row-major order. L is in [0, 100], a and b roughly in [-110, 110].
#[derive(Debug, Clone, PartialEq)]
pub struct LabImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The L, a and b planes, one after another (`3 * width * height` values).
    pub data: Vec<f32>,
}

/// Pixels per parallel work unit: big enough that rayon's overhead vanishes.
const CHUNK: usize = 16 * 1024;

impl LabImage {
    /// Number of pixels.
    pub fn pixels(&self) -> usize {
        self.width as usize * self.height as usize
    }

    /// The L plane.
    pub fn l(&self) -> &[f32] {
        &self.data[..self.pixels()]
    }

    /// The a and b planes, a first.
    pub fn ab(&self) -> &[f32] {
        &self.data[self.pixels()..]
    }

    /// Mean chroma √(a² + b²) over the pixels, Lab units (0 for a gray image).
    pub fn mean_chroma(&self) -> f32 {
        let n = self.pixels();
        let (a, b) = self.ab().split_at(n);
        a.iter().zip(b).map(|(a, b)| a.hypot(*b)).sum::<f32>() / n.max(1) as f32
    }

    /// Converts an interleaved 8-bit sRGB image (rayon-parallel).
    pub fn from_rgb8(img: &image::RgbImage) -> Self {
        let n = img.width() as usize * img.height() as usize;
        let mut data = vec![0f32; 3 * n];
        let (l, ab) = data.split_at_mut(n);
        let (a, b) = ab.split_at_mut(n);
        l.par_chunks_mut(CHUNK)
            .zip(a.par_chunks_mut(CHUNK))
            .zip(b.par_chunks_mut(CHUNK))
            .zip(img.as_raw().par_chunks(3 * CHUNK))
            .for_each(|(((l, a), b), rgb)| {
                for (i, px) in rgb.chunks_exact(3).enumerate() {
                    let [lv, av, bv] = srgb8_to_lab([px[0], px[1], px[2]]);
                    (l[i], a[i], b[i]) = (lv, av, bv);
                }
            });
        Self {
            width: img.width(),
            height: img.height(),
            data,
        }
    }

    /// Converts to interleaved 8-bit sRGB (clipped; rayon-parallel).
    pub fn to_rgb8(&self) -> image::RgbImage {
        let n = self.pixels();
        let mut out = vec![0u8; 3 * n];
        out.par_chunks_mut(3 * CHUNK).enumerate().for_each(|(c, dst)| {
            for (i, px) in dst.chunks_exact_mut(3).enumerate() {
                let p = c * CHUNK + i;
                px.copy_from_slice(&lab_to_srgb8([self.data[p], self.data[n + p], self.data[2 * n + p]]));
            }
        });
        image::RgbImage::from_raw(self.width, self.height, out).expect("buffer sized for the image")
    }
}

/// Named normalisations between Lab values and the ranges the networks see.
///
/// | name | maps | range | used by |
/// |---|---|---|---|
/// | [`norm::l_to_unit`] | L / 100 | [0, 1] | MLEU input (the paper's [0, 1]) |
/// | [`norm::l_to_centered`] | (L − 50) / 100 | [−0.5, 0.5] | Zhang et al. 2016 input |
/// | [`norm::ab_to_signed`] | ab / 110 | ≈ [−1, 1] | MLEU regression target (tanh), Zhang's `ab_norm` |
/// | [`norm::ab_to_unit`] | (ab + 128) / 255 | [0, 1] | ChromaGAN (sigmoid), OpenCV's 8-bit Lab |
pub mod norm {
    /// L scale: L / [`L_RANGE`] lies in [0, 1].
    pub const L_RANGE: f32 = 100.0;
    /// L centre subtracted by the centred convention.
    pub const L_CENTER: f32 = 50.0;
    /// ab scale of the signed convention: every sRGB colour has |a|, |b| < 110 (max |b| = 107.9).
    pub const AB_SIGNED_SCALE: f32 = 110.0;
    /// ab offset of the unit convention (OpenCV's 8-bit Lab stores a + 128).
    pub const AB_UNIT_OFFSET: f32 = 128.0;
    /// ab scale of the unit convention.
    pub const AB_UNIT_SCALE: f32 = 255.0;

    /// L ∈ [0, 100] → [0, 1].
    pub fn l_to_unit(l: f32) -> f32 {
        l / L_RANGE
    }
    /// [0, 1] → L ∈ [0, 100].
    pub fn unit_to_l(x: f32) -> f32 {
        x * L_RANGE
    }
    /// L → (L − 50) / 100 ∈ [−0.5, 0.5].
    pub fn l_to_centered(l: f32) -> f32 {
        (l - L_CENTER) / L_RANGE
    }
    /// (L − 50) / 100 → L.
    pub fn centered_to_l(x: f32) -> f32 {
        x * L_RANGE + L_CENTER
    }
    /// a or b → ab / 110 ∈ [−1, 1] (clamped, so a tanh output can reach every target).
    pub fn ab_to_signed(ab: f32) -> f32 {
        (ab / AB_SIGNED_SCALE).clamp(-1.0, 1.0)
    }
    /// [−1, 1] → a or b.
    pub fn signed_to_ab(x: f32) -> f32 {
        x * AB_SIGNED_SCALE
    }
    /// a or b → (ab + 128) / 255 ∈ [0, 1] (clamped).
    pub fn ab_to_unit(ab: f32) -> f32 {
        ((ab + AB_UNIT_OFFSET) / AB_UNIT_SCALE).clamp(0.0, 1.0)
    }
    /// [0, 1] → a or b.
    pub fn unit_to_ab(x: f32) -> f32 {
        x * AB_UNIT_SCALE - AB_UNIT_OFFSET
    }
}
