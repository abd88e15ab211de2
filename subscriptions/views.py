"""Pages of the subscriber life cycle. Each view validates, calls one service, renders."""

import logging
import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from django_ratelimit.core import is_ratelimited
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from digest.client_address import client_ip

from . import page_cache, services
from .forms import LinkRequestForm, ManageForm, PauseForm, PreferencesForm, SignupForm
from .models import Subscriber
from .selectors import subscriber_topics_paused, trending_latest
from .tokens import Purpose, TokenError, confirm_token_read, token_make, token_read

logger = logging.getLogger(__name__)


def _user_agent(request: HttpRequest) -> str:
    return request.META.get("HTTP_USER_AGENT", "").replace("\x00", "")[:500]  # PostgreSQL text refuses NUL


def _base_context() -> dict:
    """What every subscription page's template reads, whether rendered per request or shared."""
    return {"site_name": settings.SITE_NAME}


def _page(request: HttpRequest, template: str, context: dict | None = None, status: int = 200) -> HttpResponse:
    return render(request, f"subscriptions/{template}", {**_base_context(), **(context or {})}, status=status)


def _rate_limited(request: HttpRequest, *, group: str, key, rate: str) -> bool:
    return is_ratelimited(request, group=group, key=key, rate=rate, increment=True)


def _email_key(email: str):
    return lambda group, request: email


def ratelimited(request: HttpRequest, exception=None) -> HttpResponse:
    """settings.RATELIMIT_VIEW: the friendly 429 page."""
    response = _page(request, "ratelimited.html", status=429)
    response["Retry-After"] = "3600"
    return response


# Redis (rate-limit counters, task queue) unreachable: say so instead of a bare 500.
BACKEND_DOWN = (RedisError, KombuOperationalError)


def unavailable(request: HttpRequest) -> HttpResponse:
    logger.exception("signup backend unavailable")
    response = _page(request, "unavailable.html", status=503)
    response["Retry-After"] = "300"
    return response


def _token_problem(request: HttpRequest, error: TokenError, *, purpose: Purpose | None = None) -> HttpResponse:
    return _page(
        request,
        "link_problem.html",
        {"reason": error.reason, "form": LinkRequestForm(), "unsubscribing": purpose is Purpose.UNSUBSCRIBE},
        status=error.status,
    )


# --- Signup -----------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            return _signup_post(request)
        except BACKEND_DOWN:
            return unavailable(request)
    before, after = page_cache.remembered(page_cache.landing_key(), _landing_page_parts)
    # The visitor's own masked token (get_token also has the middleware set the cookie).
    return HttpResponse(before + get_token(request) + after)


def _landing_page_parts() -> tuple[str, str]:
    """The landing page as every visitor sees it, split where the CSRF token goes.

    Rendered without the request, so nothing of one visitor can end up in the copy
    that all share; a random marker stands in for the token while rendering.
    """
    marker = secrets.token_hex(16)
    trending_date, trending = trending_latest(limit=8)
    html = render_to_string(
        "subscriptions/signup.html",
        {**_base_context(), "form": SignupForm(), "trending_date": trending_date,
         "trending": trending, "csrf_token": marker},
    )
    before, found, after = html.partition(marker)
    if not found or marker in after:
        raise RuntimeError("signup.html must contain {% csrf_token %} exactly once")
    return before, after


def _signup_post(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST)
    if form.is_valid():
        # Only submissions that would record something count: a typo is not a signup, and one
        # university NAT's visitors share an address. An invalid post writes nothing and mails
        # nobody (it costs what a page view does), so it needs no counter of its own.
        if _rate_limited(request, group="signup-ip", key="ip", rate=settings.SIGNUP_RATE_PER_IP):
            return ratelimited(request)
        email = form.cleaned_data["email"]
        if _rate_limited(request, group="signup-email", key=_email_key(email), rate=settings.SIGNUP_RATE_PER_EMAIL):
            return ratelimited(request)
        services.signup_request_record(
            email=email,
            preferences=form.preferences(),
            consent=form.consent(ip=client_ip(request), user_agent=_user_agent(request)),
        )
        # The same answer, and the same work, whatever the address's state: no enumeration.
        return HttpResponseRedirect(reverse("subscriptions:signup_done"))
    trending_date, trending = trending_latest(limit=8)
    # 400 like the manage and fresh-link forms: the whole page again, with what to fix.
    context = {"form": form, "trending_date": trending_date, "trending": trending}
    return _page(request, "signup.html", context, status=400)


