//! Colour science against scikit-image (golden values from scripts/reference/golden.py) and the
//! exhaustive 8-bit round trip.
mod common;

use rayon::prelude::*;
use rechroma::color::{self, LabImage, norm};

#[test]
fn rgb8_to_lab_matches_scikit_image() {
    let g = common::golden("color.json");
    let cases = g["rgb8_to_lab"].as_array().unwrap();
    assert!(cases.len() >= 200, "a few hundred colours");
    let mut worst = 0f32;
    for c in cases {
        let rgb: Vec<u8> = c["rgb"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        let want = common::f32s(&c["lab"]);
        let got = color::srgb8_to_lab([rgb[0], rgb[1], rgb[2]]);
        for i in 0..3 {
            worst = worst.max((got[i] - want[i]).abs());
        }
    }
    assert!(worst <= 1e-3, "max |ΔLab| = {worst}");
}

#[test]
fn gamut_corners_have_the_published_lab_values() {
    // Independent of the golden file: CIE Lab of the sRGB primaries (D65), well known to 2 decimals.
    let cases = [
        ([255, 255, 255], [100.0, 0.0, 0.0]),
        ([0, 0, 0], [0.0, 0.0, 0.0]),
        ([255, 0, 0], [53.24, 80.09, 67.20]),
        ([0, 255, 0], [87.73, -86.18, 83.18]),
        ([0, 0, 255], [32.30, 79.19, -107.86]),
    ];
    for (rgb, want) in cases {
        let got = color::srgb8_to_lab(rgb);
        for i in 0..3 {
            assert!((got[i] - want[i]).abs() < 0.01, "{rgb:?}: {got:?} vs {want:?}");
        }
    }
}

#[test]
fn lab_to_rgb_matches_scikit_image_including_out_of_gamut() {
    let g = common::golden("color.json");
    let mut worst = 0f64;
    for c in g["lab_to_rgb"].as_array().unwrap() {
        let lab = common::f32s(&c["lab"]);
        let want = common::f64s(&c["rgb"]);
        let got = color::lab_to_srgb([lab[0], lab[1], lab[2]]);
        for i in 0..3 {
            worst = worst.max((got[i] - want[i]).abs());
        }
    }
    // Inputs are rounded to f32 here; 1e-5 of full scale is far below one 16-bit step.
    assert!(worst <= 1e-5, "max |ΔRGB| = {worst}");
}

#[test]
fn every_8bit_colour_round_trips_exactly() {
    let off: usize = (0u32..1 << 24)
        .into_par_iter()
        .filter(|&c| {
            let rgb = [(c >> 16) as u8, (c >> 8) as u8, c as u8];
            color::lab_to_srgb8(color::srgb8_to_lab(rgb)) != rgb
        })
        .count();
    assert_eq!(off, 0, "{off} of 16,777,216 colours do not survive sRGB → Lab → sRGB");
}

#[test]
fn planar_image_conversion_matches_the_per_pixel_one() {
    let img = image::RgbImage::from_fn(37, 23, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 11) as u8, (x * y) as u8])
    });
    let lab = LabImage::from_rgb8(&img);
    assert_eq!(lab.data.len(), 3 * 37 * 23);
    let n = lab.pixels();
    for (i, px) in img.pixels().enumerate() {
        let want = color::srgb8_to_lab(px.0);
        assert_eq!([lab.data[i], lab.data[n + i], lab.data[2 * n + i]], want);
    }
    assert_eq!(lab.to_rgb8(), img);
}

#[test]
fn normalisations_invert_and_hit_their_ranges() {
    assert_eq!(norm::l_to_unit(100.0), 1.0);
    assert_eq!(norm::l_to_centered(50.0), 0.0);
    assert_eq!(norm::ab_to_signed(110.0), 1.0);
    assert_eq!(norm::ab_to_signed(-500.0), -1.0);
    assert_eq!(norm::ab_to_unit(-128.0), 0.0);
    assert_eq!(norm::ab_to_unit(127.0), 1.0);
    for v in [-107.9f32, -3.5, 0.0, 42.0, 98.2] {
        assert!((norm::signed_to_ab(norm::ab_to_signed(v)) - v).abs() < 1e-4);
        assert!((norm::unit_to_ab(norm::ab_to_unit(v)) - v).abs() < 1e-4);
    }
    for l in [0.0f32, 12.5, 100.0] {
        assert!((norm::unit_to_l(norm::l_to_unit(l)) - l).abs() < 1e-5);
        assert!((norm::centered_to_l(norm::l_to_centered(l)) - l).abs() < 1e-5);
    }
    // Every sRGB colour is inside the signed range without clamping.
    let max_ab = [[0u8, 0, 255], [0, 255, 0], [255, 0, 255], [255, 255, 0]]
        .iter()
        .map(|&c| {
            let l = color::srgb8_to_lab(c);
            l[1].abs().max(l[2].abs())
        })
        .fold(0f32, f32::max);
    assert!(max_ab < norm::AB_SIGNED_SCALE, "{max_ab}");
}

