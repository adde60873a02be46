"""Parameter and multiply-accumulate (MAC) counts, per stage and in total.

MACs are measured, not derived by hand: a forward pass runs under
:class:`torch.utils.flop_counter.FlopCounterMode`, which counts the
floating-point operations of every convolution and matrix multiply; one MAC is
two FLOPs. Like torchvision's published figures and the paper's Table 1, the
count covers convolutions and the fully connected layer; BatchNorm, ReLU,
pooling and additions are a rounding error next to them and are not counted.

Checked against references (see ``tests/test_stats.py``): torchvision's
ResNet-18 is 1.814 GMAC and ResNet-50 4.089 GMAC at 224x224; with the paper's
stride placement, ResNet-50/101/152 give the 3.8 / 7.6 / 11.3 x 10^9 FLOPs of
He et al. (2015), Table 1 (the paper's "FLOPs" are multiply-adds).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class Row:
    """One line of a summary: a top-level child of the model."""

    name: str
    output_shape: Tuple[int, ...]
    params: int
    macs: int


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _as_input(input_size: Sequence[int], model: nn.Module) -> torch.Tensor:
    size = tuple(int(s) for s in input_size)
    if len(size) != 4 or min(size) < 1:
        raise ValueError(f"input_size must be a full (N, C, H, W) shape, got {tuple(input_size)}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    return torch.zeros(size, device=device, dtype=dtype)


def _measure(model: nn.Module, input_size: Sequence[int]):
    """Run one forward pass in eval mode; return (flop counts by module, output shapes)."""
    x = _as_input(input_size, model)
    shapes = {}
    hooks = [child.register_forward_hook(
        lambda mod, inp, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
        for name, child in model.named_children()]
    was_training = model.training
    model.eval()  # BN in eval mode: counting MACs must not touch running statistics
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    shapes[""] = tuple(out.shape)
    return counter, shapes


def count_macs(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> int:
    """Multiply-accumulates of one forward pass on an input of ``input_size`` (N, C, H, W)."""
    counter, _ = _measure(model, input_size)
    return counter.get_total_flops() // 2


def summarize(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> List[Row]:
    """One :class:`Row` per top-level child (stem layers, stages, pool, fc), in the order
    the forward pass runs them (a pre-activation ResNet defines its final BN and ReLU
    before the stages but runs them after); children that never run come last.

    The rows' params add up to :func:`count_parameters` and their MACs to
    :func:`count_macs` (children that are called once, as in every model of this package).
    """
    counter, shapes = _measure(model, input_size)
    by_module = counter.get_flop_counts()
    root = type(model).__name__
    rows = []
    for name, child in model.named_children():
        flops = sum(by_module.get(f"{root}.{name}", {}).values())
        rows.append(Row(name, shapes.get(name, ()), count_parameters(child), int(flops) // 2))
    run_order = list(shapes)            # the hooks filled it as the children ran
    return sorted(rows, key=lambda r: run_order.index(r.name) if r.name in shapes
                  else len(run_order))


def format_summary(rows: Sequence[Row], title: str = "") -> str:
    """A plain-text table of :func:`summarize`'s rows with a total line."""
    head = f"{'layer':<10} {'output shape':<20} {'parameters':>12} {'MACs':>15}"
    lines = [title] if title else []
    lines += [head, "-" * len(head)]
    for r in rows:
        shape = "x".join(str(s) for s in r.output_shape)
        lines.append(f"{r.name:<10} {shape:<20} {r.params:>12,} {r.macs:>15,}")
    lines.append("-" * len(head))
    lines.append(f"{'total':<10} {'':<20} {sum(r.params for r in rows):>12,} "
                 f"{sum(r.macs for r in rows):>15,}")
    return "\n".join(lines)
