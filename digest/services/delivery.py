"""The delivery ledger: plan, claim, send, record, reconcile.

One Delivery row per (edition, subscriber), unique in the database, is what makes
the fan-out idempotent:

- planning inserts rows with bulk_create(ignore_conflicts=True), so planning twice
  plans nothing new, and enqueues chunks of ids with transaction.on_commit;
- a worker claims rows with a conditional UPDATE ... RETURNING (a batch of up to
  CLAIM_BATCH per statement) and only sends the rows that statement returned, renewing
  its lease when half of it has gone; it renders and sends each row itself (never inside a transaction);
- the outcome is recorded right after the server's answer; transient errors put the
  row back to pending with a "not before" time, permanent ones fail it and suppress
  the address;
- the reconciler re-queues rows whose lease expired (a worker died mid-chunk) and
  pending rows nobody picked up.

The only double-send window left is between the SMTP server's 250 and our UPDATE
(milliseconds): a worker killed exactly there sends that one message again when its
lease expires, with the same Message-ID so mailbox providers can fold the two.
"""

import datetime
import hashlib
import json
import logging
import random
import re
import smtplib
import socket
import time
from collections import OrderedDict, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from email.utils import parseaddr

from anymail.exceptions import AnymailAPIError, AnymailInvalidAddress, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from markupsafe import escape

from digest.emails import RenderedEmail, email_build, email_render
from digest.models import Delivery, Edition, Paper, SentPaper
from digest.services.editions import (
    WEEK_DAYS,
    day_is_recent,
    day_period,
    day_short,
    edition_freeze,
    edition_latest_day,
    edition_ranks,
    edition_readers_picks,
    edition_week_candidate_ids,
    trending_rank_words,
)
from subscriptions.addresses import email_is_sendable, email_normalize
from subscriptions.models import Subscriber, Suppression

logger = logging.getLogger(__name__)

State = Delivery.State

# ---------------------------------------------------------------- planning


def subscriber_is_due(
    *, subscriber: Subscriber, now: datetime.datetime, last_planned: datetime.datetime | None, ignore_hour: bool = False
) -> bool:
    """Has this subscriber's local send time come, with nothing planned for them yet this local day?"""
    local_now = now.astimezone(subscriber.zone)
    local_today = local_now.date()
    if subscriber.paused_until and subscriber.paused_until >= local_today:
        return False
    if last_planned is not None and last_planned.astimezone(local_now.tzinfo).date() >= local_today:
        return False  # one digest per local day, even if a newer edition lands later that day
    if subscriber.frequency == Subscriber.Frequency.WEEKLY and local_now.weekday() != subscriber.weekday:
        return False
    # `send_digests --now` skips only the wait for the hour: a weekly digest on another day would
    # come on the wrong day, and again on the right one.
    return ignore_hour or local_now.hour >= subscriber.send_hour


def _last_planned(*, now: datetime.datetime, subscriber) -> QuerySet:
    """When a digest was last planned for `subscriber` (an id or OuterRef), as a one-value queryset.

    Two days back is enough: the rule only asks whether it was this local day.
    """
    return (
        Delivery.objects.filter(subscriber=subscriber, created_at__gte=now - datetime.timedelta(days=2))
        .order_by("-created_at")
        .values("created_at")[:1]
    )


@dataclass(frozen=True)
class NextDigest:
    """When planning (subscriber_is_due) will next plan a digest for a reader."""

    due_now: bool  # the next planning run plans it (within a quarter of an hour)
    had_today: bool  # one digest per local day: today's has been planned already
    at: datetime.datetime | None  # the reader's local send time the next one is planned at, if not now
    local_now: datetime.datetime

    @property
    def when(self) -> str:
        """'today at 07:00 (UTC)', 'tomorrow at ...', 'on Friday 20 March at ...'."""
        if self.at is None:
            return "within a quarter of an hour"
        days = (self.at.date() - self.local_now.date()).days
        day = "today" if days == 0 else "tomorrow" if days == 1 else f"on {self.at:%A} {self.at.day} {self.at:%B}"
        return f"{day} at {self.at:%H:%M} ({self.at.tzinfo})"


def subscriber_next_digest(*, subscriber: Subscriber, now: datetime.datetime) -> NextDigest:
    """When the next digest is planned for this reader, by planning's own rule (subscriber_is_due).

    For the pages and notes that tell a reader or operator when a digest comes: a reader who had
    today's digest, left and came back the same day gets no second one that day.
    """
    last = _last_planned(now=now, subscriber=subscriber.pk).values_list("created_at", flat=True).first()
    zone = subscriber.zone
    local_now = now.astimezone(zone)
    had_today = last is not None and last.astimezone(zone).date() >= local_now.date()
    if subscriber_is_due(subscriber=subscriber, now=now, last_planned=last):
        return NextDigest(due_now=True, had_today=False, at=None, local_now=local_now)
    # The first local send time from now on at which the same rule says yes (pauses and weekdays included).
    for offset in range(0, 400):
        day = local_now.date() + datetime.timedelta(days=offset)
        at = datetime.datetime.combine(day, datetime.time(subscriber.send_hour), tzinfo=zone)
        if at >= local_now and subscriber_is_due(subscriber=subscriber, now=at, last_planned=last):
            return NextDigest(due_now=False, had_today=had_today, at=at, local_now=local_now)
    return NextDigest(due_now=False, had_today=had_today, at=None, local_now=local_now)


def subscribers_due(*, now: datetime.datetime, edition: Edition, ignore_hour: bool = False) -> list[Subscriber]:
    """Confirmed, unpaused, unsuppressed subscribers whose send time has come and who lack this edition."""
    last_planned = _last_planned(now=now, subscriber=OuterRef("pk"))
    candidates = (
        Subscriber.objects.filter(status=Subscriber.Status.CONFIRMED)
        .exclude(email__in=Suppression.objects.values("email"))
        .exclude(deliveries__edition=edition)
        .annotate(last_planned=Subquery(last_planned))
        .only("id", "email", "interests", "timezone", "send_hour", "frequency", "weekday", "paused_until")
        .order_by("id")
    )
    return [
        s
        for s in candidates.iterator(chunk_size=2000)
        if subscriber_is_due(subscriber=s, now=now, last_planned=s.last_planned, ignore_hour=ignore_hour)
    ]


