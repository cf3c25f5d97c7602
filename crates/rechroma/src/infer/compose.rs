//! Pre- and post-processing around the network: the working size, bilinear upsampling of the predicted
//! planes, and recombination of the upsampled ab with the photo's own full-resolution L.
//!
//! Upsampling and recombination are fused into one pass over the output rows, hand-written rather than
//! done with `fast_image_resize`: resizing the ab planes first would hold two full-resolution `f32`
//! planes (96 MB for a 12-megapixel photo) that this pass never allocates. Peak memory is then the
//! decoded photo plus the output image, linear in pixels.

use crate::color::{fit_to_gamut, lab_to_srgb, srgb_to_lab, srgb8_to_lab};
use crate::model::mleu::SIZE_MULTIPLE;
use crate::quantize::Gamut;
use image::{DynamicImage, ImageBuffer, Rgb};
use rayon::prelude::*;

/// The working size for a `width × height` photo and a nominal size `n`: about n² pixels, the photo's
/// aspect ratio kept, both sides multiples of 32 (at least 32). A square photo at n = 256 gets 256×256;
/// a 4:3 one 288×224.
pub fn working_size(width: u32, height: u32, n: u32) -> (u32, u32) {
    let m = SIZE_MULTIPLE as f64;
    let r = (width.max(1) as f64 / height.max(1) as f64).sqrt();
    let side = |s: f64| ((s / m).round().max(1.0) * m) as u32;
    (side(n as f64 * r), side(n as f64 / r))
}

/// Bilinear taps from `src` samples onto `dst` samples with pixel centres aligned (half-pixel
/// convention, PyTorch's `align_corners=False`, scikit-image's `resize(order=1, mode="edge")`):
/// for each destination index, the two source indices and the weight of the second.
fn taps(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let x = ((d as f64 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f64);
            let i0 = x.floor() as usize;
            (i0, (i0 + 1).min(src - 1), (x - i0 as f64) as f32)
        })
        .collect()
}

/// A plane of `sw × sh` values sampled bilinearly at full resolution, one row at a time.
struct Sampler<'a> {
    plane: &'a [f32],
    sw: usize,
    xs: Vec<(usize, usize, f32)>,
    ys: Vec<(usize, usize, f32)>,
}

impl<'a> Sampler<'a> {
    fn new(plane: &'a [f32], (sw, sh): (usize, usize), (dw, dh): (usize, usize)) -> Self {
        assert_eq!(plane.len(), sw * sh, "plane must be {sw}×{sh}");
        Self {
            plane,
            sw,
            xs: taps(sw, dw),
            ys: taps(sh, dh),
        }
    }

    /// The interpolated values of row `y`, written into `out` (one per destination column).
    fn row(&self, y: usize, out: &mut [f32]) {
        let (y0, y1, fy) = self.ys[y];
        let (r0, r1) = (
            &self.plane[y0 * self.sw..][..self.sw],
            &self.plane[y1 * self.sw..][..self.sw],
        );
        for (o, &(x0, x1, fx)) in out.iter_mut().zip(&self.xs) {
            let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
            let bottom = r1[x0] + (r1[x1] - r1[x0]) * fx;
            *o = top + (bottom - top) * fy;
        }
    }
}

/// Bilinear resize of one `sw × sh` plane to `dw × dh` (see [`taps`] for the convention).
pub fn upsample_bilinear(plane: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let sampler = Sampler::new(plane, (sw, sh), (dw, dh));
    let mut out = vec![0f32; dw * dh];
    out.par_chunks_mut(dw)
        .enumerate()
        .for_each(|(y, row)| sampler.row(y, row));
    out
}

