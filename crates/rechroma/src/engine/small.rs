//! Convolutions of few input channels (the first layer over L and the hint planes, the backbone's stem
//! over gray), computed directly with AVX-512: each output pixel's channels are accumulated in
//! registers, one broadcast input value times one weight row at a time. Their im2col rows are a few
//! values a tap, which cost more to gather than the products they feed (`rechroma bench`: the first
//! encoder convolution, 4 → 32 channels at 256², took 3.5 ms by im2col for 0.15 GFLOP).

use super::conv::{Conv, Map, Out, Src, pad_before};
use rayon::prelude::*;

/// Input channels (of all inputs together) up to which [`Conv::run`] computes a convolution directly.
pub(super) const MAX_CHANNELS: usize = 4;

impl Conv {
    /// Whether this convolution is computed directly here (the CPU has AVX-512F).
    pub(super) fn runs_small(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            self.c_in <= MAX_CHANNELS && !self.upsample && std::arch::is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// [`Conv::run`] computed directly (see the module docs); only where [`Self::runs_small`].
    pub(super) fn run_small(&self, inputs: &[Src], dst: Out, out_c: usize, offset: usize, residual: Option<&Map>) {
        let (h, w) = (inputs[0].map.h, inputs[0].map.w);
        let (oh, ow) = self.out_size(h, w);
        let pad = (
            pad_before(h, oh, self.k, self.stride),
            pad_before(w, ow, self.k, self.stride),
        );
        let rows_per_task = oh.div_ceil(4 * rayon::current_num_threads()).max(1);
        (0..oh.div_ceil(rows_per_task)).into_par_iter().for_each(|task| {
            let dst = dst;
            let rows = task * rows_per_task..((task + 1) * rows_per_task).min(oh);
            let job = Job {
                conv: self,
                inputs,
                size: (h, w),
                out_w: ow,
                pad,
                dst,
                out_c,
                offset,
                residual,
            };
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `runs_small` checked the CPU; rows `rows` of the output's channels
            // offset..offset + c_out belong to this task alone.
            unsafe {
                avx512::rows(&job, rows)
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = (job, rows);
                unreachable!("only where runs_small");
            }
        });
    }
}

/// One task's view of a direct convolution.
struct Job<'a> {
    conv: &'a Conv,
    inputs: &'a [Src<'a>],
    size: (usize, usize),
    out_w: usize,
    pad: (usize, usize),
    dst: Out,
    out_c: usize,
    offset: usize,
    residual: Option<&'a Map>,
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Job;
    use crate::engine::simd::{activate, mask};
    use std::arch::x86_64::*;

    /// Output channels accumulated together: four registers of 16.
    const GROUP: usize = 64;

    /// Pixels accumulated together where up to 32 channels are (16 registers): each weight row loaded
    /// serves all of them.
    const PIXELS: usize = 8;

    /// Output rows `rows` of the job.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; the rows' output channels must be the caller's alone.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows(job: &Job, rows: std::ops::Range<usize>) {
        let conv = job.conv;
        let (k, s, c_out) = (conv.k, conv.stride, conv.c_out);
        let (w, pl) = (job.size.1, job.pad.1);
        // Pixels whose every tap is inside the row: from the first ox with ox·s ≥ pl to the last with
        // ox·s + k − 1 − pl ≤ w − 1.
        let first = pl.div_ceil(s);
        let end = if w + pl >= k { (w + pl - k) / s + 1 } else { 0 }
            .min(job.out_w)
            .max(first);
        for oy in rows {
            for g0 in (0..c_out).step_by(GROUP) {
                let mut ox = 0;
                while ox < job.out_w {
                    // SAFETY: the caller's guarantees, passed on; runs of PIXELS lie in first..end.
                    unsafe {
                        if ox >= first && ox + PIXELS <= end && c_out - g0 <= 32 {
                            match (c_out - g0).div_ceil(16) {
                                1 => channels::<1, PIXELS>(job, (oy, ox), g0),
                                _ => channels::<2, PIXELS>(job, (oy, ox), g0),
                            }
                            ox += PIXELS;
                            continue;
                        }
                        match (c_out - g0).div_ceil(16) {
                            1 => channels::<1, 1>(job, (oy, ox), g0),
                            2 => channels::<2, 1>(job, (oy, ox), g0),
                            3 => channels::<3, 1>(job, (oy, ox), g0),
                            _ => channels::<4, 1>(job, (oy, ox), g0),
                        }
                    }
                    ox += 1;
                }
            }
        }
    }

    /// Output channels `g0..g0 + 16·N` (the last register masked at c_out) of pixels (oy, ox..ox + P);
    /// for P > 1, every tap of these pixels must lie inside the row.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn channels<const N: usize, const P: usize>(job: &Job, (oy, ox): (usize, usize), g0: usize) {
        let conv = job.conv;
        let (k, s, c_in, c_out) = (conv.k, conv.stride, conv.c_in, conv.c_out);
        let (h, w) = job.size;
        let (pt, pl) = job.pad;
        let weight = conv.weight.as_ptr();
        let masks: [__mmask16; N] = std::array::from_fn(|q| mask((c_out - g0).saturating_sub(16 * q)));
        // SAFETY (every masked load and store below): the masks stop at c_out channels.
        let bias: [__m512; N] =
            std::array::from_fn(|q| unsafe { _mm512_maskz_loadu_ps(masks[q], conv.bias.as_ptr().add(g0 + 16 * q)) });
        let mut acc = [bias; P];
        for ky in 0..k {
            let iy = (oy * s + ky).wrapping_sub(pt);
            if iy >= h {
                continue;
            }
            for kx in 0..k {
                let ix = (ox * s + kx).wrapping_sub(pl);
                if P == 1 && ix >= w {
                    continue;
                }
                let mut ci = (ky * k + kx) * c_in;
                for src in job.inputs {
                    let c = src.map.c;
                    let px = &src.map.data[(iy * w + ix) * c..][..(P - 1) * s * c + c];
                    for j in 0..c {
                        let row = unsafe { weight.add(ci * c_out + g0) };
                        let wv: [__m512; N] =
                            std::array::from_fn(|q| unsafe { _mm512_maskz_loadu_ps(masks[q], row.add(16 * q)) });
                        for (p, a) in acc.iter_mut().enumerate() {
                            let x = _mm512_set1_ps(px[p * s * c + j]);
                            for (a, &wv) in a.iter_mut().zip(&wv) {
                                *a = _mm512_fmadd_ps(x, wv, *a);
                            }
                        }
                        ci += 1;
                    }
                }
            }
        }
        for (p, acc) in acc.into_iter().enumerate() {
            let pixel = oy * job.out_w + ox + p;
            for (q, mut v) in acc.into_iter().enumerate() {
                let ch = g0 + 16 * q;
                if let Some(r) = job.residual {
                    v = _mm512_add_ps(v, unsafe {
                        _mm512_maskz_loadu_ps(masks[q], r.data[pixel * c_out + ch..].as_ptr())
                    });
                }
                v = activate(conv.act, v);
                // This pixel's channels offset + ch.. of the output are the caller's.
                unsafe { _mm512_mask_storeu_ps(job.dst.0.add(pixel * job.out_c + job.offset + ch), masks[q], v) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::conv::Act;

    /// A deterministic pseudo-random sequence in [−1, 1).
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn direct_convolutions_equal_the_definition() {
        #[cfg(target_arch = "x86_64")]
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("SKIPPED: this CPU has no AVX-512F");
            return;
        }
        #[cfg(not(target_arch = "x86_64"))]
        return;
        // (h, w, channels of each input, c_out, k, stride): runs of 8 pixels and the edges, SAME_UPPER
        // padding of a stride-2 layer, a partial register of channels, more than 64 channels.
        let cases: [(usize, usize, &[usize], usize, usize, usize); 4] = [
            (5, 21, &[1, 3], 32, 3, 1),
            (6, 30, &[1], 32, 3, 2),
            (4, 11, &[2], 40, 3, 1),
            (3, 9, &[4], 80, 1, 1),
        ];
        for (case, &(h, w, chans, c_out, k, stride)) in cases.iter().enumerate() {
            let maps: Vec<Map> = chans
                .iter()
                .enumerate()
                .map(|(i, &c)| Map {
                    h,
                    w,
                    c,
                    data: noise(h * w * c, 10 * case as u64 + i as u64),
                })
                .collect();
            let c_in: usize = chans.iter().sum();
            let weight = noise(c_out * c_in * k * k, 99);
            let bias = noise(c_out, 98);
            let conv = Conv::new(&weight, [c_out, c_in, k, k], Some(&bias), stride, Act::Relu6);
            assert!(conv.runs_small(), "case {case} runs directly");
            let (oh, ow) = conv.out_size(h, w);
            let residual = Map {
                h: oh,
                w: ow,
                c: c_out,
                data: noise(oh * ow * c_out, 97),
            };
            let mut out = Map::zeros(oh, ow, c_out + 3);
            let srcs: Vec<Src> = maps.iter().map(Src::plain).collect();
            conv.run(&srcs, &mut out, 1, Some(&residual));
            let (pt, pl) = (pad_before(h, oh, k, stride), pad_before(w, ow, k, stride));
            for oy in 0..oh {
                for ox in 0..ow {
                    let p = oy * ow + ox;
                    for co in 0..c_out {
                        let mut want = f64::from(bias[co]) + f64::from(residual.data[p * c_out + co]);
                        for ky in 0..k {
                            for kx in 0..k {
                                let (iy, ix) =
                                    ((oy * stride + ky).wrapping_sub(pt), (ox * stride + kx).wrapping_sub(pl));
                                if iy >= h || ix >= w {
                                    continue;
                                }
                                let mut ci = 0;
                                for m in &maps {
                                    for j in 0..m.c {
                                        let x = f64::from(m.data[(iy * w + ix) * m.c + j]);
                                        want += x * f64::from(weight[((co * c_in + ci) * k + ky) * k + kx]);
                                        ci += 1;
                                    }
                                }
                            }
                        }
                        let want = want.clamp(0.0, 6.0);
                        let got = f64::from(out.data[p * (c_out + 3) + 1 + co]);
                        assert!(
                            (got - want).abs() < 1e-5,
                            "case {case}: pixel ({oy}, {ox}) channel {co}: {got} vs {want}"
                        );
                    }
                    let px = &out.data[p * (c_out + 3)..][..c_out + 3];
                    assert!(
                        px[0] == 0.0 && px[c_out + 1..] == [0.0, 0.0],
                        "only its channels written"
                    );
                }
            }
        }
    }
}
