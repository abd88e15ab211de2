"""Security defaults an operator can rely on without reading the code."""

import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings

PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "paperboy.example.org",
    "SITE_URL": "https://paperboy.example.org",
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


@pytest.mark.parametrize(
    "missing, message",
    [("SECRET_KEY", "SECRET_KEY"), ("ALLOWED_HOSTS", "ALLOWED_HOSTS"), ("ANYMAIL_WEBHOOK_SECRET", "ANYMAIL_WEBHOOK_SECRET")],
)
def test_production_refuses_to_start_without_its_secrets(missing, message):
    result = _manage("check", extra_env={missing: ""})
    assert result.returncode != 0
    assert message in result.stderr


def test_production_refuses_a_plain_http_site_url():
    result = _manage("check", extra_env={"SITE_URL": "http://paperboy.example.org"})
    assert result.returncode != 0
    assert "SITE_URL" in result.stderr


def test_public_pages_carry_a_content_security_policy(client):
    response = client.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy


def test_admin_login_is_rate_limited_per_ip(client, db):
    answers = [
        client.post("/admin/login/", {"username": "admin", "password": f"guess-{i}"}).status_code
        for i in range(15)
    ]
    assert answers[0] == 200
    assert 429 in answers


def test_error_pages_show_no_settings_or_secrets(client, db):
    response = client.get("/no-such-page/" + "x" * 50)
    assert response.status_code == 404
    body = response.content.decode()
    assert settings.SECRET_KEY not in body
    assert "Traceback" not in body and "settings" not in body.lower()
