import json
import subprocess
import sys
from pathlib import Path

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
        ({"EMAIL_PORT": "99999"}, "EMAIL_PORT: must be at most 65535"),
        ({"FETCH_TIMEOUT": "inf"}, "FETCH_TIMEOUT: cannot read 'inf' as a number"),
        ({"DEFAULT_FROM_EMAIL": "notanemail"}, "DEFAULT_FROM_EMAIL: must be an address"),
        ({"SERVER_EMAIL": "Ops <ops@>"}, "SERVER_EMAIL: must be an address"),
        ({"ARXIV_CATEGORIES": "cs.LG;cs.CL"}, "ARXIV_CATEGORIES: must be arXiv categories separated by commas"),
        # Any lower-case word read as a category; arXiv has no archive "foo".
        ({"ARXIV_CATEGORIES": "cs.LG,foo"}, "ARXIV_CATEGORIES: must be arXiv categories separated by commas"),
        ({"ARXIV_CATEGORIES": "foo.LG"}, "ARXIV_CATEGORIES: must be arXiv categories separated by commas"),
        # An archive with a subject class it does not have: arXiv answered nothing for it, daily.
        ({"ARXIV_CATEGORIES": "cs.LG,cs.FOO"}, "ARXIV_CATEGORIES: must be arXiv categories separated by commas"
                                              " (cs.LG,cs.CL,hep-th), not 'cs.LG,cs.FOO'; unknown: 'cs.FOO'"),
        ({"ARXIV_CATEGORIES": "cs.lg,stat.ML"}, "unknown: 'cs.lg' (did you mean cs.LG?)"),
        # It goes into <mailto:...> of List-Unsubscribe as it is.
        ({"UNSUBSCRIBE_MAILTO": "a b"}, "UNSUBSCRIBE_MAILTO: must be an address"),
        ({"UNSUBSCRIBE_MAILTO": "notanemail"}, "UNSUBSCRIBE_MAILTO: must be an address"),
        ({"UNSUBSCRIBE_MAILTO": "Unsubscribe <unsubscribe@example.org>"}, "UNSUBSCRIBE_MAILTO: must be an address"),
        ({"UNSUBSCRIBE_MAILTO": "un?subscribe@example.org"}, "UNSUBSCRIBE_MAILTO: must be an address"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL (any case), not 'LOUD'"),
        # django-ratelimit reads a rate only at the first request, where a bad one was a 500.
        ({"SIGNUP_RATE_PER_IP": "lots"}, "SIGNUP_RATE_PER_IP: must be a rate like 10/h"),
        ({"SIGNUP_RATE_PER_EMAIL": "3/H"}, "SIGNUP_RATE_PER_EMAIL: must be a rate like 10/h"),
        ({"ADMIN_LOGIN_RATE": "0/m"}, "ADMIN_LOGIN_RATE: must be a rate like 10/h"),
        ({"DEBUG": "maybe"}, "DEBUG: must be true or false"),
        ({"DELIVERY_ASYNC_COMMIT": "perhaps"}, "DELIVERY_ASYNC_COMMIT: must be true or false"),
        ({"TOKEN_MAX_AGE_DAYS": "-1"}, "TOKEN_MAX_AGE_DAYS: must be at least 1"),
        ({"CONFIRM_TOKEN_MAX_AGE_DAYS": "0"}, "CONFIRM_TOKEN_MAX_AGE_DAYS: must be at least 1"),
        ({"UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS": "0"}, "UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS: must be at least 1"),
        ({"UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS": "a year"}, "UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS: cannot read"),
        ({"DELIVERY_CHUNK_SIZE": "0"}, "DELIVERY_CHUNK_SIZE: must be at least 1"),
        ({"ANYMAIL_ESP": "nonexistent"}, "ANYMAIL_ESP: must be one of django-anymail's backends (amazon_ses"),
    ],
)
def test_bad_settings_fail_at_start_with_the_variable_named(env, message):
    result = _start_django(env)
    assert result.returncode != 0
    assert message in result.stderr


