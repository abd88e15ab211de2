"""Planning, claiming, sending and recording deliveries: the services, against a real SMTP server."""

import datetime
import io
import json

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from digest.models import Delivery, Edition, SentPaper
from digest.services.delivery import (
    delivery_claim,
    deliveries_claim,
    deliveries_lease_extend,
    deliveries_plan,
    deliveries_reconcile,
    deliveries_send_chunk,
    RenderCache,
    _render_cache,
    retry_delay_seconds,
    subscribers_due,
)
from digest.matching import select_for_subscriber
from digest.services.editions import WEEK_DAYS, edition_freeze, edition_week_candidate_ids
from subscriptions.models import Subscriber, Suppression
from tests.digest_support import SITE, trending_day
from tests.admin_support import operator, operator_client  # noqa: F401
from tests.factories import PaperFactory, SubscriberFactory, TrendingEntryFactory

DAY = datetime.date(2026, 3, 12)
# 08:00 UTC on the edition's day.
MORNING = datetime.datetime(2026, 3, 12, 8, 0, tzinfo=datetime.UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = SITE
    settings.MATCHING_METHOD = "lexical"  # matching has its own tests; this spares the torch import
    settings.DELIVERY_RETRY_BASE_SECONDS = 30
    settings.DELIVERY_LEASE_SECONDS = 300
    # Rolled-back tests reuse ids (and frozen clocks reuse timestamps): start each with no cached renders.
    _render_cache.clear()


@pytest.fixture
def papers():
    return trending_day(day=DAY, count=12)


def _plan(now=MORNING, **kwargs):
    return deliveries_plan(now=now, **kwargs)


def _send_all(now=MORNING):
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    return deliveries_send_chunk(delivery_ids=ids, now=now)


# ---------------------------------------------------------------- planning


def test_it_plans_readers_whose_local_send_hour_has_come(papers):
    early_utc = SubscriberFactory(timezone="UTC", send_hour=7)
    later_utc = SubscriberFactory(timezone="UTC", send_hour=9)
    tokyo = SubscriberFactory(timezone="Asia/Tokyo", send_hour=16)  # 17:00 in Tokyo at 08:00 UTC
    new_york = SubscriberFactory(timezone="America/New_York", send_hour=7)  # 04:00 there
    plan = _plan()
    planned = set(Delivery.objects.values_list("subscriber_id", flat=True))
    assert planned == {early_utc.pk, tokyo.pk}
    assert plan.planned == 2 and plan.edition.date == DAY
    assert later_utc.pk not in planned and new_york.pk not in planned


def test_weekly_readers_get_it_on_their_weekday_only(papers):
    thursday = SubscriberFactory(frequency=Subscriber.Frequency.WEEKLY, weekday=3)  # 2026-03-12 is a Thursday
    monday = SubscriberFactory(frequency=Subscriber.Frequency.WEEKLY, weekday=0)
    _plan()
    assert set(Delivery.objects.values_list("subscriber_id", flat=True)) == {thursday.pk}
    assert monday.pk not in set(Delivery.objects.values_list("subscriber_id", flat=True))


def test_send_digests_now_skips_the_hour_but_not_a_weekly_readers_weekday(papers):
    thursday = SubscriberFactory(frequency=Subscriber.Frequency.WEEKLY, weekday=3, send_hour=23)  # DAY is a Thursday
    monday = SubscriberFactory(frequency=Subscriber.Frequency.WEEKLY, weekday=0, send_hour=0)
    out = io.StringIO()
    with time_machine.travel(MORNING, tick=False):
        call_command("send_digests", "--now", stdout=out)
    assert set(Delivery.objects.values_list("subscriber_id", flat=True)) == {thursday.pk}
    assert monday.pk not in set(Delivery.objects.values_list("subscriber_id", flat=True))
    assert "1 reader due" in out.getvalue()


@time_machine.travel(MORNING, tick=False)  # sent on the edition's day
def test_a_weekly_digest_is_the_weeks_papers_not_the_days(papers, smtp_sink):
    """A weekly reader's digest ranks what trended on any of the seven days up to the edition's,
    and says so; a daily reader on the same day gets that day's papers only."""
    monday = DAY - datetime.timedelta(days=3)
    robots = PaperFactory(title="Learning Dexterous Robot Manipulation", abstract="Robot manipulation policies.")
    TrendingEntryFactory(paper=robots, date=monday, rank=4, upvotes=50)
    hidden = PaperFactory(title="Robot Manipulation, Retracted", abstract="Robot manipulation policies.", hidden=True)
    TrendingEntryFactory(paper=hidden, date=monday, rank=1, upvotes=99)
    long_ago = PaperFactory(title="Robot Manipulation from Last Month", abstract="Robot manipulation policies.")
    TrendingEntryFactory(paper=long_ago, date=DAY - datetime.timedelta(days=7), rank=1, upvotes=90)
    weekly = SubscriberFactory(
        frequency=Subscriber.Frequency.WEEKLY, weekday=DAY.weekday(), interests="robot manipulation", digest_size=5
    )
    daily = SubscriberFactory(interests="robot manipulation", digest_size=5)
    out = io.StringIO()
    call_command("preview_digest", "--email", weekly.email, "--date", DAY.isoformat(), "--json", stdout=out)
    assert json.loads(out.getvalue())[0]["paper_id"] == robots.pk
    _plan()
    assert _send_all().sent == 2

    weekly_ids = Delivery.objects.get(subscriber=weekly).paper_ids
    assert weekly_ids[0] == robots.pk and long_ago.pk not in weekly_ids and hidden.pk not in weekly_ids
    assert robots.pk not in Delivery.objects.get(subscriber=daily).paper_ids
    [message] = smtp_sink.to(weekly.email)
    text = message.part("text/plain")
    reasons = [line for line in text.splitlines() if line.strip().startswith("Why:")]
    assert "Learning Dexterous Robot Manipulation" in text and "this week" in text
    assert reasons and not any("today" in line for line in reasons)  # (abstracts are random text)
    # ...and says it is the week's, not the day's, from the subject line and preheader on.
    assert message.subject.startswith(f"Paperboy: 5 papers for the week to {DAY:%-d %b %Y}")
    assert "1 paper for your interests, and 4 trending this week" in message.part("text/html")
    assert text.startswith(f"Paperboy · The week to {DAY:%A}")
    [daily_message] = smtp_sink.to(daily.email)
    assert "week" not in daily_message.subject
    assert "Nothing matched your interests today" in daily_message.part("text/html")
    # Ranked again (a re-run, or preview_digest afterwards), the week leaves out what they got.
    picks = select_for_subscriber(
        subscriber=weekly, day=DAY, candidate_ids=edition_week_candidate_ids(day=DAY), window_days=WEEK_DAYS
    )
    assert robots.pk not in [p.paper_id for p in picks]


def test_it_skips_paused_unconfirmed_and_suppressed_readers(papers):
    ok = SubscriberFactory()
    SubscriberFactory(paused_until=DAY + datetime.timedelta(days=3))
    SubscriberFactory(status=Subscriber.Status.PENDING)
    SubscriberFactory(status=Subscriber.Status.UNSUBSCRIBED)
    SubscriberFactory(status=Subscriber.Status.SUPPRESSED)
    bounced = SubscriberFactory()
    Suppression.objects.create(email=bounced.email, reason="hard bounce")
    _plan()
    assert list(Delivery.objects.values_list("subscriber_id", flat=True)) == [ok.pk]


def test_planning_twice_plans_nothing_new(papers):
    SubscriberFactory.create_batch(5)
    first = _plan()
    second = _plan(now=MORNING + datetime.timedelta(minutes=15))
    assert (first.planned, second.planned) == (5, 0)
    assert Delivery.objects.count() == 5


def test_a_day_without_new_papers_sends_nothing(papers):
    SubscriberFactory.create_batch(3)
    _plan()
    # The next morning: no trending papers for the 13th, so the latest edition is still the 12th.
    plan = _plan(now=MORNING + datetime.timedelta(days=1))
    assert plan.planned == 0 and plan.edition.date == DAY
    assert Delivery.objects.count() == 3


def test_one_digest_per_local_day_even_if_a_newer_edition_lands(papers):
    reader = SubscriberFactory()
    _plan()
    trending_day(day=DAY + datetime.timedelta(days=1), count=3)
    # Same UTC day, later: the 13th's papers exist (fetched early), but the reader already got one today.
    plan = _plan(now=MORNING + datetime.timedelta(hours=10), day=DAY + datetime.timedelta(days=1))
    assert plan.planned == 0
    assert Delivery.objects.filter(subscriber=reader).count() == 1


def test_a_held_edition_plans_nothing(papers):
    SubscriberFactory()
    Edition.objects.create(date=DAY, status=Edition.Status.HELD, hold_reason="bounce rate")
    plan = _plan()
    assert plan.planned == 0 and "held" in plan.note


def test_the_edition_is_frozen_with_pins_first_and_hides_removed(papers):
    hidden = papers[0]
    hidden.hidden = True
    hidden.save()
    pinned = PaperFactory(pinned=True)
    edition = edition_freeze(day=DAY)
    assert edition.paper_ids[0] == pinned.pk
    assert hidden.pk not in edition.paper_ids
    assert edition.paper_ids[1:] == [p.pk for p in papers[1:]]
    # Later curation does not change a frozen edition.
    papers[1].hidden = True
    papers[1].save()
    assert edition_freeze(day=DAY).paper_ids == edition.paper_ids


def test_a_render_cache_keeps_the_most_recently_used_renders():
    cache = RenderCache(size=2)
    cache["a"], cache["b"] = 1, 2
    assert cache.get("a") == 1  # a is now the most recent
    cache["c"] = 3
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


# ---------------------------------------------------------------- claiming


def test_only_one_caller_claims_a_row(papers):
    SubscriberFactory()
    _plan()
    delivery = Delivery.objects.get()
    assert delivery_claim(delivery_id=delivery.pk, now=MORNING) is True
    assert delivery_claim(delivery_id=delivery.pk, now=MORNING) is False
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.SENDING and delivery.attempts == 1


def test_an_expired_lease_can_be_claimed_again(papers, settings):
    SubscriberFactory()
    _plan()
    delivery = Delivery.objects.get()
    assert delivery_claim(delivery_id=delivery.pk, now=MORNING)
    later = MORNING + datetime.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS + 1)
    assert delivery_claim(delivery_id=delivery.pk, now=later)
    delivery.refresh_from_db()
    assert delivery.attempts == 2


