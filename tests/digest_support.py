"""Helpers shared by the delivery, email, webhook and e2e tests (not fixtures of other areas)."""

import datetime

from digest.models import Edition
from digest.services.editions import edition_freeze
from tests.factories import PaperFactory, SubscriberFactory, TrendingEntryFactory

SITE = "https://paperboy.example.org"


def trending_day(*, day: datetime.date, count: int, **paper_kwargs) -> list:
    papers = []
    for rank in range(1, count + 1):
        kwargs = dict(paper_kwargs)
        if "title" in kwargs:  # titles are unique (fingerprint): number repeated ones
            kwargs["title"] = f"{kwargs['title']} {day:%Y%m%d}-{rank}"
        paper = PaperFactory(upvotes=100 - rank, **kwargs)
        TrendingEntryFactory(paper=paper, date=day, rank=rank, upvotes=100 - rank)
        papers.append(paper)
    return papers


def frozen_edition(*, day: datetime.date, count: int = 30, **paper_kwargs) -> Edition:
    trending_day(day=day, count=count, **paper_kwargs)
    return edition_freeze(day=day)


def subscribers(n: int, **kwargs) -> list:
    return SubscriberFactory.create_batch(n, **kwargs)
