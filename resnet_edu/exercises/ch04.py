"""Checks for chapter 4, "The residual block".

- ``ch04-preact-block``: a class ``PreActResidualBlock(channels)`` computing the
  pre-activation block of He et al. (2016),
  ``x + conv2(relu(bn2(conv1(relu(bn1(x))))))`` with no ReLU after the
  addition, with layers named ``bn1``, ``conv1``, ``bn2``, ``conv2`` (3x3
  convolutions with padding 1 and no bias). It is checked by
  :func:`resnet_edu.diagnostics.check_block` (the bugs of the original post
  and their relatives), then against :class:`resnet_edu.blocks.PreActBlock`
  loaded with the same weights, in training and in evaluation mode, and
  finally for the property the chapter is about: with ``conv2``'s weights at
  zero the block is exactly the identity.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from . import Feedback, register
from ._kit import OWN_BLOCK, ModuleProbe, generator, manual_seed, randomise_

EXERCISE = "ch04-preact-block"
_CHANNELS = (4, 8)


def _key_problem(student: nn.Module, reference: nn.Module) -> str:
    got, expected = student.state_dict(), reference.state_dict()
    extra = sorted(set(got) - set(expected))
    missing = sorted(set(expected) - set(got))
    if any(k.startswith("conv") and k.endswith(".bias") for k in extra):
        return ("your convolutions have a bias. Build them with bias=False, like every "
                "convolution in a ResNet (conv2's output is added to x directly, and conv1 "
                "feeds a BatchNorm, which cancels a bias anyway).")
    if missing or extra:
        return (f"the layers are not named as asked: missing {', '.join(missing[:4]) or '-'}; "
                f"unexpected {', '.join(extra[:4]) or '-'}. Name them bn1, conv1, bn2, conv2 "
                f"so the weights can be compared with resnet_edu's PreActBlock.")
    for key, value in expected.items():
        if got[key].shape != value.shape:
            return (f"{key} has shape {tuple(got[key].shape)}, expected {tuple(value.shape)}: "
                    f"both convolutions map `channels` to `channels` with a 3x3 kernel, and "
                    f"both BatchNorms normalise `channels` channels.")
    return ""


def _diagnose(x: torch.Tensor, got: torch.Tensor, ref: nn.Module) -> str:
    """Name the usual mistake that ``got`` matches, if any (``ref`` in the matching mode)."""
    relu = torch.relu

    def branch(start):
        return ref.conv2(relu(ref.bn2(ref.conv1(start))))

    with torch.no_grad():
        pre = relu(ref.bn1(x))
        candidates = [
            (relu(branch(pre) + x),
             "there is a ReLU after the addition. A pre-activation block returns "
             "x + F(x) untouched; that is what lets it be an exact identity"),
            (relu(ref.bn2(ref.conv2(relu(ref.bn1(ref.conv1(x))))) + x),
             "this is the original post-activation block (BasicBlock): conv -> BN -> ReLU and a "
             "ReLU after the addition. Pre-activation moves BN and ReLU in front of each "
             "convolution (bn1 -> relu -> conv1 -> bn2 -> relu -> conv2) and adds x at the end, "
             "with nothing after the addition"),
            (ref.bn2(ref.conv2(relu(ref.bn1(ref.conv1(x))))) + x,
             "this is the original (post-activation) order conv -> BN -> ReLU. Pre-activation "
             "moves BN and ReLU in front of each convolution: bn1 -> relu -> conv1 -> bn2 -> "
             "relu -> conv2"),
            (branch(pre) + pre,
             "the skip connection carries relu(bn1(x)) instead of x itself. Keep identity = x "
             "before bn1 and add that"),
            (ref.conv2(ref.bn2(ref.conv1(pre))) + x,
             "the ReLU between bn2 and conv2 is missing"),
            (ref.conv2(relu(ref.bn2(ref.conv1(ref.bn1(x))))) + x,
             "the ReLU between bn1 and conv1 is missing"),
        ]
    for candidate, message in candidates:
        if candidate.shape == got.shape and torch.allclose(got, candidate, rtol=1e-4, atol=1e-5):
            return message
    return ("the output differs from x + conv2(relu(bn2(conv1(relu(bn1(x)))))); check the "
            "order of the layers in forward")


def _build(cls, channels):
    manual_seed(4)                          # the same initial weights on every run
    return cls(channels)


def _package_block(channels: int) -> nn.Module:
    from ..blocks import PreActBlock

    return PreActBlock(channels, channels)


@register(EXERCISE, names=["PreActResidualBlock"], title="A pre-activation residual block",
          rules=OWN_BLOCK,
          probe=ModuleProbe(_package_block, tuple(((c,), (4, c, 5, 6)) for c in _CHANNELS),
                            "resnet_edu's PreActBlock"))
def _check_preact_block(PreActResidualBlock) -> Feedback:
    with torch.random.fork_rng(devices=[]):      # checking never moves the global RNG
        manual_seed(4)
        return _compare_with_package(PreActResidualBlock)


def _compare_with_package(PreActResidualBlock) -> Feedback:
    from ..blocks import PreActBlock
    from ..diagnostics import check_block

    g = generator(4)
    for i, channels in enumerate(_CHANNELS):
        block = _build(PreActResidualBlock, channels)
        where = f"PreActResidualBlock({channels})"
        if not isinstance(block, nn.Module):
            return Feedback(EXERCISE, False, f"{where} is a {type(block).__name__}, not an "
                            f"nn.Module: subclass nn.Module and call super().__init__() first.")
        if i == 0:  # the structural checks take a second; once is enough
            report = check_block(block, (2, channels, 6, 6))
            if not report.ok:
                return Feedback(EXERCISE, False, f"check_block found a problem in {where}: "
                                + " ".join(str(p) for p in report.problems[:2]))
        reference = PreActBlock(channels, channels)
        problem = _key_problem(block, reference)
        if problem:
            return Feedback(EXERCISE, False, f"In {where}: {problem}")
        randomise_(block, g)
        reference.load_state_dict(block.state_dict())
        x = torch.randn(4, channels, 5, 6, generator=g)        # negative entries included
        for mode in ("training", "evaluation"):
            student, ref = copy.deepcopy(block), copy.deepcopy(reference)
            student.train(mode == "training")
            ref.train(mode == "training")
            with torch.no_grad():
                got = student(x.clone())
                expected = ref(x.clone())
            if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
                shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
                return Feedback(EXERCISE, False, f"{where} in {mode} mode returned {shape}, "
                                f"expected a tensor of shape {tuple(expected.shape)} (the same "
                                f"as the input: padding=1, stride 1).")
            if not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
                fresh = copy.deepcopy(reference).train(mode == "training")
                return Feedback(EXERCISE, False, f"{where} in {mode} mode: "
                                f"{_diagnose(x, got, fresh)}.")
        silenced = copy.deepcopy(block).train()
        with torch.no_grad():
            silenced.conv2.weight.zero_()
            out = silenced(x.clone())
        if not torch.equal(out, x):
            return Feedback(EXERCISE, False, f"{where}: with conv2's weights at zero the block "
                            f"should return x exactly, but it does not. Make sure nothing "
                            f"(no ReLU, no BatchNorm) is applied after the addition.")
    return Feedback(EXERCISE, True, "check_block finds no problem; with the same weights your "
                    "block computes what resnet_edu's PreActBlock computes, in training and "
                    "evaluation mode; and with conv2 at zero it is exactly the identity.")
