"""resnet_edu: the verified companion package of "ResNet from one convolution".

Every block and model here is checked against a reference: the ImageNet ResNets
load torchvision's weights key-for-key and give the same logits, the CIFAR
ResNets have the paper's exact parameter counts, and the statistics reproduce
the paper's Table 1 (He et al., 2015, arXiv:1512.03385).

Modules (one idea each):

- ``blocks``       the block protocol (``ResidualBlock``); BasicBlock, Bottleneck,
  PreActBlock, PlainBlock and the shortcut options A/B/C
- ``models``       ResNet-18..152 (torchvision-compatible), CIFAR ResNet-20..110, their
  plain and pre-activation counterparts
- ``stats``        parameter and multiply-accumulate counts per stage
- ``checkpoint``   save/load helpers that never unpickle arbitrary objects
- ``original``     the original blog post's (broken) listings, kept as museum pieces
- ``diagnostics``  ``check_block``: finds the bugs a residual block can have
- ``data``, ``cifar10``  the embedded digits data set and CIFAR-10
- ``train``        a small training loop (fast paths, ``torchrun`` data parallelism)
- ``experiments``, ``analysis``  the measurements of chapters 3-4 and 11
- ``exercises``    checks for the book's coding exercises
- ``classroom``    student notebooks and grading
- ``cli``          ``python -m resnet_edu COMMAND`` (summary, check, train, student-notebooks, grade)
- ``conventions``, ``tools``  the book's conventions and its maintenance tools
- ``compat``       every private PyTorch internal the package relies on, in one place
"""

__version__ = "0.1.0"

from .notebook import setup_notebook  # noqa: F401  (the first cell of every chapter calls it)
