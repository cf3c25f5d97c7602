//! Decoded photos kept for interactive re-runs (`POST /api/photos`): a new hint or setting re-runs the
//! network on the cached working-size L and recombines with a cached preview, instead of a re-upload and
//! re-decode of a 12 MP file. Bounded in bytes; the least recently used photo goes first. Keyed by a
//! 128-bit keyed hash of the file's bytes (SipHash with random keys, so a client cannot make two photos
//! collide), so sending the same photo twice keeps one copy.

use crate::fsutil::Metadata as ImageMetadata;
use image::DynamicImage;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{Arc, Mutex};

/// One cached photo.
pub(crate) struct CachedPhoto {
    /// The id clients name it by: 32 hex digits.
    pub(crate) id: String,
    /// The decoded photo at full size (EXIF orientation applied).
    pub(crate) image: Arc<DynamicImage>,
    /// Its metadata, written into full-size downloads.
    pub(crate) metadata: Arc<ImageMetadata>,
    /// The photo at most `preview_side` pixels a side.
    pub(crate) preview: Arc<DynamicImage>,
    /// Working-size L planes by working size n: (L, (w, h)).
    pub(crate) working: Mutex<HashMap<u32, Arc<(Vec<f32>, (usize, usize))>>>,
}

impl CachedPhoto {
    fn bytes(&self) -> usize {
        let planes: usize = self
            .working
            .lock()
            .map(|w| w.values().map(|p| p.0.len() * 4).sum())
            .unwrap_or(0);
        self.image.as_bytes().len() + self.preview.as_bytes().len() + planes
    }
}

/// The cache (see the module docs).
pub(crate) struct PhotoCache {
    limit: usize,
    keys: (RandomState, RandomState),
    /// Most recently used last.
    photos: Mutex<Vec<Arc<CachedPhoto>>>,
}

impl PhotoCache {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            keys: (RandomState::new(), RandomState::new()),
            photos: Mutex::new(Vec::new()),
        }
    }

    /// The id of a file's bytes.
    pub(crate) fn id_of(&self, bytes: &[u8]) -> String {
        let hash = |state: &RandomState| {
            let mut h = state.build_hasher();
            h.write(bytes);
            h.finish()
        };
        format!("{:016x}{:016x}", hash(&self.keys.0), hash(&self.keys.1))
    }

    /// The photo of `id`, now the most recently used.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<CachedPhoto>> {
        let mut photos = self.photos.lock().unwrap_or_else(|p| p.into_inner());
        let i = photos.iter().position(|p| p.id == id)?;
        let photo = photos.remove(i);
        photos.push(photo.clone());
        Some(photo)
    }

    /// Keeps `photo`, dropping the least recently used until everything fits; `false` when it alone is
    /// larger than the cache.
    pub(crate) fn insert(&self, photo: Arc<CachedPhoto>) -> bool {
        let size = photo.bytes();
        if size > self.limit {
            return false;
        }
        let mut photos = self.photos.lock().unwrap_or_else(|p| p.into_inner());
        photos.retain(|p| p.id != photo.id);
        photos.push(photo);
        self.trim(&mut photos);
        true
    }

    /// Drops the least recently used photos until the rest fit (called again after working planes grow).
    pub(crate) fn shrink(&self) {
        let mut photos = self.photos.lock().unwrap_or_else(|p| p.into_inner());
        self.trim(&mut photos);
    }

    fn trim(&self, photos: &mut Vec<Arc<CachedPhoto>>) {
        let mut total: usize = photos.iter().map(|p| p.bytes()).sum();
        while total > self.limit && photos.len() > 1 {
            total -= photos.remove(0).bytes();
        }
    }

    /// Photos kept and their bytes.
    pub(crate) fn usage(&self) -> (usize, usize) {
        let photos = self.photos.lock().unwrap_or_else(|p| p.into_inner());
        (photos.len(), photos.iter().map(|p| p.bytes()).sum())
    }

    pub(crate) fn new_photo(
        id: String,
        image: DynamicImage,
        metadata: ImageMetadata,
        preview_side: u32,
    ) -> CachedPhoto {
        let (w, h) = (image.width(), image.height());
        let scale = (f64::from(preview_side) / f64::from(w.max(h))).min(1.0);
        let preview = if scale < 1.0 {
            let (pw, ph) = (
                ((f64::from(w) * scale).round() as u32).max(1),
                ((f64::from(h) * scale).round() as u32).max(1),
            );
            image.resize_exact(pw, ph, image::imageops::FilterType::Triangle)
        } else {
            image.clone()
        };
        CachedPhoto {
            id,
            image: Arc::new(image),
            metadata: Arc::new(metadata),
            preview: Arc::new(preview),
            working: Mutex::new(HashMap::new()),
        }
    }
}
