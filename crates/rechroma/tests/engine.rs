//! The inference engine (`rechroma::engine`) against the burn networks it compiles: every architecture
//! `rechroma train` makes (MLEU regression, classification at class stride 1 and 4, joint, hint-taking;
//! EfficientNet-Lite, VGG16 or no backbone), with every weight and BatchNorm statistic moved off its
//! initial value so that folding, padding, upsampling and concatenation orders all show.

mod common;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use common::tiny_mleu;
use rechroma::engine::Net;
use rechroma::model::backbone::BackboneConfig;
use rechroma::model::mleu::{Head, Mleu, MleuConfig};
use rechroma::model::vgg::Vgg16Config;

/// Adds uniform noise in ±0.2 to every float tensor (weights, biases, BatchNorm scales, shifts and
/// running statistics; a running variance of 1 stays positive), so no parameter keeps the value that
/// would hide a mistake (zero hint weights, identity BatchNorms).
struct Jitter;

impl ModuleMapper for Jitter {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| {
            let noise = Tensor::random(t.dims(), Distribution::Uniform(-0.2, 0.2), &t.device());
            t + noise
        })
    }
}

/// An L plane with structure (a gradient, a disc, texture), `h × w`, Lab units.
fn l_plane(w: usize, h: usize) -> Vec<f32> {
    (0..h * w)
        .map(|p| {
            let (y, x) = ((p / w) as f32, (p % w) as f32);
            let disc = if (y - 20.0).powi(2) + (x - 30.0).powi(2) < 150.0 {
                30.0
            } else {
                0.0
            };
            (10.0 + 0.5 * x + disc + 7.0 * ((x * 0.7).sin() * (y * 0.3).cos())).clamp(0.0, 100.0)
        })
        .collect()
}

/// Hint planes `[3, h, w]` with three revealed pixels.
fn hint_planes(w: usize, h: usize) -> Vec<f32> {
    let mut planes = vec![0.0; 3 * w * h];
    for (p, a, b) in [
        (5 * w + 7, 0.4, -0.2),
        (30 * w + 50, -0.3, 0.5),
        ((h - 1) * w + w - 1, 0.1, 0.1),
    ] {
        planes[p] = a;
        planes[w * h + p] = b;
        planes[2 * w * h + p] = 1.0;
    }
    planes
}

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

fn worst(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "output sizes");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The engine's outputs equal the burn network's (as stored, BatchNorms not folded) on an `h × w` plane.
fn assert_engine_matches(name: &str, m: &Mleu, (w, h): (usize, usize), hints: Option<&[f32]>, device: &Device) {
    let l = l_plane(w, h);
    let x = Tensor::<4>::from_data(TensorData::new(l.clone(), [1, 1, h, w]), device);
    let ht = hints.map(|p| Tensor::<4>::from_data(TensorData::new(p.to_vec(), [1, 3, h, w]), device));
    let want = m.forward_hinted(x, ht);
    let got = Net::new(m).forward(&l, (w, h), hints).unwrap();
    assert_eq!(want.ab.is_some(), got.ab.is_some(), "{name}: heads");
    assert_eq!(want.logits.is_some(), got.logits.is_some(), "{name}: heads");
    if let (Some(want), Some(got)) = (want.ab, got.ab) {
        let d = worst(&values(want), &got);
        assert!(d < 1e-4, "{name}: ab (tanh units) differs by {d}");
    }
    if let (Some(want), Some(got)) = (want.logits, got.logits) {
        let want = values(want);
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        let d = worst(&want, &got);
        assert!(d < 1e-4 * scale, "{name}: logits differ by {d} (largest {scale})");
    }
}

