//! ChromaGAN's losses (paper §3.2, authors' code): generator = 1·MSE(ab) + 0.003·KL(y_teacher ‖ y)
//! − 0.1·mean critic score of the fake; critic = mean score of the fake − mean score of the real
//! + 10·gradient penalty (WGAN-GP, Gulrajani et al. 2017) on random interpolates of real and fake ab.
//!
//! # Scale of the two critic terms (as in the authors' code)
//! The scores are *averaged* over the P patches of the PatchGAN's map (Keras' `K.mean`), while the
//! penalty holds the gradient of their *sum* at norm 1 (Keras' `K.gradients` of a non-scalar output).
//! The penalised Lipschitz scale therefore allows a Wasserstein estimate only ~1/P of what a
//! per-sample scalar critic would reach (P = 784 at 224², 256 at 128²): expect estimates of order 1e-4
//! in `log.csv`, and an adversarial push on the generator that is weak next to the MSE term.

use crate::model::critic::Critic;
use crate::run::GanLossConfig;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Distribution, Tensor};

/// KL(p ‖ softmax(logits)) = Σ p (ln p − ln softmax), averaged over the batch (Keras' `kld`; p is
/// clipped below at 1e-7 inside the log, as Keras does).
///
/// # Shapes
/// `target`: `[B, C]` probabilities, `logits`: `[B, C]` → scalar `[1]`
pub fn kl_loss(target: Tensor<2>, logits: Tensor<2>) -> Tensor<1> {
    let log_q = log_softmax(logits, 1);
    let log_p = target.clone().clamp_min(1e-7).log();
    (target * (log_p - log_q)).sum_dim(1).mean()
}

/// The WGAN-GP penalty: mean over the batch of (‖∇_ab D(L, x̂)‖₂ − 1)², x̂ = ε·real + (1 − ε)·fake with
/// ε ~ U(0, 1) per sample. Its gradient reaches the critic's weights (see [`Critic::input_gradient`]).
///
/// # Shapes
/// `l`: `[B, 1, H, W]`, `real`, `fake`: `[B, 2, H, W]` (unit ab) → scalar `[1]`
pub fn gradient_penalty(critic: &Critic, l: Tensor<4>, real: Tensor<4>, fake: Tensor<4>) -> Tensor<1> {
    let [b, _, _, _] = real.dims();
    let eps = Tensor::<4>::random([b, 1, 1, 1], Distribution::Uniform(0.0, 1.0), &real.device());
    let x_hat = (real * eps.clone() + fake * (eps.neg() + 1.0)).detach();
    penalty_at(critic, l, x_hat)
}

/// (‖∇_ab D(L, x)‖₂ − 1)² averaged over the batch, at given points `x`.
///
/// # Shapes
/// `l`: `[B, 1, H, W]`, `x`: `[B, 2, H, W]` → scalar `[1]`
pub fn penalty_at(critic: &Critic, l: Tensor<4>, x: Tensor<4>) -> Tensor<1> {
    let g = critic.input_gradient(l, x);
    let norm = (g.powi_scalar(2).flatten::<2>(1, 3).sum_dim(1) + 1e-12).sqrt();
    (norm - 1.0).powi_scalar(2).mean()
}

/// The critic's loss: E[D(fake)] − E[D(real)] + λ·GP. Returns (total, Wasserstein estimate
/// E[D(real)] − E[D(fake)], GP).
///
/// # Shapes
/// `l`: `[B, 1, H, W]`, `real`, `fake`: `[B, 2, H, W]` (unit ab; `fake` detached) → scalars `[1]`
pub fn critic_loss(
    critic: &Critic,
    l: Tensor<4>,
    real: Tensor<4>,
    fake: Tensor<4>,
    config: &GanLossConfig,
) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
    let d_real = critic.forward(l.clone(), real.clone()).mean();
    let d_fake = critic.forward(l.clone(), fake.clone()).mean();
    let gp = gradient_penalty(critic, l, real, fake);
    let wasserstein = d_real - d_fake;
    (
        wasserstein.clone().neg() + gp.clone() * config.gradient_penalty,
        wasserstein,
        gp,
    )
}
