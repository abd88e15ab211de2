"""Scale-out: the fan-out of bench/fanout.py with 1, 2 and 4 worker processes.

    python bench/scale_out.py [--subscribers 10000] [--workers 1,2,4] [--matching lexical]

Each point is a full `bench/fanout.py` run (one pool process per Celery worker, so the
count is the number of processes sending) in its own process (fresh scratch database,
private Redis, counting sink, warmed-up workers), so the points do not share state.
fanout.py writes its own section of bench/RESULTS.md on every run; this script puts the
section back as it was afterwards, so only a real `bench/fanout.py` run updates it.

On this machine everything shares 2 cores: the workers, PostgreSQL, Redis, the SMTP
sink and the bench itself. Beyond 2 workers the curve says how much of a worker's time
is waiting (on PostgreSQL, Redis, SMTP) rather than how several machines would scale;
see the README section this bench backs for that.

Last line:
    scale_out subscribers=N w1_msgs_per_s=R1 w2_msgs_per_s=R2 w4_msgs_per_s=R4 speedup_max=X
"""

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import RESULTS, record  # noqa: E402

FANOUT_LINE = re.compile(r"^fanout subscribers=(\d+) seconds=([\d.]+) msgs_per_s=([\d.]+) delivered=(\d+) duplicates=(\d+)"
                         r" peak_worker_rss_mb=(\d+)", re.M)


def _section(text: str, name: str) -> str | None:
    match = re.search(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", text, re.S | re.M)
    return match.group(0) if match else None


def _restore_section(name: str, original: str | None) -> None:
    """Put RESULTS.md's `name` section back as it was (fanout.py rewrote it during our runs)."""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    current = _section(text, name)
    if current is None:
        return
    if original is None:
        text = text.replace(current, "")
    else:
        text = text.replace(current, original)
    RESULTS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=10000)
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    parser.add_argument("--matching", default="lexical", help="MATCHING_METHOD for the workers")
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    original = _section(RESULTS.read_text(), "fanout") if RESULTS.exists() else None
    points = {}
    try:
        for workers in counts:
            started = time.monotonic()
            result = subprocess.run(
                [sys.executable, str(ROOT / "bench" / "fanout.py"), "--subscribers", str(args.subscribers),
                 "--workers", str(workers), "--concurrency", "1", "--matching", args.matching, "--timeout", str(args.timeout)],
                cwd=ROOT, capture_output=True, text=True,
            )
            match = FANOUT_LINE.search(result.stdout)
            if result.returncode or not match:
                print(result.stdout[-2000:], result.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"fanout.py with {workers} workers failed (exit {result.returncode})")
            _, seconds, rate, delivered, duplicates, rss = match.groups()
            points[workers] = float(rate)
            print(f"{workers} worker(s): {float(seconds):.1f} s, {float(rate):.1f} msgs/s, delivered {delivered}, "
                  f"duplicates {duplicates}, peak worker RSS {rss} MB (run took {time.monotonic() - started:.0f} s)",
                  flush=True)
    finally:
        _restore_section("fanout", original)

    base = points[counts[0]]
    rows = [f"| {w} | {r:.1f} | {r / base:.2f}x |" for w, r in points.items()]
    details = "\n".join([
        f"matching {args.matching}; each point a separate `bench/fanout.py --subscribers {args.subscribers}` run; "
        "all processes share this machine's 2 cores.", "",
        "| worker processes | msgs/s | vs 1 worker |", "|---|---|---|", *rows,
    ])
    print(details)
    last = (f"scale_out subscribers={args.subscribers} "
            + " ".join(f"w{w}_msgs_per_s={r:.1f}" for w, r in points.items())
            + f" speedup_max={max(points.values()) / base:.2f}")
    record("scale_out", last, details)
    print(last)


if __name__ == "__main__":
    main()
