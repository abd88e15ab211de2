"""Curation services behind the admin: pin, hide, merge duplicates, sending health and the hold."""

import datetime

import pytest
from django.db import IntegrityError
from django.utils import timezone

from digest.models import Delivery, Edition, Paper, PaperTopic, SentPaper, TrendingEntry, WebhookEvent
from digest.services import curation, editions
from tests.factories import PaperFactory, SubscriberFactory, TopicFactory, TrendingEntryFactory

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 11, 20)


def test_pinning_unhides_and_moves_the_paper_to_the_front_of_an_open_edition():
    a, b, c = PaperFactory.create_batch(3)
    c.hidden = True
    c.save()
    edition = Edition.objects.create(date=DAY, paper_ids=[a.pk, b.pk])
    assert curation.papers_pin(paper_ids=[b.pk, c.pk]) == 2
    b.refresh_from_db()
    c.refresh_from_db()
    assert b.pinned and c.pinned and not c.hidden
    edition.refresh_from_db()
    assert edition.paper_ids == [b.pk, c.pk, a.pk]


def test_pinning_reaches_the_edition_still_sending_but_not_one_already_sent():
    a, b, c = PaperFactory.create_batch(3)
    sending = Edition.objects.create(date=DAY, paper_ids=[a.pk, b.pk], status=Edition.Status.SENDING)
    sent = Edition.objects.create(date=DAY - datetime.timedelta(days=1), paper_ids=[a.pk, b.pk], status="sent")
    curation.papers_pin(paper_ids=[c.pk, b.pk])
    sending.refresh_from_db()
    sent.refresh_from_db()
    assert sending.paper_ids == [c.pk, b.pk, a.pk]
    assert sent.paper_ids == [a.pk, b.pk]


def test_a_pin_made_while_an_edition_is_sending_leads_the_digests_it_has_not_sent_yet(smtp_sink, settings):
    """The edition froze (one reader got theirs) before the curator pinned a paper from another day."""
    settings.MATCHING_METHOD = "lexical"
    from digest.services.delivery import deliveries_plan, deliveries_send_chunk
    from subscriptions.models import Subscriber

    TrendingEntryFactory(date=DAY, rank=1)
    TrendingEntryFactory(date=DAY, rank=2)
    older = TrendingEntryFactory(date=DAY - datetime.timedelta(days=3), rank=1).paper
    now = timezone.make_aware(datetime.datetime(2026, 11, 20, 12, 0))
    first = SubscriberFactory(status=Subscriber.Status.CONFIRMED, digest_size=5)
    plan = deliveries_plan(now=now, day=DAY, ignore_hour=True)
    deliveries_send_chunk(delivery_ids=list(Delivery.objects.values_list("pk", flat=True)), now=now)
    assert older.pk not in Delivery.objects.get(subscriber=first).paper_ids

    curation.papers_pin(paper_ids=[older.pk])
    second = SubscriberFactory(status=Subscriber.Status.CONFIRMED, digest_size=5)
    deliveries_plan(now=now, day=DAY, ignore_hour=True)
    deliveries_send_chunk(delivery_ids=list(Delivery.objects.filter(subscriber=second).values_list("pk", flat=True)), now=now)
    assert Delivery.objects.get(subscriber=second).paper_ids[0] == older.pk
    assert older.pk not in Delivery.objects.get(subscriber=first).paper_ids
    assert plan.edition.pk == Delivery.objects.get(subscriber=second).edition_id


def _sending_edition(*papers):
    """An edition frozen (and sending) with these papers, each trending on its day."""
    for rank, paper in enumerate(papers, start=1):
        TrendingEntryFactory(paper=paper, date=DAY, rank=rank)
    return Edition.objects.create(
        date=DAY, paper_ids=[p.pk for p in papers], status=Edition.Status.SENDING, frozen_at=timezone.now()
    )


