"""Matching: which papers each subscriber gets, in what order, and why (reads only).

Public API: Pick, select_for_subscribers, select_for_subscriber. The scoring pieces (text,
lexical, semantic, scoring, ranking) import no Django models and are used as-is by the bench.
"""

from .selection import (  # noqa: F401
    Pick,
    candidate_ids_for_day,
    day_load,
    latest_trending_date,
    select_for_subscriber,
    select_for_subscribers,
)


def _bm25s_logging_as_configured() -> None:
    # bm25s sets its logger to DEBUG when it is imported, which is after Django applied LOGGING:
    # without this every index build logged "Building index" whatever the settings said.
    import logging

    from django.conf import settings

    level = (getattr(settings, "LOGGING", None) or {}).get("loggers", {}).get("bm25s", {}).get("level")
    logging.getLogger("bm25s").setLevel(level or logging.NOTSET)


_bm25s_logging_as_configured()

__all__ = [
    "Pick",
    "candidate_ids_for_day",
    "day_load",
    "latest_trending_date",
    "select_for_subscriber",
    "select_for_subscribers",
]
