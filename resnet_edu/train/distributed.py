"""Data-parallel training with PyTorch's own engine: torchrun + DistributedDataParallel.

Scope:

- Who am I: :func:`launched_by_torchrun`, :func:`is_distributed`, :func:`rank`,
  :func:`world_size`, :func:`is_main_process` (all safe to call without torchrun:
  then there is one process, rank 0 of 1).
- :func:`setup` / :func:`teardown`: join the process group that torchrun
  describes in its environment variables (``RANK``, ``WORLD_SIZE``,
  ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``): gloo on the CPU, NCCL on
  CUDA GPUs, with a timeout on every collective so that a rank that hangs or
  dies ends the job with a clear message instead of a silent wait.
- :class:`ShardedLoader`: each rank's part of every global batch. The global
  batch is the one a single process would draw with ``batch_size * world_size``
  (same seeded order, same augmentation); rank ``r`` trains on its ``r``-th
  slice. So a run with 2 processes of batch 64 sees exactly the data of one
  process with batch 128, which is what makes the two comparable.
- :func:`wrap_model`: ``DistributedDataParallel``, optionally with
  ``SyncBatchNorm`` (CUDA only; the learning-rate rule for many processes,
  Goyal et al. 2017, is :func:`resnet_edu.train.learning_rate`'s ``world_size``).

What DDP does: every process holds the same model; after ``loss.backward()``
the gradients are averaged over all processes by all-reduce, bucketed so that
the communication of the last layers' gradients overlaps the backward pass of
the first layers. Every process then takes the same optimizer step, so the
replicas stay identical without ever sending weights.

References: Li et al., "PyTorch Distributed: Experiences on Accelerating Data
Parallel Training", VLDB 2020; Goyal et al., "Accurate, Large Minibatch SGD:
Training ImageNet in 1 Hour", arXiv:1706.02677, 2017.
"""
from __future__ import annotations

import copy
import math
import os
from datetime import timedelta
from typing import Any, Iterator, Optional, Tuple

import torch
import torch.distributed as dist
from torch import nn

# Seconds a collective (all-reduce, barrier) may wait for the other ranks before
# failing. Long enough for a checkpoint save or a validation pass on rank 0,
# short enough that a hung job does not sit for NCCL's default of 10 minutes.
DEFAULT_TIMEOUT_S = 300.0
TIMEOUT_ENV = "RESNET_EDU_DIST_TIMEOUT"      # overrides DEFAULT_TIMEOUT_S (seconds)
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
_ADDRESS_IN_USE = ("EADDRINUSE", "address already in use")


class DistributedError(RuntimeError):
    """Joining the process group or a collective failed (message says why and what to do)."""


# --------------------------------------------------------------------------------------
# Who am I
# --------------------------------------------------------------------------------------
def launched_by_torchrun() -> bool:
    """True inside a process started by ``torchrun`` (its environment names a rank)."""
    return all(name in os.environ for name in _TORCHRUN_VARS)


def is_distributed() -> bool:
    """True once :func:`setup` (or ``init_process_group``) has joined a process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in ``0 .. world_size() - 1`` (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of training processes (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Rank 0: the one process that prints, logs and writes checkpoints."""
    return rank() == 0


def planned_world_size() -> int:
    """The number of processes torchrun started (``WORLD_SIZE``), known before joining the
    process group, so that the command line can check its input first; 1 without torchrun."""
    if not launched_by_torchrun():
        return 1
    try:
        return max(int(os.environ["WORLD_SIZE"]), 1)
    except ValueError:
        return 1


def local_rank() -> int:
    """This process's index on its own machine (picks its GPU); 0 without torchrun."""
    return int(os.environ.get("LOCAL_RANK", 0))


def collective_timeout_s() -> float:
    """The collective timeout: ``$RESNET_EDU_DIST_TIMEOUT`` seconds, else 300."""
    text = os.environ.get(TIMEOUT_ENV)
    if text is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{TIMEOUT_ENV}={text!r}: expected a positive number of seconds")
    return value


# --------------------------------------------------------------------------------------
# Joining and leaving the process group
# --------------------------------------------------------------------------------------
def setup(device: torch.device, timeout_s: Optional[float] = None) -> torch.device:
    """Join torchrun's process group; return the device this rank trains on.

    Does nothing (and returns ``device``) when the process was not started by
    torchrun; joins only once. On CUDA each rank takes the GPU ``LOCAL_RANK``
    (whatever the index asked for) and talks NCCL; on the CPU the ranks talk gloo.
    """
    if not launched_by_torchrun():
        return device
    if device.type == "cuda":
        if local_rank() >= torch.cuda.device_count():
            raise DistributedError(
                f"LOCAL_RANK {local_rank()} needs GPU {local_rank()}, but only "
                f"{torch.cuda.device_count()} are visible: start at most that many processes "
                f"per machine (torchrun --nproc_per_node={torch.cuda.device_count()})")
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    if is_distributed():
        return device
    timeout_s = collective_timeout_s() if timeout_s is None else timeout_s
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    # the store's socket, a peer that never came (DistStoreError and DistNetworkError are
    # RuntimeErrors), a bad MASTER_ADDR/PORT (ValueError, OSError)
    except (RuntimeError, ValueError, OSError) as exc:
        raise DistributedError(describe_failure(exc, timeout_s)) from exc
    return device


