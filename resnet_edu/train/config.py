"""Every knob of a training run, each default commented, and the learning-rate schedule.

:class:`TrainConfig` holds the hyper-parameters; :func:`check_config` is the one
place that validates them (the dataclass calls it on construction, :func:`fit`
again before training, since a dataclass can be changed after it is built).
:func:`digits_config` is the laptop preset the book uses (lr 0.05, 30 epochs, chosen
on validation images); :func:`paper_cifar10_config`
is He et al. (2015)'s CIFAR-10 recipe (section 4.2).

References: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition",
CVPR 2016 (arXiv:1512.03385), sections 3.4 and 4.2; Loshchilov and Hutter, "SGDR",
ICLR 2017 (the cosine schedule); Goyal et al., "Accurate, Large Minibatch SGD:
Training ImageNet in 1 Hour", 2017 (the linear scaling rule with gradual warm-up).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Tuple

SCHEDULES = ("cosine", "step", "constant")
PRECISIONS = ("fp32", "bf16", "fp16")
LR_SCALINGS = ("none", "linear")


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (defaults: the paper's SGD, adapted to a short
    run on little data; :func:`digits_config` is the book's digits preset)."""

    num_epochs: int = 20             # passes over the training set
    lr: float = 0.1                  # learning rate at the start (the paper's 0.1)
    momentum: float = 0.9            # SGD momentum (the paper's 0.9)
    weight_decay: float = 5e-4       # L2 penalty on all weights (the paper: 1e-4 on CIFAR-10;
                                     # 1,257 digits overfit more easily, so a little more here)
    batch_size: int = 64             # images per step; used where loaders are built from the
                                     # config (the command line); fit uses the loaders it gets
    schedule: str = "cosine"         # "cosine": smooth decay to 0; "step": divide by 10 at
                                     # each milestone (the paper); "constant"
    milestones: Tuple[float, ...] = (0.5, 0.75)  # "step" only: fractions of all steps at which
                                     # lr is divided by 10 (the paper: 32k and 48k of 64k)
    warmup_steps: int = 0            # first steps at lr / 10 (the paper's ResNet-110: ~400)
    seed: int = 0                    # seeds torch before training (the command line also
                                     # seeds the model's initialisation and the data with it)
    device: str = "auto"             # "auto" (CUDA if available), "cpu", "cuda" or "cuda:N"
    label_smoothing: float = 0.0     # weight of the uniform target mixed into the labels
                                     # (0: plain cross-entropy, as in the paper)
    channels_last: bool = False      # store images and weights as N,H,W,C: faster convolutions
                                     # on many CPUs and on GPUs with tensor cores
    precision: str = "fp32"          # "fp32"; "bf16": autocast to bfloat16 (CPU and CUDA);
                                     # "fp16": autocast to float16 with a gradient scaler (CUDA)
    compile: bool = False            # torch.compile the model for training (slow first steps)
    sync_batchnorm: bool = False     # under torchrun on CUDA: BatchNorm statistics over all
                                     # processes' micro-batches instead of each its own
    scale_lr: str = "none"           # under torchrun: "linear" multiplies lr by the number of
                                     # processes, reached by a gradual warm-up (Goyal et al.)

    def __post_init__(self):
        self.milestones = tuple(self.milestones)
        check_config(self)


def _choice(config: TrainConfig, name: str, choices: Tuple[str, ...]) -> None:
    value = getattr(config, name)
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of "
                         f"{', '.join(repr(c) for c in choices)}")


def _non_negative_int(config: TrainConfig, name: str, positive: bool = False) -> None:
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < int(positive):
        kind = "a positive" if positive else "a non-negative"
        raise ValueError(f"{name} must be {kind} integer, got {value!r}")


