"""Save and load training checkpoints without unpickling arbitrary objects.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts:
the model's ``state_dict``, optionally the optimizer's and a scheduler's, and
free-form metadata. :func:`load_checkpoint` reads it with
``torch.load(..., weights_only=True)``, which refuses anything else, so
opening a checkpoint from an untrusted source cannot run code.
"""
from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch
from torch import nn

FORMAT_VERSION = 1
PathLike = Union[str, "os.PathLike[str]"]


def save_checkpoint(path: PathLike, model: nn.Module,
                    optimizer: Optional[torch.optim.Optimizer] = None,
                    scheduler: Optional[Any] = None, **metadata: Any) -> Path:
    """Write ``model`` (and optionally optimizer/scheduler state) to ``path``.

    ``metadata`` holds plain values only (numbers, strings, lists, dicts of
    them, tensors), e.g. ``epoch=3, history={...}, model_name="resnet20"``.
    The file is written next to its destination and renamed, so an
    interrupted save never leaves a truncated checkpoint behind.
    """
    path = Path(path)
    if path.is_dir():                      # checked first: torch.save would fill a .tmp first
        raise IsADirectoryError(f"cannot save a checkpoint to {str(path)!r}: it is a folder; "
                                f"give a file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    state: Dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model": model.state_dict(),
        "metadata": metadata,
    }
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:                  # no half-written .tmp left behind, even on Ctrl-C
        tmp.unlink(missing_ok=True)
        raise
    return path


def _what_it_is_not(path: Path, exc: Exception) -> str:
    """Why ``torch.load(path, weights_only=True)`` failed, in words that name what the
    file is not (never PyTorch's advice to load it unsafely, which this package won't do)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head.startswith(b"PK"):            # torch.save writes a zip archive
        if head[:1] == b"\x80":               # a pickle's protocol marker
            return ("it is a pickle file, not one written by torch.save (resnet_edu does not "
                    "unpickle other files: that can run code)")
        return "it is not a PyTorch file at all (neither a zip archive nor a pickle)"
    if isinstance(exc, pickle.UnpicklingError):
        return ("it holds Python objects other than tensors and plain values (for example a "
                "whole model saved with torch.save(model)); resnet_edu reads only checkpoints "
                "of tensors and plain values, because unpickling other objects can run code")
    return "it is a damaged or truncated PyTorch file (copy or save it again)"


def _read_plain(path: Path, map_location) -> Any:
    """``torch.load(path, weights_only=True)``, its failures as one ``ValueError``."""
    try:
        with warnings.catch_warnings():   # e.g. "Detected pickle protocol 4": said below
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    # truncated or not a torch file (RuntimeError, EOFError, OSError), unsafe objects inside
    # (UnpicklingError), or a pickle of another shape (ValueError, KeyError, ...)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError,
            IndexError, TypeError, AttributeError) as exc:
        raise ValueError(f"{str(path)!r} is not a readable resnet_edu checkpoint: "
                         f"{_what_it_is_not(path, exc)}") from exc


def load_checkpoint(path: PathLike, model: Optional[nn.Module] = None,
                    optimizer: Optional[torch.optim.Optimizer] = None,
                    scheduler: Optional[Any] = None,
                    map_location: Union[str, torch.device] = "cpu",
                    strict: bool = True) -> Dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Loads the states into ``model``/``optimizer``/``scheduler`` when given and
    returns the whole dict (``checkpoint["metadata"]`` holds what was saved).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    state = _read_plain(path, map_location)
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{str(path)!r} is not a resnet_edu checkpoint: it holds tensors "
                         f"and plain values but no 'model' entry (a bare state_dict loads "
                         f"with model.load_state_dict(torch.load(path, weights_only=True)))")
    if model is not None:
        model.load_state_dict(state["model"], strict=strict)
    if optimizer is not None:
        if "optimizer" not in state:
            raise ValueError(f"{str(path)!r} holds no optimizer state to resume from")
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        if "scheduler" not in state:
            raise ValueError(f"{str(path)!r} holds no scheduler state to resume from")
        scheduler.load_state_dict(state["scheduler"])
    return state
