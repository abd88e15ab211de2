"""A real gunicorn, started from gunicorn.conf.py as the Procfile's `web` process starts it.

`application` stands in for digest.wsgi: under the same settings it answers how a request's
scheme came out, as gunicorn set it (wsgi.url_scheme) and as Django reads it
(request.is_secure(), what SECURE_SSL_REDIRECT, secure cookies and CSRF go by), and the
SCRIPT_NAME every URL Django builds starts with. No view, database or Redis is needed for that.
"""

import contextlib
import http.client
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def application(environ, start_response):
    from django.core.handlers.wsgi import WSGIRequest  # is_secure() needs the settings, not django.setup()

    request = WSGIRequest(environ)
    body = f"{environ['wsgi.url_scheme']} {request.is_secure()} {environ['SCRIPT_NAME'] or '-'}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@contextlib.contextmanager
def gunicorn(env: dict, *, port: int, log: Path):
    """gunicorn on 127.0.0.1:`port` with gunicorn.conf.py, one worker, the environment `env` only."""
    command = [sys.executable, "-m", "gunicorn", "tests.gunicorn_support:application", "--config", "gunicorn.conf.py",
               "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "2"]  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "digest.settings", **env}
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_until_it_answers(process, port, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_it_answers(process: subprocess.Popen, port: int, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({process.returncode}):\n{log.read_text()}")
        try:
            request(port, "/")
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within {timeout} s:\n{log.read_text()}")


def request(port: int, path: str, headers: dict | None = None, *, peer: str = "127.0.0.1") -> str:
    """GET `path` from the address `peer` (any of 127.0.0.0/8, a different client to gunicorn); the answer's body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(peer, 0))
    try:
        connection.request("GET", path, headers={"Host": "paperboy.example.org", **(headers or {})})
        response = connection.getresponse()
        body = response.read().decode()
        if response.status != 200:
            raise AssertionError(f"{response.status}: {body}")
        return body
    finally:
        connection.close()