def check_config(config: TrainConfig) -> None:
    """Raise a ``ValueError`` naming the first value of ``config`` that cannot work."""
    from .device import select_device

    _non_negative_int(config, "num_epochs", positive=True)
    _non_negative_int(config, "batch_size", positive=True)
    if not (isinstance(config.lr, (int, float)) and math.isfinite(config.lr) and config.lr > 0):
        raise ValueError(f"lr must be a positive number, got {config.lr!r}")
    if not 0 <= config.momentum < 1:
        raise ValueError(f"momentum must lie in [0, 1), got {config.momentum!r}")
    if config.weight_decay < 0:
        raise ValueError(f"weight_decay must not be negative, got {config.weight_decay!r}")
    _choice(config, "schedule", SCHEDULES)
    if any(not 0 < m < 1 for m in config.milestones):
        raise ValueError(f"milestones are fractions of the run in (0, 1), "
                         f"got {config.milestones!r}")
    _non_negative_int(config, "warmup_steps")
    select_device(config.device, check_available=False)
    if not (isinstance(config.label_smoothing, (int, float))
            and 0 <= config.label_smoothing < 1):
        raise ValueError(f"label_smoothing must lie in [0, 1), got {config.label_smoothing!r}")
    _choice(config, "precision", PRECISIONS)
    _choice(config, "scale_lr", LR_SCALINGS)
    for name in ("channels_last", "compile", "sync_batchnorm"):
        if not isinstance(getattr(config, name), bool):
            raise ValueError(f"{name} must be True or False, got {getattr(config, name)!r}")


# The digits preset differs from TrainConfig's defaults in two numbers, chosen by
# benchmarks/digits_recipe.py on the validation parts of 20 splits (never the test parts):
# lr 0.05 for 30 epochs scored highest there (benchmarks/results/digits_recipe.txt).
DIGITS_PRESET = {"lr": 0.05, "num_epochs": 30}


def digits_config(**overrides: Any) -> TrainConfig:
    """The book's preset for ResNets on the 8x8 digits (see chapter 9): ``TrainConfig``'s
    defaults with lr 0.05 for 30 epochs; ``overrides`` change any field."""
    return TrainConfig(**{**DIGITS_PRESET, **overrides})


def paper_cifar10_config(steps_per_epoch: int = 352, **overrides: Any) -> TrainConfig:
    """He et al. (2015), section 4.2, on CIFAR-10.

    SGD, momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 divided by 10 at
    32k and 48k iterations, stop at 64k. Epochs are whole, so the run is
    ``ceil(64000 / steps_per_epoch)`` epochs: with 45,000 training images in
    batches of 128 (352 steps) that is 182 epochs = 64,064 steps, with the
    divisions at steps 32,032 and 48,048.
    """
    settings = dict(num_epochs=math.ceil(64_000 / steps_per_epoch), lr=0.1, momentum=0.9,
                    weight_decay=1e-4, batch_size=128, schedule="step",
                    milestones=(0.5, 0.75), warmup_steps=0)
    settings.update(overrides)
    return TrainConfig(**settings)


def learning_rate(config: TrainConfig, step: int, total_steps: int,
                  world_size: int = 1) -> float:
    """The learning rate of (0-based) ``step`` out of ``total_steps``.

    ``world_size`` processes (torchrun) matter only with ``scale_lr="linear"``:
    the peak rate is then ``lr * world_size`` and the warm-up climbs to it from
    ``lr`` in equal steps (Goyal et al. 2017) instead of staying at ``lr / 10``.
    """
    peak = config.lr * (world_size if config.scale_lr == "linear" else 1)
    if step < config.warmup_steps:
        if config.scale_lr == "linear":
            return config.lr + (peak - config.lr) * step / config.warmup_steps
        return config.lr / 10
    if config.schedule == "constant":
        return peak
    if config.schedule == "step":
        passed = sum(step >= round(m * total_steps) for m in config.milestones)
        return peak * 0.1 ** passed
    return 0.5 * peak * (1 + math.cos(math.pi * step / total_steps))   # cosine
