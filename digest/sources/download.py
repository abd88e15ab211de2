"""GET a source URL with timeouts and retries.

Hand-written rather than a retry library: httpx's transport retries cover connect
errors only, and the rule we need is short: retry 429, 5xx and connection
failures with exponential backoff and jitter, honour Retry-After up to a cap,
fail at once on anything else.
"""

import email.utils
import logging
import random
import time

import httpx
from django.conf import settings

logger = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
USER_AGENT = "Paperboy/0.1 (paper digest; +https://github.com/)"


class FetchError(Exception):
    """The source could not be fetched; names the URL and what went wrong."""

    def __init__(self, message: str, *, url: str, status: int | None = None):
        self.url = url
        self.status = status
        super().__init__(message)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def fetch_bytes(url: str, *, params: dict | None = None, sleep=time.sleep) -> bytes:
    """The body of a 2xx answer to GET ``url``; FetchError once retries are used up."""
    retries = settings.FETCH_RETRIES
    base = settings.FETCH_BACKOFF_BASE
    problem = ""
    status = None
    with httpx.Client(
        timeout=settings.FETCH_TIMEOUT, headers={"User-Agent": USER_AGENT}, follow_redirects=True
    ) as client:
        for attempt in range(retries + 1):
            wait = base * 2**attempt * (1 + random.random())  # full jitter on top of the doubling
            try:
                response = client.get(url, params=params)
            except httpx.TransportError as exc:  # connect/read timeouts, refused, reset
                problem, status = f"{type(exc).__name__}: {exc}", None
            else:
                if response.is_success:
                    return response.content
                status = response.status_code
                problem = f"HTTP {status} {response.reason_phrase}"
                if status not in RETRY_STATUSES:
                    raise FetchError(f"GET {response.url}: {problem}", url=str(response.url), status=status)
                if (after := _retry_after(response)) is not None:
                    wait = min(after, settings.FETCH_RETRY_AFTER_MAX)
            if attempt < retries:
                logger.warning("GET %s: %s; retry %d/%d in %.1fs", url, problem, attempt + 1, retries, wait)
                sleep(wait)
    raise FetchError(f"GET {url}: {problem} (gave up after {retries + 1} attempts)", url=url, status=status)
