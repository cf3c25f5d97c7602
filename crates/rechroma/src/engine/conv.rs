//! The engine's dense convolutions: k×k convolutions as matrix products over tiles of an
//! im2col matrix (the `gemm` crate's kernels, AVX-512 where the CPU has it), 1×1 convolutions straight
//! onto the matrix product. Bias, residual and activation are applied to each tile while it is in
//! cache. The other layers are in [`super::layers`].
//!
//! Padding is TensorFlow's "same" (SAME_UPPER: the extra row and column of an even-sized stride-2
//! convolution at the bottom and right), as every convolution of rechroma's networks pads; for a 3×3
//! stride-1 convolution it is the usual padding of 1.

pub use super::map::{Act, Map, Src};
use rayon::prelude::*;
use std::cell::RefCell;

/// Padding before the first row (or column) of a "same" convolution: half of what is needed, rounded
/// down (SAME_UPPER).
pub(super) fn pad_before(size_in: usize, size_out: usize, k: usize, stride: usize) -> usize {
    ((size_out - 1) * stride + k).saturating_sub(size_in) / 2
}

/// Values of an im2col tile kept per thread: 128 Ki floats (512 KiB), within this class of CPU's L2.
const TILE_FLOATS: usize = 128 * 1024;

thread_local! {
    /// Each thread's im2col tile, reused across calls (a fresh 512 KiB allocation per tile would be
    /// mapped and faulted in each time).
    static TILE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A raw pointer to an output shared by tasks that write disjoint parts of it.
#[derive(Clone, Copy)]
pub(super) struct Out(pub(super) *mut f32);
// SAFETY: every task writes only its own rows × channels of the output (see `Conv::run`).
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// How a layer's `m` output rows (pixels, or blocks of pixels) and `c_out` channels are shared among
/// rayon tasks: as many tiles of rows as `per_tile` makes, rounded up to a multiple of the threads and
/// made equal, so no core waits on the last tile of a layer; on small maps (the deep layers), slices of
/// the output channels too, so both cores have work. Returns (rows a tile, tiles, channels a slice,
/// slices).
pub(super) fn split_tasks(m: usize, per_tile: usize, c_out: usize) -> (usize, usize, usize, usize) {
    let threads = rayon::current_num_threads();
    let m_tiles = m.div_ceil(per_tile);
    let m_tiles = if m_tiles > 1 {
        m_tiles.next_multiple_of(threads).min(m)
    } else {
        1
    };
    let tile = m.div_ceil(m_tiles);
    let m_tiles = m.div_ceil(tile);
    let want = 4 * threads;
    let n_splits = if m_tiles >= want {
        1
    } else {
        want.div_ceil(m_tiles).min(c_out / 32).max(1)
    };
    let n_chunk = c_out.div_ceil(n_splits).next_multiple_of(16).min(c_out);
    (tile, m_tiles, n_chunk, c_out.div_ceil(n_chunk))
}

/// `dst = lhs · rhs` for `(m, n, k)`: `lhs` and `rhs` row-major with the given row strides (values a
/// row apart), `dst` with the given (row, column) strides; on the calling thread: the matrix product
/// behind every convolution here (the tasks are rayon's, not the `gemm` crate's).
///
/// # Safety
/// Each pointer must reach its matrix's values at its row stride; `dst` must be the caller's alone.
pub(super) unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    (dst, dst_rs, dst_cs): (*mut f32, usize, usize),
    (lhs, lhs_rs): (*const f32, usize),
    (rhs, rhs_rs): (*const f32, usize),
) {
    // SAFETY: the caller's guarantees; row-major matrices have a column stride of 1.
    unsafe {
        crate::model::im2col::product(
            (m, n, k),
            (dst, dst_rs, dst_cs),
            false,
            (lhs, lhs_rs, 1),
            (rhs, rhs_rs, 1),
        )
    }
}

