"""The classroom tools: student notebooks without solutions, and grading in a fresh kernel.

What the issue asks, tested on small synthetic submissions (tests/classroom_fixtures/, made by
make_fixtures.py there) and on every chapter notebook that exists at test time:

- a student notebook keeps everything but the solutions: no line of solution code and no
  solution prose survives anywhere in its JSON (sources, outputs, metadata), every coding
  exercise becomes a stub with the original signature, and check outputs are cleared;
- the book's own notebooks grade full marks, their student versions grade zero with
  "not solved yet" and run top to bottom up to the first cell that uses an unsolved exercise;
- a submission with the original post's residual block scores zero on the block exercise
  and the feedback is check_block's own explanation;
- a notebook that loops forever (interruptibly or not) or has a syntax error is graded zero
  for what it did not reach, within its time limits, and the other notebooks are graded.

Kernel start-up dominates the time of the grading tests (a fresh kernel per notebook); each
grading test grades several notebooks in one call.
"""
from __future__ import annotations

import ast
import csv
import inspect
import json
import os
import re
import textwrap
from pathlib import Path

import nbformat
import pytest

from resnet_edu import classroom
from resnet_edu.classroom import (chapter_notebooks, cli_grade, cli_student_notebooks,
                                  grade_notebooks, graded_exercises, student_notebook,
                                  stub_source, summary_table)
from resnet_edu.exercises import check, exercises

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "classroom_fixtures"
BOOK_NOTEBOOKS = chapter_notebooks(ROOT / "book")
TIMEOUT = 60         # seconds per cell and per check: generous, the machine may be busy
LOOP_TIMEOUT = 8     # for the notebooks that hang: each hanging cell or check costs this
LOOPS = ("infinite_loop", "stubborn_loop")


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


def test_an_unclosed_gate_is_an_error_not_a_silent_loss():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("```{solution-start} ch99-x\n```"),
        nbformat.v4.new_code_cell("def f():\n    return 1")])
    with pytest.raises(ValueError, match="no {solution-end}"):
        student_notebook(nb)


# ======================================================================================
# Student notebooks: the fixture and every chapter
# ======================================================================================
def test_student_version_of_the_solved_fixture():
    original = read(FIXTURES / "solved.ipynb")
    version = student_notebook(original, name="solved.ipynb")
    nb = version.notebook
    secrets = secret_lines(original)
    assert "constant the convolution adds: SECRET-PROSE-ANSWER." in secrets
    assert any("x[:, None, :, i:i + kh, j:j + kw]" in s for s in secrets)
    assert leaked(original, secrets) == secrets and leaked(nb, secrets) == []
    assert version.exercises == ["ch01-conv2d-by-hand", "ch05-fix-the-post"]
    assert nb.metadata["resnet_edu"]["exercises"] == version.exercises
    sources = [c.source for c in nb.cells]
    assert not any("{solution-start}" in s or "{solution-end}" in s for s in sources)
    assert sum("{exercise}" in s for s in sources) == 3      # the prose and both coding ones
    # the check cells' ✓ is gone; the other outputs stay, so the page reads like the book
    checks = [c for c in nb.cells if "check" in c.metadata.get("tags", [])]
    assert len(checks) == 2 and all(c.outputs == [] for c in checks)
    assert "✓" in json.dumps(original, ensure_ascii=False)
    assert "✓" not in json.dumps(nb, ensure_ascii=False)
    uses = next(c for c in nb.cells if c.source.startswith("y = conv2d_by_hand"))
    assert uses.outputs[0]["text"] == "[4.0, 4.0, 4.0, 4.0]\n"
    assert "Outputs computed with" in nb.cells[0].outputs[0]["text"]
    nbformat.validate(nb)


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
    assert len(stubs) == len(solution_cells)
    for stub in stubs:
        assert stub.outputs == [] and stub.execution_count is None
        assert "raise NotImplementedError(" in stub.source
    for cell in nb.cells:
        if cell.cell_type == "code" and "check" in cell.metadata.get("tags", []):
            assert cell.outputs == []
    # every exercise of the chapter is listed, and its stub reads "not solved yet"
    # when checked (in this process: the stubs define the names, and raise when called)
    namespace: dict = {}
    for stub in stubs:
        exec(compile(stub.source, f"<{path.name} stub>", "exec"), namespace)
    registered = exercises()
    for exercise_id in version.exercises:
        if exercise_id not in registered:      # registered by the notebook itself
            continue
        names = registered[exercise_id].names
        feedback = check(exercise_id, *[namespace[n] for n in names])
        assert not feedback.passed and not feedback.solved, feedback


