"""``python -m resnet_edu train``: train a CIFAR-style ResNet, print its test accuracy, save it.

Everything the user can get wrong is checked before the first step, and under
torchrun before the processes join their group: the device, the training options on
that device, the checkpoint to resume from (and its run's settings against the
flags, :mod:`resnet_edu.cli.resume`), the checkpoint path (written after every
epoch) and the data. A run that starts and then fails (the loss diverges) exits 1;
bad input exits 2 (see :mod:`resnet_edu.cli`).
"""
from __future__ import annotations

import argparse
import math
import textwrap
from dataclasses import dataclass
from typing import Any, Dict, Optional

from .argtypes import MAX_SEED, fraction, positive_float, positive_int, seed
from .errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, CommandError
from .paths import output_file

DESCRIPTION = ("Train a CIFAR-style ResNet (or its plain counterpart) and save a checkpoint. "
               "By default: ResNet-20 on scikit-learn's embedded 8x8 digits, which needs no "
               "download and takes a minute or less on a laptop CPU. With --data cifar10 and "
               "no --epochs/--lr it follows the recipe of He et al. (2015): SGD, lr 0.1 "
               "divided by 10 at 32k and 48k steps, 64k steps, batch 128, weight decay 1e-4.")
EPILOG = """--resume CHECKPOINT continues the run recorded in CHECKPOINT to its planned end, exactly
as if it had never stopped (what torchrun's elastic restarts expect): --model, --data,
--epochs, --lr, --seed, --label-smoothing, --scale-lr and the batch (--batch-size times the
number of processes) default to the run's own and may only repeat them; the device and
speed options may change. A run whose epochs are all done trains nothing and is evaluated.
The checkpoint is updated in place unless --out names another file.

example (GPU): python -m resnet_edu train --model resnet56 --data cifar10 --download"""


