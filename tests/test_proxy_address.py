"""Behind a proxy (RATELIMIT_IP_META_KEY=HTTP_X_FORWARDED_FOR): rate limits and consent evidence
use the address the outermost of TRUSTED_PROXY_COUNT proxies saw, whatever the visitor put in
the header themselves, and a request without it uses the connecting one."""

import datetime

import pytest
import time_machine

from digest.client_address import client_ip
from subscriptions.models import SignupRequest
from tests.test_foundation import _start_django
from tests.test_security import _manage
from tests.test_signup import _form

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.2"  # the proxy that connects to the app: REMOTE_ADDR
OUTER_PROXY = "10.0.0.1"  # a second one in front of it (a CDN), as PROXY saw it


@pytest.fixture
def behind_proxy(settings):
    # What settings.py makes of RATELIMIT_IP_META_KEY=HTTP_X_FORWARDED_FOR (checked below).
    settings.CLIENT_IP_META_KEY = "HTTP_X_FORWARDED_FOR"
    settings.TRUSTED_PROXY_COUNT = 1
    settings.RATELIMIT_IP_META_KEY = "digest.client_address.ratelimit_ip"
    return settings


def _through(proxies: int, visitor: str, sent: str = "") -> str:
    """X-Forwarded-For as `proxies` appending proxies hand it to the app: what the visitor sent,
    the visitor's address (appended by the outermost), then each proxy's but the last's."""
    return ", ".join(([sent] if sent else []) + [visitor] + [OUTER_PROXY] * (proxies - 1))


def _signup(client, email, **headers):
    return client.post("/", _form(email=email, topics=[]), **{"REMOTE_ADDR": PROXY, **headers})


