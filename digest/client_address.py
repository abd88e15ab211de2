"""The visitor's IP address: one answer for the rate limits and the consent evidence.

settings.CLIENT_IP_META_KEY names where it is (REMOTE_ADDR, or behind a proxy a header such as
HTTP_X_FORWARDED_FOR) and settings.TRUSTED_PROXY_COUNT how many proxies append to that header;
settings.RATELIMIT_IP_META_KEY points django-ratelimit at `ratelimit_ip`.

Not django-ipware: its proxy_count counts the proxies listed in the header (ours less one), and
neither of its modes fits. Strict (its default) drops a header with a spoofed prefix and, behind
two proxies or more, refuses REMOTE_ADDR too, answering None; unstrict skips entries that are no
address before counting, so a proxy that writes "unknown" hands its slot to the visitor's own entry.
What this needs is one entry from the right, else REMOTE_ADDR: the few lines below.
"""

import ipaddress
import logging
import re

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest

logger = logging.getLogger(__name__)

# "203.0.113.7:51234" and "[2001:db8::1]:443": some proxies (Azure's) add the client's port.
_WITH_PORT = re.compile(r"\[?(?P<ip>[0-9A-Fa-f:.]+?)\]?:[0-9]{1,5}")

# Counted apart from every real address, so a request with no usable address at all
# (an empty REMOTE_ADDR on a Unix socket) is limited rather than answered with a 500.
UNKNOWN = "0.0.0.0"

_warned = False


def _parse(raw: str) -> str | None:
    candidate = raw.strip()
    match = _WITH_PORT.fullmatch(candidate)
    for text in (candidate, match and match["ip"]):
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            continue
    return None


def client_ip(request: HttpRequest) -> str | None:
    """The address the outermost trusted proxy saw, else REMOTE_ADDR's; None if neither is an address.

    Each proxy appends the address it was connected from (nginx's $proxy_add_x_forwarded_for),
    so with TRUSTED_PROXY_COUNT proxies the visitor's address is that many entries from the
    right, and everything left of it is what the visitor sent: their choice, never counted.
    A header with fewer addresses there did not pass every proxy (a health check, a direct hit
    on the app or on an inner proxy, or a proxy that wrote no address) and none of its entries
    is known to be a proxy's, so it is REMOTE_ADDR that counts then, which no client can choose.
    """
    global _warned
    meta_key = settings.CLIENT_IP_META_KEY
    if meta_key != "REMOTE_ADDR":
        entries = request.META.get(meta_key, "").split(",")
        proxies = settings.TRUSTED_PROXY_COUNT  # at least 1 (settings.py): entries[-0:] would be all of them
        written = [_parse(entry) for entry in entries[-proxies:]]  # the visitor's address, then the proxies'
        if len(written) == proxies and all(written):
            return written[0]
        if not _warned:  # once per process: a misspelt header name would otherwise go unnoticed
            _warned = True
            logger.warning("%s (RATELIMIT_IP_META_KEY) does not end in %d addresses (TRUSTED_PROXY_COUNT) on %s; "
                           "using REMOTE_ADDR", meta_key, proxies, request.path)  # fmt: skip
    return _parse(request.META.get("REMOTE_ADDR", ""))


def ratelimit_ip(request: HttpRequest) -> str:
    """settings.RATELIMIT_IP_META_KEY: what django-ratelimit's key="ip" counts by."""
    return client_ip(request) or UNKNOWN


def _claims_https(request: HttpRequest) -> bool:
    return request.META.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip().lower() == "https"


class UntrustedForwardedProtoMiddleware:
    """Says, once per process, why a site behind a proxy redirects every request to itself.

    In production X-Forwarded-Proto counts only with TRUST_X_FORWARDED_PROTO (on with
    TRUSTED_PROXY_COUNT). An operator behind a TLS proxy who set neither gets SECURE_SSL_REDIRECT
    sending https visitors to https again, forever; the log should name the setting that ends it.
    """

    def __init__(self, get_response):
        if settings.SECURE_PROXY_SSL_HEADER or not settings.SECURE_SSL_REDIRECT:
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.warned = False

    def __call__(self, request: HttpRequest):
        if not self.warned and not request.is_secure() and _claims_https(request):
            self.warned = True
            logger.warning(
                "a request came with X-Forwarded-Proto: https, which is not trusted, so SECURE_SSL_REDIRECT "
                "sends it to https again; behind a proxy set TRUSTED_PROXY_COUNT (or TRUST_X_FORWARDED_PROTO=true)"
            )
        return self.get_response(request)