@dataclass
class Plan:
    edition: Edition | None
    due: int = 0
    planned: int = 0
    chunks: int = 0
    note: str = ""


def deliveries_plan(
    *, now: datetime.datetime, day: datetime.date | None = None, ignore_hour: bool = False
) -> Plan:
    """Plan today's edition for every subscriber whose send time has come; enqueue the new rows.

    Today's edition is the latest day with trending papers. A subscriber who already
    has it gets nothing (so a day with no new papers sends nothing), and running this
    twice plans nothing new: the unique (edition, subscriber) row ignores the conflict.
    """
    day = day or edition_latest_day(today=now.date())
    if day is None:
        return Plan(edition=None, note="no trending papers yet")
    # Complaints above the hold rate stop the edition before it freezes (operators release it).
    from digest.services.curation import edition_hold_if_unhealthy

    pending_edition, _ = Edition.objects.get_or_create(date=day)
    if pending_edition.frozen_at is None:
        edition_hold_if_unhealthy(edition=pending_edition, now=now)
    edition = edition_freeze(day=day)
    if edition.status == Edition.Status.HELD:
        return Plan(edition=edition, note=f"edition {day} is held: {edition.hold_reason or 'no reason given'}")
    if not edition.paper_ids:
        return Plan(edition=edition, note=f"edition {day} has no papers")
    due = subscribers_due(now=now, edition=edition, ignore_hour=ignore_hour)
    due_ids = [s.pk for s in due]
    if due:
        _plan_vectors(subscribers=due, edition=edition)
    with transaction.atomic():
        new_ids = _deliveries_insert(edition=edition, subscriber_ids=due_ids)
        chunks = deliveries_enqueue(delivery_ids=new_ids)
    return Plan(edition=edition, due=len(due), planned=len(new_ids), chunks=chunks)


def _deliveries_insert(*, edition: Edition, subscriber_ids: list[int]) -> list[int]:
    """One pending row per subscriber who has none for this edition; returns the new rows' ids, sorted."""
    if connection.vendor == "postgresql":
        # One INSERT ... SELECT unnest per 5000 readers, whose RETURNING names exactly the rows this
        # call added (ON CONFLICT DO NOTHING returns none for the others): the ORM's bulk_create
        # prepared 12 values per row in Python (~1 s of planning for 10,000 readers) and returned no ids.
        now = timezone.now()
        sql = (
            f"INSERT INTO {connection.ops.quote_name(Delivery._meta.db_table)} (edition_id, subscriber_id, state, "
            f"attempts, message_id, paper_ids, reasons, last_error, transient_error, rejected, created_at, updated_at) "
            f"SELECT %s, s, %s, 0, '', '[]'::jsonb, '[]'::jsonb, '', false, false, %s, %s FROM unnest(%s::bigint[]) AS s "
            f"ON CONFLICT DO NOTHING RETURNING id"
        )
        new_ids = []
        with connection.cursor() as cursor:
            for i in range(0, len(subscriber_ids), 5000):
                cursor.execute(sql, [edition.pk, str(State.PENDING), now, now, _int_array(subscriber_ids[i : i + 5000])])
                new_ids += [row[0] for row in cursor.fetchall()]
        return sorted(new_ids)
    Delivery.objects.bulk_create(
        [Delivery(edition=edition, subscriber_id=pk) for pk in subscriber_ids], ignore_conflicts=True, batch_size=1000
    )
    # bulk_create with ignore_conflicts returns no ids. The due readers had no row
    # for this edition a moment ago, so their fresh, never-tried rows are this call's.
    new_ids = []
    for i in range(0, len(subscriber_ids), 5000):
        new_ids += Delivery.objects.filter(
            edition=edition, subscriber_id__in=subscriber_ids[i : i + 5000], state=State.PENDING, attempts=0
        ).values_list("id", flat=True)
    return sorted(new_ids)


def _plan_vectors(*, subscribers: list[Subscriber], edition: Edition) -> None:
    """Store every vector sending will rank these readers with, before their chunks are queued.

    Planning runs on the `matching` queue, where the model may load; sending workers then
    rank with stored vectors only (see _picks_for). Outside the database round trip that finds
    them all stored, this costs nothing on an ordinary day.
    """
    from digest.services.classify import vectors_store_for

    vectors_store_for(interests=[s.interests for s in subscribers], paper_ids=list(edition.paper_ids))


def deliveries_enqueue(*, delivery_ids: list[int]) -> int:
    """Queue chunks of ids once the surrounding transaction commits (the worker must see the rows)."""
    from digest.tasks.sending import deliveries_send_chunk_task

    size = max(1, settings.DELIVERY_CHUNK_SIZE)
    chunks = [delivery_ids[i : i + size] for i in range(0, len(delivery_ids), size)]

    def enqueue():
        for chunk in chunks:
            deliveries_send_chunk_task.delay(chunk)

    transaction.on_commit(enqueue)
    return len(chunks)


# ---------------------------------------------------------------- claiming


@contextmanager
def _async_commit():
    """For one chunk, commit ledger writes on PostgreSQL without waiting for the WAL flush.

    Each claim and record is its own commit, and waiting for fsync (3-10 ms here) was
    most of a worker's time. Asynchronous commit keeps every guarantee against a
    worker dying (a committed row is visible to everyone at once); only a crash of
    the database server itself can lose the last fraction of a second of ledger
    writes, which the lease and reconciler then redo. DELIVERY_ASYNC_COMMIT=false
    turns it off.
    """
    enabled = settings.DELIVERY_ASYNC_COMMIT and connection.vendor == "postgresql"
    if enabled:
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")
    try:
        yield
    finally:
        if enabled and connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")


def _claimable(now: datetime.datetime) -> Q:
    # Pending (and not waiting for a retry time), or claimed by a worker whose lease ran out.
    return Q(state=State.PENDING) & (Q(lease_until__isnull=True) | Q(lease_until__lte=now)) | Q(
        state=State.SENDING, lease_until__lt=now
    )


def delivery_claim(*, delivery_id: int, now: datetime.datetime) -> bool:
    """Take the row for sending. A sort of optimistic lock: only the caller that updates the row sends."""
    from django.db.models import F

    updated = Delivery.objects.filter(_claimable(now), pk=delivery_id).update(
        state=State.SENDING,
        lease_until=now + datetime.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS),
        attempts=F("attempts") + 1,
        updated_at=now,
    )
    return updated == 1


