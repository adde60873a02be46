"""Pure readings of a gradient run: which recorded call's result reaches the output.

Shared by the observation (to choose which layers to probe) and by the rules; nothing
here runs the block.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from torch import nn

from ..compat import STATS_NORM_TYPES
from .recorder import Call, has_params
from .runs import GradientRun


def is_norm(module: nn.Module) -> bool:
    """A normalisation layer (its weights rescale, they do not mix features)."""
    rms = getattr(nn, "RMSNorm", None)  # new in torch 2.4
    return isinstance(module, STATS_NORM_TYPES + (nn.GroupNorm, nn.LayerNorm)
                      + ((rms,) if rms else ()))


def usage(run: GradientRun) -> Dict[Call, Optional[bool]]:
    """For every call below the block: does its result reach the output?
    None: cannot tell (none of its outputs is tracked by autograd)."""
    result: Dict[Call, Optional[bool]] = {}
    for c in run.inner:
        outs = [t for t in (c.outputs or ()) if t.requires_grad]
        result[c] = any(run.reaches.get(id(t), False) for t in outs) if outs else None
    return result


def calls_by_name(run: GradientRun) -> Dict[str, List[Call]]:
    """The calls of each registered submodule, by its name."""
    by_name: Dict[str, List[Call]] = {}
    for c in run.inner:
        if c.registered:
            by_name.setdefault(c.name, []).append(c)
    return by_name


def state(run: GradientRun, name: str) -> Optional[str]:
    """'discarded' (every call's result thrown away), 'detached' (never tracked by
    autograd), 'used', or None for a module that was never called."""
    calls = calls_by_name(run).get(name)
    if not calls:
        return None
    used = usage(run)
    states = [used.get(c) for c in calls]
    if all(s is False for s in states):
        return "discarded"
    if all(s is None for s in states):
        return "detached"
    return "used"


def discarded_modules(run: GradientRun) -> List[str]:
    """Registered modules whose every result is thrown away."""
    return [name for name in calls_by_name(run) if state(run, name) == "discarded"]


def used_weight_holders(run: GradientRun) -> List[str]:
    """Registered layers with their own parameters whose result reaches the output."""
    used = usage(run)
    return list(dict.fromkeys(c.name for c in run.inner if c.registered and used[c]
                              and has_params(c.module, recurse=False)))


def weight_layers(run: GradientRun) -> List[str]:
    """Registered layers with their own weights that are not normalisations
    (convolutions, linear layers): the layers a residual branch is made of."""
    return list(dict.fromkeys(c.name for c in run.inner if c.registered and
                              has_params(c.module, recurse=False) and not is_norm(c.module)))
