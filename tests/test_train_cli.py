"""``python -m resnet_edu train``: options, bad input before any work, training, resume."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from resnet_edu.checkpoint import load_checkpoint
from resnet_edu.cli import main
from resnet_edu.data import digits_loaders
from resnet_edu.models import get_model
from resnet_edu.train import evaluate

_spec = importlib.util.spec_from_file_location("make_cifar",
                                               Path(__file__).with_name("make_cifar.py"))
make_cifar = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_cifar)

REPO = Path(__file__).resolve().parents[1]


def train(*argv) -> int:
    return main(["train", *map(str, argv)])


def test_help_explains_the_options(capsys):
    assert train("--help") == 0
    out = capsys.readouterr().out
    for option in ("--model", "--epochs", "--data", "--device", "--out", "--resume",
                   "--download", "resnet110", "plain20", "python -m resnet_edu train",
                   "--precision", "--channels-last", "--compile", "--label-smoothing"):
        assert option in out


@pytest.mark.parametrize("argv, words", [
    (["--model", "resnet18"], "invalid choice"),
    (["--epochs", "0"], "positive integer"),
    (["--lr", "fast"], "positive number"),
    (["--data", "mnist"], "invalid choice"),
    (["--precision", "fp8"], "invalid choice"),
    (["--label-smoothing", "1.5"], "[0, 1)"),
])
def test_bad_options_are_usage_errors(argv, words, capsys):
    assert train(*argv) == 2
    err = capsys.readouterr().err
    assert words in err and "error: " in err and "Traceback" not in err


def test_missing_cuda_and_missing_data_are_bad_input(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert train("--device", "cuda") == 2
    assert "no CUDA GPU" in capsys.readouterr().err
    assert train("--data", "cifar10", "--data-root", tmp_path, "--out", tmp_path / "c.pt") == 2
    assert "--download" in capsys.readouterr().err


def test_fp16_on_cpu_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "x.pt"
    assert train("--device", "cpu", "--precision", "fp16", "--out", out) == 2
    err = capsys.readouterr().err
    assert "precision='fp16' needs a CUDA GPU" in err and "bf16" in err
    assert not out.exists()


def _bad_out_cases(tmp_path: Path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    a_folder = tmp_path / "checkpoints"
    a_folder.mkdir()
    return [
        ("/proc/x.pt", "not writable"),                                   # issue 15
        (str(a_file / "x.pt"), "is a file, not a folder"),
        (str(a_folder), "is an existing folder"),
    ]


@pytest.mark.parametrize("case", range(3))
def test_unusable_out_paths_fail_in_one_line_before_training(case, tmp_path, capsys):
    out, words = _bad_out_cases(tmp_path)[case]
    before = set(tmp_path.rglob("*"))
    assert train("--epochs", "1", "--no-progress", "--out", out) == 2
    captured = capsys.readouterr()
    assert captured.out == ""                                   # no header: nothing started
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
    assert set(tmp_path.rglob("*")) == before                   # no .tmp, no probe file left


def test_missing_resume_file_is_bad_input(tmp_path, capsys):
    assert train("--resume", tmp_path / "nope.pt") == 2
    assert "does not exist" in capsys.readouterr().err


def test_header_says_1_epoch_not_1_epochs(tmp_path, capsys):
    assert train("--model", "resnet20", "--epochs", "1", "--no-progress",
                 "--out", tmp_path / "a" / "r20.pt") == 0          # missing folders are made
    header = capsys.readouterr().out.splitlines()[0]
    assert " 1 epoch," in header and "1 epochs" not in header
    assert (tmp_path / "a" / "r20.pt").is_file()
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["r20.pt"]


def test_trains_saves_and_resumes(tmp_path, capsys):
    out = tmp_path / "r20.pt"
    assert train("--epochs", "1", "--no-progress", "--out", out) == 0
    printed = capsys.readouterr().out
    state = load_checkpoint(out)
    assert state["metadata"]["model_name"] == "resnet20" and state["metadata"]["epoch"] == 1
    # the printed test accuracy is the saved model's
    model = get_model("resnet20", in_channels=1)
    load_checkpoint(out, model)
    _, acc = evaluate(model, digits_loaders().test)
    assert f"test accuracy: {100 * acc:.2f}%" in printed
    # a finished run resumed for more epochs is another run: refused, file untouched
    # (tests/test_train_resume.py covers resuming early, on time and past the end)
    before = out.read_bytes()
    assert train("--epochs", "2", "--no-progress", "--resume", out) == 2
    assert "(--epochs 1, 1 of 1 epochs done)" in capsys.readouterr().err
    # a checkpoint of another model is refused with a hint, before any work
    assert train("--model", "resnet32", "--resume", out) == 2
    assert "--model resnet20" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_on_offline_cifar_archive(tmp_path, capsys):
    root = make_cifar.write_cifar10(tmp_path / "data", per_batch=20, test_size=30)
    out = tmp_path / "plain.pt"
    assert train("--model", "plain20", "--data", "cifar10", "--data-root", root,
                 "--epochs", "1", "--no-progress", "--out", out) == 0
    printed = capsys.readouterr().out
    assert "test accuracy:" in printed and "(30 images" in printed
    state = load_checkpoint(out)
    assert state["metadata"]["config"]["schedule"] == "step"          # the paper's recipe
    assert state["model"]["conv1.weight"].shape == (16, 3, 3, 3)


def test_python_dash_m_dispatches_to_train():
    result = subprocess.run([sys.executable, "-m", "resnet_edu", "train", "--help"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m resnet_edu train")


def test_bad_out_path_from_the_shell(tmp_path):
    """The issue's case, as a new user runs it: one line on stderr, exit 2, no traceback."""
    (tmp_path / "checkpoints").mkdir()
    result = subprocess.run([sys.executable, "-m", "resnet_edu", "train", "--out",
                             "checkpoints"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env={**__import__("os").environ,
                                              "PYTHONPATH": str(REPO)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: the checkpoint file 'checkpoints' is an existing folder, not a file; give "
        "the path of a file (for example one inside that folder)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]


def test_speed_options_reach_the_config(tmp_path, capsys):
    out = tmp_path / "fast.pt"
    assert train("--epochs", "1", "--no-progress", "--device", "cpu", "--precision", "bf16",
                 "--channels-last", "--label-smoothing", "0.1", "--out", out) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.endswith("device cpu, bf16, channels_last, label smoothing 0.1")
    config = load_checkpoint(out)["metadata"]["config"]
    assert (config["precision"], config["channels_last"], config["label_smoothing"],
            config["compile"]) == ("bf16", True, 0.1, False)
