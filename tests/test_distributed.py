"""Tests of data-parallel training (resnet_edu.train.distributed) under real torchrun.

Every multi-process test launches ``python -m torch.distributed.run`` (= torchrun)
with two gloo processes on 127.0.0.1, one thread each, and a wall-clock timeout,
so a hang fails the test instead of stalling the suite.

Reference for the equivalence: one process that accumulates the gradients of
the same two micro-batches (BatchNorm statistics computed per micro-batch, as
each DDP process does) and takes the same SGD steps.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from resnet_edu.checkpoint import load_checkpoint
from resnet_edu.data import TensorLoader
from resnet_edu.models import cifar_resnet
from resnet_edu.train import TrainConfig, distributed, learning_rate

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600     # per torchrun launch: a healthy one takes seconds (minutes on a busy CI box)
# float32 sums in a different order (all-reduce vs. one process adding two gradients):
# after 4 SGD steps the parameters agree to ~1e-7; 1e-5 leaves room for other CPUs.
EQUIVALENCE_ATOL = 1e-5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(args, tmp_path: Path, env=None, timeout=TIMEOUT_S, port=None,
             standalone=False) -> subprocess.CompletedProcess:
    """Run ``torchrun --nproc_per_node=2 ARGS`` on 127.0.0.1 (a free port unless given)."""
    where = (["--standalone"] if standalone else
             ["--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={port or free_port()}"])
    # the worker imports this test module: its folder joins the repository on PYTHONPATH
    full_env = dict(os.environ, OMP_NUM_THREADS="1",
                    PYTHONPATH=os.pathsep.join([str(REPO), str(Path(__file__).parent)]),
                    **(env or {}))
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", *where,
                           "--nproc_per_node=2", *args], cwd=tmp_path, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def toy_data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(64, 1, 8, 8, generator=g), torch.randint(0, 10, (64,), generator=g)


CONFIG = dict(num_epochs=1, lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="cosine",
              device="cpu", seed=0)
PER_PROCESS_BATCH = 8

WORKER = textwrap.dedent("""
    import sys, torch
    from test_distributed import toy_data, CONFIG, PER_PROCESS_BATCH
    from resnet_edu.data import TensorLoader
    from resnet_edu.models import cifar_resnet
    from resnet_edu.train import TrainConfig, fit
    images, labels = toy_data()
    torch.manual_seed(0)
    model = cifar_resnet(8, in_channels=1)
    loader = TensorLoader(images, labels, batch_size=PER_PROCESS_BATCH, shuffle=True, seed=3)
    fit(model, (loader, None), TrainConfig(**CONFIG), progress=False,
        checkpoint_path=sys.argv[1])
