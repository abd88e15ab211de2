"""Sending health reaches the delivery ledger: held editions and re-queued transient failures."""

import datetime

import pytest

from digest.models import Delivery, Edition, WebhookEvent
from digest.services.curation import edition_release
from digest.services.delivery import deliveries_plan, deliveries_requeue, deliveries_send_chunk
from tests.digest_support import SITE, trending_day
from tests.factories import SubscriberFactory

DAY = datetime.date(2026, 3, 12)
MORNING = datetime.datetime(2026, 3, 12, 8, 0, tzinfo=datetime.UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = SITE
    settings.MATCHING_METHOD = "lexical"
    settings.DELIVERY_MAX_ATTEMPTS = 1


@pytest.fixture
def papers():
    return trending_day(day=DAY, count=8)


def _complaints_from_yesterday(sent: int, complaints: int):
    yesterday = MORNING - datetime.timedelta(days=1)
    old = Edition.objects.create(date=DAY - datetime.timedelta(days=1), status=Edition.Status.SENT)
    readers = SubscriberFactory.create_batch(sent)
    Delivery.objects.bulk_create(
        [Delivery(edition=old, subscriber=r, state=Delivery.State.SENT, sent_at=yesterday) for r in readers]
    )
    WebhookEvent.objects.bulk_create(
        [
            WebhookEvent(event_id=f"c{i}", event_type=WebhookEvent.Kind.COMPLAINT, recipient=readers[i].email, occurred_at=yesterday)
            for i in range(complaints)
        ]
    )


def test_complaints_above_the_hold_rate_hold_the_next_edition_and_plan_nothing(papers):
    _complaints_from_yesterday(sent=200, complaints=1)  # 0.5% > 0.3%
    SubscriberFactory()
    plan = deliveries_plan(now=MORNING)
    edition = Edition.objects.get(date=DAY)
    assert edition.status == Edition.Status.HELD and "complaints" in edition.hold_reason
    assert plan.planned == 0 and "held" in plan.note
    assert not Delivery.objects.filter(edition=edition).exists()


def test_a_released_edition_is_planned_despite_the_same_numbers(papers):
    _complaints_from_yesterday(sent=200, complaints=1)
    deliveries_plan(now=MORNING)
    edition_release(edition=Edition.objects.get(date=DAY))
    new_reader = SubscriberFactory()
    plan = deliveries_plan(now=MORNING)
    assert plan.planned >= 1
    assert Delivery.objects.filter(edition__date=DAY, subscriber=new_reader).exists()


def test_complaints_below_the_hold_rate_do_not_hold(papers):
    _complaints_from_yesterday(sent=2000, complaints=2)  # 0.1%
    SubscriberFactory()
    assert deliveries_plan(now=MORNING).planned == 1


def test_a_row_that_ran_out_of_retries_can_be_requeued_and_then_delivers_once(papers, smtp_sink):
    reader = SubscriberFactory()
    smtp_sink.reply = lambda rcpt: "451 4.3.0 try later"
    deliveries_plan(now=MORNING)
    delivery = Delivery.objects.get(subscriber=reader)
    deliveries_send_chunk(delivery_ids=[delivery.pk], now=MORNING)
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.FAILED and delivery.transient_error

    assert deliveries_requeue(delivery_ids=[delivery.pk]) == 1
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.PENDING and delivery.attempts == 0

    smtp_sink.reply = lambda rcpt: "250 OK"
    deliveries_send_chunk(delivery_ids=[delivery.pk], now=MORNING + datetime.timedelta(minutes=5))
    assert len(smtp_sink.to(reader.email)) == 1
    assert deliveries_requeue(delivery_ids=[delivery.pk]) == 0


def test_a_permanent_failure_is_never_requeued(papers, smtp_sink):
    reader = SubscriberFactory()
    smtp_sink.reply = lambda rcpt: "550 5.1.1 no such user"
    deliveries_plan(now=MORNING)
    delivery = Delivery.objects.get(subscriber=reader)
    deliveries_send_chunk(delivery_ids=[delivery.pk], now=MORNING)
    assert deliveries_requeue(delivery_ids=[delivery.pk]) == 0
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.FAILED
