"""Grading runs: a zoo of hostile submissions, honest ones, and the book's own notebooks.

Two runs of ``python -m resnet_edu grade`` (through ``resnet_edu.cli.main``), each over a
folder of many submissions, because answering processes are what costs time:

- **run A**, the grader as shipped: every attack of the issue (patched check code, patched
  grader internals, an IPython input transformer, monkeypatched ``torch.allclose`` and
  ``Tensor.__eq__``, a detached writer, deleted or altered check cells and labels, a changed
  answer cell id, forged metadata, rule-breaking answers), a ten-notebook batch with one
  broken file, honest solutions written for this test, and the book's nine solved chapters
  and their student versions;
- **run B**, the same grader with its static policy switched off, as if a student had found
  a hole in it, and without the sandbox (``--no-sandbox``, whose guarantees these are; with
  it, ``test_classroom_sandbox.py`` shows that none of these processes can even start):
  attacks that now *run* in the answering process (patched checks, patched
  kernel, patched comparisons, a forbidden call hidden from the source, detached writers
  that rewrite the sheet seconds later) must still score zero, because the verdict is
  computed in the grader's process and the writers die with their notebook; plus a loop
  that never ends and a ``SystemExit``, with a short time limit.

Each run must leave a complete sheet (one row per student and exercise of the master,
nothing else) that is unchanged seconds after the run, and no process behind.
"""
from __future__ import annotations

import copy
import csv
import os
import secrets
import time
from pathlib import Path

import nbformat
import pytest

from resnet_edu.classroom import load_masters, student_notebook
from resnet_edu.cli import main as cli_main
from stray_processes import running_now, strays

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CH01, CH05, CH08 = "01_convolution.ipynb", "05_original_post_debugged.ipynb", \
    "08_full_resnet.ipynb"
MASTERS = load_masters(BOOK)
EX = {e.id: e for m in MASTERS.values() for e in m.exercises}
STUB = ", _=None):\n    raise NotImplementedError\n"

HONEST_CONV = '''\
import torch
import torch.nn.functional as F


def conv2d_by_hand(x, weight, bias=None, stride=1, padding=0):
    c_out, _, kh, kw = weight.shape
    xp = F.pad(x, (padding, padding, padding, padding))
    h_out = (xp.shape[2] - kh) // stride + 1
    w_out = (xp.shape[3] - kw) // stride + 1
    rows = []
    for i in range(h_out):
        cols = []
        for j in range(w_out):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            cols.append((patch.unsqueeze(1) * weight.unsqueeze(0)).sum(dim=(2, 3, 4)))
        rows.append(torch.stack(cols, dim=-1))
    out = torch.stack(rows, dim=-2)
    return out if bias is None else out + bias.view(1, c_out, 1, 1)
'''
HONEST_CH05 = {
    "ch05-fix-the-post": '''\
import torch
from torch import nn


class FixedResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        needs = stride != 1 or in_channels != out_channels
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
            nn.BatchNorm2d(out_channels)) if needs else nn.Identity()

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))
''',
    "ch05-gradient-test": '''\
import torch


def assert_all_parameters_learn(block, input_shape):
    block.zero_grad(set_to_none=True)
    x = torch.randn(*input_shape, requires_grad=True)
    block(x).mean().backward()
    dead = [name for name, p in block.named_parameters() if p.grad is None]
    assert dead == [], "no gradient reaches " + ", ".join(dead)
''',
    "ch05-find-the-bug": '''\
import torch
from torch import nn


class DebuggedBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)
'''}


def conv_attack(prelude: str, default: str) -> str:
    """A ch01 answer whose attack runs when the function is defined (a default value):
    the grader drops top-level statements, so this is where an attack has to live."""
    return (f"{prelude}\n\ndef conv2d_by_hand(x, weight, bias=None, stride=1, padding=0, "
            f"_={default}):\n    raise NotImplementedError\n")


def student(chapter: str):
    return copy.deepcopy(_STUDENT.setdefault(chapter, student_notebook(
        nbformat.read(BOOK / chapter, as_version=4), chapter).notebook))


_STUDENT: dict = {}


