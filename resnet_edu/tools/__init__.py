"""Maintainer tools of the book (not needed by readers): run them from a checkout.

``python -m resnet_edu.tools.execute_notebooks [NOTEBOOK ...]``
    re-executes notebooks in place (the committed outputs); ``scripts/execute_notebooks.py``
    is the same command.
``python -m resnet_edu.tools.nbval_times [NOTEBOOK ...]``
    times strict nbval per notebook and the strict book build against the budgets.

Exit codes, as for ``python -m resnet_edu``: 0 ok, 1 a failed run or a budget exceeded,
2 usage or bad input.
"""
