"""Lighthouse's four scores for every page of the built book, desktop and mobile side by side.

    npm ci                                   # Lighthouse (a dev dependency in package.json)
    jupyter-book build .                     # or any build folder: --site PATH/_build/html
    python benchmarks/lighthouse_scores.py [--site _build/html] [--pages book/intro.html ...] [--runs 3]
                                           [--presets mobile]

The site is served from a loopback HTTP server that compresses text with gzip, as GitHub
Pages does (tests/site_quality.py GzipHandler), and each page is audited by Lighthouse in
Debian's Chromium (/usr/bin/chromium, headless, --no-sandbox): performance, accessibility,
best practices and SEO, with the desktop preset and with Lighthouse's default mobile
emulation (a mid-range phone on a throttled 4G connection, simulated). Performance depends
on the machine and what else runs on it: it is a measurement, not a test (issue 24); the
other three categories should read 100 everywhere, and the audits that cost points are
listed under the table. Even on an idle machine one mobile run of the same page can read
86 or 96 (headless Chromium paints the first frame before the deferred scripts run in some
runs and after them in others), so `--runs N` audits each page N times per preset and
reports the run with the median performance score, as Lighthouse's documentation advises
("Variability"), with the lowest and highest score beside it.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _site_quality():
    """The test suite's gzip server and page list (tests/site_quality.py), loaded by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("site_quality",
                                                  ROOT / "tests" / "site_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


site_quality = _site_quality()

LIGHTHOUSE = ROOT / "node_modules" / "lighthouse" / "cli" / "index.js"
CHROMIUM = "/usr/bin/chromium"
CATEGORIES = ["performance", "accessibility", "best-practices", "seo"]
SHORT = {"performance": "perf", "accessibility": "a11y", "best-practices": "bp", "seo": "seo"}
PRESETS = ["desktop", "mobile"]
CHROME_FLAGS = "--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "_build" / "html",
                        help="the built HTML folder (default: _build/html)")
    parser.add_argument("--pages", nargs="*", default=None,
                        help="pages relative to the site root (default: every page)")
    parser.add_argument("--runs", type=int, default=1,
                        help="runs per page and preset; the median run is reported (default: 1)")
    parser.add_argument("--presets", nargs="+", choices=PRESETS, default=PRESETS,
                        help="the presets to run (default: both; desktop reads 97-100 on every "
                             "page, so a mobile-only run halves the time)")
    parser.add_argument("--json", type=Path, default=None, help="also write the scores here")
    return parser.parse_args(argv)


def check_inputs(args) -> str | None:
    """The reason the run cannot start, or None."""
    if args.runs < 1:
        return f"--runs must be at least 1, not {args.runs}"
    if not (args.site / "index.html").is_file():
        return f"{args.site} is not a built site (no index.html): build the book first"
    if not LIGHTHOUSE.is_file():
        return f"{LIGHTHOUSE.relative_to(ROOT)} is missing: run `npm ci` in {ROOT}"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: apt-get install chromium"
    missing = [p for p in args.pages or [] if not (args.site / p).is_file()]
    if missing:
        return f"no such page in {args.site}: {', '.join(missing)}"
    return None


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(site_quality.GzipHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def lighthouse(url: str, preset: str) -> dict:
    """One Lighthouse run: {category: score 0-100, "failed": [audit ids below 1]}."""
    command = ["node", str(LIGHTHOUSE), url, "--quiet", "--output=json",
               "--output-path=stdout", f"--chrome-flags={CHROME_FLAGS}",
               f"--only-categories={','.join(CATEGORIES)}", "--max-wait-for-load=60000"]
    if preset == "desktop":
        command.append("--preset=desktop")
    env = dict(os.environ, CHROME_PATH=CHROMIUM)
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["lighthouse failed"]}
    report = json.loads(proc.stdout)
    scores = {c: round(100 * (report["categories"][c]["score"] or 0)) for c in CATEGORIES}
    failed = []
    for c in CATEGORIES[1:]:
        for ref in report["categories"][c]["auditRefs"]:
            audit = report["audits"][ref["id"]]
            if ref.get("weight", 0) > 0 and audit.get("score") is not None and audit["score"] < 1:
                failed.append(ref["id"])
    perf = report["audits"]
    scores["lcp_s"] = round(perf["largest-contentful-paint"]["numericValue"] / 1000, 2)
    scores["bytes"] = int(perf["total-byte-weight"]["numericValue"])
    scores["failed"] = failed
    return scores


def median_run(url: str, preset: str, runs: int) -> dict:
    """The run with the median performance score of `runs` runs, with the range of scores."""
    results = [lighthouse(url, preset) for _ in range(runs)]
    good = sorted((r for r in results if "error" not in r), key=lambda r: r["performance"])
    if not good:
        return results[0]
    median = dict(good[(len(good) - 1) // 2])
    median["perf_range"] = (good[0]["performance"], good[-1]["performance"])
    return median


def row(page: str, results: dict) -> str:
    cells = [f"{page:40s}"]
    for preset in results:
        r = results[preset]
        if "error" in r:
            cells.append(f"error: {r['error']}")
            continue
        low, high = r.get("perf_range", (r["performance"],) * 2)
        spread = f" ({low}-{high})" if low != high else ""
        cells.append(" ".join(f"{r[c]:3d}" for c in CATEGORIES) +
                     f" {r['lcp_s']:5.2f} {r['bytes'] / 1e6:5.2f}{spread:10s}")
    return " | ".join(cells)


def header(presets: list[str]) -> str:
    one = " ".join(f"{SHORT[c]:>3s}" for c in CATEGORIES) + "   LCP    MB" + f"{' (perf)':10s}"
    return (f"{'page':40s} | " + " | ".join(f"{p + ':':8s}" + " " * (len(one) - 9) for p in presets)
            + "\n" + f"{'':40s} | " + " | ".join(one for _ in presets))


def main(argv=None) -> int:
    args = parse_args(argv)
    problem = check_inputs(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    pages = args.pages or site_quality.built_pages(args.site)
    server, base = serve(args.site)
    presets = [p for p in PRESETS if p in args.presets]
    print(header(presets), flush=True)
    table = {}
    try:
        for page in pages:
            table[page] = {preset: median_run(base + page, preset, args.runs) for preset in presets}
            print(row(page, table[page]), flush=True)
    finally:
        server.shutdown()
    failed = sorted({(p, preset, a) for p, r in table.items() for preset in r
                     for a in r[preset].get("failed", [])})
    if failed:
        print("\naudits below full marks (accessibility, best practices, SEO):")
        for page, preset, audit in failed:
            print(f"  {page} ({preset}): {audit}")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
