//! Pre- and post-processing around the network: the working size, bilinear upsampling of the predicted
//! planes, and recombination of the upsampled ab with the photo's own full-resolution L.
//!
//! Upsampling and recombination are fused into one pass over the output rows, hand-written rather than
//! done with `fast_image_resize`: resizing the ab planes first would hold two full-resolution `f32`
//! planes (96 MB for a 12-megapixel photo) that this pass never allocates. Peak memory is then the
//! decoded photo plus the output image, linear in pixels.

use crate::color::{fit_to_gamut, lab_to_srgb8_fast, lab_to_srgb8_fitted, lab_to_srgb16, srgb_to_lab, srgb8_lightness};
use crate::model::mleu::SIZE_MULTIPLE;
use crate::predict::Sampler;
use crate::quantize::Gamut;
use image::{DynamicImage, ImageBuffer, Pixel, Primitive, Rgb};
use rayon::prelude::*;

/// The widest aspect ratio (long side : short side) the network sees: a thinner photo is squeezed to it
/// at the working size (its colours are stretched back over the full-resolution L), so the working
/// image never exceeds about 1.3·n² pixels, whatever the photo's shape (a 1 × 20000 strip once made a
/// 36192 × 32 working image and 1.9 GB of activations).
pub const MAX_WORKING_ASPECT: f64 = 16.0;

/// The working size for a `width × height` photo and a nominal size `n`: about n² pixels, the photo's
/// aspect ratio kept up to [`MAX_WORKING_ASPECT`], both sides multiples of 32 (at least 32). A square
/// photo at n = 256 gets 256×256; a 4:3 one 288×224; a 100:1 strip 1024×64.
pub fn working_size(width: u32, height: u32, n: u32) -> (u32, u32) {
    let m = SIZE_MULTIPLE as f64;
    let limit = MAX_WORKING_ASPECT.sqrt();
    let r = (width.max(1) as f64 / height.max(1) as f64)
        .sqrt()
        .clamp(1.0 / limit, limit);
    let side = |s: f64| ((s / m).round().max(1.0) * m) as u32;
    (side(n as f64 * r), side(n as f64 / r))
}

/// The recombined colour image: the photo's own L with `ab` (planar a then b, `sw × sh`, Lab units)
/// upsampled to the photo's size, converted to sRGB. Out-of-gamut colours are clipped per channel or,
/// with [`Gamut::Fit`], reduced in chroma along their hue at the pixel's own full-resolution L.
///
/// The output keeps the input's precision and alpha: 8-bit inputs give `Rgb8`/`Rgba8`, 16-bit and float
/// inputs `Rgb16`/`Rgba16`; gray inputs become RGB. Alpha is copied unchanged.
pub fn recombine(img: &DynamicImage, ab: &[f32], (sw, sh): (usize, usize), gamut: Gamut) -> DynamicImage {
    assert_eq!(ab.len(), 2 * sw * sh, "ab must be 2 planes of {sw}×{sh}");
    let dims = (img.width() as usize, img.height() as usize);
    let a = Sampler::new(&ab[..sw * sh], (sw, sh), dims);
    let b = Sampler::new(&ab[sw * sh..], (sw, sh), dims);
    let planes = Planes { a, b, gamut };
    let l8 = Depth {
        lightness: srgb8_lightness,
        encode: lab_to_srgb8_fast,
        encode_fitted: lab_to_srgb8_fitted,
    };
    let l16 = Depth {
        lightness: |p: [u16; 3]| srgb_to_lab(p.map(|c| f64::from(c) / 65535.0))[0],
        encode: lab_to_srgb16,
        encode_fitted: |lab: [f32; 3]| {
            let [a, b] = fit_to_gamut(lab);
            lab_to_srgb16([lab[0], a, b])
        },
    };
    let (w, h) = (img.width(), img.height());
    let rgb8 = |buf| DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, buf).expect("sized"));
    let rgba8 = |buf| DynamicImage::ImageRgba8(ImageBuffer::from_raw(w, h, buf).expect("sized"));
    let rgb16 = |buf| DynamicImage::ImageRgb16(ImageBuffer::from_raw(w, h, buf).expect("sized"));
    let rgba16 = |buf| DynamicImage::ImageRgba16(ImageBuffer::from_raw(w, h, buf).expect("sized"));
    match img {
        DynamicImage::ImageLuma8(i) => rgb8(planes.compose(i, false, l8)),
        DynamicImage::ImageLumaA8(i) => rgba8(planes.compose(i, true, l8)),
        DynamicImage::ImageRgb8(i) => rgb8(planes.compose(i, false, l8)),
        DynamicImage::ImageRgba8(i) => rgba8(planes.compose(i, true, l8)),
        DynamicImage::ImageLuma16(i) => rgb16(planes.compose(i, false, l16)),
        DynamicImage::ImageLumaA16(i) => rgba16(planes.compose(i, true, l16)),
        DynamicImage::ImageRgb16(i) => rgb16(planes.compose(i, false, l16)),
        DynamicImage::ImageRgba16(i) => rgba16(planes.compose(i, true, l16)),
        // Float (and any future) colour types: through 16-bit RGBA, the widest integer type kept.
        other => recombine(&DynamicImage::ImageRgba16(other.to_rgba16()), ab, (sw, sh), gamut),
    }
}

