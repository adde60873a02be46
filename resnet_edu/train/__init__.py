"""A small training loop: SGD with momentum, a learning-rate schedule, a progress bar.

Modules (one idea each):

- ``config``    :class:`TrainConfig` (every knob of a run, each default commented, validated
  in :func:`check_config`), the presets :func:`digits_config` (the book's laptop run) and
  :func:`paper_cifar10_config` (He et al. 2015's CIFAR-10 recipe), and :func:`learning_rate`.
- ``device``    :func:`select_device` and which options a device supports.
- ``loop``      :func:`fit` (epochs of :func:`train_epoch`, validation, checkpoints, resume),
  :func:`evaluate`, :func:`predict`.
- ``history``   :class:`History`, one list per measured quantity, one entry per epoch.
- ``progress``  the progress bar, one line updated in place in a notebook.

``python -m resnet_edu train`` is ``resnet_edu.cli.train``.

References: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition",
CVPR 2016 (arXiv:1512.03385), sections 3.4 and 4.2.
"""
from .config import (
                     LR_SCALINGS,
                     PRECISIONS,
                     SCHEDULES,
                     TrainConfig,
                     check_config,
                     digits_config,
                     learning_rate,
                     paper_cifar10_config,
)
from .device import DEVICES, check_device_options, select_device
from .history import History
from .loop import EpochResult, NonFiniteLossError, evaluate, fit, predict, train_epoch

__all__ = [
    "TrainConfig", "check_config", "digits_config", "paper_cifar10_config", "learning_rate",
    "SCHEDULES", "PRECISIONS", "LR_SCALINGS", "DEVICES", "select_device",
    "check_device_options", "History", "NonFiniteLossError", "EpochResult", "fit",
    "train_epoch", "evaluate", "predict",
]
