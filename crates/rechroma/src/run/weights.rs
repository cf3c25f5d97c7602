//! Weight files: safetensors in and out of burn modules, and the half-precision storage of exported
//! models ([`narrow_to_f16`], [`widen_to_f32`]).

use super::RunError;
use crate::import::load_store;
use burn::module::Module;
use burn::store::{BurnpackStore, ModuleSnapshot, SafetensorsStore};
use half::f16;
use rayon::prelude::*;
use safetensors::{Dtype, SafeTensorError, SafeTensors, tensor::TensorView};
use std::path::Path;

/// Largest magnitude f16 represents; tensors with larger values stay f32.
const F16_MAX: f32 = 65504.0;

/// Rewrites a safetensors file with every tensor of `from` converted by `convert` (others kept), the
/// file's metadata kept.
fn rewrite(
    bytes: &[u8],
    from: Dtype,
    convert: impl Fn(&[u8]) -> Option<(Dtype, Vec<u8>)>,
) -> Result<Vec<u8>, SafeTensorError> {
    let (_, meta) = SafeTensors::read_metadata(bytes)?;
    let tensors = SafeTensors::deserialize(bytes)?;
    let converted: Vec<(String, Dtype, Vec<usize>, std::borrow::Cow<[u8]>)> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let shape = view.shape().to_vec();
            match (view.dtype() == from).then(|| convert(view.data())).flatten() {
                Some((dtype, data)) => (name, dtype, shape, data.into()),
                None => (name, view.dtype(), shape, view.data().into()),
            }
        })
        .collect();
    let views = converted
        .iter()
        .map(|(name, dtype, shape, data)| Ok((name.as_str(), TensorView::new(*dtype, shape.clone(), data)?)))
        .collect::<Result<Vec<_>, SafeTensorError>>()?;
    safetensors::serialize(views, meta.metadata().clone())
}

/// Stores every f32 tensor as f16, except tensors holding values f16 cannot represent (|v| > 65504).
pub fn narrow_to_f16(bytes: &[u8]) -> Result<Vec<u8>, SafeTensorError> {
    rewrite(bytes, Dtype::F32, |data| {
        let values: Vec<f32> = data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        values.iter().all(|v| v.abs() <= F16_MAX).then(|| {
            let out = values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect();
            (Dtype::F16, out)
        })
    })
}

/// Little-endian f16 bytes → f32 values, through typed slices so the conversion runs on the CPU's
/// half-precision instructions (F16C) where it has them.
fn f16_to_f32(data: &[u8]) -> Vec<f32> {
    use half::slice::HalfFloatSliceExt;
    let halves: Vec<f16> = data.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]])).collect();
    let mut wide = vec![0f32; halves.len()];
    halves.convert_to_f32_slice(&mut wide);
    wide
}

/// Converts every f16 tensor back to f32 (a file without f16 tensors comes back unchanged).
pub fn widen_to_f32(bytes: &[u8]) -> Result<Vec<u8>, SafeTensorError> {
    rewrite(bytes, Dtype::F16, |data| {
        let wide = f16_to_f32(data);
        let mut out = Vec::with_capacity(4 * wide.len());
        for v in &wide {
            out.extend_from_slice(&v.to_le_bytes());
        }
        Some((Dtype::F32, out))
    })
}

