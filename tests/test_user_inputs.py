"""Issue 25: inputs a new user types that once ended in a traceback, a wrong result or a
lost file. Each bad input must give exit 2, one ``error:`` line on stderr, no traceback,
and leave the file system as it was (nothing written, nothing removed).

The grading cases (``--timeout 1e8``, ``--out`` that is a submission) also grade the
book's own solved chapter 1 with a valid command: full marks, submission bytes unchanged.
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
import torch

from cli_errors import one_error  # tests/cli_errors.py
from resnet_edu.checkpoint import save_checkpoint
from resnet_edu.cli import main
from resnet_edu.models import get_model

REPO = Path(__file__).resolve().parents[1]


def tree(folder: Path) -> dict:
    """Every path under ``folder`` with its bytes (None for folders)."""
    return {p.relative_to(folder): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def refused(tmp_path, monkeypatch, capsys):
    """Run a command in an empty folder; assert exit 2, one error line, nothing changed."""
    monkeypatch.chdir(tmp_path)

    def run(*argv, fragments=()):
        before = tree(tmp_path)
        status = main([str(a) for a in argv])
        captured = capsys.readouterr()
        assert status == 2, captured
        assert tree(tmp_path) == before
        return one_error(captured.err, *fragments)
    return run


# ---------------------------------------------------------------- 1. train --seed
@pytest.mark.parametrize("seed", ["-1", "99999999999", "4294967296"])
def test_train_seed_out_of_range(refused, seed):
    refused("train", "--seed", seed, "--epochs", "1",
            fragments=("--seed", "0 to 4294967295", seed))


# ---------------------------------------------------------------- 2. train --resume
def test_resume_a_checkpoint_without_a_run(refused, tmp_path):
    """The issue's nometa.pt: ResNet-32 weights saved without the package's metadata."""
    save_checkpoint(tmp_path / "nometa.pt", get_model("resnet32", in_channels=1))
    refused("train", "--resume", "nometa.pt",
            fragments=("'nometa.pt' holds a model's weights but no training run",))


def _not_checkpoints(folder: Path) -> dict:
    (folder / "text.pt").write_text("not a checkpoint\n")
    torch.save(get_model("resnet20", in_channels=1), folder / "whole_model.pt")
    good = folder / "good.pt"
    torch.save({"model": {"w": torch.ones(2)}}, good)
    (folder / "cut.pt").write_bytes(good.read_bytes()[:200])
    return {"text.pt": "not a PyTorch file at all",
            "whole_model.pt": "holds Python objects other than tensors and plain values",
            "cut.pt": "damaged or truncated"}


def test_resume_says_what_the_file_is_not(refused, tmp_path):
    for name, words in _not_checkpoints(tmp_path).items():
        line = refused("train", "--resume", name, fragments=(words,))
        assert "weights_only" not in line                   # never PyTorch's unsafe advice


# ---------------------------------------------------------------- 3. --download offline
def test_download_without_network_in_process(refused, monkeypatch):
    """torchvision's downloader fails as it does offline, after it made the folder and
    began the file: the command says so in one line and removes both."""
    import torchvision.datasets.utils as tv_utils

    def offline(url, root, filename=None, md5=None):
        os.makedirs(root, exist_ok=True)
        Path(root, filename).write_bytes(b"partial")
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    monkeypatch.setattr(tv_utils, "download_url", offline)
    refused("train", "--data", "cifar10", "--download", "--data-root", "data/cifar",
            fragments=("could not download CIFAR-10", "Network is unreachable",
                       "check the network"))


def test_download_without_network_from_the_shell(tmp_path):
    """The real download path, pointed at a proxy on a closed local port: urllib fails
    in-process (connection refused), nothing leaves this machine."""
    with __import__("socket").socket() as s:      # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proxy = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=str(REPO), http_proxy=proxy, https_proxy=proxy,
               HTTP_PROXY=proxy, HTTPS_PROXY=proxy, no_proxy="", NO_PROXY="")
    result = subprocess.run([sys.executable, "-m", "resnet_edu", "train", "--data", "cifar10",
                             "--download", "--data-root", "d", "--out", "ck/x.pt"],
                            cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2, result.stderr
    one_error(result.stderr, "could not download CIFAR-10", "refused")
    assert list(tmp_path.iterdir()) == []        # no data folder, no partial archive, no ck/


# ---------------------------------------------------------------- 4, 5. summary and check sizes
def test_summary_refuses_a_huge_number_of_classes(refused):
    refused("summary", "resnet50", "--num-classes", "10000000000",
            fragments=("--num-classes", "1 to 100,000"))


def test_summary_refuses_a_huge_input(refused):
    refused("summary", "resnet50", "--input-size", "100000,3,224,224",
            fragments=("--input-size 100000,3,224,224 has 15,052,800,000 values",))


GOOD_BLOCK = "from resnet_edu.blocks import BasicBlock as Good\n"


def test_check_refuses_a_huge_input_and_seed(refused, tmp_path):
    (tmp_path / "good_block.py").write_text(GOOD_BLOCK)
    refused("check", "good_block.py:Good", "--args", "16", "16", "--input-shape",
            "100000,16,256,256", fragments=("104,857,600,000 values",))
    refused("check", "good_block.py:Good", "--args", "16", "16", "--input-shape", "2,16,8,8",
            "--seed", "999999999999999999999999", fragments=("argument --seed",))


# ---------------------------------------------------------------- 6. check: sys.exit, a folder
def test_check_a_file_that_exits(refused, tmp_path):
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(3)\n")
    refused("check", "exits.py:X", "--input-shape", "2,16,8,8",
            fragments=("importing exits.py called sys.exit(3)",))
    (tmp_path / "builds.py").write_text(
        "import sys, torch.nn as nn\nclass X(nn.Module):\n"
        "    def __init__(self):\n        sys.exit('no')\n")
    refused("check", "builds.py:X", "--input-shape", "2,16,8,8",
            fragments=("building X called sys.exit('no')",))


def test_check_a_folder(refused, tmp_path):
    (tmp_path / "emptydir").mkdir()
    refused("check", "emptydir", "--input-shape", "2,16,8,8",
            fragments=("'emptydir' is a folder",))


# ---------------------------------------------------------------- 7. student-notebooks
def test_student_notebooks_refuse_files_that_are_not_notebooks(refused, tmp_path):
    (tmp_path / "junk.ipynb").write_text('{"not": "a notebook"}')
    (tmp_path / "text.ipynb").write_text("just text\n")
    refused("student-notebooks", "out", "junk.ipynb",
            fragments=("'junk.ipynb' is not a readable Jupyter notebook",))
    refused("student-notebooks", "out", "text.ipynb",
            fragments=("'text.ipynb' is not a readable Jupyter notebook", "JSON"))
    # one bad notebook among good ones: still nothing written
    shutil.copy(REPO / "book" / "01_convolution.ipynb", tmp_path)
    refused("student-notebooks", "out", "01_convolution.ipynb", "junk.ipynb")


def test_student_notebooks_force_after_the_folder(tmp_path, capsys):
    """argparse took ``full --force NOTEBOOK`` as two positional groups; options may now
    come anywhere."""
    out = tmp_path / "full"
    assert main(["student-notebooks", str(out), "--force",
                 str(REPO / "book" / "01_convolution.ipynb")]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["01_convolution.ipynb",
                                                      "resnet_edu_manifest.json"]


# ---------------------------------------------------------------- confusing messages
def test_out_in_proc_says_why(refused):
    line = refused("train", "--out", "/proc/x", fragments=("'/proc' is not writable",))
    assert "No such file" not in line


def test_divergence_names_the_flags(tmp_path, capsys):
    status = main(["train", "--lr", "1e6", "--epochs", "1", "--no-progress",
                   "--out", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert status == 1
    line = one_error(err, "the weights diverged", "--lr 100000")
    assert "lr=" not in line and "warmup" not in line


def test_summary_rows_in_run_order(capsys):
    """preact_resnet110 defines relu before the stages but runs it last: rows follow the
    forward pass, recorded here by hooks independently of resnet_edu.stats."""
    model, ran = get_model("preact_resnet110"), []
    for name, child in model.named_children():
        child.register_forward_hook(lambda *_, name=name: ran.append(name))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    assert main(["summary", "preact_resnet110"]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[3:-2]]
    assert rows == list(dict.fromkeys(ran)) and rows.index("relu") > rows.index("layer3")


# ---------------------------------------------------------------- 8, 9. grade (slow: one run)
@pytest.fixture
def submissions(tmp_path):
    folder = tmp_path / "bob"
    folder.mkdir()
    shutil.copy(REPO / "book" / "01_convolution.ipynb", folder / "01_convolution.ipynb")
    return folder


def test_grade_bad_timeout_and_out_then_full_marks(submissions, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    notebook = submissions / "01_convolution.ipynb"
    before = tree(tmp_path)
    for argv, words in [
            (["--timeout", "1e8"], "at most 86400 (one day)"),
            (["--timeout", "inf"], "at most 86400"),
            (["--out", "bob/01_convolution.ipynb"], "is one of the submitted notebooks"),
            (["--out", "bob/results.csv"], "lies inside 'bob'"),
            (["--out", "bob/../bob/01_convolution.ipynb"], "is one of the submitted")]:
        target = ["bob/01_convolution.ipynb"] if "bob/results.csv" not in argv else ["bob"]
        assert main(["grade", *target, *argv]) == 2, argv
        one_error(capsys.readouterr().err, words)
        assert tree(tmp_path) == before                       # the submission's bytes too
    assert main(["grade", "bob", "--timeout", "600", "--out", "results.csv"]) == 0
    capsys.readouterr()
    with open(tmp_path / "results.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["status"] == "passed" for r in rows), rows
    assert sum(float(r["score"]) for r in rows) == sum(float(r["max_score"]) for r in rows) > 0
    assert notebook.read_bytes() == (REPO / "book" / "01_convolution.ipynb").read_bytes()
