"""Sending health reaches the delivery ledger: held editions and re-queued transient failures."""

import datetime

import pytest
import requests
import time_machine
from anymail.exceptions import AnymailAPIError
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, transaction

from digest.models import Delivery, Edition, WebhookEvent
from digest.services.curation import edition_hold_if_unhealthy, edition_release, sending_health
from digest.services.delivery import SERVER_REJECTED, deliveries_plan, deliveries_requeue, deliveries_send_chunk
from tests.digest_support import SITE, trending_day
from subscriptions.models import Subscriber, Suppression
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


def test_send_digests_on_a_held_edition_fails_saying_why_and_how_to_release_it(papers):
    from io import StringIO

    from django.core.management import CommandError, call_command

    _complaints_from_yesterday(sent=200, complaints=1)
    SubscriberFactory()
    with time_machine.travel(MORNING, tick=False), pytest.raises(CommandError) as failure:
        call_command("send_digests", "--now", stdout=StringIO())
    assert "is held: " in str(failure.value) and "complaints" in str(failure.value)
    assert "Release held editions" in str(failure.value)
    assert not Delivery.objects.filter(edition__date=DAY).exists()


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
    assert delivery.state == Delivery.State.FAILED and delivery.transient_error and not delivery.rejected

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
    assert delivery.state == Delivery.State.FAILED and not delivery.rejected


# --- the mail server refusing the message itself (not a reader's address) ---

NOT_VERIFIED = "554 Message rejected: Email address is not verified. The following identities failed the check"


@pytest.fixture(params=["django.core.mail.backends.smtp.EmailBackend", "digest.mail.smtp.EmailBackend"])
def rejecting_smtp(request, smtp_sink, settings):
    """A real SMTP server that accepts every recipient and then refuses each message at DATA, as
    Amazon SES does for a sender it has not verified; with Django's backend and with ours."""
    settings.EMAIL_BACKEND = request.param
    smtp_sink.on_data = lambda envelope: NOT_VERIFIED
    return smtp_sink


def test_a_message_refused_at_data_fails_its_delivery_but_suppresses_no_reader(papers, rejecting_smtp, caplog):
    readers = SubscriberFactory.create_batch(3)
    deliveries_plan(now=MORNING)
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    with caplog.at_level("ERROR", logger="digest.services.delivery"):
        result = deliveries_send_chunk(delivery_ids=ids, now=MORNING)

    assert (result.sent, result.failed) == (0, 3)
    assert not Suppression.objects.exists()
    assert all(r.status == Subscriber.Status.CONFIRMED for r in Subscriber.objects.filter(pk__in=[r.pk for r in readers]))
    for delivery in Delivery.objects.all():
        assert delivery.state == Delivery.State.FAILED and delivery.rejected and delivery.transient_error
        assert "rejected the message" in delivery.last_error and "554" in delivery.last_error
    # An error for the operator, not a quiet warning per reader.
    assert any(r.levelname == "ERROR" and "554" in r.getMessage() for r in caplog.records)


def test_once_the_mail_settings_are_fixed_the_refused_deliveries_can_be_requeued_and_go_out_once(
    papers, rejecting_smtp
):
    readers = SubscriberFactory.create_batch(2)
    deliveries_plan(now=MORNING)
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    deliveries_send_chunk(delivery_ids=ids, now=MORNING)

    rejecting_smtp.on_data = None  # the sender is verified now
    assert deliveries_requeue(delivery_ids=ids) == 2
    later = MORNING + datetime.timedelta(minutes=10)
    assert deliveries_send_chunk(delivery_ids=ids, now=later).sent == 2
    assert deliveries_send_chunk(delivery_ids=ids, now=later).sent == 0
    assert [len(rejecting_smtp.to(r.email)) for r in readers] == [1, 1]


def test_when_the_server_refuses_most_messages_sending_health_holds_the_next_edition(papers, rejecting_smtp):
    SubscriberFactory.create_batch(3)
    deliveries_plan(now=MORNING)
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    deliveries_send_chunk(delivery_ids=ids, now=MORNING)

    # Failures and sends are stamped with the real clock, whatever `now` planned them.
    health = sending_health()
    assert (health.sent, health.rejected) == (0, 3) and health.hold
    assert any("rejected by the mail server" in m for m in health.messages)
    tomorrow = Edition.objects.create(date=DAY + datetime.timedelta(days=1))
    assert edition_hold_if_unhealthy(edition=tomorrow) is True
    tomorrow.refresh_from_db()
    assert tomorrow.status == Edition.Status.HELD and "rejected by the mail server" in tomorrow.hold_reason


def test_one_message_refused_among_many_sent_does_not_hold(papers, smtp_sink):
    readers = SubscriberFactory.create_batch(4)
    refused = readers[0].email
    smtp_sink.on_data = lambda envelope: NOT_VERIFIED if refused in envelope.rcpt_tos else None
    deliveries_plan(now=MORNING)
    deliveries_send_chunk(delivery_ids=list(Delivery.objects.values_list("id", flat=True)), now=MORNING)
    health = sending_health()
    assert (health.sent, health.rejected, health.hold) == (3, 1, False)


