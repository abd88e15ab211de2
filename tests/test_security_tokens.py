"""Links and webhooks under attack: forged, expired, replayed, someone else's; webhook secrets.

tests/test_tokens.py covers the token module itself; here the attacks go through the
pages (the test client, CSRF enforced where a browser would be) and each test checks
the database afterwards, not only the status code.
"""

import base64
import datetime
import json
from urllib.parse import quote

import pytest
import time_machine
from django.conf import settings
from django.core import signing
from django.test import Client

from digest.models import WebhookEvent
from subscriptions.models import Subscriber, Suppression
from subscriptions.services import subscriber_revoke_links
from subscriptions.tokens import Purpose, token_make
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)
WEBHOOK = "/anymail/postmark/tracking/"


@pytest.fixture
def web():
    """No CSRF enforcement: what a scripted attacker (or the one-click POST) looks like."""
    return Client(raise_request_exception=False)


def _url(kind: str, token: str, suffix: str = "") -> str:
    return f"/{kind}/{quote(token, safe='')}/{suffix}"


def _one_click(client: Client, token: str):
    return client.post(_url("unsubscribe", token), "List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded")


# ---------------------------------------------------------------- forged


@pytest.mark.parametrize("kind", ["confirm", "manage", "unsubscribe"])
def test_a_token_signed_with_another_key_opens_nothing(web, kind, settings):
    victim = SubscriberFactory(status=Subscriber.Status.PENDING if kind == "confirm" else Subscriber.Status.CONFIRMED)
    forged = signing.dumps({"s": victim.pk, "k": victim.token_key}, key="an attacker's guess of the secret key" * 2,
                           salt=f"paperboy.subscriptions.{kind}")
    assert web.get(_url(kind, forged)).status_code == 400
    assert web.post(_url(kind, forged), {"List-Unsubscribe": "One-Click", "email": "x@evil.example"}).status_code == 400
    status_before = victim.status
    victim.refresh_from_db()
    assert victim.status == status_before
    assert victim.email not in web.get(_url(kind, forged)).content.decode()


def test_a_token_with_its_payload_swapped_for_another_subscribers_id_is_refused(web):
    """Keep the signature, change the id inside: the signature no longer matches."""
    mine, theirs = SubscriberFactory(), SubscriberFactory()
    token = token_make(subscriber=mine, purpose=Purpose.UNSUBSCRIBE)
    payload, rest = token.split(":", 1)
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["s"] = theirs.pk
    swapped = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    assert _one_click(web, f"{swapped}:{rest}").status_code == 400
    theirs.refresh_from_db()
    assert theirs.status == Subscriber.Status.CONFIRMED


# ---------------------------------------------------------------- another subscriber's link


def test_one_subscribers_links_only_ever_act_on_that_subscriber(web):
    alice, bob = SubscriberFactory(), SubscriberFactory()
    page = web.get(_url("manage", token_make(subscriber=alice, purpose=Purpose.MANAGE)))
    assert page.status_code == 200
    assert alice.email in page.content.decode() and bob.email not in page.content.decode()
    assert _one_click(web, token_make(subscriber=alice, purpose=Purpose.UNSUBSCRIBE)).status_code == 200
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert alice.status == Subscriber.Status.UNSUBSCRIBED
    assert bob.status == Subscriber.Status.CONFIRMED


def test_a_link_made_with_another_subscribers_key_is_revoked_not_obeyed(web):
    """Even a validly signed token (a leaked key) needs the subscriber's current token_key."""
    alice, bob = SubscriberFactory(), SubscriberFactory()
    crossed = signing.dumps({"s": bob.pk, "k": alice.token_key}, salt="paperboy.subscriptions.unsubscribe")
    assert _one_click(web, crossed).status_code == 410
    bob.refresh_from_db()
    assert bob.status == Subscriber.Status.CONFIRMED


# ---------------------------------------------------------------- expired


def test_an_expired_confirm_link_confirms_nobody(web):
    with time_machine.travel(T0, tick=False):
        subscriber = SubscriberFactory(status=Subscriber.Status.PENDING)
        token = token_make(subscriber=subscriber, purpose=Purpose.CONFIRM)
    later = T0 + datetime.timedelta(days=settings.CONFIRM_TOKEN_MAX_AGE_DAYS, seconds=1)
    with time_machine.travel(later, tick=False):
        response = web.post(_url("confirm", token))
    assert response.status_code == 410
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.PENDING and subscriber.confirmed_at is None


def test_a_confirm_link_works_until_the_last_second_of_its_life(web):
    with time_machine.travel(T0, tick=False):
        subscriber = SubscriberFactory(status=Subscriber.Status.PENDING)
        token = token_make(subscriber=subscriber, purpose=Purpose.CONFIRM)
    with time_machine.travel(T0 + datetime.timedelta(days=settings.CONFIRM_TOKEN_MAX_AGE_DAYS, seconds=-5), tick=False):
        assert web.post(_url("confirm", token)).status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.CONFIRMED


