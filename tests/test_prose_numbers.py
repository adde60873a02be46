"""Every number in a chapter's prose comes from its code, or is a cited figure.

The book promises that its numbers are computed, not typed in. This test holds each
chapter notebook to it. The rules (CONTRIBUTING.md, "Numbers in the prose"):

* Checked: every number in a Markdown cell (text, headings, tables, math, the bodies of
  directives such as exercises, admonitions and figure captions) that has a decimal point
  (``0.94``, ``1.2e-21``), a percent sign (``93%``) or three or more digits (``1,257``).
  Not checked: inline code and code blocks, links' targets, HTML, directive options and
  the arguments of path-like directives, and numbers that are part of a name
  (``ResNet-110``, ``CIFAR-100``, ``float32``, ``conv1x1``).
* It passes when the same number appears in the chapter's code cells (sources) or their
  outputs (text, stream, HTML, errors), read as numbers: thousands separators (``1,257``,
  ``1_257``) and signs are ignored; a prose number with ``d`` decimals matches any number
  that rounds to it at ``d`` decimals (prose ``0.94`` matches an output ``0.9437``);
  ``93.4%`` also matches the fraction ``0.934``; ``19.4M`` / ``25k`` / ``1.2B`` also match
  ``19,401,418`` / ``25,012`` / ``1.2e9``; an integer with trailing zeros right after
  "about", "around", "roughly", "approximately", "nearly", "almost", "~" or "≈"
  matches at the precision of its last non-zero digit (``about 2,000`` matches ``2,137``);
  a version ``2.14.1`` must appear as written.
* Or it is a cited figure: its sentence (a table: the table or the paragraph right before
  it) carries a ``{cite}`` role, or ``book/cited_numbers.yml`` lists it for that notebook
  with its source (format in that file). An allowlist entry whose number no longer
  appears in the notebook's prose fails, so the list cannot rot.

``python tests/test_prose_numbers.py [NOTEBOOK ...]`` prints every unmatched number.
"""
from __future__ import annotations

import bisect
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Dict, List, NamedTuple, Tuple

import nbformat
import pytest
import yaml

from resnet_edu import conventions

ROOT = Path(__file__).resolve().parents[1]
ALLOWLIST = ROOT / conventions.BOOK_FOLDER / "cited_numbers.yml"
CHAPTERS = conventions.chapter_notebooks(ROOT)

# directives whose argument is a path, a label or code, and whose body is not prose
NOT_PROSE = {"code", "code-block", "code-cell", "literalinclude", "include", "bibliography",
             "image", "raw", "eval-rst", "toctree", "tableofcontents", "glue"}
ARGUMENT_NOT_PROSE = NOT_PROSE | {"figure", "solution", "solution-start", "solution-end",
                                  "exercise-start", "exercise-end"}
CITE = re.compile(r"\{cite(:[a-z]+)?\}")
SCALE = {"k": 3, "K": 3, "M": 6, "B": 9, "G": 9}
APPROX = re.compile(r"(about|around|roughly|approximately|nearly|almost|~|≈)\s*$", re.I)
PROSE_NUMBER = re.compile(r"""
    (?<![\w.,])(?<![A-Za-z]-)               # not inside a word, a name (ResNet-110) or a number
    (?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?    # 1,257 or 1,257.5
         |\d+(?:\.\d+)+(?:[eE][-+]?\d+)?    # 0.94, 2.14.1, 1.2e-21
         |\d+(?:[eE][-+]?\d+)?)             # 1257, 1e-3
    (?P<suffix>\s?%|\s?[kKMBG]\b)?
    """, re.X)
CODE_NUMBER = re.compile(r"(?:\d+(?:[,_]\d+)*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


class Sentence(NamedTuple):
    text: str
    cited: bool


# --------------------------------------------------------------------------------------
# The prose: Markdown cells -> sentences (text with inline code blanked out)
# --------------------------------------------------------------------------------------
def _inline_text(token) -> str:
    parts = []
    for child in token.children or []:
        if child.type in ("text", "math_inline", "math_inline_double"):
            parts.append(child.content)
        elif child.type == "code_inline":
            parts.append("`code`")            # a cite key, a role target or code: no numbers
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts)


def _sentences(text: str) -> List[Sentence]:
    pieces = re.split(r"(?<=[.!?])\s+(?=[A-Z(\[*_`\"'$])", text)
    return [Sentence(p, bool(CITE.search(p))) for p in pieces if p.strip()]


