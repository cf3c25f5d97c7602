//! The engine's other layers on NHWC maps: the decoder's upsampling convolution as four small ones
//! ([`UpConv`]), direct depthwise convolutions ([`Depthwise`], AVX-512 where the CPU has it) and 2×2
//! max-pooling.

use super::conv::{Act, Conv, Map, Src, pad_before};
use rayon::prelude::*;

/// A ×2 nearest-neighbour upsampling followed by a 3×3 "same" convolution (the decoder's `up_conv`),
/// computed from the low-resolution map without making the upsampled one: by Winograd's F(2×2, 3×3),
/// each 2×2 output block being the four output pixels of one input pixel ([`Conv::upsampling`]). Exact
/// up to float rounding, padding included (the upsampled map's padding is the low-resolution map's),
/// and 4/9 of the multiply-adds.
#[derive(Debug, Clone)]
pub struct UpConv {
    conv: Conv,
    /// Output channels.
    pub c_out: usize,
}

impl UpConv {
    /// From the 3×3 convolution's weights `[c_out, c_in, 3, 3]` (OIHW) and an optional bias.
    pub fn new(weight: &[f32], shape: [usize; 4], bias: Option<&[f32]>, act: Act) -> Self {
        assert_eq!(shape[2], 3, "a 3×3 convolution after the upsampling");
        Self {
            conv: Conv::new(weight, shape, bias, 1, act).upsampling(),
            c_out: shape[0],
        }
    }

    /// Floating-point operations of the network's layer on an `h × w` (low-resolution) input: the
    /// 3×3 convolution over the upsampled map (the engine does 4/9 of them).
    pub fn flops(&self, h: usize, w: usize) -> f64 {
        self.conv.flops(h, w)
    }

    /// # Shapes
    /// `[h, w, c_in]` → `[2h, 2w, c_out]`
    pub fn forward(&self, x: &Map) -> Map {
        self.conv.forward(&[Src::plain(x)])
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
