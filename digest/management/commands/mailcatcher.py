"""A local SMTP server for development: every message lands as a .eml file in MAIL_CATCHER_DIR.

The dev mail view (/dev/mail/) lists them and shows each as the recipient sees it.
aiosmtpd is the maintained asyncio SMTP server; this only adds the file store.
"""

import asyncio
import logging
import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class FileStore:
    def __init__(self, folder: Path):
        self.folder = folder

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        recipients = ", ".join(envelope.rcpt_tos)
        # Write to a temp name then rename, so the mail view never reads half a message.
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(f"X-Caught-For: {recipients}\r\n".encode() + envelope.original_content)
        tmp.rename(self.folder / name)
        return "250 Message caught"


class Command(BaseCommand):
    help = "Run a local SMTP catcher on EMAIL_HOST:EMAIL_PORT (development only)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=None)
        parser.add_argument("--port", type=int, default=None)

    def handle(self, *args, host=None, port=None, **options):
        if settings.PRODUCTION:
            raise CommandError("The mail catcher is for development only")
        host = host or getattr(settings, "EMAIL_HOST", "127.0.0.1") or "127.0.0.1"
        port = port or getattr(settings, "EMAIL_PORT", 1025)
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise CommandError(f"Refusing to listen on {host}: the catcher only binds to loopback")
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command
        folder = Path(settings.MAIL_CATCHER_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        controller = Controller(FileStore(folder), hostname=host, port=port, data_size_limit=10_000_000)
        controller.start()
        self.stdout.write(f"Catching mail on {host}:{port} into {folder}; see /dev/mail/", ending="\n")
        self.stdout.flush()
        try:
            asyncio.run(_forever())
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()


async def _forever():
    while True:
        await asyncio.sleep(3600)
