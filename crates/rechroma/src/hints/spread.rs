//! Spreading hints over their regions after the network: each pixel moves towards each hint's colour by
//! a weight that falls with its **geodesic distance** from the hint, where crossing a change of lightness
//! costs distance — so a hint fills the object it was placed on and stops at its edges, and the
//! network's colours stay wherever no hint reaches. (Or, [`Spreads::Residual`], each hint's residual
//! over the prediction is added instead.)
//!
//! The network conditioned on hints (Zhang et al. 2017) learns how far a hint reaches; trained on the CPU
//! for a few thousand steps it spreads a hint over little more than its patch (see `TRAINING.md`). This
//! step makes sure the user's colour *arrives* in the region they clicked, the way the
//! optimisation-based propagation of Levin, Lischinski and Weiss (SIGGRAPH 2004, "Colorization using
//! Optimization") fills regions of similar lightness. With no hints it changes nothing.
//!
//! The distance is computed with the two-pass raster scan of the geodesic distance transform (Toivanen
//! 1996) on the 8-neighbourhood, twice, inside a window around each hint.

use super::Rect;
use serde::{Deserialize, Serialize};

fn default_reach() -> f32 {
    96.0
}
fn default_edge() -> f32 {
    2.0
}

/// How far hints spread after the network (see the module docs). `reach` 0 turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpreadConfig {
    /// Geodesic distance, in pixels of a 256² working image (scaled with the working size), at which a
    /// hint's weight has fallen to 1/e (weight exp(−(d/reach)²)); 0 turns spreading off. Default 96 (of a 256-pixel working size), chosen on
    /// `dev` among reaches up to 96: longer ones scored as well on `dev`'s many random points but carry
    /// one user's hint over the whole photo (see `TRAINING.md`).
    #[serde(default = "default_reach")]
    pub reach: f32,
    /// Distance each unit of lightness difference (L, 0–100) between neighbouring pixels adds, in
    /// pixels: edges in the photo stop a hint. 0 spreads by plain distance. Default 2, chosen on `dev`.
    #[serde(default = "default_edge")]
    pub edge: f32,
    /// What spreads: the hint's colour itself, or its residual over the network's prediction.
    #[serde(default)]
    pub what: Spreads,
}

/// What a hint carries over its region ([`SpreadConfig::what`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spreads {
    /// The hint's colour: each pixel moves towards it by the hint's weight there (Levin et al.'s
    /// propagation of colours, with the network's colours where no hint reaches).
    #[default]
    Colour,
    /// The hint's residual (its colour minus the network's prediction under it), added to the
    /// prediction: keeps the network's variations of colour inside the region.
    Residual,
}

impl Default for SpreadConfig {
    fn default() -> Self {
        Self {
            reach: default_reach(),
            edge: default_edge(),
            what: Spreads::default(),
        }
    }
}

impl SpreadConfig {
    /// No spreading: the network's own colours.
    pub const OFF: Self = Self {
        reach: 0.0,
        edge: 0.0,
        what: Spreads::Colour,
    };

    /// Whether it changes anything.
    pub fn is_on(&self) -> bool {
        self.reach > 0.0
    }

    /// The settings for a working image of `w × h`: [`Self::reach`] and [`Self::edge`] are given for a
    /// 256² working image (where they were chosen) and scale with the working image's side, so a hint
    /// covers the same share of the photo at any working size.
    pub fn at_working_size(&self, (w, h): (usize, usize)) -> Self {
        let scale = ((w * h) as f32).sqrt() / REFERENCE_SIDE;
        Self {
            reach: self.reach * scale,
            edge: self.edge * scale,
            what: self.what,
        }
    }
}

/// The working-image side [`SpreadConfig`]'s distances are given for (the default working size).
pub const REFERENCE_SIDE: f32 = 256.0;

/// A hint at the working size: the patch it reveals and its colour (Lab a, b).
#[derive(Debug, Clone, Copy)]
pub struct Patch {
    pub(super) rect: Rect,
    /// Revealed Lab a, b.
    pub ab: [f32; 2],
}

/// Weights beyond this many reaches are below exp(−9) ≈ 1e-4: the window of each hint's transform.
const WINDOW_REACHES: f32 = 3.0;

