"""Signed links: purpose, expiry, revocation, and that one subscriber's link never opens another's page."""

import base64
import datetime
import json
from urllib.parse import quote

import pytest
import time_machine
from django.core import signing
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from subscriptions import links
from subscriptions.models import Subscriber
from subscriptions.services import subscriber_revoke_links
from subscriptions.tokens import Purpose, TokenExpired, TokenInvalid, TokenRevoked, token_make, token_read
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_token_reads_back_as_its_subscriber(purpose):
    subscriber = SubscriberFactory()
    assert token_read(token=token_make(subscriber=subscriber, purpose=purpose), purpose=purpose) == subscriber


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_token_is_exactly_what_djangos_signing_dumps_makes(purpose, settings):
    subscriber = SubscriberFactory()
    salt = f"paperboy.subscriptions.{purpose.value}"
    for secret in [settings.SECRET_KEY, "another-secret-é" * 4, b"bytes-secret" * 5]:
        settings.SECRET_KEY = secret
        for moment in [T0, T0 + datetime.timedelta(days=400, seconds=7)]:
            with time_machine.travel(moment, tick=False):
                expected = signing.dumps({"s": subscriber.pk, "k": subscriber.token_key}, salt=salt)
                assert token_make(subscriber=subscriber, purpose=purpose) == expected


@pytest.mark.parametrize("made_for, used_as", [(a, b) for a in Purpose for b in Purpose if a is not b])
def test_a_token_for_one_purpose_is_refused_for_another(made_for, used_as):
    token = token_make(subscriber=SubscriberFactory(), purpose=made_for)
    with pytest.raises(TokenInvalid):
        token_read(token=token, purpose=used_as)


def test_an_edited_token_is_refused():
    alice, bob = SubscriberFactory(), SubscriberFactory()
    token = token_make(subscriber=alice, purpose=Purpose.MANAGE)
    payload, rest = token.split(":", 1)
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["s"] = bob.pk
    forged = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    with pytest.raises(TokenInvalid):
        token_read(token=f"{forged}:{rest}", purpose=Purpose.MANAGE)
    with pytest.raises(TokenInvalid):
        token_read(token=token[:-2] + ("AA" if not token.endswith("AA") else "BB"), purpose=Purpose.MANAGE)


def test_a_validly_signed_token_naming_another_subscriber_without_their_key_is_refused():
    """Even with the signing key, a link must carry the subscriber's own token_key."""
    alice, bob = SubscriberFactory(), SubscriberFactory()
    crossed = signing.dumps({"s": bob.pk, "k": alice.token_key}, salt="paperboy.subscriptions.manage")
    with pytest.raises(TokenRevoked):
        token_read(token=crossed, purpose=Purpose.MANAGE)


@pytest.mark.parametrize(
    "purpose, setting",
    [(Purpose.CONFIRM, "CONFIRM_TOKEN_MAX_AGE_DAYS"), (Purpose.MANAGE, "TOKEN_MAX_AGE_DAYS"),
     (Purpose.UNSUBSCRIBE, "UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS")],
)
def test_tokens_expire_after_their_max_age(purpose, setting, settings):
    subscriber = SubscriberFactory()
    days = getattr(settings, setting)
    with time_machine.travel(T0, tick=False):
        token = token_make(subscriber=subscriber, purpose=purpose)
    with time_machine.travel(T0 + datetime.timedelta(days=days) - datetime.timedelta(minutes=1), tick=False):
        assert token_read(token=token, purpose=purpose) == subscriber
    with time_machine.travel(T0 + datetime.timedelta(days=days, minutes=1), tick=False):
        with pytest.raises(TokenExpired):
            token_read(token=token, purpose=purpose)


