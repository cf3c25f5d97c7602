//! A frozen backbone's features for training, computed by the engine: no gradient flows into a
//! frozen backbone, so burn's autodiff backend need not run it (it runs the backbone's small
//! depthwise layers several times slower than the engine).

use super::backbone::Backbone;
use super::conv::Map;
use crate::model::mleu::Mleu;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

/// An MLEU's backbone (its BatchNorms folded, as a frozen backbone's normalise with their stored
/// statistics in training too), compiled by the engine.
#[derive(Debug, Clone)]
pub struct FrozenBackbone {
    backbone: Backbone,
}

impl FrozenBackbone {
    /// The backbone of `model`, if it has one. Only for a frozen backbone: what this computes has no
    /// gradient.
    pub fn new(model: &Mleu) -> Option<Self> {
        let backbone = match (&model.backbone, &model.vgg) {
            (Some(net), _) => Backbone::efficientnet(&net.clone().fold_batchnorms()),
            (None, Some(vgg)) => Backbone::vgg16(vgg),
            (None, None) => return None,
        };
        Some(Self { backbone })
    }

    /// The five feature maps of a batch, as tensors on `l`'s device (constants: no gradient).
    ///
    /// # Shapes
    /// `l`: `[B, 1, H, W]` (Lab units) → five `[B, C_i, H/2^(i+1), W/2^(i+1)]`
    pub fn features(&self, l: &Tensor<4>) -> Vec<Tensor<4>> {
        let [b, _, h, w] = l.dims();
        let values = super::weights::values(l.clone());
        // Each photo's five maps (NHWC), the photos in parallel (each walk is parallel inside too).
        let per_photo: Vec<Vec<Map>> = values
            .par_chunks_exact(h * w)
            .map(|plane| {
                let l = Map {
                    h,
                    w,
                    c: 1,
                    data: plane.to_vec(),
                };
                let mut walk = self.backbone.walk(&l);
                (0..5).map(|_| walk.next_level()).collect()
            })
            .collect();
        let device = l.device();
        (0..5)
            .map(|level| {
                let first = &per_photo[0][level];
                let (fh, fw, c) = (first.h, first.w, first.c);
                // NHWC per photo → NCHW for the batch.
                let mut nchw = vec![0.0; b * c * fh * fw];
                nchw.par_chunks_exact_mut(c * fh * fw)
                    .zip(&per_photo)
                    .for_each(|(out, maps)| {
                        for (p, px) in maps[level].data.chunks_exact(c).enumerate() {
                            for (ch, &v) in px.iter().enumerate() {
                                out[ch * fh * fw + p] = v;
                            }
                        }
                    });
                Tensor::from_data(TensorData::new(nchw, [b, c, fh, fw]), &device)
            })
            .collect()
    }
}
