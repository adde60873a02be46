"""Student notebooks: the chapters with their solutions removed, and the grading manifest.

One transformation per step, as nbgrader's preprocessors:

* markdown between ``{solution-start}`` and ``{solution-end}`` is removed, gate cells
  included, and so is every ``{solution}`` directive block of a markdown cell (the
  ``{exercise}`` block stays);
* a code cell tagged ``solution`` becomes a stub (:mod:`.stubs`), keeping its cell id:
  the grader finds the answer by that id;
* the outputs of check cells are cleared (they would show the ✓), their source is kept
  as it is (the grader compares it with the master's);
* any other output that shows a line of solution code is cleared;
* every other cell, outputs included, is kept, so the page reads like the book.

:func:`write_student_notebooks` also writes ``resnet_edu_manifest.json`` beside them:
the exercises, points and cell ids the grader needs, and no solution.
"""
from __future__ import annotations

import ast
import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from .. import conventions
from ..conventions import CHECK_CALL, METADATA_KEY, ExerciseWalk
from .markdown import Block, blocks, join, without_solution_blocks
from .master import MANIFEST_NAME, chapter_master, default_book_dir, manifest
from .stubs import docstring_source, parse_cell, stub_source


@dataclass
class StudentVersion:
    """What :func:`student_notebook` did to one notebook."""

    notebook: object                              # the student nbformat.NotebookNode
    exercises: List[str] = field(default_factory=list)   # coding exercises (stubbed)
    removed_solutions: int = 0                    # {solution} blocks and gated solutions
    stubbed_cells: int = 0
    cleared_checks: int = 0
    cleared_leaks: int = 0                        # other outputs that showed solution code
    warnings: List[str] = field(default_factory=list)


def _solution_lines(original_cells) -> List[str]:
    """Distinctive lines of the solution cells' bodies: lines of at least 12 characters
    that appear in no other cell of the original notebook."""
    solution_sources = [c.source for c in original_cells if conventions.is_solution_cell(c)]
    others = "\n".join(c.source for c in original_cells
                       if not conventions.is_solution_cell(c))
    lines = set()
    for source in solution_sources:
        try:
            text, tree = parse_cell(source)
        except ValueError:
            continue
        source_lines = text.splitlines()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = docstring_source(text, node)
                body = node.body[1:] if doc is not None else node.body
                for stmt in body:
                    for line in source_lines[stmt.lineno - 1:stmt.end_lineno]:
                        line = line.strip()
                        if len(line) >= 12 and line not in others:
                            lines.add(line)
    return sorted(lines)


def _referenced_attachments(cell) -> None:
    attachments = cell.get("attachments")
    if attachments:
        kept = {name: data for name, data in attachments.items()
                if f"attachment:{name}" in cell.source}
        if kept:
            cell["attachments"] = kept
        else:
            del cell["attachments"]



def _clear(cell) -> None:
    cell.outputs = []
    cell.execution_count = None
    cell.metadata.pop("execution", None)


def _markdown(cell, walk: ExerciseWalk, result: StudentVersion) -> bool:
    """Remove the solutions of a markdown cell; False when nothing of it is left. ``walk``
    (the convention's one reading, ``conventions.ExerciseWalk``) steps over its directives."""
    kept: List[Block] = []
    for block in blocks(cell.source):
        was_gated = walk.gated
        if block.node is not None:
            walk.read(block.node)
        if was_gated or block.directive in ("solution-start", "solution"):
            result.removed_solutions += not was_gated
            continue
        before = len("\n".join(block.lines))
        block = without_solution_blocks(block)
        if len("\n".join(block.lines)) != before:
            result.removed_solutions += 1
        kept.append(block)
    source = join(kept)
    if not source.strip():
        return False
    cell.source = source
    _referenced_attachments(cell)
    return True


def _stub(cell, walk: ExerciseWalk, result: StudentVersion, where: str) -> None:
    exercise_id = walk.exercise or "exercise"
    try:
        cell.source, dropped = stub_source(cell.source, exercise_id)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    for statement in dropped:
        result.warnings.append(f"{where}: dropped a statement that is not an import "
                               f"or a definition: {statement.splitlines()[0]}")
    _clear(cell)
    result.stubbed_cells += 1
    if exercise_id not in result.exercises:
        result.exercises.append(exercise_id)


def _clear_leaks(cells, original_cells, result: StudentVersion) -> None:
    """Safety net: an output that shows a solution line (a cell that printed the solution's
    source, say) is cleared too."""
    secret = _solution_lines(original_cells)
    for cell in cells:
        if cell.cell_type == "code" and cell.get("outputs"):
            shown = json.dumps(cell.outputs, ensure_ascii=False)
            if any(json.dumps(line, ensure_ascii=False)[1:-1] in shown for line in secret):
                _clear(cell)
                result.cleared_leaks += 1


