"""The notebooks here are submissions for tests/test_classroom.py to grade, not book pages:
some of them hang or fail on purpose, so nbval must not collect them."""
collect_ignore_glob = ["*.ipynb"]
