"""The site's one cut stylesheet styles every element as the theme's separate files do.

_ext/css_bundle.py joins a page's stylesheets (the theme's two and one per extension) into
one bundle and _ext/css_prune.py cuts the bundle to the rules some page or script can use
(issue 24). For pages of every kind, of both editions, in headless Chromium: the page as
built, and in the same page the bundle's members linked one by one as the theme links them,
right after the bundle; then every element's computed style, and that of its `::before`
and `::after`, is read with the bundle and with the members, in light and in dark mode,
on a 1400 px window and on a 375 px phone with the navigation drawer open. Every value
must be equal, `url()`s included (they are absolute once computed, so a font or image the
bundle would resolve elsewhere shows).

Both readings are taken in one script run, on one page whose elements stay as they are
(the screenshots this test replaces compared two page loads, and on a busy machine the
theme's scroll-spy or a late font could make them differ): turning `disabled` on and off
on loaded stylesheets restyles the page at once, and each reading waits for its fonts.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import site_quality as sq
from test_book import browser  # noqa: F401  (a fixture: the session's Chromium)
from test_site_ko import editions, ko_build  # noqa: F401  (fixtures: both builds, served)

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["book/intro.html", "book/04_residual_block.html", "book/10_identity_mappings.html",
         "book/teachers.html", "book/api_models.html", "search.html", "genindex.html",
         "ko/book/04_residual_block.html", "ko/search.html"]
VIEWS = [(1400, False), (sq.PHONE[0], True)]     # window width, navigation drawer open


def css_bundle():
    spec = importlib.util.spec_from_file_location("css_bundle", ROOT / "_ext" / "css_bundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Link the bundle's members (arguments[0], relative to _static) right after the bundle.
LINK_MEMBERS_JS = """
const done = arguments[arguments.length - 1];
const bundle = document.querySelector('link[rel=stylesheet][href*="_static/bundle-"]');
if (!bundle) { done('the page links no bundle'); return; }
const still = document.createElement('style');   // a colour-mode switch is not animated
still.textContent = '*, ::before, ::after { transition: none !important; animation: none !important; }';
document.head.appendChild(still);
let after = bundle;
const loads = arguments[0].map(name => {
  const link = document.createElement('link');
  link.rel = 'stylesheet'; link.dataset.member = name;
  link.href = new URL(name, new URL('.', bundle.href)).href;
  after.after(link); after = link;
  return new Promise((ok, bad) => { link.onload = ok; link.onerror = () => bad(name); });
});
Promise.all(loads).then(() => done(null), name => done('could not load ' + name));
"""

# Every element's computed style (and its ::before, ::after) with the bundle, then with
# the members, in each colour mode; the first differences, described. Re-enabling a
# stylesheet makes its @font-face rules new font faces, which load again (from the cache,
# but not at once): each reading waits for the fonts.
COMPARE_JS = """
const done = arguments[arguments.length - 1];
const bundle = document.querySelector('link[rel=stylesheet][href*="_static/bundle-"]');
const members = Array.from(document.querySelectorAll('link[data-member]'));
// one element of each kind: the same tag and classes, the same parent kind, the same place
// among its siblings (the book's thousands of KaTeX and Pygments spans are a few hundred kinds)
const kind = el => el ? [el.tagName, el.className.baseVal ?? el.className, el.id.startsWith('codecell') ? '' : el.id,
                         !el.previousElementSibling, !el.nextElementSibling].join('|') : '';
