"""``python -m resnet_edu train``: train a CIFAR-style ResNet, print its test accuracy, save it.

Everything the user can get wrong is checked before the first step: the device,
the training options on that device, the checkpoint path (written after every
epoch), the checkpoint to resume from and the data. A run that starts and then
fails (the loss diverges) exits 1; bad input exits 2 (see :mod:`resnet_edu.cli`).
"""
from __future__ import annotations

import argparse
import math
from typing import Any, Dict

from .argtypes import fraction, positive_float, positive_int
from .errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, CommandError
from .paths import input_file, output_file

DESCRIPTION = ("Train a CIFAR-style ResNet (or its plain counterpart) and save a checkpoint. "
               "By default: ResNet-20 on scikit-learn's embedded 8x8 digits, which needs no "
               "download and takes a minute or less on a laptop CPU. With --data cifar10 and "
               "no --epochs/--lr it follows the recipe of He et al. (2015): SGD, lr 0.1 "
               "divided by 10 at 32k and 48k steps, 64k steps, batch 128, weight decay 1e-4.")
EPILOG = "example (GPU): python -m resnet_edu train --model resnet56 --data cifar10 --download"


def _add_data_and_model(parser: argparse.ArgumentParser) -> None:
    from ..data import DATASETS
    from ..models import CIFAR_MODELS
    from ..train import digits_config

    digits = digits_config()
    parser.add_argument("--model", default="resnet20", choices=list(CIFAR_MODELS),
                        metavar="NAME", help="network to train: "
                        f"{', '.join(CIFAR_MODELS)} (default: resnet20)")
    parser.add_argument("--data", default="digits", choices=list(DATASETS),
                        help="data set: the embedded digits (default) or CIFAR-10")
    parser.add_argument("--data-root", default="data", metavar="DIR",
                        help="where CIFAR-10 is or goes (default: ./data)")
    parser.add_argument("--download", action="store_true",
                        help="download CIFAR-10 (about 170 MB) if it is not in --data-root")
    parser.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                        help=f"passes over the training set (default: {digits.num_epochs} for "
                             f"digits, 182 = 64k steps for CIFAR-10)")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help=f"initial learning rate (default: {digits.lr:g})")
    parser.add_argument("--batch-size", type=positive_int, default=None, metavar="N",
                        help=f"images per step (default: {digits.batch_size} for digits, "
                             f"128 for CIFAR-10)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the initialisation, the split and the batches (default: 0)")


