"""Rules about running the block: crashes, its output, its input, layers made in forward."""
from __future__ import annotations

from typing import Iterator, Sequence

import torch

from ..observe import Observation
from ..recorder import Call
from ..report import Problem, ProblemKind
from ..words import join, plural
from . import rule


@rule(ProblemKind.CRASH)
def crash(obs: Observation) -> Iterator[Problem]:
    """Every crash the experiments met, forward or backward, in the order they ran."""
    grads, ev = obs.gradients, obs.eval
    for sentence in (obs.first.crash, grads and grads.crash, grads and grads.backward_crash,
                     ev and ev.crash):
        if sentence:
            yield Problem(ProblemKind.CRASH, sentence)


def _output_defect(out, shape) -> str:
    """What is wrong with the output of the first call, or ''."""
    if out is None:
        return "The block returns None instead of a tensor: forward() is missing its `return out`."
    if not isinstance(out, torch.Tensor):
        return (f"The block returns a {type(out).__name__} instead of a tensor: forward() "
                f"should end with `return out`.")
    if out.dim() != len(shape):
        return (f"The block's output has shape {tuple(out.shape)} but a residual block keeps "
                f"the layout of its input {shape} ({len(shape)} dimensions).")
    if out.shape[0] != shape[0]:
        return (f"The block's output has batch size {out.shape[0]} but its input has "
                f"{shape[0]}: a residual block must not mix or drop samples (check reshapes "
                f"and reductions).")
    if out.is_floating_point() and not bool(torch.isfinite(out).all()):
        return ("The block's output contains NaN or infinite values on a normal random input "
                "(look for divisions, logs or sqrt without an epsilon).")
    return ""


@rule(ProblemKind.BAD_OUTPUT)
def bad_output(obs: Observation) -> Iterator[Problem]:
    if obs.first.crash is None:
        defect = _output_defect(obs.first.output, obs.input_shape)
        if defect:
            yield Problem(ProblemKind.BAD_OUTPUT, defect)


def _input_changers(calls: Sequence[Call]) -> Problem:
    changed = [c for c in calls[1:] if c.changed_x]
    # the innermost calls that changed x (not the containers around them)
    culprits = list(dict.fromkeys(c.name for c in changed
                                  if not any(d.parent is c for d in changed)))
    if not culprits:
        return Problem(ProblemKind.MODIFIES_INPUT,
                       "The block changes its input tensor in place (e.g. `x += ...`, "
                       "`x.relu_()` or `x[...] = ...` in forward), so the caller's tensor and "
                       "any shortcut that still needs x are silently altered; compute into a "
                       "new tensor instead (out = x + ...).")
    inplace = any(getattr(c.module, "inplace", False) for c in changed)
    hint = " (it is built with inplace=True and applied directly to x)" if inplace else ""
    return Problem(ProblemKind.MODIFIES_INPUT,
                   f"The block changes its input tensor in place: {join(culprits)} overwrites "
                   f"x{hint}, so the caller's tensor (and any shortcut that still needs x) is "
                   f"silently altered; apply in-place layers only to tensors the block "
                   f"created itself.", names=culprits)


@rule(ProblemKind.MODIFIES_INPUT)
def modifies_input(obs: Observation) -> Iterator[Problem]:
    """In training mode, or else in eval mode (where some blocks take another path)."""
    if obs.first.crash is None and obs.first.x_changed:
        yield _input_changers(obs.first.calls)
    elif obs.eval is not None and obs.eval.crash is None and obs.eval.x_changed:
        yield _input_changers(obs.eval.calls)


def _made_in_forward(obs: Observation) -> bool:
    return obs.first.crash is None and bool(obs.first.unregistered[0])


@rule(ProblemKind.LAYER_IN_FORWARD)
def layer_in_forward(obs: Observation) -> Iterator[Problem]:
    """Layers with weights that are not submodules: in a plain list, or new each call."""
    if not _made_in_forward(obs):
        return
    first, second = obs.first.unregistered
    same = all(any(m is n for n in second) for m in first)
    kinds = join([type(m).__name__ for m in first])
    n = len({id(m) for m in first})

    def s(one: str, many: str) -> str:
        return plural(n, one, many)

    if same:
        message = (f"The block uses {s('a layer', 'layers')} ({kinds}) that {s('is', 'are')} "
                   f"not registered as a submodule (kept in a plain Python list or dict?), so "
                   f"{s('its', 'their')} weights are missing from block.parameters() and are "
                   f"never trained: use nn.ModuleList/nn.ModuleDict or assign each layer to "
                   f"self in __init__.")
    else:
        message = (f"The block creates {s('a layer', 'layers')} ({kinds}) inside forward(), "
                   f"so {s('it gets', 'they get')} fresh random weights at every call and "
                   f"{s('is', 'are')} never trained: create each layer once in __init__ "
                   f"(self.conv = nn.Conv2d(...)) and only call it in forward().")
    yield Problem(ProblemKind.LAYER_IN_FORWARD, message)


@rule(ProblemKind.NONDETERMINISTIC)
def nondeterministic(obs: Observation) -> Iterator[Problem]:
    """Two identical eval-mode calls that differ (a layer made in forward explains it)."""
    ev = obs.eval
    if ev is None or ev.crash is not None or _made_in_forward(obs):
        return
    a, b = ev.outputs
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and \
            (a.shape != b.shape or not torch.equal(a, b)):
        yield Problem(ProblemKind.NONDETERMINISTIC,
                      "Two identical calls in eval mode give different outputs: forward() "
                      "uses randomness that eval mode does not switch off (e.g. "
                      "F.dropout(out, p) without training=self.training, or torch.randn).")
