"""Classroom tools: student notebooks with the solutions removed, and one-command grading.

Two commands, both plain Jupyter (``nbformat``, ``nbclient``, ``ipykernel``), so they work
on a laptop and in Colab without JupyterHub:

``python -m resnet_edu student-notebooks OUTDIR [NOTEBOOK ...]``
    writes a student version of every chapter notebook (default: the book's
    ``book/NN_*.ipynb``). Following the exercise convention of ``CONTRIBUTING.md``:

    * markdown between ``{solution-start}`` and ``{solution-end}`` is removed, gate
      cells included, and so is every ``{solution}`` directive block of a markdown cell
      (the ``{exercise}`` block stays);
    * a code cell tagged ``solution`` becomes a stub: its imports stay, every top-level
      ``def``/``class`` keeps its header (decorators, signature) and docstring, and each
      body becomes ``raise NotImplementedError("Exercise chNN-...: ...")`` (methods of a
      class likewise); nothing else of the cell survives, outputs included;
    * the outputs of ``check`` cells are cleared (they would show the ✓);
    * every other cell, outputs included, is kept, so the page reads like the book.

    A stub raises only when it is called: the notebook runs top to bottom up to the first
    cell that uses an unsolved exercise, and each check cell answers "not solved yet".

``python -m resnet_edu grade NOTEBOOK_OR_FOLDER ... [--out results.csv]``
    executes each submitted notebook in a fresh kernel (per-cell time limit, total limit
    per notebook, errors do not stop later cells), then runs, in the same kernel, the
    check of every exercise of the notebook on the names the student defined, and writes
    one CSV row per student and exercise (score, status, feedback) plus a printed table.
    A cell that hangs is interrupted (or its kernel restarted and the notebook replayed
    without it); what the notebook never defined scores zero with a sentence saying why.
    One notebook's failure never stops the grading of the others.

Grading runs the students' code on the grading machine with the grader's permissions,
as any autograder does: grade in a throw-away environment (a container, a Colab runtime).
"""
from __future__ import annotations

import argparse
import ast
import copy
import csv
import gc
import importlib
import io
import logging
import json
import os
import re
import secrets
import subprocess
import sys
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

SOLUTION_TAG = "solution"
CHECK_TAG = "check"
METADATA_KEY = "resnet_edu"
STUB_MESSAGE = "Exercise {id}: write your solution here (see the exercise above)"

# ======================================================================================
# Markdown: MyST directive fences
# ======================================================================================
_FENCE_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
_DIRECTIVE = re.compile(r"^\{(?P<name>[\w:.+-]+)\}\s*(?P<arg>.*)$")
_LABEL_OPTION = re.compile(r"^\s*:label:\s*(\S+)\s*$", re.M)
_CHECK_CALL = re.compile(r"""\bcheck\(\s*(['"])(?P<id>[\w.-]+)\1""")


@dataclass
class _Block:
    """A top-level piece of a markdown cell: plain lines, or one fenced block."""

    lines: List[str]
    directive: str = ""      # "exercise", "solution", "solution-start", ... ("" if none)
    argument: str = ""       # what follows the directive name on the opening line
    fenced: bool = False

    @property
    def inner(self) -> List[str]:
        """The lines between the opening and the closing fence."""
        return self.lines[1:-1] if len(self.lines) >= 2 else []


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return (len(line) - len(line.lstrip(" ")) <= 3 and len(stripped) >= len(fence)
            and set(stripped) == {fence[0]})


def _blocks(text: str) -> List[_Block]:
    """Split markdown into plain runs and top-level fenced blocks (CommonMark closing rule).

    An unclosed fence runs to the end of the text, as in CommonMark.
    """
    lines = text.split("\n")
    blocks: List[_Block] = []
    plain: List[str] = []
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if m and not (m.group("fence")[0] == "`" and "`" in m.group("info")):
            fence = m.group("fence")
            j = i + 1
            while j < len(lines) and not _closes(lines[j], fence):
                j += 1
            if plain:
                blocks.append(_Block(plain))
                plain = []
            d = _DIRECTIVE.match(m.group("info").strip())
            blocks.append(_Block(lines[i:j + 1], d.group("name") if d else "",
                                 d.group("arg").strip() if d else "", fenced=True))
            i = j + 1
        else:
            plain.append(lines[i])
            i += 1
    if plain:
        blocks.append(_Block(plain))
    return blocks


def _join(blocks: Iterable[_Block]) -> str:
    text = "\n".join("\n".join(b.lines) for b in blocks)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def _without_solution_blocks(block: _Block) -> _Block:
    """Remove ``{solution}`` directives nested inside another directive's content."""
    if not (block.fenced and block.directive) or len(block.lines) < 2:
        return block
    inner = [b for b in _blocks("\n".join(block.inner)) if b.directive != "solution"]
    inner = [_without_solution_blocks(b) for b in inner]
    lines = [block.lines[0]] + ("\n".join("\n".join(b.lines) for b in inner)).split("\n") \
        + [block.lines[-1]]
    return _Block(lines, block.directive, block.argument, True)


