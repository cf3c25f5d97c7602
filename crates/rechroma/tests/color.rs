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
