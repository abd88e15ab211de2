"""Public pages: an edition's page and the Atom feed of editions; in development, the caught-mail view."""

import datetime
import functools
import email
import email.policy
import logging
import re
from pathlib import Path

from anymail.exceptions import AnymailConfigurationError, AnymailWebhookValidationFailure
from django.conf import settings
from django.contrib.syndication.views import Feed
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern
from django.utils.feedgenerator import Atom1Feed
from django.utils.html import format_html, format_html_join

from digest.models import Edition
from digest.services.delivery import abstract_snippet, authors_short
from digest.services.editions import (
    edition_papers, edition_ranks, editions_paper_counts, editions_paper_titles, trending_rank_words,
)

logger = logging.getLogger(__name__)

PUBLISHED = [Edition.Status.SENDING, Edition.Status.SENT]


def _published_editions():
    return Edition.objects.filter(status__in=PUBLISHED, frozen_at__isnull=False).order_by("-date")


def edition_detail(request, date: str):
    try:
        day = datetime.date.fromisoformat(date)
    except ValueError:
        raise Http404("Not a date")
    if date != day.isoformat():  # 20261202 also reads as a date: one address per edition
        return redirect("digest:edition", date=day.isoformat(), permanent=True)
    edition = get_object_or_404(_published_editions(), date=day)
    ranks = edition_ranks(edition=edition)
    late = set(edition.late_ids)
    papers = [
        {
            "paper": paper,
            "url": paper.page_url or paper.abs_url or paper.pdf_url,
            "authors": authors_short(paper.authors),
            "snippet": abstract_snippet(paper.abstract, limit=400),
            # The page names its day: the rank needs no "today" (trending_rank_words).
            "rank_words": trending_rank_words(rank=ranks[paper.pk]) if paper.pk in ranks else None,
            "late": paper.pk in late,
        }
        for paper in edition_papers(edition=edition)
    ]
    older = _published_editions().filter(date__lt=day).first()
    newer = _published_editions().filter(date__gt=day).order_by("date").first()
    late_count = sum(item["late"] for item in papers)
    return render(
        request,
        "digest/edition.html",
        {"edition": edition, "papers": papers, "late_count": late_count, "older": older, "newer": newer},
    )


def edition_index(request):
    editions = list(_published_editions()[:60])
    # Each count as the edition's own page gives it (hidden papers left out), in one query.
    counts = editions_paper_counts(editions=editions)
    rows = [{"edition": edition, "paper_count": counts[edition.pk]} for edition in editions]
    return render(request, "digest/index.html", {"editions": rows})


class EditionFeed(Feed):
    feed_type = Atom1Feed
    link = "/digest/"

    def title(self):
        return f"{settings.SITE_NAME}: daily trending papers"

    def subtitle(self):
        return "One edition a day: the papers trending in machine learning research."

    def items(self):
        # Every entry's titles in one query, kept on its edition for item_description: this
        # view object serves all requests, so nothing per request may be stored on it.
        editions = list(_published_editions()[:30])
        titles = editions_paper_titles(editions=editions, limit=30)
        for edition in editions:
            edition.feed_titles = titles[edition.pk]
        return editions

    def item_title(self, item: Edition):
        return f"{settings.SITE_NAME} · {item.date:%-d %B %Y}"

    def item_description(self, item: Edition):
        # Atom's <summary type="html"> is read as HTML: plain titles there were markup
        # (a title's "<img onerror=...>" ran in the reader) and their line breaks collapsed.
        return format_html("<ol>{}</ol>", format_html_join("", "<li>{}</li>", ((t,) for t in item.feed_titles)))

    def item_pubdate(self, item: Edition):
        return item.frozen_at

    def item_updateddate(self, item: Edition):
        # Feed readers show an entry again only when its <updated> moves: papers added after
        # freezing must move it, or readers never see them.
        return item.late_added_at or item.frozen_at


# ---------------------------------------------------------------- development mail view

_EML_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}\.eml$")  # bounded: an over-long name is an OSError, not a 404


def _caught(name: str) -> tuple[Path, email.message.EmailMessage]:
    if settings.PRODUCTION or not _EML_NAME.match(name):
        raise Http404("No such message")
    path = Path(settings.MAIL_CATCHER_DIR) / name
    if not path.is_file():
        raise Http404("No such message")
    return path, email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def _part(message, content_type: str) -> str | None:
    for part in message.walk():
        if part.get_content_type() == content_type and not part.is_multipart():
            return part.get_content()
    return None


def mail_list(request):
    if settings.PRODUCTION:
        raise Http404("Not in production")
    folder = Path(settings.MAIL_CATCHER_DIR)
    files = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True)[:200] if folder.is_dir() else []
    messages = []
    for path in files:
        with path.open("rb") as fh:
            head = email.parser.BytesHeaderParser(policy=email.policy.default).parse(fh)
        messages.append({"name": path.name, "subject": head["Subject"], "to": head["To"], "date": head["Date"]})
    return render(request, "digest/mail_list.html", {"messages": messages, "folder": folder})


def mail_detail(request, name: str):
    path, message = _caught(name)
    headers = [(k, str(v)) for k, v in message.items()]
    return render(
        request,
        "digest/mail_detail.html",
        {"name": name, "headers": headers, "text": _part(message, "text/plain"), "has_html": _part(message, "text/html") is not None},
    )


def mail_html(request, name: str):
    """The HTML part exactly as the recipient's client gets it (dev only; our own templates)."""
    _, message = _caught(name)
    html = _part(message, "text/html")
    if html is None:
        raise Http404("No HTML part")
    return HttpResponse(html, content_type="text/html; charset=utf-8")


# ---------------------------------------------------------------- ESP webhooks


def _malformed_payload_is_400(view):
    """anymail's views raise on a body that is not the ESP's JSON/form: answer 400, not 500.

    A missing or wrong secret is answered 401 with a Basic challenge (anymail's own
    SuspiciousOperation would be a bare 400).
    """

    @functools.wraps(view)  # keeps csrf_exempt
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except AnymailWebhookValidationFailure:
            response = HttpResponse("Webhook authentication required", status=401)
            response["WWW-Authenticate"] = 'Basic realm="anymail"'
            return response
        except (ValueError, KeyError, TypeError, AttributeError):
            return HttpResponseBadRequest("Malformed webhook payload")
        except (AnymailConfigurationError, ImportError):
            # The webhook of an ESP this site is not set up for (no signing key, or its SDK
            # not installed): it does not exist here.
            logger.warning("webhook for an unconfigured ESP: %s", request.path)
            raise Http404("No such webhook")

    return wrapped


def anymail_webhook_patterns() -> list:
    """anymail's own URL patterns (e.g. postmark/tracking/), each view wrapped as above."""
    from anymail import urls as anymail_urls

    return [
        URLPattern(p.pattern, _malformed_payload_is_400(p.callback), p.default_args, p.name)
        for p in anymail_urls.urlpatterns
    ]
