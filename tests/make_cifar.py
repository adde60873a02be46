"""Write a small fake CIFAR-10 in the real "python version" format (for offline tests).

The real archive ``cifar-10-python.tar.gz`` unpacks to ``cifar-10-batches-py/``
with ``data_batch_1`` ... ``data_batch_5``, ``test_batch`` and ``batches.meta``.
Each batch is a pickled dict: ``data`` is a uint8 array (N, 3072) whose rows
hold 1024 red, 1024 green and 1024 blue values of a 32x32 image in row-major
order, ``labels`` a list of N ints in 0-9, plus ``batch_label`` and
``filenames``. The real files were pickled by Python 2, so they load with str
keys under ``encoding="latin1"``; pickling str keys from Python 3 gives the same.
Only the number of images (and so the md5 sums) differ from the real thing.

Usage: ``python tests/make_cifar.py OUTDIR`` writes OUTDIR/cifar-10-batches-py
and OUTDIR/cifar-10-python.tar.gz.
"""
from __future__ import annotations

import pickle
import sys
import tarfile
from pathlib import Path

import numpy as np

CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck"]
FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"


def _batch(rng: np.random.Generator, n: int, name: str, start: int) -> dict:
    labels = [(start + i) % 10 for i in range(n)]       # every class equally often
    return {
        "batch_label": name,
        "labels": labels,
        "data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        "filenames": [f"fake_{start + i:05d}.png" for i in range(n)],
    }


def write_cifar10(root, per_batch: int = 20, test_size: int = 30, seed: int = 0,
                  archive: bool = False, bytes_keys: bool = False) -> Path:
    """Write ``root/cifar-10-batches-py`` (and the .tar.gz if ``archive``); return root."""
    root = Path(root)
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def dump(obj: dict, name: str) -> None:
        if bytes_keys:
            obj = {k.encode(): v for k, v in obj.items()}
        with open(folder / name, "wb") as f:
            pickle.dump(obj, f, protocol=2)

    for i in range(1, 6):
        dump(_batch(rng, per_batch, f"training batch {i} of 5", (i - 1) * per_batch),
             f"data_batch_{i}")
    dump(_batch(rng, test_size, "testing batch 1 of 1", 0), "test_batch")
    dump({"num_cases_per_batch": per_batch, "label_names": list(CLASSES), "num_vis": 3072},
         "batches.meta")
    if archive:
        with tarfile.open(root / ARCHIVE, "w:gz") as tar:
            tar.add(folder, arcname=FOLDER)
    return root


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/make_cifar.py OUTDIR")
    out = write_cifar10(sys.argv[1], archive=True)
    print(f"wrote {out / FOLDER} and {out / ARCHIVE}")
