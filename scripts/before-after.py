"""Draws docs/before-after.jpg: grayscale input | rechroma's embedded model | original colour photo.

    cargo run --release -p rechroma-cli -- colorize samples/astronaut.jpg -o /tmp/astronaut-colour.png
    .venv/bin/python scripts/before-after.py samples/astronaut.jpg /tmp/astronaut-colour.png \
        data/test/skimage/astronaut.png docs/before-after.jpg
"""

import sys

from PIL import Image, ImageDraw

gray, colour, truth, out = sys.argv[1:5]
side = 320
panels = [Image.open(p).convert("RGB") for p in (gray, colour, truth)]
panels = [p.resize((side, round(side * p.height / p.width)), Image.LANCZOS) for p in panels]
h = max(p.height for p in panels)
sheet = Image.new("RGB", (3 * side + 2 * 6, h + 24), "white")
draw = ImageDraw.Draw(sheet)
for i, (p, label) in enumerate(zip(panels, ["input (grayscale)", "rechroma (embedded model)", "original"])):
    sheet.paste(p, (i * (side + 6), 24))
    draw.text((i * (side + 6) + 4, 6), label, fill="black")
sheet.save(out, quality=90)
print(f"wrote {out}")
