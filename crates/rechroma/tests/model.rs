//! MLEU shapes and behaviour on tiny configurations, and the losses against hand-computed values.
mod common;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use rechroma::model::backbone::BackboneConfig;
use rechroma::model::efficientnet::EfficientNetConfig;
use rechroma::model::mleu::{Head, MleuConfig, check_size};
use rechroma::quantize::{NEUTRAL_BIN, Q, Quantizer, bin_centres};
use rechroma::train::loss::{ClassTargets, classification_loss, regression_loss};

fn tiny(head: Head) -> MleuConfig {
    common::tiny_mleu([4, 8, 8, 8, 8], head)
}

fn l_input(b: usize, h: usize, w: usize, device: &Device) -> Tensor<4> {
    Tensor::random([b, 1, h, w], Distribution::Uniform(0.0, 100.0), device)
}

#[test]
fn backbone_features_have_the_documented_strides_and_channels() {
    let device = Device::flex();
    let cfg = common::tiny_backbone();
    assert_eq!(cfg.feature_channels(), vec![4, 4, 8, 8, 8]);
    assert_eq!(
        EfficientNetConfig::lite0().feature_channels(),
        vec![16, 24, 40, 112, 320]
    );
    let feats = cfg.init(&device).features(Tensor::zeros([2, 3, 64, 96], &device));
    let dims: Vec<[usize; 4]> = feats.iter().map(|f| f.dims()).collect();
    assert_eq!(
        dims,
        vec![
            [2, 4, 32, 48],
            [2, 4, 16, 24],
            [2, 8, 8, 12],
            [2, 8, 4, 6],
            [2, 8, 2, 3]
        ]
    );
}

#[test]
fn mleu_heads_have_the_right_shapes_and_ranges_at_any_multiple_of_32() {
    let device = Device::flex();
    for (h, w) in [(32, 32), (64, 96)] {
        let reg = tiny(Head::Regression).init(&device).forward(l_input(2, h, w, &device));
        assert_eq!(reg.dims(), [2, 2, h, w]);
        let v: Vec<f32> = reg.into_data().try_to_vec().unwrap();
        assert!(v.iter().all(|x| (-1.0..=1.0).contains(x)), "tanh range");
        let cls = tiny(Head::Classification)
            .init(&device)
            .forward(l_input(1, h, w, &device));
        assert_eq!(cls.dims(), [1, Q, h, w]);
    }
    // Without a backbone it is a plain U-Net of the same shape.
    let plain = MleuConfig {
        backbone: None,
        ..tiny(Head::Regression)
    }
    .init(&device);
    assert_eq!(plain.forward(l_input(1, 32, 64, &device)).dims(), [1, 2, 32, 64]);
    assert!(check_size(48, 64).is_err() && check_size(256, 224).is_ok());
    assert!(check_size(48, 64).unwrap_err().to_string().contains("48×64"));
}

#[test]
fn the_backbone_is_frozen_by_default_and_trainable_on_request() {
    let device = Device::flex().autodiff();
    let frozen = tiny(Head::Regression).init(&device);
    let trainable = MleuConfig {
        finetune_backbone: true,
        ..tiny(Head::Regression)
    }
    .init(&device);
    let count = |m: &rechroma::model::mleu::Mleu| m.backbone.as_ref().unwrap().num_params();
    assert!(count(&frozen) > 0);
    // A frozen module reports its parameters as not requiring gradients.
    let requires =
        |m: &rechroma::model::mleu::Mleu| m.backbone.as_ref().unwrap().conv_stem.conv.weight.is_require_grad();
    assert!(!requires(&frozen));
    assert!(requires(&trainable));
    assert_eq!(count(&frozen), count(&trainable));
}