def _directive_units(token) -> List[Sentence]:
    m = re.match(r"^\{(?P<name>[\w:.+-]+)\}\s*(?P<arg>.*)$", token.info.strip())
    if not m:
        return []                                  # a plain code block
    units = []
    if m["name"] not in ARGUMENT_NOT_PROSE and m["arg"]:
        units += _sentences(m["arg"])
    if m["name"] not in NOT_PROSE:
        units += prose_units(conventions.split_options(token.content)[1])
    return units


def prose_units(markdown: str) -> List[Sentence]:
    """The sentences of a Markdown text; a table is one unit, cited like its caption."""
    units: List[Sentence] = []
    table = None                       # the cells' texts while inside a table
    last_paragraph_cited = False
    for token in conventions.markdown_parser().parse(markdown):
        if token.type == "table_open":
            table = []
        elif token.type == "table_close":
            text = " | ".join(table)
            units.append(Sentence(text, bool(CITE.search(text)) or last_paragraph_cited))
            table = None
        elif token.type == "inline" and table is not None:
            table.append(_inline_text(token))
        elif token.type == "inline":
            found = _sentences(_inline_text(token))
            units += found
            last_paragraph_cited = any(s.cited for s in found)
        elif token.type in ("math_block", "math_block_label"):
            units.append(Sentence(token.content, False))
        elif token.type in ("fence", "colon_fence"):
            units += _directive_units(token)
    return units


# --------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------
class ProseNumber(NamedTuple):
    written: str           # as in the prose, e.g. "1,257" or "93.4%"
    key: str               # normalised for the allowlist: "1257", "93.4%"
    forms: Tuple[Tuple[float, float], ...]   # (value, half-width): matched if within
    version: bool


def _half(exponent: int) -> float:
    return 0.5 * 10.0 ** exponent * (1 + 1e-9)


def _forms(num: str, suffix: str, approx: bool) -> Tuple[Tuple[float, float], ...]:
    value = Decimal(num.replace(",", ""))
    exponent = value.as_tuple().exponent
    forms = [(abs(float(value)), _half(exponent))]
    if suffix == "%":
        forms.append((abs(float(value)) / 100, _half(exponent - 2)))
    elif suffix in SCALE:
        forms.append((abs(float(value)) * 10 ** SCALE[suffix], _half(exponent + SCALE[suffix])))
    digits = num.replace(",", "")
    if approx and exponent == 0 and digits.rstrip("0") != digits and digits.strip("0"):
        zeros = len(digits) - len(digits.rstrip("0"))
        forms.append((abs(float(value)), _half(zeros)))
    return tuple(forms)


def _plain(text: str) -> str:
    """LaTeX spellings as plain numbers: 1{,}088 and 1\\,088 -> 1,088; 1.8\\times10^{12} -> 1.8e12."""
    text = re.sub(r"(?<=\d)(?:\{,\}|\\,)(?=\d{3})", ",", text)
    return re.sub(r"(\d)\s*(?:\\times|\u00d7)\s*10\^\{?([-+]?\d+)\}?", r"\1e\2", text)


def prose_numbers(text: str) -> List[ProseNumber]:
    """The numbers of one sentence that the rule checks."""
    text = _plain(text)
    found = []
    for m in PROSE_NUMBER.finditer(text):
        num, suffix = m["num"], (m["suffix"] or "").strip()
        version = num.count(".") >= 2
        integer_digits = len(re.sub(r"\D", "", num.split(".")[0]))
        if not (version or "." in num or suffix == "%" or integer_digits >= 3):
            continue
        key = num.replace(",", "") + ("%" if suffix == "%" else suffix)
        forms = () if version else _forms(num, suffix, bool(APPROX.search(text[:m.start()])))
        found.append(ProseNumber(m.group(0).strip(), key, forms, version))
    return found


def code_numbers(nb) -> Tuple[List[float], str]:
    """Every number of the code cells' sources and outputs (sorted), and all that text
    (for versions): separators read both as thousands separators and as list commas."""
    texts = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        texts.append(cell.source)
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                texts.append(out.text)
            elif out.output_type == "error":
                texts.append(f"{out.ename}: {out.evalue}")
            else:
                data = out.get("data", {})
                texts += [data.get(k, "") for k in ("text/plain", "text/html", "text/markdown")]
    text = "\n".join(t if isinstance(t, str) else "".join(t) for t in texts)
    values = set()
    for m in CODE_NUMBER.finditer(text):
        token = m.group(0)
        for piece in [token.replace(",", "").replace("_", "")] + re.split(r"[,_]", token):
            try:
                values.add(abs(float(piece.rstrip("."))))
            except ValueError:                      # "1.2.3" pieces, an empty string
                pass
    return sorted(values), text