def test_a_batch_claim_returns_only_the_rows_this_caller_flipped(papers, settings):
    SubscriberFactory.create_batch(5)
    _plan()
    ids = sorted(Delivery.objects.values_list("pk", flat=True))
    assert delivery_claim(delivery_id=ids[0], now=MORNING)  # another worker holds the first row
    Delivery.objects.filter(pk=ids[1]).update(state=Delivery.State.SENT)
    Delivery.objects.filter(pk=ids[2]).update(lease_until=MORNING + datetime.timedelta(minutes=5))  # retry not due

    won, lease = deliveries_claim(delivery_ids=ids, now=MORNING)
    assert won == ids[3:]
    assert lease == MORNING + datetime.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    assert deliveries_claim(delivery_ids=ids, now=MORNING)[0] == []  # a second worker gets nothing
    rows = {d.pk: d for d in Delivery.objects.all()}
    assert [rows[i].attempts for i in ids] == [1, 0, 0, 1, 1]
    assert all(rows[i].state == Delivery.State.SENDING and rows[i].lease_until == lease for i in ids[3:])

    later = MORNING + datetime.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS + 1)
    assert deliveries_claim(delivery_ids=ids, now=later)[0] == [ids[0], ids[2], ids[3], ids[4]]


def test_renewing_a_lease_keeps_only_rows_still_held_under_it(papers, settings):
    SubscriberFactory.create_batch(3)
    _plan()
    ids = sorted(Delivery.objects.values_list("pk", flat=True))
    won, lease = deliveries_claim(delivery_ids=ids, now=MORNING)
    # The lease ran out on the last row and another worker took it over.
    later = MORNING + datetime.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS + 1)
    assert deliveries_claim(delivery_ids=[ids[2]], now=later)[0] == [ids[2]]

    soon = MORNING + datetime.timedelta(seconds=10)
    kept, new_lease = deliveries_lease_extend(delivery_ids=won, lease_until=lease, now=soon)
    assert kept == {ids[0], ids[1]}
    assert new_lease > lease
    assert set(Delivery.objects.filter(lease_until=new_lease).values_list("pk", flat=True)) == {ids[0], ids[1]}