def deliveries_claim(*, delivery_ids: list[int], now: datetime.datetime) -> tuple[list[int], datetime.datetime]:
    """Claim a batch of rows in one conditional UPDATE ... RETURNING; returns the ids this caller won and its lease.

    The same optimistic lock as delivery_claim, one statement (and one commit) for the
    batch instead of one per row: a row is returned only if this UPDATE flipped it from
    claimable to sending, so two workers never both get the same id. Django's ORM
    update() returns a count, not the ids, hence the SQL (PostgreSQL and SQLite >= 3.35
    both have RETURNING).
    """
    if not delivery_ids:
        return [], now
    lease_until = now + datetime.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    ops = connection.ops
    table = connection.ops.quote_name(Delivery._meta.db_table)
    at_now = ops.adapt_datetimefield_value(now)
    if connection.vendor == "postgresql":
        # One array literal, not a placeholder per id: psycopg quotes 25 parameters in Python otherwise.
        where_ids, id_params = "id = ANY(%s::bigint[])", [_int_array(delivery_ids)]
    else:
        where_ids, id_params = f"id IN ({', '.join(['%s'] * len(delivery_ids))})", list(delivery_ids)
    sql = (
        f"UPDATE {table} SET state = %s, lease_until = %s, attempts = attempts + 1, updated_at = %s "
        f"WHERE {where_ids} AND ((state = %s AND (lease_until IS NULL OR lease_until <= %s)) "
        f"OR (state = %s AND lease_until < %s)) RETURNING id"
    )
    params = [str(State.SENDING), ops.adapt_datetimefield_value(lease_until), at_now, *id_params,
              str(State.PENDING), at_now, str(State.SENDING), at_now]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        won = sorted(row[0] for row in cursor.fetchall())
    return won, lease_until


def _int_array(values) -> str:
    """A PostgreSQL array literal of integers ('{1,2,3}'), for a ::bigint[] parameter."""
    return "{" + ",".join(str(int(v)) for v in values) + "}"


def deliveries_lease_extend(
    *, delivery_ids: list[int], lease_until: datetime.datetime, now: datetime.datetime
) -> tuple[set[int], datetime.datetime]:
    """Renew this caller's lease on rows it still holds (state sending, lease exactly the one it set).

    Rows whose lease another worker has since taken over keep theirs and are not returned.
    """
    new_lease = now + datetime.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    Delivery.objects.filter(pk__in=delivery_ids, state=State.SENDING, lease_until=lease_until).update(
        lease_until=new_lease, updated_at=now
    )
    mine = set(
        Delivery.objects.filter(pk__in=delivery_ids, state=State.SENDING, lease_until=new_lease).values_list("pk", flat=True)
    )
    return mine, new_lease


# ---------------------------------------------------------------- building the email


def _mail_domain() -> str:
    """A stable domain for Message-ID and List-Id: the From address's."""
    return _domain_of(settings.DEFAULT_FROM_EMAIL)


@lru_cache(maxsize=8)
def _domain_of(from_email: str) -> str:
    address = parseaddr(from_email)[1]
    return address.rpartition("@")[2] or "localhost"


def delivery_message_id(*, delivery: Delivery, edition: Edition, domain: str) -> str:
    """The same Message-ID on every attempt at one delivery, a different one for every other.

    A worker killed between the server's 250 and the record sends the row again when its
    lease expires; an identical Message-ID lets mailbox providers fold the two copies
    (make_msgid's time and random parts made each attempt look like a new message). The
    install's tag keeps two installs sending from one domain from reusing each other's ids.
    """
    return f"<delivery{delivery.pk}.{edition.date.isoformat()}.{_install_tag(settings.SECRET_KEY)}@{domain}>"


@lru_cache(maxsize=4)
def _install_tag(secret: str) -> str:
    # A one-way digest: the id is public, the key must not be guessable from it.
    return hashlib.sha256(f"paperboy-message-id:{secret}".encode()).hexdigest()[:10]


def authors_short(authors: list) -> str:
    names = [str(a).strip() for a in authors or [] if str(a).strip()]
    if not names:
        return ""
    if len(names) > 3:
        return f"{names[0]}, {names[1]}, {names[2]} et al."
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def abstract_snippet(text: str, limit: int = 260) -> str:
    """About three lines on a phone: cut at a word boundary."""
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:.") + "…"


# A reason that says a trending rank ("trending #3 today", trending_rank_words); at the start, so an
# interest typed as "trending #1 models" is not one.
_CITES_RANK = re.compile(r"trending #\d")


def _paper_item(pick, *, rank: int | None, period: str) -> dict:
    paper: Paper = pick.paper
    # A tuple, so the card cache (emails._Cards) can hash the item as it is.
    reasons = tuple(pick.reasons or ())
    # Once is enough: when a reason says the rank, the meta line leaves it out (Pick.rank_in_reasons
    # says so for picks matching made; reasons made elsewhere are read).
    cited = getattr(pick, "rank_in_reasons", None) or any(_CITES_RANK.match(r) for r in reasons)
    return {
        **_paper_fields(paper),
        "reasons": reasons,
        # The meta line's rank, worded as the reasons word theirs ("trending #7 today").
        "rank_words": trending_rank_words(rank=rank, period=period) if rank and not cited else None,
        "pinned": bool(getattr(pick, "pinned", False)),
        "trending": bool(getattr(pick, "trending", False)),
    }


def _paper_fields(paper: Paper) -> dict:
    """What a card shows of the paper itself, the same for every reader: made once per version of
    the paper (id, updated_at and upvotes are the key) and copied by the caller."""
    key = (paper.pk, paper.updated_at, paper.upvotes)
    fields = _paper_fields_cache.get(key) if paper.pk is not None else None
    if fields is None:
        fields = {
            "title": paper.title,
            "url": paper.page_url or paper.abs_url or paper.pdf_url,
            "authors": authors_short(list(paper.authors or ())),
            "snippet": abstract_snippet(paper.abstract or ""),
            "upvotes": paper.upvotes,
            "abs_url": paper.abs_url,
            "pdf_url": paper.pdf_url,
            "code_url": paper.code_url,
        }
        if paper.pk is not None:
            if len(_paper_fields_cache) >= 2048:  # a day's papers and the week's, many times over
                _paper_fields_cache.clear()
            _paper_fields_cache[key] = fields
    return fields