def exercise_labels(markdown: str) -> List[str]:
    """The ``:label:`` of every ``{exercise}`` directive in a markdown text."""
    labels = []
    for block in _blocks(markdown):
        if block.directive in ("exercise", "exercise-start"):
            m = _LABEL_OPTION.search("\n".join(block.inner))
            if m:
                labels.append(m.group(1))
    return labels


# ======================================================================================
# Code: turning a solution cell into a stub
# ======================================================================================
def _line_offsets(text: str) -> List[int]:
    offsets, pos = [0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        offsets.append(pos)
    return offsets


def _header(text: str, offsets: List[int], node: ast.AST) -> Tuple[str, int]:
    """The source of ``node``'s decorators and ``def``/``class`` line(s) up to the colon,
    and the (1-based) line on which that colon stands."""
    if node.decorator_list:
        first = node.decorator_list[0]
        line_start = offsets[first.lineno - 1]
        start = text.rindex("@", line_start, line_start + first.col_offset)
        start_line = first.lineno
    else:
        start = offsets[node.lineno - 1] + node.col_offset
        start_line = node.lineno
    depth, seen_keyword = 0, False
    for tok in tokenize.generate_tokens(io.StringIO(text[start:]).readline):
        if tok.type == tokenize.NAME and tok.string in ("def", "class") and depth == 0:
            seen_keyword = True
        elif tok.type == tokenize.OP:
            if tok.string in "([{":
                depth += 1
            elif tok.string in ")]}":
                depth -= 1
            elif tok.string == ":" and depth == 0 and seen_keyword:
                local = _line_offsets(text[start:])
                end = start + local[tok.end[0] - 1] + tok.end[1]
                return text[start:end], start_line + tok.end[0] - 1
    raise ValueError(f"could not find the end of the header of {node.name!r}")


def _docstring_source(text: str, node: ast.AST) -> Optional[ast.Expr]:
    body = node.body
    if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        return body[0]
    return None


def _stub_definition(text: str, offsets: List[int], node: ast.AST, exercise_id: str) -> str:
    """A def/class with its header and docstring, every body replaced by a raise."""
    indent = " " * node.col_offset
    header, header_last_line = _header(text, offsets, node)
    body_indent = " " * (node.col_offset + 4)
    first_stmt = node.body[0]
    if first_stmt.lineno > header_last_line:
        body_indent = " " * first_stmt.col_offset
    parts = [indent + header]
    doc = _docstring_source(text, node)
    if doc is not None:
        segment = ast.get_source_segment(text, doc)
        parts.append(body_indent + segment)
    if isinstance(node, ast.ClassDef):
        members = [n for n in node.body
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        if not members and doc is None:
            parts.append(body_indent + "pass")
        for member in members:
            if member.lineno <= header_last_line:   # `class A: def f(self): ...` one-liner
                raise ValueError(f"put the body of class {node.name!r} on its own lines")
            if len(parts) > 1:              # a blank line after a docstring or method
                parts.append("")
            parts.append(_stub_definition(text, offsets, member, exercise_id))
    else:
        message = STUB_MESSAGE.format(id=exercise_id)
        parts.append(f"{body_indent}raise NotImplementedError({json.dumps(message)})")
    return "\n".join(parts)


def _parse_cell(source: str) -> Tuple[str, ast.Module]:
    """Parse a code cell; IPython syntax (magics, ``!cmd``) is translated first."""
    try:
        return source, ast.parse(source)
    except SyntaxError:
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        translated = TransformerManager().transform_cell(source)
        return translated, ast.parse(translated)
    except Exception as exc:  # noqa: BLE001 - reported below with the cell's text
        raise ValueError(f"cannot parse the solution cell:\n{source}\n({exc})") from None


def stub_source(source: str, exercise_id: str) -> Tuple[str, List[str]]:
    """The student version of a ``solution`` cell, and the statements it dropped.

    Imports stay; each top-level ``def``/``class`` keeps its header and docstring and its
    body (each method's body, for a class) becomes ``raise NotImplementedError(...)``.
    Every other top-level statement is dropped and listed in the second return value
    (the convention allows only imports and definitions in a solution cell).
    """
    text, tree = _parse_cell(source)
    offsets = _line_offsets(text)
    parts = [f"# Exercise {exercise_id}: replace each `raise NotImplementedError(...)` below "
             "with your code."]
    dropped = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            parts.append(ast.get_source_segment(text, node))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if len(parts) > 1:
                parts += ["", ""]
            parts.append(_stub_definition(text, offsets, node, exercise_id))
        else:
            dropped.append(ast.get_source_segment(text, node) or type(node).__name__)
    stub = "\n".join(parts).strip("\n")
    ast.parse(stub)   # the stub must be valid Python
    return stub, dropped


# ======================================================================================
# The student notebook
# ======================================================================================
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
    solution_sources = [c.source for c in original_cells if c.cell_type == "code"
                        and SOLUTION_TAG in c.metadata.get("tags", [])]
    others = "\n".join(c.source for c in original_cells if not (
        c.cell_type == "code" and SOLUTION_TAG in c.metadata.get("tags", [])))
    lines = set()
    for source in solution_sources:
        try:
            text, tree = _parse_cell(source)
        except ValueError:
            continue
        source_lines = text.splitlines()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = _docstring_source(text, node)
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


def _is_check_cell(cell) -> bool:
    return (CHECK_TAG in cell.metadata.get("tags", [])
            or bool(_CHECK_CALL.search(cell.source)))


def student_notebook(nb, name: str = "notebook") -> StudentVersion:
    """Return the student version of the chapter notebook ``nb`` (``nb`` is not changed).

    Raises ``ValueError`` if a ``{solution-start}`` has no ``{solution-end}`` or a solution
    cell cannot be parsed: a broken chapter must not silently leak or lose material.
    """
    import nbformat

    original_cells = nb.cells
    nb = copy.deepcopy(nb)
    result = StudentVersion(nb)
    cells = []
    gate: Optional[str] = None           # label of the open {solution-start}, if any
    last_exercise: Optional[str] = None
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index}"
        if cell.cell_type == "markdown":
            kept: List[_Block] = []
            for block in _blocks(cell.source):
                if gate is not None:
                    if block.directive == "solution-end":
                        gate = None
                    continue
                if block.directive == "solution-start":
                    gate = block.argument.split()[0] if block.argument else "exercise"
                    result.removed_solutions += 1
                    continue
                if block.directive == "solution":
                    result.removed_solutions += 1
                    continue
                if block.directive in ("exercise", "exercise-start"):
                    last_exercise = (exercise_labels("\n".join(block.lines)) or
                                     [last_exercise])[0]
                before = len("\n".join(block.lines))
                block = _without_solution_blocks(block)
                if len("\n".join(block.lines)) != before:
                    result.removed_solutions += 1
                kept.append(block)
            source = _join(kept)
            if source.strip():
                cell.source = source
                _referenced_attachments(cell)
                cells.append(cell)
            continue
        if cell.cell_type == "code" and SOLUTION_TAG in cell.metadata.get("tags", []):
            exercise_id = gate or last_exercise or "exercise"
            try:
                cell.source, dropped = stub_source(cell.source, exercise_id)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            for statement in dropped:
                result.warnings.append(f"{where}: dropped a statement that is not an import "
                                       f"or a definition: {statement.splitlines()[0]}")
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
            cells.append(cell)
            result.stubbed_cells += 1
            if exercise_id not in result.exercises:
                result.exercises.append(exercise_id)
            continue
        if gate is not None:              # anything else inside a gated solution goes
            continue
        if cell.cell_type == "code" and _is_check_cell(cell):
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
            result.cleared_checks += 1
            for m in _CHECK_CALL.finditer(cell.source):
                if m.group("id") not in result.exercises:
                    result.exercises.append(m.group("id"))
        cells.append(cell)
    if gate is not None:
        raise ValueError(f"{name}: {{solution-start}} {gate} has no {{solution-end}}")

    # Safety net: an output that shows a solution line (a cell that printed the solution's
    # source, say) is cleared too.
    secret = _solution_lines(original_cells)
    for cell in cells:
        if cell.cell_type == "code" and cell.get("outputs"):
            shown = json.dumps(cell.outputs, ensure_ascii=False)
            if any(json.dumps(line, ensure_ascii=False)[1:-1] in shown for line in secret):
                cell.outputs = []
                cell.execution_count = None
                result.cleared_leaks += 1

    # A note for the student, right below the title (the first markdown cell with an H1).
    note = nbformat.v4.new_markdown_cell(
        "**Student version.** The solutions of this chapter's exercises are removed. "
        "Write your code where a cell raises `NotImplementedError`, run it, then run the "
        "check cell below it: it tells you what is right or wrong.")
    note.metadata["tags"] = ["student-note"]
    if (nb.nbformat, nb.nbformat_minor) < (4, 5):   # cell ids exist from nbformat 4.5 on
        note.pop("id", None)
    at = next((i + 1 for i, c in enumerate(cells)
               if c.cell_type == "markdown" and re.search(r"^# ", c.source, re.M)), 0)
    cells.insert(at, note)
    nb.cells = cells
    meta = nb.metadata.setdefault(METADATA_KEY, {})
    meta.update({"student_version": True, "source": name, "exercises": list(result.exercises)})
    nbformat.validate(nb)
    return result


def book_dir() -> Path:
    """The book's notebook folder next to the package (a clone of the repository)."""
    return Path(__file__).resolve().parents[1] / "book"


def chapter_notebooks(folder: Optional[Path] = None) -> List[Path]:
    """The chapter notebooks ``NN_topic.ipynb`` of ``folder`` (default: the book), sorted."""
    folder = book_dir() if folder is None else Path(folder)
    return sorted(p for p in folder.glob("*.ipynb") if re.match(r"^\d\d_", p.name))


def write_student_notebooks(notebooks: Sequence[Path], outdir: Path,
                            log=print) -> List[Tuple[Path, StudentVersion]]:
    """Write the student version of each notebook into ``outdir`` (same file names)."""
    import nbformat

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        path = Path(path)
        if path.resolve().parent == outdir.resolve():
            raise ValueError(f"refusing to overwrite {path}: choose another OUTDIR")
        nb = nbformat.read(path, as_version=4)
        version = student_notebook(nb, name=path.name)
        target = outdir / path.name
        nbformat.write(version.notebook, target)
        written.append((target, version))
        ids = ", ".join(version.exercises) or "none"
        log(f"{target}: {version.stubbed_cells} solution cell(s) stubbed, "
            f"{version.removed_solutions} solution block(s) removed, "
            f"{version.cleared_checks} check output(s) cleared; coding exercises: {ids}")
        for warning in version.warnings:
            log(f"  warning: {warning}")
    return written


def cli_student_notebooks(argv: List[str], prog: str = "python -m resnet_edu student-notebooks"
                          ) -> int:
    """``python -m resnet_edu student-notebooks OUTDIR [NOTEBOOK ...]``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Write a student version of every chapter notebook: solution code "
                    "replaced by stubs that raise NotImplementedError, solution prose and "
                    "outputs removed, check outputs cleared; everything else intact.")
    parser.add_argument("outdir", type=Path, help="folder for the student notebooks")
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to convert (default: the book's book/NN_*.ipynb)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or chapter_notebooks()
    if not notebooks:
        print(f"error: no chapter notebooks found in {book_dir()}; run this from a clone of "
              "the book's repository or name the notebooks to convert", file=sys.stderr)
        return 2
    bad = [str(p) for p in notebooks if not (p.is_file() and p.suffix == ".ipynb")]
    if bad:
        print(f"error: not a notebook: {', '.join(bad)}", file=sys.stderr)
        return 2
    try:
        write_student_notebooks(notebooks, args.outdir)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


# ======================================================================================
# Grading: what runs inside the student's kernel
# ======================================================================================
_SNAPSHOT: Optional[tuple] = None


def _kernel_snapshot() -> None:
    """Injected before the student's first cell: remember the package's checks as loaded,
    so a notebook that re-registers or replaces a check cannot change its own grade."""
    global _SNAPSHOT
    from . import exercises as ex

    ex.exercises()
    _SNAPSHOT = (dict(ex.REGISTRY), ex.check)
    for module in ("torchvision", "matplotlib.pyplot"):   # what the setup cell imports
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def _kernel_grade(exercise_id: str, namespace: dict, marker: str) -> None:
    """Injected after the student's last cell: run one check and print the result as JSON."""
    from . import exercises as ex

    registry, check = _SNAPSHOT if _SNAPSHOT is not None else ({}, ex.check)
    exercise = registry.get(exercise_id) or ex.exercises().get(exercise_id)
    if exercise is None:
        result = {"status": "unknown", "score": 0.0,
                  "feedback": f"no check is registered for exercise {exercise_id!r}"}
    else:
        missing = [n for n in exercise.names if n not in namespace]
        if missing:
            result = {"status": "missing", "score": 0.0, "missing": missing}
        else:
            ex.REGISTRY[exercise_id] = exercise        # undo any change the notebook made
            fb = check(exercise_id, *[namespace[n] for n in exercise.names])
            status = "passed" if fb.passed else ("unsolved" if not fb.solved else "failed")
            score = min(1.0, max(0.0, float(fb.score)))
            result = {"status": status, "score": score, "feedback": str(fb.message)}
    sys.stdout.write(marker + json.dumps(result) + "\n")
    sys.stdout.flush()


# ======================================================================================
# Grading: the host side
# ======================================================================================
@dataclass
class GradeRow:
    """One line of the grade sheet."""

    student: str
    notebook: str
    exercise: str
    score: float
    max_score: float
    status: str      # passed | failed | unsolved | missing | timeout | error | unknown | ...
    feedback: str


PREAMBLE_TIMEOUT = 120   # seconds for the grader's own first cell (imports torch and the checks)
CSV_FIELDS = ["student", "notebook", "exercise", "score", "max_score", "status", "feedback"]


@dataclass
class _CellRun:
    status: str = "not run"       # ok | error | timeout | not run | skipped
    detail: str = ""


def graded_exercises(nb) -> List[str]:
    """The exercise ids to grade in a notebook, in the order they appear.

    A student notebook lists them in its metadata (written by ``student-notebooks``);
    otherwise (or in addition) they are the ids of ``check("...")`` calls and
    ``{solution-start}`` gates, and the ``{exercise}`` labels that have a registered check.
    """
    from .exercises import exercises

    registered = exercises()
    ids: List[str] = list(nb.metadata.get(METADATA_KEY, {}).get("exercises", []) or [])
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for block in _blocks(cell.source):
                if block.directive == "solution-start" and block.argument:
                    ids.append(block.argument.split()[0])
            ids += [label for label in exercise_labels(cell.source) if label in registered]
        elif cell.cell_type == "code":
            ids += [m.group("id") for m in _CHECK_CALL.finditer(cell.source)]
    return list(dict.fromkeys(ids))


def _student_names(paths: Sequence[Path]) -> List[str]:
    """File stems when they tell the notebooks apart, else parent folder names
    (alice/01_convolution.ipynb, bob/01_convolution.ipynb), else paths."""
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    pairs = [(p.parent.name, p.stem) for p in paths]
    if len(set(pairs)) == len(pairs) and all(p.parent.name for p in paths):
        return [p.parent.name for p in paths]
    return [str(p.with_suffix("")) for p in paths]


def _kernel_env(threads: Optional[int] = None) -> dict:
    """The kernel sees the same resnet_edu as the grader, seeded hashing, inline figures;
    with ``threads``, at most that many OpenMP/MKL threads (unless already set)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONHASHSEED"] = "0"
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    if threads:
        # several kernels at once: more threads than cores makes PyTorch's OpenMP threads
        # spin against each other and a training cell many times slower
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(name, str(threads))
    return env


def _error_summary(cell) -> str:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            ename, evalue = out.get("ename", "Error"), str(out.get("evalue", ""))
            m = re.search(r"\s*\((?:[^()]*?), line (\d+)\)$", evalue)
            if ename in ("SyntaxError", "IndentationError", "TabError") and m:
                evalue = evalue[:m.start()] + f" (line {m.group(1)} of the cell)"
            return f"{ename}: {evalue}".strip()
    return ""


def _make_client(nb, cwd: Path, timeout: float, output_limit: int):
    from nbclient import NotebookClient

    class _GradingClient(NotebookClient):
        """Keeps at most ``output_limit`` characters of output per cell (a print loop
        must not fill the grader's memory)."""

        def output(self, outs, msg, display_id, cell_index):
            if self._kept_chars > output_limit:
                if not self._truncated:
                    self._truncated = True
                    outs.append(self._note)
                return None
            out = super().output(outs, msg, display_id, cell_index)
            if out is not None:
                self._kept_chars += len(str(out.get("text", ""))) + sum(
                    len(str(v)) for v in out.get("data", {}).values())
            return out

    import nbformat

    client = _GradingClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=True,
        interrupt_on_timeout=False, record_timing=False, shutdown_kernel="immediate",
        startup_timeout=120, resources={"metadata": {"path": str(cwd)}})
    client._note = nbformat.v4.new_output(
        "stream", name="stderr", text="[output truncated by the grader]\n")
    client._kept_chars, client._truncated = 0, False
    return client


def _cancel_stale_pollers() -> None:
    """After a timeout nbclient leaves the cell's IOPub poller running; it would swallow the
    next cells' outputs. Cancel nbclient's pollers on this thread's event loop."""
    import asyncio

    from jupyter_core.utils import ensure_event_loop

    loop = ensure_event_loop()
    stale = [t for t in asyncio.all_tasks(loop) if not t.done()
             and "_async_poll" in getattr(t.get_coro(), "__qualname__", "")]
    for task in stale:
        task.cancel()
    if stale and not loop.is_running():
        loop.run_until_complete(asyncio.gather(*stale, return_exceptions=True))


class _Session:
    """One kernel for one notebook; restarted (and the notebook replayed) if it hangs."""

    def __init__(self, nb, cwd: Path, env: dict, output_limit: int):
        import nbformat

        self.nb, self.cwd, self.env, self.output_limit = nb, cwd, env, output_limit
        self.client = None
        self._ctx = None
        self.restarts = 0
        # nbclient stores every executed cell back into nb.cells[index], so the grader's
        # own cells get indices of their own after the notebook's cells
        self._probe = self.add_cell(nbformat.v4.new_code_cell("None"))

    def add_cell(self, cell) -> int:
        """Append a cell of the grader's to the executed notebook; return its index."""
        self.nb.cells.append(cell)
        return len(self.nb.cells) - 1

    def start(self) -> None:
        self.client = _make_client(self.nb, self.cwd, 60, self.output_limit)
        # the kernel's own stderr (start-up warnings) would clutter the grader's report
        self._ctx = self.client.setup_kernel(env=self.env, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL)
        self._ctx.__enter__()

    def stop(self) -> None:
        if self._ctx is not None:
            try:
                self._ctx.__exit__(None, None, None)
            except Exception:  # noqa: BLE001 - a dead kernel may fail to shut down cleanly
                pass
        self._ctx = None

    def run(self, index: int, timeout: float) -> str:
        """Execute cell ``index``: 'ok', 'error', 'timeout' (interrupted), 'stuck' or 'dead'."""
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        client = self.client
        cell = self.nb.cells[index]
        client.timeout = max(1, int(round(timeout)))
        client._kept_chars, client._truncated = 0, False
        try:
            client.execute_cell(cell, index)
        except CellTimeoutError:
            _cancel_stale_pollers()
            return "timeout" if self._interrupt(min(5.0, max(2.0, timeout))) else "stuck"
        except DeadKernelError:
            _cancel_stale_pollers()
            return "dead"
        except Exception as exc:  # noqa: BLE001 - e.g. the kernel's channels broke
            cell.setdefault("outputs", []).append(
                {"output_type": "error", "ename": type(exc).__name__, "evalue": str(exc),
                 "traceback": []})
            return "dead"
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return "error"
        return "ok"

    def _interrupt(self, wait: float) -> bool:
        """Interrupt the kernel; True if it answers again within ``wait`` seconds."""
        import nbformat
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        from jupyter_core.utils import run_sync

        try:
            run_sync(self.client.km.interrupt_kernel)()
            self.client.timeout = max(1, int(round(wait)))
            self.client.execute_cell(self.nb.cells[self._probe], self._probe,
                                     store_history=False)
            return True
        except (CellTimeoutError, DeadKernelError, RuntimeError):
            return False

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()


def _defining_cell(nb, name: str) -> Optional[int]:
    pattern = re.compile(rf"^\s*(?:async\s+def|def|class)\s+{re.escape(name)}\b"
                         rf"|^\s*{re.escape(name)}\s*(?::[^=]*)?=[^=]", re.M)
    found = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and pattern.search(c.source)]
    tagged = [i for i in found if SOLUTION_TAG in nb.cells[i].metadata.get("tags", [])]
    return (tagged or found or [None])[0]