# ---------------------------------------------------------------- sending


def test_it_sends_each_planned_digest_once_and_records_it(papers, smtp_sink):
    readers = SubscriberFactory.create_batch(3, digest_size=5)
    _plan()
    result = _send_all()
    again = _send_all()
    assert (result.sent, again.sent) == (3, 0)
    for reader in readers:
        [message] = smtp_sink.to(reader.email)
        delivery = Delivery.objects.get(subscriber=reader)
        assert delivery.state == Delivery.State.SENT and delivery.sent_at
        assert delivery.message_id == message.message["Message-ID"].strip()
        assert len(delivery.paper_ids) == 5
        assert set(SentPaper.objects.filter(subscriber=reader).values_list("paper_id", flat=True)) == set(
            delivery.paper_ids
        )


def test_a_chunk_costs_a_fixed_number_of_queries_plus_its_records(papers, smtp_sink):
    """No per-reader lookups hide in sending (a deferred field read, a lazy relation): only the
    per-message record and one claim per CLAIM_BATCH grow with the chunk."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from digest.services.delivery import CLAIM_BATCH

    def queries_for(n):
        Subscriber.objects.all().delete()  # and their deliveries
        SubscriberFactory.create_batch(n, interests="robots")
        _plan()
        ids = list(Delivery.objects.filter(state=Delivery.State.PENDING).order_by("id").values_list("id", flat=True))
        with CaptureQueriesContext(connection) as ctx:
            assert deliveries_send_chunk(delivery_ids=ids, now=MORNING).sent == n
        return len(ctx.captured_queries)

    queries_for(2)  # warms the day's index
    small, large = queries_for(CLAIM_BATCH), queries_for(2 * CLAIM_BATCH)
    per_record = 1 if connection.vendor == "postgresql" else 4  # SQLite: a transaction around UPDATE + INSERT
    per_claim = 3  # the UPDATE ... RETURNING and, inside the test's transaction, its savepoint
    assert large - small == CLAIM_BATCH * per_record + per_claim


def test_one_smtp_connection_serves_a_whole_chunk(papers, smtp_sink, monkeypatch):
    from django.core.mail.backends.smtp import EmailBackend

    opened = []
    original = EmailBackend.open

    def counting_open(self):
        if self.connection is None:  # a new TCP connection, not the no-op check on an open one
            opened.append(1)
        return original(self)

    monkeypatch.setattr(EmailBackend, "open", counting_open)
    SubscriberFactory.create_batch(6)
    _plan()
    assert _send_all().sent == 6
    assert len(smtp_sink.messages) == 6
    assert len(opened) == 1


def test_451_then_250_delivers_once(papers, smtp_sink):
    reader = SubscriberFactory()
    answers = iter(["451 4.3.0 try again later", "250 OK"])
    smtp_sink.reply = lambda rcpt: next(answers, "250 OK")
    _plan()
    first = _send_all()
    delivery = Delivery.objects.get()
    assert first.retrying == 1 and delivery.state == Delivery.State.PENDING and delivery.transient_error
    assert "451" in delivery.last_error
    # Not before its retry time...
    assert _send_all(now=MORNING + datetime.timedelta(seconds=1)).sent == 0
    # ...then it goes out, once.
    assert _send_all(now=delivery.lease_until + datetime.timedelta(seconds=1)).sent == 1
    assert _send_all(now=delivery.lease_until + datetime.timedelta(seconds=2)).sent == 0
    assert len(smtp_sink.to(reader.email)) == 1
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.SENT and delivery.attempts == 2


def test_550_marks_the_row_failed_and_suppresses_the_address(papers, smtp_sink):
    bad = SubscriberFactory(email="nobody@example.com")
    good = SubscriberFactory()
    smtp_sink.reply = lambda rcpt: "550 5.1.1 no such user" if rcpt == bad.email else "250 OK"
    _plan()
    result = _send_all()
    assert (result.sent, result.failed) == (1, 1)
    delivery = Delivery.objects.get(subscriber=bad)
    assert delivery.state == Delivery.State.FAILED and "550" in delivery.last_error
    assert Suppression.objects.filter(email=bad.email).exists()
    bad.refresh_from_db()
    assert bad.status == Subscriber.Status.SUPPRESSED
    assert len(smtp_sink.to(good.email)) == 1 and not smtp_sink.to(bad.email)
    assert not SentPaper.objects.filter(subscriber=bad).exists()


def test_a_dead_smtp_server_is_a_transient_error(papers, settings):
    SubscriberFactory()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    _plan()
    result = _send_all()
    delivery = Delivery.objects.get()
    assert result.retrying == 1 and delivery.state == Delivery.State.PENDING and "connection" in delivery.last_error


def test_it_gives_up_after_the_last_attempt_without_suppressing(papers, smtp_sink, settings):
    settings.DELIVERY_MAX_ATTEMPTS = 2
    reader = SubscriberFactory()
    smtp_sink.reply = lambda rcpt: "421 4.7.0 busy"
    _plan()
    _send_all()
    delivery = Delivery.objects.get()
    _send_all(now=delivery.lease_until + datetime.timedelta(seconds=1))
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.FAILED and "gave up" in delivery.last_error
    assert not Suppression.objects.filter(email=reader.email).exists()


def test_nothing_is_sent_after_the_cutoff(papers, smtp_sink, settings):
    SubscriberFactory()
    _plan()
    late = Delivery.objects.get().created_at + datetime.timedelta(hours=settings.EDITION_SEND_CUTOFF_HOURS, minutes=1)
    result = _send_all(now=late)
    assert result.skipped == 1 and not smtp_sink.messages
    assert Delivery.objects.get().state == Delivery.State.SKIPPED


def test_a_reader_who_unsubscribed_after_planning_gets_nothing(papers, smtp_sink):
    reader = SubscriberFactory()
    _plan()
    Subscriber.objects.filter(pk=reader.pk).update(status=Subscriber.Status.UNSUBSCRIBED)
    assert _send_all().sent == 0
    assert Delivery.objects.get().state == Delivery.State.SKIPPED and not smtp_sink.messages


def test_retry_delays_grow_with_jitter_and_stay_below_the_visibility_timeout(settings):
    settings.DELIVERY_RETRY_BASE_SECONDS = 60
    settings.CELERY_VISIBILITY_TIMEOUT = 3600
    delays = [retry_delay_seconds(attempts=n) for n in range(1, 12)]
    assert 30 <= delays[0] <= 60
    assert all(d <= 1800 for d in delays)
    assert len({round(retry_delay_seconds(attempts=3), 3) for _ in range(20)}) > 1


# ---------------------------------------------------------------- reconciling


def test_the_reconciler_requeues_expired_leases_and_skips_what_is_too_late(papers, settings):
    SubscriberFactory.create_batch(2)
    _plan()
    stuck, late = Delivery.objects.order_by("id")
    assert delivery_claim(delivery_id=stuck.pk, now=MORNING)  # then the worker died
    Delivery.objects.filter(pk=late.pk).update(created_at=MORNING - datetime.timedelta(hours=20))
    out = deliveries_reconcile(now=MORNING + datetime.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS + 1))
    assert out.requeued == 1 and out.skipped == 1
    assert Delivery.objects.get(pk=late.pk).state == Delivery.State.SKIPPED


def test_a_row_waiting_in_a_long_queue_is_requeued_once_per_lease_period_not_every_round(papers, settings):
    SubscriberFactory.create_batch(3)
    _plan()
    lease = datetime.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    Delivery.objects.update(updated_at=MORNING)
    first = deliveries_reconcile(now=MORNING + lease + datetime.timedelta(seconds=1))
    again = deliveries_reconcile(now=MORNING + lease + datetime.timedelta(seconds=61))
    later = deliveries_reconcile(now=MORNING + 2 * lease + datetime.timedelta(seconds=2))
    assert (first.requeued, again.requeued, later.requeued) == (3, 0, 3)


def test_subscribers_due_uses_few_queries(papers, django_assert_max_num_queries):
    SubscriberFactory.create_batch(20)
    edition = edition_freeze(day=DAY)
    with django_assert_max_num_queries(2):
        assert len(subscribers_due(now=MORNING, edition=edition)) == 20


# ---------------------------------------------------------------- the operator's command


def test_send_digests_plans_and_says_what_it_planned(papers, settings):
    from io import StringIO

    from django.core.management import call_command

    SubscriberFactory.create_batch(3, send_hour=23)  # not due yet: --now plans them anyway
    out = StringIO()
    call_command("send_digests", "--now", "--date", "2026-03-12", stdout=out)
    assert "Edition 2026-03-12" in out.getvalue() and "3 deliveries planned" in out.getvalue()
    again = StringIO()
    call_command("send_digests", "--now", "--date", "2026-03-12", stdout=again)
    assert "0 deliveries planned" in again.getvalue()
    assert Delivery.objects.count() == 3


@pytest.mark.parametrize("date, message", [("2026-13-01", "is not a date like"), ("2026-03-11", "No trending papers")])
def test_send_digests_rejects_a_bad_date_cleanly(papers, date, message):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=message):
        call_command("send_digests", "--date", date)
    assert not Delivery.objects.exists()


def test_the_planning_task_run_twice_plans_once_and_the_chunk_task_run_twice_sends_once(papers, smtp_sink):
    import time_machine

    from digest.tasks.sending import deliveries_plan_task, deliveries_send_chunk_task

    reader = SubscriberFactory()
    with time_machine.travel(MORNING, tick=False):
        first, second = deliveries_plan_task(), deliveries_plan_task()
    assert (first["planned"], second["planned"]) == (1, 0)
    ids = list(Delivery.objects.values_list("id", flat=True))
    with time_machine.travel(MORNING + datetime.timedelta(minutes=1), tick=False):
        assert deliveries_send_chunk_task(ids)["sent"] == 1
        assert deliveries_send_chunk_task(ids)["sent"] == 0
    assert len(smtp_sink.to(reader.email)) == 1


def test_the_delivery_keeps_why_each_paper_was_sent_and_the_admin_shows_it(papers, smtp_sink, operator_client):
    """Ranking again can't say why a reader got a paper (the ledger leaves it out then): the
    delivery row keeps each paper's reasons, as the email gave them."""
    from django.urls import reverse

    robots = PaperFactory(title="Learning Dexterous Robot Manipulation", abstract="Robot manipulation policies.")
    TrendingEntryFactory(paper=robots, date=DAY, rank=13, upvotes=1)
    reader = SubscriberFactory(interests="robot manipulation", digest_size=5)
    _plan()
    assert _send_all().sent == 1
    delivery = Delivery.objects.get(subscriber=reader)
    assert len(delivery.reasons) == len(delivery.paper_ids) == 5
    assert delivery.paper_ids[0] == robots.pk
    assert any("robot manipulation" in why for why in delivery.reasons[0])
    assert all(any("trending" in why for why in reasons) for reasons in delivery.reasons[1:])
    page = operator_client.get(reverse("admin:digest_delivery_change", args=[delivery.pk])).content.decode()
    assert "Learning Dexterous Robot Manipulation" in page and "robot manipulation" in page