def test_the_setting_points_django_ratelimit_at_the_fallback_function():
    result = _start_django(
        {"RATELIMIT_IP_META_KEY": "HTTP_X_FORWARDED_FOR"},
        "from django.conf import settings as s; print(s.CLIENT_IP_META_KEY, s.RATELIMIT_IP_META_KEY, s.TRUSTED_PROXY_COUNT)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["HTTP_X_FORWARDED_FOR", "digest.client_address.ratelimit_ip", "1"]


@pytest.mark.parametrize("env, count", [({"TRUSTED_PROXY_COUNT": "2"}, "2"), ({"TRUSTED_PROXY_COUNT": " 3 "}, "3")])
def test_trusted_proxy_count_is_read_from_the_environment(env, count):
    result = _start_django(
        {"RATELIMIT_IP_META_KEY": "HTTP_X_FORWARDED_FOR", **env},
        "from django.conf import settings as s; print(s.TRUSTED_PROXY_COUNT)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [count]


@pytest.mark.parametrize(
    "env, message",
    [
        ({"TRUSTED_PROXY_COUNT": "-1"}, "Setting TRUSTED_PROXY_COUNT: must be at least 0, not -1"),
        ({"TRUSTED_PROXY_COUNT": "two"}, "Setting TRUSTED_PROXY_COUNT: cannot read 'two' as a whole number"),
        ({"TRUSTED_PROXY_COUNT": "1.5"}, "Setting TRUSTED_PROXY_COUNT: cannot read '1.5' as a whole number"),
        # A header trusted through no proxy: unsetting the header says that.
        ({"TRUSTED_PROXY_COUNT": "0"}, "Setting TRUSTED_PROXY_COUNT: must be at least 1 with RATELIMIT_IP_META_KEY=HTTP_X_FORWARDED_FOR"),
        # A count with no header to count in: every visitor would share the proxy's address.
        ({"TRUSTED_PROXY_COUNT": "2", "RATELIMIT_IP_META_KEY": ""}, "Setting TRUSTED_PROXY_COUNT: counts the proxies"),
    ],
)  # fmt: skip
def test_a_bad_trusted_proxy_count_stops_the_start_in_one_line(env, message):
    result = _manage("check", extra_env={"RATELIMIT_IP_META_KEY": "HTTP_X_FORWARDED_FOR", **env})
    assert result.returncode != 0
    assert result.stderr.startswith(f"manage.py: {message}") and result.stderr.count("\n") == 1, result.stderr


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


@pytest.mark.parametrize("proxies", [1, 2])
def test_with_the_header_the_limit_keys_on_the_forwarded_address(client, behind_proxy, proxies):
    behind_proxy.SIGNUP_RATE_PER_IP = "2/h"
    behind_proxy.TRUSTED_PROXY_COUNT = proxies
    with time_machine.travel(datetime.datetime(2026, 4, 24, 6, 0, tzinfo=datetime.UTC), tick=False):
        first = [_signup(client, f"n{i}@example.org", HTTP_X_FORWARDED_FOR=_through(proxies, "198.51.100.7")).status_code
                 for i in range(3)]  # fmt: skip
        # Another visitor through the same proxies has a count of their own.
        other = _signup(client, "grace@example.org", HTTP_X_FORWARDED_FOR=_through(proxies, "198.51.100.8")).status_code
        # So does a request without the header: the proxy's own address.
        direct = _signup(client, "direct@example.org").status_code
    assert first == [302, 302, 429]
    assert (other, direct) == (302, 302)
    ips = {r.email: r.signup_ip for r in SignupRequest.objects.all()}
    assert ips == {"n0@example.org": "198.51.100.7", "n1@example.org": "198.51.100.7",
                   "grace@example.org": "198.51.100.8", "direct@example.org": PROXY}  # fmt: skip


@pytest.mark.parametrize("proxies", [1, 2])
@pytest.mark.parametrize("sent", ["203.0.113.66", "203.0.113.66, 192.0.2.1", "not-an-ip", "2001:db8::66, unknown"])
def test_what_the_visitor_puts_before_their_address_does_not_change_it(rf, behind_proxy, proxies, sent):
    behind_proxy.TRUSTED_PROXY_COUNT = proxies
    request = rf.post("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=_through(proxies, "198.51.100.7", sent=sent))
    assert client_ip(request) == "198.51.100.7"


@pytest.mark.parametrize("proxies", [1, 2])
def test_rotating_a_spoofed_prefix_does_not_dodge_the_signup_limit(client, behind_proxy, proxies):
    behind_proxy.SIGNUP_RATE_PER_IP = "2/h"
    behind_proxy.TRUSTED_PROXY_COUNT = proxies
    with time_machine.travel(datetime.datetime(2026, 4, 24, 6, 0, tzinfo=datetime.UTC), tick=False):
        answers = [
            _signup(client, f"n{i}@example.org", HTTP_X_FORWARDED_FOR=_through(proxies, "198.51.100.7", sent=f"203.0.113.{i}"))
            .status_code
            for i in range(4)
        ]
    assert answers == [302, 302, 429, 429]
    # The consent evidence is the visitor's address too, not the one they claimed.
    assert set(SignupRequest.objects.values_list("signup_ip", flat=True)) == {"198.51.100.7"}


@pytest.mark.parametrize("header", ["198.51.100.7", "198.51.100.7, ", ""])
def test_a_header_with_fewer_addresses_than_proxies_counts_by_the_connecting_address(rf, behind_proxy, header):
    # It did not pass the outer proxy (a direct hit on the inner one), so any entry may be the visitor's own.
    behind_proxy.TRUSTED_PROXY_COUNT = 2
    assert client_ip(rf.post("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=header)) == PROXY


@pytest.mark.parametrize("header", ["198.51.100.9, not-an-ip", "", "   ", "999.1.1.1", "unknown", "198.51.100.9,"])
def test_a_header_without_a_usable_address_where_the_proxy_writes_it_falls_back_to_the_connecting_one(
    client, behind_proxy, header
):
    assert _signup(client, "ada@example.org", HTTP_X_FORWARDED_FOR=header).status_code == 302
    assert SignupRequest.objects.get().signup_ip == PROXY


@pytest.mark.parametrize(
    "header, ip",
    [("203.0.113.7:51234", "203.0.113.7"), ("198.51.100.1, [2001:db8::1]:443", "2001:db8::1"), ("2001:db8::2", "2001:db8::2")],
)
def test_a_forwarded_address_with_a_port_or_ipv6_is_read(client, behind_proxy, header, ip):
    assert _signup(client, "ada@example.org", HTTP_X_FORWARDED_FOR=header).status_code == 302
    assert SignupRequest.objects.get().signup_ip == ip


def test_an_empty_remote_addr_is_limited_not_a_500(client, settings):
    # A Unix-socket proxy with no forwarding header configured: django-ratelimit raised here.
    assert _signup(client, "ada@example.org", REMOTE_ADDR="").status_code == 302
