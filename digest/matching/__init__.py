"""Matching: which papers each subscriber gets, in what order, and why (reads only).

Public API: Pick, select_for_subscribers, select_for_subscriber. The scoring pieces (text,
lexical, semantic, scoring, ranking) import no Django models and are used as-is by the bench.

The API is imported on first use (PEP 562): web processes read interests with matching.text
alone, and importing the package must not load numpy, scipy and bm25s into them (27 MB and
0.3 s on a form's first post).
"""

_SELECTION = (
    "Pick",
    "candidate_ids_for_day",
    "day_load",
    "latest_trending_date",
    "select_for_subscriber",
    "select_for_subscribers",
)


def __getattr__(name: str):
    if name in _SELECTION:
        from . import selection

        return getattr(selection, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_SELECTION)
