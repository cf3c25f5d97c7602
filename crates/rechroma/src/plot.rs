//! Pictures people look at: the prior and its weights on the ab plane, and a run's training curves.
//!
//! Drawn with plotters into a memory buffer (text in DejaVu Sans, embedded, so nothing depends on the
//! fonts a machine has) and returned as an [`image::RgbImage`] for the caller to write.

use crate::color::lab_to_srgb8;
use crate::quantize::{GRID, Prior};
use image::RgbImage;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use std::sync::Once;

/// Errors while drawing.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the picture")]
pub struct PlotError(#[source] crate::fsutil::Cause);

fn err(e: impl std::fmt::Display) -> PlotError {
    // plotters' drawing errors are generic over the backend; keep their message as the cause.
    PlotError(e.to_string().into())
}

static FONT: Once = Once::new();

/// Registers the embedded DejaVu Sans as plotters' "sans-serif" (once per process).
pub fn register_font() {
    FONT.call_once(|| {
        // The bytes are a valid TrueType font shipped by the `dejavu` crate.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

fn viridis(t: f64) -> RGBColor {
    let c = ViridisRGB::get_color(t.clamp(0.0, 1.0) as f32);
    RGBColor(c.0, c.1, c.2)
}

/// Side of one panel, in pixels.
const PANEL: u32 = 440;

/// Three panels over the ab plane (a → right, b → up), one square per bin: the bin colours at L = 50;
/// log₁₀ of the smoothed prior P̃ (bins no training pixel hit are outlined in red); the rebalancing
/// weights w. Captions give each colour scale's range.
pub fn prior_picture(prior: &Prior) -> Result<RgbImage, PlotError> {
    register_font();
    let (w, h) = (3 * PANEL, PANEL + 40);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (head, body) = root.split_vertically(40);
        let title = format!(
            "prior of {} photos, {} pixels ({} grayscale skipped); {} of 313 bins never hit; {:?} σ={} λ={} α={}",
            prior.images,
            prior.pixels,
            prior.skipped_gray,
            prior.empty_bins(),
            prior.config.smoothing,
            prior.config.sigma,
            prior.config.lambda,
            prior.config.alpha
        );
        head.draw_text(&title, &("sans-serif", 15).into_text_style(&head), (10, 12))
            .map_err(err)?;
        let panels = body.split_evenly((1, 3));
        let log_p: Vec<f64> = prior.smoothed.iter().map(|&p| p.max(1e-300).log10()).collect();
        // Most bins of the 2-D smoothing hold vanishing mass: clip the scale 8 decades under the top.
        let p_hi = log_p.iter().copied().fold(f64::MIN, f64::max);
        let p_lo = log_p.iter().copied().fold(f64::MAX, f64::min).max(p_hi - 8.0);
        let (w_lo, w_hi) = prior
            .weights
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let captions = [
            "bin colours at L = 50".to_string(),
            format!("log10 P~: {p_lo:.1} .. {p_hi:.1} (red: never hit)"),
            format!("weight w: {w_lo:.2} .. {w_hi:.2}"),
        ];
        for (k, panel) in panels.iter().enumerate() {
            let mut chart = ChartBuilder::on(panel)
                .caption(&captions[k], ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(32)
                .y_label_area_size(40)
                .build_cartesian_2d(-120f32..120f32, -120f32..120f32)
                .map_err(err)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc("a")
                .y_desc("b")
                .draw()
                .map_err(err)?;
            let half = GRID / 2.0;
            chart
                .draw_series(prior.bins.iter().enumerate().map(|(q, &[a, b])| {
                    let colour = match k {
                        0 => {
                            let [r, g, bl] = lab_to_srgb8([50.0, a, b]);
                            RGBColor(r, g, bl)
                        }
                        1 => viridis((log_p[q] - p_lo) / (p_hi - p_lo).max(1e-12)),
                        _ => viridis((prior.weights[q] - w_lo) / (w_hi - w_lo).max(1e-12)),
                    };
                    Rectangle::new([(a - half, b - half), (a + half, b + half)], colour.filled())
                }))
                .map_err(err)?;
            if k == 1 {
                let empty = prior.bins.iter().zip(&prior.counts).filter(|(_, c)| **c == 0);
                chart
                    .draw_series(empty.map(|(&[a, b], _)| {
                        Rectangle::new([(a - 4.0, b - 4.0), (a + 4.0, b + 4.0)], RED.stroke_width(1))
                    }))
                    .map_err(err)?;
            }
        }
        root.present().map_err(err)?;
    }
    RgbImage::from_raw(w, h, buf).ok_or_else(|| PlotError("buffer size".into()))
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type StepChart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A chart over 0..`last` (steps, or crops seen, as `x_desc` says) with its mesh and caption drawn.
fn step_chart<'a, 'b>(
    area: &'a Area<'b>,
    caption: &str,
    (last, x_desc): (f64, &str),
    (lo, hi): (f64, f64),
) -> Result<StepChart<'a, 'b>, PlotError> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 14))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..last, lo..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .x_labels(6)
        .x_label_formatter(&|v| match *v {
            v if v >= 10_000.0 => format!("{:.0}k", v / 1000.0),
            v => format!("{v:.0}"),
        })
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// Training curves: the loss (raw and a 20-step moving average) against the step; the validation PSNR
/// gain of the model over the gray baseline (zero drawn black), and the validation colorfulness of the
/// model and the truth, against the crops seen (`crops_per_step` a step).
pub fn training_curves(
    losses: &[(u64, f32)],
    validations: &[(u64, crate::evaluate::Report)],
    crops_per_step: u64,
) -> Result<RgbImage, PlotError> {
    register_font();
    let (w, h) = (3 * PANEL, PANEL);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let panels = root.split_evenly((1, 3));
        let last_step = losses.last().map_or(1, |l| l.0).max(1) as f64;
        let range = |vals: &mut dyn Iterator<Item = f64>| {
            let (lo, hi) = vals.fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
            if lo > hi {
                (0.0, 1.0)
            } else {
                (lo - 0.05 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9))
            }
        };
        // Loss.
        let (lo, hi) = range(&mut losses.iter().map(|l| f64::from(l.1)));
        let mut chart = step_chart(&panels[0], "training loss", (last_step, "step"), (lo, hi))?;
        chart
            .draw_series(LineSeries::new(
                losses.iter().map(|&(s, l)| (s as f64, f64::from(l))),
                RGBColor(190, 190, 230),
            ))
            .map_err(err)?;
        let avg: Vec<(f64, f64)> = losses
            .iter()
            .enumerate()
            .map(|(i, &(s, _))| {
                let win = &losses[i.saturating_sub(19)..=i];
                (
                    s as f64,
                    win.iter().map(|l| f64::from(l.1)).sum::<f64>() / win.len() as f64,
                )
            })
            .collect();
        chart
            .draw_series(LineSeries::new(avg, BLUE.stroke_width(2)))
            .map_err(err)?;
        // Validation PSNR and colorfulness.
        let series = [
            (
                "validation PSNR gain over gray (dB): model blue, gray 0",
                [
                    |r: &crate::evaluate::Report| r.model.psnr - r.gray.psnr,
                    |_: &crate::evaluate::Report| 0.0,
                ],
            ),
            (
                "colorfulness: model blue, truth black",
                [
                    |r: &crate::evaluate::Report| r.model.colorfulness,
                    |r: &crate::evaluate::Report| r.truth_colorfulness,
                ],
            ),
        ];
        for (k, (title, [fm, fr])) in series.iter().enumerate() {
            let (lo, hi) = range(&mut validations.iter().flat_map(|(_, r)| [fm(r), fr(r)]));
            let crops = |s: u64| (s * crops_per_step.max(1)) as f64;
            let mut chart = step_chart(&panels[k + 1], title, (crops(last_step as u64), "crops seen"), (lo, hi))?;
            for (f, colour) in [(fm, BLUE), (fr, BLACK)] {
                let pts: Vec<(f64, f64)> = validations.iter().map(|(s, r)| (crops(*s), f(r))).collect();
                chart
                    .draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))
                    .map_err(err)?;
                chart
                    .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, colour.filled())))
                    .map_err(err)?;
            }
        }
        root.present().map_err(err)?;
    }
    RgbImage::from_raw(w, h, buf).ok_or_else(|| PlotError("buffer size".into()))
}