def test_every_documented_spelling_of_good_settings_is_accepted():
    result = _start_django(
        {"SIGNUP_RATE_PER_IP": "100/15m", "SIGNUP_RATE_PER_EMAIL": "3/h", "ADMIN_LOGIN_RATE": "1/s",
         "DEBUG": "Yes", "DELIVERY_ASYNC_COMMIT": "off", "EMAIL_USE_TLS": "", "TOKEN_MAX_AGE_DAYS": "1",
         "ANYMAIL_ESP": "postmark", "UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS": "730",
         "DEFAULT_FROM_EMAIL": "Paperboy Digest <digest@papers.example.org>", "ARXIV_CATEGORIES": "cs.LG, stat.ML,q-bio.NC,hep-th,cond-mat.mes-hall,physics"},
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.DELIVERY_ASYNC_COMMIT, s.EMAIL_BACKEND, s.UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS, '|'.join(s.ARXIV_CATEGORIES))",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "anymail.backends.postmark.EmailBackend", "730", "cs.LG|stat.ML|q-bio.NC|hep-th|cond-mat.mes-hall|physics"]


def test_a_bad_log_level_is_one_line_not_a_traceback_from_logging_config():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env={"PATH": "/usr/bin:/bin", "LOG_LEVEL": "LOUD"},
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert result.stderr == "manage.py: Setting LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL (any case), not 'LOUD'\n"