def test_cli_student_notebooks(tmp_path, capsys):
    out = tmp_path / "students"
    assert cli_student_notebooks([str(out), str(FIXTURES / "solved.ipynb")]) == 0
    assert (out / "solved.ipynb").is_file()
    assert "2 solution cell(s) stubbed" in capsys.readouterr().out
    # never over the originals
    assert cli_student_notebooks([str(FIXTURES), str(FIXTURES / "solved.ipynb")]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert cli_student_notebooks([str(out), str(FIXTURES / "conftest.py")]) == 2


@pytest.mark.skipif(not BOOK_NOTEBOOKS, reason="no chapter notebook written yet")
def test_cli_student_notebooks_defaults_to_the_book(tmp_path):
    assert cli_student_notebooks([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == [p.name for p in BOOK_NOTEBOOKS]


# ======================================================================================
# What to grade, names, the table
# ======================================================================================
def test_graded_exercises_come_from_metadata_checks_and_labels():
    solved = read(FIXTURES / "solved.ipynb")
    assert graded_exercises(solved) == ["ch01-conv2d-by-hand", "ch05-fix-the-post"]
    student = student_notebook(solved).notebook
    # a student who deleted every check cell is still graded on both exercises
    student.cells = [c for c in student.cells if "check" not in c.metadata.get("tags", [])]
    assert graded_exercises(student) == ["ch01-conv2d-by-hand", "ch05-fix-the-post"]
    del student.metadata["resnet_edu"]
    assert graded_exercises(student) == ["ch01-conv2d-by-hand", "ch05-fix-the-post"]


def test_student_names():
    names = classroom._student_names
    assert names([Path("a/alice.ipynb"), Path("a/bob.ipynb")]) == ["alice", "bob"]
    assert names([Path("alice/01_x.ipynb"), Path("bob/01_x.ipynb"),
                  Path("alice/02_y.ipynb")]) == ["alice", "bob", "alice"]


# ======================================================================================
# Grading in fresh kernels
# ======================================================================================
def test_fixtures_use_registered_exercises():
    """The fixtures grade with the book's real checks; if a chapter renames its exercise,
    update make_fixtures.py (this test names the id that went away)."""
    registered = exercises()
    for path in sorted(FIXTURES.glob("*.ipynb")):
        for exercise_id in graded_exercises(read(path)):
            assert exercise_id in registered, (path.name, exercise_id)


@pytest.fixture(scope="module")
def fixture_grades(tmp_path_factory):
    """Every fixture submission, and the student version of the solved one
    ("handed_out"), graded in one call (one fresh kernel each)."""
    from concurrent.futures import ThreadPoolExecutor

    handed_out = tmp_path_factory.mktemp("handed-out") / "handed_out.ipynb"
    nbformat.write(student_notebook(read(FIXTURES / "solved.ipynb")).notebook, handed_out)
    paths = sorted(FIXTURES.glob("*.ipynb"), key=lambda p: p.stem not in LOOPS) + [handed_out]

    def grade(path):
        return classroom.grade_notebook(
            path, timeout=LOOP_TIMEOUT if path.stem in LOOPS else TIMEOUT, notebook_timeout=300,
            threads=max(1, (os.cpu_count() or 2) // 2))

    with ThreadPoolExecutor(2) as pool:     # two kernels at a time, the slow ones first
        return {r.path.stem: r for r in pool.map(grade, paths)}


def rows(result) -> dict:
    return {row.exercise: row for row in result.rows}


def test_solved_submission_gets_full_marks(fixture_grades):
    result = fixture_grades["solved"]
    assert {e: (r.score, r.status) for e, r in rows(result).items()} == {
        "ch01-conv2d-by-hand": (1.0, "passed"), "ch05-fix-the-post": (1.0, "passed")}
    assert rows(result)["ch01-conv2d-by-hand"].feedback.startswith("matches F.conv2d")
    assert result.issues == []


def test_unsolved_submission_gets_zero_and_not_solved_yet(fixture_grades):
    for row in fixture_grades["unsolved"].rows:
        assert (row.score, row.status) == (0.0, "unsolved")
        assert row.feedback.startswith("not solved yet")


def test_infinite_loops_are_stopped_and_graded_zero(fixture_grades):
    result = fixture_grades["infinite_loop"]
    got = rows(result)
    # the cell that loops before its def is interrupted: the function never exists
    conv = got["ch01-conv2d-by-hand"]
    assert (conv.score, conv.status) == (0.0, "missing")
    assert f"did not finish within {LOOP_TIMEOUT} s" in conv.feedback
    assert "you have not defined `conv2d_by_hand`" in conv.feedback
    # the block's forward loops: the check is stopped
    block = got["ch05-fix-the-post"]
    assert (block.score, block.status) == (0.0, "timeout")
    assert f"did not finish within {LOOP_TIMEOUT} s" in block.feedback
    # two loops cost about two time limits (plus the start-up), not the notebook's limit
    assert result.seconds < 4 * LOOP_TIMEOUT + 120


def test_a_loop_that_ignores_interrupts_restarts_the_kernel(fixture_grades):
    result = fixture_grades["stubborn_loop"]
    conv = rows(result)["ch01-conv2d-by-hand"]
    assert (conv.score, conv.status) == (1.0, "passed")   # defined before the loop: graded
    assert any("restarted the kernel" in issue for issue in result.issues), result.issues
    looping = [i for i, (status, _) in result.cells.items() if status == "timeout"]
    assert len(looping) == 1


def test_syntax_error_scores_zero_and_later_cells_still_count(fixture_grades):
    got = rows(fixture_grades["syntax_error"])
    conv = got["ch01-conv2d-by-hand"]
    assert (conv.score, conv.status) == (0.0, "missing")
    assert "SyntaxError" in conv.feedback and "line 5 of the cell" in conv.feedback
    assert (got["ch05-fix-the-post"].score, got["ch05-fix-the-post"].status) == \
        (1.0, "passed")


def test_original_post_block_fails_with_check_blocks_explanation(fixture_grades):
    from resnet_edu.diagnostics import check_block
    from resnet_edu.original import listing_source

    nb = read(FIXTURES / "original_post_block.ipynb")
    solution = next(c.source for c in nb.cells if is_solution(c))
    assert listing_source(2).rstrip() in solution      # the post's code, verbatim
    namespace: dict = {}
    exec(compile(solution, "<original post>", "exec"), namespace)
    report = check_block(namespace["FixedResidualBlock"](8, 8), (2, 8, 6, 6))
    assert not report.ok
    block = rows(fixture_grades["original_post_block"])["ch05-fix-the-post"]
    assert (block.score, block.status) == (0.0, "failed")
    assert str(report.problems[0]).rstrip(".") in block.feedback


def test_grade_cli_on_a_folder_of_submissions(tmp_path, capsys):
    """The CLI on a folder: a generated student notebook grades zero, a file that is not a
    notebook and a notebook without exercises get a row each, and the others go on."""
    folder = tmp_path / "submissions"
    classroom.write_student_notebooks([FIXTURES / "solved.ipynb"], folder,
                                      log=lambda *a: None)
    (folder / "corrupt.ipynb").write_text("{ this is not json", encoding="utf-8")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]),
                   folder / "empty.ipynb")
    out = tmp_path / "results.csv"
    assert cli_grade([str(folder), "--out", str(out), "--timeout", str(TIMEOUT)]) == 0
    printed = capsys.readouterr().out
    with open(out, newline="", encoding="utf-8") as f:
        sheet = list(csv.DictReader(f))
    assert [(r["student"], r["exercise"], r["score"], r["max_score"], r["status"])
            for r in sheet] == [("corrupt", "", "0", "0", "unreadable"),
                                ("empty", "", "0", "0", "no-exercises"),
                                ("solved", "ch01-conv2d-by-hand", "0", "1", "unsolved"),
                                ("solved", "ch05-fix-the-post", "0", "1", "unsolved")]
    assert all(r["feedback"].startswith("not solved yet") for r in sheet[2:])
    assert "could not read the notebook" in sheet[0]["feedback"]
    assert re.search(r"^solved +0 \(unsolved\) +0 \(unsolved\) +0/2$", printed, re.M), printed
    assert f"3 notebook(s) graded" in printed


def test_student_notebook_grades_zero_and_runs_until_an_unsolved_exercise_is_used(
        fixture_grades):
    result = fixture_grades["handed_out"]
    assert [(r.exercise, r.score, r.status) for r in result.rows] == [
        ("ch01-conv2d-by-hand", 0.0, "unsolved"), ("ch05-fix-the-post", 0.0, "unsolved")]
    student = student_notebook(read(FIXTURES / "solved.ipynb")).notebook
    uses = next(i for i, c in enumerate(student.cells) if c.source.startswith("y = conv2d"))
    assert result.cells[uses][0] == "error" and "NotImplementedError" in result.cells[uses][1]
    before = [status for i, (status, _) in sorted(result.cells.items()) if i < uses]
    assert before and all(status == "ok" for status in before)


def test_summary_table_and_csv_columns():
    made = [classroom.GradeRow("ann", "a.ipynb", "ch01-x", 1.0, 1.0, "passed", "ok"),
            classroom.GradeRow("ann", "a.ipynb", "ch02-y", 0.0, 1.0, "missing", "no"),
            classroom.GradeRow("bo", "b.ipynb", "ch01-x", 0.5, 1.0, "failed", "half")]
    table = summary_table(made).splitlines()
    assert table[0].split() == ["student", "ch01-x", "ch02-y", "total"]
    assert table[1].split() == ["ann", "1", "0", "(missing)", "1/2"]
    assert table[2].split() == ["bo", "0.5", "(failed)", "-", "0.5/1"]
    import io

    buffer = io.StringIO()
    classroom.write_csv(made, buffer)
    assert buffer.getvalue().splitlines()[0] == \
        "student,notebook,exercise,score,max_score,status,feedback"


# ======================================================================================
# The book's own notebooks
# ======================================================================================
def _definitions_only(nb):
    """The chapter reduced to what defines things: markdown, the solution and check cells,
    and code cells made only of imports and def/class statements."""
    def defines_only(cell):
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            return False
        return all(isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                                  ast.AsyncFunctionDef, ast.ClassDef)) for n in tree.body)
    return [c for c in nb.cells if c.cell_type != "code"
            or set(c.metadata.get("tags", [])) & {"solution", "check"} or defines_only(c)]


