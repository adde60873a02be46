"""The training loop: :func:`fit` runs epochs of :func:`train_epoch`; also
:func:`evaluate` and :func:`predict`.

The loop is SGD with momentum and a per-step learning rate, readable next to the
paper's section 4.2. The fast paths of chapter 12 are switches of the
:class:`~resnet_edu.train.TrainConfig` that change one line each: channels_last
memory format (where tensors live), autocast to bf16/fp16 (around the forward
pass and the loss), a gradient scaler (fp16 only) and ``torch.compile`` (which
module runs the steps). With every switch off the loop is the plain one.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict
from typing import Any, Dict, Iterable, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed
from .config import TrainConfig, check_config, learning_rate
from .device import check_device_options, model_device, select_device
from .history import History
from .progress import progress_bar

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLossError(ValueError):
    """The training loss became NaN or infinite: the weights have diverged.

    Its attributes say where (``value``, 1-based ``epoch`` and ``step`` of ``steps``,
    the ``lr`` of that step), so a caller can phrase its own advice (the command line
    names its flags, not :class:`TrainConfig`'s fields)."""

    def __init__(self, message: str, value: float = math.nan, epoch: int = 0, step: int = 0,
                 steps: int = 0, lr: float = math.nan):
        super().__init__(message)
        self.value, self.epoch, self.step, self.steps, self.lr = value, epoch, step, steps, lr


class EpochResult(NamedTuple):
    loss: float          # mean training loss over the epoch's images
    accuracy: float      # fraction of the epoch's images classified correctly (train mode)
    lr: float            # learning rate of the epoch's last step


# ---------------------------------------------------------------- seams for torchrun
# Without torchrun there is one process: it prints, saves and sees every batch.
# Under torchrun (DDPCH, resnet_edu.train.distributed) there are world_size() of them.
def _world_size() -> int:
    return distributed.world_size()


def _is_main_process() -> bool:
    return distributed.is_main_process()


def _start_epoch(loader, epoch: int) -> None:
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)               # same batches whether resumed or not


