//! Colour hints (Zhang et al. SIGGRAPH 2017, "Real-Time User-Guided Image Colorization with Learned
//! Deep Priors"): points where a colour is revealed, given to a hint-taking network as three extra input
//! planes at the working size — the revealed a and b (normalised like the regression targets, ab / 110)
//! and a binary mask (1 where a colour is revealed).
//!
//! - [`Hint`] is a user's hint in the photo's own pixels (after EXIF orientation), with an sRGB colour
//!   whose *chroma* is used: the photo keeps its own lightness. [`parse_hints`] reads the JSON format
//!   every interface shares: `[{"x": 412, "y": 230, "color": "#b03030", "radius": 4}, …]`.
//! - [`render`] draws hints into the planes at a working size.
//! - [`spread::spread`] carries each hint's colour over its region after the network (geodesic distance
//!   over the lightness), so the user's colour reaches the object they clicked.
//! - [`simulate`] draws training hints from the truth, as Zhang 2017 does: a number of points from a
//!   geometric distribution, each a square patch whose revealed colour is the mean ab of the truth inside.

pub mod spread;

use crate::color::{norm, srgb8_to_lab};
use rand::Rng;
use serde::{Deserialize, Serialize};
pub use spread::{Patch, SpreadConfig};

/// Hint planes per pixel: a/110, b/110, mask.
pub const HINT_PLANES: usize = 3;

/// Default half-side, in working-size pixels, of a hint without a radius: a 3×3 patch (Zhang 2017's
/// revealed patches are 1×1 to 9×9).
pub const DEFAULT_WORKING_RADIUS: f64 = 1.0;

/// Why hints were refused. Each message names the hint (its index in the list, from 0) and the reason.
#[derive(Debug, thiserror::Error)]
pub enum HintError {
    /// The JSON could not be read as a list of hints.
    #[error("not a list of hints like [{{\"x\": 10, \"y\": 20, \"color\": \"#b03030\"}}]: {0}")]
    Json(#[source] serde_json::Error),
    /// A colour is not `#RRGGBB`.
    #[error("hint {index}: colour {color:?} is not #RRGGBB")]
    Color {
        /// Index of the hint.
        index: usize,
        /// The colour as given.
        color: String,
    },
    /// A point is outside the photo.
    #[error("hint {index}: ({x}, {y}) is outside the {width}×{height} photo")]
    Outside {
        /// Index of the hint.
        index: usize,
        /// Column as given.
        x: f64,
        /// Row as given.
        y: f64,
        /// The photo's width.
        width: usize,
        /// The photo's height.
        height: usize,
    },
    /// A radius is negative, not finite or absurdly large.
    #[error("hint {index}: radius {radius} must be between 0 and 1000 photo pixels")]
    Radius {
        /// Index of the hint.
        index: usize,
        /// The radius as given.
        radius: f64,
    },
    /// A `X,Y,#RRGGBB` command-line hint is malformed.
    #[error("hint {text:?} is not X,Y,#RRGGBB (e.g. 412,230,#b03030)")]
    Inline {
        /// The text as given.
        text: String,
    },
    /// Too many hints in one list.
    #[error("{count} hints: at most {MAX_HINTS} are taken")]
    TooMany {
        /// How many were given.
        count: usize,
    },
}

/// At most this many hints per photo (bounds the work and the request size).
pub const MAX_HINTS: usize = 1000;

/// One hint in the JSON format of every interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hint {
    /// Column in the photo's own pixels as displayed (after EXIF orientation); 0 is the left edge.
    pub x: f64,
    /// Row in the photo's own pixels as displayed; 0 is the top edge.
    pub y: f64,
    /// sRGB `#RRGGBB`; its chroma (Lab a, b) is revealed, its lightness ignored.
    pub color: String,
    /// Half-side of the revealed square in photo pixels; default a 3×3 patch at the working size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius: Option<f64>,
}

impl Hint {
    /// The hint's colour as sRGB bytes.
    pub fn rgb(&self) -> Option<[u8; 3]> {
        parse_hex(&self.color)
    }

    /// The revealed chroma, Lab a and b.
    pub fn ab(&self) -> Option<[f32; 2]> {
        self.rgb().map(|c| {
            let lab = srgb8_to_lab(c);
            [lab[1], lab[2]]
        })
    }
}

