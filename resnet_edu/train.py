"""A small training loop: SGD with momentum, a learning-rate schedule, a progress bar.

Scope:

- :class:`TrainConfig`: every knob of a run, each default commented.
  :func:`digits_config` is the laptop preset the book uses;
  :func:`paper_cifar10_config` is He et al. (2015)'s CIFAR-10 recipe.
- :func:`fit`: trains a model on ``loaders.train``, evaluates on
  ``loaders.val`` after every epoch and returns a :class:`History` (lists per
  epoch, ready to plot). It can save a checkpoint after every epoch and resume
  from one; a resumed run continues exactly where the interrupted one stopped.
- :func:`evaluate`, :func:`predict`: loss/accuracy and predictions on a loader.
- ``python -m resnet_edu train``: :func:`cli_train`.

The loop is deliberately plain (no callbacks, no mixed precision, no
compilation) so that every line can be read next to the paper's section 4.2.

References: He, Zhang, Ren, Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016 (arXiv:1512.03385), sections 3.4 and 4.2;
Loshchilov and Hutter, "SGDR: Stochastic Gradient Descent with Warm
Restarts", ICLR 2017 (the cosine schedule).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

SCHEDULES = ("cosine", "step", "constant")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (defaults: the book's digits preset)."""

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

    def __post_init__(self):
        self.milestones = tuple(self.milestones)
        _check_config(self)


def _check_config(config: TrainConfig) -> None:
    if not isinstance(config.num_epochs, int) or config.num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive integer, got {config.num_epochs!r}")
    if not isinstance(config.batch_size, int) or config.batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {config.batch_size!r}")
    if not (isinstance(config.lr, (int, float)) and math.isfinite(config.lr) and config.lr > 0):
        raise ValueError(f"lr must be a positive number, got {config.lr!r}")
    if not 0 <= config.momentum < 1:
        raise ValueError(f"momentum must lie in [0, 1), got {config.momentum!r}")
    if config.weight_decay < 0:
        raise ValueError(f"weight_decay must not be negative, got {config.weight_decay!r}")
    if config.schedule not in SCHEDULES:
        raise ValueError(f"schedule={config.schedule!r} is not supported; choose one of "
                         f"{', '.join(repr(s) for s in SCHEDULES)}")
    if any(not 0 < m < 1 for m in config.milestones):
        raise ValueError(f"milestones are fractions of the run in (0, 1), "
                         f"got {config.milestones!r}")
    if not isinstance(config.warmup_steps, int) or config.warmup_steps < 0:
        raise ValueError(f"warmup_steps must be a non-negative integer, "
                         f"got {config.warmup_steps!r}")
    select_device(config.device, check_available=False)


def digits_config(**overrides: Any) -> TrainConfig:
    """The book's preset for ResNets on the 8x8 digits (see chapter 9)."""
    return TrainConfig(**overrides)


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


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of (0-based) ``step`` out of ``total_steps``."""
    if step < config.warmup_steps:
        return config.lr / 10
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "step":
        passed = sum(step >= round(m * total_steps) for m in config.milestones)
        return config.lr * 0.1 ** passed
    return 0.5 * config.lr * (1 + math.cos(math.pi * step / total_steps))   # cosine


class NonFiniteLossError(ValueError):
    """The training loss became NaN or infinite: the weights have diverged."""


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


@dataclass
class History:
    """What happened in each epoch; every field is a list with one entry per epoch.

    ``val_loss``/``val_acc`` are NaN when there is no validation loader;
    accuracies are fractions in [0, 1]; ``lr`` is the rate of the epoch's last step.
    """

    epoch: List[int] = field(default_factory=list)
    train_loss: List[float] = field(default_factory=list)
    train_acc: List[float] = field(default_factory=list)
    val_loss: List[float] = field(default_factory=list)
    val_acc: List[float] = field(default_factory=list)
    lr: List[float] = field(default_factory=list)
    seconds: List[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.epoch)

    def append(self, **values: float) -> None:
        for f in fields(self):
            getattr(self, f.name).append(values[f.name])

    def as_dict(self) -> Dict[str, list]:
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: Dict[str, list]) -> "History":
        return cls(**{f.name: list(values.get(f.name, [])) for f in fields(cls)})


class _NotebookLine:
    """A file for tqdm that shows only its latest line, updated in place in a notebook.

    tqdm's text bar redraws itself with carriage returns, which a notebook stores as
    one output per redraw. Without ipywidgets (which tqdm.auto would use for a widget)
    we show the bar as a single display that each redraw replaces.
    """

    encoding = "utf-8"                    # lets tqdm draw its bar with block characters

    def __init__(self):
        from IPython.display import display

        self.text = ""
        self._handle = display({"text/plain": ""}, raw=True, display_id=True)

    def write(self, text: str) -> None:
        line = text.replace("\n", "\r").split("\r")
        line = [part for part in line if part.strip()]
        if line:
            self.text = line[-1]
            if self._handle is not None:      # None outside a running kernel
                self._handle.update({"text/plain": self.text}, raw=True)

    def flush(self) -> None:
        pass


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


def _progress_bar(total: int, enabled: bool, desc: str):
    with warnings.catch_warnings():   # without ipywidgets tqdm.auto falls back to text, noisily
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
        from tqdm.notebook import tqdm as widget_tqdm
    options = dict(total=total, disable=not enabled, desc=desc, unit="step", leave=True,
                   mininterval=0.5)
    if enabled and not issubclass(tqdm, widget_tqdm) and _in_notebook():
        return tqdm(file=_NotebookLine(), **options)
    return tqdm(dynamic_ncols=True, **options)


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, device: Optional[torch.device] = None
            ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true classes (both on the CPU) for every image of ``loader``."""
    device = device or _model_device(model)
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
    device = device or _model_device(model)
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


