//! Image-quality metrics for colorization, as pure functions on 8-bit RGB images or ab planes.
//!
//! - [`psnr`]: peak signal-to-noise ratio over all channels of 8-bit RGB (peak 255).
//! - [`ssim`]: structural similarity (Wang et al. 2004) with an 11-tap Gaussian window, σ = 1.5,
//!   K1 = 0.01, K2 = 0.03, population statistics, computed per RGB channel and averaged; borders are
//!   filtered with symmetric reflection and the 5-pixel margin is left out of the mean (as scikit-image's
//!   `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`).
//! - [`colorfulness`]: Hasler & Süsstrunk 2003, M = σ_rgyb + 0.3·μ_rgyb on 8-bit values.
//! - [`auc`]: Zhang et al. 2016: the fraction of pixels whose ab error (L2) is within t, for
//!   t = 0, 1, …, 150, integrated (trapezoid) and divided by 150; 1 is perfect.

use image::RgbImage;

/// SSIM window parameters (Wang et al. 2004).
pub const SSIM_SIGMA: f64 = 1.5;
/// Half-width of the SSIM window: 11 taps (scikit-image: int(3.5·σ + 0.5)).
pub const SSIM_RADIUS: usize = 5;
/// SSIM stabilizer K1: C1 = (K1·255)².
pub const SSIM_K1: f64 = 0.01;
/// SSIM stabilizer K2: C2 = (K2·255)².
pub const SSIM_K2: f64 = 0.03;
/// Largest threshold of the AuC curve, in ab units.
pub const AUC_MAX_THRESHOLD: usize = 150;

fn check_same(a: &RgbImage, b: &RgbImage) {
    assert_eq!(a.dimensions(), b.dimensions(), "metrics need images of the same size");
}

/// PSNR in dB between two 8-bit RGB images (infinite when they are equal).
pub fn psnr(truth: &RgbImage, pred: &RgbImage) -> f64 {
    check_same(truth, pred);
    let n = truth.as_raw().len() as f64;
    let se: f64 = truth
        .as_raw()
        .iter()
        .zip(pred.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    if se == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / (se / n)).log10()
    }
}

/// Normalised 1-D Gaussian kernel of `2·SSIM_RADIUS + 1` taps.
fn gaussian_kernel() -> Vec<f64> {
    let k: Vec<f64> = (0..=2 * SSIM_RADIUS)
        .map(|i| (-((i as f64 - SSIM_RADIUS as f64).powi(2)) / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.into_iter().map(|v| v / s).collect()
}

/// Index into [0, n) with half-sample symmetric reflection (… c b a | a b c … ), scipy's "reflect".
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let period = 2 * n;
    let mut m = i.rem_euclid(period);
    if m >= n {
        m = period - 1 - m;
    }
    m as usize
}

/// Separable Gaussian filter of a `w × h` plane.
fn blur(src: &[f64], w: usize, h: usize, k: &[f64]) -> Vec<f64> {
    let r = SSIM_RADIUS as isize;
    let mut tmp = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            tmp[y * w + x] = (-r..=r)
                .map(|d| k[(d + r) as usize] * src[y * w + reflect(x as isize + d, w)])
                .sum();
        }
    }
    let mut out = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = (-r..=r)
                .map(|d| k[(d + r) as usize] * tmp[reflect(y as isize + d, h) * w + x])
                .sum();
        }
    }
    out
}

/// Mean SSIM of one channel.
fn ssim_plane(x: &[f64], y: &[f64], w: usize, h: usize) -> f64 {
    let k = gaussian_kernel();
    let mul = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).collect::<Vec<_>>();
    let (mx, my) = (blur(x, w, h, &k), blur(y, w, h, &k));
    let (mxx, myy, mxy) = (
        blur(&mul(x, x), w, h, &k),
        blur(&mul(y, y), w, h, &k),
        blur(&mul(x, y), w, h, &k),
    );
    let (c1, c2) = ((SSIM_K1 * 255.0).powi(2), (SSIM_K2 * 255.0).powi(2));
    let (mut sum, mut n) = (0.0, 0usize);
    for yy in SSIM_RADIUS..h - SSIM_RADIUS {
        for xx in SSIM_RADIUS..w - SSIM_RADIUS {
            let i = yy * w + xx;
            let (vx, vy, cxy) = (mxx[i] - mx[i] * mx[i], myy[i] - my[i] * my[i], mxy[i] - mx[i] * my[i]);
            let s = ((2.0 * mx[i] * my[i] + c1) * (2.0 * cxy + c2))
                / ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2));
            sum += s;
            n += 1;
        }
    }
    sum / n as f64
}

