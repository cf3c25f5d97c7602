//! Inference form of the networks: every BatchNorm folded into the convolution before it
//! ([`super::blocks::ConvBnAct::fold_batchnorm`]), so a forward pass makes one pass over each layer's
//! activations fewer. Colorizing uses it; training never does (folded BatchNorms no longer learn).

use super::blocks::ConvBnAct;
use super::efficientnet::EfficientNet;
use super::mleu::Mleu;

fn fold(block: &mut ConvBnAct) {
    *block = block.clone().fold_batchnorm();
}

impl EfficientNet {
    /// Every BatchNorm folded into its convolution (for inference).
    pub fn fold_batchnorms(mut self) -> Self {
        fold(&mut self.conv_stem);
        for b in &mut self.blocks {
            if let Some(e) = &mut b.expand_conv {
                fold(e);
            }
            fold(&mut b.depthwise_conv);
            fold(&mut b.project_conv);
        }
        fold(&mut self.conv_head);
        self
    }
}

impl Mleu {
    /// Every normalised convolution of the U-Net (encoder, backbone embeddings, decoder), not the
    /// backbone's.
    pub fn unet_conv_bns_mut(&mut self) -> impl Iterator<Item = &mut ConvBnAct> {
        let encoder = self.encoder.iter_mut().flat_map(|b| [&mut b.conv1, &mut b.conv2]);
        let decoder = self.decoder.iter_mut().flat_map(|b| [&mut b.up_conv, &mut b.fuse_conv]);
        encoder.chain(self.embed.iter_mut()).chain(decoder)
    }

    /// Every BatchNorm of the U-Net and its EfficientNet backbone folded into its convolution (for
    /// inference; the VGG backbone has none).
    pub fn fold_batchnorms(mut self) -> Self {
        self.unet_conv_bns_mut().for_each(fold);
        self.backbone = self.backbone.map(EfficientNet::fold_batchnorms);
        self
    }
}