def _missing_feedback(nb, names: List[str], runs: Dict[int, _CellRun]) -> str:
    sentences, advice = [], ("Define it in the exercise's code cell, run the notebook from the "
                             "top, and save it before you hand it in.")
    for name in names:
        text = f"you have not defined `{name}`"
        index = _defining_cell(nb, name)
        if index is not None:
            run = runs.get(index, _CellRun())
            number = index + 1
            if run.status == "error":
                text += f": the cell that defines it (cell {number}) failed with {run.detail}"
                advice = "Fix that cell and run the notebook from the top before you hand it in."
            elif run.status == "timeout":
                text += f": the cell that defines it (cell {number}) {run.detail}"
                advice = "Fix that cell and run the notebook from the top before you hand it in."
            elif run.status in ("not run", "skipped"):
                text += (f": the cell that defines it (cell {number}) was not run "
                         f"({run.detail or 'the notebook stopped before it'})")
        sentences.append(text)
    return "; ".join(sentences) + ". " + advice


@dataclass
class NotebookResult:
    """The grade of one notebook, and what happened while running it."""

    path: Path
    rows: List[GradeRow]
    seconds: float
    issues: List[str]
    cells: Dict[int, Tuple[str, str]] = field(default_factory=dict)  # index -> (status, detail)


