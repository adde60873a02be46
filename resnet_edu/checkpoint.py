"""Save and load training checkpoints without unpickling arbitrary objects.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts:
the model's ``state_dict``, optionally the optimizer's and a scheduler's, and
free-form metadata. :func:`load_checkpoint` reads it with
``torch.load(..., weights_only=True)``, which refuses anything else, so
opening a checkpoint from an untrusted source cannot run code.
"""
from __future__ import annotations

import os
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
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated file, not a torch file, or unsafe objects inside
        raise ValueError(f"{str(path)!r} is not a readable resnet_edu checkpoint: it must be a "
                         f"file written by save_checkpoint and contain only tensors and plain "
                         f"values ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{str(path)!r} is not a resnet_edu checkpoint (no 'model' entry); "
                         f"for a bare state_dict use model.load_state_dict(torch.load(path, "
                         f"weights_only=True))")
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