def answer(nb, exercise: str, source: str):
    cell = next(c for c in nb.cells if c.id == EX[exercise].answer_cells[0])
    cell.source = source
    return nb


def without(nb, *cell_ids, labels=()):
    nb.cells = [c for c in nb.cells if c.id not in cell_ids]
    for c in nb.cells:
        for label in labels:
            c.source = c.source.replace(f":label: {label}", ":label: renamed-by-student")
    return nb


def check_ids(*exercises):
    return [cid for e in exercises for cid, _ in EX[e].check_cells]


def write(folder: Path, case: str, chapter: str, nb_or_bytes) -> None:
    (folder / case).mkdir(parents=True)
    target = folder / case / chapter
    if isinstance(nb_or_bytes, bytes):
        target.write_bytes(nb_or_bytes)
    else:
        nbformat.write(nb_or_bytes, target)


def run_grade(folder: Path, out: Path, timeout: float, *more: str) -> tuple:
    code = cli_main(["grade", str(folder), "--master", str(BOOK), "--out", str(out),
                     "--timeout", str(timeout), *more])
    sheet = out.read_bytes()
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    return code, sheet, {(r["student"], r["exercise"]): r for r in rows}, len(rows)


def marker_processes(marker: str) -> list:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmd:
            found.append(int(pid))
    return found


# ======================================================================================
# Run A: the grader as shipped
# ======================================================================================
def zoo_a(folder: Path, out: Path, marker: str) -> dict:
    """Write run A's submissions; return {student: {exercise: (score, status)}}."""
    cases, ch01 = {}, "ch01-conv2d-by-hand"
    writer = f"import time; time.sleep(1); open({str(out)!r}, 'w').write('forged')  # {marker}"
    attacks = {
        "patched-check-code": conv_attack(
            "import resnet_edu.exercises as ex",
            "[setattr(e.func, '__code__', (lambda *a: ex.Feedback('', True, 'ok')).__code__) "
            "for e in ex.exercises().values()]"),
        "patched-grader-internals": conv_attack(
            "from resnet_edu.classroom import kernel",
            "kernel.HANDLERS.update(call=lambda request, spaces: {'passed': True})"),
        "input-transformer": conv_attack(
            "", "get_ipython().input_transformers_post.append(lambda lines: ['pass'])"),
        "patched-allclose": HONEST_CONV.replace("def conv2d_by_hand", (
            "class Patch:\n    torch.allclose = lambda *a, **k: True\n    "
            "torch.Tensor.__eq__ = lambda a, b: True\n\n\ndef conv2d_by_hand")),
        "detached-writer": conv_attack(
            "import subprocess\nimport sys",
            f"subprocess.Popen([sys.executable, '-c', {writer!r}], start_new_session=True)"),
        "forbidden-call": "import torch.nn.functional as F\n\n\ndef conv2d_by_hand(x, weight, "
                          "bias=None, stride=1, padding=0):\n    return F.conv2d(x, weight, "
                          "bias, stride=stride, padding=padding)\n",
        "wrong-values": "import torch\n\n\ndef conv2d_by_hand(x, weight, bias=None, stride=1, "
                        "padding=0):\n    n, h = x.shape[0], (x.shape[2] + 2 * padding - "
                        "weight.shape[2]) // stride + 1\n    w = (x.shape[3] + 2 * padding - "
                        "weight.shape[3]) // stride + 1\n    return torch.zeros(n, "
                        "weight.shape[0], h, w, dtype=x.dtype)\n",
        "syntax-error": "def conv2d_by_hand(x, weight, bias=None, stride=1, padding=0)\n    "
                        "return x\n"}
    for case, source in attacks.items():
        write(folder, case, CH01, answer(student(CH01), ch01, source))
        cases[case] = {ch01: (0, {"patched-allclose": "rule", "forbidden-call": "rule",
                                  "wrong-values": "failed", "syntax-error": "error"}.get(
                                      case, "rule"))}
    write(folder, "honest-ch01", CH01, answer(student(CH01), ch01, HONEST_CONV))
    cases["honest-ch01"] = {ch01: (1, "passed")}
    nb = without(answer(student(CH01), ch01, HONEST_CONV), *check_ids(ch01), labels=[ch01])
    write(folder, "deleted-check-and-labels", CH01, nb)
    cases["deleted-check-and-labels"] = {ch01: (0, "missing")}
    nb = answer(student(CH01), ch01, HONEST_CONV)
    next(c for c in nb.cells if c.id == check_ids(ch01)[0]).source = 'print("✓ all good")'
    write(folder, "altered-check", CH01, nb)
    cases["altered-check"] = {ch01: (0, "altered")}
    nb = answer(student(CH01), ch01, HONEST_CONV)
    next(c for c in nb.cells if c.id == EX[ch01].answer_cells[0]).id = "my-own-id"
    write(folder, "changed-answer-id", CH01, nb)
    cases["changed-answer-id"] = {ch01: (0, "missing")}
    nb = answer(student(CH01), ch01, HONEST_CONV)
    nb.metadata["resnet_edu"] = {"exercises": "ch01-conv2d-by-hand", "source": CH08}
    write(folder, "forged-metadata", CH01, nb)                   # the file name decides
    cases["forged-metadata"] = {ch01: (1, "passed")}
    cases.update(zoo_a_ch05_ch08(folder))
    cases.update(zoo_a_batch(folder))
    cases.update(zoo_a_book(folder))
    return cases