_paper_fields_cache: dict[tuple, dict] = {}


def digest_lead(papers: list[dict], *, period: str) -> str:
    """The digest's first line: how many papers match the reader, how many the editors pinned and how
    many only trend (the top-up). A pinned paper goes to every reader, so it is counted as the editors'
    (its reasons say "pinned by the editors"), never as a match; a digest of top-up papers alone must
    not say they were picked for the reader."""
    n = len(papers)
    pinned = sum(bool(p["pinned"]) for p in papers)
    trending = sum(bool(p["trending"]) and not p["pinned"] for p in papers)
    matched = n - pinned - trending
    if not pinned:
        if matched == n:
            return f"{papers_count(n)} picked for you"
        if matched == 0:
            top = "is the top trending paper" if n == 1 else f"are the {n} top trending papers"
            return f"Nothing matched your interests {period}: here {top}"
        return f"{papers_count(matched)} for your interests, and {trending} trending {period}"
    editors = f"{papers_count(pinned)} pinned by the editors"
    if matched == 0 and trending == 0:
        return editors
    if matched == 0:
        pins = "the paper" if pinned == 1 else f"the {pinned} papers"
        top = "the top trending paper" if trending == 1 else f"the {trending} top trending papers"
        return f"Nothing matched your interests {period}: here are {pins} pinned by the editors and {top}"
    if trending == 0:
        return f"{papers_count(matched)} picked for you, and {pinned} pinned by the editors"
    return (
        f"{papers_count(matched)} for your interests, {pinned} pinned by the editors, and {trending} trending {period}"
    )


def _preheader(papers: list[dict], *, first: str, period: str, trend: str) -> str:
    if all(not p["trending"] and not p["pinned"] for p in papers):
        return f"{papers_count(len(papers))} for you {period}: {first}"[:180]
    return f"{digest_lead(papers, period=trend)}. {first}"[:180]


def papers_count(n: int) -> str:
    return f"{n} paper" if n == 1 else f"{n} papers"


def digest_context(*, subscriber: Subscriber, edition: Edition, picks: list, ranks: dict[int, int]) -> dict:
    personal = _personal_context(subscriber)
    return {**_shared_context(edition=edition, picks=picks, ranks=ranks, frequency=personal["frequency"]), **personal}


def _shared_context(*, edition: Edition, picks: list, ranks: dict[int, int], frequency: str) -> dict:
    # A weekly digest ranks the seven days up to the edition's (editions.edition_readers_picks): its
    # papers show their rank in the week, as its reasons do, not the edition day's.
    weekly = frequency == Subscriber.Frequency.WEEKLY.value
    when = _edition_when(edition=edition, weekly=weekly)
    papers = [
        _paper_item(p, rank=getattr(p, "window_rank", None) if weekly else ranks.get(p.paper_id), period=when["trend"])
        for p in picks
    ]
    first = ", ".join(p["title"] for p in papers[:2])
    day = edition.date.strftime("%A, %-d %B %Y")
    return {
        "edition_date": edition.date,
        "date_label": f"The week to {day}" if weekly else day,
        "papers": papers,
        "preheader": _preheader(papers, first=first, period=when["period"], trend=when["trend"]),
        "lead": digest_lead(papers, period=when["trend"]),
        # The edition page is the day's papers for everyone, not this reader's email.
        "edition_link": when["link"] if weekly else "The whole edition online",
        "view_url": settings.SITE_URL + edition.get_absolute_url(),
    }


def _edition_when(*, edition: Edition, weekly: bool) -> dict[str, str]:
    """How the email names the edition's day: "today" / "this week" only when it is today or yesterday
    (editions.day_is_recent); an old edition (fetching stalled) names its day instead."""
    trend = day_period(day=edition.date, window_days=WEEK_DAYS if weekly else 1)  # as the reasons say it
    if day_is_recent(day=edition.date):
        return {"period": trend, "trend": trend, "link": "Today's edition online"}
    short = day_short(day=edition.date)
    return {
        "period": f"from the week to {short}" if weekly else f"from {short}",
        "trend": trend,  # "nothing matched ... on 12 Mar"
        "link": f"The {short} edition online",
    }


def _personal_context(subscriber: Subscriber) -> dict:
    from subscriptions import links

    return {
        "subscriber_email": subscriber.email,
        "manage_url": links.manage_url(subscriber),
        "unsubscribe_url": links.unsubscribe_url(subscriber),
        # get_frequency_display() builds the choices dict on every call (~10 us a reader).
        "frequency": _FREQUENCY_WORDS.get(subscriber.frequency) or subscriber.get_frequency_display().lower(),
    }


_FREQUENCY_WORDS = {value: str(label).lower() for value, label in Subscriber.Frequency.choices}

# Only these context values differ between readers who get the same papers.
_PERSONAL = ("subscriber_email", "manage_url", "unsubscribe_url")


def _sentinel(name: str) -> str:
    # Letters only: survives HTML escaping and CSS inlining unchanged.
    return "PBPERSONAL" + _sentinel_word(name) + "X"


def _sentinel_word(name: str) -> str:
    return name.replace("_", "").upper()


# re.split with a group: text, word, text, word, ... (odd places are the sentinels' words).
_SENTINELS = re.compile("PBPERSONAL(" + "|".join(_sentinel_word(name) for name in _PERSONAL) + ")X")


