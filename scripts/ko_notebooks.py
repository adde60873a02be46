"""Generate the Korean notebooks (issue 23) that the Korean edition's launch buttons open.

    python scripts/ko_notebooks.py                  # every notebook of the toc into ko/book/
    python scripts/ko_notebooks.py --out DIR        # into DIR/book/ instead (the sync test)
    python scripts/ko_notebooks.py --check          # exit 1 if a message is untranslated or not found

`make ko-notebooks` runs the first line. For each notebook of _toc.yml, ko/book/<name>.ipynb
is the English notebook with every Markdown cell translated from the page's catalogue
(locales/ko/LC_MESSAGES/book/<name>.po), every code cell byte-identical, and no outputs or
execution counts. The catalogue's messages are MyST source with line breaks collapsed, so a
message is found in a cell with any whitespace between its words (a wrapped line, an
indented list continuation, a block quote's next line). Longer messages are placed first and a place is used once, so
a short message (a heading, `Overview`) never lands inside a longer one. A message that is
untranslated, or that no Markdown cell contains, is reported; with --check that fails.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat
import polib

from resnet_edu.conventions import resolve_toc_entry, toc_entries

ROOT = Path(__file__).resolve().parents[1]

LANGUAGE = "ko"
CATALOGUES = ROOT / "locales" / LANGUAGE / "LC_MESSAGES"


# Between two words of a message: spaces, or a line break followed by the indentation of a
# list continuation or the `>` markers of a block quote.
_BETWEEN_WORDS = r"(?:[ \t]*\n[ \t]*(?:>[ \t]*)*|[ \t]+)+"


def message_pattern(msgid: str) -> re.Pattern:
    """MSGID with any whitespace between its words, not inside a longer word."""
    words = [re.escape(word) for word in msgid.split()]
    return re.compile(r"(?<![\w])" + _BETWEEN_WORDS.join(words) + r"(?![\w])")


def translate_text(text: str, messages: dict[str, str]) -> tuple[str, set[str]]:
    """TEXT with every message found replaced; the messages found."""
    claimed: list[tuple[int, int, str]] = []
    found = set()
    for msgid in sorted(messages, key=len, reverse=True):
        for match in message_pattern(msgid).finditer(text):
            start, end = match.span()
            if any(start < c_end and c_start < end for c_start, c_end, _ in claimed):
                continue
            claimed.append((start, end, messages[msgid]))
            found.add(msgid)
    for start, end, msgstr in sorted(claimed, reverse=True):
        text = text[:start] + msgstr + text[end:]
    return text, found


def catalogue_messages(page: str) -> tuple[dict[str, str], list[str]]:
    """(msgid -> translation, untranslated msgids) of PAGE's catalogue (fuzzy = untranslated)."""
    po = polib.pofile(str(CATALOGUES / f"{page}.po"))
    messages, untranslated = {}, []
    for entry in po:
        if entry.obsolete:
            continue
        if entry.translated():
            messages[entry.msgid] = entry.msgstr
        else:
            untranslated.append(entry.msgid)
    return messages, untranslated


def translate_notebook(source: Path, page: str) -> tuple[nbformat.NotebookNode, list[str]]:
    """The Korean notebook of SOURCE and the problems found (untranslated, not found)."""
    nb = nbformat.read(source, as_version=nbformat.NO_CONVERT)
    messages, untranslated = catalogue_messages(page)
    found: set[str] = set()
    korean = copy.deepcopy(nb)
    for cell in korean.cells:
        if cell.cell_type == "markdown":
            cell.source, cell_found = translate_text(cell.source, messages)
            found |= cell_found
        elif cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    problems = [f"{page}: untranslated: {msgid[:80]!r}" for msgid in untranslated]
    # A verbatim message (its translation is the English itself) may sit anywhere.
    problems += [f"{page}: found in no Markdown cell: {msgid[:80]!r}"
                 for msgid in messages if msgid not in found and messages[msgid] != msgid]
    return korean, problems


def toc_notebooks() -> list[tuple[Path, str]]:
    """(English notebook, page name like book/01_convolution) for each notebook of the toc."""
    pages = []
    for entry in toc_entries(ROOT):
        path = resolve_toc_entry(entry, ROOT)
        if path is not None and path.suffix == ".ipynb":
            pages.append((path, path.relative_to(ROOT).with_suffix("").as_posix()))
    return pages


def generate(out_root: Path) -> list[str]:
    """Write every Korean notebook under OUT_ROOT (as ko/ is: book/<name>.ipynb); the problems."""
    problems = []
    for source, page in toc_notebooks():
        korean, page_problems = translate_notebook(source, page)
        problems += page_problems
        target = out_root / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(korean, target)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / LANGUAGE, help="folder to write book/ into")
    parser.add_argument("--check", action="store_true", help="exit 1 on any untranslated or unplaced message")
    args = parser.parse_args(argv)
    problems = generate(args.out.resolve())
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(toc_notebooks())} notebooks written under {args.out}; {len(problems)} problems")
    return 1 if args.check and problems else 0


if __name__ == "__main__":
    sys.exit(main())
