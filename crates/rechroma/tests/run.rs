//! The run folder's configuration: format versions, validation naming the field at fault, errors that
//! keep their cause.

mod common;

use rechroma::infer::embedded;
use rechroma::model::ModelConfig;
use rechroma::run::{FORMAT_VERSION, RunConfig, RunError, TrainConfig};
use std::error::Error;
use std::path::Path;

fn legacy() -> (Vec<u8>, std::path::PathBuf) {
    let path = common::fixtures().join("runs/legacy-config.json");
    (std::fs::read(&path).unwrap(), path)
}

#[test]
fn a_flat_config_of_earlier_builds_reads_as_the_current_format_and_round_trips() {
    // The fixtures are one run's config.json (the model shipped until runs/joint5) as the previous format
    // wrote it and as the current format exported it.
    let (bytes, path) = legacy();
    let old = RunConfig::from_json(&bytes, &path).unwrap();
    let current = common::fixtures().join("runs/current-config.json");
    let new = RunConfig::from_json(&std::fs::read(&current).unwrap(), &current).unwrap();
    assert_eq!(old, new);
    assert_eq!(new.format_version, FORMAT_VERSION);
    assert_eq!(new.train.lr, 1e-3, "a field of the training settings");
    assert_eq!(new.decode.gamut, rechroma::Gamut::Fit, "a field of the decode settings");
    let again = RunConfig::from_json(&new.to_json(), Path::new("again")).unwrap();
    assert_eq!(again, new);
    // The embedded model's config is in the current format and round-trips too.
    let shipped = RunConfig::from_json(embedded::CONFIG, Path::new("embedded")).unwrap();
    assert_eq!(shipped.format_version, FORMAT_VERSION);
    assert_eq!(
        RunConfig::from_json(&shipped.to_json(), Path::new("again")).unwrap(),
        shipped
    );
}

#[test]
fn missing_fields_take_the_papers_defaults() {
    let json = br#"{"format_version": 1, "model": {"mleu": {"widths": [8, 8, 8, 8, 8], "head": "regression",
        "backbone": null, "finetune_backbone": false, "class_stride": 1}}}"#;
    let config = RunConfig::from_json(json, Path::new("minimal.json")).unwrap();
    assert_eq!(config.train, TrainConfig::mleu());
    assert_eq!(config.train.lr, 4e-3, "the MLEU paper's learning rate");
    assert_eq!(TrainConfig::chromagan().lr, 2e-5, "ChromaGAN's");
    assert_eq!(TrainConfig::chromagan().betas, [0.5, 0.999]);
    assert_eq!(TrainConfig::chromagan().gan.kl, 0.003);
    assert!(matches!(config.model, ModelConfig::Mleu(_)));
}

#[test]
fn a_bad_value_is_refused_before_anything_runs_naming_its_field() {
    let base = RunConfig::from_json(embedded::CONFIG, Path::new("embedded")).unwrap();
    let cases: [(&str, Box<dyn Fn(&mut RunConfig)>); 5] = [
        ("train.batch_size", Box::new(|c| c.train.batch_size = 0)),
        ("train.lr", Box::new(|c| c.train.lr = -1.0)),
        ("train.replicas", Box::new(|c| c.train.replicas = 100)),
        ("decode.vividness", Box::new(|c| c.decode.vividness = 2.5)),
        (
            "decode.decoding.temperature",
            Box::new(|c| {
                c.decode.decoding = rechroma::Decoding::AnnealedMean { temperature: 0.0 };
            }),
        ),
    ];
    for (field, edit) in cases {
        let mut config = base.clone();
        edit(&mut config);
        let err = config.validate().expect_err(field);
        assert_eq!(err.field, field);
        // From a file: the error names the file, and the field is its source.
        let err = RunConfig::from_json(&config.to_json(), Path::new("RUN/config.json")).unwrap_err();
        assert!(matches!(err, RunError::Invalid { .. }), "{err:?}");
        assert!(err.to_string().contains("RUN/config.json"), "{err}");
        let source = err.source().expect("the field at fault").to_string();
        assert!(source.starts_with(field), "{source}");
    }
}

#[test]
fn a_config_from_a_newer_build_or_not_json_is_refused_with_its_cause() {
    let mut json: serde_json::Value = serde_json::from_slice(embedded::CONFIG).unwrap();
    json["format_version"] = 99.into();
    let err = RunConfig::from_json(&serde_json::to_vec(&json).unwrap(), Path::new("new.json")).unwrap_err();
    assert!(matches!(err, RunError::Version { found: 99, .. }), "{err:?}");
    let err = RunConfig::from_json(b"{not json", Path::new("bad.json")).unwrap_err();
    assert!(matches!(err, RunError::Parse { .. }), "{err:?}");
    assert!(err.source().is_some(), "the parser's error is kept");
    let err = RunConfig::load(Path::new("/nonexistent/run")).unwrap_err();
    assert!(matches!(err, RunError::Read { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "cannot read /nonexistent/run/config.json",
        "the cause is not repeated in the message"
    );
}
