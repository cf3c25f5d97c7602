//! Winograd convolutions against the definition, and the AVX-512 transforms against the portable ones.
use super::*;
use crate::engine::conv::Act;

/// A deterministic pseudo-random sequence in [−1, 1).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn map(h: usize, w: usize, c: usize, seed: u64) -> Map {
    Map {
        h,
        w,
        c,
        data: noise(h * w * c, seed),
    }
}

/// A 3×3 "same" convolution by its definition, in f64: `[h][w][c_out]`.
fn direct(x: &Map, weight: &[f32], bias: &[f32], c_out: usize) -> Vec<f64> {
    let (h, w, c) = (x.h, x.w, x.c);
    let mut y = vec![0.0; h * w * c_out];
    for oy in 0..h {
        for ox in 0..w {
            for co in 0..c_out {
                let mut s = f64::from(bias[co]);
                for ky in 0..3 {
                    for kx in 0..3 {
                        let (iy, ix) = ((oy + ky).wrapping_sub(1), (ox + kx).wrapping_sub(1));
                        if iy >= h || ix >= w {
                            continue;
                        }
                        for ci in 0..c {
                            s += f64::from(weight[((co * c + ci) * 3 + ky) * 3 + kx])
                                * f64::from(x.data[(iy * w + ix) * c + ci]);
                        }
                    }
                }
                y[(oy * w + ox) * c_out + co] = s;
            }
        }
    }
    y
}

#[test]
fn transformed_kernel_of_a_single_tap_is_hand_computed() {
    // g = the centre tap alone: G g Gᵀ = G[:,1] G[:,1]ᵀ with G[:,1] = (0, ½, −½, 0).
    let mut packed = vec![0.0; 9];
    packed[4] = 1.0;
    let u = transform_weights(&packed, 1, 1);
    let col = [0.0, 0.5, -0.5, 0.0];
    for i in 0..4 {
        for j in 0..4 {
            assert_eq!(u[i * 4 + j], col[i] * col[j], "position ({i}, {j})");
        }
    }
}

#[test]
fn equals_the_definition_on_odd_sizes_concatenations_and_channel_splits() {
    // Odd sides (a last block half outside the map), two inputs read as one concatenation, more
    // channels than one lane group, few blocks (the output channels split between tasks), an
    // offset into a wider output and a residual.
    for &(h, w, c1, c2, c_out) in &[
        (5, 7, 16, 3, 4),
        (9, 6, 20, 13, 40),
        (2, 2, 17, 0, 64),
        (16, 16, 32, 32, 96),
    ] {
        let a = map(h, w, c1, 1);
        let b = map(h, w, c2, 2);
        let c_in = c1 + c2;
        let weight = noise(c_out * c_in * 9, 3);
        let bias = noise(c_out, 4);
        let residual = map(h, w, c_out, 5);
        let conv = Conv::new(&weight, [c_out, c_in, 3, 3], Some(&bias), 1, Act::Identity);
        assert!(conv.winograd.is_some(), "a 3×3 stride-1 convolution runs by Winograd");
        let mut out = Map::zeros(h, w, c_out + 5);
        let srcs: Vec<Src> = if c2 > 0 {
            vec![Src::plain(&a), Src::plain(&b)]
        } else {
            vec![Src::plain(&a)]
        };
        conv.run(&srcs, &mut out, 3, Some(&residual));
        let joined = Map {
            h,
            w,
            c: c_in,
            data: (0..h * w)
                .flat_map(|p| {
                    let mut v = a.data[p * c1..(p + 1) * c1].to_vec();
                    v.extend_from_slice(&b.data[p * c2..(p + 1) * c2]);
                    v
                })
                .collect(),
        };
        let want = direct(&joined, &weight, &bias, c_out);
        for p in 0..h * w {
            let got = &out.data[p * (c_out + 5)..][..c_out + 5];
            assert!(
                got[..3].iter().chain(&got[3 + c_out..]).all(|&v| v == 0.0),
                "only its channels written"
            );
            for co in 0..c_out {
                let want = want[p * c_out + co] + f64::from(residual.data[p * c_out + co]);
                let d = (f64::from(got[3 + co]) - want).abs();
                assert!(
                    d < 2e-5 * (c_in as f64).sqrt(),
                    "{h}×{w} {c_in}→{c_out}: pixel {p} channel {co}: {} vs {want}",
                    got[3 + co]
                );
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_transforms_equal_the_portable_ones() {
    if !std::arch::is_x86_feature_detected!("avx512f") {
        eprintln!("SKIPPED: this CPU has no AVX-512F");
        return;
    }
    // Two sources, one a partial lane group; odd sides; blocks 3..17 of a 7 × 9 map.
    let (a, b) = (map(7, 9, 21, 6), map(7, 9, 3, 7));
    let (c_in, bw, blocks) = (24, 5, (3, 17));
    let srcs = [Src::plain(&a), Src::plain(&b)];
    let rows = blocks.1 - blocks.0;
    let (mut portable, mut simd) = (vec![0.0; 16 * rows * c_in], vec![0.0; 16 * rows * c_in]);
    transform_inputs(&srcs, blocks, Grid { bw, up: false }, c_in, &mut portable);
    // SAFETY: the CPU has AVX-512F; `simd` holds the blocks' values.
    unsafe { avx512::transform_inputs(&srcs, blocks, Grid { bw, up: false }, c_in, &mut simd) };
    assert_eq!(portable, simd, "input transforms");
    // The outputs: 20 of 40 channels (a partial lane group), with a residual and ReLU6.
    let c_out = 40;
    let conv = Conv::new(
        &noise(c_out * c_in * 9, 8),
        [c_out, c_in, 3, 3],
        Some(&noise(c_out, 9)),
        1,
        Act::Relu6,
    );
    let residual = map(7, 9, c_out, 10);
    let products: Vec<f32> = noise(16 * rows * 20, 11).iter().map(|v| 8.0 * v).collect();
    let mut outs = [Map::zeros(7, 9, c_out + 2), Map::zeros(7, 9, c_out + 2)];
    for (i, out) in outs.iter_mut().enumerate() {
        let o = Outputs {
            conv: &conv,
            dst: Out(out.data.as_mut_ptr()),
            out_c: c_out + 2,
            offset: 2,
            residual: Some(&residual),
            size: (7, 9),
            bw,
            channels: (16, 36),
        };
        if i == 0 {
            o.write(&products, blocks);
        } else {
            // SAFETY: the CPU has AVX-512F; `out` is the destination's only user.
            unsafe { avx512::write_outputs(&o, &products, blocks) };
        }
    }
    assert!(outs[0].data.iter().any(|&v| v > 0.0 && v < 6.0), "values written");
    assert_eq!(outs[0], outs[1], "output transforms");
}
