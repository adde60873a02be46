"""What the tests of the command line read in its error output (shared by the test files)."""
from __future__ import annotations


def one_error(err: str, *fragments: str) -> str:
    """The one ``error:`` line of ``err`` (argparse may print its usage above it), with no
    traceback, holding every fragment."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]
