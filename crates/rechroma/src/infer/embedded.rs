//! The default model, compiled into the library so `rechroma colorize photo.jpg` works offline with
//! nothing downloaded.
//!
//! `models/default/` (at the crate root) holds the run's `config.json` and its weights stored in half
//! precision (`model.safetensors`, written by [`narrow_to_f16`] via `rechroma export`), next to
//! `TRAINING.md` (the exact command that trained it) and the data manifest. Half precision halves the
//! repository and binary size; the weights are widened back to f32 when loaded ([`widen_to_f32`]),
//! so the model computes in f32 as it was trained.

use half::f16;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

/// The run configuration of the default model.
pub const CONFIG: &[u8] = include_bytes!("../../models/default/config.json");
/// The class prior the default model was trained with (its rebalancing weights).
pub const PRIOR: &[u8] = include_bytes!("../../models/default/prior.json");
/// The default model's weights (safetensors, f16 where lossless enough, else f32).
pub const WEIGHTS: &[u8] = include_bytes!("../../models/default/model.safetensors");

/// Largest magnitude f16 represents; tensors with larger values stay f32.
const F16_MAX: f32 = 65504.0;

/// Rewrites a safetensors file with every tensor of `from` converted by `convert` (others kept), the
/// file's metadata kept.
fn rewrite(bytes: &[u8], from: Dtype, convert: impl Fn(&[u8]) -> Option<(Dtype, Vec<u8>)>) -> Result<Vec<u8>, String> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
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
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| e.to_string())?;
    safetensors::serialize(views, meta.metadata().clone()).map_err(|e| e.to_string())
}

/// Stores every f32 tensor as f16, except tensors holding values f16 cannot represent (|v| > 65504).
pub fn narrow_to_f16(bytes: &[u8]) -> Result<Vec<u8>, String> {
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

/// Converts every f16 tensor back to f32 (a file without f16 tensors comes back unchanged).
pub fn widen_to_f32(bytes: &[u8]) -> Result<Vec<u8>, String> {
    rewrite(bytes, Dtype::F16, |data| {
        let out = data
            .chunks_exact(2)
            .flat_map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32().to_le_bytes())
            .collect();
        Some((Dtype::F32, out))
    })
}

/// Writes a run's `config.json`, `prior.json` (if any) and its weights narrowed to f16
/// ([`narrow_to_f16`]) into `out_dir`: the layout of `models/default/`, and a run folder
/// [`super::Colorizer::from_run`] loads. `edit` may change the decode settings stored with the model
/// (its defaults when colorizing). Returns the size of the written weights in bytes.
pub fn export_run(
    run_dir: &std::path::Path,
    out_dir: &std::path::Path,
    edit: impl FnOnce(&mut crate::quantize::DecodeConfig),
) -> Result<usize, super::InferError> {
    let read = |name: &str| {
        let path = run_dir.join(name);
        std::fs::read(&path).map_err(|e| super::model_err(&path, e))
    };
    let config = read("config.json")?;
    let path = run_dir.join("config.json");
    let mut c: crate::train::run::TrainConfig =
        serde_json::from_slice(&config).map_err(|e| super::model_err(&path, e))?;
    let before = c.decode;
    edit(&mut c.decode);
    // Unedited configs are copied byte for byte.
    let config = match c.decode == before {
        true => config,
        false => serde_json::to_vec_pretty(&c).expect("config serialises"),
    };
    let weights_path = run_dir.join("model.safetensors");
    let weights = narrow_to_f16(&read("model.safetensors")?).map_err(|e| super::model_err(&weights_path, e))?;
    std::fs::create_dir_all(out_dir).map_err(|e| super::model_err(out_dir, e))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = out_dir.join(name);
        crate::fsutil::write_atomic(&path, bytes).map_err(|e| super::model_err(&path, e))
    };
    write("config.json", &config)?;
    if run_dir.join("prior.json").is_file() {
        write("prior.json", &read("prior.json")?)?;
    }
    write("model.safetensors", &weights)?;
    Ok(weights.len())
}
