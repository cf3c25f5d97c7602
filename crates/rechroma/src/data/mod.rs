//! Photos on disk → augmented Lab crops → burn batches of L (input) and ab (target).
//!
//! - [`scan`] finds the photos of a folder (recursively; JPEG, PNG, WebP, TIFF, BMP);
//! - [`load_rgb`] decodes one with the `image` crate, honouring its EXIF orientation, into 8-bit RGB;
//! - [`augment`] cuts the random crops the MLEU paper trains on (scale jitter, horizontal flip, rotation);
//! - [`dataset`] holds a folder of photos as a burn [`burn::data::dataset::Dataset`], with a
//!   [`burn::data::dataloader::batcher::Batcher`] and a deterministic step-indexed [`dataset::Loader`].

pub mod augment;
pub mod dataset;

pub use augment::{AugmentConfig, center_crop, random_crop};
pub use dataset::{ColorBatch, ColorBatcher, ColorItem, DatasetConfig, Loader, PhotoDataset};

use crate::fsutil::Metadata;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};
use std::path::{Path, PathBuf};

/// Default cap on the pixels a photo may declare: 200 megapixels (a 16,000 × 12,500 scan). A header
/// declaring more is refused before anything of that size is allocated.
pub const DEFAULT_MAX_PIXELS: u64 = 200_000_000;

static MAX_PIXELS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(DEFAULT_MAX_PIXELS);

/// Sets the process-wide cap on the pixels a photo may declare ([`DEFAULT_MAX_PIXELS`] until set);
/// the CLI's `--max-pixels`.
pub fn set_max_pixels(max: u64) {
    MAX_PIXELS.store(max.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// The cap on the pixels a photo may declare.
pub fn max_pixels() -> u64 {
    MAX_PIXELS.load(std::sync::atomic::Ordering::Relaxed)
}

/// File extensions read as photos (compared case-insensitively).
pub const PHOTO_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "webp", "tif", "tiff", "bmp"];

/// Errors of the data pipeline; each names the file or folder involved.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Reading the file or listing the folder failed.
    #[error("cannot read {path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an image rechroma decodes, for the reason given (ours, not a decoder's).
    #[error("{path}: cannot decode image: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The image decoder refused the file.
    #[error("{path}: cannot decode image")]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// Every photo of a folder to score or train on is grayscale.
    #[error("{path}: all {count} photos are grayscale: there is no colour to score against or learn from")]
    AllGray {
        /// The folder.
        path: PathBuf,
        /// How many photos it holds.
        count: usize,
    },
    /// A photo folder holds no photo that could be read.
    #[error("{path}: no readable photos found")]
    Empty {
        /// The folder.
        path: PathBuf,
    },
}

/// Lists the photos under `dir` (recursively, following no symlinked folders), sorted by path so the
/// order is the same on every machine.
pub fn scan(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    Ok(scan_all(dir)?.photos)
}

/// What a folder holds: the photos rechroma reads, and the other files it leaves alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    /// Regular files with one of the [`PHOTO_EXTENSIONS`], sorted.
    pub photos: Vec<PathBuf>,
    /// Every other file (GIF, SVG, HEIC, text, …), sorted.
    pub skipped: Vec<PathBuf>,
    /// Entries named like photos that are not regular files: pipes, devices, links that lead nowhere.
    pub not_files: Vec<PathBuf>,
}

