//! ChromaGAN: generator and critic shapes, the critic's hand-written input gradient against finite
//! differences, the gradient penalty reaching the critic's weights, and which parameters each step moves.

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use rechroma::model::backbone::BackboneConfig;
use rechroma::model::chromagan::ChromaGanConfig;
use rechroma::model::critic::{Critic, CriticConfig};
use rechroma::run::{GanLossConfig, TrainConfig};
use rechroma::train::gan::{kl_loss, penalty_at};
use rechroma::train::trainee::GanTrainee;

fn tiny(size: usize) -> ChromaGanConfig {
    ChromaGanConfig {
        size,
        width: 8,
        global_fc: [16, 8],
        fusion: 8,
        class_fc: [16, 16],
        classes: 10,
        decoder: [8, 8, 4, 4, 4],
        ..ChromaGanConfig::paper(BackboneConfig::EfficientNet(common::tiny_backbone()))
    }
}

fn tiny_critic() -> CriticConfig {
    CriticConfig {
        widths: [4, 4, 4, 4],
        ..CriticConfig::default()
    }
}

#[test]
fn generator_and_critic_shapes_at_224_and_at_a_tiny_size() {
    let device = Device::flex();
    for size in [224, 64] {
        let g = tiny(size).init(&device);
        let l = Tensor::<4>::random([2, 1, size, size], Distribution::Uniform(0.0, 100.0), &device);
        let (ab, classes) = g.forward(l.clone());
        assert_eq!(ab.dims(), [2, 2, size, size]);
        assert_eq!(classes.dims(), [2, 10]);
        let v: Vec<f32> = ab.clone().into_data().try_to_vec().unwrap();
        assert!(v.iter().all(|x| (0.0..=1.0).contains(x)), "sigmoid output");
        // Colorizing skips the class head but gives the same ab.
        let only: Vec<f32> = g.colorize(l.clone()).into_data().try_to_vec().unwrap();
        assert_eq!(only, v);
        let critic = CriticConfig::default().init(&device);
        if size == 224 {
            assert_eq!(critic.forward(l, ab).dims(), [2, 1, 28, 28], "28×28 patches at 224²");
        }
    }
}

#[test]
fn the_vgg16_trunk_is_block4_conv3_at_stride_8() {
    let device = Device::flex();
    let vgg16 = rechroma::model::vgg::Vgg16Config {
        widths: [4, 4, 8, 8, 8],
        convs: [2, 2, 3, 3, 3],
    };
    let cfg = ChromaGanConfig {
        backbone: BackboneConfig::Vgg16 { vgg16: vgg16.clone() },
        ..tiny(64)
    };
    assert_eq!(cfg.trunk_channels(), 8);
    let l = Tensor::<4>::random([1, 1, 64, 64], Distribution::Uniform(0.0, 100.0), &device);
    let trunk = vgg16
        .init(&device)
        .block4_conv3(Tensor::cat(vec![l.clone(), l.clone(), l.clone()], 1));
    assert_eq!(trunk.dims(), [1, 8, 8, 8]);
    let (ab, classes) = cfg.init(&device).forward(l);
    assert_eq!((ab.dims(), classes.dims()), ([1, 2, 64, 64], [1, 10]));
}

/// Σ of the patch scores of each sample, as f64.
fn score_sums(critic: &Critic, l: &Tensor<4>, ab: Tensor<4>) -> Vec<f64> {
    let d: Vec<f32> = critic
        .forward(l.clone(), ab)
        .sum_dim(3)
        .sum_dim(2)
        .into_data()
        .try_to_vec()
        .unwrap();
    d.into_iter().map(f64::from).collect()
}

#[test]
fn the_hand_written_input_gradient_matches_finite_differences() {
    let device = Device::flex();
    device.seed(7);
    let critic = tiny_critic().init(&device);
    let (b, s) = (2, 16);
    let l = Tensor::<4>::random([b, 1, s, s], Distribution::Uniform(0.0, 100.0), &device);
    let ab = Tensor::<4>::random([b, 2, s, s], Distribution::Uniform(0.0, 1.0), &device);
    let g: Vec<f32> = critic
        .input_gradient(l.clone(), ab.clone())
        .into_data()
        .try_to_vec()
        .unwrap();
    let base: Vec<f32> = ab.clone().into_data().try_to_vec().unwrap();
    let h = 1e-2f32;
    for index in [0, 37, 255, 256 + 17, 2 * 256 + 100, 4 * 256 - 1] {
        let shifted = |delta: f32| {
            let mut v = base.clone();
            v[index] += delta;
            Tensor::<4>::from_data(TensorData::new(v, [b, 2, s, s]), &device)
        };
        let sample = index / (2 * s * s);
        let fd = (score_sums(&critic, &l, shifted(h))[sample] - score_sums(&critic, &l, shifted(-h))[sample])
            / (2.0 * f64::from(h));
        let got = f64::from(g[index]);
        assert!(
            (got - fd).abs() <= 2e-3 + 2e-2 * fd.abs(),
            "element {index}: {got} vs finite difference {fd}"
        );
    }
}

/// Multiplies the first convolution's weight by `factor`.
fn scaled(critic: &Critic, factor: f32) -> Critic {
    let mut c = critic.clone();
    let w = c.convs[0].weight.val() * factor;
    c.convs[0].weight = Param::from_tensor(w);
    c
}

