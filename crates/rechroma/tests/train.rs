//! Training behaviour of tiny MLEUs on one real photo crop.
mod common;

use burn::data::dataloader::batcher::Batcher;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use rechroma::data::{AugmentConfig, ColorBatcher, DatasetConfig, PhotoDataset};
use rechroma::model::mleu::{Head, Mleu, MleuConfig};
use rechroma::quantize::{Prior, PriorAccumulator, PriorConfig, Quantizer};
use rechroma::run::{RunConfig, TrainConfig};
use rechroma::train::loss::mleu_loss;
use rechroma::train::trainee::MleuTrainee;

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

/// `steps` training steps of `rechroma train` (the MLEU paper's Adam) on the cat crop: the first and last
/// losses, and the model before and after.
fn train(head: Head, steps: usize, lr: f64) -> (f32, f32, Mleu, Mleu) {
    let device = Device::flex().autodiff();
    let batch = cat_batch(&device);
    let weights = prior_for(&batch).weights_f32();
    let mut trainee = MleuTrainee::new(&TrainConfig::mleu(), &tiny(head), Some(weights), None, &device).unwrap();
    let start = trainee.model.clone();
    let losses: Vec<f32> = (0..steps).map(|_| trainee.step(&batch, lr)[0]).collect();
    (losses[0], losses[steps - 1], start, trainee.model)
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
        Head::Regression | Head::Joint => out
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
    // A config written before schedules existed (the flat layout of format 0) reads as "no schedule".
    let path = common::fixtures().join("runs/legacy-config.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let fields = json.as_object_mut().unwrap();
    fields.remove("lr_drops");
    fields.remove("cosine"); // a config written before schedules existed has neither
    let config = RunConfig::from_json(&serde_json::to_vec(&json).unwrap(), &path)
        .unwrap()
        .train;
    assert!(config.lr_drops.is_empty());
    assert_eq!(config.lr_at(5000), config.lr);
    let config = TrainConfig {
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

#[test]
fn the_cosine_schedule_warms_up_then_halves_at_mid_span_and_rests_on_its_floor() {
    use rechroma::run::CosineSchedule;
    let c = CosineSchedule {
        warmup: 10,
        total: 110,
        final_fraction: 0.1,
    };
    assert!((c.factor(0) - 0.1).abs() < 1e-12, "first warm-up step: 1/10");
    assert!((c.factor(9) - 1.0).abs() < 1e-12);
    assert!((c.factor(10) - 1.0).abs() < 1e-12, "the decay starts at the top");
    // Half way: floor + (1 − floor)·½ = 0.55.
    assert!((c.factor(60) - 0.55).abs() < 1e-12);
    assert!((c.factor(110) - 0.1).abs() < 1e-12);
    assert!((c.factor(5000) - 0.1).abs() < 1e-12);
}

#[test]
fn the_moving_average_moves_a_tenth_of_the_way_at_decay_0_9() {
    use burn::module::{Module, ModuleMapper, Param};
    use burn::tensor::{Device, Tensor};
    use rechroma::model::mleu::Head;
    use rechroma::train::ema::{Ema, warmed_decay};
    struct AddOne;
    impl ModuleMapper for AddOne {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            p.map(|t| t + 1.0)
        }
    }
    let device = Device::flex();
    let m0 = common::tiny_mleu([4, 8, 8, 8, 8], Head::Regression).init(&device);
    let mut ema = Ema::new(&m0, 0.9);
    let m1 = m0.clone().map(&mut AddOne);
    ema.update(&m1, 1000); // warm-up over: d = 0.9
    let w = |m: &rechroma::model::mleu::Mleu| -> Vec<f32> { m.out.weight.val().into_data().try_to_vec().unwrap() };
    for (e, o) in w(&ema.model).iter().zip(w(&m0)) {
        assert!((e - (o + 0.1)).abs() < 1e-5, "{e} vs {o} + 0.1");
    }
    // Early on the warm-up holds the decay down: (1 + t) / (10 + t).
    assert!((warmed_decay(0.999, 0) - 0.1).abs() < 1e-12);
    assert!((warmed_decay(0.999, 90) - 0.91).abs() < 1e-12);
    assert_eq!(warmed_decay(0.999, 1_000_000), 0.999);
}

#[test]
fn two_replicas_average_the_gradients_of_their_shards() {
    use burn::module::ModuleVisitor;
    use burn::optim::GradientsParams;
    use rechroma::data::ColorBatch;
    use rechroma::train::parallel::{gradients, shards};
    let device = Device::flex().autodiff();
    device.seed(7);
    let model = tiny(Head::Regression).init(&device);
    let one = cat_batch(&device);
    // A batch of 3: shards of 2 and 1 (weights 2/3 and 1/3).
    let batch = ColorBatch {
        l: Tensor::cat(vec![one.l.clone(), one.l.clone().flip([3]), one.l.clone().flip([2])], 0),
        ab: Tensor::cat(
            vec![one.ab.clone(), one.ab.clone().flip([3]), one.ab.clone().flip([2])],
            0,
        ),
        hints: None,
    };
    let parts = shards(&batch, 2);
    assert_eq!(parts.iter().map(|p| p.l.dims()[0]).collect::<Vec<_>>(), [2, 1]);
    let loss = |m: &Mleu, b: &ColorBatch| mleu_loss(m, b, None, 0.0, None);
    let (value, merged) = gradients(&model, &batch, 2, loss);
    // The reference: each shard's gradients computed one after the other, then weighted by hand.
    let g: Vec<GradientsParams> = parts
        .iter()
        .map(|p| GradientsParams::from_grads(loss(&model, p).backward(), &model))
        .collect();
    let v: Vec<f32> = parts.iter().map(|p| loss(&model, p).into_scalar()).collect();
    assert!((value - (2.0 * v[0] + v[1]) / 3.0).abs() < 1e-5, "{value} vs {v:?}");
    struct Check<'a>(&'a GradientsParams, &'a [GradientsParams], usize);
    impl ModuleVisitor for Check<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let Some(got) = self.0.get::<D>(p.id) else { return };
            let a = self.1[0].get::<D>(p.id).unwrap();
            let b = self.1[1].get::<D>(p.id).unwrap();
            let want = a * (2.0 / 3.0) + b * (1.0 / 3.0);
            let diff: f32 = (got - want).abs().max().into_scalar();
            assert!(diff < 1e-5, "gradient differs by {diff}");
            self.2 += 1;
        }
    }
    let mut check = Check(&merged, &g, 0);
    model.visit(&mut check);
    assert!(check.2 > 10, "the trainable tensors were compared ({})", check.2);
}

