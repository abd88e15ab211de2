"""The ESP tracking webhook: anymail's view behind basic auth, events stored once, bounces acted on."""

import base64
import datetime
import json

import pytest
from django.utils import timezone

from digest.models import WebhookEvent
from digest.services.tracking import tracking_event_process
from subscriptions.models import Subscriber, Suppression
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db

URL = "/anymail/postmark/tracking/"
SECRET = "hooks:s3cret-for-tests"


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}


def _auth(secret=SECRET) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def _bounce(email, *, id=1, type="HardBounce", record="Bounce", details="smtp;550 5.1.1 user unknown"):
    return {
        "RecordType": record, "ID": id, "Type": type, "Email": email, "MessageID": f"msg-{id}",
        "BouncedAt": timezone.now().isoformat(), "Description": "The server was unable to deliver", "Details": details,
    }


def _post(client, payload, django_capture_on_commit_callbacks, **auth):
    """POST the event; run what it queued after commit ourselves (the task's body), so the test sees the outcome."""
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(URL, data=json.dumps(payload), content_type="application/json", **auth)
    for event in WebhookEvent.objects.filter(processed_at__isnull=True):
        tracking_event_process(webhook_event_id=event.pk)
    return response, queued


def test_the_webhook_refuses_a_request_without_the_secret(client, django_capture_on_commit_callbacks):
    reader = SubscriberFactory()
    response, _ = _post(client, _bounce(reader.email), django_capture_on_commit_callbacks)
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Basic")
    wrong, _ = _post(client, _bounce(reader.email), django_capture_on_commit_callbacks, **_auth("hooks:guess"))
    assert wrong.status_code == 401
    assert not WebhookEvent.objects.exists()
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED


def test_a_hard_bounce_suppresses_at_once(client, django_capture_on_commit_callbacks):
    reader = SubscriberFactory()
    response, queued = _post(client, _bounce(reader.email), django_capture_on_commit_callbacks, **_auth())
    assert response.status_code == 200 and len(queued) == 1
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.SUPPRESSED
    assert Suppression.objects.filter(email=reader.email).exists()


def test_a_complaint_suppresses_at_once(client, django_capture_on_commit_callbacks):
    reader = SubscriberFactory()
    payload = _bounce(reader.email, record="SpamComplaint", type="SpamComplaint", id=7)
    _post(client, payload, django_capture_on_commit_callbacks, **_auth())
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.SUPPRESSED


def test_a_replayed_event_changes_nothing(client, django_capture_on_commit_callbacks):
    reader = SubscriberFactory()
    payload = _bounce(reader.email, type="SoftBounce", id=99, details="smtp;452 mailbox full")
    first, queued_first = _post(client, payload, django_capture_on_commit_callbacks, **_auth())
    again, queued_again = _post(client, payload, django_capture_on_commit_callbacks, **_auth())
    third, _ = _post(client, payload, django_capture_on_commit_callbacks, **_auth())
    assert first.status_code == again.status_code == third.status_code == 200
    assert (len(queued_first), len(queued_again)) == (1, 0)
    assert WebhookEvent.objects.count() == 1
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED  # one soft bounce, however often it is replayed


def test_three_soft_bounces_in_seven_days_suppress(client, django_capture_on_commit_callbacks):
    reader = SubscriberFactory()
    for n in (1, 2):
        _post(client, _bounce(reader.email, type="SoftBounce", id=n, details="smtp;452 full"),
              django_capture_on_commit_callbacks, **_auth())
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED
    _post(client, _bounce(reader.email, type="SoftBounce", id=3, details="smtp;421 later"),
          django_capture_on_commit_callbacks, **_auth())
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.SUPPRESSED


def test_soft_bounces_older_than_seven_days_do_not_count(client, django_capture_on_commit_callbacks):
    reader = SubscriberFactory()
    for n in (1, 2):
        _post(client, _bounce(reader.email, type="SoftBounce", id=n), django_capture_on_commit_callbacks, **_auth())
    WebhookEvent.objects.update(created_at=timezone.now() - datetime.timedelta(days=8))
    _post(client, _bounce(reader.email, type="SoftBounce", id=3), django_capture_on_commit_callbacks, **_auth())
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED


def test_an_unsubscribed_event_unsubscribes(client, django_capture_on_commit_callbacks):
    reader = SubscriberFactory()
    payload = {
        "RecordType": "SubscriptionChange", "MessageID": "msg-5", "Recipient": reader.email,
        "SuppressSending": True, "SuppressionReason": "ManualSuppression", "ChangedAt": timezone.now().isoformat(),
    }
    response, _ = _post(client, payload, django_capture_on_commit_callbacks, **_auth())
    assert response.status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED
    assert not Suppression.objects.filter(email=reader.email).exists()


def test_opens_and_deliveries_are_not_stored(client, django_capture_on_commit_callbacks):
    reader = SubscriberFactory()
    payload = {"RecordType": "Delivery", "MessageID": "m", "Recipient": reader.email,
               "DeliveredAt": timezone.now().isoformat(), "Details": "ok"}
    response, queued = _post(client, payload, django_capture_on_commit_callbacks, **_auth())
    assert response.status_code == 200 and not queued and not WebhookEvent.objects.exists()


def test_a_malformed_body_is_a_clean_400_not_a_500(client):
    response = client.post(URL, data="{not json", content_type="application/json", **_auth())
    assert response.status_code == 400


