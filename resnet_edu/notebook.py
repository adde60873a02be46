"""What the first cell of every chapter runs: seeds, plot defaults, a version stamp.

Kept tiny on purpose: a reader who opens the hidden setup cell should understand
all of it in one glance.
"""
from __future__ import annotations

import platform
import random

import numpy as np
import torch


def version_stamp() -> str:
    """One line naming the versions that produced a page's outputs."""
    from . import __version__

    device = "CUDA" if torch.cuda.is_available() else "CPU"
    py = ".".join(platform.python_version_tuple()[:2])
    torch_v = torch.__version__.split("+")[0]
    tv_v = _installed_version("torchvision").split("+")[0]
    return (f"Outputs computed with Python {py}, torch {torch_v}, "
            f"torchvision {tv_v}, resnet_edu {__version__} on {device}.")


def _installed_version(name: str) -> str:
    """A package's version from its metadata, without importing it (importing torchvision
    costs a few seconds, mostly torch._dynamo, and a chapter may not need it)."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch so a notebook re-runs to the same numbers."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup_notebook(seed: int = 0, quiet: bool = False) -> None:
    """Seed everything, set readable plot defaults and print the version stamp."""
    seed_everything(seed)
    try:
        import matplotlib

        matplotlib.rcParams.update({
            "figure.figsize": (6.4, 3.6),
            "figure.dpi": 80,          # small PNGs keep the notebooks light
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
        })
    except ImportError:  # plotting is optional for the package itself
        pass
    if not quiet:
        print(version_stamp())


# Where a chapter finds a committed results file (book/results/) when the book's repository
# is not checked out, as in Colab: tests/test_conventions.py checks that this agrees with
# _config.yml's repository and branch.
RESULTS_URL = ("https://raw.githubusercontent.com/resnet-edu/resnet-from-one-convolution/main/"
               "book/results/")


def load_results(name: str, folder: str = "results") -> dict:
    """A committed JSON results file of ``book/results/`` (the chapters run in ``book/``).

    Some experiments take longer than a chapter's time budget; a script in the
    repository runs them and writes a small file that the chapter loads and prints,
    naming the command. Outside a checkout the same file is read from the repository.
    """
    import json
    import urllib.request
    from pathlib import Path

    path = Path(folder) / name
    if path.exists():
        return json.loads(path.read_text())
    with urllib.request.urlopen(RESULTS_URL + name) as response:
        return json.load(response)