def digest_render(
    *, subscriber: Subscriber, edition: Edition, picks: list, ranks: dict[int, int], cache: "RenderCache | dict | None" = None
) -> tuple[RenderedEmail, dict]:
    """Render one reader's digest; returns the rendered parts and the context.

    With a cache (RenderCache: one per worker process), readers who get the same papers for the same reasons
    share one render: it is made with sentinels in place of the personal values, which
    are then substituted (HTML-escaped in the HTML part), so a cached body never carries
    another reader's address or links. Rendering and CSS inlining were a third of a
    worker's CPU time.
    """
    if cache is None:
        context = digest_context(subscriber=subscriber, edition=edition, picks=picks, ranks=ranks)
        return email_render(name="digest", context=context), context
    # On a cache hit only the personal values are needed: the papers' authors, snippets
    # and the rest of the context are built only for a render that is not cached yet.
    context = _personal_context(subscriber)
    key = (
        edition.pk,
        context["frequency"],
        # The preheader says "today" only on the edition's day or the next: a render made then must
        # not be served a week later (the reasons carry their own words; the preheader is not in them).
        tuple(_edition_when(edition=edition, weekly=context["frequency"] == Subscriber.Frequency.WEEKLY.value).values()),
        tuple(
            (p.paper_id, p.paper.updated_at, tuple(p.reasons or ()), bool(p.pinned), bool(p.trending), ranks.get(p.paper_id),
             getattr(p, "window_rank", None))
            for p in picks
        ),
    )
    pieces = cache.get(key)
    if pieces is None:
        full = {**_shared_context(edition=edition, picks=picks, ranks=ranks, frequency=context["frequency"]), **context}
        shared = email_render(name="digest", context={**full, **{k: _sentinel(k) for k in _PERSONAL}})
        # Split once at the sentinels: each reader's copy is then one join, not nine scans of the bodies.
        pieces = cache[key] = tuple(_SENTINELS.split(part) for part in (shared.subject, shared.text, shared.html))
    plain = {_sentinel_word(name): str(context[name]) for name in _PERSONAL}
    escaped = {word: str(escape(value)) for word, value in plain.items()}
    subject, text, html = (
        "".join(values[piece] if i % 2 else piece for i, piece in enumerate(parts))
        for parts, values in zip(pieces, (plain, plain, escaped))
    )
    return RenderedEmail(subject=subject, text=text, html=html), context


class RenderCache:
    """Shared renders kept across chunks in one worker process, least recently used out first.

    Readers with the same picks, reasons and frequency share one render (sentinels in
    place of the personal values), so a render made for one chunk serves the next ones
    too. The key holds each paper's updated_at, so a curator's fix to a title is never
    hidden behind an old render. 256 renders are ~20 MB.
    """

    def __init__(self, size: int = 256):
        self.size = size
        self._items: OrderedDict = OrderedDict()

    def get(self, key):
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def __setitem__(self, key, value) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()


_render_cache = RenderCache()


def digest_message_build(
    *,
    delivery: Delivery,
    subscriber: Subscriber,
    edition: Edition,
    picks: list,
    ranks: dict[int, int],
    connection=None,
    render_cache: RenderCache | dict | None = None,
) -> EmailMultiAlternatives:
    """The digest email with the bulk-mail headers every provider and RFC 8058 expect."""
    from subscriptions import links

    rendered, context = digest_render(subscriber=subscriber, edition=edition, picks=picks, ranks=ranks, cache=render_cache)
    domain = _mail_domain()
    headers = {
        **links.list_unsubscribe_headers(context["unsubscribe_url"]),
        "List-Id": f"{settings.SITE_NAME} digest <digest.{domain}>",
        "Auto-Submitted": "auto-generated",
        "Precedence": "bulk",
        "Message-ID": delivery_message_id(delivery=delivery, edition=edition, domain=domain),
    }
    # The ASCII form: Django would re-encode a Unicode domain with IDNA 2003 (ß becomes ss).
    message = email_build(rendered=rendered, to=email_normalize(subscriber.email), headers=headers, connection=connection)
    # anymail reads these; Django's SMTP backend ignores them.
    message.tags = ["digest"]
    message.metadata = {"delivery_id": str(delivery.pk), "edition": edition.date.isoformat()}
    return message


# ---------------------------------------------------------------- errors


# How a delivery's last_error starts when the server (or ESP) refused the message itself: words
# for the operator. The record is Delivery.rejected, which sending health counts.
SERVER_REJECTED = "the mail server rejected the message (not the reader's address):"


UNENCODABLE_ADDRESS = "address cannot be mailed: its domain is not valid IDNA"


class SendError(Exception):
    """`rejected`: a permanent refusal of our message (sender, configuration, content), not of the
    reader's address. Nobody is suppressed; the row fails at once, loudly, and may be re-queued."""

    def __init__(self, text: str, *, transient: bool, suppress: bool = False, rejected: bool = False):
        super().__init__(text)
        self.transient = transient
        self.suppress = suppress
        self.rejected = rejected


def send_error_classify(exc: Exception) -> SendError | None:
    """Sort a sending exception into transient (retry) or permanent (record, maybe suppress).

    Only a refused recipient suppresses (a 5xx to RCPT, or the ESP's per-recipient refusal). Any
    other 5xx (a 554 at DATA: SES's "Email address is not verified", a content filter) refuses
    our message, not the reader: suppressing then would lose every reader of the chunk forever.
    None means "not a sending error": a bug, which must surface rather than be retried.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        text = "; ".join(f"{code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
                         for code, msg in exc.recipients.values())
        permanent = any(500 <= code < 600 for code in codes)
        return SendError(f"recipient refused: {text}", transient=not permanent, suppress=permanent)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        # Our own sender refused is a configuration problem: never suppress readers for it.
        return SendError(f"sender refused: {exc.smtp_code} {exc.smtp_error!r}", transient=True)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return SendError(f"SMTP authentication failed: {exc.smtp_code}", transient=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        msg = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        if 500 <= exc.smtp_code < 600:
            return SendError(f"{SERVER_REJECTED} {exc.smtp_code} {msg}", transient=False, rejected=True)
        return SendError(f"{exc.smtp_code} {msg}", transient=True)
    if isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError, OSError)):
        return SendError(f"connection: {exc!r}", transient=True)
    if isinstance(exc, smtplib.SMTPException):
        return SendError(f"SMTP: {exc!r}", transient=True)
    if isinstance(exc, (AnymailRecipientsRefused, AnymailInvalidAddress)):
        return SendError(f"ESP refused the recipient: {exc}", transient=False, suppress=True)
    if isinstance(exc, AnymailAPIError):
        status = exc.status_code
        retryable = status is None or status == 429 or status >= 500
        if retryable:
            return SendError(f"ESP API error {status}: {exc}", transient=True)
        # A 4xx that is not a refused recipient (those raise the exceptions above): our request.
        return SendError(f"{SERVER_REJECTED} ESP API error {status}: {exc}", transient=False, rejected=True)
    return None


def retry_delay_seconds(*, attempts: int) -> float:
    """Exponential backoff with full jitter, capped well below the broker's visibility timeout."""
    base = settings.DELIVERY_RETRY_BASE_SECONDS
    cap = min(3600, settings.CELERY_VISIBILITY_TIMEOUT // 2)
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


# ---------------------------------------------------------------- recording


def delivery_record_sent(
    *, delivery: Delivery, message_id: str, paper_ids: list[int], now: datetime.datetime, reasons: list | None = None
) -> None:
    """Mark the row sent and add its papers to the sent-papers ledger, atomically, right after the 250.

    Recorded per message, not in batches: a worker killed between batches would resend
    every message of the unrecorded batch, and "never two" matters more than a round trip.
    """
    reasons = reasons or []
    if connection.vendor == "postgresql":
        _record_sent_postgresql(delivery=delivery, message_id=message_id, paper_ids=paper_ids, now=now, reasons=reasons)
        return
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk, state=State.SENDING).update(
            state=State.SENT, sent_at=now, message_id=message_id[:255], paper_ids=paper_ids, reasons=reasons,
            lease_until=None, last_error="", transient_error=False, updated_at=now,
        )
        # The ledger matching reads, so no paper reaches the same reader twice.
        SentPaper.objects.bulk_create(
            [SentPaper(subscriber_id=delivery.subscriber_id, paper_id=pid, delivery_id=delivery.pk, sent_on=now.date())
             for pid in paper_ids],
            ignore_conflicts=True,
        )