/// The recombined colour image: the photo's own L with `ab` (planar a then b, `sw × sh`, Lab units)
/// upsampled to the photo's size, converted to sRGB. Out-of-gamut colours are clipped per channel or,
/// with [`Gamut::Fit`], reduced in chroma along their hue at the pixel's own full-resolution L.
///
/// The output keeps the input's precision and alpha: 8-bit inputs give `Rgb8`/`Rgba8`, 16-bit and float
/// inputs `Rgb16`/`Rgba16`; gray inputs become RGB. Alpha is copied unchanged.
pub fn recombine(img: &DynamicImage, ab: &[f32], (sw, sh): (usize, usize), gamut: Gamut) -> DynamicImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    assert_eq!(ab.len(), 2 * sw * sh, "ab must be 2 planes of {sw}×{sh}");
    let a = Sampler::new(&ab[..sw * sh], (sw, sh), (w, h));
    let b = Sampler::new(&ab[sw * sh..], (sw, sh), (w, h));
    // `pixel(x, y)` gives the input's (L, alpha); `C` output channels of type `T`, `max` its full scale.
    #[allow(clippy::too_many_arguments)]
    fn compose<T: Copy + Default + Send>(
        (w, h): (usize, usize),
        (a, b): (&Sampler, &Sampler),
        gamut: Gamut,
        channels: usize,
        max: f64,
        pixel: impl Fn(usize, usize) -> (f32, Option<T>) + Sync,
        convert: impl Fn(f64) -> T + Sync,
    ) -> Vec<T> {
        let mut out = vec![T::default(); w * h * channels];
        out.par_chunks_mut(w * channels).enumerate().for_each_init(
            || (vec![0f32; w], vec![0f32; w]),
            |(ra, rb), (y, row)| {
                a.row(y, ra);
                b.row(y, rb);
                for (x, px) in row.chunks_exact_mut(channels).enumerate() {
                    let (l, alpha) = pixel(x, y);
                    let (pa, pb) = match gamut {
                        Gamut::Clip => (ra[x], rb[x]),
                        Gamut::Fit => fit_to_gamut([l, ra[x], rb[x]]).into(),
                    };
                    let rgb = lab_to_srgb([l, pa, pb]);
                    for c in 0..3 {
                        px[c] = convert(rgb[c] * max);
                    }
                    if let Some(alpha) = alpha {
                        px[3] = alpha;
                    }
                }
            },
        );
        out
    }
    let to8 = |v: f64| v.round() as u8;
    let to16 = |v: f64| v.round() as u16;
    let dims = (w, h);
    let samplers = (&a, &b);
    let (wu, hu) = (w as u32, h as u32);
    let l8 = |p: [u8; 3]| srgb8_to_lab(p)[0];
    let l16 = |p: [u16; 3]| srgb_to_lab(p.map(|c| f64::from(c) / 65535.0))[0];
    let rgb8 = |buf| DynamicImage::ImageRgb8(ImageBuffer::from_raw(wu, hu, buf).expect("sized"));
    let rgba8 = |buf| DynamicImage::ImageRgba8(ImageBuffer::from_raw(wu, hu, buf).expect("sized"));
    let rgb16 = |buf| DynamicImage::ImageRgb16(ImageBuffer::from_raw(wu, hu, buf).expect("sized"));
    let rgba16 = |buf| DynamicImage::ImageRgba16(ImageBuffer::from_raw(wu, hu, buf).expect("sized"));
    let at = |x: usize, y: usize| (x as u32, y as u32);
    match img {
        DynamicImage::ImageLuma8(i) => rgb8(compose(
            dims,
            samplers,
            gamut,
            3,
            255.0,
            |x, y| {
                let g = i.get_pixel(x as u32, y as u32)[0];
                (l8([g; 3]), None)
            },
            to8,
        )),
        DynamicImage::ImageLumaA8(i) => rgba8(compose(
            dims,
            samplers,
            gamut,
            4,
            255.0,
            |x, y| {
                let [g, al] = i.get_pixel(x as u32, y as u32).0;
                (l8([g; 3]), Some(al))
            },
            to8,
        )),
        DynamicImage::ImageRgb8(i) => rgb8(compose(
            dims,
            samplers,
            gamut,
            3,
            255.0,
            |x, y| {
                let (x, y) = at(x, y);
                (l8(i.get_pixel(x, y).0), None)
            },
            to8,
        )),
        DynamicImage::ImageRgba8(i) => rgba8(compose(
            dims,
            samplers,
            gamut,
            4,
            255.0,
            |x, y| {
                let (x, y) = at(x, y);
                let [r, g, bb, al] = i.get_pixel(x, y).0;
                (l8([r, g, bb]), Some(al))
            },
            to8,
        )),
        DynamicImage::ImageLuma16(i) => rgb16(compose(
            dims,
            samplers,
            gamut,
            3,
            65535.0,
            |x, y| {
                let g = i.get_pixel(x as u32, y as u32)[0];
                (l16([g; 3]), None)
            },
            to16,
        )),
        DynamicImage::ImageLumaA16(i) => rgba16(compose(
            dims,
            samplers,
            gamut,
            4,
            65535.0,
            |x, y| {
                let [g, al] = i.get_pixel(x as u32, y as u32).0;
                (l16([g; 3]), Some(al))
            },
            to16,
        )),
        DynamicImage::ImageRgb16(i) => rgb16(compose(
            dims,
            samplers,
            gamut,
            3,
            65535.0,
            |x, y| {
                let (x, y) = at(x, y);
                (l16(i.get_pixel(x, y).0), None)
            },
            to16,
        )),
        DynamicImage::ImageRgba16(i) => rgba16(compose(
            dims,
            samplers,
            gamut,
            4,
            65535.0,
            |x, y| {
                let (x, y) = at(x, y);
                let [r, g, bb, al] = i.get_pixel(x, y).0;
                (l16([r, g, bb]), Some(al))
            },
            to16,
        )),
        // Float (and any future) colour types: through 16-bit RGBA, the widest integer type kept.
        other => recombine(&DynamicImage::ImageRgba16(other.to_rgba16()), ab, (sw, sh), gamut),
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

/// A heat map (viridis: dark purple = 0, yellow = 1) of a plane of values in [0, 1].
pub fn heat_map(values: &[f32], w: u32, h: u32) -> image::RgbImage {
    use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};
    let mut out = image::RgbImage::new(w, h);
    for (px, &v) in out.pixels_mut().zip(values) {
        let c = ViridisRGB.get_color_normalized(v.clamp(0.0, 1.0), 0.0, 1.0);
        *px = Rgb([c.0, c.1, c.2]);
    }
    out
}
