//! Training behaviour of tiny MLEUs on one real photo crop.
mod common;

use burn::data::dataloader::batcher::Batcher;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use rechroma::data::{AugmentConfig, ColorBatcher, DatasetConfig, PhotoDataset};
use rechroma::model::mleu::{Head, Mleu, MleuConfig};
use rechroma::quantize::{Prior, PriorAccumulator, PriorConfig, Quantizer};
use rechroma::train::{ClassLossContext, mleu_loss};

fn tiny(head: Head) -> MleuConfig {
    common::tiny_mleu([8, 8, 8, 8, 8], head)
}

/// One fixed 64×64 crop of the cat photo (no augmentation). Not 32×32: the bottleneck would be 1×1,
/// and BatchNorm over one 1×1 sample normalises everything to 0, which cuts the gradient.
fn cat_batch(device: &Device) -> rechroma::data::ColorBatch {
    let cfg = DatasetConfig {
        augment: AugmentConfig {
            size: 64,
            min_scale: 1.0,
            max_scale: 1.0,
            hflip: false,
            max_rotation_deg: 0.0,
        },
        ..DatasetConfig::default()
    };
    let dir = common::fixtures().join("metrics");
    let ds = PhotoDataset::open(&dir, cfg, |_, _| {}).unwrap();
    ColorBatcher.batch(vec![ds.sample(1, 0).unwrap()], device)
}

/// Every float parameter as a flat vector, by parameter path order.
struct Collect(Vec<Vec<f32>>, Vec<bool>);
impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().into_data().try_to_vec().unwrap());
        self.1.push(param.is_require_grad());
    }
}

fn params(m: &Mleu) -> (Vec<Vec<f32>>, Vec<bool>) {
    let mut c = Collect(Vec::new(), Vec::new());
    m.visit(&mut c);
    (c.0, c.1)
}

fn prior_for(batch: &rechroma::data::ColorBatch) -> Prior {
    let ab: Vec<f32> = batch.ab.clone().into_data().try_to_vec().unwrap();
    let mut acc = PriorAccumulator::new(5.0);
    let (a, b) = ab.split_at(ab.len() / 2);
    acc.add_image(a, b);
    acc.finish(PriorConfig::default()).unwrap()
}

fn train(head: Head, steps: usize, lr: f64) -> (f32, f32, Mleu, Mleu) {
    let device = Device::flex().autodiff();
    let batch = cat_batch(&device);
    let prior = prior_for(&batch);
    let weights = prior.weights_f32();
    let quantizer = Quantizer::default();
    let ctx = ClassLossContext {
        quantizer: &quantizer,
        weights: &weights,
    };
    let start = tiny(head).init(&device);
    let mut model = start.clone();
    let mut optim = AdamConfig::new().init();
    let (mut first, mut last) = (0.0, 0.0);
    for step in 0..steps {
        let loss = mleu_loss(&model, &batch, Some(&ctx));
        let value: f32 = loss.clone().into_scalar();
        if step == 0 {
            first = value;
        }
        last = value;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr, model, grads);
    }
    (first, last, start, model)
}

#[test]
fn training_steps_move_every_trainable_parameter_and_no_frozen_one() {
    let (_, _, start, end) = train(Head::Regression, 2, 1e-2);
    let ((before, trainable), (after, _)) = (params(&start), params(&end));
    let mut moved_frozen = 0;
    let mut still_trainable = 0;
    for ((b, a), t) in before.iter().zip(&after).zip(&trainable) {
        let changed = b != a;
        if *t && !changed {
            still_trainable += 1;
        }
        if !*t && changed {
            moved_frozen += 1;
        }
    }
    assert!(
        trainable.iter().filter(|t| !**t).count() > 0,
        "the backbone's parameters are frozen"
    );
    assert_eq!(moved_frozen, 0, "frozen backbone parameters changed");
    assert_eq!(still_trainable, 0, "some trainable parameters got no gradient");
}

