"""Every public URL refuses malformed, oversized, wrong-method and wrong-type requests cleanly: never a 500.

The client is built with raise_request_exception=False so that an unhandled error shows up
as the 500 a visitor would get, and each test asserts the status stays below 500.
"""

import base64
import datetime
import json
from urllib.parse import quote

import pytest
from django.conf import settings
from django.test import Client
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from subscriptions.models import Subscriber
from subscriptions.tokens import Purpose, token_make
from tests.digest_support import frozen_edition
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db

DAY = datetime.date(2024, 3, 12)
HYPOTHESIS = hsettings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
METHODS = ["get", "head", "post", "put", "patch", "delete", "options", "trace"]
# ESPs whose webhook needs nothing but the shared basic-auth secret. Mailgun also needs its
# signing key and Amazon SES needs boto3: see test_the_webhook_of_an_esp_we_are_not_configured_for_is_not_a_500.
ESP_WEBHOOKS = ["postmark", "sendgrid", "brevo", "mailjet", "sparkpost"]
UNCONFIGURED_ESP_WEBHOOKS = ["mailgun", "amazon_ses"]


@pytest.fixture
def safe_client():
    return Client(raise_request_exception=False)


@pytest.fixture
def strict_client():
    """CSRF enforced, as for a real browser."""
    return Client(raise_request_exception=False, enforce_csrf_checks=True)


@pytest.fixture
def world(db):
    """A published edition and one subscriber in each state, with their links."""
    frozen_edition(day=DAY, count=5)
    pending = SubscriberFactory(status=Subscriber.Status.PENDING)
    confirmed = SubscriberFactory()
    return {
        "confirm": token_make(subscriber=pending, purpose=Purpose.CONFIRM),
        "manage": token_make(subscriber=confirmed, purpose=Purpose.MANAGE),
        "unsubscribe": token_make(subscriber=confirmed, purpose=Purpose.UNSUBSCRIBE),
    }


def public_paths(world) -> list[str]:
    paths = [
        "/", "/check-your-inbox/", "/link/", "/link/sent/",
        f"/confirm/{world['confirm']}/",
        f"/manage/{world['manage']}/", f"/manage/{world['manage']}/pause/",
        f"/manage/{world['manage']}/unsubscribe/", f"/manage/{world['manage']}/new-link/",
        f"/unsubscribe/{world['unsubscribe']}/", f"/unsubscribe/{world['unsubscribe']}/confirm/",
        "/digest/", f"/digest/{DAY.isoformat()}/", "/feed/", "/admin/login/",
    ]
    paths += [f"/anymail/{esp}/tracking/" for esp in ESP_WEBHOOKS]
    if not settings.PRODUCTION:
        paths += ["/dev/mail/", "/dev/mail/nothing.eml/", "/dev/mail/nothing.eml/html/"]
    return paths


