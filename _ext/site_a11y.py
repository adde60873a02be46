"""Accessibility and metadata fixes made at their source (issue 24; CONTRIBUTING.md names the
upstream issue each one stands for).

1. Template overrides in `_ext/templates/` (searched before the theme's templates and
   components): the
   layout without the theme's 1.5 MB Font Awesome script (see _ext/icon_subset.py), the
   search field and colour-mode buttons whose accessible names match what they show.
2. Citation lists: docutils' HTML writer gives each entry of a bibliography the ARIA role
   `doc-biblioentry`, deprecated in DPUB-ARIA 1.1, inside a `role="list"` that then has no
   list items (axe: aria-deprecated-role, aria-required-children). Entries become
   `role="listitem"`; everything else about the list is unchanged.
3. A hidden cell input (myst-nb's `hide-input` tag) folds under a `<summary>` labelled
   "Toggle hidden content" that shows "Show code cell source": the accessible name no
   longer contains the visible label (WCAG 2.5.3). The summary is written without the
   label, so its name is what it shows; everything else is myst-nb's markup.
4. Pages that Sphinx generates without a document (search, general index, module index)
   get the description and social tags that sphinxext-opengraph gives every other page,
   from `site_generated_page_descriptions` in _config.yml.
5. Descriptions in words, not LaTeX: sphinxext-opengraph takes a page's description from
   its first paragraph's text, where a formula is its LaTeX source (`y =
   \\operatorname{relu}(F(x) + x)`). Just before it reads the doctree (the page's HTML is
   written by then), every formula node becomes its Unicode text (pylatexenc: `y = relu(F(x)
   + x)`, `3×3`).
6. The sidebar's expandable entries (the API reference and its pages): pydata-sphinx-theme
   puts the entry's link beside a `<summary>` that holds only a decorative chevron, so the
   disclosure has no accessible name (axe: summary-name) and a screen reader announces an
   unnamed control. Each such summary is labelled by its entry's link
   (`aria-labelledby`): "API reference: resnet_edu, expanded".
"""
from __future__ import annotations

import html
import types
from pathlib import Path
from urllib.parse import urljoin

from docutils import nodes

TEMPLATES = Path(__file__).resolve().parent / "templates"
GENERATED_TITLES = {"search": "Search", "genindex": "Index", "py-modindex": "Python module index"}


def add_templates(app, config):
    """Put _ext/templates first on the template search path."""
    config.templates_path = [str(TEMPLATES)] + [p for p in config.templates_path
                                                 if Path(app.confdir, p) != TEMPLATES]


class CitationListItemMixin:
    """Bibliography entries as list items of their `role="list"` container."""

    def visit_citation(self, node):
        if not isinstance(node.previous_sibling(), type(node)):
            self.body.append('<div role="list" class="citation-list">\n')
        self.body.append(self.starttag(node, "div", classes=[node.tagname], role="listitem"))


def setup_translators(app):
    """Add the mixin to every HTML translator (after pydata-sphinx-theme added its own)."""
    if app.builder.format != "html":
        return
    translators = dict(app.registry.translators) or {
        app.builder.name: app.builder.default_translator_class}
    for name, klass in translators.items():
        if issubclass(klass, CitationListItemMixin):
            continue
        mixed = types.new_class("BookHTML5Translator", (CitationListItemMixin, klass), {})
        app.set_translator(name, mixed, override=True)


def visit_hide_cell_input(self, node):
    """myst-nb's visit_HideCellInput without the `aria-label` on <summary>."""
    classes = " ".join(node["classes"])
    self.body.append(f'<details class="admonition hide {classes}">\n<summary>\n')
    for state, prompt in (("collapsed", node["prompt_show"]), ("expanded", node["prompt_hide"])):
        self.body.append(f'<p class="{state} admonition-title">{html.escape(prompt)}</p>\n')
    self.body.append("</summary>\n")


def depart_hide_cell_input(self, node):
    self.body.append("</details>\n")


def override_hide_cell_input(app):
    try:
        from myst_nb.sphinx_ import HideCodeCellNode
    except ImportError:
        return
    app.add_node(HideCodeCellNode, override=True,
                 html=(visit_hide_cell_input, depart_hide_cell_input))


def generated_page_tags(app, pagename, templatename, context, doctree):
    """Description and Open Graph tags for a page that has no document (e.g. search)."""
    descriptions = app.config.site_generated_page_descriptions or {}
    if doctree is not None or pagename not in descriptions:
        return
    site = app.config.ogp_site_url or app.config.html_baseurl or ""
    name = app.config.ogp_site_name or app.config.html_title or app.config.project
    title = f"{GENERATED_TITLES.get(pagename, pagename)} \u2014 {name}"
    tags = {"og:title": title, "og:type": "website", "og:site_name": name,
            "og:description": descriptions[pagename],
            "og:url": urljoin(site, app.builder.get_target_uri(pagename))}
    if app.config.ogp_image:
        tags["og:image"] = urljoin(site, app.config.ogp_image)
        tags["og:image:alt"] = app.config.ogp_image_alt or app.config.project
    lines = [f'<meta property="{k}" content="{html.escape(v)}" />' for k, v in tags.items()]
    lines.append(f'<meta name="description" content="{html.escape(descriptions[pagename])}" />')
    lines.extend(app.config.ogp_custom_meta_tags or [])
    context["metatags"] = context.get("metatags", "") + "\n".join(lines) + "\n"


def name_nav_toggles(soup, kind: str) -> None:
    """Label every text-less `<summary>` of the theme's navigation by the link beside it
    (in place; the theme caches the tree per page, so doing it twice changes nothing)."""
    for number, summary in enumerate(soup.find_all("summary"), start=1):
        if summary.get_text(strip=True) or summary.get("aria-labelledby"):
            continue
        link = summary.parent.find_previous_sibling("a")
        if link is None:
            continue
        link["id"] = link.get("id") or f"{kind}-entry-{number}"
        summary["aria-labelledby"] = link["id"]


def label_nav_toggles(app, pagename, templatename, context, doctree):
    """Wrap the theme's `generate_toctree_html` so its sidebar comes out labelled."""
    generate = context.get("generate_toctree_html")
    if generate is None or getattr(generate, "labels_toggles", False):
        return

    def generate_labelled(*args, **kwargs):
        soup = generate(*args, **kwargs)
        if hasattr(soup, "find_all"):
            name_nav_toggles(soup, kwargs.get("kind") or (args[0] if args else "nav"))
        return soup

    generate_labelled.labels_toggles = True
    context["generate_toctree_html"] = generate_labelled


def math_as_text(app, pagename, templatename, context, doctree):
    """Each formula of the page's doctree as plain Unicode text (for the description)."""
    if doctree is None:
        return
    from pylatexenc.latex2text import LatexNodes2Text

    converter = LatexNodes2Text()
    for node in list(doctree.findall(nodes.math)):
        node.replace_self(nodes.Text(converter.latex_to_text(node.astext())))


def setup(app):
    app.add_config_value("site_generated_page_descriptions", {}, "html", types=[dict])
    app.connect("html-page-context", math_as_text, priority=400)   # before sphinxext-opengraph
    app.connect("config-inited", add_templates)
    override_hide_cell_input(app)
    app.connect("builder-inited", setup_translators, priority=900)
    app.connect("html-page-context", generated_page_tags)
    app.connect("html-page-context", label_nav_toggles, priority=600)   # after the theme's 500
    return {"parallel_read_safe": True, "parallel_write_safe": True}
