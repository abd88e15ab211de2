"""Behind a proxy (RATELIMIT_IP_META_KEY=HTTP_X_FORWARDED_FOR): rate limits and consent evidence
use the forwarded address, and a request without the header uses the connecting one."""

import datetime

import pytest
import time_machine

from subscriptions.models import SignupRequest
from tests.test_foundation import _start_django
from tests.test_signup import _form

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.2"


@pytest.fixture
def behind_proxy(settings):
    # What settings.py makes of RATELIMIT_IP_META_KEY=HTTP_X_FORWARDED_FOR (checked below).
    settings.CLIENT_IP_META_KEY = "HTTP_X_FORWARDED_FOR"
    settings.RATELIMIT_IP_META_KEY = "digest.client_address.ratelimit_ip"
    return settings


def _signup(client, email, **headers):
    return client.post("/", _form(email=email, topics=[]), **{"REMOTE_ADDR": PROXY, **headers})


def test_the_setting_points_django_ratelimit_at_the_fallback_function():
    result = _start_django(
        {"RATELIMIT_IP_META_KEY": "HTTP_X_FORWARDED_FOR"},
        "from django.conf import settings as s; print(s.CLIENT_IP_META_KEY, s.RATELIMIT_IP_META_KEY)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["HTTP_X_FORWARDED_FOR", "digest.client_address.ratelimit_ip"]


@pytest.mark.parametrize(
    "value, hint",
    [("X-Forwarded-For", "e.g. HTTP_X_FORWARDED_FOR"), ("http_x_real_ip", "e.g. HTTP_X_REAL_IP"),
     ("digest.views.ip", "must be REMOTE_ADDR or a header")],
)  # fmt: skip
def test_a_value_that_is_not_a_meta_name_fails_at_start_naming_the_variable(value, hint):
    result = _start_django({"RATELIMIT_IP_META_KEY": value})
    assert result.returncode != 0
    assert "Setting RATELIMIT_IP_META_KEY: must be REMOTE_ADDR or a header" in result.stderr and hint in result.stderr


def test_without_the_header_signup_link_request_and_admin_login_answer_normally(client, behind_proxy):
    # Health checks and direct hits on the app server carry no X-Forwarded-For.
    assert _signup(client, "ada@example.org").status_code == 302
    assert SignupRequest.objects.get().signup_ip == PROXY
    assert client.post("/link/", {"email": "ada@example.org"}, REMOTE_ADDR=PROXY).status_code == 302
    assert client.post("/admin/login/", {"username": "admin", "password": "guess"}, REMOTE_ADDR=PROXY).status_code == 200


def test_with_the_header_the_limit_keys_on_the_forwarded_address(client, behind_proxy):
    behind_proxy.SIGNUP_RATE_PER_IP = "2/h"
    with time_machine.travel(datetime.datetime(2026, 4, 24, 6, 0, tzinfo=datetime.UTC), tick=False):
        first = [_signup(client, f"n{i}@example.org", HTTP_X_FORWARDED_FOR="198.51.100.7, 10.0.0.1").status_code
                 for i in range(3)]  # fmt: skip
        # Another visitor through the same proxy has a count of their own.
        other = _signup(client, "grace@example.org", HTTP_X_FORWARDED_FOR="198.51.100.8").status_code
        # So does a request without the header: the proxy's own address.
        direct = _signup(client, "direct@example.org").status_code
    assert first == [302, 302, 429]
    assert (other, direct) == (302, 302)
    ips = {r.email: r.signup_ip for r in SignupRequest.objects.all()}
    assert ips == {"n0@example.org": "198.51.100.7", "n1@example.org": "198.51.100.7",
                   "grace@example.org": "198.51.100.8", "direct@example.org": PROXY}  # fmt: skip


@pytest.mark.parametrize("header", ["not-an-ip, 198.51.100.9", "", "   ", "999.1.1.1", "unknown"])
def test_a_header_without_a_usable_first_address_falls_back_to_the_connecting_one(client, behind_proxy, header):
    assert _signup(client, "ada@example.org", HTTP_X_FORWARDED_FOR=header).status_code == 302
    assert SignupRequest.objects.get().signup_ip == PROXY


@pytest.mark.parametrize(
    "header, ip",
    [("203.0.113.7:51234", "203.0.113.7"), ("[2001:db8::1]:443, 10.0.0.1", "2001:db8::1"), ("2001:db8::2", "2001:db8::2")],
)
def test_a_forwarded_address_with_a_port_or_ipv6_is_read(client, behind_proxy, header, ip):
    assert _signup(client, "ada@example.org", HTTP_X_FORWARDED_FOR=header).status_code == 302
    assert SignupRequest.objects.get().signup_ip == ip


def test_an_empty_remote_addr_is_limited_not_a_500(client, settings):
    # A Unix-socket proxy with no forwarding header configured: django-ratelimit raised here.
    assert _signup(client, "ada@example.org", REMOTE_ADDR="").status_code == 302
