//! The 313 bins, nearest-bin lookup and soft encoding (vs brute force and numpy), prior + weights
//! (vs numpy), and annealed-mean decoding (vs numpy, and its T limits).
mod common;

use rechroma::quantize::{
    self, Decoding, NEUTRAL_BIN, Prior, PriorAccumulator, PriorConfig, Q, Quantizer, Smoothing, SoftEncodeConfig,
    bin_centres, decode_distribution,
};

#[test]
fn the_313_bins_are_zhangs() {
    let c = bin_centres();
    assert_eq!(c.len(), 313);
    let sum = |f: &dyn Fn(&[f32; 2]) -> f64| c.iter().map(f).sum::<f64>();
    assert_eq!(sum(&|p| p[0] as f64), 4910.0);
    assert_eq!(sum(&|p| p[1] as f64), 2090.0);
    assert_eq!(sum(&|p| (p[0] as f64).powi(2)), 916_500.0);
    assert_eq!(sum(&|p| (p[1] as f64).powi(2)), 961_300.0);
    assert_eq!(c[NEUTRAL_BIN], [0.0, 0.0]);
    assert!(c.iter().all(|p| p[0] % 10.0 == 0.0 && p[1] % 10.0 == 0.0));
    assert!(
        c.windows(2).all(|w| (w[0][0], w[0][1]) < (w[1][0], w[1][1])),
        "sorted by (a, b)"
    );
}

fn brute_force(a: f32, b: f32, k: usize) -> Vec<u16> {
    let mut d: Vec<(f32, u16)> = bin_centres()
        .iter()
        .enumerate()
        .map(|(i, c)| ((a - c[0]).powi(2) + (b - c[1]).powi(2), i as u16))
        .collect();
    d.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    d[..k].iter().map(|x| x.1).collect()
}

#[test]
fn grid_lookup_equals_brute_force_everywhere() {
    for k in [1, 5, 10] {
        let q = Quantizer::new(SoftEncodeConfig { k, sigma: 5.0 });
        // A dense sweep including off-grid points, cell borders and far out-of-gamut values.
        let mut v = -135.0f32;
        while v <= 135.0 {
            let mut w = -135.0f32;
            while w <= 135.0 {
                let (a, b) = (v.clamp(-130.0, 130.0), w.clamp(-130.0, 130.0));
                assert_eq!(q.soft_encode(v, w).bins, brute_force(a, b, k), "k={k} at ({v}, {w})");
                w += 1.37;
            }
            v += 1.21;
        }
    }
}

