"""The stamp of an executed notebook: a digest of everything its outputs were computed from.

``python scripts/execute_notebooks.py`` writes the stamp into the notebook's metadata
(``metadata["resnet_edu"]["inputs"]``) after a successful run, and
``tests/test_notebook_hygiene.py`` recomputes it: a notebook whose code, results files or
package sources changed since its outputs were computed fails with the command that
refreshes it. nbval alone cannot catch this for a cell whose output it ignores (a
training log, a timing): such an output stays whatever it was when last executed.

What a notebook's outputs can depend on, and so what the stamp covers:

- its **code cells**, in order (markdown does not run; the setup cell is a code cell);
- the **results files** of ``book/results/`` that its code names (``load_results(...)``,
  a ``.pt`` checkpoint): the long runs it prints and checks;
- the **package** ``resnet_edu``, every ``.py`` file of it except
  ``classroom/`` (grading, the sandbox and the student-notebook export run on copies of the
  notebooks, never inside one), ``tools/`` (this runner and the nbval timer: they execute
  notebooks, a notebook does not call them), and the exercise checks of *other* chapters
  (``exercises/chNN.py`` counts only for the notebooks that call ``check("chNN-...")``; the
  registry and the kit, ``exercises/__init__.py`` and ``_kit.py``, count for all), and the
  command line (``cli/``, ``__main__.py``) for a notebook whose code does not run it: it
  counts where the code runs ``python -m resnet_edu`` (chapter 13 under ``torchrun``) or
  calls a ``cli_*`` helper (chapter 5's ``cli_check``), the only ways into it from outside
  (``tests/test_conventions.py`` checks that no other module imports it).
  Everything else can change what a cell prints: the models, the training loop and its
  presets, the data split, the checker, the conventions that set the kernel's environment.

The digest is per part, so the test can say what changed: the code, which results file, or
which package files. The library versions are checked by the version stamp of the setup
cell, not here.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from ..conventions import METADATA_KEY

STAMP_KEY = "inputs"
PACKAGE = "resnet_edu"
NOT_INPUTS = ("classroom", "tools")          # package folders no notebook's output depends on
COMMAND_LINE = ("cli", "__main__.py")          # counts only for a notebook that runs it
# `python -m resnet_edu ...` (chapter 13's torchrun) or a `cli_*` helper (chapter 5's cli_check)
RUNS_COMMAND_LINE = re.compile(r"-m[\"',\s]+resnet_edu\b|resnet_edu\.(cli|__main__)\b|\bcli_\w+")
RESULTS_FOLDER = Path("book") / "results"
REFRESH = "python scripts/execute_notebooks.py"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    data = path.read_bytes()
    return _digest(data if path.suffix == ".pt" else data.replace(b"\r\n", b"\n"))


def _code_cells(nb) -> List[str]:
    return [c["source"] if isinstance(c["source"], str) else "".join(c["source"])
            for c in nb["cells"] if c["cell_type"] == "code"]


def checked_chapters(code: Iterable[str]) -> List[str]:
    """The chapters whose exercise checks the code calls: ``check("ch09-...")`` -> ``"09"``."""
    return sorted({m for text in code for m in re.findall(r"check\(\s*['\"]ch(\d\d)-", text)})


def package_files(root: Path, chapters: Iterable[str], command_line: bool = True) -> List[Path]:
    """The files of ``resnet_edu`` that a notebook's outputs can depend on (module docstring)."""
    package = root / PACKAGE
    own = {f"ch{n}.py" for n in chapters}
    left_out = NOT_INPUTS + (() if command_line else COMMAND_LINE)
    files = []
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        if not path.is_file() or path.suffix != ".py" or rel.parts[0] in left_out:
            continue
        if rel.parts[0] == "exercises" and re.fullmatch(r"ch\d\d\.py", rel.name) \
                and rel.name not in own:
            continue
        files.append(path)
    return files


def results_files(root: Path, code: Iterable[str]) -> List[Path]:
    """The files of ``book/results/`` whose name the code mentions."""
    text = "\n".join(code)
    folder = root / RESULTS_FOLDER
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.iterdir())
            if p.is_file() and re.search(rf"(?<![\w.]){re.escape(p.name)}(?![\w.])", text)]


def compute(nb, root: Path) -> Dict[str, object]:
    """The stamp of notebook ``nb`` (a dict as nbformat reads it) against the checkout ``root``."""
    code = _code_cells(nb)
    separator = b"\n\x00cell\x00\n"
    runs_command_line = any(RUNS_COMMAND_LINE.search(text) for text in code)
    files = package_files(root, checked_chapters(code), runs_command_line)
    return {
        "code": _digest(separator.join(c.encode("utf-8") for c in code)),
        "results": {p.name: _file_digest(p) for p in results_files(root, code)},
        "package": {p.relative_to(root).as_posix(): _file_digest(p) for p in files},
    }


def stored(nb) -> Optional[Dict[str, object]]:
    return nb.get("metadata", {}).get(METADATA_KEY, {}).get(STAMP_KEY)


def write(nb, root: Path) -> None:
    """Stamp ``nb`` in place (call it after a successful execution)."""
    nb["metadata"].setdefault(METADATA_KEY, {})[STAMP_KEY] = compute(nb, root)


def differences(nb, root: Path) -> List[str]:
    """What changed since ``nb`` was executed, one phrase each; empty when the stamp is current."""
    old, new = stored(nb), compute(nb, root)
    if old is None:
        return ["it has no stamp (executed before stamps existed, or not by the project's command)"]
    changed = []
    if old.get("code") != new["code"]:
        changed.append("its code cells")
    for kind, label in (("results", "results file"), ("package", "package file")):
        before, now = old.get(kind, {}), new[kind]
        for name in sorted(set(before) | set(now)):
            if before.get(name) != now.get(name):
                state = ("new" if name not in before else
                         "removed" if name not in now else "changed")
                changed.append(f"{label} {name} ({state})")
    return changed
