//! The engine's other layers on NHWC maps: the decoder's upsampling convolution as four small ones
//! ([`UpConv`]), direct depthwise convolutions ([`Depthwise`], AVX-512 where the CPU has it) and 2×2
//! max-pooling.

use super::conv::{Act, Conv, Map, Src, copy_channels, pad_before};
use rayon::prelude::*;

/// A ×2 nearest-neighbour upsampling followed by a 3×3 "same" convolution (the decoder's `up_conv`),
/// computed as four 2×2 convolutions of the low-resolution map, one per output parity (py, px): the
/// taps of the 3×3 kernel that read the same low-resolution pixel are summed into one (rows: for
/// py = 0, {ky 0} at offset −1 and {ky 1, 2} at 0; for py = 1, {ky 0, 1} at 0 and {ky 2} at +1; columns
/// alike). Exact, padding included (the upsampled map's padding is the low-resolution map's), and 4/9
/// of the multiply-adds.
#[derive(Debug, Clone)]
pub struct UpConv {
    /// The parts for parities (0, 0), (0, 1), (1, 0), (1, 1).
    parts: Vec<Conv>,
    /// Output channels.
    pub c_out: usize,
}

impl UpConv {
    /// From the 3×3 convolution's weights `[c_out, c_in, 3, 3]` (OIHW) and an optional bias.
    pub fn new(weight: &[f32], shape: [usize; 4], bias: Option<&[f32]>, act: Act) -> Self {
        let [c_out, c_in, k, _] = shape;
        assert_eq!(k, 3, "a 3×3 convolution after the upsampling");
        // The 2×2 tap (0 or 1) of 3×3 tap `t` for parity `p`: its offset ⌊(p + t − 1) / 2⌋ ∈ {−1, 0, 1},
        // shifted so that the part's first tap is 0 (the part pads 1 − p before).
        let tap = |p: usize, t: usize| (p + t + 1) / 2 - p;
        let parts = (0..4)
            .map(|parity| {
                let (py, px) = (parity / 2, parity % 2);
                let mut w2 = vec![0.0; c_out * c_in * 4];
                for oc in 0..c_out * c_in {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            w2[oc * 4 + tap(py, ky) * 2 + tap(px, kx)] += weight[oc * 9 + ky * 3 + kx];
                        }
                    }
                }
                Conv::new(&w2, [c_out, c_in, 2, 2], bias, 1, act).with_pad((1 - py, 1 - px))
            })
            .collect();
        Self { parts, c_out }
    }

    /// Floating-point operations of the network's layer on an `h × w` (low-resolution) input: the
    /// 3×3 convolution over the upsampled map (the engine does 4/9 of them).
    pub fn flops(&self, h: usize, w: usize) -> f64 {
        9.0 / 4.0 * self.parts.iter().map(|c| c.flops(h, w)).sum::<f64>()
    }

    /// # Shapes
    /// `[h, w, c_in]` → `[2h, 2w, c_out]`
    pub fn forward(&self, x: &Map) -> Map {
        let parts: Vec<Map> = self.parts.iter().map(|c| c.forward(&[Src::plain(x)])).collect();
        let (w, c) = (x.w, self.c_out);
        let mut out = Map::zeros(2 * x.h, 2 * w, c);
        out.data.par_chunks_mut(2 * w * c).enumerate().for_each(|(y, row)| {
            let (i, py) = (y / 2, y % 2);
            for (xx, px) in row.chunks_exact_mut(c).enumerate() {
                let part = &parts[py * 2 + xx % 2];
                copy_channels(px, &part.data[(i * w + xx / 2) * c..][..c]);
            }
        });
        out
    }
}

/// A depthwise k×k convolution (one filter per channel) with bias and activation, computed directly.
#[derive(Debug, Clone)]
pub struct Depthwise {
    k: usize,
    stride: usize,
    c: usize,
    /// `[k·k, c]`: tap-major, channels fastest, like the NHWC pixels it multiplies.
    weight: Vec<f32>,
    bias: Vec<f32>,
    act: Act,
}

