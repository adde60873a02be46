"""resnet_edu.conventions against the tools it stands in for: myst-parser's own parser
(the directives), nbval's own marker reading (ignored outputs), and hand-made cases."""
from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest

from resnet_edu import conventions

ROOT = Path(__file__).resolve().parents[1]


def _myst_directives(text: str):
    """Top-level directives as myst-parser itself tokenises them, with the book's settings."""
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    extensions = conventions.load_config(ROOT)["parse"]["myst_enable_extensions"]
    md = create_md_parser(MdParserConfig(enable_extensions=set(extensions)), RendererHTML)
    found = []
    for t in md.parse(text):
        m = re.match(r"^\{([\w:.+-]+)\}\s*(.*?)\s*$", t.info.strip())
        if t.type in ("fence", "colon_fence") and m:
            found.append((m[1], m[2], t.map[0], t.map[1]))
    return found


def _book_markdown():
    for path in conventions.book_notebooks(ROOT):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                yield path.name, cell.source
    for path in sorted((ROOT / "book").glob("*.md")):
        yield path.name, path.read_text(encoding="utf-8")


def test_directives_are_found_as_myst_parser_finds_them():
    compared = 0
    for name, text in _book_markdown():
        ours = [(d.name, d.argument, d.start, d.end)
                for d in conventions.directives(text) if d.depth == 0]
        assert ours == _myst_directives(text), name
        compared += len(ours)
    assert compared > 50          # the book has exercises, solutions, figures, listings


NESTED = """Intro 1.5

::::{exercise} A title
:label: ch01-x

Body
:::{solution} ch01-x
:class: dropdown
inner
:::
::::

~~~python
not a directive
~~~
```{code-cell}
---
tags: [a]
---
print(1)
```"""


def test_nested_directives_options_and_line_ranges():
    found = conventions.directives(NESTED)
    assert [(d.name, d.depth, d.start, d.end) for d in found] == [
        ("exercise", 0, 2, 11), ("solution", 1, 6, 10), ("code-cell", 0, 15, 21)]
    exercise, solution, code = found
    assert exercise.label == "ch01-x" and exercise.argument == "A title"
    assert exercise.children == (solution,) and solution.options == {"class": "dropdown"}
    assert solution.body.strip() == "inner" and exercise.fence == "::::"
    assert code.options == {"tags": "['a']"} and code.body.strip() == "print(1)"
    lines = NESTED.split("\n")
    assert lines[solution.start].startswith(":::{solution}") and lines[solution.end - 1] == ":::"


def test_without_directives_removes_nested_solutions_only():
    text, removed = conventions.without_directives(NESTED, ["solution"])
    assert removed == 1 and "inner" not in text and "{solution}" not in text
    assert "::::{exercise} A title" in text and "Body" in text and text.count("::::") == 2
    assert conventions.without_directives(NESTED, ["figure"]) == (NESTED, 0)
    # min_depth=1 spares the top-level directives: only the nested solution goes
    assert conventions.without_directives(NESTED, ["solution"], min_depth=1) == (text, removed)
    assert conventions.without_directives(NESTED, ["exercise"], min_depth=1) == (NESTED, 0)


@pytest.mark.parametrize("source,tags,ignored", [
    ("# NBVAL_IGNORE_OUTPUT\nx = 1", [], True),
    ("x = 1\n  ## NBVAL_IGNORE_OUTPUT  \nprint(x)", [], True),
    ("print('# NBVAL_IGNORE_OUTPUT')", [], False),
    ("x = 1", ["nbval-ignore-output"], True),
    ("# NBVAL_SKIP\nx = 1", [], False),
    ("# PYTEST_VALIDATE_IGNORE_OUTPUT\nx", [], True),
])
def test_ignored_outputs_are_read_as_nbval_reads_them(source, tags, ignored):
    from nbval.plugin import find_comment_markers, metadata_tags

    cell = nbformat.v4.new_code_cell(source, metadata={"tags": tags})
    markers = dict(find_comment_markers(source))
    markers.update(metadata_tags[t] if isinstance(metadata_tags[t], tuple)
                   else (metadata_tags[t], True) for t in tags if t in metadata_tags)
    assert (markers.get("check") is False) == ignored     # nbval's own verdict
    assert conventions.ignores_output(cell) == ignored


