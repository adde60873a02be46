"""Font Awesome icons from a few-kB font instead of a 1.5 MB script (issue 24).

pydata-sphinx-theme draws its icons (search, menu, colour mode, GitHub, launch...) twice
over: its CSS maps each `fa-NAME` class to a glyph of the Font Awesome web fonts (157 kB +
118 kB + 25 kB woff2), and `scripts/fontawesome.js` (1.5 MB) replaces every `<i class="fa-...">`
with an inline SVG. The layout override in `_ext/templates/layout.html` drops the script; this
extension, after the build, replaces the copies of the theme's woff2 fonts in
`_static/vendor/fontawesome/webfonts/` with subsets holding only the glyphs the site's
pages and scripts use (the theme's CSS keeps pointing at them; a second `@font-face` for
the subset would not do: Chrome falls back to the full face for any character the subset
lacks, and downloads it). Sphinx copies the theme's full fonts again on the next build,
and this step cuts them again. The icons stay vector glyphs: crisp at any pixel density,
coloured like the text around them in light and dark mode.

Needs fontTools (a dependency of matplotlib) and brotli (woff2): both in requirements.txt.
Without them the build logs why and the pages fall back to the theme's full fonts.
"""
from __future__ import annotations

import re
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

WEBFONTS = ("vendor", "fontawesome", "webfonts")   # under _static, as the theme ships them
FACES = ["fa-solid-900", "fa-regular-400", "fa-brands-400"]

_CLASS_ATTR = re.compile(r'class="([^"]*\bfa-[^"]*)"')
_ICON_NAME = re.compile(r"\bfa-([a-z0-9-]+)")
_CSS_RULE = re.compile(r'([^{}]*?)\{content:"([^"]+)"\}')


def icon_codepoints(css: str) -> dict[str, int]:
    """{icon name: codepoint} from the theme CSS's `.fa-NAME:before{content:"\\fXXX"}` rules."""
    names = {}
    for selectors, content in _CSS_RULE.findall(css):
        match = re.fullmatch(r"\\([0-9a-f]{1,6}) ?|(.)", content)
        if not match:
            continue
        code = int(match.group(1), 16) if match.group(1) else ord(match.group(2))
        for selector in selectors.split(","):
            named = re.fullmatch(r"\s*\.fa-([a-z0-9-]+):(?::)?before\s*", selector)
            if named:
                names[named.group(1)] = code
    return names


def used_icon_names(outdir: Path) -> set[str]:
    """Every `fa-NAME` class on the built pages and in the scripts they load."""
    names = set()
    for page in outdir.rglob("*.html"):
        for classes in _CLASS_ATTR.findall(page.read_text(encoding="utf-8", errors="ignore")):
            names.update(_ICON_NAME.findall(classes))
    for script in (outdir / "_static").rglob("*.js"):
        if "fontawesome" not in script.name and "mathjax" not in script.parts:
            names.update(_ICON_NAME.findall(script.read_text(encoding="utf-8", errors="ignore")))
    return names


def theme_webfonts() -> Path:
    import pydata_sphinx_theme

    return (Path(pydata_sphinx_theme.__file__).parent / "theme" / "pydata_sphinx_theme" /
            "static" / "vendor" / "fontawesome" / "webfonts")


def subset_font(source: Path, target: Path, codepoints: set[int]) -> int:
    """Write the glyphs of `codepoints` that `source` has to `target` (woff2); how many."""
    from fontTools import subset

    options = subset.Options()
    options.flavor = "woff2"
    options.layout_features = []
    options.name_IDs = ["*"]   # keep the font's copyright and licence records (SIL OFL 1.1)
    font = subset.load_font(str(source), options)
    present = set(font.getBestCmap()) & codepoints
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(present))
    subsetter.subset(font)
    target.parent.mkdir(parents=True, exist_ok=True)
    subset.save_font(font, str(target), options)
    return len(present)


def write_subset(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    try:
        import brotli  # noqa: F401  (fontTools writes woff2 with it)
        from fontTools import subset  # noqa: F401
    except ImportError as missing:
        logger.info(f"icon_subset: {missing}; the pages use the theme's full icon fonts")
        return
    outdir = Path(app.outdir)
    css = (outdir / "_static" / "styles" / "pydata-sphinx-theme.css").read_text(encoding="utf-8")
    codes = icon_codepoints(css)
    names = used_icon_names(outdir)
    wanted = {codes[name] for name in names if name in codes}
    target_dir = outdir.joinpath("_static", *WEBFONTS)
    counts = [subset_font(theme_webfonts() / f"{stem}.woff2", target_dir / f"{stem}.woff2", wanted)
              for stem in FACES]
    logger.info(f"icon_subset: {len(wanted)} icons ({sum(counts)} glyphs) in {target_dir}")


def setup(app):
    app.connect("build-finished", write_subset)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
