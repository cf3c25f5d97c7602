"""Golden numbers for rechroma's inference post-processing (tests/golden/infer.json).

Bilinear upsampling of a predicted plane to the photo's size, pixel centres aligned and edges clamped,
computed with scikit-image's `resize(order=1, mode="edge", anti_aliasing=False)` (an independent
implementation: scipy's map_coordinates), for a few size pairs including non-integer ratios.

Run once with the repository's venv: `.venv/bin/python scripts/reference/infer_golden.py`.
"""

import json
from pathlib import Path

import numpy as np
from skimage.transform import resize

OUT = Path(__file__).resolve().parents[2] / "crates/rechroma/tests/golden/infer.json"

rng = np.random.default_rng(20261126)
cases = []
for (sh, sw), (dh, dw) in [((4, 5), (11, 13)), ((3, 3), (3, 3)), ((6, 4), (17, 7)), ((8, 8), (5, 6))]:
    plane = rng.uniform(-80.0, 80.0, size=(sh, sw))
    out = resize(plane, (dh, dw), order=1, mode="edge", anti_aliasing=False, preserve_range=True)
    cases.append(
        {
            "src": [sw, sh],
            "dst": [dw, dh],
            "plane": plane.ravel().tolist(),
            "expected": out.ravel().tolist(),
        }
    )
OUT.write_text(json.dumps({"bilinear": cases}, indent=1) + "\n")
print(f"wrote {OUT}")
