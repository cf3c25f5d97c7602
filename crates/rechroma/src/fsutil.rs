//! Atomic file output: a reader never sees a half-written file, and a failed write leaves any earlier
//! file at the path untouched.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors writing output files; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot encode image: {reason}")]
    Encode { path: PathBuf, reason: String },
}

/// Writes `bytes` to a temporary file beside `path` (same folder, so the rename is atomic), flushes it
/// to disk, then renames it over `path`. The temporary file is removed if anything fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let io = |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .ok_or_else(|| io(std::io::Error::other("not a file path")))?;
    let tmp = path.with_file_name(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Encodes `img` in the format its extension names (png, jpg, webp, tiff, bmp) and writes it atomically.
pub fn save_image_atomic(img: &image::DynamicImage, path: &Path) -> Result<(), WriteError> {
    let encode = |reason: String| WriteError::Encode {
        path: path.to_path_buf(),
        reason,
    };
    let format = image::ImageFormat::from_path(path).map_err(|e| encode(e.to_string()))?;
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, format).map_err(|e| encode(e.to_string()))?;
    write_atomic(path, bytes.get_ref())
}
