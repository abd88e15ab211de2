"""Absolute links for emails (settings.SITE_URL + path). Used by the digest emails too."""

import re
from functools import lru_cache

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse

from .models import Subscriber
from .tokens import Purpose, token_make


def _absolute(path: str) -> str:
    return settings.SITE_URL + path


# What signing.dumps makes (URL-safe base64 and ":"): reverse() would leave it unquoted.
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_\-:]+")
_MARK = "PBTOKENMARKX"


@lru_cache(maxsize=64)
def _around_token(name: str, script_prefix: str, urlconf, root_urlconf: str) -> tuple[str, str]:
    # The arguments are what reverse() depends on besides the token, so a cached pair is never stale.
    prefix, mark, suffix = reverse(name, kwargs={"token": _MARK}).partition(_MARK)
    assert mark, f"{name} does not put its token in the path"
    return prefix, suffix


def _token_path(name: str, token: str) -> str:
    """reverse(name, kwargs={"token": token}), without resolving the pattern for every link.

    reverse() was ~15 us a link and a digest has two per reader; for a plain token the path is
    the same text around it.
    """
    if not _PLAIN_TOKEN.fullmatch(token):
        return reverse(name, kwargs={"token": token})
    prefix, suffix = _around_token(name, get_script_prefix(), get_urlconf(), settings.ROOT_URLCONF)
    return prefix + token + suffix


def confirm_url(subscriber: Subscriber, *, consent_id: int | None = None) -> str:
    """The link that confirms the signup `consent_id` (a SignupConsent), or else the first one."""
    token = token_make(subscriber=subscriber, purpose=Purpose.CONFIRM, consent_id=consent_id)
    return _absolute(_token_path("subscriptions:confirm", token))


def manage_url(subscriber: Subscriber) -> str:
    token = token_make(subscriber=subscriber, purpose=Purpose.MANAGE)
    return _absolute(_token_path("subscriptions:manage", token))


def unsubscribe_url(subscriber: Subscriber) -> str:
    """The RFC 8058 one-click URL that List-Unsubscribe carries (POST List-Unsubscribe=One-Click)."""
    token = token_make(subscriber=subscriber, purpose=Purpose.UNSUBSCRIBE)
    return _absolute(_token_path("subscriptions:unsubscribe", token))


def list_unsubscribe_headers(unsubscribe_url: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058 headers for every email: the one-click URL, and a mailto only where
    one is configured (UNSUBSCRIBE_MAILTO may be empty: nothing reads that mailbox then)."""
    targets = f"<{unsubscribe_url}>"
    if settings.UNSUBSCRIBE_MAILTO:
        targets += f", <mailto:{settings.UNSUBSCRIBE_MAILTO}?subject=unsubscribe>"
    return {"List-Unsubscribe": targets, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
