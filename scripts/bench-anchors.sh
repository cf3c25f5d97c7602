#!/usr/bin/env bash
# Side-by-side times of the shipped network, one run, the same thread count: the forward at 256² and
# 512² (batch 1) in rechroma (its inference engine), in ONNX Runtime on the exported graph and in
# PyTorch on its fp32 twin (scripts/reference/torch_twin.py, first checked equal to the exported
# graph), the limit (the network's FLOPs ÷ the machine's fp32 GEMM rate, measured by `rechroma bench`
# with the gemm crate's kernels; numpy's rate is printed too), and one training step (8 × 128², joint
# head, frozen backbone, Adam) in rechroma (`rechroma bench --train-step`) and in PyTorch. Ratios are
# what to read: the machine may be shared (PyTorch's threads stall when another process holds a core).
#   scripts/bench-anchors.sh [THREADS]        (needs: data/cache/venv with onnxruntime, numpy, torch)
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
py="${PYTHON:-data/cache/venv/bin/python}"
cargo build --release -q -p rechroma-cli
bin=target/release/rechroma
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
$bin export --model default --format onnx -o "$tmp/model.onnx" >/dev/null
export RAYON_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads"
$bin bench --forward 256,512 --steps 7 | tee "$tmp/rechroma.txt"
"$py" - "$tmp/model.onnx" "$threads" <<'PY' | tee "$tmp/ort.txt"
import sys, time, numpy as np, onnxruntime as ort
path, threads = sys.argv[1], int(sys.argv[2])
o = ort.SessionOptions(); o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
names = [i.name for i in s.get_inputs()]
for side in (256, 512):
    feed = {"l": np.full((1, 1, side, side), 50.0, np.float32)}
    if "hints" in names: feed["hints"] = np.zeros((1, 3, side, side), np.float32)
    s.run(None, feed)
    t = []
    for _ in range(7):
        t0 = time.perf_counter(); s.run(None, feed); t.append(time.perf_counter() - t0)
    print(f"onnxruntime forward {side}x{side}: {1e3 * sorted(t)[3]:.1f} ms (median of 7)")
n = 2048; a = np.random.rand(n, n).astype(np.float32); a @ a
t0 = time.perf_counter(); [a @ a for _ in range(5)]; dt = (time.perf_counter() - t0) / 5
print(f"fp32 GEMM rate (numpy, {threads} threads): {2 * n**3 / dt / 1e9:.0f} GFLOP/s")
PY
forward() { grep '^[a-z]* forward' "$1" | grep -o '[0-9.]* ms'; }
paste <(forward "$tmp/rechroma.txt") <(forward "$tmp/ort.txt") |
  awk 'BEGIN{split("256 512", s)} {printf "rechroma / onnxruntime at %s²: %.2f\n", s[NR], $1 / $3}'
# The PyTorch twin: the check against the exported graph (exits 1 if ab/110 differs by > 1e-3), the
# forward at 256² and 512², one training step.
"$py" scripts/reference/torch_twin.py --threads "$threads" --onnx "$tmp/model.onnx" | tee "$tmp/torch.txt"
$bin bench --train-step | tee "$tmp/rechroma-train.txt"
paste <(forward "$tmp/rechroma.txt") <(forward "$tmp/torch.txt") |
  awk 'BEGIN{split("256 512", s)} {printf "rechroma / pytorch at %s²: %.2f\n", s[NR], $1 / $3}'
train() { grep -h 'train step 8x128:' "$@" 2>/dev/null | grep -o '[0-9.]* s (' | grep -o '^[0-9.]*'; }
awk -v r="$(train "$tmp/rechroma-train.txt")" -v p="$(train "$tmp/torch.txt")" \
  'BEGIN{printf "rechroma / pytorch train step 8x128: %.2f\n", r / p}'
