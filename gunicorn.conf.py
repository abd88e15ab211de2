"""gunicorn settings for the `web` process (Procfile) and bench/signup_load.py.

gunicorn reads this file from the working directory; command-line options override it.

Threaded workers (gthread): a request waiting on PostgreSQL or Redis does not hold a
whole process, and a client's connection is kept alive between requests. The sync
worker closes every connection after one request, so each request paid a TCP
handshake, accept and close: about a millisecond of CPU, a seventh of a signup's.
A few processes carry the CPU (the GIL lets one thread of a process run Python at a
time); the threads carry the waits. Every thread keeps its own PostgreSQL connection
(CONN_MAX_AGE), so workers x threads must stay below PostgreSQL's max_connections.
"""

import os
import sys

from gunicorn.glogging import Logger

from digest.log_filters import TokenMaskFilter


def _positive_int(name: str, default: str, maximum: int | None = None) -> int:
    # gunicorn reads WEB_CONCURRENCY itself as it starts, with a traceback for a bad one, so the
    # Procfile runs this file first (`python gunicorn.conf.py`): SystemExit prints just the message.
    # Empty counts as unset, as in digest/settings.py.
    raw = os.environ.get(name, "").strip() or default
    if not raw.isdigit() or int(raw) < 1:
        sys.exit(f"Setting {name}: must be a whole number of at least 1, not {raw!r}")
    if maximum is not None and int(raw) > maximum:
        sys.exit(f"Setting {name}: must be at most {maximum}, not {raw!r}")
    return int(raw)


bind = f"0.0.0.0:{_positive_int('PORT', '8000', maximum=65535)}"
worker_class = "gthread"
workers = _positive_int("WEB_CONCURRENCY", "3")
threads = _positive_int("WEB_THREADS", "4")
# Each worker listens on its own SO_REUSEPORT socket and the kernel spreads new connections
# over them. On one shared socket, whichever worker woke first accepted a burst of new
# connections, and a kept-alive connection stays with its worker: under the signup bench
# one worker held most of wrk's 16 connections (95% CPU, the others ~5%), so a request
# waited behind its neighbours' GIL turns while a core sat a third idle.
reuse_port = True


def _forwarded_settings() -> tuple[dict[str, str], str]:
    """gunicorn's secure_scheme_headers and forwarded_allow_ips: the header Django believes, and no other.

    Left to its defaults gunicorn judges the scheme itself: from 127.0.0.1 and ::1 (or
    $FORWARDED_ALLOW_IPS) it turns X-Forwarded-Proto, X-Forwarded-Ssl or X-Forwarded-Protocol
    into wsgi.url_scheme = "https", and Django, when SECURE_PROXY_SSL_HEADER is unset, takes
    request.is_secure() from there. A visitor coming through an nginx on the same host that
    passes their headers along was then https with TRUST_X_FORWARDED_PROTO off; behind a proxy
    on another address gunicorn said http where Django said https.
    """
    # The settings Django will run with (digest/settings.py), so the environment is read once,
    # one way. A bad value stops here in one line, as manage.py says it, not in every worker.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digest.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        proxy_header = settings.SECURE_PROXY_SSL_HEADER  # production with TRUST_X_FORWARDED_PROTO, else None
    except ImproperlyConfigured as error:
        if not str(error).startswith("Setting "):
            raise
        sys.exit(f"gunicorn.conf.py: {error}")
    if not proxy_header:
        return {}, ""
    meta_key, secure_value = proxy_header  # ("HTTP_X_FORWARDED_PROTO", "https")
    # From any peer, as Django believes the header from any peer: the README has operators let only
    # the proxy reach the app. A narrower FORWARDED_ALLOW_IPS would protect nothing (Django reads
    # the header itself), only make gunicorn's answer differ from Django's, so it is not read.
    return {meta_key.removeprefix("HTTP_").replace("_", "-"): secure_value}, "*"


secure_scheme_headers, forwarded_allow_ips = _forwarded_settings()
# Nor SCRIPT_NAME or PATH_INFO from a request's headers (gunicorn's default takes them from
# trusted peers, and a Unix socket's always): the site lives at the root of SITE_URL (email links
# are SITE_URL + path), and a visitor's SCRIPT_NAME header passed along would prefix every URL.
forwarder_headers = ""


class TokenMaskingLogger(Logger):
    """gunicorn's logger, with the tokens of confirm/manage/unsubscribe links masked in the access
    log (digest/log_filters.py): its request line, path and Referer are working links otherwise."""

    def setup(self, cfg):
        super().setup(cfg)
        # setup() runs again on every reload (SIGHUP); one filter is enough.
        if not any(isinstance(f, TokenMaskFilter) for f in self.access_log.filters):
            self.access_log.addFilter(TokenMaskFilter())


logger_class = TokenMaskingLogger


def post_worker_init(worker):
    # Everything loaded so far (Django, the app, numpy and friends: ~130,000 objects) lives
    # as long as the worker. Out of the collector's way, a full collection no longer walks
    # it: that was a ~90 ms pause (all threads of the worker stalled) every few hundred
    # signups, about 0.15 ms of CPU per request.
    import gc

    gc.freeze()