#[test]
fn regression_loss_is_the_mse_on_ab_over_110() {
    let device = Device::flex();
    // 1 image, 2×2: pred values and true ab, hand-computed MSE over 8 values.
    let pred = [0.1f32, -0.2, 0.0, 0.5, /* b */ 0.3, 0.3, -1.0, 0.0];
    let ab = [11.0f32, -22.0, 0.0, 55.0, /* b */ 0.0, 33.0, -110.0, 220.0];
    // Differences: 0, 0, 0, 0 | 0.3, 0, 0, −1 (220 clamps to 1): (0.09 + 1) / 8.
    let loss = regression_loss(
        Tensor::from_data(TensorData::new(pred.to_vec(), [1, 2, 2, 2]), &device),
        Tensor::from_data(TensorData::new(ab.to_vec(), [1, 2, 2, 2]), &device),
    );
    let v: f32 = loss.into_scalar();
    assert!((v - 1.09 / 8.0).abs() < 1e-6, "{v}");
}

#[test]
fn classification_loss_matches_a_hand_computation_on_a_2x2_image() {
    let device = Device::flex();
    let quantizer = Quantizer::default();
    // Pixels on the centres of bins 120 (0, 0), 121 (0, 10), 140 (10, 0) and 200.
    let bins = [NEUTRAL_BIN, 121, 140, 200];
    let mut ab = vec![0f32; 8];
    for (p, &q) in bins.iter().enumerate() {
        ab[p] = bin_centres()[q][0];
        ab[4 + p] = bin_centres()[q][1];
    }
    let weights: Vec<f32> = (0..Q).map(|q| 0.5 + q as f32 / 100.0).collect();
    let targets = ClassTargets::new(&ab, [1, 2, 2], &quantizer, &weights, &device);
    // Logits: t on each pixel's own bin, 0 elsewhere.
    let t = 3.0f32;
    let mut logits = vec![0f32; Q * 4];
    for (p, &q) in bins.iter().enumerate() {
        logits[q * 4 + p] = t;
    }
    let loss: f32 = classification_loss(
        Tensor::from_data(TensorData::new(logits, [1, Q, 2, 2]), &device),
        &targets,
    )
    .into_scalar();
    // By hand: log p(own) = t − ln(e^t + 312), log p(other) = −ln(e^t + 312); the soft target puts z₀ on
    // the own bin (a centre: z₀ = 1 / (1 + Σ e^(−d²/50)) over the 4 other nearest bins), so
    // CE = ln(e^t + 312) − z₀·t, and the loss is the mean of w(own bin) · CE.
    let lse = ((t as f64).exp() + 312.0).ln();
    let mut want = 0.0;
    for &q in &bins {
        let code = quantizer.soft_encode(bin_centres()[q][0], bin_centres()[q][1]);
        assert_eq!(code.bins[0] as usize, q);
        let z0 = code.weights[0] as f64;
        want += weights[q] as f64 * (lse - z0 * t as f64) / 4.0;
    }
    // Cross-check z₀ for the neutral bin: its 4 neighbours are all 10 away.
    let z_neutral = quantizer.soft_encode(0.0, 0.0).weights[0] as f64;
    assert!((z_neutral - 1.0 / (1.0 + 4.0 * (-2.0f64).exp())).abs() < 1e-6);
    assert!((loss as f64 - want).abs() < 1e-4, "{loss} vs {want}");
    // Uniform logits: CE = ln 313 for every pixel whatever the target.
    let uniform: f32 = classification_loss(Tensor::zeros([1, Q, 2, 2], &device), &targets).into_scalar();
    let mean_w: f64 = bins.iter().map(|&q| weights[q] as f64).sum::<f64>() / 4.0;
    assert!((uniform as f64 - mean_w * (313f64).ln()).abs() < 1e-4);
}

