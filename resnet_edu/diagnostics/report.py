"""What ``check_block`` hands back: the problem kinds, one ``Problem``, the ``BlockReport``."""
from __future__ import annotations

import enum
import textwrap
from dataclasses import dataclass, field
from typing import List, Optional, Tuple


class ProblemKind(str, enum.Enum):
    """Every kind of problem ``check_block`` reports, in the order reports list them.

    A ``str`` subclass, so ``problem.kind == "crash"`` and ``"crash" in report.kinds``
    keep working for code written against the plain strings."""

    CRASH = "crash"                              # forward or backward pass raised
    BAD_OUTPUT = "bad_output"                    # not a tensor, wrong batch size, NaN/inf
    NO_INPUT_DEPENDENCE = "no_input_dependence"  # output does not depend on x at all
    IGNORES_BRANCH = "ignores_branch"            # output is relu(x) or x whatever the weights
    NO_SKIP = "no_skip"                          # every path from x runs through the branch
    DETACHED_SKIP = "detached_skip"              # the skip carries x but no gradient
    NO_PARAMETERS = "no_parameters"              # nothing to learn
    NO_GRADIENT = "no_gradient"                  # parameters not connected to the output
    ZERO_GRADIENT = "zero_gradient"              # connected, but the gradient is always zero
    DISCARDED_OUTPUT = "discarded_output"        # a layer's result is computed, thrown away
    DISCARDED_BN_UPDATE = "discarded_bn_update"  # BN statistics from a discarded output
    REUSED_NORM = "reused_norm"                  # one normalisation layer for two layers
    MODIFIES_INPUT = "modifies_input"            # the block changes its input in place
    LAYER_IN_FORWARD = "layer_in_forward"        # weights created in forward / unregistered
    NONDETERMINISTIC = "nondeterministic"        # two identical eval-mode calls differ

    def __str__(self) -> str:  # the plain value, as in the reports before the enum
        return self.value


#: every ``Problem.kind`` check_block can report, in report order (plain strings)
PROBLEM_KINDS = tuple(kind.value for kind in ProblemKind)
_ORDER = {kind: i for i, kind in enumerate(ProblemKind)}


@dataclass(frozen=True)
class Problem:
    """One defect: ``kind`` (a :class:`ProblemKind`), a one-sentence ``message``
    and the ``names`` of the parameters or layers involved."""

    kind: ProblemKind
    message: str
    names: Tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "kind", ProblemKind(self.kind))
        object.__setattr__(self, "names", tuple(self.names))

    def __str__(self) -> str:
        return self.message


def in_report_order(problems) -> List[Problem]:
    """Sorted by kind; problems of one kind keep the order they were found in."""
    return sorted(problems, key=lambda p: _ORDER[p.kind])


def _wrapped(text: str, first: str, rest: str, width: int) -> str:
    return textwrap.fill(text, width, initial_indent=first, subsequent_indent=rest,
                         break_long_words=False, break_on_hyphens=False)


@dataclass
class BlockReport:
    """What :func:`check_block` found. ``ok`` is True when ``problems`` is empty;
    ``notes`` are advice (a redundant bias, a shared layer) that does not make a
    block wrong."""

    block_name: str
    input_shape: Tuple[int, ...]
    output_shape: Optional[Tuple[int, ...]] = None
    problems: List[Problem] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    #: text width of ``str(report)``: fits a book page, a notebook and a terminal
    WIDTH = 86

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def kinds(self) -> List[ProblemKind]:
        """The kinds of the problems found, in report order."""
        return [p.kind for p in self.problems]

    def __str__(self) -> str:
        shape = f"input {self.input_shape}"
        if self.output_shape is not None:
            shape += f" -> output {self.output_shape}"
        if self.ok:
            lines = [f"✓ {self.block_name} on {shape}: no problems found."]
        else:
            n = len(self.problems)
            lines = [f"✗ {self.block_name} on {shape}: {n} problem{'s' if n > 1 else ''}"]
            lines += [_wrapped(str(p), f"  {i}. ", "     ", self.WIDTH)
                      for i, p in enumerate(self.problems, 1)]
        lines += [_wrapped(note, "  note: ", "        ", self.WIDTH) for note in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"BlockReport(block_name={self.block_name!r}, ok={self.ok}, "
                f"problems={[p.kind.value for p in self.problems]!r})")

    def _repr_pretty_(self, p, cycle):  # IPython/Jupyter show the readable text
        p.text(str(self))