@pytest.mark.parametrize("how", ["one-click", "page-button", "manage-page"])
def test_expired_unsubscribe_and_manage_links_change_nothing(web, how):
    with time_machine.travel(T0, tick=False):
        subscriber = SubscriberFactory()
        unsubscribe = token_make(subscriber=subscriber, purpose=Purpose.UNSUBSCRIBE)
        manage = token_make(subscriber=subscriber, purpose=Purpose.MANAGE)
    days = settings.TOKEN_MAX_AGE_DAYS if how == "manage-page" else settings.UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS
    with time_machine.travel(T0 + datetime.timedelta(days=days, hours=1), tick=False):
        if how == "one-click":
            response = _one_click(web, unsubscribe)
        elif how == "page-button":
            response = web.post(_url("unsubscribe", unsubscribe, "confirm/"))
        else:
            response = web.post(_url("manage", manage, "unsubscribe/"))
    assert response.status_code == 410
    assert 'action="/link/"' in response.content.decode()  # the way to a fresh link
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.CONFIRMED


# ---------------------------------------------------------------- replayed


def test_confirming_twice_confirms_once_and_keeps_the_first_evidence(web):
    subscriber = SubscriberFactory(status=Subscriber.Status.PENDING)
    token = token_make(subscriber=subscriber, purpose=Purpose.CONFIRM)
    with time_machine.travel(T0, tick=False):
        first = web.post(_url("confirm", token), REMOTE_ADDR="192.0.2.1")
    with time_machine.travel(T0 + datetime.timedelta(minutes=5), tick=False):
        second = web.post(_url("confirm", token), REMOTE_ADDR="198.51.100.7")
    assert first.status_code == 302
    assert second.status_code == 200  # a page saying it is done, not an error
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.CONFIRMED
    assert subscriber.confirmed_at == T0
    assert subscriber.confirm_ip == "192.0.2.1"


def test_unsubscribing_twice_is_harmless_and_keeps_the_first_record(web):
    subscriber = SubscriberFactory()
    token = token_make(subscriber=subscriber, purpose=Purpose.UNSUBSCRIBE)
    with time_machine.travel(T0, tick=False):
        assert _one_click(web, token).status_code == 200
    with time_machine.travel(T0 + datetime.timedelta(days=1), tick=False):
        assert _one_click(web, token).status_code == 200
        assert web.post(_url("unsubscribe", token, "confirm/")).status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert subscriber.unsubscribed_at == T0 and subscriber.unsubscribe_source == "one-click"


def test_a_replayed_confirm_link_does_not_resubscribe_someone_who_left(web):
    subscriber = SubscriberFactory(status=Subscriber.Status.PENDING)
    confirm = token_make(subscriber=subscriber, purpose=Purpose.CONFIRM)
    assert web.post(_url("confirm", confirm)).status_code == 302
    subscriber.refresh_from_db()
    assert _one_click(web, token_make(subscriber=subscriber, purpose=Purpose.UNSUBSCRIBE)).status_code == 200
    web.post(_url("confirm", confirm))
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED


def test_links_replayed_after_a_new_link_request_are_revoked(web):
    subscriber = SubscriberFactory()
    old_unsubscribe = token_make(subscriber=subscriber, purpose=Purpose.UNSUBSCRIBE)
    old_manage = token_make(subscriber=subscriber, purpose=Purpose.MANAGE)
    subscriber_revoke_links(subscriber=subscriber)
    assert _one_click(web, old_unsubscribe).status_code == 410
    assert web.post(_url("manage", old_manage), {"interests": "stolen"}).status_code == 410
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.CONFIRMED and subscriber.interests != "stolen"


# ---------------------------------------------------------------- the tracking webhook


def _bounce(email: str, event_id: int = 4242) -> str:
    return json.dumps({
        "RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1, "ID": event_id, "MessageID": "abc-123",
        "Email": email, "BouncedAt": "2026-05-01T12:00:00Z", "Description": "The address does not exist.",
        "Details": "smtp;550 5.1.1 no such user", "Inactive": True, "CanActivate": True,
    })


def _basic(credentials: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials.encode()).decode()}


@pytest.mark.parametrize(
    "auth",
    [{}, _basic("wrong:secret"), _basic(""), _basic("hook"), {"HTTP_AUTHORIZATION": "Bearer x"},
     {"HTTP_AUTHORIZATION": "Basic !!!not-base64"}],
    ids=["none", "wrong", "empty", "user-only", "bearer", "garbage"],
)
def test_the_webhook_refuses_requests_without_the_secret_and_stores_nothing(web, auth):
    victim = SubscriberFactory()
    response = web.post(WEBHOOK, _bounce(victim.email), content_type="application/json", **auth)
    assert response.status_code in (400, 401, 403)
    assert WebhookEvent.objects.count() == 0
    assert not Suppression.objects.filter(email=victim.email).exists()


def test_the_webhook_with_a_near_miss_secret_is_refused(web):
    user, _, password = settings.ANYMAIL["WEBHOOK_SECRET"].partition(":")
    for near in [f"{user}:{password[:-1]}", f"{user}:{password}x", f"{user.upper()}:{password}", f"{password}:{user}"]:
        response = web.post(WEBHOOK, _bounce("x@example.org"), content_type="application/json", **_basic(near))
        assert response.status_code in (400, 401, 403), near
    assert WebhookEvent.objects.count() == 0


def test_the_webhook_with_the_secret_stores_an_event_once_even_when_replayed(web, django_capture_on_commit_callbacks):
    victim = SubscriberFactory()
    auth = _basic(settings.ANYMAIL["WEBHOOK_SECRET"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for _ in range(3):
            response = web.post(WEBHOOK, _bounce(victim.email), content_type="application/json", **auth)
            assert response.status_code == 200
    assert WebhookEvent.objects.filter(recipient=victim.email).count() == 1
    assert len(callbacks) == 1  # one processing task, not three
