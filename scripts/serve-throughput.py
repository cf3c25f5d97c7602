#!/usr/bin/env python3
"""Throughput of `rechroma serve` on 512×512 photos: starts the server (BIN, default
target/release/rechroma) on a free loopback port with --jobs JOBS, posts N photos (512² JPEGs cut from
data/test, cycled) to /api/colorize with CONCURRENCY requests in flight, and prints photos per second
over the wall time (after one warm-up request). Needs Pillow (data/cache/venv).

    data/cache/venv/bin/python scripts/serve-throughput.py [--bin BIN] [--n 24] [--jobs 1] [--concurrency 2]
"""
import argparse, io, pathlib, socket, subprocess, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("--bin", default="target/release/rechroma")
ap.add_argument("--n", type=int, default=24)
ap.add_argument("--jobs", type=int, default=1)
ap.add_argument("--concurrency", type=int, default=2)
args = ap.parse_args()

photos = []
for p in sorted(pathlib.Path("data/test").rglob("*"))[:200]:
    if p.suffix.lower() not in (".jpg", ".jpeg", ".png"):
        continue
    im = Image.open(p).convert("RGB")
    if min(im.size) < 512:
        continue
    x, y = (im.width - 512) // 2, (im.height - 512) // 2
    buf = io.BytesIO()
    im.crop((x, y, x + 512, y + 512)).save(buf, "JPEG", quality=90)
    photos.append(buf.getvalue())
    if len(photos) == 8:
        break
if not photos:
    sys.exit("no photo of at least 512² in data/test")

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
server = subprocess.Popen([args.bin, "serve", "--bind", f"127.0.0.1:{port}", "--jobs", str(args.jobs),
                           "--queue", str(max(args.concurrency, 1) * 4)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    url = f"http://127.0.0.1:{port}/api/colorize?format=jpeg"
    for _ in range(600):  # up to 60 s for the server to listen
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=1)
            break
        except OSError:
            time.sleep(0.1)

    def post(i):
        req = urllib.request.Request(url, data=photos[i % len(photos)], method="POST")
        with urllib.request.urlopen(req, timeout=120) as r:
            assert r.status == 200 and len(r.read()) > 1000
    post(0)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(post, range(args.n)))
    dt = time.perf_counter() - t0
    print(f"serve --jobs {args.jobs}, {args.concurrency} in flight: {args.n} photos of 512² in {dt:.2f} s"
          f" = {args.n / dt:.2f} photos/s")
finally:
    server.terminate()
    server.wait()