/// `#RRGGBB` (or `RRGGBB`) → sRGB bytes.
pub fn parse_hex(text: &str) -> Option<[u8; 3]> {
    let hex = text.strip_prefix('#').unwrap_or(text);
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?])
}

/// sRGB bytes → `#rrggbb`.
pub fn to_hex(rgb: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}

/// Reads a JSON list of hints and checks each colour and radius (not yet the photo's bounds: see
/// [`check_hints`]).
pub fn parse_hints(json: &[u8]) -> Result<Vec<Hint>, HintError> {
    let hints: Vec<Hint> = serde_json::from_slice(json).map_err(HintError::Json)?;
    check_values(&hints)?;
    Ok(hints)
}

/// Parses a command-line hint `X,Y,#RRGGBB`.
pub fn parse_inline(text: &str) -> Result<Hint, HintError> {
    let bad = || HintError::Inline { text: text.to_string() };
    let mut parts = text.splitn(3, ',');
    let (x, y, color) = (parts.next(), parts.next(), parts.next());
    let (Some(x), Some(y), Some(color)) = (x, y, color) else {
        return Err(bad());
    };
    let x: f64 = x.trim().parse().map_err(|_| bad())?;
    let y: f64 = y.trim().parse().map_err(|_| bad())?;
    let hint = Hint {
        x,
        y,
        color: color.trim().to_string(),
        radius: None,
    };
    if !x.is_finite() || !y.is_finite() {
        return Err(bad());
    }
    check_values(std::slice::from_ref(&hint))?;
    Ok(hint)
}

fn check_values(hints: &[Hint]) -> Result<(), HintError> {
    if hints.len() > MAX_HINTS {
        return Err(HintError::TooMany { count: hints.len() });
    }
    for (index, h) in hints.iter().enumerate() {
        if h.rgb().is_none() {
            return Err(HintError::Color {
                index,
                color: h.color.clone(),
            });
        }
        if let Some(radius) = h.radius
            && !(0.0..=1000.0).contains(&radius)
        {
            return Err(HintError::Radius { index, radius });
        }
    }
    Ok(())
}

/// Checks that every hint lies on a `width × height` photo.
pub fn check_hints(hints: &[Hint], width: usize, height: usize) -> Result<(), HintError> {
    check_values(hints)?;
    for (index, h) in hints.iter().enumerate() {
        let inside = h.x.is_finite()
            && h.y.is_finite()
            && (0.0..width as f64).contains(&h.x)
            && (0.0..height as f64).contains(&h.y);
        if !inside {
            return Err(HintError::Outside {
                index,
                x: h.x,
                y: h.y,
                width,
                height,
            });
        }
    }
    Ok(())
}

/// The planes of a photo without hints: all zero, `[3, H, W]` planar.
pub fn empty_planes(height: usize, width: usize) -> Vec<f32> {
    vec![0.0; HINT_PLANES * height * width]
}

/// A patch of a `width`-wide plane: columns `x0..x1`, rows `y0..y1` (ends excluded).
#[derive(Debug, Clone, Copy)]
struct Rect {
    x0: usize,
    x1: usize,
    y0: usize,
    y1: usize,
}

impl Rect {
    /// The square of half-side `r` around (`cx`, `cy`), clipped to a `width × height` plane.
    fn around((cx, cy): (i64, i64), r: i64, (height, width): (usize, usize)) -> Self {
        let clip = |v: i64, len: usize| v.clamp(0, len as i64) as usize;
        Self {
            x0: clip(cx - r, width),
            x1: clip(cx + r + 1, width),
            y0: clip(cy - r, height),
            y1: clip(cy + r + 1, height),
        }
    }

    /// The plane indices it covers, for planes `width` wide.
    fn pixels(self, width: usize) -> impl Iterator<Item = usize> {
        (self.y0..self.y1).flat_map(move |y| (self.x0..self.x1).map(move |x| y * width + x))
    }

    /// The mean of each of the `C` planes of `planes` (planar, `n` values each) over the patch.
    fn mean<const C: usize>(self, planes: &[f32], n: usize, width: usize) -> [f32; C] {
        let mut sum = [0f64; C];
        let mut count = 0usize;
        for p in self.pixels(width) {
            for (c, s) in sum.iter_mut().enumerate() {
                *s += f64::from(planes[c * n + p]);
            }
            count += 1;
        }
        sum.map(|s| (s / count.max(1) as f64) as f32)
    }
}