def zoo_a_ch05_ch08(folder: Path) -> dict:
    ids = list(HONEST_CH05)
    nb = student(CH05)
    for exercise, source in HONEST_CH05.items():
        answer(nb, exercise, source)
    write(folder, "honest-ch05", CH05, nb)
    cases = {"honest-ch05": {e: (1, "passed") for e in ids}}
    unsolved = {e: (0, "unsolved") for e in ids}
    rule_breakers = {
        "subclass-block": ("ch05-fix-the-post", "from resnet_edu.blocks import BasicBlock\n\n\n"
                           "class FixedResidualBlock(BasicBlock):\n    pass\n"),
        "lambda-block": ("ch05-find-the-bug", "from resnet_edu.blocks import BasicBlock\n\n"
                         "DebuggedBlock = lambda c: BasicBlock(c, c)\n"),
        "allclose-in-sandbox": ("ch05-find-the-bug", HONEST_CH05["ch05-find-the-bug"].replace(
            "class DebuggedBlock", "class Patch:\n    torch.allclose = lambda *a, **k: True\n"
            "\n\nclass DebuggedBlock").replace("torch.relu(self.bn2(self.conv2(y)) + x)",
                                               "y"))}
    for case, (exercise, source) in rule_breakers.items():
        write(folder, case, CH05, answer(student(CH05), exercise, source))
        cases[case] = {**unsolved, exercise: (0, "rule")}
    nb = without(student(CH05), *check_ids(*ids), labels=ids)
    write(folder, "deleted-ch05-checks", CH05, nb)
    cases["deleted-ch05-checks"] = {e: (0, "missing") for e in ids}
    meta = ("import torch\nfrom resnet_edu.models import ResNet\n\n\n"
            "def resnet_param_count(block, layers, num_classes=1000):\n"
            "    with torch.device('meta'):\n"
            "        model = ResNet(block, layers, num_classes=num_classes)\n"
            "    return sum(p.numel() for p in model.parameters())\n")
    nb = without(answer(student(CH08), "ch08-param-count", meta),
                 EX["ch08-stage-shapes"].answer_cells[0])
    write(folder, "meta-device", CH08, nb)
    cases["meta-device"] = {"ch08-param-count": (0, "rule"),
                            "ch08-stage-shapes": (0, "missing")}
    return cases


def zoo_a_batch(folder: Path) -> dict:
    """Ten submissions of one chapter, one of them a broken file."""
    cases = {}
    for i in range(10):
        case = f"batch-{i}"
        if i == 4:
            write(folder, case, CH01, nbformat.writes(student(CH01)).encode()[:5000])
            cases[case] = {"ch01-conv2d-by-hand": (0, "unreadable")}
        elif i == 7:
            write(folder, case, CH01, answer(student(CH01), "ch01-conv2d-by-hand",
                                             HONEST_CONV))
            cases[case] = {"ch01-conv2d-by-hand": (1, "passed")}
        else:
            write(folder, case, CH01, student(CH01))
            cases[case] = {"ch01-conv2d-by-hand": (0, "unsolved")}
    return cases


