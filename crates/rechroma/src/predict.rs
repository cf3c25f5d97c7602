//! From a network's output to ab at the working size: run the network on an L plane, decode a
//! classification head's distribution (annealed mean, prior correction), upsample a coarse distribution,
//! apply the vividness. Shared by colorizing ([`crate::infer`]) and validation during training
//! ([`crate::train`](mod@crate::train)), so both score exactly what a user gets.

use crate::color::norm;
use crate::engine::Forward;
use crate::hints::HINT_PLANES;
use crate::model::chromagan::ChromaGan;
use crate::model::mleu::{SizeError, check_size};
use crate::quantize::DecodeConfig;
use crate::quantize::decode::{Decoding, MAX_VIVIDNESS, chroma_gain, decode_planes_offset, entropy_plane};
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

/// Errors of running a network on an L plane.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// The plane's sides are not multiples of 32.
    #[error(transparent)]
    Size(#[from] SizeError),
    /// A confidence map was asked of a model that predicts no distribution.
    #[error(
        "the model regresses ab (MLEU regression head or ChromaGAN): it predicts no colour distribution, so no confidence map"
    )]
    NoDistribution,
    /// A ChromaGAN was given a plane of another size than its fixed one.
    #[error("this ChromaGAN takes {expected}×{expected} inputs, not {width}×{height}")]
    FixedSize {
        /// The generator's side.
        expected: usize,
        /// The plane's width.
        width: usize,
        /// The plane's height.
        height: usize,
    },
}

/// How [`mleu_predict`] decodes a network's output.
#[derive(Debug, Clone, Copy)]
pub struct PredictOptions<'a> {
    /// Distribution → ab (classification heads).
    pub decoding: Decoding,
    /// Logit offsets added before decoding (the prior correction), one per bin.
    pub offset: Option<&'a [f32]>,
    /// Vividness v ∈ [0, 2]: each pixel's chroma × [`chroma_gain`]; 1 keeps the decoded colours.
    pub vividness: f32,
    /// Also return the per-pixel entropy.
    pub entropy: bool,
    /// Colour hints at the working size, `[3, H, W]` planar ([`crate::hints::render`]), for a model that
    /// takes them (ignored by one that takes none).
    pub hints: Option<&'a [f32]>,
}

impl PredictOptions<'_> {
    /// The options of a decode configuration, with no prior correction and no entropy map.
    pub fn new(decode: &DecodeConfig) -> Self {
        Self {
            decoding: decode.decoding,
            offset: None,
            vividness: decode.vividness,
            entropy: false,
            hints: None,
        }
    }
}

/// Multiplies each pixel's ab (planar, `n` pixels) by its chroma gain: [`chroma_gain`] of its entropy,
/// or `v` everywhere when there is no distribution.
fn apply_vividness(ab: &mut [f32], entropy: Option<&[f32]>, v: f32) {
    if v == 1.0 {
        return;
    }
    let n = ab.len() / 2;
    let (a, b) = ab.split_at_mut(n);
    for p in 0..n {
        let g = entropy.map_or(v.clamp(0.0, MAX_VIVIDNESS), |h| chroma_gain(h[p], v));
        a[p] *= g;
        b[p] *= g;
    }
}

/// Removes the share `share` ∈ [0, 1] of the overall colour cast of `ab` (planar a then b, Lab units):
/// subtracts `share` × the median a and the median b of all pixels from every pixel — a white balance of
/// the *colours* under the gray-world assumption (a photo's typical pixel is neutral), with the median so
/// that one large coloured region (a sky) counts as one pixel more, not as the cast. Lightness is not
/// touched. 0 changes nothing; 1 makes the median colour neutral.
pub fn remove_cast(ab: &mut [f32], share: f32) {
    let n = ab.len() / 2;
    if share <= 0.0 || n == 0 {
        return;
    }
    let median = |plane: &[f32]| {
        let mut v = plane.to_vec();
        let mid = n / 2;
        *v.select_nth_unstable_by(mid, f32::total_cmp).1
    };
    let (a, b) = ab.split_at_mut(n);
    let (ma, mb) = (median(a) * share.min(1.0), median(b) * share.min(1.0));
    a.iter_mut().for_each(|v| *v -= ma);
    b.iter_mut().for_each(|v| *v -= mb);
}

/// What the network predicted at the working size.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Planar a then b, Lab units.
    pub ab: Vec<f32>,
    /// Normalised entropy of the colour distribution per pixel (0 sure … 1 uniform), when asked for.
    pub entropy: Option<Vec<f32>>,
}

