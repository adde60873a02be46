"""The experiments of chapter 11: why residual networks train.

Scope:

- :func:`stacked_blocks`: the blocks of a network's stages, input to output.
- The unravelled view (Veit, Wilber and Belongie, 2016): a stack of ``n``
  residual blocks is a sum over ``2**n`` paths; :func:`path_length_counts`
  counts them by length and :func:`path_gradient_norm` measures the gradient
  that one sampled path of a given length carries back to the input of the
  first block (their figure 6 method); the gradients of all paths add up to
  the full gradient, which the tests check.
- Lesions (Veit et al., 2016, section 4): :func:`lesioned` deletes blocks from
  a trained network. A residual block keeps its shortcut; a plain block becomes
  the identity.
- Loss landscapes (Li, Xu, Taylor, Studer and Goldstein, 2018):
  :func:`filter_normalised_direction` and :func:`loss_surface`, plus
  :func:`interpolate_state` for the straight line from initialisation to the
  trained weights.
- Residual responses (He et al., 2015, figure 7): :func:`branch_response_stds`,
  the standard deviation of each block's branch at its last BatchNorm, and
  :func:`branch_to_shortcut_ratios`, the branch's size next to the shortcut's.

:func:`chapter_networks` trains the chapter's four networks with
:func:`resnet_edu.train.fit`, or loads them from the file that
``scripts/results/ch11_nets.py`` writes with the same function.

References: Veit, Wilber, Belongie, "Residual Networks Behave Like Ensembles of
Relatively Shallow Networks", NeurIPS 2016 (arXiv:1605.06431); Li, Xu, Taylor,
Studer, Goldstein, "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018
(arXiv:1712.09913); He, Zhang, Ren, Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016 (arXiv:1512.03385), section 4.2.
"""
from __future__ import annotations

import math
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["chapter_networks", "stacked_blocks", "is_residual", "path_length_counts", "path_gradient",
           "path_gradient_norm", "lesioned", "deletable_blocks", "filter_normalised_direction",
           "interpolate_state", "loss_surface", "branch_response_stds", "branch_to_shortcut_ratios"]

STAGE_NAMES = ("layer1", "layer2", "layer3", "layer4")


def _builders() -> Dict[str, Callable[[], nn.Module]]:
    from .models import cifar_resnet, plain_net

    return {"ResNet-20": lambda: cifar_resnet(20, in_channels=1),
            "plain-20": lambda: plain_net(20, in_channels=1),
            "ResNet-56": lambda: cifar_resnet(56, in_channels=1),
            "plain-56": lambda: plain_net(56, in_channels=1)}


def chapter_networks(loaders, path: Optional[Path] = None
                     ) -> Tuple[Dict[str, nn.Module], Dict[str, dict], Dict[str, float]]:
    """Chapter 11's networks: ResNet-20, plain-20, ResNet-56 and plain-56 on the digits.

    Each is built after ``torch.manual_seed(0)`` and trained with
    :func:`resnet_edu.experiments.degradation_config` (15 epochs). Returns the trained
    models, their initial state dicts and the training loss of their last epoch. With
    ``path`` naming a file written by ``scripts/results/ch11_nets.py`` the trained weights
    are read from it (``weights_only=True``) instead of trained again; the initial weights
    are rebuilt from the seed either way.
    """
    from .experiments import degradation_config
    from .train import fit

    config = degradation_config()
    saved = torch.load(path, weights_only=True) if path is not None else None
    nets, initial, final_loss = {}, {}, {}
    for name, build in _builders().items():
        torch.manual_seed(config.seed)
        nets[name] = build()
        initial[name] = {k: v.clone() for k, v in nets[name].state_dict().items()}
        if saved is None:
            final_loss[name] = fit(nets[name], loaders, config, progress=False).train_loss[-1]
        else:
            nets[name].load_state_dict(saved["state"][name])
            final_loss[name] = float(saved["final_train_loss"][name])
    return nets, initial, final_loss


def stacked_blocks(model: nn.Module) -> List[nn.Module]:
    """The blocks of ``model.layer1``, ``model.layer2``, ... in the order data meets them."""
    blocks = [block for name in STAGE_NAMES if hasattr(model, name)
              for block in getattr(model, name)]
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no stages named layer1, layer2, ...: "
                         f"the analysis functions expect a ResNet or CifarResNet from resnet_edu")
    return blocks


def is_residual(block: nn.Module) -> bool:
    """A block with a shortcut (``downsample``) and a branch ending in ``last_bn``."""
    return hasattr(block, "downsample") and hasattr(block, "last_bn")


# ----------------------------------------------------------------------- paths
def path_length_counts(num_blocks: int) -> List[int]:
    """``counts[k]``: how many of the ``2**n`` paths through ``n`` blocks use ``k`` branches.

    Each block is either passed through its branch or skipped through its
    shortcut, so the counts are the binomial coefficients ``C(n, k)``.
    """
    if not isinstance(num_blocks, int) or num_blocks < 0:
        raise ValueError(f"num_blocks must be a non-negative integer, got {num_blocks!r}")
    return [math.comb(num_blocks, k) for k in range(num_blocks + 1)]