def test_the_health_page_shows_the_refused_messages_and_the_hold(papers, rejecting_smtp, client):
    from django.urls import reverse

    from tests.admin_support import make_staff

    SubscriberFactory.create_batch(2)
    deliveries_plan(now=MORNING)
    deliveries_send_chunk(delivery_ids=list(Delivery.objects.values_list("id", flat=True)), now=MORNING)
    client.force_login(make_staff("operator", "operators"))
    page = client.get(reverse("admin:digest_sending_health")).content.decode()
    assert "Rejected by the mail server: <strong>2</strong>" in page
    assert '/admin/digest/delivery/?failure=rejected">failed deliveries</a>' in page
    assert "no reader was suppressed" in page and "the next edition will be held" in page


class ESPRefusingOurSender(BaseEmailBackend):
    """An ESP answering every send with a 4xx about our account, as Postmark does for a From
    address it has not confirmed: the request is refused, not the reader."""

    def send_messages(self, email_messages):
        response = requests.Response()
        response.status_code, response.reason = 422, "Unprocessable Entity"
        response._content = b'{"ErrorCode": 400, "Message": "The From address has not been confirmed"}'
        raise AnymailAPIError("The From address has not been confirmed", status_code=422, response=response,
                              esp_name="Postmark")  # fmt: skip


def test_an_esp_refusing_our_request_fails_the_delivery_as_rejected_and_suppresses_nobody(papers, settings):
    settings.EMAIL_BACKEND = "tests.test_delivery_health.ESPRefusingOurSender"
    reader = SubscriberFactory()
    deliveries_plan(now=MORNING)
    result = deliveries_send_chunk(delivery_ids=list(Delivery.objects.values_list("id", flat=True)), now=MORNING)

    delivery = Delivery.objects.get(subscriber=reader)
    assert result.failed == 1 and delivery.state == Delivery.State.FAILED and delivery.rejected
    assert "ESP API error 422" in delivery.last_error
    assert not Suppression.objects.exists()
    assert sending_health().rejected == 1


# --- the record of a refusal is the `rejected` field, not the words in last_error ---


def _failed_delivery(*, rejected: bool, last_error: str) -> Delivery:
    edition, _ = Edition.objects.get_or_create(date=DAY, defaults={"status": Edition.Status.SENDING})
    return Delivery.objects.create(edition=edition, subscriber=SubscriberFactory(), state=Delivery.State.FAILED,
                                   transient_error=True, rejected=rejected, last_error=last_error)  # fmt: skip


def test_refusals_are_counted_and_hold_the_next_edition_whatever_their_last_error_now_says():
    _failed_delivery(rejected=True, last_error="554 5.7.1 sender not verified")  # the wording changed
    _failed_delivery(rejected=True, last_error="gave up after 6 attempts: 451 try later")  # rewritten since

    health = sending_health()
    assert (health.sent, health.rejected, health.hold) == (0, 2, True)
    tomorrow = Edition.objects.create(date=DAY + datetime.timedelta(days=1))
    assert edition_hold_if_unhealthy(edition=tomorrow) is True


def test_a_failure_whose_text_only_reads_like_a_refusal_is_not_counted_and_holds_nothing():
    for _ in range(2):
        _failed_delivery(rejected=False, last_error=f"{SERVER_REJECTED} 554 but recorded as a temporary failure")

    health = sending_health()
    assert (health.rejected, health.hold, health.warning) == (0, False, False)
    tomorrow = Edition.objects.create(date=DAY + datetime.timedelta(days=1))
    assert edition_hold_if_unhealthy(edition=tomorrow) is False


def test_a_requeued_refusal_is_no_longer_one_and_its_next_attempt_decides_what_it_is(papers, rejecting_smtp):
    SubscriberFactory.create_batch(2)
    deliveries_plan(now=MORNING)
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    deliveries_send_chunk(delivery_ids=ids, now=MORNING)
    assert sending_health().rejected == 2

    assert deliveries_requeue(delivery_ids=ids) == 2
    assert not Delivery.objects.filter(rejected=True).exists()
    assert sending_health().rejected == 0
    # The server's words stay until the next attempt writes its own.
    assert all(d.last_error.startswith(SERVER_REJECTED) for d in Delivery.objects.all())

    rejecting_smtp.on_data = lambda envelope: "451 4.3.0 try later"  # and the retries run out
    deliveries_send_chunk(delivery_ids=ids, now=MORNING + datetime.timedelta(minutes=10))
    assert [(d.state, d.transient_error, d.rejected) for d in Delivery.objects.all()] == [
        (Delivery.State.FAILED, True, False)
    ] * 2
    assert sending_health().rejected == 0


