"""Reads for the subscription pages and the importer."""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from zoneinfo import available_timezones

from django.db.models import Case, Value, When

from digest.models import Topic, TrendingEntry

from . import page_cache


def topic_list_active() -> list[Topic]:
    """Active topics in page order; from the shared cache (see page_cache), every signup reads them.

    The instances are shared within the process: read them, never change them.
    """
    return page_cache.remembered_objects(page_cache.TOPICS_KEY, _topic_list_active_query)


def _topic_list_active_query() -> list[Topic]:
    return list(Topic.objects.filter(active=True).order_by("position", "name"))


def subscriber_topics_paused(*, subscriber) -> list[Topic]:
    """The deactivated topics this reader follows, by name: kept for them, neither offered nor matched."""
    return list(subscriber.topics.filter(active=False).order_by("name"))


def topics_by_reference(*, references: Iterable[str]) -> tuple[list[Topic], list[str]]:
    """Active topics matched by slug or name (case-insensitive), and the references that matched none."""
    index: dict[str, Topic] = {}
    for topic in topic_list_active():
        index[topic.slug.lower()] = topic
        index[topic.name.lower()] = topic
    found: list[Topic] = []
    unknown: list[str] = []
    for ref in references:
        topic = index.get(ref.strip().lower())
        if topic is None:
            unknown.append(ref)
        elif topic not in found:
            found.append(topic)
    return found, unknown


@lru_cache(maxsize=1)
def timezone_names() -> tuple[str, ...]:
    """Every IANA zone name, sorted; computed once (it walks the tzdata package). All are
    accepted (a browser may report an old alias such as Asia/Calcutta); timezone_menu() lists fewer."""
    junk = {"Factory", "localtime", "posixrules"}
    return tuple(sorted(name for name in available_timezones() if name not in junk))


@lru_cache(maxsize=1)
def timezone_menu() -> tuple[str, ...]:
    """The zones a person picks from: tzdata's canonical list (zone1970.tab, one per region that
    has kept the same clocks since 1970) and UTC, without the aliases ('US/Eastern', 'GB') and
    Etc/GMT+12 (which is UTC-12, the sign POSIX-inverted) that filled the menu with traps."""
    table = resources.files("tzdata.zoneinfo").joinpath("zone1970.tab").read_text(encoding="utf-8")
    names = {line.split("\t")[2] for line in table.splitlines() if line and not line.startswith("#")}
    return tuple(sorted((names & set(timezone_names())) | {"UTC"}))


@dataclass(frozen=True)
class TrendingPaper:
    title: str
    abstract: str
    upvotes: int
    url: str
    rank: int
    # Seen only in an arXiv feed that day: no votes, no trending signal; the page says "new on arXiv".
    new_on_arxiv: bool = False


def trending_latest(*, limit: int = 10) -> tuple[datetime.date | None, list[TrendingPaper]]:
    """The most recent day with trending entries and its papers, best rank first, one row per paper.

    Papers with a trending signal come first; those seen only on arXiv (whose rank is a place in
    a feed sorted by submission date) after them, marked new_on_arxiv. A day whose papers are
    all hidden is skipped: the page would name it and then show nothing.
    """
    latest = TrendingEntry.objects.filter(paper__hidden=False).order_by("-date").values_list("date", flat=True).first()
    if latest is None:
        return None, []
    unranked = Case(When(source__in=TrendingEntry.UNRANKED_SOURCES, then=Value(1)), default=Value(0))
    entries = (
        TrendingEntry.objects.filter(date=latest, paper__hidden=False)
        .select_related("paper")
        .order_by(unranked, "rank", "-upvotes")[: limit * 4]
    )
    papers: dict[int, TrendingPaper] = {}
    for entry in entries:
        paper = entry.paper
        upvotes = max(entry.upvotes, paper.upvotes)
        previous = papers.get(paper.pk)
        if previous is None:
            papers[paper.pk] = TrendingPaper(
                title=paper.title,
                abstract=paper.abstract,
                upvotes=upvotes,
                url=paper.page_url or paper.abs_url,
                rank=entry.rank,
                new_on_arxiv=entry.source in TrendingEntry.UNRANKED_SOURCES,
            )
        elif upvotes > previous.upvotes:
            papers[paper.pk] = TrendingPaper(**{**previous.__dict__, "upvotes": upvotes})
        if len(papers) >= limit and previous is None:
            break
    return latest, list(papers.values())[:limit]
