//! Atomic file output: a reader never sees a half-written file, and a failed write leaves any earlier
//! file at the path untouched.

use std::io::Write;
use std::path::{Path, PathBuf};

mod in_flight;

pub use in_flight::{InFlight, STOP_WAIT, Writing};

/// The temporary files and folders this process is writing: removed by [`stop_writing`] when the
/// process is told to stop (the CLI calls it on SIGTERM and SIGINT).
static IN_FLIGHT: InFlight = InFlight::new();

/// Records a temporary file or folder as being written by this thread until the guard is dropped
/// (see [`InFlight::begin`]; after [`stop_writing`] it never returns).
pub fn writing(path: &Path) -> Writing<'static> {
    IN_FLIGHT.begin(path)
}

/// Stops every write of this process and removes the temporary files and folders being written
/// ([`InFlight::stop`], waiting at most [`STOP_WAIT`]). For the thread that handles a stop signal,
/// which then exits: nothing half-written is left behind.
pub fn stop_writing() {
    IN_FLIGHT.stop(STOP_WAIT);
}

/// Whether the process `pid` is running (Linux: it has a `/proc` entry; elsewhere assumed running, so
/// nothing is removed).
fn alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Removes the temporary files `.NAME.PID.tmp` that an earlier rechroma process killed while writing
/// `path` left beside it (SIGKILL cannot be caught). Files of running processes are kept.
pub fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    sweep_temps(dir, Some(&name.to_string_lossy()));
}

/// Removes every temporary file `.NAME.PID.tmp` in `dir` whose process is gone (an earlier rechroma
/// killed while writing; SIGKILL cannot be caught), whatever its output's name: a batch started in a
/// folder sweeps what a killed batch left there. Returns how many were removed.
pub fn remove_stale_temps_in(dir: &Path) -> usize {
    sweep_temps(dir, None)
}

/// Removes the temporaries `.NAME.PID.tmp` of dead processes in `dir` (of output `name` only, when
/// given); returns how many.
fn sweep_temps(dir: &Path, name: Option<&str>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let pid = file
            .strip_prefix('.')
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|rest| rest.rsplit_once('.'))
            .filter(|(output, _)| name.is_none_or(|n| *output == n))
            .and_then(|(_, pid)| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !alive(pid)
            && entry.file_type().is_ok_and(|t| t.is_file())
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Errors writing output files; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Creating, writing, syncing or renaming the file failed.
    #[error("cannot write {path}")]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The image could not be encoded in the format the extension names.
    #[error("cannot encode {path}")]
    Encode {
        /// The file being written.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The extension names no format rechroma writes.
    #[error("{path}: unsupported output extension (use .png, .jpg, .webp, .tiff or .bmp)")]
    Format {
        /// The file.
        path: PathBuf,
    },
    /// The photo is larger than the format can hold.
    #[error("{path}: {format} holds at most {max} pixels a side, this photo is {width} × {height}: write PNG or TIFF")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The format's name.
        format: &'static str,
        /// Its largest side.
        max: u32,
        /// The photo's width.
        width: u32,
        /// The photo's height.
        height: u32,
    },
}

/// The largest side a WebP file holds (its header stores side − 1 in 14 bits).
pub const WEBP_MAX_SIDE: u32 = 16383;
/// The largest side a baseline JPEG holds.
pub const JPEG_MAX_SIDE: u32 = 65535;

/// Writes `bytes` to a temporary file beside `path` (same folder, so the rename is atomic), flushes it
/// to disk, then renames it over `path`. The temporary file is removed if anything fails (or the
/// process is stopped: [`stop_writing`]), and stale ones of killed processes are removed first.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let io = |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .ok_or_else(|| io(std::io::Error::other("not a file path")))?;
    remove_stale_temps(path);
    let tmp = path.with_file_name(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let writing = writing(&tmp);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    drop(writing);
    result.map_err(io)
}

/// Whether an ICC profile describes RGB data (its header's colour-space signature, bytes 16–19, is
/// `RGB `): only such a profile is written into a colorized output.
pub fn is_rgb_profile(icc: &[u8]) -> bool {
    icc.get(16..20) == Some(b"RGB ")
}

/// JPEG quality of written files (the `image` crate's default, 75, shows blocking in smooth skies).
pub const JPEG_QUALITY: u8 = 95;

/// What a photo carries besides its pixels, written back into the output where the format allows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    /// The ICC colour profile (PNG, JPEG, WebP, TIFF keep it).
    pub icc: Option<Vec<u8>>,
    /// The EXIF block, orientation tag reset (PNG, JPEG, WebP keep it).
    pub exif: Option<Vec<u8>>,
    /// The file holds several images (APNG, animated WebP, multi-page TIFF): only the first was decoded.
    pub animated: bool,
}

/// How [`save_image_atomic_with`] encodes.
#[derive(Debug, Clone, Copy)]
pub struct SaveOptions<'a> {
    /// Metadata to embed.
    pub metadata: Option<&'a Metadata>,
    /// JPEG quality, 1–100 (WebP is written lossless).
    pub jpeg_quality: u8,
}

