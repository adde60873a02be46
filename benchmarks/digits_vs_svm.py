"""Does the default ``python -m resnet_edu train`` beat a tuned RBF SVM on the digits?

For each seed (default 0, 1, 2) the split is ``resnet_edu.data.digits_loaders(seed=S)``
(1,257 training, 180 validation, 360 test images, stratified). On that split:

- the ResNet: ``python -m resnet_edu train --seed S`` exactly as a new user runs it
  (a subprocess with the command's default settings), its printed test accuracy
  and its wall time;
- the classical baseline: an RBF support-vector machine on the 64 raw pixels
  (scaled to [0, 1]) whose C and gamma are chosen by 5-fold cross-validation
  (``GridSearchCV``) on the same training part; its test accuracy and the time
  of the search plus the final fit.

The test split is only ever used for the final numbers here, never to choose
anything. Prints one line per seed and the mean and standard deviation of each.

    python benchmarks/digits_vs_svm.py                  # seeds 0 1 2, both models
    python benchmarks/digits_vs_svm.py --models svm
    python benchmarks/digits_vs_svm.py --train-args "--epochs 40"   # a candidate recipe
"""
from __future__ import annotations

import argparse
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from resnet_edu.data import digits_loaders

GRIDS = {   # C and gamma (on pixels in [0, 1]; scikit-learn's "scale" is about 0.1 here)
    "full": {"C": np.logspace(-1, 3, 9), "gamma": np.logspace(-3, 0, 10)},
    "small": {"C": [1.0, 10.0], "gamma": [0.03, 0.3]},          # for smoke tests
}


def _features(loader):
    """Raw pixels in [0, 1] as (N, 64), without the loader's augmentation or normalisation."""
    x = loader.images.reshape(len(loader.images), -1).numpy().astype(np.float64)
    return x * loader.scale, loader.labels.numpy()


def svm_run(seed: int, folds: int = 5, grid: str = "full"):
    """Tune C and gamma by cross-validation on the training part; test accuracy and seconds."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import SVC

    loaders = digits_loaders(seed=seed)
    x_train, y_train = _features(loaders.train)
    x_test, y_test = _features(loaders.test)
    start = time.perf_counter()
    search = GridSearchCV(SVC(kernel="rbf"), GRIDS[grid],
                          cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    search.fit(x_train, y_train)                    # refits the best on the whole training part
    seconds = time.perf_counter() - start
    accuracy = float((search.predict(x_test) == y_test).mean())
    return accuracy, seconds, search.best_params_


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--models", nargs="+", choices=("svm", "resnet"), default=["svm", "resnet"])
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    p.add_argument("--grid", choices=list(GRIDS), default="full", help="C and gamma grid")
    p.add_argument("--train-args", default="", help="extra arguments for the train command")
    args = p.parse_args(argv)
    extra = shlex.split(args.train_args)
    svm, net = ([], []), ([], [])
    print(f"{'seed':>4}  {'SVM test':>9} {'SVM s':>6}  {'C':>7} {'gamma':>7}  "
          f"{'ResNet test':>11} {'ResNet s':>9}")
    for seed in args.seed:
        line = f"{seed:>4}  {'-':>9} {'-':>6}  {'-':>7} {'-':>7}"
        if "svm" in args.models:
            acc, secs, best = svm_run(seed, args.folds, args.grid)
            svm[0].append(acc)
            svm[1].append(secs)
            line = (f"{seed:>4}  {100 * acc:8.2f}% {secs:6.1f}  {best['C']:7.3g} "
                    f"{best['gamma']:7.3g}")
        if "resnet" in args.models:
            acc, secs, val_acc = resnet_run(seed, extra)
            net[0].append(acc)
            net[1].append(secs)
            line += f"  {100 * acc:10.2f}% {secs:9.1f}  (validation {100 * val_acc:.2f}%)"
        print(line, flush=True)
    if svm[0]:
        print(_summary("SVM", *svm))
    if net[0]:
        print(_summary("ResNet", *net))
    if svm[0] and net[0]:
        gap = statistics.mean(net[0]) - statistics.mean(svm[0])
        print(f"ResNet - SVM: {100 * gap:+.2f} points "
              f"({'goal reached' if gap >= 0 else 'goal NOT reached'}: ResNet mean >= SVM mean, "
              f"each ResNet run <= 60 s on 2 idle cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
