"""Import benchmark: N synthetic papers in HF daily_papers JSON, through the same parse + papers_ingest path.

    python bench/import_bench.py [--papers 50000] [--db-url URL] [--profile]

The database named by --db-url (or DATABASE_URL) is never written to: for SQLite
the bench uses a scratch file in a temporary directory (removed at exit); for
PostgreSQL a scratch database `paperboy_bench` on the same server, dropped and
created afresh (and left for inspection). Last line: `import papers=N seconds=S papers_per_s=R peak_rss_mb=M db=sqlite|postgresql`.
"""

import argparse
import atexit
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCRATCH_PG_DB = "paperboy_bench"

WORDS = (
    "learning model models language large diffusion vision transformer attention data training reasoning "
    "efficient scalable robust neural graph agents policy reinforcement retrieval generation alignment sparse "
    "benchmark multimodal video image speech robot control optimization inference memory compression token"
).split()


def scratch_database_url(url: str | None) -> tuple[str, str]:
    """A URL for a throwaway database on the same kind of server as ``url``."""
    if url and url.startswith(("postgres://", "postgresql://", "pgsql://")):
        import psycopg
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(url)
        admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_PG_DB}"')
            conn.execute(f'CREATE DATABASE "{SCRATCH_PG_DB}"')
        return urlunsplit(parts._replace(path=f"/{SCRATCH_PG_DB}")), "postgresql"
    scratch_dir = tempfile.mkdtemp(prefix="paperboy-bench-")
    atexit.register(shutil.rmtree, scratch_dir, ignore_errors=True)
    return f"sqlite:///{Path(scratch_dir) / 'bench.sqlite3'}", "sqlite"


def synthetic_daily_papers(count: int, *, seed: int = 1) -> bytes:
    """HF daily_papers items with realistic sizes: ~10-word titles, ~180-word abstracts, 6 authors."""
    rng = random.Random(seed)
    items = []
    for n in range(count):
        paper_id = f"{2400 + n // 90000}.{n % 90000:05d}"
        title = " ".join(rng.choices(WORDS, k=9)).capitalize() + f" {n}"
        summary = " ".join(rng.choices(WORDS, k=180)).capitalize() + "."
        items.append(
            {
                "paper": {
                    "id": paper_id,
                    "authors": [{"_id": f"{n:012x}{a:012x}", "name": f"Author {n % 997}-{a}", "hidden": False} for a in range(6)],
                    "publishedAt": "2024-03-11T17:59:58.000Z",
                    "submittedOnDailyAt": "2024-03-12T08:00:00.000Z",
                    "title": title,
                    "summary": summary,
                    "upvotes": rng.randint(0, 300),
                    "githubRepo": f"https://github.com/example/repo-{n}" if n % 3 == 0 else None,
                    "ai_keywords": rng.sample(WORDS, 4),
                },
                "publishedAt": "2024-03-12T08:00:00.000Z",
                "title": title,
                "numComments": rng.randint(0, 5),
            }
        )
    return json.dumps(items).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, default=50_000)
    parser.add_argument("--db-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--profile", action="store_true", help="profile the import with pyinstrument")
    args = parser.parse_args()

    url, db = scratch_database_url(args.db_url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digest.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from digest.models import Paper, TrendingEntry
    from digest.services.ingest import papers_ingest
    from digest.signals import papers_changed
    from digest.sources import parse_papers

    call_command("migrate", verbosity=0)
    # Measure the import, not whatever listens (classification would enqueue Celery work).
    papers_changed.receivers.clear()
    data = synthetic_daily_papers(args.papers)
    print(f"generated {args.papers} papers, {len(data) / 1e6:.1f} MB of JSON; database {db} (scratch)")

    def run():
        started, cpu_started = time.perf_counter(), time.process_time()
        records = parse_papers(data, name="synthetic.json", format="hf-json")
        parsed = time.perf_counter()
        result = papers_ingest(records=records)
        del records
        run.cpu = time.process_time() - cpu_started
        return result, parsed - started, time.perf_counter() - started

    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.002)
        profiler.start()
    result, parse_s, seconds = run()
    cpu_s = run.cpu
    if args.profile:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=os.environ.get("BENCH_PROFILE_ALL") == "1"))
    assert result.new == args.papers == Paper.objects.count() == TrendingEntry.objects.count(), result
    again, _, again_s = run()
    assert again.new == again.updated == 0 and again.unchanged == args.papers, again
    print(f"reimport papers={args.papers} seconds={again_s:.2f} papers_per_s={args.papers / again_s:.0f} (all unchanged)")
    # Wall time is what the target is about; this process's CPU time shows how much of
    # it was other load on the machine (the database server's time is not in it).
    print(f"parse seconds={parse_s:.2f} ingest seconds={seconds - parse_s:.2f} this-process cpu seconds={cpu_s:.2f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"import papers={args.papers} seconds={seconds:.2f} papers_per_s={args.papers / seconds:.0f} "
        f"peak_rss_mb={peak_mb:.0f} db={db}"
    )


if __name__ == "__main__":
    main()