def test_the_database_refuses_a_rejected_flag_on_a_row_that_may_not_be_requeued():
    edition = Edition.objects.create(date=DAY)
    for state in (Delivery.State.PENDING, Delivery.State.SENT):
        with pytest.raises(IntegrityError), transaction.atomic():
            Delivery.objects.create(edition=edition, subscriber=SubscriberFactory(), state=state,
                                    transient_error=True, rejected=True)  # fmt: skip
    # Nor on a failure of the address (it is never re-queued).
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(edition=edition, subscriber=SubscriberFactory(), state=Delivery.State.FAILED,
                                transient_error=False, rejected=True)  # fmt: skip


def test_a_row_inserted_by_the_previous_release_is_not_a_refusal():
    """The release phase migrates while the old workers still plan: their INSERT names no `rejected`."""
    from django.db import connection
    from django.utils import timezone

    edition, reader, now = Edition.objects.create(date=DAY), SubscriberFactory(), timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO digest_delivery (edition_id, subscriber_id, state, attempts, message_id, paper_ids, reasons, "
            "last_error, transient_error, created_at, updated_at) VALUES (%s, %s, 'pending', 0, '', '[]', '[]', '', %s, %s, %s)",
            [edition.pk, reader.pk, False, now, now],
        )
    assert Delivery.objects.get(subscriber=reader).rejected is False


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_migration_0015_marks_as_rejected_exactly_the_refusals_the_old_prefix_recorded():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("digest", "0014_edition_late_ids")], [("digest", "0015_delivery_rejected")]
    edition = Edition.objects.create(date=DAY)
    readers = SubscriberFactory.create_batch(5)
    refused = f"{SERVER_REJECTED} 554 Message rejected: Email address is not verified."
    rows = {
        "refused": dict(state="failed", transient_error=True, last_error=refused),
        "refused by the ESP": dict(state="failed", transient_error=True, last_error=f"{SERVER_REJECTED} ESP API error 422: x"),
        "retries ran out": dict(state="failed", transient_error=True, last_error="gave up after 6 attempts: 451 later"),
        "address refused": dict(state="failed", transient_error=False, last_error="recipient refused: 550 no such user"),
        "re-queued refusal": dict(state="pending", transient_error=True, last_error=refused),
    }
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        OldDelivery = executor.loader.project_state(before).apps.get_model("digest", "Delivery")
        ids = {name: OldDelivery.objects.create(edition_id=edition.pk, subscriber_id=reader.pk, **fields).pk
               for (name, fields), reader in zip(rows.items(), readers)}  # fmt: skip
        MigrationExecutor(connection).migrate(after)  # a fresh loader: the first still counts 0015 applied
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    marked = {name for name, pk in ids.items() if Delivery.objects.get(pk=pk).rejected}
    assert marked == {"refused", "refused by the ESP"}
    assert Delivery.objects.get(pk=ids["refused"]).last_error == refused  # the words stay


# ---------------------------------------------------------------- papers that stopped coming

# Planning sends the latest edition however old (the demo's sample days): operators are told instead.
STALE = "The newest papers are from 12 Mar, 5 days ago: is fetching running?"


def _health_page(client) -> str:
    from django.urls import reverse

    from tests.admin_support import make_staff

    client.force_login(make_staff("operator", "operators"))
    return client.get(reverse("admin:digest_sending_health")).content.decode()


@time_machine.travel(datetime.datetime(2026, 3, 17, 9, tzinfo=datetime.UTC), tick=False)
def test_the_health_page_warns_when_the_newest_papers_are_days_old(papers, client):
    assert STALE in _health_page(client)


@pytest.mark.parametrize("today, warned", [(datetime.date(2026, 3, 14), False), (datetime.date(2026, 3, 15), True)])
def test_papers_two_days_old_are_no_warning_three_days_are(papers, client, today, warned):
    with time_machine.travel(datetime.datetime.combine(today, datetime.time(23), tzinfo=datetime.UTC), tick=False):
        assert ("12 Mar, 3 days ago: is fetching running?" in _health_page(client)) is warned


@time_machine.travel(datetime.datetime(2026, 3, 17, 9, tzinfo=datetime.UTC), tick=False)
def test_send_digests_warns_when_it_plans_an_edition_days_old_and_still_plans_it(papers):
    from io import StringIO

    from django.core.management import call_command

    SubscriberFactory.create_batch(2)
    out, err = StringIO(), StringIO()
    call_command("send_digests", "--now", stdout=out, stderr=err)
    assert "Edition 2026-03-12" in out.getvalue() and "2 deliveries planned" in out.getvalue()
    assert err.getvalue().strip() == STALE


@time_machine.travel(datetime.datetime(2026, 3, 13, 9, tzinfo=datetime.UTC), tick=False)
def test_send_digests_says_nothing_of_fetching_when_the_papers_are_recent(papers):
    from io import StringIO

    from django.core.management import call_command

    SubscriberFactory.create_batch(2)
    err = StringIO()
    call_command("send_digests", "--now", stdout=StringIO(), stderr=err)
    assert err.getvalue() == ""
