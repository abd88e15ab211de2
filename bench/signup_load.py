"""Signup under load: gunicorn with the production settings on PostgreSQL and Redis, driven by wrk.

    python bench/signup_load.py [--workers N --worker-class gthread --threads N] [--connections 16]
                                [--duration 15] [--profile]

What it does, on loopback:
- creates the scratch database paperboy_loadbench (dropped first), migrates it and imports
  the demo trending pages, so the landing page shows what a visitor sees;
- flushes Redis db 9 on 127.0.0.1:6379 (REDIS_URL=redis://127.0.0.1:6379/9) and starts an
  aiosmtpd sink for EMAIL_HOST (no Celery worker runs unless --worker: the POST only
  enqueues the confirmation email, as in production; the web tier is what is measured);
- starts gunicorn with DJANGO_ENV=production (SECRET_KEY, ALLOWED_HOSTS=127.0.0.1, an https
  SITE_URL, webhook secret, TRUST_X_FORWARDED_PROTO), every request carrying X-Forwarded-Proto:
  https as a TLS proxy would add, and the POSTs an Origin matching SITE_URL (Django's CSRF check on https);
  workers, worker class and threads are those of gunicorn.conf.py (what the Procfile's `web`
  runs) unless given on the command line;
- runs wrk against GET / and then against the signup POST with one CSRF cookie+token pair
  fetched once and a distinct address per request (a Lua counter per wrk thread), after 3 s
  of each to warm every worker thread (warm-* addresses, not counted);
- SIGNUP_RATE_PER_IP is raised to 1000000/m for the run: every request comes from 127.0.0.1,
  as it would for an operator behind a shared NAT or a proxy that hides client addresses.
  429 answers are still counted separately and are not errors;
- the POST only records the form (a SignupRequest row; the worker applies it): after the run the
  bench applies them in one process (CPU reported apart) and checks that every 302 left
  exactly one pending subscriber in PostgreSQL and no request behind;
- with --profile, a second POST run with py-spy sampling one gunicorn worker (wall-clock,
  idle included) prints where the time goes.

Last line: `signup rps=R p50_ms=A p99_ms=B errors=E` for the POST run (also in bench/RESULTS.md).
"""

import argparse
import collections
import json
import os
import re
import runpy
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import record  # noqa: E402

DB_NAME = "paperboy_loadbench"
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scratch_database() -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgres://") + f"/{DB_NAME}"


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def production_env(*, port: int, db_url: str, smtp_port: int, rate_per_ip: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ANYMAIL_", "EMAIL_", "SIGNUP_"))}
    env.update(
        DJANGO_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="127.0.0.1",
        SITE_URL=f"https://127.0.0.1:{port}",
        DATABASE_URL=db_url,
        REDIS_URL=REDIS_URL,
        DEFAULT_FROM_EMAIL="Paperboy <digest@paperboy.example.org>",
        CACHE_KEY_PREFIX="loadbench",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_port),
        ANYMAIL_WEBHOOK_SECRET="hook:" + secrets.token_urlsafe(24),
        SIGNUP_RATE_PER_IP=rate_per_ip,
        # wrk stands in for a TLS proxy (every request says X-Forwarded-Proto: https); gunicorn, like
        # Django, believes that only where the operator says a proxy sets it (gunicorn.conf.py).
        TRUST_X_FORWARDED_PROTO="true",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    return env


def manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers={"X-Forwarded-Proto": "https"}), timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def csrf_pair(base: str) -> tuple[str, str, list[str]]:
    """One GET /: the csrftoken cookie, the form's masked token, and two topic slugs."""
    response = urllib.request.urlopen(urllib.request.Request(base + "/", headers={"X-Forwarded-Proto": "https"}))
    cookie = next(
        value.split(";", 1)[0].split("=", 1)[1]
        for name, value in response.headers.items()
        if name.lower() == "set-cookie" and value.startswith("csrftoken=")
    )
    html = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    topics = re.findall(r'name="topics" value="([^"]+)"', html)[:2]
    return cookie, token, topics


