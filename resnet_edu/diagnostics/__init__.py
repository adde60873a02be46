"""``check_block``: find the bugs a residual block can have, in plain words.

A residual block computes ``out = F(x) + shortcut(x)`` (usually followed by a
ReLU). Most bugs in hand-written blocks do not crash: the block trains, only
worse. ``check_block(block, input_shape)`` runs a block a few times on
deterministic random inputs and reports, one sentence each:

* a forward (or backward) pass that **crashes**, with the layer and the cause
  (``conv2 expects 16 input channels but got 3``);
* **parameters that never receive a gradient** (a layer whose output is
  overwritten, detached, or a layer that is never called), and parameters that
  only ever receive zero gradients;
* a block whose **output ignores its residual branch** (it equals ``relu(x)``
  or ``x`` whatever the weights are);
* a **missing skip connection** (every path from ``x`` to the output runs
  through the branch's layers), or a skip that passes values but no gradient
  (``x.detach()``);
* a block that **modifies its input tensor in place**;
* **BatchNorm running statistics updated by a layer whose output is thrown
  away**, and a BatchNorm shared by two layers;
* results of layers that are computed and thrown away, layers created inside
  ``forward`` (never trained), outputs that change between two identical
  eval-mode calls, and outputs of the wrong kind (not a tensor, wrong batch
  size, NaN).

How: first *observe*, then *judge*. One pass of experiments (``observe.py``)
runs the block on prepared copies and records what it does into a frozen
``Observation``: the module calls, the gradients, BatchNorm statistics before
and after, the outputs and dtypes, what zeroing a layer does. Then independent
rules (``rules/``, one function per :class:`ProblemKind`) read that record.

Every experiment runs on a deep copy of the block (in float64 where the block
allows it), so checking leaves the block exactly as it was - parameters,
buffers (BatchNorm running statistics included), modes and ``requires_grad``
flags - and never touches the global random number generator. Parameters that
are all zero (a zero-initialised last BatchNorm gamma, a ReZero gate) are
replaced by random values on the copy before the numerical checks, so a
correctly zero-initialised block, whose upstream gradients are exactly zero at
initialisation, is not mistaken for a broken one: "not connected to the output"
is decided by the autograd graph, never by a gradient's value.

Only exceptions raised by the block's own code are turned into findings; a bug
in the checker is reported as "check_block could not finish" (set
``RESNET_EDU_DEBUG=1`` to see its traceback instead).

Command line, for students::

    python -m resnet_edu check my_block.py:MyBlock --args 16 32 stride=2 --input-shape 2,16,8,8

References: He et al., "Deep Residual Learning for Image Recognition" (2015);
He et al., "Identity Mappings in Deep Residual Networks" (2016).
"""
from __future__ import annotations

from ..debug import DEBUG_VARIABLE
from .check import check_block
from .report import PROBLEM_KINDS, BlockReport, Problem, ProblemKind

__all__ = ["Problem", "ProblemKind", "BlockReport", "check_block",
           "PROBLEM_KINDS", "DEBUG_VARIABLE"]