def _record_sent_postgresql(
    *, delivery: Delivery, message_id: str, paper_ids: list[int], now: datetime.datetime, reasons: list
) -> None:
    # One statement, so one round trip and an implicit transaction, instead of BEGIN,
    # UPDATE, INSERT, COMMIT: those four waits on the server were a fifth of a worker's
    # time. The ledger rows are inserted only if this UPDATE flipped the row (the CTE
    # returns nothing otherwise), exactly as the ORM path's transaction would leave it.
    ops = connection.ops
    sql = (
        f"WITH done AS (UPDATE {ops.quote_name(Delivery._meta.db_table)} SET state = %s, sent_at = %s, message_id = %s, "
        f"paper_ids = %s::jsonb, reasons = %s::jsonb, lease_until = NULL, last_error = '', transient_error = false, updated_at = %s "
        f"WHERE id = %s AND state = %s RETURNING id, subscriber_id) "
        f"INSERT INTO {ops.quote_name(SentPaper._meta.db_table)} (subscriber_id, paper_id, delivery_id, sent_on) "
        f"SELECT done.subscriber_id, p.paper_id, done.id, %s FROM done, unnest(%s::bigint[]) AS p(paper_id) "
        f"ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        # Plain str and one array literal: psycopg's per-value adaptation of enum members and of a
        # list was a sixth of this call's CPU.
        cursor.execute(sql, [_SENT, now, message_id[:255], json.dumps(paper_ids), json.dumps(reasons), now, delivery.pk, _SENDING,
                             now.date(), _int_array(paper_ids)])


_SENT, _SENDING = str(State.SENT), str(State.SENDING)


def delivery_record_final(
    *, delivery: Delivery, state: str, reason: str, now: datetime.datetime, transient: bool = False,
    rejected: bool = False,
) -> None:
    """Close a claimed row without sending (skipped, suppressed) or after a failure.

    `transient` marks a failure that was not the address's fault (temporary errors whose
    retries ran out, or the server refusing our message): an operator may re-queue those
    from the admin (deliveries_requeue), once the cause is fixed. `rejected` marks the server
    refusing our message (it implies `transient`); sending health counts those rows.
    """
    Delivery.objects.filter(pk=delivery.pk, state=State.SENDING).update(
        state=state, last_error=reason[:2000], lease_until=None, transient_error=transient or rejected,
        rejected=rejected, updated_at=now,
    )


def deliveries_requeue(*, delivery_ids: list[int]) -> int:
    """Give failed-transient rows a fresh set of attempts and queue them; returns how many.

    Only rows that failed through no fault of the address qualify (temporary errors, or the
    server refusing our message); a refused recipient was suppressed. The send cutoff still applies when the worker claims them.
    """
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update()
            .filter(pk__in=delivery_ids, state=State.FAILED, transient_error=True)
            .values_list("id", flat=True)
        )
        # The refusal is dealt with: the next attempt records its own outcome.
        Delivery.objects.filter(pk__in=ids).update(
            state=State.PENDING, attempts=0, lease_until=None, rejected=False, updated_at=timezone.now()
        )
        deliveries_enqueue(delivery_ids=sorted(ids))
    return len(ids)


def delivery_record_transient(*, delivery: Delivery, error: str, now: datetime.datetime) -> float | None:
    """Back to pending with a not-before time and a retry queued; failed once attempts run out."""
    attempts = Delivery.objects.filter(pk=delivery.pk).values_list("attempts", flat=True).first() or 0
    if attempts >= settings.DELIVERY_MAX_ATTEMPTS:
        delivery_record_final(
            delivery=delivery, state=State.FAILED, reason=f"gave up after {attempts} attempts: {error}", now=now,
            transient=True,
        )
        return None
    delay = retry_delay_seconds(attempts=attempts)
    Delivery.objects.filter(pk=delivery.pk, state=State.SENDING).update(
        state=State.PENDING, lease_until=now + datetime.timedelta(seconds=delay), last_error=error[:2000],
        transient_error=True, updated_at=now,
    )
    from digest.tasks.sending import deliveries_retry_later

    deliveries_retry_later(delivery_ids=[delivery.pk], countdown=delay)
    return delay


# ---------------------------------------------------------------- sending


@dataclass
class ChunkResult:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retrying: int = 0
    not_claimed: int = 0
    waiting: int = 0  # left pending, re-queued until a matching worker has stored their vectors
    errors: list[str] = field(default_factory=list)


# When a vector is missing at send time (interests saved moments ago, papers not embedded yet),
# the chunk asks the matching queue for it and comes back after each of these countdowns
# (about 6 minutes in all) before ranking lexically with a warning: a digest a few minutes
# late beats a worse one, and a worse one, said so in the log, beats none.
VECTOR_WAIT_COUNTDOWNS = (2, 4, 8, 16, 32, 64, 120, 120)


