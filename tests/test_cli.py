"""The dispatcher of resnet_edu.cli and its path checks (resnet_edu.cli.paths)."""
from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

import pytest

import resnet_edu.cli as cli
from resnet_edu.cli import errors, paths
from resnet_edu.cli.errors import CommandError

REPO = Path(__file__).resolve().parents[1]


def test_top_level_help_lists_commands_and_exit_codes(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out
    assert "exit codes:" in out and "failed run" in out
    assert "\n  0  ok\n" in out and "\n  1  findings" in out and "\n  2  usage or bad input" in out


def test_exit_code_constants():
    assert (errors.EXIT_OK, errors.EXIT_FINDINGS, errors.EXIT_USAGE) == (0, 1, 2)
    assert CommandError("x").code == 2 and CommandError("x", 1).code == 1


def test_unknown_command_is_a_usage_error(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert capsys.readouterr().err == ("error: unknown command 'frobnicate'; supported "
                                       f"commands: {', '.join(cli.COMMANDS)}\n")


@pytest.fixture
def fake_command(monkeypatch):
    """A command module, registered under the name 'fake', that does what a test says."""
    module = types.ModuleType("fake_command_module")
    module.DESCRIPTION = "a fake command"
    module.add_arguments = lambda parser: parser.add_argument("--code", type=int, default=0)

    def run(args):
        if args.code:
            raise CommandError(f"failed with {args.code}", args.code)
        print("ran")
        return 0

    module.run = run
    monkeypatch.setitem(sys.modules, "fake_command_module", module)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("fake_command_module", "a fake command"))
    return module


def test_command_errors_are_caught_in_one_place(fake_command, capsys):
    assert cli.main(["fake"]) == 0 and capsys.readouterr().out == "ran\n"
    assert cli.main(["fake", "--code", "1"]) == 1
    assert capsys.readouterr().err == "error: failed with 1\n"
    assert cli.main(["fake", "--code", "2"]) == 2


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_adds_the_traceback_behind_an_error(fake_command, capsys, monkeypatch, where):
    from resnet_edu import debug

    monkeypatch.setenv(debug.DEBUG_VARIABLE, "0")   # restored (unset) after the test
    assert cli.main(["fake", "--code", "1"]) == 1
    assert "Traceback" not in capsys.readouterr().err        # without it: the one line
    argv = ["--debug", "fake", "--code", "1"] if where == "before" else \
        ["fake", "--code", "1", "--debug"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "in run" in err and "CommandError" in err
    assert err.endswith("error: failed with 1\n")
    assert debug.debugging()     # and the processes it starts see it (the variable is set)


def test_argparse_errors_use_the_same_prefix_and_exit_2(fake_command, capsys):
    assert cli.main(["fake", "--code", "x"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("usage: python -m resnet_edu fake")
    assert err[-1] == "error: argument --code: invalid int value: 'x'"
    assert cli.main(["fake", "--help"]) == 0
    assert "a fake command" in capsys.readouterr().out


def test_commands_are_imported_lazily():
    code = ("import sys, resnet_edu.cli as c; c.main(['--help']); "
            "print(sorted(m for m in sys.modules if m.startswith('resnet_edu.cli.')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['resnet_edu.cli.errors']"


def test_every_command_module_has_the_interface():
    import importlib

    for module_name, text in cli.COMMANDS.values():
        assert text and len(text) < 90
        module = importlib.import_module(module_name)
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        assert isinstance(module.DESCRIPTION, str) and callable(module.run)


# ---------------------------------------------------------------- paths
def test_output_file_accepts_new_and_existing_files(tmp_path):
    assert paths.output_file(tmp_path / "a.pt") == tmp_path / "a.pt"
    (tmp_path / "b.pt").write_text("old")
    assert paths.output_file(tmp_path / "b.pt") == tmp_path / "b.pt"
    deep = tmp_path / "x" / "y" / "c.pt"
    with pytest.raises(CommandError, match="does not exist"):
        paths.output_file(deep)
    assert not (tmp_path / "x").exists()
    assert paths.output_file(deep, make_parents=True) == deep and deep.parent.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.pt", "x"]      # no probe left


@pytest.mark.parametrize("make", ["folder", "under_file", "proc"])
def test_output_file_refusals(make, tmp_path):
    target = {"folder": tmp_path, "under_file": tmp_path / "f.txt" / "a.pt",
              "proc": Path("/proc/a.pt")}[make]
    (tmp_path / "f.txt").write_text("")
    with pytest.raises(CommandError) as info:
        paths.output_file(target, what="report", make_parents=True)
    assert info.value.code == 2 and "report" in info.value.message
    assert "\n" not in info.value.message


def test_output_file_in_a_read_only_folder(tmp_path, monkeypatch):
    # as root every folder is writable, so the refusal of the probe file is simulated
    def refuse(**kwargs):
        raise PermissionError(13, "Permission denied")

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(paths.tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(CommandError, match=r"folder '.*/ro' is not writable \(Permission "):
        paths.output_file(tmp_path / "ro" / "a.csv")
    with pytest.raises(CommandError, match=r"'.*/ro' is not writable"):    # nearest folder
        paths.output_file(tmp_path / "ro" / "new" / "a.csv", make_parents=True)
    assert not (tmp_path / "ro" / "new").exists()


def test_output_dir(tmp_path):
    new = tmp_path / "new" / "out"
    assert paths.output_dir(new) == new and new.is_dir()
    (new / "x.ipynb").write_text("{}")
    with pytest.raises(CommandError, match=r"not empty.*--force"):
        paths.output_dir(new)
    assert paths.output_dir(new, force=True) == new
    with pytest.raises(CommandError, match="is a file, not a folder"):
        paths.output_dir(new / "x.ipynb")
    with pytest.raises(CommandError, match="is a file, not a folder"):
        paths.output_dir(new / "x.ipynb" / "deeper")


def test_input_file(tmp_path):
    (tmp_path / "block.py").write_text("")
    assert paths.input_file(tmp_path / "block.py", suffixes=(".py",)) == tmp_path / "block.py"
    for target, words in ((tmp_path / "none.py", "does not exist"), (tmp_path, "not a file")):
        with pytest.raises(CommandError, match=words):
            paths.input_file(target)
    (tmp_path / "block.txt").write_text("")
    with pytest.raises(CommandError, match=r"must end in .py"):
        paths.input_file(tmp_path / "block.txt", suffixes=(".py",))
