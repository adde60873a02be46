"""The Korean edition's catalogues, glossary, settings and notebooks (issue 23), without a build.

* Every catalogue (locales/ko/LC_MESSAGES/) is 100 % translated, nothing fuzzy or obsolete,
  with the book's header; and in step with the English: a fresh extraction of the messages
  (scripts/catalogues.py --extract-only, Sphinx's gettext builder, about 20 s) has exactly
  the catalogues' messages, so an English sentence changed without `make catalogues` fails
  here, by page and message.
* Every translation keeps its message's markup, numbers and glossary terms
  (tests/i18n_rules.py), and the glossary itself is well formed.
* The edition's settings (locales/ko/config.yml, merged by scripts/build_edition.py), the
  figures' alt texts (locales/ko/figure_alt.yml) and the themes' strings (locales/theme/)
  are complete and Korean.
* The Korean notebooks in ko/book/ are what `make ko-notebooks` makes from today's notebooks
  and catalogues, every message placed, code untouched.
"""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import polib
import pytest
import yaml

import i18n_rules

ROOT = Path(__file__).resolve().parents[1]
CATALOGUES = ROOT / "locales" / "ko" / "LC_MESSAGES"
HANGUL = re.compile(r"[\uac00-\ud7a3]")
PROJECT = "ResNet from one convolution"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def catalogue_names() -> list[str]:
    return sorted(p.relative_to(CATALOGUES).with_suffix("").as_posix() for p in CATALOGUES.rglob("*.po"))


def _po(name: str) -> polib.POFile:
    return polib.pofile(str(CATALOGUES / f"{name}.po"))


def test_there_is_a_catalogue_per_page():
    assert "sphinx" in catalogue_names() and "book/intro" in catalogue_names()
    assert len(catalogue_names()) >= 19, catalogue_names()


@pytest.mark.parametrize("name", catalogue_names())
def test_catalogue_is_complete_and_clean(name):
    po = _po(name)
    assert len(po) > 0, f"{name}.po has no messages"
    untranslated = [e.msgid[:70] for e in po.untranslated_entries()]
    fuzzy = [e.msgid[:70] for e in po.fuzzy_entries()]
    obsolete = [e.msgid[:70] for e in po.obsolete_entries()]
    assert not untranslated, f"{name}.po: {len(untranslated)} untranslated: {untranslated[:5]}"
    assert not fuzzy, f"{name}.po: {len(fuzzy)} fuzzy (the English changed): {fuzzy[:5]}"
    assert not obsolete, f"{name}.po: obsolete entries (run make catalogues): {obsolete[:5]}"
    assert po.percent_translated() == 100
    assert not po.metadata_is_fuzzy, f"{name}.po: fuzzy header (run make catalogues)"
    assert po.metadata.get("Language") == "ko", po.metadata
    assert po.metadata.get("Project-Id-Version") == PROJECT, po.metadata


@pytest.fixture(scope="module")
def fresh_messages(tmp_path_factory) -> dict[str, set[str]]:
    """page -> msgids of a fresh extraction from today's English sources."""
    out = tmp_path_factory.mktemp("gettext")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "catalogues.py"), "--extract-only", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pot_dir = Path(proc.stdout.strip().splitlines()[-1])
    return {p.relative_to(pot_dir).with_suffix("").as_posix(): {e.msgid for e in polib.pofile(str(p))}
            for p in pot_dir.rglob("*.pot")}


def test_catalogues_are_in_step_with_the_english(fresh_messages):
    assert sorted(fresh_messages) == catalogue_names(), "a page has no catalogue, or a catalogue no page"
    problems = []
    for name, english in sorted(fresh_messages.items()):
        translated = {e.msgid for e in _po(name) if not e.obsolete}
        problems += [f"{name}: new or changed English, not in the catalogue: {m[:90]!r}"
                     for m in sorted(english - translated)]
        problems += [f"{name}: in the catalogue, no longer in the English: {m[:90]!r}"
                     for m in sorted(translated - english)]
    assert not problems, "run `make catalogues`, then translate:\n" + "\n".join(problems[:40])


def test_every_translation_keeps_markup_numbers_and_glossary():
    terms = i18n_rules.load_glossary()
    problems = [f"{name}: {problem} -- in {entry.msgid[:70]!r}"
                for name in catalogue_names() for entry in _po(name) if not entry.obsolete
                for problem in i18n_rules.problems(entry.msgid, entry.msgstr, terms)]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])


def test_the_rules_catch_a_broken_translation():
    """A translation that loses inline code, a number, a role or a glossary term fails."""
    terms = i18n_rules.load_glossary()
    msgid = "The residual block adds `x` to $F(x)$ in 3 of 4 cases {cite}`he2015deep`."
    good = "잔차 블록은 4번 중 3번 $F(x)$에 `x`를 더합니다 {cite}`he2015deep`."
    assert i18n_rules.problems(msgid, good, terms) == []
    for broken in (good.replace("`x`", "x"), good.replace("3번", "세 번"),
                   good.replace(" {cite}`he2015deep`", ""), good.replace("잔차 블록", "블록")):
        assert i18n_rules.problems(msgid, broken, terms), broken


