"""What ``train --resume CHECKPOINT`` means, checked before any work.

A checkpoint written by ``train`` records its run: the model, the data, every setting
that decides which steps are taken (``config``: epochs, learning rate and schedule,
batch, seed, label smoothing, lr scaling), the number of processes and the epochs
done. Resuming continues *that* run to its planned end, as a torchrun elastic restart
expects: the steps taken are exactly those of the run never interrupted. So the flags
that decide the steps (``RUN_FLAGS`` and ``--batch-size``) default to the checkpoint's
values and may only repeat them; the speed options (``--device``, ``--precision``,
``--channels-last``, ``--compile``, ``--sync-batchnorm``) are this command's, as for a
new run. ``--batch-size`` is per process: the run's global batch (per-process batch
times processes) is what must stay, so a 2-process run resumes in one process with
twice the per-process batch. A run whose epochs are all done trains nothing.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any, Dict, Optional

from .errors import EXIT_USAGE, CommandError
from .paths import input_file

# flag, attribute of the parsed arguments, key in the checkpoint's config (None: metadata)
RUN_FLAGS = (("--model", "model", None), ("--data", "data", None),
             ("--epochs", "epochs", "num_epochs"), ("--lr", "lr", "lr"),
             ("--seed", "seed", "seed"), ("--label-smoothing", "label_smoothing",
                                          "label_smoothing"),
             ("--scale-lr", "scale_lr", "scale_lr"))


@dataclass(frozen=True)
class SavedRun:
    """The run recorded in a checkpoint."""

    path: str
    model: Optional[str]        # None: written by fit() without the command's metadata
    data: Optional[str]
    config: Dict[str, Any]      # the TrainConfig fields it was trained with
    done: int                   # epochs finished
    processes: int              # processes that trained it (torchrun); 1 otherwise

    @property
    def planned(self) -> int:
        return int(self.config["num_epochs"])

    @property
    def global_batch(self) -> int:
        return int(self.config["batch_size"]) * self.processes

    def saved(self, key: Optional[str], attr: str) -> Any:
        return getattr(self, attr) if key is None else self.config.get(key)


def read_run(path_text: str) -> SavedRun:
    """The run in ``path_text``, or a usage error saying what the file is not."""
    from ..checkpoint import load_checkpoint

    path = input_file(path_text, what="checkpoint to resume from")
    try:
        state = load_checkpoint(path)
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    meta = state.get("metadata") if isinstance(state.get("metadata"), dict) else {}
    config = meta.get("config")
    if not (isinstance(config, dict) and isinstance(meta.get("epoch"), int)
            and {"num_epochs", "batch_size"} <= set(config) and "optimizer" in state):
        raise CommandError(f"{path_text!r} holds a model's weights but no training run to "
                           f"continue (no optimizer state, epoch count or settings): --resume "
                           f"takes a checkpoint written by 'python -m resnet_edu train' or "
                           f"resnet_edu.train.fit", EXIT_USAGE)
    return SavedRun(path_text, meta.get("model_name"), meta.get("data_name"), config,
                    meta["epoch"], int(meta.get("processes", 1)))


def _same(given: Any, saved: Any) -> bool:
    if isinstance(given, float) or isinstance(saved, float):
        return math.isclose(float(given), float(saved), rel_tol=1e-9, abs_tol=0.0)
    return given == saved


def _differs(run: SavedRun, flag: str, given: Any, saved: Any) -> CommandError:
    def show(value: Any) -> str:
        return f"{value:g}" if isinstance(value, float) else str(value)

    return CommandError(
        f"{flag} {show(given)} differs from the run in {run.path!r} ({flag} {show(saved)}, "
        f"{run.done} of {run.planned} epochs done): --resume continues a run to its planned "
        f"end with its own settings; leave {flag} out, or start a new run without --resume",
        EXIT_USAGE)


def settle_flags(args: argparse.Namespace, run: SavedRun, world: int) -> None:
    """Give the unset run flags of ``args`` the checkpoint's values; refuse a given flag
    that differs. ``world``: the processes of this command (torchrun's WORLD_SIZE)."""
    for flag, attr, key in RUN_FLAGS:
        saved, given = run.saved(key, attr), getattr(args, attr)
        if saved is None:                       # not recorded: the flag or its default
            continue
        if given is None:
            setattr(args, attr, saved)
        elif not _same(given, saved):
            raise _differs(run, flag, given, saved)
    _settle_batch(args, run, world)
    if run.config.get("scale_lr") == "linear" and world != run.processes:
        raise CommandError(f"{run.path!r} was trained by {run.processes} process(es) with "
                           f"--scale-lr linear, whose learning rate grows with the number of "
                           f"processes: resume it with {run.processes} (torchrun "
                           f"--nproc_per_node={run.processes})", EXIT_USAGE)


def _settle_batch(args: argparse.Namespace, run: SavedRun, world: int) -> None:
    per_process, rest = divmod(run.global_batch, world)
    how = (f"batch of {run.global_batch} images per step (--batch-size "
           f"{run.config['batch_size']} x {run.processes} process(es))")
    if rest:
        raise CommandError(f"the run in {run.path!r} has a {how}, which {world} processes "
                           f"cannot share evenly: resume it with {run.processes} process(es)",
                           EXIT_USAGE)
    if args.batch_size is None:
        args.batch_size = per_process
    elif args.batch_size != per_process:
        raise CommandError(f"--batch-size {args.batch_size} with {world} process(es) differs "
                           f"from the run in {run.path!r} ({how}): leave --batch-size out, or "
                           f"pass --batch-size {per_process}", EXIT_USAGE)


def plan_line(run: SavedRun) -> str:
    """What resuming ``run`` will do, said before it is done."""
    if run.done >= run.planned:
        return (f"resuming {run.path}: all {run.planned} epochs of its run are done; nothing "
                f"to train, evaluating its model")
    todo = (f"epoch {run.planned}" if run.done + 1 == run.planned
            else f"epochs {run.done + 1}-{run.planned}")
    return (f"resuming {run.path}: {run.done} of {run.planned} epochs done; training {todo} "
            f"with the run's settings")