def test_unpinning_takes_a_paper_out_of_the_sending_edition_only_the_pin_had_put_it_in():
    a, b = PaperFactory.create_batch(2)
    edition = _sending_edition(a, b)
    from_last_week = PaperFactory()
    curation.papers_pin(paper_ids=[from_last_week.pk, b.pk])
    edition.refresh_from_db()
    assert (edition.paper_ids, edition.late_ids) == ([from_last_week.pk, b.pk, a.pk], [from_last_week.pk])

    assert curation.papers_pin(paper_ids=[from_last_week.pk, b.pk], pinned=False) == 2

    edition.refresh_from_db()
    assert edition.paper_ids == [b.pk, a.pk]  # b was in the list when it froze: it stays
    assert edition.late_ids == []


def test_unpinning_keeps_a_late_paper_that_trended_on_the_editions_day():
    a = PaperFactory()
    edition = _sending_edition(a)
    late = TrendingEntryFactory(date=DAY, rank=2).paper
    editions.edition_late_papers_add(days=[DAY])
    curation.papers_pin(paper_ids=[late.pk])
    curation.papers_pin(paper_ids=[late.pk], pinned=False)
    edition.refresh_from_db()
    assert edition.paper_ids == [late.pk, a.pk] and edition.late_ids == [late.pk]


def test_unpinning_leaves_a_sent_edition_and_the_ledger_of_readers_who_got_the_pinned_paper():
    a = PaperFactory()
    sending = _sending_edition(a)
    pinned = PaperFactory()
    curation.papers_pin(paper_ids=[pinned.pk])
    reader = SubscriberFactory()
    delivery = Delivery.objects.create(
        edition=sending, subscriber=reader, state=Delivery.State.SENT, paper_ids=[pinned.pk, a.pk], reasons=[[], []]
    )
    SentPaper.objects.create(subscriber=reader, paper=pinned, delivery=delivery, sent_on=DAY)
    sent = Edition.objects.create(
        date=DAY - datetime.timedelta(days=1), status=Edition.Status.SENT, frozen_at=timezone.now(),
        paper_ids=[pinned.pk], late_ids=[pinned.pk],
    )  # fmt: skip

    curation.papers_pin(paper_ids=[pinned.pk], pinned=False)

    sending.refresh_from_db()
    sent.refresh_from_db()
    delivery.refresh_from_db()
    assert sending.paper_ids == [a.pk]
    assert (sent.paper_ids, sent.late_ids) == ([pinned.pk], [pinned.pk])
    assert delivery.paper_ids == [pinned.pk, a.pk]
    assert SentPaper.objects.filter(subscriber=reader, paper=pinned).exists()


def test_a_pinned_paper_hidden_then_shown_again_does_not_return_to_the_sending_edition():
    """Hiding unpins: shown again, the paper is an ordinary one of another day."""
    a = PaperFactory()
    edition = _sending_edition(a)
    pinned = PaperFactory()
    curation.papers_pin(paper_ids=[pinned.pk])
    curation.papers_hide(paper_ids=[pinned.pk])
    curation.papers_hide(paper_ids=[pinned.pk], hidden=False)
    edition.refresh_from_db()
    assert (edition.paper_ids, edition.late_ids) == ([a.pk], [])


def test_readers_sent_after_an_unpin_do_not_get_the_paper_the_pin_had_added(smtp_sink, settings):
    settings.MATCHING_METHOD = "lexical"
    from digest.services.delivery import deliveries_plan, deliveries_send_chunk
    from subscriptions.models import Subscriber

    TrendingEntryFactory(date=DAY, rank=1)
    TrendingEntryFactory(date=DAY, rank=2)
    older = PaperFactory(title="Koala distillation", abstract="We distil koala models into smaller koala models.")
    TrendingEntryFactory(paper=older, date=DAY - datetime.timedelta(days=3), rank=1)
    now = timezone.make_aware(datetime.datetime(2026, 11, 20, 12, 0))

    def send_to_a_new_reader():
        # Readers who would want it: only the edition's list keeps it from them.
        reader = SubscriberFactory(status=Subscriber.Status.CONFIRMED, digest_size=5, interests="koala distillation")
        deliveries_plan(now=now, day=DAY, ignore_hour=True)
        delivery = Delivery.objects.get(subscriber=reader)
        deliveries_send_chunk(delivery_ids=[delivery.pk], now=now)
        delivery.refresh_from_db()
        return delivery.paper_ids

    send_to_a_new_reader()
    curation.papers_pin(paper_ids=[older.pk])
    assert older.pk in send_to_a_new_reader()
    curation.papers_pin(paper_ids=[older.pk], pinned=False)
    assert older.pk not in send_to_a_new_reader()