/// Runs an MLEU network (compiled by the inference engine, [`crate::engine::Net`], or burn's on a GPU)
/// on one L plane
/// (`w × h`, Lab units, sides multiples of 32).
///
/// # Shapes
/// `l`: `w·h` values → ab: `2·w·h` (planar), entropy: `w·h`.
pub fn mleu_predict(
    model: &dyn Forward,
    l: &[f32],
    (w, h): (usize, usize),
    options: &PredictOptions,
) -> Result<Prediction, PredictError> {
    let entropy = options.entropy;
    check_size(h, w)?;
    if entropy && !model.head().classifies() {
        return Err(PredictError::NoDistribution);
    }
    if let Some(planes) = options.hints.filter(|_| model.takes_hints()) {
        assert_eq!(planes.len(), HINT_PLANES * w * h, "hint planes must be [3, {h}, {w}]");
    }
    let out = model.forward(l, (w, h), options.hints)?;
    // The distribution's resolution (a quarter of the input's at class stride 4).
    let s = model.class_stride();
    let (cw, ch) = (w / s, h / s);
    let up = |plane: Vec<f32>| match s {
        1 => plane,
        _ => upsample_bilinear(&plane, cw, ch, w, h),
    };
    let need_entropy = entropy || options.vividness != 1.0;
    let h_plane = out
        .logits
        .as_ref()
        .filter(|_| need_entropy)
        .map(|data| up(entropy_plane(data, cw * ch)));
    let mut ab = match (out.ab, &out.logits) {
        // Regression and joint heads: the regressed ab (the joint head's distribution gives the entropy).
        (Some(ab), _) => ab.into_iter().map(norm::signed_to_ab).collect(),
        (None, Some(data)) => {
            let (a, b) = decode_planes_offset(data, cw * ch, options.decoding, options.offset);
            [up(a), up(b)].concat()
        }
        (None, None) => unreachable!("every head has an output"),
    };
    apply_vividness(&mut ab, h_plane.as_deref(), options.vividness);
    Ok(Prediction {
        ab,
        entropy: if entropy { h_plane } else { None },
    })
}

/// The class logits of an MLEU with a distribution (classification or joint head) on one L plane,
/// with optional hint planes: `[313, h/s, w/s]` planar (s the class stride) and that size.
pub fn mleu_logits(
    model: &dyn Forward,
    l: &[f32],
    (w, h): (usize, usize),
    hints: Option<&[f32]>,
) -> Result<(Vec<f32>, (usize, usize)), PredictError> {
    check_size(h, w)?;
    if !model.head().classifies() {
        return Err(PredictError::NoDistribution);
    }
    let logits = model
        .forward(l, (w, h), hints)?
        .logits
        .expect("a classifying head has logits");
    let s = model.class_stride();
    Ok((logits, (w / s, h / s)))
}

/// Runs a ChromaGAN generator (its colour branch only) on one L plane of its fixed size.
///
/// # Shapes
/// `l`: `w·h` values → ab: `2·w·h` (planar, Lab units)
pub fn chromagan_predict(
    model: &ChromaGan,
    l: &[f32],
    (w, h): (usize, usize),
    vividness: f32,
    device: &Device,
) -> Result<Prediction, PredictError> {
    if w != model.size || h != model.size {
        return Err(PredictError::FixedSize {
            expected: model.size,
            width: w,
            height: h,
        });
    }
    let x = Tensor::<4>::from_data(TensorData::new(l.to_vec(), [1, 1, h, w]), device);
    let data: Vec<f32> = model
        .colorize(x)
        .into_data()
        .convert::<f32>()
        .try_into_vec()
        .expect("f32 data");
    let mut ab: Vec<f32> = data.into_iter().map(norm::unit_to_ab).collect();
    apply_vividness(&mut ab, None, vividness);
    Ok(Prediction { ab, entropy: None })
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
pub(crate) struct Sampler<'a> {
    plane: &'a [f32],
    sw: usize,
    xs: Vec<(usize, usize, f32)>,
    ys: Vec<(usize, usize, f32)>,
}

impl<'a> Sampler<'a> {
    pub(crate) fn new(plane: &'a [f32], (sw, sh): (usize, usize), (dw, dh): (usize, usize)) -> Self {
        assert_eq!(plane.len(), sw * sh, "plane must be {sw}×{sh}");
        Self {
            plane,
            sw,
            xs: taps(sw, dw),
            ys: taps(sh, dh),
        }
    }

    /// The interpolated values of row `y`, written into `out` (one per destination column).
    pub(crate) fn row(&self, y: usize, out: &mut [f32]) {
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

/// Bilinear resize of one `sw × sh` plane to `dw × dh` (pixel centres aligned: PyTorch's `align_corners=False`, scikit-image's `order=1`).
pub fn upsample_bilinear(plane: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let sampler = Sampler::new(plane, (sw, sh), (dw, dh));
    let mut out = vec![0f32; dw * dh];
    out.par_chunks_mut(dw)
        .enumerate()
        .for_each(|(y, row)| sampler.row(y, row));
    out
}
