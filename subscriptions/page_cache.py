"""Shared-cache copies of what every visitor of the landing page and every signup reads.

Two entries in the Django cache (Redis): the active topics (the signup form's choices)
and the rendered landing page minus the visitor's CSRF token. Rendering that page took
~19 ms of CPU (hundreds of widget templates) and the topic query ~1 ms per signup.

Both entries are dropped when a topic, paper or trending entry is saved or deleted
through the ORM or ``papers_changed`` is sent (imports, curation), and expire after
CACHE_SECONDS in any case: bulk SQL writes send no signal, so a change made that way
shows within that delay. If Redis is unreachable, pages read the database as before.
"""

import logging
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from redis.exceptions import RedisError

from digest.models import Paper, Topic, TrendingEntry
from digest.signals import papers_changed

logger = logging.getLogger(__name__)

CACHE_SECONDS = 30
TOPICS_KEY = "subscriptions:topics-active:v1"
LANDING_KEY = "subscriptions:landing-page:v1"

T = TypeVar("T")


def remembered(key: str, build: Callable[[], T]) -> T:
    """The cached value, or build() stored for CACHE_SECONDS. Redis trouble: build() only."""
    try:
        value = cache.get(key)
    except RedisError:
        logger.warning("cache unreachable; building %s without it", key)
        return build()
    if value is None:
        value = build()
        try:
            cache.set(key, value, CACHE_SECONDS)
        except RedisError:
            logger.warning("cache unreachable; %s not stored", key)
    return value


def forget() -> None:
    try:
        cache.delete_many([TOPICS_KEY, LANDING_KEY])
    except RedisError:
        logger.warning("cache unreachable; cached topics and landing page expire within %ss", CACHE_SECONDS)


def _on_change(**kwargs) -> None:
    # Now, for this transaction's own later reads, and after the commit, so that no
    # other process re-caches the old rows in between.
    forget()
    transaction.on_commit(forget)


for _model in (Topic, Paper, TrendingEntry):
    post_save.connect(_on_change, sender=_model, dispatch_uid=f"page-cache-save-{_model.__name__}")
    post_delete.connect(_on_change, sender=_model, dispatch_uid=f"page-cache-delete-{_model.__name__}")
papers_changed.connect(_on_change, dispatch_uid="page-cache-papers-changed")