/// Reveals `ab` (Lab units) over a patch of `planes` (`[3, H, W]`): a/110, b/110 and the mask. Later
/// patches overwrite earlier ones.
fn fill(planes: &mut [f32], (height, width): (usize, usize), rect: Rect, ab: [f32; 2]) {
    let n = height * width;
    for p in rect.pixels(width) {
        planes[p] = ab[0] / norm::AB_SIGNED_SCALE;
        planes[n + p] = ab[1] / norm::AB_SIGNED_SCALE;
        planes[2 * n + p] = 1.0;
    }
}

/// The patches of `hints` on a photo of `photo` = (width, height) pixels at a working size of `working`
/// = (width, height): each hint's point is mapped to the working pixel whose area holds it, its radius
/// scaled with the photo (a hint without a radius reveals a 3×3 working patch). Hints must have passed
/// [`check_hints`].
pub fn patches(hints: &[Hint], photo: (usize, usize), working: (usize, usize)) -> Vec<Patch> {
    let (pw, ph) = photo;
    let (ww, wh) = working;
    let (sx, sy) = (ww as f64 / pw as f64, wh as f64 / ph as f64);
    hints
        .iter()
        .filter_map(|h| {
            let ab = h.ab()?;
            let cx = ((h.x * sx).floor() as i64).clamp(0, ww as i64 - 1);
            let cy = ((h.y * sy).floor() as i64).clamp(0, wh as i64 - 1);
            let r = h.radius.map_or(DEFAULT_WORKING_RADIUS, |r| r * sx.max(sy)).round() as i64;
            Some(Patch {
                rect: Rect::around((cx, cy), r.max(0), (wh, ww)),
                ab,
            })
        })
        .collect()
}

/// The hint planes (`[3, H, W]` planar: a/110, b/110, mask) of `hints` on a photo of `photo` = (width,
/// height) pixels, at a working size of `working` = (width, height) (see [`patches`]). Later hints
/// overwrite earlier ones where they overlap.
pub fn render(hints: &[Hint], photo: (usize, usize), working: (usize, usize)) -> Vec<f32> {
    let (ww, wh) = working;
    let mut planes = empty_planes(wh, ww);
    for p in patches(hints, photo, working) {
        fill(&mut planes, (wh, ww), p.rect, p.ab);
    }
    planes
}

fn default_geometric_p() -> f64 {
    0.125
}
fn default_max_side() -> usize {
    9
}
fn default_no_hint_share() -> f64 {
    0.25
}

/// How training draws hints from the truth (Zhang 2017, section 3.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HintSimConfig {
    /// The number of points per crop follows a geometric distribution on {0, 1, 2, …} with this success
    /// probability (Zhang 2017: 1/8, a mean of 7 points).
    #[serde(default = "default_geometric_p")]
    pub geometric_p: f64,
    /// Each point reveals a square patch whose side is uniform in 1..=`max_side` pixels (Zhang: 9).
    #[serde(default = "default_max_side")]
    pub max_side: usize,
    /// Share of crops given no hints at all, on top of the geometric draw's zeros, so the automatic
    /// path keeps being trained (ours; Zhang trains a separate automatic objective).
    #[serde(default = "default_no_hint_share")]
    pub no_hint_share: f64,
}

impl Default for HintSimConfig {
    fn default() -> Self {
        Self {
            geometric_p: default_geometric_p(),
            max_side: default_max_side(),
            no_hint_share: default_no_hint_share(),
        }
    }
}

/// The number of points of one crop: 0 with probability `no_hint_share`, else geometric(p) on {0, 1, …}.
pub fn draw_count(config: &HintSimConfig, rng: &mut impl Rng) -> usize {
    if rng.random::<f64>() < config.no_hint_share {
        return 0;
    }
    let mut n = 0;
    // Bounded: the geometric tail past 200 points has probability (7/8)^200 ≈ 2.5e-12.
    while n < 200 && rng.random::<f64>() >= config.geometric_p {
        n += 1;
    }
    n
}

