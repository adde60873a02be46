"""Checks for chapter 5, "The original post, debugged".

The block exercises are declared with :class:`~._modules.ModuleCheck`: the runner compares
the student's block with :class:`resnet_edu.blocks.BasicBlock` loaded with the same random
weights (outputs, gradients, running statistics, in both modes); when it differs,
:func:`resnet_edu.diagnostics.check_block`, the tool that exposes the original post's
bugs, writes the feedback if it finds something.
"""
from __future__ import annotations

import torch
from torch import nn

from ..blocks import BasicBlock
from ..diagnostics import check_block
from . import Feedback, declare_module, register
from ._kit import OWN_BLOCK, manual_seed
from ._modules import ModuleCheck, OutputMistake, call_text


def _short(report) -> str:
    """The first problem of a report, plus how many more there are."""
    first = str(report.problems[0])
    more = len(report.problems) - 1
    if not more:
        return first
    end = first[-1] if first[-1] in ".?" else "."
    return (first.rstrip(".?") + f"{'?' if end == '?' else ''} (and {more} more "
            f"problem{'s' if more > 1 else ''}: run check_block(...) to see them all).")


def _needs_attributes(block, names) -> str:
    missing = [n for n in names if not isinstance(getattr(block, n, None), nn.Module)]
    if missing:
        return (f"the block has no layer called {', '.join(missing)}: keep the names the "
                f"exercise asks for (conv1, bn1, conv2, bn2) so the check can compare your "
                f"block with the reference.")
    return ""


# ----------------------------------------------------------------------------- fix the post
# equal channels, more channels, a stride of 2; the exercise does not name the shortcut, so
# its parameters may sit under any name (renamable)
_FIX_CASES = (((8, 8), (2, 8, 6, 6)), ((3, 16), (2, 3, 6, 6)),
              ((8, 16), (2, 8, 6, 6), {"stride": 2}))


