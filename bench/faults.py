"""Fan-out under faults: workers SIGKILLed, Redis restarted, SMTP answering 451 and 550.

    python bench/faults.py [--subscribers 10000] [--workers 2] [--kill-every 4] [--restart-postgres]

Builds on bench/fanout.py (its scratch-database, subscriber, worker and SMTP-sink pieces
are imported, not copied). The run:

- scratch PostgreSQL database paperboy_faults, a private redis-server on its own port
  (never the machine's 6379), N confirmed subscribers, today's 30 trending papers;
- an SMTP sink that answers 451 at RCPT to 30% of attempts (seeded random) and 550 to a
  few chosen addresses, and counts the messages it accepted per recipient (each subscriber
  has one delivery of the one edition, so two copies of one delivery id are one duplicate,
  whatever their Message-IDs);
- W Celery workers (prefork, one child each); every --kill-every seconds one of them is
  SIGKILLed with its whole process group (a machine dying, not a polite shutdown) and a
  fresh one started in its place, until 80% of the deliveries are closed;
- Redis is stopped and started once (at ~35% closed). It keeps no data, so every queued
  chunk and retry is lost, the worst case;
- with --restart-postgres, PostgreSQL is also restarted once (at ~55% closed) with
  pg_ctlcluster, and made sure to be up again at the end;
- the bench process stands in for beat: deliveries_reconcile every 60 s (as beat: every lease period), with a 60 s
  lease (DELIVERY_LEASE_SECONDS), so rows of a killed worker or a lost task come back.

Settings changed for the run, and why: DELIVERY_LEASE_SECONDS=60 and the 60 s reconcile
(production: 300 s and 5 min) so recovery fits in minutes; CELERY_VISIBILITY_TIMEOUT=60 and
DELIVERY_RETRY_BASE_SECONDS=2 so redelivered and retried tasks come back in seconds, not
an hour; DELIVERY_MAX_ATTEMPTS=12 because at a 30% 451 rate six attempts in a row fail for
about 7 of 10,000 readers (0.3**6), which is the sink's doing, not a fault of the system.

At the end: every delivery is terminal (sent, failed, skipped, suppressed), every
subscriber not chosen for 550 has exactly one message at the sink, and duplicates are
compared with the messages in flight at the kills: rows a killed worker had claimed and
not recorded (in SENDING at the kill and still there 3 s later: only the dead worker can
have left them). Since deliveries_send_chunk claims rows in batches (CLAIM_BATCH) before sending, that
count includes rows the dead worker had claimed but not yet tried, so it is a loose bound;
the tight one is printed too: a worker holds one SMTP transaction at a time, so each kill
can leave at most one message between the server's 250 and its record (duplicates <= kills).
A PostgreSQL restart adds at most one in-flight message per worker.

Last line:
    faults subscribers=N kills=K redis_restarts=1 lost=L duplicates=D in_flight_at_kills=F
(with --restart-postgres, ` pg_restarts=1` is appended).
"""

import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import fanout  # noqa: E402
from bench.fanout import Workers, demo_papers, free_port, make_subscribers, sink_stats  # noqa: E402

fanout.SCRATCH_DB = "paperboy_faults"  # fanout.scratch_database reads the module's name
REFUSE_FILE_ENV = "PAPERBOY_FAULTS_REFUSE"


class FaultySink(fanout._SinkProtocol):
    """fanout's counting sink, answering 451 to a share of RCPTs and 550 to chosen addresses."""

    refused: set[str] = set()
    temp_fail_rate = 0.3
    rng = random.Random(451)

    def _command(self, line: str):
        if line[:4].upper() == "RCPT":
            address = line.split(":", 1)[1].strip().strip("<>").split(">")[0].lower()
            if address in FaultySink.refused:
                self.transport.write(b"550 5.1.1 <" + address.encode() + b">: no such user here\r\n")
                return
            if FaultySink.rng.random() < FaultySink.temp_fail_rate:
                self.transport.write(b"451 4.7.1 Try again later (greylisted)\r\n")
                return
        super()._command(line)