@pytest.mark.parametrize("name", ["sphinx", "booktheme"])
def test_theme_strings_are_korean(name):
    """The themes' page furniture (locales/theme/, written by hand: not extracted)."""
    po = polib.pofile(str(ROOT / "locales" / "theme" / "ko" / "LC_MESSAGES" / f"{name}.po"))
    assert len(po) >= 10 and po.percent_translated() == 100 and not po.fuzzy_entries()
    assert all(HANGUL.search(entry.msgstr) for entry in po), [e.msgid for e in po if not HANGUL.search(e.msgstr)]
    if name == "sphinx":   # the same domain as the extracted locales/ko/LC_MESSAGES/sphinx.po
        both = {e.msgid for e in _po("sphinx")} & {e.msgid for e in po}
        assert not both, f"extracted and also written by hand: {both}"


def test_glossary_is_well_formed():
    terms = i18n_rules.load_glossary()
    english = [t["en"].lower() for t in terms]
    assert len(terms) >= 20
    assert len(english) == len(set(english)), [t for t in english if english.count(t) > 1]
    for term in terms:
        assert set(term) <= {"en", "ko", "note", "or"}, term
        assert str(term["en"]).strip() and str(term["ko"]).strip(), term


def test_edition_settings_are_korean():
    english = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    korean = _script("build_edition").edition_config("ko")
    en_sphinx, ko_sphinx = english["sphinx"]["config"], korean["sphinx"]["config"]
    assert ko_sphinx["language"] == "ko" and en_sphinx["language"] == "en"
    assert korean["html"]["baseurl"] == english["html"]["baseurl"] + "ko/"
    assert ko_sphinx["ogp_site_url"] == en_sphinx["ogp_site_url"] + "ko/"
    assert korean["repository"]["path_to_book"] == "ko"   # the launch buttons: ko/book/NN.ipynb
    for text in (korean["title"], ko_sphinx["ogp_site_name"], ko_sphinx["ogp_image_alt"],
                 *ko_sphinx["site_generated_page_descriptions"].values()):
        assert HANGUL.search(text), text
    assert ko_sphinx["site_generated_page_descriptions"].keys() == en_sphinx["site_generated_page_descriptions"].keys()
    assert (ROOT / ko_sphinx["figure_alt_file"]).is_file()


def test_every_figure_has_korean_alt_text():
    english = yaml.safe_load((ROOT / "book" / "figure_alt.yml").read_text(encoding="utf-8"))
    korean = yaml.safe_load((ROOT / "locales" / "ko" / "figure_alt.yml").read_text(encoding="utf-8"))
    assert {nb: sorted(cells) for nb, cells in korean.items()} == \
        {nb: sorted(cells) for nb, cells in english.items()}
    not_korean = [(nb, cell) for nb, cells in korean.items() for cell, text in cells.items()
                  if not HANGUL.search(str(text))]
    assert not not_korean, not_korean


def test_korean_notebooks_are_in_sync(tmp_path):
    """Regenerating ko/book/ gives the committed files, with every message placed."""
    ko_notebooks = _script("ko_notebooks")
    problems = ko_notebooks.generate(tmp_path)
    assert not problems, "\n".join(problems[:20])
    pages = ko_notebooks.toc_notebooks()
    committed = sorted((ROOT / "ko" / "book").glob("*.ipynb"))
    assert [p.name for p in committed] == sorted(source.name for source, _ in pages)
    stale = [p.name for p in committed
             if p.read_bytes() != (tmp_path / "book" / p.name).read_bytes()]
    assert not stale, f"out of date (run make ko-notebooks): {stale}"


@pytest.mark.parametrize("source", [s for s, _ in _script("ko_notebooks").toc_notebooks()],
                         ids=lambda p: p.stem)
def test_korean_notebook_keeps_the_code_and_drops_outputs(source):
    english = nbformat.read(source, as_version=4)
    korean = nbformat.read(ROOT / "ko" / "book" / source.name, as_version=4)
    assert [c.get("id") for c in korean.cells] == [c.get("id") for c in english.cells]
    for en, ko in zip(english.cells, korean.cells):
        assert en.cell_type == ko.cell_type
        if en.cell_type == "code":
            assert ko.source == en.source and ko.outputs == [] and ko.execution_count is None


def test_message_placement_allows_any_whitespace_but_not_a_part_of_a_word():
    translate = _script("ko_notebooks").translate_text
    text = "- check it\n  against `nn.Conv2d`, in training\n  mode.\n\n> a quote that\n> wraps\n\nOverviews"
    out, found = translate(text, {"check it against `nn.Conv2d`, in training mode.": "확인합니다.",
                                  "a quote that wraps": "인용", "Overview": "개요"})
    assert out == "- 확인합니다.\n\n> 인용\n\nOverviews"
    assert found == {"check it against `nn.Conv2d`, in training mode.", "a quote that wraps"}
