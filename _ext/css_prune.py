"""The site's stylesheet without the rules no page can use (issue 24).

A page's stylesheets (one bundle, _ext/css_bundle.py) block its first paint, and on a
phone's connection they are most of the wait. Most of their weight is the theme's
`pydata-sphinx-theme.css` (397 kB, 66 kB compressed): all of Bootstrap 5's components and
utilities and a rule for each of Font Awesome's 1,400 icons, while the book uses a few dozen
of each. After the build, this step rewrites each bundle (the theme's file when there is no
bundle) without every selector that needs a class which appears nowhere in the site: in no
page and in no script (a class that a script adds, `show` or `collapsing`, is a string in
that script, so its rules stay). A rule keeps the selectors that can still match; one that
keeps none is dropped. Selectors whose matching a class name cannot decide (`:is()`,
`:where()`, `:has()`) are kept, and a class inside `:not()` is not required.

Parsing and serialising are tinycss2's (requirements.txt); without it the build logs why
and serves the full stylesheets. A bundle is written again on each build, and this step
cuts it again. The build log gives the sizes.
"""
from __future__ import annotations

import re
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

THEME_CSS = ("_static", "styles", "pydata-sphinx-theme.css")
_TOKEN = re.compile(r"[A-Za-z_][\w-]*")
_CLASS = re.compile(r"\.(-?[A-Za-z_][\w-]*)")
_NOT = re.compile(r":not\([^()]*\)")
_UNDECIDED = (":is(", ":where(", ":has(", ":host", "::slotted")


def site_tokens(outdir: Path) -> set[str]:
    """Every name-like token of every page and script of the built site."""
    tokens: set[str] = set()
    for path in outdir.rglob("*"):
        if path.suffix in (".html", ".js") and path.is_file():
            tokens.update(_TOKEN.findall(path.read_text(encoding="utf-8", errors="replace")))
    return tokens


def selector_can_match(selector: str, tokens: set[str]) -> bool:
    if any(mark in selector for mark in _UNDECIDED):
        return True
    return all(name in tokens for name in _CLASS.findall(_NOT.sub("", selector)))


def _split_selectors(prelude: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for index, char in enumerate(prelude):
        depth += char == "(" or char == "["
        depth -= char == ")" or char == "]"
        if char == "," and depth == 0:
            parts.append(prelude[start:index])
            start = index + 1
    return [*parts, prelude[start:]]


def prune_rules(rules, tokens: set[str]) -> list:
    """The rules (tinycss2 nodes) left once dead selectors are removed; @-rules recursed."""
    import tinycss2

    kept = []
    for rule in rules:
        if rule.type == "qualified-rule":
            selectors = [s for s in _split_selectors(tinycss2.serialize(rule.prelude))
                         if selector_can_match(s, tokens)]
            if not selectors:
                continue
            rule.prelude = tinycss2.parse_component_value_list(",".join(selectors))
        elif rule.type == "at-rule" and rule.lower_at_keyword in ("media", "supports") \
                and rule.content is not None:
            inner = prune_rules(tinycss2.parse_rule_list(rule.content), tokens)
            if not inner:
                continue
            rule.content = tinycss2.parse_component_value_list(tinycss2.serialize(inner))
        kept.append(rule)
    return kept


def stylesheets_to_cut(outdir: Path) -> list[Path]:
    """The stylesheets the pages link: _ext/css_bundle.py's bundles, else the theme's file."""
    from css_bundle import BUNDLE_GLOB  # _ext is on the path (jupyter-book's local_extensions)

    bundles = sorted((outdir / "_static").glob(BUNDLE_GLOB))
    theme = outdir.joinpath(*THEME_CSS)
    return bundles or ([theme] if theme.is_file() else [])


def prune_css(css: str, tokens: set[str]) -> str:
    """`css` without the selectors no page can match; a leading comment (a bundle's list of
    members) is kept."""
    import tinycss2

    header = css[:css.index("*/") + 2] + "\n" if css.startswith("/*") and "*/" in css else ""
    rules = tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)
    return header + tinycss2.serialize(prune_rules(rules, tokens))


def prune_site_css(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    try:
        import tinycss2  # noqa: F401
    except ImportError as missing:
        logger.info(f"css_prune: {missing}; the pages load the full stylesheets")
        return
    outdir = Path(app.outdir)
    tokens = site_tokens(outdir)
    for path in stylesheets_to_cut(outdir):
        css = path.read_text(encoding="utf-8")
        pruned = prune_css(css, tokens)
        path.write_text(pruned, encoding="utf-8")
        logger.info(f"css_prune: {path.name} {len(css) / 1e3:.0f} kB -> {len(pruned) / 1e3:.0f} kB")


def setup(app):
    # after _ext/icon_subset.py, which reads the icon rules of the full stylesheet
    app.connect("build-finished", prune_site_css, priority=800)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
