//! A convolution's forward and backward as im2col matrix products (see [`super::cpu_conv`] for why
//! and where they are used): plain slices in burn's `[batch, channels, height, width]` order.

use rayon::prelude::*;
use std::cell::RefCell;

thread_local! {
    /// Each thread's `col(X)` buffer and its gradient's, kept from one convolution to the next: they
    /// are zeroed (and their pages faulted in) only when they grow, not for every image.
    static SCRATCH: RefCell<[Vec<f32>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// The first `len` values of a scratch buffer, grown if needed (its values are stale: the caller
/// overwrites them).
fn scratch(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// At most this many values of `col(X)` are built at once (4 MB), in whole output rows.
pub const BAND_FLOATS: usize = 1 << 20;

/// The shapes of one convolution: batch `n`, input `c × h × w`, `o` output channels, a `kh × kw`
/// kernel at strides `sh, sw` with `pt, pl` rows and columns of zeros before, output `ho × wo`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pt: usize,
    pub pl: usize,
    pub ho: usize,
    pub wo: usize,
}

/// What [`Geometry::backward`] computes: the gradients asked for.
pub(crate) struct ConvGrads {
    /// Of the input, `[n, c, h, w]`.
    pub dx: Option<Vec<f32>>,
    /// Of the weights, `[o, c, kh, kw]`.
    pub dw: Option<Vec<f32>>,
    /// Of the bias, `[o]`.
    pub db: Option<Vec<f32>>,
}

impl Geometry {
    /// Rows of `col(X)`: one per input channel and kernel tap.
    fn taps(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// A 1×1 stride-1 convolution without padding: `col(X)` is the input itself.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && self.pt == 0 && self.pl == 0
    }

    /// The bands of output rows `[r0, r1)` whose `col(X)` holds at most [`BAND_FLOATS`] values.
    fn bands(&self) -> impl Iterator<Item = (usize, usize)> {
        let rows = (BAND_FLOATS / (self.taps() * self.wo).max(1)).clamp(1, self.ho.max(1));
        let ho = self.ho;
        (0..ho).step_by(rows).map(move |r0| (r0, (r0 + rows).min(ho)))
    }

    /// The output columns `[lo, hi)` whose tap `j` falls inside the input's width, and the input
    /// column of `lo`.
    fn columns(&self, j: usize) -> (usize, usize, usize) {
        let lo = self.pl.saturating_sub(j).div_ceil(self.sw);
        let hi = (self.w + self.pl).saturating_sub(j).div_ceil(self.sw).min(self.wo);
        (lo, hi.max(lo), ((lo * self.sw + j).saturating_sub(self.pl)).min(self.w))
    }

    /// The input row of output row `r`'s tap `i`, if inside the input.
    fn row(&self, r: usize, i: usize) -> Option<usize> {
        (r * self.sh + i).checked_sub(self.pt).filter(|&y| y < self.h)
    }

    /// `col(X)` of one image for output rows `[r0, r1)`: `[taps, (r1 − r0)·wo]`, zeros where a tap
    /// falls in the padding.
    fn im2col(&self, x: &[f32], (r0, r1): (usize, usize), col: &mut [f32]) {
        let p = (r1 - r0) * self.wo;
        for (row, dst) in col[..self.taps() * p].chunks_exact_mut(p).enumerate() {
            let (ch, i, j) = (row / (self.kh * self.kw), row / self.kw % self.kh, row % self.kw);
            let plane = &x[ch * self.h * self.w..][..self.h * self.w];
            let (lo, hi, from) = self.columns(j);
            for (r, out) in (r0..r1).zip(dst.chunks_exact_mut(self.wo)) {
                let Some(y) = self.row(r, i) else {
                    out.fill(0.0);
                    continue;
                };
                out[..lo].fill(0.0);
                out[hi..].fill(0.0);
                let line = &plane[y * self.w + from..(y + 1) * self.w];
                if self.sw == 1 {
                    out[lo..hi].copy_from_slice(&line[..hi - lo]);
                } else {
                    for (v, s) in out[lo..hi].iter_mut().zip(line.iter().step_by(self.sw)) {
                        *v = *s;
                    }
                }
            }
        }
    }

    /// Adds a band's `col(X)`-shaped gradient back onto the image's input gradient (the adjoint of
    /// [`Self::im2col`]).
    fn col2im(&self, col: &[f32], (r0, r1): (usize, usize), dx: &mut [f32]) {
        let p = (r1 - r0) * self.wo;
        for (row, src) in col[..self.taps() * p].chunks_exact(p).enumerate() {
            let (ch, i, j) = (row / (self.kh * self.kw), row / self.kw % self.kh, row % self.kw);
            let plane = &mut dx[ch * self.h * self.w..][..self.h * self.w];
            let (lo, hi, from) = self.columns(j);
            for (r, vals) in (r0..r1).zip(src.chunks_exact(self.wo)) {
                if let Some(y) = self.row(r, i) {
                    let line = &mut plane[y * self.w + from..(y + 1) * self.w];
                    if self.sw == 1 {
                        for (d, v) in line[..hi - lo].iter_mut().zip(&vals[lo..hi]) {
                            *d += v;
                        }
                    } else {
                        for (d, v) in line.iter_mut().step_by(self.sw).zip(&vals[lo..hi]) {
                            *d += v;
                        }
                    }
                }
            }
        }
    }

    /// The convolution of `x` (`[n, c, h, w]`) by `w` (`[o, c, kh, kw]`) plus `bias`: `[n, o, ho, wo]`.
    pub fn forward(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let (chw, ohw, taps) = (self.c * self.h * self.w, self.ho * self.wo, self.taps());
        let mut y = vec![0.0f32; self.n * self.o * ohw];
        y.par_chunks_mut(self.o * ohw.max(1))
            .zip(x.par_chunks(chw.max(1)))
            .for_each(|(y, x)| {
                if let Some(b) = bias {
                    for (row, &b) in y.chunks_exact_mut(ohw).zip(b) {
                        row.fill(b);
                    }
                }
                SCRATCH.with_borrow_mut(|[col, _]| {
                    for band in self.bands() {
                        let p = (band.1 - band.0) * self.wo;
                        let rhs = self.col(x, band, col);
                        // SAFETY: every matrix lies inside its slice at the strides given.
                        unsafe {
                            product(
                                (self.o, p, taps),
                                (y[band.0 * self.wo..].as_mut_ptr(), ohw, 1),
                                bias.is_some(),
                                (w.as_ptr(), taps, 1),
                                rhs,
                            );
                        }
                    }
                });
            });
        y
    }

    /// `col(X)` of a band as a matrix `(pointer, row stride, column stride)`: the input itself for a
    /// pointwise convolution, else built in `col`.
    fn col(&self, x: &[f32], band: (usize, usize), col: &mut Vec<f32>) -> (*const f32, usize, usize) {
        if self.pointwise() {
            return (x[band.0 * self.w..].as_ptr(), self.h * self.w, 1);
        }
        let p = (band.1 - band.0) * self.wo;
        let col = scratch(col, self.taps() * p);
        self.im2col(x, band, col);
        (col.as_ptr(), p, 1)
    }

    /// The gradients of the input (if `of_x`) and of the weights and bias (if `of_w`) given the
    /// output's gradient `dy` (`[n, o, ho, wo]`).
    pub fn backward(&self, x: &[f32], w: &[f32], dy: &[f32], of_x: bool, of_w: bool) -> ConvGrads {
        let (chw, ohw, taps) = (self.c * self.h * self.w, self.ho * self.wo, self.taps());
        let mut dx = of_x.then(|| vec![0.0f32; self.n * chw]);
        let images: Vec<Option<&mut [f32]>> = match dx.as_mut() {
            Some(dx) => dx.chunks_mut(chw.max(1)).map(Some).collect(),
            None => (0..self.n).map(|_| None).collect(),
        };
        let zero = || {
            (
                vec![0.0f32; if of_w { self.o * taps } else { 0 }],
                vec![0.0f32; if of_w { self.o } else { 0 }],
            )
        };
        let (dw, db) = images
            .into_par_iter()
            .enumerate()
            .fold(zero, |(mut dw, mut db), (i, mut dx)| {
                let (x, dy) = (&x[i * chw..][..chw], &dy[i * self.o * ohw..][..self.o * ohw]);
                SCRATCH.with_borrow_mut(|[col, dcol]| {
                    for band in self.bands() {
                        let p = (band.1 - band.0) * self.wo;
                        let dy_band = (dy[band.0 * self.wo..].as_ptr(), ohw, 1);
                        if of_w {
                            let (ptr, rs, cs) = self.col(x, band, col);
                            // SAFETY: as in `forward`; col(X)ᵀ is col(X) with its strides swapped.
                            unsafe {
                                product(
                                    (self.o, taps, p),
                                    (dw.as_mut_ptr(), taps, 1),
                                    true,
                                    dy_band,
                                    (ptr, cs, rs),
                                )
                            };
                        }
                        if let Some(dx) = dx.as_deref_mut() {
                            let wt = (w.as_ptr(), 1, taps);
                            if self.pointwise() {
                                let dst = (dx[band.0 * self.w..].as_mut_ptr(), self.h * self.w, 1);
                                // SAFETY: as in `forward`.
                                unsafe { product((self.c, p, self.o), dst, false, wt, dy_band) };
                            } else {
                                let dcol = scratch(dcol, taps * p);
                                // SAFETY: as in `forward`.
                                unsafe { product((taps, p, self.o), (dcol.as_mut_ptr(), p, 1), false, wt, dy_band) };
                                self.col2im(dcol, band, dx);
                            }
                        }
                    }
                });
                if of_w {
                    for (b, row) in db.iter_mut().zip(dy.chunks_exact(ohw.max(1))) {
                        *b += row.iter().sum::<f32>();
                    }
                }
                (dw, db)
            })
            .reduce(zero, |(mut a, mut ab), (b, bb)| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                ab.iter_mut().zip(&bb).for_each(|(a, b)| *a += b);
                (a, ab)
            });
        ConvGrads {
            dx,
            dw: of_w.then_some(dw),
            db: of_w.then_some(db),
        }
    }
}

/// `dst (+)= lhs · rhs` for `(m, n, k)`, each matrix as `(pointer, row stride, column stride)`; on
/// the calling thread (the tasks are rayon's). The one call of the `gemm` crate, for training's
/// convolutions here and the inference engine's (`engine::conv::matmul`).
///
/// # Safety
/// Each pointer must reach its matrix's values at its strides; `dst` must be the caller's alone.
pub(crate) unsafe fn product(
    (m, n, k): (usize, usize, usize),
    (dst, dst_rs, dst_cs): (*mut f32, usize, usize),
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (*const f32, usize, usize),
    (rhs, rhs_rs, rhs_cs): (*const f32, usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the caller's guarantees.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
