"""The rendered book: a strict build, then a real browser over every page.

The book is built once per test session (`built_book`), exactly as the README and CI do but
into a temporary folder: `jupyter-book build . -W -n --keep-going`, so any warning (a broken
cross-reference, an unknown citation, an exercise label that does not resolve) fails.
Then headless Chromium (Debian's `chromium` and `chromedriver`) loads every page over a
loopback HTTP server and checks what a reader would notice: the page loads with a title, no
image is broken, every formula is KaTeX's HTML (rendered at build time) drawn in KaTeX's fonts,
each chapter's Colab button opens that chapter's notebook on the configured branch, the
version stamp below each chapter's setup cell fits its box on a 1400 px wide window, and the
browser console shows no error.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

import site_builds
import site_quality as sq
from resnet_edu.conventions import (
    directives,
    load_config,
    repository,
    resolve_toc_entry,
    toc_entries,
)
from site_quality import wait as _wait

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic",
    "--window-size=1400,900",   # issue 10: the version stamp must fit at 1400 px
]


# --------------------------------------------------------------------------------------
# the build
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def built_book():
    """`jupyter-book build . -W -n --keep-going` into a temporary folder, once per session
    (tests/site_builds.py; tests/test_site_ko.py links the Korean pages to this build)."""
    return site_builds.english_build()


def toc_pages() -> list[tuple[str, Path]]:
    """(html path relative to the site root, source file) for every toc entry."""
    pages = []
    for entry in toc_entries(ROOT):
        source = resolve_toc_entry(entry, ROOT)
        stem = entry[: -len(Path(entry).suffix)] if Path(entry).suffix in (".md", ".ipynb") \
            else entry
        pages.append((stem + ".html", source))
    return pages


def _warnings(log: str) -> list[str]:
    return [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", log).splitlines()
            if "WARNING" in line or "ERROR" in line]


@pytest.mark.build
def test_build_is_warning_free(built_book):
    problems = _warnings(built_book.log)
    assert built_book.returncode == 0 and not problems, (
        "jupyter-book build -W -n --keep-going failed:\n" + "\n".join(problems or
                                                                       [built_book.log[-3000:]]))


@pytest.mark.build
def test_every_toc_entry_is_a_built_page(built_book):
    missing = [html for html, source in toc_pages()
               if source is None or not (built_book.html / html).is_file()]
    assert not missing, f"toc entries without a built page: {missing}"
    assert (built_book.html / "index.html").is_file()


@pytest.mark.build
def test_math_is_rendered_at_build_time(built_book):
    """Every formula of every page is KaTeX's HTML already (Node.js renders it while the book
    is built, _ext/math_katex.py); no page loads a math script; the vendored stylesheet is
    the version of the KaTeX that rendered it."""
    from sphinxcontrib.katex import katex_version

    unrendered, scripts = {}, set()
    for html, _ in toc_pages():
        text = (built_book.html / html).read_text(encoding="utf-8")
        math = re.findall(r'<(?:span|div) class="math[^"]*"[^>]*>(.{0,200})', text, flags=re.S)
        unrendered[html] = [m[:60] for m in math if 'class="katex' not in m]
        scripts |= set(re.findall(r'<script[^>]+src="[^"]*(?:katex|mathjax)[^"]*"', text, flags=re.I))
    assert sum(len(v) for v in unrendered.values()) == 0, {k: v for k, v in unrendered.items() if v}
    assert not scripts, scripts
    css = (built_book.html / "_static" / "katex" / "katex.min.css").read_text(encoding="utf-8")
    assert f'katex-version:after{{content:"{katex_version}"}}' in css


def api_pages() -> list[tuple[str, Path]]:
    """(html, source) of the API reference: its index page and one page per part."""
    pages = [(html, source) for html, source in toc_pages()
             if html == "book/api.html" or html.startswith("book/api_")]
    assert len(pages) > 1 and all(source is not None for _, source in pages), pages
    return pages


def documented_modules(source: Path) -> list[str]:
    text = source.read_text(encoding="utf-8")
    return re.findall(r"^\.\. automodule:: ([\w.]+)\s*$", text, flags=re.M)


def test_api_reference_documents_every_public_module_once():
    import pkgutil

    import resnet_edu

    public = {f"resnet_edu.{m.name}" for m in pkgutil.iter_modules(resnet_edu.__path__)
              if not m.name.startswith("_") and m.name not in ("cli", "tools")}
    documented = [name for _, source in api_pages() for name in documented_modules(source)]
    missing = sorted(public - set(documented))
    assert not missing, f"add these modules to a page of the API reference (book/api_*.md): {missing}"
    twice = sorted({name for name in documented if documented.count(name) > 1})
    assert not twice, f"documented on more than one page: {twice}"


@pytest.mark.build
def test_api_reference_documents_the_package(built_book):
    pages = {html: (built_book.html / html).read_text(encoding="utf-8") for html, _ in api_pages()}
    for html, source in api_pages():
        for name in documented_modules(source):
            assert f'id="module-{name}"' in pages[html], f"{name} is missing from {html}"
    everything = "".join(pages.values())
    for name in ("resnet_edu.blocks.BasicBlock", "resnet_edu.models.resnet18",
                 "resnet_edu.exercises.check"):
        assert f'id="{name}"' in everything, f"{name} is missing from the API reference"
    toc = re.search(r'<div class="toctree-wrapper.*?</div>', pages["book/api.html"], flags=re.S)
    assert toc, "book/api.html lists no pages"
    for html, _ in api_pages()[1:]:
        assert f'href="{Path(html).name}"' in toc.group(0), f"book/api.html does not list {html}"


@pytest.mark.build
def test_solutions_render_as_dropdowns(built_book):
    """Every `{solution}` and gated `{solution-start}` block is a folded dropdown."""
    import nbformat

    for html_name, source in toc_pages():
        if source is None or source.suffix != ".ipynb":
            continue
        nb = nbformat.read(source, as_version=4)
        expected = sum(d.name in ("solution", "solution-start")
                       for c in nb.cells if c.cell_type == "markdown"
                       for d in directives(c.source))
        html = (built_book.html / html_name).read_text(encoding="utf-8")
        solutions = re.findall(r'<div class="([^"]*\bsolution\b[^"]*)"', html)
        assert len(solutions) == expected, (html_name, solutions, expected)
        assert all("dropdown" in classes.split() for classes in solutions), (html_name, solutions)


# --------------------------------------------------------------------------------------
# the browser
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def site(built_book):
    if built_book.returncode != 0:
        pytest.fail("the book did not build; see test_build_is_warning_free")
    handler = functools.partial(sq.GzipHandler, directory=str(built_book.html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _unavailable(why: str):
    # In CI (.ci/run installs Chromium) a missing browser is a failure, never a skip.
    if os.environ.get("CI"):
        pytest.fail(f"browser check cannot run in CI: {why}")
    pytest.skip(f"browser check skipped: {why} "
                "(Debian: apt-get install chromium chromium-driver; .ci/run does this)")


@pytest.fixture(scope="session")
def browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        _unavailable(f"{', '.join(missing)} not installed")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("the Python package selenium is not installed")
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_window_size(1400, 900)   # a 1400 px window, as the flag says (issue 10)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def check_page(driver, url: str, notebook: Path | None = None,
               fonts: dict[str, set[int]] | None = None) -> list[str]:
    """Everything a reader would notice on one page (and, issue 24, axe-core, the weight
    budget and the icons' glyphs in `fonts`); returns the problems found."""
    problems = []
    driver.get_log("browser")  # drop messages from the previous page
    driver.get(url)
    _wait(lambda: driver.execute_script("return document.readyState") == "complete")

    if not driver.title.strip():
        problems.append("the page has no title")
    if "404" in driver.title or "Error response" in driver.page_source[:2000]:
        problems.append(f"the page did not load: {driver.title!r}")

    # images: force lazy ones to load, then every image must have decoded pixels
    def images_settled():
        state = driver.execute_script(sq.IMAGES_JS)
        return (state,) if all(complete for _, complete, _ in state) else None

    settled = _wait(images_settled, timeout=20)
    state = settled[0] if settled else driver.execute_script(sq.IMAGES_JS)
    broken = [src for src, complete, width in state if not (complete and width > 0)]
    if broken:
        problems.append(f"broken images: {broken}")

    # math: rendered at build time; every formula holds KaTeX's output, in KaTeX's fonts
    math = driver.execute_script(sq.MATH_STATE_JS)
    if math["total"]:
        katex_fonts = driver.execute_async_script(sq.MATH_FONTS_JS)
        if not katex_fonts["loaded"]:
            problems.append(f"the KaTeX fonts did not load: {katex_fonts}")
        if math["untypeset"]:
            problems.append(f"formulas not typeset: {math['untypeset']}")
        if math["errors"]:
            problems.append(f"KaTeX errors: {math['errors']}")

    # the Colab launch button of a chapter opens exactly that notebook on the book's branch
    links = [a.get_attribute("href") for a in
             driver.find_elements("css selector", 'a[href*="colab.research.google.com"]')]
    if notebook is not None:
        expected = colab_url(notebook)
        if links != [expected]:
            problems.append(f"Colab links {links}, expected exactly [{expected}]")
    elif links:
        problems.append(f"unexpected Colab links on a page without a notebook: {links}")

    # the version stamp (a chapter's setup-cell output) wraps inside its box (book.css)
    if notebook is not None:
        stamp = driver.execute_script(sq.STAMP_JS)
        if not stamp or not stamp["text"].startswith("Outputs computed with"):
            problems.append(f"no version stamp below the setup cell: {stamp}")
        elif stamp["scroll"] > stamp["client"] or stamp["right"] > stamp["boxRight"] + 0.5:
            width = driver.execute_script("return window.innerWidth")
            problems.append(f"the version stamp overflows its box at {width} px: {stamp}")

    severe = [entry["message"] for entry in driver.get_log("browser")
              if entry["level"] == "SEVERE"]
    if severe:
        problems.append(f"JavaScript console errors: {severe}")
    # after the console: axe-core's own fetches (theme.css's @import) are not the page's
    problems += sq.weight_problems(driver) + sq.dom_size_problems(driver)
    problems += sq.accessibility_problems(driver)
    if fonts is not None:
        problems += sq.icon_problems(driver, fonts)
    return problems


def colab_url(notebook: Path) -> str:
    url, branch = repository(ROOT)
    colab = load_config(ROOT)["launch_buttons"]["colab_url"].rstrip("/")
    owner_repo = url.split("github.com/", 1)[1]
    return f"{colab}/github/{owner_repo}/blob/{branch}/{notebook.relative_to(ROOT).as_posix()}"


@pytest.mark.browser
@pytest.mark.parametrize("html,source", toc_pages(), ids=[h for h, _ in toc_pages()])
def test_page_in_browser(browser, site, built_book, html, source):
    assert (built_book.html / html).is_file(), f"{html} was not built"
    notebook = source if source is not None and source.suffix == ".ipynb" else None
    problems = check_page(browser, site + html, notebook, sq.icon_fonts(built_book.html))
    assert not problems, f"{html}:\n  " + "\n  ".join(problems)


@pytest.mark.browser
def test_other_pages_in_browser(browser, site, built_book):
    """The pages Sphinx adds (index redirect, search, general index) load cleanly too."""
    in_toc = {html for html, _ in toc_pages()}
    others = sorted(p.relative_to(built_book.html).as_posix()
                    for p in built_book.html.rglob("*.html")
                    if not p.relative_to(built_book.html).parts[0].startswith("_"))
    others = [p for p in others if p not in in_toc]
    assert "index.html" in others and "search.html" in others
    failures = {}
    for html in others:
        problems = check_page(browser, site + html, fonts=sq.icon_fonts(built_book.html))
        if problems:
            failures[html] = problems
    assert not failures, failures


@pytest.mark.browser
def test_index_redirects_to_the_root_page(browser, site):
    browser.get(site)
    root_html = toc_pages()[0][0]
    assert _wait(lambda: browser.current_url.endswith(root_html), timeout=10), browser.current_url
    assert browser.find_elements("css selector", "h1")


@pytest.mark.browser
def test_solution_dropdowns_start_folded(browser, site):
    """A reader sees the exercise, not its solution, until they open the dropdown."""
    for html, source in toc_pages():
        if source is None or source.suffix != ".ipynb":
            continue
        browser.get(site + html)
        _wait(lambda: browser.execute_script("return document.readyState") == "complete")
        solutions = browser.find_elements("css selector", "div.solution.dropdown")
        for sol in solutions:
            bodies = [el for el in sol.find_elements("css selector", ":scope > *")
                      if "admonition-title" not in (el.get_attribute("class") or "")]
            visible = [el.text[:60] for el in bodies if el.is_displayed() and el.text.strip()]
            assert not visible, f"{html}: solution {sol.get_attribute('id')} is open: {visible}"




# --------------------------------------------------------------------------------------
# issue 24: metadata, figures, a phone, the keyboard
# --------------------------------------------------------------------------------------
@pytest.mark.build
def test_every_page_has_its_own_description_and_social_metadata(built_book):
    pages = sq.built_pages(built_book.html)
    assert "search.html" in pages and toc_pages()[0][0] in pages
    metas = {p: sq.page_metadata((built_book.html / p).read_text(encoding="utf-8"))
             for p in pages}
    missing = {p: [k for k in ("description",) + sq.SOCIAL_TAGS if not m.get(k)]
               for p, m in metas.items()}
    assert not {p: m for p, m in missing.items() if m}, missing
    for key in ("title", "description", "og:title", "og:url"):
        seen = {}
        for page, meta in metas.items():
            seen.setdefault(meta[key], []).append(page)
        shared = {value[:60]: where for value, where in seen.items() if len(where) > 1}
        assert not shared, f"pages sharing one {key}: {shared}"
    for page, meta in metas.items():
        assert 50 <= len(meta["description"]) <= 300, (page, meta["description"])
        # formulas as text (y = relu(F(x) + x)), not LaTeX source (_ext/site_a11y.py)
        assert not re.search(r"\\[A-Za-z]+|\$", meta["description"]), (page, meta["description"])
        assert meta["og:image"].startswith("https://"), (page, meta["og:image"])


@pytest.mark.build
def test_every_figure_has_alt_text(built_book):
    """Every figure (an image of _images/) has alt text of words, not its file name; every
    other <img> (icons, logos) has an alt attribute."""
    bad = {}
    for page in sq.built_pages(built_book.html):
        text = (built_book.html / page).read_text(encoding="utf-8")
        for tag in re.findall(r"<img\b[^>]*>", text):
            alt = re.search(r'\balt="([^"]*)"', tag)
            figure = "_images/" in tag
            if not alt or (figure and (len(alt.group(1).split()) < 2 or
                                      re.search(r"\.(png|svg|jpe?g|gif)$", alt.group(1)))):
                bad.setdefault(page, []).append(tag[:120])
    assert not bad, bad


@pytest.mark.browser
def test_pages_fit_a_phone(browser, site, built_book):
    """At 375 CSS pixels no page scrolls sideways (wide code and tables scroll in their box)."""
    wide = sq.pages_wider_than_a_phone(browser, {html: site + html
                                                 for html in sq.built_pages(built_book.html)})
    assert not wide, f"pages wider than a 375 px phone (scrollWidth, clientWidth): {wide}"


@pytest.mark.browser
def test_keyboard_reaches_exercises_solutions_and_colab(browser, site):
    """With the keyboard alone a reader opens every folded solution and the Colab link."""
    failures = {}
    for html, source in toc_pages():
        if source is not None and source.suffix == ".ipynb":
            browser.get(site + html)
            _wait(lambda: browser.execute_script("return document.readyState") == "complete")
            problems = sq.keyboard_problems(browser, colab_url(source))
            if problems:
                failures[html] = problems
    assert not failures, failures