def test_an_unsubscribe_link_outlives_the_manage_link_of_the_same_email_by_default():
    # Readers unsubscribe from old digests; a dead link there is a "report spam" click.
    subscriber = SubscriberFactory()
    with time_machine.travel(T0, tick=False):
        unsubscribe = token_make(subscriber=subscriber, purpose=Purpose.UNSUBSCRIBE)
        manage = token_make(subscriber=subscriber, purpose=Purpose.MANAGE)
    with time_machine.travel(T0 + datetime.timedelta(days=364), tick=False):
        assert token_read(token=unsubscribe, purpose=Purpose.UNSUBSCRIBE) == subscriber
        with pytest.raises(TokenExpired):
            token_read(token=manage, purpose=Purpose.MANAGE)
    with time_machine.travel(T0 + datetime.timedelta(days=365, minutes=1), tick=False):
        with pytest.raises(TokenExpired):  # signed *and* expiring, only later
            token_read(token=unsubscribe, purpose=Purpose.UNSUBSCRIBE)


def test_rotating_the_key_revokes_every_earlier_link():
    subscriber = SubscriberFactory()
    old = [token_make(subscriber=subscriber, purpose=p) for p in Purpose]
    subscriber_revoke_links(subscriber=subscriber)
    for token, purpose in zip(old, Purpose):
        with pytest.raises(TokenRevoked):
            token_read(token=token, purpose=purpose)
    assert token_read(token=token_make(subscriber=subscriber, purpose=Purpose.MANAGE), purpose=Purpose.MANAGE)


def test_a_deleted_subscribers_link_is_revoked():
    subscriber = SubscriberFactory()
    token = token_make(subscriber=subscriber, purpose=Purpose.MANAGE)
    subscriber.delete()
    with pytest.raises(TokenRevoked):
        token_read(token=token, purpose=Purpose.MANAGE)


def test_links_are_absolute_on_the_site_url(settings):
    settings.SITE_URL = "https://paperboy.example.org"
    subscriber = SubscriberFactory()
    assert links.confirm_url(subscriber).startswith("https://paperboy.example.org/confirm/")
    assert links.manage_url(subscriber).startswith("https://paperboy.example.org/manage/")
    assert links.unsubscribe_url(subscriber).startswith("https://paperboy.example.org/unsubscribe/")


@pytest.mark.parametrize("kind", ["confirm", "manage", "unsubscribe"])
def test_pages_refuse_bad_links_with_a_clear_page_and_a_fresh_link_form(client, kind):
    subscriber = SubscriberFactory(status=Subscriber.Status.PENDING if kind == "confirm" else "confirmed")
    purpose = Purpose(kind)
    from django.conf import settings

    longest = max(settings.CONFIRM_TOKEN_MAX_AGE_DAYS, settings.TOKEN_MAX_AGE_DAYS, settings.UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS)
    with time_machine.travel(datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=longest + 1), tick=False):
        expired = token_make(subscriber=subscriber, purpose=purpose)
    wrong_purpose = token_make(subscriber=subscriber, purpose=Purpose.CONFIRM if kind != "confirm" else Purpose.MANAGE)
    other = SubscriberFactory()
    revoked = signing.dumps({"s": other.pk, "k": subscriber.token_key}, salt=f"paperboy.subscriptions.{kind}")

    cases = [("forged", "eyJzIjoxfQ:1abc:xyz", 400, "isn't valid"), ("wrong purpose", wrong_purpose, 400, "isn't valid"),
             ("expired", expired, 410, "expired"), ("other subscriber", revoked, 410, "no longer valid")]
    for label, token, status, words in cases:
        for method in ("get", "post"):
            response = getattr(client, method)(f"/{kind}/{quote(token)}/")
            assert response.status_code == status, (label, method)
            body = response.content.decode()
            assert words in body, (label, method)
            assert 'action="/link/"' in body
    subscriber.refresh_from_db()
    other.refresh_from_db()
    assert subscriber.status == ("pending" if kind == "confirm" else "confirmed")
    assert other.status == "confirmed"


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.text(min_size=1, max_size=300).filter(lambda t: "/" not in t))
def test_any_garbage_in_a_link_is_a_clear_page_never_a_500(client, token):
    for kind in ("confirm", "manage", "unsubscribe"):
        response = client.get(f"/{kind}/{quote(token, safe='')}/")
        assert response.status_code in (400, 404, 410)