def zoo_a_book(folder: Path) -> dict:
    """The book's solved chapters (full marks) and their student versions (zero)."""
    cases = {}
    for chapter, master in MASTERS.items():
        write(folder, f"book-{chapter[:2]}", chapter, (BOOK / chapter).read_bytes())
        cases[f"book-{chapter[:2]}"] = {e.id: (e.points, "passed") for e in master.exercises}
        write(folder, f"student-{chapter[:2]}", chapter, student(chapter))
        cases[f"student-{chapter[:2]}"] = {e.id: (0, "unsolved") for e in master.exercises}
    return cases


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo_a")
    out = tmp_path_factory.mktemp("sheet_a") / "results.csv"
    marker = f"ZOO-MARKER-{secrets.token_hex(6)}"
    expected = zoo_a(folder / "submissions", out, marker)
    running_before = running_now()
    start = time.monotonic()
    code, sheet, rows, count = run_grade(folder / "submissions", out, timeout=60)
    seconds = time.monotonic() - start
    time.sleep(3)                                   # the writer would strike after 1 s
    return dict(expected=expected, code=code, sheet=sheet, rows=rows, count=count, out=out,
                marker=marker, seconds=seconds, running_before=running_before)


def test_run_a_sheet_is_complete_and_as_expected(run_a):
    expected = {(s, e): v for s, per in run_a["expected"].items() for e, v in per.items()}
    assert set(run_a["rows"]) == set(expected) and run_a["count"] == len(expected)
    wrong = {key: (run_a["rows"][key]["score"], run_a["rows"][key]["status"],
                   run_a["rows"][key]["feedback"][:300])
             for key, (score, status) in expected.items()
             if (float(run_a["rows"][key]["score"]), run_a["rows"][key]["status"])
             != (float(score), status)}
    assert wrong == {}


def test_run_a_exit_code_says_one_file_could_not_be_graded(run_a):
    assert run_a["code"] == 1
    row = run_a["rows"][("batch-4", "ch01-conv2d-by-hand")]
    assert row["max_score"] == "1" and "not JSON" in row["feedback"]


def test_run_a_feedback_quotes_the_rules_and_names_no_grader_internals(run_a):
    rows = run_a["rows"]
    assert "Do not call `F.conv2d`" in rows[("forbidden-call", "ch01-conv2d-by-hand")]["feedback"]
    assert "meta device" in rows[("meta-device", "ch08-param-count")]["feedback"]
    assert "derive it from `nn.Module` only" in rows[("subclass-block", "ch05-fix-the-post")][
        "feedback"]
    assert "Write the block yourself" in rows[("lambda-block", "ch05-find-the-bug")]["feedback"]
    assert "check cell of this exercise" in rows[("deleted-check-and-labels",
                                                 "ch01-conv2d-by-hand")]["feedback"]
    for row in rows.values():
        for internal in ("RemoteFunction", "_check_", "kernel.py", "resnet_edu/classroom",
                         "WorkerGone", "Traceback"):
            assert internal not in row["feedback"], (internal, row)


def test_run_a_sheet_unchanged_and_nothing_left_running(run_a):
    assert run_a["out"].read_bytes() == run_a["sheet"]
    assert marker_processes(run_a["marker"]) == []
    assert strays(run_a["running_before"]) == set()


# ======================================================================================
# Run B: the static policy switched off; the verdict and the sheet must still hold
# ======================================================================================
WRITER = ("import os, sys, time\nif os.fork(): sys.exit(0)\nos.setsid()\n"
          "if os.fork(): sys.exit(0)\ntime.sleep(1)\nopen({out!r}, 'w').write('forged')\n"
          "# {marker}\n")


