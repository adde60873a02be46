"""Checks for chapter 7, "Bottleneck blocks".

- ``ch07-bottleneck-block``: a class ``MyBottleneck(in_channels, width, stride=1)``
  that is torchvision's bottleneck ("v1.5": stride on the 3x3, option-B
  shortcut) with the attribute names of :class:`resnet_edu.blocks.Bottleneck`.
  The check loads the package block's weights into the student's block and
  compares outputs in training and evaluation mode.
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import nn

from ..blocks import Bottleneck
from ..stats import count_parameters
from . import Feedback, register
from ._kit import OWN_BLOCK, ModuleProbe, generator

# (in_channels, width, stride): identity shortcut, projections, a stride of 2
_BOTTLENECK_CASES = [
    (16, 4, 1),       # 16 -> 16: identity shortcut
    (8, 4, 1),        # 8 -> 16: projection without stride (as in the first stage of ResNet-50)
    (16, 8, 2),       # 16 -> 32 and half the size: projection with stride 2
    (32, 8, 1),       # 32 -> 32
]


def _randomize_(block: nn.Module, generator: torch.Generator) -> nn.Module:
    """Random weights and BN statistics, so that every layer changes the output."""
    with torch.no_grad():
        for name, tensor in block.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var") or (name.endswith("weight") and tensor.dim() == 1):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.3)
    return block


def _branch(block: Bottleneck, x: torch.Tensor) -> torch.Tensor:
    out = block.relu(block.bn1(block.conv1(x)))
    out = block.relu(block.bn2(block.conv2(out)))
    return block.bn3(block.conv3(out))


def _mistakes(reference: Bottleneck, x: torch.Tensor):
    """Outputs of typical wrong blocks with the reference's weights (eval mode)."""
    identity = reference.downsample(x)
    branch = _branch(reference, x)
    yield ("there is no ReLU after the addition: the block returns bn3(...) + shortcut(x). "
           "The paper's block ends with relu(F(x) + shortcut(x))."), branch + identity
    yield ("the last ReLU sits before the addition (relu(bn3(...)) + shortcut(x)). Add first, "
           "then apply the ReLU."), torch.relu(branch) + identity
    yield ("the output ignores the shortcut: add shortcut(x) (self.downsample(x)) to the "
           "residual branch before the last ReLU."), torch.relu(branch)
    yield ("the output is only the shortcut: the residual branch conv1 -> conv2 -> conv3 "
           "is not added."), torch.relu(identity)


@register("ch07-bottleneck-block", names=["MyBottleneck"], title="A bottleneck block",
          rules=OWN_BLOCK,
          probe=ModuleProbe(Bottleneck, tuple(((i, w, s), (2, i) + (9 if s > 1 else 6,) * 2)
                                              for i, w, s in _BOTTLENECK_CASES),
                            "resnet_edu's Bottleneck"))
def _check_bottleneck(MyBottleneck, *, salt: int = 0) -> Feedback:
    with torch.random.fork_rng():          # building blocks draws random weights: keep the
        return _check(MyBottleneck, salt)  # notebook's random stream as it was


def _check(MyBottleneck, salt: int) -> Feedback:
    exercise = "ch07-bottleneck-block"
    g = generator(707, salt)
    for in_channels, width, stride in _BOTTLENECK_CASES:
        where = f"For MyBottleneck({in_channels}, {width}, stride={stride})"
        reference = _randomize_(Bottleneck(in_channels, width, stride), g)
        block = MyBottleneck(in_channels, width, stride)
        if not isinstance(block, nn.Module):
            return Feedback(exercise, False, f"{where}: expected an nn.Module, got "
                            f"{type(block).__name__}. Subclass nn.Module.")
        problem = (_layer_mismatch(where, block, reference)
                   or _output_mismatch(where, block, reference, (in_channels, width, stride), g))
        if problem:
            return Feedback(exercise, False, problem)
    return Feedback(exercise, True, f"loads resnet_edu's Bottleneck weights strictly and gives "
                    f"the same outputs in train and eval mode on all {len(_BOTTLENECK_CASES)} "
                    "cases (identity and projection shortcuts, stride 2).")



