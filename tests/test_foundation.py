import subprocess
import sys

import pytest
from django.core.cache import cache


def test_the_cache_is_a_real_redis():
    cache.set("ping", "pong", 5)
    assert cache.get("ping") == "pong"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"DJANGO_ENV": "staging"}, "DJANGO_ENV"),
        ({"DJANGO_ENV": "production"}, "SECRET_KEY"),
        ({"DATABASE_URL": "nonsense://x"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL"),
        ({"EMAIL_PORT": "twenty-five"}, "EMAIL_PORT"),
    ],
)
def test_bad_settings_fail_at_start_with_the_variable_named(env, message):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "digest.settings", **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert message in result.stderr