def _picks_for(
    *, edition: Edition, subscribers: list[Subscriber], rows: list[Delivery], vector_waits: int, result: ChunkResult
) -> dict[int, list] | None:
    """Each live reader's picks, ranked with stored vectors only (a sending worker never loads the model).

    None means the rows were re-queued to wait for missing vectors; nothing was claimed.
    """
    from digest.matching import semantic
    from digest.matching.vectors import VectorsMissing
    from digest.tasks.classify import vectors_store_task
    from digest.tasks.sending import deliveries_retry_later

    day, candidates = edition.date, list(edition.paper_ids)

    def select(method=None) -> dict[int, list]:
        return edition_readers_picks(day=day, subscribers=subscribers, candidate_ids=candidates, method=method)

    try:
        with semantic.vectors_only():
            return select()
    except VectorsMissing as missing:
        if vector_waits < len(VECTOR_WAIT_COUNTDOWNS):
            if vector_waits == 0:
                weekly = any(s.frequency == Subscriber.Frequency.WEEKLY for s in subscribers)
                week = edition_week_candidate_ids(day=day) if weekly else []
                vectors_store_task.delay(subscriber_ids=[s.pk for s in subscribers], paper_ids=list({*candidates, *week}))
            countdown = VECTOR_WAIT_COUNTDOWNS[vector_waits]
            logger.info("edition %s: %s; %d deliveries wait %ss for the matching queue", day, missing, len(rows), countdown)
            deliveries_retry_later(delivery_ids=[r.pk for r in rows], countdown=countdown, vector_waits=vector_waits + 1)
            result.waiting += len(rows)
            return None
        logger.warning(
            "edition %s: %s after %d waits for the matching queue (is a matching worker running?); "
            "%d digests ranked lexically instead", day, missing, vector_waits, len(subscribers),
        )
        with semantic.vectors_only():
            return select(method="lexical")


# The consent evidence and life-cycle stamps sending never reads: loading their dates for every
# row was a tenth of the chunk's database time in the worker.
_SUBSCRIBER_FIELDS_NOT_SENT = tuple(
    f"subscriber__{name}"
    for name in ("signup_at", "signup_ip", "signup_user_agent", "signup_source", "confirmed_at", "confirm_ip",
                 "confirm_user_agent", "last_confirmation_sent_at", "unsubscribed_at", "unsubscribe_source",
                 "suppressed_at", "suppressed_reason", "created_at", "updated_at")
)


def deliveries_send_chunk(
    *, delivery_ids: list[int], now: datetime.datetime | None = None, vector_waits: int = 0
) -> ChunkResult:
    """Claim, render and send each row of a chunk over one SMTP/ESP connection.

    Rows another worker holds, already sent, or waiting for a retry time are left alone.
    Nothing here runs inside a transaction: each claim and each record commits at once.
    `vector_waits`: how often this chunk has already waited for missing vectors (_picks_for).
    """
    result = ChunkResult()
    start = now or timezone.now()
    rows = list(
        Delivery.objects.filter(_claimable(start), pk__in=delivery_ids)
        .exclude(edition__status=Edition.Status.HELD)
        .select_related("subscriber")
        .defer("message_id", "paper_ids", "reasons", "last_error", *_SUBSCRIBER_FIELDS_NOT_SENT)
        .order_by("id")
    )
    result.not_claimed = len(delivery_ids) - len(rows)
    if not rows:
        return result
    # A chunk's rows share an edition or two: one instance each, not one (and its paper list) per row.
    editions = Edition.objects.in_bulk({row.edition_id for row in rows})
    for row in rows:
        row.edition = editions[row.edition_id]
    suppressed = set(
        Suppression.objects.filter(email__in=[r.subscriber.email for r in rows]).values_list("email", flat=True)
    )
    by_edition: dict[int, list[Delivery]] = defaultdict(list)
    for row in rows:
        by_edition[row.edition_id].append(row)
    smtp = get_connection(fail_silently=False)
    try:
        with _async_commit():
            for edition_rows in by_edition.values():
                _send_edition_rows(rows=edition_rows, smtp=smtp, now=now, suppressed=suppressed, result=result,
                                   vector_waits=vector_waits)
    finally:
        smtp.close()
    return result


# Rows claimed per UPDATE. Small enough that a worker killed mid-batch leaves only a
# few readers waiting for their lease to expire; large enough that the claim is a
# small share of each message's cost.
CLAIM_BATCH = 25


def _send_edition_rows(
    *, rows: list[Delivery], smtp, now, suppressed: set[str], result: ChunkResult, vector_waits: int = 0
) -> None:
    edition = rows[0].edition
    live = [r.subscriber for r in rows if r.subscriber.status == Subscriber.Status.CONFIRMED]
    picks_by_subscriber = (
        _picks_for(edition=edition, subscribers=live, rows=rows, vector_waits=vector_waits, result=result) if live else {}
    )
    if picks_by_subscriber is None:
        return
    ranks = edition_ranks(edition=edition)
    render_cache = _render_cache
    # Renew the lease when half of it has gone, so a slow batch never outlives its
    # claim and a second worker never takes a row this one is about to send.
    renew_after = settings.DELIVERY_LEASE_SECONDS / 2
    for start in range(0, len(rows), CLAIM_BATCH):
        batch = rows[start : start + CLAIM_BATCH]
        won, lease_until = deliveries_claim(delivery_ids=[r.pk for r in batch], now=now or timezone.now())
        claimed_at = time.monotonic()
        held = set(won)
        result.not_claimed += len(batch) - len(held)
        for index, row in enumerate(batch):
            if row.pk not in held:
                continue
            if time.monotonic() - claimed_at > renew_after:
                rest = [r.pk for r in batch[index:] if r.pk in held]
                kept, lease_until = deliveries_lease_extend(delivery_ids=rest, lease_until=lease_until, now=now or timezone.now())
                claimed_at = time.monotonic()
                lost = set(rest) - kept
                held -= lost
                result.not_claimed += len(lost)
                if row.pk not in held:
                    continue
            _send_one(row=row, edition=edition, picks_by_subscriber=picks_by_subscriber, ranks=ranks,
                      render_cache=render_cache, smtp=smtp, now=now, suppressed=suppressed, result=result)