def grade_notebook(path: Path, student: Optional[str] = None, timeout: float = 300,
                   notebook_timeout: float = 1800, output_limit: int = 1_000_000,
                   threads: Optional[int] = None) -> NotebookResult:
    """Execute one notebook in a fresh kernel and grade its exercises.

    ``timeout`` limits each cell and each check; ``notebook_timeout`` limits all of the
    notebook's own cells together (replays after a restart included); ``threads`` caps the
    kernel's OpenMP threads. Never raises for a broken, hanging or unreadable notebook: the
    problem becomes the rows' feedback.
    """
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:   # called from a notebook: nbclient needs a thread without a running event loop
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(grade_notebook, path, student, timeout, notebook_timeout,
                               output_limit, threads).result()
    import nbformat

    path = Path(path)
    student = student or path.stem
    start = time.monotonic()
    issues: List[str] = []

    def rows_for(ids, status, feedback):
        return [GradeRow(student, str(path), i, 0.0, 1.0, status, feedback) for i in ids]

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - not JSON, not a notebook, unreadable
        issues.append(f"could not read the notebook: {type(exc).__name__}: {exc}")
        return NotebookResult(path, [GradeRow(student, str(path), "", 0.0, 0.0, "unreadable",
                                              issues[0])], time.monotonic() - start, issues)
    ids = graded_exercises(nb)
    if not ids:
        issues.append("no exercises found (no check cells, no exercise labels)")
        return NotebookResult(path, [GradeRow(student, str(path), "", 0.0, 0.0, "no-exercises",
                                              issues[0])], time.monotonic() - start, issues)

    marker = f"<<resnet_edu-grade {secrets.token_hex(8)}>>"
    preamble = nbformat.v4.new_code_cell(
        "import resnet_edu.classroom as _resnet_edu_classroom\n"
        "_resnet_edu_classroom._kernel_snapshot()\ndel _resnet_edu_classroom")
    # (the preamble also imports what every chapter's setup cell imports, so the slow first
    # imports of torch, torchvision and matplotlib do not count against the first cell)
    checks = {i: nbformat.v4.new_code_cell(
        "import resnet_edu.classroom as _resnet_edu_classroom\n"
        f"_resnet_edu_classroom._kernel_grade({i!r}, globals(), {marker!r})\n"
        "del _resnet_edu_classroom") for i in ids}
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    runs: Dict[int, _CellRun] = {i: _CellRun() for i in code}
    skip: set = set()                        # cells that hung or killed the kernel
    work = copy.deepcopy(nb)            # what the kernel runs: the notebook + the grader's cells
    session = _Session(work, path.parent.resolve(), _kernel_env(threads), output_limit)
    at_preamble = session.add_cell(preamble)
    at_check = {i: session.add_cell(cell) for i, cell in checks.items()}
    deadline = start + notebook_timeout
    results: Dict[str, dict] = {}

    def run_notebook() -> None:
        """The preamble and the notebook's code cells; after a cell that hangs beyond an
        interrupt or kills the kernel, restart and replay without it."""
        while True:
            for i in code:
                if i not in skip:
                    runs[i] = _CellRun()
            session.run(at_preamble, PREAMBLE_TIMEOUT)
            restarted = False
            for index in code:
                if index in skip:
                    continue
                left = deadline - time.monotonic()
                if left <= 1:
                    runs[index] = _CellRun("not run", "the notebook's time limit of "
                                           f"{notebook_timeout:g} s was used up")
                    continue
                cell = work.cells[index]
                limit = min(timeout, left)
                outcome = session.run(index, limit)
                if outcome == "ok":
                    runs[index] = _CellRun("ok")
                elif outcome == "error":
                    runs[index] = _CellRun("error", _error_summary(cell))
                elif outcome in ("timeout", "stuck"):
                    runs[index] = _CellRun(
                        "timeout", f"did not finish within {limit:g} s (an infinite loop?)")
                    skip.add(index)
                    issues.append(f"cell {index + 1} {runs[index].detail}")
                else:   # dead
                    runs[index] = _CellRun("error", "crashed the kernel"
                                           + (f" ({_error_summary(cell)})"
                                              if _error_summary(cell) else ""))
                    skip.add(index)
                    issues.append(f"cell {index + 1} {runs[index].detail}")
                if outcome in ("stuck", "dead"):
                    issues.append(f"restarted the kernel and re-ran the notebook without cell "
                                  f"{index + 1}")
                    session.restart()
                    restarted = True
                    break
            if not restarted:
                return

    try:
        try:
            session.start()
        except Exception as exc:  # noqa: BLE001 - no kernel, no grade
            issues.append(f"the kernel did not start: {type(exc).__name__}: {exc}")
            return NotebookResult(path, rows_for(ids, "error", issues[-1]),
                                  time.monotonic() - start, issues)
        run_notebook()
        # the checks, each in its own cell, so that a hanging check costs only its exercise
        for number, exercise_id in enumerate(ids):
            outcome = session.run(at_check[exercise_id], timeout)
            cell = work.cells[at_check[exercise_id]]
            text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                           if o.get("output_type") == "stream")
            found = [line[len(marker):] for line in text.splitlines() if line.startswith(marker)]
            if found:
                results[exercise_id] = json.loads(found[-1])
            elif outcome in ("timeout", "stuck"):
                results[exercise_id] = {"status": "timeout", "score": 0.0, "feedback": (
                    f"the check ran your code and it did not finish within {timeout:g} s "
                    "(an infinite loop?); try your code on a small input first.")}
            else:
                results[exercise_id] = {"status": "error", "score": 0.0, "feedback": (
                    "the check could not finish: " + (_error_summary(cell) or
                                                      "the kernel stopped") + ".")}
            if outcome in ("stuck", "dead") and number + 1 < len(ids):
                issues.append(f"the check of {exercise_id} "
                              + ("hung" if outcome == "stuck" else "crashed the kernel")
                              + "; restarted the kernel and re-ran the notebook for the "
                              "remaining checks")
                session.restart()
                run_notebook()
    finally:
        session.stop()

    rows = []
    for exercise_id in ids:
        r = results.get(exercise_id, {"status": "error", "score": 0.0,
                                      "feedback": "the grader could not run the check"})
        feedback = r.get("feedback", "")
        if r["status"] == "missing":
            feedback = _missing_feedback(nb, r.get("missing", []), runs)
        rows.append(GradeRow(student, str(path), exercise_id, float(r.get("score", 0.0)), 1.0,
                             r["status"], feedback))
    errors = [f"cell {i + 1}: {run.detail}" for i, run in runs.items()
              if run.status == "error" and run.detail and i not in skip]   # skip: reported
    issues += errors[:5] + ([f"... and {len(errors) - 5} more failing cells"]
                            if len(errors) > 5 else [])
    not_run = sum(1 for run in runs.values() if run.status == "not run")
    if not_run:
        issues.append(f"{not_run} cell(s) not run (time limit)")
    return NotebookResult(path, rows, time.monotonic() - start, issues,
                          {i: (run.status, run.detail) for i, run in runs.items()})