/// Reveals `count` patches of the truth `ab` (`[2, H, W]` planar, Lab units) at random places: each a
/// square of side uniform in 1..=`max_side`, whose revealed colour is the mean ab inside it. Returns the
/// `[3, H, W]` planes.
pub fn reveal(
    ab: &[f32],
    (height, width): (usize, usize),
    count: usize,
    max_side: usize,
    rng: &mut impl Rng,
) -> Vec<f32> {
    let n = height * width;
    assert_eq!(ab.len(), 2 * n, "ab must be [2, H, W]");
    let mut planes = empty_planes(height, width);
    for _ in 0..count {
        let side = rng.random_range(1..=max_side.max(1)).min(height.min(width));
        let y0 = rng.random_range(0..=height - side);
        let x0 = rng.random_range(0..=width - side);
        let rect = Rect {
            x0,
            x1: x0 + side,
            y0,
            y1: y0 + side,
        };
        let mean = rect.mean::<2>(ab, n, width);
        fill(&mut planes, (height, width), rect, mean);
    }
    planes
}

/// Training hints for a batch: `ab` is `[B, 2, H, W]` planar (Lab units); returns `[B, 3, H, W]`.
pub fn simulate(
    ab: &[f32],
    (batch, height, width): (usize, usize, usize),
    config: &HintSimConfig,
    rng: &mut impl Rng,
) -> Vec<f32> {
    let n = height * width;
    let mut out = Vec::with_capacity(batch * HINT_PLANES * n);
    for i in 0..batch {
        let count = draw_count(config, rng);
        out.extend(reveal(
            &ab[i * 2 * n..(i + 1) * 2 * n],
            (height, width),
            count,
            config.max_side,
            rng,
        ));
    }
    out
}

/// Evaluation hints (Zhang 2017's protocol): `count` points at uniformly random places of a
/// `width × height` photo, each revealing the mean colour of the truth in a `side × side` patch around it,
/// as [`Hint`]s in the photo's pixels (`lab`: planar L, a, b of the photo).
pub fn reveal_hints(
    lab: &[f32],
    (width, height): (usize, usize),
    count: usize,
    side: usize,
    rng: &mut impl Rng,
) -> Vec<Hint> {
    let n = width * height;
    assert_eq!(lab.len(), 3 * n, "lab must be [3, H, W]");
    let r = side.saturating_sub(1) / 2;
    (0..count)
        .map(|_| {
            let x = rng.random_range(0..width);
            let y = rng.random_range(0..height);
            let rect = Rect::around((x as i64, y as i64), r as i64, (height, width));
            let mean = rect.mean::<3>(lab, n, width);
            Hint {
                x: x as f64 + 0.5,
                y: y as f64 + 0.5,
                color: to_hex(crate::color::lab_to_srgb8(mean)),
                radius: Some(r as f64),
            }
        })
        .collect()
}

/// [`reveal_hints`] with `count` points of `side²` patches, drawn by a generator seeded by (`seed`,
/// `index`): `rechroma eval --hints` gives photo `index` the same points for every model.
pub fn eval_hints(
    lab: &[f32],
    size: (usize, usize),
    (count, side): (usize, usize),
    (seed, index): (u64, u64),
) -> Vec<Hint> {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    reveal_hints(lab, size, count, side, &mut rng)
}

/// A hints file: one list for one photo, or an object mapping photo names (paths relative to the input
/// folder, or bare file names) to lists, for a folder batch.
#[derive(Debug, Clone, PartialEq)]
pub enum HintFile {
    /// `[{…}, …]`: the hints of one photo.
    List(Vec<Hint>),
    /// `{"photo.jpg": [{…}], "sub/other.png": [{…}]}`: hints per photo.
    PerPhoto(std::collections::BTreeMap<String, Vec<Hint>>),
}

/// Reads a hints file (see [`HintFile`]), checking every colour and radius.
pub fn parse_hint_file(json: &[u8]) -> Result<HintFile, HintError> {
    let value: serde_json::Value = serde_json::from_slice(json).map_err(HintError::Json)?;
    if value.is_object() {
        let map: std::collections::BTreeMap<String, Vec<Hint>> =
            serde_json::from_value(value).map_err(HintError::Json)?;
        for hints in map.values() {
            check_values(hints)?;
        }
        return Ok(HintFile::PerPhoto(map));
    }
    let hints: Vec<Hint> = serde_json::from_value(value).map_err(HintError::Json)?;
    check_values(&hints)?;
    Ok(HintFile::List(hints))
}
