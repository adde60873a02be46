"""Committed results for chapters 3 and 4: the degradation runs with other seeds.

The chapters train every network once (seed 0), inside the notebook's time
budget. This script repeats the runs that the prose generalises from, and
writes the final training losses to ``book/results/ch03_ch04_seeds.json``,
which the chapters load and print:

- plain-20, plain-32 and plain-56 (chapter 3) and ResNet-56 (chapter 4), seeds
  0, 1 and 2, with the chapters' budget (``degradation_config()``) and without
  its warm-up (``warmup_steps=0``).

Seed 0 with the warm-up is exactly chapter 3's run: chapter 3 checks that its own
plain-56 agrees with this file, and chapter 4 draws plain-56 from it (per-epoch
training losses and the eval-mode accuracies) instead of training it a second time.

Run from the repository root (24 training runs; about a quarter of an hour on
one idle CPU thread):

    python scripts/results/ch03_ch04_seeds.py
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch

import resnet_edu
from resnet_edu.data import digits_loaders
from resnet_edu.experiments import degradation_config, evaluate_runs, train_depth_sweep
from resnet_edu.models import cifar_resnet, plain_net

OUT = Path(__file__).resolve().parents[2] / "book" / "results" / "ch03_ch04_seeds.json"
BUILDERS = {"plain": lambda depth: plain_net(depth, in_channels=1),
            "resnet": lambda depth: cifar_resnet(depth, in_channels=1)}
# (family, depths, seeds, overrides of degradation_config): one entry per group of runs
PLAN = [
    ("plain", (20, 32, 56), (0, 1, 2), {}),
    ("plain", (20, 32, 56), (0, 1, 2), {"warmup_steps": 0}),
    ("resnet", (56,), (0, 1, 2), {}),
    ("resnet", (56,), (0, 1, 2), {"warmup_steps": 0}),
]


def run_group(family, depths, seeds, overrides, loaders):
    """One record per (depth, seed): the training loss of every epoch, its final value and
    its largest; the eval-mode loss and accuracy on the training and test images
    (``evaluate_runs``, chapter 4 prints plain-56's)."""
    records = []
    for seed in seeds:
        # seed changes the initial weights and the batch order; the split stays fixed
        config = degradation_config(seed=seed, **overrides)
        runs = train_depth_sweep(BUILDERS[family], depths, loaders, config)
        evaluations = evaluate_runs(runs, loaders)
        for depth, run in runs.items():
            losses = run.history.train_loss
            records.append({"family": family, "depth": depth, "seed": seed,
                            "overrides": overrides, "num_epochs": config.num_epochs,
                            "warmup_steps": config.warmup_steps,
                            "final_train_loss": run.final_train_loss,
                            "max_epoch_train_loss": max(losses),
                            "finite": all(math.isfinite(v) for v in losses),
                            "train_loss": list(losses),
                            "evaluation": dict(zip(("train_loss", "train_acc", "test_loss",
                                                    "test_acc"), evaluations[depth]))})
            print({k: v for k, v in records[-1].items() if k != "train_loss"}, flush=True)
    return records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)         # as in the chapters: these 8x8 nets gain little from more
    loaders = digits_loaders(batch_size=128, augment=False, seed=0)   # chapter 3's split
    start = time.perf_counter()
    records = [r for group in PLAN for r in run_group(*group, loaders)]
    result = {"command": "python scripts/results/ch03_ch04_seeds.py",
              "versions": {"python": platform.python_version(), "torch": torch.__version__,
                           "resnet_edu": resnet_edu.__version__},
              "seconds": round(time.perf_counter() - start),
              "runs": records}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
