"""Runs rechroma's exported ONNX graph in ONNX Runtime on three photos and writes what it computes
(tests/golden/onnx.json), so `cargo test --test onnx` can check rechroma's own network against it.

    target/release/rechroma export --model default --format onnx -o /tmp/model.onnx
    data/cache/venv/bin/pip install onnxruntime onnx        # once
    data/cache/venv/bin/python scripts/reference/onnx_check.py /tmp/model.onnx

For each fixture photo (resized to 64×64 with Pillow), the script computes CIE L (sRGB → linear → Y →
L, D65; its own numpy code), feeds it to the graph (with hint planes when the model takes them: none
for two photos, three revealed patches for the third), and stores the input L, the hint planes, `ab`
(every second pixel each way) and a fixed sample of the class logits. The Rust test runs the network
on the stored inputs and compares (max |Δ| ≤ 1e-3 in ab/110, as issue 22 asks).
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/rechroma/tests/golden/onnx.json"
PHOTOS = ["astronaut_64x64.webp", "chelsea_128x96.png", "coffee_128x128.jpg"]
SIDE = 64


def lightness(rgb8):
    c = rgb8.astype(np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    y = lin @ np.array([0.212671, 0.715160, 0.072169])
    f = np.where(y > 0.008856, np.cbrt(y), 7.787 * y + 16.0 / 116.0)
    return (116.0 * f - 16.0).astype(np.float32)


def main(model_path):
    model = onnx.load(model_path)
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    rng = np.random.default_rng(20261203)
    cases = []
    for k, name in enumerate(PHOTOS):
        img = Image.open(ROOT / "crates/rechroma/tests/fixtures/photos" / name).convert("RGB")
        l = lightness(np.asarray(img.resize((SIDE, SIDE), Image.BILINEAR)))
        l = l.astype(np.float64).round(3).astype(np.float32)  # as stored, so the test feeds exactly this
        feed = {"l": l[None, None]}
        hints = np.zeros((3, SIDE, SIDE), np.float32)
        patches = [(10, 12, 40.0, 30.0), (40, 20, -20.0, 35.0), (30, 50, 5.0, -45.0)] if k == 2 else []
        for (x, y, a, b) in patches:  # 3×3 patches, as rechroma::hints::render draws them
            hints[0, y - 1 : y + 2, x - 1 : x + 2] = a / 110.0
            hints[1, y - 1 : y + 2, x - 1 : x + 2] = b / 110.0
            hints[2, y - 1 : y + 2, x - 1 : x + 2] = 1.0
        if "hints" in inputs:
            feed["hints"] = hints[None]
        result = dict(zip(outputs, session.run(outputs, feed)))
        case = {"photo": name, "side": SIDE, "l": l.astype(np.float64).ravel().round(3).tolist(), "hint_patches": patches}
        if "ab" in result:
            case["ab_every_2"] = result["ab"][0, :, ::2, ::2].astype(np.float64).ravel().round(3).tolist()
        if "logits" in result:
            z = result["logits"][0]
            picks = [(int(rng.integers(z.shape[0])), int(rng.integers(z.shape[1])), int(rng.integers(z.shape[2]))) for _ in range(64)]
            case["logits_shape"] = list(z.shape)
            case["logit_picks"] = [[q, y, x, round(float(z[q, y, x]), 4)] for q, y, x in picks]
        cases.append(case)
        print(name, {k: v.shape for k, v in result.items()})
    OUT.write_text(json.dumps({"model": "the embedded default", "opset": model.opset_import[0].version, "cases": cases}))
    print("wrote", OUT)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/model.onnx")