def _add_speed_options(parser: argparse.ArgumentParser) -> None:
    from ..train import LR_SCALINGS, PRECISIONS

    parser.add_argument("--device", default="auto",
                        help="auto (CUDA if available), cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="fp32 (default); bf16: autocast to bfloat16 (CPU and CUDA); "
                             "fp16: autocast to float16 with a gradient scaler (CUDA only)")
    parser.add_argument("--channels-last", action="store_true",
                        help="store images and weights as N,H,W,C (often faster convolutions)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model (the first steps are slow)")
    parser.add_argument("--label-smoothing", type=fraction, default=None, metavar="EPS",
                        help="mix this weight of the uniform distribution into the targets "
                             "(default: 0)")
    parser.add_argument("--sync-batchnorm", action="store_true",
                        help="under torchrun on GPUs: BatchNorm statistics over all processes")
    parser.add_argument("--scale-lr", choices=LR_SCALINGS, default=None,
                        help="under torchrun: 'linear' multiplies --lr by the number of "
                             "processes, with warm-up (default: none)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_data_and_model(parser)
    _add_speed_options(parser)
    parser.add_argument("--out", default=None, metavar="PATH",
                        help="checkpoint file, saved after every epoch "
                             "(default: checkpoints/MODEL-DATA.pt)")
    parser.add_argument("--resume", default=None, metavar="PATH",
                        help="continue from a checkpoint written by this command")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


# ---------------------------------------------------------------- checks before any work
def _config_options(args: argparse.Namespace) -> Dict[str, Any]:
    """The TrainConfig values the flags set (unset flags keep the preset's defaults)."""
    options = {"num_epochs": args.epochs, "lr": args.lr, "precision": args.precision,
               "label_smoothing": args.label_smoothing, "scale_lr": args.scale_lr,
               "channels_last": args.channels_last or None, "compile": args.compile or None,
               "sync_batchnorm": args.sync_batchnorm or None}
    options = {key: value for key, value in options.items() if value is not None}
    return dict(options, seed=args.seed, device=args.device)


def _check_device_and_options(args: argparse.Namespace):
    from ..train import TrainConfig, check_device_options, select_device

    try:
        device = select_device(args.device)
        check_device_options(TrainConfig(**_config_options(args)), device)
    except (ValueError, RuntimeError) as exc:        # unknown name, no CUDA GPU, fp16 on CPU
        raise CommandError(str(exc), EXIT_USAGE) from None
    return device


def _check_resume(args: argparse.Namespace) -> None:
    """The checkpoint to resume from is readable and was trained on this model and data."""
    from ..checkpoint import load_checkpoint

    path = input_file(args.resume, what="checkpoint to resume from")
    try:
        saved = load_checkpoint(path)["metadata"]
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    for option, key, value in (("model", "model_name", args.model),
                               ("data", "data_name", args.data)):
        if saved.get(key) not in (None, value):
            raise CommandError(f"{args.resume!r} was trained with --{option} {saved[key]}, "
                               f"not {value}; pass --{option} {saved[key]}", EXIT_USAGE)


def _data_and_config(args: argparse.Namespace):
    from ..data import get_loaders
    from ..train import digits_config, paper_cifar10_config

    options = _config_options(args)
    batch_size = args.batch_size or (128 if args.data == "cifar10"
                                     else digits_config().batch_size)
    try:
        loaders = get_loaders(args.data, batch_size=batch_size, seed=args.seed,
                              root=args.data_root, download=args.download)
    except (FileNotFoundError, ValueError) as exc:   # missing or corrupt data
        raise CommandError(str(exc), EXIT_USAGE) from None
    if args.data == "cifar10":
        config = paper_cifar10_config(len(loaders.train), batch_size=batch_size, **options)
    else:
        config = digits_config(batch_size=batch_size, **options)
    return loaders, config


# ---------------------------------------------------------------- the run
def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _header(args, model, loaders, config, device) -> str:
    from ..train import distributed

    switches = [config.precision] if config.precision != "fp32" else []
    switches += [name for name in ("channels_last", "compile") if getattr(config, name)]
    if config.label_smoothing:
        switches.append(f"label smoothing {config.label_smoothing:g}")
    batch, lr = f"batch {config.batch_size}", f"lr {config.lr:g}"
    processes = distributed.world_size()
    if processes > 1:        # torchrun (DDPCH): --batch-size is per process
        batch = (f"batch {config.batch_size} per process x {processes} processes = "
                 f"{config.batch_size * processes}")
        if config.scale_lr == "linear":
            lr = (f"lr {config.lr:g} x {processes} = {config.lr * processes:g} after "
                  f"{_plural(config.warmup_steps, 'warm-up step')}")
        switches += ["SyncBatchNorm"] if config.sync_batchnorm else []
    return (f"{args.model} ({_plural(sum(p.numel() for p in model.parameters()), 'parameter')})"
            f" on {args.data}: {_plural(loaders.train.num_samples, 'training image')}, "
            f"{_plural(config.num_epochs, 'epoch')}, {batch}, "
            f"{lr}, device {device}" + "".join(f", {s}" for s in switches))


def _with_warmup(config, loaders):
    """torchrun with --scale-lr linear (DDPCH): Goyal et al.'s gradual warm-up if none is set."""
    import dataclasses

    from ..train import distributed

    if config.scale_lr != "linear" or distributed.world_size() == 1 or config.warmup_steps:
        return config
    steps = config.num_epochs * len(distributed.shard_loader(loaders.train))
    return dataclasses.replace(config, warmup_steps=distributed.default_warmup_steps(steps))


def run(args: argparse.Namespace) -> int:
    from ..train import distributed

    device = _check_device_and_options(args)
    try:   # under torchrun (DDPCH): join the process group; without torchrun nothing happens
        device = distributed.setup(device)
    except distributed.DistributedError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    try:
        return _train(args, device)
    except RuntimeError as exc:            # a collective timed out: another rank crashed
        if not distributed.is_distributed():
            raise
        raise CommandError(distributed.describe_failure(exc), EXIT_FINDINGS) from None
    finally:
        distributed.teardown()


def _train(args: argparse.Namespace, device) -> int:
    from ..models import get_model
    from ..notebook import seed_everything
    from ..train import NonFiniteLossError, distributed, evaluate, fit

    out = output_file(args.out or args.resume or f"checkpoints/{args.model}-{args.data}.pt",
                      what="checkpoint file", make_parents=True)
    if args.resume is not None:
        _check_resume(args)
    seed_everything(args.seed)
    loaders, config = _data_and_config(args)
    config = _with_warmup(config, loaders)
    seed_everything(args.seed)
    model = get_model(args.model, num_classes=loaders.num_classes,
                      in_channels=loaders.input_shape[0])
    say = print if distributed.is_main_process() else (lambda *a, **k: None)   # rank 0 only
    say(_header(args, model, loaders, config, device))
    try:
        history = fit(model, loaders, config, progress=not args.no_progress,
                      checkpoint_path=out, resume_from=args.resume,
                      metadata={"model_name": args.model, "data_name": args.data})
    except NonFiniteLossError as exc:
        raise CommandError(str(exc), EXIT_FINDINGS) from None
    test_loss, test_acc = evaluate(model, loaders.test, device)
    if len(history) and not math.isnan(history.val_acc[-1]):
        say(f"validation accuracy after epoch {history.epoch[-1]}: "
            f"{100 * history.val_acc[-1]:.2f}%")
    say(f"test accuracy: {100 * test_acc:.2f}% ({loaders.test.num_samples} images, "
        f"loss {test_loss:.3f})")
    say(f"checkpoint saved to {out}")
    return EXIT_OK
