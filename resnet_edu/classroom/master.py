"""The teacher's master: which exercises a chapter grades, for how many points, in which cells.

The master comes from the book's chapter notebook (its ``solution`` cells are the answer
cells, its ``check("chNN-...")`` cells the check cells) or from the manifest that
``student-notebooks`` writes next to the student notebooks. It never comes from a
submission: a student who deletes a check cell, a label or the metadata still gets a row
for that exercise (zero, with the reason).

A manifest holds no solution: ids, points, cell ids, and a hash of each check cell.
"""
from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .. import conventions
from ..conventions import CHECK_CALL

MANIFEST_NAME = "resnet_edu_manifest.json"
MANIFEST_FORMAT = "resnet_edu-manifest-1"


def source_hash(source: str) -> str:
    """Hash of a cell's source, blind to line endings and surrounding blank lines."""
    text = "\n".join(line.rstrip() for line in source.replace("\r\n", "\n").split("\n"))
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class MasterExercise:
    """One graded exercise of a chapter, as the teacher's master defines it."""

    id: str
    points: float
    names: Tuple[str, ...]                   # what the answer must define
    kinds: Tuple[str, ...]                   # "def" or "class", per name (the book's solution)
    answer_cells: Tuple[str, ...]            # cell ids of the answer cells
    check_cells: Tuple[Tuple[str, str], ...]  # (cell id, source hash) of the check cells


@dataclass(frozen=True)
class ChapterMaster:
    name: str                                # file name, e.g. "01_convolution.ipynb"
    exercises: Tuple[MasterExercise, ...]


def _defined_kinds(source: str, names: Tuple[str, ...]) -> Tuple[str, ...]:
    """How the book's solution defines each name: ``def`` or ``class``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return tuple("def" for _ in names)
    kinds = {n.name: ("class" if isinstance(n, ast.ClassDef) else "def")
             for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return tuple(kinds.get(name, "def") for name in names)


def _answer_cells_by_exercise(nb) -> Dict[str, List[int]]:
    """Solution cells by the exercise they answer (``conventions.walk_exercises``: the open
    ``{solution-start}`` gate, or else the last ``{exercise}`` label above them)."""
    found: Dict[str, List[int]] = {}
    for index, cell, where in conventions.walk_exercises(nb.cells):
        if conventions.is_solution_cell(cell) and where.exercise:
            found.setdefault(where.exercise, []).append(index)
    return found


def chapter_master(nb, name: str) -> ChapterMaster:
    """The master of a solved chapter notebook (the book's ``NN_topic.ipynb``).

    Raises ``ValueError`` when a check cell has no registered check, no answer cell or no
    cell id: a master that cannot be graded must fail when the teacher builds it.
    """
    from ..exercises import exercises

    registry = exercises()
    answers = _answer_cells_by_exercise(nb)
    checks: Dict[str, List[Tuple[str, str]]] = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            for m in CHECK_CALL.finditer(cell.source):
                if "id" not in cell:
                    raise ValueError(f"{name}: cells have no ids (nbformat 4.5 needed)")
                checks.setdefault(m.group("id"), []).append((cell.id, source_hash(cell.source)))
    result = []
    for exercise_id, check_cells in checks.items():
        if exercise_id not in registry:
            raise ValueError(f"{name}: check cell of {exercise_id!r}, which has no "
                             "registered check")
        if exercise_id not in answers:
            raise ValueError(f"{name}: exercise {exercise_id!r} has a check cell but no "
                             "solution cell")
        ex = registry[exercise_id]
        cells = [nb.cells[i] for i in answers[exercise_id]]
        kinds = dict(ex.rules.define) or {}
        guessed = _defined_kinds("\n".join(c.source for c in cells), ex.names)
        result.append(MasterExercise(
            exercise_id, ex.points, ex.names,
            tuple(kinds.get(n, k) for n, k in zip(ex.names, guessed)),
            tuple(c.id for c in cells), tuple(dict.fromkeys(check_cells))))
    return ChapterMaster(name, tuple(result))


def manifest(masters: List[ChapterMaster]) -> dict:
    """The JSON-ready manifest of some chapters (no solution text in it)."""
    return {"format": MANIFEST_FORMAT,
            "chapters": {m.name: [asdict(e) for e in m.exercises] for m in masters}}


def _from_manifest(data) -> Dict[str, ChapterMaster]:
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"not a manifest written by student-notebooks ({MANIFEST_FORMAT})")
    chapters = {}
    for name, items in data["chapters"].items():
        exercises = tuple(MasterExercise(
            e["id"], float(e["points"]), tuple(e["names"]), tuple(e["kinds"]),
            tuple(e["answer_cells"]), tuple(tuple(c) for c in e["check_cells"]))
            for e in items)
        chapters[name] = ChapterMaster(name, exercises)
    return chapters


def default_book_dir() -> Optional[Path]:
    """The checkout's ``book/`` when the package was imported from a checkout, else None
    (an installed package has no book: name the book folder or the manifest)."""
    root = conventions.checkout_root()
    candidate = root / conventions.BOOK_FOLDER if root is not None else None
    return candidate if candidate is not None and candidate.is_dir() else None


def load_masters(source: Optional[Path] = None) -> Dict[str, ChapterMaster]:
    """Masters by chapter file name, from a book folder of chapter notebooks or a
    manifest file (default: the checkout's ``book/``). Raises ``ValueError``."""
    import nbformat

    source = default_book_dir() if source is None else Path(source)
    if source is None:
        raise ValueError("no book folder next to the package: name the book folder or the "
                         f"{MANIFEST_NAME} written by student-notebooks")
    if source.is_file():
        try:
            return _from_manifest(json.loads(source.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"cannot read the manifest {source}: {exc}") from None
    if not source.is_dir():
        raise ValueError(f"{source} is neither a book folder nor a manifest file")
    masters = {}
    for path in sorted(source.glob("*.ipynb")):
        if conventions.CHAPTER_FILE.match(path.name):
            master = chapter_master(nbformat.read(path, as_version=4), path.name)
            if master.exercises:
                masters[path.name] = master
    if not masters:
        raise ValueError(f"no chapter notebook with graded exercises in {source}")
    return masters
