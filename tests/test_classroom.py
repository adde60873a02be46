"""The classroom tools without grading runs, part 1: student notebooks, the master, the CLI.
(Part 2, rules, damaged files and the sheet: test_classroom_rules.py; the grading runs,
with the zoo of hostile submissions: test_classroom_zoo.py.)

- a student notebook keeps everything but the solutions: no line of solution code and no
  solution prose survives anywhere in its JSON (sources, outputs, metadata), every coding
  exercise becomes a stub with the original signature, check outputs are cleared, cell ids
  are kept (the grader finds the answers by them);
- the master (the book's chapter or the manifest) says what is graded, never the
  submission; the manifest holds no solution;
- ``check`` owns the exercise id and leaves the caller's random state alone.
"""
from __future__ import annotations

import ast
import inspect
import json
import re
import textwrap
from pathlib import Path

import nbformat
import pytest

from resnet_edu.classroom import (
    chapter_master,
    chapter_notebooks,
    load_masters,
    stub_source,
    student_notebook,
)
from resnet_edu.classroom.intake import find_answer
from resnet_edu.classroom.master import MANIFEST_NAME
from resnet_edu.cli import main as cli_main
from resnet_edu.exercises import check, exercises

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
BOOK_NOTEBOOKS = chapter_notebooks(BOOK)


def read(path: Path):
    return nbformat.read(path, as_version=4)


def is_solution(cell) -> bool:
    return cell.cell_type == "code" and "solution" in cell.metadata.get("tags", [])


def secret_lines(nb) -> list[str]:
    """What must not survive in the student version: each line of a solution's function
    bodies (docstrings excepted) and of a {solution} block or a gated solution's prose,
    at least 12 characters long, that occurs nowhere else in the chapter."""
    solution_text, prose_text, public = [], [], []
    gated = False
    for cell in nb.cells:
        if is_solution(cell):
            solution_text.append(cell.source)
            continue
        if cell.cell_type == "markdown":
            inside, fence = None, None
            for line in cell.source.splitlines():
                if gated:
                    if re.match(r"^\s*(`{3,}|:{3,})\{solution-end\}", line):
                        gated = False
                    else:
                        prose_text.append(line)
                    continue
                if re.match(r"^\s*(`{3,}|:{3,})\{solution-start\}", line):
                    gated = True
                    continue
                m = re.match(r"^\s*(`{3,}|:{3,})\{solution\}", line)
                if inside is None and m:
                    inside, fence = True, m.group(1)
                    continue
                if inside and line.strip() == fence:
                    inside = None
                    continue
                (prose_text if inside else public).append(line)
            continue
        if gated:           # a code cell inside a gate that is not tagged: also secret
            prose_text.append(cell.source)
        else:
            public.append(cell.source)
    public_text = "\n".join(public)
    lines = []
    for source in solution_text:
        tree = ast.parse(source)
        src_lines = source.splitlines()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if ast.get_docstring(node) is not None:
                    body = body[1:]
                for stmt in body:
                    lines += src_lines[stmt.lineno - 1:stmt.end_lineno]
    lines += "\n".join(prose_text).splitlines()
    return sorted({ln.strip() for ln in lines
                   if len(ln.strip()) >= 12 and ln.strip() not in public_text})


def leaked(student_nb, lines: list[str]) -> list[str]:
    """The secret lines found anywhere in the student notebook's JSON."""
    text = json.dumps(student_nb, ensure_ascii=False)
    return [ln for ln in lines if json.dumps(ln, ensure_ascii=False)[1:-1] in text]


# ======================================================================================
# Stubs
# ======================================================================================
SOLUTION = '''\
import math
from torch import nn  # the layers


@staticmethod_free
def scaled(x, factor: float = 2.0,
           *, offset=0, **extra) -> float:   # a signature over two lines
    """Return factor * x + offset."""
    y = factor * x
    return y + offset


class Block(nn.Module):
    """A block."""

    expansion = 4

    def __init__(self, channels, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride, 1)

    @property
    def width(self):
        return self.conv.out_channels * self.expansion

    def forward(self, x):
        """The forward pass."""
        return self.conv(x).relu_()
'''


def _namespace(source: str) -> dict:
    ns = {"staticmethod_free": lambda f: f}
    exec(compile(source, "<cell>", "exec"), ns)
    return ns


