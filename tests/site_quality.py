"""What tests/test_book.py and benchmarks/lighthouse_scores.py measure on the built site
(issue 24): accessibility (axe-core), weight on first load, metadata.

* `GzipHandler` serves the build as GitHub Pages does, text compressed with gzip, so what a
  page "transfers" here is what a reader downloads from the published site.
* `run_axe` injects axe-core (the npm package `axe-core`, installed by `.ci/run` with
  `npm ci --omit=dev` into `node_modules/`) and returns the WCAG 2.1 A/AA violations.
* `page_resources` lists what a page loaded (Resource Timing: the page itself, scripts,
  styles, fonts, images, with their encoded, i.e. compressed, sizes).
* `page_metadata` reads a page's meta description and social-preview tags.
"""
from __future__ import annotations

import gzip
import http.server
import io
import re
import time
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"

# WCAG 2.1 level A and AA (axe-core's tags); "best-practice" rules are not WCAG criteria.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

# At most this many bytes transferred for a chapter page on first load (issue 24).
PAGE_BUDGET_BYTES = 1_500_000

# At most this many elements in a page's DOM once loaded (issue 24). On a phone, laying
# out and scripting a long page is most of its blocking time: the API reference on one page
# (33,500 elements) read 84-97 on Lighthouse's mobile preset, median 89 of three runs, the
# only page below 90; split into one page per part of the package (2,000-4,000 each) its
# pages read 99-100 at the median. The longest chapters hold 8,000-8,400. This keeps any
# page from growing back far past them.
PAGE_BUDGET_ELEMENTS = 10_000

COMPRESSIBLE = (".html", ".js", ".css", ".svg", ".json", ".txt", ".map", ".ttf", ".otf",
                ".xml", ".ico")


class GzipHandler(http.server.SimpleHTTPRequestHandler):
    """A static file server that gzips text (HTML, JS, CSS, SVG...) as GitHub Pages does."""

    def log_message(self, *args):
        pass

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            if not self.path.split("?")[0].endswith("/"):
                return super().send_head()   # the base class redirects "dir" to "dir/"
            path = path / "index.html"
        accepts = "gzip" in self.headers.get("Accept-Encoding", "")
        if not (accepts and path.is_file() and path.suffix.lower() in COMPRESSIBLE):
            return super().send_head()
        body = gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=600")
        self.end_headers()
        return io.BytesIO(body)


