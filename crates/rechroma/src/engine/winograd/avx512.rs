//! The Winograd transforms written with AVX-512 intrinsics: a lane group of 16 channels a register,
//! a partial group (a map of 1 or 3 channels, the hint planes) by masked loads and stores. The
//! portable code in the parent module, compiled for AVX-512 by `#[target_feature]` alone, spent more
//! time copying its arrays of lanes than transforming them (`perf`: 56 % of a 256² layer).

use super::{Grid, LANES, Outputs};
use crate::engine::conv::{Map, Src};
use crate::engine::simd::{activate, mask};
use std::arch::x86_64::*;

/// The input transform of blocks `b0..b1` into `v`, `[position][block][c_in]` (see
/// [`super::transform_inputs`]).
///
/// # Safety
/// The CPU must have AVX-512F; `v` must hold `16 × (b1 − b0) × c_in` values.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn transform_inputs(
    inputs: &[Src],
    (b0, b1): (usize, usize),
    grid: Grid,
    c_in: usize,
    v: &mut [f32],
) {
    assert!(v.len() >= 16 * (b1 - b0) * c_in, "room for the transformed blocks");
    let pos_stride = (b1 - b0) * c_in;
    let v = v.as_mut_ptr();
    for b in b0..b1 {
        let taps = (grid.taps(b / grid.bw), grid.taps(b % grid.bw));
        let mut at = (b - b0) * c_in;
        for src in inputs {
            // SAFETY: `block` reads the map's pixels and writes channels `at..at + c` of each
            // position's row, inside `v` (asserted above).
            unsafe { block(src.map, taps, v.add(at), pos_stride) };
            at += src.map.c;
        }
    }
}

/// Bᵀ d B of the 4×4 block of rows × columns `taps` of `map`, position `pos` written at
/// `v + pos · pos_stride`.
#[target_feature(enable = "avx512f")]
unsafe fn block(map: &Map, taps: ([usize; 4], [usize; 4]), v: *mut f32, pos_stride: usize) {
    let c = map.c;
    let mut px = [[std::ptr::null::<f32>(); 4]; 4];
    for (row, iy) in px.iter_mut().zip(taps.0) {
        for (p, ix) in row.iter_mut().zip(taps.1) {
            if iy < map.h && ix < map.w {
                *p = map.data[(iy * map.w + ix) * c..].as_ptr();
            }
        }
    }
    for c0 in (0..c).step_by(LANES) {
        let k = mask(c - c0);
        let mut d = [[_mm512_setzero_ps(); 4]; 4];
        for (dr, pr) in d.iter_mut().zip(&px) {
            for (lanes, &p) in dr.iter_mut().zip(pr) {
                if !p.is_null() {
                    // SAFETY: the pixel holds `c` channels; the mask reads only those from c0.
                    *lanes = unsafe { _mm512_maskz_loadu_ps(k, p.add(c0)) };
                }
            }
        }
        let mut t = [[_mm512_setzero_ps(); 4]; 4];
        for j in 0..4 {
            t[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
            t[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
            t[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
            t[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
        }
        for (r, t) in t.iter().enumerate() {
            let out = [
                _mm512_sub_ps(t[0], t[2]),
                _mm512_add_ps(t[1], t[2]),
                _mm512_sub_ps(t[2], t[1]),
                _mm512_sub_ps(t[1], t[3]),
            ];
            for (j, o) in out.into_iter().enumerate() {
                // SAFETY: inside this block's row of position r·4 + j (the caller's bounds).
                unsafe { _mm512_mask_storeu_ps(v.add((r * 4 + j) * pos_stride + c0), k, o) };
            }
        }
    }
}

/// The output transform, bias, residual and activation of blocks `b0..b1` from their products `m`,
/// `[position][block][cols]` (see [`Outputs::write`]).
///
/// # Safety
/// The CPU must have AVX-512F; `o`'s destination as [`Outputs::write`] requires.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn write_outputs(o: &Outputs, m: &[f32], (b0, b1): (usize, usize)) {
    let (h, w) = o.size;
    let (n0, n1) = o.channels;
    let (rows, cols) = (b1 - b0, n1 - n0);
    assert!(m.len() >= 16 * rows * cols, "the products of the blocks");
    let c_out = o.conv.c_out;
    for b in b0..b1 {
        let (y0, x0) = (2 * (b / o.bw), 2 * (b % o.bw));
        let base = m[(b - b0) * cols..].as_ptr();
        for c0 in (0..cols).step_by(LANES) {
            let k = mask(cols - c0);
            // SAFETY: position p's products of this block are `cols` values at base + p·rows·cols.
            let p = |pos: usize| unsafe { _mm512_maskz_loadu_ps(k, base.add(pos * rows * cols + c0)) };
            let mut s = [[_mm512_setzero_ps(); 4]; 2];
            for j in 0..4 {
                let (m0, m1, m2, m3) = (p(j), p(4 + j), p(8 + j), p(12 + j));
                s[0][j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                s[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
            }
            let ch = n0 + c0;
            // SAFETY: the bias holds c_out values; the mask stops at n1 ≤ c_out.
            let bias = unsafe { _mm512_maskz_loadu_ps(k, o.conv.bias.as_ptr().add(ch)) };
            for (dy, s) in s.iter().enumerate() {
                let y = [
                    _mm512_add_ps(_mm512_add_ps(s[0], s[1]), s[2]),
                    _mm512_sub_ps(_mm512_sub_ps(s[1], s[2]), s[3]),
                ];
                for (dx, y) in y.into_iter().enumerate() {
                    let (py, px) = (y0 + dy, x0 + dx);
                    if py >= h || px >= w {
                        continue;
                    }
                    let pixel = py * w + px;
                    let mut v = _mm512_add_ps(y, bias);
                    if let Some(r) = o.residual {
                        // SAFETY: the residual holds c_out channels a pixel.
                        v = _mm512_add_ps(v, unsafe {
                            _mm512_maskz_loadu_ps(k, r.data[pixel * c_out + ch..].as_ptr())
                        });
                    }
                    v = activate(o.conv.act, v);
                    // SAFETY: pixels of blocks b0..b1 × channels offset+n0..offset+n1 of the output
                    // belong to this task alone (see `Conv::run_winograd`).
                    unsafe { _mm512_mask_storeu_ps(o.dst.0.add(pixel * o.out_c + o.offset + ch), k, v) };
                }
            }
        }
    }
}