def matches(number: ProseNumber, values: List[float], text: str) -> bool:
    if number.version:
        return re.search(rf"(?<![\d.]){re.escape(number.written)}(?![\d.])", text) is not None
    for value, half in number.forms:
        i = bisect.bisect_left(values, value - half)
        if i < len(values) and values[i] <= value + half:
            return True
    return False


# --------------------------------------------------------------------------------------
# One chapter
# --------------------------------------------------------------------------------------
def allowlist() -> Dict[str, Dict[str, str]]:
    """book/cited_numbers.yml: {notebook file name: {number as written: its source}}."""
    data = yaml.safe_load(ALLOWLIST.read_text(encoding="utf-8")) if ALLOWLIST.exists() else None
    return data or {}


def _normalise(written: str) -> str:
    return re.sub(r"[,\s]", "", str(written))


def unmatched_numbers(path: Path) -> Tuple[List[Tuple[str, str]], List[str]]:
    """([(number, sentence)] that no cell produces and nothing cites, [prose keys])."""
    nb = nbformat.read(path, as_version=4)
    values, text = code_numbers(nb)
    allowed = {_normalise(k) for k in (allowlist().get(path.name) or {})}
    failures, keys = [], []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for sentence in prose_units(cell.source):
            for number in prose_numbers(sentence.text):
                keys.append(number.key)
                if sentence.cited or number.key in allowed or matches(number, values, text):
                    continue
                failures.append((number.written, " ".join(sentence.text.split())[:160]))
    return failures, keys


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_every_number_in_the_prose_is_computed_or_cited(path):
    failures, _ = unmatched_numbers(path)
    listing = "\n".join(f"  {num!r:>10} in: {sentence}" for num, sentence in failures)
    assert not failures, (
        f"{path.name}: {len(failures)} numbers in the prose appear in no code cell or "
        f"output and are not cited: print them from a cell, cite them in the same sentence "
        f"with {{cite}}, or list them with their source in book/cited_numbers.yml\n{listing}")


def test_the_allowlist_is_well_formed_and_current():
    entries = allowlist()
    known = {p.name: p for p in CHAPTERS}
    assert set(entries) <= set(known), f"cited_numbers.yml names unknown notebooks: " \
                                       f"{sorted(set(entries) - set(known))}"
    for name, numbers in entries.items():
        assert isinstance(numbers, dict) and numbers, f"{name}: map each number to its source"
        _, keys = unmatched_numbers(known[name])
        for written, source in numbers.items():
            assert isinstance(source, str) and source.strip(), f"{name}: {written!r} needs a source"
            assert _normalise(written) in keys, (
                f"{name}: cited_numbers.yml lists {written!r}, which the prose no longer has")


def test_the_rules_on_examples():
    """The matching rules of the docstring, on hand-made sentences."""
    def ok(sentence: str, outputs: str) -> bool:
        values, text = code_numbers(nbformat.v4.new_notebook(cells=[
            nbformat.v4.new_code_cell(outputs)]))
        return all(matches(n, values, text) for n in prose_numbers(sentence))

    assert [n.written for n in prose_numbers("ResNet-110 has 1.7M weights, 93% of 56")] \
        == ["1.7M", "93%"]
    assert ok("it reaches 0.94", "0.9437") and not ok("it reaches 0.95", "0.9437")
    assert ok("1,257 parameters", "1257") and not ok("1,258 parameters", "1257")
    assert ok("an error of 7.93%", "0.0793") and ok("0.5%", "0.005")
    assert ok("19.4M parameters", "19401418") and not ok("19.5M parameters", "19401418")
    assert ok("about 2,000x", "2137.2") and not ok("2,000x", "2137.2")
    assert ok("torch 2.14.1", "torch 2.14.1") and not ok("torch 2.14.1", "2.14.10")
    assert ok(r"$2^{27} \approx 1.3 \times 10^8$ paths", "134217728")
    assert [n.written for n in prose_numbers(r"$4{,}224$ and $50\,000$")] == ["4,224", "50,000"]
    assert [s.cited for s in prose_units("A 7.93% error {cite}`he2016`. Then 0.5.")] \
        == [True, False]


if __name__ == "__main__":
    paths = [Path(a).resolve() for a in sys.argv[1:]] or CHAPTERS
    for p in paths:
        found, _ = unmatched_numbers(p)
        print(f"== {p.name}: {len(found)} unmatched")
        for num, sentence in found:
            print(f"  {num!r:>10}  {sentence}")