def _layer_mismatch(where: str, block: nn.Module, reference: nn.Module) -> Optional[str]:
    """Why the block's layers differ from the reference's (names, shapes, count), or None."""
    # 1. the same layers: parameter names and shapes
    expected = {k: v.shape for k, v in reference.state_dict().items()}
    got = {k: v.shape for k, v in block.state_dict().items()}
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing or unexpected:
        hint = ""
        if any(k.endswith(".bias") and k.startswith("conv") for k in unexpected):
            hint = (" Your convolutions have a bias: pass bias=False, the BatchNorm after "
                    "each of them has its own shift.")
        elif any(k.startswith("downsample") for k in missing):
            hint = (" The shapes differ here, so the shortcut must be a projection: "
                    "self.downsample = nn.Sequential(1x1 conv with the stride, BatchNorm).")
        elif any(k.startswith("downsample") for k in unexpected):
            hint = (" Input and output have the same shape here, so the shortcut is the "
                    "identity: self.downsample = nn.Identity() (option B projects only "
                    "where the shape changes).")
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:4])}"
                         + (" ..." if len(missing) > 4 else ""))
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:4])}"
                         + (" ..." if len(unexpected) > 4 else ""))
        return (f"{where}: the state_dict keys differ from "
                f"resnet_edu's Bottleneck ({'; '.join(parts)}). Name the layers "
                "conv1, bn1, conv2, bn2, conv3, bn3 and downsample." + hint)
    wrong = [k for k in expected if got[k] != expected[k]]
    if wrong:
        k = wrong[0]
        return (f"{where}: {k} has shape {tuple(got[k])}, expected "
                f"{tuple(expected[k])}. conv1 reduces in_channels to width, conv2 "
                "is a 3x3 from width to width, conv3 expands to 4 * width.")
    if count_parameters(block) != count_parameters(reference):
        return (f"{where}: the block has "
                f"{count_parameters(block):,} parameters, expected "
                f"{count_parameters(reference):,}; remove the extra layers.")
    return None


def _output_mismatch(where: str, block: nn.Module, reference: nn.Module, case, g
                     ) -> Optional[str]:
    """Why the block, loaded with the reference's weights, computes something else, or None."""
    in_channels, width, stride = case
    # 2. the same function: load the reference's weights, compare outputs
    try:
        block.load_state_dict(reference.state_dict(), strict=True)
    except RuntimeError as exc:
        return (f"{where}: loading resnet_edu's weights failed: "
                f"{exc}")
    size = 9 if stride > 1 else 6      # an odd size at stride 2 checks the padding too
    x = torch.randn(2, in_channels, size, size, generator=g)
    for mode in ("eval", "train"):
        ref_copy, student = copy.deepcopy(reference), block
        ref_copy.train(mode == "train")
        student.train(mode == "train")
        with torch.no_grad():
            want = ref_copy(x)
            try:
                out = student(x.clone())
            except RuntimeError as exc:
                return (f"{where}: the forward pass on x of shape "
                        f"{tuple(x.shape)} failed: {exc}. If the two paths have "
                        "different sizes, check that conv2 (the 3x3) has padding 1 "
                        "and that the stride goes into conv2 and the shortcut.")
        if not isinstance(out, torch.Tensor) or out.shape != want.shape:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            return (f"{where} on x of shape {tuple(x.shape)}: the "
                    f"output is {shape}, expected {tuple(want.shape)}. The stride "
                    "goes into conv2 (the 3x3, padding 1) and into the shortcut's "
                    "1x1 convolution.")
        if torch.allclose(out, want, rtol=1e-4, atol=1e-5):
            continue
        if mode == "eval":
            paper = Bottleneck(in_channels, width, stride, stride_on="1x1")
            paper.load_state_dict(reference.state_dict())
            paper.eval()
            with torch.no_grad():
                if stride > 1 and torch.allclose(out, paper(x), rtol=1e-4, atol=1e-5):
                    return (f"{where}: you put the stride on the "
                            "first 1x1 convolution (the paper's original placement). "
                            "This exercise asks for torchvision's 'v1.5' placement: "
                            "stride 1 in conv1, the stride in conv2 (the 3x3).")
                for message, candidate in _mistakes(ref_copy, x):
                    if torch.allclose(out, candidate, rtol=1e-4, atol=1e-5):
                        return (f"{where}: {message}")
            return (f"{where}: with resnet_edu's weights loaded, "
                    "the eval-mode output differs (largest difference "
                    f"{float((out - want).abs().max()):.3g}). Check the order "
                    "conv1 -> bn1 -> relu -> conv2 -> bn2 -> relu -> conv3 -> bn3, "
                    "then + downsample(x), then relu.")
        return (f"{where}: the eval-mode output is right but the "
                "training-mode output differs. Apply each BatchNorm exactly once, to "
                "the output of its own convolution.")
    return None
