#!/usr/bin/env python
"""Entry point of `python -m resnet_edu.tools.execute_notebooks` (see its docstring for the usage).

resnet_edu must be importable: `pip install -r requirements.txt` installs it (editable).
"""
import sys

from resnet_edu.tools.execute_notebooks import main

if __name__ == "__main__":
    sys.exit(main(prog="python scripts/execute_notebooks.py"))