def _send_one(*, row: Delivery, edition: Edition, picks_by_subscriber: dict, ranks: dict, render_cache: RenderCache, smtp,
              now, suppressed: set[str], result: ChunkResult) -> None:
    """Send one claimed row and record the outcome at once (a kill can then double at most this message)."""
    cutoff = datetime.timedelta(hours=settings.EDITION_SEND_CUTOFF_HOURS)
    moment = now or timezone.now()
    subscriber = row.subscriber
    closed = None
    if moment > row.created_at + cutoff:
        closed = (State.SKIPPED, "past the edition's send cutoff")
    elif subscriber.status == Subscriber.Status.SUPPRESSED or subscriber.email in suppressed:
        closed = (State.SUPPRESSED, "address suppressed")
    elif subscriber.status != Subscriber.Status.CONFIRMED:
        closed = (State.SKIPPED, f"subscriber {subscriber.status}")
    elif not picks_by_subscriber.get(subscriber.pk):
        closed = (State.SKIPPED, "no new papers for this reader")
    if closed:
        delivery_record_final(delivery=row, state=closed[0], reason=closed[1], now=moment)
        result.skipped += 1
        return
    if not email_is_sendable(subscriber.email):
        # Django would raise UnicodeError mid-chunk, leaving the chunk's other rows claimed and
        # unsent for the reconciler to re-queue into the same failure. This one fails alone, and
        # is suppressed as an address an ESP calls invalid is: no later edition can reach it either.
        error = SendError(UNENCODABLE_ADDRESS, transient=False, suppress=True)
        _after_failure(row=row, error=error, now=moment, result=result)
        return
    picks = picks_by_subscriber[subscriber.pk]
    message = digest_message_build(
        delivery=row, subscriber=subscriber, edition=edition, picks=picks, ranks=ranks, connection=smtp,
        render_cache=render_cache,
    )
    try:
        # Opened once, reused for every message of the chunk (a no-op when already open).
        if smtp.open():
            _no_delay(smtp)
        smtp.send_messages([message])
    except Exception as exc:  # noqa: BLE001 - sorted below; anything unknown is re-raised
        error = send_error_classify(exc)
        if error is None:
            raise
        _after_failure(row=row, error=error, now=timezone.now(), result=result)
        if error.transient:
            # The connection may be half-dead; the next message opens a fresh one.
            smtp.close()
        return
    status = getattr(message, "anymail_status", None)
    message_id = (getattr(status, "message_id", None) if status else None) or message.extra_headers["Message-ID"]
    delivery_record_sent(
        delivery=row,
        message_id=str(message_id),
        paper_ids=[p.paper_id for p in picks],
        reasons=[list(p.reasons or ()) for p in picks],
        now=timezone.now(),
    )
    result.sent += 1


def _no_delay(connection) -> None:
    """Turn off Nagle on an SMTP connection we keep open for a whole chunk.

    smtplib writes a message and then waits for the reply; with Nagle on, the last
    partial segment of a large message waits for the server's delayed ACK (~40 ms on
    Linux), which capped a worker at ~20 messages a second.
    """
    sock = getattr(getattr(connection, "connection", None), "sock", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not a TCP socket (or already closed): nothing to tune


def _after_failure(*, row: Delivery, error: SendError, now: datetime.datetime, result: ChunkResult) -> None:
    result.errors.append(str(error))
    if error.transient:
        logger.info("delivery %s: transient error, retrying: %s", row.pk, error)
        if delivery_record_transient(delivery=row, error=str(error), now=now) is None:
            result.failed += 1
        else:
            result.retrying += 1
        return
    if error.rejected:
        # Our sender, settings or content, so likely every message: the operator must see it.
        logger.error("delivery %s: %s (reader not suppressed; fix the cause, then re-queue)", row.pk, error)
    else:
        logger.warning("delivery %s: permanent error: %s", row.pk, error)
    delivery_record_final(delivery=row, state=State.FAILED, reason=str(error), now=now, rejected=error.rejected)
    result.failed += 1
    if error.suppress:
        from subscriptions.services import subscriber_suppress

        subscriber_suppress(email=row.subscriber.email, reason=f"delivery failed: {error}"[:200])


# ---------------------------------------------------------------- reconciling


@dataclass
class Reconciled:
    requeued: int = 0
    skipped: int = 0
    editions_done: int = 0


def deliveries_reconcile(*, now: datetime.datetime) -> Reconciled:
    """Re-queue rows a dead worker left behind; skip rows past the cutoff; close finished editions.

    Expired leases mean the worker died (or hung) mid-chunk. Pending rows untouched
    for a lease period were planned but their task was lost (or a retry task was).
    """
    out = Reconciled()
    cutoff = now - datetime.timedelta(hours=settings.EDITION_SEND_CUTOFF_HOURS)
    lease = datetime.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    open_rows = Delivery.objects.filter(state__in=[State.PENDING, State.SENDING]).exclude(
        edition__status=Edition.Status.HELD
    )
    # Pending rows past the cutoff are closed here; a claimed one is closed by its claimer.
    out.skipped = open_rows.filter(state=State.PENDING, created_at__lt=cutoff).update(
        state=State.SKIPPED, last_error="past the edition's send cutoff", lease_until=None, updated_at=now
    )
    stuck = list(
        open_rows.filter(
            Q(state=State.SENDING, lease_until__lt=now)
            | Q(state=State.PENDING, lease_until__isnull=True, updated_at__lt=now - lease)
            | Q(state=State.PENDING, lease_until__lt=now - lease)
        )
        .order_by("id")
        .values_list("id", flat=True)
    )
    if stuck:
        with transaction.atomic():
            # Stamp the pending ones: a row still waiting its turn in a long queue is then
            # re-queued at most once per lease period, not on every round (a queue flood).
            Delivery.objects.filter(pk__in=stuck, state=State.PENDING).update(updated_at=now, lease_until=None)
            deliveries_enqueue(delivery_ids=stuck)
        out.requeued = len(stuck)
    # An edition is done once a newer one exists and none of its rows are open.
    latest = Edition.objects.exclude(frozen_at=None).order_by("-date").values_list("date", flat=True).first()
    if latest:
        done = Edition.objects.filter(status=Edition.Status.SENDING, date__lt=latest).exclude(
            deliveries__state__in=[State.PENDING, State.SENDING]
        )
        out.editions_done = Edition.objects.filter(pk__in=list(done.values_list("pk", flat=True))).update(
            status=Edition.Status.SENT
        )
    return out
