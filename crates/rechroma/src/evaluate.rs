//! Evaluation: the fixed protocol on a photo folder, for the model and the gray baseline. Used by
//! validation during training and by `rechroma eval`, so both report the same numbers.
//!
//! Each photo is resized so its shorter side is the working size and centre-cropped to a square
//! ([`crate::data::center_crop`]). The model predicts ab from L; the prediction is recombined with the
//! photo's own L and scored against the truth with PSNR, SSIM, colorfulness and AuC
//! ([`crate::metrics`]). The gray baseline is the same L with ab = 0.

use crate::color::{LabImage, fit_planes_to_gamut};
use crate::data::{DataError, center_crop, load_rgb, scan};
use crate::metrics;
use crate::quantize::Gamut;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Validation photos, cropped once, with what does not depend on the model (the gray baseline and the
/// truth's colorfulness) computed once too.
pub struct ValidationSet {
    /// Each photo's path relative to the folder.
    pub names: Vec<String>,
    /// The square crops, in colour (the truth).
    pub truth: Vec<RgbImage>,
    /// The crops in Lab (the model sees their L).
    pub lab: Vec<LabImage>,
    /// The gray baseline: each photo's L with ab = 0.
    pub gray: Vec<RgbImage>,
    /// The gray baseline's mean scores.
    pub gray_scores: Scores,
    /// The gray baseline's scores, photo by photo.
    pub gray_photo_scores: Vec<Scores>,
    /// Mean colorfulness of the truth.
    pub truth_colorfulness: f64,
    /// Side of the crops.
    pub size: u32,
    /// Photos left out because they have no colour to score (see [`GRAY_CHROMA`]).
    pub skipped_gray: Vec<String>,
}

pub use crate::data::GRAY_CHROMA;

impl ValidationSet {
    /// Reads the photos of `dir` (unreadable ones are reported with `tracing::warn` and skipped, and
    /// grayscale ones listed in [`Self::skipped_gray`]).
    pub fn open(dir: &Path, size: u32) -> Result<Self, DataError> {
        let (mut names, mut truth, mut lab, mut skipped_gray) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for path in scan(dir)? {
            let name = path.strip_prefix(dir).unwrap_or(&path).display().to_string();
            match load_rgb(&path) {
                Ok(img) => {
                    let crop = center_crop(&img, size);
                    let crop_lab = LabImage::from_rgb8(&crop);
                    if crop_lab.mean_chroma() < GRAY_CHROMA {
                        skipped_gray.push(name);
                        continue;
                    }
                    lab.push(crop_lab);
                    truth.push(crop);
                    names.push(name);
                }
                Err(e) => tracing::warn!("skipping {}", crate::error_chain(&e)),
            }
        }
        if names.is_empty() && !skipped_gray.is_empty() {
            return Err(DataError::AllGray {
                path: dir.to_path_buf(),
                count: skipped_gray.len(),
            });
        }
        if names.is_empty() {
            return Err(DataError::Empty {
                path: dir.to_path_buf(),
            });
        }
        let (gray_scores, gray): (Vec<Scores>, Vec<RgbImage>) = truth
            .iter()
            .zip(&lab)
            .map(|(t, l)| score(t, l, &vec![0.0; 2 * l.pixels()]))
            .unzip();
        let truth_colorfulness = truth.iter().map(metrics::colorfulness).sum::<f64>() / truth.len() as f64;
        Ok(Self {
            names,
            truth,
            lab,
            gray,
            gray_scores: mean(&gray_scores),
            gray_photo_scores: gray_scores,
            skipped_gray,
            truth_colorfulness,
            size,
        })
    }
}

/// Mean scores over a validation set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// PSNR on 8-bit RGB, dB (per photo, then the mean).
    pub psnr: f64,
    /// SSIM.
    pub ssim: f64,
    /// Hasler & Süsstrunk's colorfulness.
    pub colorfulness: f64,
    /// Area under the cumulative ab-error curve (0–1).
    pub auc: f64,
}

/// Model and gray-baseline scores, and the ground truth's colorfulness.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The model's mean scores.
    pub model: Scores,
    /// The gray baseline's mean scores.
    pub gray: Scores,
    /// Mean colorfulness of the truth.
    pub truth_colorfulness: f64,
    /// Share of the photos (0–1) on which the model's PSNR is above the gray baseline's.
    #[serde(default)]
    pub beats_gray: f64,
    /// Median over the photos of the model's PSNR minus the gray baseline's, in dB.
    #[serde(default)]
    pub median_gain_db: f64,
}

/// The result of scoring a predictor on a [`ValidationSet`].
pub struct Validated {
    /// Mean scores, share of photos above gray, median gain.
    pub report: Report,
    /// The colorized crops, in the set's order.
    pub predictions: Vec<RgbImage>,
    /// The model's scores, photo by photo (the gray baseline's are [`ValidationSet::gray_photo_scores`]).
    pub photo_scores: Vec<Scores>,
}