impl Default for SaveOptions<'_> {
    fn default() -> Self {
        Self {
            metadata: None,
            jpeg_quality: JPEG_QUALITY,
        }
    }
}

/// Encodes `img` in the format its extension names (png, jpg, webp, tiff, bmp) and writes it atomically.
/// What the format cannot store is converted first: JPEG, WebP and BMP get 8 bits per channel, JPEG
/// loses alpha; PNG and TIFF keep 16 bits and alpha. JPEGs are written at [`JPEG_QUALITY`].
pub fn save_image_atomic(img: &image::DynamicImage, path: &Path) -> Result<(), WriteError> {
    save_image_atomic_with(img, path, &SaveOptions::default())
}

/// [`save_image_atomic`] with metadata and a JPEG quality.
pub fn save_image_atomic_with(img: &image::DynamicImage, path: &Path, options: &SaveOptions) -> Result<(), WriteError> {
    let format = output_format(path)?;
    let (name, max) = match format {
        image::ImageFormat::WebP => ("WebP", WEBP_MAX_SIDE),
        image::ImageFormat::Jpeg => ("JPEG", JPEG_MAX_SIDE),
        _ => ("", u32::MAX),
    };
    if img.width() > max || img.height() > max {
        return Err(WriteError::TooLarge {
            path: path.to_path_buf(),
            format: name,
            max,
            width: img.width(),
            height: img.height(),
        });
    }
    let bytes = encode_image(img, format, options).map_err(|source| WriteError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &bytes)
}

/// Encodes `img` in memory as `format` (PNG, JPEG, WebP, TIFF; anything else as BMP), converting what
/// the format cannot store as [`save_image_atomic`] says, with the metadata and JPEG quality of `options`.
pub fn encode_image(
    img: &image::DynamicImage,
    format: image::ImageFormat,
    options: &SaveOptions,
) -> Result<Vec<u8>, image::ImageError> {
    use image::codecs::{bmp::BmpEncoder, jpeg::JpegEncoder, png::PngEncoder, tiff::TiffEncoder, webp::WebPEncoder};
    use image::{DynamicImage, ImageEncoder, ImageFormat};
    let wide = !matches!(
        img,
        DynamicImage::ImageLuma8(_)
            | DynamicImage::ImageLumaA8(_)
            | DynamicImage::ImageRgb8(_)
            | DynamicImage::ImageRgba8(_)
    );
    let converted = match format {
        ImageFormat::Jpeg if img.color().has_alpha() || wide => Some(DynamicImage::ImageRgb8(img.to_rgb8())),
        ImageFormat::WebP | ImageFormat::Bmp if wide && img.color().has_alpha() => {
            Some(DynamicImage::ImageRgba8(img.to_rgba8()))
        }
        ImageFormat::WebP | ImageFormat::Bmp if wide => Some(DynamicImage::ImageRgb8(img.to_rgb8())),
        _ => None,
    };
    let img = converted.as_ref().unwrap_or(img);
    let mut bytes = std::io::Cursor::new(Vec::new());
    // Each encoder takes what metadata it can store; the rest is dropped (an unsupported block is not an
    // error: the pixels are what was asked for).
    fn with_metadata<E: ImageEncoder>(mut encoder: E, metadata: Option<&Metadata>) -> E {
        if let Some(m) = metadata {
            // Only an RGB profile describes the RGB output: a gray one (sGray of a grayscale JPEG) would
            // be rejected or misread by colour-managed software.
            if let Some(icc) = m.icc.as_ref().filter(|icc| is_rgb_profile(icc)) {
                let _ = encoder.set_icc_profile(icc.clone());
            }
            if let Some(exif) = &m.exif {
                let _ = encoder.set_exif_metadata(exif.clone());
            }
        }
        encoder
    }
    let m = options.metadata;
    let written = match format {
        ImageFormat::Jpeg => img.write_with_encoder(with_metadata(
            JpegEncoder::new_with_quality(&mut bytes, options.jpeg_quality.clamp(1, 100)),
            m,
        )),
        ImageFormat::Png => img.write_with_encoder(with_metadata(PngEncoder::new(&mut bytes), m)),
        ImageFormat::WebP => img.write_with_encoder(with_metadata(WebPEncoder::new_lossless(&mut bytes), m)),
        ImageFormat::Tiff => img.write_with_encoder(with_metadata(TiffEncoder::new(&mut bytes), m)),
        _ => img.write_with_encoder(BmpEncoder::new(&mut bytes)),
    };
    written?;
    Ok(bytes.into_inner())
}

/// The image format an output path's extension names, if rechroma can write it.
pub fn output_format(path: &Path) -> Result<image::ImageFormat, WriteError> {
    use image::ImageFormat;
    match ImageFormat::from_path(path) {
        Ok(f @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Tiff | ImageFormat::Bmp)) => {
            Ok(f)
        }
        _ => Err(WriteError::Format {
            path: path.to_path_buf(),
        }),
    }
}

/// The cause of one of rechroma's errors when it comes from another crate: kept as the error's
/// `source()`, so the CLI prints the whole chain.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;
