"""Committed results for chapter 11: its four trained networks.

Chapter 11 measures ResNet-20, plain-20, ResNet-56 and plain-56 trained on the
digits with chapter 3's setting: its split, no augmentation, its budget
(``degradation_config``), one thread; they are chapters 3 and 4's networks. Training all
four takes several minutes on two CPU cores, more than the chapter's time budget, so this script trains them with
:func:`resnet_edu.analysis.chapter_networks` (the function the chapter calls
when the file is missing, in Colab for example) and writes their weights and
final training losses to ``book/results/ch11_nets.pt``.

Run from the repository root:

    python scripts/results/ch11_nets.py
"""
from __future__ import annotations

from pathlib import Path

import torch

from resnet_edu.analysis import chapter_networks
from resnet_edu.data import digits_loaders

OUT = Path(__file__).resolve().parents[2] / "book" / "results" / "ch11_nets.pt"


def main() -> int:
    torch.set_num_threads(1)                    # small nets: one thread is faster
    loaders = digits_loaders(batch_size=128, augment=False, seed=0)   # chapter 3's setting
    nets, _, final_loss = chapter_networks(loaders)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state": {name: model.state_dict() for name, model in nets.items()},
                "final_train_loss": final_loss}, OUT)
    for name, loss in final_loss.items():
        print(f"{name:<9} training loss in the last epoch {loss:.3f}")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
