"""Fan-out benchmark: N confirmed subscribers, real Celery workers on Redis, PostgreSQL, a counting SMTP sink.

    python bench/fanout.py --subscribers 10000 --workers 2 [--db-url postgres://...] [--profile]

Uses a scratch PostgreSQL database `paperboy_fanout` (dropped and created afresh on the
server of --db-url / DATABASE_URL, default postgres://postgres@127.0.0.1:5432/), its own
embedded redis-server on a free port, and a counting SMTP sink in a subprocess. Workers
are `celery worker` processes (prefork, --concurrency pool children each, 2 by default). They are warmed up on a
few throw-away subscribers first, so the timing is the fan-out, not the first import.
With the default matcher (hybrid where torch is installed) planning, here in the bench
process as on the `matching` worker, stores the readers' phrase vectors; the sending
workers rank with stored vectors and never load torch (the details say so).

Last line:
    fanout subscribers=N seconds=S msgs_per_s=R delivered=D duplicates=X peak_worker_rss_mb=M
"""

import argparse
import asyncio
import collections
import datetime
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zoneinfo
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCRATCH_DB = "paperboy_fanout"
QUEUE = "fanout"

# ---------------------------------------------------------------- the SMTP sink (subprocess)


class _SinkProtocol(asyncio.Protocol):
    """Just enough SMTP to accept mail and count it per recipient.

    Hand-written rather than aiosmtpd: aiosmtpd reads DATA line by line in Python, which
    on this 2-core machine costs the sink more CPU than the workers it measures.
    Commands may arrive pipelined (RFC 2920, advertised as real MTAs do): the buffer
    is worked through in order, one reply per command.
    XSTATS (a made-up verb) answers with the counts as one JSON line.
    """

    counts: collections.Counter = collections.Counter()

    def connection_made(self, transport):
        self.transport = _BatchedWrites(transport)
        self.buffer = b""
        self.in_data = False
        self.rcpts: list[str] = []
        transport.write(b"220 fanout-sink ESMTP\r\n")

    def data_received(self, data):
        self.buffer += data
        # Replies to pipelined commands go out together, once the input is used up, as
        # Postfix does: one write (and one wake-up of the client) instead of one each.
        self.transport.hold()
        try:
            self._consume()
        finally:
            self.transport.flush()

    def _consume(self):
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    return
                self.buffer = self.buffer[end + 5 :]
                self.in_data = False
                for rcpt in self.rcpts:
                    _SinkProtocol.counts[rcpt] += 1
                self.rcpts = []
                self.transport.write(b"250 OK queued\r\n")
                continue
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                return
            line, self.buffer = self.buffer[:line_end], self.buffer[line_end + 2 :]
            self._command(line.decode("ascii", "replace"))

    def _command(self, line: str):
        verb = line[:4].upper()
        if verb == "EHLO":
            self.transport.write(b"250-fanout-sink\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SIZE 10000000\r\n")
        elif verb == "HELO":
            self.transport.write(b"250 fanout-sink\r\n")
        elif verb == "MAIL":
            self.rcpts = []
            self.transport.write(b"250 OK\r\n")
        elif verb == "RCPT":
            address = line.split(":", 1)[1].strip().strip("<>").split(">")[0].lower()
            self.rcpts.append(address)
            self.transport.write(b"250 OK\r\n")
        elif verb == "DATA":
            if not self.rcpts:  # as Postfix answers a pipelined DATA after every RCPT failed
                self.transport.write(b"554 5.5.1 Error: no valid recipients\r\n")
                return
            self.in_data = True
            # The CRLF that ended the DATA line also starts the terminator of an empty message.
            self.buffer = b"\r\n" + self.buffer
            self.transport.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        elif verb == "RSET":
            self.rcpts = []
            self.transport.write(b"250 OK\r\n")
        elif verb == "QUIT":
            self.transport.write(b"221 Bye\r\n")
            self.transport.close()
        elif verb == "XSTA":
            payload = json.dumps(dict(_SinkProtocol.counts)).encode()
            self.transport.write(b"250 " + payload + b"\r\n")
        elif verb == "XRES":
            _SinkProtocol.counts.clear()
            self.transport.write(b"250 reset\r\n")
        else:
            self.transport.write(b"250 OK\r\n")