def test_hiding_unpins_and_removes_the_paper_from_open_editions_only():
    a, b = PaperFactory.create_batch(2, pinned=True)
    draft = Edition.objects.create(date=DAY, paper_ids=[a.pk, b.pk])
    sent = Edition.objects.create(date=DAY - datetime.timedelta(days=1), paper_ids=[a.pk, b.pk], status="sent")
    assert curation.papers_hide(paper_ids=[a.pk]) == 1
    a.refresh_from_db()
    assert a.hidden and not a.pinned
    draft.refresh_from_db()
    sent.refresh_from_db()
    assert draft.paper_ids == [b.pk]
    assert sent.paper_ids == [a.pk, b.pk]
    assert curation.papers_hide(paper_ids=[a.pk], hidden=False) == 1
    assert not Paper.objects.get(pk=a.pk).hidden


def _duplicates():
    keep = PaperFactory(title="Scaling robot learning", arxiv_id="2411.00001", code_url="")
    dup = PaperFactory(title="Scaling Robot-Learning (extended version)", arxiv_id=None, code_url="https://github.com/x/y", upvotes=99)
    return keep, dup


def test_merge_keeps_trending_records_of_both_and_combines_same_day_same_source():
    keep, dup = _duplicates()
    TrendingEntryFactory(paper=keep, date=DAY, source="hf", rank=5, upvotes=10)
    TrendingEntryFactory(paper=dup, date=DAY, source="hf", rank=2, upvotes=40)  # same (date, source)
    TrendingEntryFactory(paper=dup, date=DAY, source="trending-page", rank=3)
    TrendingEntryFactory(paper=dup, date=DAY - datetime.timedelta(days=1), source="hf", rank=7)

    result = curation.papers_merge(keep=keep, duplicates=[dup])

    assert not Paper.objects.filter(pk=dup.pk).exists()
    entries = {(e.date, e.source): (e.rank, e.upvotes) for e in TrendingEntry.objects.filter(paper=keep)}
    assert entries == {
        (DAY, "hf"): (2, 40),
        (DAY, "trending-page"): (3, 10),
        (DAY - datetime.timedelta(days=1), "hf"): (7, 10),
    }
    assert (result.trending_moved, result.trending_combined) == (2, 1)


def test_merge_keeps_sent_history_so_nobody_gets_the_paper_twice():
    keep, dup = _duplicates()
    alice, bob, carol = SubscriberFactory.create_batch(3)
    SentPaper.objects.create(subscriber=alice, paper=keep, sent_on=DAY)
    SentPaper.objects.create(subscriber=alice, paper=dup, sent_on=DAY - datetime.timedelta(days=3))  # both
    SentPaper.objects.create(subscriber=bob, paper=dup, sent_on=DAY)

    result = curation.papers_merge(keep=keep, duplicates=[dup])

    rows = {s.subscriber_id: s.sent_on for s in SentPaper.objects.filter(paper=keep)}
    assert rows == {alice.pk: DAY - datetime.timedelta(days=3), bob.pk: DAY}
    assert carol.pk not in rows
    assert (result.sent_moved, result.sent_combined) == (1, 1)
    with pytest.raises(IntegrityError):  # the constraint the merge had to respect is still there
        SentPaper.objects.create(subscriber=bob, paper=keep, sent_on=DAY)


