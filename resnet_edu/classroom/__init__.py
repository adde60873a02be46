"""Classroom tools: student notebooks with the solutions removed, and grading that a
student cannot fool.

Two commands (``resnet_edu/cli/student_notebooks.py`` and ``resnet_edu/cli/grade.py``),
plain Jupyter files and plain Python processes, so they run on a laptop and in Colab:

``python -m resnet_edu student-notebooks OUTDIR [NOTEBOOK ...]``
    writes the student version of every chapter (:mod:`.export`) and the grading
    manifest (:mod:`.master`).

``python -m resnet_edu grade SUBMISSIONS ... [--master BOOK_OR_MANIFEST] [--out CSV]``
    grades each submission against the teacher's master (:mod:`.grading`): the master
    says what is graded; the student's code only answers requests in a process of its
    own (:mod:`.session`, :mod:`.kernel`), the grader judges.

One step per module, as nbgrader's preprocessors: :mod:`.markdown` (MyST fences),
:mod:`.stubs` (solution cell -> stub), :mod:`.export`, :mod:`.master`, :mod:`.intake`
(read, validate, match cells), :mod:`.rules` (static rules), :mod:`.tripwires` (run-time
rules), :mod:`.kernel` and :mod:`.session` (the answering process), :mod:`.hygiene`
(nothing outlives its notebook), :mod:`.remote` (stand-ins), :mod:`.probe` (the grader's
own test of a class exercise), :mod:`.judge` (answer and judge one exercise),
:mod:`.protocol` (statuses, verdicts, the requests and replies of the answering process),
:mod:`.grading` (the pipeline, stage by stage), :mod:`.report` (the sheet). The threat
model is in book/teachers.md.
"""
from __future__ import annotations

from .export import StudentVersion, chapter_notebooks, student_notebook, write_student_notebooks
from .grading import NotebookResult, Options, grade_notebooks, grade_submission
from .markdown import exercise_labels
from .master import ChapterMaster, MasterExercise, chapter_master, load_masters
from .report import CSV_FIELDS, GradeRow, summary_table, write_csv
from .stubs import stub_source

__all__ = ["CSV_FIELDS", "ChapterMaster", "GradeRow", "MasterExercise", "NotebookResult",
           "Options", "StudentVersion", "chapter_master", "chapter_notebooks",
           "exercise_labels", "grade_notebooks", "grade_submission", "load_masters",
           "stub_source", "student_notebook", "summary_table", "write_csv",
           "write_student_notebooks"]