#[test]
fn fit_to_gamut_finds_the_largest_in_gamut_chroma_of_a_dense_scan() {
    // Reference: scripts/reference/gamut_golden.py (scikit-image's lab2xyz, dense scan of the scale).
    let g = common::golden("gamut.json");
    for case in g["cases"].as_array().unwrap() {
        let lab = common::f32s(&case["lab"]);
        let want = case["scale"].as_f64().unwrap() as f32;
        let [a, b] = color::fit_to_gamut([lab[0], lab[1], lab[2]]);
        let chroma = lab[1].hypot(lab[2]);
        let got = if chroma > 0.0 { a.hypot(b) / chroma } else { 1.0 };
        assert!((got - want).abs() <= 1e-3, "{lab:?}: scale {got}, reference {want}");
        // Hue kept: the fitted ab is the original scaled, never rotated.
        assert!(
            (a * lab[2] - b * lab[1]).abs() <= 1e-3 * chroma.max(1.0),
            "{lab:?}: hue changed"
        );
        let fitted = [f64::from(lab[0]), f64::from(a), f64::from(b)];
        assert!(
            color::in_srgb_gamut(fitted),
            "{lab:?} → {fitted:?} is still out of gamut"
        );
    }
}

#[test]
fn a_bright_wall_can_be_only_faintly_blue() {
    // At L = 95 the sRGB gamut holds no b below about −7.5 on the b axis (dense scan in the script).
    let min_b = common::golden("gamut.json")["min_b_at_l95"].as_f64().unwrap() as f32;
    let [a, b] = color::fit_to_gamut([95.0, 0.0, -30.0]);
    assert_eq!(a, 0.0);
    assert!((b - min_b).abs() < 0.01, "b {b}, reference {min_b}");
    // Clipping the channels instead gives a more saturated cyan-blue (scikit-image: 206, 243, 255, whose
    // Lab is 93.6, −9.4, −9.7: lighter by 1.4 and turned towards cyan) where the fit keeps L and the hue.
    let clipped = color::lab_to_srgb8([95.0, 0.0, -30.0]);
    let fitted = color::lab_to_srgb8([95.0, a, b]);
    assert_eq!(clipped, [206, 243, 255]);
    let (lc, lf) = (color::srgb8_to_lab(clipped), color::srgb8_to_lab(fitted));
    assert!(
        (lf[0] - 95.0).abs() < 0.2 && lf[1].abs() < 0.5,
        "fitted {fitted:?} = Lab {lf:?}"
    );
    assert!(
        (lc[0] - 95.0).abs() > 1.0 && lc[1] < -9.0,
        "clipped {clipped:?} = Lab {lc:?}"
    );
    // Colours inside the gamut are left alone, bit for bit.
    for lab in [[50.0, 20.0, -30.0], [95.0, 0.0, -5.0], [30.0, 0.0, 0.0]] {
        assert_eq!(color::fit_to_gamut(lab), [lab[1], lab[2]]);
    }
}

#[test]
fn the_fast_conversions_of_the_recombination_equal_the_reference_ones() {
    // L of an 8-bit colour: bit for bit, every gray and a 1-in-7 sample of all colours.
    for i in (0..1u32 << 24).step_by(7).chain((0..256).map(|g| g * 0x010101)) {
        let rgb = [(i >> 16) as u8, (i >> 8) as u8, i as u8];
        assert_eq!(color::srgb8_lightness(rgb), color::srgb8_to_lab(rgb)[0], "{rgb:?}");
    }
    // Linear light → 8-bit code: the power route's rounding, except exactly on a boundary.
    for i in 0..=2_000_000u32 {
        let c = -0.05 + 1.1 * f64::from(i) / 2_000_000.0;
        let encoded = color::linear_to_srgb(c).clamp(0.0, 1.0) * 255.0;
        let want = encoded.round() as u8;
        let got = color::linear_to_srgb8(c);
        let on_boundary = (encoded - encoded.floor() - 0.5).abs() < 1e-9;
        assert!(got == want || on_boundary, "{c}: {got} vs {want}");
    }
    assert_eq!(color::linear_to_srgb8(f64::NAN), 0);
    // Lab → fitted 8-bit sRGB: the same bytes as fitting, then converting.
    for l in (0..=100).step_by(5) {
        for a in (-120..=120).step_by(8) {
            for b in (-120..=120).step_by(8) {
                let lab = [l as f32, a as f32, b as f32];
                let [fa, fb] = color::fit_to_gamut(lab);
                assert_eq!(
                    color::lab_to_srgb8_fitted(lab),
                    color::lab_to_srgb8([lab[0], fa, fb]),
                    "{lab:?}"
                );
            }
        }
    }
}