def run_faulty_sink(port: int, refuse_file: str, rate: float) -> None:
    FaultySink.refused = {line.strip().lower() for line in Path(refuse_file).read_text().splitlines() if line.strip()}
    FaultySink.temp_fail_rate = rate
    import asyncio

    async def main():
        server = await asyncio.get_running_loop().create_server(FaultySink, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# ---------------------------------------------------------------- services we break


class PrivateRedis:
    def __init__(self):
        from digest import embedded_redis

        self.embedded = embedded_redis
        self.port = free_port()
        self.data_dir = Path(tempfile.mkdtemp(prefix="paperboy-faults-redis-"))
        self.proc = embedded_redis.start(self.port, data_dir=self.data_dir)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def restart(self, down_seconds: float = 2.0) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        time.sleep(down_seconds)
        self.proc = self.embedded.start(self.port, data_dir=self.data_dir)

    def stop(self) -> None:
        self.proc.terminate()


def pg_cluster() -> list[str]:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]).returncode == 0


def pg_restart() -> float:
    started = time.monotonic()
    subprocess.run([*pg_cluster(), "restart"], check=True, capture_output=True)
    pg_ensure_up()
    return time.monotonic() - started


def pg_ensure_up() -> None:
    for _ in range(60):
        if pg_ready():
            return
        subprocess.run([*pg_cluster(), "start"], capture_output=True)
        time.sleep(1)
    raise RuntimeError("PostgreSQL did not come back up")


def db_retry(fn, *, attempts: int = 60):
    """Run a query from the bench process, riding out a database restart."""
    from django.db import InterfaceError, OperationalError, connection

    for attempt in range(attempts):
        try:
            return fn()
        except (OperationalError, InterfaceError):
            connection.close()
            if attempt == attempts - 1:
                raise
            time.sleep(1)


# ---------------------------------------------------------------- the run


