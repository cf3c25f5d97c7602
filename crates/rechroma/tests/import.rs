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
#[ignore = "needs data/weights and data/val from scripts/fetch-photos.sh; run with --ignored"]
fn efficientnet_lite0_knows_the_cat_and_the_espresso() {
    let device = Device::flex();
    let weights = repo().join("data/weights/efficientnet-lite0.safetensors");
    let net = load_efficientnet(&EfficientNetConfig::lite0(), &weights, &device).unwrap();
    let (cat, p_cat) = classify(&net, &repo().join("data/val/skimage/chelsea.png"), &device);
    let (cup, p_cup) = classify(&net, &repo().join("data/val/skimage/coffee.png"), &device);
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
