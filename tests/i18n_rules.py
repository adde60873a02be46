"""What a translation must keep from its English message (issue 23), in one place.

A message of the catalogues is a piece of MyST source: a paragraph, a heading, a list item,
a caption. Its translation is parsed the same way when the Korean edition is built, so the
parts that are not prose must come through unchanged:

- inline code (`` `x` ``) and math (``$x$``, ``$$x$$`` and display blocks), character for character;
- roles: the same role names with the same targets (``{ref}`text <label>``` may translate its
  text, not its label; ``{cite}`key``` keeps its keys);
- links: the same targets (the link text is translated);
- numbers: every number of the English (digits, with their decimal point) appears in the
  translation as often;
- emphasis: as many ``**bold**`` spans.

And the glossary (locales/ko/glossary.yml): where the English prose uses a term, the Korean
uses its one rendering. ``problems(msgid, msgstr, terms)`` lists what breaks these rules, one
sentence each; tests/test_i18n.py and scripts/po_sheet.py both call it.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "locales" / "ko" / "glossary.yml"

_CODE = re.compile(r"(`+)(.+?)\1", re.S)
_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)(.+?)(?<![\\$])\$", re.S)
_ROLE = re.compile(r"\{([\w:.-]+)\}`([^`]*)`")
_LINK = re.compile(r"\]\(([^)\s]+)\)|<(https?://[^>\s]+)>")
_URL = re.compile(r"https?://\S+")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", re.S)
_QUOTED = re.compile(r"\"[^\"]+\"|“[^”]+”")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _role_target(name: str, body: str) -> str:
    """The part of a role that must not change: the label of `text <label>`, else the body."""
    match = re.search(r"<([^<>]+)>\s*$", body)
    return f"{name}:{match.group(1) if match else body}"


def _without_markup(text: str) -> str:
    """The prose of a message: code, math, roles, link targets and URLs cut out."""
    for pattern in (_ROLE, _CODE, _DISPLAY_MATH, _INLINE_MATH):
        text = pattern.sub(" ", text)
    return _URL.sub(" ", _LINK.sub(" ", text))


def invariants(text: str) -> dict[str, Counter]:
    """The parts of a message a translation keeps, each as a multiset."""
    roles = Counter(_role_target(name, body) for name, body in _ROLE.findall(text))
    no_roles = _ROLE.sub(" ", text)
    code = Counter(body for _, body in _CODE.findall(no_roles))
    no_code = _CODE.sub(" ", no_roles)
    display = Counter(_DISPLAY_MATH.findall(no_code))
    no_display = _DISPLAY_MATH.sub(" ", no_code)
    inline = Counter(_INLINE_MATH.findall(no_display))
    no_math = _INLINE_MATH.sub(" ", no_display)
    links = Counter(a or b for a, b in _LINK.findall(no_math))
    prose = _URL.sub(" ", _LINK.sub(" ", no_math))
    return {
        "inline code": code,
        "math": display + inline,
        "roles": roles,
        "link targets": links,
        "numbers": Counter(_NUMBER.findall(prose)),
        "bold spans": Counter({"**": len(_BOLD.findall(no_math))}),
    }


def load_glossary(path: Path = GLOSSARY) -> list[dict]:
    return list(yaml.safe_load(path.read_text(encoding="utf-8"))["terms"])


def _term_pattern(english: str) -> re.Pattern:
    words = r"[\s-]+".join(re.escape(word) for word in english.split())
    return re.compile(rf"(?<![\w-]){words}(?:s|es)?(?![\w-])", re.I)


def glossary_problems(msgid: str, msgstr: str, terms: list[dict]) -> list[str]:
    """Terms the English prose uses whose Korean rendering the translation lacks.

    A message whose source is already Korean (a quotation of the original post, which writes
    Convolution, Gradient, weight in English) is kept verbatim and is not English prose."""
    if msgstr == msgid and _HANGUL.search(msgid):
        return []
    prose = _QUOTED.sub(" ", _without_markup(msgid))
    found = []
    # longest terms first; a longer term's occurrence is not also one of the shorter terms
    # inside it ("gradient descent" is 경사 하강법, not a use of "gradient")
    for term in sorted(terms, key=lambda term: -len(term["en"])):
        pattern = _term_pattern(term["en"])
        used = pattern.search(prose)
        prose = pattern.sub(" ", prose)
        if used and not any(ko in msgstr for ko in [term["ko"], *term.get("or", [])]):
            found.append(f"glossary: the English says {term['en']!r}; "
                         f"the Korean must use {term['ko']!r}")
    return found


_NUMBER_WORDS = dict(zip(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split(), range(21)))
_NUMBER_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "hundred": 100, "thousand": 1000,
                      "half": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4,
                      "fifth": 5, "fifths": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9,
                      "tenth": 10, "seventeenth": 17, "hundredth": 100, "thousandth": 1000,
                      "zeros": 0, "zeroes": 0, "zeroed": 0, "zeroing": 0,
                      "double": 2, "twice": 2, "once": 1, "single": 1, "first": 1, "second": 2,
                      "a": 1, "an": 1})   # a quarter = 1/4, a minute = 1분, a percent = 1 %


def spelled_numbers(msgid: str) -> Counter:
    """Numbers the English writes as words ("two", "a third"): the Korean may write them in
    digits (두 개 or 2개, 1이 아닌), as Korean usually does."""
    prose = _without_markup(msgid)
    words = re.findall(r"[a-z]+", prose.lower())
    found = Counter({str(_NUMBER_WORDS[w]): 99 for w in words if w in _NUMBER_WORDS})
    for roman in re.findall(r"\bPart (I{1,3}|IV)\b", prose):   # Part II -> 2부
        found[str({"I": 1, "II": 2, "III": 3, "IV": 4}[roman])] = 99
    return found


def problems(msgid: str, msgstr: str, terms: list[dict] | None = None) -> list[str]:
    """Every rule the translation `msgstr` of `msgid` breaks, one sentence each."""
    if not msgstr:
        return ["not translated"]
    found = []
    english, korean = invariants(msgid), invariants(msgstr)
    for kind, expected in english.items():
        got = korean[kind]
        if got != expected:
            missing, extra = expected - got, got - expected
            if kind == "numbers":
                extra -= spelled_numbers(msgid)
            parts = ([f"missing {sorted(missing)}"] if missing else []) + \
                    ([f"not in the English {sorted(extra)}"] if extra else [])
            if parts:
                found.append(f"{kind}: " + "; ".join(parts))
    if terms:
        found += glossary_problems(msgid, msgstr, terms)
    return found