# ------------------------------------------------------------------------------ page state
def wait(predicate, timeout=30.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# (used by tests/test_book.py check_page: images, math, the version stamp)
IMAGES_JS = """
const imgs = Array.from(document.images);
imgs.forEach(img => { img.loading = 'eager'; });
return imgs.map(img => [img.currentSrc || img.src, img.complete, img.naturalWidth]);
"""

# Math is rendered when the book is built (_ext/math_katex.py): every formula must already
# hold KaTeX's output, and KaTeX's own fonts must have loaded for it (else it shows in a
# fallback font, misaligned).
MATH_FONTS_JS = """
const done = arguments[arguments.length - 1];
document.fonts.ready.then(() => done({
  main: document.fonts.check('16px KaTeX_Main'),
  math: document.fonts.check('italic 16px KaTeX_Math'),
  loaded: Array.from(document.fonts).filter(f => f.status === 'loaded' && f.family.includes('KaTeX'))
    .map(f => f.family),
}));
"""

MATH_STATE_JS = """
const math = Array.from(document.querySelectorAll('.math'));
return {
  total: math.length,
  untypeset: math.filter(el => !el.querySelector('.katex .katex-html')).map(el => el.textContent.slice(0, 80)),
  errors: Array.from(document.querySelectorAll('.katex-error'))
    .map(el => el.getAttribute('title') || el.textContent),
};
"""

STAMP_JS = """
const pre = document.querySelector('div.cell.tag_hide-input div.cell_output pre');
if (!pre) { return null; }
const box = pre.closest('div.cell_output').getBoundingClientRect();
const own = pre.getBoundingClientRect();
return {text: pre.textContent.trim(), scroll: pre.scrollWidth, client: pre.clientWidth,
        right: own.right, boxRight: box.right};
"""


# ------------------------------------------------------------------------------ axe-core
_AXE_RUN_JS = """
const done = arguments[arguments.length - 1];
const only = arguments[0].length ? {type: 'tag', values: arguments[0]} : {type: 'rule', values: arguments[1]};
axe.run(document, {runOnly: only, resultTypes: ['violations'],
                   rules: Object.fromEntries(arguments[1].map(id => [id, {enabled: true}]))})
  .then(r => done(r.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' +
                                           (n.failureSummary || '').split('\\n').slice(1, 2).join(''))
  }))), e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));
"""


# WCAG 2.1 success criterion 2.5.3 (label in name): an axe rule still marked experimental,
# so not run by the tags above unless named.
AXE_EXTRA_RULES = ["label-content-name-mismatch"]

# Switch the colour mode with CSS transitions off: axe-core must not read a colour halfway
# between the light and the dark theme (the theme animates background colours).
_SET_MODE_JS = """
let still = document.getElementById('audit-no-transitions');
if (!still) {
  still = document.createElement('style');
  still.id = 'audit-no-transitions';
  still.textContent = '*, *::before, *::after {transition: none !important; animation: none !important}';
  document.head.appendChild(still);
}
document.documentElement.dataset.theme = arguments[0];
document.documentElement.dataset.mode = arguments[0];
"""


def run_axe(driver, tags=AXE_TAGS, rules=AXE_EXTRA_RULES) -> list[dict]:
    """axe-core's violations on the page the driver shows: of the WCAG 2.1 A/AA rules (tags)
    and the rules named; with no tags, of the named rules only."""
    if not AXE_JS.is_file():
        return [{"id": "axe-missing", "impact": "critical", "nodes": [],
                 "help": f"{AXE_JS} is missing: run `npm ci --omit=dev` (.ci/run does)"}]
    if not driver.execute_script("return typeof window.axe !== 'undefined'"):
        driver.execute_script(AXE_JS.read_text(encoding="utf-8"))
    return driver.execute_async_script(_AXE_RUN_JS, list(tags), list(rules))


def accessibility_problems(driver) -> list[str]:
    """WCAG 2.1 AA violations in light mode, and colour contrast in dark mode too."""
    problems = format_violations(run_axe(driver))
    try:
        driver.execute_script(_SET_MODE_JS, "dark")
        problems += [f"dark mode: {p}" for p in
                     format_violations(run_axe(driver, tags=(), rules=["color-contrast"]))]
    finally:
        driver.execute_script(_SET_MODE_JS, "light")
    return problems


def format_violations(violations: list[dict]) -> list[str]:
    return [f"axe {v['id']} ({v['impact']}): {v['help']}; " + " | ".join(v["nodes"])
            for v in violations]


# ------------------------------------------------------------------------------ weight
_RESOURCES_JS = """
const nav = performance.getEntriesByType('navigation')[0];
const list = performance.getEntriesByType('resource').map(e => [e.name, e.encodedBodySize]);
list.unshift([nav.name, nav.encodedBodySize]);
return list;
"""


def page_resources(driver) -> list[tuple[str, int]]:
    """(url, bytes transferred) of everything the page loaded, the page itself first.

    Sizes are Resource Timing's `encodedBodySize`: the body as sent (compressed), which the
    browser reports even when it took the file from its cache, so each page is weighed as a
    first visit would load it.
    """
    return [(url, int(size)) for url, size in driver.execute_script(_RESOURCES_JS)]


def weight_report(resources: list[tuple[str, int]], top: int = 5) -> str:
    total = sum(size for _, size in resources)
    heaviest = sorted(resources, key=lambda r: -r[1])[:top]
    return f"{total / 1e6:.2f} MB in {len(resources)} files; heaviest: " + ", ".join(
        f"{url.rsplit('/', 1)[-1].split('?')[0]} {size / 1e3:.0f} kB" for url, size in heaviest)


def weight_problems(driver, budget: int = PAGE_BUDGET_BYTES) -> list[str]:
    resources = page_resources(driver)
    if len(resources) >= 250:   # Resource Timing keeps 250 entries unless told otherwise
        return [f"{len(resources)} resources: more than Resource Timing records"]
    if sum(size for _, size in resources) > budget:
        return [f"over the {budget / 1e6:.1f} MB budget: {weight_report(resources)}"]
    return []


def dom_size_problems(driver, budget: int = PAGE_BUDGET_ELEMENTS) -> list[str]:
    count = driver.execute_script("return document.getElementsByTagName('*').length")
    if count > budget:
        return [f"{count:,} elements in the page, over the budget of {budget:,}: split the page"]
    return []


# ------------------------------------------------------------------------------ icons
_ICONS_JS = """
return Array.from(document.querySelectorAll('[class*="fa-"]')).map(el => {
  const st = getComputedStyle(el, '::before');
  return [el.className, st.content, st.fontFamily, st.fontWeight];
}).filter(x => x[2].includes('Font Awesome') && x[1] && x[1] !== 'none' && x[1] !== 'normal');
"""


def icon_fonts(html_dir: Path) -> dict[str, set[int]]:
    """{font file stem: codepoints} of the icon fonts the built site serves (the theme's,
    cut to the glyphs the site uses by _ext/icon_subset.py)."""
    from fontTools.ttLib import TTFont

    folder = html_dir / "_static" / "vendor" / "fontawesome" / "webfonts"
    return {path.stem: set(TTFont(path).getBestCmap()) for path in folder.glob("*.woff2")}


def icon_problems(driver, fonts: dict[str, set[int]]) -> list[str]:
    """Every Font Awesome icon on the page has its glyph in the font it is drawn with."""
    missing = set()
    for classes, content, family, weight in driver.execute_script(_ICONS_JS):
        glyph = content.strip("\"'")
        stem = ("fa-brands-400" if "Brands" in family else
                "fa-solid-900" if str(weight) == "900" else "fa-regular-400")
        if len(glyph) != 1 or ord(glyph) not in fonts.get(stem, set()):
            missing.add(f"{classes.split()} ({stem})")
    return [f"icons without a glyph: {sorted(missing)}"] if missing else []


# ------------------------------------------------------------------------------ pages
def built_pages(html_dir: Path) -> list[str]:
    """Every page of the site (every edition), except redirects and Sphinx's own folders."""
    pages = []
    for path in sorted(html_dir.rglob("*.html")):
        rel = path.relative_to(html_dir)
        if any(part.startswith("_") for part in rel.parts[:-1]):
            continue
        if not re.search(r'http-equiv="refresh"', path.read_text(encoding="utf-8")[:3000], re.I):
            pages.append(rel.as_posix())
    return pages


OVERFLOW_JS = "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];"
PHONE = (375, 812)   # CSS pixels


def pages_wider_than_a_phone(driver, urls: dict[str, str]) -> dict[str, tuple[int, int]]:
    """{page: (scrollWidth, clientWidth)} of the pages (name -> URL) that scroll sideways at
    375 px; the window is 1400 px wide again afterwards."""
    wide = {}
    try:
        driver.set_window_size(*PHONE)
        for page, url in urls.items():
            driver.get(url)
            wait(lambda: driver.execute_script("return document.readyState") == "complete")
            scroll, client = driver.execute_script(OVERFLOW_JS)
            if scroll > client + 1:
                wide[page] = (scroll, client)
    finally:
        driver.set_window_size(1400, 900)
    return wide


# ------------------------------------------------------------------------------ keyboard
_EXERCISES_JS = """
return Array.from(document.querySelectorAll('div.exercise')).filter(el =>
  el.closest('[aria-hidden="true"]') || !el.querySelector('.admonition-title') ||
  !el.querySelector('.admonition-title').textContent.trim() || el.offsetParent === null
).map(el => el.id);
"""


def keyboard_problems(driver, colab: str, max_tabs: int = 250) -> list[str]:
    """Tab reaches the launch button, Enter and Down reach the Colab link; every exercise is
    shown to assistive technology; Enter on each solution's toggle button opens it."""
    from selenium.webdriver.common.keys import Keys

    problems = [f"exercises hidden or without a title: {ids}"
                for ids in [driver.execute_script(_EXERCISES_JS)] if ids]
    driver.execute_script("document.activeElement && document.activeElement.blur();"
                          "window.scrollTo(0, 0);")
    body = driver.find_element("css selector", "body")
    body.send_keys(Keys.TAB)
    for _ in range(max_tabs):
        active = driver.switch_to.active_element
        if "dropdown-launch-buttons" in (active.find_element(
                "xpath", "..").get_attribute("class") or ""):
            break
        active.send_keys(Keys.TAB)
    else:
        return problems + [f"{max_tabs} Tab presses do not reach the launch button"]
    active.send_keys(Keys.ENTER)
    time.sleep(0.3)
    driver.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    time.sleep(0.2)
    if driver.switch_to.active_element.get_attribute("href") != colab:
        problems.append("Enter and Down on the launch button do not focus the Colab link")
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    for button in driver.find_elements("css selector", "div.solution button.toggle-button"):
        driver.execute_script("arguments[0].focus()", button)
        driver.switch_to.active_element.send_keys(Keys.ENTER)
        time.sleep(0.3)
        target = driver.find_element("id", button.get_attribute("data-target"))
        body_text = [el for el in target.find_elements("css selector", ":scope > section, :scope > div")
                     if el.is_displayed() and el.text.strip()]
        if button.get_attribute("aria-expanded") != "true" or not body_text:
            problems.append(f"Enter does not open solution {target.get_attribute('id')}")
    return problems


# ------------------------------------------------------------------------------ metadata
class _MetaParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.meta: dict[str, str] = {}
        self.title, self._in_title = "", False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "meta":
            key = attrs.get("name") or attrs.get("property")
            if key and key not in self.meta:
                self.meta[key] = (attrs.get("content") or "").strip()
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


SOCIAL_TAGS = ("og:title", "og:description", "og:image", "og:url", "og:type",
               "twitter:card")


def page_metadata(html: str) -> dict[str, str]:
    """A page's <title> (key "title") and its meta tags by name or property."""
    parser = _MetaParser()
    parser.feed(html)
    return {"title": re.sub(r"\s+", " ", parser.title).strip(), **parser.meta}
