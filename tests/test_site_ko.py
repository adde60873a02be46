"""The Korean edition as built and as a reader's browser shows it (issue 23).

`scripts/build_edition.py ko --strict` builds it once per session into a temporary folder
(tests/site_builds.py), beside the English build of tests/test_book.py; one loopback server
publishes both as GitHub Pages does (English at the root, Korean under `ko/`). Headless
Chromium then runs over every Korean page the checks tests/test_book.py runs over the
English ones (it loads, images decode, math is rendered, the Colab link, the console,
axe-core's WCAG audit, page weight, icons) and the Korean edition's own: `<html lang="ko">`,
a keyboard-reachable language link to the same English page whose own link leads back,
Hangul drawn with a CJK font (Chromium's CSS.getPlatformFontsForNode: the fonts that
actually drew the text), and the Colab link opening the Korean notebook in ko/book/.
The Korean search page finds a Korean term typed into it.
"""
from __future__ import annotations

import re
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest

import site_builds
import site_quality as sq
from site_quality import wait as _wait
from test_book import browser, check_page, colab_url, toc_pages  # noqa: F401  (browser: a fixture)

ROOT = Path(__file__).resolve().parents[1]
HANGUL = re.compile(r"[\uac00-\ud7a3]")
# Fonts with Hangul: Noto Sans/Serif CJK (fonts-noto-cjk), and the systems' Korean fonts.
KOREAN_FONT = re.compile(r"CJK|KR|Korean|Gothic|Nanum|Malgun|Apple SD|Batang|Gulim|Dotum", re.I)


@pytest.fixture(scope="module")
def ko_build():
    return site_builds.korean_build()


@pytest.fixture(scope="module")
def editions(ko_build):
    if ko_build.returncode != 0:
        pytest.fail("the Korean edition did not build; see test_korean_build_is_warning_free")
    english = site_builds.english_build()
    if english.returncode != 0:
        pytest.fail("the English edition did not build; see tests/test_book.py")
    with site_builds.serve(english.html, ko_build.html) as base:
        yield base


def korean_pages(ko_build) -> list[str]:
    return sq.built_pages(ko_build.html)


@pytest.mark.build
def test_korean_build_is_warning_free(ko_build):
    warnings = [line for line in ko_build.log.splitlines() if "WARNING" in line or "ERROR" in line]
    assert ko_build.returncode == 0 and not warnings, "\n".join(warnings[:30] or [ko_build.log[-3000:]])


@pytest.mark.build
def test_every_page_is_korean(ko_build):
    """Every page of the toc is built, says lang="ko" and its article is Korean text."""
    missing, english = [], []
    for html, _ in toc_pages():
        path = ko_build.html / html
        if not path.is_file():
            missing.append(html)
            continue
        text = path.read_text(encoding="utf-8")
        article = re.search(r"<article.*?</article>", text, re.S)
        if '<html lang="ko"' not in text or not article or len(HANGUL.findall(article.group(0))) < 100:
            english.append(html)
    assert not missing and not english, (missing, english)