/// Width of the label column of [`labelled_sheet`], in pixels.
const LABEL_WIDTH: u32 = 260;

/// Height of the headings band of [`labelled_sheet`], in pixels.
const HEADING_HEIGHT: u32 = 28;

/// A contact sheet with a label column on its left and column headings on top: `labels[r]` (e.g. the
/// photo's file name and its PSNR gain over gray) printed beside row `r`, whose rows are `row` pixels
/// high after a `gutter`; `headings[c]` (e.g. "gray", "model", "truth") centred over column `c`.
pub fn labelled_sheet(
    sheet: &RgbImage,
    labels: &[String],
    headings: &[&str],
    row: u32,
    gutter: u32,
) -> Result<RgbImage, PlotError> {
    register_font();
    let (w, h) = (sheet.width() + LABEL_WIDTH, sheet.height() + HEADING_HEIGHT);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let size = (row / 8).clamp(11, 16) as i32;
        let bold = ("sans-serif", 16).into_font().color(&BLACK);
        for (c, heading) in headings.iter().enumerate() {
            let centre = LABEL_WIDTH + gutter + c as u32 * (row + gutter) + row / 2;
            let x = centre as i32 - (heading.chars().count() as i32 * 16 * 55 / 100) / 2;
            root.draw(&Text::new(heading.to_string(), (x, 6), bold.clone()))
                .map_err(err)?;
        }
        for (r, label) in labels.iter().enumerate() {
            let top = (HEADING_HEIGHT + gutter + r as u32 * (row + gutter)) as i32;
            // Long names keep their end (the file name), the gain goes on the second line.
            let (name, gain) = label.split_once('\n').unwrap_or((label, ""));
            let max = (LABEL_WIDTH as usize - 12) / (size as usize * 6 / 10).max(1);
            let shown: String = match name.chars().count() > max {
                true => format!(
                    "…{}",
                    name.chars().skip(name.chars().count() - max + 1).collect::<String>()
                ),
                false => name.to_string(),
            };
            let style = ("sans-serif", size).into_font().color(&BLACK);
            root.draw(&Text::new(shown, (8, top + 4), style.clone())).map_err(err)?;
            root.draw(&Text::new(gain.to_string(), (8, top + 8 + size), style))
                .map_err(err)?;
        }
    }
    let mut out = RgbImage::from_raw(w, h, buf).expect("sized buffer");
    image::imageops::overlay(&mut out, sheet, LABEL_WIDTH as i64, HEADING_HEIGHT as i64);
    Ok(out)
}

