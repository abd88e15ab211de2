"""Absolute links for emails (settings.SITE_URL + path). Used by the digest emails too."""

from django.conf import settings
from django.urls import reverse

from .models import Subscriber
from .tokens import Purpose, token_make


def _absolute(path: str) -> str:
    return settings.SITE_URL + path


def confirm_url(subscriber: Subscriber) -> str:
    token = token_make(subscriber=subscriber, purpose=Purpose.CONFIRM)
    return _absolute(reverse("subscriptions:confirm", kwargs={"token": token}))


def manage_url(subscriber: Subscriber) -> str:
    token = token_make(subscriber=subscriber, purpose=Purpose.MANAGE)
    return _absolute(reverse("subscriptions:manage", kwargs={"token": token}))


def unsubscribe_url(subscriber: Subscriber) -> str:
    """The RFC 8058 one-click URL that List-Unsubscribe carries (POST List-Unsubscribe=One-Click)."""
    token = token_make(subscriber=subscriber, purpose=Purpose.UNSUBSCRIBE)
    return _absolute(reverse("subscriptions:unsubscribe", kwargs={"token": token}))
