//! Metrics against scikit-image (PSNR, SSIM) and numpy (colorfulness, AuC) on the metric fixtures.
mod common;

use rechroma::color::LabImage;
use rechroma::metrics;

fn load(name: &str) -> image::RgbImage {
    rechroma::data::load_rgb(&common::fixtures().join("metrics").join(name)).unwrap()
}

#[test]
fn psnr_and_ssim_match_scikit_image() {
    let g = common::golden("metrics.json");
    let (truth, pred) = (load("truth_128x96.png"), load("pred_128x96.png"));
    let psnr = metrics::psnr(&truth, &pred);
    assert!((psnr - g["psnr"].as_f64().unwrap()).abs() < 1e-9, "PSNR {psnr}");
    let ssim = metrics::ssim(&truth, &pred);
    assert!((ssim - g["ssim"].as_f64().unwrap()).abs() < 1e-9, "SSIM {ssim}");
    assert_eq!(metrics::psnr(&truth, &truth), f64::INFINITY);
    assert!((metrics::ssim(&truth, &truth) - 1.0).abs() < 1e-12);
}

#[test]
fn colorfulness_matches_the_formula() {
    let g = common::golden("metrics.json");
    for (name, key) in [
        ("truth_128x96.png", "colorfulness_truth"),
        ("pred_128x96.png", "colorfulness_pred"),
    ] {
        let got = metrics::colorfulness(&load(name));
        assert!((got - g[key].as_f64().unwrap()).abs() < 1e-9, "{name}: {got}");
    }
    // Gray is 0; a pure red image has σ = 0 and μ_rg = 255, μ_yb = 127.5: M = 0.3·√(255² + 127.5²).
    assert_eq!(
        metrics::colorfulness(&image::RgbImage::from_pixel(8, 8, image::Rgb([90, 90, 90]))),
        0.0
    );
    let red = metrics::colorfulness(&image::RgbImage::from_pixel(8, 8, image::Rgb([255, 0, 0])));
    assert!((red - 0.3 * (255f64.powi(2) + 127.5f64.powi(2)).sqrt()).abs() < 1e-9);
}

#[test]
fn auc_matches_numpy_and_is_one_for_a_perfect_prediction() {
    let g = common::golden("metrics.json");
    let (truth, pred) = (
        LabImage::from_rgb8(&load("truth_128x96.png")),
        LabImage::from_rgb8(&load("pred_128x96.png")),
    );
    let n = truth.pixels();
    let (ta, tb) = truth.ab().split_at(n);
    let (pa, pb) = pred.ab().split_at(n);
    let curve = metrics::ab_error_curve(ta, tb, pa, pb);
    let want = common::f64s(&g["auc_curve"]);
    assert_eq!(curve.len(), 151);
    // Lab values differ from skimage's by < 1e-3, which can move a pixel that sits on a threshold.
    for (t, (c, w)) in curve.iter().zip(&want).enumerate() {
        assert!((c - w).abs() <= 2.0 / n as f64, "curve at {t}: {c} vs {w}");
    }
    let auc = metrics::auc(ta, tb, pa, pb);
    assert!((auc - g["auc"].as_f64().unwrap()).abs() < 1e-4, "AuC {auc}");
    let zeros = vec![0f32; n];
    let gray = metrics::auc(ta, tb, &zeros, &zeros);
    assert!((gray - g["auc_gray"].as_f64().unwrap()).abs() < 1e-4, "gray AuC {gray}");
    assert!((metrics::auc(ta, tb, ta, tb) - 1.0).abs() < 1e-12);
    // Hand-computed: every error exactly ‖(6, 8)‖ = 10 → fraction 0 below t=10, 1 from t=10:
    // trapezoid area 0.5 + 140, over 150.
    let (six, eight) = (vec![6f32; 4], vec![8f32; 4]);
    assert!((metrics::auc(&[0.0; 4], &[0.0; 4], &six, &eight) - 140.5 / 150.0).abs() < 1e-12);
}

#[test]
fn share_above_gray_and_median_gain_are_counted_per_photo() {
    use rechroma::evaluate::{Scores, gains};
    let s = |psnr| Scores {
        psnr,
        ..Scores::default()
    };
    let model = [s(20.0), s(22.0), s(25.0), s(f64::INFINITY)];
    let gray = [s(21.0), s(21.0), s(21.0), s(30.0)];
    // Gains −1, +1, +4, +70 (∞ capped at 100 dB): 3 of 4 above gray, median (1 + 4) / 2.
    let (above, median) = gains(&model, &gray);
    assert_eq!(above, 0.75);
    assert_eq!(median, 2.5);
    // A tie is not a win.
    assert_eq!(gains(&[s(21.0)], &[s(21.0)]), (0.0, 0.0));
}
