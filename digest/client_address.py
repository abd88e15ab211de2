"""The visitor's IP address: one answer for the rate limits and the consent evidence.

settings.CLIENT_IP_META_KEY names where it is (REMOTE_ADDR, or behind a proxy a header such as
HTTP_X_FORWARDED_FOR); settings.RATELIMIT_IP_META_KEY points django-ratelimit at `ratelimit_ip`.
"""

import ipaddress
import logging
import re

from django.conf import settings
from django.http import HttpRequest

logger = logging.getLogger(__name__)

# "203.0.113.7:51234" and "[2001:db8::1]:443": some proxies (Azure's) add the client's port.
_WITH_PORT = re.compile(r"\[?(?P<ip>[0-9A-Fa-f:.]+?)\]?:[0-9]{1,5}")

# Counted apart from every real address, so a request with no usable address at all
# (an empty REMOTE_ADDR on a Unix socket) is limited rather than answered with a 500.
UNKNOWN = "0.0.0.0"

_warned = False


def _parse(raw: str) -> str | None:
    candidate = raw.split(",")[0].strip()
    match = _WITH_PORT.fullmatch(candidate)
    for text in (candidate, match and match["ip"]):
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            continue
    return None


def client_ip(request: HttpRequest) -> str | None:
    """The configured header's first address, else REMOTE_ADDR's; None if neither is an address.

    A health check or a direct hit on the app server has no forwarding header: it is the
    connecting address that counts then, not an error.
    """
    global _warned
    meta_key = settings.CLIENT_IP_META_KEY
    if meta_key != "REMOTE_ADDR":
        forwarded = _parse(request.META.get(meta_key, ""))
        if forwarded:
            return forwarded
        if not _warned:  # once per process: a misspelt header name would otherwise go unnoticed
            _warned = True
            logger.warning("no address in %s (RATELIMIT_IP_META_KEY) on %s; using REMOTE_ADDR", meta_key, request.path)
    return _parse(request.META.get("REMOTE_ADDR", ""))


def ratelimit_ip(request: HttpRequest) -> str:
    """settings.RATELIMIT_IP_META_KEY: what django-ratelimit's key="ip" counts by."""
    return client_ip(request) or UNKNOWN