def _fix_finding(FixedResidualBlock) -> str:
    """check_block's findings, case by case, for the feedback only."""
    for i, (args, kwargs, shape) in enumerate(FIX_THE_POST.calls()):
        call = call_text("FixedResidualBlock", args, kwargs)
        try:
            block = FixedResidualBlock(*args, **kwargs)
        except TypeError as exc:
            return (f"{call} cannot be built ({exc}): accept in_channels, out_channels and "
                    f"stride=1.")
        except Exception:  # noqa: BLE001 - the runner's sentence reports it
            return ""
        missing = _needs_attributes(block, ["conv1", "bn1", "conv2", "bn2"]) if i == 0 else ""
        if missing:
            return missing
        report = check_block(block, shape)
        if not report.ok:
            return f"{call}: {_short(report)}"
        stride = kwargs.get("stride", 1)
        want = (shape[0], args[1], shape[2] // stride, shape[3] // stride)
        if report.output_shape != want:
            return (f"{call} returns shape {report.output_shape} for an input {shape}; "
                    f"expected {want}.")
    return ""


FIX_THE_POST = ModuleCheck(
    BasicBlock, _FIX_CASES, "resnet_edu's BasicBlock", renamable="downsample", rtol=1e-5,
    mistakes=(OutputMistake(
        lambda r, x: torch.relu(r.bn2(r.conv2(r.bn1(r.conv1(x)))) + r.downsample(x)),
        "Your block does not compute relu(bn2(conv2(relu(bn1(conv1(x))))) + x): the ReLU "
        "between bn1 and conv2 is missing"),),
    explain=_fix_finding,
    success="your block passes check_block with equal channels, with more channels and with "
            "stride 2, and computes the post's description exactly (outputs, gradients and "
            "running statistics).")

declare_module("ch05-fix-the-post", FIX_THE_POST, "FixedResidualBlock",
               "Repair the original post's block", rules=OWN_BLOCK)


# ----------------------------------------------------------------------------- a gradient test
class _UnusedShortcut(nn.Module):
    """Correct except that the projection it builds is never called."""

    def __init__(self):
        super().__init__()
        self.body = BasicBlock(4, 4)
        self.projection = nn.Conv2d(4, 4, 1, bias=False)

    def forward(self, x):
        return self.body(x)


@register("ch05-gradient-test", names=["assert_all_parameters_learn"],
          title="A unit test that would have caught the post's bug", observe=True)
def _check_gradient_test(assert_all_parameters_learn, *, salt: int = 0) -> Feedback:
    ex = "ch05-gradient-test"
    from ..blocks import Bottleneck
    from ..original import ResidualBlockListing1, ResidualBlockListing2

    manual_seed(0, salt)
    must_fail = [("the post's listing 1", ResidualBlockListing1(4, 4),
                  ["conv1.weight", "conv2.weight"]),
                 ("the post's listing 2", ResidualBlockListing2(4, 4),
                  ["conv1.weight", "bn2.bias"]),
                 ("a block whose projection is never called", _UnusedShortcut(),
                  ["projection.weight"])]
    must_pass = [("BasicBlock(4, 4)", BasicBlock(4, 4)),
                 ("BasicBlock(4, 8, stride=2)", BasicBlock(4, 8, 2)),
                 ("a BasicBlock with its last BN's gamma zeroed",
                  BasicBlock(4, 4).zero_init_residual_()),
                 ("Bottleneck(16, 4) with zero-initialised last BN",
                  Bottleneck(16, 4).zero_init_residual_())]
    for what, block, names in must_fail:
        try:
            assert_all_parameters_learn(block, (2, block_in(block), 5, 5))
        except RuntimeError as exc:
            if "does not require grad" in str(exc):
                return Feedback(ex, False, f"on {what} your test crashes in backward() instead "
                                           f"of failing with an AssertionError: no weight "
                                           f"reaches that block's output, so the output has no "
                                           f"graph; give the input requires_grad=True.")
            raise
        except AssertionError as exc:
            missing = [n for n in names if n not in str(exc)]
            if missing:
                return Feedback(ex, False, f"on {what} your test fails, good, but its message "
                                           f"does not name {', '.join(missing)}: list every "
                                           f"parameter whose .grad is None.")
            continue
        return Feedback(ex, False, f"your test does not fail on {what}, whose parameters "
                                   f"never receive a gradient: after a backward pass, look "
                                   f"for parameters whose .grad is None.")
    for what, block in must_pass:
        try:
            assert_all_parameters_learn(block, (2, block_in(block), 5, 5))
        except AssertionError as exc:
            hint = (" A zero-initialised gamma makes the upstream gradients exactly zero but "
                    "they are still computed: test `p.grad is None`, not `p.grad == 0`."
                    if "zero" in what else "")
            return Feedback(ex, False, f"your test fails on {what}, a correct block "
                                       f"({exc}).{hint}")
    return Feedback(ex, True, "your test catches the post's bug and an unused layer, and "
                              "accepts correct blocks, zero-initialised ones included.")


def block_in(block) -> int:
    """Input channels of a block: those of its first convolution."""
    for m in block.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    raise ValueError("the block has no convolution")


# ----------------------------------------------------------------------------- find the bug
def _basic_block(channels: int) -> BasicBlock:
    return BasicBlock(channels, channels)


def _structural_finding(DebuggedBlock) -> str:
    """check_block's first finding on ``DebuggedBlock(8)``, for the feedback only."""
    try:
        report = check_block(DebuggedBlock(8), (2, 8, 6, 6))
    except Exception:  # noqa: BLE001 - the runner's sentence reports a block that crashes
        return ""
    return "" if report.ok else f"not yet: {_short(report)}"


FIND_THE_BUG = ModuleCheck(
    _basic_block, (((8,), (4, 8, 6, 6)),), "resnet_edu's BasicBlock", rtol=1e-5,
    mistakes=(OutputMistake(
        lambda r, x: r.bn2(r.conv2(torch.relu(r.bn1(r.conv1(x))))) + x,
        "Your block computes something else than relu(bn2(conv2(relu(bn1(conv1(x))))) + x): "
        "the ReLU after the addition is missing"),),
    explain=_structural_finding,
    success="all the bugs are gone: your block matches resnet_edu's BasicBlock in training "
            "and in eval mode (outputs, gradients and running statistics).")

declare_module("ch05-find-the-bug", FIND_THE_BUG, "DebuggedBlock", "Find the bugs",
               rules=OWN_BLOCK)
