"""Choose the default digits recipe on the VALIDATION part only (the test split is never read).

Each candidate is a model name plus ``TrainConfig`` overrides; it is trained with
``resnet_edu.train.fit`` on ``digits_loaders(seed=S)`` for every seed, exactly as
``python -m resnet_edu train --seed S`` would (the same seeding), and scored by its
final validation accuracy and loss (180 images per seed: one image is 0.56 points,
so compare means over seeds, and prefer the lower validation loss between ties).

    python benchmarks/digits_recipe.py                       # the built-in candidates
    python benchmarks/digits_recipe.py --candidate "resnet20 num_epochs=40 lr=0.05"
"""
from __future__ import annotations

import argparse
import ast
import statistics
import sys
import time

from resnet_edu.data import digits_loaders
from resnet_edu.models import get_model
from resnet_edu.notebook import seed_everything
from resnet_edu.train import digits_config, fit

CANDIDATES = (
    "resnet20",
    "resnet20 label_smoothing=0.1",
    "resnet20 num_epochs=30",
    "resnet20 num_epochs=30 label_smoothing=0.1",
    "resnet20 num_epochs=40 label_smoothing=0.1",
)


def parse_candidate(text: str):
    """``"resnet20 num_epochs=40 lr=0.05"`` -> ("resnet20", {"num_epochs": 40, "lr": 0.05})."""
    name, *pairs = text.split()
    overrides = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        overrides[key] = ast.literal_eval(value)
    return name, overrides


def run(name: str, overrides: dict, seed: int):
    """Train as the train command does; return (val accuracy, val loss, seconds)."""
    settings = dict(overrides, seed=seed, device="cpu")
    batch_size = settings.get("batch_size", digits_config().batch_size)
    seed_everything(seed)
    loaders = digits_loaders(batch_size=batch_size, seed=seed)
    config = digits_config(**settings)
    seed_everything(seed)
    model = get_model(name, num_classes=10, in_channels=1)
    start = time.perf_counter()
    history = fit(model, loaders, config, progress=False)
    return history.val_acc[-1], history.val_loss[-1], time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidate", action="append", help="model and overrides (repeatable)")
    p.add_argument("--seed", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args(argv)
    for text in args.candidate or CANDIDATES:
        name, overrides = parse_candidate(text)
        results = [run(name, overrides, seed) for seed in args.seed]
        accs = [100 * r[0] for r in results]
        print(f"{text:<60} val acc mean {statistics.mean(accs):6.2f}% "
              f"({', '.join(f'{a:.2f}' for a in accs)}), val loss "
              f"{statistics.mean(r[1] for r in results):.4f}, "
              f"{statistics.mean(r[2] for r in results):.1f} s/run", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