def _add_data_and_model(parser: argparse.ArgumentParser) -> None:
    from ..data import DATASETS
    from ..models import CIFAR_MODELS
    from ..train import digits_config

    digits = digits_config()
    parser.add_argument("--model", default=None, choices=list(CIFAR_MODELS),
                        metavar="NAME", help="network to train: "
                        f"{', '.join(CIFAR_MODELS)} (default: resnet20)")
    parser.add_argument("--data", default=None, choices=list(DATASETS),
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
    parser.add_argument("--seed", type=seed, default=None,
                        help=f"seed of the initialisation, the split and the batches, 0 to "
                             f"{MAX_SEED} (default: 0)")


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
    parser.formatter_class = argparse.RawDescriptionHelpFormatter    # the epilog's lines
    parser.description = textwrap.fill(DESCRIPTION, width=88)
    _add_data_and_model(parser)
    _add_speed_options(parser)
    parser.add_argument("--out", default=None, metavar="PATH",
                        help="checkpoint file, saved after every epoch "
                             "(default: checkpoints/MODEL-DATA.pt)")
    parser.add_argument("--resume", default=None, metavar="PATH",
                        help="continue the run saved in a checkpoint written by this command "
                             "to its planned end (see below)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


# ---------------------------------------------------------------- checks before any work
@dataclass
class Plan:
    """Everything a run needs, checked and built before the first step."""

    device: Any
    out: Any                    # the checkpoint file to write
    loaders: Any
    config: Any                 # the TrainConfig
    model: Any
    resumed: Optional[Any]      # resume.SavedRun, or None for a new run


def _speed_options(args: argparse.Namespace) -> Dict[str, Any]:
    """The TrainConfig values of the speed flags (how the steps are computed)."""
    return {"device": args.device, "precision": args.precision or "fp32",
            "channels_last": args.channels_last, "compile": args.compile,
            "sync_batchnorm": args.sync_batchnorm}


def _run_options(args: argparse.Namespace) -> Dict[str, Any]:
    """The TrainConfig values the run flags set (unset flags keep the preset's defaults)."""
    options = {"num_epochs": args.epochs, "lr": args.lr,
               "label_smoothing": args.label_smoothing, "scale_lr": args.scale_lr}
    return {key: value for key, value in options.items() if value is not None}


def _check_device_and_options(args: argparse.Namespace):
    from ..train import TrainConfig, check_device_options, select_device

    try:
        device = select_device(args.device)
        check_device_options(TrainConfig(**_speed_options(args)), device)
    except (ValueError, RuntimeError) as exc:        # unknown name, no CUDA GPU, fp16 on CPU
        raise CommandError(str(exc), EXIT_USAGE) from None
    return device


def _settle(args: argparse.Namespace):
    """Read the run to resume (if any) and fill the flags left unset."""
    from ..train import distributed
    from . import resume

    resumed = None
    if args.resume is not None:
        resumed = resume.read_run(args.resume)
        resume.settle_flags(args, resumed, distributed.planned_world_size())
    args.model, args.data = args.model or "resnet20", args.data or "digits"
    args.seed = 0 if args.seed is None else args.seed
    return resumed


def _data_and_config(args: argparse.Namespace, resumed):
    from ..data import get_loaders
    from ..train import TrainConfig, digits_config, paper_cifar10_config

    batch_size = args.batch_size or (128 if args.data == "cifar10"
                                     else digits_config().batch_size)
    try:
        loaders = get_loaders(args.data, batch_size=batch_size, seed=args.seed,
                              root=args.data_root, download=args.download)
    except (OSError, ValueError) as exc:   # missing or corrupt data, a failed download
        raise CommandError(str(exc), EXIT_USAGE) from None
    options = dict(_run_options(args), **_speed_options(args), seed=args.seed)
    if resumed is not None:                # the run's own settings, this command's speed
        try:
            return loaders, TrainConfig(**{**resumed.config, **_speed_options(args),
                                           "batch_size": batch_size})
        except (TypeError, ValueError) as exc:
            raise CommandError(f"{args.resume!r} holds settings this version cannot use: "
                               f"{exc}", EXIT_USAGE) from None
    if args.data == "cifar10":
        return loaders, paper_cifar10_config(len(loaders.train), batch_size=batch_size,
                                             **options)
    return loaders, digits_config(batch_size=batch_size, **options)


def _model(args: argparse.Namespace, loaders, resumed):
    """The network, seeded; when resuming, with the checkpoint's weights (which must fit)."""
    from ..checkpoint import load_checkpoint
    from ..models import get_model
    from ..notebook import seed_everything

    seed_everything(args.seed)
    model = get_model(args.model, num_classes=loaders.num_classes,
                      in_channels=loaders.input_shape[0])
    if resumed is not None:
        try:
            load_checkpoint(resumed.path, model)
        except RuntimeError as exc:        # load_state_dict: missing, unexpected, wrong shape
            raise CommandError(f"the weights in {resumed.path!r} do not fit --model "
                               f"{args.model} on --data {args.data}: "
                               f"{str(exc).strip().splitlines()[-1].strip()}",
                               EXIT_USAGE) from None
    return model


def _prepare(args: argparse.Namespace) -> Plan:
    """Check every input and build the run, in the order the user would fix them."""
    from ..notebook import seed_everything

    device = _check_device_and_options(args)
    resumed = _settle(args)
    out = output_file(args.out or args.resume or f"checkpoints/{args.model}-{args.data}.pt",
                      what="checkpoint file", make_parents=True, create_parents=False)
    seed_everything(args.seed)
    loaders, config = _data_and_config(args, resumed)
    return Plan(device, out, loaders, config, _model(args, loaders, resumed), resumed)


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


def _diverged(exc, config) -> CommandError:
    """The loop's NonFiniteLossError in the command's words (its flags, not config fields)."""
    return CommandError(f"the training loss became {exc.value} in epoch {exc.epoch}, step "
                        f"{exc.step} of {exc.steps} (learning rate {exc.lr:g}): the weights "
                        f"diverged. Train again with a lower --lr (for example --lr "
                        f"{config.lr / 10:g})", EXIT_FINDINGS)


def run(args: argparse.Namespace) -> int:
    from ..train import distributed

    plan = _prepare(args)  # under torchrun: every rank checks its input before the group starts
    try:   # under torchrun (DDPCH): join the process group; without torchrun nothing happens
        plan.device = distributed.setup(plan.device)
    except distributed.DistributedError as exc:
        raise CommandError(str(exc), EXIT_USAGE, every_rank=True) from None
    try:
        return _train(args, plan)
    except RuntimeError as exc:            # a collective timed out: another rank crashed
        if not distributed.is_distributed():
            raise
        raise CommandError(distributed.describe_failure(exc), EXIT_FINDINGS,
                           every_rank=True) from None
    finally:
        distributed.teardown()


def _train(args: argparse.Namespace, plan: Plan) -> int:
    from ..train import NonFiniteLossError, distributed, evaluate, fit
    from . import resume

    config = _with_warmup(plan.config, plan.loaders)
    say = print if distributed.is_main_process() else (lambda *a, **k: None)   # rank 0 only
    say(_header(args, plan.model, plan.loaders, config, plan.device))
    if plan.resumed is not None:
        say(resume.plan_line(plan.resumed))
    try:
        history = fit(plan.model, plan.loaders, config, progress=not args.no_progress,
                      checkpoint_path=plan.out, resume_from=args.resume,
                      metadata={"model_name": args.model, "data_name": args.data,
                                "processes": distributed.world_size()})
    except NonFiniteLossError as exc:
        raise _diverged(exc, config) from None
    test_loss, test_acc = evaluate(plan.model, plan.loaders.test, plan.device)
    if len(history) and not math.isnan(history.val_acc[-1]):
        say(f"validation accuracy after epoch {history.epoch[-1]}: "
            f"{100 * history.val_acc[-1]:.2f}%")
    say(f"test accuracy: {100 * test_acc:.2f}% ({plan.loaders.test.num_samples} images, "
        f"loss {test_loss:.3f})")
    trained = plan.resumed is None or plan.resumed.done < plan.resumed.planned
    say(f"checkpoint saved to {plan.out}" if trained else
        f"checkpoint unchanged: {args.resume}")
    return EXIT_OK
