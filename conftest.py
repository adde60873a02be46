"""Repository-wide pytest set-up, loaded for `python -m pytest` and for single notebooks.

nbval starts one Jupyter kernel per notebook, which inherits this process's environment.
We give it the environment the committed outputs were produced in
(`resnet_edu.conventions.kernel_environment`, also used by `scripts/execute_notebooks.py`
and the grader), so nbval compares like with like: the repository importable (no install
needed; the setup cell then skips its `pip install`), deterministic string hashing, inline
figures. pytest puts this file's folder on `sys.path` before importing it (its default
"prepend" import mode for a rootdir conftest), so `resnet_edu` imports from the checkout.

We also default nbval to the book's sanitize file and to a kernel running this very Python
(`--nbval-sanitize-with nbval_sanitize.cfg --nbval-current-env`) unless the command line
chooses otherwise, in either nbval spelling (`--sanitize-with`, `--current-env`,
`--nbval-kernel-name`).
"""
import os
from pathlib import Path

from resnet_edu.conventions import kernel_environment

ROOT = Path(__file__).resolve().parent

os.environ.update(kernel_environment(ROOT))


def pytest_configure(config):
    opt = config.option
    if not hasattr(opt, "nbval_sanitize_with"):  # nbval not installed or disabled
        return
    if not (getattr(opt, "sanitize_with", None) or opt.nbval_sanitize_with):
        opt.nbval_sanitize_with = str(ROOT / "nbval_sanitize.cfg")
    if not (getattr(opt, "current_env", False) or opt.nbval_current_env
            or opt.nbval_kernel_name):
        opt.nbval_current_env = True
