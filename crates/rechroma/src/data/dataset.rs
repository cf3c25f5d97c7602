//! A folder of photos as a burn dataset of augmented Lab crops, its batcher, and a deterministic loader.
//!
//! Randomness is a pure function of (seed, epoch, photo index): sample `i` of epoch `e` is always the
//! same crop, and the loader's batch `s` is always the same batch. A training run resumed at step `s`
//! therefore sees exactly the data it would have seen without the interruption.

use super::{AugmentConfig, DataError, load_rgb, random_crop, scan, shrink_to_short_side};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How a photo folder is read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DatasetConfig {
    /// Augmentation (crop size, scale jitter, flip, rotation).
    pub augment: AugmentConfig,
    /// Base seed of every random choice.
    pub seed: u64,
    /// Keep the decoded photos (shrunk to [`AugmentConfig::source_short_side`]) in memory instead of
    /// decoding a file for every sample. Default true: ~0.8 MB per photo at the default crop size.
    pub cache: bool,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        Self {
            augment: AugmentConfig::default(),
            seed: 0x5EED,
            cache: true,
        }
    }
}

/// One training sample: the L plane (input) and the a, b planes (target) of a square crop,
/// in CIE Lab units (L ∈ [0, 100]).
#[derive(Debug, Clone, PartialEq)]
pub struct ColorItem {
    /// Side of the square crop, in pixels.
    pub size: u32,
    /// `size²` values.
    pub l: Vec<f32>,
    /// `2·size²` values: the a plane, then the b plane.
    pub ab: Vec<f32>,
}

enum Source {
    Cached(RgbImage),
    File,
}

/// The photos of a folder, read once to weed out unreadable files.
pub struct PhotoDataset {
    paths: Vec<PathBuf>,
    sources: Vec<Source>,
    skipped: Vec<DataError>,
    config: DatasetConfig,
    epoch: AtomicU64,
}

/// SplitMix64: mixes (seed, epoch, index) into a well-spread 64-bit seed.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl PhotoDataset {
    /// Scans `dir` and decodes every photo in parallel; `progress(done, total)` is called as files are
    /// read. Files that cannot be decoded are reported once (tracing `warn`), kept in
    /// [`Self::skipped`], and left out. An error only if the folder cannot be read or holds no photo.
    pub fn open(dir: &Path, config: DatasetConfig, progress: impl Fn(usize, usize) + Sync) -> Result<Self, DataError> {
        let files = scan(dir)?;
        let total = files.len();
        let done = AtomicU64::new(0);
        let short = config.augment.source_short_side();
        let read: Vec<(PathBuf, Result<Source, DataError>)> = files
            .into_par_iter()
            .map(|path| {
                let img = load_rgb(&path).map(|img| {
                    if config.cache {
                        Source::Cached(shrink_to_short_side(img, short))
                    } else {
                        Source::File
                    }
                });
                progress(done.fetch_add(1, Ordering::Relaxed) as usize + 1, total);
                (path, img)
            })
            .collect();
        let (mut paths, mut sources, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
        let mut gray = 0;
        for (path, source) in read {
            match source {
                // A grayscale photo would teach gray: left out (cached photos are checked at once).
                Ok(Source::Cached(img))
                    if crate::color::LabImage::from_rgb8(&img).mean_chroma() < super::GRAY_CHROMA =>
                {
                    tracing::warn!("skipping {}: grayscale, no colour to learn from", path.display());
                    gray += 1;
                }
                Ok(s) => {
                    paths.push(path);
                    sources.push(s);
                }
                Err(e) => {
                    tracing::warn!("skipping {e}");
                    skipped.push(e);
                }
            }
        }
        if paths.is_empty() && gray > 0 {
            return Err(DataError::AllGray {
                path: dir.to_path_buf(),
                count: gray,
            });
        }
        if paths.is_empty() {
            return Err(DataError::Empty {
                path: dir.to_path_buf(),
            });
        }
        Ok(Self {
            paths,
            sources,
            skipped,
            config,
            epoch: AtomicU64::new(0),
        })
    }

    /// Paths of the usable photos, in index order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The files that could not be read, with the reason.
    pub fn skipped(&self) -> &[DataError] {
        &self.skipped
    }

    /// The configuration the dataset was opened with.
    pub fn config(&self) -> &DatasetConfig {
        &self.config
    }

    /// Sets the epoch [`Dataset::get`] draws its augmentation for.
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    /// The photo at `index` as 8-bit RGB (shrunk as in the cache).
    pub fn photo(&self, index: usize) -> Result<RgbImage, DataError> {
        match &self.sources[index] {
            Source::Cached(img) => Ok(img.clone()),
            Source::File => Ok(shrink_to_short_side(
                load_rgb(&self.paths[index])?,
                self.config.augment.source_short_side(),
            )),
        }
    }

    /// Sample `index` of `epoch`: a deterministic random crop (see the module docs).
    pub fn sample(&self, index: usize, epoch: u64) -> Result<ColorItem, DataError> {
        let seed = mix(mix(mix(self.config.seed) ^ epoch) ^ index as u64);
        let mut rng = StdRng::seed_from_u64(seed);
        let lab = match &self.sources[index] {
            Source::Cached(img) => random_crop(img, &self.config.augment, &mut rng),
            Source::File => random_crop(&self.photo(index)?, &self.config.augment, &mut rng),
        };
        let n = lab.pixels();
        let mut data = lab.data;
        let ab = data.split_off(n);
        Ok(ColorItem {
            size: lab.width,
            l: data,
            ab,
        })
    }
}

