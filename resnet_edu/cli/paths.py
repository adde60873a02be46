"""Check a command's input and output paths before any work starts.

Each check raises :class:`~resnet_edu.cli.errors.CommandError` (exit 2) with one
line that names the path and what is wrong, so that a long run never ends in an
``IsADirectoryError`` after its work is done. Writability is tested by creating
(and removing) a probe file, the only check that is right for every file system
(``os.access`` says yes to root even on ``/proc``).
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Iterable, Optional, Union

from .errors import EXIT_USAGE, CommandError

PathLike = Union[str, "os.PathLike[str]"]


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def _check_writable_folder(folder: Path, what: str, target: Path) -> None:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".resnet_edu-probe-"):
            pass
    except OSError as exc:
        raise CommandError(f"cannot write the {what} {str(target)!r}: the folder "
                           f"{str(folder)!r} is not writable ({_why_not(exc)})",
                           EXIT_USAGE) from None


def _why_not(exc: OSError) -> str:
    """Why a file cannot be created in an existing folder, in words: ENOENT there (as on
    /proc or /sys) means the file system makes no new files, not that something is missing."""
    if exc.errno == errno.ENOENT:
        return "its file system does not allow new files"
    return exc.strerror or str(exc)


def _check_parent(path: Path, what: str, make_parents: bool, create: bool = True) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    existing = _nearest_existing(parent)
    if not existing.is_dir():
        raise CommandError(f"cannot write the {what} {str(path)!r}: {str(existing)!r} is a "
                           f"file, not a folder", EXIT_USAGE)
    if existing != parent and not make_parents:
        raise CommandError(f"cannot write the {what} {str(path)!r}: the folder "
                           f"{str(parent)!r} does not exist", EXIT_USAGE)
    _check_writable_folder(existing, what, path)
    if existing != parent and create:
        parent.mkdir(parents=True, exist_ok=True)


def output_file(path: PathLike, *, what: str = "output file", make_parents: bool = False,
                create_parents: bool = True) -> Path:
    """``path`` as a :class:`Path` if a file can be written there, else a ``CommandError``.

    Refused: an existing folder, a parent that is a file, a missing parent folder
    (allowed when ``make_parents``: created now, or by the writer itself when not
    ``create_parents``, so that a command refused later leaves no empty folder behind),
    a folder that is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise CommandError(f"the {what} {str(path)!r} is an existing folder, not a file; "
                           f"give the path of a file (for example one inside that folder)",
                           EXIT_USAGE)
    if path.exists() and not path.is_file():
        raise CommandError(f"the {what} {str(path)!r} exists and is not a regular file",
                           EXIT_USAGE)
    _check_parent(path, what, make_parents, create_parents)
    return path


def output_dir(path: PathLike, *, force: bool = False, what: str = "output folder") -> Path:
    """``path`` as a :class:`Path` to an empty (or new, now created) writable folder.

    Refused: an existing file, a non-empty folder unless ``force``, a parent that
    is a file, a folder that cannot be written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CommandError(f"the {what} {str(path)!r} is a file, not a folder", EXIT_USAGE)
    if path.is_dir():
        if any(path.iterdir()) and not force:
            raise CommandError(f"the {what} {str(path)!r} is not empty; choose an empty or "
                               f"new folder, or pass --force to write into it", EXIT_USAGE)
        _check_writable_folder(path, what, path)
        return path
    _check_parent(path, what, make_parents=True)
    path.mkdir()
    return path


def input_file(path: PathLike, *, suffixes: Optional[Iterable[str]] = None,
               what: str = "input file") -> Path:
    """``path`` as a :class:`Path` if it is a readable file (with one of ``suffixes``)."""
    path = Path(path)
    if not path.exists():
        raise CommandError(f"the {what} {str(path)!r} does not exist", EXIT_USAGE)
    if not path.is_file():
        raise CommandError(f"the {what} {str(path)!r} is not a file", EXIT_USAGE)
    if suffixes is not None:
        suffixes = tuple(suffixes)
        if path.suffix not in suffixes:
            raise CommandError(f"the {what} {str(path)!r} must end in "
                               f"{' or '.join(suffixes)}", EXIT_USAGE)
    if not os.access(path, os.R_OK):
        raise CommandError(f"the {what} {str(path)!r} is not readable", EXIT_USAGE)
    return path


def output_apart_from_inputs(path: PathLike, inputs: Iterable[PathLike], *,
                             what: str = "output file", inputs_are: str = "input") -> None:
    """Refuse an output ``path`` that would overwrite what the command reads: one of the
    ``inputs`` (after resolving links and ``..``), a path inside a folder among them, or an
    existing notebook. Nothing a user types may destroy an input (a student's submission)."""
    target = Path(path).resolve()
    for given in map(Path, inputs):
        source = given.resolve()
        if target == source:
            raise CommandError(f"the {what} {str(path)!r} is one of the {inputs_are}s: writing "
                               f"it would destroy it; choose another file", EXIT_USAGE)
        if source.is_dir() and source in target.parents:
            raise CommandError(f"the {what} {str(path)!r} lies inside {str(given)!r}, a folder "
                               f"of {inputs_are}s: write it outside that folder", EXIT_USAGE)
    if target.suffix == ".ipynb" and target.exists():
        raise CommandError(f"the {what} {str(path)!r} is an existing notebook: choose "
                           f"another file", EXIT_USAGE)