class _BatchedWrites:
    """The sink's transport: between hold() and flush() replies queue up, in order, and go out in one write.

    Subclasses (bench/faults.py) write their own replies through it too, so pipelined
    replies never overtake each other.
    """

    def __init__(self, transport):
        self._transport = transport
        self._pending: list[bytes] | None = None

    def hold(self) -> None:
        self._pending = []

    def write(self, data: bytes) -> None:
        if self._pending is None:
            self._transport.write(data)
        else:
            self._pending.append(data)

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name):
        return getattr(self._transport, name)


def run_sink(port: int) -> None:
    async def main():
        server = await asyncio.get_running_loop().create_server(_SinkProtocol, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def sink_stats(port: int) -> dict[str, int]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        reader = conn.makefile("rb")
        reader.readline()
        conn.sendall(b"XSTATS\r\n")
        line = reader.readline()
        conn.sendall(b"QUIT\r\n")
    return json.loads(line[4:])


def sink_reset(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        reader = conn.makefile("rb")
        reader.readline()
        conn.sendall(b"XRESET\r\n")
        reader.readline()
        conn.sendall(b"QUIT\r\n")


# ---------------------------------------------------------------- setup


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scratch_database(url: str) -> tuple[str, bool]:
    """Drop and create the scratch database; returns its URL and whether to drop it at the end.

    If another fan-out run is using `paperboy_fanout` right now (other benchmarks call
    this script), take a private `paperboy_fanout_<pid>` instead of killing its connections.
    """
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    name, private = SCRATCH_DB, False
    with psycopg.connect(admin, autocommit=True) as conn:
        busy = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [SCRATCH_DB]).fetchone()[0]
        if busy:
            name, private = f"{SCRATCH_DB}_{os.getpid()}", True
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}")), private


