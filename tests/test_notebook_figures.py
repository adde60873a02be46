"""Every figure a chapter draws has alt text in book/figure_alt.yml (issue 24).

_ext/figure_alt.py puts the texts on the figures when the book is built (and the strict
build fails on a figure without one); this test says the same in a second, without a build:
each image output of each notebook (a matplotlib PNG, a Graphviz SVG) has an entry under
its notebook and cell id, and each entry belongs to a cell that draws a figure.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("figure_alt", ROOT / "_ext" / "figure_alt.py")
figure_alt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(figure_alt)

NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
HIDDEN = {"remove-output", "remove-cell"}


def figure_cells(path: Path) -> list[str]:
    """Ids of the cells whose shown outputs include an image."""
    cells = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code" or HIDDEN & set(cell.metadata.get("tags", [])):
            continue
        if any(key.startswith("image/") for out in cell.get("outputs", [])
               for key in out.get("data", {})):
            cells.append(cell.get("id"))
    return cells


def test_the_alt_text_file_names_only_notebooks_of_the_book():
    texts = figure_alt.load_alt_texts()
    assert texts, "book/figure_alt.yml is missing or empty"
    assert set(texts) <= {p.stem for p in NOTEBOOKS}, set(texts) - {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_figure_has_alt_text(path):
    texts = figure_alt.load_alt_texts().get(path.stem, {})
    cells = figure_cells(path)
    missing = [c for c in cells if not texts.get(c)]
    assert not missing, (f"{path.name}: figures without alt text in book/figure_alt.yml "
                         f"(cell ids): {missing}")
    stale = sorted(set(texts) - set(cells))
    assert not stale, f"{path.name}: book/figure_alt.yml names cells that draw no figure: {stale}"
    short = [c for c in cells if len(texts[c].split()) < 12]
    assert not short, f"{path.name}: alt text too short to say what the figure shows: {short}"


def test_a_figure_without_alt_text_is_found(tmp_path):
    """The check above can fail: a notebook with one unlisted figure is reported."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot()", id="newfig01")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=",
                                                                 "text/plain": "<Figure>"})]
    nb.cells = [cell]
    path = tmp_path / "99_new.ipynb"
    nbformat.write(nb, path)
    assert figure_cells(path) == ["newfig01"]
    assert "newfig01" not in figure_alt.load_alt_texts().get("99_new", {})


def test_figures_are_sharp_palette_pngs_unless_that_makes_them_heavy():
    """setup_notebook's figure format: twice the resolution as a 256-colour PNG, shown at the
    size the figure's dpi gives it; a noisy image that would pass SHARP_FIGURE_BYTES at twice
    the resolution keeps the plain resolution."""
    import io

    import matplotlib
    import numpy as np
    from PIL import Image

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resnet_edu.notebook import SHARP_FIGURE_BYTES, figure_png

    fig, ax = plt.subplots(figsize=(4, 3), dpi=80)
    ax.plot(np.arange(10) ** 2)
    data, meta = figure_png(fig)
    image = Image.open(io.BytesIO(data))
    assert image.mode == "P" and image.size[0] in (2 * meta["width"], 2 * meta["width"] + 1)
    assert 280 <= meta["width"] <= 330           # about 4 inches at 80 dpi, trimmed
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 6), dpi=80)
    ax.imshow(np.random.default_rng(0).random((400, 600)))
    data, meta = figure_png(fig)
    image = Image.open(io.BytesIO(data))
    assert image.size[0] == meta["width"] and len(data) > SHARP_FIGURE_BYTES / 4
    plt.close(fig)
    assert figure_png(plt.figure()) is None       # an empty figure shows nothing
