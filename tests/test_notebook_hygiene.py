"""Notebook hygiene: the conventions of CONTRIBUTING.md, checked on every book/*.ipynb.

nbval proves that each stored output reproduces; these tests keep the notebooks in the
shape the rest of the pipeline relies on: listed in the toc, executed top to bottom
(execution counts 1..n), the canonical setup cell first, one title, exercises labelled
`chNN-...`, solution code gated so the student-notebook tool can remove it, a passing
check under every coding exercise, a version stamp that matches the documented versions,
an `assert` in every cell whose output nbval does not compare, no library noise (stderr,
log lines) on the page, outputs computed from the current code (the stamp), an intro
whose path through the book links every chapter, and no notebook bloating the repository.
What "the notebooks", the setup cell and a directive are comes from
`resnet_edu.conventions`, the one definition the tools and the classroom use too.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from resnet_edu import conventions
from resnet_edu.conventions import (
    SETUP_TAG,
    WARNING_TAG,
    chapter_number,
    resolve_toc_entry,
    setup_source,
    toc_entries,
)
from resnet_edu.tools import stamp

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

MAX_BYTES = 1_500_000                      # 1.5 MB per notebook
MIN_EXERCISES = 3                          # per chapter
NOTEBOOKS = conventions.book_notebooks(ROOT)   # the toc's, then any book/*.ipynb not listed
IDS = [p.name for p in NOTEBOOKS]


def load(path: Path):
    return nbformat.read(path, as_version=4)


def directives(text: str):
    """(name, argument, {option: value}) of every MyST directive in ``text``, nested ones too."""
    return [(d.name, d.argument, d.options) for d in conventions.directives(text)]


def is_lone_directive(source: str) -> bool:
    """True when ``source`` is exactly one directive fence, opened and closed, nothing else."""
    lines = source.strip().split("\n")
    found = conventions.directives(source.strip())
    if len(found) != 1 or found[0].start != 0 or found[0].end != len(lines):
        return False
    last = lines[-1].strip()
    return (len(lines) > 1 and not found[0].body.strip() and set(last) == {found[0].fence[0]}
            and len(last) >= len(found[0].fence))


def cell_text_outputs(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


# --------------------------------------------------------------------------------------
# the book as a whole
# --------------------------------------------------------------------------------------
def test_every_toc_entry_exists():
    missing = [e for e in toc_entries(ROOT) if resolve_toc_entry(e, ROOT) is None]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


def test_toc_lists_each_file_once():
    entries = [resolve_toc_entry(e, ROOT) or e for e in toc_entries(ROOT)]
    twice = sorted({str(e) for e in entries if entries.count(e) > 1})
    assert not twice, f"_toc.yml lists these more than once: {twice}"


def test_every_notebook_is_in_the_toc():
    listed = {resolve_toc_entry(e, ROOT) for e in toc_entries(ROOT)}
    unlisted = [p.name for p in NOTEBOOKS if p not in listed]
    assert not unlisted, f"add these notebooks to _toc.yml: {unlisted}"


def test_no_markdown_twin_beside_a_notebook():
    twins = [p.name for p in NOTEBOOKS if p.with_suffix(".md").exists()]
    assert not twins, f"a .md file with the same stem would be rendered instead: {twins}"


def test_exercise_labels_are_unique_across_the_book():
    seen = {}
    for path in NOTEBOOKS:
        for cell in load(path).cells:
            if cell.cell_type == "markdown":
                for name, _, options in directives(cell.source):
                    if name == "exercise" and "label" in options:
                        label = options["label"]
                        assert label not in seen, f"{label} in {path.name} and {seen[label]}"
                        seen[label] = path.name


def test_the_intro_path_links_every_chapter_in_order():
    """The intro's "path through the book" is the reader's map: one link per chapter of the toc."""
    text = (BOOK / "intro.md").read_text(encoding="utf-8")
    section = re.search(r"^## The path through the book\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, "book/intro.md: keep the section '## The path through the book'"
    linked = [(BOOK / target).resolve()
              for target in re.findall(r"\]\(([^)#\s]+\.ipynb)(?:#[^)]*)?\)", section.group(1))]
    chapters = [p.resolve() for p in conventions.chapter_notebooks(ROOT)]
    missing = [p.name for p in chapters if p not in linked]
    assert not missing, (f"book/intro.md's path through the book links no line to {missing}: "
                         "add one entry per chapter, [title](NN_topic.ipynb)")
    first_links = [p for i, p in enumerate(linked) if p in chapters and p not in linked[:i]]
    assert first_links == chapters, "book/intro.md: list the chapters in the toc's order"


def test_every_bibliography_is_local_to_its_page():
    """_config.yml silences duplicate-citation warnings; that is only safe with this filter."""
    pages = NOTEBOOKS + sorted(BOOK.glob("*.md"))
    for path in pages:
        if path.suffix == ".ipynb":
            text = "\n".join(c.source for c in load(path).cells if c.cell_type == "markdown")
        else:
            text = path.read_text(encoding="utf-8")
        bibs = [opts for name, _, opts in directives(text) if name == "bibliography"]
        for opts in bibs:
            assert opts.get("filter") == "docname in docnames", (
                f"{path.name}: write the bibliography with ':filter: docname in docnames'")
        if re.search(r"\{cite(:[a-z]+)?\}`", text):
            assert len(bibs) == 1, f"{path.name} cites papers: end it with one {{bibliography}}"


# --------------------------------------------------------------------------------------
# the version stamp
# --------------------------------------------------------------------------------------
def _pinned(package: str) -> str:
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        m = re.match(rf"^{re.escape(package)}==([\w.]+)\s*(#.*)?$", line.strip())
        if m:
            return m.group(1)
    raise AssertionError(f"requirements.txt does not pin {package}")


def documented_versions() -> dict[str, str]:
    """The version table of book/testing.md: {library: version}."""
    text = (BOOK / "testing.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^\| *([\w.]+) *\| *([\w.]+) *\|$", text, flags=re.M))


def documented_stamp() -> str:
    v = documented_versions()
    return (f"Outputs computed with Python {v['Python']}, torch {v['torch']}, "
            f"torchvision {v['torchvision']}, resnet_edu {v['resnet_edu']} on {v['device']}.")


def test_version_table_matches_requirements_and_package():
    import resnet_edu

    table = documented_versions()
    assert table.get("torch") == _pinned("torch")
    assert table.get("torchvision") == _pinned("torchvision")
    assert table.get("resnet_edu") == resnet_edu.__version__
    assert table.get("device") == "CPU"
    assert documented_stamp() in (BOOK / "testing.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------
# each notebook
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_size_limit(path):
    size = path.stat().st_size
    assert size <= MAX_BYTES, (f"{path.name} is {size / 1e6:.2f} MB (limit 1.5 MB): "
                               "lower the figure dpi or print less")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_kernelspec_is_python3(path):
    assert load(path).metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_executed_in_order(path):
    """Execution counts 1, 2, ..., n: run top to bottom in one fresh kernel, nothing skipped."""
    code = [c for c in load(path).cells if c.cell_type == "code"]
    empty = [i for i, c in enumerate(code) if not c.source.strip()]
    assert not empty, f"{path.name}: remove the empty code cells"
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: execution counts {counts}; run "
        f"`python scripts/execute_notebooks.py book/{path.name}`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_unexpected_errors(path):
    for i, cell in enumerate(load(path).cells):
        if cell.cell_type != "code" or "raises-exception" in cell.metadata.get("tags", []):
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, (f"{path.name}, cell {i}: {errors[0].ename}: {errors[0].evalue} "
                            "(tag the cell `raises-exception` if the error is the point)")


# Lines a library logs, not lines a chapter prints: glog/c10 ("W1129 20:34:32.6 ..."), Kineto
# ("ERROR:2026-11-29 ...", "USDT:..."), PyTorch's C++ warnings ("[W Foo.cpp:12]"), Python's
# warnings module ("file.py:3: UserWarning: ...").
LOG_LINE = re.compile(r"^\s*(?:[IWEF]\d{4} \d\d:\d\d:\d\d"
                      r"|(?:ERROR|WARNING|WARN|INFO|DEBUG|USDT):\d{4}-\d\d-\d\d"
                      r"|\[[WE] [\w.]+:\d+\]"
                      r"|\S+:\d+: \w*Warning: )")


def _noise(cell) -> list[str]:
    found = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            text = out.text
            if out.name == "stderr" and text.strip():
                found.append(f"stderr {text.strip().splitlines()[0][:90]!r}")
                continue
        else:
            text = out.get("data", {}).get("text/plain", "")
        found += [f"log line {line.strip()[:90]!r}" for line in text.splitlines()
                  if LOG_LINE.match(line)]
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_library_noise_on_the_page(path):
    """A reader sees every stored output: stderr and log lines are library noise unless the
    cell is tagged `warning-on-purpose` (a warning the chapter shows and explains)."""
    offenders = [f"cell {i}: {what}" for i, cell in enumerate(load(path).cells)
                 if cell.cell_type == "code" and WARNING_TAG not in cell.metadata.get("tags", [])
                 for what in _noise(cell)]
    assert not offenders, (
        f"{path.name}: library noise in stored outputs: {offenders[:4]}. Silence it where it "
        f"starts (see CONTRIBUTING.md), or tag the cell `{WARNING_TAG}` if the warning is the "
        "point, then re-execute the notebook")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_outputs_were_computed_from_the_current_inputs(path):
    """nbval re-runs every cell but cannot see that an ignored output (a training log) is
    stale; the stamp written by the execute command can (resnet_edu/tools/stamp.py)."""
    changed = stamp.differences(load(path), ROOT)
    more = f" and {len(changed) - 6} more" if len(changed) > 6 else ""
    assert not changed, (
        f"{path.name}: its stored outputs were computed from other inputs than the current "
        f"ones: {'; '.join(changed[:6])}{more}. Re-execute it with `{stamp.REFRESH} "
        f"book/{path.name}` (after a change to the package, every notebook this test names; "
        f"`{stamp.REFRESH}` with no argument runs them all)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_setup_cell_is_canonical(path):
    first = load(path).cells[0]
    fix = f"run `python scripts/execute_notebooks.py --fix-setup book/{path.name}`"
    assert first.cell_type == "code", f"{path.name}: the first cell must be the setup cell; {fix}"
    assert first.source == setup_source(ROOT), (
        f"{path.name}: the setup cell differs from the one _config.yml defines; {fix}")
    assert SETUP_TAG in first.metadata.get("tags", []), f"{path.name}: tag the setup cell {SETUP_TAG}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_version_stamp_matches_documented_versions(path):
    printed = cell_text_outputs(load(path).cells[0]).strip()
    assert printed == documented_stamp(), (
        f"{path.name}: the outputs were computed with other versions than book/testing.md "
        f"documents: {printed!r}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_title_is_the_only_h1(path):
    cells = load(path).cells
    assert len(cells) > 1 and cells[1].cell_type == "markdown", \
        f"{path.name}: the second cell must be markdown with the page title"

    def h1s(text):
        tokens = conventions.markdown_parser().parse(text)
        return [f"# {tokens[i + 1].content}" for i, t in enumerate(tokens)
                if t.type == "heading_open" and t.tag == "h1"]

    assert cells[1].source.lstrip().startswith("# "), f"{path.name}: start cell 2 with '# Title'"
    titles = [t for c in cells if c.cell_type == "markdown" for t in h1s(c.source)]
    assert len(titles) == 1, f"{path.name}: exactly one '# ' heading expected, found {titles}"
    number = chapter_number(path)
    if number:
        assert re.match(rf"^# {int(number)}\. \S", titles[0]), (
            f"{path.name}: the title should read '# {int(number)}. ...', not {titles[0]!r}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_exercises_follow_the_convention(path):
    nb = load(path)
    number = chapter_number(path)
    exercises, gated, checks = [], [], []
    walk = conventions.ExerciseWalk()   # the convention's one reading: where each cell stands
    for i, cell in enumerate(nb.cells):
        tags = cell.metadata.get("tags", [])
        inside = walk.gate if walk.gated else None
        walk.read_cell(cell)
        if cell.cell_type == "markdown":
            found = directives(cell.source)
            for name, arg, options in found:
                if name == "exercise":
                    label = options.get("label", "")
                    assert label, f"{path.name}, cell {i}: every exercise needs a :label:"
                    if number:
                        assert re.fullmatch(rf"ch{number}-[a-z0-9]+(-[a-z0-9]+)*", label), (
                            f"{path.name}: exercise label {label!r} must read 'ch{number}-short-name'")
                    exercises.append(label)
                elif name in ("solution", "solution-start"):
                    assert arg in exercises, (
                        f"{path.name}, cell {i}: solution for {arg!r} comes before its exercise")
                    assert options.get("class") == "dropdown", (
                        f"{path.name}, cell {i}: give the solution of {arg} ':class: dropdown'")
            names = [name for name, _, _ in found]
            if "solution-start" in names or "solution-end" in names:
                assert len(found) == 1 and is_lone_directive(cell.source), (
                    f"{path.name}, cell {i}: a solution-start/solution-end cell holds only "
                    "that directive")
                if names[0] == "solution-start":
                    assert inside is None, f"{path.name}, cell {i}: solution-start inside another"
                    assert walk.gate == found[0][1], f"{path.name}, cell {i}: name the exercise"
                    gated.append(walk.gate)
                else:
                    assert inside is not None, f"{path.name}, cell {i}: solution-end without start"
        elif cell.cell_type == "code":
            if "solution" in tags:
                assert inside is not None, (
                    f"{path.name}, cell {i}: a `solution` cell must sit between solution-start "
                    "and solution-end")
                for node in ast.parse(cell.source).body:
                    assert isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                                             ast.AsyncFunctionDef, ast.ClassDef)), (
                        f"{path.name}, cell {i}: a solution cell holds only imports and "
                        f"top-level def/class (line {node.lineno})")
            elif inside is not None:
                pytest.fail(f"{path.name}, cell {i}: a code cell inside solution "
                            f"{inside} must be tagged `solution`")
            if "check" in tags:
                assert inside is None, f"{path.name}, cell {i}: the check cell goes after solution-end"
                checks.append((i, cell))
    assert not walk.gated, f"{path.name}: solution-start {walk.gate} is never closed"

    if number:
        assert len(exercises) >= MIN_EXERCISES, (
            f"{path.name}: {len(exercises)} exercises, at least {MIN_EXERCISES} expected")
        assert checks, f"{path.name}: at least one coding exercise with a `check` cell expected"
    _assert_each_gated_exercise_passes_its_check(path, gated, checks)


def _assert_each_gated_exercise_passes_its_check(path, gated, checks):
    for label in gated:
        calls = [(i, c) for i, c in checks
                 if re.search(rf"check\(\s*['\"]{re.escape(label)}['\"]", c.source)]
        assert calls, f"{path.name}: coding exercise {label} has no `check` cell calling check({label!r}, ...)"
        for i, cell in calls:
            shown = cell_text_outputs(cell)
            assert shown.lstrip().startswith(f"✓ {label}"), (
                f"{path.name}, cell {i}: the book's own solution must pass its check; "
                f"the cell shows {shown.strip()[:200]!r}")


def _statements_without_magics(source: str) -> ast.Module:
    """The cell's Python, IPython's `%magic` and `!shell` lines blanked out."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line
             for line in source.split("\n")]
    return ast.parse("\n".join(lines))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_cells_whose_output_nbval_ignores_assert_their_claim(path):
    """nbval does not compare such a cell's outputs (timings, say), so its claim must be
    checked another way: an `assert` in the cell itself (CONTRIBUTING.md)."""
    offenders = []
    for i, cell in enumerate(load(path).cells):
        if not conventions.ignores_output(cell):
            continue
        tree = _statements_without_magics(cell.source)
        if not any(isinstance(node, ast.Assert) for node in ast.walk(tree)):
            code = [ln for ln in cell.source.splitlines() if ln.strip() and
                    not ln.lstrip().startswith("#")]
            offenders.append(f"cell {i} ({(code or [''])[0][:60]!r})")
    assert not offenders, (
        f"{path.name}: these cells' outputs are not compared by nbval and they assert "
        f"nothing; add an `assert` of the claim the prose draws from them: {offenders}")
