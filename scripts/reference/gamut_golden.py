"""Golden numbers for `color::fit_to_gamut` (run once; the output is committed).

    pip install scikit-image==0.26.0 numpy
    python scripts/reference/gamut_golden.py      # writes crates/rechroma/tests/golden/gamut.json

For each Lab colour, the largest chroma scale s in [0, 1] such that every colour (L, t·a, t·b) with
t <= s is inside the sRGB gamut, found by a dense scan of 100,001 values of t (not by bisection, the
method under test). Lab → XYZ is scikit-image's `lab2xyz`; XYZ → linear RGB the inverse of its
`xyz_from_rgb` matrix (IEC 61966-2-1 primaries, D65); in gamut means every linear channel in [0, 1].
Also the most negative b in gamut on the b axis (a = 0) at L = 95, the figure the issue quotes (≈ −9).
"""
import json
from pathlib import Path

import warnings

import numpy as np
from skimage.color import lab2xyz
from skimage.color.colorconv import xyz_from_rgb

root = Path(__file__).resolve().parents[2]
out = root / "crates/rechroma/tests/golden/gamut.json"
rgb_from_xyz = np.linalg.inv(xyz_from_rgb)
warnings.filterwarnings("ignore", message="Conversion from CIE-LAB")  # the clamp is handled by in_gamut
ts = np.linspace(0.0, 1.0, 100_001)


def in_gamut(lab):
    """lab: (N, 3) → bool (N,). A colour that needs scikit-image's clamp of a negative z is outside."""
    fz = (lab[:, 0] + 16.0) / 116.0 - lab[:, 2] / 200.0
    rgb = lab2xyz(lab[None])[0] @ rgb_from_xyz.T
    return (fz >= 0) & np.all((rgb >= -1e-9) & (rgb <= 1 + 1e-9), axis=1)


def max_scale(l, a, b):
    lab = np.stack([np.full_like(ts, l), ts * a, ts * b], 1)
    ok = in_gamut(lab)
    first_out = np.argmin(ok) if not ok.all() else len(ts)
    return float(ts[first_out - 1])


rng = np.random.default_rng(95)
cases = [(95.0, 0.0, -30.0), (95.0, 10.0, 40.0), (50.0, 0.0, 0.0), (50.0, 20.0, 20.0), (30.0, 80.0, -100.0),
         (88.0, -86.0, 83.0), (5.0, 40.0, 40.0), (99.5, -5.0, 5.0), (70.0, 100.0, 100.0), (20.0, -60.0, 90.0)]
cases += [(float(l), float(a), float(b)) for l, a, b in
          zip(rng.uniform(0, 100, 60), rng.uniform(-110, 110, 60), rng.uniform(-110, 110, 60))]
rows = [{"lab": [l, a, b], "scale": max_scale(l, a, b)} for l, a, b in cases]
bs = -np.linspace(0, 40, 400_001)
ok = in_gamut(np.stack([np.full_like(bs, 95.0), np.zeros_like(bs), bs], 1))
min_b_l95 = float(bs[np.argmin(ok) - 1])
out.write_text(json.dumps({"cases": rows, "min_b_at_l95": min_b_l95}, indent=1))
print("wrote", out, "min b at L 95:", min_b_l95)
