"""Checks for chapter 4, "The residual block".

- ``ch04-stack-jacobian``: ``stack_jacobian(J_F, g)`` must return the Jacobian of a
  stack of ``L`` post-activation residual blocks (``BasicBlock``, the shape unchanged)
  from what each block contributes: ``J_F[l]``, the ``n x n`` Jacobian of block ``l``'s
  branch at that block's input, and ``g[l]``, the ``n`` entries of the sum
  ``F(x_l) + x_l`` before its last ReLU (block 0 meets the input first). The answer is
  ``D_L (I + J_L) ... D_1 (I + J_1)`` with ``D_l = diag(g_l > 0)``, the chain rule
  through every addition and every ReLU. The cases are real stacks of 1 to 3 random
  blocks (random BatchNorm statistics, double precision, evaluation mode, every last
  ReLU both open and closed somewhere); the test suite checks that the reference equals
  autograd's Jacobian of each whole stack.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn
from torch.autograd.functional import jacobian

from . import declare_function
from ._kit import FunctionCheck, Mistake, Rules, WrongForm

EXERCISE = "ch04-stack-jacobian"
# (blocks, channels, height, width): one block first, where the order cannot matter yet
_CASES = ((1, 2, 3, 3), (2, 2, 3, 3), (3, 3, 2, 2), (3, 2, 3, 4))


def _random_block(channels: int, generator: torch.Generator) -> nn.Module:
    """A ``BasicBlock(channels, channels)`` in double precision and evaluation mode, with
    He-sized weights and BatchNorm statistics as in the chapter's Jacobian check."""
    from ..blocks import BasicBlock

    block = BasicBlock(channels, channels).double().eval()
    with torch.no_grad():
        for conv in (block.conv1, block.conv2):
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator)
                              * (2.0 / conv.weight[0].numel()) ** 0.5)
        for bn in (block.bn1, block.bn2):
            shape = bn.weight.shape
            bn.weight.copy_(0.5 + torch.rand(shape, generator=generator))
            bn.bias.copy_(0.2 * torch.randn(shape, generator=generator))
            bn.running_mean.copy_(0.5 * torch.randn(shape, generator=generator))
            bn.running_var.copy_(0.5 + 1.5 * torch.rand(shape, generator=generator))
    return block


def _mixed_masks(blocks: List[nn.Module], x: torch.Tensor) -> bool:
    """Does every block's last ReLU pass some entries and block others?"""
    with torch.no_grad():
        for block in blocks:
            g = _branch(block)(x) + x
            if not 0.1 <= (g > 0).double().mean().item() <= 0.9:
                return False
            x = block(x)
    return True


def random_stack(case, generator: torch.Generator) -> Tuple[List[nn.Module], torch.Tensor]:
    """``case = (L, C, H, W)``: ``L`` random ``BasicBlock(C, C)`` and an input of shape
    ``(1, C, H, W)``, drawn again (up to 50 times) until every block's last ReLU both passes
    and blocks some entries, so that each known mistake gives another matrix."""
    num_blocks, channels, height, width = case
    for _ in range(50):
        blocks = [_random_block(channels, generator) for _ in range(num_blocks)]
        x = torch.randn(1, channels, height, width, generator=generator, dtype=torch.float64)
        if _mixed_masks(blocks, x):
            break
    return blocks, x


def _branch(block: nn.Module):
    return lambda x: block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))