def test_kernel_environment():
    base = {"PYTHONPATH": "/elsewhere", "OMP_NUM_THREADS": "3", "PATH": os.environ["PATH"]}
    env = conventions.kernel_environment(ROOT, threads=1, base=base)
    assert env["PYTHONPATH"].split(os.pathsep) == [str(ROOT), "/elsewhere"]
    assert env["PYTHONHASHSEED"] == "0" and env["MPLBACKEND"] == conventions.INLINE_BACKEND
    assert env["OMP_NUM_THREADS"] == "3" and env["MKL_NUM_THREADS"] == "1"
    assert base["PYTHONPATH"] == "/elsewhere"                  # the base is not modified
    # a folder without the package's sources adds nothing to the path
    assert "PYTHONPATH" not in conventions.kernel_environment(Path("/"), base={})


def test_the_book_root_must_be_a_book(tmp_path):
    with pytest.raises(ValueError, match=r"no _config.yml"):
        conventions.load_config(tmp_path)
    assert conventions.book_root(None) == ROOT == conventions.checkout_root()


def test_chapters_come_from_the_toc_in_reading_order():
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    listed = re.findall(r"file:\s*book/(\d\d_\w+)\s*$", toc, flags=re.M)
    chapters = [p.stem for p in conventions.chapter_notebooks(ROOT)]
    assert chapters[:len(listed)] == listed
    assert all(conventions.chapter_number(p) for p in conventions.chapter_notebooks(ROOT))
    assert conventions.chapter_number("book/intro.md") is None


def test_setup_source_is_the_template_with_the_configured_target():
    url, branch = conventions.repository(ROOT)
    source = conventions.setup_source(ROOT)
    assert f'"git+{url}@{branch}"' in source and source.startswith(conventions.SETUP_MARKER)
    other = conventions.setup_source(ROOT, target="/tmp/x.whl")
    assert other == source.replace(f"git+{url}@{branch}", "/tmp/x.whl")
    assert conventions.is_setup_cell(nbformat.v4.new_code_cell(other))


def test_no_file_edits_sys_path():
    """Imports go through the installed (editable) package, pytest's rootdir, or a
    subprocess's PYTHONPATH, never through sys.path edits (issue 15)."""
    edit = re.compile(r"sys\.path\.(insert|append|extend)\(|sys\.path\s*\+?=[^=]")
    skip = {".git", "_build", ".venv", "__pycache__"}
    offenders = [str(p.relative_to(ROOT)) for p in sorted(ROOT.rglob("*.py"))
                 if not skip & set(p.relative_to(ROOT).parts)
                 and p.name != "test_conventions.py"
                 and edit.search(p.read_text(encoding="utf-8", errors="replace"))]
    assert not offenders, f"these files edit sys.path: {offenders}"


def test_results_url_is_the_configured_repository():
    # chapters read committed results from GitHub where the repository is not checked out
    from resnet_edu.notebook import RESULTS_URL

    url, branch = conventions.repository()
    owner_repo = url.removeprefix("https://github.com/")
    assert (f"https://raw.githubusercontent.com/{owner_repo}/{branch}/"
                           f"{conventions.BOOK_FOLDER}/results/") == RESULTS_URL


