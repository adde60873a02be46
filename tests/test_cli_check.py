"""`python -m resnet_edu check FILE.py:ClassName --args ... --input-shape N,C,H,W`."""
import argparse
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from resnet_edu.cli import cli_check, main
from resnet_edu.cli.argtypes import image_batch_shape, parse_shape
from resnet_edu.cli.check import parse_call_args

ROOT = Path(__file__).resolve().parents[1]

STUDENT_FILE = textwrap.dedent('''
    import torch.nn as nn
    import torch.nn.functional as F


    class GoodBlock(nn.Module):
        def __init__(self, in_channels, out_channels, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(out_channels)
            self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(out_channels)
            self.shortcut = nn.Sequential()
            if stride != 1 or in_channels != out_channels:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                    nn.BatchNorm2d(out_channels))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return F.relu(out + self.shortcut(x))


    class PlainBlock(GoodBlock):
        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            return F.relu(self.bn2(self.conv2(out)))
''')


@pytest.fixture
def student_file(tmp_path):
    path = tmp_path / "my_block.py"
    path.write_text(STUDENT_FILE)
    return path


def run(capsys, *argv):
    status = main(["check", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_correct_block_exits_0(capsys, student_file):
    status, out, err = run(capsys, f"{student_file}:GoodBlock", "--args", "8", "16",
                           "stride=2", "--input-shape", "2,8,6,6")
    assert status == 0, out + err
    assert out.startswith("✓ GoodBlock on input (2, 8, 6, 6) -> output (2, 16, 3, 3)")


def test_a_faulty_block_exits_1_and_explains(capsys, student_file):
    status, out, err = run(capsys, f"{student_file}:PlainBlock", "--args", "8", "8",
                           "--input-shape", "2,8,6,6")
    assert status == 1
    assert "no skip connection" in out and err == ""


def test_the_original_post_by_module_path(capsys):
    status, out, _ = run(capsys, "resnet_edu.original.listing2:Residual_Blcok",
                         "--args", "8, 8", "--input-shape", "2x8x6x6")
    assert status == 1
    assert "relu(x)" in out and "bn1 and bn2" in out


@pytest.mark.parametrize("target,args", [
    ("torchvision.models.resnet:BasicBlock", ["8", "8"]),
    ("resnet_edu.blocks:BasicBlock", ["8", "16", "stride=2", "shortcut=A"]),
    ("resnet_edu.blocks:Bottleneck", ["8", "4", "stride=2", "stride_on='1x1'"]),
])
def test_library_blocks_pass(capsys, target, args):
    status, out, err = run(capsys, target, "--args", *args, "--input-shape", "2,8,6,6")
    assert status == 0, out + err


def test_a_file_with_one_block_needs_no_class_name(capsys, tmp_path):
    path = tmp_path / "only.py"
    path.write_text(STUDENT_FILE.split("class PlainBlock")[0])
    status, out, _ = run(capsys, str(path), "--args", "4", "4", "--input-shape", "2,4,5,5")
    assert status == 0 and "GoodBlock" in out


def test_imports_next_to_the_student_file_work(capsys, tmp_path):
    (tmp_path / "helpers.py").write_text("import torch.nn as nn\nBN = nn.BatchNorm2d\n")
    (tmp_path / "block.py").write_text(STUDENT_FILE.replace(
        "import torch.nn as nn", "import torch.nn as nn\nfrom helpers import BN"))
    status, out, err = run(capsys, f"{tmp_path / 'block.py'}:GoodBlock", "--args", "4", "4",
                           "--input-shape", "2,4,5,5")
    assert status == 0, out + err


@pytest.mark.parametrize("argv,message", [
    (["missing.py:Block", "--input-shape", "2,3,4,4"], "'missing.py' does not exist"),
    (["{dir}:Block", "--input-shape", "2,3,4,4"], "is a folder; give a Python file"),
    (["{dir}", "--input-shape", "2,3,4,4"], "is a folder; give a Python file"),   # issue 25
    (["{dir}/notes.txt:Block", "--input-shape", "2,3,4,4"], "must end in .py"),
    (["no_such_package.blocks:Block", "--input-shape", "2,3,4,4"],
     "cannot import no_such_package.blocks: ModuleNotFoundError"),
    (["{file}:NoSuchBlock", "--input-shape", "2,3,4,4"], "GoodBlock, PlainBlock"),
    (["{file}", "--input-shape", "2,3,4,4"], "name the class"),
    (["{file}:GoodBlock", "--args", "8", "--input-shape", "2,8,4,4"], "GoodBlock(8) failed"),
    (["{file}:GoodBlock", "--args", "8", "8", "--input-shape", "2,eight,4,4"],
     "--input-shape must be integers"),
    (["{file}:GoodBlock", "--args", "8", "8", "--input-shape", "8"], "(N, C, H, W)"),
    # three numbers for a Conv2d block: the shape is wrong, not the block
    (["{file}:GoodBlock", "--args", "16", "16", "--input-shape", "2,16,8"],
     "has 3 numbers but GoodBlock uses 2-d layers"),
    (["{file}:GoodBlock", "--args", "16", "(16", "--input-shape", "2,16,8,8"],
     "cannot read --args"),
    (["{file}:GoodBlock", "--args", "8", "nn.ReLU()", "--input-shape", "2,8,4,4"],
     "not a literal"),
])
def test_usage_errors_exit_2_with_one_line(capsys, student_file, argv, message):
    argv = [a.replace("{file}", str(student_file)).replace("{dir}", str(student_file.parent))
            for a in argv]
    (student_file.parent / "notes.txt").write_text("not python")
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_input_shape_is_a_usage_error(capsys, student_file):
    status, out, err = run(capsys, f"{student_file}:GoodBlock")
    assert status == 2 and out == ""
    assert "error: the following arguments are required: --input-shape" in err


def test_a_bad_file_is_refused_before_anything_is_imported(capsys, tmp_path):
    """The block file is checked first: a broken constructor call is not even tried."""
    status, _, err = run(capsys, str(tmp_path / "nope.py") + ":Block", "--args", "8",
                         "--input-shape", "2,8,4,4")
    assert status == 2 and "does not exist" in err


def test_loading_a_file_leaves_the_import_path_alone(capsys, student_file):
    path, meta_path = list(sys.path), list(sys.meta_path)
    status, out, err = run(capsys, f"{student_file}:GoodBlock", "--args", "4", "4",
                           "--input-shape", "2,4,5,5")
    assert status == 0, out + err
    assert sys.path == path and sys.meta_path == meta_path


def test_a_constructor_that_prints_and_raises_is_one_line(capsys, tmp_path):
    (tmp_path / "loud.py").write_text(
        "import torch.nn as nn\n"
        "class Loud(nn.Module):\n"
        "    def __init__(self):\n"
        "        print('building...')\n"
        "        raise RuntimeError('no GPU here\\nsecond line')\n")
    status, out, err = run(capsys, f"{tmp_path / 'loud.py'}:Loud", "--input-shape", "2,4")
    assert status == 2 and out == ""
    assert err.strip() == "error: Loud() failed: RuntimeError: no GPU here"


def test_cli_check_from_python_is_the_same_command(capsys, student_file):
    """chapter 5 calls cli_check(argv) in a cell: same output, same exit status."""
    argv = [f"{student_file}:PlainBlock", "--args", "8", "8", "--input-shape", "2,8,6,6"]
    assert cli_check(argv) == 1
    via_function = capsys.readouterr().out
    assert run(capsys, *argv)[:2] == (1, via_function)


def test_argument_parsing():
    assert parse_call_args(["16", "32", "stride=2"]) == ([16, 32], {"stride": 2})
    assert parse_call_args(["16, 32, stride=2"]) == ([16, 32], {"stride": 2})
    assert parse_call_args(["8", "shortcut=A", "flag=True"]) == ([8], {"shortcut": "A",
                                                                      "flag": True})
    assert parse_call_args([]) == ([], {})
    assert parse_shape("2,16,8,8") == parse_shape("(2, 16, 8, 8)") == (2, 16, 8, 8)
    assert parse_shape("2x16x8x8") == (2, 16, 8, 8)
    # one grammar: summary's --input-size reads the same spellings, four positive integers
    assert image_batch_shape("1x3x32x32") == image_batch_shape("(1, 3, 32, 32)") == (1, 3, 32, 32)
    for bad in ("1,3,32", "1,3,0,32", "a,b,c,d", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="four integers"):
            image_batch_shape(bad)


def test_end_to_end_through_python_m(student_file):
    """The real entry point, exit status included."""
    base = [sys.executable, "-m", "resnet_edu", "check"]
    good = subprocess.run(base + [f"{student_file}:GoodBlock", "--args", "4", "4",
                                  "--input-shape", "2,4,5,5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = subprocess.run(base + ["resnet_edu.original.listing1:Residual_Blcok", "--args", "3",
                                 "16", "--input-shape", "2,3,8,8"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1
    assert "crashed in conv2" in bad.stdout and "16" in bad.stdout