/// Spreads the hints' `patches` over `ab` (`[2, H, W]` planar, Lab units, the network's prediction at
/// the working size `w × h`). With wᵢ = exp(−(dᵢ/reach)²), dᵢ the geodesic distance from hint i's patch
/// over the lightness `l` (`[H, W]`, 0–100), and W = max(1, Σᵢ wᵢ), a pixel's prediction p becomes
/// p + Σᵢ wᵢ (cᵢ − p) / W when the colours cᵢ spread, or p + Σᵢ wᵢ δᵢ / W when the residuals δᵢ (cᵢ minus
/// the mean prediction over the patch) do. Several hints at one place do not add up: W averages them.
pub fn spread(ab: &mut [f32], l: &[f32], size: (usize, usize), patches: &[Patch], config: &SpreadConfig) {
    spread_stoppable(ab, l, size, patches, config, &|| false);
}

/// [`spread`], asking `stop` after each hint (a thousand hints on a large working image take seconds):
/// when it says so, `ab` is left as it was and `false` is returned.
pub fn spread_stoppable(
    ab: &mut [f32],
    l: &[f32],
    (w, h): (usize, usize),
    patches: &[Patch],
    config: &SpreadConfig,
    stop: &dyn Fn() -> bool,
) -> bool {
    let n = w * h;
    assert_eq!(ab.len(), 2 * n, "ab must be [2, H, W]");
    assert_eq!(l.len(), n, "l must be [H, W]");
    if !config.is_on() || patches.is_empty() || n == 0 {
        return true;
    }
    let mut sum_w = vec![0f32; n];
    let mut sum_wd = vec![[0f32; 2]; n];
    let margin = (WINDOW_REACHES * config.reach).ceil() as usize;
    let mut dist = Vec::new();
    for patch in patches {
        if stop() {
            return false;
        }
        let r = patch.rect;
        if r.x0 >= r.x1 || r.y0 >= r.y1 {
            continue;
        }
        let delta = match config.what {
            Spreads::Colour => patch.ab,
            Spreads::Residual => {
                let predicted = r.mean::<2>(ab, n, w);
                [patch.ab[0] - predicted[0], patch.ab[1] - predicted[1]]
            }
        };
        let win = Rect {
            x0: r.x0.saturating_sub(margin),
            x1: (r.x1 + margin).min(w),
            y0: r.y0.saturating_sub(margin),
            y1: (r.y1 + margin).min(h),
        };
        geodesic(l, w, win, r, config.edge, &mut dist);
        let ww = win.x1 - win.x0;
        for y in win.y0..win.y1 {
            for x in win.x0..win.x1 {
                let d = dist[(y - win.y0) * ww + (x - win.x0)] / config.reach;
                let weight = (-d * d).exp();
                if weight > 1e-4 {
                    let p = y * w + x;
                    sum_w[p] += weight;
                    sum_wd[p][0] += weight * delta[0];
                    sum_wd[p][1] += weight * delta[1];
                }
            }
        }
    }
    for p in 0..n {
        if sum_w[p] > 0.0 {
            let norm = sum_w[p].max(1.0);
            match config.what {
                // pred + Σ wᵢ (cᵢ − pred) / max(1, Σ wᵢ)
                Spreads::Colour => {
                    let keep = 1.0 - sum_w[p] / norm;
                    ab[p] = keep * ab[p] + sum_wd[p][0] / norm;
                    ab[n + p] = keep * ab[n + p] + sum_wd[p][1] / norm;
                }
                Spreads::Residual => {
                    ab[p] += sum_wd[p][0] / norm;
                    ab[n + p] += sum_wd[p][1] / norm;
                }
            }
        }
    }
    true
}

