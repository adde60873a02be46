"""The mechanical style guard: ruff and mypy, configured in ``pyproject.toml``, find nothing.

``python -m pytest`` (the README's test command) runs both, so a finding fails CI with the
findings themselves in the message. The rules and why they were chosen: CONTRIBUTING.md,
"Lint and type check". A test below also shows that each guard can fail.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINTED = ["resnet_edu", "tests", "scripts", "_ext", "benchmarks"]


def _run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *command], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def _require(module: str) -> None:
    if _run(module, "--version").returncode != 0:
        pytest.fail(f"{module} is not installed: python -m pip install -r requirements.txt")


def test_ruff_finds_nothing():
    _require("ruff")
    done = _run("ruff", "check", "--output-format", "concise", *LINTED)
    assert done.returncode == 0, "ruff findings:\n" + done.stdout + done.stderr


def test_mypy_finds_nothing():
    _require("mypy")
    done = _run("mypy")   # files, strictness and per-module overrides: pyproject.toml
    assert done.returncode == 0, "mypy findings:\n" + done.stdout + done.stderr


def test_the_guards_can_fail(tmp_path):
    """The same configuration, on a file with one finding for each tool, reports it."""
    _require("ruff")
    _require("mypy")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    package = tmp_path / "resnet_edu"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""\
        import os


        def half(n: int) -> int:
            try:
                return n // 2
            except Exception:
                return "none"
        """))
    lint = _run("ruff", "check", "--output-format", "concise", "resnet_edu", cwd=tmp_path)
    assert lint.returncode == 1 and "F401" in lint.stdout and "BLE001" in lint.stdout, lint.stdout
    types = _run("mypy", cwd=tmp_path)
    assert types.returncode == 1 and "[return-value]" in types.stdout, types.stdout
