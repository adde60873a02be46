"""Math rendered when the book is built, not in the reader's browser (issue 24).

MathJax (1.1 MB of script, then typesetting on the reader's CPU) was the heaviest part of a
chapter page and what kept phones waiting: Lighthouse's mobile preset scored math pages 48-79.
This extension renders every formula once, at build time, with KaTeX (through the PyPI
package `sphinxcontrib-katex`, whose `katex.min.js` runs under Node.js): a page receives
HTML and CSS, no math script at all, and the browser only fetches the few KaTeX fonts that
its formulas use (woff2, 10-30 kB each, cached across pages).

- Where `node` is on the PATH (`.ci/run` installs it; so does any machine that runs the
  browser test), formulas are prerendered.
- Without Node.js the build still works and stays offline: pages load the same KaTeX
  (`katex.min.js`, about 270 kB, from the build itself) and render their formulas on load.
  The build log says which of the two it did.
- KaTeX's stylesheet and woff2 fonts are vendored in `_ext/static/katex/` (MIT licence, from the
  npm package `katex` at the version `sphinxcontrib-katex` bundles; tests/test_book.py checks
  that the two versions agree). Only the woff2 files are shipped: every browser the site
  supports takes the first, woff2, source of each `@font-face`.
- sphinxcontrib-katex 0.9.11 connects to its Node.js render server as soon as the server's
  socket file exists, which is after `bind()` but possibly before `listen()`: on a busy
  machine the build failed with `ConnectionRefusedError`. `start_render_server` replaces its
  start-up with one that retries the connection until the same time-out (the only use of
  that package's internals; CONTRIBUTING.md lists it).
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

# The vendored stylesheet and fonts; copied to the site's _static/katex/. (Not under the
# book's own _static/: jupyter-book links every stylesheet found there into every page.)
STATIC = Path(__file__).resolve().parent / "static"
KATEX_CSS = "katex/katex.min.css"   # under _static/


def prerender_available() -> bool:
    """Whether formulas can be rendered at build time (Node.js runs KaTeX)."""
    return shutil.which("node") is not None


def configure(app, config):
    config.html_math_renderer = "katex"
    config.katex_css_path = KATEX_CSS
    config.html_static_path = [*config.html_static_path, str(STATIC)]
    config.katex_prerender = prerender_available()
    if config.katex_prerender:
        logger.info("math: KaTeX renders every formula at build time (Node.js)")
    else:
        logger.info("math: Node.js not found: pages render their formulas with KaTeX on load")


def start_render_server(cls, rundir: Path, timeout: float):
    """sphinxcontrib-katex's server start-up, retrying a refused connection until `timeout`."""
    socket_path = rundir / "katex.sock"
    process = subprocess.Popen(cls.build_command(socket=socket_path),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=rundir)
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise cls.timeout_error(timeout)
        if socket_path.is_socket():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(max(deadline - time.monotonic(), 0.01))
                sock.connect(str(socket_path))
                sock.settimeout(None)
                return process, sock
            except (ConnectionRefusedError, FileNotFoundError):
                sock.close()   # bound but not yet listening
        time.sleep(0.005)


def setup(app):
    app.setup_extension("sphinxcontrib.katex")
    from sphinxcontrib.katex import KaTeXServer

    KaTeXServer.start_server_process = classmethod(start_render_server)
    app.connect("config-inited", configure, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
