"""The checks of chapter 8's coding exercises (ch08-param-count, ch08-stage-shapes): the
book's solutions (its notebook's `solution` cells) pass, typical mistakes fail with a helpful
message, and an unsolved stub reads "not solved yet".

Wrong answers are built from the package's exact references (``formula_param_count``, the
meta-device forward of ``_reference_shapes``), never from a copy of the book's solution.
"""
from __future__ import annotations

import pytest
import torch

from resnet_edu.blocks import BasicBlock, Bottleneck
from resnet_edu.exercises import check
from resnet_edu.exercises.ch08 import (
    _PARAM_CASES,
    _meta_resnet,
    _reference_shapes,
    formula_param_count,
)
from resnet_edu.stats import count_parameters

NOTEBOOK = "08_full_resnet.ipynb"


@pytest.fixture
def resnet_param_count(book_solution):
    return book_solution(NOTEBOOK, "resnet_param_count", exercise="ch08-param-count")


# ---------------------------------------------------------------- ch08-param-count
@pytest.mark.parametrize("block, layers, num_classes", _PARAM_CASES)
def test_formula_of_the_hints_is_right(resnet_param_count, block, layers, num_classes):
    # the hints compare with formula_param_count's variants, so its default must be exact
    expected = count_parameters(_meta_resnet(block, layers, num_classes))
    assert formula_param_count(block, layers, num_classes) == expected
    assert resnet_param_count(block, layers, num_classes) == expected


def test_param_count_solution_passes(resnet_param_count):
    assert check("ch08-param-count", resnet_param_count).passed


def _from_formula(**variant):
    return lambda block, layers, num_classes=1000: formula_param_count(
        block, layers, num_classes, **variant)


@pytest.mark.parametrize("wrong, phrases", [
    (_from_formula(bn_per_channel=0), ["batchnorm layers are missing"]),
    (_from_formula(bn_per_channel=4), ["buffers"]),
    (_from_formula(fc_bias=False), ["bias"]),
    (_from_formula(projections="strided"), ["64 -> 256"]),
    (_from_formula(projections="never"), ["projection shortcuts are missing"]),
    (lambda block, layers, num_classes=1000: formula_param_count(block, layers, num_classes)
     + 1, ["off by +1", "fc layer 513,000"]),
    (lambda block, layers, num_classes=1000: 11_689_512.5, ["whole number"]),
    (lambda block, layers, num_classes=1000: str(formula_param_count(block, layers,
                                                                     num_classes)),
     ["whole number"]),
])
def test_param_count_mistakes_are_explained(assert_fails, wrong, phrases):
    assert_fails(check("ch08-param-count", wrong), *phrases)


def test_param_count_accepts_numpy_integers(resnet_param_count):
    np = pytest.importorskip("numpy")
    assert check("ch08-param-count", lambda b, l, num_classes=1000:
                 np.int64(resnet_param_count(b, l, num_classes))).passed


def test_param_count_stub_is_not_solved_yet(stub):
    feedback = check("ch08-param-count", stub)
    assert not feedback.solved and "not solved yet" in str(feedback)


# ---------------------------------------------------------------- ch08-stage-shapes
def test_stage_shapes_solution_passes(book_solution):
    ours = book_solution(NOTEBOOK, "stage_output_shapes", exercise="ch08-stage-shapes")
    assert check("ch08-stage-shapes", ours).passed


def _floor_halving(block, height, width):
    shapes, h, w = [], height // 4, width // 4
    shapes.append((64, h, w))
    for stage in range(4):
        h, w = (h // 2, w // 2) if stage else (h, w)
        shapes.append((64 * 2 ** stage * block.expansion, h, w))
    return shapes


@pytest.mark.parametrize("wrong, phrases", [
    (_floor_halving, ["rounds *up*"]),
    (lambda b, h, w: [(c, h2 * 2, w2 * 2) for c, h2, w2 in _reference_shapes(b, h, w)],
     ["halves twice"]),
    (lambda b, h, w: [(64 * 2 ** max(i - 1, 0), *s[1:])
                      for i, s in enumerate(_reference_shapes(b, h, w))], ["expansion"]),
    (lambda b, h, w: _reference_shapes(b, h, w)[1:], ["five shapes"]),
    (lambda b, h, w: [(1, *s) for s in _reference_shapes(b, h, w)], ["without the batch"]),
    (lambda b, h, w: None, ["list of five"]),
])
def test_stage_shapes_mistakes_are_explained(assert_fails, wrong, phrases):
    assert_fails(check("ch08-stage-shapes", wrong), *phrases)


def test_stage_shapes_stub_is_not_solved_yet(stub):
    assert not check("ch08-stage-shapes", stub).solved


@pytest.mark.parametrize("block", [BasicBlock, Bottleneck])
def test_meta_reference_matches_a_real_forward(block):
    # the check's reference runs on the meta device; a real forward must agree
    from resnet_edu.models import ResNet

    model = ResNet(block, [1, 1, 1, 1]).eval()
    shapes = []
    for m in (model.maxpool, model.layer1, model.layer2, model.layer3, model.layer4):
        m.register_forward_hook(lambda mod, i, out: shapes.append(tuple(out.shape[1:])))
    with torch.no_grad():
        model(torch.zeros(1, 3, 45, 38))
    assert shapes == _reference_shapes(block, 45, 38)
