"""Checks for chapter 3, "Deeper plain nets get worse: the degradation problem".

- ``ch03-block-output-stds``: ``block_output_stds(model, x)`` returns the standard
  deviation of the output of every block of a CIFAR-style network
  (``model.layer1``, ``model.layer2``, ``model.layer3``, in order) for one forward
  pass of ``x`` in training mode, measured with forward hooks that are removed
  afterwards.
"""
from __future__ import annotations

import copy
import math
from typing import List

import torch
from torch import nn

from ..compat import forward_hook_count
from . import Feedback, register
from ._kit import generator, manual_seed

EXERCISE = "ch03-block-output-stds"


def _blocks(model: nn.Module) -> List[nn.Module]:
    return [block for stage in (model.layer1, model.layer2, model.layer3) for block in stage]


def _reference_stds(model: nn.Module, x: torch.Tensor, train: bool = True,
                    of_input: bool = False) -> List[float]:
    """What the exercise asks for (``train=False``/``of_input=True``: typical mistakes)."""
    stds: List[float] = []

    def hook(module, inputs, output):
        stds.append((inputs[0] if of_input else output).std().item())

    handles = [block.register_forward_hook(hook) for block in _blocks(model)]
    try:
        model.train(train)
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return stds


def _leftover_hooks(model: nn.Module) -> List[str]:
    return [name or type(model).__name__ for name, m in model.named_modules()
            if forward_hook_count(m)]


def _as_floats(values) -> List[float]:
    if isinstance(values, torch.Tensor):
        values = values.tolist()
    return [float(v) for v in values]


def _close(got: List[float], expected: List[float]) -> bool:
    # std with or without Bessel's correction differ by < 0.1% on these tensors: both pass
    return len(got) == len(expected) and all(
        math.isclose(g, e, rel_tol=2e-3, abs_tol=1e-6) for g, e in zip(got, expected))


@register(EXERCISE, names=["block_output_stds"], title="Activation sizes with forward hooks",
          observe=True)
def _check_block_output_stds(block_output_stds, *, salt: int = 0) -> Feedback:
    from ..models import cifar_resnet, plain_net

    g = generator(3, salt)
    with torch.random.fork_rng(devices=[]):
        manual_seed(3, salt)
        cases = [("plain_net(20, in_channels=1)", plain_net(20, in_channels=1), True),
                 ("cifar_resnet(14, in_channels=1)", cifar_resnet(14, in_channels=1), True),
                 ("plain_net(14, in_channels=1) handed over in eval mode",
                  plain_net(14, in_channels=1), False)]
    for description, model, start_in_train_mode in cases:
        x = torch.randn(16, 1, 8, 8, generator=g)
        model.train(start_in_train_mode)
        expected = _reference_stds(copy.deepcopy(model), x)
        student_model = copy.deepcopy(model)
        student_model.train(start_in_train_mode)
        got_raw = block_output_stds(student_model, x.clone())
        where = f"On {description}"
        try:
            got = _as_floats(got_raw)
        except (TypeError, ValueError):
            return Feedback(EXERCISE, False, f"{where}: expected a list of numbers (one per "
                            f"block), got {type(got_raw).__name__}. Append `output.std().item()` "
                            f"to a list inside the hook and return the list.")
        leftover = _leftover_hooks(student_model)
        if leftover:
            return Feedback(EXERCISE, False, f"{where}: hooks are still attached to "
                            f"{', '.join(leftover[:4])} after your function returned. Keep the "
                            f"handles that register_forward_hook returns and call "
                            f"`handle.remove()` on each (in a `finally:` block), or every later "
                            f"forward pass keeps recording.")
        if len(got) != len(expected):
            return Feedback(EXERCISE, False, f"{where}: expected {len(expected)} values (one "
                            f"per block of layer1, layer2 and layer3), got {len(got)}. Hook the "
                            f"blocks themselves, not every layer, and leave out the stem "
                            f"(conv1/bn1) and the classifier (fc).")
        if _close(got, expected):
            continue
        if _close(got, _reference_stds(copy.deepcopy(model), x, of_input=True)):
            return Feedback(EXERCISE, False, f"{where}: these are the standard deviations of "
                            f"each block's *input*. A forward hook is called as "
                            f"hook(module, inputs, output); measure `output`.")
        if _close(got, _reference_stds(copy.deepcopy(model), x, train=False)):
            return Feedback(EXERCISE, False, f"{where}: these values come from evaluation "
                            f"mode, where BatchNorm uses its running statistics. Call "
                            f"`model.train()` before the forward pass so BatchNorm normalises "
                            f"with the batch's own statistics, as during training.")
        return Feedback(EXERCISE, False, f"{where}: the values differ from the standard "
                        f"deviations of the blocks' outputs (expected "
                        f"{[round(v, 3) for v in expected[:3]]}... , got "
                        f"{[round(v, 3) for v in got[:3]]}...). Use one forward pass of x, "
                        f"`output.std()` of the whole output tensor of each block.")
    return Feedback(EXERCISE, True, "your hooks measure every block's output size, in training "
                    "mode, and clean up after themselves.")
