//! Colour hints: the JSON format and its refusals, the input planes, the training simulation, and a
//! hint-taking MLEU that starts as exactly the automatic one.

mod common;

use burn::tensor::{Device, Distribution, Tensor};
use rand::SeedableRng;
use rechroma::hints::{
    self, Hint, HintFile, HintSimConfig, check_hints, parse_hint_file, parse_hints, parse_inline, render,
};
use rechroma::model::mleu::{Head, MleuConfig};

#[test]
fn a_hints_file_parses_and_each_mistake_is_named() {
    let good = br##"[{"x": 412, "y": 230, "color": "#b03030"}, {"x": 40, "y": 600, "color": "#3a5f2a", "radius": 4}]"##;
    let hints = parse_hints(good).unwrap();
    assert_eq!(hints.len(), 2);
    assert_eq!(hints[0].rgb(), Some([0xb0, 0x30, 0x30]));
    assert_eq!(hints[1].radius, Some(4.0));
    // sRGB (176, 48, 48) → Lab (40.51, 51.31, 30.94), computed by hand from the sRGB/D65 formulas.
    let ab = hints[0].ab().unwrap();
    assert!((ab[0] - 51.31).abs() < 0.05 && (ab[1] - 30.94).abs() < 0.05, "{ab:?}");

    let refused = |json: &str, says: &str| {
        let e = parse_hints(json.as_bytes()).unwrap_err().to_string();
        assert!(e.contains(says), "{json}: {e}");
        assert!(!e.contains('\n'));
    };
    refused(
        r##"[{"x": 1, "y": 2, "color": "#b0303"}]"##,
        "hint 0: colour \"#b0303\" is not #RRGGBB",
    );
    refused(
        r##"[{"x": 1, "y": 2, "color": "#b03030"}, {"x": 1, "y": 2, "color": "red"}]"##,
        "hint 1",
    );
    refused(r##"[{"x": 1, "y": 2, "color": "#b03030", "radius": -1}]"##, "radius -1");
    refused(r##"[{"x": 1, "y": 2, "colour": "#b03030"}]"##, "unknown field `colour`");
    refused(r##"{"x": 1}"##, "not a list of hints");
    refused("not json", "not a list of hints");
    let many = format!(
        "[{}]",
        vec![r##"{"x": 1, "y": 2, "color": "#000000"}"##; 1001].join(",")
    );
    refused(&many, "1001 hints");

    // Outside the photo: named with the photo's size.
    let e = check_hints(&hints, 300, 700).unwrap_err().to_string();
    assert_eq!(e, "hint 0: (412, 230) is outside the 300×700 photo");
    assert!(check_hints(&hints, 413, 601).is_ok());
    assert!(check_hints(&hints, 412, 700).is_err(), "x = width is outside");

    // The command-line form.
    assert_eq!(
        parse_inline("412,230,#b03030").unwrap(),
        Hint {
            x: 412.0,
            y: 230.0,
            color: "#b03030".into(),
            radius: None
        }
    );
    for bad in ["412,230", "a,230,#b03030", "412,230,#zz0000", "nan,1,#000000"] {
        assert!(parse_inline(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_hints_file_for_a_folder_maps_names_to_lists() {
    let file = br##"{"a.jpg": [{"x": 1, "y": 2, "color": "#ff0000"}], "sub/b.png": []}"##;
    let HintFile::PerPhoto(map) = parse_hint_file(file).unwrap() else {
        panic!("an object is a per-photo file")
    };
    assert_eq!(map.len(), 2);
    assert_eq!(map["a.jpg"][0].color, "#ff0000");
    assert!(matches!(parse_hint_file(b"[]").unwrap(), HintFile::List(l) if l.is_empty()));
    let e = parse_hint_file(br##"{"a.jpg": [{"x": 1, "y": 2, "color": "#ff00"}]}"##).unwrap_err();
    assert!(e.to_string().contains("#ff00"), "{e}");
}

#[test]
fn hints_are_drawn_at_the_working_size_as_three_planes() {
    // A 1000×500 photo at a working size of 256×128: (412, 230) lies in working pixel (105, 58).
    let hint = Hint {
        x: 412.0,
        y: 230.0,
        color: "#b03030".into(),
        radius: None,
    };
    let (w, h) = (256, 128);
    let planes = render(std::slice::from_ref(&hint), (1000, 500), (w, h));
    assert_eq!(planes.len(), 3 * w * h);
    let n = w * h;
    let mask: Vec<(usize, usize)> = (0..n)
        .filter(|&p| planes[2 * n + p] == 1.0)
        .map(|p| (p % w, p / w))
        .collect();
    // The default patch: 3×3 working pixels around the point.
    assert_eq!(mask.len(), 9);
    assert!(mask.contains(&(105, 58)) && mask.contains(&(104, 57)) && mask.contains(&(106, 59)));
    let p = 58 * w + 105;
    assert!((planes[p] - 51.31 / 110.0).abs() < 1e-3 && (planes[n + p] - 30.94 / 110.0).abs() < 1e-3);
    assert_eq!(planes[0], 0.0, "no colour where nothing is revealed");
    // A radius in photo pixels scales to the working size: 8 photo pixels ≈ 2 working pixels → 5×5.
    let wide = Hint {
        radius: Some(8.0),
        ..hint
    };
    let planes = render(&[wide], (1000, 500), (w, h));
    assert_eq!(planes[2 * n..].iter().filter(|&&m| m == 1.0).count(), 25);
    // At the photo's edge the patch is clipped, not wrapped.
    let corner = Hint {
        x: 0.0,
        y: 0.0,
        color: "#00ff00".into(),
        radius: None,
    };
    let planes = render(&[corner], (1000, 500), (w, h));
    assert_eq!(planes[2 * n..].iter().filter(|&&m| m == 1.0).count(), 4);
}

#[test]
fn training_hints_follow_zhangs_distribution_and_reveal_patch_means() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let geometric = HintSimConfig {
        no_hint_share: 0.0,
        ..HintSimConfig::default()
    };
    let draws: Vec<usize> = (0..20_000).map(|_| hints::draw_count(&geometric, &mut rng)).collect();
    let mean = draws.iter().sum::<usize>() as f64 / draws.len() as f64;
    // Geometric on {0, 1, …} with p = 1/8: mean (1 − p)/p = 7, P(0) = 1/8.
    assert!((mean - 7.0).abs() < 0.25, "mean {mean}");
    let zeros = draws.iter().filter(|&&d| d == 0).count() as f64 / draws.len() as f64;
    assert!((zeros - 0.125).abs() < 0.01, "P(0) {zeros}");
    // The default adds a quarter of crops without hints: P(0) = 0.25 + 0.75 / 8.
    let zeros = (0..20_000)
        .filter(|_| hints::draw_count(&HintSimConfig::default(), &mut rng) == 0)
        .count() as f64
        / 20_000.0;
    assert!((zeros - 0.34375).abs() < 0.015, "P(0) {zeros}");

    // A truth whose a is the column index and b the row index: a revealed patch holds its mean.
    let (w, h) = (32, 24);
    let n = w * h;
    let ab: Vec<f32> = (0..n)
        .map(|p| (p % w) as f32)
        .chain((0..n).map(|p| (p / w) as f32))
        .collect();
    let planes = hints::reveal(&ab, (h, w), 1, 9, &mut rng);
    let revealed: Vec<usize> = (0..n).filter(|&p| planes[2 * n + p] == 1.0).collect();
    let side = (revealed.len() as f64).sqrt() as usize;
    assert_eq!(side * side, revealed.len(), "a square patch");
    assert!((1..=9).contains(&side));
    let mean_a = revealed.iter().map(|&p| (p % w) as f32).sum::<f32>() / revealed.len() as f32;
    let mean_b = revealed.iter().map(|&p| (p / w) as f32).sum::<f32>() / revealed.len() as f32;
    for &p in &revealed {
        assert!((planes[p] * 110.0 - mean_a).abs() < 1e-3);
        assert!((planes[n + p] * 110.0 - mean_b).abs() < 1e-3);
    }
}

#[test]
fn a_zero_initialised_hint_model_is_exactly_the_automatic_model() {
    let device = Device::flex();
    device.seed(3);
    let config = common::tiny_mleu([8, 8, 8, 8, 8], Head::Joint);
    let automatic = config.init(&device);
    let l = Tensor::<4>::random([2, 1, 64, 64], Distribution::Uniform(0.0, 100.0), &device);
    let hints = Tensor::<4>::random([2, 3, 64, 64], Distribution::Uniform(-1.0, 1.0), &device);
    let before = automatic.forward_heads(l.clone());
    let hinted = automatic.clone().with_hint_inputs(&device);
    assert!(hinted.takes_hints());
    for given in [None, Some(hints.clone())] {
        let after = hinted.forward_hinted(l.clone(), given);
        let same = |a: Tensor<4>, b: Tensor<4>| a.equal(b).all().into_scalar::<bool>();
        assert!(
            same(before.ab.clone().unwrap(), after.ab.unwrap()),
            "regression output unchanged"
        );
        assert!(
            same(before.logits.clone().unwrap(), after.logits.unwrap()),
            "class output unchanged"
        );
    }
    // Once its hint weights move, hints change the output (and no hints still give the automatic one).
    let mut moved = hinted.clone();
    let conv = moved.hint_skip.take().unwrap();
    moved.hint_skip = Some(burn::nn::conv::Conv2d {
        weight: conv.weight.map(|w| w.ones_like()),
        ..conv
    });
    let with = moved.forward_hinted(l.clone(), Some(hints)).ab.unwrap();
    let without = moved.forward_hinted(l, None).ab.unwrap();
    assert!(
        !with
            .clone()
            .equal(before.ab.clone().unwrap())
            .all()
            .into_scalar::<bool>()
    );
    assert!(without.equal(before.ab.unwrap()).all().into_scalar::<bool>());
    // The config says whether a model takes hints; configs without the field take none.
    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(json["hints"], false);
    let mut old = json.clone();
    old.as_object_mut().unwrap().remove("hints");
    let old: MleuConfig = serde_json::from_value(old).unwrap();
    assert!(!old.hints);
    assert!(MleuConfig { hints: true, ..config }.init(&device).takes_hints());
}

#[test]
fn coarse_levels_see_the_mean_revealed_colour_of_each_cell() {
    let device = Device::flex();
    // 8×8 planes, one 2×2 patch revealed (a = 0.5, b = −0.25) in the top-left 4×4 cell.
    let (h, w) = (8, 8);
    let mut planes = vec![0f32; 3 * h * w];
    for (y, x) in [(1, 1), (1, 2), (2, 1), (2, 2)] {
        planes[y * w + x] = 0.5;
        planes[h * w + y * w + x] = -0.25;
        planes[2 * h * w + y * w + x] = 1.0;
    }
    let t = Tensor::<4>::from_data(burn::tensor::TensorData::new(planes, [1, 3, h, w]), &device);
    let pooled: Vec<f32> = rechroma::model::hinted::pooled_hints(t, 4)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    // [3, 2, 2]: the cell with the patch keeps its colour at full strength; the others are empty.
    assert_eq!(pooled.len(), 12);
    assert!(
        (pooled[0] - 0.5).abs() < 1e-5 && (pooled[4] + 0.25).abs() < 1e-5 && pooled[8] == 1.0,
        "{pooled:?}"
    );
    for i in [1, 2, 3] {
        assert!(
            pooled[i].abs() < 1e-6 && pooled[4 + i].abs() < 1e-6 && pooled[8 + i] == 0.0,
            "{pooled:?}"
        );
    }
}

fn lighthouse() -> image::DynamicImage {
    image::open(common::fixtures().join("hints/lighthouse_gray_128x192.png")).unwrap()
}

#[test]
fn the_suggested_colours_at_a_sky_pixel_start_with_blue() {
    let device = Device::flex();
    let colorizer = rechroma::Colorizer::embedded(&device).unwrap();
    let photo = lighthouse();
    let options = rechroma::ColorizeOptions::default();
    let s = colorizer.suggest(&photo, &options, &[], (10.5, 30.5), 6).unwrap();
    assert_eq!(s.len(), 6);
    // Blue: b* well below zero, and the bluest hue of the list. The truth there is sRGB (33, 82, 161).
    let [a, b] = s[0].ab;
    assert!(b < -15.0 && a.abs() < -b, "first suggestion {:?}", s[0]);
    // Distinct colours (merged bins are at least the merge distance apart), probabilities descending.
    for (i, x) in s.iter().enumerate() {
        for y in &s[i + 1..] {
            let d = ((x.ab[0] - y.ab[0]).powi(2) + (x.ab[1] - y.ab[1]).powi(2)).sqrt();
            assert!(d > 5.0, "{x:?} and {y:?} are one colour");
        }
    }
    assert!(s.windows(2).all(|w| w[0].probability >= w[1].probability));
    // Outside the photo: refused, naming the size.
    let e = colorizer.suggest(&photo, &options, &[], (128.0, 10.0), 6).unwrap_err();
    assert!(e.to_string().contains("outside the 128×192 photo"), "{e}");
}

#[test]
fn a_hints_only_fine_tune_trains_the_hint_weights_alone() {
    let device = Device::flex().autodiff();
    let config = MleuConfig {
        hints: true,
        ..common::tiny_mleu([8, 8, 8, 8, 8], Head::Joint)
    };
    let model = config.init(&device).freeze_all_but_hints();
    assert!(model.hint_in.as_ref().unwrap().weight.is_require_grad());
    assert!(model.hint_down.iter().all(|c| c.weight.is_require_grad()));
    assert!(model.hint_skip.as_ref().unwrap().weight.is_require_grad());
    assert!(!model.encoder[0].conv1.conv.weight.is_require_grad());
    assert!(!model.decoder[4].fuse_conv.conv.weight.is_require_grad());
    assert!(!model.out.weight.is_require_grad());
    // The loss reaches the hint weights (and nothing else).
    let l = Tensor::<4>::random([2, 1, 64, 64], Distribution::Uniform(0.0, 100.0), &device);
    let hints = Tensor::<4>::random([2, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
    let loss = model.forward_hinted(l, Some(hints)).ab.unwrap().powi_scalar(2).mean();
    let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &model);
    assert!(grads.get::<4>(model.hint_skip.as_ref().unwrap().weight.id).is_some());
    assert!(grads.get::<4>(model.encoder[0].conv1.conv.weight.id).is_none());
}

/// Mean Lab (a, b) of a `2r+1` square around (`x`, `y`) of an image.
fn mean_ab(img: &image::RgbImage, (x, y): (u32, u32), r: u32) -> [f32; 2] {
    let crop = image::imageops::crop_imm(img, x - r, y - r, 2 * r + 1, 2 * r + 1).to_image();
    let lab = rechroma::color::LabImage::from_rgb8(&crop);
    let n = lab.pixels();
    let (a, b) = lab.ab().split_at(n);
    [a.iter().sum::<f32>() / n as f32, b.iter().sum::<f32>() / n as f32]
}

#[test]
fn a_red_hint_turns_a_whitish_region_red_and_leaves_the_sky_blue() {
    let device = Device::flex();
    let colorizer = rechroma::Colorizer::embedded(&device).unwrap();
    assert!(colorizer.takes_hints(), "the shipped model takes colour hints");
    let photo = lighthouse();
    let options = rechroma::ColorizeOptions::default();
    let plain = colorizer.colorize(&photo, &options).unwrap().image.to_rgb8();
    // The white lantern room, hinted dark red.
    let hint = Hint {
        x: 64.5,
        y: 80.5,
        color: "#a02020".into(),
        radius: Some(4.0),
    };
    let red = colorizer
        .colorize_with_hints(&photo, &options, std::slice::from_ref(&hint))
        .unwrap()
        .image
        .to_rgb8();
    let (before, after) = (mean_ab(&plain, (64, 80), 3), mean_ab(&red, (64, 80), 3));
    eprintln!(
        "a* around the hint: {:.1} → {:.1} (b* {:.1} → {:.1})",
        before[0], after[0], before[1], after[1]
    );
    assert!(
        after[0] > before[0] + 8.0,
        "the region turned red: a* {before:?} → {after:?}"
    );
    // Far from it, the sky keeps its colour.
    let (sky, sky_after) = (mean_ab(&plain, (10, 30), 3), mean_ab(&red, (10, 30), 3));
    assert!(
        (sky[0] - sky_after[0]).abs() < 3.0 && (sky[1] - sky_after[1]).abs() < 3.0,
        "the sky moved: {sky:?} → {sky_after:?}"
    );
}

#[test]
fn spreading_carries_a_hint_over_its_region_and_stops_at_edges() {
    use rechroma::hints::SpreadConfig;
    let device = Device::flex();
    let colorizer = rechroma::Colorizer::embedded(&device).unwrap();
    let photo = lighthouse();
    let hint = Hint {
        x: 64.5,
        y: 80.5,
        color: "#a02020".into(),
        radius: Some(2.0),
    };
    let with = |spread: SpreadConfig| {
        let options = rechroma::ColorizeOptions {
            spread,
            ..Default::default()
        };
        colorizer
            .colorize_with_hints(&photo, &options, std::slice::from_ref(&hint))
            .unwrap()
            .image
            .to_rgb8()
    };
    let (network, spread) = (with(SpreadConfig::OFF), with(SpreadConfig::default()));
    // The lantern room's white band, 20 px beside the hint: red with spreading, far less without.
    let (alone, carried) = (mean_ab(&network, (40, 80), 3), mean_ab(&spread, (40, 80), 3));
    eprintln!(
        "a* 24 px from the hint: network alone {:.1}, spread {:.1}",
        alone[0], carried[0]
    );
    assert!(
        carried[0] > alone[0] + 8.0,
        "spreading carried the hint: {alone:?} → {carried:?}"
    );
    // The sky far above keeps its colour.
    let (sky, sky_spread) = (mean_ab(&network, (10, 20), 3), mean_ab(&spread, (10, 20), 3));
    assert!(
        (sky[0] - sky_spread[0]).abs() < 2.0 && (sky[1] - sky_spread[1]).abs() < 2.0,
        "the sky moved: {sky:?} → {sky_spread:?}"
    );
}

/// Adding the hint inputs reads the U-Net's widths without drawing its random initial weights: a
/// model being loaded has them replaced by its file's, and drawing them took a fifth of loading the
/// shipped model.
#[test]
fn adding_hint_inputs_leaves_the_weights_uninitialised() {
    let device = Device::flex();
    let model = common::tiny_mleu([8, 8, 8, 8, 8], Head::Joint)
        .init(&device)
        .with_hint_inputs(&device);
    assert!(model.takes_hints());
    assert!(!model.encoder[0].conv1.conv.weight.is_initialized());
    assert!(!model.decoder[4].fuse_conv.conv.weight.is_initialized());
}
