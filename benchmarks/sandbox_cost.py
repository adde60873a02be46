"""What the grader's sandbox costs: per answering process, and per grading run.

1. **Per process**: an answering process is forked from the grader's fork server and
   answers one ``load`` request (a one-line answer); the time from the start of the
   process to that reply is measured with and without confinement, in interleaved pairs
   (a slow-down of a shared machine hits both halves of a pair alike). Printed: the median
   of each and the median of the pairs' differences (target: under 50 ms).
2. **Per run**: the book's own solved notebooks, graded with and without confinement,
   one after the other in the same process (the fork server is warm for both), in
   alternating order over ``--runs`` runs. Printed: each run's seconds side by side.

    python benchmarks/sandbox_cost.py                 # 20 pairs, 1 run of the book
    python benchmarks/sandbox_cost.py --pairs 50 --runs 2
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 50.0


def start_and_answer(confinement) -> float:
    """Seconds from starting an answering process to its first reply."""
    from resnet_edu.classroom.protocol import Load
    from resnet_edu.classroom.session import Worker

    start = time.perf_counter()
    worker = Worker(1, confinement)
    try:
        reply = worker.request(Load(space="bench", code="x = 1\n"), 60.0)
        assert reply.error is None, reply
        return time.perf_counter() - start
    finally:
        worker.close()


def per_process(pairs: int) -> None:
    from resnet_edu.classroom.sandbox import NONE, Confinement
    from resnet_edu.classroom.session import start_server

    start_server()
    start_and_answer(Confinement())                    # warm the fork server up
    on, off = [], []
    for i in range(pairs):
        order = [(on, Confinement()), (off, NONE)]
        for times, confinement in (order if i % 2 == 0 else order[::-1]):
            times.append(start_and_answer(confinement))
    diff = [1000 * (a - b) for a, b in zip(on, off)]
    print(f"per answering process ({pairs} interleaved pairs, start to first reply):")
    print(f"  confined    median {1000 * statistics.median(on):7.1f} ms")
    print(f"  unconfined  median {1000 * statistics.median(off):7.1f} ms")
    print(f"  added       median {statistics.median(diff):7.1f} ms  (target: under "
          f"{TARGET_MS:.0f} ms) {'ok' if statistics.median(diff) < TARGET_MS else 'OVER'}")


def per_run(runs: int) -> None:
    from resnet_edu.classroom import grade_notebooks, load_masters
    from resnet_edu.classroom.grading import Options
    from resnet_edu.classroom.sandbox import NONE, Confinement

    book = ROOT / "book"
    masters = load_masters(book)
    paths = [book / name for name in masters]
    seconds = {"confined": [], "unconfined": []}
    for i in range(runs):
        order = [("confined", Confinement()), ("unconfined", NONE)]
        for label, confinement in (order if i % 2 == 0 else order[::-1]):
            start = time.perf_counter()
            results = grade_notebooks(paths, masters, Options(confinement=confinement))
            seconds[label].append(time.perf_counter() - start)
            scores = [(r.score, r.max_score) for res in results for r in res.rows]
            assert all(s == m for s, m in scores), f"{label}: the book lost marks"
    print(f"grading the book's {len(paths)} solved notebooks ({runs} run(s) each, "
          "alternating):")
    for label, values in seconds.items():
        print(f"  {label:<11} " + "  ".join(f"{v:6.1f} s" for v in values))
    ratio = statistics.median(seconds["confined"]) / statistics.median(seconds["unconfined"])
    print(f"  ratio confined/unconfined (medians): {ratio:.3f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=20, help="pairs of processes (20)")
    parser.add_argument("--runs", type=int, default=1,
                        help="gradings of the book (1; 0 skips them)")
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.runs < 0:
        print("error: --pairs must be at least 1 and --runs at least 0", file=sys.stderr)
        return 2
    from resnet_edu.classroom.sandbox import availability

    ok, why = availability()
    if not ok:
        print(f"error: no sandbox on this machine: {why}", file=sys.stderr)
        return 2
    per_process(args.pairs)
    if args.runs:
        per_run(args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
