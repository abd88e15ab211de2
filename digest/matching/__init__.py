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

__all__ = [
    "Pick",
    "candidate_ids_for_day",
    "day_load",
    "latest_trending_date",
    "select_for_subscriber",
    "select_for_subscribers",
]
