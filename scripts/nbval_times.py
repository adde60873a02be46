#!/usr/bin/env python
"""Entry point of `python -m resnet_edu.tools.nbval_times` (see its docstring for the usage).

resnet_edu must be importable: `pip install -r requirements.txt` installs it (editable).
"""
import sys

from resnet_edu.tools.nbval_times import main

if __name__ == "__main__":
    sys.exit(main(prog="python scripts/nbval_times.py"))