impl Depthwise {
    /// From weights `[c, 1, k, k]` and an optional bias.
    pub fn new(weight: &[f32], shape: [usize; 4], bias: Option<&[f32]>, stride: usize, act: Act) -> Self {
        let [c, one, k, k2] = shape;
        assert!(one == 1 && k == k2, "depthwise weights [c, 1, k, k]");
        let mut packed = vec![0.0; c * k * k];
        for ch in 0..c {
            for t in 0..k * k {
                packed[t * c + ch] = weight[ch * k * k + t];
            }
        }
        Self {
            k,
            stride,
            c,
            weight: packed,
            bias: bias.map_or_else(|| vec![0.0; c], <[f32]>::to_vec),
            act,
        }
    }

    /// Floating-point operations (2 per multiply-add) on an `h × w` input, and the output size.
    pub fn flops(&self, h: usize, w: usize) -> (f64, (usize, usize)) {
        let (oh, ow) = (h.div_ceil(self.stride), w.div_ceil(self.stride));
        (2.0 * (oh * ow * self.k * self.k * self.c) as f64, (oh, ow))
    }

    /// # Shapes
    /// `[h, w, c]` → `[⌈h/stride⌉, ⌈w/stride⌉, c]`
    pub fn forward(&self, x: &Map) -> Map {
        assert_eq!(x.c, self.c, "depthwise channels");
        let (k, s, c) = (self.k, self.stride, self.c);
        let (oh, ow) = (x.h.div_ceil(s), x.w.div_ceil(s));
        let (pt, pl) = (pad_before(x.h, oh, k, s), pad_before(x.w, ow, k, s));
        let mut out = Map::zeros(oh, ow, c);
        out.data.par_chunks_mut(ow * c).enumerate().for_each(|(oy, row)| {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                return unsafe { self.row_avx512(x, oy, row, (pt, pl)) };
            }
            self.row(x, oy, row, (pt, pl));
        });
        out
    }

    /// [`Self::row`] compiled for AVX-512 (16 channels an instruction instead of SSE2's 4).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn row_avx512(&self, x: &Map, oy: usize, row: &mut [f32], pad: (usize, usize)) {
        self.row(x, oy, row, pad);
    }

    /// Output row `oy`.
    #[inline(always)]
    fn row(&self, x: &Map, oy: usize, row: &mut [f32], (pt, pl): (usize, usize)) {
        let (k, s, c) = (self.k, self.stride, self.c);
        {
            for (ox, acc) in row.chunks_exact_mut(c).enumerate() {
                acc.copy_from_slice(&self.bias);
                for ky in 0..k {
                    let iy = (oy * s + ky).wrapping_sub(pt);
                    if iy >= x.h {
                        continue;
                    }
                    for kx in 0..k {
                        let ix = (ox * s + kx).wrapping_sub(pl);
                        if ix >= x.w {
                            continue;
                        }
                        let px = &x.data[(iy * x.w + ix) * c..][..c];
                        let wt = &self.weight[(ky * k + kx) * c..][..c];
                        for ((a, &v), &f) in acc.iter_mut().zip(px).zip(wt) {
                            *a += v * f;
                        }
                    }
                }
                self.act.apply(acc);
            }
        }
    }
}

/// 2×2 max-pooling with stride 2 (VGG16's), flooring odd sides.
///
/// # Shapes
/// `[h, w, c]` → `[h/2, w/2, c]`
pub fn max_pool2(x: &Map) -> Map {
    let (oh, ow, c) = (x.h / 2, x.w / 2, x.c);
    let mut out = Map::zeros(oh, ow, c);
    out.data.par_chunks_mut(ow * c).enumerate().for_each(|(oy, row)| {
        for (ox, px) in row.chunks_exact_mut(c).enumerate() {
            let at = |dy: usize, dx: usize| &x.data[((2 * oy + dy) * x.w + 2 * ox + dx) * c..][..c];
            px.copy_from_slice(at(0, 0));
            for (dy, dx) in [(0, 1), (1, 0), (1, 1)] {
                px.iter_mut().zip(at(dy, dx)).for_each(|(m, &v)| *m = m.max(v));
            }
        }
    });
    out
}
