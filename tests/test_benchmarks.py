"""The benchmark scripts run end to end at their smallest settings (no timing is asserted:
timings belong to the benchmarks, not to the tests)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_fast_paths_quick_runs_and_reports_every_eager_path():
    done = _run("benchmarks/fast_paths.py", "--quick")
    assert done.returncode == 0, done.stderr
    for path in ("torchvision", "resnet_edu", "channels_last", "bf16", "cl+bf16"):
        assert f"\n{path} " in done.stdout, done.stdout
    assert "compile" not in done.stdout.split("speed-up")[1].split("fastest")[0]   # --quick skips it
    assert "fastest path:" in done.stdout and "bf16 matrix units:" in done.stdout


def test_fast_paths_rejects_a_bad_size():
    done = _run("benchmarks/fast_paths.py", "--batch-size", "0")
    assert done.returncode == 2 and "--batch-size must be a positive integer" in done.stderr


def test_digits_vs_svm_tunes_the_svm_on_one_seed():
    done = _run("benchmarks/digits_vs_svm.py", "--models", "svm", "--seed", "0", "--folds", "2",
                "--grid", "small")
    assert done.returncode == 0, done.stderr
    assert "SVM      mean" in done.stdout


def test_digits_recipe_prints_the_svm_bar_and_a_candidate_on_validation():
    done = _run("benchmarks/digits_recipe.py", "--seed", "0",
                "--candidate", "resnet20 num_epochs=1 lr=0.05")
    assert done.returncode == 0, done.stderr
    bar, candidate = done.stdout.splitlines()
    assert bar.startswith("tuned RBF SVM (the bar)") and "val acc mean" in bar
    assert candidate.startswith("resnet20 num_epochs=1 lr=0.05") and "val loss" in candidate


def test_sandbox_cost_times_confined_and_unconfined_processes():
    from resnet_edu.classroom.sandbox import availability

    done = _run("benchmarks/sandbox_cost.py", "--pairs", "2", "--runs", "0")
    if not availability()[0] and not os.environ.get("CI"):
        assert done.returncode == 2 and "no sandbox" in done.stderr
        return
    assert done.returncode == 0, done.stderr
    for line in ("confined    median", "unconfined  median", "added       median"):
        assert line in done.stdout, done.stdout


def test_digits_depth_trains_one_depth_and_writes_its_record(tmp_path):
    out = tmp_path / "depth.json"
    done = _run("benchmarks/digits_depth.py", "--depths", "8", "--seeds", "0", "--epochs", "1",
                "--out", str(out))
    assert done.returncode == 0, done.stderr
    record, = json.loads(out.read_text())["runs"]
    assert (record["depth"], record["seed"], record["num_epochs"]) == (8, 0, 1)
    assert 0 <= record["test_acc"] <= 1 and "ResNet-8   seed 0" in done.stdout


def test_digits_depth_rejects_a_depth_that_is_not_6n_plus_2():
    done = _run("benchmarks/digits_depth.py", "--depths", "9")
    assert done.returncode == 2 and done.stderr.startswith("error: --depths must be 6n+2")
