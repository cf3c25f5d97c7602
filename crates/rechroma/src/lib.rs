//! rechroma: automatic colorization of grayscale photos.
//!
//! The library is organised by domain, and its modules depend on each other one way only:
//!
//! ```text
//! color, quantize, data, metrics, fsutil, hints  →  model  →  import  →  run  →  predict  →  evaluate, plot
//!                                                   →  onnx, engine        →  train | infer  →  serve
//! ```
//! - [`color`]: exact sRGB ↔ linear RGB ↔ XYZ ↔ CIE Lab (D65), the gamut, and the models' normalisations;
//! - [`quantize`]: the 313 in-gamut ab bins of Zhang et al. 2016, soft encoding, the class prior and
//!   its rebalancing weights, and decoding a distribution back to ab ([`quantize::decode`]);
//! - [`data`]: photo folders, decoding (with limits), augmentation and burn batches of L and ab;
//! - [`metrics`]: PSNR, SSIM, colorfulness and the AuC of the cumulative ab-error curve;
//! - [`fsutil`]: atomic output files;
//! - [`hints`]: colour hints (Zhang et al. 2017) — the users' JSON format, their input planes, the
//!   hints training draws from the truth, and their spreading over regions after the network;
//! - [`model`]: the networks (MLEU, ChromaGAN's generator and critic, their backbones) and
//!   [`ModelConfig`], which of them a model is;
//! - [`onnx`]: an MLEU network as an ONNX graph;
//! - [`engine`]: an MLEU network compiled for inference on the CPU, which colorizing and validation run
//!   (and which computes a frozen backbone's features for CPU training);
//! - [`import`]: pretrained weights in PyTorch layouts into the networks;
//! - [`run`]: the run folder — [`RunConfig`] (model, training, decoding), loading a trained [`run::Model`],
//!   export;
//! - [`predict`]: a network's output to ab at the working size (decoding, vividness);
//! - [`evaluate`]: the fixed evaluation protocol against the gray baseline;
//! - [`plot`]: the prior's and a run's pictures;
//! - [`train`](mod@train): the training loop, losses and checkpoints; [`infer`]: the [`Colorizer`] of full-size
//!   photos. Neither imports the other;
//! - [`serve`] (cargo feature `serve`, on by default): the local web page and HTTP API over [`infer`].

#![warn(missing_docs)]

pub mod color;
pub mod data;
pub mod engine;
pub mod evaluate;
pub mod fsutil;
pub mod hints;
pub mod import;
pub mod infer;
pub mod metrics;
pub mod model;
pub mod onnx;
pub mod plot;
pub mod predict;
pub mod quantize;
pub mod run;
#[cfg(feature = "serve")]
pub mod serve;
pub mod train;

pub use evaluate::{Report, Scores, ValidationSet};
pub use infer::{ColorizeOptions, Colorized, Colorizer, InferError};
pub use model::{Architecture, ModelConfig};
pub use quantize::{DecodeConfig, Decoding, Gamut, Prior};
pub use run::{RunConfig, RunError, TrainConfig};
pub use train::{TrainError, train};

/// An error and its causes on one line, "outer: inner: innermost" (what `anyhow`'s `{:#}` prints), for
/// messages collected per photo (the CLI) or answered as JSON (`serve`). A cause whose text the line
/// already holds (decoders often repeat their source in their own message) is not printed twice.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = one_line(&e.to_string());
    let mut source = e.source();
    while let Some(s) = source {
        let text = one_line(&s.to_string());
        if !text.is_empty() && !line.contains(&text) {
            if !line.ends_with(':') {
                line.push(':');
            }
            line.push(' ');
            line.push_str(&text);
        }
        source = s.source();
    }
    line
}

/// A message on one line: decoders' multi-line texts (a WebP over 16383 pixels wide printed its reason on
/// a second line) are joined with "; " (with a space after a line that ends in a colon), so one bad file
/// gives one line.
pub fn one_line(message: &str) -> String {
    let mut out = String::new();
    for line in message.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(line);
    }
    out
}