/// A dense k×k convolution with bias and activation (BatchNorm already folded in).
#[derive(Debug, Clone)]
pub struct Conv {
    /// Kernel side.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Input channels (of all inputs together).
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// `[k·k·c_in, c_out]`, row `(ky·k + kx)·c_in + ci`: the im2col row order.
    pub(super) weight: Vec<f32>,
    pub(super) bias: Vec<f32>,
    pub(super) act: Act,
    /// The kernels transformed for [`Conv::run_winograd`] (3×3 stride-1 "same" convolutions of at
    /// least [`WINOGRAD_MIN_CHANNELS`] input channels).
    pub(super) winograd: Option<Vec<f32>>,
    /// Whether the input is read upsampled ×2 (nearest neighbour) before the convolution: the
    /// decoder's `up_conv` ([`Conv::upsampling`]).
    pub(super) upsample: bool,
}

/// Input channels from which a 3×3 stride-1 convolution runs by Winograd's F(2×2, 3×3)
/// ([`super::winograd`]): below, the transforms cost more than the multiplications they save.
const WINOGRAD_MIN_CHANNELS: usize = 16;

impl Conv {
    /// From PyTorch/burn weights `[c_out, c_in, k, k]` (OIHW) and an optional bias.
    pub fn new(weight: &[f32], shape: [usize; 4], bias: Option<&[f32]>, stride: usize, act: Act) -> Self {
        let [c_out, c_in, k, k2] = shape;
        assert_eq!(k, k2, "square kernels");
        assert_eq!(weight.len(), c_out * c_in * k * k);
        // Row by row of the packed matrix (contiguous writes), the rows in parallel: repacking is most
        // of compiling a model.
        let mut packed = vec![0.0; weight.len()];
        packed.par_chunks_mut(c_out.max(1)).enumerate().for_each(|(row, out)| {
            let (t, ci) = (row / c_in, row % c_in);
            for (co, v) in out.iter_mut().enumerate() {
                *v = weight[(co * c_in + ci) * k * k + t];
            }
        });
        let winograd = (k == 3 && stride == 1 && c_in >= WINOGRAD_MIN_CHANNELS)
            .then(|| super::winograd::transform_weights(&packed, c_in, c_out));
        Self {
            k,
            stride,
            c_in,
            c_out,
            // A Winograd convolution keeps only its transformed kernels (16/9 of the weights' size).
            weight: if winograd.is_some() { Vec::new() } else { packed },
            bias: bias.map_or_else(|| vec![0.0; c_out], <[f32]>::to_vec),
            act,
            winograd,
            upsample: false,
        }
    }

    /// This 3×3 "same" convolution applied to its input upsampled ×2 by nearest neighbour, without the
    /// upsampled map: by Winograd's F(2×2, 3×3), whose 2×2 output blocks are then the four output
    /// pixels of one input pixel, and whose 4×4 windows are the input's 3×3 neighbourhood with the
    /// middle row and column repeated ([`super::winograd`]). 4/9 of the multiply-adds, whatever the
    /// channels.
    pub(super) fn upsampling(self) -> Self {
        assert!(self.k == 3 && self.stride == 1, "a 3×3 stride-1 convolution");
        let winograd = self
            .winograd
            .or_else(|| Some(super::winograd::transform_weights(&self.weight, self.c_in, self.c_out)));
        Self {
            winograd,
            weight: Vec::new(),
            upsample: true,
            ..self
        }
    }

    /// Floating-point operations (2 per multiply-add) on an `h × w` input.
    pub fn flops(&self, h: usize, w: usize) -> f64 {
        let (oh, ow) = self.out_size(h, w);
        2.0 * (oh * ow * self.k * self.k * self.c_in * self.c_out) as f64
    }