const seen = new Set();
const elements = Array.from(document.querySelectorAll('body *')).filter(el => {
  const key = kind(el) + '<' + kind(el.parentElement) + '<' + kind(el.parentElement?.parentElement);
  return !seen.has(key) && seen.add(key);
});
const use = async bundled => {
  bundle.disabled = !bundled;
  members.forEach(l => l.disabled = bundled);
  document.body.getBoundingClientRect();
  await document.fonts.ready;
};
const read = () => elements.flatMap(el => [null, '::before', '::after'].map(pseudo => {
  const style = getComputedStyle(el, pseudo);
  if (pseudo && ['none', 'normal'].includes(style.content)) return {content: style.content};
  const values = {};
  for (let i = 0; i < style.length; i++) values[style[i]] = style.getPropertyValue(style[i]);
  return values;
}));
const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                   + (el.classList.length ? '.' + Array.from(el.classList).join('.') : '');
(async () => {
  const differences = [];
  for (const mode of arguments[0]) {
    document.documentElement.dataset.theme = mode;
    document.documentElement.dataset.mode = mode;
    await use(true); const cut = read();
    await use(false); const full = read();
    for (let i = 0; i < cut.length && differences.length < 10; i++) {
      const keys = new Set([...Object.keys(cut[i]), ...Object.keys(full[i])]);
      for (const key of keys) {
        if (cut[i][key] !== full[i][key]) {
          differences.push(mode + ': ' + name(elements[Math.floor(i / 3)])
            + ['', '::before', '::after'][i % 3] + ' ' + key + ': '
            + cut[i][key] + ' (bundle) vs ' + full[i][key] + ' (members)');
          break;
        }
      }
    }
  }
  await use(true);
  done([elements.length, differences]);
})();
"""


def member_names(driver) -> list[str]:
    href = driver.execute_script(
        "return document.querySelector('link[rel=stylesheet][href*=\"_static/bundle-\"]').href")
    import urllib.request

    with urllib.request.urlopen(href) as response:
        first_line = response.read(4096).decode("utf-8").split("\n", 1)[0]
    return css_bundle().bundle_members(first_line)


def compare(driver, url: str, width: int, drawer: bool) -> tuple[int, list[str]]:
    driver.set_window_size(width, 1000)
    driver.get(url)
    sq.wait(lambda: driver.execute_script("return document.readyState") == "complete")
    problem = driver.execute_async_script(LINK_MEMBERS_JS, member_names(driver))
    assert problem is None, f"{url}: {problem}"
    if drawer:   # the phone's navigation drawer, opened as a reader opens it
        driver.execute_script("document.querySelector('button.pst-navbar-icon.primary-toggle').click()")
    return driver.execute_async_script(COMPARE_JS, ["light", "dark"])


@pytest.mark.browser
@pytest.mark.parametrize("page", PAGES)
def test_the_cut_bundle_styles_the_page_as_its_members_do(browser, editions, page):  # noqa: F811
    differ = {}
    try:
        for width, drawer in VIEWS:
            count, differences = compare(browser, editions + page, width, drawer)
            assert count > 50, f"{page}: only {count} elements"
            if differences:
                differ[f"{width} px{', drawer open' if drawer else ''}"] = differences
    finally:
        browser.set_window_size(1400, 900)
    assert not differ, f"{page} is styled differently by the cut bundle: {differ}"


def test_bundle_rewrites_urls_and_inlines_imports(tmp_path):
    """The bundle's text, on a small _static of its own: imports inlined, url()s rebased."""
    static = tmp_path / "_static"
    (static / "styles").mkdir(parents=True)
    (static / "basic.css").write_text("p { color: red; }\n")
    (static / "styles" / "theme.css").write_text(
        '@charset "utf-8";\n@import "../basic.css";\n'
        "a { background: url(../img/a.png); }\n"
        "b { background: url('fonts/b.woff2?v=1#x'); } i { background: url(data:image/png;base64,AA); }\n"
        "u { background: url(https://example.org/u.png); }\n")
    text = css_bundle().bundle_text(static, ["styles/theme.css"])
    assert text.splitlines()[0] == "/* bundle of: styles/theme.css */"
    assert "@import" not in text and "@charset" not in text
    assert text.index("p { color: red; }") < text.index("a {")
    assert "url(img/a.png)" in text and "url('styles/fonts/b.woff2?v=1#x')" in text
    assert "url(data:image/png;base64,AA)" in text and "url(https://example.org/u.png)" in text
    assert css_bundle().bundle_members(text) == ["styles/theme.css"]
