"""End to end: a real Celery worker process on the real Redis, sending to a real SMTP server.

The worker subprocess shares the test database: we hand it a DATABASE_URL that
points at the test database itself (the SQLite test file, or test_<name> on
PostgreSQL), so it reads the rows this process committed (transactional tests).
"""

import datetime
import os
import signal
import subprocess
import sys
import threading
import tempfile
import time
import uuid
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from digest.celery import app as celery_app
from digest.matching import select_for_subscribers, selection, semantic
from digest.models import Delivery
from digest.services.classify import papers_embed
from digest.services.delivery import deliveries_plan, deliveries_reconcile
from tests.digest_support import SITE, trending_day
from tests.factories import SubscriberFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

LEASE_SECONDS = 3


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """`celery worker` as a subprocess, on a queue of its own."""

    def __init__(self, *, queue: str, smtp_port: int, extra_env: dict):
        self.queue = queue
        self.env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_port),
            "SITE_URL": SITE,
            "DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
            "CELERY_VISIBILITY_TIMEOUT": "4",
            "DELIVERY_RETRY_BASE_SECONDS": "0.5",
            "LOG_LEVEL": "WARNING",
            # These tests are about delivery; the lexical matcher spares each worker the torch import.
            "MATCHING_METHOD": "lexical",
            **extra_env,
        }
        for name in ("EMAIL_URL", "ANYMAIL_ESP", "EMAIL_BACKEND"):
            self.env.pop(name, None)
        self.proc = None
        self.log = tempfile.NamedTemporaryFile(prefix="paperboy-worker-", suffix=".log", delete=False)

    def output(self) -> str:
        with open(self.log.name, errors="replace") as fh:
            return fh.read()[-5000:]

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "digest", "worker", "--pool", "prefork", "--concurrency", "1",
             "-Q", self.queue, "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
            env=self.env, start_new_session=True, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def kill(self):
        """SIGKILL the whole worker (parent and pool child): no warm shutdown, no acks."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker_factory(smtp_sink, settings):
    queue = f"test-delivery-{uuid.uuid4().hex[:8]}"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    settings.SITE_URL = SITE
    settings.DELIVERY_LEASE_SECONDS = LEASE_SECONDS
    settings.MATCHING_METHOD = "lexical"
    workers = []

    def make(**extra_env):
        worker = Worker(queue=queue, smtp_port=smtp_sink.port, extra_env=extra_env)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()
        print(f"--- worker log {worker.log.name}\n{worker.output()}")
    celery_app.conf.task_default_queue = previous


def _wait_until(condition, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    open_rows = list(
        Delivery.objects.filter(state__in=[Delivery.State.PENDING, Delivery.State.SENDING])
        .values("id", "state", "attempts", "lease_until", "last_error")[:5]
    )
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; open rows: {open_rows}")


def _open_rows() -> int:
    return Delivery.objects.filter(state__in=[Delivery.State.PENDING, Delivery.State.SENDING]).count()


def _per_recipient(sink) -> dict[str, int]:
    counts: dict[str, int] = {}
    with sink.lock:
        for message in sink.messages:
            for rcpt in message.rcpt_tos:
                counts[rcpt] = counts.get(rcpt, 0) + 1
    return counts


@pytest.fixture
def edition_day():
    day = timezone.now().date()
    trending_day(day=day, count=8)
    return day


def test_a_fanout_to_200_readers_delivers_exactly_200_and_a_second_run_none_more(
    worker_factory, smtp_sink, edition_day, settings
):
    settings.DELIVERY_CHUNK_SIZE = 25
    readers = SubscriberFactory.create_batch(200, digest_size=5)
    worker = worker_factory()
    worker.start()
    plan = deliveries_plan(now=timezone.now(), ignore_hour=True)
    assert plan.planned == 200 and plan.chunks == 8
    _wait_until(lambda: _open_rows() == 0, timeout=60, what="all 200 deliveries")
    counts = _per_recipient(smtp_sink)
    assert len(smtp_sink.messages) == 200
    assert counts == {r.email: 1 for r in readers}
    # Planning and sending again: nothing new.
    again = deliveries_plan(now=timezone.now(), ignore_hour=True)
    call_command("send_digests", "--now", stdout=open(os.devnull, "w"))
    time.sleep(2)
    assert again.planned == 0
    assert len(smtp_sink.messages) == 200
    assert Delivery.objects.filter(state=Delivery.State.SENT).count() == 200


def test_a_worker_killed_mid_chunk_leaves_every_reader_with_exactly_one_message(
    worker_factory, smtp_sink, edition_day, settings
):
    settings.DELIVERY_CHUNK_SIZE = 20
    readers = SubscriberFactory.create_batch(60, digest_size=5)
    holding = threading.Event()
    killed = threading.Event()
    seen = []

    def hold_the_tenth(envelope):
        # The 10th message is held before the server accepts it: the worker is then
        # provably in the middle of a chunk (and of a send) when we kill it.
        seen.append(1)
        if len(seen) == 10:
            holding.set()
            killed.wait(30)
            return "421 4.4.2 connection dropped"
        return None

    smtp_sink.on_data = hold_the_tenth
    worker = worker_factory()
    worker.start()
    deliveries_plan(now=timezone.now(), ignore_hour=True)
    assert holding.wait(60), "the worker never reached the 10th message"
    worker.kill()
    killed.set()
    smtp_sink.on_data = None
    assert len(smtp_sink.messages) == 9
    # Each of the 9 accepted messages was recorded before the next was sent; the one it
    # died holding and the rest of its claimed batch stay leased until the lease runs out.
    assert Delivery.objects.filter(state=Delivery.State.SENT).count() == 9
    assert 1 <= Delivery.objects.filter(state=Delivery.State.SENDING).count() <= settings.DELIVERY_CHUNK_SIZE - 9

    restarted = worker_factory()
    restarted.start()
    # Redis redelivers the unacknowledged chunk after the visibility timeout; the row
    # the dead worker held is re-queued by the reconciler once its lease expires.
    def settled():
        deliveries_reconcile(now=timezone.now())
        return _open_rows() == 0

    _wait_until(settled, timeout=60, what="the restarted worker to finish")
    assert _per_recipient(smtp_sink) == {r.email: 1 for r in readers}


def test_a_451_then_250_is_delivered_once_by_the_worker(worker_factory, smtp_sink, edition_day):
    reader = SubscriberFactory()
    answers = iter(["451 4.3.0 greylisted"])
    smtp_sink.reply = lambda rcpt: next(answers, "250 OK")
    worker = worker_factory()
    worker.start()
    deliveries_plan(now=timezone.now(), ignore_hour=True)
    _wait_until(lambda: _open_rows() == 0, timeout=30, what="the retried delivery")
    delivery = Delivery.objects.get()
    assert delivery.state == Delivery.State.SENT and delivery.attempts == 2
    assert len(smtp_sink.to(reader.email)) == 1


@pytest.mark.skipif(not semantic.available(), reason="the semantic extra (torch) is not installed")
def test_a_sending_worker_sends_hybrid_digests_without_ever_loading_torch(worker_factory, smtp_sink, edition_day, settings):
    settings.MATCHING_METHOD = "hybrid"
    settings.DELIVERY_CHUNK_SIZE = 10
    papers_embed()  # the matching worker's job after an import
    interests = ["robot learning, manipulation", "video generation", '"language models"', "", "graphs, drones"]
    readers = [SubscriberFactory(interests=interests[n % len(interests)], digest_size=5) for n in range(30)]
    semantic._phrase_cache.clear()
    selection._cache.clear()
    expected = {sid: [p.paper_id for p in picks]  # ranked in this process, the model loaded here
                for sid, picks in select_for_subscribers(subscribers=readers, day=edition_day).items()}
    worker = worker_factory(MATCHING_METHOD="hybrid")
    worker.start()
    deliveries_plan(now=timezone.now(), ignore_hour=True)  # stores the phrase vectors (matching queue's job)
    _wait_until(lambda: _open_rows() == 0, timeout=60, what="the hybrid deliveries")
    assert _per_recipient(smtp_sink) == {r.email: 1 for r in readers}
    assert dict(Delivery.objects.values_list("subscriber_id", "paper_ids")) == expected
    import psutil

    processes = [psutil.Process(worker.proc.pid), *psutil.Process(worker.proc.pid).children(recursive=True)]
    assert len(processes) >= 2  # the worker and its pool process, still running
    for process in processes:
        with open(f"/proc/{process.pid}/maps") as maps:
            assert "torch" not in maps.read(), f"process {process.pid} ({process.name()}) has torch loaded"
