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


def quiet_library_logs() -> None:
    """Silence log lines that say nothing about a chapter: the profiler's (Kineto's) start and
    stop lines and its GPU probe failing on a CPU-only machine, and the CUDA_HOME notice of
    ``torch.utils.cpp_extension`` (imported by ``torch.utils.benchmark``) where a CUDA
    toolkit is installed without a GPU, as in Colab's CPU runtime. Set ``KINETO_LOG_LEVEL``
    yourself to see the profiler's lines again."""
    import logging
    import os

    os.environ.setdefault("KINETO_LOG_LEVEL", "6")          # above Kineto's highest level
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)


# Figures (issue 24): a chapter's plots are shown at the size `figure.dpi` gives them, but
# drawn at twice that resolution, sharp on a high-density screen, and stored as 256-colour
# PNGs (lines, text and colour maps need no more), which makes most of them smaller than
# the plain 80-dpi PNG. A figure that is mostly a photograph or a large image would grow
# past SHARP_FIGURE_BYTES at twice the resolution; it keeps the plain resolution, still
# as a palette PNG. PNG rather than SVG: nbval compares SVG text byte for byte, and a
# plotted float that moves in its last digit between two machines would fail it.
SHARP_FIGURE_BYTES = 60_000


def _palette_png(png: bytes) -> bytes:
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
    return out.getvalue()


def figure_png(fig) -> tuple[bytes, dict] | None:
    """A figure as (PNG bytes, {"width": display width}) for Jupyter's inline display."""
    import io

    from PIL import Image

    if not fig.axes and not fig.lines:
        return None
    for scale in (2, 1):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=scale * fig.dpi, bbox_inches="tight",
                    facecolor="white")
        data = _palette_png(buffer.getvalue())
        if scale == 1 or len(data) <= SHARP_FIGURE_BYTES:
            break
    width = Image.open(io.BytesIO(data)).size[0] // scale
    return data, {"width": width}


def compact_figures() -> None:
    """Display matplotlib figures with `figure_png` in this IPython kernel (if any)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or "image/png" not in shell.display_formatter.formatters:
        return
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    # Loading the inline backend registers the backend's own PNG formatter (pyplot loads
    # it with the first figure); load it now, so that ours comes after it.
    plt.switch_backend(plt.get_backend())

    shell.display_formatter.formatters["image/png"].for_type(Figure, figure_png)


def setup_notebook(seed: int = 0, quiet: bool = False) -> None:
    """Seed everything, quiet library log lines, set readable plot defaults and print the
    version stamp."""
    seed_everything(seed)
    quiet_library_logs()
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
        compact_figures()
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