def _expand(paths: Sequence[Path]) -> List[Path]:
    found = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        else:
            found.append(p)
    return list(dict.fromkeys(found))


def grade_notebooks(paths: Sequence[Path], timeout: float = 300,
                    notebook_timeout: float = 1800, verbose: bool = True, jobs: int = 1
                    ) -> List[NotebookResult]:
    """Grade every notebook (folders are searched for ``*.ipynb``), each in its own kernel,
    ``jobs`` at a time; the results come back in the order of ``paths``."""
    from concurrent.futures import ThreadPoolExecutor

    paths = _expand(paths)
    names = _student_names(paths)
    done = 0
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None

    def grade(item):
        nonlocal done
        path, student = item
        result = grade_notebook(path, student, timeout=timeout,
                                notebook_timeout=notebook_timeout, threads=threads)
        if verbose:
            done += 1
            got = sum(r.score for r in result.rows)
            out_of = sum(r.max_score for r in result.rows)
            lines = [f"[{done}/{len(paths)}] {path} ({student}): {got:g}/{out_of:g} "
                     f"in {result.seconds:.1f} s"] + [f"    {i}" for i in result.issues]
            print("\n".join(lines), flush=True)
        return result

    # after a timeout nbclient leaves a cancelled output poller behind, which asyncio
    # reports as "Task exception was never retrieved": noise, not a grading problem
    asyncio_log = logging.getLogger("asyncio")
    level = asyncio_log.level
    asyncio_log.setLevel(logging.CRITICAL)
    try:
        if jobs <= 1:
            results = [grade(item) for item in zip(paths, names)]
        else:   # each worker thread runs its own event loop and its own kernels
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                results = list(pool.map(grade, zip(paths, names)))
        gc.collect()
    finally:
        asyncio_log.setLevel(level)
    return results