impl Scan {
    /// "3 files that are not photos rechroma reads (2 .gif, 1 .svg)", or `None` when nothing was skipped.
    pub fn skipped_summary(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.skipped.is_empty() {
            let mut kinds = std::collections::BTreeMap::<String, usize>::new();
            for p in &self.skipped {
                let ext = p.extension().map_or("no extension".into(), |e| {
                    format!(".{}", e.to_string_lossy().to_lowercase())
                });
                *kinds.entry(ext).or_default() += 1;
            }
            let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
            parts.push(format!(
                "{} file(s) that are not photos rechroma reads ({})",
                self.skipped.len(),
                kinds.join(", ")
            ));
        }
        if !self.not_files.is_empty() {
            parts.push(format!(
                "{} photo name(s) that are not files (a pipe, a device or a link that leads nowhere)",
                self.not_files.len()
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Lists the photos under `dir` and the files skipped (recursively, following no symlinked folders),
/// sorted by path so the order is the same on every machine.
pub fn scan_all(dir: &Path) -> Result<Scan, DataError> {
    let io = |path: &Path, source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut out = Scan::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| io(&d, e))? {
            let entry = entry.map_err(|e| io(&d, e))?;
            let kind = entry.file_type().map_err(|e| io(&entry.path(), e))?;
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if is_photo(&path) && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                // Only regular files (or links to them): a FIFO or device named *.jpg would hang or never end.
                out.photos.push(path);
            } else if is_photo(&path) {
                out.not_files.push(path);
            } else if entry.file_name().to_string_lossy().starts_with('.') {
                // Hidden files (.DS_Store, rechroma's own lists and temporaries) are not worth a note.
            } else {
                out.skipped.push(path);
            }
        }
    }
    out.photos.sort();
    out.skipped.sort();
    out.not_files.sort();
    Ok(out)
}

/// Whether the file name has one of the [`PHOTO_EXTENSIONS`].
pub fn is_photo(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PHOTO_EXTENSIONS.iter().any(|p| p.eq_ignore_ascii_case(e)))
}

/// Decodes an image file with its EXIF orientation applied, keeping its own colour type (8/16-bit,
/// gray, RGB, alpha). The format is detected from the content, not the extension. A header declaring more
/// than [`max_pixels`] pixels is refused before the image is allocated (a 70-byte PNG can declare
/// 60000 × 60000).
pub fn load_image(path: &Path) -> Result<DynamicImage, DataError> {
    Ok(load_image_with_metadata(path)?.0)
}

/// [`load_image`], and the photo's ICC profile and EXIF block (its orientation tag reset to "normal",
/// since the orientation is applied to the pixels), for the output to carry.
pub fn load_image_with_metadata(path: &Path) -> Result<(DynamicImage, Metadata), DataError> {
    let fail = |reason: String| DataError::Decode {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(fail(
            "not a regular file (a folder, pipe or device is never read)".into(),
        ));
    }
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_image(&bytes, path)
}

/// [`load_image_with_metadata`] of an image already in memory (an upload); `name` only labels the
/// errors. The header's size is checked against [`max_pixels`] before anything is allocated, and the
/// decoder runs under `image`'s [`image::Limits`]: no allocation beyond what [`max_pixels`] pixels of
/// 16-bit RGBA need.
pub fn decode_image(bytes: &[u8], name: &Path) -> Result<(DynamicImage, Metadata), DataError> {
    let path = name;
    let fail = |reason: String| DataError::Decode {
        path: path.to_path_buf(),
        reason,
    };
    let mut reader = ImageReader::new(std::io::Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let mut limits = image::Limits::default();
    // 16-bit RGBA (8 bytes a pixel) of the largest accepted image, plus the decoders' own buffers.
    limits.max_alloc = Some(max_pixels().saturating_mul(8).saturating_add(64 << 20));
    reader.limits(limits);
    match reader.format() {
        None => return Err(fail("unknown or unsupported image format".into())),
        // The JPEG decoder fills a truncated file's missing rows with gray instead of failing: check that
        // the end-of-image marker is there (0xFFD9 cannot occur inside entropy-coded data).
        Some(ImageFormat::Jpeg)
            if !bytes[bytes.len().saturating_sub(4096)..]
                .windows(2)
                .any(|w| w == [0xFF, 0xD9]) =>
        {
            return Err(fail("truncated JPEG (no end-of-image marker)".into()));
        }
        Some(_) => {}
    }
    // Animations and multi-page TIFFs decode as their first frame or page: say so (header reads only).
    let animated = match reader.format() {
        Some(ImageFormat::Png) => image::codecs::png::PngDecoder::new(std::io::Cursor::new(&bytes[..]))
            .and_then(|d| d.is_apng())
            .unwrap_or(false),
        Some(ImageFormat::WebP) => image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(&bytes[..]))
            .map(|d| d.has_animation())
            .unwrap_or(false),
        Some(ImageFormat::Tiff) => tiff::decoder::Decoder::new(std::io::Cursor::new(&bytes[..]))
            .map(|d| d.more_images())
            .unwrap_or(false),
        _ => false,
    };
    // A decoder bug must cost one file, not the whole run.
    // What decoders say of common damage, in words a user can act on; anything else keeps the
    // decoder's own error as the cause.
    let image = |source: image::ImageError| {
        let text = source.to_string();
        let eof = matches!(&source, image::ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof);
        let reason = if eof || text.contains("fill whole buffer") || text.to_lowercase().contains("unexpected end") {
            Some("the file is truncated (it ends before the image does)")
        } else if text.contains("components cannot be zero") {
            Some("unsupported JPEG coding (lossless or hierarchical JPEG)")
        } else if text.contains("Unknown(") {
            Some("unsupported sample format (e.g. floating-point or 32-bit gray TIFF)")
        } else {
            None
        };
        match reason {
            Some(reason) => fail(reason.to_string()),
            None => DataError::Image {
                path: path.to_path_buf(),
                source,
            },
        }
    };
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut decoder = reader.into_decoder().map_err(image)?;
        let (w, h) = decoder.dimensions();
        let cap = max_pixels();
        if u64::from(w) * u64::from(h) > cap {
            return Err(fail(format!(
                "the image declares {w}×{h} pixels ({:.0} MP), more than the limit of {:.0} MP (--max-pixels)",
                f64::from(w) * f64::from(h) / 1e6,
                cap as f64 / 1e6
            )));
        }
        let orientation = decoder.orientation().map_err(image)?;
        // Metadata is a courtesy: a malformed block costs the block, not the photo.
        let icc = decoder.icc_profile().ok().flatten();
        let mut exif = decoder.exif_metadata().ok().flatten();
        if let Some(chunk) = &mut exif {
            let _ = image::metadata::Orientation::remove_from_exif_chunk(chunk);
        }
        let mut img = DynamicImage::from_decoder(decoder).map_err(image)?;
        img.apply_orientation(orientation);
        Ok((img, Metadata { icc, exif, animated }))
    }));
    match decoded {
        Ok(Ok((img, _))) if img.width() == 0 || img.height() == 0 => Err(fail("the image is empty".into())),
        Ok(result) => result,
        Err(_) => Err(fail("the decoder crashed on this file".into())),
    }
}