/// Mean SSIM over the three channels of two 8-bit RGB images (each side must exceed 10 pixels).
pub fn ssim(truth: &RgbImage, pred: &RgbImage) -> f64 {
    check_same(truth, pred);
    let (w, h) = (truth.width() as usize, truth.height() as usize);
    assert!(
        w > 2 * SSIM_RADIUS && h > 2 * SSIM_RADIUS,
        "SSIM needs images larger than 11×11"
    );
    let plane = |img: &RgbImage, c: usize| {
        img.as_raw()
            .iter()
            .skip(c)
            .step_by(3)
            .map(|&v| f64::from(v))
            .collect::<Vec<_>>()
    };
    (0..3)
        .map(|c| ssim_plane(&plane(truth, c), &plane(pred, c), w, h))
        .sum::<f64>()
        / 3.0
}

/// Colorfulness of Hasler & Süsstrunk 2003 on an 8-bit RGB image: 0 for gray, ~100+ for vivid images.
pub fn colorfulness(img: &RgbImage) -> f64 {
    let n = (img.width() as usize * img.height() as usize) as f64;
    let (mut s_rg, mut s_yb, mut s_rg2, mut s_yb2) = (0.0, 0.0, 0.0, 0.0);
    for px in img.pixels() {
        let [r, g, b] = px.0.map(f64::from);
        let (rg, yb) = (r - g, 0.5 * (r + g) - b);
        s_rg += rg;
        s_yb += yb;
        s_rg2 += rg * rg;
        s_yb2 += yb * yb;
    }
    let (m_rg, m_yb) = (s_rg / n, s_yb / n);
    let (v_rg, v_yb) = ((s_rg2 / n - m_rg * m_rg).max(0.0), (s_yb2 / n - m_yb * m_yb).max(0.0));
    (v_rg + v_yb).sqrt() + 0.3 * (m_rg * m_rg + m_yb * m_yb).sqrt()
}

/// The cumulative ab-error curve: entry t is the fraction of pixels with ‖ab_pred − ab_true‖ ≤ t,
/// t = 0..=150. Inputs are planar a and b planes of the same length.
pub fn ab_error_curve(true_a: &[f32], true_b: &[f32], pred_a: &[f32], pred_b: &[f32]) -> Vec<f64> {
    let n = true_a.len();
    assert!(
        n > 0 && [true_b.len(), pred_a.len(), pred_b.len()].iter().all(|&l| l == n),
        "planes must match"
    );
    // Histogram of ceil(error): error ≤ t  ⇔  ceil(error) ≤ t for integer t.
    let mut hist = vec![0u64; AUC_MAX_THRESHOLD + 2];
    for i in 0..n {
        let e = f64::from(true_a[i] - pred_a[i]).hypot(f64::from(true_b[i] - pred_b[i]));
        hist[(e.ceil() as usize).min(AUC_MAX_THRESHOLD + 1)] += 1;
    }
    let mut acc = 0u64;
    (0..=AUC_MAX_THRESHOLD)
        .map(|t| {
            acc += hist[t];
            acc as f64 / n as f64
        })
        .collect()
}

/// Zhang et al.'s AuC: the area under [`ab_error_curve`] (trapezoid rule) divided by 150, in [0, 1].
pub fn auc(true_a: &[f32], true_b: &[f32], pred_a: &[f32], pred_b: &[f32]) -> f64 {
    let c = ab_error_curve(true_a, true_b, pred_a, pred_b);
    c.windows(2).map(|w| 0.5 * (w[0] + w[1])).sum::<f64>() / AUC_MAX_THRESHOLD as f64
}
