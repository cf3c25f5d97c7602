//! 3×3 stride-1 convolutions by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray 2016, "Fast
//! Algorithms for Convolutional Neural Networks"): each 2×2 block of output pixels comes from a 4×4
//! block of input, transformed (Bᵀ d B) channel by channel; the 16 transformed positions are 16 matrix
//! products against the transformed kernels (G g Gᵀ, computed once at load); the products are
//! transformed back (Aᵀ m A). 16 multiplications per output block instead of 36: 4/9 of the direct
//! convolution's multiply-adds, for transforms that are additions only.
//!
//! NHWC suits the transforms: a pixel's channels are contiguous, so each transform is a vector
//! operation across channels. The tiles of output blocks go to rayon like [`Conv::run`]'s im2col
//! tiles, each with per-thread buffers that stay in cache.
//!
//! The rounding differs from the direct convolution's by a few float ulps of the inputs' magnitude
//! (the transforms' coefficients are 0, ±1 and ±½); `tests/engine.rs` holds every network to the burn
//! model's outputs.

#[cfg(target_arch = "x86_64")]
mod avx512;

use super::conv::{Conv, Map, Out, Src, matmul, split_tasks};
use rayon::prelude::*;
use std::cell::RefCell;

/// The 16 transformed positions of a 4×4 input block.
const POS: usize = 16;

/// Values (transformed inputs plus products) kept per thread for one tile of output blocks.
const TILE_FLOATS: usize = 256 * 1024;

/// Channels transformed together: one AVX-512 register of f32.
pub(super) const LANES: usize = 16;

/// Where a block's 4×4 input comes from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Grid {
    /// Blocks a row.
    pub(super) bw: usize,
    /// Whether the convolution reads its input upsampled ×2 (nearest): block (i, j) then covers output
    /// pixels (2i.., 2j..), whose 4×4 window is input rows i − 1, i, i, i + 1 (and columns alike).
    pub(super) up: bool,
}

impl Grid {
    /// The input rows (or columns) of block coordinate `i`; `usize::MAX`-wrapped in the padding.
    #[inline(always)]
    pub(super) fn taps(self, i: usize) -> [usize; 4] {
        if self.up {
            [i.wrapping_sub(1), i, i, i + 1]
        } else {
            [(2 * i).wrapping_sub(1), 2 * i, 2 * i + 1, 2 * i + 2]
        }
    }
}

thread_local! {
    /// Each thread's transformed inputs and products, reused across calls.
    static BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// The transformed kernels `U = G g Gᵀ`, `[16][c_in][c_out]`, from weights in [`Conv`]'s im2col order
/// (`[(ky·3 + kx)·c_in + ci][c_out]`). Computed in f64, then rounded once.
pub(super) fn transform_weights(packed: &[f32], c_in: usize, c_out: usize) -> Vec<f32> {
    const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];
    assert_eq!(packed.len(), 9 * c_in * c_out, "3×3 weights");
    let n = c_in * c_out;
    let mut u = vec![0.0; POS * n];
    // Position (i, j) of G g Gᵀ is Σ G[i][ky]·G[j][kx]·g[ky][kx]: a combination of the nine tap planes
    // of the packed weights, computed a position at a time (in parallel) over contiguous values.
    u.par_chunks_mut(n.max(1)).enumerate().for_each(|(pos, plane)| {
        let (i, j) = (pos / 4, pos % 4);
        let coef: Vec<(usize, f64)> = (0..9)
            .map(|t| (t, G[i][t / 3] * G[j][t % 3]))
            .filter(|&(_, c)| c != 0.0)
            .collect();
        for (e, v) in plane.iter_mut().enumerate() {
            *v = coef.iter().map(|&(t, c)| c * f64::from(packed[t * n + e])).sum::<f64>() as f32;
        }
    });
    u
}

/// Bᵀ d B of a 4×4 block, [`LANES`] channels at a time (`d[r][c]`, rows then columns).
#[inline(always)]
fn input_transform(d: &[[[f32; LANES]; 4]; 4]) -> [[[f32; LANES]; 4]; 4] {
    let zero = [[[0.0; LANES]; 4]; 4];
    let mut t = zero;
    for c in 0..4 {
        for l in 0..LANES {
            let (d0, d1, d2, d3) = (d[0][c][l], d[1][c][l], d[2][c][l], d[3][c][l]);
            t[0][c][l] = d0 - d2;
            t[1][c][l] = d1 + d2;
            t[2][c][l] = d2 - d1;
            t[3][c][l] = d1 - d3;
        }
    }
    let mut v = zero;
    for r in 0..4 {
        for l in 0..LANES {
            let (t0, t1, t2, t3) = (t[r][0][l], t[r][1][l], t[r][2][l], t[r][3][l]);
            v[r][0][l] = t0 - t2;
            v[r][1][l] = t1 + t2;
            v[r][2][l] = t2 - t1;
            v[r][3][l] = t1 - t3;
        }
    }
    v
}

