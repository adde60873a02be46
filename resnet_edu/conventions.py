"""The book's conventions, defined once: cell tags, the setup cell, MyST directives,
the chapter notebooks (from ``_toc.yml``) and the environment their kernels run in.

Everything that reads or writes the book (the classroom tools, the notebook runner in
``resnet_edu.tools``, the tests) imports these definitions instead of repeating them.

Nothing here assumes a source checkout: every function that reads the book takes its
root folder (the one holding ``_config.yml`` and ``_toc.yml``) as ``root`` and defaults to
the checkout this package was imported from, when there is one (:func:`checkout_root`).
``pyyaml``, ``markdown-it-py`` and ``mdit-py-plugins`` are imported only when needed
(jupyter-book installs all three; the ``classroom`` extra declares them).
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]

# --------------------------------------------------------------------------------------
# Cell tags and markers
# --------------------------------------------------------------------------------------
SETUP_TAG = "hide-input"          # the setup cell: its code is folded on the page
SOLUTION_TAG = "solution"         # a code cell holding an exercise's solution
CHECK_TAG = "check"               # a code cell calling resnet_edu.exercises.check
RAISES_TAG = "raises-exception"   # a cell whose error is the point (nbval and the build)
WARNING_TAG = "warning-on-purpose"  # a cell whose stderr output (a warning) is the point
# nbval's own markers, as nbval reads them: a comment line anywhere in the cell
# ("# NBVAL_IGNORE_OUTPUT", any number of "#"), or the tag spelled in lower case with dashes
NBVAL_IGNORE_COMMENT = "# NBVAL_IGNORE_OUTPUT"      # the spelling the book writes
NBVAL_IGNORE_MARKERS = ("NBVAL_IGNORE_OUTPUT", "PYTEST_VALIDATE_IGNORE_OUTPUT")
NBVAL_SKIP_MARKERS = ("NBVAL_SKIP",)
METADATA_KEY = "resnet_edu"       # the package's entry in a notebook's metadata
CHECK_CALL = re.compile(r"""\bcheck\(\s*(['"])(?P<id>[\w.-]+)\1""")   # check("ch01-x", ...)
EXERCISE_DIRECTIVES = ("exercise", "exercise-start")


def cell_tags(cell) -> List[str]:
    """The tags of a notebook cell (an empty list when it has none)."""
    return list(cell.get("metadata", {}).get("tags", []) or [])


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source   # raw JSON: lines


def _first_line(cell) -> str:
    return _source(cell).lstrip().split("\n", 1)[0].strip()


def _has_nbval_marker(cell, markers: Tuple[str, ...]) -> bool:
    if cell.get("cell_type") != "code":
        return False
    tags = {m.lower().replace("_", "-") for m in markers}
    if tags & set(cell_tags(cell)):
        return True
    comments = (line.strip().lstrip("#").strip() for line in _source(cell).splitlines()
                if line.strip().startswith("#"))
    return any(c in markers for c in comments)


def ignores_output(cell) -> bool:
    """True when nbval runs this code cell but does not compare its outputs."""
    return _has_nbval_marker(cell, NBVAL_IGNORE_MARKERS)


def is_skipped(cell) -> bool:
    """True when nbval does not run this code cell at all."""
    return _has_nbval_marker(cell, NBVAL_SKIP_MARKERS)


# --------------------------------------------------------------------------------------
# The book root and its configuration
# --------------------------------------------------------------------------------------
def checkout_root() -> Optional[Path]:
    """The repository this package was imported from, or None for an installed package."""
    candidate = Path(__file__).resolve().parents[1]
    if (candidate / "_config.yml").is_file() and (candidate / "_toc.yml").is_file():
        return candidate
    return None


def book_root(root: Optional[PathLike] = None) -> Path:
    """``root`` as a Path, or the checkout; ValueError when neither is a book."""
    if root is None:
        found = checkout_root()
        if found is None:
            raise ValueError("resnet_edu is installed without the book's sources: pass the "
                             "book's root folder (the one holding _config.yml and _toc.yml)")
        return found
    path = Path(root)
    if not (path / "_config.yml").is_file():
        raise ValueError(f"{path} is not the book's root: it has no _config.yml")
    return path


def _yaml(path: Path) -> dict:
    import yaml

    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def load_config(root: Optional[PathLike] = None) -> dict:
    """The parsed ``_config.yml`` of the book."""
    return _yaml(book_root(root) / "_config.yml")


def repository(root: Optional[PathLike] = None) -> Tuple[str, str]:
    """(url, branch) of the book's repository, from ``_config.yml``."""
    repo = load_config(root)["repository"]
    return repo["url"].rstrip("/"), repo["branch"]


# --------------------------------------------------------------------------------------
# The setup cell (the first cell of every notebook)
# --------------------------------------------------------------------------------------
# {target} is what `pip install` gets. The book always renders it from _config.yml
# (install_target); tests/test_colab_install.py renders it with a locally built wheel,
# so the cell Colab users run is the cell that test runs, word for word otherwise.
SETUP_TEMPLATE = '''\
# Setup: in Colab this installs resnet_edu from the book's repository; locally it does nothing.
import importlib.util, subprocess, sys
if importlib.util.find_spec("resnet_edu") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "{target}"], check=True)
import resnet_edu
resnet_edu.setup_notebook(seed=0)'''
SETUP_MARKER = "# Setup"          # how the setup cell's source starts


def install_target(root: Optional[PathLike] = None) -> str:
    """What the setup cell installs: the repository's branch, as pip's ``git+URL@BRANCH``."""
    url, branch = repository(root)
    return f"git+{url}@{branch}"


def setup_source(root: Optional[PathLike] = None, *, target: Optional[str] = None) -> str:
    """The exact source of the setup cell; ``target`` replaces the install target."""
    if target is None:
        target = install_target(root)
    if '"' in target or "\\" in target or "\n" in target:
        raise ValueError(f"install target {target!r}: quotes, backslashes and newlines "
                         "are not supported (it is written into a Python string)")
    return SETUP_TEMPLATE.format(target=target)


def is_setup_cell(cell) -> bool:
    """True for a code cell that starts like the setup cell (whatever its install target)."""
    return cell.get("cell_type") == "code" and _first_line(cell).startswith(SETUP_MARKER)


# --------------------------------------------------------------------------------------
# The notebooks of the book, from _toc.yml
# --------------------------------------------------------------------------------------
BOOK_FOLDER = "book"
CHAPTER_FILE = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")   # 04_residual_block.ipynb


def toc_entries(root: Optional[PathLike] = None) -> List[str]:
    """Every ``file:`` entry of ``_toc.yml`` (its root first), in reading order, as written."""
    toc = _yaml(book_root(root) / "_toc.yml")
    found: List[str] = [toc["root"]]

    def walk(node) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key) or [])

    walk({k: v for k, v in toc.items() if k != "root"})
    return found


def resolve_toc_entry(entry: str, root: Optional[PathLike] = None) -> Optional[Path]:
    """The file a toc entry names (the entry may omit its suffix), or None if missing."""
    path = book_root(root) / entry
    candidates = [path] if path.suffix in (".ipynb", ".md") else []
    candidates += [path.with_name(path.name + suffix) for suffix in (".ipynb", ".md")]
    return next((c for c in candidates if c.is_file()), None)


def book_notebooks(root: Optional[PathLike] = None) -> List[Path]:
    """Every notebook of the book: those of ``_toc.yml`` in reading order, then any
    ``book/*.ipynb`` the toc does not list yet (a chapter being written still runs)."""
    base = book_root(root)
    in_toc = [p for p in (resolve_toc_entry(e, base) for e in toc_entries(base))
              if p is not None and p.suffix == ".ipynb"]
    rest = sorted(p for p in (base / BOOK_FOLDER).glob("*.ipynb") if p not in in_toc)
    return in_toc + rest


def chapter_number(path: PathLike) -> Optional[str]:
    """"04" for ``04_residual_block.ipynb``; None for a notebook that is not a chapter."""
    m = CHAPTER_FILE.match(Path(path).name)
    return m.group(1) if m else None


def chapter_notebooks(root: Optional[PathLike] = None) -> List[Path]:
    """The chapters: the book's notebooks named ``NN_topic.ipynb``, in reading order."""
    return [p for p in book_notebooks(root) if chapter_number(p)]


# --------------------------------------------------------------------------------------
# The kernel environment
# --------------------------------------------------------------------------------------
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def kernel_environment(root: Optional[PathLike] = None, *, threads: Optional[int] = None,
                       base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment every notebook kernel runs in (execute, nbval, grading, fixtures).

    ``base`` (default ``os.environ``) plus: deterministic string hashing (set ordering
    prints the same), figures inline, and, when ``root`` (default: the checkout) holds
    the package's sources, that folder first on ``PYTHONPATH`` so the kernel imports the
    same ``resnet_edu`` as the caller and the setup cell skips its ``pip install``.
    ``threads`` caps OpenMP/MKL threads unless already set: several kernels at once with
    more threads than cores make PyTorch's threads spin against each other.
    """
    env = dict(os.environ if base is None else base)
    env["PYTHONHASHSEED"] = "0"
    env["MPLBACKEND"] = INLINE_BACKEND
    source = Path(root) if root is not None else checkout_root()
    if source is not None and (source / "resnet_edu" / "__init__.py").is_file():
        parts = [str(source)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                 if p and p != str(source)]
        env["PYTHONPATH"] = os.pathsep.join(parts)
    if threads:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(name, str(threads))
    return env


# --------------------------------------------------------------------------------------
# MyST directives, parsed as MyST parses them (markdown-it-py + the colon-fence plugin)
# --------------------------------------------------------------------------------------
_DIRECTIVE_INFO = re.compile(r"^\{(?P<name>[\w:.+-]+)\}\s*(?P<arg>.*?)\s*$")
_OPTION = re.compile(r"^:(?P<key>[\w-]+):(?:[ \t]+(?P<value>.*?))?\s*$")


@dataclass(frozen=True, eq=False)
class Directive:
    """One ``{name}`` directive fence (backticks, tildes or colons) of a Markdown text.

    ``start``/``end``: the lines (0-based, end exclusive) of the whole fence in the text
    given to :func:`directives`, nested directives included (``depth`` 1, 2, ...).
    ``body`` is the content after the options; ``fence`` is the opening marker.
    """

    name: str
    argument: str
    options: Dict[str, str]
    body: str
    start: int
    end: int
    fence: str
    depth: int = 0
    children: Tuple[Directive, ...] = field(default=())

    @property
    def label(self) -> str:
        return self.options.get("label", "")


@functools.cache
def markdown_parser():
    """A markdown-it-py parser with the block syntax the book enables in ``_config.yml``
    (CommonMark, tables, colon fences, dollar math), as myst-parser builds its own."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.colon_fence import colon_fence_plugin
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    return (MarkdownIt("commonmark").enable("table")
            .use(colon_fence_plugin).use(dollarmath_plugin))


def split_options(content: str) -> Tuple[Dict[str, str], str, int]:
    """(options, body, lines the options take) of a directive's content (MyST syntax:
    ``:key: value`` lines, or a YAML block between ``---`` lines)."""
    lines = content.split("\n")
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is not None:
            import yaml

            data = yaml.safe_load("\n".join(lines[1:end])) or {}
            options = {str(k): "" if v is None else str(v) for k, v in data.items()}
            return options, "\n".join(lines[end + 1:]), end + 1
    options: Dict[str, str] = {}
    used = 0
    for line in lines:
        m = _OPTION.match(line.strip())
        if not m:
            break
        options[m["key"]] = m["value"] or ""
        used += 1
    return options, "\n".join(lines[used:]), used


def directives(markdown: str) -> List[Directive]:
    """Every directive of a Markdown text, in order, each with its nested directives
    (also listed here after their parent, so a flat walk sees them all)."""
    return _directives(markdown, 0, 0)


def _directives(markdown: str, _offset: int, _depth: int) -> List[Directive]:
    found: List[Directive] = []
    for token in markdown_parser().parse(markdown):
        if token.type not in ("fence", "colon_fence") or token.map is None:
            continue
        m = _DIRECTIVE_INFO.match(token.info.strip())
        if not m:
            continue                      # a plain code block
        options, body, used = split_options(token.content)
        start = _offset + token.map[0]
        nested = _directives(body, start + 1 + used, _depth + 1)
        found.append(Directive(m["name"], m["arg"], options, body, start,
                               _offset + token.map[1], token.markup, _depth,
                               tuple(d for d in nested if d.depth == _depth + 1)))
        found.extend(nested)
    return found


def without_directives(markdown: str, names: Iterable[str], *,
                       min_depth: int = 0) -> Tuple[str, int]:
    """``markdown`` with every directive named in ``names`` removed (at any depth, or only
    those nested ``min_depth`` deep or more: 1 spares the top-level ones), and how many
    were removed (a nested one inside a removed one is not counted). Runs of blank lines
    left behind shrink to one."""
    wanted = set(names)
    lines = markdown.split("\n")
    drop = [False] * len(lines)
    removed = 0
    for d in directives(markdown):
        if d.name in wanted and d.depth >= min_depth and not drop[d.start]:
            removed += 1
            for i in range(d.start, min(d.end, len(lines))):
                drop[i] = True
    text = "\n".join(line for line, gone in zip(lines, drop) if not gone)
    if removed:
        text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    return text, removed



# -- The exercise/solution convention (CONTRIBUTING.md, "Exercises"), walked once ------
@dataclass
class ExerciseWalk:
    """Where a walk down a notebook stands: in a ``{solution-start}`` gate or not, the
    gate's exercise (none named: the last), the last ``{exercise}`` label above."""

    gated: bool = False
    gate: Optional[str] = None
    last: Optional[str] = None

    @property
    def exercise(self) -> Optional[str]:
        """The exercise a cell here belongs to: the open gate's, else the last one above."""
        return self.gate or self.last

    def read(self, d: Directive) -> None:
        """Step over one top-level directive of a markdown cell."""
        if d.name == "solution-start":
            self.gated, self.gate = True, next(iter(d.argument.split()), self.last)
        elif d.name == "solution-end":
            self.gated, self.gate = False, None
        elif d.name in EXERCISE_DIRECTIVES and d.label:
            self.last = d.label

    def read_cell(self, cell) -> None:
        for d in (directives(_source(cell)) if cell.get("cell_type") == "markdown" else ()):
            if d.depth == 0:
                self.read(d)


def walk_exercises(cells: Iterable[Any]) -> Iterator[Tuple[int, Any, ExerciseWalk]]:
    """``(index, cell, where)`` per cell, ``where`` the walk before the cell's own directives."""
    walk = ExerciseWalk()
    for index, cell in enumerate(cells):
        yield index, cell, replace(walk)
        walk.read_cell(cell)


def is_solution_cell(cell) -> bool:
    return cell.get("cell_type") == "code" and SOLUTION_TAG in cell_tags(cell)


def is_check_cell(cell) -> bool:
    return cell.get("cell_type") == "code" and (
        CHECK_TAG in cell_tags(cell) or bool(CHECK_CALL.search(_source(cell))))