LUA = r"""
-- Generated by bench/signup_load.py. One CSRF pair for all; a distinct address per request.
local method = "%(method)s"
local nonce = "%(nonce)s"
local body_base = "%(body)s"
local headers = {
  ["X-Forwarded-Proto"] = "https",
  ["Origin"] = "%(origin)s",
  ["Referer"] = "%(origin)s/",
  ["Cookie"] = "csrftoken=%(cookie)s",
  ["Content-Type"] = "application/x-www-form-urlencoded",
}
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  counter = 0
  statuses = {}
end
function request()
  if method == "GET" then
    return wrk.format("GET", "/", {["X-Forwarded-Proto"] = "https"})
  end
  counter = counter + 1
  local body = body_base .. "&email=%(prefix)s-" .. nonce .. "-" .. tid .. "-" .. counter .. "%%40example.org"
  return wrk.format("POST", "/", headers, body)
end
function response(status, hdrs, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end
function done(summary, latency, requests)
  local agg = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do agg[k] = (agg[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(agg) do table.insert(parts, string.format('"%%s": %%d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d, ' ..
    '"connect": %%d, "read": %%d, "write": %%d, "timeout": %%d, "statuses": {%%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.timeout, table.concat(parts, ", ")))
end
"""


# Prints: requests applied, then this process's and its PostgreSQL backend's CPU seconds
# (the backend exits with the process, before CpuMeter could read it).
DRAIN = """
import os, resource, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digest.settings")
django.setup()
from django.db import connection
from subscriptions.services import signup_requests_process

def backend_cpu():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        fields = open(f"/proc/{cursor.fetchone()[0]}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def own_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

pg0, py0 = backend_cpu(), own_cpu()
total = 0
while (n := signup_requests_process(limit=1_000_000)):
    total += n
print(total, own_cpu() - py0, backend_cpu() - pg0)
"""


def run_wrk(*, base: str, origin: str, method: str, body: str, cookie: str, threads: int, connections: int,
            duration: int, prefix: str = "load") -> dict:
    script = Path(tempfile.mkdtemp(prefix="signup-load-")) / "load.lua"
    script.write_text(LUA % {"method": method, "nonce": secrets.token_hex(4), "body": body, "origin": origin,
                             "cookie": cookie, "prefix": prefix})
    out = subprocess.run(
        [shutil.which("wrk") or "/usr/bin/wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
         "--timeout", "10s", "-s", str(script), base + "/"],
        capture_output=True, text=True, check=True,
    ).stdout
    data = json.loads(out.split("WRKJSON ", 1)[1].splitlines()[0])
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    data["socket_errors"] = data["connect"] + data["read"] + data["write"] + data["timeout"]
    statuses = {int(k): v for k, v in data["statuses"].items()}
    data["statuses"] = statuses
    data["rate_limited"] = statuses.get(429, 0)
    ok = (200, 302) if method == "POST" else (200,)
    data["errors"] = data["socket_errors"] + sum(v for k, v in statuses.items() if k not in ok and k != 429)
    return data


class CpuMeter:
    """CPU seconds used by each part of the system during a run, per request.

    The machine is shared (other jobs may be busy), so throughput alone says little;
    CPU per request says what the same run would do on 2 cores of its own:
    capacity ~= 2 cores / (CPU seconds per request, all parts together).
    PostgreSQL is counted by the backends serving our database (their process title
    names it); Redis is the machine's redis-server on 6379 (shared, so an upper bound).
    """

    def __init__(self, gunicorn_pid: int):
        import psutil

        self.psutil = psutil
        self.gunicorn_pid = gunicorn_pid

    def _processes(self) -> dict[str, list]:
        psutil = self.psutil
        master = psutil.Process(self.gunicorn_pid)
        parts = {"gunicorn (Django)": [master, *master.children(recursive=True)], "PostgreSQL backends": [],
                 "Redis server": []}
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if proc.info["name"] == "postgres" and DB_NAME in cmdline:
                parts["PostgreSQL backends"].append(proc)
            elif (proc.info["name"] or "").startswith("redis-server") and ":6379" in cmdline:
                parts["Redis server"].append(proc)
        return parts

    def _cpu(self) -> dict[str, float]:
        out = {}
        for part, procs in self._processes().items():
            total = 0.0
            for proc in procs:
                try:
                    times = proc.cpu_times()
                    total += times.user + times.system
                except self.psutil.NoSuchProcess:
                    pass
            out[part] = total
        return out

    def __enter__(self):
        import resource

        self.start = self._cpu()
        self.start_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return self

    def __exit__(self, *exc):
        import resource

        end = self._cpu()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.used = {part: end[part] - self.start.get(part, 0.0) for part in end}
        self.used["wrk (load generator)"] = (children.ru_utime + children.ru_stime) - (
            self.start_children.ru_utime + self.start_children.ru_stime)

    def per_request_ms(self, requests: int) -> dict[str, float]:
        return {part: 1000 * seconds / max(1, requests) for part, seconds in self.used.items()}