/// One bit depth: the lightness of a pixel's RGB, and a Lab colour → its RGB samples (clipped, and
/// fitted into the gamut first).
#[derive(Clone, Copy)]
struct Depth<S> {
    lightness: fn([S; 3]) -> f32,
    encode: fn([f32; 3]) -> [S; 3],
    encode_fitted: fn([f32; 3]) -> [S; 3],
}

/// The predicted a and b planes, sampled at full resolution, and what to do out of gamut.
struct Planes<'a> {
    a: Sampler<'a>,
    b: Sampler<'a>,
    gamut: Gamut,
}

impl Planes<'_> {
    /// The output samples (RGB, or RGBA with `alpha`, in the input's subpixel type) of the photo `img`.
    fn compose<P, S>(&self, img: &ImageBuffer<P, Vec<S>>, alpha: bool, depth: Depth<S>) -> Vec<S>
    where
        P: Pixel<Subpixel = S> + Sync,
        S: Primitive + Send + Sync,
    {
        let (w, channels) = (img.width() as usize, if alpha { 4 } else { 3 });
        let mut out = vec![S::DEFAULT_MIN_VALUE; w * img.height() as usize * channels];
        out.par_chunks_mut(w * channels).enumerate().for_each_init(
            || (vec![0f32; w], vec![0f32; w]),
            |(ra, rb), (y, row)| {
                self.a.row(y, ra);
                self.b.row(y, rb);
                for (x, px) in row.chunks_exact_mut(channels).enumerate() {
                    let [r, g, b, al] = img.get_pixel(x as u32, y as u32).to_rgba().0;
                    let l = (depth.lightness)([r, g, b]);
                    let rgb = match self.gamut {
                        Gamut::Clip => (depth.encode)([l, ra[x], rb[x]]),
                        Gamut::Fit => (depth.encode_fitted)([l, ra[x], rb[x]]),
                    };
                    px[..3].copy_from_slice(&rgb);
                    if alpha {
                        px[3] = al;
                    }
                }
            },
        );
        out
    }
}

/// The 8-bit RGB image the network sees: the photo resized (Lanczos-3) to `w × h`. Alpha is ignored;
/// 16-bit precision is not needed at the working size.
pub fn working_image(img: &DynamicImage, w: u32, h: u32) -> image::RgbImage {
    match img {
        DynamicImage::ImageRgb8(rgb) => crate::data::resize(rgb, w, h),
        other => crate::data::resize(&other.to_rgb8(), w, h),
    }
}

/// The normalised entropies the confidence map spreads its colour scale over: at most 0.6 is drawn dark
/// purple (sure: the model's typical sky or foliage), 1 (a uniform distribution) yellow. The shipped
/// model's pixels lie mostly between 0.6 and 1 (their median is 0.8–0.95 on `dev`), so mapping [0, 1]
/// drew nearly every pixel in the top quarter of the scale.
pub const CONFIDENCE_RANGE: (f32, f32) = (0.6, 1.0);

/// A heat map (viridis: dark purple at `range.0` and below, yellow at `range.1` and above) of a plane.
pub fn heat_map(values: &[f32], w: u32, h: u32, range: (f32, f32)) -> image::RgbImage {
    use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};
    let mut out = image::RgbImage::new(w, h);
    for (px, &v) in out.pixels_mut().zip(values) {
        let c = ViridisRGB.get_color_normalized(v.clamp(range.0, range.1), range.0, range.1);
        *px = Rgb([c.0, c.1, c.2]);
    }
    out
}