class WorkerPool:
    """W independent worker slots; a slot can be SIGKILLed (whole process group) and restarted."""

    def __init__(self, count: int, env: dict):
        self.env = env
        self.slots = [Workers(1, env, None) for _ in range(count)]
        self.kills = 0

    def kill_and_restart(self, slot: int) -> None:
        proc = self.slots[slot].procs[0]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        self.kills += 1
        self.slots[slot] = Workers(1, self.env, None)

    def stop(self) -> None:
        for slot in self.slots:
            slot.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=4.0, help="seconds between SIGKILLs")
    parser.add_argument("--temp-fail-rate", type=float, default=0.3, help="share of RCPTs answered 451")
    parser.add_argument("--refuse", type=int, default=25, help="addresses answered 550")
    parser.add_argument("--restart-postgres", action="store_true", help="also restart PostgreSQL once")
    parser.add_argument("--db-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_faulty_sink(args.sink, os.environ[REFUSE_FILE_ENV], args.temp_fail_rate)
        return
    if not args.db_url.startswith(("postgres://", "postgresql://")):
        parser.error("--db-url must be a PostgreSQL URL")

    # A SIGTERM (Ctrl-C from a supervisor) still runs the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rng = random.Random(7)
    db_url, _ = fanout.scratch_database(args.db_url)  # (url, private name because another run holds it)
    redis = PrivateRedis()
    refused = sorted(f"reader{n}@bench.example.org" for n in rng.sample(range(args.subscribers), k=min(args.refuse, args.subscribers)))
    refuse_file = Path(tempfile.mkdtemp(prefix="paperboy-faults-")) / "refuse.txt"
    refuse_file.write_text("\n".join(refused) + "\n")
    sink_port = free_port()
    sink_proc = subprocess.Popen([sys.executable, __file__, "--sink", str(sink_port), "--temp-fail-rate",
                                  str(args.temp_fail_rate)], env={**os.environ, REFUSE_FILE_ENV: str(refuse_file)})
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("EMAIL_URL", "ANYMAIL_ESP", "EMAIL_BACKEND")},
        "DATABASE_URL": db_url,
        "REDIS_URL": redis.url,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(sink_port),
        "EMAIL_TIMEOUT": "10",
        "SITE_URL": "https://paperboy.example.org",
        "DEFAULT_FROM_EMAIL": "Paperboy <digest@paperboy.example.org>",
        "MATCHING_METHOD": "lexical",  # a restarted worker must be up in seconds, not load a model
        "DELIVERY_LEASE_SECONDS": "60",
        "CELERY_VISIBILITY_TIMEOUT": "60",
        "DELIVERY_RETRY_BASE_SECONDS": "2",
        "DELIVERY_MAX_ATTEMPTS": "12",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "digest.settings",
    }
    os.environ.clear()
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import close_old_connections
    from django.utils import timezone

    from digest.celery import app as celery_app
    from digest.models import Delivery, Paper, TrendingEntry
    from digest.services.delivery import deliveries_plan, deliveries_reconcile

    celery_app.conf.task_default_queue = fanout.QUEUE
    pool = None
    stop = threading.Event()
    events: list[str] = []
    in_flight = {"kills": 0, "pg": 0}
    counted_in_flight: set[tuple[int, int]] = set()  # (row, attempt): a row stuck across two kills counts once
    pg_restarted = False
    started = time.monotonic()

    def log(message: str) -> None:
        line = f"[{time.monotonic() - started:6.1f}s] {message}"
        events.append(line)
        print(line, flush=True)

    try:
        call_command("migrate", verbosity=0)
        today = timezone.now().date()
        for rank, (title, abstract) in enumerate((demo_papers()[:30] or [(f"Paper {n}", "An abstract. " * 40) for n in range(30)]), 1):
            arxiv = f"2604.{rank:05d}"
            paper = Paper.objects.create(arxiv_id=arxiv, title=title, abstract=abstract, authors=[f"Author {rank}"],
                                         page_url=f"https://huggingface.co/papers/{arxiv}",
                                         abs_url=f"https://arxiv.org/abs/{arxiv}", upvotes=200 - rank)
            TrendingEntry.objects.create(paper=paper, date=today, rank=rank, source=TrendingEntry.Source.HF, upvotes=200 - rank)
        emails = make_subscribers(count=args.subscribers, prefix="reader", rng=rng)
        refused_set = set(refused)

        pool = WorkerPool(args.workers, env)
        started = time.monotonic()
        plan = deliveries_plan(now=timezone.now(), ignore_hour=True)
        log(f"planned {plan.planned} deliveries in {plan.chunks} chunks; {len(refused)} addresses will get 550")
        total = plan.planned

        def closed_share() -> float:
            open_rows = Delivery.objects.filter(state__in=["pending", "sending"]).count()
            return 1 - open_rows / total

        def reconciler():
            while not stop.wait(60):
                try:
                    close_old_connections()
                    out = deliveries_reconcile(now=timezone.now())
                    if out.requeued:
                        log(f"reconciler re-queued {out.requeued}")
                except Exception as exc:  # noqa: BLE001 - Redis or PostgreSQL may be down right now; next round
                    log(f"reconciler skipped a round: {type(exc).__name__}: {str(exc)[:100]}")
                    from django.db import connection

                    connection.close()

        threading.Thread(target=reconciler, daemon=True).start()

        redis_restarted = False
        next_kill = time.monotonic() + args.kill_every
        deadline = started + args.timeout
        last_report = 0.0
        while time.monotonic() < deadline:
            share = db_retry(closed_share)
            if share >= 1:
                break
            now = time.monotonic()
            if share < 0.8 and now >= next_kill:
                slot = rng.randrange(args.workers)
                pool.kill_and_restart(slot)
                claimed = lambda: set(Delivery.objects.filter(state="sending").values_list("id", "attempts"))  # noqa: E731
                before = db_retry(claimed) - counted_in_flight
                time.sleep(3)
                still = before & db_retry(claimed)
                counted_in_flight.update(still)
                in_flight["kills"] += len(still)
                log(f"SIGKILLed worker slot {slot} (kill {pool.kills}); rows it left claimed: {len(still)}; closed {share:.0%}")
                next_kill = time.monotonic() + args.kill_every
            if not redis_restarted and share >= 0.35:
                redis.restart()
                redis_restarted = True
                log(f"Redis restarted (empty: every queued chunk and retry lost); closed {share:.0%}")
            if args.restart_postgres and not pg_restarted and share >= 0.55:
                took = pg_restart()
                pg_restarted = True
                in_flight["pg"] = args.workers
                log(f"PostgreSQL restarted in {took:.1f} s; closed {share:.0%}")
            if now - last_report > 10:
                states = db_retry(lambda: dict(collections.Counter(Delivery.objects.values_list("state", flat=True))))
                log(f"states {states}")
                last_report = now
            time.sleep(0.5)
        seconds = time.monotonic() - started
        stop.set()
        time.sleep(2)  # a straggler recorded after the last count
        states = db_retry(lambda: dict(collections.Counter(Delivery.objects.values_list("state", flat=True))))
        counts = sink_stats(sink_port)
        lost = [e for e in emails if e not in refused_set and counts.get(e, 0) == 0]
        duplicates = sum(max(0, counts.get(e, 0) - 1) for e in emails)
        refused_got_mail = [e for e in refused if counts.get(e, 0)]
        non_terminal = states.get("pending", 0) + states.get("sending", 0)
        failed_reasons = db_retry(lambda: dict(collections.Counter(
            r[:22] for r in Delivery.objects.filter(state="failed").values_list("last_error", flat=True))))
        flight = in_flight["kills"] + in_flight["pg"]
        details = [
            f"{seconds:.0f} s, {args.workers} workers, a SIGKILL every {args.kill_every:g} s until 80% closed, "
            f"451 to {args.temp_fail_rate:.0%} of RCPTs, 550 to {len(refused)} addresses",
            f"final states: {states} (non-terminal: {non_terminal})",
            f"failed reasons: {failed_reasons}",
            f"550 addresses that got mail anyway: {len(refused_got_mail)}",
            f"lost: {len(lost)} {lost[:5]}",
            f"duplicates {duplicates} <= in flight {flight} ({in_flight['kills']} at kills"
            + (f", at most {in_flight['pg']} at the PostgreSQL restart" if pg_restarted else "") + f"): {duplicates <= flight}",
            f"tight bound, one SMTP transaction per worker: duplicates {duplicates} <= kills + PostgreSQL restarts x workers "
            f"{pool.kills + in_flight['pg']}: {duplicates <= pool.kills + in_flight['pg']}",
        ]
        last = (f"faults subscribers={args.subscribers} kills={pool.kills} redis_restarts={int(redis_restarted)} "
                f"lost={len(lost)} duplicates={duplicates} in_flight_at_kills={flight}"
                + (" pg_restarts=1" if pg_restarted else ""))
        print("\n".join(details))
        from bench.results import record

        record("faults (PostgreSQL restart)" if args.restart_postgres else "faults", last,
               "\n".join(f"- {d}" for d in details) + "\n\nEvents:\n\n```\n" + "\n".join(events[-60:]) + "\n```\n")
        print(last)
        if non_terminal or lost or duplicates > flight or refused_got_mail:
            sys.exit(1)
    finally:
        stop.set()
        if pool:
            pool.stop()
        sink_proc.terminate()
        redis.stop()
        if args.restart_postgres and not pg_ready():
            pg_ensure_up()


if __name__ == "__main__":
    main()