/// Loads safetensors bytes (f32, or f16 as [`narrow_to_f16`] writes them) into `module`; `path` names
/// them in errors. Every tensor of the module must be there with its shape.
pub fn load_safetensors<M: Module>(mut module: M, bytes: &[u8], path: &Path) -> Result<M, RunError> {
    let bad = |source| RunError::Safetensors {
        path: path.to_path_buf(),
        source,
    };
    let file = SafeTensors::deserialize(bytes).map_err(bad)?;
    let tensors = file.tensors();
    if tensors
        .iter()
        .any(|(_, v)| !matches!(v.dtype(), Dtype::F32 | Dtype::F16))
    {
        return load_through_store(module, bytes, path);
    }
    // Each tensor decoded once (f16 widened on the CPU's half-precision instructions), checked for NaN
    // and infinities, and applied in one pass: burn-store's SafetensorsStore re-reads the file's header
    // for every tensor it loads, which made loading the default model take 0.14 s.
    // The tensors in parallel (decoding 11 M halves is a share of a process's start).
    let decoded: Vec<(String, Vec<usize>, Vec<f32>)> = tensors
        .into_par_iter()
        .map(|(name, view)| {
            let data = view.data();
            let values: Vec<f32> = match view.dtype() {
                Dtype::F16 => f16_to_f32(data),
                _ => data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            };
            (name, view.shape().to_vec(), values)
        })
        .collect();
    let mut snapshots = Vec::with_capacity(decoded.len());
    for (name, shape, values) in decoded {
        if values.iter().any(|v| !v.is_finite()) {
            return Err(RunError::NonFinite {
                path: path.to_path_buf(),
                tensor: name,
            });
        }
        // Handed over on demand, once: burn-store copies a resident tensor's bytes each time it
        // looks one up (44 MB, a third of loading the default model), a deferred one only its handle.
        let dtype = burn::tensor::DType::F32;
        let data = std::sync::Mutex::new(Some(burn::tensor::TensorData::new(values, shape.clone())));
        snapshots.push(burn::store::bridge::deferred(
            name,
            dtype,
            shape.into(),
            None,
            move || {
                data.lock().unwrap_or_else(|p| p.into_inner()).take().ok_or_else(|| {
                    burn::store::burn_pack::Error::ValidationError("a tensor read twice while loading".into())
                })
            },
        ));
    }
    let result = module.apply(snapshots, None, None, false);
    crate::import::check_applied(&result, path)?;
    Ok(module)
}

/// [`load_safetensors`] through burn-store, for files with tensors of other types than f32 and f16.
fn load_through_store<M: Module>(module: M, bytes: &[u8], path: &Path) -> Result<M, RunError> {
    let mut store = SafetensorsStore::from_bytes(Some(bytes.to_vec()))
        .with_from_adapter(burn::store::FloatCastAdapter::to(burn::tensor::DType::F32));
    Ok(load_store(module, &mut store, path)?)
}

/// Brings every BatchNorm running statistic of `module` up to date. burn's `RunningState` keeps the
/// latest update of each thread aside and folds it in lazily (at the next update or forward), while
/// saving reads the folded value: without this, a checkpoint holds the statistics of one step earlier
/// and a resumed run drifts from the uninterrupted one. `valid()` folds them in place (the state is
/// shared by the module and its copies); folding early changes no later value.
fn sync_running_states<M: Module>(module: &M) {
    let _ = module.valid();
}

/// Saves a module's weights as safetensors, atomically.
pub fn save_safetensors<M: Module>(module: &M, path: &Path) -> Result<(), RunError> {
    sync_running_states(module);
    let mut store = SafetensorsStore::from_bytes(None);
    let save = |e: String| RunError::Save {
        path: path.to_path_buf(),
        source: e.into(),
    };
    module.save_into(&mut store).map_err(|e| save(e.to_string()))?;
    let bytes = store.get_bytes().map_err(|e| save(e.to_string()))?;
    Ok(crate::fsutil::write_atomic(path, &bytes)?)
}

/// Saves a module as burnpack, which keeps the parameter ids an optimiser's state is keyed by.
pub fn save_burnpack<M: Module>(module: &M, path: &Path) -> Result<(), RunError> {
    sync_running_states(module);
    let mut store = BurnpackStore::from_file(path).overwrite(true);
    module.save_into(&mut store).map_err(|e| RunError::Save {
        path: path.to_path_buf(),
        source: e.to_string().into(),
    })
}

/// Loads a burnpack file written by [`save_burnpack`] into `module`.
pub fn load_burnpack<M: Module>(module: M, path: &Path) -> Result<M, RunError> {
    Ok(load_store(module, &mut BurnpackStore::from_file(path), path)?)
}