/// Mean |Δab| (Lab units) of the model's prediction and of the gray baseline (ab = 0) on the batch.
fn ab_error(model: &Mleu, batch: &rechroma::data::ColorBatch) -> (f32, f32) {
    use rechroma::quantize::{Decoding, decode::decode_planes};
    let out = model.forward(batch.l.clone());
    let truth: Vec<f32> = batch.ab.clone().into_data().try_to_vec().unwrap();
    let pred: Vec<f32> = match model.head {
        Head::Regression => out
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|v| v * 110.0)
            .collect(),
        Head::Classification => {
            let [_, _, h, w] = out.dims();
            let logits: Vec<f32> = out.into_data().try_to_vec().unwrap();
            let (a, b) = decode_planes(&logits, h * w, Decoding::default());
            [a, b].concat()
        }
    };
    let n = truth.len() as f32;
    let err = truth.iter().zip(&pred).map(|(t, p)| (t - p).abs()).sum::<f32>() / n;
    let gray = truth.iter().map(|t| t.abs()).sum::<f32>() / n;
    (err, gray)
}

#[test]
fn a_tiny_regression_mleu_overfits_one_photo() {
    let (first, last, _, model) = train(Head::Regression, 120, 1e-2);
    assert!(last < first / 10.0, "loss {first} → {last}");
    let (err, gray) = ab_error(&model, &cat_batch(&Device::flex().autodiff()));
    assert!(err < gray / 3.0, "mean |Δab| {err} vs gray {gray}");
}

#[test]
fn a_tiny_classification_mleu_overfits_one_photo() {
    let (first, last, _, model) = train(Head::Classification, 120, 1e-2);
    // Cross-entropy against soft targets cannot reach 0: its floor is the (weighted) entropy of the
    // targets, reached by predicting them exactly. The excess over the floor must fall tenfold.
    let device = Device::flex().autodiff();
    let batch = cat_batch(&device);
    let weights = prior_for(&batch).weights_f32();
    let quantizer = Quantizer::default();
    let [b, _, h, w] = batch.ab.dims();
    let ab: Vec<f32> = batch.ab.clone().into_data().try_to_vec().unwrap();
    let targets = rechroma::train::loss::ClassTargets::new(&ab, [b, h, w], &quantizer, &weights, &device);
    // The floor: mean over pixels of w · H(z), H(z) = −Σ z log z over each pixel's k target bins.
    let entropy = (targets.soft.clone() * targets.soft.clone().log()).sum_dim(1).neg();
    let floor: f32 = (entropy * targets.weight.clone()).mean().into_scalar();
    assert!(
        last - floor < (first - floor) / 10.0,
        "loss {first} → {last}, floor {floor}"
    );
    let (err, gray) = ab_error(&model, &batch);
    assert!(err < gray / 2.0, "mean |Δab| {err} vs gray {gray}");
}

#[test]
fn the_learning_rate_steps_down_where_the_schedule_says() {
    // A config written before schedules existed reads as "no schedule".
    let mut json: serde_json::Value = serde_json::from_slice(rechroma::infer::embedded::CONFIG).unwrap();
    json.as_object_mut().unwrap().remove("lr_drops");
    let config: rechroma::train::run::TrainConfig = serde_json::from_value(json).unwrap();
    assert!(config.lr_drops.is_empty());
    assert_eq!(config.lr_at(5000), config.lr);
    let config = rechroma::train::run::TrainConfig {
        lr: 4e-3,
        lr_drops: vec![(1000, 1e-3), (500, 2e-3)],
        ..config
    };
    let got: Vec<f64> = [0, 499, 500, 999, 1000, 10_000]
        .iter()
        .map(|&s| config.lr_at(s))
        .collect();
    assert_eq!(got, [4e-3, 4e-3, 2e-3, 2e-3, 1e-3, 1e-3]);
}
