//! Small building blocks shared by the networks.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

/// Activation after a normalised convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Act {
    /// max(x, 0).
    Relu,
    /// min(max(x, 0), 6): EfficientNet-Lite's activation.
    Relu6,
    /// No activation.
    Identity,
}

impl Act {
    /// Applies the activation elementwise.
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Act::Relu => burn::tensor::activation::relu(x),
            Act::Relu6 => x.clamp(0.0, 6.0),
            Act::Identity => x,
        }
    }

    /// The activation as a clamp `(lo, hi)`, `None` for the identity.
    pub fn range(self) -> Option<(f32, f32)> {
        match self {
            Act::Relu => Some((0.0, f32::INFINITY)),
            Act::Relu6 => Some((0.0, 6.0)),
            Act::Identity => None,
        }
    }
}

/// conv (no bias) → BatchNorm → activation, with TensorFlow-style "same" padding (the extra row and
/// column of an even-sized stride-2 convolution go to the bottom/right, as in the TF-trained weights).
#[derive(Module, Debug)]
pub struct ConvBnAct {
    /// The k×k convolution, without bias.
    pub conv: Conv2d,
    /// The BatchNorm after the convolution.
    pub bn: BatchNorm,
    /// The activation after the BatchNorm (not a parameter).
    #[module(skip)]
    pub act: Act,
    /// Whether the BatchNorm is folded into the convolution ([`Self::fold_batchnorm`]): the
    /// convolution's weights and bias then hold it, and [`Self::forward`] skips it.
    #[module(skip)]
    pub folded: bool,
}

impl ConvBnAct {
    /// A `k × k` convolution `c_in → c_out` with the given stride and groups.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        groups: usize,
        eps: f64,
        act: Act,
        device: &Device,
    ) -> Self {
        let conv = Conv2dConfig::new([c_in, c_out], [k, k])
            .with_stride([stride, stride])
            .with_groups(groups)
            .with_padding(PaddingConfig2d::Same)
            .with_bias(false)
            .init(device);
        let bn = BatchNormConfig::new(c_out).with_epsilon(eps).init(device);
        Self {
            conv,
            bn,
            act,
            folded: false,
        }
    }

    /// # Shapes
    /// `[B, c_in, H, W]` → `[B, c_out, ⌈H/stride⌉, ⌈W/stride⌉]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = super::cpu_conv::conv2d(&self.conv, x);
        if self.folded {
            return self.act.apply(y);
        }
        // Training on the CPU: BatchNorm and activation as one operation (`cpu_norm`).
        super::cpu_norm::batch_norm_train(&self.bn, y, self.act.range())
            .unwrap_or_else(|y| self.act.apply(self.bn.forward(y)))
    }

    /// The BatchNorm of a convolution's output (nothing once it is folded into the convolution).
    ///
    /// # Shapes
    /// `[B, c_out, H, W]` → the same
    pub fn normalized(&self, y: Tensor<4>) -> Tensor<4> {
        if self.folded {
            return y;
        }
        super::cpu_norm::batch_norm_train(&self.bn, y, None).unwrap_or_else(|y| self.bn.forward(y))
    }

    /// Folds the BatchNorm's running statistics, scale and shift into the convolution (weights × γ/σ,
    /// bias β − μ·γ/σ), for inference: one pass over the activations fewer per layer, the same outputs
    /// up to rounding. Not for training (the BatchNorm no longer learns).
    pub fn fold_batchnorm(mut self) -> Self {
        if self.folded {
            return self;
        }
        let eps = self.bn.epsilon;
        let scale = self.bn.gamma.val() / (self.bn.running_var.value() + eps).sqrt();
        let shift = self.bn.beta.val() - self.bn.running_mean.value() * scale.clone();
        let [c_out, ..] = self.conv.weight.val().dims();
        let weight = self.conv.weight.val() * scale.reshape([c_out, 1, 1, 1]);
        let bias = match &self.conv.bias {
            Some(b) => b.val() * self.bn.gamma.val() / (self.bn.running_var.value() + eps).sqrt() + shift,
            None => shift,
        };
        self.conv.weight = burn::module::Param::from_tensor(weight);
        self.conv.bias = Some(burn::module::Param::from_tensor(bias));
        self.folded = true;
        self
    }
}