def write_csv(rows: Sequence[GradeRow], out) -> None:
    """Write the grade sheet (one row per student and exercise) to a path or a file."""
    def write(f):
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for r in rows:
            writer.writerow([r.student, r.notebook, r.exercise, f"{r.score:g}",
                             f"{r.max_score:g}", r.status, r.feedback])

    if hasattr(out, "write"):
        write(out)
    else:
        with open(out, "w", newline="", encoding="utf-8") as f:
            write(f)


def summary_table(rows: Sequence[GradeRow]) -> str:
    """A plain-text table: one line per student, one column per exercise, and a total."""
    exercises = list(dict.fromkeys(r.exercise for r in rows if r.exercise))
    students = list(dict.fromkeys(r.student for r in rows))
    cell: Dict[Tuple[str, str], GradeRow] = {(r.student, r.exercise): r for r in rows}
    header = ["student"] + exercises + ["total"]
    table = [header]
    for s in students:
        mine = [r for r in rows if r.student == s]
        line = [s]
        for e in exercises:
            r = cell.get((s, e))
            line.append("-" if r is None else
                        f"{r.score:g}" + ("" if r.status == "passed" else f" ({r.status})"))
        line.append(f"{sum(r.score for r in mine):g}/{sum(r.max_score for r in mine):g}")
        table.append(line)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip()
                     for row in table)


