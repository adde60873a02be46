"""Re-execute the book's notebooks in place, top to bottom, in a fresh kernel.

    python scripts/execute_notebooks.py                      # every notebook, in toc order
    python scripts/execute_notebooks.py book/01_convolution.ipynb
    python scripts/execute_notebooks.py --fix-setup          # also rewrite each setup cell
    (or ``python -m resnet_edu.tools.execute_notebooks ...``)

Each notebook runs in a fresh ``python3`` kernel whose working directory is ``book/``
(as under nbval), in :func:`resnet_edu.conventions.kernel_environment` (the checkout
importable, ``PYTHONHASHSEED=0``); the setup cell seeds Python, NumPy and PyTorch.
Outputs and execution counts (1..n) are kept, so the committed notebook is exactly what
the book shows and what nbval checks. A notebook whose execution fails is left untouched
and the command exits 1. A notebook that ran is stamped with a digest of what its outputs
were computed from (its code cells, the results files it loads, the package sources its
outputs can depend on: :mod:`resnet_edu.tools.stamp`); the hygiene test refuses a notebook
whose stamp no longer matches.

``--fix-setup`` first makes the first cell the canonical setup cell built from
``_config.yml`` (:func:`resnet_edu.conventions.setup_source`), tagged ``hide-input``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

from .. import conventions
from ..cli.argtypes import positive_int
from ..debug import enable as enable_debug
from ..debug import print_traceback
from . import stamp

KERNEL_NAME = "python3"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def fix_setup_cell(nb, source: str) -> bool:
    """Make ``nb``'s first cell the canonical setup cell; return True if anything changed."""
    import nbformat

    first = nb.cells[0] if nb.cells else None
    if first is None or not conventions.is_setup_cell(first):
        nb.cells.insert(0, nbformat.v4.new_code_cell(source))
        first, changed = nb.cells[0], True
    else:
        changed = first.source != source
        first.source = source
    tags = first.metadata.setdefault("tags", [])
    if conventions.SETUP_TAG not in tags:
        tags.append(conventions.SETUP_TAG)
        changed = True
    return changed


def execute_notebook(path: Path, timeout: int, fix_setup: bool = False, run: bool = True,
                     root: Optional[Path] = None) -> float:
    """Execute ``path`` in place; return the seconds it took. Raises on a failing cell."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    if fix_setup:
        fix_setup_cell(nb, conventions.setup_source(root))
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.source.strip():
            raise ValueError(f"{path.name}: remove the empty code cell (cell id {cell.get('id')})")
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    start = time.perf_counter()
    if run:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name=KERNEL_NAME,
            allow_errors=False,          # a cell tagged `raises-exception` may still raise
            record_timing=False,         # no timestamps in the committed notebook
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute(env=conventions.kernel_environment(root))  # the kernel's environment
        if root is not None:             # what the outputs were computed from (stamp.py)
            stamp.write(nb, root)
    elapsed = time.perf_counter() - start
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return elapsed


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Re-execute notebooks in place, top to bottom, in a fresh "
        "seeded kernel. Exit codes: 0 ok, 1 a notebook failed, 2 usage or bad input.")
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to execute (default: every notebook of the book, "
                             "in toc order)")
    parser.add_argument("--fix-setup", action="store_true",
                        help="rewrite the first cell as the canonical setup cell from _config.yml")
    parser.add_argument("--no-execute", action="store_true",
                        help="with --fix-setup: only rewrite the setup cells, do not execute")
    parser.add_argument("--debug", action="store_true",
                        help="print the traceback of a failed notebook (RESNET_EDU_DEBUG=1)")
    parser.add_argument("--timeout", type=positive_int, default=300,
                        help="seconds one cell may run (default: 300)")
    return parser


def main(argv: Optional[List[str]] = None,
         prog: str = "python -m resnet_edu.tools.execute_notebooks") -> int:
    args = _parser(prog).parse_args(argv)
    if args.debug:
        enable_debug()
    root = conventions.checkout_root()
    try:
        notebooks = [p.resolve() for p in args.notebooks] or conventions.book_notebooks(root)
    except ValueError as exc:            # installed without the book and no notebook named
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    missing = [str(p) for p in notebooks if not p.is_file() or p.suffix != ".ipynb"]
    if not notebooks or missing:
        print(f"error: not a notebook: {', '.join(missing) or '(none found)'}", file=sys.stderr)
        return EXIT_USAGE

    failures, total = 0, 0.0
    for path in notebooks:
        name = path.relative_to(root) if root and path.is_relative_to(root) else path
        print(f"{name!s:<45} ", end="", flush=True)
        try:
            seconds = execute_notebook(path, args.timeout, fix_setup=args.fix_setup,
                                       run=not args.no_execute, root=root)
        except Exception as exc:  # noqa: BLE001 -- any failure of one notebook is reported
            failures += 1         # with its cell's error, and the others still run
            print("FAILED (notebook left unchanged)")
            print_traceback(exc)  # RESNET_EDU_DEBUG=1: where the runner itself failed
            print(f"    {type(exc).__name__}: {str(exc).strip()[-2000:]}", file=sys.stderr)
            continue
        total += seconds
        print("setup fixed" if args.no_execute else f"{seconds:6.1f} s")
    if not args.no_execute:
        print(f"{'total':<45} {total:6.1f} s")
    return EXIT_FAILED if failures else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