#[test]
fn validation_decodes_with_the_prior_correction_as_colorizing_does() {
    use rechroma::evaluate::ValidationSet;
    use rechroma::quantize::DecodeConfig;
    // It was ignored: a run decoded with β = 1 was validated (and chosen) as β = 0.
    let device = Device::flex().autodiff();
    device.seed(7);
    let batch = cat_batch(&device);
    let weights = prior_for(&batch).weights_f32();
    let trainee = MleuTrainee::new(
        &TrainConfig::mleu(),
        &tiny(Head::Classification),
        Some(weights),
        None,
        &device,
    )
    .unwrap();
    let set = ValidationSet::open(&common::fixtures().join("metrics"), 64).unwrap();
    let plain = DecodeConfig::default();
    let corrected = DecodeConfig {
        prior_correction: 1.0,
        ..plain
    };
    let inference = device.clone().without_autodiff();
    let (a, _) = trainee.validate(&set, &plain, &inference);
    let (b, _) = trainee.validate(&set, &corrected, &inference);
    assert_ne!(a.model.psnr, b.model.psnr, "β changes what validation scores");
    assert_eq!(a.gray, b.gray);
}

#[test]
fn a_frozen_backbone_from_the_engine_gives_burns_loss_and_gradients() {
    use burn::optim::GradientsParams;
    use rechroma::data::ColorBatch;
    use rechroma::engine::FrozenBackbone;
    let device = Device::flex().autodiff();
    device.seed(11);
    let model = tiny(Head::Joint).init(&device);
    let frozen = FrozenBackbone::new(&model).expect("the tiny network has a backbone");
    // Two different photos: the engine's features must keep the batch order and NCHW layout.
    let one = cat_batch(&device);
    let batch = ColorBatch {
        l: Tensor::cat(vec![one.l.clone(), one.l.clone().flip([3]) * 0.7], 0),
        ab: Tensor::cat(vec![one.ab.clone(), one.ab.clone().flip([2])], 0),
        hints: None,
    };
    let values = |t: Tensor<4>| -> Vec<f32> { t.into_data().try_to_vec().unwrap() };
    let net = model.backbone.as_ref().expect("an EfficientNet backbone");
    let want = rechroma::model::backbone::efficientnet_features(net, batch.l.clone());
    let got = frozen.features(&batch.l);
    assert_eq!(got.len(), 5, "five levels");
    for (level, (g, w)) in got.into_iter().zip(want).enumerate() {
        assert_eq!(g.dims(), w.dims(), "level {level}");
        let (g, w) = (values(g), values(w));
        let scale = w.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = g.iter().zip(&w).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            diff <= 1e-4 * scale.max(1.0),
            "level {level}: features differ by {diff} (largest {scale})"
        );
    }
    let weights = prior_for(&one).weights_f32();
    let quantizer = Quantizer::default();
    let ctx = rechroma::train::loss::ClassLossContext {
        quantizer: &quantizer,
        weights: &weights,
    };
    let burn = mleu_loss(&model, &batch, Some(&ctx), 0.5, None);
    let engine = mleu_loss(&model, &batch, Some(&ctx), 0.5, Some(&frozen));
    let (lb, le): (f32, f32) = (burn.clone().into_scalar(), engine.clone().into_scalar());
    assert!(
        (lb - le).abs() < 1e-4 * lb.abs().max(1.0),
        "loss {lb} (burn) vs {le} (engine)"
    );
    let (gb, ge) = (
        GradientsParams::from_grads(burn.backward(), &model),
        GradientsParams::from_grads(engine.backward(), &model),
    );
    // Gradients compared by their norms, loosely: features that differ by float rounding may flip a
    // ReLU at a pixel, and the tiny network's BatchNorms over 2 × 2 × 2 bottleneck values amplify such
    // differences (typically 3e-5 of a tensor's norm, up to 1.2 % over repeated runs). Features in
    // the wrong order or layout would move them by their whole size (and fail the check above).
    struct Check<'a>(&'a GradientsParams, &'a GradientsParams, usize);
    impl ModuleVisitor for Check<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let Some(a) = self.0.get::<D>(p.id) else { return };
            let b = self.1.get::<D>(p.id).expect("the same parameters get gradients");
            let norm: f32 = a.clone().powf_scalar(2.0).sum().sqrt().into_scalar();
            let diff: f32 = (a - b).powf_scalar(2.0).sum().sqrt().into_scalar();
            assert!(diff <= 0.1 * norm.max(1e-6), "gradient differs by {diff} (norm {norm})");
            self.2 += 1;
        }
    }
    let mut check = Check(&gb, &ge, 0);
    model.visit(&mut check);
    assert!(check.2 > 10, "the trainable tensors were compared ({})", check.2);
}
