"""Does depth pay off on the digits? Residual nets of several depths, several seeds.

Chapter 4 trains ResNet-8, ResNet-20 and ResNet-56 once each (seed 0) in chapter 3's
setting: the 1,257 training digits of ``digits_loaders(augment=False, seed=0)``, no
augmentation, ``degradation_config`` (15 epochs, 150 steps), one thread. Its shallowest net
ended with the best test accuracy. Is that depth or chance? This script repeats the same
runs with more seeds (the seed sets the initial weights and the order of the batches; the
split stays chapter 3's) and records, for every run, the final training loss and the
eval-mode loss and accuracy on the training and the test images (``evaluate_runs``).
Chapters 4 and 11 load the file and print what they use.

    OMP_NUM_THREADS=1 python benchmarks/digits_depth.py --out book/results/digits_depth.json
    python benchmarks/digits_depth.py --depths 8 --seeds 0 --epochs 1      # a smoke test

The thread count is printed and stored: another count adds each step's sums in another
order, and a training run then ends elsewhere (CONTRIBUTING.md).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import resnet_edu
from resnet_edu.cli.argtypes import positive_int, seed
from resnet_edu.data import digits_loaders
from resnet_edu.experiments import degradation_config, evaluate_runs, train_depth_sweep
from resnet_edu.models import cifar_resnet

COMMAND = "OMP_NUM_THREADS=1 python benchmarks/digits_depth.py --out book/results/digits_depth.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=positive_int, nargs="+", default=[8, 20, 32, 56],
                        help="CIFAR ResNet depths, each 6n+2 (default: 8 20 32 56)")
    parser.add_argument("--seeds", type=seed, nargs="+", default=[0, 1, 2, 3, 4],
                        help="training seeds (default: 0 1 2 3 4)")
    parser.add_argument("--epochs", type=positive_int, default=15,
                        help="epochs per run (default: 15, chapter 3's budget)")
    parser.add_argument("--out", type=Path, help="write the results as JSON to this file")
    args = parser.parse_args(argv)
    bad = [d for d in args.depths if d < 8 or (d - 2) % 6]
    if bad:
        parser.exit(2, f"error: --depths must be 6n+2 with n >= 1 (8, 14, 20, ...), "
                       f"got {', '.join(map(str, bad))}\n")
    if args.out is not None and not args.out.parent.is_dir():
        parser.exit(2, f"error: --out: folder {args.out.parent} does not exist\n")
    return args


def run_seed(depths, seed_value: int, num_epochs: int, loaders) -> list:
    """One record per depth, trained with ``degradation_config(seed=seed_value)``."""
    config = degradation_config(seed=seed_value, num_epochs=num_epochs)
    runs = train_depth_sweep(lambda depth: cifar_resnet(depth, in_channels=1), depths,
                             loaders, config)
    evaluations = evaluate_runs(runs, loaders)
    records = []
    for depth, run in runs.items():
        train_loss, train_acc, test_loss, test_acc = evaluations[depth]
        records.append({"depth": depth, "seed": seed_value, "num_epochs": num_epochs,
                        "parameters": sum(p.numel() for p in run.model.parameters()),
                        "final_train_loss": run.final_train_loss,
                        "train_loss": train_loss, "train_acc": train_acc,
                        "test_loss": test_loss, "test_acc": test_acc})
        print(f"ResNet-{depth:<3} seed {seed_value}: final training loss "
              f"{run.final_train_loss:.4f}, train acc {train_acc:.1%}, test acc {test_acc:.1%}",
              flush=True)
    return records


def summary(records: list) -> str:
    lines = ["depth  train acc (min)  test acc: mean   min    max   (over seeds)"]
    for depth in sorted({r["depth"] for r in records}):
        accs = [r["test_acc"] for r in records if r["depth"] == depth]
        train = min(r["train_acc"] for r in records if r["depth"] == depth)
        lines.append(f"{depth:>5}  {train:>15.1%}  {statistics.mean(accs):>14.1%}  "
                     f"{min(accs):>5.1%}  {max(accs):>5.1%}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # as chapter 4: these 8x8 nets gain little from more
    print(f"threads: {torch.get_num_threads()} (OMP default here {threads})")
    loaders = digits_loaders(batch_size=128, augment=False, seed=0)     # chapter 3's split
    start = time.perf_counter()
    records = [r for s in args.seeds for r in run_seed(args.depths, s, args.epochs, loaders)]
    print(summary(records))
    if args.out is not None:
        result = {"command": COMMAND, "threads": torch.get_num_threads(),
                  "versions": {"python": platform.python_version(),
                               "torch": torch.__version__, "resnet_edu": resnet_edu.__version__},
                  "seconds": round(time.perf_counter() - start),
                  "split": {"train": loaders.train.num_samples, "test": loaders.test.num_samples},
                  "runs": records}
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
