"""Checks for chapter 10, "Identity mappings: pre-activation".

- ``ch10-preact-block``: a class ``PreActResidualBlock(channels)`` computing the
  pre-activation block of He et al. (2016),
  ``x + conv2(relu(bn2(conv1(relu(bn1(x))))))`` with no ReLU after the
  addition, with layers named ``bn1``, ``conv1``, ``bn2``, ``conv2`` (3x3
  convolutions with padding 1 and no bias). It is checked by
  :func:`resnet_edu.diagnostics.check_block` (the bugs of the original post
  and their relatives), then against :class:`resnet_edu.blocks.PreActBlock`
  loaded with the same weights, in training and in evaluation mode, and
  finally for the property the chapter is about: with ``conv2``'s weights at
  zero the block is exactly the identity.
- ``ch10-relu-only-preact``: a class ``ReLUOnlyPreActBlock(in_channels, out_channels,
  stride=1)``, the "ReLU-only pre-activation" unit of He et al. (2016), Fig. 4(d):
  ``x + bn2(conv2(relu(bn1(conv1(relu(x))))))`` with nothing after the addition, layers named
  ``conv1``, ``bn1``, ``conv2``, ``bn2`` (3x3 convolutions, padding 1, no bias, the stride
  on ``conv1``) and an option-A shortcut ``downsample`` of ``x`` where the shape changes
  (``resnet_edu.blocks.make_shortcut("A", ...)``). It must follow the block protocol, so
  that ``CifarResNet(block=...)`` can stack it, and ``zero_init_residual_()`` must make a
  same-shape block exactly the identity. It is compared with a functional reference written
  here from its ``state_dict``, in training and in evaluation mode.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from . import Feedback, register
from ._kit import OWN_BLOCK, ModuleProbe, generator, manual_seed, randomise_

PREACT_BLOCK = "ch10-preact-block"
EXERCISE = "ch10-relu-only-preact"
_KEYS = {f"{layer}.{name}" for layer in ("bn1", "bn2")
         for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
_KEYS |= {"conv1.weight", "conv2.weight"}
_SHAPES = ((8, 8, 1), (8, 16, 2))          # (in_channels, out_channels, stride)


def _fig_4d(x: torch.Tensor, conv1, bn1, conv2, bn2, stride: int,
            out_channels: int) -> torch.Tensor:
    """Fig. 4(d) from its four layers (callables): x + bn2(conv2(relu(bn1(conv1(relu(x)))))),
    the shortcut of option A (every stride-th pixel, zero channels appended)."""
    out = bn2(conv2(torch.relu(bn1(conv1(torch.relu(x))))))
    shortcut = x[:, :, ::stride, ::stride]
    shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, out_channels - x.shape[1]))
    return out + shortcut


def _reference(sd: dict, x: torch.Tensor, stride: int, out_channels: int,
               training: bool) -> torch.Tensor:
    """Fig. 4(d) from the state_dict: x + BN(conv(ReLU(BN(conv(ReLU(x))))))."""
    def bn(p):
        mean, var = (None, None) if training else (sd[p + "running_mean"], sd[p + "running_var"])
        return lambda t: F.batch_norm(t, mean, var, sd[p + "weight"], sd[p + "bias"],
                                      training=training)

    def conv(key, step):
        return lambda t: F.conv2d(t, sd[key], stride=step, padding=1)

    return _fig_4d(x, conv("conv1.weight", stride), bn("bn1."), conv("conv2.weight", 1),
                   bn("bn2."), stride, out_channels)


class ReLUOnlyPreActReference(nn.Module):
    """Fig. 4(d) with real layers: the grader's reference (its ``ModuleProbe``), whose
    gradients and running statistics are those of ``nn.Conv2d`` and ``nn.BatchNorm2d``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        from ..blocks import conv3x3

        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride, self.out_channels = stride, out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _fig_4d(x, self.conv1, self.bn1, self.conv2, self.bn2, self.stride,
                       self.out_channels)


def _randomise_(block: nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for name, t in list(block.named_parameters()) + list(block.named_buffers()):
            if t.is_floating_point():
                v = torch.randn(t.shape, generator=generator)
                t.copy_(v.abs() + 0.5 if name.endswith(("running_var", "bn1.weight",
                                                        "bn2.weight")) else v * 0.3)


def _compare(cls, in_channels: int, out_channels: int, stride: int) -> str:
    block = cls(in_channels, out_channels, stride)
    keys = set(block.state_dict())
    if keys != _KEYS:
        return (f"{cls.__name__}({in_channels}, {out_channels}, {stride}) has the parameters "
                f"{sorted(keys - _KEYS) or '-'} too many and {sorted(_KEYS - keys) or '-'} "
                f"missing: name the layers conv1, bn1, conv2, bn2 (convolutions without bias) "
                f"and use option A (no parameters) for the shortcut.")
    _randomise_(block, torch.Generator().manual_seed(in_channels + stride))
    x = torch.randn(4, in_channels, 6, 6, generator=torch.Generator().manual_seed(1))
    for training in (True, False):
        work = copy.deepcopy(block).train(training)
        sd = {k: v.clone() for k, v in work.state_dict().items()}
        with torch.no_grad():
            got = work(x.clone())
            expected = _reference(sd, x, stride, out_channels, training)
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-4):
            mode = "training" if training else "evaluation"
            shapes = ("" if got.shape == expected.shape else
                      f" (output shape {tuple(got.shape)}, expected {tuple(expected.shape)})")
            return (f"in {mode} mode {cls.__name__}({in_channels}, {out_channels}, {stride}) "
                    f"does not compute x + bn2(conv2(relu(bn1(conv1(relu(x))))))" + shapes
                    + ". Check the order: ReLU first, BN after each conv, nothing after the "
                    "addition, and the stride on conv1.")
    return ""