def test_send_digests_says_why_nobody_is_due(papers):
    from django.core.management import call_command

    import time_machine

    SubscriberFactory.create_batch(2)
    out = io.StringIO()
    with time_machine.travel(MORNING, tick=False):
        call_command("send_digests", "--now", stdout=out)
        call_command("send_digests", "--now", stdout=(again := io.StringIO()))
    assert "2 readers due" in out.getvalue()
    assert "0 readers due" in again.getvalue()
    assert "Of 2 confirmed readers, 2 already have this edition." in again.getvalue()


def test_send_digests_now_says_a_weekly_reader_waits_for_their_day(papers):
    SubscriberFactory(frequency=Subscriber.Frequency.WEEKLY, weekday=0)  # DAY is a Thursday
    out = io.StringIO()
    with time_machine.travel(MORNING, tick=False):
        call_command("send_digests", "--now", stdout=out)
    assert "0 readers due" in out.getvalue()
    assert (
        "Of 1 confirmed reader, 0 already have this edition; the other 1 had a digest today (one a day, their time), "
        "is paused, or reads weekly on another day."
    ) in out.getvalue()


@time_machine.travel(MORNING, tick=False)  # sent on the edition's day
def test_a_weekly_digest_numbers_its_papers_by_the_week_in_reasons_and_meta_lines_alike(smtp_sink):
    """Each day has a #1: a weekly reader's email must not print the edition day's "trending #1" for one
    paper under another's "trending #1 this week"."""
    monday = DAY - datetime.timedelta(days=3)
    # All match the reader's interest: reasons cite the top three ranks, the meta lines the others.
    week_top = PaperFactory(title="Monday's favourite on knowledge distillation", upvotes=0)
    TrendingEntryFactory(paper=week_top, date=monday, rank=1, upvotes=90)
    day_papers = []
    for rank in range(1, 5):
        paper = PaperFactory(title=f"Knowledge distillation, Thursday paper {rank}", upvotes=0)  # no votes: the meta line shows the rank
        TrendingEntryFactory(paper=paper, date=DAY, rank=rank, upvotes=80 - rank)
        day_papers.append(paper)
    weekly = SubscriberFactory(frequency=Subscriber.Frequency.WEEKLY, weekday=DAY.weekday(), digest_size=5,
                               interests="knowledge distillation")
    _plan()
    assert _send_all().sent == 1
    [message] = smtp_sink.to(weekly.email)
    text = " ".join(message.part("text/plain").split())  # the Why line wraps at 71 columns
    import re

    # Reasons and meta lines say a rank in the same words (editions.trending_rank_words).
    shown = [int(n) for n in re.findall(r"#(\d+)", text)]
    assert sorted(shown) == [1, 2, 3, 4, 5], text
    assert sorted(int(n) for n in re.findall(r"trending #(\d+) this week", text)) == [1, 2, 3, 4, 5], text