def teardown() -> None:
    """Leave the process group (safe to call when there is none)."""
    if is_distributed():
        dist.destroy_process_group()


def describe_failure(exc: BaseException, timeout_s: Optional[float] = None) -> str:
    """One plain sentence for a failed rendezvous or collective, naming the likely cause."""
    text = str(exc)
    where = f"rank {rank() if is_distributed() else os.environ.get('RANK', '?')}"
    if any(marker in text for marker in _ADDRESS_IN_USE):
        port = os.environ.get("MASTER_PORT", "?")
        return (f"{where}: port {port} on {os.environ.get('MASTER_ADDR', '?')} is already in "
                f"use, probably by another training job. Pass a free port "
                f"(torchrun --master_port=PORT) or let torchrun pick one (--standalone).")
    if "timed out" in text.lower() or "timeout" in text.lower():
        limit = f"{timeout_s:g} s" if timeout_s else "the collective timeout"
        return (f"{where}: the other processes did not answer within {limit}: one of them "
                f"crashed or hangs (its own message, above, says why). Raise the limit with "
                f"{TIMEOUT_ENV}=SECONDS if a step legitimately takes that long.")
    return f"{where}: distributed training failed ({type(exc).__name__}: {text.strip()[:300]})"


# --------------------------------------------------------------------------------------
# Each rank's shard of every epoch
# --------------------------------------------------------------------------------------
class ShardedLoader:
    """Rank ``rank``'s slice of each global batch of ``batch_size * world_size`` images.

    ``loader`` is a :class:`~resnet_edu.data.TensorLoader` (or any loader with
    ``batch_size``, ``set_epoch`` and ``num_samples``) whose ``batch_size`` is
    the per-process batch. A copy of it with the global batch size draws the
    seeded order and augmentation of each epoch, identical on every rank; the
    global batch is cut into ``world_size`` consecutive slices. The last,
    smaller global batch is cut as evenly as possible; if it holds fewer images
    than there are ranks it is skipped (every rank must take the same number
    of steps, or the all-reduce would wait forever).
    """

    def __init__(self, loader: Any, rank: int, world_size: int):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in 0..{world_size - 1}, got {rank}")
        self.rank, self.world_size = rank, world_size
        self.batch_size = loader.batch_size                         # per process
        self.global_loader = copy.copy(loader)
        self.global_loader.batch_size = loader.batch_size * world_size

    def set_epoch(self, epoch: int) -> None:
        self.global_loader.set_epoch(epoch)

    @property
    def num_samples(self) -> int:
        return self.global_loader.num_samples

    def __len__(self) -> int:
        steps = len(self.global_loader)
        last = self.num_samples - (steps - 1) * self.global_loader.batch_size
        return steps - (last < self.world_size)

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        for step, (x, y) in enumerate(self.global_loader):
            if step == len(self):                                   # too small to share
                return
            yield (torch.tensor_split(x, self.world_size)[self.rank],
                   torch.tensor_split(y, self.world_size)[self.rank])

    @property
    def shard_samples(self) -> int:
        """Images this rank trains on in one epoch."""
        steps, big = len(self), self.global_loader.batch_size
        if steps == 0:
            return 0
        last = min(self.num_samples - (steps - 1) * big, big)          # the last global batch
        return (steps - 1) * self.batch_size + len(range(self.rank, last, self.world_size))

    def __repr__(self) -> str:
        return (f"ShardedLoader(rank {self.rank} of {self.world_size}, "
                f"{self.batch_size} of every {self.global_loader.batch_size} images)")


def global_epoch_result(result: Any, loader: Any) -> Any:
    """``result`` (a namedtuple with ``loss`` and ``accuracy``, means over this rank's
    shard) with both turned into means over every rank's images (one all-reduce)."""
    if not is_distributed() or not isinstance(loader, ShardedLoader):
        return result
    count = float(loader.shard_samples)
    totals = torch.tensor([result.loss * count, result.accuracy * count, count],
                          dtype=torch.float64)
    if dist.get_backend() == "nccl":
        totals = totals.cuda()
    dist.all_reduce(totals)
    loss, correct, count = totals.tolist()
    return result._replace(loss=loss / count, accuracy=correct / count)


def default_warmup_steps(total_steps: int) -> int:
    """Goyal et al. (2017)'s warm-up, 5 of 90 epochs, as a number of steps (at least 1)."""
    return max(1, round(total_steps * 5 / 90))


def shard_loader(loader: Any) -> Any:
    """``loader`` itself in a single process, its :class:`ShardedLoader` under torchrun."""
    if world_size() == 1 or loader is None:
        return loader
    return ShardedLoader(loader, rank(), world_size())


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------
def wrap_model(model: nn.Module, device: torch.device,
               sync_batchnorm: bool = False) -> nn.Module:
    """``model`` wrapped in ``DistributedDataParallel`` (``model`` itself in one process).

    The wrapper shares ``model``'s parameters: train through the wrapper, and
    evaluate and save ``model`` itself (its ``state_dict`` has no ``module.``
    prefix, so checkpoints load into an unwrapped model). ``sync_batchnorm``
    (CUDA only, checked by :func:`resnet_edu.train.check_device_options`)
    replaces every BatchNorm by a ``SyncBatchNorm``, whose statistics are those
    of the global batch, gathered from all processes in every forward pass.
    """
    if not is_distributed():
        return model
    if sync_batchnorm:   # replaces the BatchNorm children in place: `model` stays the root
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
