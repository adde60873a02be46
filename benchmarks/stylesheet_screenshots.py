"""The theme's stylesheet as _ext/css_prune.py cuts it draws the pages exactly as the full one.

The built site's `pydata-sphinx-theme.css` keeps only the rules some page or script can
use (issue 24). A local server publishes the English build twice: as built, and with the
theme's own, full stylesheet in its place. Headless Chromium screenshots pages of every
kind (the home page, a chapter with formulas, figures and exercises, the teachers' page,
search, the general index) in light and dark mode, on a 1400 px window and on a 375 px
phone, with the navigation drawer open on the phone: every pair must be pixel-identical.
"""
from __future__ import annotations

import functools
import http.server
import io
import threading
from pathlib import Path

import pytest

import site_builds
from test_book import browser  # noqa: F401  (a fixture: the session's Chromium)

THEME_CSS = Path("_static", "styles", "pydata-sphinx-theme.css")
PAGES = ["book/intro.html", "book/04_residual_block.html", "book/10_identity_mappings.html",
         "book/teachers.html", "search.html", "genindex.html"]


def theme_stylesheet() -> Path:
    import pydata_sphinx_theme

    found = list(Path(pydata_sphinx_theme.__file__).parent.rglob("styles/pydata-sphinx-theme.css"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory):
    """(base URL of the site as built, base URL of the same site with the full stylesheet)."""
    build = site_builds.english_build()
    if build.returncode != 0:
        pytest.fail("the English build failed; tests/test_book.py says why")
    full = tmp_path_factory.mktemp("full-css")
    full_css = full / THEME_CSS.name
    full_css.write_bytes(theme_stylesheet().read_bytes())

    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path):
            if self.server.full and path.split("?")[0].endswith("/" + THEME_CSS.as_posix()):
                return str(full_css)
            return super().translate_path(path)

        def log_message(self, *args):
            pass

    bases = []
    for use_full in (False, True):
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(build.html)))
        server.full = use_full
        threading.Thread(target=server.serve_forever, daemon=True).start()
        bases.append(f"http://127.0.0.1:{server.server_address[1]}/")
    assert (build.html / THEME_CSS).stat().st_size < full_css.stat().st_size / 2
    return bases


# every image decoded (lazy ones too), every font loaded, then two frames drawn; scrollbars
# (their thumbs fade in and out) and transitions left out of both pictures alike
SETTLED_JS = """
const done = arguments[arguments.length - 1];
const still = document.createElement('style');
still.textContent = '* { scrollbar-width: none !important; transition: none !important; '
                  + 'animation: none !important; caret-color: transparent !important; }';
document.head.appendChild(still);
const images = Array.from(document.images);
images.forEach(img => { img.loading = 'eager'; });
const loaded = new Promise(ok => document.readyState === 'complete' ? ok()
                                 : window.addEventListener('load', ok));
Promise.all([loaded, document.fonts.ready,
             ...images.map(img => img.decode().catch(() => null))])
  .then(() => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(done, 500))));
"""


def screenshot(driver, url: str, width: int, mode: str, drawer: bool):
    from PIL import Image

    driver.set_window_size(width, 1000)
    driver.get(url)
    driver.execute_script(f"document.documentElement.dataset.theme = '{mode}';"
                          f"document.documentElement.dataset.mode = '{mode}';")
    if drawer:   # the phone's navigation drawer, opened as a reader opens it
        driver.execute_script("document.querySelector('button.pst-navbar-icon.primary-toggle').click()")
    height = min(driver.execute_script("return document.body.scrollHeight"), 5000)
    driver.set_window_size(width, height)
    # the mode again, last: on a busy machine the theme's own script may set it after us
    driver.execute_script(f"document.documentElement.dataset.theme = '{mode}';"
                          f"document.documentElement.dataset.mode = '{mode}';")
    driver.execute_async_script(SETTLED_JS)
    return Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")


@pytest.mark.browser
@pytest.mark.parametrize("page", PAGES)
def test_pruned_stylesheet_draws_the_same_pages(browser, two_sites, page):  # noqa: F811
    from PIL import ImageChops

    pruned, full = two_sites
    differ = []
    for width, mode, drawer in [(1400, "light", False), (1400, "dark", False),
                                (375, "light", False), (375, "dark", True)]:
        # a real difference of the stylesheets repeats; a frame caught mid-update (the
        # page's scroll-spy, a late font, on a busy machine) does not: a pair that differs
        # is taken again, twice at most
        for _attempt in range(3):
            a = screenshot(browser, pruned + page, width, mode, drawer)
            b = screenshot(browser, full + page, width, mode, drawer)
            same = a.size == b.size and ImageChops.difference(a, b).getbbox() is None
            if same:
                break
        if not same:
            differ.append(f"{width} px, {mode}{', drawer open' if drawer else ''}")
    browser.set_window_size(1400, 900)
    assert not differ, f"{page} looks different with the cut stylesheet: {differ}"
