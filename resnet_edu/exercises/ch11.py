"""Checks for chapter 11, "Why residual networks train".

- ``ch11-path-counts``: ``paths_by_length(num_blocks)`` must return how many of
  the ``2**n`` paths through ``n`` residual blocks pass through exactly ``k``
  residual branches, for ``k = 0 .. n`` (the references are binomial
  coefficients from :func:`math.comb`).
- ``ch11-filter-normalise``: ``filter_normalise(direction, weight)`` must
  rescale a random direction filter by filter to the norms of the weight's
  filters, and return zeros for one-dimensional parameters (Li et al., 2018).
  The reference is :func:`resnet_edu.analysis.filter_normalised_direction`'s rule.
"""
from __future__ import annotations

import math
import operator
from typing import List

import torch

from . import declare_function
from ._kit import FunctionCheck, Mistake, WrongForm

_NUM_BLOCKS = (2, 3, 9, 27, 54, 0, 1)      # n >= 2 first: there a missing end is visible


def _binomials(n: int) -> List[int]:
    return [math.comb(n, k) for k in range(n + 1)]


def _whole_numbers(got, expected, n) -> List[int]:
    try:
        return [int(v) for v in got]
    except (TypeError, ValueError):
        raise WrongForm(f"returned {type(got).__name__}; return a list of whole "
                        "numbers.") from None


def _count_differs(got: List[int], expected: List[int], args) -> str:
    n = args[0]
    if len(got) != n + 1:
        return (f"has {len(got)} entries; a path can use 0, 1, ..., {n} branches, so return "
                f"{n + 1}.")
    if sum(got) != 2 ** n:
        return (f"adds up to {sum(got)}, but {n} blocks, each taken or skipped, give "
                f"2**{n} = {2 ** n} paths.")
    return f"is {got}, expected {expected}: choose which k of the n branches a path uses."


PATH_COUNTS = FunctionCheck(
    cases=_NUM_BLOCKS, make_inputs=lambda n, g: (n,), reference=_binomials,
    read=_whole_numbers, same=operator.eq, describe=lambda n, args: f"paths_by_length({n})",
    say=lambda where, got, expected, hint: f"{where} {hint}",
    mistakes=(Mistake(lambda n: _binomials(n)[1:], lambda n: (
                  f"has {n} entries: the path that skips every branch (length 0) is "
                  "missing.")),
              Mistake(lambda n: _binomials(n)[:-1], lambda n: (
                  f"has {n} entries: the path through every branch (length {n}) is "
                  "missing."))),
    differs=_count_differs,
    success="the binomial coefficients C(n, k) for n up to 54 (ResNet-110's 54 blocks): "
            "paths through k branches.")


declare_function("ch11-path-counts", PATH_COUNTS, "paths_by_length", "Counting paths by length")


def _reference_normalise(direction: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    if weight.dim() <= 1:
        return torch.zeros_like(weight)
    norms = direction.flatten(1).norm(dim=1)
    target = weight.flatten(1).norm(dim=1)
    return direction * (target / norms).view(-1, *([1] * (weight.dim() - 1)))


def _draw(shape, generator: torch.Generator) -> tuple:
    """``(direction, weight)``: a random direction and a weight of a random scale."""
    weight = torch.randn(shape, generator=generator) * (
        0.5 + torch.rand(1, generator=generator) * 3)
    return torch.randn(shape, generator=generator), weight


def _same_shape(got, expected: torch.Tensor, shape) -> torch.Tensor:
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(shape):
        found = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise WrongForm(f"return a tensor of the same shape as the weight; got {found}.")
    return got.detach().to(expected.dtype)


def _filters_only(mistake):
    """A mistake about filters: it does not apply to a one-dimensional parameter."""
    def expected(direction, weight):
        if weight.dim() <= 1:
            raise ValueError("a one-dimensional parameter has no filters")
        return mistake(direction, weight)
    return expected


def _unit_filters(direction: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return direction / direction.flatten(1).norm(dim=1).view(-1, *([1] * (weight.dim() - 1)))


def _normalise_differs(got: torch.Tensor, expected: torch.Tensor, args) -> str:
    if args[1].dim() == 1:
        return ("a one-dimensional parameter (a bias or a BatchNorm weight) stays: return "
                "zeros, Li et al. do not move those.")
    return ("the result differs from d_i / ||d_i|| * ||w_i|| for each filter i (largest "
            f"difference {(got - expected).abs().max().item():.3g}).")


FILTER_NORMALISE = FunctionCheck(
    cases=((16, 8, 3, 3), (4, 1, 3, 3), (10, 64), (1, 5, 1, 1), (32,)), seed=11,
    make_inputs=_draw, reference=_reference_normalise, read=_same_shape,
    same=lambda got, expected: torch.allclose(got, expected, rtol=1e-4, atol=1e-6),
    describe=lambda shape, args: f"shape {shape}",
    mistakes=(Mistake(_filters_only(lambda d, w: d * (w.norm() / d.norm())),
                      "you rescaled the whole tensor to the weight's norm. Rescale each "
                      "filter (each output channel, index 0) to the norm of the same filter "
                      "of the weight."),
              Mistake(_filters_only(_unit_filters), "every filter has norm 1; multiply it "
                      "by the norm of the matching filter of the weight.")),
    differs=_normalise_differs,
    success="each filter of the direction has the norm of the matching filter of the "
            "weight, and biases and BatchNorm parameters stay.")


declare_function("ch11-filter-normalise", FILTER_NORMALISE, "filter_normalise",
                 "Filter-normalised directions")
