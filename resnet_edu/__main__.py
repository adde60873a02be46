"""``python -m resnet_edu COMMAND ...``: see :mod:`resnet_edu.cli`."""
import sys

from .cli import main

sys.exit(main())