def scratch_database_drop(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def demo_papers() -> list[tuple[str, str]]:
    """(title, abstract) pairs from the demo trending pages: real titles and abstract lengths."""
    pairs = []
    for path in sorted((ROOT / "demo").glob("*.txt")):
        lines = [line.strip() for line in path.read_text().splitlines()]
        for i, line in enumerate(lines):
            if len(line) > 300:
                title = next((lines[j] for j in range(i - 1, -1, -1) if lines[j]), "")
                if 10 < len(title) < 300:
                    pairs.append((title, line))
    return pairs


INTERESTS = [
    "large language models", "diffusion", "reinforcement learning", "robot learning", "retrieval augmented generation",
    "vision transformers", "speech recognition", "graph neural networks", "alignment", "RLHF", "video generation",
    "efficient inference", "quantization", "multimodal", "agents", "reasoning", "code generation", "3D", "benchmarks",
    "preference optimization", "domain adaptation", "sparse models", "mixture of experts", "long context",
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Asia/Kolkata", "America/Los_Angeles",
         "Australia/Sydney", "Europe/London", "America/Sao_Paulo"]


def make_subscribers(*, count: int, prefix: str, rng: random.Random) -> list[str]:
    from digest.models import Topic
    from subscriptions.models import Subscriber

    topic_ids = list(Topic.objects.values_list("id", flat=True))

    def reader(n: int) -> Subscriber:
        zone = rng.choice(ZONES)
        weekly = rng.random() >= 0.85
        return Subscriber(
            email=f"{prefix}{n}@bench.example.org",
            status=Subscriber.Status.CONFIRMED,
            interests=", ".join(rng.sample(INTERESTS, k=rng.randint(0, 3))),
            frequency=Subscriber.Frequency.WEEKLY if weekly else Subscriber.Frequency.DAILY,
            # Due now: `send_digests --now` skips the send hour, not a weekly reader's day.
            weekday=datetime.datetime.now(zoneinfo.ZoneInfo(zone)).weekday() if weekly else rng.randint(0, 6),
            send_hour=rng.randint(0, 23),
            timezone=zone,
            digest_size=rng.choice([5, 10, 10, 10, 15, 20, 30]),
            signup_source="bench",
        )

    rows = [reader(n) for n in range(count)]
    created = Subscriber.objects.bulk_create(rows, batch_size=2000)
    through = Subscriber.topics.through
    links = [
        through(subscriber_id=s.pk, topic_id=t)
        for s in created
        for t in (rng.sample(topic_ids, k=rng.randint(0, min(3, len(topic_ids)))) if topic_ids else [])
    ]
    through.objects.bulk_create(links, batch_size=5000)
    return [s.email for s in created]


class Workers:
    def __init__(self, count: int, env: dict, profile_dir: Path | None, concurrency: int = 1):
        self.procs = []
        self.profilers = []
        for n in range(count):
            cmd = [sys.executable, "-m", "celery", "-A", "digest", "worker", "--pool", "prefork", "--concurrency", str(concurrency),
                   "-Q", QUEUE, "-n", f"fanout{n}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
                   "--loglevel", "WARNING"]
            log = open(Path(tempfile.gettempdir()) / f"paperboy-fanout-worker{n}.log", "w")
            self.procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))
        self.profile_dir = profile_dir

    def tree(self):
        import psutil

        out = []
        for proc in self.procs:
            try:
                parent = psutil.Process(proc.pid)
                out.append(parent)
                out.extend(parent.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
        return out

    def cpu_seconds(self) -> float:
        """User + system CPU of the worker processes and their pool children so far."""
        total = 0.0
        for proc in self.tree():
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except Exception:  # noqa: BLE001 - a process may exit between listing and reading
                pass
        return total

    def start_profiling(self, seconds: int):
        for i, proc in enumerate(self.procs):
            out = self.profile_dir / f"worker{i}.txt"
            self.profilers.append((out, subprocess.Popen(
                [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(proc.pid), "--subprocesses", "--rate", "200", "--duration",
                 str(seconds), "--format", "raw", "--output", str(out), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))

    def stop(self):
        for _, prof in self.profilers:
            try:
                prof.send_signal(signal.SIGINT)
                prof.wait(timeout=30)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                prof.kill()
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def _maps_torch(proc) -> bool:
    try:
        with open(f"/proc/{proc.pid}/maps") as maps:
            return "torch" in maps.read()
    except OSError:
        return False


def _worker_log_count(workers: int, needle: str) -> int:
    total = 0
    for n in range(workers):
        path = Path(tempfile.gettempdir()) / f"paperboy-fanout-worker{n}.log"
        if path.exists():
            total += path.read_text(errors="replace").count(needle)
    return total


def cpu_of(pids) -> dict[int, float]:
    """User + system CPU seconds of each still-running process."""
    import psutil

    out = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system
        except Exception:  # noqa: BLE001 - gone, or not ours to read
            pass
    return out


def backend_pids(db_name: str) -> list[int]:
    """PostgreSQL server processes serving the scratch database (the workers' connections)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [db_name])
        return [row[0] for row in cursor.fetchall()]


CATEGORIES = [
    ("MIME build + serialise (email package)", ("email/generator", "email/header", "email/_policybase", "email/mime",
                                                 "core/mail/message", "email/charset", "email/utils")),
    ("SMTP socket I/O", ("smtplib", "socket.py")),
    ("CSS inlining (css-inline)", ("inline (",)),
    ("Jinja2 rendering", ("jinja2", "templates/emails")),
    # css-inline is native code: its time shows as email_render's own line.
    ("CSS inlining (css-inline, native, inside email_render)", ("email_render (",)),
    ("signed links (tokens)", ("signing", "tokens.py", "links.py", "hashlib", "hmac")),
    ("matching", ("digest/matching",)),
    ("database (Django ORM + psycopg)", ("django/db", "psycopg")),
    ("delivery glue (digest/services/delivery.py: context, substitution, HTML packing)", ("digest/services/delivery.py",)),
    ("Celery/kombu/Redis", ("celery", "kombu", "redis", "billiard")),
]


def summarise_profile(files: list[Path]) -> str:
    totals: collections.Counter = collections.Counter()
    all_samples = 0
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            if "idle" in stack.split(";")[-1] or "select" in stack.split(";")[-1] or "poll" in stack.split(";")[-1]:
                totals["idle (waiting for work / sockets)"] += n
            else:
                frames = stack.split(";")
                # Attribute to the innermost recognised category.
                label = "other Python (deliveries_send_chunk glue, imports)"
                for frame in reversed(frames):
                    if frame.startswith("process "):
                        continue  # py-spy's process label ("python -m celery ...") is not a frame
                    hit = next((name for name, needles in CATEGORIES if any(k in frame for k in needles)), None)
                    if hit:
                        label = hit
                        break
                totals[label] += n
            all_samples += n
    if not all_samples:
        return "(no profile samples: is py-spy installed and allowed to attach?)"
    busy = all_samples - totals["idle (waiting for work / sockets)"]
    lines = ["Where the workers' time goes (py-spy samples, both workers):", ""]
    for name, n in totals.most_common():
        share = n / all_samples * 100
        busy_share = "" if name.startswith("idle") or not busy else f" ({n / busy * 100:.0f}% of busy time)"
        lines.append(f"- {name}: {share:.1f}% of samples{busy_share}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--db-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--chunk-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=2,
                        help="pool processes per Celery worker (prefork; the Procfile runs 4): while one waits for "
                             "PostgreSQL or SMTP the other uses the CPU. The last line's RSS is per process")
    parser.add_argument("--matching", default=os.environ.get("MATCHING_METHOD", "auto"),
                        help="MATCHING_METHOD for the workers (auto, lexical, semantic, hybrid)")
    parser.add_argument("--profile", action="store_true", help="py-spy the workers and say where the time goes")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink)
        return
    if args.subscribers < 1 or args.workers < 1:
        parser.error("--subscribers and --workers must be positive")
    if not args.db_url.startswith(("postgres://", "postgresql://")):
        parser.error("--db-url must be a PostgreSQL URL (the bench uses a scratch database on that server)")

    from digest import embedded_redis

    db_url, private_db = scratch_database(args.db_url)
    redis_port = free_port()
    redis_proc = embedded_redis.start(redis_port, data_dir=Path(tempfile.mkdtemp(prefix="paperboy-fanout-redis-")))
    sink_port = free_port()
    sink_proc = subprocess.Popen([sys.executable, __file__, "--sink", str(sink_port)])
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(sink_port),
        "SITE_URL": "https://paperboy.example.org",
        "DEFAULT_FROM_EMAIL": "Paperboy <digest@paperboy.example.org>",
        "MATCHING_METHOD": args.matching,
        "DELIVERY_CHUNK_SIZE": str(args.chunk_size),
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "digest.settings",
    }
    for name in ("EMAIL_URL", "ANYMAIL_ESP", "EMAIL_BACKEND"):
        env.pop(name, None)
    os.environ.update({k: v for k, v in env.items() if k not in ("EMAIL_URL", "ANYMAIL_ESP", "EMAIL_BACKEND")})
    for name in ("EMAIL_URL", "ANYMAIL_ESP", "EMAIL_BACKEND"):
        os.environ.pop(name, None)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from digest.celery import app as celery_app
    from digest.models import Delivery, Paper, TrendingEntry
    from digest.services.delivery import deliveries_plan

    celery_app.conf.task_default_queue = QUEUE
    workers = None
    profile_dir = Path(tempfile.mkdtemp(prefix="paperboy-fanout-prof-")) if args.profile else None
    try:
        call_command("migrate", verbosity=0)
        rng = random.Random(7)
        today = timezone.now().date()
        pairs = demo_papers()[:30] or [(f"Paper {n}", "An abstract. " * 40) for n in range(30)]
        papers = []
        for rank, (title, abstract) in enumerate(pairs, 1):
            arxiv = f"2604.{rank:05d}"
            papers.append(Paper.objects.create(
                arxiv_id=arxiv, title=title, abstract=abstract, authors=[f"Author {rank}-{a}" for a in range(rng.randint(1, 9))],
                page_url=f"https://huggingface.co/papers/{arxiv}", abs_url=f"https://arxiv.org/abs/{arxiv}",
                pdf_url=f"https://arxiv.org/pdf/{arxiv}", code_url=f"https://github.com/example/{arxiv}" if rank % 3 else "",
                upvotes=200 - rank * 5,
            ))
            TrendingEntry.objects.create(paper=papers[-1], date=today, rank=rank, source=TrendingEntry.Source.HF,
                                         upvotes=200 - rank * 5)
        if args.matching != "lexical":
            try:
                from digest.services.classify import papers_embed

                papers_embed(paper_ids=[p.pk for p in papers])
            except Exception as exc:  # noqa: BLE001 - the bench still runs on the lexical signal
                print(f"(papers not embedded: {exc})", file=sys.stderr)

        workers = Workers(args.workers, env, profile_dir, args.concurrency)
        # Warm-up: a few throw-away readers, one per chunk, so each worker has imported
        # matching and opened its connections before the clock starts.
        settings.DELIVERY_CHUNK_SIZE = 1
        make_subscribers(count=args.workers * args.concurrency * 3, prefix="warmup", rng=rng)
        deliveries_plan(now=timezone.now(), ignore_hour=True)
        deadline = time.monotonic() + 300
        while Delivery.objects.filter(state__in=["pending", "sending"]).exists():
            if time.monotonic() > deadline:
                raise SystemExit("warm-up did not finish in 300 s; see the worker logs in " + tempfile.gettempdir())
            time.sleep(0.5)
        sink_reset(sink_port)
        settings.DELIVERY_CHUNK_SIZE = args.chunk_size

        emails = make_subscribers(count=args.subscribers, prefix="reader", rng=rng)
        peak = {"rss": 0}
        done = threading.Event()

        peak["tree"] = 0

        def sample_rss():
            import psutil

            while not done.is_set():
                for top in workers.procs:
                    # One process's RSS (the figure on the last line) and one whole Celery worker's
                    # PSS (its main process and pool children, pages they share split between them).
                    try:
                        family = [psutil.Process(top.pid)]
                        family += family[0].children(recursive=True)
                    except Exception:  # noqa: BLE001 - exited
                        continue
                    total = 0
                    for proc in family:
                        try:
                            peak["rss"] = max(peak["rss"], proc.memory_info().rss)
                            total += proc.memory_full_info().pss
                        except Exception:  # noqa: BLE001 - a process may exit between listing and reading
                            continue
                    peak["tree"] = max(peak["tree"], total)
                done.wait(0.25)

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        if profile_dir:
            workers.start_profiling(int(args.timeout))

        cpu_before = workers.cpu_seconds()
        main_before = cpu_of([p.pid for p in workers.procs])
        # The other processes each message costs CPU in: the sink, Redis and the PostgreSQL
        # backends the workers talk to (opened during the warm-up and kept, CONN_MAX_AGE).
        db_name = urlsplit(db_url).path.lstrip("/")
        others_before = {"sink": cpu_of([sink_proc.pid]), "redis": cpu_of([redis_proc.pid]),
                         "postgres": cpu_of(backend_pids(db_name))}
        started = time.monotonic()
        plan = deliveries_plan(now=timezone.now(), ignore_hour=True)
        planned_at = time.monotonic() - started
        deadline = started + args.timeout
        while True:
            counts = sink_stats(sink_port)
            if sum(1 for e in emails if counts.get(e)) >= args.subscribers:
                break
            if time.monotonic() > deadline:
                print("timed out", file=sys.stderr)
                break
            time.sleep(0.2)
        seconds = time.monotonic() - started
        # CPU per message is the figure that survives a shared machine; wall clock does not.
        worker_cpu = workers.cpu_seconds() - cpu_before
        main_cpu = sum(t - main_before.get(pid, 0.0) for pid, t in cpu_of([p.pid for p in workers.procs]).items())
        others_after = {"sink": cpu_of([sink_proc.pid]), "redis": cpu_of([redis_proc.pid]),
                        "postgres": cpu_of(backend_pids(db_name))}
        other_cpu = {name: sum(t - others_before[name].get(pid, 0.0) for pid, t in after.items())
                     for name, after in others_after.items()}
        done.set()
        time.sleep(1.0)  # let any straggling duplicate arrive before counting
        counts = sink_stats(sink_port)
        delivered = sum(1 for e in emails if counts.get(e))
        duplicates = sum(max(0, counts.get(e, 0) - 1) for e in emails)
        states = dict(collections.Counter(Delivery.objects.filter(subscriber__email__in=emails).values_list("state", flat=True)))
        rate = delivered / seconds if seconds else 0.0
        details = [
            f"planned {plan.planned} deliveries in {plan.chunks} chunks ({planned_at:.2f} s of the total, in the bench process)",
            f"delivery states: {states}",
            f"worker CPU: {worker_cpu:.1f} s user+system, {worker_cpu / max(1, delivered) * 1000:.2f} ms per delivered message"
            f" (load average at the end {os.getloadavg()[0]:.1f}); of which Celery's main processes (Redis, dispatch)"
            f" {main_cpu / max(1, delivered) * 1000:.2f} ms",
            "CPU per delivered message elsewhere: " + ", ".join(
                f"{name} {seconds_ / max(1, delivered) * 1000:.2f} ms" for name, seconds_ in other_cpu.items())
            + f"; all together {(worker_cpu + sum(other_cpu.values())) / max(1, delivered) * 1000:.2f} ms"
            + f" (so about {2 / max(1e-9, (worker_cpu + sum(other_cpu.values())) / max(1, delivered)):.0f} msgs/s on 2 dedicated cores)",
            f"matching method: {args.matching}; workers: {args.workers} x prefork({args.concurrency}); chunk size {args.chunk_size}",
            f"peak RSS: {peak['rss'] / 1e6:.0f} MB for one worker process, {peak['tree'] / 1e6:.0f} MB for one Celery worker"
            f" with its {args.concurrency} pool process(es) (PSS summed)",
            # Sending ranks with stored vectors only (digest/matching/vectors.py): no worker should map torch,
            # and a vector missing at send time would show here as a logged lexical fallback.
            f"worker processes with torch loaded: {sum(map(_maps_torch, workers.tree()))} of {len(workers.tree())};"
            f" lexical fallbacks logged: {_worker_log_count(args.workers, 'ranked lexically')}",
        ]
        if profile_dir:
            workers.stop()
            workers = None
            details.append(summarise_profile(sorted(profile_dir.glob("worker*.txt"))))
        last = (f"fanout subscribers={args.subscribers} seconds={seconds:.2f} msgs_per_s={rate:.1f} delivered={delivered} "
                f"duplicates={duplicates} peak_worker_rss_mb={peak['rss'] / 1e6:.0f}")
        print("\n".join(details))
        try:
            from bench.results import record

            record("fanout", last, "\n".join(d if d.startswith("Where") else f"- {d}" for d in details))
        except Exception as exc:  # noqa: BLE001 - results file is a convenience
            print(f"(RESULTS.md not updated: {exc})", file=sys.stderr)
        print(last)
    finally:
        if workers:
            workers.stop()
        sink_proc.terminate()
        redis_proc.terminate()
        if private_db:
            from django.db import connections

            connections.close_all()
            scratch_database_drop(db_url)


if __name__ == "__main__":
    main()