@pytest.mark.parametrize("value, level", [("debug", "DEBUG"), ("Warning", "WARNING"), (" error ", "ERROR"), ("", "INFO")])
def test_a_log_level_is_read_in_any_case(value, level):
    result = _start_django({"LOG_LEVEL": value}, "import logging; print(logging.getLevelName(logging.getLogger().level))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == level


def test_an_unsubscribe_mailto_is_a_bare_address_or_empty_for_none():
    show = "from django.conf import settings as s; print(repr(s.UNSUBSCRIBE_MAILTO))"
    assert _start_django({"UNSUBSCRIBE_MAILTO": "unsubscribe@papers.example.org"}, show).stdout.strip() == "'unsubscribe@papers.example.org'"
    assert _start_django({"UNSUBSCRIBE_MAILTO": ""}, show).stdout.strip() == "''"


def test_an_empty_value_counts_as_unset():
    # An env file's `TOKEN_MAX_AGE_DAYS=` (a value deleted, the line kept) used to stop the process.
    result = _start_django(
        {"TOKEN_MAX_AGE_DAYS": "", "FETCH_TIMEOUT": " ", "EMAIL_PORT": "", "ARXIV_CATEGORIES": ""},
        "from django.conf import settings as s; print(s.TOKEN_MAX_AGE_DAYS, s.EMAIL_PORT, bool(s.ARXIV_CATEGORIES))",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["60", "1025", "True"]


EMPTY_MEANS_DEFAULT = {
    "DJANGO_ENV": "development", "SITE_URL": "http://127.0.0.1:8000", "MATCHING_QUEUE": "matching",
    "MATCHING_METHOD": "auto", "SIGNUP_RATE_PER_IP": None, "SIGNUP_RATE_PER_EMAIL": None, "ADMIN_LOGIN_RATE": None,
    "DEFAULT_FROM_EMAIL": None, "HF_DAILY_PAPERS_URL": "https://huggingface.co/api/daily_papers",
    "ARXIV_API_URL": "https://export.arxiv.org/api/query",
}  # fmt: skip


def test_every_variable_set_empty_takes_its_default():
    # None: the default is whatever the process reads with the variable unset.
    show = "from django.conf import settings as s; import json; print(json.dumps({n: str(getattr(s, n)) for n in %r}))"
    names = sorted(EMPTY_MEANS_DEFAULT)
    unset = _start_django({}, show % names)
    empty = _start_django({name: "" for name in names} | {"DATABASE_URL": " ", "REDIS_URL": ""}, show % names)
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout == unset.stdout
    for name, value in EMPTY_MEANS_DEFAULT.items():
        assert value is None or json.loads(empty.stdout)[name] == value, name
    production = {"DJANGO_ENV": "production", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "papers.example.org",
                  "SITE_URL": "https://papers.example.org", "ANYMAIL_WEBHOOK_SECRET": "u:p", "EMAIL_HOST": "smtp.example.org",
                  "DEFAULT_FROM_EMAIL": "Papers <papers@example.org>", "DATABASE_URL": "postgres://u:p@127.0.0.1:5432/x",
                  "REDIS_URL": "redis://127.0.0.1:6379/0"}  # fmt: skip
    origins = "from django.conf import settings as s; print(s.CSRF_TRUSTED_ORIGINS)"
    assert _start_django(production | {"CSRF_TRUSTED_ORIGINS": ""}, origins).stdout.strip() == "['https://papers.example.org']"


def _start_django(env: dict, then: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {then}"],
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "digest.settings", **env},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("name, value", [("WEB_CONCURRENCY", "abc"), ("WEB_THREADS", "0"), ("PORT", "http")])
def test_the_web_process_refuses_a_bad_gunicorn_setting_in_one_line(name, value):
    from django.conf import settings

    web = next(line for line in (settings.BASE_DIR / "Procfile").read_text().splitlines() if line.startswith("web:"))
    result = subprocess.run(
        ["sh", "-c", web.removeprefix("web:")],
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", name: value},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == f"Setting {name}: must be a whole number of at least 1, not {value!r}"


@pytest.mark.parametrize("procfile", ["Procfile", "Procfile.dev"])
@pytest.mark.parametrize("value, queue", [(None, "matching"), ("", "matching"), ("ml", "ml")])
def test_the_matcher_process_reads_the_queue_the_settings_route_matching_tasks_to(procfile, value, queue):
    from django.conf import settings

    line = next(line for line in (settings.BASE_DIR / procfile).read_text().splitlines() if line.startswith("matcher:"))
    env = {} if value is None else {"MATCHING_QUEUE": value}
    # The command as the process manager's shell expands it, with `echo` for celery.
    command = line.removeprefix("matcher:").replace("sleep 2 && ", "").replace(".venv/bin/celery", "echo")
    expanded = subprocess.run(["sh", "-c", command.replace("celery -A", "echo -A")], env={"PATH": "/usr/bin:/bin", **env},
                              capture_output=True, text=True, timeout=10).stdout.split()  # fmt: skip
    routed = _start_django(env, "from django.conf import settings as s; print(s.CELERY_TASK_ROUTES['digest.tasks.embed_papers_task']['queue'])")
    assert expanded[expanded.index("-Q") + 1] == queue
    assert routed.stdout.strip() == queue, routed.stderr


@pytest.mark.parametrize("value, problem", [("99999", "Setting PORT: must be at most 65535, not '99999'"), ("", None)])
def test_gunicorn_conf_refuses_a_port_out_of_range_and_reads_an_empty_one_as_unset(value, problem):
    from django.conf import settings

    result = subprocess.run(
        [sys.executable, "gunicorn.conf.py"], env={"PATH": "/usr/bin:/bin", "PORT": value},
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert (result.returncode, result.stderr.strip()) == ((1, problem) if problem else (0, ""))


def test_every_static_file_the_code_and_templates_name_exists():
    # A comment pointing at static/js/timezone.js sent readers to a file that never existed.
    import re

    from django.contrib.staticfiles import finders

    root = Path(__file__).resolve().parent.parent
    named = re.compile(r"(?<![\w/])/?static/((?:js|css)/[\w./-]+\.(?:js|css))|\{% static '([^']+)' %\}")
    missing = []
    for path in [*root.glob("digest/**/*.py"), *root.glob("subscriptions/**/*.py"), *root.glob("templates/**/*.html")]:
        for match in named.finditer(path.read_text(encoding="utf-8")):
            name = match.group(1) or match.group(2)
            if not finders.find(name):
                missing.append(f"{path.relative_to(root)}: {name}")
    assert missing == []