""")


def accumulate_reference(ghost: bool) -> torch.nn.Module:
    """One process, global batch 16 = two micro-batches of 8, gradients accumulated.

    ``ghost=True``: BatchNorm sees each micro-batch alone (what DDP does);
    ``ghost=False``: it sees the whole global batch (what SyncBatchNorm does).
    """
    images, labels = toy_data()
    torch.manual_seed(0)
    model = cifar_resnet(8, in_channels=1).train()
    config = TrainConfig(**CONFIG)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    loader = TensorLoader(images, labels, batch_size=2 * PER_PROCESS_BATCH, shuffle=True, seed=3)
    for step, (x, y) in enumerate(loader):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step, len(loader))
        optimizer.zero_grad()
        if ghost:
            for xs, ys in zip(x.chunk(2), y.chunk(2)):
                (F.cross_entropy(model(xs), ys) / 2).backward()
        else:
            F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model


def max_param_diff(state, model) -> float:
    return max((state[name] - p).abs().max().item() for name, p in model.named_parameters())


def test_two_processes_equal_one_accumulating_process(tmp_path):
    (tmp_path / "worker.py").write_text(WORKER)
    result = torchrun(["worker.py", str(tmp_path / "ddp.pt")], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    state = load_checkpoint(tmp_path / "ddp.pt")["model"]
    ghost = max_param_diff(state, accumulate_reference(ghost=True))
    whole = max_param_diff(state, accumulate_reference(ghost=False))
    assert ghost < EQUIVALENCE_ATOL, ghost
    # the comparison can tell the two BatchNorm behaviours apart
    assert whole > 100 * EQUIVALENCE_ATOL, whole


def test_sharded_loader_splits_the_global_batch():
    images, labels = toy_data()
    images, labels = images[:37], labels[:37]          # 37 = 2 global batches of 16 + 5
    loader = TensorLoader(images, labels, batch_size=8, shuffle=True, seed=5)
    shards = [distributed.ShardedLoader(loader, r, 2) for r in range(2)]
    whole = TensorLoader(images, labels, batch_size=16, shuffle=True, seed=5)
    for epoch in (0, 3):
        for s in shards + [whole]:
            s.set_epoch(epoch)
        parts = [list(s) for s in shards]
        assert len(parts[0]) == len(parts[1]) == len(shards[0]) == 3
        for (x, y), (x0, y0), (x1, y1) in zip(whole, *parts):
            assert torch.equal(torch.cat([x0, x1]), x) and torch.equal(torch.cat([y0, y1]), y)
        assert [len(y) for _, y in parts[0]] == [8, 8, 3] and len(parts[1][2][1]) == 2
    # a last global batch smaller than the number of ranks is skipped by every rank
    # (35 images = one global batch of 4 x 8 + 3 left over for 4 ranks)
    loader = TensorLoader(images[:35], labels[:35], batch_size=8, shuffle=True, seed=5)
    tiny = [distributed.ShardedLoader(loader, r, 4) for r in range(4)]
    assert [len(list(s)) for s in tiny] == [len(s) for s in tiny] == [1, 1, 1, 1]


# ---------------------------------------------------------------- the command line under torchrun
def train_command(*args):
    return ["-m", "resnet_edu", "train", "--no-progress", *args]


def test_cli_prints_once_saves_one_checkpoint_and_resumes(tmp_path):
    """One 2-epoch run; its epoch-1 checkpoint, copied as it appears, is resumed under
    torchrun and must end where the uninterrupted run ended."""
    from resnet_edu.models import get_model

    checkpoint, interrupted = tmp_path / "ck" / "run.pt", tmp_path / "interrupted.pt"
    args = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1",
            "--master_addr=127.0.0.1", f"--master_port={free_port()}", "--nproc_per_node=2",
            *train_command("--epochs", "2", "--out", "ck/run.pt")]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    with subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as run:
        deadline = time.monotonic() + TIMEOUT_S
        while not interrupted.exists() and run.poll() is None and time.monotonic() < deadline:
            if checkpoint.exists():      # written by rename: never half a file
                state = torch.load(checkpoint, weights_only=True)
                if state["metadata"]["epoch"] == 1:
                    torch.save(state, interrupted)
            time.sleep(0.02)
        stdout, stderr = run.communicate(timeout=max(deadline - time.monotonic(), 1))
    assert run.returncode == 0, stderr[-3000:]
    lines = stdout.splitlines()
    assert sum("training images" in line for line in lines) == 1, stdout
    assert "batch 64 per process x 2 processes = 128" in stdout
    assert sum(line.startswith("test accuracy") for line in lines) == 1, stdout
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["run.pt"]
    straight = torch.load(checkpoint, weights_only=True)
    assert straight["metadata"]["epoch"] == 2
    load_checkpoint(checkpoint, get_model("resnet20", num_classes=10, in_channels=1))  # strict

    assert interrupted.exists(), "the epoch-1 checkpoint was never seen"
    resumed = torchrun(train_command("--epochs", "2", "--resume", "interrupted.pt"), tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.count("test accuracy") == 1
    again = load_checkpoint(interrupted)
    assert again["metadata"]["epoch"] == 2
    assert again["metadata"]["history"]["epoch"] == [1, 2]
    for name, value in straight["model"].items():   # resuming continues exactly
        assert torch.equal(again["model"][name], value), name


def test_without_torchrun_nothing_is_distributed():
    assert not distributed.launched_by_torchrun()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main_process()) == \
        (0, 1, True)
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap_model(model, torch.device("cpu")) is model
    loader = TensorLoader(*toy_data(), batch_size=8)
    assert distributed.shard_loader(loader) is loader
    assert distributed.setup(torch.device("cpu")) == torch.device("cpu")
    assert not distributed.is_distributed()


# ---------------------------------------------------------------- faults
FAULTY = textwrap.dedent("""
    import sys, time, torch
    from resnet_edu.train import distributed
    distributed.setup(torch.device("cpu"))
    if distributed.rank() == 1:
        if sys.argv[1] == "crash":
            raise RuntimeError("rank 1 fails on purpose")
        time.sleep(900)                                   # hangs without exiting
    try:
        for _ in range(3):
            torch.distributed.all_reduce(torch.ones(4))
    except RuntimeError as exc:
        print("error:", distributed.describe_failure(exc, distributed.collective_timeout_s()),
              file=sys.stderr)
        sys.exit(1)
""")


@pytest.mark.parametrize("fault", ["crash", "hang"])
def test_a_failing_rank_ends_the_job_with_a_clear_message(tmp_path, fault):
    (tmp_path / "faulty.py").write_text(FAULTY)
    start = time.monotonic()
    result = torchrun(["faulty.py", fault], tmp_path, env={distributed.TIMEOUT_ENV: "5"})
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    assert elapsed < 450, elapsed                         # not the 900 s of the hanging rank
    expected = ("rank 1 fails on purpose" if fault == "crash" else
                "rank 0: the other processes did not answer within 5 s")
    assert expected in result.stderr, result.stderr[-3000:]


def busy_port():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server, server.getsockname()[1]


def test_a_busy_port_fails_clearly(tmp_path):
    server, port = busy_port()
    with server:
        # torchrun's own rendezvous refuses the port (its last line names it)
        (tmp_path / "noop.py").write_text("pass\n")
        result = torchrun(["noop.py"], tmp_path, port=port)
        assert result.returncode != 0
        last = result.stderr.strip().splitlines()[-1]
        assert "address already in use" in last and str(port) in last, last
        # a process that is told its rank by hand (no torchrun agent) gets our sentence
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), RANK="0",
                   WORLD_SIZE="2", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port))
        result = subprocess.run([sys.executable, *train_command("--epochs", "1", "--out",
                                                                "run.pt", "--device", "cpu")],
                                cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=TIMEOUT_S)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip() == (
        f"error: rank 0: port {port} on 127.0.0.1 is already in use, probably by another "
        f"training job. Pass a free port (torchrun --master_port=PORT) or let torchrun pick "
        f"one (--standalone).")
    assert not (tmp_path / "run.pt").exists()
