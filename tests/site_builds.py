"""The two editions of the site, each built once per test session, and a server for both.

tests/test_book.py (the English site) and tests/test_site_ko.py (the Korean one, whose
language links lead to the English pages) share these builds: each is made the first time
a test asks for it, into a temporary folder removed when the session ends.

* `english_build()`: `jupyter-book build . -W -n --keep-going`, as the README and CI do.
* `korean_build()`: `python scripts/build_edition.py ko --strict` into a temporary folder
  (the same sources, the catalogues of locales/ko/, warnings as errors).
* `serve(english_html, korean_html)`: both over one loopback HTTP server, as GitHub Pages
  publishes them: English at the root, Korean under `ko/`; text gzipped (site_quality).
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import http.server
import importlib.util
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import site_quality as sq
from resnet_edu.conventions import kernel_environment
from resnet_edu.tools.nbval_times import build_command

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 600
KOREAN_FOLDER = "ko"


def _temporary(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _finished(proc: subprocess.CompletedProcess, out_dir: Path, seconds: float) -> SimpleNamespace:
    return SimpleNamespace(html=out_dir / "_build" / "html", returncode=proc.returncode,
                           log=proc.stdout + proc.stderr, seconds=seconds)


@functools.cache
def english_build() -> SimpleNamespace:
    """The English site, strict; `.html`, `.returncode`, `.log`, `.seconds`."""
    out_dir = _temporary("book-build-")
    start = time.perf_counter()
    proc = subprocess.run(build_command(ROOT, out_dir), cwd=ROOT, env=kernel_environment(ROOT),
                          capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    seconds = time.perf_counter() - start
    print(f"\njupyter-book build: {seconds:.1f} s")
    return _finished(proc, out_dir, seconds)


def build_edition_module():
    spec = importlib.util.spec_from_file_location("build_edition", ROOT / "scripts" / "build_edition.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def korean_build() -> SimpleNamespace:
    """The Korean site, strict; the same attributes as `english_build()`."""
    out_dir = _temporary("book-build-ko-")
    start = time.perf_counter()
    proc = build_edition_module().build(KOREAN_FOLDER, out_dir, strict=True, capture_output=True,
                                        text=True, timeout=BUILD_TIMEOUT_S)
    seconds = time.perf_counter() - start
    print(f"\nKorean build (scripts/build_edition.py ko --strict): {seconds:.1f} s")
    return _finished(proc, out_dir, seconds)


class EditionsHandler(sq.GzipHandler):
    """English from `english`, Korean from `korean` for paths under /ko/."""

    english: Path
    korean: Path

    def translate_path(self, path):
        prefix = f"/{KOREAN_FOLDER}/"
        if path.startswith(prefix):
            self.directory, path = str(self.korean), path[len(prefix) - 1:]
        else:
            self.directory = str(self.english)
        return super().translate_path(path)


@contextlib.contextmanager
def serve(english_html: Path, korean_html: Path):
    """Yield the base URL of a server publishing both editions."""
    handler = type("Handler", (EditionsHandler,), {"english": english_html, "korean": korean_html})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