def _combined(notebooks):
    """One notebook: the first one's setup cell, then each chapter's definitions."""
    first = notebooks[0]
    nb = nbformat.v4.new_notebook(metadata=json.loads(json.dumps(first.metadata)))
    nb.cells = [first.cells[0]]
    ids = []
    for chapter in notebooks:
        nb.cells += _definitions_only(chapter)
        ids += chapter.metadata.get("resnet_edu", {}).get("exercises", [])
    for number, cell in enumerate(nb.cells):     # ids unique across the chapters
        cell["id"] = f"cell-{number}"
    if ids:
        nb.metadata["resnet_edu"] = {"exercises": ids}
    return nb


def _expected(result, score, status):
    return result.rows and all((r.score, r.status) == (score, status) for r in result.rows)


@pytest.mark.skipif(not BOOK_NOTEBOOKS, reason="no chapter notebook written yet")
def test_book_notebooks_grade_full_marks_and_their_student_versions_zero(tmp_path):
    """Graded in fresh kernels. For speed, all chapters reduced to their definitions and
    solutions (the rest of each chapter is nbval's business) are graded as one notebook;
    if that does not give the expected grade, every chapter is graded whole and alone,
    and those grades decide."""
    chapters = [read(p) for p in BOOK_NOTEBOOKS]
    students = [student_notebook(nb, p.name).notebook for nb, p in zip(chapters, BOOK_NOTEBOOKS)]
    kinds = {"solved": (chapters, 1.0, "passed"), "student": (students, 0.0, "unsolved")}
    for kind, (notebooks, _, _) in kinds.items():
        nbformat.write(_combined(notebooks), tmp_path / f"{kind}.ipynb")
    fast = grade_notebooks([tmp_path / f"{kind}.ipynb" for kind in kinds], timeout=120,
                           verbose=False, jobs=2)
    for result, (kind, (notebooks, score, status)) in zip(fast, kinds.items()):
        expected_ids = sorted({i for nb in notebooks for i in graded_exercises(nb)})
        if _expected(result, score, status) and \
                sorted(r.exercise for r in result.rows) == expected_ids:
            continue
        folder = tmp_path / kind
        folder.mkdir()
        for nb, path in zip(notebooks, BOOK_NOTEBOOKS):
            nbformat.write(nb, folder / path.name)
        for whole in grade_notebooks(sorted(folder.glob("*.ipynb")), timeout=300,
                                     verbose=False, jobs=2):
            assert _expected(whole, score, status), \
                (kind, whole.path.name, [(r.exercise, r.status, r.feedback) for r in whole.rows])