#[test]
fn the_engine_computes_what_the_burn_network_computes() {
    let device = Device::flex();
    let widths = [8, 8, 16, 16, 24];
    let no_backbone = MleuConfig {
        backbone: None,
        ..tiny_mleu(widths, Head::Regression)
    };
    let vgg = MleuConfig {
        backbone: Some(BackboneConfig::Vgg16 {
            vgg16: Vgg16Config {
                widths: [4, 8, 8, 8, 8],
                convs: [1, 2, 1, 1, 1],
            },
        }),
        ..tiny_mleu(widths, Head::Regression)
    };
    let hinted = |stride| MleuConfig {
        hints: true,
        class_stride: stride,
        ..tiny_mleu(widths, Head::Joint)
    };
    let cases = [
        ("U-Net without backbone, regression", no_backbone),
        ("VGG16 backbone, regression", vgg),
        ("regression", tiny_mleu(widths, Head::Regression)),
        ("classification", tiny_mleu(widths, Head::Classification)),
        (
            "classification at class stride 4",
            MleuConfig {
                class_stride: 4,
                ..tiny_mleu(widths, Head::Classification)
            },
        ),
        ("joint", tiny_mleu(widths, Head::Joint)),
        (
            "joint at class stride 4",
            MleuConfig {
                class_stride: 4,
                ..tiny_mleu(widths, Head::Joint)
            },
        ),
        ("hints, joint at class stride 4", hinted(4)),
        ("hints, joint", hinted(1)),
    ];
    // Not square, so a swapped height and width shows.
    let (w, h) = (96, 64);
    for (name, cfg) in cases {
        let m = cfg.init(&device).map(&mut Jitter);
        assert_engine_matches(name, &m, (w, h), None, &device);
        if cfg.hints {
            let planes = hint_planes(w, h);
            assert_engine_matches(&format!("{name}, three hints"), &m, (w, h), Some(&planes), &device);
        }
    }
}

#[test]
fn the_engine_runs_the_embedded_model_as_burn_does() {
    // The shipped network with its trained statistics, at a working size of 256² (what colorize
    // runs), with two hints: within 1e-3 of burn's ab / 110 (the bound), logits within 1e-3
    // of their scale.
    let device = Device::flex();
    let rechroma::model::Network::Mleu(m) = rechroma::run::embedded_model(&device).unwrap().network else {
        panic!("an MLEU")
    };
    assert_engine_matches(
        "the embedded model",
        &m,
        (256, 256),
        Some(&hint_planes(256, 256)),
        &device,
    );
    assert_engine_matches("the embedded model, no hints", &m, (256, 192), None, &device);
}

#[test]
fn the_engine_refuses_sizes_the_network_cannot_take() {
    let device = Device::flex();
    let net = Net::new(&tiny_mleu([4, 4, 4, 4, 4], Head::Regression).init(&device));
    let err = net.forward(&vec![50.0; 40 * 64], (40, 64), None).unwrap_err();
    assert!(err.to_string().contains("multiples of 32"), "{err}");
}

#[test]
fn a_network_kept_on_its_device_gives_what_the_engine_gives() {
    // The burn path colorizing takes on a GPU (run here on the CPU device) and the engine agree, hints
    // included; both check the size.
    use rechroma::engine::{Forward, OnDevice};
    let device = Device::flex();
    let m = MleuConfig {
        hints: true,
        class_stride: 4,
        ..tiny_mleu([8, 8, 16, 16, 24], Head::Joint)
    }
    .init(&device)
    .map(&mut Jitter);
    let (w, h) = (64, 96);
    let (l, planes) = (l_plane(w, h), hint_planes(w, h));
    let engine = rechroma::engine::for_device(m.clone(), &device);
    let kept = OnDevice {
        model: m.fold_batchnorms(),
        device: device.clone(),
    };
    assert_eq!(
        (kept.head(), kept.class_stride(), kept.takes_hints()),
        (Head::Joint, 4, true)
    );
    let (a, b) = (
        engine.forward(&l, (w, h), Some(&planes)).unwrap(),
        kept.forward(&l, (w, h), Some(&planes)).unwrap(),
    );
    assert!(worst(&a.ab.unwrap(), &b.ab.unwrap()) < 1e-4);
    assert!(worst(&a.logits.unwrap(), &b.logits.unwrap()) < 1e-3);
    assert!(kept.forward(&l[..w * 40], (w, 40), None).is_err());
}