def cli_grade(argv: List[str], prog: str = "python -m resnet_edu grade") -> int:
    """``python -m resnet_edu grade NOTEBOOK_OR_FOLDER ... [--out results.csv]``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Execute submitted notebooks, each in a fresh kernel, run the checks of "
                    "their exercises, and write one CSV row per student and exercise.")
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK",
                        help="submitted notebooks, or folders to search for *.ipynb")
    parser.add_argument("--out", type=Path, default=Path("results.csv"),
                        help="CSV file to write (default: results.csv)")
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds one cell (or one check) may run; the chapters' training "
                             "cells need a minute or two on a laptop (default: 300)")
    parser.add_argument("--notebook-timeout", type=float, default=1800,
                        help="seconds all cells of one notebook may run (default: 1800)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="notebooks graded at the same time, each in its own kernel with "
                             "its share of the CPU cores as threads (default: 1)")
    args = parser.parse_args(argv)
    if args.timeout <= 0 or args.notebook_timeout <= 0 or args.jobs < 1:
        parser.error("--timeout and --notebook-timeout must be positive, --jobs at least 1")
    paths = _expand(args.notebooks)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    if not paths:
        print("error: no notebooks found", file=sys.stderr)
        return 2
    start = time.monotonic()
    results = grade_notebooks(paths, timeout=args.timeout,
                              notebook_timeout=args.notebook_timeout, jobs=args.jobs)
    rows = [row for result in results for row in result.rows]
    write_csv(rows, args.out)
    print()
    print(summary_table(rows))
    print(f"\n{len(results)} notebook(s) graded in {time.monotonic() - start:.0f} s; "
          f"{len(rows)} row(s) written to {args.out}")
    return 0