# Frames where a gthread worker's threads wait for work: idle, although py-spy samples them.
IDLE_LEAVES = ("_worker (concurrent/futures/thread.py", "EpollSelector.select (selectors.py")


def summarize_profile(raw: Path, top: int = 18, mode: str = "cpu") -> str:
    """py-spy --format raw: 'frame;frame;... count'. Inclusive share per area and the top leaf functions."""
    areas = collections.OrderedDict([
        ("view: signup_request_record (service: INSERT, drain flag)", "signup_request_record"),
        ("  queue a drain task (flag in Redis; celery/kombu when unset)", "signup_requests_drain_soon"),
        ("view: form validation (SignupForm.is_valid)", "is_valid"),
        ("view: rate-limit checks (django_ratelimit -> Redis)", "is_ratelimited"),
        ("celery/kombu publish", "apply_async"),
        ("template rendering (render)", "render ("),
        ("SignupForm construction (topics query, choices)", "SignupForm.__init__"),
        ("Django ORM query compilation", "compiler.py"),
        ("CSRF middleware", "csrf.py"),
        ("session/auth/messages middleware", "sessions/"),
        ("PostgreSQL round trips (psycopg execute)", "psycopg/cursor.py"),
        ("Redis round trips (redis-py)", "redis/connection.py"),
        ("gunicorn accept/parse/write (outside Django)", "handle_request"),
    ])
    total = 0
    inclusive = collections.Counter()
    leaves = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        if mode == "cpu" and stack.split(";")[-1].startswith(IDLE_LEAVES):
            continue  # py-spy takes a gthread worker's idle threads (queue wait, poll) for busy ones
        n = int(count)
        total += n
        for label, needle in areas.items():
            if needle in stack:
                inclusive[label] += n
        leaves[stack.split(";")[-1]] += n
    if not total:
        return "profile: no samples"
    kind = "GIL holder only: Python CPU" if mode == "cpu" else "wall clock, idle included"
    lines = [f"py-spy samples on one worker: {total} ({kind})", "inclusive share by area:"]
    lines += [f"  {100 * inclusive[label] / total:5.1f}%  {label}" for label in areas]
    lines.append("top leaf frames (self time):")
    lines += [f"  {100 * n / total:5.1f}%  {frame[:150]}" for frame, n in leaves.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, help="gunicorn worker processes (default: gunicorn.conf.py)")
    parser.add_argument("--worker-class", help="gunicorn worker class, sync or gthread (default: gunicorn.conf.py)")
    parser.add_argument("--threads", type=int, help="threads per gunicorn worker (default: gunicorn.conf.py)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (each takes CPU from the server)")
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--profile", action="store_true", help="also profile one worker during a second POST run")
    parser.add_argument("--profile-mode", choices=["cpu", "wall"], default="cpu",
                        help="cpu: on-CPU samples only (what limits throughput); wall: idle/waiting included (latency)")
    parser.add_argument("--worker", action="store_true", help="also run a Celery worker sending the confirmations")
    args = parser.parse_args()
    # What the Procfile's web process runs, where the command line does not say otherwise.
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    args.workers = args.workers or conf["workers"]
    args.worker_class = args.worker_class or conf["worker_class"]
    args.threads = args.threads or conf["threads"]

    port, smtp_port = free_port(), free_port()
    db_url = scratch_database()
    flush_redis()
    env = production_env(port=port, db_url=db_url, smtp_port=smtp_port, rate_per_ip="1000000/m")
    print(f"database {DB_NAME}, redis {REDIS_URL}, gunicorn on 127.0.0.1:{port}", flush=True)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    manage(env, "import_papers", *sorted(str(p) for p in (ROOT / "demo").glob("*.txt")))

    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}", "-c", "aiosmtpd.handlers.Sink"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if args.worker:
            procs.append(subprocess.Popen([str(VENV_BIN / "celery"), "-A", "digest", "worker", "--concurrency", "1",
                                           "--loglevel", "WARNING"], cwd=ROOT, env=env))
        gunicorn = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "digest.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
             "--worker-class", args.worker_class, "--threads", str(args.threads), "--log-level", "warning",
             "--backlog", "2048"],
            cwd=ROOT, env=env,
        )
        procs.append(gunicorn)
        base = f"https://127.0.0.1:{port}"
        http_base = f"http://127.0.0.1:{port}"
        wait_http(http_base + "/")
        cookie, token, topics = csrf_pair(http_base)
        body = "&".join(
            [f"csrfmiddlewaretoken={token}", *[f"topics={t}" for t in topics], "interests=diffusion+models",
             "frequency=daily", "weekday=0", "send_hour=7", "timezone=Europe%2FBerlin", "digest_size=10"]
        )
        # wrk connects to the plain port; the Origin/SITE_URL say https, as behind a TLS proxy.
        common = dict(origin=base, cookie=cookie, threads=args.wrk_threads, connections=args.connections, duration=args.duration)
        # Warm every worker and thread on both paths first: a thread's first POST opens its own
        # PostgreSQL connection (a backend fork), the broker connection and lazily built
        # state, 30-60 ms of CPU each. Unwarmed, those first ~70 requests of the POST run waited
        # 300-390 ms, over 1% of a 15 s run: the whole p99. Measured is the steady state.
        run_wrk(base=http_base, method="GET", body=body, **{**common, "duration": 3})
        run_wrk(base=http_base, method="POST", body=body, prefix="warm", **{**common, "duration": 3})
        results = {}
        for method in ("GET", "POST"):
            with CpuMeter(gunicorn.pid) as meter:
                data = run_wrk(base=http_base, method=method, body=body, **common)
            data["cpu_ms"] = meter.per_request_ms(data["requests"])
            server_ms = sum(v for k, v in data["cpu_ms"].items() if not k.startswith("wrk"))
            data["capacity_2_cores"] = 2000 / server_ms if server_ms else 0
            results[method] = data
            print(f"{method} /: {data['rps']:.0f} req/s, p50 {data['p50_us'] / 1000:.1f} ms, p90 "
                  f"{data['p90_us'] / 1000:.1f} ms, p99 {data['p99_us'] / 1000:.1f} ms, max {data['max_us'] / 1000:.1f} ms,"
                  f" statuses {data['statuses']}, socket errors {data['socket_errors']}", flush=True)
            print(f"  CPU ms per request: " + ", ".join(f"{k} {v:.2f}" for k, v in data["cpu_ms"].items())
                  + f"; server side {server_ms:.2f} ms -> about {data['capacity_2_cores']:.0f} req/s on 2 dedicated cores",
                  flush=True)

        # The POST only records the form (subscriptions.services.signup_request_record); the
        # worker applies it. Done here after the run, in one process, so its cost is measured
        # apart from the web tier's.
        with CpuMeter(gunicorn.pid) as meter:
            out = subprocess.run([sys.executable, "-c", DRAIN], cwd=ROOT, env=env, capture_output=True, text=True,
                                 check=True).stdout.split()
        drained, drain_py, drain_pg = int(out[-3]), float(out[-2]), float(out[-1])
        drain_ms = {"drain process (Django, worker's part)": 1000 * drain_py / max(1, drained),
                    "its PostgreSQL backend": 1000 * drain_pg / max(1, drained),
                    "Redis server": meter.per_request_ms(drained)["Redis server"]}
        drain_server_ms = sum(drain_ms.values())
        print(f"signup requests applied after the run: {drained}; CPU ms per request: "
              + ", ".join(f"{k} {v:.2f}" for k, v in drain_ms.items()) + f"; total {drain_server_ms:.2f}", flush=True)

        import psycopg

        with psycopg.connect(db_url.replace("postgres://", "postgresql://")) as conn:
            pending = conn.execute(
                "SELECT count(*), count(DISTINCT email) FROM subscriptions_subscriber WHERE email LIKE 'load-%%'"
            ).fetchone()
            left = conn.execute("SELECT count(*) FROM subscriptions_signuprequest").fetchone()[0]
            if left:
                results["POST"]["errors"] += left
        accepted = results["POST"]["statuses"].get(302, 0)
        # Each 302 left one row; requests still in flight when wrk stops (at most one per
        # connection) are served but not counted, so rows may exceed the 302s by that much.
        consistent = pending[0] == pending[1] and accepted <= pending[0] <= accepted + args.connections
        if not consistent:
            results["POST"]["errors"] += 1
        print(f"subscribers created: {pending[0]} ({pending[1]} distinct) for {accepted} answers 302 "
              f"({'consistent' if consistent else 'MISMATCH, counted as an error'}: one row per 302, plus at most one "
              f"per connection for requests in flight when wrk stopped)", flush=True)

        profile_text = ""
        if args.profile:
            import psutil

            worker_pid = psutil.Process(gunicorn.pid).children()[0].pid
            raw = Path(tempfile.mkdtemp(prefix="signup-profile-")) / "post.txt"
            spy = subprocess.Popen([str(VENV_BIN / "py-spy"), "record", "--pid", str(worker_pid),
                                    *(["--idle"] if args.profile_mode == "wall" else ["--gil"]), "--rate", "200", "--format", "raw", "--output", str(raw),
                                    "--duration", str(args.duration)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)
            run_wrk(base=http_base, method="POST", body=body, **common)
            _, spy_err = spy.communicate(timeout=args.duration + 30)
            profile_text = summarize_profile(raw, mode=args.profile_mode) if raw.exists() else f"py-spy failed: {spy_err.strip()[-400:]}"
            print(profile_text, flush=True)
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        flush_redis()

    post, get = results["POST"], results["GET"]
    last = (f"signup rps={post['rps']:.0f} p50_ms={post['p50_us'] / 1000:.1f} "
            f"p99_ms={post['p99_us'] / 1000:.1f} errors={post['errors']}")
    details = (
        f"gunicorn {args.workers} x {args.worker_class} (threads {args.threads}), wrk -t{args.wrk_threads} "
        f"-c{args.connections} -d{args.duration}s on loopback, PostgreSQL {DB_NAME}, Redis {REDIS_URL}; "
        f"SIGNUP_RATE_PER_IP=1000000/m for the run (all load comes from 127.0.0.1).\n\n"
        f"- GET /: {get['rps']:.0f} req/s, p50 {get['p50_us'] / 1000:.1f} ms, p99 {get['p99_us'] / 1000:.1f} ms, "
        f"errors {get['errors']}\n"
        f"- POST /: {post['rps']:.0f} req/s, p50 {post['p50_us'] / 1000:.1f} ms, p99 {post['p99_us'] / 1000:.1f} ms, "
        f"statuses {post['statuses']}, rate-limited (429) {post['rate_limited']}, errors {post['errors']}\n"
        f"- subscribers created {pending[0]} for {accepted} answers 302\n"
    )
    for method, data in (("GET", get), ("POST", post)):
        details += (f"- {method} CPU ms per request: " + ", ".join(f"{k} {v:.2f}" for k, v in data["cpu_ms"].items())
                    + f"; server side (Django+PostgreSQL+Redis) -> about {data['capacity_2_cores']:.0f} req/s "
                    "on 2 dedicated cores\n")
    details += ("- applying the recorded signups afterwards (the worker's part, one process): CPU ms per request "
                + ", ".join(f"{k} {v:.2f}" for k, v in drain_ms.items()) + f"; total {drain_server_ms:.2f}\n")
    details += f"- load average at the end: {os.getloadavg()[0]:.1f} (other jobs on the machine share the 2 cores)\n"
    if profile_text:
        details += "\n```\n" + profile_text + "\n```\n"
    print(last)
    record("signup_load", last, details)


if __name__ == "__main__":
    main()
