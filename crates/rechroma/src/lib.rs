//! rechroma: automatic colorization of grayscale photos.
//!
//! The library is organised by domain:
//! - [`color`]: exact sRGB ↔ linear RGB ↔ XYZ ↔ CIE Lab (D65) and the normalisations the models use;
//! - [`quantize`]: the 313 in-gamut ab bins of Zhang et al. 2016, soft encoding, the class prior and
//!   its rebalancing weights, and decoding a distribution back to ab (annealed mean);
//! - [`data`]: photo folders, decoding, augmentation and burn batches of L (input) and ab (target);
//! - [`metrics`]: PSNR, SSIM, colorfulness and the AuC of the cumulative ab-error curve.

pub mod color;
pub mod data;
pub mod fsutil;
pub mod import;
pub mod infer;
pub mod metrics;
pub mod model;
pub mod plot;
pub mod quantize;
pub mod train;
