"""Does the default ``python -m resnet_edu train`` beat a tuned RBF SVM on the digits?

For each seed (default 0, 1, 2) the split is ``resnet_edu.data.digits_loaders(seed=S)``
(1,257 training, 180 validation, 360 test images, stratified). On that split:

- the ResNet: ``python -m resnet_edu train --seed S`` exactly as a new user runs it
  (a subprocess with the command's default settings), its printed test accuracy
  and its wall time;
- the classical baseline, ``resnet_edu.baselines.tuned_svm``: an RBF support-vector
  machine on the 64 raw pixels (scaled to [0, 1]) whose C and gamma are chosen by
  5-fold cross-validation (``GridSearchCV``) on the same training part; its test
  accuracy and the time of the search plus the final fit.

The test split is only ever used for the final numbers here, never to choose
anything. Prints one line per seed and the mean and standard deviation of each. The thread
count (``OMP_NUM_THREADS``) is printed and stored: it changes the order of floating-point
sums, so the same command trains a slightly different network with 1 and with 2 threads.

    python benchmarks/digits_vs_svm.py                  # seeds 0 1 2, both models
    python benchmarks/digits_vs_svm.py --models svm
    python benchmarks/digits_vs_svm.py --train-args "--epochs 40"   # a candidate recipe
    OMP_NUM_THREADS=1 python benchmarks/digits_vs_svm.py --out book/results/digits_vs_svm.json
                                                      # chapter 9's file (one thread, as ch. 9)
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import resnet_edu
from resnet_edu.baselines import SVM_GRID, svm_accuracy, tuned_svm
from resnet_edu.data import digits_loaders

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "book" / "results" / "digits_vs_svm.json"
BUDGET_SECONDS = 60                                                 # one default run, 2 idle cores
GRIDS = {"book": SVM_GRID,                                          # resnet_edu.baselines
         "small": {"C": (1.0, 10.0), "gamma": (0.03, 0.3)}}         # for smoke tests


def svm_run(seed: int, folds: int = 5, grid: str = "book"):
    """Tune C and gamma by cross-validation on the training part; test accuracy and seconds."""
    loaders = digits_loaders(seed=seed)
    start = time.perf_counter()
    search = tuned_svm(loaders.train, grid=GRIDS[grid], folds=folds, seed=seed)
    seconds = time.perf_counter() - start
    return svm_accuracy(search, loaders.test), seconds, search.best_params_


def resnet_run(seed: int, extra: list[str]):
    """``python -m resnet_edu train --seed S`` in a subprocess: test accuracy, wall seconds and
    the validation accuracy it printed (the number to choose recipes by)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "resnet_edu", "train", "--seed", str(seed),
               "--no-progress", "--out", str(Path(tmp) / "model.pt"), *extra]
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    match = re.search(r"test accuracy: ([0-9.]+)%", done.stdout)
    if match is None:
        raise RuntimeError(f"no 'test accuracy' line in the output of {shlex.join(cmd)}:\n"
                           f"{done.stdout}")
    val = re.search(r"validation accuracy after epoch \d+: ([0-9.]+)%", done.stdout)
    val_acc = float(val.group(1)) / 100 if val else float("nan")
    return float(match.group(1)) / 100, seconds, val_acc


def _summary(name: str, values: list[float], times: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return (f"{name:<8} mean {100 * statistics.mean(values):6.2f}% +- {100 * spread:.2f} "
            f"(min {100 * min(values):.2f}, max {100 * max(values):.2f}); "
            f"wall time mean {statistics.mean(times):.1f} s, max {max(times):.1f} s")


def _write(path: Path, rows: list, args) -> None:
    """The per-seed rows as JSON, with the command that wrote them (chapter 9 loads it)."""
    from resnet_edu.train import digits_config

    result = {"command": shlex.join(["python", "benchmarks/digits_vs_svm.py", *args.argv]),
              "versions": {"python": platform.python_version(), "torch": torch.__version__,
                           "resnet_edu": resnet_edu.__version__},
              "svm_grid": {k: list(v) for k, v in GRIDS[args.grid].items()}, "folds": args.folds,
              "train_args": args.train_args, "train_defaults": repr(digits_config()),
              "threads": torch.get_num_threads(),
              "rows": rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")


def _row(seed: int, args, extra: list) -> dict:
    row = {"seed": seed}
    if "svm" in args.models:
        acc, secs, best = svm_run(seed, args.folds, args.grid)
        row.update(svm_test=acc, svm_seconds=round(secs, 2), C=best["C"], gamma=best["gamma"])
    if "resnet" in args.models:
        acc, secs, val_acc = resnet_run(seed, extra)
        row.update(resnet_test=acc, resnet_seconds=round(secs, 1), resnet_val=val_acc)
    return row


def _line(row: dict) -> str:
    line = f"{row['seed']:>4}  {'-':>9} {'-':>6}  {'-':>7} {'-':>7}"
    if "svm_test" in row:
        line = (f"{row['seed']:>4}  {100 * row['svm_test']:8.2f}% {row['svm_seconds']:6.1f}  "
                f"{row['C']:7.3g} {row['gamma']:7.3g}")
    if "resnet_test" in row:
        line += (f"  {100 * row['resnet_test']:10.2f}% {row['resnet_seconds']:9.1f}  "
                 f"(validation {100 * row['resnet_val']:.2f}%)")
    return line


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--models", nargs="+", choices=("svm", "resnet"), default=["svm", "resnet"])
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    p.add_argument("--grid", choices=list(GRIDS), default="book",
                   help="C and gamma grid (book: resnet_edu.baselines.SVM_GRID)")
    p.add_argument("--train-args", default="", help="extra arguments for the train command")
    p.add_argument("--out", type=Path, help=f"also write the rows as JSON (the book reads "
                                            f"{RESULTS.relative_to(ROOT)})")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    extra = shlex.split(args.train_args)
    print(f"{torch.get_num_threads()} CPU thread(s) per run (OMP_NUM_THREADS; the train command "
          f"inherits it: another thread count sums in another order, so the runs differ)")
    print(f"{'seed':>4}  {'SVM test':>9} {'SVM s':>6}  {'C':>7} {'gamma':>7}  "
          f"{'ResNet test':>11} {'ResNet s':>9}")
    rows = []
    for seed in args.seed:
        rows.append(_row(seed, args, extra))
        print(_line(rows[-1]), flush=True)
    svm = [r["svm_test"] for r in rows if "svm_test" in r]
    net = [r["resnet_test"] for r in rows if "resnet_test" in r]
    if svm:
        print(_summary("SVM", svm, [r["svm_seconds"] for r in rows]))
    if net:
        print(_summary("ResNet", net, [r["resnet_seconds"] for r in rows]))
    if svm and net:
        gap = statistics.mean(net) - statistics.mean(svm)
        longest = max(r["resnet_seconds"] for r in rows)
        print(f"ResNet - SVM: {100 * gap:+.2f} points; the longest ResNet run took {longest:.1f} s "
              f"({'within' if longest <= BUDGET_SECONDS else 'over'} the {BUDGET_SECONDS} s "
              f"budget of one default run)")
    if args.out:
        _write(args.out, rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
