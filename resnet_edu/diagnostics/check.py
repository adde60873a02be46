"""``check_block``: validate the arguments, observe the block, run the rules, report."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from ..debug import debugging
from .observe import Observation, observe
from .prepared import materialized, native, randn
from .report import BlockReport, Problem, ProblemKind, in_report_order
from .rules import run_rules
from .usercode import quiet
from .words import first_line

# how many spatial dimensions the input of each kind of layer has (the lazy layers are
# subclasses of their eager twins, except the lazy normalisations, listed here)
_SPATIAL = {1: (nn.Conv1d, nn.ConvTranspose1d),
            2: (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.LazyBatchNorm2d,
                nn.InstanceNorm2d, nn.LazyInstanceNorm2d),
            3: (nn.Conv3d, nn.ConvTranspose3d, nn.BatchNorm3d, nn.LazyBatchNorm3d,
                nn.InstanceNorm3d, nn.LazyInstanceNorm3d)}
_LAYOUT = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def _spatial_dims(block: nn.Module) -> Optional[int]:
    """The number of spatial dimensions the block's layers agree on (2 for Conv2d and
    BatchNorm2d), or None when there are no such layers or they disagree."""
    found = {d for m in block.modules() for d, types in _SPATIAL.items()
             if isinstance(m, types)}
    return found.pop() if len(found) == 1 else None


def validate(block, input_shape) -> Tuple[int, ...]:
    """The input shape as a tuple of ints; TypeError or ValueError (one clear sentence)
    for arguments check_block cannot use. Used by the command line too."""
    if isinstance(block, type) and issubclass(block, nn.Module):
        raise TypeError(f"check_block expects a block instance such as "
                        f"{block.__name__}(16, 16), not the class {block.__name__} itself")
    if not isinstance(block, nn.Module):
        raise TypeError(f"check_block expects an nn.Module (a residual block), "
                        f"got {type(block).__name__}")
    try:
        shape = tuple(int(s) for s in input_shape)
        if any(s != t for s, t in zip(shape, input_shape)):
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be a sequence of integers such as (2, 16, 8, 8) "
                         f"(N, C, H, W); got {input_shape!r}") from None
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be the full input shape (N, C, H, W) with positive "
                         f"sizes, e.g. (2, 16, 8, 8); got {input_shape!r}")
    dims = _spatial_dims(block)
    if dims is not None and len(shape) != dims + 2:
        raise ValueError(f"input_shape {shape} has {len(shape)} numbers but "
                         f"{type(block).__name__} uses {dims}-d layers, which take the full "
                         f"batched shape {_LAYOUT[dims]} ({dims + 2} numbers), e.g. "
                         f"{(2, shape[1] if len(shape) > 1 else 16) + (8,) * dims}")
    return shape


def _could_not_finish(exc: BaseException) -> Problem:
    return Problem(ProblemKind.CRASH,
                   f"check_block could not finish ({type(exc).__name__}: {first_line(exc)}); "
                   f"the block may use a feature it does not support.")


def check_block(block: nn.Module, input_shape: Sequence[int], *, seed: int = 0) -> BlockReport:
    """Check a residual block for the usual bugs; never raises because the block is faulty.

    Args:
        block: the block instance, e.g. ``BasicBlock(16, 32, stride=2)``.
        input_shape: the full input shape ``(N, C, H, W)``; use N >= 2 for BatchNorm.
        seed: seed of the local generator that makes the random inputs.

    Returns:
        a :class:`BlockReport`: ``report.ok``, ``report.problems`` (each ``str()`` is one
        sentence), ``report.notes``; print it or show it in a notebook.

    The block itself is left exactly as it was: every check runs on a deep copy. A bug in
    the checker itself is reported as "check_block could not finish"; with the environment
    variable ``RESNET_EDU_DEBUG=1`` it is raised instead.
    """
    shape = validate(block, input_shape)
    name = type(block).__name__
    dtype, device = native(block)
    block = materialized(block, randn(shape, seed, dtype, device))
    obs: Optional[Observation] = None
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), quiet():
        torch.manual_seed(seed)  # the block's own randomness (dropout) is reproducible too
        try:
            obs = observe(block, shape, seed)
            problems, notes = run_rules(obs)
        except Exception as exc:  # a defect of the checker, not of the block: say so plainly
            if debugging():   # RESNET_EDU_DEBUG=1 or --debug: the checker's bug raises
                raise
            problems, notes = [_could_not_finish(exc)], []
    output = obs.first.output if obs is not None else None
    return BlockReport(block_name=name, input_shape=shape,
                       output_shape=tuple(output.shape) if isinstance(output, torch.Tensor)
                       and obs.first.crash is None else None,
                       problems=in_report_order(problems), notes=notes)