def _keep_gradient_through(block: nn.Module, branch: bool, stack: ExitStack) -> None:
    """Detach one of the block's two inputs to the addition in the backward pass only.

    The forward values do not change (``detach`` returns the same numbers), so the
    network computes exactly what it always computes; only the path the gradient
    may take back through this block is restricted to the branch or the shortcut.
    """
    cut = block.downsample if branch else block.last_bn
    handle = cut.register_forward_hook(lambda module, args, out: out.detach())
    stack.callback(handle.remove)


def path_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  branches: Iterable[int]) -> torch.Tensor:
    """The gradient that one path carries to the input of the first block.

    The path goes through the residual branch of the blocks listed in
    ``branches`` (indices into :func:`stacked_blocks`) and through the shortcut
    of all the others. The loss is the mean cross-entropy of ``model(x)``
    against ``y`` in eval mode (running BatchNorm statistics), so measuring
    changes nothing in the model. The forward pass is the network's own; since
    the backward pass is linear once the forward pass has fixed every ReLU's
    mask, the gradients of all ``2**n`` paths add up to the full gradient.
    """
    blocks = stacked_blocks(model)
    chosen = set(branches)
    if not chosen <= set(range(len(blocks))):
        raise ValueError(f"branch indices must lie in 0..{len(blocks) - 1}, got {sorted(chosen)}")
    if not all(is_residual(b) for b in blocks):
        raise ValueError("every block needs a shortcut: paths are defined for residual nets")
    captured: Dict[str, torch.Tensor] = {}

    def keep_input(module, args):
        captured["input"] = args[0].detach().requires_grad_(True)
        return (captured["input"],)

    was_training = model.training
    model.eval()
    try:
        with ExitStack() as stack:
            handle = blocks[0].register_forward_pre_hook(keep_input)
            stack.callback(handle.remove)
            for index, block in enumerate(blocks):
                _keep_gradient_through(block, index in chosen, stack)
            loss = F.cross_entropy(model(x), y)
            (grad,) = torch.autograd.grad(loss, captured["input"])
    finally:
        model.train(was_training)
    return grad


def path_gradient_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       branches: Iterable[int]) -> float:
    """The norm of :func:`path_gradient` (Veit et al.'s measure of one path)."""
    return path_gradient(model, x, y, branches).norm().item()


# ---------------------------------------------------------------------- lesions
def _shortcut_only(block: nn.Module) -> Callable:
    """A forward hook that replaces the block's output by what is left without it."""
    def hook(module, args, out):
        x = args[0]
        if not is_residual(module):
            return x                                   # a plain block: the identity
        skipped = module.downsample(x)
        # a post-activation block applies ReLU after the addition; so does its lesion
        return skipped if getattr(module, "pre_activation", False) else F.relu(skipped)
    return hook


@contextmanager
def lesioned(model: nn.Module, indices: Iterable[int]) -> Iterator[nn.Module]:
    """Within the ``with``, the blocks at ``indices`` are deleted from ``model``.

    A deleted residual block outputs its shortcut (the branch is gone, the
    shortcut stays: Veit et al.'s lesion); a deleted plain block passes its input
    through unchanged, which needs the block to keep the shape.
    """
    blocks = stacked_blocks(model)
    indices = sorted(set(indices))
    if any(not 0 <= i < len(blocks) for i in indices):
        raise ValueError(f"block indices must lie in 0..{len(blocks) - 1}, got {indices}")
    for i in indices:
        if not is_residual(blocks[i]) and _changes_shape(blocks[i]):
            raise ValueError(f"block {i} of a plain net changes the shape of its input, so it "
                             f"cannot be replaced by the identity; delete another block")
    handles = [blocks[i].register_forward_hook(_shortcut_only(blocks[i])) for i in indices]
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()


def deletable_blocks(model: nn.Module) -> List[int]:
    """Indices of the blocks :func:`lesioned` can delete: every residual block, and
    the plain blocks that keep the shape of their input."""
    return [i for i, block in enumerate(stacked_blocks(model))
            if is_residual(block) or not _changes_shape(block)]


def _changes_shape(block: nn.Module) -> bool:
    conv = block.conv1
    return conv.stride != (1, 1) or conv.in_channels != block.conv2.out_channels


