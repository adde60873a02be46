"""Committed results for chapter 12: ResNet-20 on the digits in fp32 and in bf16, three seeds.

Does bf16 autocast change how a network trains? One pair of runs cannot say: two fp32 runs
from different initial weights differ too. This script trains the chapter's ResNet-20 on the
digits (split 0, batch 64, 6 epochs, ``TrainConfig`` defaults otherwise) with initial-weight
seeds 0, 1 and 2, each once in fp32 and once with bf16 autocast
(``TrainConfig(precision="bf16")``), and writes every run's per-epoch training loss and
validation accuracy to ``book/results/ch12_bf16.json``. Chapter 12 prints the file, compares
the fp32-bf16 differences with the seed-to-seed differences, and trains the fp32 run of
seed 0 itself to check it against the file.

Run from the repository root with one thread, as the chapter trains:

    OMP_NUM_THREADS=1 python scripts/results/ch12_bf16.py

About 15 s per run on a CPU with bf16 units; on a CPU without them PyTorch emulates bf16
and a bf16 run takes minutes.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

import resnet_edu
from resnet_edu.data import digits_loaders
from resnet_edu.models import cifar_resnet
from resnet_edu.train import TrainConfig, fit

OUT = Path(__file__).resolve().parents[2] / "book" / "results" / "ch12_bf16.json"
SEEDS = (0, 1, 2)
PRECISIONS = ("fp32", "bf16")
NUM_EPOCHS = 6


def train(precision: str, seed: int) -> dict:
    """One run as chapter 12 trains it: the split of seed 0, initial weights of ``seed``."""
    loaders = digits_loaders(batch_size=64, seed=0)
    torch.manual_seed(seed)
    model = cifar_resnet(20, in_channels=1)
    config = TrainConfig(num_epochs=NUM_EPOCHS, precision=precision, device="cpu", seed=seed)
    start = time.perf_counter()
    history = fit(model, loaders, config, progress=False)
    return {"precision": precision, "seed": seed, "train_loss": history.train_loss,
            "val_acc": history.val_acc, "seconds": round(time.perf_counter() - start, 1)}


def bf16_units() -> list:
    """The CPU's bf16 matrix instructions (Linux), empty where bf16 is emulated."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []
    return sorted({f for f in ("amx_bf16", "avx512_bf16") if f in flags})


def main() -> int:
    runs = []
    for seed in SEEDS:
        for precision in PRECISIONS:
            runs.append(train(precision, seed))
            last = runs[-1]
            print(f"seed {seed} {precision}: loss {last['train_loss'][-1]:.3f}, "
                  f"validation {100 * last['val_acc'][-1]:.2f}%, {last['seconds']} s", flush=True)
    result = {"command": "OMP_NUM_THREADS=1 python scripts/results/ch12_bf16.py",
              "threads": torch.get_num_threads(), "bf16_units": bf16_units(),
              "versions": {"python": platform.python_version(), "torch": torch.__version__,
                           "resnet_edu": resnet_edu.__version__},
              "num_epochs": NUM_EPOCHS, "runs": runs}
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