def zoo_b(folder: Path, out: Path, marker: str) -> dict:
    ch01 = "ch01-conv2d-by-hand"
    writer = WRITER.format(out=str(out), marker=marker)
    attacks = {
        "b-patched-check-code": (conv_attack(
            "import resnet_edu.exercises as ex",
            "[setattr(e.func, '__code__', (lambda *a: ex.Feedback('', True, 'ok')).__code__) "
            "for e in ex.exercises().values()]"), "unsolved"),
        "b-patched-kernel": (conv_attack(
            "from resnet_edu.classroom import kernel",
            "kernel.HANDLERS.update(call=lambda request, spaces: {'passed': True, "
            "'score': 1.0, 'nonce': request.nonce, 'value': None, 'error': None})"),
         "failed"),
        "b-patched-comparisons": (conv_attack(
            "import torch", "(setattr(torch, 'allclose', lambda *a, **k: True), "
            "setattr(torch.Tensor, '__eq__', lambda a, b: True), "
            "setattr(torch, 'equal', lambda *a: True))"), "unsolved"),
        "b-hidden-forbidden-call": (
            "import torch.nn.functional as F\n\n\ndef conv2d_by_hand(x, weight, bias=None, "
            "stride=1, padding=0):\n    return getattr(F, 'conv' + '2d')(x, weight, bias, "
            "stride=stride, padding=padding)\n", "rule"),
        "b-input-transformer": (conv_attack(
            "", "get_ipython().input_transformers_post.append(lambda lines: ['pass'])"),
         "error"),
        "b-detached-writer": (conv_attack(
            "import subprocess\nimport sys",
            f"subprocess.Popen([sys.executable, '-c', {writer!r}], start_new_session=True)"),
         "unsolved"),
        "b-endless-loop": ("def conv2d_by_hand(x, weight, bias=None, stride=1, padding=0):\n"
                           "    while True:\n        pass\n", "timeout"),
        "b-system-exit": ("def conv2d_by_hand(x, weight, bias=None, stride=1, padding=0):\n"
                          "    raise SystemExit(3)\n", "crashed")}
    cases = {}
    for case, (source, status) in attacks.items():
        write(folder, case, CH01, answer(student(CH01), ch01, source))
        cases[case] = {ch01: (0, status)}
    write(folder, "b-honest", CH01, answer(student(CH01), ch01, HONEST_CONV))
    cases["b-honest"] = {ch01: (1, "passed")}
    return cases


@pytest.fixture(scope="module")
def run_b(tmp_path_factory):
    from resnet_edu.classroom import rules

    folder = tmp_path_factory.mktemp("zoo_b")
    out = tmp_path_factory.mktemp("sheet_b") / "results.csv"
    marker = f"ZOO-MARKER-{secrets.token_hex(6)}"
    expected = zoo_b(folder / "submissions", out, marker)
    running_before = running_now()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rules, "policy_problems", lambda code: [])
        code, sheet, rows, count = run_grade(folder / "submissions", out, 8, "--no-sandbox")
    time.sleep(3)                                   # the writers would strike after 1 s
    return dict(expected=expected, code=code, sheet=sheet, rows=rows, count=count, out=out,
                marker=marker, running_before=running_before)


def test_run_b_attacks_that_ran_still_score_zero(run_b):
    got = {s: (float(r["score"]), r["status"]) for (s, _), r in run_b["rows"].items()}
    want = {s: (float(v[0]), v[1]) for s, per in run_b["expected"].items()
            for v in per.values()}
    assert run_b["count"] == len(want) and got == want, {
        s: run_b["rows"][(s, "ch01-conv2d-by-hand")]["feedback"][:200]
        for s in got if got[s] != want.get(s)}
    assert run_b["code"] == 0


def test_run_b_feedback_explains_time_limits_and_exits(run_b):
    rows = {s: r["feedback"] for (s, _), r in run_b["rows"].items()}
    assert "may be slow rather than stuck" in rows["b-endless-loop"]
    assert "infinite loop?" not in rows["b-endless-loop"]
    assert "exit status 3" in rows["b-system-exit"] and "SystemExit" in rows["b-system-exit"]
    assert "F.conv2d" in rows["b-hidden-forbidden-call"]


def test_run_b_writers_are_dead_and_the_sheet_unchanged(run_b):
    assert run_b["out"].read_bytes() == run_b["sheet"]
    assert b"forged" not in run_b["sheet"]
    assert marker_processes(run_b["marker"]) == []
    assert strays(run_b["running_before"]) == set()