/// Decodes an image file to 8-bit sRGB (see [`load_image`]); alpha is dropped, gray is replicated.
pub fn load_rgb(path: &Path) -> Result<RgbImage, DataError> {
    Ok(load_image(path)?.to_rgb8())
}

/// Resizes so the shorter side is `short_side` (aspect kept), with a Lanczos-3 filter.
/// Never upscales: an image already that small or smaller is returned as is.
pub fn shrink_to_short_side(img: RgbImage, short_side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let short = w.min(h);
    if short <= short_side {
        return img;
    }
    let scale = short_side as f64 / short as f64;
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(1),
        ((h as f64 * scale).round() as u32).max(1),
    );
    resize(&img, nw, nh)
}

/// Resizes an RGB image to exactly `w × h` with a Lanczos-3 filter (fast_image_resize, SIMD).
pub fn resize(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
    let mut dst = RgbImage::new(w, h);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new()
        .resize(img, &mut dst, &options)
        .expect("source and destination are both 8-bit RGB");
    dst
}

/// A photo (or its crop) whose mean chroma √(a² + b²) is below this (Lab units) is grayscale: there is no
/// colour to score (the gray baseline would match it exactly, PSNR capped at 100 dB) or to learn from
/// (it would teach gray), so evaluation and training leave it out. JPEG noise on a gray photo stays well
/// below 1; the least colourful real photos of the dev set are above 3.
pub const GRAY_CHROMA: f32 = 1.0;
