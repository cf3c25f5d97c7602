"""A PyTorch fp32 twin of rechroma's shipped network (the MLEU of crates/rechroma/models/default), the
speed anchor of scripts/bench-anchors.sh: what the same network costs in eager PyTorch on this machine.

    data/cache/venv/bin/pip install torch                      # once (CPU or CUDA build; runs on the CPU)
    data/cache/venv/bin/python scripts/reference/torch_twin.py [--threads 2] [--onnx PATH] [--skip-check]

1. Check: the twin, loaded with the shipped weights (f16 widened to f32), against ONNX Runtime on
   rechroma's exported graph (`rechroma export --format onnx`, tested equal to rechroma's own network)
   on three 256² photos of data/test (the third with three hint patches, as onnx_check.py does); prints
   max |Δ| of ab/110 and of the class logits, exits 1 if ab/110 differs by more than 1e-3.
2. Forward: batch 1 at 256² and 512², L = 50 everywhere, zero hints, eval mode, inference_mode (BatchNorm
   not folded: eager PyTorch as a user runs it); one warm-up, median of 7.
3. Training step: what `rechroma bench` times (bench.rs): batch 8 × 128², L uniform in [0, 100], ab
   in [-60, 60], no hint planes; backbone frozen (eval-mode BatchNorm, under no_grad), U-Net in train mode;
   Adam (TrainConfig::mleu(): lr 4e-3, betas 0.9/0.999, burn's eps 1e-5); loss = MSE on ab/110 + 0.01 ×
   cross-entropy against the 5-nearest-bin soft targets (σ = 5) at class stride 4, uniform class weights
   (train/loss.rs). The timed region is forward + soft targets + loss + backward + Adam step, as rechroma's
   step also builds its targets; one warm-up, median of 3.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "crates/rechroma/models/default"
PHOTOS = ["skimage/astronaut.png", "darknet/dog.jpg", "sklearn/china.jpg"]  # under data/test
HINT_PATCHES = [(40, 48, 40.0, 30.0), (160, 80, -20.0, 35.0), (120, 200, 5.0, -45.0)]  # x, y, a, b

# The 313 ab bins (quantize/mod.rs HULL): per a value, the lowest and highest b, step 10.
HULL = [(-90, 50, 90), (-80, 20, 90), (-70, 0, 90), (-60, -20, 90), (-50, -30, 100), (-40, -40, 100),
        (-30, -50, 100), (-20, -50, 100), (-10, -60, 100), (0, -70, 100), (10, -80, 90), (20, -80, 90),
        (30, -90, 90), (40, -100, 90), (50, -100, 80), (60, -110, 80), (70, -110, 80), (80, -110, 70),
        (90, -110, 70), (100, -90, 0)]
BINS = torch.tensor([[a, b] for a, lo, hi in HULL for b in range(lo, hi + 1, 10)], dtype=torch.float32)
assert BINS.shape == (313, 2)


class ConvBnAct(nn.Module):
    """conv (no bias) → BatchNorm (→ + extra) → act, TF "same" padding (blocks.rs): stride 1 pads
    symmetrically; stride 2 pads the extra row/column at the bottom/right, as burn's Same does."""

    def __init__(self, c_in, c_out, k, stride=1, groups=1, eps=1e-5, act="relu"):
        super().__init__()
        self.k, self.stride, self.act = k, stride, act
        self.conv = nn.Conv2d(c_in, c_out, k, stride, k // 2 if stride == 1 else 0, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=eps)

    def forward(self, x, extra=None):
        if self.stride > 1:
            pads = []
            for n in (x.shape[3], x.shape[2]):  # F.pad order: left, right, top, bottom
                total = max((-(-n // self.stride) - 1) * self.stride + self.k - n, 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        y = self.bn(self.conv(x))
        if extra is not None:
            y = y + extra
        return {"relu": F.relu, "relu6": F.relu6, "none": lambda t: t}[self.act](y)


class MbConv(nn.Module):
    """EfficientNet-Lite's inverted bottleneck (efficientnet.rs): BN eps 1e-3, ReLU6, no SE."""

    def __init__(self, c_in, c_out, k, stride, expand):
        super().__init__()
        mid = c_in * expand
        self.expand_conv = ConvBnAct(c_in, mid, 1, eps=1e-3, act="relu6") if expand != 1 else None
        self.depthwise_conv = ConvBnAct(mid, mid, k, stride, groups=mid, eps=1e-3, act="relu6")
        self.project_conv = ConvBnAct(mid, c_out, 1, eps=1e-3, act="none")
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x):
        h = self.expand_conv(x) if self.expand_conv is not None else x
        h = self.project_conv(self.depthwise_conv(h))
        return h + x if self.skip else h


class Lite0(nn.Module):
    """The stem and MBConv blocks of EfficientNet-Lite0 (conv_head and fc are unused by MLEU)."""

    def __init__(self, cfg):
        super().__init__()
        self.conv_stem = ConvBnAct(3, cfg["stem"], 3, 2, eps=1e-3, act="relu6")
        blocks, c = [], cfg["stem"]
        for k, stride, expand, c_out, repeats in cfg["stages"]:
            for r in range(repeats):
                blocks.append(MbConv(c, c_out, k, stride if r == 0 else 1, expand))
                c = c_out
        self.blocks = nn.ModuleList(blocks)

    def forward(self, l):
        # gray_srgb (model/mod.rs): the sRGB gray of lightness L, then Lite's (x − 127/255) / (128/255).
        fy = (l + 16.0) / 116.0
        y = torch.where(fy <= 0.2068966, (fy - 16.0 / 116.0) / 7.787, fy**3).clamp(0.0, 1.0)
        g = torch.where(y <= 0.0031308, y * 12.92, 1.055 * y.pow(1.0 / 2.4) - 0.055)
        x = ((g - 127.0 / 255.0) / (128.0 / 255.0)).repeat(1, 3, 1, 1)
        x, out = self.conv_stem(x), []
        for block in self.blocks:  # the last map before each resolution drop, and the final one
            y = block(x)
            if y.shape[2] < x.shape[2]:
                out.append(x)
            x = y
        return out + [x]


class EncoderBlock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1, self.conv2 = ConvBnAct(c_in, c_out, 3), ConvBnAct(c_out, c_out, 3, 2)


class DecoderBlock(nn.Module):
    def __init__(self, c_in, c_out, skip):
        super().__init__()
        self.up_conv, self.fuse_conv = ConvBnAct(c_in, c_out, 3), ConvBnAct(c_out + skip, c_out, 3)


def pooled_hints(h, s):
    """hinted.rs: per s×s cell the mean revealed ab and the mask's maximum."""
    if s == 1:
        return h
    revealed = F.avg_pool2d(h[:, 2:], s).clamp_min(1e-6)
    return torch.cat([F.avg_pool2d(h[:, :2], s) / revealed, F.max_pool2d(h[:, 2:], s)], 1)


class Mleu(nn.Module):
    """mleu.rs `forward_hinted` for the shipped config: 5 encoder and 5 decoder blocks, Lite0 embeds,
    joint head (ab tanh at full resolution, 313 logits from decoder block 2 at stride 4), hint convs."""

    def __init__(self, mc):
        super().__init__()
        assert mc["head"] == "joint" and mc["class_stride"] == 4 and mc["backbone"] is not None
        w, feat = mc["widths"], [16, 24, 40, 112, 320]  # Lite0's feature channels
        self.backbone = Lite0(mc["backbone"])
        enc, embed, skips, c = [], [], [], 1
        for i in range(5):
            enc.append(EncoderBlock(c, w[i]))
            embed.append(ConvBnAct(feat[i], w[i] // 2, 1))
            c = w[i] + w[i] // 2
            skips.append(c)
        dec, dec_w = [], [w[3], w[2], w[1], w[0], w[0]]
        for j, c_out in enumerate(dec_w):
            dec.append(DecoderBlock(c, c_out, skips[3 - j] if j < 4 else 1))
            c = c_out
        self.encoder, self.embed, self.decoder = nn.ModuleList(enc), nn.ModuleList(embed), nn.ModuleList(dec)
        self.out = nn.Conv2d(c, 2, 1)
        self.class_out = nn.Conv2d(dec_w[2], 313, 1)
        self.hint_scale = mc["hint_scale"] if mc.get("hints") else None
        if self.hint_scale is not None:
            hint = lambda c_out: nn.Conv2d(3, c_out, 3, padding=1, bias=False)  # noqa: E731
            self.hint_in = hint(w[0])
            self.hint_down = nn.ModuleList([hint(c) for c in w[1:]])
            self.hint_skip = hint(dec_w[4])

    def forward(self, l, hints=None):
        """l [B,1,H,W] in Lab units, hints [B,3,H,W] or None → ab/110 [B,2,H,W], logits [B,313,H/4,W/4]."""
        if self.hint_scale is None:
            hints = None
        with torch.no_grad():  # the frozen backbone
            feats = self.backbone(l)
        x = inp = l / 100.0
        skips = []
        for i, block in enumerate(self.encoder):
            extra = None
            if hints is not None:
                conv = self.hint_in if i == 0 else self.hint_down[i - 1]
                extra = conv(pooled_hints(hints, 1 << i) * self.hint_scale)
            x = block.conv2(block.conv1(x, extra))
            x = torch.cat([x, self.embed[i](feats[i])], 1)
            skips.append(x)
        class_features = None
        for j, block in enumerate(self.decoder):
            u = block.up_conv(F.interpolate(x, scale_factor=2, mode="nearest"))
            extra = self.hint_skip(hints * self.hint_scale) if j == 4 and hints is not None else None
            x = block.fuse_conv(torch.cat([u, skips[3 - j] if j < 4 else inp], 1), extra)
            if j == 2:
                class_features = x
        return torch.tanh(self.out(x)), self.class_out(class_features)


def load_twin():
    mc = json.loads((MODEL / "config.json").read_text())["model"]["mleu"]
    net = Mleu(mc)
    stored = {k: torch.from_numpy(v.astype(np.float32)) for k, v in load_file(MODEL / "model.safetensors").items()}
    # burn's names are the twin's, but BatchNorm's gamma/beta are torch's weight/bias.
    rename = lambda k: k.replace(".bn.weight", ".bn.gamma").replace(".bn.bias", ".bn.beta")  # noqa: E731
    state = {k: stored.pop(rename(k)) for k in net.state_dict() if not k.endswith("num_batches_tracked")}
    left = sorted(k for k in stored if not k.startswith(("backbone.conv_head.", "backbone.fc.")))
    assert not left, f"weights the twin does not use: {left}"
    net.load_state_dict(state, strict=False)  # strict but for the num_batches_tracked counters
    for p in net.backbone.parameters():
        p.requires_grad_(False)
    return net.eval()


def lightness(rgb8):
    """CIE L (D65) of 8-bit sRGB, as onnx_check.py computes it."""
    c = rgb8.astype(np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    y = lin @ np.array([0.212671, 0.715160, 0.072169])
    f = np.where(y > 0.008856, np.cbrt(y), 7.787 * y + 16.0 / 116.0)
    return (116.0 * f - 16.0).astype(np.float32)


def check(net, onnx_path, threads, side=256):
    import onnxruntime as ort
    from PIL import Image

    if onnx_path is None:
        Path("/tmp/twin").mkdir(exist_ok=True)
        onnx_path = "/tmp/twin/model.onnx"
        subprocess.run([str(ROOT / "target/release/rechroma"), "export", "--model", "default", "--format", "onnx",
                        "-o", onnx_path], check=True, stdout=subprocess.DEVNULL)
    o = ort.SessionOptions()
    o.intra_op_num_threads, o.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(onnx_path, o, providers=["CPUExecutionProvider"])
    takes_hints = "hints" in [i.name for i in session.get_inputs()]
    worst_ab = worst_logits = 0.0
    for k, name in enumerate(PHOTOS):
        img = Image.open(ROOT / "data/test" / name).convert("RGB")
        scale = side / min(img.size)  # short side to 256 (bilinear), then the centre crop
        img = img.resize((max(side, round(img.width * scale)), max(side, round(img.height * scale))), Image.BILINEAR)
        x0, y0 = (img.width - side) // 2, (img.height - side) // 2
        l = lightness(np.asarray(img.crop((x0, y0, x0 + side, y0 + side))))[None, None]
        hints = np.zeros((1, 3, side, side), np.float32)
        for x, y, a, b in HINT_PATCHES if k == 2 else []:  # 3×3 patches, as hints::render draws them
            hints[0, :, y - 1 : y + 2, x - 1 : x + 2] = np.array([a / 110.0, b / 110.0, 1.0])[:, None, None]
        feed = {"l": l, **({"hints": hints} if takes_hints else {})}
        ab_ref, logits_ref = session.run(["ab", "logits"], feed)
        with torch.inference_mode():
            ab, logits = net(torch.from_numpy(l), torch.from_numpy(hints))
        d_ab = float(np.abs(ab.numpy() - ab_ref / 110.0).max())
        d_logits = float(np.abs(logits.numpy() - logits_ref).max())
        print(f"check {name}{' (3 hint patches)' if k == 2 else ''}: max |Δ ab/110| {d_ab:.2e}, "
              f"max |Δ logits| {d_logits:.2e} (logits span {np.ptp(logits_ref):.1f})")
        worst_ab, worst_logits = max(worst_ab, d_ab), max(worst_logits, d_logits)
    print(f"twin vs onnxruntime: max |Δ ab/110| {worst_ab:.2e}, max |Δ logits| {worst_logits:.2e}")
    if worst_ab > 1e-3:
        sys.exit(f"the twin differs from rechroma's graph by {worst_ab:.2e} > 1e-3 in ab/110")


def median_time(n, fn):
    """Median seconds of n timed calls after one untimed warm-up."""
    fn()
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return sorted(t)[n // 2]


def time_forward(net):
    for side in (256, 512):
        l, hints = torch.full((1, 1, side, side), 50.0), torch.zeros(1, 3, side, side)
        with torch.inference_mode():
            ms = 1e3 * median_time(7, lambda: net(l, hints))
        print(f"pytorch forward {side}x{side}: {ms:.1f} ms (median of 7)")


def soft_targets(ab, k=5, sigma=5.0):
    """quantize::Quantizer::soft_encode per pixel of ab [B,2,h,w] (Lab units): the k nearest bins,
    nearest first, weighted exp(−d²/2σ²) and normalised → bins [B,k,h,w] (int64), weights [B,k,h,w]."""
    b, _, h, w = ab.shape
    p = ab.clamp(-130.0, 130.0).permute(0, 2, 3, 1).reshape(-1, 2)
    d2, bins = ((p[:, None, :] - BINS[None]) ** 2).sum(-1).topk(k, dim=1, largest=False, sorted=True)
    soft = torch.softmax(-d2 / (2 * sigma * sigma), dim=1)  # = exp(−(d² − d0²)/2σ²) / Σ
    shape = lambda t: t.reshape(b, h, w, k).permute(0, 3, 1, 2)  # noqa: E731
    return shape(bins), shape(soft)


def time_train_step(net, batch=8, side=128, class_weight=0.01, stride=4):
    torch.manual_seed(0)
    l = torch.rand(batch, 1, side, side) * 100.0
    ab = torch.rand(batch, 2, side, side) * 120.0 - 60.0
    class_weights = torch.ones(313)  # uniform, as rechroma's bench: Some(vec![1.0; Q])
    net.train()
    net.backbone.eval()  # frozen: ImageNet statistics
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=4e-3, betas=(0.9, 0.999), eps=1e-5)

    def step():
        pred, logits = net(l)  # no hint planes, as bench.rs's batch (hints: None)
        regression = (pred - (ab / 110.0).clamp(-1.0, 1.0)).pow(2).mean()
        bins, soft = soft_targets(F.avg_pool2d(ab, stride))
        log_p = F.log_softmax(logits, 1).gather(1, bins)
        ce = -(soft * log_p).sum(1, keepdim=True)
        classification = (ce * class_weights[bins[:, :1]]).mean()
        loss = regression + class_weight * classification
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    print(f"pytorch train step {batch}x{side}: {median_time(3, step):.3f} s (median of 3)")
    net.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads of PyTorch (and of ORT in the check)")
    ap.add_argument("--onnx", help="rechroma's exported graph (default: export it with target/release/rechroma)")
    ap.add_argument("--skip-check", action="store_true", help="only the timings")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net = load_twin()
    if not args.skip_check:
        check(net, args.onnx, args.threads)
    time_forward(net)
    time_train_step(net)


if __name__ == "__main__":
    main()
