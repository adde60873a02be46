"""``python -m resnet_edu grade SUBMISSIONS ... [--master BOOK_OR_MANIFEST] [--out CSV]``."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .argtypes import MAX_TIMEOUT_S, positive_int, timeout_seconds
from .errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, CommandError
from .paths import output_apart_from_inputs, output_file

DESCRIPTION = ("Grade submitted notebooks against the teacher's master (the book's chapter "
               "notebooks or the manifest written by student-notebooks) and write one CSV "
               "row per student and exercise.")
EPILOG = """exit codes:
  0  every notebook was graded (whatever the scores)
  1  some notebooks could not be graded (unreadable, damaged, unknown chapter, grader
     error): their rows say why, with score 0 out of the exercise's points
  2  usage: bad option, no notebooks, unusable --out or --master"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK",
                        help="submitted notebooks, or folders to search for *.ipynb")
    parser.add_argument("--master", type=Path, default=None,
                        help="the book folder with the solved chapter notebooks, or the "
                             "resnet_edu_manifest.json written by student-notebooks "
                             "(default: the checkout's book/ folder)")
    parser.add_argument("--out", type=Path, default=Path("results.csv"),
                        help="CSV file to write (default: results.csv); written only when "
                             "grading is over and every process of the students' code is gone")
    parser.add_argument("--timeout", type=timeout_seconds, default=120.0,
                        help="seconds one exercise may take, its check included, at most "
                             f"{MAX_TIMEOUT_S:.0f} (default: 120)")
    parser.add_argument("--jobs", type=positive_int, default=1,
                        help="notebooks graded at the same time (default: 1)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run answers without confinement (only where the sandbox is "
                             "unavailable: not Linux, no Landlock; grade in a throw-away "
                             "machine then, since answers run with your rights)")


def _confinement(no_sandbox: bool):
    """The sandbox of the answering processes, or a refusal before any student code runs."""
    import sys

    from ..classroom.sandbox import NONE, Confinement, availability

    if no_sandbox:
        print("warning: --no-sandbox: the students' code runs with your rights (your files, "
              "the network); grade only in a throw-away machine or container",
              file=sys.stderr)
        return NONE
    ok, why = availability()
    if not ok:
        raise CommandError(f"cannot confine the students' code on this machine: {why}. Grade "
                           "on Linux 5.13 or newer with Landlock, or add --no-sandbox to run "
                           "answers unconfined (then only in a throw-away machine)", EXIT_USAGE)
    return Confinement()


def run(args) -> int:
    from ..classroom import Options, grade_notebooks, load_masters, summary_table, write_csv
    from ..classroom.grading import expand
    from ..classroom.report import some_not_graded

    output_apart_from_inputs(args.out, args.notebooks, what="grade sheet",  # --out x.ipynb
                             inputs_are="submitted notebook")
    out = output_file(args.out, what="grade sheet")          # checked before any work
    try:
        masters = load_masters(args.master)
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    paths = expand(args.notebooks)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise CommandError(f"no such file: {', '.join(missing)}", EXIT_USAGE)
    if not paths:
        raise CommandError("no notebooks found", EXIT_USAGE)
    confinement = _confinement(args.no_sandbox)
    start = time.monotonic()
    options = Options(timeout=args.timeout, threads=None, confinement=confinement)
    results = grade_notebooks(paths, masters, options, jobs=args.jobs,
                              log=lambda line: print(line, flush=True))
    rows = [row for result in results for row in result.rows]
    write_csv(rows, out)
    print()
    print(summary_table(rows))
    print(f"\n{len(results)} notebook(s) graded in {time.monotonic() - start:.0f} s; "
          f"{len(rows)} row(s) written to {out}; answers ran under: {confinement.name}")
    return EXIT_FINDINGS if some_not_graded(rows) else EXIT_OK