def test_merge_fills_gaps_from_the_duplicate_and_rewrites_paper_lists():
    keep, dup = _duplicates()
    keep.arxiv_id = None
    keep.save()
    dup.arxiv_id = "2411.99999"
    dup.save()
    topic = TopicFactory()
    PaperTopic.objects.create(paper=keep, topic=topic, score=0.2)
    PaperTopic.objects.create(paper=dup, topic=topic, score=0.8, override=True)
    edition = Edition.objects.create(date=DAY, paper_ids=[dup.pk, keep.pk])
    subscriber = SubscriberFactory()
    delivery = Delivery.objects.create(edition=edition, subscriber=subscriber, paper_ids=[dup.pk])

    curation.papers_merge(keep=keep, duplicates=[dup])

    keep.refresh_from_db()
    assert keep.arxiv_id == "2411.99999"
    assert keep.code_url == "https://github.com/x/y"
    assert keep.upvotes == 99
    pt = PaperTopic.objects.get(paper=keep, topic=topic)
    assert (pt.score, pt.override) == (0.8, True)
    edition.refresh_from_db()
    delivery.refresh_from_db()
    assert edition.paper_ids == [keep.pk]
    assert delivery.paper_ids == [keep.pk]


def test_merging_two_papers_one_digest_carried_keeps_each_remaining_paper_with_its_own_reasons():
    """Delivery.reasons is parallel to paper_ids: dropping the duplicate from one and not the other
    shifted every later paper onto the reasons of the one before it."""
    keep, dup = _duplicates()
    other, last = PaperFactory.create_batch(2)
    edition = Edition.objects.create(date=DAY, paper_ids=[dup.pk, other.pk, keep.pk, last.pk], status="sent")
    both = Delivery.objects.create(
        edition=edition, subscriber=SubscriberFactory(), state=Delivery.State.SENT,
        paper_ids=[dup.pk, other.pk, keep.pk, last.pk],
        reasons=[["topic: Robots"], ["trending #2 today"], ["matches your interest 'robot learning'"], ["trending #4 today"]],
    )  # fmt: skip
    dup_only = Delivery.objects.create(
        edition=edition, subscriber=SubscriberFactory(), state=Delivery.State.SENT,
        paper_ids=[other.pk, dup.pk, last.pk], reasons=[["trending #2 today"], ["topic: Robots"], ["trending #4 today"]],
    )  # fmt: skip
    before_reasons = Delivery.objects.create(
        edition=edition, subscriber=SubscriberFactory(), state=Delivery.State.SENT,
        paper_ids=[dup.pk, keep.pk, last.pk], reasons=[],
    )  # fmt: skip

    curation.papers_merge(keep=keep, duplicates=[dup])

    both.refresh_from_db()
    assert list(zip(both.paper_ids, both.reasons)) == [
        (other.pk, ["trending #2 today"]),
        (keep.pk, ["matches your interest 'robot learning'"]),
        (last.pk, ["trending #4 today"]),
    ]
    dup_only.refresh_from_db()
    assert list(zip(dup_only.paper_ids, dup_only.reasons)) == [
        (other.pk, ["trending #2 today"]), (keep.pk, ["topic: Robots"]), (last.pk, ["trending #4 today"]),
    ]  # fmt: skip
    before_reasons.refresh_from_db()
    assert (before_reasons.paper_ids, before_reasons.reasons) == ([keep.pk, last.pk], [])


def test_merging_a_pinned_duplicate_into_a_hidden_paper_leaves_it_hidden_and_not_pinned():
    """Hidden wins: a hide keeps the paper out of every email, a pin only promotes it."""
    keep, dup = _duplicates()
    keep.hidden = True
    keep.save()
    dup.pinned = True
    dup.save()

    result = curation.papers_merge(keep=keep, duplicates=[dup])

    keep.refresh_from_db()
    assert keep.hidden and not keep.pinned
    assert result.pin_dropped


def test_merging_a_pinned_duplicate_into_a_shown_paper_pins_it():
    keep, dup = _duplicates()
    dup.pinned = True
    dup.save()
    result = curation.papers_merge(keep=keep, duplicates=[dup])
    keep.refresh_from_db()
    assert keep.pinned and not keep.hidden and not result.pin_dropped


def test_merge_of_a_paper_with_itself_is_refused_and_changes_nothing():
    keep, _ = _duplicates()
    with pytest.raises(curation.MergeError):
        curation.papers_merge(keep=keep, duplicates=[keep])
    assert Paper.objects.filter(pk=keep.pk).exists()


def test_the_survivor_is_the_paper_with_an_arxiv_id():
    keep, dup = _duplicates()
    TrendingEntryFactory(paper=dup, date=DAY, source="hf")  # more trending days does not beat an arXiv id
    assert curation.papers_choose_survivor(papers=[dup, keep]) == keep


