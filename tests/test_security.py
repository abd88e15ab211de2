"""Security defaults an operator can rely on without reading the code."""

import datetime
import os
import secrets
import subprocess
import sys

import pytest
import time_machine
from django.conf import settings

PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "paperboy.example.org",
    "SITE_URL": "https://paperboy.example.org",
    # Nothing below connects to them: `check` without --database opens no connection.
    "DATABASE_URL": "postgres://paperboy:db-password@db.internal:5432/paperboy",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "DEFAULT_FROM_EMAIL": "Paperboy <digest@paperboy.example.org>",
    "ANYMAIL_ESP": "postmark",
    "ANYMAIL_POSTMARK_SERVER_TOKEN": "server-token",
    "ANYMAIL_WEBHOOK_SECRET": "hook:" + secrets.token_urlsafe(24),
}


def _manage(*args, extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ANYMAIL_", "EMAIL_"))}
    env.update(PRODUCTION_ENV, **(extra_env or {}))
    return subprocess.run(
        [sys.executable, "manage.py", *args], env=env, capture_output=True, text=True, cwd=settings.BASE_DIR
    )


def test_check_deploy_is_clean_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


_HSTS_HEADER = (
    "from django.http import HttpResponse; from django.middleware.security import SecurityMiddleware; "
    "from django.test import RequestFactory; "
    "print(SecurityMiddleware(lambda r: HttpResponse())(RequestFactory().get('/', secure=True))['Strict-Transport-Security'])"
)


@pytest.mark.parametrize(
    "env, header",
    [({}, "max-age=31536000; includeSubDomains; preload"),
     ({"SECURE_HSTS_PRELOAD": "false"}, "max-age=31536000; includeSubDomains")],
)  # fmt: skip
def test_hsts_asks_for_the_preload_list_unless_the_operator_turns_it_off(env, header):
    result = _manage("shell", "--no-imports", "-c", _HSTS_HEADER, extra_env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == header


def test_check_deploy_is_clean_with_preload_turned_off():
    # W021 only says the site cannot be submitted to the preload list: what the operator chose.
    result = _manage("check", "--deploy", "--fail-level", "WARNING", extra_env={"SECURE_HSTS_PRELOAD": "off"})
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_turning_preload_off_silences_no_other_deploy_warning():
    result = _manage("check", "--deploy", extra_env={"SECURE_HSTS_PRELOAD": "off", "SECURE_HSTS_SECONDS": "0"})
    assert "security.W004" in result.stderr  # no HSTS at all is still worth a warning
    assert "security.W021" not in result.stderr


# What SecurityMiddleware answers a plain-http request that claims to have come over https.
_CLAIMED_HTTPS = (
    "from django.http import HttpResponse; from django.middleware.security import SecurityMiddleware; "
    "from django.test import RequestFactory; "
    "r = RequestFactory().get('/', HTTP_HOST='paperboy.example.org', HTTP_X_FORWARDED_PROTO='https'); "
    "print(r.is_secure(), SecurityMiddleware(lambda r: HttpResponse())(r).status_code)"
)
_BEHIND_PROXY = {"RATELIMIT_IP_META_KEY": "HTTP_X_FORWARDED_FOR", "TRUSTED_PROXY_COUNT": "1"}


@pytest.mark.parametrize(
    "env, answer",
    [({}, "False 301"),  # no proxy declared: anyone could send the header
     (_BEHIND_PROXY, "True 200"),  # the README's deployment behind a proxy (Heroku, Render, nginx)
     ({"TRUST_X_FORWARDED_PROTO": "true"}, "True 200"),
     ({**_BEHIND_PROXY, "TRUST_X_FORWARDED_PROTO": "off"}, "False 301")],
)  # fmt: skip
def test_x_forwarded_proto_is_believed_only_where_the_operator_says_a_proxy_is_in_front(env, answer):
    result = _manage("shell", "--no-imports", "-c", _CLAIMED_HTTPS, extra_env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == answer


def test_a_proxied_site_that_loops_on_its_https_redirect_says_once_which_setting_ends_it(settings, caplog):
    from django.http import HttpResponse
    from django.test import RequestFactory

    from digest.client_address import UntrustedForwardedProtoMiddleware

    settings.SECURE_SSL_REDIRECT, settings.SECURE_PROXY_SSL_HEADER = True, None  # production, no proxy declared
    middleware = UntrustedForwardedProtoMiddleware(lambda request: HttpResponse())
    factory = RequestFactory()
    middleware(factory.get("/"))
    assert not caplog.records  # plain http, nothing claimed: the redirect is right
    for _ in range(3):
        middleware(factory.get("/", HTTP_X_FORWARDED_PROTO="https"))
    assert len(caplog.records) == 1
    assert "TRUSTED_PROXY_COUNT" in caplog.records[0].getMessage()


def test_the_redirect_loop_warning_is_not_installed_where_the_proxy_is_trusted(settings):
    from django.core.exceptions import MiddlewareNotUsed

    from digest.client_address import UntrustedForwardedProtoMiddleware

    settings.SECURE_SSL_REDIRECT, settings.SECURE_PROXY_SSL_HEADER = True, ("HTTP_X_FORWARDED_PROTO", "https")
    with pytest.raises(MiddlewareNotUsed):
        UntrustedForwardedProtoMiddleware(lambda request: None)


@pytest.mark.parametrize("env", [{}, _BEHIND_PROXY])
def test_check_deploy_is_clean_with_and_without_a_proxy_in_front(env):
    result = _manage("check", "--deploy", "--fail-level", "WARNING", extra_env=env)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_a_bad_trust_x_forwarded_proto_value_stops_the_start_in_one_line():
    result = _manage("check", extra_env={"TRUST_X_FORWARDED_PROTO": "maybe"})
    assert result.returncode != 0
    assert result.stderr == "manage.py: Setting TRUST_X_FORWARDED_PROTO: must be true or false (or yes/no, on/off, 1/0), not 'maybe'\n"


def test_a_bad_preload_value_stops_the_start_in_one_line():
    result = _manage("check", extra_env={"SECURE_HSTS_PRELOAD": "maybe"})
    assert result.returncode != 0
    assert result.stderr == "manage.py: Setting SECURE_HSTS_PRELOAD: must be true or false (or yes/no, on/off, 1/0), not 'maybe'\n"


@pytest.mark.parametrize(
    "missing, message",
    [("SECRET_KEY", "SECRET_KEY"), ("ALLOWED_HOSTS", "ALLOWED_HOSTS"), ("ANYMAIL_WEBHOOK_SECRET", "ANYMAIL_WEBHOOK_SECRET")],
)
def test_production_refuses_to_start_without_its_secrets(missing, message):
    result = _manage("check", extra_env={missing: ""})
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize("missing", ["SITE_URL", "DATABASE_URL", "REDIS_URL", "DEFAULT_FROM_EMAIL"])
def test_production_refuses_to_start_on_a_development_default(missing):
    # The defaults are localhost links, SQLite, the embedded Redis and a @localhost sender.
    result = _manage("check", "--deploy", extra_env={missing: ""})
    assert result.returncode != 0
    # One line naming the variable, not a traceback through Django's settings loader.
    assert result.stderr.startswith(f"manage.py: Setting {missing}: is required when DJANGO_ENV=production")
    assert "Traceback" not in result.stderr


def test_production_offers_the_unsubscribe_mailto_only_when_one_is_configured():
    show = ("shell", "--no-imports", "-c", "from django.conf import settings; print(repr(settings.UNSUBSCRIBE_MAILTO))")
    assert _manage(*show).stdout.strip() == "''"
    configured = _manage(*show, extra_env={"UNSUBSCRIBE_MAILTO": "unsubscribe@paperboy.example.org"})
    assert configured.stdout.strip() == "'unsubscribe@paperboy.example.org'"


def test_production_refuses_sqlite_in_one_line():
    result = _manage("check", extra_env={"DATABASE_URL": "sqlite:////tmp/paperboy.sqlite3"})
    assert result.returncode != 0
    assert result.stderr == "manage.py: Setting DATABASE_URL: must be postgres://... when DJANGO_ENV=production (SQLite is for development)\n"


def test_production_refuses_a_plain_http_site_url():
    result = _manage("check", extra_env={"SITE_URL": "http://paperboy.example.org"})
    assert result.returncode != 0
    assert "SITE_URL" in result.stderr


def test_production_refuses_a_site_url_whose_host_allowed_hosts_would_turn_away():
    # Every confirm, manage and unsubscribe link in every email would answer 400 (DisallowedHost).
    result = _manage("check", "--deploy", extra_env={"ALLOWED_HOSTS": "other.example.org"})
    assert result.returncode != 0
    assert ("Setting SITE_URL: its host 'paperboy.example.org' is not allowed by ALLOWED_HOSTS (other.example.org)"
            in result.stderr)


@pytest.mark.parametrize(
    "allowed_hosts, site_url",
    [
        (".example.org", "https://paperboy.example.org"),
        ("*", "https://paperboy.example.org"),
        ("www.example.org,PAPERBOY.example.org", "https://paperboy.example.org:8443/"),
        ("paperboy.example.org", "https://paperboy.example.org./"),
    ],
)
def test_production_accepts_a_site_url_host_that_allowed_hosts_allows(allowed_hosts, site_url):
    result = _manage("check", extra_env={"ALLOWED_HOSTS": allowed_hosts, "SITE_URL": site_url})
    assert result.returncode == 0, result.stderr


def test_public_pages_carry_a_content_security_policy(client, db):
    response = client.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy


def test_admin_login_is_rate_limited_per_ip(client, db):
    # The clock stands still: django-ratelimit counts in fixed windows, and 15 slow posts
    # straddling a window edge on a busy machine would split into two counts under the limit.
    with time_machine.travel(datetime.datetime(2026, 4, 24, 6, 0, 0, tzinfo=datetime.UTC), tick=False):
        answers = [
            client.post("/admin/login/", {"username": "admin", "password": f"guess-{i}"}).status_code
            for i in range(15)
        ]
    assert answers[0] == 200
    assert 429 in answers


def test_with_redis_unreachable_the_admin_login_gets_a_clear_503(client, db, settings):
    from django.core.cache import caches

    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:9/0"}}
    caches["default"].close()
    del caches["default"]  # rebuilt from the new settings on next use
    response = client.post("/admin/login/", {"username": "admin", "password": "guess"})
    assert response.status_code == 503
    assert response["Retry-After"] == "300"
    assert "Back in a moment" in response.content.decode()


def test_error_pages_show_no_settings_or_secrets(client, db):
    response = client.get("/no-such-page/" + "x" * 50)
    assert response.status_code == 404
    body = response.content.decode()
    assert settings.SECRET_KEY not in body
    assert "Traceback" not in body and "settings" not in body.lower()


def test_no_secret_reaches_the_logs(client, db, caplog, settings, smtp_sink):
    """Requests and sends that log (refused webhook, a webhook 500, signup, unsubscribe, an SMTP
    failure with credentials set) never write the secret key, webhook secret or SMTP password."""
    import base64
    import logging

    from subscriptions.models import Subscriber
    from subscriptions.services import subscriber_send_confirmation
    from subscriptions.tokens import Purpose, token_make
    from tests.factories import SubscriberFactory

    settings.EMAIL_HOST_USER = "mailer"
    settings.EMAIL_HOST_PASSWORD = "smtp-password-" + secrets.token_hex(8)
    webhook_secret = settings.ANYMAIL["WEBHOOK_SECRET"]
    secrets_to_hide = [settings.SECRET_KEY, webhook_secret.partition(":")[2], settings.EMAIL_HOST_PASSWORD]
    caplog.set_level(logging.DEBUG)
    quiet = client.__class__(raise_request_exception=False)

    def basic(value):
        return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(value.encode()).decode()}

    quiet.post("/anymail/postmark/tracking/", "{}", content_type="application/json", **basic("nope:nope"))
    quiet.post("/anymail/postmark/tracking/", "{broken", content_type="application/json", **basic(webhook_secret))
    quiet.post("/", {"email": "reader@example.org", "interests": "robots"})
    confirmed = SubscriberFactory()
    quiet.post(f"/unsubscribe/{token_make(subscriber=confirmed, purpose=Purpose.UNSUBSCRIBE)}/",
               "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    pending = SubscriberFactory(status=Subscriber.Status.PENDING)
    try:
        subscriber_send_confirmation(subscriber=pending)  # the sink offers no AUTH: the send fails
    except Exception:
        logging.getLogger("celery.app.trace").exception("Task failed")  # what the worker would log
    logged = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    assert caplog.records, "nothing was logged: the test would prove nothing"
    for secret in secrets_to_hide:
        assert secret not in logged