# ---------------------------------------------------------------- evaluation
@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, device: Optional[torch.device] = None
            ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true classes (both on the CPU) for every image of ``loader``."""
    device = device or model_device(model)
    was_training = model.training
    model.eval()
    preds, labels = [], []
    try:
        for x, y in loader:
            preds.append(model(x.to(device)).argmax(dim=1).cpu())
            labels.append(y.cpu())
    finally:
        model.train(was_training)
    return torch.cat(preds), torch.cat(labels)


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: Optional[torch.device] = None
             ) -> Tuple[float, float]:
    """Mean cross-entropy and accuracy (a fraction) of ``model`` in eval mode on ``loader``."""
    device = device or model_device(model)
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    try:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)                                            # (B, num_classes)
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(dim=1) == y).sum().item()
            count += len(y)
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("cannot evaluate on an empty loader")
    return total_loss / count, correct / count


# ---------------------------------------------------------------- one epoch
def _autocast(config: TrainConfig, device: torch.device):
    """Autocast to bf16/fp16 for ``precision`` other than fp32 (matmuls and convolutions
    then run in 16 bits, reductions such as the loss stay in fp32)."""
    if config.precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[config.precision])


def _to_device(x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool):
    if channels_last and x.dim() == 4:
        x = x.to(device, non_blocking=True, memory_format=torch.channels_last)
    else:
        x = x.to(device, non_blocking=True)
    return x, y.to(device, non_blocking=True)


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> float:
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def _diverged(loss_value: float, epoch: int, i: int, steps: int, lr: float,
              config: TrainConfig) -> NonFiniteLossError:
    return NonFiniteLossError(
        f"the training loss became {loss_value} in epoch {epoch + 1}, step {i + 1} of "
        f"{steps} (lr={lr:g}): the weights diverged. Try a lower learning rate (e.g. "
        f"lr={config.lr / 10:g}), a warm-up (warmup_steps), and check that the inputs are "
        f"normalised and finite.", loss_value, epoch + 1, i + 1, steps, lr)


def train_epoch(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer,
                config: TrainConfig, epoch: int, total_steps: int, *,
                device: torch.device, scaler: Optional[Any] = None, bar=None) -> EpochResult:
    """One pass over ``loader`` (0-based ``epoch``): per batch set the learning rate,
    compute the cross-entropy, back-propagate and take an SGD step."""
    steps = len(loader)
    model.train()
    total_loss, correct, count, lr = 0.0, 0, 0, float("nan")
    for i, (x, y) in enumerate(loader):
        lr = _set_lr(optimizer, learning_rate(config, epoch * steps + i, total_steps,
                                              _world_size()))
        x, y = _to_device(x, y, device, config.channels_last)
        with _autocast(config, device):
            logits = model(x)                                            # (B, num_classes)
            loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise _diverged(loss_value, epoch, i, steps, lr, config)
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:                                 # fp16: scale the loss so small gradients do not
            scaler.scale(loss).backward()     # underflow; skip steps whose gradients overflowed
            scaler.step(optimizer)
            scaler.update()
        total_loss += loss_value * len(y)
        correct += (logits.argmax(dim=1) == y).sum().item()
        count += len(y)
        if bar is not None:
            bar.update(1)
    return EpochResult(total_loss / count, correct / count, lr)


# ---------------------------------------------------------------- a whole run
def prepare_model(model: nn.Module, config: TrainConfig, device: torch.device) -> nn.Module:
    """Move ``model`` to ``device`` (as channels_last if asked) and return the module that
    runs the training steps: ``model`` itself, or ``torch.compile``'s wrapper around it,
    which shares its parameters (under torchrun: around DistributedDataParallel's)."""
    if config.channels_last:
        model.to(device, memory_format=torch.channels_last)
    else:
        model.to(device)
    trained = distributed.wrap_model(model, device, config.sync_batchnorm)   # torchrun: DDP
    return torch.compile(trained) if config.compile else trained


def _train_and_val_loaders(loaders) -> Tuple[Any, Any]:
    if hasattr(loaders, "train"):
        return loaders.train, getattr(loaders, "val", None)
    if isinstance(loaders, (tuple, list)) and len(loaders) >= 1:
        return loaders[0], (loaders[1] if len(loaders) > 1 else None)
    raise TypeError("loaders must have .train and .val (resnet_edu.data.Loaders) "
                    "or be a tuple (train_loader, val_loader)")


# the fields that decide which steps a run takes: a resumed run must repeat them
RUN_FIELDS = ("num_epochs", "lr", "momentum", "weight_decay", "schedule", "milestones",
              "warmup_steps", "seed", "label_smoothing", "scale_lr")


def check_same_run(saved: Dict[str, Any], config: TrainConfig, path) -> None:
    """Raise a ``ValueError`` if ``config`` differs from the checkpoint's ``saved`` config in
    a field of :data:`RUN_FIELDS`: resuming continues the same run to its planned end."""
    differ = [f"{name}={getattr(config, name)!r} (the checkpoint's: {saved[name]!r})"
              for name in RUN_FIELDS if name in saved and
              _as_saved(getattr(config, name)) != _as_saved(saved[name])]
    if differ:
        raise ValueError(f"{str(path)!r} is another run: {', '.join(differ)}. Resuming "
                         f"continues a run to its planned end with its own settings; pass "
                         f"the checkpoint's config (TrainConfig(**checkpoint['metadata']"
                         f"['config'])) or start a new run")


def _as_saved(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _resume(path, model, optimizer, scaler, device,
            config: TrainConfig) -> Tuple[History, int]:
    """The history so far and the number of finished epochs (states loaded in place)."""
    from ..checkpoint import load_checkpoint

    if path is None:
        return History(), 0
    metadata = load_checkpoint(path, model, optimizer, map_location=device)["metadata"]
    check_same_run(metadata.get("config", {}), config, path)
    if scaler is not None and "grad_scaler" in metadata:
        scaler.load_state_dict(metadata["grad_scaler"])
    return History.from_dict(metadata.get("history", {})), int(metadata.get("epoch", 0))


def _save(path, model, optimizer, scaler, history: History, config: TrainConfig,
          metadata: Optional[Dict[str, Any]]) -> None:
    from ..checkpoint import save_checkpoint

    extra = dict(metadata or {})
    if scaler is not None:
        extra["grad_scaler"] = scaler.state_dict()
    save_checkpoint(path, model, optimizer, epoch=history.epoch[-1],
                    history=history.as_dict(), config=asdict(config), **extra)


def fit(model: nn.Module, loaders, config: Optional[TrainConfig] = None,
        progress: bool = True, checkpoint_path: Optional[str] = None,
        resume_from: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None) -> History:
    """Train ``model`` with SGD + momentum and return its :class:`History`.

    ``loaders``: a :class:`~resnet_edu.data.Loaders` (uses ``.train`` and ``.val``) or a
    tuple ``(train_loader, val_loader)``; ``val_loader`` may be ``None``. ``config``: a
    :class:`TrainConfig` (default ``TrainConfig()``). ``progress``: show a progress bar.
    ``checkpoint_path``: save model, optimizer, history and config there after every
    epoch. ``resume_from``: a checkpoint written by ``fit``; training continues after
    its last epoch to the run's planned end, exactly as if never interrupted: ``config``
    must repeat the checkpoint's in every field of :data:`RUN_FIELDS` (``ValueError``
    otherwise); a finished run trains nothing.
    ``metadata``: extra plain values for the checkpoint (e.g. ``model_name``).
    Raises :class:`NonFiniteLossError` when the loss becomes NaN or infinite.
    """
    config = config or TrainConfig()
    check_config(config)
    device = distributed.setup(select_device(config.device))   # torchrun: join, cuda:LOCAL_RANK
    check_device_options(config, device)
    train_loader, val_loader = _train_and_val_loaders(loaders)
    train_loader = distributed.shard_loader(train_loader)     # torchrun: this rank's share
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ValueError("the training loader is empty: there is nothing to train on")
    total_steps = config.num_epochs * steps_per_epoch

    torch.manual_seed(config.seed)
    trained = prepare_model(model, config, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler(device.type) if config.precision == "fp16" else None
    history, start_epoch = _resume(resume_from, model, optimizer, scaler, device,
                                   config)
    bar = progress_bar(max(config.num_epochs - start_epoch, 0) * steps_per_epoch,
                       progress and _is_main_process(),
                       desc=f"epoch {start_epoch + 1}/{config.num_epochs}")
    try:
        for epoch in range(start_epoch, config.num_epochs):
            bar.set_description(f"epoch {epoch + 1}/{config.num_epochs}")
            _start_epoch(train_loader, epoch)
            start = time.perf_counter()
            train = train_epoch(trained, train_loader, optimizer, config, epoch, total_steps,
                                device=device, scaler=scaler, bar=bar)
            train = distributed.global_epoch_result(train, train_loader)   # torchrun: all ranks
            val_loss, val_acc = (evaluate(model, val_loader, device) if val_loader is not None
                                 else (float("nan"), float("nan")))
            history.append(epoch=epoch + 1, train_loss=train.loss, train_acc=train.accuracy,
                           val_loss=val_loss, val_acc=val_acc, lr=train.lr,
                           seconds=time.perf_counter() - start)
            bar.set_postfix(loss=f"{train.loss:.3f}", train_acc=f"{train.accuracy:.3f}",
                            val_acc=f"{val_acc:.3f}")
            if checkpoint_path is not None and _is_main_process():
                _save(checkpoint_path, model, optimizer, scaler, history, config, metadata)
    finally:
        bar.close()
    return history
