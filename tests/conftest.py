"""Shared fixtures. Area-specific fixtures live beside their tests."""

import asyncio
import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer


@dataclass
class CapturedMessage:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: email.message.EmailMessage = field(init=False)

    def __post_init__(self):
        self.message = email.message_from_bytes(self.raw, policy=email.policy.default)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, content_type: str) -> str:
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                return part.get_content()
        raise LookupError(content_type)


class _Sink:
    """aiosmtpd handler: records every message; `reply` decides the answer per recipient."""

    def __init__(self):
        self.messages: list[CapturedMessage] = []
        self.lock = threading.Lock()
        self.reply = lambda rcpt: "250 OK"
        # Optional hook run (in a thread) before a message is accepted; a non-250
        # answer refuses it. Tests use it to hold a message mid-send.
        self.on_data = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = self.reply(address)
        if not answer.startswith("250"):
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.on_data is not None:
            answer = await asyncio.to_thread(self.on_data, envelope)
            if answer and not answer.startswith("250"):
                return answer
        with self.lock:
            self.messages.append(CapturedMessage(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"

    def to(self, address: str) -> list[CapturedMessage]:
        return [m for m in self.messages if address.lower() in [r.lower() for r in m.rcpt_tos]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_sink(settings):
    """A real SMTP server on loopback; Django's SMTP backend is pointed at it."""
    handler = _Sink()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, data_size_limit=10_000_000)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    handler.port = port
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's, then before its teardown: end other sessions on the test database.

    A thread's connection (a live server's, an in-process worker's) can outlive its test, and
    PostgreSQL will not drop a database someone is still connected to: the run then ended with
    "test database ... is being accessed by other users" and left the database behind.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        connection.close()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2's million rounds take half a second a password here, and no test is about them:
    every curator made and every failed admin login paid it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters live in Redis: each test starts from zero."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def eager_tasks():
    """Run tasks in-process when enqueued, for unit tests of what a task does.

    The real worker on Redis is covered by the browser and end-to-end tests.
    """
    from digest.celery import app as celery_app

    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_eager_propagates = False


def pytest_collection_modifyitems(items):
    # A transactional test without serialized_rollback ends with a plain flush, whose post_migrate
    # re-creates the curator groups under new ids; the next serialized test then fails to restore
    # them (duplicate key), in whichever file happens to run after it.
    for item in items:
        for marker in item.iter_markers("django_db"):
            if marker.kwargs.get("transaction") and not marker.kwargs.get("serialized_rollback"):
                raise pytest.UsageError(f"{item.nodeid}: django_db(transaction=True) needs serialized_rollback=True")