def signup_done(request: HttpRequest) -> HttpResponse:
    return _page(request, "signup_done.html", {"confirm_days": settings.CONFIRM_TOKEN_MAX_AGE_DAYS})


# --- Fresh link -----------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
def link_request(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            return _link_request_post(request)
        except BACKEND_DOWN:
            return unavailable(request)
    return _page(request, "link_request.html", {"form": LinkRequestForm()})


def _link_request_post(request: HttpRequest) -> HttpResponse:
    form = LinkRequestForm(request.POST)
    if form.is_valid():
        # As for signups: only a request that would do something counts against the IP limit.
        if _rate_limited(request, group="link-ip", key="ip", rate=settings.SIGNUP_RATE_PER_IP):
            return ratelimited(request)
        email = form.cleaned_data["email"]
        if _rate_limited(request, group="link-email", key=_email_key(email), rate=settings.SIGNUP_RATE_PER_EMAIL):
            return ratelimited(request)
        services.subscriber_link_request(email=email)
        return HttpResponseRedirect(reverse("subscriptions:link_sent"))
    return _page(request, "link_request.html", {"form": form}, status=400)


def link_sent(request: HttpRequest) -> HttpResponse:
    return _page(request, "link_sent.html")


# --- Confirm ----------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button; only the POST confirms (mail scanners follow links)."""
    try:
        subscriber, consent = confirm_token_read(token=token)
    except TokenError as error:
        return _token_problem(request, error)
    if request.method == "POST" and subscriber.status == Subscriber.Status.PENDING:
        if services.subscriber_confirm(
            subscriber=subscriber, consent=consent, ip=client_ip(request), user_agent=_user_agent(request)
        ):
            manage_token = token_make(subscriber=subscriber, purpose=Purpose.MANAGE)
            return HttpResponseRedirect(reverse("subscriptions:manage", kwargs={"token": manage_token}) + "?welcome=1")
    manage_path = None
    if subscriber.status == Subscriber.Status.CONFIRMED:
        manage_path = reverse(
            "subscriptions:manage", kwargs={"token": token_make(subscriber=subscriber, purpose=Purpose.MANAGE)}
        )
    # The preferences this link confirms: its own signup's (a later one's are kept apart), not
    # the latest signup's. Once confirmed, the reader's own.
    signup = consent if consent is not None and subscriber.status == Subscriber.Status.PENDING else subscriber
    return _page(
        request,
        "confirm.html",
        {"subscriber": subscriber, "signup": signup, "topics": list(signup.topics.all()), "manage_path": manage_path,
         "next_digest": _next_digest(subscriber)},  # fmt: skip
    )


def _next_digest(subscriber: Subscriber):
    """When the first (or next) digest comes, by planning's rule; only a confirmed reader gets one."""
    if subscriber.status != Subscriber.Status.CONFIRMED:
        return None
    from digest.services.delivery import subscriber_next_digest

    return subscriber_next_digest(subscriber=subscriber, now=timezone.now())


# --- Manage -----------------------------------------------------------------------


def _manage_subscriber(request: HttpRequest, token: str) -> Subscriber | HttpResponse:
    try:
        return token_read(token=token, purpose=Purpose.MANAGE)
    except TokenError as error:
        return _token_problem(request, error)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def manage(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = _manage_subscriber(request, token)
    if isinstance(subscriber, HttpResponse):
        return subscriber
    status = 200
    paused_topics = subscriber_topics_paused(subscriber=subscriber)
    if request.method == "POST" and subscriber.status == Subscriber.Status.CONFIRMED:
        form = ManageForm(request.POST, paused_topics=paused_topics)
        if form.is_valid():
            services.subscriber_update_preferences(
                subscriber=subscriber, preferences=form.preferences(), paused_topics_removed=form.paused_topics_removed()
            )
            return HttpResponseRedirect(request.path + "?saved=1")
        status = 400
    else:
        form = ManageForm(initial=PreferencesForm.initial_for(subscriber), paused_topics=paused_topics)
    # Only a confirmed reader is "in": reloading the post-confirm URL after unsubscribing must not welcome them.
    welcome = request.GET.get("welcome") == "1" and subscriber.status == Subscriber.Status.CONFIRMED
    return _page(
        request,
        "manage.html",
        {
            "subscriber": subscriber,
            "form": form,
            "pause_form": PauseForm(),
            "token": token,
            "saved": request.GET.get("saved") == "1",
            "welcome": welcome,
            "next_digest": _next_digest(subscriber) if welcome else None,
            "paused": request.GET.get("paused"),
            "new_link": request.GET.get("new_link") == "1",
        },
        status=status,
    )


@never_cache
@require_POST
def manage_pause(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = _manage_subscriber(request, token)
    if isinstance(subscriber, HttpResponse):
        return subscriber
    if request.POST.get("resume") == "1":
        services.subscriber_pause(subscriber=subscriber, weeks=0)
        return HttpResponseRedirect(reverse("subscriptions:manage", kwargs={"token": token}) + "?paused=0")
    form = PauseForm(request.POST)
    if form.is_valid() and subscriber.status == Subscriber.Status.CONFIRMED:
        services.subscriber_pause(subscriber=subscriber, weeks=form.cleaned_data["weeks"])
        return HttpResponseRedirect(reverse("subscriptions:manage", kwargs={"token": token}) + "?paused=1")
    return HttpResponseRedirect(reverse("subscriptions:manage", kwargs={"token": token}))


@never_cache
@require_POST
def manage_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = _manage_subscriber(request, token)
    if isinstance(subscriber, HttpResponse):
        return subscriber
    services.subscriber_unsubscribe(subscriber=subscriber, source="manage-page")
    return _page(request, "unsubscribed.html", {"subscriber": subscriber})


@never_cache
@require_POST
def manage_new_link(request: HttpRequest, token: str) -> HttpResponse:
    """Revoke every link sent so far and mail a fresh one (a forwarded email, a shared inbox)."""
    subscriber = _manage_subscriber(request, token)
    if isinstance(subscriber, HttpResponse):
        return subscriber
    services.subscriber_revoke_links(subscriber=subscriber)
    return _page(request, "link_sent.html", {"revoked": True})


# --- Unsubscribe (RFC 8058) ---------------------------------------------------------


@never_cache
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The List-Unsubscribe URL.

    POST with List-Unsubscribe=One-Click (sent by the mailbox provider, without cookies,
    so no CSRF token) unsubscribes and answers 200 with no redirect. GET only shows a
    page with a button: link scanners and previews must never unsubscribe anyone.
    """
    try:
        subscriber = token_read(token=token, purpose=Purpose.UNSUBSCRIBE)
    except TokenError as error:
        return _token_problem(request, error, purpose=Purpose.UNSUBSCRIBE)
    if request.method == "POST":
        if request.POST.get("List-Unsubscribe") != "One-Click":
            return HttpResponse(
                "Expected the body List-Unsubscribe=One-Click (RFC 8058).", status=400, content_type="text/plain"
            )
        services.subscriber_unsubscribe(subscriber=subscriber, source="one-click")
        return _page(request, "unsubscribed.html", {"subscriber": subscriber})
    # No manage link minted here: the unsubscribe URL travels in a header that mail systems see and
    # keep, and lives longer than a manage link (UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS), so it must not
    # open the reader's preferences or renew their manage link.
    return _page(request, "unsubscribe.html", {"subscriber": subscriber})


@never_cache
@require_POST
def unsubscribe_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The button on the GET page: an ordinary CSRF-protected form."""
    try:
        subscriber = token_read(token=token, purpose=Purpose.UNSUBSCRIBE)
    except TokenError as error:
        return _token_problem(request, error, purpose=Purpose.UNSUBSCRIBE)
    services.subscriber_unsubscribe(subscriber=subscriber, source="unsubscribe-page")
    return _page(request, "unsubscribed.html", {"subscriber": subscriber})
