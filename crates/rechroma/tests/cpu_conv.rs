//! The CPU training convolution (`model::cpu_conv`: im2col products on `gemm`) against burn's own
//! convolution: the output and the gradients of the input, the weights and the bias.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::{Device, Distribution, Tensor};
use rechroma::model::cpu_conv::conv2d;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec().unwrap()
}

/// Asserts `a` equals `b` within `1e-4` of `b`'s largest magnitude.
fn assert_close(what: &str, a: Vec<f32>, b: Vec<f32>) {
    assert_eq!(a.len(), b.len(), "{what}: sizes");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(
        worst <= 1e-4 * scale,
        "{what}: differs by {worst} (largest value {scale})"
    );
}

/// One convolution: `[n, c_in, h, w]` by a `k × k` kernel at `stride` to `c_out` channels.
fn check(
    name: &str,
    (n, c_in, h, w): (usize, usize, usize, usize),
    c_out: usize,
    k: usize,
    stride: usize,
    padding: PaddingConfig2d,
    bias: bool,
) {
    let device = Device::flex().autodiff();
    device.seed(5);
    let conv = Conv2dConfig::new([c_in, c_out], [k, k])
        .with_stride([stride, stride])
        .with_padding(padding)
        .with_bias(bias)
        .init(&device);
    let x = Tensor::<4>::random([n, c_in, h, w], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let ours = conv2d(&conv, x.clone());
    let burns = conv.forward(x.clone());
    assert_eq!(ours.dims(), burns.dims(), "{name}: output shape");
    assert_close(&format!("{name}: output"), values(ours.clone()), values(burns.clone()));
    // The gradients of Σ y·r for a random r: r is the output's gradient.
    let r = Tensor::<4>::random(burns.dims(), Distribution::Normal(0.0, 1.0), &device);
    let (g_ours, g_burns) = ((ours * r.clone()).sum().backward(), (burns * r).sum().backward());
    let grad = |t: &Tensor<4>, g| values(t.grad(g).expect("a gradient"));
    assert_close(
        &format!("{name}: input gradient"),
        grad(&x, &g_ours),
        grad(&x, &g_burns),
    );
    let wv = conv.weight.val();
    assert_close(
        &format!("{name}: weight gradient"),
        grad(&wv, &g_ours),
        grad(&wv, &g_burns),
    );
    if let Some(b) = &conv.bias {
        let bv = b.val();
        let (a, z) = (
            bv.grad(&g_ours).expect("bias gradient"),
            bv.grad(&g_burns).expect("bias gradient"),
        );
        assert_close(&format!("{name}: bias gradient"), values(a), values(z));
    }
}

#[test]
fn training_convolutions_equal_burns_output_and_gradients() {
    use PaddingConfig2d::{Explicit, Same, Valid};
    check("3×3 same", (2, 5, 9, 7), 6, 3, 1, Same, false);
    // Even sides at stride 2: "same" puts the odd row and column after (TensorFlow's convention).
    check("3×3 stride 2 same", (3, 4, 10, 8), 7, 3, 2, Same, false);
    check("3×3 stride 2 same, odd", (1, 3, 9, 11), 5, 3, 2, Same, true);
    check("1×1 with bias", (2, 6, 5, 4), 3, 1, 1, Valid, true);
    check("1×1 stride 2", (2, 6, 6, 6), 3, 1, 2, Valid, true);
    check("5×5 valid", (2, 2, 9, 8), 3, 5, 1, Valid, true);
    check("3×3 explicit uneven", (1, 3, 6, 7), 2, 3, 1, Explicit(2, 0, 1, 1), true);
    // col(X) of 576 × 64 values a row: bands of 28 rows, so three bands over 64 rows.
    check("3×3 in bands", (2, 64, 64, 64), 8, 3, 1, Same, true);
    // A one-pixel-wide map: most taps fall in the padding.
    check("3×3 on a column", (2, 3, 5, 1), 4, 3, 1, Same, true);
    check("3×3 stride 2 on a column", (1, 3, 5, 1), 4, 3, 2, Same, false);
}

/// Without autodiff (inference) and for grouped convolutions, burn's own path is taken: same results.
#[test]
fn other_convolutions_go_to_burn() {
    let device = Device::flex();
    device.seed(2);
    let conv = Conv2dConfig::new([4, 4], [3, 3])
        .with_groups(4)
        .with_padding(PaddingConfig2d::Same)
        .init(&device);
    let x = Tensor::<4>::random([1, 4, 6, 6], Distribution::Normal(0.0, 1.0), &device);
    assert_close("depthwise", values(conv2d(&conv, x.clone())), values(conv.forward(x)));
}

/// BatchNorm in training with its clamp (`model::cpu_norm`) against burn's BatchNorm and activation:
/// the output, the running statistics, and the gradients of the input, γ and β.
#[test]
fn training_batchnorm_equals_burns_output_statistics_and_gradients() {
    use burn::nn::BatchNormConfig;
    use rechroma::model::cpu_norm::batch_norm_train;
    let device = Device::flex().autodiff();
    device.seed(9);
    for (name, range) in [
        ("identity", None),
        ("relu", Some((0.0, f32::INFINITY))),
        ("relu6", Some((0.0, 6.0))),
    ] {
        for dims in [[2, 3, 5, 7], [4, 2, 8, 8], [1, 5, 3, 3]] {
            let name = format!("{name} {dims:?}");
            let ours_bn = BatchNormConfig::new(dims[1]).init(&device);
            let burns_bn = BatchNormConfig::new(dims[1]).init(&device);
            // γ and β away from 1 and 0, and an input with a mean and a spread per channel, so that
            // every term of the gradient matters; ReLU6 sees values above 6.
            let gamma = Tensor::<1>::random([dims[1]], Distribution::Uniform(0.5, 2.0), &device);
            let beta = Tensor::<1>::random([dims[1]], Distribution::Uniform(-1.0, 3.0), &device);
            let (ours_bn, burns_bn) = [ours_bn, burns_bn]
                .map(|mut bn| {
                    bn.gamma = burn::module::Param::from_tensor(gamma.clone());
                    bn.beta = burn::module::Param::from_tensor(beta.clone());
                    bn
                })
                .into();
            let x = (Tensor::<4>::random(dims, Distribution::Normal(1.5, 2.0), &device) * 3.0).require_grad();
            let ours = batch_norm_train(&ours_bn, x.clone(), range).expect("taken on the autodiff CPU backend");
            let burns = match range {
                None => burns_bn.forward(x.clone()),
                Some((lo, hi)) => burns_bn.forward(x.clone()).clamp(lo, hi),
            };
            assert_close(&format!("{name}: output"), values(ours.clone()), values(burns.clone()));
            for (what, a, b) in [
                (
                    "running mean",
                    ours_bn.running_mean.value(),
                    burns_bn.running_mean.value(),
                ),
                (
                    "running variance",
                    ours_bn.running_var.value(),
                    burns_bn.running_var.value(),
                ),
            ] {
                assert_close(&format!("{name}: {what}"), values(a), values(b));
            }
            let r = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
            let (g_ours, g_burns) = ((ours * r.clone()).sum().backward(), (burns * r).sum().backward());
            assert_close(
                &format!("{name}: input gradient"),
                values(x.grad(&g_ours).unwrap()),
                values(x.grad(&g_burns).unwrap()),
            );
            for (what, a, b) in [
                ("γ", &ours_bn.gamma, &burns_bn.gamma),
                ("β", &ours_bn.beta, &burns_bn.beta),
            ] {
                let (a, b) = (a.val().grad(&g_ours).unwrap(), b.val().grad(&g_burns).unwrap());
                assert_close(&format!("{name}: {what} gradient"), values(a), values(b));
            }
        }
    }
}
