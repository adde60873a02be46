"""Re-extract the book's messages and merge them into the Korean catalogues (issue 23).

    python scripts/catalogues.py                    # every page: extract, merge, clean
    python scripts/catalogues.py book/running       # only these pages' catalogues
    python scripts/catalogues.py --extract-only DIR # the .pot files into DIR, nothing merged

`make catalogues` runs the first line. Extraction is Sphinx's gettext builder over the whole
toc (`jupyter-book build . --builder custom --custom-builder gettext`, into a temporary
folder); the merge is `sphinx-intl update`, which adds new messages (untranslated), marks
changed ones fuzzy and keeps the translations of unchanged ones. This script then removes
the obsolete entries (messages whose English is gone) and writes one clean header in every
catalogue: the book's title, `Language: ko`, no fuzzy flag.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "locales"
LANGUAGE = "ko"
PROJECT = "ResNet from one convolution"
HEADER = (f"Korean translation of {PROJECT}.\n"
          "Copyright (C) 2026 The resnet-edu authors\n"
          "This file is distributed under the same license as the book.\n"
          "Messages: python scripts/catalogues.py; translations: python scripts/po_sheet.py")


def build_environment() -> dict[str, str]:
    """This Python's environment, with the repository importable (autodoc's API page)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def extract(out_dir: Path) -> Path:
    """Run the gettext builder into OUT_DIR; return the folder of the .pot files."""
    jb = Path(sys.executable).with_name("jupyter-book")
    command = [str(jb) if jb.exists() else "jupyter-book", "build", str(ROOT),
               "--path-output", str(out_dir), "--builder", "custom", "--custom-builder", "gettext"]
    proc = subprocess.run(command, cwd=ROOT, env=build_environment(), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit("error: message extraction failed:\n" + (proc.stdout + proc.stderr)[-3000:])
    pot_dir = out_dir / "_build" / "gettext"
    shutil.rmtree(pot_dir / "_static", ignore_errors=True)   # copied assets, no messages
    for pot in pot_dir.rglob("*.pot"):
        drop_empty_messages(pot)
    return pot_dir


def drop_empty_messages(pot_path: Path) -> None:
    """Remove `msgid ""` entries other than the header: sphinx-external-toc gives a toctree
    without a caption (the API reference's list of its pages) `rawcaption = ""`, and
    Sphinx's gettext builder writes that out as a message with nothing to translate. (On
    the text: polib reads the second `msgid ""` as the header and loses the real one.)"""
    text = pot_path.read_text(encoding="utf-8")
    cleaned = _EMPTY_MESSAGE.sub("", text)
    if cleaned != text:
        pot_path.write_text(cleaned, encoding="utf-8")


_EMPTY_MESSAGE = re.compile(r'^(?:#.*\n)*msgid ""\nmsgstr ""\n(?:\n|\Z)', flags=re.M)


def clean(po_path: Path) -> None:
    """No obsolete entries; no `python-format` flags; the book's header without the fuzzy
    flag. (Babel flags every message with a `%` as a Python format string; these are MyST
    prose, and `msgfmt -c` would then reject a Korean `95 %로`.)"""
    po = polib.pofile(str(po_path))
    for entry in po.obsolete_entries():
        po.remove(entry)
    for entry in po:
        if "python-format" in entry.flags:
            entry.flags.remove("python-format")
    po.header = HEADER
    po.metadata_is_fuzzy = False
    po.metadata["Project-Id-Version"] = PROJECT
    po.metadata["Language"] = LANGUAGE
    po.metadata["Language-Team"] = "Korean"
    po.metadata.pop("POT-Creation-Date", None)   # a date in every file on every merge: noise
    po.metadata.pop("PO-Revision-Date", None)
    po.metadata.pop("Last-Translator", None)
    po.metadata["Content-Type"] = "text/plain; charset=UTF-8"
    po.save()


def merge(pot_dir: Path, pages: list[str]) -> list[Path]:
    """`sphinx-intl update` for PAGES (all when empty), then `clean` each catalogue."""
    with tempfile.TemporaryDirectory() as tmp:
        source = pot_dir
        if pages:
            source = Path(tmp)
            for page in pages:
                pot = pot_dir / f"{page.removesuffix('.po').removesuffix('.pot')}.pot"
                if not pot.is_file():
                    sys.exit(f"error: no messages for page {page!r}; pages are named like book/01_convolution")
                (source / pot.relative_to(pot_dir)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(pot, source / pot.relative_to(pot_dir))
        subprocess.run([sys.executable, "-m", "sphinx_intl", "update", "-p", str(source),
                        "-l", LANGUAGE, "-d", str(LOCALES)], check=True, stdout=subprocess.DEVNULL)
        merged = [LOCALES / LANGUAGE / "LC_MESSAGES" / pot.relative_to(source).with_suffix(".po")
                  for pot in sorted(source.rglob("*.pot"))]
    for po_path in merged:
        clean(po_path)
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", help="pages to merge, like book/running (default: all)")
    parser.add_argument("--extract-only", type=Path, metavar="DIR",
                        help="write the .pot files into DIR and merge nothing")
    args = parser.parse_args(argv)
    if args.extract_only:
        print(extract(args.extract_only.resolve()))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        merged = merge(extract(Path(tmp)), args.pages)
    for po_path in merged:
        print(f"merged {po_path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
