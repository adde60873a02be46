"""Checks for chapter 5, "The original post, debugged".

The block exercises reuse :func:`resnet_edu.diagnostics.check_block`, the same
tool that exposes the original post's bugs, and then compare the student's
block with a reference computed from the student's own layers or with
:class:`resnet_edu.blocks.BasicBlock`.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..blocks import BasicBlock
from ..diagnostics import check_block
from . import Feedback, register
from ._kit import OWN_BLOCK, ModuleProbe, generator, manual_seed


def _short(report) -> str:
    """The first problem of a report, plus how many more there are."""
    first = str(report.problems[0])
    more = len(report.problems) - 1
    if not more:
        return first
    end = first[-1] if first[-1] in ".?" else "."
    return (first.rstrip(".?") + f"{'?' if end == '?' else ''} (and {more} more "
            f"problem{'s' if more > 1 else ''}: run check_block(...) to see them all).")


def _inputs(shape, seed=0, salt=0):
    g = generator(seed, salt)
    return torch.randn(shape, generator=g)


def _run_once(block, shape) -> None:
    """Run the student's block once, so that an unsolved stub's NotImplementedError
    reaches ``check`` ("not solved yet"); real crashes are left to check_block."""
    try:
        with torch.no_grad():
            copy.deepcopy(block)(_inputs(shape))
    except NotImplementedError:
        raise
    except Exception:  # noqa: BLE001 - the student's block crashed: check_block reports it next
        pass


def _needs_attributes(block, names, exercise):
    missing = [n for n in names if not isinstance(getattr(block, n, None), nn.Module)]
    if missing:
        return Feedback(exercise, False,
                        f"the block has no layer called {', '.join(missing)}: keep the names "
                        f"the exercise asks for (conv1, bn1, conv2, bn2) so the check can "
                        f"compare your block with the reference.")
    return None


# ----------------------------------------------------------------------------- fix the post
# the grader's own test (classroom.probe): the check's constructor calls and input shapes;
# the exercise does not name the shortcut, so its parameters may sit under any name
_FIX_PROBE = ModuleProbe(BasicBlock, (((8, 8), (2, 8, 6, 6)), ((3, 16), (2, 3, 6, 6)),
                                      ((8, 16), (2, 8, 6, 6), {"stride": 2})),
                         "resnet_edu's BasicBlock", renamable="downsample", rtol=1e-5)


@register("ch05-fix-the-post", names=["FixedResidualBlock"],
          title="Repair the original post's block",
          rules=OWN_BLOCK, probe=_FIX_PROBE)
def _check_fix_the_post(FixedResidualBlock, *, salt: int = 0) -> Feedback:
    ex = "ch05-fix-the-post"
    manual_seed(0, salt)
    same = FixedResidualBlock(8, 8)
    _run_once(same, (2, 8, 6, 6))
    missing = _needs_attributes(same, ["conv1", "bn1", "conv2", "bn2"], ex)
    if missing:
        return missing
    report = check_block(same, (2, 8, 6, 6))
    if not report.ok:
        return Feedback(ex, False, f"FixedResidualBlock(8, 8): {_short(report)}")
    # the function the post describes: relu(bn2(conv2(relu(bn1(conv1(x))))) + x)
    block = copy.deepcopy(same).eval()
    x = _inputs((2, 8, 6, 6), salt=salt)
    with torch.no_grad():
        expected = torch.relu(block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x))))) + x)
        got = block(x)
    if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-5, rtol=1e-5):
        return Feedback(ex, False,
                        "FixedResidualBlock(8, 8) passes check_block but does not compute "
                        "relu(bn2(conv2(relu(bn1(conv1(x))))) + x): check the order "
                        "conv -> BN -> ReLU -> conv -> BN, then add x, then ReLU.")
    for args, kwargs, shape in [((3, 16), {}, (2, 3, 6, 6)),
                                ((8, 16), {"stride": 2}, (2, 8, 6, 6))]:
        call = f"FixedResidualBlock({', '.join(map(str, args))}" + \
               "".join(f", {k}={v}" for k, v in kwargs.items()) + ")"
        try:
            block = FixedResidualBlock(*args, **kwargs)
        except TypeError as exc:
            return Feedback(ex, False, f"{call} cannot be built ({exc}): accept "
                                       f"in_channels, out_channels and stride=1.")
        report = check_block(block, shape)
        if not report.ok:
            return Feedback(ex, False, f"{call}: {_short(report)}")
        want = (shape[0], args[1], shape[2] // kwargs.get("stride", 1),
                shape[3] // kwargs.get("stride", 1))
        if report.output_shape != want:
            return Feedback(ex, False, f"{call} returns shape {report.output_shape} for an "
                                       f"input {shape}; expected {want}.")
    return Feedback(ex, True, "your block passes check_block with equal channels, with more "
                              "channels and with stride 2, and computes the post's "
                              "description exactly.")


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


@register("ch05-find-the-bug", names=["DebuggedBlock"], title="Find the bugs",
          rules=OWN_BLOCK, probe=ModuleProbe(_basic_block, (((8,), (4, 8, 6, 6)),),
                                             "resnet_edu's BasicBlock", rtol=1e-5))
def _check_find_the_bug(DebuggedBlock, *, salt: int = 0) -> Feedback:
    ex = "ch05-find-the-bug"
    manual_seed(0, salt)
    block = DebuggedBlock(8)
    _run_once(block, (2, 8, 6, 6))
    missing = _needs_attributes(block, ["conv1", "bn1", "conv2", "bn2"], ex)
    if missing:
        return missing
    report = check_block(block, (2, 8, 6, 6))
    if not report.ok:
        return Feedback(ex, False, f"not yet: {_short(report)}")
    reference = BasicBlock(8, 8)
    state = {k: v for k, v in block.state_dict().items()}
    try:
        reference.load_state_dict(state, strict=True)
    except RuntimeError:
        return Feedback(ex, False, "check_block is happy, but the layers changed: keep "
                                   "exactly conv1, bn1, conv2 and bn2 (convolutions with "
                                   "bias=False) so your block can be compared with "
                                   "resnet_edu's BasicBlock.")
    x = _inputs((4, 8, 6, 6), seed=1, salt=salt)
    for mode in ("train", "eval"):
        b, r = copy.deepcopy(block), copy.deepcopy(reference)
        getattr(b, mode)()
        getattr(r, mode)()
        with torch.no_grad():
            got, want = b(x.clone()), r(x.clone())
        if not torch.allclose(got, want, atol=1e-5, rtol=1e-5):
            return Feedback(ex, False, f"check_block is happy, but in {mode} mode your block "
                                       f"computes something else than "
                                       f"relu(bn2(conv2(relu(bn1(conv1(x))))) + x): is every "
                                       f"ReLU applied, and is x added exactly once?")
    return Feedback(ex, True, "all the bugs are gone: your block matches resnet_edu's "
                              "BasicBlock in training and in eval mode.")
