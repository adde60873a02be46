"""The grader judges, the submission only answers: the probes of the class exercises and the
function exercises of chapters 6, 12 and 13 judged in the grader's process.

- **Unit tests, no answering process.** The probe (``resnet_edu.classroom.probe``) and the
  remote stand-ins (``resnet_edu.classroom.remote``) talk to the kernel's own request
  handlers in this process, every reply passed through ``torch.save`` and
  ``torch.load(weights_only=True)`` as over the pipe: the probe accepts the book's solutions
  (executed from the book's ``solution`` cells) and names subtle mistakes (a BatchNorm with
  another momentum, a shortcut that cuts the gradient, a conv bias, a broken property), as
  the notebook's check does: both are one runner; a stand-in's result can be differentiated,
  so chapter 6's gradient test works from the grader's process.
- **One grading run** (``grade_notebooks``) with the house policy switched off, as if a
  student had found a hole in it: for each class exercise, answers with a wrong block that
  make the in-process check pass (patched check code; patched ``torch.allclose``,
  ``torch.equal``, ``Tensor.__eq__``, ``BlockReport.ok``, ``check_block`` or the check's
  runner ``run_module_check``) score zero with the probe's feedback; the book's
  solutions score full marks and the student notebooks zero. The same hostile answers
  graded with the probe switched off pass, so the test shows that the probe is what
  stops them.
"""
from __future__ import annotations

import copy
import io
import secrets
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

from resnet_edu.classroom import judge, kernel, load_masters, rules, student_notebook
from resnet_edu.classroom.grading import Options, grade_notebooks
from resnet_edu.classroom.judge import Deadline
from resnet_edu.classroom.probe import probe_class
from resnet_edu.classroom.protocol import REPLIES, from_wire, read_reply, to_wire
from resnet_edu.classroom.remote import RemoteFunction
from resnet_edu.exercises import check, exercises

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
MASTERS = load_masters(BOOK)
EX = {e.id: e for m in MASTERS.values() for e in m.exercises}
NOTEBOOK = {e.id: chapter for chapter, m in MASTERS.items() for e in m.exercises}
# driven by the registry: an exercise is tested here the day it is declared
REGISTRY = exercises()
CLASS_EXERCISES = sorted(i for i, e in REGISTRY.items() if not e.observe)   # judged in-process
OBSERVED_NOW = sorted(i for i, e in REGISTRY.items() if e.spec is not None)  # FunctionChecks,
# run on the grader's stand-in for the student's function


def wire(reply: dict) -> dict:
    """A reply as the grader reads it from the pipe."""
    buffer = io.BytesIO()
    torch.save(reply, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


class LocalWorker:
    """The answering process's request handlers, in this process (no fork, no pipe)."""

    def __init__(self, space: str, **names):
        self.spaces = {space: dict(names)}

    def request(self, request, timeout: float):
        nonce = secrets.token_hex(8)
        sent = from_wire(copy.deepcopy(to_wire(replace(request, nonce=nonce))))
        reply = kernel.HANDLERS[sent.OP](sent, self.spaces)
        return read_reply(REPLIES[sent.OP], wire(to_wire(replace(reply, nonce=nonce))))


def probe(exercise: str, cls, seed: int = 0) -> str:
    name = EX[exercise].names[0]
    worker = LocalWorker(exercise, **{name: cls})

    def ask(kind, **fields):
        return worker.request(kind(space=exercise, name=name, **fields), 60.0)

    return probe_class(exercises()[exercise].probe, ask, name, seed)


def book_class(book_solution, exercise: str):
    return book_solution(NOTEBOOK[exercise], EX[exercise].names[0], exercise=exercise)


# ======================================================================================
# The probe, against the kernel's handlers in this process
# ======================================================================================
def test_every_class_exercise_has_a_probe_and_the_function_ones_are_observed():
    """A check that runs beside the answer (not ``observe``) needs the grader's own probe;
    every declared function exercise is observed. The lists cannot be empty by accident."""
    assert len(CLASS_EXERCISES) >= 5 and len(OBSERVED_NOW) >= 11
    assert [e for e in CLASS_EXERCISES if REGISTRY[e].probe is None] == []
    assert all(REGISTRY[e].observe and REGISTRY[e].probe is None for e in OBSERVED_NOW)
    assert set(REGISTRY) == set(EX), "every registered exercise is graded in a chapter"


@pytest.mark.parametrize("exercise", CLASS_EXERCISES)
def test_probe_accepts_the_book_solution(exercise, book_solution):
    cls = book_class(book_solution, exercise)
    for seed in (0, 2_000_000_011):
        assert probe(exercise, cls, seed) == ""


def other_momentum(book):
    class OtherMomentum(book):
        def __init__(self, *args):
            super().__init__(*args)
            self.bn1.momentum = 0.2
    return OtherMomentum


def detached_shortcut(book):
    class DetachedShortcut(book):
        def forward(self, x):
            return super().forward(x) - self.downsample(x) + self.downsample(x.detach())
    return DetachedShortcut


def no_final_relu(book):
    class NoFinalReLU(book):
        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            return self.bn2(self.conv2(out)) + x
    return NoFinalReLU


def conv_bias(book):
    class ConvBias(book):
        def __init__(self, in_channels, out_channels, stride=1):
            super().__init__(in_channels, out_channels, stride)
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1)
    return ConvBias