#[test]
fn the_gradient_penalty_reaches_the_critic_weights_exactly() {
    let plain = Device::flex();
    let device = plain.clone().autodiff();
    device.seed(11);
    let critic = tiny_critic().init(&device);
    let (b, s) = (2, 16);
    let l = Tensor::<4>::random([b, 1, s, s], Distribution::Uniform(0.0, 100.0), &plain);
    let x = Tensor::<4>::random([b, 2, s, s], Distribution::Uniform(0.0, 1.0), &plain);
    let on = |t: &Tensor<4>, d: &Device| Tensor::<4>::from_data(t.to_data(), d);
    let gp = penalty_at(&critic, on(&l, &device), on(&x, &device));
    let grads = gp.backward();
    let w = critic.convs[0].weight.val();
    let grad = w
        .grad(&grads)
        .expect("the penalty's gradient reaches the first convolution's weight");
    // d/dt GP(W·(1+t)) at t = 0 is ⟨∂GP/∂W, W⟩: compare with a central difference.
    let gv: Vec<f32> = grad.into_data().try_to_vec().unwrap();
    let wv: Vec<f32> = w.into_data().try_to_vec().unwrap();
    let analytic: f64 = gv.iter().zip(&wv).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
    let t = 1e-3;
    let at = |f: f32| -> f64 {
        let c = scaled(&critic.valid(), f);
        f64::from(penalty_at(&c, l.clone(), x.clone()).into_scalar::<f32>())
    };
    let fd = (at(1.0 + t) - at(1.0 - t)) / (2.0 * f64::from(t));
    assert!(analytic.abs() > 1e-6, "a non-zero gradient: {analytic}");
    assert!(
        (analytic - fd).abs() <= 1e-3 + 2e-2 * fd.abs(),
        "⟨∂GP/∂W, W⟩ = {analytic} vs finite difference {fd}"
    );
}

#[test]
fn kl_is_zero_for_equal_distributions_and_matches_a_hand_computed_value() {
    let device = Device::flex();
    let p = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, 0.25, 0.25], [1, 3]), &device);
    // logits ln(0.5), ln(0.25), ln(0.25) → softmax = p → KL 0.
    let same = Tensor::<2>::from_data(
        TensorData::new(vec![0.5f32.ln(), 0.25f32.ln(), 0.25f32.ln()], [1, 3]),
        &device,
    );
    assert!(kl_loss(p.clone(), same).into_scalar::<f32>().abs() < 1e-6);
    // Uniform q: KL = Σ p ln(p / (1/3)) = 0.5 ln 1.5 + 0.5 ln 0.75 = 0.0589.
    let uniform = Tensor::<2>::zeros([1, 3], &device);
    let want = 0.5 * 1.5f32.ln() + 0.5 * 0.75f32.ln();
    assert!((kl_loss(p, uniform).into_scalar::<f32>() - want).abs() < 1e-6);
}

/// Every float parameter as a flat vector (visit order), with whether it is trainable.
struct Collect(Vec<(Vec<f32>, bool)>);
impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0
            .push((param.val().into_data().try_to_vec().unwrap(), param.is_require_grad()));
    }
}

fn params<M: Module>(m: &M) -> Vec<(Vec<f32>, bool)> {
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0
}

fn changed(before: &[(Vec<f32>, bool)], after: &[(Vec<f32>, bool)]) -> Vec<bool> {
    before.iter().zip(after).map(|(a, b)| a.0 != b.0).collect()
}

#[test]
fn a_generator_step_moves_only_the_generator_and_a_critic_step_only_the_critic() {
    let device = Device::flex().autodiff();
    device.seed(3);
    let generator = ChromaGanConfig {
        finetune_backbone: false,
        ..tiny(64)
    };
    // The paper's optimiser (Adam, β1 = 0.5).
    let config = TrainConfig::chromagan();
    let teacher = common::tiny_backbone().init(&device);
    let mut t = GanTrainee::new(
        &config,
        &generator,
        &tiny_critic(),
        GanLossConfig::default(),
        teacher,
        None,
        &device,
    )
    .unwrap();
    let l = Tensor::<4>::random([2, 1, 64, 64], Distribution::Uniform(0.0, 100.0), &device);
    let real = Tensor::<4>::random([2, 2, 64, 64], Distribution::Uniform(0.3, 0.7), &device);
    let (g0, d0) = (params(&t.generator), params(&t.critic));
    let (losses, fake) = t.generator_step(l.clone(), real.clone(), 1e-3);
    assert_eq!(losses.len(), 4);
    let (g1, d1) = (params(&t.generator), params(&t.critic));
    assert!(
        changed(&d0, &d1).iter().all(|c| !c),
        "the generator step leaves the critic alone"
    );
    for ((moved, (_, trainable)), i) in changed(&g0, &g1).iter().zip(&g0).zip(0..) {
        // BatchNorm running statistics are not trainable but move in a forward pass in training mode.
        if *trainable {
            assert!(moved, "trainable generator parameter {i} moved");
        }
    }
    let trunk = params(t.generator.backbone.as_ref().unwrap());
    assert!(
        trunk.iter().all(|p| !p.1),
        "the trunk is frozen (finetune_backbone = false)"
    );
    let losses = t.critic_step(l, real, fake, 1e-3);
    assert_eq!(losses.len(), 3);
    let (g2, d2) = (params(&t.generator), params(&t.critic));
    assert!(
        changed(&g1, &g2).iter().all(|c| !c),
        "the critic step leaves the generator alone"
    );
    // Every critic weight moves (the parameters alternate weight, bias), and the last bias does not:
    // it shifts D(real) and D(fake) alike, so the Wasserstein term cancels it, and the penalty (a
    // gradient) does not see it. An inner bias may also get an exactly cancelling gradient when the
    // LeakyReLU masks after it happen to agree on real and fake (width-4 layers): not asserted.
    let moved = changed(&d1, &d2);
    let (last, rest) = moved.split_last().unwrap();
    assert!(
        rest.iter().step_by(2).all(|c| *c),
        "every critic weight moved: {moved:?}"
    );
    assert!(!last, "the last bias has no gradient");
}
