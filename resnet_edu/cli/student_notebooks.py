"""``python -m resnet_edu student-notebooks OUTDIR [NOTEBOOK ...] [--force]``."""
from __future__ import annotations

import argparse
from pathlib import Path

from .errors import EXIT_OK, EXIT_USAGE, CommandError
from .paths import output_dir

DESCRIPTION = ("Write a student version of every chapter notebook (solution code replaced "
               "by stubs that raise NotImplementedError, solution prose and outputs removed, "
               "check outputs cleared) and the grading manifest beside them.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("outdir", type=Path, help="folder for the student notebooks "
                        "(new or empty, unless --force)")
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="chapter notebooks to convert (default: the checkout's "
                             "book/NN_*.ipynb)")
    parser.add_argument("--force", action="store_true",
                        help="write into a folder that is not empty")


def run(args) -> int:
    from ..classroom import chapter_notebooks, write_student_notebooks
    from ..classroom.export import student_versions

    notebooks = args.notebooks or chapter_notebooks()
    if not notebooks:
        raise CommandError("no chapter notebooks found: run this from a clone of the book's "
                           "repository or name the notebooks to convert", EXIT_USAGE)
    bad = [str(p) for p in notebooks if not (p.is_file() and p.suffix == ".ipynb")]
    if bad:
        raise CommandError(f"not a notebook: {', '.join(bad)}", EXIT_USAGE)
    if any(p.resolve().parent == args.outdir.resolve() for p in notebooks):
        raise CommandError(f"refusing to write into {args.outdir}, the folder of the chapters "
                           "themselves: choose another folder", EXIT_USAGE)
    try:   # every notebook read and converted before the folder is made: a bad one
        student_versions(notebooks)          # leaves nothing behind
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    outdir = output_dir(args.outdir, force=args.force, what="output folder")
    write_student_notebooks(notebooks, outdir)
    return EXIT_OK
