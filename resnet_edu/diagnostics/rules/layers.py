"""Rules about single layers: results thrown away, BatchNorm statistics, shared layers."""
from __future__ import annotations

from typing import Dict, Iterator, List

import torch
from torch import nn

from ...compat import CONV_TYPES, STATS_NORM_TYPES
from .. import dataflow
from ..observe import Observation
from ..recorder import Call, has_params
from ..report import Problem, ProblemKind
from ..words import join
from . import note, rule


def _run(obs: Observation):
    run = obs.gradients
    return run if run is not None and run.crash is None else None


def _top_discarded(run) -> List[Call]:
    """Calls whose result is thrown away, and not inside a call thrown away itself."""
    used, root = dataflow.usage(run), run.calls[0]

    def inside_discarded(c: Call) -> bool:
        p = c.parent
        while p is not None and p is not root:
            if used.get(p) is False:
                return True
            p = p.parent
        return False

    return [c for c in run.inner if used[c] is False and not inside_discarded(c)]


@rule(ProblemKind.DISCARDED_OUTPUT)
def discarded_output(obs: Observation) -> Iterator[Problem]:
    """A layer's result computed and thrown away, beyond the unconnected layers (those
    are no_gradient's) and beyond links of a longer dead chain (whose input is itself
    thrown away: the layers above explain them): where a live tensor goes to waste."""
    run = _run(obs)
    if run is None:
        return
    used, by_name = dataflow.usage(run), dataflow.calls_by_name(run)
    wasted = []
    for c in _top_discarded(run):
        unconnected = has_params(c.module) and all(
            used.get(o) is False for o in by_name.get(c.name, [c]))
        live = [run.reaches.get(id(t), False) for t in c.inputs if t.requires_grad]
        if not unconnected and c.registered and (not live or any(live)):
            wasted.append(c)
    if wasted:
        yield Problem(ProblemKind.DISCARDED_OUTPUT,
                      f"The result of {join([c.label for c in wasted])} is computed and then "
                      f"thrown away: did you forget to assign it (out = "
                      f"self.{wasted[0].name}(out)) or pass the wrong variable to the next "
                      f"layer?", names=[c.name for c in wasted])


@rule(ProblemKind.DISCARDED_BN_UPDATE)
def discarded_bn_update(obs: Observation) -> Iterator[Problem]:
    """BatchNorm statistics updated by a call whose output is thrown away."""
    run = _run(obs)
    if run is None:
        return
    used, by_name = dataflow.usage(run), dataflow.calls_by_name(run)
    bad = [name for name, before in run.bn_before.items()
           if any(used.get(c) is False for c in by_name.get(name, []))
           and name in run.bn_after
           and not all(torch.equal(a, b) for a, b in zip(before, run.bn_after[name]))]
    if bad:
        one = len(bad) == 1
        yield Problem(ProblemKind.DISCARDED_BN_UPDATE,
                      f"{join(bad)} still update{'s' if one else ''} "
                      f"{'its' if one else 'their'} running statistics (running_mean, "
                      f"running_var) in training mode although "
                      f"{'its output is' if one else 'their outputs are'} thrown away, so in "
                      f"eval mode the block normalises with statistics of the wrong tensor.",
                      names=bad)


def _shared(run) -> Iterator[tuple]:
    """(name, module, number of calls) of every registered layer called more than once."""
    for name, calls in dataflow.calls_by_name(run).items():
        module = run.modules.get(name)
        if len(calls) >= 2 and module is not None:
            yield name, module, len(calls)


def _learns_or_tracks(module: nn.Module) -> bool:
    return has_params(module) or bool(getattr(module, "track_running_stats", False))


@rule(ProblemKind.REUSED_NORM)
def reused_norm(obs: Observation) -> Iterator[Problem]:
    """One normalisation layer (with weights or statistics) used for several layers."""
    run = _run(obs)
    for name, module, n in (_shared(run) if run is not None else ()):
        if dataflow.is_norm(module) and _learns_or_tracks(module):
            yield Problem(ProblemKind.REUSED_NORM,
                          f"{name} is called {n} times in one forward pass: those layers "
                          f"share one scale/shift and one set of running statistics that "
                          f"mixes their activations; give each convolution its own "
                          f"normalisation layer.", names=[name])


def redundant_biases(obs: Observation) -> Dict[str, str]:
    """{'conv1.bias': note} for convolutions whose every output goes straight into a
    per-channel normalisation (BatchNorm/InstanceNorm), which cancels a bias."""
    run = _run(obs)
    if run is None:
        return {}
    consumers: Dict[int, List[tuple]] = {}
    for c in run.inner:
        for t, version in zip(c.inputs, c.input_versions):
            consumers.setdefault(id(t), []).append((c, version))
    notes = {}
    for name, module in run.modules.items():
        calls = [c for c in run.inner if c.registered and c.name == name and c.outputs]
        if not (name and calls and isinstance(module, CONV_TYPES)
                and isinstance(getattr(module, "bias", None), nn.Parameter)):
            continue
        norms = [[d.name for d, v in consumers.get(id(c.outputs[0]), [])
                  if v == c.output_versions[0] and isinstance(d.module, STATS_NORM_TYPES)]
                 for c in calls]
        if all(norms):
            notes[f"{name}.bias"] = (
                f"{name}.bias is redundant: {name} feeds straight into "
                f"{join([n[0] for n in norms])}, whose mean subtraction cancels any "
                f"per-channel bias (in training mode its gradient is zero); build {name} "
                f"with bias=False.")
    return notes


@note
def redundant_bias(obs: Observation) -> Iterator[str]:
    yield from redundant_biases(obs).values()


@note
def shared_weights(obs: Observation) -> Iterator[str]:
    """Another layer with weights called more than once: legal, but worth a word."""
    run = _run(obs)
    for name, module, n in (_shared(run) if run is not None else ()):
        if not (dataflow.is_norm(module) and _learns_or_tracks(module)) and \
                has_params(module, recurse=False):
            yield (f"{name} is called {n} times, so its weights are shared between those "
                   f"calls; create separate layers if that is not intended.")
