//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn golden(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("golden file")).expect("golden JSON")
}

pub fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

pub fn f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// A 5-level EfficientNet-Lite of width 4–8 (random weights): the test backbone.
pub fn tiny_backbone() -> rechroma::model::efficientnet::EfficientNetConfig {
    rechroma::model::efficientnet::EfficientNetConfig {
        stem: 4,
        stages: vec![
            (3, 1, 1, 4, 1),
            (3, 2, 2, 4, 1),
            (5, 2, 2, 8, 1),
            (3, 2, 2, 8, 2),
            (3, 2, 2, 8, 1),
        ],
        head: 8,
        classes: 10,
    }
}

/// A tiny MLEU (encoder widths `widths`) on the tiny backbone, frozen.
pub fn tiny_mleu(widths: [usize; 5], head: rechroma::model::mleu::Head) -> rechroma::model::mleu::MleuConfig {
    rechroma::model::mleu::MleuConfig {
        widths,
        head,
        backbone: Some(rechroma::model::backbone::BackboneConfig::EfficientNet(tiny_backbone())),
        finetune_backbone: false,
        class_stride: 1,
    }
}
