"""Translate a page's catalogue through a YAML worksheet instead of editing the .po by hand.

    python scripts/po_sheet.py export book/01_convolution SHEET.yml   # messages to translate
    python scripts/po_sheet.py import book/01_convolution SHEET.yml   # the `ko:` texts back in
    python scripts/po_sheet.py check  book/01_convolution             # every rule, per message

A worksheet lists each message as `en` (the English MyST source) and `ko` (yours to write),
in literal YAML blocks, so backslashes and quotes need no escaping. `export` fills in the
messages that have no prose (a display formula, a bare identifier): their translation is the
English itself. `import` matches each entry to its message by the English text, writes the
translation and clears the fuzzy flag; `check` applies tests/i18n_rules.py (markup, numbers,
glossary) to every translated message and exits 1 if any breaks a rule.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import polib
import yaml

ROOT = Path(__file__).resolve().parents[1]
CATALOGUES = ROOT / "locales" / "ko" / "LC_MESSAGES"


def _rules():
    spec = importlib.util.spec_from_file_location("i18n_rules", ROOT / "tests" / "i18n_rules.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def catalogue(page: str) -> Path:
    path = CATALOGUES / f"{page.removesuffix('.po')}.po"
    if not path.is_file():
        sys.exit(f"error: no catalogue {path.relative_to(ROOT)}; pages are named like book/01_convolution")
    return path


class _Literal(str):
    pass


yaml.SafeDumper.add_representer(
    _Literal, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|"))


def _verbatim(rules, msgid: str) -> bool:
    """A message with nothing to translate: a display formula (its source starts on a new
    line) or one without letters outside code and math."""
    return msgid.startswith("\n") or not any(ch.isalpha() for ch in rules._without_markup(msgid))


def export(page: str, sheet: Path, everything: bool) -> None:
    rules, po = _rules(), polib.pofile(str(catalogue(page)))
    entries = []
    for entry in po:
        if _verbatim(rules, entry.msgid):
            entry.msgstr = entry.msgstr or entry.msgid
            continue
        if everything or not entry.msgstr:
            entries.append({"en": _Literal(entry.msgid), "ko": _Literal(entry.msgstr or "")})
    po.save()
    sheet.write_text(yaml.safe_dump(entries, allow_unicode=True, sort_keys=False, width=10**6),
                     encoding="utf-8")
    print(f"{len(entries)} messages to translate -> {sheet}")


def import_(page: str, sheet: Path) -> None:
    po = polib.pofile(str(catalogue(page)))
    by_id = {entry.msgid: entry for entry in po}
    done = 0
    for item in yaml.safe_load(sheet.read_text(encoding="utf-8")) or []:
        english, korean = item["en"], (item.get("ko") or "").strip("\n")
        if english not in by_id:
            sys.exit(f"error: the worksheet's message is not in the catalogue: {english[:80]!r}")
        if korean.strip():
            by_id[english].msgstr = korean
            if "fuzzy" in by_id[english].flags:
                by_id[english].flags.remove("fuzzy")
            done += 1
    po.save()
    print(f"{done} translations written to {catalogue(page).relative_to(ROOT)}")


def check(page: str) -> int:
    rules, po = _rules(), polib.pofile(str(catalogue(page)))
    terms, bad = rules.load_glossary(), 0
    for entry in po:
        if not entry.msgstr:
            continue
        for problem in rules.problems(entry.msgid, entry.msgstr, terms):
            bad += 1
            print(f"{entry.msgid[:70]!r}\n    {problem}")
    left = sum(1 for entry in po if not entry.msgstr)
    print(f"{page}: {len(po)} messages, {left} untranslated, {bad} problems")
    return 1 if bad or left else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["export", "import", "check"])
    parser.add_argument("page", help="the page's catalogue, e.g. book/01_convolution")
    parser.add_argument("sheet", nargs="?", type=Path, help="the worksheet (export, import)")
    parser.add_argument("--all", action="store_true", help="export translated messages too")
    args = parser.parse_args(argv)
    if args.command != "check" and args.sheet is None:
        parser.error(f"{args.command} needs a worksheet path")
    if args.command == "export":
        export(args.page, args.sheet, args.all)
    elif args.command == "import":
        import_(args.page, args.sheet)
    else:
        return check(args.page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