    /// Output size for an input of `h × w`.
    pub fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        if self.upsample {
            return (2 * h, 2 * w);
        }
        (h.div_ceil(self.stride), w.div_ceil(self.stride))
    }

    /// The convolution of the channel concatenation of `inputs` (all of one size), as a new map.
    pub fn forward(&self, inputs: &[Src]) -> Map {
        let (h, w) = inputs[0].size();
        let (oh, ow) = self.out_size(h, w);
        let n = oh * ow * self.c_out;
        // Not zeroed first: every value is written (a map of 256² × 32 is 8 MB, and zeroing it costs
        // a pass over memory as long as writing it).
        let mut data = Vec::with_capacity(n);
        self.write(inputs, Out(data.as_mut_ptr()), self.c_out, 0, None);
        // SAFETY: `write` wrote every pixel's c_out channels (all its paths cover every output pixel
        // and channel): all n values.
        unsafe { data.set_len(n) };
        Map {
            h: oh,
            w: ow,
            c: self.c_out,
            data,
        }
    }

    /// The convolution of the channel concatenation of `inputs` (all of one size), written to channels
    /// `offset..offset + c_out` of `out` (the channel concatenation of the decoder and the encoder's
    /// embedding, without a copy), plus `residual` (a map of `c_out` channels) before the activation.
    pub fn run(&self, inputs: &[Src], out: &mut Map, offset: usize, residual: Option<&Map>) {
        let (h, w) = inputs[0].size();
        assert!(inputs.iter().all(|s| s.size() == (h, w)), "inputs of one size");
        let c_in: usize = inputs.iter().map(|s| s.map.c).sum();
        assert_eq!(c_in, self.c_in, "input channels");
        let (oh, ow) = self.out_size(h, w);
        assert!(out.h == oh && out.w == ow && offset + self.c_out <= out.c, "output map");
        self.write(inputs, Out(out.data.as_mut_ptr()), out.c, offset, residual);
    }

    /// [`Self::run`] into `oh × ow` pixels of `out_c` channels at `dst`, the inputs checked.
    fn write(&self, inputs: &[Src], dst: Out, out_c: usize, offset: usize, residual: Option<&Map>) {
        let (h, w) = inputs[0].size();
        assert!(inputs.iter().all(|s| s.size() == (h, w)), "inputs of one size");
        let c_in: usize = inputs.iter().map(|s| s.map.c).sum();
        assert_eq!(c_in, self.c_in, "input channels");
        let (oh, ow) = self.out_size(h, w);
        assert!(
            residual.is_none_or(|r| (r.h, r.w, r.c) == (oh, ow, self.c_out)),
            "a residual of the output's size"
        );
        if let Some(u) = &self.winograd {
            return self.run_winograd(u, inputs, dst, out_c, offset, residual);
        }
        if self.runs_small() {
            return self.run_small(inputs, dst, out_c, offset, residual);
        }
        let m = oh * ow;
        let kk = self.k * self.k * c_in;
        // A 1×1 stride-1 convolution of one map is a matrix product on the map itself.
        let direct = self.k == 1 && self.stride == 1 && inputs.len() == 1;
        let (tile, m_tiles, n_chunk, n_splits) = split_tasks(m, (TILE_FLOATS / kk).clamp(64, 1024), self.c_out);
        let (pt, pl) = (
            pad_before(h, oh, self.k, self.stride),
            pad_before(w, ow, self.k, self.stride),
        );
        (0..m_tiles * n_splits).into_par_iter().for_each(|task| {
            let dst = dst;
            let (mt, ns) = (task / n_splits, task % n_splits);
            let (p0, p1) = (mt * tile, ((mt + 1) * tile).min(m));
            let (n0, n1) = (ns * n_chunk, ((ns + 1) * n_chunk).min(self.c_out));
            let rows = p1 - p0;
            let product = |lhs: *const f32, lhs_rs: usize| {
                // SAFETY: rows p0..p1 × channels offset+n0..offset+n1 of `out` belong to this task
                // alone; the lhs holds `rows × kk` values with row stride `lhs_rs`; the weights
                // `kk × c_out`.
                unsafe {
                    matmul(
                        (rows, n1 - n0, kk),
                        (dst.0.add(p0 * out_c + offset + n0), out_c, 1),
                        (lhs, lhs_rs),
                        (self.weight.as_ptr().add(n0), self.c_out),
                    );
                }
            };
            if direct {
                let src = &inputs[0].map.data[p0 * c_in..];
                product(src.as_ptr(), c_in);
            } else {
                TILE.with_borrow_mut(|buf| {
                    buf.resize(tile * kk, 0.0);
                    self.im2col(inputs, (h, w), ow, (pt, pl), p0..p1, &mut buf[..rows * kk]);
                    product(buf.as_ptr(), kk);
                });
            }
            for p in p0..p1 {
                // SAFETY: as above, this task's own part of row p.
                let row = unsafe { std::slice::from_raw_parts_mut(dst.0.add(p * out_c + offset + n0), n1 - n0) };
                row.iter_mut().zip(&self.bias[n0..n1]).for_each(|(v, b)| *v += b);
                if let Some(r) = residual {
                    let r = &r.data[p * self.c_out + n0..p * self.c_out + n1];
                    row.iter_mut().zip(r).for_each(|(v, r)| *v += r);
                }
                self.act.apply(row);
            }
        });
    }

    /// A 1×1 stride-1 convolution of `x`, as planar (CHW) values: the output heads, written in the
    /// layout the decoding reads without a transposition (the product's destination strides do it).
    ///
    /// # Shapes
    /// `[h, w, c_in]` → `c_out · h · w` values, planar
    pub fn forward_planar(&self, x: &Map) -> Vec<f32> {
        assert!(
            self.k == 1 && self.stride == 1 && x.c == self.c_in,
            "a 1×1 convolution of its input"
        );
        let n = x.h * x.w;
        let mut out = vec![0.0; n * self.c_out];
        let tile = 1024;
        let dst = Out(out.as_mut_ptr());
        (0..n.div_ceil(tile)).into_par_iter().for_each(|t| {
            let dst = dst;
            let (p0, p1) = (t * tile, ((t + 1) * tile).min(n));
            // SAFETY: pixels p0..p1 of every plane belong to this task alone; the lhs is rows p0..p1
            // of the map (row stride c_in), the weights `c_in × c_out`.
            unsafe {
                matmul(
                    (p1 - p0, self.c_out, self.c_in),
                    (dst.0.add(p0), 1, n),
                    (x.data.as_ptr().add(p0 * self.c_in), self.c_in),
                    (self.weight.as_ptr(), self.c_out),
                );
            }
        });
        out.par_chunks_mut(n).zip(&self.bias).for_each(|(plane, b)| {
            plane.iter_mut().for_each(|v| *v += b);
            self.act.apply(plane);
        });
        out
    }

    /// Rows `pixels` of the im2col matrix of the concatenated inputs into `buf` (`kk` values a row,
    /// zeros where the kernel reaches into the padding).
    fn im2col(
        &self,
        inputs: &[Src],
        (h, w): (usize, usize),
        ow: usize,
        (pt, pl): (usize, usize),
        pixels: std::ops::Range<usize>,
        buf: &mut [f32],
    ) {
        let (k, s) = (self.k, self.stride);
        let kk = k * k * self.c_in;
        for (row, p) in buf.chunks_exact_mut(kk).zip(pixels) {
            let (oy, ox) = (p / ow, p % ow);
            let mut taps = row.chunks_exact_mut(self.c_in);
            for ky in 0..k {
                let iy = (oy * s + ky).wrapping_sub(pt);
                for kx in 0..k {
                    let ix = (ox * s + kx).wrapping_sub(pl);
                    let tap = taps.next().expect("k·k taps");
                    if iy >= h || ix >= w {
                        tap.fill(0.0);
                        continue;
                    }
                    let mut at = 0;
                    for src in inputs {
                        let px = src.pixel(iy, ix);
                        copy_channels(&mut tap[at..at + px.len()], px);
                        at += px.len();
                    }
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` in fixed blocks of 16 values, which compile to inline vector moves: a
/// pixel's channels are too few (32 to a few hundred) for a `memcpy` call to pay for itself, and
/// im2col makes nine such copies per pixel.
#[inline(always)]
pub(super) fn copy_channels(dst: &mut [f32], src: &[f32]) {
    let mut d = dst.chunks_exact_mut(16);
    let mut s = src.chunks_exact(16);
    for (d, s) in d.by_ref().zip(s.by_ref()) {
        let s: &[f32; 16] = s.try_into().expect("16 values");
        d.copy_from_slice(s);
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}
