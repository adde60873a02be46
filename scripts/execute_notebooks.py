#!/usr/bin/env python
"""Re-execute the book's notebooks in place, top to bottom, in a fresh kernel.

    python scripts/execute_notebooks.py                      # every notebook, in toc order
    python scripts/execute_notebooks.py book/01_convolution.ipynb
    python scripts/execute_notebooks.py --fix-setup          # also rewrite each setup cell

Each notebook runs in a fresh ``python3`` kernel whose working directory is ``book/``
(as under nbval), with the repository root importable and ``PYTHONHASHSEED=0``; the
setup cell seeds Python, NumPy and PyTorch. Outputs and execution counts (1..n) are
kept, so the committed notebook is exactly what the book shows and what nbval checks.
A notebook whose execution fails is left untouched and the script exits non-zero.

``--fix-setup`` first makes the first cell the canonical setup cell built from
``_config.yml`` (repository URL and branch), tagged ``hide-input``.

The helpers here (``canonical_setup_source``, ``toc_files``, ...) are also used by the
tests, so the setup cell and the toc are read in exactly one way.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK_DIR = ROOT / "book"
KERNEL_NAME = "python3"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
SETUP_TAG = "hide-input"

SETUP_TEMPLATE = '''\
# Setup: in Colab this installs resnet_edu from the book's repository; locally it does nothing.
import importlib.util, subprocess, sys
if importlib.util.find_spec("resnet_edu") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "git+{url}@{branch}"], check=True)
import resnet_edu
resnet_edu.setup_notebook(seed=0)'''


def load_config(root: Path = ROOT) -> dict:
    import yaml

    with open(root / "_config.yml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def repository(root: Path = ROOT) -> tuple[str, str]:
    """(url, branch) of the book's repository, from ``_config.yml``."""
    repo = load_config(root)["repository"]
    return repo["url"].rstrip("/"), repo["branch"]


def canonical_setup_source(root: Path = ROOT) -> str:
    """The exact source of the first cell of every notebook."""
    url, branch = repository(root)
    return SETUP_TEMPLATE.format(url=url, branch=branch)


def toc_files(root: Path = ROOT) -> list[str]:
    """Every ``file:`` entry of ``_toc.yml`` (root first), in reading order, as written."""
    import yaml

    with open(root / "_toc.yml", encoding="utf-8") as f:
        toc = yaml.safe_load(f)
    found: list[str] = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk({k: v for k, v in toc.items() if k != "root"})
    return found


def resolve_toc_entry(entry: str, root: Path = ROOT) -> Path | None:
    """The file a toc entry names (the entry may omit the suffix), or None if missing."""
    path = root / entry
    if path.suffix in (".ipynb", ".md") and path.is_file():
        return path
    for suffix in (".ipynb", ".md"):
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            return candidate
    return None


def book_notebooks(root: Path = ROOT) -> list[Path]:
    """The book's notebooks: toc order first, then any notebook the toc does not list yet."""
    in_toc = [p for p in (resolve_toc_entry(e, root) for e in toc_files(root))
              if p is not None and p.suffix == ".ipynb"]
    rest = sorted(p for p in (root / "book").glob("*.ipynb") if p not in in_toc)
    return in_toc + rest


def fix_setup_cell(nb, source: str) -> bool:
    """Make ``nb``'s first cell the canonical setup cell; return True if anything changed."""
    import nbformat

    first = nb.cells[0] if nb.cells else None
    is_setup = (first is not None and first.cell_type == "code"
                and first.source.lstrip().startswith("# Setup"))
    if not is_setup:
        nb.cells.insert(0, nbformat.v4.new_code_cell(source))
        first = nb.cells[0]
        changed = True
    else:
        changed = first.source != source
        first.source = source
    tags = first.metadata.setdefault("tags", [])
    if SETUP_TAG not in tags:
        tags.append(SETUP_TAG)
        changed = True
    return changed


def kernel_environment(root: Path = ROOT) -> dict:
    """Environment for the kernels: repository importable, hashing deterministic."""
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures inline, always
    return env


def execute_notebook(path: Path, timeout: int, fix_setup: bool = False,
                     run: bool = True) -> float:
    """Execute ``path`` in place; return the seconds it took. Raises on a failing cell."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    if fix_setup:
        fix_setup_cell(nb, canonical_setup_source())
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
        client.execute(env=kernel_environment())   # passed on to the kernel's process
    elapsed = time.perf_counter() - start
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python scripts/execute_notebooks.py",
        description="Re-execute notebooks in place, top to bottom, in a fresh seeded kernel.")
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to execute (default: every book/*.ipynb in toc order)")
    parser.add_argument("--fix-setup", action="store_true",
                        help="rewrite the first cell as the canonical setup cell from _config.yml")
    parser.add_argument("--no-execute", action="store_true",
                        help="with --fix-setup: only rewrite the setup cells, do not execute")
    parser.add_argument("--timeout", type=int, default=300,
                        help="seconds one cell may run (default: 300)")
    args = parser.parse_args(argv)

    notebooks = [p.resolve() for p in args.notebooks] or book_notebooks()
    if not notebooks:
        print("no notebooks found in book/", file=sys.stderr)
        return 1
    missing = [str(p) for p in notebooks if not p.is_file() or p.suffix != ".ipynb"]
    if missing:
        print(f"not a notebook: {', '.join(missing)}", file=sys.stderr)
        return 2

    failures = 0
    total = 0.0
    for path in notebooks:
        name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{str(name):<45} ", end="", flush=True)
        try:
            seconds = execute_notebook(path, args.timeout, fix_setup=args.fix_setup,
                                       run=not args.no_execute)
        except Exception as exc:  # report the failing cell and go on with the others
            failures += 1
            print("FAILED (notebook left unchanged)")
            print(f"    {type(exc).__name__}: {str(exc).strip()[-2000:]}", file=sys.stderr)
            continue
        total += seconds
        print("setup fixed" if args.no_execute else f"{seconds:6.1f} s")
    if not args.no_execute:
        print(f"{'total':<45} {total:6.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
