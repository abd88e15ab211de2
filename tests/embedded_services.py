"""Loaded by pytest before Django's settings (see addopts in pyproject.toml).

When REDIS_URL is not set (a plain `make test`), start a real embedded Redis on a
free port so the cache, rate limits and Celery tests run against a real server.
CI sets REDIS_URL to the machine's Redis instead.

Under pytest-xdist each worker process loads this too. A worker given REDIS_URL moves to a
database of its own (gw0 → db 1, gw1 → db 2 ...): tests clear the cache and purge Celery's
queue, which on a shared database would wipe the other worker's rate-limit counters and
hand its tasks to the wrong test database. Without REDIS_URL each worker starts its own Redis.
"""

import atexit
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from digest import embedded_redis


def _own_database(url: str, worker: str) -> str:
    """url with its database number replaced by one for this xdist worker."""
    parts = urlsplit(url)
    index = 1 + int(worker.removeprefix("gw"))
    if index > 15:  # Redis has 16 databases unless configured otherwise
        raise RuntimeError(f"xdist worker {worker}: no Redis database left; run with at most 15 workers")
    return urlunsplit(parts._replace(path=f"/{index}"))


_worker = os.environ.get("PYTEST_XDIST_WORKER")
if os.environ.get("REDIS_URL"):
    if _worker and not os.environ["REDIS_URL"].startswith("unix://"):
        os.environ["REDIS_URL"] = _own_database(os.environ["REDIS_URL"], _worker)
else:
    _port = embedded_redis.free_port()
    _proc = embedded_redis.start(_port, data_dir=Path(tempfile.mkdtemp(prefix="paperboy-redis-")))
    atexit.register(_proc.terminate)
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{_port}/0"
    os.environ["PAPERBOY_EMBEDDED_REDIS"] = "1"