/// Aᵀ m A: the 2×2 outputs of a block from its 16 products, [`LANES`] channels at a time.
#[inline(always)]
fn output_transform(m: &[[[f32; LANES]; 4]; 4]) -> [[[f32; LANES]; 2]; 2] {
    let mut s = [[[0.0; LANES]; 4]; 2];
    for c in 0..4 {
        for l in 0..LANES {
            let (m0, m1, m2, m3) = (m[0][c][l], m[1][c][l], m[2][c][l], m[3][c][l]);
            s[0][c][l] = m0 + m1 + m2;
            s[1][c][l] = m1 - m2 - m3;
        }
    }
    let mut y = [[[0.0; LANES]; 2]; 2];
    for r in 0..2 {
        for l in 0..LANES {
            let (s0, s1, s2, s3) = (s[r][0][l], s[r][1][l], s[r][2][l], s[r][3][l]);
            y[r][0][l] = s0 + s1 + s2;
            y[r][1][l] = s1 - s2 - s3;
        }
    }
    y
}

impl Conv {
    /// [`Conv::run`] for a 3×3 stride-1 "same" convolution, by F(2×2, 3×3) with the transformed
    /// kernels `u` ([`transform_weights`]).
    pub(super) fn run_winograd(
        &self,
        u: &[f32],
        inputs: &[Src],
        dst: Out,
        out_c: usize,
        offset: usize,
        residual: Option<&Map>,
    ) {
        let (h, w) = self.out_size(inputs[0].map.h, inputs[0].map.w);
        let (c_in, c_out) = (self.c_in, self.c_out);
        let (bh, bw) = (h.div_ceil(2), w.div_ceil(2));
        let grid = Grid { bw, up: self.upsample };
        let blocks = bh * bw;
        let per_block = POS * (c_in + c_out);
        let (tile, tiles, n_chunk, n_splits) = split_tasks(blocks, (TILE_FLOATS / per_block).clamp(16, 512), c_out);
        (0..tiles * n_splits).into_par_iter().for_each(|task| {
            let dst = dst;
            let (bt, ns) = (task / n_splits, task % n_splits);
            let (b0, b1) = (bt * tile, ((bt + 1) * tile).min(blocks));
            let (n0, n1) = (ns * n_chunk, ((ns + 1) * n_chunk).min(c_out));
            let (rows, cols) = (b1 - b0, n1 - n0);
            BUFFERS.with_borrow_mut(|(v, m)| {
                v.resize(tile * POS * c_in, 0.0);
                m.resize(tile * POS * n_chunk, 0.0);
                // Transformed inputs, `[position][block][c_in]`: each position's matrix contiguous.
                dispatch_inputs(inputs, (b0, b1), grid, c_in, &mut v[..rows * POS * c_in]);
                // One product per position: `[rows, c_in] × [c_in, cols]` into `[position][block][cols]`.
                for pos in 0..POS {
                    // SAFETY: `m` holds `POS × rows × cols` values, `v` `POS × rows × c_in`, `u`
                    // `[POS][c_in][c_out]`; all row-major.
                    unsafe {
                        matmul(
                            (rows, cols, c_in),
                            (m.as_mut_ptr().add(pos * rows * cols), cols, 1),
                            (v.as_ptr().add(pos * rows * c_in), c_in),
                            (u.as_ptr().add(pos * c_in * c_out + n0), c_out),
                        );
                    }
                }
                let outputs = Outputs {
                    conv: self,
                    dst,
                    out_c,
                    offset,
                    residual,
                    size: (h, w),
                    bw,
                    channels: (n0, n1),
                };
                outputs.dispatch(&m[..rows * POS * cols], (b0, b1));
            });
        });
    }
}

/// Transforms the input blocks `b0..b1` of `inputs` (their channel concatenation) into `v`,
/// `[position][block][c_in]`.
fn dispatch_inputs(inputs: &[Src], blocks: (usize, usize), grid: Grid, c_in: usize, v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; `v` holds the blocks' values (the caller sizes it).
        return unsafe { avx512::transform_inputs(inputs, blocks, grid, c_in, v) };
    }
    transform_inputs(inputs, blocks, grid, c_in, v);
}

/// The input transform of blocks `b0..b1` into `v`, `[position][block][c_in]`: the portable code.
fn transform_inputs(inputs: &[Src], (b0, b1): (usize, usize), grid: Grid, c_in: usize, v: &mut [f32]) {
    let rows = b1 - b0;
    for b in b0..b1 {
        let taps = (grid.taps(b / grid.bw), grid.taps(b % grid.bw));
        let mut at = 0;
        for src in inputs {
            transform_block(src.map, taps, at, (b - b0) * c_in, rows * c_in, v);
            at += src.map.c;
        }
    }
}

