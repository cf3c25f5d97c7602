"""A tiny VGG16-layout weight file and the outputs a reference VGG trunk computes from it (run once;
outputs are committed). Needs only numpy (and safetensors for the .safetensors twin).

    python scripts/reference/vgg_golden.py

Writes crates/rechroma/tests/fixtures/vgg/tiny_vgg16.pth — torchvision's key layout (`features.N.weight/bias`
at N = 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28, plus a `classifier.0.*` to be ignored) in torch's zip
serialization, written without torch — its twin tiny_vgg16.safetensors, and golden/vgg.json: the five pooled
feature maps of a fixed input through a numpy VGG (3×3 conv, padding 1, ReLU; 2×2 max-pool per block).
"""
import collections
import io
import json
import pickle
import sys
import types
import zipfile
from pathlib import Path

import numpy as np

root = Path(__file__).resolve().parents[2]
out = root / "crates/rechroma/tests/fixtures/vgg"
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(16)
widths, convs = [4, 4, 8, 8, 8], [2, 2, 3, 3, 3]

# torchvision's indices: conv, ReLU (, conv, ReLU …), MaxPool per block.
state = collections.OrderedDict()
index, c_in, layers = 0, 3, []
for w, n in zip(widths, convs):
    for _ in range(n):
        k = rng.normal(0, np.sqrt(2 / (9 * c_in)), (w, c_in, 3, 3)).astype(np.float32)
        b = rng.normal(0, 0.1, w).astype(np.float32)
        state[f"features.{index}.weight"], state[f"features.{index}.bias"] = k, b
        layers.append((k, b))
        index += 2
        c_in = w
    index += 1  # the max-pool
state["classifier.0.weight"] = rng.normal(0, 0.01, (10, widths[-1])).astype(np.float32)
state["classifier.0.bias"] = np.zeros(10, np.float32)


def conv3x3(x, k, b):
    c, h, w = x.shape
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    cols = np.stack([p[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], 1)  # [C, 9, H, W]
    return np.einsum("oci,ciHW->oHW", k.reshape(k.shape[0], c, 9), cols) + b[:, None, None]


x0 = rng.uniform(-2, 2, (3, 32, 32)).astype(np.float32)
x, feats, it = x0.astype(np.float64), [], iter(layers)
for n in convs:
    for _ in range(n):
        k, b = next(it)
        x = np.maximum(conv3x3(x, k.astype(np.float64), b.astype(np.float64)), 0)
    c, h, w = x.shape
    x = x.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))
    feats.append(x)
(root / "crates/rechroma/tests/golden/vgg.json").write_text(json.dumps({
    "input": x0.ravel().tolist(),
    "shapes": [list(f.shape) for f in feats],
    "features": [f.ravel().tolist() for f in feats],
}))

# --- torch's zip format, without torch: stand-in classes with the names torch's unpickler expects.
torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
FloatStorage = type("FloatStorage", (), {"__module__": "torch"})
torch.FloatStorage = FloatStorage


def _rebuild_tensor_v2(*args):
    raise RuntimeError("only for pickling")


_rebuild_tensor_v2.__module__ = "torch._utils"
utils._rebuild_tensor_v2 = _rebuild_tensor_v2
torch._utils = utils
sys.modules["torch"], sys.modules["torch._utils"] = torch, utils


class Storage:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class Tensor:
    def __init__(self, key, array):
        self.storage, self.shape = Storage(key, array.size), array.shape

    def __reduce__(self):
        stride = tuple(int(np.prod(self.shape[i + 1:])) for i in range(len(self.shape)))
        return _rebuild_tensor_v2, (self.storage, 0, self.shape, stride, False, collections.OrderedDict())


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", FloatStorage, obj.key, "cpu", obj.numel)
        return None


buf = io.BytesIO()
Pickler(buf, protocol=2).dump(collections.OrderedDict((k, Tensor(str(i), v)) for i, (k, v) in enumerate(state.items())))
with zipfile.ZipFile(out / "tiny_vgg16.pth", "w", zipfile.ZIP_STORED) as z:
    z.writestr("tiny_vgg16/data.pkl", buf.getvalue())
    z.writestr("tiny_vgg16/byteorder", "little")
    for i, v in enumerate(state.values()):
        z.writestr(f"tiny_vgg16/data/{i}", np.ascontiguousarray(v).astype("<f4").tobytes())
    z.writestr("tiny_vgg16/version", "3\n")

from safetensors.numpy import save_file  # noqa: E402

save_file(dict(state), str(out / "tiny_vgg16.safetensors"))
print("wrote", out, "and golden/vgg.json")
