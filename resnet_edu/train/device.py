"""Where a run computes, and which training options that device supports.

:func:`select_device` turns ``"auto"``/``"cpu"``/``"cuda"``/``"cuda:N"`` into a
``torch.device`` and fails clearly when a GPU was asked for but is not there.
:func:`check_device_options` refuses, with a ``ValueError`` that names the
alternative, the options of a :class:`~resnet_edu.train.TrainConfig` that cannot
work on the chosen device (fp16 on a CPU, say), before any training starts.
"""
from __future__ import annotations

import os
import shutil

import torch
from torch import nn

DEVICES = ("auto", "cpu", "cuda")


def select_device(name: str = "auto", check_available: bool = True) -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; ``"cuda"`` fails clearly without a GPU."""
    if not isinstance(name, str) or not (name in DEVICES or name.startswith("cuda:")):
        raise ValueError(f"device={name!r} is not supported; choose 'auto', 'cpu', 'cuda' "
                         f"or 'cuda:N'")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and check_available:
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={name!r} was requested, but PyTorch sees no CUDA GPU "
                               f"(torch.cuda.is_available() is False). Use device='cpu' or "
                               f"'auto'; in Colab choose Runtime > Change runtime type > GPU.")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"device={name!r} was requested, but only "
                               f"{torch.cuda.device_count()} CUDA device(s) are visible")
        return device
    return torch.device(name)


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (the CPU for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _has_cpp_compiler() -> bool:
    # torch.compile's default backend (inductor) writes C++ for the CPU and builds it with
    # the compiler named by $CXX, else g++ or clang++.
    names = [os.environ.get("CXX", ""), "g++", "clang++", "c++"]
    return any(name and shutil.which(name) for name in names)


def check_device_options(config, device: torch.device) -> None:
    """Raise a ``ValueError`` if an option of ``config`` cannot work on ``device``."""
    if config.precision == "fp16" and device.type != "cuda":
        raise ValueError(f"precision='fp16' needs a CUDA GPU (float16 training relies on a "
                         f"gradient scaler, and CPU kernels are slow in float16); the device "
                         f"is {device}. On a CPU use precision='bf16' (or 'fp32').")
    if config.precision == "bf16" and device.type == "cuda" \
            and not torch.cuda.is_bf16_supported():
        raise ValueError(f"precision='bf16' is not supported by this GPU ({device}); use "
                         f"precision='fp16' (with a gradient scaler) or 'fp32'.")
    if config.sync_batchnorm and device.type != "cuda":
        raise ValueError(f"sync_batchnorm=True needs CUDA GPUs: PyTorch's SyncBatchNorm "
                         f"works only with GPU modules, and the device is {device}. On CPUs "
                         f"leave it off: each process then normalises with its own "
                         f"micro-batch's statistics (ghost batch norm).")
    if config.compile and device.type == "cpu" and not _has_cpp_compiler():
        raise ValueError("compile=True on the CPU needs a C++ compiler (g++ or clang++, or "
                         "one named by $CXX) for torch.compile's inductor backend; install "
                         "one or leave compile off.")
