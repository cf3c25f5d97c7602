"""Golden numbers for rechroma's tests, from independent references (run once; outputs are committed).

    pip install scikit-image==0.26.0 pillow numpy     # PyPI
    python scripts/reference/golden.py              # writes crates/rechroma/tests/golden/*.json

- color.json:   skimage.color.rgb2lab / lab2rgb on a grid of sRGB colours incl. the 8 gamut corners,
                random colours, and Lab values (some out of the sRGB gamut).
- metrics.json: skimage.metrics PSNR and SSIM (Gaussian window σ 1.5, population covariance) on the
                metric fixtures; colorfulness (Hasler & Süsstrunk 2003) and AuC (Zhang et al. 2016) in numpy.
- quantize.json: soft encodings (brute force over the 313 bins, k = 5, σ = 5, Zhang's formula), annealed
                means, smoothed priors (2-D ab and 1-D index Gaussians) and rebalancing weights for fixed counts,
                and the bin counts of the fixture photos (rgb2lab + brute-force nearest bin).
"""
import json
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.color import lab2rgb, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

root = Path(__file__).resolve().parents[2]
fixtures = root / "crates/rechroma/tests/fixtures"
out = root / "crates/rechroma/tests/golden"
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(2016)


def dump(name, obj):
    (out / name).write_text(json.dumps(obj, indent=1))
    print("wrote", out / name)


# ---------------------------------------------------------------- colour
levels = [0, 1, 2, 10, 37, 64, 128, 191, 230, 254, 255]
grid = np.array([[r, g, b] for r in levels[::2] for g in levels[::2] for b in levels[::2]], np.uint8)
corners = np.array([[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)], np.uint8)
randoms = rng.integers(0, 256, (150, 3)).astype(np.uint8)
rgb8 = np.unique(np.concatenate([corners, grid, randoms]), axis=0)
lab = rgb2lab(rgb8[None].astype(np.float64) / 255.0)[0]
labs = np.concatenate([
    rng.uniform([0, -100, -100], [100, 100, 100], (120, 3)),        # many out of gamut: clipping matters
    np.array([[0, 0, 0], [100, 0, 0], [50, 0, 0], [53.24, 80.09, 67.2], [87.73, -86.18, 83.18],
              [32.3, 79.19, -107.86], [50, 110, -110], [5, -20, 40]]),
])
rgb_back = lab2rgb(labs[None])[0]
dump("color.json", {
    "rgb8_to_lab": [{"rgb": c.tolist(), "lab": v.tolist()} for c, v in zip(rgb8, lab)],
    "lab_to_rgb": [{"lab": v.tolist(), "rgb": c.tolist()} for v, c in zip(labs, rgb_back)],
})

# ---------------------------------------------------------------- metrics
truth = np.asarray(Image.open(fixtures / "metrics/truth_128x96.png").convert("RGB"))
pred = np.asarray(Image.open(fixtures / "metrics/pred_128x96.png").convert("RGB"))


def colorfulness(img):
    r, g, b = (img[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def auc(lab_true, lab_pred):
    err = np.sqrt(((lab_true[..., 1:] - lab_pred[..., 1:]) ** 2).sum(-1)).ravel()
    thresholds = np.arange(151)
    curve = np.array([(err <= t).mean() for t in thresholds])
    return float(np.trapezoid(curve, thresholds) / 150.0), curve.tolist()


lt, lp = rgb2lab(truth), rgb2lab(pred)
auc_value, curve = auc(lt, lp)
gray = lt.copy()
gray[..., 1:] = 0
dump("metrics.json", {
    "psnr": peak_signal_noise_ratio(truth, pred, data_range=255),
    "ssim": structural_similarity(truth, pred, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False, data_range=255),
    "colorfulness_truth": colorfulness(truth),
    "colorfulness_pred": colorfulness(pred),
    "auc": auc_value,
    "auc_curve": curve,
    "auc_gray": auc(lt, gray)[0],
})

# ---------------------------------------------------------------- quantizer
hull = [(-90, 50, 90), (-80, 20, 90), (-70, 0, 90), (-60, -20, 90), (-50, -30, 100), (-40, -40, 100),
        (-30, -50, 100), (-20, -50, 100), (-10, -60, 100), (0, -70, 100), (10, -80, 90), (20, -80, 90),
        (30, -90, 90), (40, -100, 90), (50, -100, 80), (60, -110, 80), (70, -110, 80), (80, -110, 70),
        (90, -110, 70), (100, -90, 0)]
bins = np.array([(a, b) for a, lo, hi in hull for b in range(lo, hi + 1, 10)], np.float64)
assert len(bins) == 313


def soft(ab, k=5, sigma=5.0):
    d = np.sqrt(((bins - ab) ** 2).sum(1))
    idx = np.lexsort((np.arange(313), d))[:k]
    w = np.exp(-d[idx] ** 2 / (2 * sigma ** 2))
    return idx.tolist(), (w / w.sum()).tolist()


points = np.concatenate([rng.uniform(-110, 110, (40, 2)), [[0, 0], [3, 4], [-33.3, 47.1], [100, -90], [127, 127]]])
soft_cases = [{"ab": p.tolist(), "k": k, "sigma": s, "bins": soft(p, k, s)[0], "weights": soft(p, k, s)[1]}
              for p in points for k, s in [(5, 5.0), (1, 5.0), (8, 2.5)]]

logits = rng.normal(0, 3, (6, 313))
annealed = []
for z in logits:
    for t in (1.0, 0.38, 0.1):
        p = np.exp((z - z.max()) / t)
        p /= p.sum()
        annealed.append({"logits": z.tolist(), "temperature": t, "ab": (p @ bins).tolist()})

counts = np.zeros(313)
counts[rng.integers(0, 313, 40)] = rng.integers(1, 10_000, 40)
counts[120] = 50_000                       # lots of near-gray pixels, as in real photos
p_emp = counts / counts.sum()
d2 = ((bins[:, None] - bins[None]) ** 2).sum(-1)
idx = np.arange(313)


def smooth(kernel):
    s = kernel @ p_emp
    return s / s.sum()


def weights(p_s, lam=0.5, alpha=1.0):
    w = ((1 - lam) * p_s + lam / 313) ** (-alpha)
    return w / (p_s * w).sum()


s2 = smooth(np.exp(-d2 / (2 * 25.0)))
s1 = smooth(np.exp(-((idx[:, None] - idx[None]) ** 2) / (2 * 25.0)))


def fixture_counts():
    """Per photo (JPEG decoders differ in chroma upsampling, so only lossless files can match exactly)."""
    out = {}
    for f in ["chelsea_128x96.png", "coffee_128x128.jpg", "astronaut_64x64.webp"]:
        ab = rgb2lab(np.asarray(Image.open(fixtures / "photos" / f).convert("RGB")))[..., 1:].reshape(-1, 2)
        nearest = np.argmin(((ab[:, None] - bins[None]) ** 2).sum(-1), axis=1)
        out[f] = np.bincount(nearest, minlength=313).tolist()
    return out


dump("quantize.json", {
    "soft": soft_cases,
    "annealed": annealed,
    "prior": {
        "counts": counts.astype(int).tolist(),
        "smoothed_ab2d": s2.tolist(), "weights_ab2d": weights(s2).tolist(),
        "smoothed_index1d": s1.tolist(), "weights_index1d": weights(s1).tolist(),
        "weights_none_lambda0.3_alpha0.7": weights(p_emp, 0.3, 0.7).tolist(),
    },
    "fixture_counts": fixture_counts(),
})
