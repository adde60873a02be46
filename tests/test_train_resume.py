"""``train --resume``: a resumed run continues the checkpoint's own run to its planned end.

Cases (issue 25): resuming early (epochs left: trains them and ends exactly where the
uninterrupted run ended), on time (every planned epoch done: trains nothing, says so, the
file stays as it was) and past the end (``--epochs`` below what is done: refused); a flag
that differs from the run is refused in the command's words; the global batch survives a
change in the number of processes; under torchrun a bad checkpoint is one line, exit 2.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cli_errors import one_error  # tests/cli_errors.py
from resnet_edu.checkpoint import load_checkpoint
from resnet_edu.cli import main
from resnet_edu.train import loop

REPO = Path(__file__).resolve().parents[1]


def train(*argv) -> int:
    return main(["train", "--no-progress", *map(str, argv)])


class _Stop(Exception):
    """Stands for a crash right after a checkpoint was written."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-epoch run straight through, and the same run stopped after epoch 1."""
    folder = tmp_path_factory.mktemp("runs")
    assert train("--epochs", "2", "--out", folder / "straight.pt") == 0
    original = loop._save

    def save_then_stop(*args, **kwargs):
        original(*args, **kwargs)
        raise _Stop

    loop._save = save_then_stop
    try:
        with pytest.raises(_Stop):
            train("--epochs", "2", "--out", folder / "stopped.pt")
    finally:
        loop._save = original
    return folder


def test_resume_early_finishes_the_planned_run_exactly(runs, tmp_path, capsys):
    path = tmp_path / "run.pt"
    path.write_bytes((runs / "stopped.pt").read_bytes())
    assert load_checkpoint(path)["metadata"]["epoch"] == 1
    capsys.readouterr()
    assert train("--resume", path) == 0                    # no --epochs: the run's own 2
    lines = capsys.readouterr().out.splitlines()
    assert ", 2 epochs," in lines[0]
    assert lines[1] == (f"resuming {path}: 1 of 2 epochs done; training epoch 2 with the "
                        f"run's settings")
    assert lines[-1] == f"checkpoint saved to {path}"
    resumed, straight = load_checkpoint(path), load_checkpoint(runs / "straight.pt")
    assert resumed["metadata"]["history"]["epoch"] == [1, 2]
    for name, value in straight["model"].items():
        assert torch.equal(resumed["model"][name], value), name


def test_resume_on_time_trains_nothing_and_says_so(runs, capsys):
    path = runs / "straight.pt"
    before = path.read_bytes()
    assert train("--resume", path, "--epochs", "2") == 0   # repeating a setting is fine
    out = capsys.readouterr().out
    assert (f"resuming {path}: all 2 epochs of its run are done; nothing to train, "
            f"evaluating its model") in out
    assert "test accuracy:" in out and out.splitlines()[-1] == f"checkpoint unchanged: {path}"
    assert path.read_bytes() == before


@pytest.mark.parametrize("argv, words", [
    (["--epochs", "1"], "--epochs 1 differs from the run in"),            # past the end
    (["--epochs", "20"], "--epochs 20 differs from the run in"),
    (["--lr", "0.1"], "--lr 0.1 differs from the run in"),
    (["--seed", "1"], "--seed 1 differs"),
    (["--model", "resnet32"], "--model resnet32 differs"),
    (["--batch-size", "32"], "pass --batch-size 64"),
])
def test_resume_refuses_other_settings_in_flag_words(runs, capsys, argv, words):
    path = runs / "straight.pt"
    before = path.read_bytes()
    assert train("--resume", path, *argv) == 2
    line = one_error(capsys.readouterr().err, words)
    if argv[0] != "--batch-size":
        flag = argv[0]
        assert f"({flag} " in line and "2 of 2 epochs done" in line and "num_epochs" not in line
    assert path.read_bytes() == before


def test_resume_keeps_the_global_batch_across_process_counts(runs, tmp_path, capsys):
    """A checkpoint of 2 processes x batch 32 resumes in one process with batch 64."""
    state = torch.load(runs / "straight.pt", weights_only=True)
    state["metadata"]["processes"] = 2
    state["metadata"]["config"]["batch_size"] = 32
    path = tmp_path / "two.pt"
    torch.save(state, path)
    assert train("--resume", path) == 0
    assert ", batch 64," in capsys.readouterr().out.splitlines()[0]
    assert train("--resume", path, "--batch-size", "32") == 2
    one_error(capsys.readouterr().err, "--batch-size 32 with 1 process(es)",
              "--batch-size 32 x 2 process(es)", "pass --batch-size 64")
    state["metadata"]["config"]["scale_lr"] = "linear"
    torch.save(state, path)
    assert train("--resume", path) == 2
    one_error(capsys.readouterr().err, "--scale-lr linear", "--nproc_per_node=2")


def test_fit_refuses_another_config_with_python_names(runs):
    from resnet_edu.data import digits_loaders
    from resnet_edu.models import get_model
    from resnet_edu.train import digits_config, fit

    model = get_model("resnet20", in_channels=1)
    with pytest.raises(ValueError, match=r"num_epochs=3 \(the checkpoint's: 2\)"):
        fit(model, digits_loaders(), digits_config(num_epochs=3), progress=False,
            resume_from=runs / "straight.pt")


def test_usage_error_under_torchrun_is_one_line_and_exit_2(tmp_path):
    """Every rank checks its input before the process group starts; only LOCAL_RANK 0
    prints. torchrun then reports the failed workers (its own summary, exit 1)."""
    (tmp_path / "notckpt.pt").write_text("hello\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             "--nproc_per_node=2", "-m", "resnet_edu", "train", "--resume",
                             "notckpt.pt"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert ours == ["error: 'notckpt.pt' is not a readable resnet_edu checkpoint: it is not a "
                    "PyTorch file at all (neither a zip archive nor a pickle)"], result.stderr
    assert "distributed training failed" not in result.stderr
    assert "exitcode  : 2" in result.stderr or "exitcode: 2" in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notckpt.pt"]