def _sent(n: int, *, when: datetime.datetime):
    edition = Edition.objects.create(date=when.date(), status=Edition.Status.SENT)
    subscribers = SubscriberFactory.create_batch(n)
    Delivery.objects.bulk_create(
        [Delivery(edition=edition, subscriber=s, state=Delivery.State.SENT, sent_at=when) for s in subscribers]
    )


def _complaints(n: int, *, when: datetime.datetime):
    WebhookEvent.objects.bulk_create(
        [WebhookEvent(event_id=f"c{i}-{when.timestamp()}", event_type=WebhookEvent.Kind.COMPLAINT, occurred_at=when) for i in range(n)]
    )


NOW = datetime.datetime(2026, 11, 21, 6, 0, tzinfo=datetime.UTC)


def test_health_warns_above_a_tenth_of_a_percent_of_complaints_but_does_not_hold():
    _sent(1000, when=NOW - datetime.timedelta(days=1))
    _complaints(2, when=NOW - datetime.timedelta(hours=5))  # 0.2%
    health = curation.sending_health(now=NOW)
    assert health.warning and not health.hold
    edition = Edition.objects.create(date=NOW.date())
    assert curation.edition_hold_if_unhealthy(edition=edition, now=NOW) is False
    assert edition.status == Edition.Status.DRAFT


def test_complaints_older_than_seven_days_do_not_count():
    _sent(1000, when=NOW - datetime.timedelta(days=1))
    _complaints(10, when=NOW - datetime.timedelta(days=8))
    health = curation.sending_health(now=NOW)
    assert health.complaints == 0 and not health.warning


def test_above_three_tenths_of_a_percent_the_next_edition_is_held_until_an_operator_releases_it():
    _sent(1000, when=NOW - datetime.timedelta(days=2))
    _complaints(4, when=NOW - datetime.timedelta(days=1))  # 0.4%
    edition = Edition.objects.create(date=NOW.date())
    assert curation.edition_hold_if_unhealthy(edition=edition, now=NOW) is True
    edition.refresh_from_db()
    assert edition.status == Edition.Status.HELD
    assert "0.40%" in edition.hold_reason
    # Held stays held.
    assert curation.edition_hold_if_unhealthy(edition=edition, now=NOW) is True

    assert curation.edition_release(edition=edition) is True
    assert edition.status == Edition.Status.DRAFT and edition.released_at is not None
    # Released: the same numbers do not hold it again.
    assert curation.edition_hold_if_unhealthy(edition=edition, now=NOW) is False
    assert Edition.objects.get(pk=edition.pk).status == Edition.Status.DRAFT


def test_an_edition_already_sending_is_never_held():
    _sent(100, when=NOW - datetime.timedelta(days=1))
    _complaints(5, when=NOW - datetime.timedelta(days=1))
    edition = Edition.objects.create(date=NOW.date(), status=Edition.Status.SENDING)
    assert curation.edition_hold_if_unhealthy(edition=edition, now=NOW) is False


def test_health_with_nothing_sent_is_quiet():
    health = curation.sending_health(now=timezone.now())
    assert (health.sent, health.complaint_rate, health.warning, health.hold) == (0, 0.0, False, False)


def test_subscribers_over_time_walk_back_from_todays_confirmed_count():
    now = datetime.datetime(2026, 11, 21, 12, 0, tzinfo=datetime.UTC)
    day = datetime.timedelta(days=1)
    for confirmed_at in (now - 3 * day, now - 3 * day, now - day):
        SubscriberFactory(confirmed_at=confirmed_at)
    SubscriberFactory(status="unsubscribed", confirmed_at=now - 3 * day, unsubscribed_at=now)
    SubscriberFactory(status="pending")
    report = curation.sending_health_report(now=now, days=5)
    totals = [(row["day"].day, row["total"]) for row in report["series"]]
    # 3 joined on the 18th (one left on the 21st), 1 joined on the 20th.
    assert totals == [(17, 0), (18, 3), (19, 3), (20, 4), (21, 3)]
    assert dict(report["by_status"])["Confirmed"] == 3