def _add_note(nb, cells) -> None:
    """A note for the student, right below the title (the first markdown cell with an H1)."""
    import nbformat

    note = nbformat.v4.new_markdown_cell(
        "**Student version.** The solutions of this chapter's exercises are removed. "
        "Write your code where a cell raises `NotImplementedError`, run it, then run the "
        "check cell below it: it tells you what is right or wrong. Keep your answer in "
        "that cell and leave the check cells as they are: the grader reads your answer "
        "from the exercise's cell and runs only its imports, functions and classes.")
    note.metadata["tags"] = ["student-note"]
    if (nb.nbformat, nb.nbformat_minor) < (4, 5):   # cell ids exist from nbformat 4.5 on
        note.pop("id", None)
    at = next((i + 1 for i, c in enumerate(cells)
               if c.cell_type == "markdown" and re.search(r"^# ", c.source, re.M)), 0)
    cells.insert(at, note)


def student_notebook(nb, name: str = "notebook") -> StudentVersion:
    """Return the student version of the chapter notebook ``nb`` (``nb`` is not changed).

    Raises ``ValueError`` if a ``{solution-start}`` has no ``{solution-end}`` or a solution
    cell cannot be parsed: a broken chapter must not silently leak or lose material.
    """
    import nbformat

    original_cells = nb.cells
    nb = copy.deepcopy(nb)
    result = StudentVersion(nb)
    cells, walk = [], ExerciseWalk()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            if _markdown(cell, walk, result):
                cells.append(cell)
        elif conventions.is_solution_cell(cell):
            _stub(cell, walk, result, f"{name}, cell {index}")
            cells.append(cell)
        elif not walk.gated:              # anything else inside a gated solution goes
            if conventions.is_check_cell(cell):
                _clear(cell)
                result.cleared_checks += 1
                for m in CHECK_CALL.finditer(cell.source):
                    if m.group("id") not in result.exercises:
                        result.exercises.append(m.group("id"))
            cells.append(cell)
    if walk.gated:
        raise ValueError(f"{name}: {{solution-start}} {walk.gate or ''} has no {{solution-end}}")
    _clear_leaks(cells, original_cells, result)
    _add_note(nb, cells)
    nb.cells = cells
    meta = nb.metadata.setdefault(METADATA_KEY, {})
    meta.update({"student_version": True, "source": name, "exercises": list(result.exercises)})
    nbformat.validate(nb)
    return result


def chapter_notebooks(folder: Optional[Path] = None) -> List[Path]:
    """The chapter notebooks ``NN_topic.ipynb`` of ``folder`` (default: the checkout's
    ``book/``), sorted."""
    from .. import conventions

    if folder is None:
        return conventions.chapter_notebooks() if default_book_dir() is not None else []
    return sorted(p for p in Path(folder).glob("*.ipynb")
                  if conventions.CHAPTER_FILE.match(p.name))


def _read_notebook(path: Path):
    """``path`` as an nbformat v4 notebook, or a ``ValueError`` that says it is not one."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    # unreadable, not UTF-8 or not JSON (ValueError), not a notebook (schema), or JSON of
    # another shape that nbformat indexes blindly (KeyError, TypeError, AttributeError)
    except (OSError, ValueError, KeyError, TypeError, AttributeError,
            nbformat.ValidationError) as exc:
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ValueError(f"{str(path)!r} is not a readable Jupyter notebook "
                         f"({type(exc).__name__}: {detail})") from None
    return nb


def student_versions(notebooks: Sequence[Path]) -> List[Tuple[Path, StudentVersion, Any]]:
    """Read and convert every notebook, writing nothing: ``(path, student version, grading
    master)`` each. Raises ``ValueError`` for the first notebook that cannot be converted, so
    a caller can refuse the whole set before it creates any file."""
    return [(path, student_notebook(nb, name=path.name), chapter_master(nb, path.name))
            for path, nb in ((p, _read_notebook(p)) for p in map(Path, notebooks))]


def write_student_notebooks(notebooks: Sequence[Path], outdir: Path,
                            log=print) -> List[Tuple[Path, StudentVersion]]:
    """Write the student version of each notebook into ``outdir`` (same file names) and
    the grading manifest of the chapters that have graded exercises. Every notebook is
    read and converted first (:func:`student_versions`): a bad one raises ``ValueError``
    before ``outdir`` is created or anything is written."""
    import nbformat

    outdir = Path(outdir)
    for path in map(Path, notebooks):
        if path.resolve().parent == outdir.resolve():
            raise ValueError(f"refusing to overwrite {path}: choose another OUTDIR")
    versions = student_versions(notebooks)
    outdir.mkdir(parents=True, exist_ok=True)
    written, masters = [], []
    for path, version, master in versions:
        if master.exercises:
            masters.append(master)
        target = outdir / path.name
        nbformat.write(version.notebook, target)
        written.append((target, version))
        ids = ", ".join(version.exercises) or "none"
        log(f"{target}: {version.stubbed_cells} solution cell(s) stubbed, "
            f"{version.removed_solutions} solution block(s) removed, "
            f"{version.cleared_checks} check output(s) cleared; coding exercises: {ids}")
        for warning in version.warnings:
            log(f"  warning: {warning}")
    if masters:
        (outdir / MANIFEST_NAME).write_text(json.dumps(manifest(masters), indent=1) + "\n",
                                            encoding="utf-8")
        log(f"{outdir / MANIFEST_NAME}: the grading manifest of {len(masters)} chapter(s) "
            "(grade with --master this file)")
    return written