def _train_and_val_loaders(loaders) -> Tuple[Any, Any]:
    if hasattr(loaders, "train"):
        return loaders.train, getattr(loaders, "val", None)
    if isinstance(loaders, (tuple, list)) and len(loaders) >= 1:
        return loaders[0], (loaders[1] if len(loaders) > 1 else None)
    raise TypeError("loaders must have .train and .val (resnet_edu.data.Loaders) "
                    "or be a tuple (train_loader, val_loader)")


def fit(model: nn.Module, loaders, config: Optional[TrainConfig] = None,
        progress: bool = True, checkpoint_path: Optional[str] = None,
        resume_from: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None) -> History:
    """Train ``model`` with SGD + momentum and return its :class:`History`.

    Args:
        model: any classifier mapping ``(N, C, H, W)`` images to ``(N, classes)`` logits.
        loaders: a :class:`~resnet_edu.data.Loaders` (uses ``.train`` and ``.val``)
            or a tuple ``(train_loader, val_loader)``; ``val_loader`` may be ``None``.
        config: a :class:`TrainConfig` (default: ``TrainConfig()``).
        progress: show a progress bar (tqdm: a widget in notebooks that have ipywidgets,
            otherwise one line of text redrawn in place).
        checkpoint_path: if given, save model, optimizer, history and config there
            after every epoch.
        resume_from: a checkpoint written by ``fit``; training continues at the epoch
            after the saved one (run with the same config for an identical result).
        metadata: extra plain values stored in the checkpoint (e.g. ``model_name``).

    Raises:
        NonFiniteLossError: the loss became NaN or infinite (the message says when).
    """
    from .checkpoint import load_checkpoint, save_checkpoint

    config = config or TrainConfig()
    _check_config(config)
    device = select_device(config.device)
    train_loader, val_loader = _train_and_val_loaders(loaders)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ValueError("the training loader is empty: there is nothing to train on")
    total_steps = config.num_epochs * steps_per_epoch

    torch.manual_seed(config.seed)
    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    history, start_epoch = History(), 0
    if resume_from is not None:
        state = load_checkpoint(resume_from, model, optimizer, map_location=device)
        start_epoch = int(state["metadata"].get("epoch", 0))
        history = History.from_dict(state["metadata"].get("history", {}))

    bar = _progress_bar(max(config.num_epochs - start_epoch, 0) * steps_per_epoch, progress,
                        desc=f"epoch {start_epoch + 1}/{config.num_epochs}")
    try:
        for epoch in range(start_epoch, config.num_epochs):
            bar.set_description(f"epoch {epoch + 1}/{config.num_epochs}")
            if hasattr(train_loader, "set_epoch"):
                train_loader.set_epoch(epoch)     # same batches whether resumed or not
            start = time.perf_counter()
            model.train()
            total_loss, correct, count = 0.0, 0, 0
            for i, (x, y) in enumerate(train_loader):
                step = epoch * steps_per_epoch + i
                lr = learning_rate(config, step, total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                logits = model(x)                                        # (B, num_classes)
                loss = F.cross_entropy(logits, y)
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise NonFiniteLossError(
                        f"the training loss became {loss_value} in epoch {epoch + 1}, step "
                        f"{i + 1} of {steps_per_epoch} (lr={lr:g}): the weights diverged. "
                        f"Try a lower learning rate (e.g. lr={config.lr / 10:g}), a warm-up "
                        f"(warmup_steps), and check that the inputs are normalised and "
                        f"finite.")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total_loss += loss_value * len(y)
                correct += (logits.argmax(dim=1) == y).sum().item()
                count += len(y)
                bar.update(1)
            train_loss, train_acc = total_loss / count, correct / count
            val_loss, val_acc = (evaluate(model, val_loader, device) if val_loader is not None
                                 else (float("nan"), float("nan")))
            history.append(epoch=epoch + 1, train_loss=train_loss, train_acc=train_acc,
                           val_loss=val_loss, val_acc=val_acc, lr=lr,
                           seconds=time.perf_counter() - start)
            bar.set_postfix(loss=f"{train_loss:.3f}", train_acc=f"{train_acc:.3f}",
                            val_acc=f"{val_acc:.3f}")
            if checkpoint_path is not None:
                save_checkpoint(checkpoint_path, model, optimizer, epoch=epoch + 1,
                                history=history.as_dict(), config=asdict(config),
                                **(metadata or {}))
    finally:
        bar.close()
    return history


# --------------------------------------------------------------------------------------
# python -m resnet_edu train
# --------------------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _parser(prog: str) -> argparse.ArgumentParser:
    from .data import DATASETS
    from .models import CIFAR_MODELS

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train a CIFAR-style ResNet (or its plain counterpart) and save a "
                    "checkpoint. By default: ResNet-20 on scikit-learn's embedded 8x8 "
                    "digits, which needs no download and takes a minute or less on a laptop "
                    "CPU. With --data cifar10 and no --epochs/--lr it follows the recipe "
                    "of He et al. (2015): SGD, lr 0.1 divided by 10 at 32k and 48k steps, "
                    "64k steps, batch 128, weight decay 1e-4.",
        epilog=f"example (GPU): {prog} --model resnet56 --data cifar10 --download")
    parser.add_argument("--model", default="resnet20", choices=list(CIFAR_MODELS),
                        metavar="NAME", help="network to train: "
                        f"{', '.join(CIFAR_MODELS)} (default: resnet20)")
    parser.add_argument("--data", default="digits", choices=list(DATASETS),
                        help="data set: the embedded digits (default) or CIFAR-10")
    parser.add_argument("--data-root", default="data", metavar="DIR",
                        help="where CIFAR-10 is or goes (default: ./data)")
    parser.add_argument("--download", action="store_true",
                        help="download CIFAR-10 (about 170 MB) if it is not in --data-root")
    parser.add_argument("--epochs", type=_positive_int, default=None, metavar="N",
                        help="passes over the training set (default: 20 for digits, "
                             "182 = 64k steps for CIFAR-10)")
    parser.add_argument("--lr", type=_positive_float, default=None,
                        help="initial learning rate (default: 0.1)")
    parser.add_argument("--batch-size", type=_positive_int, default=None, metavar="N",
                        help="images per step (default: 64 for digits, 128 for CIFAR-10)")
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA if available), cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the initialisation, the split and the batches (default: 0)")
    parser.add_argument("--out", default=None, metavar="PATH",
                        help="checkpoint file, saved after every epoch "
                             "(default: checkpoints/MODEL-DATA.pt)")
    parser.add_argument("--resume", default=None, metavar="PATH",
                        help="continue from a checkpoint written by this command")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def cli_train(argv: List[str], prog: str = "python -m resnet_edu train") -> int:
    """``python -m resnet_edu train``: train, print the test accuracy, save a checkpoint."""
    from .checkpoint import load_checkpoint
    from .data import get_loaders
    from .models import get_model
    from .notebook import seed_everything

    args = _parser(prog).parse_args(argv)
    try:
        device = select_device(args.device)
    except (ValueError, RuntimeError) as exc:        # unknown name, or no CUDA GPU
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    try:
        overrides = {k: v for k, v in (("num_epochs", args.epochs), ("lr", args.lr))
                     if v is not None}
        seed_everything(args.seed)
        batch_size = args.batch_size or (128 if args.data == "cifar10" else 64)
        loaders = get_loaders(args.data, batch_size=batch_size, seed=args.seed,
                              root=args.data_root, download=args.download)
        if args.data == "cifar10":
            config = paper_cifar10_config(len(loaders.train), batch_size=batch_size,
                                          seed=args.seed, device=args.device, **overrides)
        else:
            config = digits_config(batch_size=batch_size, seed=args.seed, device=args.device,
                                   **overrides)
        if args.resume is not None:
            saved = load_checkpoint(args.resume)["metadata"]
            for option, key, value in (("model", "model_name", args.model),
                                       ("data", "data_name", args.data)):
                if saved.get(key) not in (None, value):
                    raise ValueError(f"{args.resume!r} was trained with --{option} "
                                     f"{saved[key]}, not {value}; pass --{option} {saved[key]}")
        out = args.out or args.resume or f"checkpoints/{args.model}-{args.data}.pt"
        seed_everything(args.seed)
        model = get_model(args.model, num_classes=loaders.num_classes,
                          in_channels=loaders.input_shape[0])
        print(f"{args.model} ({sum(p.numel() for p in model.parameters()):,} parameters) on "
              f"{args.data}: {loaders.train.num_samples} training images, "
              f"{config.num_epochs} epochs, lr {config.lr:g}, device {device}")
        history = fit(model, loaders, config, progress=not args.no_progress,
                      checkpoint_path=out, resume_from=args.resume,
                      metadata={"model_name": args.model, "data_name": args.data})
        test_loss, test_acc = evaluate(model, loaders.test, device)
    except (FileNotFoundError, ValueError) as exc:   # missing/corrupt data, diverged loss, ...
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    if len(history) and not math.isnan(history.val_acc[-1]):
        print(f"validation accuracy after epoch {history.epoch[-1]}: "
              f"{100 * history.val_acc[-1]:.2f}%")
    print(f"test accuracy: {100 * test_acc:.2f}% ({loaders.test.num_samples} images, "
          f"loss {test_loss:.3f})")
    print(f"checkpoint saved to {out}")
    return 0
