"""Write the small synthetic notebooks that tests/test_classroom.py grades.

    python tests/classroom_fixtures/make_fixtures.py

Each notebook follows the chapter convention of CONTRIBUTING.md (setup cell, exercise,
gated solution, check cell) and uses real exercise ids of the package, so the grader's
checks are the book's checks:

- ``solved.ipynb``: two coding exercises (``ch01-conv2d-by-hand``, ``ch05-fix-the-post``)
  solved correctly (solutions written for this fixture, not the book's), a prose exercise
  with a ``{solution}`` block, and a cell after the first exercise that uses the solution.
  It is executed, so it has outputs (✓ in its check cells) like a chapter.
- ``unsolved.ipynb``: the same exercises, untouched: hand-written stubs.
- ``infinite_loop.ipynb``: the conv2d cell loops forever before its ``def`` (the cell must be
  interrupted), the block's ``forward`` loops forever (the check must be stopped).
- ``stubborn_loop.ipynb``: a correct conv2d, then a loop that swallows the interrupt
  (the grader must restart the kernel and replay the notebook without that cell).
- ``syntax_error.ipynb``: the conv2d cell has a syntax error; the block after it is correct.
- ``original_post_block.ipynb``: the block exercise ("repair the original post's block")
  answered with the original post's listing 2, verbatim, under the exercise's name.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

SETUP = '''\
# Setup: in Colab this installs resnet_edu from the book's repository; locally it does nothing.
import importlib.util, subprocess, sys
if importlib.util.find_spec("resnet_edu") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "git+https://github.com/resnet-edu/resnet-from-one-convolution@main"], check=True)
import resnet_edu
resnet_edu.setup_notebook(seed=0)'''

PROSE_EXERCISE = '''\
## Exercises

```{exercise} Why no bias?
:label: fixture-why-no-bias

Why do the convolutions of a residual block have no bias?
```

```{solution} fixture-why-no-bias
:class: dropdown

The BatchNorm after each convolution subtracts the per-channel mean, which removes any
constant the convolution adds: SECRET-PROSE-ANSWER.
```'''

CONV_EXERCISE = '''\
```{exercise} Conv2d by hand
:label: ch01-conv2d-by-hand

Write `conv2d_by_hand(x, weight, bias=None, stride=1, padding=0)` that computes what
`F.conv2d(x, weight, bias, stride=stride, padding=padding)` computes.
```'''

BLOCK_EXERCISE = '''\
```{exercise} Repair the original post's block
:label: ch05-fix-the-post

Write a class `FixedResidualBlock(in_channels, out_channels, stride=1)` computing
`relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`, with a projection shortcut when the
shape changes.
```'''

BLOCK_SOLUTION = '''\
from torch import nn


class FixedResidualBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); a 1x1 projection when the
    shape changes."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x):
        residual = self.relu(self.bn1(self.conv1(x)))
        residual = self.bn2(self.conv2(residual))
        return self.relu(residual + self.shortcut(x))'''

CONV_SOLUTION = '''\
import torch
import torch.nn.functional as F


def conv2d_by_hand(x, weight, bias=None, stride=1, padding=0):
    """Cross-correlate x (N, C_in, H, W) with weight (C_out, C_in, kH, kW)."""
    x = F.pad(x, [padding] * 4)
    _, _, h, w = x.shape
    _, _, kh, kw = weight.shape
    rows = range(0, h - kh + 1, stride)
    cols = range(0, w - kw + 1, stride)
    out = torch.stack([torch.stack([
        (x[:, None, :, i:i + kh, j:j + kw] * weight[None]).sum(dim=(2, 3, 4))
        for j in cols], dim=-1) for i in rows], dim=-2)       # (N, C_out, H_out, W_out)
    if bias is not None:
        out = out + bias[None, :, None, None]
    return out'''

USES_CONV = '''\
y = conv2d_by_hand(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 2, 2))
print(y.flatten().tolist())'''


def gate(label: str, *solution_cells):
    start = new_markdown_cell(f"```{{solution-start}} {label}\n:class: dropdown\n```")
    end = new_markdown_cell("```{solution-end}\n```")
    return [start, *solution_cells, end]


def solution(source: str):
    cell = new_code_cell(source)
    cell.metadata["tags"] = ["solution"]
    return cell


def check_cell(exercise_id: str, name: str):
    cell = new_code_cell(f'from resnet_edu.exercises import check\n\n'
                         f'check("{exercise_id}", {name})')
    cell.metadata["tags"] = ["check"]
    return cell


def notebook(title: str, conv_source: str | None, block_source: str | None, extra=()):
    setup = new_code_cell(SETUP)
    setup.metadata["tags"] = ["hide-input"]
    cells = [setup, new_markdown_cell(f"# {title}"), new_markdown_cell(PROSE_EXERCISE)]
    if conv_source is not None:
        cells += [new_markdown_cell(CONV_EXERCISE), *gate("ch01-conv2d-by-hand",
                                                          solution(conv_source)),
                  check_cell("ch01-conv2d-by-hand", "conv2d_by_hand")]
    cells += list(extra)
    if block_source is not None:
        cells += [new_markdown_cell(BLOCK_EXERCISE), *gate("ch05-fix-the-post",
                                                           solution(block_source)),
                  check_cell("ch05-fix-the-post", "FixedResidualBlock")]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    return nb


def main() -> None:
    from resnet_edu.original import listing_source

    unsolved_conv = '''\
import torch
import torch.nn.functional as F


def conv2d_by_hand(x, weight, bias=None, stride=1, padding=0):
    raise NotImplementedError("write your solution here")'''
    unsolved_block = '''\
from torch import nn


class FixedResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        raise NotImplementedError("write your solution here")

    def forward(self, x):
        raise NotImplementedError("write your solution here")'''
    looping_conv = "import torch\n\nwhile True:       # an infinite loop before the def\n" \
                   "    pass\n\n\n" + CONV_SOLUTION.split("\n\n\n", 1)[1]
    looping_block = BLOCK_SOLUTION.replace(
        "    def forward(self, x):\n",
        "    def forward(self, x):\n        while True:   # never returns\n            pass\n")
    stubborn = new_code_cell('''\
import time

while True:                 # swallows the interrupt: only a kernel restart ends it
    try:
        time.sleep(0.05)
    except KeyboardInterrupt:
        pass''')
    broken_conv = CONV_SOLUTION.replace("def conv2d_by_hand(x, weight, bias=None, stride=1, "
                                        "padding=0):", "def conv2d_by_hand(x, weight, bias=None"
                                        ", stride=1, padding=0)")
    original = listing_source(2).rstrip() + "\n\n\nFixedResidualBlock = Residual_Blcok\n"

    fixtures = {
        "solved": notebook("A solved submission", CONV_SOLUTION, BLOCK_SOLUTION,
                           extra=[new_code_cell(USES_CONV)]),
        "unsolved": notebook("An unsolved submission", unsolved_conv, unsolved_block),
        "infinite_loop": notebook("A submission that hangs", looping_conv, looping_block),
        "stubborn_loop": notebook("A loop that ignores interrupts", CONV_SOLUTION, None,
                                  extra=[stubborn]),
        "syntax_error": notebook("A syntax error", broken_conv, BLOCK_SOLUTION),
        "original_post_block": notebook("The original post's block", None, original),
    }
    for name, nb in fixtures.items():
        nbformat.validate(nb)
        if name == "solved":   # a chapter is committed executed: give it outputs
            from execute_notebooks import kernel_environment
            from nbclient import NotebookClient

            NotebookClient(nb, timeout=120, kernel_name="python3",
                           resources={"metadata": {"path": str(HERE)}}
                           ).execute(env=kernel_environment(ROOT))
        nbformat.write(nb, HERE / f"{name}.ipynb")
        print(f"wrote {HERE / name}.ipynb")


if __name__ == "__main__":
    main()