def test_the_event_task_run_twice_acts_once(client, django_capture_on_commit_callbacks):
    from digest.tasks.sending import tracking_event_process_task

    reader = SubscriberFactory()
    with django_capture_on_commit_callbacks(execute=False):
        client.post(URL, data=json.dumps(_bounce(reader.email, type="SoftBounce", id=5)),
                    content_type="application/json", **_auth())
    event = WebhookEvent.objects.get()
    assert tracking_event_process_task(event.pk).startswith("soft bounce 1")
    assert tracking_event_process_task(event.pk) == "already processed"


@pytest.mark.parametrize(
    "recipient",
    ["a" * 400 + "@example.org", "eve\x00@example.org", "not an address", "  "],
)
def test_an_event_for_a_malformed_address_is_answered_and_suppresses_nothing(
    client, django_capture_on_commit_callbacks, recipient
):
    """An ESP (or someone with the secret) may send anything as the address: no 500 (PostgreSQL
    refuses NUL characters and over-long values), no suppression row for something no reader has."""
    response, _ = _post(client, _bounce(recipient), django_capture_on_commit_callbacks, **_auth())
    assert response.status_code in (200, 400)
    assert not Suppression.objects.exists()


# --- what the events do to the sending-health figures and the hold --------


def _sent_yesterday(n: int) -> list:
    from digest.models import Delivery, Edition

    edition = Edition.objects.create(date=timezone.localdate() - datetime.timedelta(days=1), status=Edition.Status.SENT)
    readers = SubscriberFactory.create_batch(n)
    yesterday = timezone.now() - datetime.timedelta(days=1)
    Delivery.objects.bulk_create(
        [Delivery(edition=edition, subscriber=r, state=Delivery.State.SENT, sent_at=yesterday) for r in readers]
    )
    return readers


def test_a_complaint_through_the_webhook_counts_in_sending_health_and_holds_the_next_edition(
    client, django_capture_on_commit_callbacks
):
    from digest.models import Edition
    from digest.services.curation import edition_hold_if_unhealthy, sending_health

    readers = _sent_yesterday(200)
    complaint = _bounce(readers[0].email, record="SpamComplaint", type="SpamComplaint", id=7)
    _post(client, complaint, django_capture_on_commit_callbacks, **_auth())
    _post(client, _bounce(readers[1].email, id=8), django_capture_on_commit_callbacks, **_auth())

    health = sending_health()
    assert (health.sent, health.complaints, health.bounces) == (200, 1, 1)
    assert health.hold  # 1 in 200 is 0.5%, above the 0.3% hold rate
    edition = Edition.objects.create(date=timezone.localdate())
    assert edition_hold_if_unhealthy(edition=edition) is True
    assert Edition.objects.get(pk=edition.pk).status == Edition.Status.HELD


def test_the_health_page_shows_the_webhooks_bounces_and_complaints(client, django_capture_on_commit_callbacks):
    from django.urls import reverse

    from tests.admin_support import make_staff

    readers = _sent_yesterday(200)
    _post(client, _bounce(readers[0].email, record="SpamComplaint", type="SpamComplaint", id=7),
          django_capture_on_commit_callbacks, **_auth())
    _post(client, _bounce(readers[1].email, id=8), django_capture_on_commit_callbacks, **_auth())
    _post(client, _bounce(readers[2].email, id=9, type="SoftBounce", details="smtp;452 full"),
          django_capture_on_commit_callbacks, **_auth())

    client.force_login(make_staff("operator", "operators"))
    page = client.get(reverse("admin:digest_sending_health")).content.decode()
    assert "Bounces: <strong>2</strong>" in page
    assert "Complaints: <strong>1</strong>" in page
    assert "the next edition will be held" in page


# --- deferrals and soft bounces -------------------------------------------


def _deferral(email, *, id, message="msg-1"):
    # Postmark files a "Transient" bounce (a greylisting retry, a delay) as anymail's DEFERRED.
    return {**_bounce(email, id=id, type="Transient", details="smtp;451 4.7.1 greylisted, try again later"),
            "MessageID": message}


def test_deferrals_are_recorded_but_never_suppress(client, django_capture_on_commit_callbacks):
    reader = SubscriberFactory()
    for n in (1, 2, 3, 4):
        response, _ = _post(client, _deferral(reader.email, id=n), django_capture_on_commit_callbacks, **_auth())
        assert response.status_code == 200
    assert WebhookEvent.objects.filter(recipient=reader.email, event_type=WebhookEvent.Kind.DEFERRED).count() == 4
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED
    assert not Suppression.objects.filter(email=reader.email).exists()


def test_deferrals_are_not_bounces_in_sending_health(client, django_capture_on_commit_callbacks):
    from digest.services.curation import sending_health

    readers = _sent_yesterday(10)
    for n in (1, 2, 3):
        _post(client, _deferral(readers[0].email, id=n), django_capture_on_commit_callbacks, **_auth())
    assert sending_health().bounces == 0


def test_one_message_soft_bouncing_three_times_counts_once(client, django_capture_on_commit_callbacks):
    reader = SubscriberFactory()
    for n in (1, 2, 3):
        payload = {**_bounce(reader.email, type="SoftBounce", id=n, details="smtp;452 full"), "MessageID": "msg-same"}
        _post(client, payload, django_capture_on_commit_callbacks, **_auth())
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED
    # A third distinct message bouncing softly is the reader's mailbox, not one stuck message.
    for n, message in ((4, "msg-second"), (5, "msg-third")):
        payload = {**_bounce(reader.email, type="SoftBounce", id=n, details="smtp;452 full"), "MessageID": message}
        _post(client, payload, django_capture_on_commit_callbacks, **_auth())
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.SUPPRESSED
    assert "3 soft bounces" in Suppression.objects.get(email=reader.email).reason
