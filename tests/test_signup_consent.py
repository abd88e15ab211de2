"""Later signups of a pending address: each keeps its own preferences, and its link confirms them.

The signup form is not authenticated, so anyone may sign a pending address up again. The
subscriber keeps the first signup's preferences; a later one's wait on its SignupConsent,
for the link its confirmation email carries.
"""

import datetime
import re

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from digest.models import Topic
from subscriptions import services
from subscriptions.models import SignupConsent, Subscriber, Suppression
from tests.admin_support import curator, curator_client, operator, operator_client, subscriber_form_data  # noqa: F401
from tests.factories import SubscriberFactory, TopicFactory

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)

OWNER = {"topics": ["robotics"], "interests": "diffusion models", "frequency": "weekly", "weekday": "4",
         "send_hour": "8", "timezone": "Europe/Berlin", "digest_size": "12"}  # fmt: skip
STRANGER = {"topics": ["computer-vision"], "interests": "crypto scams", "frequency": "daily", "weekday": "0",
            "send_hour": "3", "timezone": "UTC", "digest_size": "30"}  # fmt: skip

# How the confirm page (whitespace folded) and the confirmation email state each form.
OWNER_PAGE = ("Weekly, on Friday at 08:00 (Europe/Berlin)", "12 papers per digest", "Topics: Robotics",
              "Interests: diffusion models")  # fmt: skip
STRANGER_PAGE = ("Every day at 03:00 (UTC)", "30 papers per digest", "Topics: Computer vision", "Interests: crypto scams")
OWNER_EMAIL = ("Weekly, on Friday, 12 papers, at 08:00 (Europe/Berlin)", "Topics: Robotics", "Interests: diffusion models")
STRANGER_EMAIL = ("Daily, 30 papers, at 03:00 (UTC)", "Topics: Computer vision", "Interests: crypto scams")


@pytest.fixture
def topics():
    Topic.objects.all().delete()  # the test owns its topic list, not the default-topics migration
    return [TopicFactory(name="Robotics", slug="robotics", position=1),
            TopicFactory(name="Computer vision", slug="computer-vision", position=2)]  # fmt: skip


@pytest.fixture
def sign_up(client, django_capture_on_commit_callbacks):
    """Someone submits the form for ada@example.org at `at`; the worker applies it."""

    def sign_up(form: dict, *, at: datetime.datetime, ip: str = "203.0.113.1", agent: str = "Owner's browser"):
        with time_machine.travel(at, tick=False):
            with django_capture_on_commit_callbacks(execute=True):
                response = client.post("/", {"email": "ada@example.org", **form}, REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)
            with django_capture_on_commit_callbacks(execute=True):
                services.signup_requests_process()
        return response

    return sign_up


@pytest.fixture
def owner_then_stranger(sign_up, topics, smtp_sink, eager_tasks):
    """The owner signs up; two hours later someone else signs the address up with other preferences.
    Returns the two confirmation emails, the owner's first."""
    sign_up(OWNER, at=T0)
    sign_up(STRANGER, at=T0 + datetime.timedelta(hours=2), ip="198.51.100.66", agent="Someone else")
    messages = smtp_sink.to("ada@example.org")
    assert len(messages) == 2
    return messages