#[test]
fn mleu_embeds_a_vgg16_backbone_too() {
    use rechroma::model::vgg::Vgg16Config;
    let device = Device::flex();
    let vgg = BackboneConfig::Vgg16 {
        vgg16: Vgg16Config {
            widths: [4, 4, 8, 8, 8],
            convs: [2, 2, 3, 3, 3],
        },
    };
    assert_eq!(vgg.feature_channels(), vec![4, 4, 8, 8, 8]);
    let model = MleuConfig {
        backbone: Some(vgg.clone()),
        ..tiny(Head::Classification)
    }
    .init(&device);
    assert_eq!(model.forward(l_input(1, 64, 32, &device)).dims(), [1, Q, 64, 32]);
    // The config's JSON names the backbone; the EfficientNet form stays the bare config.
    let json = serde_json::to_string(&vgg).unwrap();
    assert!(json.starts_with(r#"{"vgg16":"#), "{json}");
    let back: BackboneConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, vgg);
    let eff = BackboneConfig::EfficientNet(common::tiny_backbone());
    assert_eq!(
        serde_json::from_str::<BackboneConfig>(&serde_json::to_string(&eff).unwrap()).unwrap(),
        eff
    );
}

#[test]
fn quarter_resolution_and_joint_heads_have_the_documented_shapes() {
    let device = Device::flex();
    let cls4 = MleuConfig {
        class_stride: 4,
        ..tiny(Head::Classification)
    }
    .init(&device);
    assert_eq!(
        cls4.decoder.len(),
        3,
        "a stride-4 classifier stops its decoder at stride 4"
    );
    assert_eq!(cls4.forward(l_input(2, 64, 96, &device)).dims(), [2, Q, 16, 24]);
    for stride in [1, 4] {
        let joint = MleuConfig {
            class_stride: stride,
            ..tiny(Head::Joint)
        }
        .init(&device);
        let out = joint.forward_heads(l_input(1, 64, 32, &device));
        assert_eq!(out.ab.unwrap().dims(), [1, 2, 64, 32]);
        assert_eq!(out.logits.unwrap().dims(), [1, Q, 64 / stride, 32 / stride]);
    }
    // Configs written before the option existed read as the paper's full resolution.
    let mut json = serde_json::to_value(tiny(Head::Classification)).unwrap();
    json.as_object_mut().unwrap().remove("class_stride");
    assert_eq!(serde_json::from_value::<MleuConfig>(json).unwrap().class_stride, 1);
}

#[test]
fn folding_the_batchnorms_keeps_the_outputs() {
    // The embedded model (joint head, hints, EfficientNet backbone) with trained statistics, on a photo's
    // L with two hints: the folded network's outputs equal the stored one's within float rounding.
    use burn::tensor::{Tensor, TensorData};
    let device = Device::flex();
    let rechroma::model::Network::Mleu(m) = rechroma::run::embedded_model(&device).unwrap().network else {
        panic!("an MLEU")
    };
    let side = 64;
    let l: Vec<f32> = (0..side * side).map(|i| ((i * 37) % 100) as f32).collect();
    let mut planes = vec![0f32; 3 * side * side];
    for p in [10 * side + 10, 40 * side + 30] {
        planes[p] = 0.4;
        planes[side * side + p] = -0.2;
        planes[2 * side * side + p] = 1.0;
    }
    let run = |m: &rechroma::model::mleu::Mleu| {
        let x = Tensor::<4>::from_data(TensorData::new(l.clone(), [1, 1, side, side]), &device);
        let h = Tensor::<4>::from_data(TensorData::new(planes.clone(), [1, 3, side, side]), &device);
        let out = m.forward_hinted(x, Some(h));
        let v = |t: Tensor<4>| t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        (v(out.ab.unwrap()), v(out.logits.unwrap()))
    };
    let (ab, logits) = run(&m);
    let folded = m.fold_batchnorms();
    let (fab, flogits) = run(&folded);
    let worst = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(worst(&ab, &fab) < 1e-4, "ab (tanh units) moved by {}", worst(&ab, &fab));
    assert!(
        worst(&logits, &flogits) < 1e-3,
        "logits moved by {}",
        worst(&logits, &flogits)
    );
}
