"""The grade sheet: rows, the CSV (written only when every answering process is gone),
and the printed summary."""
from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Sequence, Tuple

from .protocol import Status

CSV_FIELDS = ["student", "notebook", "exercise", "score", "max_score", "status", "feedback",
              "sandbox"]
FEEDBACK_LIMIT = 1000     # characters of feedback a row keeps (a student's text is theirs,
                          # but the sheet is handed back: bounded and printable)


@dataclass
class GradeRow:
    """One line of the grade sheet."""

    student: str
    notebook: str
    exercise: str
    score: float
    max_score: float
    status: Status   # protocol.Status: passed, failed, unsolved, ..., timeout, grader-error
    feedback: str
    sandbox: str = ""   # how the answering process was confined (sandbox.Confinement.name)

    def __post_init__(self):
        self.feedback = bounded(self.feedback)


def bounded(text: str, limit: int = FEEDBACK_LIMIT) -> str:
    """``text`` without control characters (line breaks kept), at most ``limit``
    characters."""
    text = "".join(c if c.isprintable() or c == "\n" else " " for c in str(text))
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _write(rows: Sequence[GradeRow], f) -> None:
    writer = csv.writer(f)
    writer.writerow(CSV_FIELDS)
    for r in rows:
        writer.writerow([r.student, r.notebook, r.exercise, f"{r.score:g}",
                         f"{r.max_score:g}", r.status, r.feedback, r.sandbox])


def write_csv(rows: Sequence[GradeRow], out) -> None:
    """Write the sheet to a file object, or to a path *atomically*: into a temporary file
    of the same folder, then renamed into place (a reader never sees half a sheet, and
    whatever was at the path before is replaced as a whole)."""
    if hasattr(out, "write"):
        _write(rows, out)
        return
    out = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent or ".")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            _write(rows, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def summary_table(rows: Sequence[GradeRow]) -> str:
    """A plain-text table: one line per student, one column per exercise, and a total."""
    exercises = list(dict.fromkeys(r.exercise for r in rows if r.exercise))
    students = list(dict.fromkeys(r.student for r in rows))
    cell: Dict[Tuple[str, str], GradeRow] = {(r.student, r.exercise): r for r in rows}
    header = ["student"] + exercises + ["total"]
    table = [header]
    for s in students:
        mine = [r for r in rows if r.student == s]
        line = [s]
        for e in exercises:
            r = cell.get((s, e))
            line.append("-" if r is None else
                        f"{r.score:g}" + ("" if r.status == Status.PASSED else f" ({r.status})"))
        line.append(f"{sum(r.score for r in mine):g}/{sum(r.max_score for r in mine):g}")
        table.append(line)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip()
                     for row in table)


def some_not_graded(rows: Sequence[GradeRow]) -> bool:
    """Whether a notebook could not be graded at all (the run then exits 1)."""
    return any(not Status(r.status).graded for r in rows)
