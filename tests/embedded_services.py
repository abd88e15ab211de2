"""Loaded by pytest before Django's settings (see addopts in pyproject.toml).

When REDIS_URL is not set (a plain `make test`), start a real embedded Redis on a
free port so the cache, rate limits and Celery tests run against a real server.
CI sets REDIS_URL to the machine's Redis instead.
"""

import atexit
import os
import tempfile
from pathlib import Path

from digest import embedded_redis

if not os.environ.get("REDIS_URL"):
    _port = embedded_redis.free_port()
    _proc = embedded_redis.start(_port, data_dir=Path(tempfile.mkdtemp(prefix="paperboy-redis-")))
    atexit.register(_proc.terminate)
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{_port}/0"
    os.environ["PAPERBOY_EMBEDDED_REDIS"] = "1"
