"""The classroom tools without grading runs, part 2: the rules and the house policy on the
issue's examples, damaged files turned into rows, the grade sheet. (Part 1, student
notebooks and the master: test_classroom.py; the grading runs: test_classroom_zoo.py.)
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import nbformat
import pytest

from resnet_edu.classroom import load_masters, student_notebook, summary_table, write_csv
from resnet_edu.classroom.grading import grade_submission, student_names
from resnet_edu.classroom.intake import Submission, find_answer
from resnet_edu.classroom.protocol import NOT_GRADED, Status
from resnet_edu.classroom.report import GradeRow
from resnet_edu.classroom.rules import kept_code, policy_problems, rule_problems
from resnet_edu.exercises import exercises

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
BOOK_NOTEBOOKS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))


def read(path: Path):
    return nbformat.read(path, as_version=4)


# ======================================================================================
# Rules and policy, on the issue's examples
# ======================================================================================
RULES = {
    "ch01-conv2d-by-hand": ('import torch.nn.functional as F\n\n'
                            'def conv2d_by_hand(x, weight, bias=None, stride=1, padding=0):\n'
                            '    return F.conv2d(x, weight, bias, stride, padding)\n',
                            "Do not call `F.conv2d`"),
    "ch08-param-count": ('import torch\nfrom resnet_edu.models import ResNet\n\n'
                         'def resnet_param_count(block, layers, num_classes=1000):\n'
                         '    with torch.device("meta"):\n'
                         '        model = ResNet(block, layers, num_classes=num_classes)\n'
                         '    return sum(p.numel() for p in model.parameters())\n',
                         "without building any model (not even on the meta device)"),
    "ch05-fix-the-post": ("from resnet_edu.blocks import BasicBlock\n\n"
                          "class FixedResidualBlock(BasicBlock):\n    pass\n",
                          "a class of your own derived from `nn.Module`"),
}


@pytest.mark.parametrize("exercise_id", sorted(RULES))
def test_rules_of_the_issue_are_enforced_and_quoted(exercise_id):
    source, quote = RULES[exercise_id]
    ex = next(e for m in load_masters(BOOK).values() for e in m.exercises if e.id == exercise_id)
    code, problems = kept_code(source)
    assert problems == []
    found = rule_problems(code, exercises()[exercise_id].rules, ex.names, ex.kinds)
    assert found and all(quote in p for p in found if "Rule" in p), found
    assert any(quote in p for p in found)


def test_a_lambda_is_not_a_class_and_top_level_code_never_runs():
    code, _ = kept_code("from torch import nn\nDebuggedBlock = lambda c: nn.Identity()\n"
                        "print('scratch')\n")
    assert code == "from torch import nn"
    problems = rule_problems("from resnet_edu.blocks import BasicBlock\nDebuggedBlock = 1",
                             exercises()["ch05-find-the-bug"].rules, ("DebuggedBlock",),
                             ("class",))
    assert any("breaks the exercise's rules" in p for p in problems)
    problems = rule_problems("from torch import nn as DebuggedBlock", exercises()[
        "ch05-find-the-bug"].rules, ("DebuggedBlock",), ("class",))
    assert any("`class` statement of your own" in p for p in problems)


@pytest.mark.parametrize("attack", [
    "import resnet_edu.exercises as ex\ndef f(_=[e.func.__code__ for e in ex.REGISTRY.values()]):"
    "\n    pass",
    "from resnet_edu.classroom import kernel\ndef f(_=kernel.plain):\n    pass",
    "def f(_=get_ipython().input_transformers_post.append(print)):\n    pass",
    "import torch\nclass A:\n    torch.allclose = lambda *a, **k: True",
    "import torch\ndef f():\n    torch.Tensor.__eq__ = lambda a, b: True",
    "import subprocess\ndef f(_=subprocess.Popen(['true'], start_new_session=True)):\n    pass",
    "def f(_=setattr(print, 'x', 1)):\n    pass",
    "def f():\n    g = (i for i in [0])\n    return g.gi_frame.f_back.f_globals",
    "import torch\ndef f(_=torch.nn.modules.module.register_module_forward_hook(print)):\n    pass",
    "from torch.overrides import TorchFunctionMode\nclass M(TorchFunctionMode):\n    pass",
    "import os\ndef f(_=os.kill(os.getppid(), 9)):\n    pass",
    "def f(_=__builtins__):\n    pass",
])
def test_the_policy_shuts_the_easy_doors(attack):
    code, _ = kept_code(attack)
    assert code.strip() and policy_problems(code), attack


def test_every_book_solution_passes_the_policy_and_its_rules():
    masters = load_masters(BOOK)
    for path in BOOK_NOTEBOOKS:
        nb = read(path)
        for ex in masters[path.name].exercises if path.name in masters else ():
            code, problems = kept_code(find_answer(nb, ex).source)
            assert problems == [] and policy_problems(code) == [], ex.id
            assert rule_problems(code, exercises()[ex.id].rules, ex.names, ex.kinds) == [], ex.id


# ======================================================================================
# Damaged files become rows (no answering process is needed for these)
# ======================================================================================
def _student_ch01() -> dict:
    return json.loads(nbformat.writes(student_notebook(read(BOOK / "01_convolution.ipynb"),
                                                       "01_convolution.ipynb").notebook))


def _defects():
    def first_code(raw):
        return next(c for c in raw["cells"] if c["cell_type"] == "code")

    cases = {}
    for name, damage in [
            ("no-source", lambda raw: first_code(raw).pop("source")),
            ("no-cell-type", lambda raw: first_code(raw).pop("cell_type")),
            ("int-source", lambda raw: first_code(raw).__setitem__("source", 3)),
            ("tags-null", lambda raw: first_code(raw)["metadata"].__setitem__("tags", None)),
            ("cells-not-a-list", lambda raw: raw.__setitem__("cells", {"a": 1})),
            ("nbformat-3", lambda raw: raw.update(nbformat=3, nbformat_minor=0))]:
        raw = _student_ch01()
        damage(raw)
        cases[name] = json.dumps(raw).encode()
    cases["not-json"] = b'{"cells": [ '
    cases["empty"] = b""
    cases["binary"] = bytes(range(256))
    return cases


@pytest.mark.parametrize("name", sorted(_defects()))
def test_each_schema_defect_becomes_one_row_per_exercise_with_a_reason(name):
    data = _defects()[name]
    sub = Submission(Path(f"{name}/01_convolution.ipynb"), name, data)
    result = grade_submission(sub, load_masters(BOOK))
    assert [(r.exercise, r.score, r.max_score) for r in result.rows] == \
        [("ch01-conv2d-by-hand", 0.0, 1.0)]
    row = result.rows[0]
    assert row.status in ("malformed", "unreadable") and len(row.feedback) > 20, row
    if name == "nbformat-3":
        assert "nbformat 3" in row.feedback


def test_an_unreadable_file_of_an_unknown_chapter_is_one_row_naming_it(tmp_path):
    result = grade_submission(Submission(Path("x/notes.ipynb"), "x", None, "cannot read"),
                              load_masters(BOOK))
    assert [(r.exercise, r.status, r.notebook) for r in result.rows] == \
        [("", "unreadable", "x/notes.ipynb")]
    raw = _student_ch01()
    raw["metadata"]["resnet_edu"] = ["forged", "list"]      # valid schema, useless metadata
    result = grade_submission(Submission(Path("x/notes.ipynb"), "x", json.dumps(raw).encode()),
                              load_masters(BOOK))
    assert [r.status for r in result.rows] == ["unknown-chapter"]


def test_the_graders_own_failure_is_that_notebooks_rows(monkeypatch, capsys):
    from resnet_edu.classroom import grading

    def broken(*args, **kwargs):
        raise KeyError("a bug of ours")

    monkeypatch.setattr(grading, "_grade_chapter", broken)
    sub = Submission(Path("a/01_convolution.ipynb"), "a",
                     json.dumps(_student_ch01()).encode())
    rows = grade_submission(sub, load_masters(BOOK)).rows
    assert [(r.exercise, r.status, r.max_score) for r in rows] == \
        [("ch01-conv2d-by-hand", "grader-error", 1.0)]
    assert "KeyError" in rows[0].feedback and "_grade_chapter" not in rows[0].feedback
    err = capsys.readouterr().err              # the teacher sees the traceback
    assert "internal error while grading a/01_convolution.ipynb" in err
    assert "Traceback" in err and "a bug of ours" in err


# ======================================================================================
# The sheet
# ======================================================================================
def test_csv_is_replaced_atomically_and_summary_lists_every_student(tmp_path):
    rows = [GradeRow("alice", "a.ipynb", "ch01-x", 1.0, 1.0, "passed", "ok, \"quoted\""),
            GradeRow("bob", "b.ipynb", "ch01-x", 0.0, 2.0, "failed", "line\nbreak")]
    out = tmp_path / "r.csv"
    out.write_text("old sheet")
    write_csv(rows, out)
    assert list(tmp_path.iterdir()) == [out]                  # no temporary file left
    back = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["feedback"] for r in back] == ["ok, \"quoted\"", "line\nbreak"]
    table = summary_table(rows)
    assert "alice" in table and "1/1" in table and "0 (failed)" in table and "0/2" in table


def test_student_names():
    assert student_names([Path("a/alice.ipynb"), Path("a/bob.ipynb")]) == ["alice", "bob"]
    assert student_names([Path("alice/01_x.ipynb"), Path("bob/01_x.ipynb"),
                          Path("alice/02_y.ipynb")]) == ["alice", "bob", "alice"]


def test_the_status_words_are_the_ones_teachers_read():
    """classroom.protocol.Status is the sheet's vocabulary; book/teachers.md explains each
    word in its table: neither may have a word the other lacks."""
    text = (BOOK / "teachers.md").read_text(encoding="utf-8")
    table = text.split("### What the status column means", 1)[1].split("\n### ", 1)[0]
    words = {w for cell in re.findall(r"^\| ([^|]+) \|", table, re.M)
             for w in re.findall(r"`([^`]+)`", cell)}
    assert words == {s.value for s in Status}
    explained = {w for line in table.splitlines() if "exit status 1" in line
                 for w in re.findall(r"`([^`]+)`", line.split("|")[1])}
    assert explained == {s.value for s in NOT_GRADED}
