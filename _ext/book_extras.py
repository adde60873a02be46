"""Small Sphinx additions for this book (loaded through `sphinx.local_extensions` in _config.yml).

1. No duplicated inline scripts. Sphinx 7 registers an inline `<script>` added after the
   builder started (sphinx-thebe and sphinx-togglebutton do this) twice, once under the file
   name `None` and once under `''` (fixed upstream in Sphinx 8, which jupyter-book 1 cannot
   use). The second copy of sphinx-thebe's `const THEBE_JS_URL = ...` is a JavaScript
   `SyntaxError` on every page. We drop the duplicates from each page as it is written.

2. Scripts that do not block the first paint (issue 24). Sphinx and its extensions load
   their scripts in <head> without `defer`, so a phone on a slow network paints nothing
   until a dozen scripts have arrived (Lighthouse: render-blocking resources). Every
   external script gets `defer` (they still run in the same order, before DOMContentLoaded)
   except `documentation_options.js`, which an inline script right after it uses.
   (`_ext/templates/layout.html` does the same for the search scripts the theme adds.)

3. Figures load when the reader gets near them (issue 24). A chapter's figures (0.2 MB
   each) were fetched with the page and, on a phone's connection, shared its bandwidth with
   the stylesheets that the first paint waits for. Every image of a page's content gets
   `loading="lazy"` (docutils' HTML writer writes the attribute from the node).

The API reference (book/api.md and its pages book/api_*.md, autodoc) documents the
`resnet_edu` that the building Python imports: the checkout's own, through
`pip install -r requirements.txt` (an editable install) or `PYTHONPATH=.` (the tests build
with `resnet_edu.conventions.kernel_environment`).
Nothing here edits `sys.path`; jupyter-book puts `_ext` there for this extension.
"""
from __future__ import annotations

from sphinx.util import logging

logger = logging.getLogger(__name__)


def _script_key(asset) -> tuple:
    attributes = getattr(asset, "attributes", {}) or {}
    return (getattr(asset, "filename", None) or "", getattr(asset, "priority", 500),
            tuple(sorted((str(k), str(v)) for k, v in attributes.items())))


def drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    """Keep the first of identical `<script>` entries of a page (in place)."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for asset in scripts:
        key = _script_key(asset)
        if key not in seen:
            seen.add(key)
            unique.append(asset)
    scripts[:] = unique


KEEP_BLOCKING = ("documentation_options.js",)


def defer_scripts(app, pagename, templatename, context, doctree):
    """Give every external, not yet async or deferred script of a page `defer` (in place)."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list) or pagename == "search":
        return   # the search page's template loads searchtools.js itself, undeferred
    from sphinx.builders.html._assets import _JavaScript

    for index, asset in enumerate(scripts):
        filename = str(getattr(asset, "filename", "") or "")
        attributes = dict(getattr(asset, "attributes", {}) or {})
        if (not filename or "body" in attributes or "async" in attributes
                or "defer" in attributes or filename.endswith(KEEP_BLOCKING)):
            continue
        scripts[index] = _JavaScript(filename, priority=asset.priority,
                                     **{**attributes, "defer": "defer"})


def lazy_images(app, doctree, docname):
    """`loading="lazy"` on every image of the page's content."""
    from docutils import nodes

    for image in doctree.findall(nodes.image):
        image.setdefault("loading", "lazy")


def setup(app):
    app.connect("doctree-resolved", lazy_images)
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    app.connect("html-page-context", defer_scripts, priority=910)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
