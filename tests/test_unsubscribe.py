"""Leaving: RFC 8058 one-click (List-Unsubscribe on every email), the unsubscribe page, suppression and the purge of unconfirmed signups."""

import datetime
import re

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from digest.tasks.subscribers import subscribers_purge_unconfirmed_task
from subscriptions import services
from subscriptions.links import manage_url, unsubscribe_url
from subscriptions.models import Subscriber, Suppression
from subscriptions.tokens import Purpose, TokenError, token_read
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


@pytest.fixture
def strict_client():
    """A client that enforces CSRF and has no cookies: what a mailbox provider's one-click POST looks like."""
    return Client(enforce_csrf_checks=True)


def test_one_click_post_urlencoded_without_cookies_unsubscribes_and_answers_200(strict_client):
    subscriber = SubscriberFactory()
    response = strict_client.post(
        _path(unsubscribe_url(subscriber)),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "Location" not in response
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert subscriber.unsubscribe_source == "one-click"
    assert subscriber.unsubscribed_at is not None


def test_one_click_post_multipart_also_unsubscribes(strict_client):
    subscriber = SubscriberFactory()
    response = strict_client.post(_path(unsubscribe_url(subscriber)), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED


def test_one_click_twice_is_still_200_and_keeps_the_first_record(strict_client):
    subscriber = SubscriberFactory()
    url = _path(unsubscribe_url(subscriber))
    strict_client.post(url, data={"List-Unsubscribe": "One-Click"})
    first = Subscriber.objects.get(pk=subscriber.pk).unsubscribed_at
    assert strict_client.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert Subscriber.objects.get(pk=subscriber.pk).unsubscribed_at == first


@pytest.mark.parametrize("method", ["get", "head"])
def test_get_shows_a_button_and_never_unsubscribes(client, method):
    subscriber = SubscriberFactory()
    response = getattr(client, method)(_path(unsubscribe_url(subscriber)))
    assert response.status_code == 200
    if method == "get":
        assert "<button" in response.content.decode() and "csrfmiddlewaretoken" in response.content.decode()
        page = response.content.decode()
        assert "switch to weekly, fewer papers or a pause" in page  # a confirmed reader's way out ...
        assert "/manage/" not in page  # ... by the digest's own manage link: this URL sits in mail headers
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.CONFIRMED


def test_a_post_without_the_one_click_body_unsubscribes_nobody(strict_client):
    subscriber = SubscriberFactory()
    url = _path(unsubscribe_url(subscriber))
    assert strict_client.post(url, data={}).status_code == 400
    assert strict_client.post(url, data={"List-Unsubscribe": "yes"}).status_code == 400
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.CONFIRMED


def test_the_button_on_the_page_is_a_csrf_protected_form():
    subscriber = SubscriberFactory()
    url = _path(unsubscribe_url(subscriber))
    browser = Client(enforce_csrf_checks=True)
    assert browser.post(url + "confirm/").status_code == 403
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.CONFIRMED

    browser.get(url)
    token = browser.cookies["csrftoken"].value
    response = browser.post(url + "confirm/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert subscriber.unsubscribe_source == "unsubscribe-page"


def test_unsubscribing_from_the_manage_page(client):
    subscriber = SubscriberFactory()
    response = client.post(_path(manage_url(subscriber)) + "unsubscribe/")
    assert response.status_code == 200 and "You're unsubscribed" in response.content.decode()
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert subscriber.unsubscribe_source == "manage-page"


def test_a_manage_link_cannot_be_used_as_a_one_click_link(strict_client):
    subscriber = SubscriberFactory()
    token_path = _path(manage_url(subscriber)).replace("/manage/", "/unsubscribe/")
    assert strict_client.post(token_path, data={"List-Unsubscribe": "One-Click"}).status_code == 400
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.CONFIRMED


def test_suppressing_an_address_marks_the_subscriber_and_blocks_signup():
    subscriber = SubscriberFactory(email="gone@example.org")
    services.subscriber_suppress(email=" Gone@Example.org", reason="hard bounce")
    services.subscriber_suppress(email="gone@example.org", reason="again")  # idempotent
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.SUPPRESSED
    assert subscriber.suppressed_reason == "hard bounce"
    assert Suppression.objects.get().email == "gone@example.org"
    outcome = services.subscriber_signup(
        email="gone@example.org", preferences=services.Preferences(topics=[], interests="x"), consent=services.Consent()
    )
    assert outcome is services.SignupOutcome.SUPPRESSED
    assert Subscriber.objects.get().status == Subscriber.Status.SUPPRESSED


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_migration_0007_suppresses_every_subscriber_whose_address_is_suppressed_and_backwards_undoes_nothing():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.test.utils import CaptureQueriesContext

    before, after = [("subscriptions", "0006_ascii_domains_signup_consent")], [("subscriptions", "0007_suppressed_subscribers_marked")]
    bounced_at, stamped_at = timezone.now() - datetime.timedelta(days=40), timezone.now() - datetime.timedelta(days=9)
    # As older code left them: a suppression added beside its subscriber, or a status set back by hand.
    left_behind = [SubscriberFactory(status=status) for status in ("confirmed", "pending", "unsubscribed")]
    unstamped = SubscriberFactory(status=Subscriber.Status.SUPPRESSED)  # set by hand, no suppressed_at
    stamped = SubscriberFactory(status=Subscriber.Status.SUPPRESSED, suppressed_at=stamped_at, suppressed_reason="complaint")
    active = SubscriberFactory()
    for reader in [*left_behind, unstamped, stamped]:
        Suppression.objects.create(email=reader.email, reason=f"hard bounce: 550 {reader.email}")
    Suppression.objects.update(created_at=bounced_at)
    Suppression.objects.create(email="someone-else@example.org", reason="complaint")
    untouched = {pk: row for pk, *row in Subscriber.objects.filter(pk__in=[stamped.pk, active.pk]).values_list(
        "pk", "status", "suppressed_at", "suppressed_reason", "updated_at")}  # fmt: skip

    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        with CaptureQueriesContext(connection) as queries:
            MigrationExecutor(connection).migrate(after)  # a fresh loader: the first still counts 0007 applied
        suppressed = sorted(Subscriber.objects.filter(status=Subscriber.Status.SUPPRESSED).values_list("pk", "suppressed_at"))
        MigrationExecutor(connection).migrate(before)
        # Backwards leaves them suppressed: the suppressions still stand.
        assert sorted(Subscriber.objects.filter(status=Subscriber.Status.SUPPRESSED).values_list("pk", "suppressed_at")) == suppressed
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    for reader in [*left_behind, unstamped]:
        reader.refresh_from_db()
        assert (reader.status, reader.suppressed_at, reader.suppressed_reason) == (
            Subscriber.Status.SUPPRESSED, bounced_at, f"hard bounce: 550 {reader.email}")
        assert reader.updated_at > bounced_at
    assert {pk: row for pk, *row in Subscriber.objects.filter(pk__in=untouched).values_list(
        "pk", "status", "suppressed_at", "suppressed_reason", "updated_at")} == untouched  # fmt: skip
    # One statement for all of them, not one per subscriber.
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "subscriptions_subscriber"')]
    assert len(updates) == 1


def test_an_old_confirm_link_does_not_revive_an_unsubscribed_or_suppressed_subscriber(client):
    from subscriptions.links import confirm_url

    left = SubscriberFactory(status=Subscriber.Status.PENDING)
    url = _path(confirm_url(left))
    services.subscriber_unsubscribe(subscriber=left, source="test")
    client.post(url)
    left.refresh_from_db()
    assert left.status == Subscriber.Status.UNSUBSCRIBED


def test_an_old_confirm_link_does_not_confirm_an_address_suppressed_since(client, smtp_sink):
    from subscriptions.links import confirm_url

    subscriber = SubscriberFactory(status=Subscriber.Status.PENDING)
    url = _path(confirm_url(subscriber))
    services.subscriber_suppress(email=subscriber.email, reason="hard bounce")
    assert client.post(url).status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.SUPPRESSED
    assert services.subscriber_send_confirmation(subscriber=subscriber) is False
    assert smtp_sink.messages == []


def test_saving_the_manage_form_does_not_undo_an_unsubscribe_that_landed_meanwhile(client):
    subscriber = SubscriberFactory()
    stale_copy = Subscriber.objects.get(pk=subscriber.pk)
    services.subscriber_unsubscribe(subscriber=subscriber, source="one-click")
    services.subscriber_update_preferences(
        subscriber=stale_copy, preferences=services.Preferences(topics=[], interests="late edit", digest_size=20)
    )
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert subscriber.interests == "late edit"


def test_the_purge_forgets_unconfirmed_signups_after_seven_days_only():
    now = timezone.now()
    with time_machine.travel(now - datetime.timedelta(days=8), tick=False):
        stale = SubscriberFactory(status=Subscriber.Status.PENDING, signup_at=timezone.now())
        old_confirmed = SubscriberFactory(status=Subscriber.Status.CONFIRMED, signup_at=timezone.now())
        old_suppressed = SubscriberFactory(status=Subscriber.Status.SUPPRESSED, signup_at=timezone.now())
        returning = SubscriberFactory(
            status=Subscriber.Status.PENDING, signup_at=timezone.now(), unsubscribed_at=timezone.now()
        )
        Suppression.objects.create(email=old_suppressed.email, reason="complaint")
    with time_machine.travel(now - datetime.timedelta(days=6), tick=False):
        recent = SubscriberFactory(status=Subscriber.Status.PENDING, signup_at=timezone.now())

    assert subscribers_purge_unconfirmed_task() == 1
    assert subscribers_purge_unconfirmed_task() == 0

    remaining = set(Subscriber.objects.values_list("pk", flat=True))
    assert stale.pk not in remaining
    assert {old_confirmed.pk, old_suppressed.pk, recent.pk, returning.pk} <= remaining
    returning.refresh_from_db()
    assert returning.status == Subscriber.Status.UNSUBSCRIBED
    assert Suppression.objects.filter(email=old_suppressed.email).exists()


def test_the_purge_runs_daily_from_beat():
    from digest.celery import app

    entries = [e for e in app.conf.beat_schedule.values() if e["task"] == "digest.tasks.subscribers_purge_unconfirmed_task"]
    assert len(entries) == 1
    assert "digest.tasks.subscribers_purge_unconfirmed_task" in app.tasks


# --- List-Unsubscribe on the subscriber emails (confirmation, manage link) -------------------------

def _one_click_url(message) -> str:
    """The https target of List-Unsubscribe, after checking the header's whole shape."""
    header = " ".join(str(message.message["List-Unsubscribe"]).split())
    match = re.fullmatch(r"<(https?://[^>]+/unsubscribe/[^>/]+/)>(, <mailto:[^>]+>)?", header)
    assert match, header
    return match.group(1)


def _send(kind: str):
    if kind == "confirmation":
        subscriber = SubscriberFactory(status=Subscriber.Status.PENDING)
        assert services.confirmation_claim(subscriber_id=subscriber.pk)
        assert services.subscriber_send_confirmation(subscriber=subscriber)
    else:
        subscriber = SubscriberFactory()
        assert services.subscriber_send_manage_link(subscriber=subscriber)
    return subscriber


@pytest.mark.parametrize("kind", ["confirmation", "manage link"])
def test_confirmation_and_manage_link_emails_carry_one_click_list_unsubscribe_headers(smtp_sink, settings, kind):
    settings.UNSUBSCRIBE_MAILTO = "unsubscribe@paperboy.example.org"
    subscriber = _send(kind)
    [message] = smtp_sink.to(subscriber.email)
    header = " ".join(str(message.message["List-Unsubscribe"]).split())
    assert header.endswith(", <mailto:unsubscribe@paperboy.example.org?subject=unsubscribe>")
    assert str(message.message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert str(message.message["Auto-Submitted"]) == "auto-generated"
    assert message.part("text/plain").strip()
    # The one-click token is the digest's own: signed for unsubscribing, and for this subscriber.
    token = _one_click_url(message).rstrip("/").rsplit("/", 1)[1]
    assert token_read(token=token, purpose=Purpose.UNSUBSCRIBE) == subscriber
    with pytest.raises(TokenError):
        token_read(token=token, purpose=Purpose.MANAGE)


def test_one_click_from_a_confirmation_email_unsubscribes_a_pending_address_and_no_more_mail_follows(
    client, strict_client, smtp_sink, eager_tasks, django_capture_on_commit_callbacks
):
    subscriber = _send("confirmation")
    [message] = smtp_sink.to(subscriber.email)
    page = client.get(_path(_one_click_url(message))).content.decode()
    # A pending address has no digests to thin out: no "switch to weekly" that ends on "confirm first".
    assert "Unsubscribe?" in page and "switch to weekly" not in page
    response = strict_client.post(_path(_one_click_url(message)), data="List-Unsubscribe=One-Click",
                                  content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED and subscriber.unsubscribe_source == "one-click"

    # The confirm link in that same email no longer starts a subscription ...
    confirm = re.search(r"https?://\S+/confirm/[^\s/]+/", message.part("text/plain")).group(0)
    client.post(_path(confirm))
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    # ... and nothing mails the address again: not the hourly re-send, the lost-confirmation
    # sweep or a fresh-link request.
    with time_machine.travel(timezone.now() + datetime.timedelta(hours=2)):
        assert not services.confirmation_claim(subscriber_id=subscriber.pk)
        assert services.confirmations_requeue_lost() == 0
        with django_capture_on_commit_callbacks(execute=True):
            services.subscriber_link_request(email=subscriber.email)
        assert services.subscriber_send_confirmation(subscriber=subscriber) is False
    assert len(smtp_sink.to(subscriber.email)) == 1


def test_without_an_unsubscribe_mailto_every_email_offers_only_the_one_click_link(smtp_sink, settings):
    from digest import matching
    from digest.models import Delivery
    from digest.services.delivery import digest_message_build
    from digest.services.editions import edition_ranks
    from tests.digest_support import frozen_edition

    settings.UNSUBSCRIBE_MAILTO = ""
    settings.MATCHING_METHOD = "lexical"
    for kind in ["confirmation", "manage link"]:
        subscriber = _send(kind)
        [message] = smtp_sink.to(subscriber.email)
        assert "mailto" not in str(message.message["List-Unsubscribe"])
        assert _one_click_url(message)

    day = datetime.date(2026, 3, 12)
    edition = frozen_edition(day=day, count=5)
    reader = SubscriberFactory()
    picks = matching.select_for_subscribers(subscribers=[reader], day=day, candidate_ids=edition.paper_ids)[reader.pk]
    digest = digest_message_build(delivery=Delivery.objects.create(edition=edition, subscriber=reader),
                                  subscriber=reader, edition=edition, picks=picks, ranks=edition_ranks(edition=edition))
    assert re.fullmatch(r"<https?://[^>\s]+/unsubscribe/[^>/]+/>", digest.extra_headers["List-Unsubscribe"])
    assert digest.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


# --- Old digests ------------------------------------------------------------------------------

T0 = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)


def test_one_click_from_a_digest_months_old_still_unsubscribes(strict_client):
    with time_machine.travel(T0, tick=False):
        subscriber = SubscriberFactory()
        url = _path(unsubscribe_url(subscriber))
    with time_machine.travel(T0 + datetime.timedelta(days=200), tick=False):
        response = strict_client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_expired_unsubscribe_link_says_how_to_stop_the_mail_and_the_fresh_link_does(
    client, settings, smtp_sink, eager_tasks, django_capture_on_commit_callbacks, method
):
    settings.UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS = 30
    with time_machine.travel(T0, tick=False):
        subscriber = SubscriberFactory()
        url = _path(unsubscribe_url(subscriber))
    with time_machine.travel(T0 + datetime.timedelta(days=31), tick=False):
        page = getattr(client, method)(url)
        assert page.status_code == 410
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.content.decode()))
        assert "This unsubscribe link has expired" in text
        assert "this one did not unsubscribe you" in text
        assert "To stop the emails, enter your address" in text and 'action="/link/"' in page.content.decode()

        # The form on that page mails a fresh unsubscribe link, which works.
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post("/link/", {"email": subscriber.email}).status_code == 302
        [message] = smtp_sink.to(subscriber.email)
        fresh = re.search(r"https?://\S+/unsubscribe/[^\s/]+/", message.part("text/plain")).group(0)
        assert client.post(_path(fresh) + "confirm/").status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
