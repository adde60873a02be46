"""The book's two editions, English and Korean, linked page to page (issue 23).

English is built into the site's root, Korean (`make ko`, scripts/build_edition.py) into
`ko/` beside it, from the same sources, so every page exists in both under the same name.
This extension gives every page of either build

- a language link at the end of the article header, before the theme's buttons
  (_ext/templates/language-link.html): a plain link, so it is in the tab order, named by
  its text (the other language's name, in that language, with `lang` and `hreflang`);
- `<link rel="alternate" hreflang="...">` in the head for each edition, absolute URLs
  from `html.baseurl`, and an `x-default` for the English source;
- its place in the header (_ext/edition_static/editions.css, both editions);
- in the Korean build, the Hangul stylesheet (_ext/edition_static/hangul.css) and the
  Korean of sphinx-book-theme's buttons (locales/theme/ko/LC_MESSAGES/booktheme.po, loaded
  before the theme's own catalogue, which has a few of them; the templates' strings come
  from the sphinx.po beside it, which locales/ko/config.yml adds to `locale_dirs`).

`<html lang>` comes from Sphinx's `language` (`ko` in locales/ko/config.yml).
"""
from __future__ import annotations

from pathlib import Path

from sphinx import locale
from sphinx.util.i18n import CatalogInfo

STATIC = Path(__file__).resolve().parent / "edition_static"
THEME_LOCALES = Path(__file__).resolve().parents[1] / "locales" / "theme"
# language -> (its name in itself, the title of the link to it, the edition's folder in the site)
EDITIONS = {
    "en": ("English", "Read this page in English", ""),
    "ko": ("한국어", "이 페이지를 한국어로 읽기", "ko/"),
}
EDITION_CSS = {"ko": "hangul.css"}


def _language(app) -> str:
    return app.config.language if app.config.language in EDITIONS else "en"


def site_root(app) -> str:
    """The URL of the English edition's root, from this build's html_baseurl."""
    base = (app.config.html_baseurl or "").rstrip("/") + "/"
    folder = EDITIONS[_language(app)][2]
    return base[: -len(folder)] if folder and base.endswith(folder) else base


def edition_links(app, pagename: str) -> list[dict[str, str]]:
    """Every edition's copy of PAGENAME: language, name, title, relative href, absolute URL."""
    own = EDITIONS[_language(app)][2]
    up = "../" * (pagename.count("/") + own.count("/"))   # from this page to the site root
    links = []
    for language, (name, title, folder) in EDITIONS.items():
        page = f"{folder}{pagename}.html"
        links.append({"lang": language, "name": name, "title": title, "href": up + page,
                      "url": site_root(app) + page, "current": language == _language(app)})
    return links


def add_language_links(app, pagename, templatename, context, doctree):
    links = edition_links(app, pagename)
    context["edition_links"] = [link for link in links if not link["current"]]
    alternates = [f'<link rel="alternate" hreflang="{link["lang"]}" href="{link["url"]}" />'
                  for link in links]
    alternates.append(f'<link rel="alternate" hreflang="x-default" href="{links[0]["url"]}" />')
    context["metatags"] = context.get("metatags", "") + "\n" + "\n".join(alternates)


def load_theme_buttons(language: str) -> None:
    """sphinx-book-theme's button texts (domain booktheme) in LANGUAGE, ahead of its own."""
    messages = THEME_LOCALES / language / "LC_MESSAGES"
    if not (messages / "booktheme.po").is_file():
        return
    catalog = CatalogInfo(str(messages), "booktheme", "utf-8")
    if catalog.is_outdated():
        catalog.write_mo(language)
    locale.init([str(THEME_LOCALES)], language, "booktheme")


def configure(app, config):
    """The language link before the theme's header buttons; the edition's stylesheet."""
    options = config.html_theme_options
    end = options.get("article_header_end") or ["article-header-buttons.html"]
    end = [item.strip() for item in end.split(",")] if isinstance(end, str) else list(end)
    options["article_header_end"] = ["language-link.html"] + [i for i in end if i != "language-link.html"]
    config.html_static_path = list(config.html_static_path) + [str(STATIC)]
    app.add_css_file("editions.css")   # the language link's place in the header
    stylesheet = EDITION_CSS.get(_language(app))
    if stylesheet:
        app.add_css_file(stylesheet)
    if _language(app) != "en":
        load_theme_buttons(_language(app))


def setup(app):
    app.connect("config-inited", configure, priority=600)
    app.connect("html-page-context", add_language_links)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
