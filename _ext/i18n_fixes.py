"""Three gaps in Sphinx's translation of MyST pages, closed for the Korean edition (issue 23).

Sphinx translates a page by parsing each translated message with the page's own parser
(sphinx.transforms.i18n.Locale) and keeping the result only if it is a paragraph (or, for a
heading, a title). Two kinds of message were silently left in English on the MyST and
myst-nb pages of this book:

1. A message that starts like a Markdown block: every chapter title ("2. Conv → BatchNorm
   → ReLU", "11. Why residual networks train: ..."), the numbered headings of running.md.
   Parsed on its own, "11. 잔차 네트워크는 ..." is an ordered list, not a paragraph, so
   Sphinx dropped it. `publish_msgstr` is wrapped here to escape such a leading marker
   (`11\\.`), which Markdown renders as the text it was; messages are unchanged.
2. The part captions of the table of contents. sphinx-external-toc inserts the toctrees
   of _toc.yml (transform priority 100) after Sphinx has translated the page (priority
   20), so their captions, though extracted into intro.po, were never translated.
   `TranslateTocCaptions` runs after the insertion and looks them up in the page's catalogue.
3. The titles of exercises (`{exercise} The shape of ResNet's stem`): sphinx-exercise
   builds the title's node without a source file, and Sphinx neither extracts nor
   translates a text node without one. `ExerciseTitleSource`
   fills both in before translation (priority 10), and for the gettext builder
   `ExerciseTitleMessage` keeps the title's text in one translatable inline node through
   sphinx-exercise's post-transform (which moves it into a new title node), so the title
   is one more message of its page. A solution's title repeats its exercise's title from
   sphinx-exercise's registry, a copy taken before translation: `ExerciseRegistryTitles`
   puts the translated title into that copy (priority 21, after Locale).

And one thing kept out: the API pages' docstrings stay English (issue 23: code and the API
reference are the same in both editions), so `KeepApiEnglish` marks what autodoc wrote
(the object descriptions and the module docstrings) untranslatable; the catalogues of the
API pages (api.po, api_*.po) hold only their own prose.

Both do nothing in the English build (no catalogue for `en`).
"""
from __future__ import annotations

import re
from os import path

from docutils import nodes
from sphinx import addnodes
from sphinx.locale import init as init_locale
from sphinx.transforms import SphinxTransform, i18n
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.i18n import docname_to_domain

# A start that Markdown reads as a block: an ordered or bullet list item, a quote, a heading.
_ORDERED = re.compile(r"(\s*\d{1,9})([.)])(?=\s|$)")
_OTHER = re.compile(r"(\s*)([-+*>]|#{1,6})(?=\s|$)")


def escape_block_start(text: str) -> str:
    """TEXT with a leading list, quote or heading marker escaped, so it parses as a paragraph."""
    match = _ORDERED.match(text) or _OTHER.match(text)
    if match is None:
        return text
    return match.group(1) + "\\" + match.group(2) + text[match.end():]


_original_publish_msgstr = i18n.publish_msgstr


def publish_msgstr(app, source, source_path, source_line, config, settings):
    if str(source_path).endswith((".md", ".ipynb")):
        source = escape_block_start(source)
    return _original_publish_msgstr(app, source, source_path, source_line, config, settings)


class TranslateTocCaptions(SphinxTransform):
    """Translate the captions of the toctrees that sphinx-external-toc inserted."""

    default_priority = 110   # after sphinx_external_toc's InsertToctrees (100)

    def apply(self, **kwargs) -> None:
        toctrees = [node for node in self.document.findall(addnodes.toctree) if node.get("rawcaption")]
        if not toctrees or not self.config.language or self.config.language == "en":
            return
        dirs = [path.join(self.env.srcdir, directory) for directory in self.config.locale_dirs]
        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        catalog, has_catalog = init_locale(dirs, self.config.language, domain)
        if not has_catalog:
            return
        for node in toctrees:
            node["caption"] = catalog.gettext(node["rawcaption"])


def _markup(node: nodes.Node) -> str:
    """The MyST source of an inline node's text (enough for a title)."""
    if isinstance(node, nodes.literal):
        return f"`{node.astext()}`"
    if isinstance(node, nodes.math):
        return f"${node.astext()}$"
    if isinstance(node, (nodes.emphasis, nodes.strong)):
        mark = "*" if isinstance(node, nodes.emphasis) else "**"
        return mark + "".join(_markup(child) for child in node.children) + mark
    return node.astext()


class KeepApiEnglish(SphinxTransform):
    """Autodoc's output is not translatable: object descriptions and docstrings."""

    default_priority = 5

    def apply(self, **kwargs) -> None:
        for desc in self.document.findall(addnodes.desc):
            for node in desc.findall(nodes.Element):
                node["translatable"] = False
        for node in self.document.findall(nodes.Element):
            if ":docstring of " in (node.source or ""):
                node["translatable"] = False


class ExerciseTitleSource(SphinxTransform):
    """Give sphinx-exercise's title nodes the source of their directive (see 3. above)."""

    default_priority = 10   # before sphinx.transforms.i18n.Locale (20)

    def apply(self, **kwargs) -> None:
        for node in self.document.findall(nodes.subtitle):
            if node.source or type(node).__name__ != "exercise_subtitle":
                continue
            origin = node.parent
            while origin is not None and not origin.source:
                origin = origin.parent
            node.source = origin.source if origin is not None else self.document["source"]
            node.line = origin.line if origin is not None else None
            if not node.rawsource:
                node.rawsource = "".join(_markup(child) for child in node.children)


class ExerciseTitleMessage(SphinxPostTransform):
    """For extraction: the exercise title's text in one inline node that keeps its source."""

    default_priority = 19   # before sphinx-exercise's ResolveTitlesInExercises (20)
    builders = ("gettext",)

    def run(self, **kwargs) -> None:
        for node in list(self.document.findall(nodes.subtitle)):
            if type(node).__name__ != "exercise_subtitle" or not node.rawsource:
                continue
            message = nodes.inline(node.rawsource, "", *node.children, translatable=True)
            message.source, message.line = node.source, node.line
            message.uid = getattr(node, "uid", "")   # the gettext builder skips nodes without one
            node.children = []
            node += message


class ExerciseRegistryTitles(SphinxTransform):
    """The translated exercise titles into sphinx-exercise's registry (see 3. above)."""

    default_priority = 21   # after sphinx.transforms.i18n.Locale (20)

    def apply(self, **kwargs) -> None:
        registry = getattr(self.env, "sphinx_exercise_registry", {})
        for node in self.document.findall(nodes.subtitle):
            exercise = node.parent.parent if node.parent is not None else None
            entry = registry.get(exercise.get("label")) if exercise is not None else None
            if type(node).__name__ != "exercise_subtitle" or not entry:
                continue
            for copy in entry["node"].findall(nodes.subtitle):
                copy.children = []
                copy.extend(child.deepcopy() for child in node.children)
                break


def setup(app):
    i18n.publish_msgstr = publish_msgstr
    app.add_transform(TranslateTocCaptions)
    app.add_transform(ExerciseTitleSource)
    app.add_transform(KeepApiEnglish)
    app.add_post_transform(ExerciseTitleMessage)
    app.add_transform(ExerciseRegistryTitles)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