def _zero_initialised(cls) -> nn.Module:
    """A same-shape block with random weights and statistics, then ``zero_init_residual_()``;
    a BatchNorm it zeroed gets beta = 0 as at initialisation. Only the BN that ends the
    branch makes the block the identity then (zeroing bn1 leaves bn2's statistics at work)."""
    block = cls(8, 8)
    _randomise_(block, torch.Generator().manual_seed(3))
    block.zero_init_residual_()
    with torch.no_grad():
        for module in block.modules():
            if isinstance(module, nn.BatchNorm2d) and not module.weight.any():
                module.bias.zero_()
    return block.eval()


@register(EXERCISE, names=["ReLUOnlyPreActBlock"], title="ReLU-only pre-activation",
          probe=ModuleProbe(ReLUOnlyPreActReference, tuple((shape, (4, 8, 6, 6)) for shape in
                                                           _SHAPES),
                            "a reference block of Fig. 4(d)", atol=1e-4,
                            rtol=1e-5))
def _check_relu_only_preact(cls, *, salt: int = 0) -> Feedback:   # fixed inputs
    from ..blocks import check_block_class
    from ..models import CifarResNet
    try:
        check_block_class(cls)
    except TypeError as error:
        return Feedback(EXERCISE, False, str(error))
    for shape in _SHAPES:
        problem = _compare(cls, *shape)
        if problem:
            return Feedback(EXERCISE, False, problem)
    block = _zero_initialised(cls)
    x = torch.randn(2, 8, 5, 5, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        if not torch.equal(block(x), x):
            return Feedback(EXERCISE, False, "after zero_init_residual_() the block is not "
                            "exactly the identity: zero the gamma of the BN that ends the branch "
                            "(last_bn should be bn2), and put nothing after the addition.")
        logits = CifarResNet(8, in_channels=1, block=cls)(torch.randn(2, 1, 8, 8))
    if logits.shape != (2, 10):
        return Feedback(EXERCISE, False, f"CifarResNet(8, block=...) gave logits of shape "
                        f"{tuple(logits.shape)}, expected (2, 10).")
    return Feedback(EXERCISE, True, "your block computes Fig. 4(d) of He et al. (2016) in "
                    "training and evaluation mode, starts as the exact identity after "
                    "zero_init_residual_(), and CifarResNet stacks it.")


# ------------------------------------------------------------ ch10-preact-block
_PREACT_CHANNELS = (4, 8)


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


def _build(cls, channels, salt: int):
    manual_seed(4, salt)                    # the same initial weights on every run
    return cls(channels)


def _package_block(channels: int) -> nn.Module:
    from ..blocks import PreActBlock

    return PreActBlock(channels, channels)


@register(PREACT_BLOCK, names=["PreActResidualBlock"], title="A pre-activation residual block",
          rules=OWN_BLOCK,
          probe=ModuleProbe(_package_block, tuple(((c,), (4, c, 5, 6)) for c in _PREACT_CHANNELS),
                            "resnet_edu's PreActBlock"))
def _check_preact_block(PreActResidualBlock, *, salt: int = 0) -> Feedback:
    with torch.random.fork_rng(devices=[]):      # checking never moves the global RNG
        manual_seed(4, salt)
        return _compare_with_package(PreActResidualBlock, salt)


def _compare_with_package(PreActResidualBlock, salt: int = 0) -> Feedback:
    from ..blocks import PreActBlock
    from ..diagnostics import check_block

    g = generator(4, salt)
    for i, channels in enumerate(_PREACT_CHANNELS):
        block = _build(PreActResidualBlock, channels, salt)
        where = f"PreActResidualBlock({channels})"
        if not isinstance(block, nn.Module):
            return Feedback(PREACT_BLOCK, False, f"{where} is a {type(block).__name__}, not an "
                            f"nn.Module: subclass nn.Module and call super().__init__() first.")
        if i == 0:  # the structural checks take a second; once is enough
            report = check_block(block, (2, channels, 6, 6))
            if not report.ok:
                return Feedback(PREACT_BLOCK, False, f"check_block found a problem in {where}: "
                                + " ".join(str(p) for p in report.problems[:2]))
        reference = PreActBlock(channels, channels)
        problem = _key_problem(block, reference)
        if problem:
            return Feedback(PREACT_BLOCK, False, f"In {where}: {problem}")
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
                return Feedback(PREACT_BLOCK, False, f"{where} in {mode} mode returned {shape}, "
                                f"expected a tensor of shape {tuple(expected.shape)} (the same "
                                f"as the input: padding=1, stride 1).")
            if not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
                fresh = copy.deepcopy(reference).train(mode == "training")
                return Feedback(PREACT_BLOCK, False, f"{where} in {mode} mode: "
                                f"{_diagnose(x, got, fresh)}.")
        silenced = copy.deepcopy(block).train()
        with torch.no_grad():
            silenced.conv2.weight.zero_()
            out = silenced(x.clone())
        if not torch.equal(out, x):
            return Feedback(PREACT_BLOCK, False, f"{where}: with conv2's weights at zero the block "
                            f"should return x exactly, but it does not. Make sure nothing "
                            f"(no ReLU, no BatchNorm) is applied after the addition.")
    return Feedback(PREACT_BLOCK, True, "check_block finds no problem; with the same weights your "
                    "block computes what resnet_edu's PreActBlock computes, in training and "
                    "evaluation mode; and with conv2 at zero it is exactly the identity.")
