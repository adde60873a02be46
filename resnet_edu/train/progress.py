"""The progress bar of :func:`~resnet_edu.train.fit`, in a terminal and in a notebook.

tqdm shows a widget in notebooks that have ipywidgets. Without them, its text bar
redraws itself with carriage returns, which a notebook stores as one output per
redraw; :class:`NotebookLine` shows the bar as a single display that each redraw
replaces instead. Under torchrun only rank 0 shows a bar (the loop decides).
"""
from __future__ import annotations

import warnings


class NotebookLine:
    """A file for tqdm that shows only its latest line, updated in place in a notebook."""

    encoding = "utf-8"                    # lets tqdm draw its bar with block characters

    def __init__(self):
        from IPython.display import display

        self.text = ""
        self._handle = display({"text/plain": ""}, raw=True, display_id=True)

    def write(self, text: str) -> None:
        line = text.replace("\n", "\r").split("\r")
        line = [part for part in line if part.strip()]
        if line:
            self.text = line[-1]
            if self._handle is not None:      # None outside a running kernel
                self._handle.update({"text/plain": self.text}, raw=True)

    def flush(self) -> None:
        pass


def in_notebook() -> bool:
    """True inside a Jupyter kernel (not in a terminal IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


def progress_bar(total: int, enabled: bool, desc: str):
    """A tqdm bar of ``total`` steps (a disabled one, which prints nothing, if not ``enabled``)."""
    with warnings.catch_warnings():   # without ipywidgets tqdm.auto falls back to text, noisily
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
        from tqdm.notebook import tqdm as widget_tqdm
    options = dict(total=total, disable=not enabled, desc=desc, unit="step", leave=True,
                   mininterval=0.5)
    if enabled and not issubclass(tqdm, widget_tqdm) and in_notebook():
        return tqdm(file=NotebookLine(), **options)
    return tqdm(dynamic_ncols=True, **options)
