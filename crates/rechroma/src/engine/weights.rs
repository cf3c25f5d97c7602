//! Reading a burn network's weights into the engine's layers.

use super::conv::{Act, Conv};
use super::layers::UpConv;
use crate::model::blocks::ConvBnAct;
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Tensor};

/// A tensor's values as `f32`.
pub(crate) fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 values")
}

/// A tensor's `f32` values, read in place from burn's CPU tensor when it holds them contiguously (a
/// model's weights are shared with the model, so taking them out would copy them: 22 MB of a process's
/// start), else copied.
pub(crate) enum Values {
    /// Burn's CPU tensor, read in place.
    Flex(FlexTensor),
    /// A copy.
    Owned(Vec<f32>),
}

impl std::ops::Deref for Values {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match self {
            Values::Flex(t) => t.as_slice::<f32>().expect("checked contiguous f32"),
            Values::Owned(v) => v,
        }
    }
}

fn read<const D: usize>(t: Tensor<D>) -> Values {
    if t.dtype() == DType::F32
        && let Ok(p) = t.clone().try_into_primitive::<Flex>()
        && p.as_slice::<f32>().is_some()
    {
        return Values::Flex(p);
    }
    Values::Owned(values(t))
}

/// A convolution's weights (OIHW), their shape and its bias.
pub(crate) fn conv_values(conv: &Conv2d) -> (Values, [usize; 4], Option<Values>) {
    let w = conv.weight.val();
    let shape = w.dims();
    (read(w), shape, conv.bias.as_ref().map(|b| read(b.val())))
}

/// A plain convolution (with its bias, if any) followed by `act`.
pub(crate) fn conv_plain(conv: &Conv2d, act: Act) -> Conv {
    let (w, shape, bias) = conv_values(conv);
    Conv::new(&w, shape, bias.as_deref(), conv.stride[0], act)
}

/// A normalised convolution whose BatchNorm is folded ([`ConvBnAct::fold_batchnorm`]).
pub(crate) fn conv_bn_act(block: &ConvBnAct) -> Conv {
    assert!(block.folded, "the engine takes networks with their BatchNorms folded");
    conv_plain(&block.conv, block.act.into())
}

/// A folded normalised convolution over `[x, hints]`: its weights with the hint convolution's
/// (scaled by `scale`, the hint planes' scale) appended as extra input channels. The hint term is added
/// after the BatchNorm ([`crate::model::hinted`]), which folding turned into the convolution's own
/// weights and bias, so this is exact.
pub(crate) fn conv_bn_act_with_hints(block: &ConvBnAct, hint: &Conv2d, scale: f32) -> Conv {
    assert!(block.folded, "the engine takes networks with their BatchNorms folded");
    let (w, [c_out, c_in, k, _], bias) = conv_values(&block.conv);
    let (hw, [hc_out, hc_in, hk, _], _) = conv_values(hint);
    assert!(hc_out == c_out && hk == k, "the hint convolution matches its block");
    let per = k * k;
    let mut joined = Vec::with_capacity(c_out * (c_in + hc_in) * per);
    for co in 0..c_out {
        joined.extend_from_slice(&w[co * c_in * per..(co + 1) * c_in * per]);
        joined.extend(hw[co * hc_in * per..(co + 1) * hc_in * per].iter().map(|v| v * scale));
    }
    Conv::new(
        &joined,
        [c_out, c_in + hc_in, k, k],
        bias.as_deref(),
        block.conv.stride[0],
        block.act.into(),
    )
}

/// A folded normalised 3×3 convolution after a ×2 nearest upsampling, as [`UpConv`] computes it.
pub(crate) fn up_conv(block: &ConvBnAct) -> UpConv {
    assert!(block.folded, "the engine takes networks with their BatchNorms folded");
    let (w, shape, bias) = conv_values(&block.conv);
    UpConv::new(&w, shape, bias.as_deref(), block.act.into())
}
