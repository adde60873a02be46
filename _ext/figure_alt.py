"""Alt text for the figures that notebook cells draw (issue 24).

A figure a cell draws (a matplotlib plot, a Graphviz diagram) becomes an `<img>` whose alt
text myst-nb sets to the image's file name unless the cell's metadata says otherwise.
`book/figure_alt.yml` holds, per notebook and cell id, one or two sentences that say what
the figure shows; this extension puts them on the images as each notebook is read, so
the notebooks themselves need no edit when a figure or its text changes. A figure without
an entry is a build warning (the strict build fails), and so is an entry whose cell draws
no figure; tests/test_notebook_figures.py checks the same without building.

The file's shape:

    01_convolution:          # notebook stem in book/
      f7a79e8f: >-           # cell id (nbformat 4.5)
        Six panels: ...      # what the figure shows, not only its title
"""
from __future__ import annotations

from pathlib import Path

import yaml
from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

ALT_FILE = Path(__file__).resolve().parents[1] / "book" / "figure_alt.yml"


def load_alt_texts(path: Path = ALT_FILE) -> dict[str, dict[str, str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {str(nb): {str(cell): " ".join(str(text).split()) for cell, text in (cells or {}).items()}
            for nb, cells in (data or {}).items()}


def _cell_container(node):
    while node is not None:
        if isinstance(node, nodes.container) and node.get("nb_element") == "cell_code":
            return node
        node = node.parent
    return None


def add_alt_text(app, doctree):
    source = Path(app.env.doc2path(app.env.docname))
    if source.suffix != ".ipynb":
        return
    import nbformat

    cell_ids = [cell.get("id") for cell in nbformat.read(source, as_version=4).cells]
    alt_file = Path(app.srcdir, app.config.figure_alt_file)   # the edition's (issue 23)
    texts = load_alt_texts(alt_file).get(source.stem, {})
    used = set()
    for image in doctree.findall(nodes.image):
        cell = _cell_container(image)
        if cell is None:
            continue
        cell_id = cell_ids[cell["cell_index"]]
        if texts.get(cell_id):
            image["alt"] = texts[cell_id]
            used.add(cell_id)
        else:
            logger.warning(f"the figure of cell {cell_id} has no alt text: add "
                           f"'{source.stem}: {cell_id}: <what it shows>' to {app.config.figure_alt_file}",
                           location=image, type="book", subtype="figure_alt")
    for cell_id in sorted(set(texts) - used):
        logger.warning(f"{app.config.figure_alt_file}: cell {cell_id} of {source.name} draws no figure",
                       location=(app.env.docname, None), type="book", subtype="figure_alt")


def setup(app):
    # The Korean edition reads locales/ko/figure_alt.yml (locales/ko/config.yml), same keys.
    app.add_config_value("figure_alt_file", "book/figure_alt.yml", "env", types=[str])
    app.connect("doctree-read", add_alt_text)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