/// Where and how a task's products become output pixels: Aᵀ m A, then bias, residual, activation.
struct Outputs<'a> {
    conv: &'a Conv,
    dst: Out,
    out_c: usize,
    offset: usize,
    residual: Option<&'a Map>,
    size: (usize, usize),
    /// Blocks a row.
    bw: usize,
    /// The output channels of this task.
    channels: (usize, usize),
}

impl Outputs<'_> {
    fn dispatch(&self, m: &[f32], blocks: (usize, usize)) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F; the destination is this task's (`Conv::run_winograd`).
            return unsafe { avx512::write_outputs(self, m, blocks) };
        }
        self.write(m, blocks);
    }

    /// The output pixels of blocks `b0..b1` from their products `m`, `[position][block][cols]`: the
    /// portable code.
    fn write(&self, m: &[f32], (b0, b1): (usize, usize)) {
        let (h, w) = self.size;
        let (n0, n1) = self.channels;
        let (rows, cols) = (b1 - b0, n1 - n0);
        let c_out = self.conv.c_out;
        for b in b0..b1 {
            let (y0, x0) = (2 * (b / self.bw), 2 * (b % self.bw));
            for c0 in (0..cols).step_by(LANES) {
                let len = LANES.min(cols - c0);
                let mut p = [[[0.0; LANES]; 4]; 4];
                for (pos, lanes) in p.as_flattened_mut().iter_mut().enumerate() {
                    load(lanes, &m[(pos * rows + b - b0) * cols + c0..], len);
                }
                let y = output_transform(&p);
                let ch = n0 + c0;
                let mut bias = [0.0; LANES];
                load(&mut bias, &self.conv.bias[ch..], len);
                for (dy, row) in y.iter().enumerate() {
                    for (dx, lanes) in row.iter().enumerate() {
                        let (py, px) = (y0 + dy, x0 + dx);
                        if py >= h || px >= w {
                            continue;
                        }
                        let pixel = py * w + px;
                        let mut o = *lanes;
                        o.iter_mut().zip(&bias).for_each(|(v, b)| *v += b);
                        if let Some(r) = self.residual {
                            let mut rl = [0.0; LANES];
                            load(&mut rl, &r.data[pixel * c_out + ch..], len);
                            o.iter_mut().zip(&rl).for_each(|(v, r)| *v += r);
                        }
                        self.conv.act.apply(&mut o);
                        // SAFETY: pixels of blocks b0..b1 × channels offset+n0..offset+n1 of the
                        // output belong to this task alone.
                        let dst = unsafe {
                            std::slice::from_raw_parts_mut(self.dst.0.add(pixel * self.out_c + self.offset + ch), len)
                        };
                        store(dst, &o);
                    }
                }
            }
        }
    }
}

/// The first `len` values of `src` into `lanes` (a whole lane group as one fixed-size copy).
#[inline(always)]
fn load(lanes: &mut [f32; LANES], src: &[f32], len: usize) {
    if len == LANES {
        *lanes = src[..LANES].try_into().expect("a lane group");
    } else {
        for (l, &s) in lanes.iter_mut().zip(&src[..len]) {
            *l = s;
        }
    }
}

/// `dst` (at most [`LANES`] values) from the first lanes of `lanes`.
#[inline(always)]
fn store(dst: &mut [f32], lanes: &[f32; LANES]) {
    if dst.len() == LANES {
        let d: &mut [f32; LANES] = dst.try_into().expect("a lane group");
        *d = *lanes;
    } else {
        for (d, &l) in dst.iter_mut().zip(lanes) {
            *d = l;
        }
    }
}

/// The transformed 4×4 input block of rows × columns `taps` ([`Grid::taps`]), for the channels of
/// `map`: position `pos` at `v[pos · pos_stride + row + at ..]`; zeros outside the map (the padding).
#[inline(always)]
fn transform_block(map: &Map, taps: ([usize; 4], [usize; 4]), at: usize, row: usize, pos_stride: usize, v: &mut [f32]) {
    let c = map.c;
    // The block's 16 pixels, or `None` in the padding.
    let mut px: [[Option<&[f32]>; 4]; 4] = [[None; 4]; 4];
    for (prow, iy) in px.iter_mut().zip(taps.0) {
        for (p, ix) in prow.iter_mut().zip(taps.1) {
            if iy < map.h && ix < map.w {
                *p = Some(&map.data[(iy * map.w + ix) * c..][..c]);
            }
        }
    }
    for c0 in (0..c).step_by(LANES) {
        let len = LANES.min(c - c0);
        let mut d = [[[0.0; LANES]; 4]; 4];
        for (dr, pr) in d.iter_mut().zip(&px) {
            for (lanes, p) in dr.iter_mut().zip(pr) {
                if let Some(p) = p {
                    load(lanes, &p[c0..], len);
                }
            }
        }
        let t = input_transform(&d);
        for (pos, lanes) in t.as_flattened().iter().enumerate() {
            store(&mut v[pos * pos_stride + row + at + c0..][..len], lanes);
        }
    }
}

#[cfg(test)]
mod tests;