/// The geodesic distance from `seed` to every pixel of `win` (a window of a `width`-wide plane `l`),
/// written row-major over the window into `dist`: each step costs its length (1 or √2) plus `edge` ×
/// the lightness difference it crosses. Two forward-and-backward raster scans (paths that turn back more
/// than twice are rare in photos and only overestimate the distance).
fn geodesic(l: &[f32], width: usize, win: Rect, seed: Rect, edge: f32, dist: &mut Vec<f32>) {
    let (ww, wh) = (win.x1 - win.x0, win.y1 - win.y0);
    dist.clear();
    dist.resize(ww * wh, f32::INFINITY);
    for y in seed.y0..seed.y1 {
        for x in seed.x0..seed.x1 {
            dist[(y - win.y0) * ww + (x - win.x0)] = 0.0;
        }
    }
    let lum = |x: usize, y: usize| l[(y + win.y0) * width + x + win.x0];
    let diag = std::f32::consts::SQRT_2;
    // (dx, dy, length) of the neighbours already visited in a forward scan; a backward scan mirrors them.
    let forward: [(isize, isize, f32); 4] = [(-1, 0, 1.0), (-1, -1, diag), (0, -1, 1.0), (1, -1, diag)];
    for _ in 0..2 {
        for sign in [1isize, -1] {
            for i in 0..wh {
                let y = if sign > 0 { i } else { wh - 1 - i };
                for j in 0..ww {
                    let x = if sign > 0 { j } else { ww - 1 - j };
                    let here = lum(x, y);
                    let mut best = dist[y * ww + x];
                    for &(dx, dy, len) in &forward {
                        let (nx, ny) = (x as isize + sign * dx, y as isize + sign * dy);
                        if nx < 0 || ny < 0 || nx >= ww as isize || ny >= wh as isize {
                            continue;
                        }
                        let (nx, ny) = (nx as usize, ny as usize);
                        let d = dist[ny * ww + nx];
                        if d.is_finite() {
                            let cost = d + len + edge * (here - lum(nx, ny)).abs();
                            best = best.min(cost);
                        }
                    }
                    dist[y * ww + x] = best;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(x: usize, y: usize, ab: [f32; 2]) -> Patch {
        Patch {
            rect: Rect {
                x0: x,
                x1: x + 1,
                y0: y,
                y1: y + 1,
            },
            ab,
        }
    }

    /// On a flat plane the geodesic distance is the chamfer distance: 1 per axial step, √2 per diagonal.
    #[test]
    fn flat_distance_is_chamfer() {
        let l = vec![50.0; 9 * 9];
        let win = Rect {
            x0: 0,
            x1: 9,
            y0: 0,
            y1: 9,
        };
        let mut dist = Vec::new();
        geodesic(&l, 9, win, patch(4, 4, [0.0; 2]).rect, 1.0, &mut dist);
        assert_eq!(dist[4 * 9 + 4], 0.0);
        assert!((dist[4 * 9 + 8] - 4.0).abs() < 1e-5);
        assert!((dist[0] - 4.0 * std::f32::consts::SQRT_2).abs() < 1e-5);
        // Knight's move (2, 1): one diagonal and one axial step.
        assert!((dist[5 * 9 + 6] - (1.0 + std::f32::consts::SQRT_2)).abs() < 1e-5);
    }

    /// A wall of lightness 40 higher costs 2 × 40 × edge to cross (up and down again); going round it
    /// through a gap is cheaper when the gap is near.
    #[test]
    fn edges_cost_distance() {
        let (w, h) = (11, 5);
        let mut l = vec![20.0; w * h];
        for y in 0..h {
            l[y * w + 5] = 60.0;
        }
        let win = Rect {
            x0: 0,
            x1: w,
            y0: 0,
            y1: h,
        };
        let mut dist = Vec::new();
        geodesic(&l, w, win, patch(2, 2, [0.0; 2]).rect, 0.5, &mut dist);
        // (8, 2): six steps right, two of them across the wall's two edges of 40 × 0.5.
        assert!((dist[2 * w + 8] - (6.0 + 40.0)).abs() < 1e-4, "{}", dist[2 * w + 8]);
        // Left of the wall nothing changes.
        assert!((dist[2 * w] - 2.0).abs() < 1e-5);
    }

    /// The hint's own patch gets exactly its colour; far away (beyond the window) nothing changes; a
    /// pixel one reach away gets 1/e of the residual; across a strong edge less.
    #[test]
    fn residual_fades_with_reach_and_stops_at_edges() {
        let (w, h) = (64, 8);
        let mut l = vec![50.0; w * h];
        for y in 0..h {
            for x in 40..w {
                l[y * w + x] = 90.0;
            }
        }
        let mut ab = vec![0f32; 2 * w * h];
        for v in &mut ab[w * h..] {
            *v = 10.0;
        }
        let config = SpreadConfig {
            reach: 8.0,
            edge: 1.0,
            what: Spreads::Residual,
        };
        spread(&mut ab, &l, (w, h), &[patch(30, 4, [40.0, -10.0])], &config);
        let (a, b) = (|x: usize| ab[4 * w + x], |x: usize| ab[w * h + 4 * w + x]);
        assert!((a(30) - 40.0).abs() < 1e-4 && (b(30) + 10.0).abs() < 1e-4);
        // One reach (8 px) to the left: 1/e of the residual (40, -20).
        let e = (-1f32).exp();
        assert!((a(22) - 40.0 * e).abs() < 1e-3, "{}", a(22));
        assert!((b(22) - (10.0 - 20.0 * e)).abs() < 1e-3, "{}", b(22));
        // Beyond 3 reaches: unchanged.
        assert_eq!(a(2), 0.0);
        // Across the edge at x = 40 (ten px away, but 40 L units): untouched, while ten px left is not.
        assert!(a(40) < 1e-3, "{}", a(40));
        assert!(a(20) > 5.0);
    }

    /// Spreading the colour: at the hint the hint's colour, one reach away 1/e of the way from the
    /// prediction to it, whatever the prediction was.
    #[test]
    fn colour_moves_each_pixel_towards_the_hint() {
        let (w, h) = (64, 4);
        let l = vec![50.0; w * h];
        let mut ab: Vec<f32> = (0..2 * w * h).map(|i| (i % w) as f32).collect();
        let config = SpreadConfig {
            reach: 8.0,
            edge: 1.0,
            what: Spreads::Colour,
        };
        spread(&mut ab, &l, (w, h), &[patch(40, 2, [50.0, -30.0])], &config);
        let e = (-1f32).exp();
        let (a, b) = (|x: usize| ab[2 * w + x], |x: usize| ab[w * h + 2 * w + x]);
        assert!((a(40) - 50.0).abs() < 1e-4 && (b(40) + 30.0).abs() < 1e-4);
        assert!((a(32) - ((1.0 - e) * 32.0 + e * 50.0)).abs() < 1e-3, "{}", a(32));
        assert!((b(48) - ((1.0 - e) * 48.0 - e * 30.0)).abs() < 1e-3, "{}", b(48));
        assert_eq!(a(10), 10.0, "beyond three reaches: the prediction");
    }

    /// Asked to stop, it stops before the next hint and leaves the prediction as it was.
    #[test]
    fn a_stop_leaves_the_prediction_untouched() {
        let (w, h) = (16, 16);
        let l = vec![50.0; w * h];
        let base = vec![3f32; 2 * w * h];
        let mut ab = base.clone();
        let hints = [patch(4, 4, [30.0, 30.0]), patch(12, 12, [-30.0, 0.0])];
        let done = spread_stoppable(&mut ab, &l, (w, h), &hints, &SpreadConfig::default(), &|| true);
        assert!(!done);
        assert_eq!(ab, base);
        assert!(spread_stoppable(
            &mut ab,
            &l,
            (w, h),
            &hints,
            &SpreadConfig::default(),
            &|| false
        ));
        assert_ne!(ab, base);
    }

    /// The distances are given for a 256² working image and scale with its side.
    #[test]
    fn settings_scale_with_the_working_size() {
        let c = SpreadConfig::default();
        assert_eq!(c.at_working_size((256, 256)), c);
        let big = c.at_working_size((512, 512));
        assert_eq!((big.reach, big.edge), (2.0 * c.reach, 2.0 * c.edge));
    }

    /// Two equal hints at one place correct once, not twice; spreading off changes nothing.
    #[test]
    fn overlapping_hints_average_and_off_is_identity() {
        let (w, h) = (16, 16);
        let l = vec![50.0; w * h];
        let base = vec![3f32; 2 * w * h];
        let mut ab = base.clone();
        let hint = patch(8, 8, [30.0, 30.0]);
        spread(&mut ab, &l, (w, h), &[hint, hint], &SpreadConfig::default());
        assert!((ab[8 * w + 8] - 30.0).abs() < 1e-4);
        let mut untouched = base.clone();
        spread(&mut untouched, &l, (w, h), &[hint], &SpreadConfig::OFF);
        assert_eq!(untouched, base);
    }
}