def equal_channels_only(book):
    class EqualChannelsOnly(book):
        def __init__(self, in_channels, out_channels, stride=1):
            if in_channels != out_channels:
                raise ValueError("only equal channels")
            super().__init__(in_channels, out_channels, stride)
    return EqualChannelsOnly


def not_a_module(book):
    return lambda channels: [channels]


@pytest.mark.parametrize("exercise, mistake, phrases", [
    ("ch10-preact-block", other_momentum,
     ["in training mode bn1.running_mean after the forward pass differs", "default momentum"]),
    ("ch07-bottleneck-block", detached_shortcut,
     ["in training mode the gradient that reaches the input differs", "no .detach()"]),
    ("ch05-find-the-bug", no_final_relu,
     ["DebuggedBlock(8) itself", "in training mode the output differs",
      "resnet_edu's BasicBlock"]),
    ("ch10-relu-only-preact", conv_bias, ["unexpected: conv1.bias", "without bias"]),
    ("ch05-fix-the-post", equal_channels_only,
     ["FixedResidualBlock(3, 16)", "building the class failed with ValueError: only equal "
                                   "channels"]),
    ("ch05-find-the-bug", not_a_module, ["got a list, not an nn.Module"]),
])
def test_probe_names_what_differs(exercise, mistake, phrases, book_solution):
    feedback = probe(exercise, mistake(book_class(book_solution, exercise)))
    assert feedback.startswith("The grader"), feedback
    for phrase in phrases:
        assert phrase in feedback, (phrase, feedback)


def test_check_and_probe_run_one_runner_and_catch_the_momentum(book_solution):
    """A declared block exercise's check and the grader's probe are the same runner: both
    compare running statistics, not only outputs."""
    wrong = other_momentum(book_class(book_solution, "ch10-preact-block"))
    feedback = check("ch10-preact-block", wrong)
    assert not feedback.passed and "running_mean" in feedback.message, feedback
    assert "running_mean" in probe("ch10-preact-block", wrong)


def identity_only_when_watched(book):
    """Right for any weights but one: with conv2 at zero it adds a constant."""
    class NotTheIdentity(book):
        def forward(self, x):
            return super().forward(x) + float(not self.conv2.weight.any())
    return NotTheIdentity


def test_the_property_is_run_by_the_grader_and_by_the_check(book_solution):
    """The declared property (conv2 at zero gives the identity) is part of the one runner:
    the grader's run finds it as the notebook's check does."""
    wrong = identity_only_when_watched(book_class(book_solution, "ch10-preact-block"))
    feedback = probe("ch10-preact-block", wrong)
    assert feedback.startswith("The grader ran PreActResidualBlock(4) itself with conv2's "
                               "weights at zero: the block should return x exactly"), feedback
    assert "return x exactly" in check("ch10-preact-block", wrong).message


class SplitShortcut(nn.Module):
    """A correct FixedResidualBlock whose projection has names of its own, BN first."""

    def __init__(self, in_channels, out_channels, stride=1, with_bn=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.project = stride != 1 or in_channels != out_channels
        if self.project:
            self.skip_bn = nn.BatchNorm2d(out_channels) if with_bn else nn.Identity()
            self.skip_conv = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + (self.skip_bn(self.skip_conv(x)) if self.project else x))


class SplitShortcutWithoutBN(SplitShortcut):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride, with_bn=False)


def test_probe_matches_a_shortcut_the_exercise_does_not_name():
    assert probe("ch05-fix-the-post", SplitShortcut) == ""
    feedback = probe("ch05-fix-the-post", SplitShortcutWithoutBN)
    assert "FixedResidualBlock(3, 16)" in feedback and "missing: downsample.1" in feedback


