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

import torch

from . import Feedback, register
from ._kit import generator as case_generator

_NUM_BLOCKS = (2, 3, 9, 27, 54, 0, 1)      # n >= 2 first: there a missing end is visible


@register("ch11-path-counts", names=["paths_by_length"], title="Counting paths by length",
          observe=True)
def _check_path_counts(paths_by_length) -> Feedback:
    exercise = "ch11-path-counts"
    for n in _NUM_BLOCKS:
        expected = [math.comb(n, k) for k in range(n + 1)]
        got = paths_by_length(n)
        try:
            got = [int(v) for v in got]
        except (TypeError, ValueError):
            return Feedback(exercise, False, f"paths_by_length({n}) returned "
                            f"{type(got).__name__}; return a list of whole numbers.")
        if got == expected:
            continue
        if len(got) == n and got == expected[1:]:
            return Feedback(exercise, False, f"paths_by_length({n}) has {n} entries: the "
                            f"path that skips every branch (length 0) is missing.")
        if len(got) == n and got == expected[:-1]:
            return Feedback(exercise, False, f"paths_by_length({n}) has {n} entries: the "
                            f"path through every branch (length {n}) is missing.")
        if len(got) != n + 1:
            return Feedback(exercise, False, f"paths_by_length({n}) has {len(got)} entries; "
                            f"a path can use 0, 1, ..., {n} branches, so return {n + 1}.")
        if sum(got) != 2 ** n:
            return Feedback(exercise, False, f"paths_by_length({n}) adds up to {sum(got)}, "
                            f"but {n} blocks, each taken or skipped, give 2**{n} = {2 ** n} "
                            f"paths.")
        return Feedback(exercise, False, f"paths_by_length({n}) is {got}, expected "
                        f"{expected}: choose which k of the n branches a path uses.")
    return Feedback(exercise, True, "the binomial coefficients C(n, k) for n up to 54 "
                    "(ResNet-110's 54 blocks): paths through k branches.")


def _reference_normalise(direction: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    if weight.dim() <= 1:
        return torch.zeros_like(weight)
    norms = direction.flatten(1).norm(dim=1)
    target = weight.flatten(1).norm(dim=1)
    return direction * (target / norms).view(-1, *([1] * (weight.dim() - 1)))


def _normalise_cases():
    generator = case_generator(11)                  # fixed in the book, fresh when grading
    shapes = ((16, 8, 3, 3), (4, 1, 3, 3), (10, 64), (1, 5, 1, 1), (32,))
    for shape in shapes:
        weight = torch.randn(shape, generator=generator) * (0.5 + torch.rand(1, generator=generator) * 3)
        direction = torch.randn(shape, generator=generator)
        yield shape, direction, weight


@register("ch11-filter-normalise", names=["filter_normalise"],
          title="Filter-normalised directions", observe=True)
def _check_filter_normalise(filter_normalise) -> Feedback:
    exercise = "ch11-filter-normalise"
    for shape, direction, weight in _normalise_cases():
        expected = _reference_normalise(direction, weight)
        got = filter_normalise(direction.clone(), weight.clone())
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(shape):
            found = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return Feedback(exercise, False, f"for a weight of shape {shape} return a tensor "
                            f"of the same shape; got {found}.")
        got = got.detach().to(expected.dtype)
        if torch.allclose(got, expected, rtol=1e-4, atol=1e-6):
            continue
        if len(shape) == 1:
            return Feedback(exercise, False, f"for a one-dimensional parameter (shape "
                            f"{shape}: a bias or a BatchNorm weight) return zeros: Li et al. "
                            f"do not move those.")
        whole = direction * (weight.norm() / direction.norm())
        if torch.allclose(got, whole, rtol=1e-4, atol=1e-6):
            return Feedback(exercise, False, f"shape {shape}: you rescaled the whole tensor "
                            f"to the weight's norm. Rescale each filter (each output channel, "
                            f"index 0) to the norm of the same filter of the weight.")
        unit = direction / direction.flatten(1).norm(dim=1).view(-1, *([1] * (len(shape) - 1)))
        if torch.allclose(got, unit, rtol=1e-4, atol=1e-6):
            return Feedback(exercise, False, f"shape {shape}: every filter has norm 1; "
                            f"multiply it by the norm of the matching filter of the weight.")
        return Feedback(exercise, False, f"shape {shape}: the result differs from "
                        f"d_i / ||d_i|| * ||w_i|| for each filter i (largest difference "
                        f"{(got - expected).abs().max().item():.3g}).")
    return Feedback(exercise, True, "each filter of the direction has the norm of the "
                    "matching filter of the weight, and biases and BatchNorm parameters stay.")