def _path(message) -> str:
    url = re.search(r"https?://\S+/confirm/[^\s/]+/", message.part("text/plain")).group(0)
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def _folded(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def _preferences(subscriber: Subscriber) -> tuple:
    subscriber.refresh_from_db()
    return (sorted(subscriber.topics.values_list("slug", flat=True)), subscriber.interests, subscriber.frequency,
            subscriber.weekday, subscriber.send_hour, subscriber.timezone, subscriber.digest_size)  # fmt: skip


OWNERS = (["robotics"], "diffusion models", "weekly", 4, 8, "Europe/Berlin", 12)
STRANGERS = (["computer-vision"], "crypto scams", "daily", 0, 3, "UTC", 30)


# --- a later signup changes nothing of the subscriber ----------------------------


def test_a_strangers_later_signup_leaves_the_pending_subscribers_preferences_as_the_owner_chose(owner_then_stranger):
    subscriber = Subscriber.objects.get()
    assert _preferences(subscriber) == OWNERS
    [later] = SignupConsent.objects.all()
    assert (sorted(later.topics.values_list("slug", flat=True)), later.interests, later.frequency, later.weekday,
            later.send_hour, later.timezone, later.digest_size) == STRANGERS  # fmt: skip
    assert (later.signup_ip, later.signup_user_agent) == ("198.51.100.66", "Someone else")


def test_a_later_signup_within_the_hour_sends_nothing_keeps_nothing_and_changes_nothing(sign_up, topics, smtp_sink, eager_tasks):
    sign_up(OWNER, at=T0)
    sign_up(STRANGER, at=T0 + datetime.timedelta(minutes=10), ip="198.51.100.66")
    assert len(smtp_sink.to("ada@example.org")) == 1
    assert not SignupConsent.objects.exists()
    assert _preferences(Subscriber.objects.get()) == OWNERS


# --- each link confirms its own signup --------------------------------------------


@pytest.mark.parametrize("used, preferences, evidence", [
    (0, OWNERS, (T0, "203.0.113.1")),
    (1, STRANGERS, (T0 + datetime.timedelta(hours=2), "198.51.100.66")),
])  # fmt: skip
def test_confirming_through_a_link_applies_the_preferences_of_that_links_signup(
    client, owner_then_stranger, used, preferences, evidence
):
    with time_machine.travel(T0 + datetime.timedelta(hours=3)):
        assert client.post(_path(owner_then_stranger[used])).status_code == 302
        subscriber = Subscriber.objects.get()
        assert subscriber.status == Subscriber.Status.CONFIRMED
        assert _preferences(subscriber) == preferences
        assert (subscriber.signup_at, subscriber.signup_ip) == evidence
        assert not SignupConsent.objects.exists()
        # The other link only says the address is confirmed now; it changes nothing.
        assert "You're subscribed" in client.post(_path(owner_then_stranger[1 - used])).content.decode()
        assert _preferences(subscriber) == preferences


@pytest.mark.parametrize("used, shown, hidden", [(0, OWNER_PAGE, STRANGER_PAGE), (1, STRANGER_PAGE, OWNER_PAGE)])
def test_the_confirm_page_shows_the_preferences_its_link_confirms(client, owner_then_stranger, used, shown, hidden):
    with time_machine.travel(T0 + datetime.timedelta(hours=3)):
        page = _folded(client.get(_path(owner_then_stranger[used])))
    assert "Confirm my subscription" in page
    for line in shown:
        assert line in page
    for line in hidden:
        assert line not in page
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING  # a GET confirms nothing


def test_each_confirmation_email_states_the_preferences_of_its_own_signup(owner_then_stranger):
    for message, shown, hidden in zip(owner_then_stranger, (OWNER_EMAIL, STRANGER_EMAIL), (STRANGER_EMAIL, OWNER_EMAIL)):
        text = " ".join(message.part("text/plain").split())
        html = " ".join(re.sub(r"<[^>]+>", " ", message.part("text/html")).split())
        for line in shown:
            assert line in text and line in html
        for line in hidden:
            assert line not in text and line not in html


def test_a_later_web_signup_of_an_imported_address_is_told_as_a_web_signup(smtp_sink):
    subscriber = SubscriberFactory(status=Subscriber.Status.PENDING, signup_source="csv-import")
    SignupConsent.objects.create(subscriber=subscriber, signup_at=timezone.now(), signup_source="web")
    assert services.confirmation_claim(subscriber_id=subscriber.pk)
    assert services.subscriber_send_confirmation(subscriber=subscriber)
    [message] = smtp_sink.to(subscriber.email)
    assert "Someone (hopefully you) asked" in message.part("text/plain")


def test_confirming_a_later_signup_keeps_a_topic_paused_since_it_signed_up(client, owner_then_stranger, topics):
    """As with the first signup's topics: what the reader chose is kept, paused or not."""
    Topic.objects.filter(slug="computer-vision").update(active=False)
    with time_machine.travel(T0 + datetime.timedelta(hours=3)):
        assert client.post(_path(owner_then_stranger[1])).status_code == 302
    assert _preferences(Subscriber.objects.get())[0] == ["computer-vision"]


# --- confirmed addresses, unsubscribed ones and the purge: as before --------------


def test_a_signup_of_a_confirmed_address_changes_nothing_and_mails_a_manage_link(sign_up, topics, smtp_sink, eager_tasks):
    subscriber = SubscriberFactory(email="ada@example.org", status=Subscriber.Status.CONFIRMED, timezone="Asia/Tokyo")
    subscriber.topics.set([topics[0]])
    before = _preferences(subscriber)
    answer = sign_up(STRANGER, at=T0, ip="198.51.100.66")
    assert (answer.status_code, answer["Location"]) == (302, reverse("subscriptions:signup_done"))  # what anyone is told
    assert _preferences(subscriber) == before
    assert not SignupConsent.objects.exists()
    [message] = smtp_sink.to("ada@example.org")
    assert "/manage/" in message.part("text/plain") and "/confirm/" not in message.part("text/plain")


def test_a_signup_of_an_unsubscribed_address_starts_afresh_with_its_preferences(sign_up, topics, smtp_sink, eager_tasks):
    subscriber = SubscriberFactory(email="ada@example.org", status=Subscriber.Status.UNSUBSCRIBED)
    SignupConsent.objects.create(subscriber=subscriber, signup_at=T0 - datetime.timedelta(days=1))
    sign_up(OWNER, at=T0)
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.PENDING and _preferences(subscriber) == OWNERS
    assert not SignupConsent.objects.exists()  # the old round's links are gone with its token key


def test_the_purge_forgets_a_later_signup_with_its_topics_once_no_link_can_use_it(topics):
    now = timezone.now()
    subscriber = SubscriberFactory(status=Subscriber.Status.PENDING, signup_at=now - datetime.timedelta(days=8))
    kept = SignupConsent.objects.create(subscriber=subscriber, signup_at=now - datetime.timedelta(days=2))
    old = SignupConsent.objects.create(subscriber=subscriber, signup_at=now - datetime.timedelta(days=40))
    for consent in (kept, old):
        consent.topics.set(topics)
    assert services.subscribers_purge_unconfirmed(now=now) == 0  # a signup two days old keeps the address
    assert list(SignupConsent.objects.values_list("pk", flat=True)) == [kept.pk]
    assert SignupConsent.topics.through.objects.filter(signupconsent_id=old.pk).count() == 0
    assert sorted(kept.topics.values_list("slug", flat=True)) == ["computer-vision", "robotics"]


def test_the_migration_gives_earlier_later_signups_the_preferences_their_links_confirmed_until_now(topics):
    """Before 0007 a later signup replaced the subscriber's preferences, so those are what its link confirmed."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("subscriptions.migrations.0008_signup_consent_preferences")
    subscriber = SubscriberFactory(status=Subscriber.Status.PENDING, interests="latest form", frequency="weekly",
                                   weekday=2, send_hour=21, timezone="Asia/Tokyo", digest_size=25)  # fmt: skip
    subscriber.topics.set([topics[1]])
    consent = SignupConsent.objects.create(subscriber=subscriber, signup_at=timezone.now())
    migration.forwards(apps, None)
    consent.refresh_from_db()
    assert (sorted(consent.topics.values_list("slug", flat=True)), consent.interests, consent.frequency, consent.weekday,
            consent.send_hour, consent.timezone, consent.digest_size) == (
        ["computer-vision"], "latest form", "weekly", 2, 21, "Asia/Tokyo", 25)  # fmt: skip


# --- the admin: later signups are shown, never edited -----------------------------


@pytest.fixture
def later_signup(topics):
    subscriber = SubscriberFactory(email="ada@example.org", status=Subscriber.Status.PENDING)
    consent = SignupConsent.objects.create(
        subscriber=subscriber, signup_at=T0, signup_ip="198.51.100.66", signup_user_agent="Someone else",
        signup_source="web", interests="crypto scams", digest_size=30,
    )  # fmt: skip
    consent.topics.set([topics[1]])
    return consent


def test_an_operator_sees_later_signups_in_their_own_list_and_page(operator_client, later_signup):
    listing = operator_client.get(reverse("admin:subscriptions_signupconsent_changelist"))
    assert listing.status_code == 200
    assert "ada@example.org" in listing.content.decode()
    searched = operator_client.get(reverse("admin:subscriptions_signupconsent_changelist") + "?q=ada%40example")
    assert list(searched.context["cl"].result_list) == [later_signup]
    page = operator_client.get(reverse("admin:subscriptions_signupconsent_change", args=[later_signup.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "198.51.100.66" in html and "crypto scams" in html and "Computer vision" in html
    assert 'name="interests"' not in html and 'name="signup_ip"' not in html  # read-only, not inputs


def test_later_signups_cannot_be_added_changed_or_deleted_in_the_admin(operator_client, later_signup):
    change = reverse("admin:subscriptions_signupconsent_change", args=[later_signup.pk])
    assert operator_client.get(reverse("admin:subscriptions_signupconsent_add")).status_code == 403
    assert operator_client.get(reverse("admin:subscriptions_signupconsent_delete", args=[later_signup.pk])).status_code == 403
    assert operator_client.post(change, {"interests": "changed", "digest_size": "5"}).status_code == 403
    later_signup.refresh_from_db()
    assert (later_signup.interests, later_signup.digest_size) == ("crypto scams", 30)


def test_a_curator_cannot_see_later_signups(curator_client, later_signup):
    for url in (reverse("admin:subscriptions_signupconsent_changelist"),
                reverse("admin:subscriptions_signupconsent_change", args=[later_signup.pk])):  # fmt: skip
        response = curator_client.get(url)
        assert response.status_code == 403, url
        assert "ada@example.org" not in response.content.decode()


def test_the_subscriber_page_lists_its_later_signups_read_only(operator_client, later_signup):
    page = operator_client.get(reverse("admin:subscriptions_subscriber_change", args=[later_signup.subscriber_id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Later signups, not confirmed" in html
    assert "198.51.100.66" in html and "Someone else" in html and "crypto scams" in html and "Computer vision" in html
    formset = next(f for f in page.context["inline_admin_formsets"] if f.formset.model is SignupConsent)
    assert not formset.has_add_permission and not formset.has_change_permission and not formset.has_delete_permission


def test_a_subscriber_with_later_signups_can_still_be_deleted(operator_client, later_signup):
    """An erasure request: the later signups (an IP, a browser) go with the reader."""
    url = reverse("admin:subscriptions_subscriber_delete", args=[later_signup.subscriber_id])
    assert "Are you sure" in operator_client.get(url).content.decode()
    assert operator_client.post(url, {"post": "yes"}).status_code == 302
    assert not Subscriber.objects.exists() and not SignupConsent.objects.exists()


# --- the admin's save suppresses only a status changed to suppressed --------------


def test_editing_a_suppressed_subscriber_whose_suppression_was_lifted_does_not_suppress_it_again(operator_client):
    subscriber = SubscriberFactory(email="bounced@example.org")
    services.subscriber_suppress(email=subscriber.email, reason="hard bounce")
    Suppression.objects.filter(email=subscriber.email).delete()  # lifted on purpose, status not yet changed
    subscriber.refresh_from_db()
    url = reverse("admin:subscriptions_subscriber_change", args=[subscriber.pk])
    response = operator_client.post(url, subscriber_form_data(operator_client, subscriber, interests="a note about the reader"))
    assert response.status_code == 302
    assert not Suppression.objects.exists()
    subscriber.refresh_from_db()
    assert (subscriber.status, subscriber.interests) == (Subscriber.Status.SUPPRESSED, "a note about the reader")
    assert subscriber.suppressed_reason == "hard bounce"  # the record of why is not rewritten either


def test_changing_the_status_to_suppressed_in_the_admin_suppresses_the_address(operator_client, monkeypatch):
    calls = []
    real = services.subscriber_suppress
    monkeypatch.setattr(services, "subscriber_suppress", lambda **kw: calls.append(kw["email"]) or real(**kw))
    subscriber = SubscriberFactory(email="by.hand@example.org")
    url = reverse("admin:subscriptions_subscriber_change", args=[subscriber.pk])
    assert operator_client.post(url, subscriber_form_data(operator_client, subscriber, status="suppressed")).status_code == 302
    assert calls == ["by.hand@example.org"]
    assert Suppression.objects.filter(email=subscriber.email).exists()
    subscriber.refresh_from_db()
    assert operator_client.post(url, subscriber_form_data(operator_client, subscriber, interests="edited")).status_code == 302
    assert calls == ["by.hand@example.org"]  # saved again while suppressed: not suppressed again