def _auth(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def _assert_no_500(response, what):
    assert response.status_code < 500, (what, response.status_code, response.content[:500])


# ---------------------------------------------------------------- methods and bodies


def test_every_public_url_answers_every_method_without_a_500(safe_client, world):
    for path in public_paths(world):
        for method in METHODS:
            response = getattr(safe_client, method)(path)
            _assert_no_500(response, (method, path))


def test_wrong_methods_are_refused_with_405_where_the_view_lists_its_methods(safe_client, world):
    for path in ["/", "/link/", f"/confirm/{world['confirm']}/", f"/unsubscribe/{world['unsubscribe']}/"]:
        for method in ("put", "patch", "delete"):
            assert getattr(safe_client, method)(path).status_code == 405, (method, path)
    for path in [f"/manage/{world['manage']}/pause/", f"/unsubscribe/{world['unsubscribe']}/confirm/"]:
        assert safe_client.get(path).status_code == 405


BAD_BODIES = [
    ("application/x-www-form-urlencoded", b"email=%ZZ&&&=&topics=%00%ff"),
    ("application/x-www-form-urlencoded", b"\xff\xfe\x00garbage=\xc3\x28"),
    ("application/json", b'{"email": ["a@b.org"], "topics": {"$ne": 1}}'),
    ("application/json", b"{not json"),
    ("multipart/form-data; boundary=XYZ", b"--XYZ\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--XYZ--"),
    ("multipart/form-data", b"no boundary at all"),
    ("multipart/form-data; boundary=" + "b" * 80, b"--" + b"b" * 80 + b"\r\n"),
    ("text/plain", b"List-Unsubscribe=One-Click"),
    ("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click&List-Unsubscribe=One-Click"),
    ("application/x-www-form-urlencoded", b"email[]=a@example.org&email[]=b@example.org&topics[][x]=1"),
    ("application/x-www-form-urlencoded", b"email=" + b"a" * 300 + b"@example.org"),
    ("application/x-www-form-urlencoded", b"digest_size=99999999999999999999999999&send_hour=-1&weekday=1e9"),
    ("application/x-www-form-urlencoded", b"timezone=..%2F..%2Fetc%2Fpasswd&timezone=Mars%2FBase&weeks=NaN"),
]


@pytest.mark.parametrize("content_type, body", BAD_BODIES)
def test_malformed_bodies_are_refused_without_a_500(safe_client, world, content_type, body):
    for path in public_paths(world):
        response = safe_client.generic("POST", path, data=body, content_type=content_type)
        _assert_no_500(response, (path, content_type))


def test_an_oversized_body_is_refused_with_400(safe_client, world):
    big = b"email=a%40example.org&interests=" + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)
    for path in ["/", f"/manage/{world['manage']}/", f"/unsubscribe/{world['unsubscribe']}/", "/link/"]:
        response = safe_client.generic("POST", path, data=big, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 400, path


def test_too_many_fields_are_refused_with_400(safe_client, world):
    body = "&".join(f"f{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 50)).encode()
    for path in ["/", f"/manage/{world['manage']}/", f"/unsubscribe/{world['unsubscribe']}/"]:
        response = safe_client.generic("POST", path, data=body, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 400, path


def test_a_post_without_a_csrf_token_is_403_and_signs_nobody_up(strict_client, world):
    before = Subscriber.objects.count()
    response = strict_client.post("/", {"email": "csrf@example.org", "interests": "robots"})
    assert response.status_code == 403
    assert Subscriber.objects.count() == before


def test_odd_headers_and_query_strings_never_cause_a_500(safe_client, world):
    headers = {
        "HTTP_HOST": "evil.example.com",
        "HTTP_X_FORWARDED_FOR": "not-an-ip, ::::, 999.1.1.1",
        "HTTP_USER_AGENT": "\x00" * 2000,
        "HTTP_COOKIE": "csrftoken=\x00; sessionid=" + "%" * 100,
        "HTTP_ACCEPT_LANGUAGE": "xx-" * 200,
    }
    for path in public_paths(world):
        response = safe_client.get(path + "?saved=%ff&welcome=1&welcome=2&a[]=1&" + "q=1&" * 300, **headers)
        _assert_no_500(response, path)
        response = safe_client.post(path, {"email": "x@example.org"}, **{k: v for k, v in headers.items() if k != "HTTP_HOST"})
        _assert_no_500(response, path)


def test_a_host_not_in_allowed_hosts_gets_400(safe_client, world):
    assert safe_client.get("/", HTTP_HOST="evil.example.com").status_code == 400


# ---------------------------------------------------------------- path parameters


@pytest.mark.parametrize(
    "date",
    ["2024-02-30", "99999-01-01", "0000-00-00", "2024-3-12", "2024-03-13", "yesterday", "%00", "2024-03-12%00",
     "2024-03-12T00:00", "-1", "9" * 500, "2024-03-12%2F..", "%E2%80%AE2024"],
)
def test_the_archive_refuses_anything_not_a_published_date_with_404(safe_client, world, date):
    response = safe_client.get(f"/digest/{date}/")
    assert response.status_code == 404, date


def test_the_archive_serves_a_published_edition(safe_client, world):
    assert safe_client.get(f"/digest/{DAY.isoformat()}/").status_code == 200
    assert safe_client.get("/feed/").status_code == 200


@pytest.mark.parametrize(
    "name", ["..%2F..%2Fetc%2Fpasswd", "../settings.py", "x.eml%00.txt", ".eml", "a" * 300 + ".eml", "%ff.eml", "CON.eml"]
)
def test_the_dev_mail_view_refuses_odd_names_with_404(safe_client, db, name, tmp_path, settings):
    settings.MAIL_CATCHER_DIR = str(tmp_path)
    (tmp_path / "real.eml").write_bytes(b"Subject: hi\r\n\r\nbody")
    for suffix in ("", "html/"):
        response = safe_client.get(f"/dev/mail/{name}/{suffix}")
        assert response.status_code == 404, name


def test_the_dev_mail_view_survives_a_broken_message_file(safe_client, db, tmp_path, settings):
    settings.MAIL_CATCHER_DIR = str(tmp_path)
    (tmp_path / "broken.eml").write_bytes(b"\xff\xfe\x00Subject: =?utf-8?q?=ZZ?=\r\nContent-Type: text/html; charset=nope\r\n\r\n\xff")
    (tmp_path / "empty.eml").write_bytes(b"")
    for path in ["/dev/mail/", "/dev/mail/broken.eml/", "/dev/mail/broken.eml/html/", "/dev/mail/empty.eml/"]:
        _assert_no_500(safe_client.get(path), path)


@pytest.mark.parametrize("kind", ["confirm", "manage", "unsubscribe"])
@pytest.mark.parametrize(
    "token",
    ["", "a", "x" * 5000, "%00", "..", "eyJzIjoiMSIsImsiOiJ4In0:1abcde:bad", "eyJzIjpbXX0:1abc:x",
     "%ff%fe", "e30:1sxQzN:" + "A" * 43, "null", "🙂" * 50],
)
def test_bad_tokens_get_a_clear_page_for_every_method(safe_client, db, kind, token):
    path = f"/{kind}/{quote(token, safe='%')}/"
    for method in ("get", "post", "put"):
        response = getattr(safe_client, method)(path)
        assert response.status_code in (400, 404, 405, 410), (method, path, response.status_code)


# ---------------------------------------------------------------- the tracking webhook


def test_the_webhook_with_the_right_secret_refuses_malformed_payloads_without_a_500(safe_client, db):
    auth = _auth(settings.ANYMAIL["WEBHOOK_SECRET"])
    payloads = [b"", b"{not json", b"[]", b"null", b"42", b'"text"', b'{"RecordType": 7}', b"\xff\xfe",
                json.dumps({"RecordType": "Bounce", "Email": ["a"], "BouncedAt": "not a date"}).encode()]
    for esp in ESP_WEBHOOKS:
        for body in payloads:
            response = safe_client.post(f"/anymail/{esp}/tracking/", data=body, content_type="application/json", **auth)
            _assert_no_500(response, (esp, body))


def test_the_webhook_of_an_esp_we_are_not_configured_for_is_not_a_500(safe_client, db):
    """anymail.urls mounts every ESP; one we have no settings for must not answer 500 to strangers."""
    for esp in UNCONFIGURED_ESP_WEBHOOKS:
        path = f"/anymail/{esp}/tracking/"
        _assert_no_500(safe_client.get(path), (esp, "GET"))
        _assert_no_500(safe_client.post(path, data=b"x=1", content_type="application/x-www-form-urlencoded"), (esp, "POST"))


# ---------------------------------------------------------------- property-based


_field_values = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["", "0", "-1", "31", "25", "1e3", "daily", "weekly", "UTC", "Europe/Berlin", "robotics", "\r\n"]),
)
_form = st.dictionaries(
    st.sampled_from(["email", "topics", "interests", "frequency", "weekday", "send_hour", "timezone", "digest_size",
                     "weeks", "resume", "List-Unsubscribe", "csrfmiddlewaretoken"]),
    st.one_of(_field_values, st.lists(_field_values, max_size=4)),
    max_size=10,
)


@HYPOTHESIS
@given(data=_form)
def test_any_form_posted_to_any_form_page_is_answered_without_a_500(safe_client, world, data):
    for path in ["/", "/link/", f"/manage/{world['manage']}/", f"/manage/{world['manage']}/pause/",
                 f"/confirm/{world['confirm']}/", f"/unsubscribe/{world['unsubscribe']}/"]:
        response = safe_client.post(path, data)
        _assert_no_500(response, (path, data))


@HYPOTHESIS
@given(segment=st.text(min_size=1, max_size=120))
def test_any_path_segment_under_any_public_prefix_is_answered_without_a_500(safe_client, world, segment):
    quoted = quote(segment, safe="")
    for prefix in ["/digest/", "/confirm/", "/manage/", "/unsubscribe/", "/dev/mail/", "/anymail/", "/"]:
        response = safe_client.get(f"{prefix}{quoted}/")
        _assert_no_500(response, (prefix, segment))


@HYPOTHESIS
@given(body=st.binary(max_size=2000), content_type=st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=zz"]))
def test_any_bytes_posted_to_the_webhook_and_one_click_are_answered_without_a_500(safe_client, world, body, content_type):
    auth = _auth(settings.ANYMAIL["WEBHOOK_SECRET"])
    for path in ["/anymail/postmark/tracking/", "/anymail/sendgrid/tracking/", f"/unsubscribe/{world['unsubscribe']}/", "/"]:
        response = safe_client.generic("POST", path, data=body, content_type=content_type, **auth)
        _assert_no_500(response, (path, body[:80]))


def test_a_user_agent_with_nul_bytes_is_stored_without_them(safe_client, world):
    """PostgreSQL text columns refuse NUL: the consent evidence drops it instead of answering 500."""
    from digest.models import Topic

    topic = Topic.objects.first()
    response = safe_client.post("/", {"email": "nul@example.org", "topics": [topic.slug] if topic else [],
                                      "interests": "robots", "frequency": "daily", "weekday": 0, "send_hour": 7,
                                      "timezone": "UTC", "digest_size": 10}, HTTP_USER_AGENT="Mozilla\x00/5.0\x00")
    assert response.status_code == 302
    from subscriptions.services import signup_requests_process

    signup_requests_process()  # the worker's part
    assert Subscriber.objects.get(email="nul@example.org").signup_user_agent == "Mozilla/5.0"
