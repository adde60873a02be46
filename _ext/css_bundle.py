"""One stylesheet per page instead of fifteen (issue 24).

A page of the book links the theme's two stylesheets (`theme.css`, which `@import`s
Sphinx's `basic.css`, and `pydata-sphinx-theme.css`) and then one stylesheet per extension:
fifteen files in all, every one of which blocks the first paint. On a phone's connection
each costs a round trip, and `basic.css` is found only once `theme.css` has arrived.
Lighthouse's mobile preset puts most of a chapter's largest-contentful-paint time there.

This step concatenates each page's stylesheets, in the order the page would link them,
into `_static/bundle-<hash>.css` (every page of an edition links
the same list, so there is one bundle per edition): `@import`s are inlined in place and
relative `url(...)`s rewritten for the bundle's folder, so fonts and images resolve as
before. `_ext/templates/layout.html` then links the bundle instead of the fifteen files.
The bundle's text is written after the build, because two members are only final then
(pydata-sphinx-theme rewrites `pygments.css`, myst-nb copies its stylesheet); `_ext/css_prune.py`
then cuts it to the rules some page or script can use. Its first line, a comment, names
its members (tests rebuild the uncut bundle from it); its name is a hash of that list.
GitHub Pages lets a browser cache a file for ten minutes, as long as the pages themselves,
so a bundle whose text changes under the same name is not served stale for longer.

A page whose list holds something this cannot bundle (a remote stylesheet, a `media` or
other attribute) keeps its separate links, and the build log says why.
"""
from __future__ import annotations

import hashlib
import posixpath
import re
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

# the theme's layout links these two before Sphinx's list (webpack-macros.html)
THEME_FIRST = ("styles/theme.css", "styles/pydata-sphinx-theme.css")
BUNDLE_GLOB = "bundle-*.css"          # in _static
HEADER = "/* bundle of: {} */\n"
_HEADER = re.compile(r"/\* bundle of: ([^*]*) \*/")
_IMPORT = re.compile(r"""@import\s+(?:url\(\s*)?["']?([^"')\s;]+)["']?\s*\)?[^;]*;""")
_URL = re.compile(r"""url\(\s*(["']?)([^"')]+)\1\s*\)""")
_CHARSET = re.compile(r"""@charset\s+["'][^"']*["']\s*;""")
_ABSOLUTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|/|#)", re.IGNORECASE)


def page_members(context) -> tuple[list[str] | None, str]:
    """The page's stylesheets, relative to _static, or None and the reason they stay apart."""
    names = list(THEME_FIRST)
    for css in context.get("css_files") or []:
        filename = str(getattr(css, "filename", css))
        attributes = dict(getattr(css, "attributes", {}) or {})
        extra = sorted(k for k, v in attributes.items()
                       if k not in ("rel", "type") and v is not None)
        if attributes.get("rel", "stylesheet") != "stylesheet" or extra:
            return None, f"{filename} has attributes {extra or attributes.get('rel')}"
        if _ABSOLUTE.match(filename) or not filename.startswith("_static/"):
            return None, f"{filename} is not one of the site's static files"
        names.append(filename.removeprefix("_static/"))
    return names, ""


def _rebase(css: str, folder: str) -> str:
    """Relative url()s of a stylesheet in `folder` (under _static), made relative to _static."""
    def rebase(match: re.Match) -> str:
        quote, target = match.group(1), match.group(2).strip()
        if _ABSOLUTE.match(target) or not folder:
            return match.group(0)
        return f"url({quote}{posixpath.normpath(posixpath.join(folder, target))}{quote})"

    return _URL.sub(rebase, css)


def stylesheet_text(static: Path, name: str, seen: frozenset = frozenset()) -> str:
    """One stylesheet with its @imports inlined and its url()s relative to _static."""
    if name in seen:
        raise ValueError(f"css_bundle: {name} imports itself")
    css = _CHARSET.sub("", (static / name).read_text(encoding="utf-8"))
    folder = posixpath.dirname(name)
    imported: list[str] = []

    def hold(match: re.Match) -> str:
        target = posixpath.normpath(posixpath.join(folder, match.group(1)))
        imported.append(stylesheet_text(static, target, seen | {name}))
        return f"\0{len(imported) - 1}\0"

    css = _rebase(_IMPORT.sub(hold, css), folder)
    return re.sub(r"\0(\d+)\0", lambda m: imported[int(m.group(1))], css)


def bundle_text(static: Path, members: list[str]) -> str:
    """The uncut bundle of `members` (paths relative to `static`), header first."""
    parts = [stylesheet_text(static, name) for name in members]
    return HEADER.format(" ".join(members)) + "\n".join(parts)


def bundle_members(bundle: str) -> list[str]:
    """The members a bundle's header names."""
    match = _HEADER.match(bundle)
    if not match:
        raise ValueError("not a stylesheet bundle: its first line names no members")
    return match.group(1).split()


def bundle_name(members: list[str]) -> str:
    return f"bundle-{hashlib.sha256(chr(10).join(members).encode()).hexdigest()[:12]}.css"


def link_bundle(app, pagename, templatename, context, doctree):
    """Name the page's bundle and hand the name to the layout; the file is written after
    the build, once every member is final."""
    if app.builder.format != "html" or app.builder.name in ("epub", "htmlhelp"):
        return
    members, why = page_members(context)
    if members is None:
        logger.info(f"css_bundle: {pagename} keeps separate stylesheets ({why})")
        return
    name = bundle_name(members)
    path = Path(app.outdir) / "_static" / name
    if not path.is_file():   # for now only the header: the members are written at the end
        path.write_text(HEADER.format(" ".join(members)), encoding="utf-8")
    getattr(app, "_css_bundles", set()).add(name)
    context["css_bundle"] = name


def write_bundles(app, exception):
    """Each bundle the pages link, from its members as the build leaves them."""
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    linked = getattr(app, "_css_bundles", set())
    for path in sorted(static.glob(BUNDLE_GLOB)):
        members = bundle_members(path.read_text(encoding="utf-8"))
        missing = [name for name in members if not (static / name).is_file()]
        if missing:   # a bundle an earlier build left behind is no concern of this one
            (logger.warning if path.name in linked else logger.info)(
                f"css_bundle: {path.name}: no {', '.join(missing)} in _static")
            continue
        text = bundle_text(static, members)
        path.write_text(text, encoding="utf-8")
        logger.info(f"css_bundle: {len(members)} stylesheets -> _static/{path.name} "
                    f"({len(text) / 1e3:.0f} kB before css_prune)")


def setup(app):
    app._css_bundles = set()
    # after every extension that adds a stylesheet to the page's list
    app.connect("html-page-context", link_bundle, priority=990)
    # after pydata-sphinx-theme rewrites pygments.css and myst-nb copies its stylesheet
    # (both at the default priority, 500), before _ext/css_prune.py (800)
    app.connect("build-finished", write_bundles, priority=700)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