# -------------------------------------------------------------------- landscapes
def filter_normalised_direction(model: nn.Module, generator: torch.Generator
                                ) -> Dict[str, torch.Tensor]:
    """A random direction in weight space, scaled filter by filter (Li et al., 2018).

    Every filter (one output channel of a convolution, one row of a linear
    layer) of a Gaussian direction is rescaled to the norm of the matching
    filter of the model, so a step of 1 along it changes each filter by its own
    size. Biases and BatchNorm parameters get a zero direction, as in the paper.
    """
    direction = {}
    for name, param in model.named_parameters():
        if param.dim() <= 1:                                   # biases, BN gamma and beta
            direction[name] = torch.zeros_like(param)
            continue
        d = torch.randn(param.shape, generator=generator, dtype=param.dtype)
        filters = d.flatten(1).norm(dim=1)                     # (out_channels,)
        target = param.detach().flatten(1).norm(dim=1)
        scale = (target / filters.clamp_min(1e-12)).view(-1, *([1] * (param.dim() - 1)))
        direction[name] = d * scale
    return direction


def interpolate_state(start: Dict[str, torch.Tensor], end: Dict[str, torch.Tensor],
                      alpha: float) -> Dict[str, torch.Tensor]:
    """``(1 - alpha) * start + alpha * end`` for every floating-point entry of two state dicts.

    Integer buffers (BatchNorm's ``num_batches_tracked``) are taken from ``end``.
    """
    if start.keys() != end.keys():
        raise ValueError("the two state dicts must come from the same architecture")
    return {k: (torch.lerp(start[k], end[k], alpha) if end[k].is_floating_point() else end[k])
            for k in end}


@torch.no_grad()
def loss_surface(model: nn.Module, directions: Sequence[Dict[str, torch.Tensor]],
                 coordinates: Sequence[Sequence[float]],
                 loss_fn: Callable[[nn.Module], float]) -> torch.Tensor:
    """``loss_fn(model)`` at ``theta + sum_i c_i d_i`` for every point of a grid.

    ``coordinates`` gives one sequence of values per direction (one direction:
    a line, two: a plane). Returns a tensor of shape ``(len(c_1), len(c_2), ...)``.
    The model's parameters and buffers are restored afterwards, so ``loss_fn``
    may run the model in training mode.
    """
    if len(directions) != len(coordinates) or not directions:
        raise ValueError("give one sequence of coordinates per direction (at least one)")
    params = dict(model.named_parameters())
    original = {name: p.detach().clone() for name, p in params.items()}
    buffers = {name: b.clone() for name, b in model.named_buffers()}   # BN running statistics
    axes = [torch.as_tensor(list(c), dtype=torch.float32) for c in coordinates]
    grid = torch.cartesian_prod(*axes).view(-1, len(axes))
    losses = torch.empty(len(grid))
    try:
        for i, point in enumerate(grid):
            for name, p in params.items():
                p.copy_(original[name] + sum(c * d[name] for c, d in zip(point, directions)))
            losses[i] = loss_fn(model)
    finally:
        for name, p in params.items():
            p.copy_(original[name])
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    return losses.view(*[len(a) for a in axes])


# ------------------------------------------------------------- residual responses
@torch.no_grad()
def branch_response_stds(model: nn.Module, x: torch.Tensor) -> List[float]:
    """Standard deviation of every block's branch output at its last BatchNorm.

    For a residual block this is the size of ``F(x)`` before the addition (He et
    al., 2015, figure 7 measure the output of each 3x3 layer after BN); for a
    plain block, the same layer's output. Measured in eval mode on ``x``.
    """
    stds: List[float] = []
    _eval_with_output_hooks(model, x, [(_last_bn(b), lambda out: stds.append(out.std().item()))
                                       for b in stacked_blocks(model)])
    return stds


@torch.no_grad()
def branch_to_shortcut_ratios(model: nn.Module, x: torch.Tensor) -> List[float]:
    """``std(F(x)) / std(shortcut(x))`` for every residual block, in eval mode.

    How large each branch's contribution is next to the signal it is added to:
    a block with a small ratio only nudges the representation that reaches it.
    """
    blocks = stacked_blocks(model)
    if not all(is_residual(b) for b in blocks):
        raise ValueError("every block needs a shortcut to compare its branch with")
    sizes: List[Dict[str, float]] = [{} for _ in blocks]
    _eval_with_output_hooks(model, x, [
        (module, lambda out, size=size, key=key: size.__setitem__(key, out.std().item()))
        for size, block in zip(sizes, blocks)
        for key, module in (("branch", block.last_bn), ("shortcut", block.downsample))])
    return [size["branch"] / size["shortcut"] for size in sizes]


def _eval_with_output_hooks(model: nn.Module, x: torch.Tensor,
                            watch: Sequence[Tuple[nn.Module, Callable]]) -> None:
    """Run ``model(x)`` in eval mode, calling ``record(output)`` for each watched module;
    the mode and the hooks are restored afterwards."""
    handles = [module.register_forward_hook(lambda m, args, out, record=record: record(out))
               for module, record in watch]
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()


def _last_bn(block: nn.Module) -> nn.Module:
    if hasattr(block, "last_bn"):
        return block.last_bn
    bns = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
    if not bns:
        raise ValueError(f"{type(block).__name__} has no BatchNorm2d to measure")
    return bns[-1]
