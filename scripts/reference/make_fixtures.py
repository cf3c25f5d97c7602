"""Write the tiny test fixtures of crates/rechroma/tests/fixtures (run once; outputs are committed).

Sources: scikit-image 0.26.0's bundled photos (chelsea: CC0, Stefan van der Walt; coffee: CC0, Rachel
Michetti; astronaut: public domain, NASA). Each fixture is named for what it tests.
    python scripts/reference/make_fixtures.py   (needs: pip install scikit-image==0.26.0 pillow numpy)
"""
import io
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

out = Path(__file__).resolve().parents[2] / "crates/rechroma/tests/fixtures"
photos = out / "photos"
photos.mkdir(parents=True, exist_ok=True)

chelsea = data.chelsea()[100:196, 150:278]          # 128×96 cat face
coffee = data.coffee()[100:228, 200:328]            # 128×128 cup
astronaut = data.astronaut()[40:104, 180:244]       # 64×64 face
Image.fromarray(chelsea).save(photos / "chelsea_128x96.png")
Image.fromarray(coffee).save(photos / "coffee_128x128.jpg", quality=92)
Image.fromarray(astronaut).save(photos / "astronaut_64x64.webp", lossless=True)
# A grayscale photo: must be skipped by the prior (|ab| ≤ 5 everywhere).
(photos / "gray").mkdir(exist_ok=True)
Image.fromarray(chelsea).convert("L").save(photos / "gray" / "chelsea_gray.png")

# Colour types the decoder must take.
types = out / "types"
types.mkdir(exist_ok=True)
small = chelsea[:32, :48]
Image.fromarray(np.dstack([small, np.full(small.shape[:2], 200, np.uint8)])).save(types / "rgba_48x32.png")
Image.fromarray(small).quantize(64).save(types / "palette_48x32.png")
gray16 = (np.asarray(Image.fromarray(small).convert("L"), np.uint16) * 257)
Image.fromarray(gray16).save(types / "gray16_48x32.png")
Image.fromarray(small).save(types / "bmp_48x32.bmp")
Image.fromarray(small).save(types / "tiff_48x32.tiff")

# EXIF orientation 6 ("rotate 90° clockwise to display"): stored 48×32, shown 32×48.
exif = Image.Exif()
exif[0x0112] = 6
Image.fromarray(small).save(types / "exif_orientation6_48x32.jpg", quality=95, exif=exif.tobytes())

# Broken files: must give a one-line error naming the file, never a panic.
bad = out / "bad"
bad.mkdir(exist_ok=True)
buf = io.BytesIO()
Image.fromarray(chelsea).save(buf, format="JPEG", quality=90)
(bad / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
(bad / "not_an_image.png").write_bytes(b"this is a text file with a .png name\n")
(bad / "empty.webp").write_bytes(b"")

# The metric fixtures: a truth and a deterministic "prediction" (shifted colours + noise).
metrics = out / "metrics"
metrics.mkdir(exist_ok=True)
rng = np.random.default_rng(7)
pred = chelsea.astype(np.int32)
pred[..., 0] += 12
pred[..., 2] -= 9
pred += rng.integers(-20, 21, pred.shape)
Image.fromarray(chelsea).save(metrics / "truth_128x96.png")
Image.fromarray(np.clip(pred, 0, 255).astype(np.uint8)).save(metrics / "pred_128x96.png")
print("fixtures written to", out)