impl Dataset<ColorItem> for PhotoDataset {
    fn get(&self, index: usize) -> Result<ColorItem, DatasetError> {
        self.sample(index, self.epoch.load(Ordering::Relaxed))
            .map_err(DatasetError::new)
    }

    fn len(&self) -> usize {
        self.paths.len()
    }
}

/// A batch on a device: L `[B, 1, S, S]` and ab `[B, 2, S, S]`, in Lab units.
#[derive(Debug, Clone)]
pub struct ColorBatch {
    /// Lightness L `[B, 1, S, S]`, in [0, 100].
    pub l: Tensor<4>,
    /// Chrominance a, b `[B, 2, S, S]`.
    pub ab: Tensor<4>,
    /// Colour hints `[B, 3, S, S]` (a/110, b/110, mask; see [`crate::hints`]) for a hint-taking model,
    /// drawn from `ab` by the training loop; `None` for no hints.
    pub hints: Option<Tensor<4>>,
}

/// Stacks [`ColorItem`]s of one size into a [`ColorBatch`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ColorBatcher;

impl Batcher<ColorItem, ColorBatch> for ColorBatcher {
    /// # Shapes
    /// items: B × (S², 2·S²) → l `[B, 1, S, S]`, ab `[B, 2, S, S]`
    fn batch(&self, items: Vec<ColorItem>, device: &Device) -> ColorBatch {
        let b = items.len();
        let s = items.first().map_or(0, |i| i.size as usize);
        assert!(
            items.iter().all(|i| i.size as usize == s),
            "all items of a batch must have the same size"
        );
        let mut l = Vec::with_capacity(b * s * s);
        let mut ab = Vec::with_capacity(2 * b * s * s);
        for item in &items {
            l.extend_from_slice(&item.l);
            ab.extend_from_slice(&item.ab);
        }
        ColorBatch {
            l: Tensor::from_data(TensorData::new(l, [b, 1, s, s]), device),
            ab: Tensor::from_data(TensorData::new(ab, [b, 2, s, s]), device),
            hints: None,
        }
    }
}

/// Step-indexed batches: step `s` is batch `s mod n` of epoch `s div n` (n = batches per epoch; the
/// last incomplete batch of an epoch is dropped), photos shuffled per epoch by (seed, epoch).
pub struct Loader<'a> {
    dataset: &'a PhotoDataset,
    batch_size: usize,
}

impl<'a> Loader<'a> {
    /// `batch_size` is capped at the number of photos.
    pub fn new(dataset: &'a PhotoDataset, batch_size: usize) -> Self {
        Self {
            dataset,
            batch_size: batch_size.clamp(1, dataset.len()),
        }
    }

    /// Photos per batch (at least 1, at most the number of photos).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Complete batches per epoch (the last incomplete batch is dropped).
    pub fn batches_per_epoch(&self) -> usize {
        self.dataset.len() / self.batch_size
    }

    /// The photo order of an epoch.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(mix(self.dataset.config.seed ^ mix(epoch))));
        order
    }

    /// The items of training step `step`, produced in parallel.
    pub fn items(&self, step: u64) -> Result<Vec<ColorItem>, DataError> {
        let per_epoch = self.batches_per_epoch() as u64;
        let (epoch, b) = (step / per_epoch, (step % per_epoch) as usize);
        let order = self.order(epoch);
        order[b * self.batch_size..(b + 1) * self.batch_size]
            .par_iter()
            .map(|&i| self.dataset.sample(i, epoch))
            .collect()
    }

    /// The batch of training step `step` on `device`.
    pub fn batch(&self, step: u64, device: &Device) -> Result<ColorBatch, DataError> {
        Ok(ColorBatcher.batch(self.items(step)?, device))
    }
}
