"""The declarative form of the function exercises (``FunctionCheck``, ``run_function_check``):
the runner on a toy exercise, each step of it able to fail; the converted checks print
exactly what the book's notebooks show; chapter 13's reference against torch."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from resnet_edu.classroom import load_masters
from resnet_edu.exercises import check, exercises
from resnet_edu.exercises._kit import (
    FunctionCheck,
    Mistake,
    WrongForm,
    generator,
    run_function_check,
)

BOOK = Path(__file__).resolve().parents[1] / "book"


def _read_tensor(got, expected, case):
    if not isinstance(got, torch.Tensor):
        raise WrongForm(f"return a tensor, got {type(got).__name__}.")
    return got


# a toy exercise: scale(x, factor=...) returns factor * x
TOY = FunctionCheck(
    cases=((3, 2.0), (5, -1.5)), seed=1,
    make_inputs=lambda case, g: (torch.randn(case[0], generator=g), case[1]),
    reference=lambda x, factor: factor * x, names=("x", "factor"), by_name=("factor",),
    read=_read_tensor, same=lambda got, expected: torch.allclose(got.float(), expected),
    describe=lambda case, args: f"On {case}",
    mistakes=(Mistake(lambda x, factor: x + factor, "you added the factor."),
              Mistake(lambda x, factor: x * abs(factor),
                      lambda x, factor: f"the sign of {factor} is lost.")),
    differs=lambda got, expected, args: "the values differ.",
    in_place="Return a new tensor.",
    then=lambda got, args, case: None if got.dtype == torch.float32 else "return float32.",
    success="all right.")


@pytest.mark.parametrize("function, message", [
    (lambda x, *, factor: factor * x, None),
    (lambda x, *, factor: (factor * x).tolist(), "On (3, 2.0): return a tensor, got list."),
    (lambda x, *, factor: x + factor, "On (3, 2.0): you added the factor."),
    (lambda x, *, factor: x * abs(factor), "On (5, -1.5): the sign of -1.5 is lost."),
    (lambda x, *, factor: x * 0, "On (3, 2.0): the values differ."),
    (lambda x, *, factor: x.mul_(factor), "On (3, 2.0): your function changed `x` in place. "
                                          "Return a new tensor."),
    (lambda x, *, factor: (factor * x).double(), "On (3, 2.0): return float32."),
])
def test_each_step_of_the_runner(function, message):
    assert run_function_check(TOY, function) == (message is None, message or "all right.")


def test_an_argument_that_may_change_is_handed_as_a_copy():
    def scales_in_place(x, *, factor):
        return x.mul_(factor)

    assert run_function_check(replace(TOY, may_change=("x",)), scales_in_place) == \
        (True, "all right.")
    assert run_function_check(replace(TOY, in_place=""), scales_in_place) == \
        (True, "all right.")
    assert not run_function_check(TOY, scales_in_place)[0]


def test_inputs_come_from_the_kits_generator_in_order():
    seen = []
    run_function_check(TOY, lambda x, *, factor: seen.append(x.clone()) or factor * x)
    g = generator(1)
    assert [torch.equal(s, torch.randn(n, generator=g)) for s, n in zip(seen, (3, 5))] == \
        [True, True]


# every declared function exercise (``declare_function``), from the registry, with the
# chapter whose check cell calls it (the grader's master) and the name it defines
CONVERTED = {e.id: (chapter, e.names[0]) for chapter, master in load_masters(BOOK).items()
             for e in master.exercises if exercises()[e.id].spec is not None}


def _printed(notebook: str, exercise: str) -> list:
    """The lines of the notebook's outputs that are feedback on ``exercise``."""
    cells = json.loads((BOOK / notebook).read_text(encoding="utf-8"))["cells"]
    texts = ["".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
             for cell in cells for out in cell.get("outputs", [])]
    return [line for text in texts for line in text.splitlines()
            if line.startswith(f"✓ {exercise}:")]


def test_every_declared_function_exercise_is_in_a_chapter():
    declared = {i for i, e in exercises().items() if e.spec is not None}
    assert len(declared) >= 11 and declared == set(CONVERTED)


@pytest.mark.parametrize("exercise", sorted(CONVERTED))
def test_converted_checks_print_what_the_book_shows(exercise, book_solution):
    notebook, name = CONVERTED[exercise]
    printed = _printed(notebook, exercise)
    assert printed, f"{notebook} shows no feedback on {exercise}"
    feedback = check(exercise, book_solution(notebook, name, exercise=exercise))
    assert {str(feedback)} == set(printed)


def test_ch13_reference_is_the_statistics_of_the_whole_batch():
    from resnet_edu.exercises.ch13 import _global, _shards

    for sizes in ((4, 4), (3, 7, 2), (16, 1)):
        shards = _shards(sizes, torch.Generator().manual_seed(len(sizes)))
        whole = torch.cat(shards)
        stats = (torch.stack([s.mean(dim=(0, 2, 3)) for s in shards]),
                 torch.stack([s.var(dim=(0, 2, 3), unbiased=False) for s in shards]),
                 torch.tensor([float(s[:, 0].numel()) for s in shards], dtype=torch.float64))
        mean, var = _global(*stats)
        assert torch.allclose(mean, whole.mean(dim=(0, 2, 3)), rtol=1e-12, atol=1e-12)
        assert torch.allclose(var, whole.var(dim=(0, 2, 3), unbiased=False), rtol=1e-12,
                              atol=1e-12)