def test_stub_keeps_imports_signatures_and_docstrings_only():
    stub, dropped = stub_source(SOLUTION, "ch99-example")
    assert dropped == []
    solved, student = _namespace(SOLUTION), _namespace(stub)
    assert student["math"] is solved["math"] and student["nn"] is solved["nn"]
    # the same signatures and docstrings as the solution, by inspection of both
    assert inspect.signature(student["scaled"]) == inspect.signature(solved["scaled"])
    assert student["scaled"].__doc__ == solved["scaled"].__doc__
    for name in ("__init__", "forward"):
        ours, theirs = getattr(student["Block"], name), getattr(solved["Block"], name)
        assert inspect.signature(ours) == inspect.signature(theirs)
        assert ours.__doc__ == theirs.__doc__
    assert student["Block"].__doc__ == "A block."
    assert isinstance(student["Block"].__dict__["width"], property)
    assert issubclass(student["Block"], solved["nn"].Module)
    # every body raises, pointing to the exercise
    with pytest.raises(NotImplementedError, match="Exercise ch99-example: write your solution"):
        student["scaled"](1.0)
    with pytest.raises(NotImplementedError, match="ch99-example"):
        student["Block"](3)
    # nothing of the bodies is left, the class attribute included
    for secret in ("y = factor * x", "return y + offset", "expansion = 4", "nn.Conv2d", "relu_",
                   "out_channels", "super().__init__"):
        assert secret not in stub, secret


def test_stub_reports_statements_that_are_not_definitions():
    stub, dropped = stub_source("import torch\nWIDTH = 64\n\ndef f(x):\n    return x * WIDTH\n",
                                "ch99-x")
    assert dropped == ["WIDTH = 64"]
    assert "64" not in stub and "def f(x):" in stub


def test_stub_of_a_cell_with_ipython_syntax():
    stub, _ = stub_source("%matplotlib inline\ndef f(x):\n    !ls\n    return x\n", "ch99-x")
    assert "def f(x):" in stub and "ls" not in stub


# ======================================================================================
# Markdown
# ======================================================================================
def test_solution_blocks_are_removed_and_exercises_kept():
    source = textwrap.dedent('''\
        ## Exercises

        ```{exercise} First
        :label: ch99-first

        Question one.
        ```

        ````{solution} ch99-first
        :class: dropdown

        Answer one has code:
        ```python
        print("ANSWER-ONE")
        ```
        ````

        :::{solution} ch99-first
        ANSWER-TWO
        :::

        ```{admonition} Aside
        Kept text.
        ```{solution} ch99-first
        ANSWER-THREE
        ```
        ```

        Text after.''')
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"),
                                         nbformat.v4.new_markdown_cell(source)])
    out = student_notebook(nb).notebook
    text = "\n".join(c.source for c in out.cells)
    for secret in ("ANSWER-ONE", "ANSWER-TWO", "Answer one has code", "{solution}"):
        assert secret not in text, secret
    for kept in ("Question one.", ":label: ch99-first", "Text after.", "## Exercises"):
        assert kept in text, kept


@pytest.mark.parametrize("source", [
    "> ```{solution} ch99-first\n> ANSWER-QUOTED\n> ```",          # MyST reads it in a quote
    "```{exercise} Open\n:label: ch99-first\n```{solution} ch99-first\nANSWER-UNCLOSED",
])
def test_solutions_in_a_quote_or_an_unclosed_fence_do_not_leak(source):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title\n\n" + source)])
    text = "\n".join(c.source for c in student_notebook(nb).notebook.cells)
    assert "ANSWER" not in text and "{solution}" not in text, text
    assert "# Title" in text


def test_an_unclosed_gate_is_an_error_not_a_silent_loss():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("```{solution-start} ch99-x\n```"),
        nbformat.v4.new_code_cell("def f():\n    return 1")])
    with pytest.raises(ValueError, match=r"no \{solution-end\}"):
        student_notebook(nb)