/// Share of photos whose model PSNR exceeds the gray PSNR, and the median PSNR gain (dB).
/// PSNRs are capped at 100 dB as in the means.
pub fn gains(model: &[Scores], gray: &[Scores]) -> (f64, f64) {
    assert_eq!(model.len(), gray.len(), "one gray score per photo");
    if model.is_empty() {
        return (0.0, 0.0);
    }
    let mut g: Vec<f64> = model
        .iter()
        .zip(gray)
        .map(|(m, g)| m.psnr.min(100.0) - g.psnr.min(100.0))
        .collect();
    let above = g.iter().filter(|&&d| d > 0.0).count() as f64 / g.len() as f64;
    g.sort_by(f64::total_cmp);
    let n = g.len();
    let median = if n % 2 == 1 {
        g[n / 2]
    } else {
        0.5 * (g[n / 2 - 1] + g[n / 2])
    };
    (above, median)
}

fn score(truth: &RgbImage, truth_lab: &LabImage, ab: &[f32]) -> (Scores, RgbImage) {
    let n = truth_lab.pixels();
    let mut data = truth_lab.l().to_vec();
    data.extend_from_slice(ab);
    let pred = LabImage {
        width: truth_lab.width,
        height: truth_lab.height,
        data,
    };
    let rgb = pred.to_rgb8();
    let (ta, tb) = truth_lab.ab().split_at(n);
    let (pa, pb) = ab.split_at(n);
    let s = Scores {
        psnr: metrics::psnr(truth, &rgb),
        ssim: metrics::ssim(truth, &rgb),
        colorfulness: metrics::colorfulness(&rgb),
        auc: metrics::auc(ta, tb, pa, pb),
    };
    (s, rgb)
}

fn mean(scores: &[Scores]) -> Scores {
    let n = scores.len().max(1) as f64;
    // PSNR is averaged per image; an exact match (∞) is capped at 100 dB so one image cannot dominate.
    Scores {
        psnr: scores.iter().map(|s| s.psnr.min(100.0)).sum::<f64>() / n,
        ssim: scores.iter().map(|s| s.ssim).sum::<f64>() / n,
        colorfulness: scores.iter().map(|s| s.colorfulness).sum::<f64>() / n,
        auc: scores.iter().map(|s| s.auc).sum::<f64>() / n,
    }
}

/// Scores a predictor on `set` next to the set's gray baseline; also returns the colorized crops and the
/// per-photo scores. `predict(truth, truth_lab)` gives the planar ab (Lab units) predicted from the
/// photo's L.
pub fn validate_with<E>(
    set: &ValidationSet,
    predict: impl Fn(&RgbImage, &LabImage) -> Result<Vec<f32>, E>,
) -> Result<Validated, E> {
    let (scores, preds): (Vec<Scores>, Vec<RgbImage>) = set
        .truth
        .iter()
        .zip(&set.lab)
        .map(|(truth, lab)| Ok(score(truth, lab, &predict(truth, lab)?)))
        .collect::<Result<Vec<_>, E>>()?
        .into_iter()
        .unzip();
    let (beats_gray, median_gain_db) = gains(&scores, &set.gray_photo_scores);
    let report = Report {
        model: mean(&scores),
        gray: set.gray_scores,
        truth_colorfulness: set.truth_colorfulness,
        beats_gray,
        median_gain_db,
    };
    Ok(Validated {
        report,
        predictions: preds,
        photo_scores: scores,
    })
}

/// A contact sheet: one row per photo (at most `rows`): gray | model | truth, 4-pixel white gutters.
pub fn contact_sheet(set: &ValidationSet, predictions: &[RgbImage], rows: usize) -> RgbImage {
    let s = set.size;
    let rows = rows.min(predictions.len()) as u32;
    let gutter = 4;
    let mut sheet = RgbImage::from_pixel(
        3 * s + 4 * gutter,
        rows * s + (rows + 1) * gutter,
        image::Rgb([255, 255, 255]),
    );
    for r in 0..rows as usize {
        let y = (gutter + r as u32 * (s + gutter)) as i64;
        for (c, img) in [&set.gray[r], &predictions[r], &set.truth[r]].into_iter().enumerate() {
            image::imageops::overlay(&mut sheet, img, (gutter + c as u32 * (s + gutter)) as i64, y);
        }
    }
    sheet
}

/// Scores a predictor of ab from L (`predict(l, (w, h))`, planar ab in Lab units) on `set`'s crops,
/// fitting each prediction into the gamut at its pixels' L when `gamut` says so (as colorizing does).
pub fn evaluate_predictor<E>(
    set: &ValidationSet,
    gamut: Gamut,
    predict: impl Fn(&[f32], (usize, usize)) -> Result<Vec<f32>, E>,
) -> Result<Validated, E> {
    let size = (set.size as usize, set.size as usize);
    validate_with(set, |_, lab| {
        let mut ab = predict(lab.l(), size)?;
        if gamut == Gamut::Fit {
            fit_planes_to_gamut(lab.l(), &mut ab);
        }
        Ok(ab)
    })
}