#[test]
fn soft_encoding_matches_numpy() {
    let g = common::golden("quantize.json");
    for case in g["soft"].as_array().unwrap() {
        let ab = common::f32s(&case["ab"]);
        let k = case["k"].as_u64().unwrap() as usize;
        let sigma = case["sigma"].as_f64().unwrap() as f32;
        let code = Quantizer::new(SoftEncodeConfig { k, sigma }).soft_encode(ab[0], ab[1]);
        let bins: Vec<u16> = case["bins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u16)
            .collect();
        assert_eq!(code.bins, bins, "bins of {ab:?}");
        for (got, want) in code.weights.iter().zip(common::f32s(&case["weights"])) {
            assert!((got - want).abs() < 1e-5, "weights of {ab:?}: {:?}", code.weights);
        }
    }
}

#[test]
fn soft_encoding_sums_to_one_peaks_on_the_centre_and_honours_k_and_sigma() {
    let q = Quantizer::default();
    assert_eq!(q.config(), SoftEncodeConfig { k: 5, sigma: 5.0 });
    for (i, c) in bin_centres().iter().enumerate() {
        let code = q.soft_encode(c[0], c[1]);
        assert_eq!(code.bins.len(), 5);
        assert!((code.weights.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(code.bins[0] as usize, i, "a pixel on a centre puts most weight there");
        assert!(code.weights[1..].iter().all(|&w| w < code.weights[0]));
    }
    // Hand-computed: at a centre, the 4 grid neighbours are 10 away: weights ∝ 1, e^-2 ×4.
    let code = q.soft_encode(0.0, 0.0);
    let e2 = (-2.0f32).exp();
    assert!((code.weights[0] - 1.0 / (1.0 + 4.0 * e2)).abs() < 1e-6);
    // A smaller σ concentrates the mass; a larger k spreads it.
    let sharp = Quantizer::new(SoftEncodeConfig { k: 5, sigma: 2.0 }).soft_encode(3.0, 4.0);
    let soft = Quantizer::new(SoftEncodeConfig { k: 5, sigma: 10.0 }).soft_encode(3.0, 4.0);
    assert!(sharp.weights[0] > soft.weights[0]);
    assert_eq!(
        Quantizer::new(SoftEncodeConfig { k: 9, sigma: 5.0 })
            .soft_encode(3.0, 4.0)
            .bins
            .len(),
        9
    );
    assert_eq!(
        Quantizer::new(SoftEncodeConfig { k: 1, sigma: 5.0 })
            .soft_encode(3.0, 4.0)
            .weights,
        vec![1.0]
    );
}

#[test]
fn dense_soft_encoding_is_bin_major() {
    let q = Quantizer::default();
    let (a, b) = ([0.0, 31.0, -64.0], [0.0, -12.0, 77.0]);
    let dense = q.soft_encode_dense(&a, &b);
    assert_eq!(dense.len(), Q * 3);
    for p in 0..3 {
        let column: f32 = (0..Q).map(|k| dense[k * 3 + p]).sum();
        assert!((column - 1.0).abs() < 1e-6);
        let code = q.soft_encode(a[p], b[p]);
        assert_eq!(dense[code.bins[0] as usize * 3 + p], code.weights[0]);
    }
}

fn close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * w.abs().max(1e-12), "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn prior_smoothing_and_weights_match_numpy() {
    let g = &common::golden("quantize.json")["prior"];
    let counts: Vec<u64> = g["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let zhang = Prior::from_counts(&counts, 1, 0, PriorConfig::default()).unwrap();
    close(&zhang.smoothed, &common::f64s(&g["smoothed_ab2d"]), 1e-9, "P̃ ab2d");
    close(&zhang.weights, &common::f64s(&g["weights_ab2d"]), 1e-9, "w ab2d");
    let mleu = zhang
        .with_config(PriorConfig {
            smoothing: Smoothing::Index1d,
            ..PriorConfig::default()
        })
        .unwrap();
    close(&mleu.smoothed, &common::f64s(&g["smoothed_index1d"]), 1e-9, "P̃ index1d");
    close(&mleu.weights, &common::f64s(&g["weights_index1d"]), 1e-9, "w index1d");
    let cfg = PriorConfig {
        smoothing: Smoothing::None,
        lambda: 0.3,
        alpha: 0.7,
        ..PriorConfig::default()
    };
    close(
        &zhang.with_config(cfg).unwrap().weights,
        &common::f64s(&g["weights_none_lambda0.3_alpha0.7"]),
        1e-9,
        "w",
    );
    // The normalisation: the expected weight of a training pixel is 1.
    for p in [&zhang, &mleu] {
        let expected: f64 = p.smoothed.iter().zip(&p.weights).map(|(p, w)| p * w).sum();
        assert!((expected - 1.0).abs() < 1e-12);
        assert!((p.smoothed.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}

#[test]
fn weights_are_uniform_for_a_uniform_prior_and_alpha_zero() {
    let counts = vec![7u64; Q];
    let p = Prior::from_counts(&counts, 1, 0, PriorConfig::default()).unwrap();
    // 2-D smoothing of a uniform histogram is not uniform at the hull's edge; without smoothing it is.
    let flat = p
        .with_config(PriorConfig {
            smoothing: Smoothing::None,
            ..PriorConfig::default()
        })
        .unwrap();
    assert!(flat.weights.iter().all(|w| (w - 1.0).abs() < 1e-12));
    let alpha0 = p
        .with_config(PriorConfig {
            alpha: 0.0,
            ..PriorConfig::default()
        })
        .unwrap();
    assert!(alpha0.weights.iter().all(|w| (w - 1.0).abs() < 1e-12));
    // Rare colours weigh more than common ones.
    let mut skewed = vec![1u64; Q];
    skewed[NEUTRAL_BIN] = 1_000_000;
    let s = Prior::from_counts(&skewed, 1, 0, PriorConfig::default()).unwrap();
    assert!(s.weights[NEUTRAL_BIN] < s.weights[0]);
}

#[test]
fn prior_counts_real_photos_and_skips_grayscale_ones() {
    let dir = common::fixtures().join("photos");
    let golden = &common::golden("quantize.json")["fixture_counts"];
    let mut all = PriorAccumulator::new(PriorConfig::default().gray_threshold);
    let mut used = 0;
    for path in rechroma::data::scan(&dir).unwrap() {
        let lab = rechroma::color::LabImage::from_rgb8(&rechroma::data::load_rgb(&path).unwrap());
        let (a, b) = lab.ab().split_at(lab.pixels());
        let mut one = PriorAccumulator::new(PriorConfig::default().gray_threshold);
        used += one.add_image(a, b) as usize;
        all.merge(&one);
        let name = path.file_name().unwrap().to_str().unwrap();
        let Some(want) = golden[name].as_array() else { continue };
        let want: Vec<u64> = want.iter().map(|v| v.as_u64().unwrap()).collect();
        if name.ends_with(".jpg") {
            // JPEG decoders (zune-jpeg here, libjpeg in Pillow) upsample chroma differently.
            let n = want.iter().sum::<u64>() as f64;
            let l1: f64 = one
                .counts()
                .iter()
                .zip(&want)
                .map(|(&g, &w)| (g as f64 - w as f64).abs() / n)
                .sum();
            assert!(l1 < 0.1, "{name}: histogram L1 distance {l1}");
        } else {
            assert_eq!(
                one.counts(),
                &want[..],
                "{name}: bin counts vs skimage rgb2lab + brute force"
            );
        }
    }
    assert_eq!(used, 3, "the grayscale chelsea is skipped");
    let prior = all.finish(PriorConfig::default()).unwrap();
    assert_eq!((prior.images, prior.skipped_gray), (3, 1));
    assert_eq!(prior.pixels, 128 * 96 + 128 * 128 + 64 * 64);
}

#[test]
fn prior_file_round_trips_and_rejects_bad_files() {
    let mut counts = vec![0u64; Q];
    counts[5] = 10;
    counts[200] = 30;
    let prior = Prior::from_counts(&counts, 2, 1, PriorConfig::default()).unwrap();
    assert_eq!(prior.empty_bins(), Q - 2);
    let dir = std::env::temp_dir().join(format!("rechroma-prior-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("prior.json");
    prior.save(&path).unwrap();
    assert!(
        Prior::load(&path).unwrap() == prior,
        "the prior file must round-trip exactly"
    );
    std::fs::write(&path, br#"{"format": "something else"}"#).unwrap();
    let err = Prior::load(&path).unwrap_err().to_string();
    assert!(err.contains("prior.json"), "the error names the file: {err}");
    assert!(matches!(
        Prior::from_counts(&[0; Q], 0, 4, PriorConfig::default()),
        Err(quantize::PriorError::Empty { skipped: 4 })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn annealed_mean_matches_numpy() {
    for case in common::golden("quantize.json")["annealed"].as_array().unwrap() {
        let logits = common::f32s(&case["logits"]);
        let t = case["temperature"].as_f64().unwrap() as f32;
        let want = common::f32s(&case["ab"]);
        let got = decode_distribution(&logits, Decoding::AnnealedMean { temperature: t });
        assert!(
            (got[0] - want[0]).abs() < 1e-3 && (got[1] - want[1]).abs() < 1e-3,
            "T={t}: {got:?} vs {want:?}"
        );
    }
}

#[test]
fn chroma_falls_as_the_temperature_rises_on_a_bimodal_distribution_but_not_on_a_peaked_one() {
    use rechroma::quantize::Quantizer;
    let q = Quantizer::default();
    let chroma = |ab: [f32; 2]| ab[0].hypot(ab[1]);
    let temps = [0.05, 0.2, 0.38, 0.6, 1.0, 2.0];
    // Two opposite hues, 55 % red-ish (a = +60) and 45 % green-ish (a = −60): the mode is a saturated
    // red, the mean a pale one (0.55·60 − 0.45·60 = 6). Chroma must fall all the way as T rises.
    let mut p = vec![1e-12f32; Q];
    p[q.nearest(60.0, 0.0)] = 0.55;
    p[q.nearest(-60.0, 0.0)] = 0.45;
    let logp: Vec<f32> = p.iter().map(|v| v.ln()).collect();
    let c: Vec<f32> = temps
        .iter()
        .map(|&t| chroma(decode_distribution(&logp, Decoding::AnnealedMean { temperature: t })))
        .collect();
    assert!(c.windows(2).all(|w| w[1] < w[0]), "chroma by T {temps:?}: {c:?}");
    assert!(c[0] > 55.0 && c[4] < 10.0, "{c:?}");
    // One peaked mode (a sure pixel: 90 % on one bin, the rest on its 4 neighbours at the same hue):
    // every T gives nearly the same colour, which is why T barely moves an over-confident model.
    let mut p = vec![1e-12f32; Q];
    p[q.nearest(40.0, 20.0)] = 0.9;
    for (a, b) in [(50.0, 20.0), (30.0, 20.0), (40.0, 30.0), (40.0, 10.0)] {
        p[q.nearest(a, b)] = 0.025;
    }
    let logp: Vec<f32> = p.iter().map(|v| v.ln()).collect();
    let c: Vec<f32> = temps
        .iter()
        .map(|&t| chroma(decode_distribution(&logp, Decoding::AnnealedMean { temperature: t })))
        .collect();
    let spread = c.iter().cloned().fold(f32::MIN, f32::max) - c.iter().cloned().fold(f32::MAX, f32::min);
    assert!(
        spread < 1.0,
        "a peaked distribution decodes to one chroma at any T: {c:?}"
    );
}

#[test]
fn annealed_mean_limits_are_the_mean_and_the_mode() {
    // A bimodal distribution: 60% on bin 30, 40% on bin 250.
    let mut p = vec![1e-9f32; Q];
    p[30] = 0.6;
    p[250] = 0.4;
    let logp: Vec<f32> = p.iter().map(|v| v.ln()).collect();
    let (c30, c250) = (bin_centres()[30], bin_centres()[250]);
    let mean = [0.6 * c30[0] + 0.4 * c250[0], 0.6 * c30[1] + 0.4 * c250[1]];
    let at = |d| decode_distribution(&logp, d);
    let near = |x: [f32; 2], y: [f32; 2], tol: f32| (x[0] - y[0]).abs() < tol && (x[1] - y[1]).abs() < tol;
    assert!(near(at(Decoding::Mean), mean, 1e-3));
    assert!(near(at(Decoding::AnnealedMean { temperature: 1.0 }), mean, 1e-3));
    assert_eq!(at(Decoding::Mode), c30);
    assert!(
        near(at(Decoding::AnnealedMean { temperature: 0.01 }), c30, 1e-3),
        "T → 0 is the mode"
    );
    assert_eq!(at(Decoding::AnnealedMean { temperature: 0.0 }), c30);
    // In between, the annealed mean lies on the segment, nearer the mode than the mean does.
    let mid = at(Decoding::default());
    assert!((mid[0] - c30[0]).abs() < (mean[0] - c30[0]).abs());
    assert_eq!(Decoding::default(), Decoding::AnnealedMean { temperature: 0.38 });
}

#[test]
fn prior_correction_undoes_the_rebalancing_of_a_distribution() {
    use rechroma::quantize::decode::{decode_planes, decode_planes_offset, prior_correction};
    // A calibrated distribution p over the bins, and what rebalanced training predicts: p̂ ∝ w·p.
    let q = rechroma::quantize::Q;
    let p: Vec<f64> = (0..q).map(|i| 1.0 + (i as f64 * 0.37).sin().powi(2) * 5.0).collect();
    let w: Vec<f64> = (0..q).map(|i| 0.2 + (i % 7) as f64).collect();
    let log_p: Vec<f32> = p.iter().map(|v| v.ln() as f32).collect();
    let log_rebalanced: Vec<f32> = p.iter().zip(&w).map(|(v, w)| (v * w).ln() as f32).collect();
    let d = rechroma::quantize::Decoding::AnnealedMean { temperature: 0.38 };
    let want = decode_planes(&log_p, 1, d);
    // β = 1 recovers the calibrated decoding; β = 0 is the plain one.
    let full = decode_planes_offset(&log_rebalanced, 1, d, Some(&prior_correction(&w, 1.0)));
    assert!(
        (full.0[0] - want.0[0]).abs() < 1e-3 && (full.1[0] - want.1[0]).abs() < 1e-3,
        "{full:?} vs {want:?}"
    );
    let none = decode_planes_offset(&log_rebalanced, 1, d, Some(&prior_correction(&w, 0.0)));
    assert_eq!(none, decode_planes(&log_rebalanced, 1, d));
    // Hand-computed: −β ln w.
    let offsets = prior_correction(&[1.0, std::f64::consts::E, 0.5], 0.5);
    assert!(
        (offsets[0]).abs() < 1e-7 && (offsets[1] + 0.5).abs() < 1e-6 && (offsets[2] - 0.5 * 2f32.ln()).abs() < 1e-6
    );
}

#[test]
fn chroma_gain_fades_below_one_and_raises_the_sure_colours_above() {
    use rechroma::quantize::decode::chroma_gain;
    // Hand-computed: v^(½ + h) for v ≤ 1, 1 + (v − 1)·√(1 − h) above.
    assert_eq!(chroma_gain(0.36, 1.0), 1.0);
    assert!(
        (chroma_gain(0.36, 0.5) - 0.550_953).abs() < 1e-5,
        "{}",
        chroma_gain(0.36, 0.5)
    );
    assert!((chroma_gain(0.36, 0.25) - 0.303_549).abs() < 1e-5);
    assert_eq!(chroma_gain(0.36, 0.0), 0.0);
    assert!((chroma_gain(0.0, 0.3) - 0.547_723).abs() < 1e-5);
    assert!((chroma_gain(0.36, 2.0) - 1.8).abs() < 1e-6);
    assert!((chroma_gain(0.36, 1.5) - 1.4).abs() < 1e-6);
    assert_eq!(chroma_gain(0.0, 2.0), 2.0, "a certain pixel doubles at 200 %");
    assert_eq!(chroma_gain(1.0, 2.0), 1.0, "a uniform distribution is not raised");
    // The lower third is not all gray (issue 21 #5): at 30 % an unsure pixel (h = 0.9) keeps 0.185.
    assert!(chroma_gain(0.9, 0.3) > 0.18);
    // Rises with the vividness; below 1 the unsure colours fade first, above 1 the sure ones rise most.
    for v in [0.2, 0.5, 0.8, 1.3, 1.9] {
        assert!(chroma_gain(0.4, v) < chroma_gain(0.4, v + 0.1));
    }
    for v in [0.2, 0.5, 0.8] {
        assert!(chroma_gain(0.2, v) > chroma_gain(0.6, v), "unsure colours fade first");
    }
    for v in [1.3, 1.9] {
        assert!(chroma_gain(0.2, v) > chroma_gain(0.6, v), "sure colours rise most");
    }
}
