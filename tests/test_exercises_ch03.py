"""The check of chapter 3's coding exercise (ch03-block-output-stds): the book's solution
(its notebook's `solution` cell) passes, typical mistakes fail with a helpful message, and an
unsolved stub reads "not solved yet"."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_edu.exercises import check

EXERCISE = "ch03-block-output-stds"


@pytest.fixture
def solution(book_solution):
    return book_solution("03_degradation.ipynb", "block_output_stds")


# ---------------------------------------------------------------- ch03-block-output-stds
def _hooked(model, x, *, of_input=False, train=True, remove=True, modules=None):
    stds = []
    targets = modules(model) if modules else [b for s in (model.layer1, model.layer2,
                                                          model.layer3) for b in s]
    handles = [m.register_forward_hook(
        lambda m, i, o: stds.append((i[0] if of_input else o).std().item())) for m in targets]
    if train:
        model.train()
    with torch.no_grad():
        model(x)
    if remove:
        for h in handles:
            h.remove()
    return stds


def input_stds(model, x):
    return _hooked(model, x, of_input=True)


def keeps_the_mode(model, x):             # forgets model.train(): eval-mode statistics
    return _hooked(model, x, train=False)


def leaves_hooks(model, x):
    return _hooked(model, x, remove=False)


def every_layer(model, x):                # hooks every conv as well
    return _hooked(model, x, modules=lambda m: [c for c in m.modules()
                                                if isinstance(c, nn.Conv2d)])


def population_std(model, x):             # std without Bessel's correction: also right
    stds = []
    handles = [b.register_forward_hook(lambda m, i, o: stds.append(o.std(unbiased=False)))
               for s in (model.layer1, model.layer2, model.layer3) for b in s]
    model.train()
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return torch.stack(stds)               # a tensor of values is accepted as well


def test_block_output_stds_solution_passes(solution):
    feedback = check(EXERCISE, solution)
    assert feedback.passed, feedback.message


def test_block_output_stds_accepts_population_std_as_a_tensor():
    feedback = check(EXERCISE, population_std)
    assert feedback.passed, feedback.message


@pytest.mark.parametrize("wrong, words", [
    (input_stds, "input"),
    (keeps_the_mode, "model.train()"),
    (leaves_hooks, "handle.remove()"),
    (every_layer, "one per block"),
])
def test_block_output_stds_mistakes_are_explained(assert_fails, wrong, words):
    assert_fails(check(EXERCISE, wrong), words)


def test_block_output_stds_stub_is_not_solved_yet(stub):
    feedback = check(EXERCISE, stub)
    assert not feedback.passed and not feedback.solved
    assert "not solved yet" in feedback.message


def test_block_output_stds_check_leaves_the_global_rng_alone(assert_keeps_random_stream,
                                                            solution):
    assert_keeps_random_stream(EXERCISE, solution)