# --------------------------------------------------------------------------------------
# The stamp of an executed notebook (resnet_edu/tools/stamp.py)
# --------------------------------------------------------------------------------------
def _mini_checkout(root: Path) -> None:
    for rel in ("resnet_edu/__init__.py", "resnet_edu/train/config.py",
                "resnet_edu/classroom/sandbox.py", "resnet_edu/tools/stamp.py",
                "resnet_edu/cli/train.py", "resnet_edu/__main__.py",
                "resnet_edu/exercises/__init__.py", "resnet_edu/exercises/ch01.py",
                "resnet_edu/exercises/ch02.py", "book/results/run.json", "book/results/other.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"# {rel}\n")


def test_the_stamp_names_what_changed_and_ignores_what_cannot_change_an_output(tmp_path):
    from resnet_edu.tools import stamp

    _mini_checkout(tmp_path)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 1. Title"),
        nbformat.v4.new_code_cell('r = load_results("run.json")\ncheck("ch01-x", f)')])
    missing = stamp.differences(nb, tmp_path)
    assert len(missing) == 1 and "no stamp" in missing[0]
    stamp.write(nb, tmp_path)
    assert stamp.differences(nb, tmp_path) == []
    assert set(stamp.stored(nb)["results"]) == {"run.json"}
    assert "resnet_edu/exercises/ch02.py" not in stamp.stored(nb)["package"]

    for rel in ("resnet_edu/classroom/sandbox.py", "resnet_edu/tools/stamp.py",
                "resnet_edu/exercises/ch02.py", "book/results/other.json",
                "resnet_edu/cli/train.py"):                   # this notebook runs no command
        (tmp_path / rel).write_text("changed\n")                 # none of these can matter
    nb.cells[0].source = "# 1. Another title"                    # markdown does not run
    assert stamp.differences(nb, tmp_path) == []

    (tmp_path / "resnet_edu/train/config.py").write_text("lr = 0.05\n")
    (tmp_path / "book/results/run.json").write_text("{}\n")
    nb.cells[1].source += "\nprint(r)"
    assert stamp.differences(nb, tmp_path) == [
        "its code cells", "results file run.json (changed)",
        "package file resnet_edu/train/config.py (changed)"]
    stamp.write(nb, tmp_path)
    nb.cells[1].source += '\nsubprocess.run([sys.executable, "-m", "resnet_edu", "train"])'
    assert "package file resnet_edu/cli/train.py (new)" in stamp.differences(nb, tmp_path)


def test_no_chapter_runs_what_the_stamp_leaves_out():
    """The stamp skips resnet_edu.classroom and resnet_edu.tools: true only while no
    chapter's code uses them."""
    offenders = [path.name for path in conventions.book_notebooks(ROOT)
                 for cell in nbformat.read(path, as_version=4).cells
                 if cell.cell_type == "code"
                 and re.search(r"resnet_edu[./](classroom|tools)\b|\b(classroom|tools)\s+import",
                               cell.source)]
    assert not offenders, f"these notebooks use classroom/tools; update stamp.NOT_INPUTS: {offenders}"


def _imports_of_the_cli(source: str):
    """(line, enclosing function name or None) of every import of resnet_edu.cli in ``source``."""
    import ast

    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                else function
            if isinstance(child, ast.ImportFrom):
                module = child.module or ""
                if (child.level and module.split(".")[0] == "cli") or \
                        module.startswith("resnet_edu.cli"):
                    found.append((child.lineno, function))
            visit(child, name)

    visit(ast.parse(source), None)
    return found


def test_only_the_cli_helpers_lead_into_the_command_line():
    """The stamp counts resnet_edu/cli/ only for notebooks that run `python -m resnet_edu` or
    call a `cli_*` helper: true while no other package code imports the command line."""
    assert _imports_of_the_cli("def cli_x():\n    from ..cli import main\n") == [(2, "cli_x")]
    assert _imports_of_the_cli("from ..cli.argtypes import seed\n") == [(1, None)]
    package = ROOT / "resnet_edu"
    offenders = [f"{path.relative_to(package)}:{line}"
                 for path in sorted(package.rglob("*.py"))
                 if path.relative_to(package).parts[0] not in ("cli", "classroom", "tools")
                 and path.name != "__main__.py"
                 for line, function in _imports_of_the_cli(path.read_text(encoding="utf-8"))
                 if not (function or "").startswith("cli_")]
    assert not offenders, ("these modules import resnet_edu.cli outside a cli_* function; "
                           f"update resnet_edu/tools/stamp.py's COMMAND_LINE rule: {offenders}")
