"""Shared-cache copies of what every visitor of the landing page and every signup reads.

Two entries in the Django cache (Redis): the active topics (the signup form's choices)
and the rendered landing page minus the visitor's CSRF token. Rendering that page took
~19 ms of CPU (hundreds of widget templates) and the topic query ~1 ms per signup.

Both entries are dropped when a topic, paper or trending entry is saved or deleted
through the ORM or ``papers_changed`` / ``papers_curated`` is sent (imports, hide, pin), and expire after
CACHE_SECONDS in any case: bulk SQL writes send no signal, so a change made that way
shows within that delay. If Redis is unreachable, pages read the database as before.
"""

import hashlib
import logging
import pickle
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from redis.exceptions import RedisError

from digest.models import Paper, Topic, TrendingEntry
from digest.signals import papers_changed, papers_curated

logger = logging.getLogger(__name__)

CACHE_SECONDS = 30
TOPICS_KEY = "subscriptions:topics-active:v2"


@lru_cache(maxsize=1)
def _release() -> str:
    """Changes with the page templates, the form and the static manifest, so that during
    and after a deploy each release serves its own landing page (and static file names)."""
    digest = hashlib.blake2b(digest_size=8)
    for path in [*sorted((Path(settings.BASE_DIR) / "templates" / "pages").rglob("*.html")),
                 Path(__file__).with_name("forms.py")]:
        digest.update(path.read_bytes())
    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if manifest.exists():
        digest.update(manifest.read_bytes())
    return digest.hexdigest()


def landing_key() -> str:
    return f"subscriptions:landing-page:v1:{_release()}"

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


# key -> (pickled value, value): the objects last unpickled for that key in this process.
_unpickled: dict[str, tuple[bytes, object]] = {}


def remembered_objects(key: str, build: Callable[[], list[T]]) -> list[T]:
    """remembered() for a list of model instances, unpickled once per process per version.

    Unpickling model instances costs more than the Redis round trip; the stored bytes
    say whether the copy this process holds is still the current one. Callers get their
    own list but share the instances, which they must not change.
    """

    def build_pickled() -> bytes:
        return pickle.dumps(build(), protocol=pickle.HIGHEST_PROTOCOL)

    blob = remembered(key, build_pickled)
    held = _unpickled.get(key)
    if held is not None and held[0] == blob:
        return list(held[1])
    value = pickle.loads(blob)
    _unpickled[key] = (blob, value)
    return list(value)


def forget() -> None:
    try:
        cache.delete_many([TOPICS_KEY, landing_key()])
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
# Hide, unhide, pin and unpin are bulk updates (no post_save): the landing page lists papers by hidden.
papers_curated.connect(_on_change, dispatch_uid="page-cache-papers-curated")
