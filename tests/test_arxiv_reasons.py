"""arXiv items carry no trending signal: their rank is the position in a feed sorted by
submission date. A paper seen only on arXiv that day is "new on arXiv", never "trending #3",
and the top-up fills with papers that really trend first."""

import datetime
import re

import pytest

from digest import matching
from digest.models import Paper
from digest.services.delivery import _render_cache, digest_render
from digest.services.editions import edition_freeze, edition_ranks
from tests.digest_support import SITE
from tests.factories import PaperFactory, SubscriberFactory, TrendingEntryFactory

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 12, 2)


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = SITE
    settings.MATCHING_METHOD = "lexical"
    _render_cache.clear()


def _entry(source: str, rank: int, title: str, day: datetime.date = DAY, upvotes: int | None = None) -> Paper:
    paper = PaperFactory(title=title, upvotes=0 if source == "arxiv" else 50 - rank)
    TrendingEntryFactory(
        paper=paper, date=day, rank=rank, source=source, upvotes=0 if source == "arxiv" else 50 - rank
    )
    return paper


@pytest.fixture
def mixed_day():
    arxiv = [_entry("arxiv", rank, f"A toy model of boundary states {rank}") for rank in (1, 2, 3)]
    hf = [_entry("hf", rank, f"Scaling laws for sparse mixtures {rank}") for rank in (1, 2, 3)]
    return arxiv, hf


def _picks(subscriber, day=DAY, **kwargs):
    return matching.select_for_subscriber(subscriber=subscriber, day=day, **kwargs)


def test_the_top_up_takes_papers_that_really_trend_first_and_calls_arxiv_ones_new(mixed_day):
    arxiv, hf = mixed_day
    reader = SubscriberFactory(digest_size=5, interests="protein folding")
    picks = _picks(reader, candidate_ids=edition_freeze(day=DAY).paper_ids)
    assert [p.paper_id for p in picks] == [*(p.pk for p in hf), arxiv[0].pk, arxiv[1].pk]
    assert [p.reasons for p in picks] == [
        ["trending #1 today"], ["trending #2 today"], ["trending #3 today"],
        ["new on arXiv today"], ["new on arXiv today"],
    ]
    assert [p.rank_in_reasons for p in picks] == [1, 2, 3, None, None]


def test_a_day_of_arxiv_papers_alone_is_new_on_arxiv_not_trending():
    papers = [_entry("arxiv", rank, f"A toy model of boundary states {rank}") for rank in range(1, 6)]
    reader = SubscriberFactory(digest_size=5, interests="protein folding")
    picks = _picks(reader, candidate_ids=edition_freeze(day=DAY).paper_ids)
    assert [p.paper_id for p in picks] == [p.pk for p in papers]
    assert all(p.reasons == ["new on arXiv today"] for p in picks)


def test_a_matching_arxiv_paper_is_not_called_trending(mixed_day):
    arxiv, hf = mixed_day
    reader = SubscriberFactory(digest_size=5, interests="boundary states")
    picks = [p for p in _picks(reader) if p.paper_id in {a.pk for a in arxiv}]
    assert len(picks) == 3 and all(p.reasons[0].endswith("your interest 'boundary states'") for p in picks)
    assert not any("trending" in reason for p in picks for reason in p.reasons)


def test_a_paper_on_arxiv_and_hf_keeps_its_hf_rank():
    paper = _entry("hf", 2, "Scaling laws for sparse mixtures")
    TrendingEntryFactory(paper=paper, date=DAY, rank=1, source="arxiv", upvotes=0)
    _entry("hf", 1, "Diffusion models for everything")
    reader = SubscriberFactory(digest_size=5, interests="protein folding")
    picks = _picks(reader)
    assert [p.reasons for p in picks] == [["trending #1 today"], ["trending #2 today"]]
    assert picks[1].paper_id == paper.pk
    assert edition_ranks(edition=edition_freeze(day=DAY))[paper.pk] == 2


def test_a_weekly_reader_is_not_told_an_arxiv_paper_trends_this_week():
    arxiv = _entry("arxiv", 1, "A toy model of boundary states", day=DAY - datetime.timedelta(days=2))
    hf = _entry("hf", 1, "Scaling laws for sparse mixtures")
    reader = SubscriberFactory(digest_size=5, interests="protein folding")
    picks = _picks(reader, candidate_ids=[hf.pk, arxiv.pk], window_days=7)
    assert [p.reasons for p in picks] == [["trending #1 this week"], ["new on arXiv this week"]]


def test_the_email_and_the_edition_page_give_no_trending_rank_to_an_arxiv_paper(client, mixed_day):
    arxiv, hf = mixed_day
    edition = edition_freeze(day=DAY)
    assert arxiv[0].pk not in edition_ranks(edition=edition) and edition_ranks(edition=edition)[hf[0].pk] == 1
    # The edition lists the papers that trend first.
    assert edition.paper_ids[:3] == [p.pk for p in hf]

    reader = SubscriberFactory(digest_size=5, interests="boundary states")
    picks = _picks(reader, candidate_ids=edition.paper_ids)[:1]
    rendered, _ = digest_render(subscriber=reader, edition=edition, picks=picks, ranks=edition_ranks(edition=edition))
    assert "trending" not in rendered.text

    html = client.get(f"/digest/{DAY.isoformat()}/").content.decode()
    assert arxiv[0].title in html and not re.search(r"#\d+ trending", html)  # the HF papers show their votes


def test_the_signup_page_shows_arxiv_papers_as_new_not_with_zero_votes(client, mixed_day):
    arxiv, hf = mixed_day
    html = client.get("/").content.decode()
    assert html.index(hf[2].title) < html.index(arxiv[0].title)  # what trends comes first
    assert "▲</span> 0" not in html
    assert "new on arXiv" in html
