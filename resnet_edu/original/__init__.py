"""The original post's two residual blocks, kept verbatim as museum pieces.

The book grew out of a good-faith Korean-language tutorial, "Residual Block
from ResNet - pytorch" (the original post). Its two code listings are **broken**:

* every layer is applied to the block's input ``x`` instead of to the previous
  layer's output (``out = self.conv2(x)`` where ``out = self.conv2(out)`` was
  meant), so each block returns exactly ``relu(x)``;
* consequently no parameter ever receives a gradient, conv1's work is thrown
  away, and with ``in_channels != out_channels`` the forward pass crashes;
* listing 2 additionally lets bn1 and bn2 update their running statistics from
  ``x`` in training mode although their outputs are discarded.

They are kept, unchanged (the class name ``Residual_Blcok`` included), because
chapter 5 ("The original post, debugged") examines them and
:func:`resnet_edu.diagnostics.check_block` is tested on them. Both listings use
the same class name, so each lives in its own module:

* :mod:`resnet_edu.original.listing1` - the block without BatchNorm,
* :mod:`resnet_edu.original.listing2` - the block with BatchNorm,

and this package exposes them as :data:`ResidualBlockListing1` and
:data:`ResidualBlockListing2`. For a working block use
:class:`resnet_edu.blocks.BasicBlock`.
"""
from __future__ import annotations

from pathlib import Path

from . import listing1, listing2

ResidualBlockListing1 = listing1.Residual_Blcok
ResidualBlockListing2 = listing2.Residual_Blcok

#: listing number -> the post's class
LISTINGS = {1: ResidualBlockListing1, 2: ResidualBlockListing2}

_MARKER = "# ---- the original post's code, verbatim ----\n"


def listing_source(number: int) -> str:
    """The verbatim text of the post's listing ``number`` (1 or 2)."""
    if number not in LISTINGS:
        raise ValueError(f"the original post has listings 1 and 2; got {number!r}")
    text = (Path(__file__).with_name(f"listing{number}.py")).read_text(encoding="utf-8")
    return text.split(_MARKER, 1)[1]


__all__ = ["ResidualBlockListing1", "ResidualBlockListing2", "LISTINGS", "listing_source",
           "listing1", "listing2"]
