"""python -m resnet_edu summary MODEL and the top-level command line."""
import subprocess
import sys

import pytest

from resnet_edu import models, stats


def run(*args):
    return subprocess.run([sys.executable, "-m", "resnet_edu", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", ["resnet50", "resnet56", "plain20"])
def test_summary_prints_rows_and_totals(name):
    result = run("summary", name)
    assert result.returncode == 0, result.stderr
    model = models.get_model(name)
    assert f"{stats.count_parameters(model):,}" in result.stdout
    assert f"{stats.count_macs(model, models.default_input_size(name)):,}" in result.stdout
    for child, _ in model.named_children():
        assert any(line.startswith(child) for line in result.stdout.splitlines())


def test_summary_paper_placement():
    result = run("summary", "resnet50", "--stride-on", "1x1")
    assert result.returncode == 0
    assert f"{stats.count_macs(models.resnet50(stride_on='1x1')):,}" in result.stdout


def test_help_lists_every_model_name():
    result = run("summary", "--help")
    assert result.returncode == 0
    for name in models.MODEL_NAMES:
        assert name in result.stdout


@pytest.mark.parametrize("args,fragment", [
    (["summary", "resnet19"], "supported models: resnet18"),
    (["summary", "resnet20", "--input-size", "1,1,32,32"], "(N, 3, H, W)"),
    (["summary", "resnet20", "--input-size", "a,b"], "four integers"),
    (["summary", "resnet20", "--input-size", "1,3,7"], "argument --input-size: expected four"),
    (["summary", "resnet20", "--input-size", "1,3,0,8"], "(all positive)"),
    (["summary", "resnet20", "--num-classes", "0"],
     "argument --num-classes: expected a number of classes from 1 to 100,000"),
    (["summary", "resnet18", "--stride-on", "1x1"], "bottleneck models"),
    (["frobnicate"], "supported commands: summary"),
])
def test_errors_are_one_clear_line(args, fragment):
    result = run(*args)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("error: ")
    assert "input_size" not in result.stderr and "num_classes" not in result.stderr


def test_top_level_help_lists_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("summary", "check", "train", "student-notebooks", "grade"):
        assert command in result.stdout
