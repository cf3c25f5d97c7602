#!/usr/bin/env python3
"""Joins the hint weights of a hints-only fine-tune to the automatic model it started from.

    scripts/join-hint-weights.py BASE.safetensors RUN_EXPORT.safetensors OUT.safetensors

Every tensor comes from BASE (the automatic model, bit for bit) except the hint convolutions
(`hint_in.*`, `hint_down.*`, `hint_skip.*`), which come from the run. Needed once, for the shipped model:
its run (`runs/hints5`, `train --hints-only`) kept a moving average that blended each frozen weight with
itself, d·x + (1 − d)·x, which moves some weights by one f16 step; `train/ema.rs` copies frozen weights
exactly since, so a new hints-only run's export is already exact. Needs numpy and safetensors (the venv
of scripts/fetch-photos.sh has both).
"""
import sys

from safetensors import safe_open
from safetensors.numpy import save_file


def main(base_path, run_path, out_path):
    tensors, metadata = {}, None
    with safe_open(base_path, "numpy") as base:
        metadata = base.metadata()
        for k in base.keys():
            tensors[k] = base.get_tensor(k)
    taken = []
    with safe_open(run_path, "numpy") as run:
        for k in run.keys():
            if k.startswith(("hint_in.", "hint_down.", "hint_skip.")):
                tensors[k] = run.get_tensor(k)
                taken.append(k)
            elif k not in tensors:
                sys.exit(f"{run_path}: {k} is neither a hint weight nor in {base_path}")
    if not taken:
        sys.exit(f"{run_path}: no hint weights")
    save_file(tensors, out_path, metadata=metadata)
    print(f"{out_path}: {len(tensors)} tensors, {len(taken)} hint weights from {run_path}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
