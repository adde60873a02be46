"""How long does the book take to check? Strict nbval per notebook, and the build.

    python scripts/nbval_times.py                 # every notebook (toc order) + the build
    python scripts/nbval_times.py book/03_degradation.ipynb --no-build
    (or ``python -m resnet_edu.tools.nbval_times ...``)

Each notebook runs in its own ``python -m pytest NOTEBOOK`` (the options of pytest.ini:
strict nbval, sanitize file, fresh kernel), so each time includes the start of pytest and
of the kernel, as in CI. The book is then built as the tests build it
(``jupyter-book build . -W -n --keep-going``, into a temporary folder).

Budgets (BOOK.md): <= 90 s per notebook, <= 480 s for all notebooks together (2 CPU
cores), <= 60 s for the build. Exits 1 if a notebook fails or a budget is exceeded,
2 on bad input. Set OMP_NUM_THREADS=1 in the environment to measure single-threaded.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Tuple

from .. import conventions

NOTEBOOK_BUDGET_S = 90.0
TOTAL_BUDGET_S = 480.0
BUILD_BUDGET_S = 60.0


def build_command(root: Path, out_dir: Path) -> List[str]:
    """The strict build, as the tests run it (jupyter-book's CLI, in this Python)."""
    return [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
            str(root), "--path-output", str(out_dir), "-W", "-n", "--keep-going"]


def time_nbval(path: Path, root: Path) -> Tuple[float, bool, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", str(path)], cwd=root,
                          env=conventions.kernel_environment(root), capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    return seconds, proc.returncode == 0, (lines[-1] if lines else proc.stderr.strip()[-200:])


def time_build(root: Path) -> Tuple[float, bool]:
    with tempfile.TemporaryDirectory(prefix="book-build-") as out:
        start = time.perf_counter()
        proc = subprocess.run(build_command(root, Path(out)), cwd=root,
                              env=conventions.kernel_environment(root),
                              capture_output=True, text=True)
        return time.perf_counter() - start, proc.returncode == 0


def _time_notebooks(notebooks: List[Path], root: Path, width: int) -> Tuple[float, bool]:
    ok, total = True, 0.0
    for path in notebooks:
        seconds, passed, summary = time_nbval(path, root)
        total += seconds
        over = seconds > NOTEBOOK_BUDGET_S
        ok &= passed and not over
        verdict = ("OVER BUDGET " if over else "") + ("ok" if passed else f"FAILED: {summary}")
        print(f"{path.name:<{width}}  {seconds:8.1f}  {NOTEBOOK_BUDGET_S:6.0f}  {verdict}",
              flush=True)
    return total, ok


def main(argv: Optional[List[str]] = None,
         prog: str = "python -m resnet_edu.tools.nbval_times") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to time (default: every notebook of the book)")
    parser.add_argument("--no-build", action="store_true", help="do not time the book build")
    args = parser.parse_args(argv)
    try:
        root = conventions.book_root()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    notebooks = [p.resolve() for p in args.notebooks] or conventions.book_notebooks(root)
    missing = [str(p) for p in notebooks if not p.is_file() or p.suffix != ".ipynb"]
    if missing:
        print(f"error: not a notebook: {', '.join(missing)}", file=sys.stderr)
        return 2

    width = max([len(p.name) for p in notebooks] + [len("book build (-W)")])
    print(f"{'notebook':<{width}}  {'seconds':>8}  {'budget':>6}  result")
    total, ok = _time_notebooks(notebooks, root, width)
    over = total > TOTAL_BUDGET_S
    ok &= not over
    print(f"{'all notebooks':<{width}}  {total:8.1f}  {TOTAL_BUDGET_S:6.0f}  "
          f"{'OVER BUDGET' if over else 'ok'}")
    if not args.no_build:
        seconds, built = time_build(root)
        over = seconds > BUILD_BUDGET_S
        ok &= built and not over
        verdict = ("OVER BUDGET " if over else "") + ("ok" if built else "FAILED (warnings)")
        print(f"{'book build (-W)':<{width}}  {seconds:8.1f}  {BUILD_BUDGET_S:6.0f}  {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