# ======================================================================================
# Stand-ins of the observed exercises, against the kernel's handlers in this process
# ======================================================================================
def remote_check(exercise: str, function, seed: int = 5):
    name = EX[exercise].names[0]
    rules = exercises()[exercise].rules
    stand_in = RemoteFunction(LocalWorker(exercise, **{name: function}), exercise, name, rules,
                              Deadline(60.0))
    return check(exercise, stand_in, seed=seed)


@pytest.mark.parametrize("exercise", OBSERVED_NOW)
def test_observed_book_solution_passes_and_a_stub_is_unsolved(exercise, book_solution, stub):
    solution = book_solution(NOTEBOOK[exercise], EX[exercise].names[0], exercise=exercise)
    feedback = remote_check(exercise, solution)
    assert feedback.passed, feedback
    feedback = remote_check(exercise, stub)
    assert not feedback.passed and not feedback.solved, feedback


def detached_shortcut_a(x, out_channels, stride):
    out = x.detach()[:, :, ::stride, ::stride]
    return torch.cat([out, out.new_zeros(out.shape[0], out_channels - out.shape[1],
                                         *out.shape[2:])], dim=1)


def doubled_gradient_shortcut_a(x, out_channels, stride):
    out = detached_shortcut_a(x, out_channels, stride)
    kept = torch.nn.functional.pad(x[:, :, ::stride, ::stride],
                                   (0, 0, 0, 0, 0, out_channels - x.shape[1]))
    return out + 2 * (kept - kept.detach())          # right values, twice the gradient


@pytest.mark.parametrize("function, phrase", [
    (detached_shortcut_a, "no gradient can flow back to x"),
    (doubled_gradient_shortcut_a, "the gradient reaching x is wrong")])
def test_shortcut_gradient_is_checked_through_the_stand_in(function, phrase):
    feedback = remote_check("ch06-shortcut-a", function)
    assert not feedback.passed and phrase in feedback.message, feedback


# ======================================================================================
# One grading run: hostile answers, the book's solutions, the student notebooks
# ======================================================================================
WRONG_FORWARD = {   # the book's solution with one mistake: (the line, what replaces it)
    "ch10-preact-block": ("return x + out", "return torch.relu(x + out)"),
    "ch05-fix-the-post": ("return self.relu(out + self.shortcut(x))",
                          "return out + self.shortcut(x)"),
    "ch05-find-the-bug": ("return self.relu(out + x)", "return out + x"),
    "ch07-bottleneck-block": ("return self.relu(out + identity)", "return out + identity"),
    "ch10-relu-only-preact": ("return self.downsample(x) + out",
                              "return torch.relu(self.downsample(x) + out)"),
}
PATCHED_CHECK = ("import resnet_edu.exercises as ex\n\n\nclass Patch:\n"
                 "    for e in ex.exercises().values():\n"
                 "        getattr(e.func, 'func', e.func).__code__ = (\n"
                 "            lambda *a, **k: (True, 'ok')).__code__\n")
PATCHED_COMPARISONS = (
    "import torch\nimport resnet_edu.diagnostics\n\n\nclass Patch:\n"
    "    torch.allclose = lambda *a, **k: True\n    torch.equal = lambda *a, **k: True\n"
    "    torch.Tensor.__eq__ = lambda a, b: True\n"
    "    resnet_edu.diagnostics.BlockReport.ok = property(lambda self: True)\n")
PATCHED_HELPERS = (
    "import types\nimport resnet_edu.diagnostics\nimport resnet_edu.exercises._modules\n\n\n"
    "class Patch:\n"
    "    resnet_edu.diagnostics.check_block = lambda *a, **k: types.SimpleNamespace(\n"
    "        ok=True, problems=[])\n"
    "    resnet_edu.exercises._modules.run_module_check = lambda *a, **k: ''\n")
ATTACKS = {"patched-check": PATCHED_CHECK, "patched-comparisons": PATCHED_COMPARISONS}


def book_answer(exercise: str) -> str:
    nb = nbformat.read(BOOK / NOTEBOOK[exercise], as_version=4)
    return next(c.source for c in nb.cells if c.id == EX[exercise].answer_cells[0])


def student(chapter: str):
    return student_notebook(nbformat.read(BOOK / chapter, as_version=4), chapter).notebook


def answer(nb, exercise: str, source: str):
    next(c for c in nb.cells if c.id == EX[exercise].answer_cells[0]).source = source
    return nb