@pytest.mark.build
def test_korean_metadata(ko_build):
    """Each page's own description and social tags, in Korean, with the Korean URLs."""
    base = site_builds.build_edition_module().edition_config("ko")["html"]["baseurl"]
    metas = {p: sq.page_metadata((ko_build.html / p).read_text(encoding="utf-8"))
             for p in korean_pages(ko_build)}
    missing = {p: [k for k in ("description",) + sq.SOCIAL_TAGS if not m.get(k)] for p, m in metas.items()}
    assert not {p: m for p, m in missing.items() if m}, missing
    descriptions = [m["description"] for m in metas.values()]
    assert len(set(descriptions)) == len(descriptions), "two pages share a description"
    for page, meta in metas.items():
        assert HANGUL.search(meta["description"]) and HANGUL.search(meta["title"]), (page, meta)
        assert meta["og:url"] == base + page, (page, meta["og:url"])


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.edition, self.alternates = [], {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and "edition-link" in (attrs.get("class") or "").split():
            self.edition.append(attrs)
        if tag == "link" and attrs.get("rel") == "alternate" and attrs.get("hreflang"):
            self.alternates[attrs["hreflang"]] = attrs["href"]


def edition_links(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


def language_link_problems(driver, base: str, page: str) -> list[str]:
    """The link to the English page (focusable, named, hreflang) and the English page's back."""
    links = driver.find_elements("css selector", "a.edition-link")
    if len(links) != 1:
        return [f"{len(links)} language links"]
    link, english_url = links[0], base + page
    problems = []
    if link.get_attribute("href") != english_url or link.get_attribute("hreflang") != "en":
        problems.append(f"the language link goes to {link.get_attribute('href')}, not {english_url}")
    if not link.is_displayed() or driver.execute_script("return arguments[0].tabIndex", link) < 0:
        problems.append("the language link is not shown or not in the tab order")
    if link.text.strip() != "English" or link.get_attribute("lang") != "en":
        problems.append(f"the language link reads {link.text!r} (lang {link.get_attribute('lang')})")
    with urllib.request.urlopen(english_url) as response:
        english = edition_links(response.read().decode("utf-8"))
    back = [urljoin(english_url, a["href"]) for a in english.edition]
    if back != [base + "ko/" + page]:
        problems.append(f"the English page links back to {back}")
    head = edition_links(driver.page_source).alternates
    if set(head) != {"en", "ko", "x-default"}:
        problems.append(f"<link rel=alternate> for {sorted(head)}")
    return problems


_PROBE_JS = """
const el = Array.from(document.querySelectorAll('article p, article h1, article li'))
  .find(e => (e.textContent.match(/[\\uac00-\\ud7a3]/g) || []).length >= 4 && e.offsetParent !== null);
if (!el) return false;
el.setAttribute('data-hangul-probe', '1');
return true;
"""


def hangul_font_problems(driver) -> list[str]:
    """The fonts Chromium drew a Korean paragraph with: one of them a Korean font."""
    if not driver.execute_script(_PROBE_JS):
        return ["no Korean text on the page"]
    driver.execute_cdp_cmd("DOM.enable", {})
    driver.execute_cdp_cmd("CSS.enable", {})
    root = driver.execute_cdp_cmd("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    node = driver.execute_cdp_cmd("DOM.querySelector", {"nodeId": root, "selector": "[data-hangul-probe]"})
    fonts = driver.execute_cdp_cmd("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})["fonts"]
    if not any(KOREAN_FONT.search(f["familyName"]) and f["glyphCount"] > 0 for f in fonts):
        return [f"Hangul drawn without a Korean font: {fonts}"]
    return []


@pytest.mark.browser
@pytest.mark.parametrize("html,source", toc_pages(), ids=[h for h, _ in toc_pages()])
def test_korean_page_in_browser(browser, editions, ko_build, html, source):  # noqa: F811
    notebook = None
    if source is not None and source.suffix == ".ipynb":
        notebook = ROOT / "ko" / source.relative_to(ROOT)
        assert notebook.is_file(), f"no Korean notebook {notebook.relative_to(ROOT)}"
    problems = check_page(browser, editions + "ko/" + html, notebook, sq.icon_fonts(ko_build.html))
    if browser.execute_script("return document.documentElement.lang") != "ko":
        problems.append("<html lang> is not ko")
    problems += language_link_problems(browser, editions, html)
    problems += hangul_font_problems(browser)
    assert not problems, f"ko/{html}:\n  " + "\n  ".join(problems)


@pytest.mark.browser
def test_other_korean_pages_in_browser(browser, editions, ko_build):  # noqa: F811
    in_toc = {html for html, _ in toc_pages()}
    others = [p for p in korean_pages(ko_build) if p not in in_toc]
    assert "search.html" in others and "genindex.html" in others
    failures = {}
    for html in others:
        problems = check_page(browser, editions + "ko/" + html, fonts=sq.icon_fonts(ko_build.html))
        problems += language_link_problems(browser, editions, html)
        if problems:
            failures[html] = problems
    assert not failures, failures


@pytest.mark.browser
def test_korean_search_finds_a_korean_term(browser, editions):  # noqa: F811
    from selenium.webdriver.common.keys import Keys

    browser.get(editions + "ko/search.html")
    _wait(lambda: browser.execute_script("return document.readyState") == "complete")
    box = browser.find_element("css selector", "#main-content input[name='q']")
    box.send_keys("잔차")
    box.send_keys(Keys.ENTER)
    results = _wait(lambda: browser.find_elements("css selector", "#search-results ul.search li"), timeout=30)
    assert results, "no result for 잔차 on the Korean search page"
    assert any("book/04_residual_block" in (a.get_attribute("href") or "")
               for a in browser.find_elements("css selector", "#search-results ul.search li a"))


@pytest.mark.browser
def test_korean_pages_fit_a_phone_and_the_keyboard(browser, editions, ko_build):  # noqa: F811
    """At 375 px no Korean page scrolls sideways; the keyboard opens solutions and Colab."""
    wide = sq.pages_wider_than_a_phone(browser, {html: editions + "ko/" + html
                                                 for html in korean_pages(ko_build)})
    keyboard = {}
    for html, source in toc_pages():
        if source is not None and source.suffix == ".ipynb":
            browser.get(editions + "ko/" + html)
            _wait(lambda: browser.execute_script("return document.readyState") == "complete")
            problems = sq.keyboard_problems(browser, colab_url(ROOT / "ko" / source.relative_to(ROOT)))
            if problems:
                keyboard[html] = problems
    assert not wide and not keyboard, {"wider than 375 px": wide, "keyboard": keyboard}
