"""The experiments of chapters 3 and 4: the degradation problem, measured.

Scope:

- :func:`train_depth_sweep`: train one network per depth with the same data,
  the same budget and the same seed, and keep every run's :class:`History`
  (chapter 3 with plain nets, chapter 4 with residual nets).
- :func:`final_train_loss`: the number the degradation claim is about: the
  training loss at the end of a run (not the test loss); :func:`evaluate_runs`
  adds eval-mode loss and accuracy on the training and test sets.
- :func:`gradient_norms`: the norm of the gradient of every convolution's
  weights after one backward pass (per-layer gradient flow at initialisation).
- :func:`without_batchnorm` and :func:`pytorch_default_init_`: the two changes
  that bring vanishing gradients back, for comparison.

He et al. (2015) observed that, beyond a certain depth, plain networks reach a
*higher training error* than shallower ones although they could copy the
shallower network and add identity layers; normalised initialisation (He et
al., 2015, "Delving deep into rectifiers") and BatchNorm (Ioffe and Szegedy,
2015) already keep the gradients of such networks from vanishing (with
BatchNorm, deep plain nets' gradients even grow towards the input: Yang et al.,
2019, "A Mean Field Theory of Batch Normalization"), so the problem is one of
optimisation, not of vanishing gradients or overfitting.

References: He, Zhang, Ren, Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016 (arXiv:1512.03385), section 4.2 and figure 6.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .compat import BATCHNORM_TYPES
from .train import History, TrainConfig, evaluate, fit

__all__ = ["SweepRun", "train_depth_sweep", "final_train_loss", "evaluate_runs",
           "gradient_norms", "without_batchnorm", "pytorch_default_init_", "degradation_config"]


def degradation_config(**overrides) -> TrainConfig:
    """The budget of the degradation experiments of chapters 3 and 4.

    The paper's optimiser (SGD, momentum 0.9, lr 0.1, weight decay 1e-4, batch
    128) for a short run: 15 epochs of the 1,257 training digits (150 steps).
    The first 20 steps run at lr 0.01, a warm-up in the spirit of the paper's
    for ResNet-110 (section 4.2: lr 0.01 until the training error is below 80 %,
    about 400 iterations); ``scripts/results/ch03_ch04_seeds.py`` measures what
    it changes here. A cosine schedule then brings lr to 0, so the last epoch's
    loss is not blurred by large steps. Overrides change any field.
    """
    settings = dict(num_epochs=15, lr=0.1, momentum=0.9, weight_decay=1e-4,
                    batch_size=128, schedule="cosine", warmup_steps=20, seed=0,
                    device="auto")
    settings.update(overrides)
    return TrainConfig(**settings)


@dataclass
class SweepRun:
    """One trained network of a depth sweep."""

    depth: int
    model: nn.Module
    history: History

    @property
    def final_train_loss(self) -> float:
        return final_train_loss(self.history)


def final_train_loss(history: History, num_epochs: int = 1) -> float:
    """Mean training loss of the last ``num_epochs`` epochs of a run.

    This is the loss the optimiser itself saw on the training mini-batches
    (in training mode), averaged over the epoch, as in the paper's curves.
    """
    if len(history) == 0:
        raise ValueError("the history is empty: train for at least one epoch")
    if num_epochs < 1 or num_epochs > len(history):
        raise ValueError(f"num_epochs must be between 1 and {len(history)}, got {num_epochs}")
    last = history.train_loss[-num_epochs:]
    return sum(last) / len(last)


def train_depth_sweep(build: Callable[[int], nn.Module], depths: Iterable[int], loaders,
                      config: Optional[TrainConfig] = None,
                      progress: bool = False) -> Dict[int, SweepRun]:
    """Train ``build(depth)`` for every depth with the same data, budget and seeds.

    Args:
        build: makes an untrained network of a given depth, e.g.
            ``lambda depth: plain_net(depth, in_channels=1)``.
        depths: the depths to compare, e.g. ``(8, 20, 32, 56)``.
        loaders: the data (:func:`resnet_edu.data.digits_loaders`).
        config: the training budget (default: :func:`degradation_config`).
        progress: show a progress bar per run.

    Returns:
        ``{depth: SweepRun}``. Every network is initialised after
        ``torch.manual_seed(config.seed)`` and sees the same batches in the same
        order, so the runs differ only in depth.
    """
    config = config or degradation_config()
    runs: Dict[int, SweepRun] = {}
    for depth in depths:
        torch.manual_seed(config.seed)          # same initial random stream for every depth
        model = build(depth)
        history = fit(model, loaders, config, progress=progress)
        runs[depth] = SweepRun(depth, model, history)
    return runs


def gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Dict[str, float]:
    """L2 norm of the gradient of every convolution's weights, input to output.

    One forward pass in training mode (BatchNorm uses the batch statistics,
    as it does during training), the mean cross-entropy against ``y``, one
    backward pass. The model's existing ``.grad`` values, its buffers
    (BatchNorm running statistics) and its train/eval mode are restored
    afterwards, so measuring leaves the model as it was.

    Returns:
        ``{"layer1.0.conv1": norm, ...}`` in the order the layers are defined.
    """
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("the model has no nn.Conv2d layer to measure")
    saved = {p: p.grad for p in model.parameters()}
    buffers = [(b, b.clone()) for b in model.buffers()]
    was_training = model.training
    try:
        model.train()
        for p in model.parameters():
            p.grad = None
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return {name: (m.weight.grad.norm().item() if m.weight.grad is not None else 0.0)
                for name, m in convs}
    finally:
        for p, g in saved.items():
            p.grad = g
        with torch.no_grad():
            for b, value in buffers:
                b.copy_(value)
        model.train(was_training)


def without_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every BatchNorm layer of ``model`` by ``nn.Identity`` (in place).

    Used to show what BatchNorm contributes to gradient flow; the network is
    otherwise unchanged.
    """
    targets = [name for name, m in model.named_modules()
               if isinstance(m, BATCHNORM_TYPES)]
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, nn.Identity())
    return model


def pytorch_default_init_(model: nn.Module) -> nn.Module:
    """Re-initialise every conv and linear layer with PyTorch's default (in place).

    PyTorch's default, ``kaiming_uniform_(a=sqrt(5))``, draws weights of
    variance ``1 / (3 * fan_in)``: one sixth of what a ReLU layer needs to keep
    the signal's size (He et al., 2015, "Delving deep into rectifiers": variance
    ``2 / fan_in``), so without normalisation every layer shrinks the signal.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.reset_parameters()
    return model


def evaluate_runs(runs: Dict[int, SweepRun], loaders) -> Dict[int, Tuple[float, float, float, float]]:
    """``{depth: (train_loss, train_acc, test_loss, test_acc)}`` in eval mode."""
    results = {}
    for depth, run in runs.items():
        train_loss, train_acc = evaluate(run.model, loaders.train)
        test_loss, test_acc = evaluate(run.model, loaders.test)
        results[depth] = (train_loss, train_acc, test_loss, test_acc)
    return results
