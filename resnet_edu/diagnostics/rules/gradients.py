"""Rules about gradients: parameters never reached, or reached only by zeros."""
from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple

import torch

from .. import dataflow
from ..observe import Observation
from ..report import Problem, ProblemKind
from ..words import join, plural
from . import rule
from .layers import redundant_biases


def _ancestors(name: str) -> List[str]:
    """The module and the modules around it, below the block: a.b.c, a.b, a."""
    chain = []
    while name:
        chain.append(name)
        name = name.rpartition(".")[0]
    return chain


def _cause(run, pname: str) -> Tuple[str, Optional[str]]:
    """Why parameter ``pname`` gets no gradient, and the layer to name:
    ('discarded' | 'never_called' | 'detached' | 'other', layer or None)."""
    ancestors = _ancestors(pname.rpartition(".")[0])
    called = [n for n in ancestors if dataflow.state(run, n) is not None]
    if not ancestors:                        # a parameter of the block itself
        return "other", None
    if not called:
        by_name = dataflow.calls_by_name(run)
        uncalled = [n for n in ancestors
                    if not any(k == n or k.startswith(n + ".") for k in by_name)]
        return "never_called", uncalled[-1]
    cause, label = dataflow.state(run, called[0]), called[0]
    if cause not in ("discarded", "detached"):
        return "other", label
    for n in ancestors[ancestors.index(called[0]) + 1:]:  # the outermost alike container
        if dataflow.state(run, n) == cause:
            label = n
        elif dataflow.state(run, n) is not None:
            break
    if cause == "discarded" and run.influences.get(label, False):
        cause = "detached"  # it does change the output: the gradient path is cut
    return cause, label


def _after_discarded_x(run) -> List[str]:
    """The post's bug: after a thrown-away layer that read x, later layers read x too."""
    used = dataflow.usage(run)
    calls = list(run.inner)
    dead_x = [i for i, c in enumerate(calls) if c.receives_x and used.get(c) is False]
    if not dead_x:
        return []
    return list(dict.fromkeys(c.name for c in calls[dead_x[0] + 1:] if c.registered and
                              not any(True for _ in c.module.children()) and c.receives_x))


def _sentence(cause: str, params: List[str], mods: List[str], run) -> str:
    subject = f"{join(params)} {plural(len(params), 'never receives', 'never receive')} a gradient"
    are, s = plural(len(mods), "is", "are"), plural(len(mods), "", "s")
    if cause == "discarded":
        later = _after_discarded_x(run)
        hint = ""
        if later:
            hint = (f" ({join(later)} {plural(len(later), 'takes', 'take')} the input x "
                    f"rather than the previous layer's output: was "
                    f"out = self.{later[0]}(out) meant?)")
        return (f"{subject}: the output{s} of {join(mods)} {are} computed but overwritten or "
                f"thrown away before reaching the block's output{hint}.")
    if cause == "never_called":
        return f"{subject}: {join(mods)} {are} created in __init__ but never called in forward()."
    if cause == "detached":
        return (f"{subject}: the output{s} of {join(mods)} {are} cut off from autograd "
                f"(.detach(), .data or torch.no_grad() in forward).")
    return (f"{subject}: {plural(len(params), 'it has', 'they have')} no influence on the "
            f"block's output (unused, detached, or overwritten).")


@rule(ProblemKind.NO_GRADIENT)
def no_gradient(obs: Observation) -> Iterator[Problem]:
    """Parameters unconnected to the output (in training and in eval mode), one problem
    per cause: outputs thrown away, layers never called, outputs cut off from autograd,
    or no influence for another reason."""
    run = obs.gradients
    if run is None or run.crash is not None:
        return
    eval_grads = run.eval_grads or {}
    groups: Dict[str, Tuple[List[str], List[str]]] = {
        k: ([], []) for k in ("discarded", "never_called", "detached", "other")}
    for pname, grad in run.grads.items():
        if grad is None and eval_grads.get(pname) is None:
            cause, label = _cause(run, pname)
            params, mods = groups[cause]
            params.append(pname)
            if label is not None and label not in mods:
                mods.append(label)
    for cause, (params, mods) in groups.items():
        if params:
            yield Problem(ProblemKind.NO_GRADIENT, _sentence(cause, params, mods, run),
                          names=params)


def _biggest(grads) -> float:
    return max([float(g.abs().max()) for g in grads if g is not None and g.numel()] + [0.0])


@rule(ProblemKind.ZERO_GRADIENT)
def zero_gradient(obs: Observation) -> Iterator[Problem]:
    """Connected parameters whose gradient is zero in training mode, in eval mode and
    with every parameter moved (so not an accident of the initialisation)."""
    run = obs.gradients
    if run is None or run.crash is not None:
        return
    connected = {n: g for n, g in run.grads.items() if g is not None}
    gmax = _biggest(list(connected.values()) + [run.x_grad])
    if not connected or gmax == 0:
        return
    rel = 1e-9 if run.dtype == torch.float64 else 1e-5
    eval_grads = run.eval_grads or {}
    eval_max = _biggest(eval_grads.values())
    moved = run.moved_grads or {}
    moved_max = _biggest(moved.values())
    redundant = redundant_biases(obs)

    def zero(g, biggest) -> bool:
        return g is None or float(g.abs().max()) <= rel * biggest

    names = [n for n, g in connected.items() if g.numel() and zero(g, gmax)
             and zero(eval_grads.get(n), eval_max) and n not in redundant
             and zero(moved.get(n), moved_max)]
    if names:
        one = len(names) == 1
        yield Problem(ProblemKind.ZERO_GRADIENT,
                      f"{join(names)} {'is' if one else 'are'} connected to the output but "
                      f"always receive{'s' if one else ''} a zero gradient: "
                      f"{'its' if one else 'their'} effect cancels out or passes through an "
                      f"operation without a gradient (rounding, argmax, multiplication by "
                      f"zero).", names=names)