# ======================================================================================
# Student notebooks of the book, and the CLI
# ======================================================================================
@pytest.mark.parametrize("path", BOOK_NOTEBOOKS, ids=[p.stem for p in BOOK_NOTEBOOKS])
def test_book_student_notebook_has_no_solution(path):
    original = read(path)
    version = student_notebook(original, name=path.name)
    nb = version.notebook
    assert version.warnings == [], "solution cells must hold only imports and definitions"
    secrets = secret_lines(original)
    assert leaked(original, secrets) == secrets     # the search finds them in the book ...
    assert leaked(nb, secrets) == []                # ... and nowhere in the student version
    solution_cells = [c for c in original.cells if is_solution(c)]
    stubs = [c for c in nb.cells if is_solution(c)]
    assert [c.id for c in stubs] == [c.id for c in solution_cells]   # ids kept
    for stub in stubs:
        assert stub.outputs == [] and stub.execution_count is None
        assert "raise NotImplementedError(" in stub.source
    for cell in nb.cells:
        if cell.cell_type == "code" and "check" in cell.metadata.get("tags", []):
            assert cell.outputs == []
    # the stubs read "not solved yet" when checked in this process
    namespace: dict = {}
    for stub in stubs:
        exec(compile(stub.source, f"<{path.name} stub>", "exec"), namespace)
    registered = exercises()
    for exercise_id in version.exercises:
        if exercise_id in registered:
            names = registered[exercise_id].names
            feedback = check(exercise_id, *[namespace[n] for n in names])
            assert not feedback.passed and not feedback.solved, feedback


def test_cli_student_notebooks_writes_the_manifest_and_refuses_a_full_folder(tmp_path, capsys):
    out = tmp_path / "students"
    chapter = BOOK / "01_convolution.ipynb"
    assert cli_main(["student-notebooks", str(out), str(chapter)]) == 0
    assert (out / chapter.name).is_file() and (out / MANIFEST_NAME).is_file()
    manifest = (out / MANIFEST_NAME).read_text()
    # the manifest holds ids and hashes, no line of the solution
    assert leaked(json.loads(manifest), secret_lines(read(chapter))) == []
    assert load_masters(out / MANIFEST_NAME) == {chapter.name: load_masters(BOOK)[chapter.name]}
    capsys.readouterr()
    assert cli_main(["student-notebooks", str(out), str(chapter)]) == 2      # not empty
    assert "--force" in capsys.readouterr().err
    assert cli_main(["student-notebooks", "--force", str(out), str(chapter)]) == 0
    assert cli_main(["student-notebooks", str(BOOK), str(chapter)]) == 2     # the originals


def test_cli_grade_refuses_a_bad_out_path_before_grading(tmp_path, capsys):
    nb = tmp_path / "01_convolution.ipynb"
    nb.write_text("not a notebook")
    code = cli_main(["grade", str(nb), "--out", str(tmp_path / "missing" / "r.csv")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    assert cli_main(["grade", str(nb), "--out", str(tmp_path)]) == 2        # a folder
    assert cli_main(["grade", str(tmp_path / "none.ipynb")]) == 2
    assert cli_main(["grade", str(nb), "--timeout", "0"]) == 2


# ======================================================================================
# The master decides what is graded
# ======================================================================================
def test_master_of_every_chapter_matches_its_check_cells():
    masters = load_masters(BOOK)
    for path in BOOK_NOTEBOOKS:
        nb = read(path)
        calls = [m for c in nb.cells if c.cell_type == "code"
                 for m in re.findall(r'check\("([\w.-]+)"', c.source)]
        registered = [i for i in dict.fromkeys(calls) if i in exercises()]
        got = [e.id for e in masters[path.name].exercises] if path.name in masters else []
        assert got == registered, path.name
        for ex in masters.get(path.name, chapter_master(nb, path.name)).exercises:
            answer = find_answer(nb, ex)
            assert answer.problems == [] and answer.source.strip(), ex.id


def test_master_kinds_and_points_come_from_the_book_and_the_registry():
    masters = load_masters(BOOK)
    ex = {e.id: e for m in masters.values() for e in m.exercises}
    assert ex["ch05-fix-the-post"].kinds == ("class",)
    assert ex["ch01-conv2d-by-hand"].kinds == ("def",)
    assert all(e.points == exercises()[e.id].points for e in ex.values())


def test_check_owns_the_id_and_isolates_the_random_state():
    import random

    import numpy as np
    import torch

    registered = exercises()["ch09-paper-lr"]
    torch.manual_seed(123)
    random.seed(5)
    np.random.seed(6)
    expected = (torch.rand(1), random.random(), np.random.rand())
    torch.manual_seed(123)
    random.seed(5)
    np.random.seed(6)
    for seed in (None, 42):
        fb = check("ch09-paper-lr", lambda i: (torch.randn(1), random.random(),
                                               np.random.rand(), 0.1)[-1], seed=seed)
        assert fb.exercise == "ch09-paper-lr" and not fb.passed
    assert (torch.rand(1), random.random(), np.random.rand()) == expected
    assert registered.observe