def _draw(case, generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(J_F, g)`` of a random stack: shapes ``(L, n, n)`` and ``(L, n)``."""
    blocks, x = random_stack(case, generator)
    n = x.numel()
    jacobians, sums = [], []
    with torch.no_grad():
        for block in blocks:
            branch = _branch(block)
            jacobians.append(jacobian(branch, x).reshape(n, n))
            sums.append((branch(x) + x).reshape(n))
            x = block(x)                                 # the next block's input
    return torch.stack(jacobians), torch.stack(sums)


def _product(J_F: torch.Tensor, g: torch.Tensor, factor) -> torch.Tensor:
    """``factor(J_l, mask_l, I)`` for every block, multiplied with the last block on the left."""
    eye = torch.eye(g.shape[1], dtype=J_F.dtype)
    total = eye
    for J, s in zip(J_F, g):
        total = factor(J, (s > 0).to(J_F.dtype), eye) @ total
    return total


def stack_reference(J_F: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``D_L (I + J_L) ... D_1 (I + J_1)``: each ReLU's mask scales the rows (the outputs)."""
    return _product(J_F, g, lambda J, m, eye: m[:, None] * (eye + J))


def _reversed(J_F, g):
    if len(J_F) < 2:
        raise ValueError("one block has no order")
    eye = torch.eye(g.shape[1], dtype=J_F.dtype)
    total = eye
    for J, s in zip(J_F, g):
        total = total @ ((s > 0).to(J_F.dtype)[:, None] * (eye + J))
    return total


def _read(got, expected: torch.Tensor, case) -> torch.Tensor:
    if not isinstance(got, torch.Tensor):
        raise WrongForm(f"return a torch.Tensor, got {type(got).__name__}.")
    if tuple(got.shape) != tuple(expected.shape):
        raise WrongForm(f"return an n x n matrix, {tuple(expected.shape)} here; got "
                        f"{tuple(got.shape)}.")
    return got.detach().to(expected.dtype)


STACK_JACOBIAN = FunctionCheck(
    cases=_CASES, seed=4, make_inputs=_draw, reference=stack_reference, read=_read,
    names=("J_F", "g"), in_place="Build new tensors instead.",
    same=lambda got, expected: torch.allclose(got, expected, rtol=1e-4, atol=1e-6),
    describe=lambda case, args: (f"For {case[0]} BasicBlock({case[1]}, {case[1]}) on an input "
                                 f"of shape (1, {case[1]}, {case[2]}, {case[3]})"),
    mistakes=(
        Mistake(_reversed, "the factors are multiplied in the wrong order. The chain rule puts "
                           "the block nearest the output on the left: D_L (I + J_L) ... "
                           "D_1 (I + J_1)."),
        Mistake(lambda J_F, g: _product(J_F, g, lambda J, m, eye: m[:, None] * J),
                "the identity is missing: that is the Jacobian of a plain stack, which "
                "multiplies the branches alone. The shortcut adds I to each branch's Jacobian."),
        Mistake(lambda J_F, g: _product(J_F, g, lambda J, m, eye: eye + J),
                "the ReLU after each addition is missing: (I + J_F) is the Jacobian of the sum "
                "g. The ReLU multiplies it by D = diag(g > 0)."),
        Mistake(lambda J_F, g: _product(J_F, g, lambda J, m, eye: (eye + J) * m[None, :]),
                "the mask scales the columns. The ReLU acts on the block's outputs, so D = "
                "diag(g > 0) multiplies from the left and scales the rows: D (I + J_F)."),
        Mistake(lambda J_F, g: _product(J_F, g, lambda J, m, eye: eye + m[:, None] * J),
                "the identity escapes the mask. Where g <= 0 the ReLU passes no gradient at "
                "all, not even along the shortcut: D multiplies I + J_F as a whole."),
        Mistake(lambda J_F, g: _product(J_F, g, lambda J, m, eye: m[:, None] * eye + J),
                "only the identity is masked. The ReLU comes after the addition, so its mask "
                "applies to the branch's part too: D (I + J_F)."),
        Mistake(lambda J_F, g: _product(J_F, g, lambda J, m, eye: (1 - m)[:, None] * (eye + J)),
                "the mask is inverted: a ReLU passes the gradient where its input is positive, "
                "D = diag(g > 0)."),
        Mistake(lambda J_F, g: _product(J_F, g, lambda J, m, eye: m[:, None] * (eye + J.T)),
                "J_F is transposed. Row i of a Jacobian holds the derivatives of output entry "
                "i, and J_F is given in that layout already."),
    ),
    differs=lambda got, expected, args: (
        "the matrix differs from the Jacobian of the stack, D_L (I + J_L) ... D_1 (I + J_1) "
        f"with D_l = diag(g_l > 0) (largest difference "
        f"{(got - expected).abs().max().item():.3g})."),
    success="your product D_L (I + J_L) ... D_1 (I + J_1) is the Jacobian of the whole stack "
            "for all 4 random stacks of 1 to 3 blocks.")


declare_function(EXERCISE, STACK_JACOBIAN, "stack_jacobian", "The Jacobian of a stack of blocks",
                 rules=Rules(
                     forbidden=("torch.autograd", "torch.func"),
                     forbidden_imports=("torch.autograd", "torch.func", "functorch"),
                     why="Build the Jacobian from J_F and g with tensor operations; do not ask "
                         "autograd for it."))