def wrong_block(exercise: str) -> str:
    old, new = WRONG_FORWARD[exercise]
    source = book_answer(exercise)
    assert old in source, (exercise, old)
    return source.replace(old, new)


def write(folder: Path, case: str, chapter: str, nb) -> None:
    (folder / case).mkdir(parents=True)
    nbformat.write(nb, folder / case / chapter)


def hostile_submissions(folder: Path) -> dict:
    """{student: [class exercises answered with a wrong block behind an attack]}."""
    cases = {}
    by_chapter = {}
    for exercise in CLASS_EXERCISES:
        by_chapter.setdefault(NOTEBOOK[exercise], []).append(exercise)
    attacks = [(chapter, attack, prelude) for chapter in by_chapter
               for attack, prelude in ATTACKS.items()]
    attacks.append(("10_identity_mappings.ipynb", "patched-helpers", PATCHED_HELPERS))
    for chapter, attack, prelude in attacks:
        nb = student(chapter)
        targets = ["ch10-preact-block"] if attack == "patched-helpers" else by_chapter[chapter]
        for exercise in targets:
            answer(nb, exercise, prelude + "\n\n" + wrong_block(exercise))
        case = f"{attack}-{chapter[:2]}"
        write(folder, case, chapter, nb)
        cases[case] = targets
    return cases


def honest_submissions(folder: Path) -> dict:
    """{student: {exercise: (score, status)}}: the book's solutions, the student versions."""
    cases = {}
    for chapter in sorted({NOTEBOOK[e] for e in CLASS_EXERCISES + OBSERVED_NOW}):
        solved = [e for e in CLASS_EXERCISES + OBSERVED_NOW if NOTEBOOK[e] == chapter]
        nb = student(chapter)
        for exercise in solved:
            answer(nb, exercise, book_answer(exercise))
        write(folder, f"book-{chapter[:2]}", chapter, nb)
        cases[f"book-{chapter[:2]}"] = {e.id: ((e.points, "passed") if e.id in solved else
                                               (0, "unsolved"))
                                        for e in MASTERS[chapter].exercises}
        write(folder, f"student-{chapter[:2]}", chapter, student(chapter))
        cases[f"student-{chapter[:2]}"] = {e.id: (0, "unsolved")
                                           for e in MASTERS[chapter].exercises}
    return cases


def rows_of(results) -> dict:
    return {(r.student, r.exercise): r for result in results for r in result.rows}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    hostile = tmp_path_factory.mktemp("hostile")
    honest = tmp_path_factory.mktemp("honest")
    attacks, expected = hostile_submissions(hostile), honest_submissions(honest)
    options = Options(timeout=120, seed=secrets.randbelow(2 ** 31))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rules, "policy_problems", lambda code: [])   # a hole in the policy
        probed = rows_of(grade_notebooks([hostile, honest], MASTERS, options))
        mp.setattr(judge, "probe_class", lambda *args: "")      # and no probe
        unprobed = rows_of(grade_notebooks([hostile], MASTERS, options))
    return dict(attacks=attacks, expected=expected, probed=probed, unprobed=unprobed)


def test_hostile_answers_pass_the_in_process_check_alone(graded):
    """Without the probe each attack would score: the test below is not vacuous."""
    got = {(s, e): (graded["unprobed"][(s, e)].status, graded["unprobed"][(s, e)].feedback)
           for s, exs in graded["attacks"].items() for e in exs}
    assert {k: v for k, v in got.items() if v[0] != "passed"} == {}


def test_hostile_answers_score_zero_with_the_probes_feedback(graded):
    wrong = {}
    for case, exs in graded["attacks"].items():
        for exercise in exs:
            row = graded["probed"][(case, exercise)]
            name = EX[exercise].names[0]
            if (row.score, row.status) != (0, "failed") or not (
                    row.feedback.startswith(f"The grader ran {name}(")
                    and " mode the output differs" in row.feedback):
                wrong[(case, exercise)] = (row.score, row.status, row.feedback[:300])
    assert wrong == {}


def test_book_solutions_score_full_marks_and_student_versions_zero(graded):
    got = {(s, e): (float(graded["probed"][(s, e)].score), graded["probed"][(s, e)].status,
                    graded["probed"][(s, e)].feedback[:200])
           for s, per in graded["expected"].items() for e in per}
    wrong = {k: v for k, v in got.items()
             if v[:2] != (float(graded["expected"][k[0]][k[1]][0]),
                          graded["expected"][k[0]][k[1]][1])}
    assert wrong == {}