/// The evaluation PSNR against the number of revealed points (Zhang et al. 2017's Fig. 4): one line per
/// `(name, [(points, PSNR)])` series, the gray baseline of each as a dashed level, on a log-like axis
/// (x = log2(1 + points)).
pub fn hint_curve(series: &[(String, Vec<(usize, f64)>, f64)]) -> Result<RgbImage, PlotError> {
    register_font();
    let (w, h) = (2 * PANEL, PANEL + PANEL / 4);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let x = |n: usize| (1.0 + n as f64).log2();
        let last = series.iter().flat_map(|s| s.1.iter().map(|p| p.0)).max().unwrap_or(1);
        let values = series.iter().flat_map(|s| s.1.iter().map(|p| p.1).chain([s.2]));
        let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
        let mut chart = ChartBuilder::on(&root)
            .caption("PSNR (dB) against revealed points; dashed: gray", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..x(last) + 0.2, (lo - 0.3)..(hi + 0.3))
            .map_err(err)?;
        let ticks: Vec<usize> = series
            .first()
            .map(|s| s.1.iter().map(|p| p.0).collect())
            .unwrap_or_default();
        chart
            .configure_mesh()
            .x_desc("revealed points (log scale)")
            .x_labels(12)
            .x_label_formatter(&|v| {
                ticks
                    .iter()
                    .find(|&&n| (x(n) - v).abs() < 0.15)
                    .map_or(String::new(), |n| n.to_string())
            })
            .draw()
            .map_err(err)?;
        let colours = [BLUE, RGBColor(200, 80, 40), RGBColor(40, 150, 60)];
        for (k, (name, points, gray)) in series.iter().enumerate() {
            let c = colours[k % colours.len()];
            let pts: Vec<(f64, f64)> = points.iter().map(|&(n, p)| (x(n), p)).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(err)?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
            chart
                .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))
                .map_err(err)?;
            let dashes = (0..40).map(|i| {
                let a = i as f64 * (x(last) + 0.2) / 40.0;
                PathElement::new(
                    vec![(a, *gray), (a + 0.6 * (x(last) + 0.2) / 40.0, *gray)],
                    c.stroke_width(1),
                )
            });
            chart.draw_series(dashes).map_err(err)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    RgbImage::from_raw(w, h, buf).ok_or_else(|| PlotError("buffer size".into()))
}
