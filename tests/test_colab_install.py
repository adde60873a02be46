"""The Colab path, proven: a chapter's setup cell installs resnet_edu where it is missing.

In Colab, the first cell of a chapter finds no ``resnet_edu`` and runs
``pip install git+<repository>@<branch>`` (both from ``_config.yml``); torch, torchvision,
NumPy, scikit-learn and matplotlib are already there. This test rebuilds that situation
offline:

1. it builds a wheel of the package from a copy of its sources (``pyproject.toml``,
   ``README.md``, ``resnet_edu/``), as pip builds one from the repository;
2. it creates a fresh virtual environment that sees every distribution installed here
   EXCEPT resnet_edu: a folder of links to this Python's site-packages, minus resnet_edu's
   files and its editable-install hook, is on the environment's path through a ``.pth``
   line (``.pth`` files inside that folder are not run, so the editable install stays
   hidden, and pip still sees torch & co. as installed: Colab's situation);
3. it checks that resnet_edu is not importable there, then runs the chapter's setup cell,
   word for word except the install target, which points at the local wheel
   (``conventions.setup_source(target=...)``; pip runs with ``--no-index
   --find-links`` through its ``PIP_*`` environment variables, so only the wheel's
   declared dependencies, already installed, can satisfy it: requirements.txt plays no part);
4. it imports the installed package from the environment and runs a ResNet-20 forward.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import nbformat
import pytest

from resnet_edu import conventions

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FILES = ("pyproject.toml", "README.md", "LICENSE")
HIDDEN = ("resnet_edu", "__editable__", "resnet-edu")     # this checkout's installed traces


def _clean_env(**extra: str) -> dict:
    """The environment without anything that would make the checkout importable."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PIP_CONFIG_FILE=os.devnull,
               **extra)
    return env


def _run(args, cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args[:4]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def build_wheel(tmp: Path) -> Path:
    src = tmp / "src"
    src.mkdir()
    for name in PACKAGE_FILES:
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "resnet_edu", src / "resnet_edu",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp / "wheels"
    # no build isolation: setuptools is installed here and the test must stay offline
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-w", wheels, src], cwd=tmp, env=_clean_env())
    (wheel,) = wheels.glob("resnet_edu-*.whl")
    return wheel


def colab_like_environment(tmp: Path) -> Path:
    """A venv that sees this Python's packages, resnet_edu excepted; returns its python."""
    shadow = tmp / "preinstalled"
    shadow.mkdir()
    sources = dict.fromkeys(Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib"))
    for folder in sources:
        for entry in folder.iterdir():
            if entry.name.startswith(HIDDEN) or entry.suffix == ".pth" \
                    or entry.name == "__pycache__" or (shadow / entry.name).exists():
                continue
            (shadow / entry.name).symlink_to(entry)
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True,
                             env=_clean_env(), check=True).stdout.strip()
    Path(purelib, "_preinstalled.pth").write_text(f"{shadow}\n", encoding="utf-8")
    return python


def test_a_chapter_setup_cell_installs_the_package_in_a_fresh_environment(tmp_path):
    chapter = conventions.chapter_notebooks(ROOT)[0]
    cell = nbformat.read(chapter, as_version=4).cells[0]
    assert cell.source == conventions.setup_source(ROOT), "run the hygiene test first"

    wheel = build_wheel(tmp_path)
    python = colab_like_environment(tmp_path)
    work = tmp_path / "work"                    # not the checkout: no resnet_edu/ in the cwd
    work.mkdir()
    env = _clean_env(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheel.parent),
                     MPLBACKEND="Agg")

    probe = "import importlib.util, torch; print(importlib.util.find_spec('resnet_edu'))"
    before = _run([python, "-c", probe], cwd=work, env=env)
    assert before.stdout.strip() == "None", f"resnet_edu is visible before the install: {before.stdout}"

    setup = conventions.setup_source(ROOT, target=str(wheel))
    assert setup.replace(str(wheel), conventions.install_target(ROOT)) == cell.source
    # the setup cell, then a cell using the package, in one process (one Colab kernel)
    use = ("\nimport torch\n"
           "from resnet_edu.models import cifar_resnet\n"
           "print(resnet_edu.__file__)\n"
           "model = cifar_resnet(20).eval()\n"
           "print(sum(p.numel() for p in model.parameters()))\n"
           "print(tuple(model(torch.randn(2, 3, 32, 32)).shape))\n")
    ran = _run([python, "-c", setup + "\n" + use], cwd=work, env=env)
    stamp, location, parameters, shape = ran.stdout.split("\n")[:4]
    assert stamp.startswith("Outputs computed with Python"), ran.stdout
    assert Path(location).is_relative_to(tmp_path / "venv"), location   # the installed copy
    # ResNet-20, option A (He et al. 2016, Table 6: 0.27M), counted by hand: 3x3 convs
    # 3*16*9 + 6*16*16*9 + (16*32 + 5*32*32)*9 + (32*64 + 5*64*64)*9 = 267,696, fc 64*10+10,
    # BatchNorm 2*(16 + 6*16 + 6*32 + 6*64) = 1,376: 269,722
    assert parameters == str(3*16*9 + 6*16*16*9 + (16*32 + 5*32*32)*9 + (32*64 + 5*64*64)*9
                             + 64*10 + 10 + 2*(16 + 6*16 + 6*32 + 6*64))
    assert shape == "(2, 10)"


@pytest.mark.parametrize("target", ['x"y', "a\\b", "a\nb"])
def test_setup_source_refuses_a_target_it_cannot_quote(target):
    with pytest.raises(ValueError, match="install target"):
        conventions.setup_source(ROOT, target=target)