def test_a_stored_address_idna_cannot_encode_fails_alone_and_the_rest_of_its_chunk_is_sent_once(papers, smtp_sink):
    first = SubscriberFactory(email="first@example.org")
    # Stored before the forms refused such domains (the model's save leaves it as typed).
    bad = SubscriberFactory(email="yan@" + "ö" * 61 + ".org")
    SubscriberFactory(email="hans@straße.example")
    _plan()
    result = _send_all()
    assert (result.sent, result.failed) == (2, 1)
    delivery = Delivery.objects.get(subscriber=bad)
    assert delivery.state == Delivery.State.FAILED and "IDNA" in delivery.last_error
    assert not delivery.transient_error  # permanent: not re-queued
    bad.refresh_from_db()
    assert bad.status == Subscriber.Status.SUPPRESSED  # no later edition plans it again
    assert sorted(rcpt for m in smtp_sink.messages for rcpt in m.rcpt_tos) == [
        "first@example.org", "hans@xn--strae-oqa.example"]
    # Nothing left claimed for the reconciler to send again.
    assert set(Delivery.objects.values_list("state", flat=True)) == {Delivery.State.SENT, Delivery.State.FAILED}
    later = MORNING + datetime.timedelta(hours=1)
    assert deliveries_reconcile(now=later).requeued == 0
    assert _send_all(now=later).sent == 0
    assert len(smtp_sink.messages) == 2 and smtp_sink.to(first.email) and not smtp_sink.to(bad.email)
