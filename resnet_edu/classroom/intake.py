"""A submission as data: read, validated, its chapter told, its answer cells found.

Nothing here runs the student's code. Every problem becomes a sentence for the student
(never an exception that ends the run): a file that is not JSON, a notebook that breaks
the schema (``nbformat.validate``), nbformat 3, a chapter that cannot be told, an answer
or check cell of the master that is missing or altered.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

from ..conventions import METADATA_KEY
from .master import ChapterMaster, MasterExercise, source_hash
from .protocol import Status, Verdict


@dataclass
class Submission:
    """What the grader read from disk before any student code ran."""

    path: Path
    student: str
    data: Optional[bytes]
    read_error: str = ""


@dataclass
class Intake:
    """A submission checked against the masters: its chapter and notebook, or the problem."""

    chapter: Optional[ChapterMaster]
    nb: object = None
    problem: str = ""           # why the whole notebook cannot be graded ("" if it can)
    status: Status = Status.GRADER_ERROR   # UNREADABLE, MALFORMED, UNKNOWN_CHAPTER (problem)


@dataclass
class Answer:
    """The answer cells of one exercise, or why they cannot be graded."""

    source: str = ""
    problems: list = field(default_factory=list)


def read_submission(path: Path, student: str) -> Submission:
    try:
        return Submission(path, student, Path(path).read_bytes())
    except OSError as exc:
        return Submission(path, student, None, f"cannot read the file ({exc.strerror or exc})")


def _chapter_of(sub: Submission, raw, masters: Dict[str, ChapterMaster]):
    """The chapter by file name, else by the name the export wrote in the metadata (a
    student can only lose by forging it: the chapter's whole exercise list is graded)."""
    name = Path(sub.path).name
    if name in masters:
        return masters[name]
    for chapter in masters:
        if name.endswith("_" + chapter) or Path(name).stem.endswith(Path(chapter).stem):
            return masters[chapter]
    meta = raw.get("metadata") if isinstance(raw, dict) else None
    meta = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
    source = meta.get("source") if isinstance(meta, dict) else None
    return masters.get(source) if isinstance(source, str) else None


def _schema_problem(raw) -> str:
    import nbformat

    version = raw.get("nbformat")
    if version != 4:
        return (f"the file is in nbformat {version!r}; the grader reads nbformat 4 notebooks "
                "as handed out (their cell ids tell the answer cells); open it in Jupyter "
                "or Colab, save it, and hand it in again")
    advice = "; open the handed-out notebook again and copy your answers into it"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # nbformat warns before it raises
            nbformat.validate(raw)
    except nbformat.ValidationError as exc:
        where = "/".join(str(p) for p in list(exc.absolute_path)[:4])
        return (f"the notebook file is damaged (it breaks the notebook format"
                f"{' at ' + where if where else ''}: {exc.message[:200]}){advice}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # nbformat trips on it
        return f"the notebook file is damaged ({type(exc).__name__} while reading it){advice}"
    if raw.get("nbformat_minor", 0) < 5:
        return "the notebook has no cell ids (nbformat 4.5 or newer is needed)"
    ids = [c.get("id") for c in raw["cells"]]
    if len(set(ids)) != len(ids):
        return "two cells have the same id: the notebook was edited outside Jupyter"
    return ""


def chapter_by_name(sub: Submission, masters: Dict[str, ChapterMaster]):
    """The chapter the file name tells (used when even reading the file fails)."""
    return _chapter_of(sub, None, masters)


def take_in(sub: Submission, masters: Dict[str, ChapterMaster]) -> Intake:
    """Parse and validate a submission and tell its chapter; never raises."""
    import nbformat

    raw = None
    if sub.data is not None:
        try:
            raw = json.loads(sub.data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            problem = f"the file is not a notebook (not JSON: {exc})"
        else:
            problem = "" if isinstance(raw, dict) else "the file is not a notebook"
    else:
        problem = sub.read_error
    chapter = _chapter_of(sub, raw, masters)
    if problem:
        return Intake(chapter, None, problem, Status.UNREADABLE)
    problem = _schema_problem(raw)
    if problem:
        return Intake(chapter, None, problem, Status.MALFORMED)
    if chapter is None:
        return Intake(None, None, "cannot tell which chapter this notebook is: keep the "
                      "handed-out file name (e.g. 01_convolution.ipynb)", Status.UNKNOWN_CHAPTER)
    try:
        nb = nbformat.reads(sub.data.decode("utf-8"), as_version=4)   # joins line lists
    except Exception as exc:  # noqa: BLE001 - validated above; any surprise is the file's
        return Intake(chapter, None, f"the notebook cannot be read ({type(exc).__name__})",
                      Status.MALFORMED)
    return Intake(chapter, nb)


def find_answer(nb, exercise: MasterExercise) -> Answer:
    """The answer cells of ``exercise`` by cell id, and its check cells compared with the
    master's; each missing or altered cell is a problem quoted to the student."""
    by_id = {c.id: c for c in nb.cells}
    answer = Answer()
    sources = []
    for cell_id in exercise.answer_cells:
        cell = by_id.get(cell_id)
        if cell is None:
            answer.problems.append(
                f"the answer cell of this exercise (cell id {cell_id}) is missing: write your "
                "answer in the exercise's code cell of the handed-out notebook")
        elif cell.cell_type != "code":
            answer.problems.append(f"the answer cell (cell id {cell_id}) is no longer a "
                                   "code cell")
        else:
            sources.append(cell.source)
    for cell_id, digest in exercise.check_cells:
        cell = by_id.get(cell_id)
        if cell is None or cell.cell_type != "code":
            answer.problems.append(f"the check cell of this exercise (cell id {cell_id}) is "
                                   "missing: restore it from the handed-out notebook")
        elif source_hash(cell.source) != digest:
            answer.problems.append(f"the check cell of this exercise (cell id {cell_id}) was "
                                   "changed: restore it from the handed-out notebook")
    answer.source = "\n\n".join(sources)
    return answer


def match(nb, exercise: MasterExercise) -> Tuple[str, Optional[Verdict]]:
    """Stage 2, one exercise matched against the master: the source of its answer cells,
    or the verdict that they or its check cells are gone or altered."""
    answer = find_answer(nb, exercise)
    if answer.problems:
        altered = any("changed" in p or "no longer" in p for p in answer.problems)
        return "", Verdict.zero(Status.ALTERED if altered else Status.MISSING,
                                "; ".join(answer.problems) + ".")
    return answer.source, None
