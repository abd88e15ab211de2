"""preview_digest: the digest sending would send a subscriber for a day, printed, sent nowhere."""

import datetime
import json
import logging
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from digest.models import Delivery
from digest.services import curation
from digest.services.delivery import _render_cache, deliveries_plan, deliveries_send_chunk
from subscriptions.models import Subscriber
from tests.digest_support import SITE, trending_day
from tests.factories import SubscriberFactory, TrendingEntryFactory

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 3, 12)
MORNING = datetime.datetime(2026, 3, 12, 8, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = SITE
    settings.MATCHING_METHOD = "lexical"
    _render_cache.clear()


def _preview(email: str, *args) -> tuple[list[dict], str]:
    out, err = StringIO(), StringIO()
    call_command("preview_digest", "--email", email, "--date", DAY.isoformat(), "--json", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


def _send(subscriber) -> list[int]:
    deliveries_plan(now=MORNING, day=DAY, ignore_hour=True)
    delivery = Delivery.objects.get(subscriber=subscriber)
    deliveries_send_chunk(delivery_ids=[delivery.pk], now=MORNING)
    delivery.refresh_from_db()
    return delivery.paper_ids


def test_it_previews_the_frozen_edition_with_a_pin_made_since_exactly_as_sending_sends_it(smtp_sink):
    trending_day(day=DAY, count=8)
    first = SubscriberFactory(digest_size=5)
    _send(first)  # freezes the edition
    TrendingEntryFactory(date=DAY, rank=1)  # imported after the freeze: not in this edition
    pinned = TrendingEntryFactory(date=DAY - datetime.timedelta(days=2)).paper
    curation.papers_pin(paper_ids=[pinned.pk])
    reader = SubscriberFactory(digest_size=5, email="x@example.org")

    previewed, _ = _preview("x@example.org")

    assert previewed[0]["paper_id"] == pinned.pk and previewed[0]["pinned"]
    assert [row["paper_id"] for row in previewed] == _send(reader)


@pytest.mark.parametrize("status", [Subscriber.Status.UNSUBSCRIBED, Subscriber.Status.SUPPRESSED])
def test_it_says_on_stderr_that_an_unsubscribed_or_suppressed_reader_would_get_nothing(status):
    trending_day(day=DAY, count=3)
    SubscriberFactory(email="gone@example.org", status=status)
    rows, notes = _preview("gone@example.org")  # stdout stays one JSON array
    assert len(rows) == 3
    assert f"gone@example.org is {status.label.lower()}: sending sends them nothing" in notes


def test_after_a_send_it_says_the_reader_has_the_edition_and_leaves_out_what_they_got(smtp_sink):
    trending_day(day=DAY, count=8)
    reader = SubscriberFactory(digest_size=5, email="x@example.org")
    sent = _send(reader)
    rows, notes = _preview("x@example.org")
    assert "already has the 2026-03-12 edition (sent)" in notes
    assert not {row["paper_id"] for row in rows} & set(sent)


def test_a_date_without_trending_papers_fails_as_send_digests_does():
    trending_day(day=DAY, count=3)
    SubscriberFactory(email="x@example.org")
    with pytest.raises(CommandError, match="No trending papers on 2026-03-11: nothing to send"):
        call_command("preview_digest", "--email", "x@example.org", "--date", "2026-03-11", stdout=StringIO())


def test_the_lexical_index_logs_no_debug_lines_when_settings_say_warning(settings):
    from digest.matching.lexical import LexicalIndex

    LexicalIndex([("Robot learning", "Robots learn to grasp.")])
    assert settings.LOGGING["loggers"]["bm25s"]["level"] == "WARNING"
    assert not logging.getLogger("bm25s").isEnabledFor(logging.DEBUG)


def test_loading_the_embedding_model_draws_no_progress_bar():
    from digest.matching import semantic

    if not semantic.available():
        pytest.skip("the semantic extra (torch) is not installed")
    import transformers

    semantic.model()
    assert not transformers.utils.logging.is_progress_bar_enabled()


def test_it_says_a_reader_who_had_todays_digest_gets_no_second_one_that_day(smtp_sink):
    """A newer edition landed the same (local) day: sending plans nothing for them, and preview says so."""
    from django.utils import timezone

    later = DAY + datetime.timedelta(days=1)
    trending_day(day=DAY, count=8)
    reader = SubscriberFactory(digest_size=5, email="x@example.org", timezone="UTC", send_hour=6)
    _send(reader)  # planned now: today, their time
    trending_day(day=later, count=8)
    assert deliveries_plan(now=timezone.now(), day=later, ignore_hour=True).planned == 0  # send_digests --now

    _, notes = _preview("x@example.org", "--date", later.isoformat())

    assert "x@example.org has had today's digest" in notes
    assert "the next comes tomorrow at 06:00 (UTC)" in notes


@pytest.mark.parametrize("count, words", [(1, "on 2026-03-12: 1 paper\n"), (2, "on 2026-03-12: 2 papers\n")])
def test_the_printed_preview_counts_one_paper_and_two_papers(count, words):
    trending_day(day=DAY, count=count)
    SubscriberFactory(email="x@example.org", digest_size=5)
    out = StringIO()
    call_command("preview_digest", "--email", "x@example.org", "--date", DAY.isoformat(), stdout=out)
    assert f"Digest for x@example.org {words}" in out.getvalue()
