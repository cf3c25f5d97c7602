//! Pretrained weights: the real EfficientNet-Lite0 (when `scripts/fetch-photos.sh` has been run) and the
//! error reporting of the loader.
mod common;

use burn::tensor::{Device, Tensor, TensorData};
use rechroma::import::{ImportError, load_efficientnet};
use rechroma::model::efficientnet::EfficientNetConfig;
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// ImageNet top-1 class and its probability for a photo, EfficientNet-style preprocessing:
/// shorter side to 224 (Lanczos-3), centre crop, (x − 127) / 128.
fn classify(
    net: &rechroma::model::efficientnet::EfficientNet,
    photo: &std::path::Path,
    device: &Device,
) -> (usize, f32) {
    let img = rechroma::data::center_crop(&rechroma::data::load_rgb(photo).unwrap(), 224);
    let mut chw = vec![0f32; 3 * 224 * 224];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            chw[c * 224 * 224 + i] = (f32::from(px.0[c]) - 127.0) / 128.0;
        }
    }
    let x = Tensor::<4>::from_data(TensorData::new(chw, [1, 3, 224, 224]), device);
    let p: Vec<f32> = burn::tensor::activation::softmax(net.classify(x), 1)
        .into_data()
        .try_to_vec()
        .unwrap();
    let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
    (best, p[best])
}

#[test]
#[ignore = "needs data/weights and data/test from scripts/fetch-photos.sh; run with --ignored"]
fn efficientnet_lite0_knows_the_cat_and_the_espresso() {
    let device = Device::flex();
    let weights = repo().join("data/weights/efficientnet-lite0.safetensors");
    let net = load_efficientnet(&EfficientNetConfig::lite0(), &weights, &device).unwrap();
    let (cat, p_cat) = classify(&net, &repo().join("data/test/skimage/chelsea.png"), &device);
    let (cup, p_cup) = classify(&net, &repo().join("data/test/skimage/coffee.png"), &device);
    println!("chelsea → {cat} (p = {p_cat:.3}), coffee → {cup} (p = {p_cup:.3})");
    assert_eq!(cat, 285, "Egyptian cat");
    assert_eq!(cup, 967, "espresso");
}

#[test]
fn a_missing_weight_file_is_named() {
    let err = load_efficientnet(
        &EfficientNetConfig::lite0(),
        std::path::Path::new("/no/weights.safetensors"),
        &Device::flex(),
    )
    .unwrap_err();
    assert!(matches!(err, ImportError::Read { .. }));
    assert!(err.to_string().contains("/no/weights.safetensors"));
}

#[test]
fn vgg16_in_torchvision_layout_loads_from_pth_and_safetensors_and_matches_the_reference() {
    use rechroma::import::load_vgg16;
    use rechroma::model::vgg::Vgg16Config;
    let device = Device::flex();
    let g = common::golden("vgg.json");
    let input = common::f32s(&g["input"]);
    let cfg = Vgg16Config {
        widths: [4, 4, 8, 8, 8],
        convs: [2, 2, 3, 3, 3],
    };
    for file in ["tiny_vgg16.pth", "tiny_vgg16.safetensors"] {
        let net =
            load_vgg16(&cfg, &common::fixtures().join("vgg").join(file), &device).unwrap_or_else(|e| panic!("{e}"));
        let x = Tensor::<4>::from_data(TensorData::new(input.clone(), [1, 3, 32, 32]), &device);
        let feats = net.features(x);
        assert_eq!(feats.len(), 5);
        for (i, f) in feats.into_iter().enumerate() {
            let shape: Vec<usize> = g["shapes"][i]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(&f.dims()[1..], &shape[..], "{file}: level {i} shape");
            let got: Vec<f32> = f.into_data().try_to_vec().unwrap();
            let want = common::f32s(&g["features"][i]);
            let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-4, "{file}: level {i} differs from the numpy VGG by {worst}");
        }
    }
}

#[test]
fn a_misshapen_vgg_file_names_the_tensor_and_the_shapes() {
    use rechroma::import::load_vgg16;
    use rechroma::model::vgg::Vgg16Config;
    // The tiny file's first conv has 4 filters; a config expecting 64 must be refused, naming the tensor.
    let err = load_vgg16(
        &Vgg16Config::vgg16(),
        &common::fixtures().join("vgg/tiny_vgg16.safetensors"),
        &Device::flex(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ImportError::Shape { .. }), "{msg}");
    assert!(
        msg.contains("features.0.weight") && msg.contains("64") && msg.contains("tiny_vgg16"),
        "{msg}"
    );
}
