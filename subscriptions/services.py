"""Writes for the subscriber life cycle: signup, confirm, preferences, pause, leave, suppress.

Emails are never sent here inside a request: the services enqueue a Celery task with
``transaction.on_commit`` and the task calls ``subscriber_send_confirmation`` or
``subscriber_send_manage_link``.
"""

import datetime
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError
from django.utils import timezone

from digest.emails import email_build, email_render
from digest.models import Topic

from . import links
from .addresses import email_is_sendable, email_normalize
from .models import SignupConsent, SignupRequest, Subscriber, Suppression, new_token_key
from .signals import subscriber_confirmed

logger = logging.getLogger(__name__)

# A pending address gets at most one confirmation email per this interval.
CONFIRMATION_RESEND_INTERVAL = datetime.timedelta(hours=1)
# Unconfirmed signups are forgotten after this long.
PENDING_MAX_AGE = datetime.timedelta(days=7)
# The same email (same claim, same links) is sent at most once within this window.
SEND_ONCE_SECONDS = 2 * 3600


@dataclass(frozen=True)
class Preferences:
    topics: list[Topic]
    interests: str = ""
    frequency: str = Subscriber.Frequency.DAILY
    weekday: int = 0
    send_hour: int = 7
    timezone: str = "UTC"
    digest_size: int = 10


# The Preferences fields a Subscriber, a SignupRequest and a SignupConsent keep under the same
# names (topics apart: a relation, or ids on a SignupRequest).
_SIGNUP_PREFERENCE_FIELDS = ("interests", "frequency", "weekday", "send_hour", "timezone", "digest_size")


@dataclass(frozen=True)
class Consent:
    ip: str | None = None
    user_agent: str = ""
    source: str = "web"


class SignupOutcome(str, Enum):
    """What happened; the web page says the same thing for all of them (no enumeration)."""

    CONFIRMATION_QUEUED = "confirmation-queued"
    CONFIRMATION_THROTTLED = "confirmation-throttled"
    MANAGE_LINK_QUEUED = "manage-link-queued"
    SUPPRESSED = "suppressed"


def _preferences_apply(subscriber: Subscriber, preferences: Preferences) -> None:
    for name in _SIGNUP_PREFERENCE_FIELDS:
        setattr(subscriber, name, getattr(preferences, name))


# What one signup records, on the Subscriber, or on a SignupConsent for a later signup.
EVIDENCE_FIELDS = ("signup_at", "signup_ip", "signup_user_agent", "signup_source")


def _evidence(consent: Consent, now: datetime.datetime) -> dict:
    return dict(zip(EVIDENCE_FIELDS, (now, consent.ip, consent.user_agent[:500], consent.source[:40]), strict=True))


def _consent_apply(subscriber: Subscriber, consent: Consent, now: datetime.datetime) -> None:
    for name, value in _evidence(consent, now).items():
        setattr(subscriber, name, value)


def _is_suppressed(email: str) -> bool:
    return Suppression.objects.filter(email=email).exists()


def confirmation_claim(*, subscriber_id: int, now: datetime.datetime | None = None) -> bool:
    """Claim the right to send a confirmation email now.

    A sort of optimistic lock: one conditional UPDATE, and only the caller that changed
    the row may send, so concurrent signups of one pending address send one email an hour.
    """
    now = now or timezone.now()
    claimed = (
        Subscriber.objects.filter(pk=subscriber_id, status=Subscriber.Status.PENDING)
        .filter(Q(last_confirmation_sent_at__isnull=True) | Q(last_confirmation_sent_at__lte=now - CONFIRMATION_RESEND_INTERVAL))
        .update(last_confirmation_sent_at=now)
    )
    return claimed == 1


def _queue_confirmation(subscriber_id: int) -> None:
    from digest.tasks.subscribers import subscriber_send_confirmation_task

    try:
        subscriber_send_confirmation_task.delay(subscriber_id)
    except KombuOperationalError:
        # The broker is down: give the hourly claim back, or the address could not get its
        # confirmation for an hour although none was sent (confirmations_requeue_lost sends it).
        Subscriber.objects.filter(pk=subscriber_id).update(last_confirmation_sent_at=None)
        raise


def _enqueue_confirmation(subscriber_id: int) -> None:
    transaction.on_commit(lambda: _queue_confirmation(subscriber_id))


def _enqueue_manage_link(subscriber_id: int, *, links_replaced: bool = False) -> None:
    from digest.tasks.subscribers import subscriber_send_manage_link_task

    transaction.on_commit(lambda: subscriber_send_manage_link_task.delay(subscriber_id, links_replaced=links_replaced))


# Set while a drain task is queued and not yet started: signups recorded meanwhile need no
# task of their own. Expires so that a task lost with a broker blip is not waited for.
DRAIN_QUEUED_KEY = "signup-requests:drain-queued"
DRAIN_QUEUED_SECONDS = 60
# Requests one drain task applies (in batches, one transaction each) before handing over
# to a fresh task: well inside CELERY_TASK_SOFT_TIME_LIMIT.
DRAIN_BATCH = 50
DRAIN_LIMIT = 2000
SIGNUP_REQUEST_MAX_ATTEMPTS = 5


def signup_request_record(*, email: str, preferences: Preferences, consent: Consent) -> None:
    """What the signup form does: record the submission for the worker, whatever the address.

    One INSERT that reads nothing, then (after commit) a drain task unless one is already
    queued: the same queries, answer and work for a new, pending, confirmed, unsubscribed or
    suppressed address, so timing cannot tell them apart (the per-state work, 4.4-8.3 ms of
    CPU when done here, is the worker's). The row is durable before the answer: if the broker
    is unreachable the minute-ly sweep (beat) applies it.
    """
    request = SignupRequest(
        email=email_normalize(email),
        topic_ids=list(dict.fromkeys(topic.pk for topic in preferences.topics)),
        **{name: getattr(preferences, name) for name in _SIGNUP_PREFERENCE_FIELDS},
        signup_ip=consent.ip,
        signup_user_agent=consent.user_agent[:500],
        signup_source=consent.source[:40],
        created_at=timezone.now(),
    )
    # The ORM's INSERT compiler was a fifth of the request's Python CPU; this statement is
    # built once, and the values are prepared by the model's fields as the ORM would.
    sql, fields = _signup_request_insert_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [f.get_db_prep_save(f.pre_save(request, True), connection) for f in fields])
    transaction.on_commit(signup_requests_drain_soon)


@lru_cache(maxsize=1)
def _signup_request_insert_sql() -> tuple[str, tuple]:
    fields = tuple(f for f in SignupRequest._meta.concrete_fields if not f.primary_key)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    return f"INSERT INTO {quote(SignupRequest._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})", fields


def signup_requests_drain_soon() -> None:
    """Queue a drain task unless one is queued already (one Redis round trip under load)."""
    from digest.tasks.subscribers import signup_requests_drain_task

    try:
        if cache.add(DRAIN_QUEUED_KEY, 1, timeout=DRAIN_QUEUED_SECONDS):
            try:
                signup_requests_drain_task.delay()
            except KombuOperationalError:
                cache.delete(DRAIN_QUEUED_KEY)
                raise
    except (RedisError, KombuOperationalError):
        # The request is committed; the sweep applies it within a minute or two.
        logger.warning("could not queue the signup drain; the periodic sweep will apply the request", exc_info=True)


def signup_requests_process(*, limit: int = DRAIN_LIMIT) -> int:
    """Apply recorded signup requests, oldest first, each through subscriber_signup. Returns how many.

    Batches are claimed with FOR UPDATE SKIP LOCKED, so concurrent drains share the work
    without applying a request twice; a request is deleted in the transaction that applies
    it, and its emails are queued on commit. A request that fails is rolled back alone
    (savepoint), counted, and retried by later drains until SIGNUP_REQUEST_MAX_ATTEMPTS.
    """
    # Cleared before reading: a request recorded after this point queues a new drain.
    cache.delete(DRAIN_QUEUED_KEY)
    done = 0
    while done < limit:
        with transaction.atomic():
            batch = list(
                SignupRequest.objects.select_for_update(skip_locked=True)
                .filter(attempts__lt=SIGNUP_REQUEST_MAX_ATTEMPTS)
                .order_by("pk")[:DRAIN_BATCH]
            )
            if not batch:
                break
            topics = Topic.objects.in_bulk({pk for request in batch for pk in request.topic_ids})
            applied, failed = [], []
            for request in batch:
                try:
                    with transaction.atomic():
                        subscriber_signup(
                            email=request.email,
                            preferences=Preferences(
                                topics=[topics[pk] for pk in request.topic_ids if pk in topics],
                                **{name: getattr(request, name) for name in _SIGNUP_PREFERENCE_FIELDS},
                            ),
                            consent=Consent(ip=request.signup_ip, user_agent=request.signup_user_agent,
                                            source=request.signup_source),
                            now=request.created_at,
                        )
                    applied.append(request.pk)
                except Exception:
                    logger.exception("signup request %s could not be applied", request.pk)
                    failed.append(request.pk)
            SignupRequest.objects.filter(pk__in=applied).delete()
            SignupRequest.objects.filter(pk__in=failed).update(attempts=F("attempts") + 1)
        done += len(batch)
    if done >= limit:
        signup_requests_drain_soon()  # more are waiting: a fresh task takes over
    return done


def subscriber_signup(
    *, email: str, preferences: Preferences, consent: Consent, now: datetime.datetime | None = None
) -> SignupOutcome:
    """Start (or restart) double opt-in for an address: how a SignupRequest is applied.

    - new or unsubscribed: pending, preferences saved, confirmation email queued;
    - pending: the subscriber is left as it is; a confirmation is re-sent at most hourly, each
      with a link to its own signup (SignupConsent: evidence and preferences), which confirming
      applies. A signup within the hour sends no link, so it keeps nothing;
    - confirmed: nothing changes (the form is not authenticated); a manage link is mailed;
    - suppressed: nothing at all.

    ``now`` is when the person submitted the form (the consent time), if not now.
    """
    email = email_normalize(email)
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        new_id = _insert_if_new(email=email, preferences=preferences, consent=consent, now=now)
        if new_id is not None:
            _enqueue_confirmation(new_id)
            return SignupOutcome.CONFIRMATION_QUEUED
    if _is_suppressed(email):
        return SignupOutcome.SUPPRESSED
    for attempt in range(2):
        try:
            with transaction.atomic():
                return _signup_in_transaction(email=email, preferences=preferences, consent=consent, now=now)
        except IntegrityError:
            # Two signups for one new address raced on the unique email; the loser
            # retries and finds the winner's row.
            if attempt:
                raise
    raise AssertionError("unreachable")


@lru_cache(maxsize=1)
def _insert_if_new_sql() -> tuple[str, tuple]:
    fields = tuple(f for f in Subscriber._meta.concrete_fields if not f.primary_key)
    quote = connection.ops.quote_name
    m2m = Subscriber._meta.get_field("topics")
    sql = f"""
        WITH new AS (
            INSERT INTO {quote(Subscriber._meta.db_table)} ({", ".join(quote(f.column) for f in fields)})
            SELECT {", ".join(["%s"] * len(fields))}
            WHERE NOT EXISTS (SELECT 1 FROM {quote(Suppression._meta.db_table)} WHERE {quote("email")} = %s)
            ON CONFLICT DO NOTHING
            RETURNING {quote(Subscriber._meta.pk.column)}
        ), links AS (
            INSERT INTO {quote(m2m.m2m_db_table())} ({quote(m2m.m2m_column_name())}, {quote(m2m.m2m_reverse_name())})
            SELECT new.{quote(Subscriber._meta.pk.column)}, topic_id FROM new, unnest(%s::bigint[]) AS topic_id
            ON CONFLICT DO NOTHING
        )
        SELECT {quote(Subscriber._meta.pk.column)} FROM new
    """
    return sql, fields


def _insert_if_new(*, email: str, preferences: Preferences, consent: Consent, now: datetime.datetime) -> int | None:
    """PostgreSQL: a new pending subscriber and its topic links in one statement, if the
    address is neither suppressed nor known. Returns the new id, or None (nothing written).

    This is the common signup. Through the ORM it took six round trips (suppression check,
    BEGIN, lookup, insert, links, COMMIT) and most of the request's CPU; here it is one.
    The row is built by the model and its values prepared by its fields, as the ORM's own
    INSERT would be. ON CONFLICT covers both unique constraints on the address (a
    concurrent signup for it waits for the other one's commit, then writes nothing).
    A new row is its own confirmation claim, as in _signup_in_transaction.
    """
    sql, fields = _insert_if_new_sql()
    subscriber = Subscriber(email=email, status=Subscriber.Status.PENDING, last_confirmation_sent_at=now)
    _preferences_apply(subscriber, preferences)
    _consent_apply(subscriber, consent, now)
    values = [f.get_db_prep_save(f.pre_save(subscriber, True), connection) for f in fields]
    topic_ids = list(dict.fromkeys(topic.pk for topic in preferences.topics))
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, email, topic_ids])
        row = cursor.fetchone()
    return row[0] if row else None


def _signup_in_transaction(
    *, email: str, preferences: Preferences, consent: Consent, now: datetime.datetime
) -> SignupOutcome:
    subscriber = Subscriber.objects.select_for_update().filter(email=email).first()
    if subscriber is None:
        # A new row is its own claim: a concurrent signup for this address fails on the
        # unique email, retries, and then finds last_confirmation_sent_at already set.
        subscriber = Subscriber(email=email, status=Subscriber.Status.PENDING, last_confirmation_sent_at=now)
        _preferences_apply(subscriber, preferences)
        _consent_apply(subscriber, consent, now)
        subscriber.save(force_insert=True)
        subscriber.topics.add(*preferences.topics)
        _enqueue_confirmation(subscriber.pk)
        return SignupOutcome.CONFIRMATION_QUEUED
    elif subscriber.status == Subscriber.Status.SUPPRESSED:
        return SignupOutcome.SUPPRESSED
    elif subscriber.status == Subscriber.Status.CONFIRMED:
        _enqueue_manage_link(subscriber.pk)
        return SignupOutcome.MANAGE_LINK_QUEUED
    elif subscriber.status == Subscriber.Status.PENDING:
        if not confirmation_claim(subscriber_id=subscriber.pk, now=now):
            return SignupOutcome.CONFIRMATION_THROTTLED
        # The earlier signup stays on the subscriber, for the link already sent: the form is not
        # authenticated, so a stranger's signup must not change what the owner's link confirms.
        # This one goes with the email about to be sent (subscriber_send_confirmation). A signup
        # that sends nothing (within the hour) has no link, so nothing to keep.
        _signup_consent_add(subscriber=subscriber, preferences=preferences, consent=consent, now=now)
        _enqueue_confirmation(subscriber.pk)
        return SignupOutcome.CONFIRMATION_QUEUED
    # Unsubscribed. Coming back needs a fresh confirmation; links from the old round stop working.
    subscriber.status = Subscriber.Status.PENDING
    subscriber.token_key = new_token_key()
    subscriber.confirmed_at = None
    subscriber.last_confirmation_sent_at = None
    _consent_apply(subscriber, consent, now)
    SignupConsent.objects.filter(subscriber=subscriber).delete()
    _preferences_apply(subscriber, preferences)
    subscriber.save()
    subscriber.topics.set(preferences.topics)
    if confirmation_claim(subscriber_id=subscriber.pk, now=now):
        _enqueue_confirmation(subscriber.pk)
        return SignupOutcome.CONFIRMATION_QUEUED
    return SignupOutcome.CONFIRMATION_THROTTLED


def _signup_consent_add(
    *, subscriber: Subscriber, preferences: Preferences, consent: Consent, now: datetime.datetime
) -> None:
    signup = SignupConsent.objects.create(
        subscriber=subscriber,
        **_evidence(consent, now),
        **{name: getattr(preferences, name) for name in _SIGNUP_PREFERENCE_FIELDS},
    )
    signup.topics.set(preferences.topics)


def subscriber_link_request(*, email: str) -> None:
    """'Send me a fresh link': answers nothing; the worker decides (subscriber_link_request_apply).

    The same lookup and the same one task whatever the address (unknown included), so
    neither the answer nor its timing says whether the address is known.
    """
    subscriber_id = Subscriber.objects.filter(email=email_normalize(email)).values_list("pk", flat=True).first()

    from digest.tasks.subscribers import subscriber_link_request_task

    transaction.on_commit(lambda: subscriber_link_request_task.delay(subscriber_id))


def subscriber_link_request_apply(*, subscriber_id: int | None) -> None:
    """Mail only an address we know: confirmed, a manage link; pending, the confirmation again
    (at most hourly). Unknown, unsubscribed or suppressed: nothing."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).only("pk", "email", "status").first() if subscriber_id else None
    if subscriber is None or _is_suppressed(subscriber.email):
        return
    with transaction.atomic():
        if subscriber.status == Subscriber.Status.CONFIRMED:
            _enqueue_manage_link(subscriber.pk)
        elif subscriber.status == Subscriber.Status.PENDING and confirmation_claim(subscriber_id=subscriber.pk):
            _enqueue_confirmation(subscriber.pk)


def subscriber_confirm(
    *, subscriber: Subscriber, ip: str | None, user_agent: str, consent: SignupConsent | None = None
) -> bool:
    """Pending -> confirmed, keeping the evidence. Returns True if the subscriber is now confirmed.

    ``consent``: the later signup whose link was used (tokens.confirm_token_read); its evidence
    and its preferences become the subscriber's, so the record describes the signup confirmed
    and the reader gets what that signup asked for, not what the latest one did. Without it,
    the first signup's, which the subscriber holds already.
    Conditional UPDATE, so a double click confirms once and keeps the first evidence.
    An unsubscribed or suppressed subscriber is not revived by an old confirm link.
    """
    if _is_suppressed(subscriber.email):
        return False
    now = timezone.now()
    signup, topics = {}, None
    if consent is not None:
        signup = {name: getattr(consent, name) for name in (*EVIDENCE_FIELDS, *_SIGNUP_PREFERENCE_FIELDS)}
        topics = list(consent.topics.all())
    with transaction.atomic():
        confirmed = Subscriber.objects.filter(pk=subscriber.pk, status=Subscriber.Status.PENDING).update(
            **signup,
            status=Subscriber.Status.CONFIRMED,
            confirmed_at=now,
            confirm_ip=ip,
            confirm_user_agent=user_agent[:500],
            # A former reader who confirms again is no longer "unsubscribed at ...".
            unsubscribed_at=None,
            unsubscribe_source="",
            updated_at=now,
        )
        if confirmed:
            if topics is not None:
                subscriber.topics.set(topics)
            SignupConsent.objects.filter(subscriber=subscriber).delete()  # on the subscriber now, or never confirmed
    subscriber.refresh_from_db()
    if confirmed:
        subscriber_confirmed.send(sender=Subscriber, subscriber=subscriber)
    return subscriber.status == Subscriber.Status.CONFIRMED


PREFERENCE_FIELDS = ["interests", "frequency", "weekday", "send_hour", "timezone", "digest_size", "updated_at"]


def subscriber_update_preferences(
    *, subscriber: Subscriber, preferences: Preferences, paused_topics_removed: Iterable[Topic] = ()
) -> Subscriber:
    """Save preferences only: never the status, so a one-click unsubscribe that lands
    while the manage form is open is not undone by saving the form.

    The form offers active topics only; the deactivated ones the reader follows are kept, as
    the admin promises when a topic is deactivated, and count again if it is reactivated,
    unless the reader removes them (`paused_topics_removed`). Only topics the reader holds
    are kept, so no paused topic is ever added here.
    """
    removed = {topic.pk for topic in paused_topics_removed}
    with transaction.atomic():
        _preferences_apply(subscriber, preferences)
        subscriber.save(update_fields=PREFERENCE_FIELDS)
        paused = subscriber.topics.filter(active=False).exclude(pk__in=removed)
        subscriber.topics.set({*preferences.topics, *paused})
    return subscriber


def subscriber_pause(*, subscriber: Subscriber, weeks: int) -> Subscriber:
    """Pause for N weeks (0 resumes). The date is in the subscriber's own time zone."""
    if weeks < 0 or weeks > 52:
        raise ValueError("weeks must be between 0 and 52")
    if weeks == 0:
        subscriber.paused_until = None
    else:
        today = timezone.now().astimezone(subscriber.zone).date()
        subscriber.paused_until = today + datetime.timedelta(weeks=weeks)
    subscriber.save(update_fields=["paused_until", "updated_at"])
    return subscriber


def subscriber_unsubscribe(*, subscriber: Subscriber, source: str) -> bool:
    """Stop all mail to this subscriber. Idempotent; True if this call changed the status."""
    now = timezone.now()
    changed = Subscriber.objects.filter(
        pk=subscriber.pk, status__in=[Subscriber.Status.PENDING, Subscriber.Status.CONFIRMED]
    ).update(status=Subscriber.Status.UNSUBSCRIBED, unsubscribed_at=now, unsubscribe_source=source[:40], updated_at=now)
    subscriber.refresh_from_db()
    if changed:
        logger.info("subscriber %s unsubscribed (%s)", subscriber.pk, source)
    return changed == 1


def subscriber_suppress(*, email: str, reason: str) -> Suppression:
    """Never mail this address again (bounce, complaint, operator); also blocks re-signup."""
    email = email_normalize(email)
    now = timezone.now()
    with transaction.atomic():
        suppression, _ = Suppression.objects.get_or_create(email=email, defaults={"reason": reason[:200]})
        # A status already set to suppressed without the stamp (by hand in the admin) gets it too.
        Subscriber.objects.filter(email=email).exclude(status=Subscriber.Status.SUPPRESSED, suppressed_at__isnull=False).update(
            status=Subscriber.Status.SUPPRESSED, suppressed_at=now, suppressed_reason=reason[:200], updated_at=now
        )
    return suppression


def subscriber_revoke_links(*, subscriber: Subscriber) -> Subscriber:
    """Rotate token_key: every link sent so far stops working. Mails a fresh manage link."""
    with transaction.atomic():
        subscriber.token_key = new_token_key()
        subscriber.save(update_fields=["token_key", "updated_at"])
        if subscriber.status == Subscriber.Status.CONFIRMED:
            _enqueue_manage_link(subscriber.pk, links_replaced=True)
    return subscriber


def subscribers_purge_unconfirmed(*, now: datetime.datetime | None = None) -> int:
    """Forget signups never confirmed (or never applied) within PENDING_MAX_AGE. Returns how many
    subscribers were deleted.

    A former subscriber who signed up again and did not confirm goes back to
    'unsubscribed' rather than being deleted, so their history stays intact.
    """
    now = now or timezone.now()
    cutoff = now - PENDING_MAX_AGE
    stale = Subscriber.objects.filter(status=Subscriber.Status.PENDING).filter(
        Q(signup_at__lt=cutoff) | Q(signup_at__isnull=True, created_at__lt=cutoff)
    ).exclude(_signed_up_again_since(cutoff))
    stale.filter(unsubscribed_at__isnull=False).update(status=Subscriber.Status.UNSUBSCRIBED)
    deleted = stale.filter(unsubscribed_at__isnull=True).delete()[1].get(Subscriber._meta.label, 0)
    # A later signup's evidence is kept while its confirmation link may still be used, and for
    # a pending address only: a confirmed one carries the evidence it was confirmed with.
    links_dead = now - max(PENDING_MAX_AGE, datetime.timedelta(days=settings.CONFIRM_TOKEN_MAX_AGE_DAYS))
    SignupConsent.objects.filter(Q(signup_at__lt=links_dead) | ~Q(subscriber__status=Subscriber.Status.PENDING)).delete()
    # Requests that kept failing hold an address, IP and user agent: not kept longer either.
    SignupRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def _signed_up_again_since(moment: datetime.datetime) -> Exists:
    """A pending subscriber's later signup (SignupConsent) at or after `moment`: the address is
    as young as its latest signup, although signup_at keeps the first one's evidence."""
    return Exists(SignupConsent.objects.filter(subscriber=OuterRef("pk"), signup_at__gte=moment))


def confirmations_requeue_lost(*, now: datetime.datetime | None = None, limit: int = 500) -> int:
    """Queue the confirmation email of pending signups that have none on its way. Returns how many.

    A claim given back (the broker was down when the email was to be queued, after the signup
    itself had committed) leaves a pending subscriber with no confirmation sent and, since the
    recorded request is gone, nothing else that would send one. Only signups young enough for
    their confirmation link to still work are taken; each goes through confirmation_claim, so a
    sweep racing a fresh signup sends one email.
    """
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(days=settings.CONFIRM_TOKEN_MAX_AGE_DAYS)
    lost = list(
        Subscriber.objects.filter(status=Subscriber.Status.PENDING, last_confirmation_sent_at__isnull=True)
        .filter(Q(signup_at__gte=cutoff) | Q(signup_at__isnull=True, created_at__gte=cutoff) | _signed_up_again_since(cutoff))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    queued = 0
    for subscriber_id in lost:
        if not confirmation_claim(subscriber_id=subscriber_id, now=now):
            continue
        try:
            _queue_confirmation(subscriber_id)  # the claim is committed (autocommit): queue at once
        except KombuOperationalError:
            logger.warning("broker still down: %s lost confirmation(s) wait for the next sweep", len(lost) - queued)
            break
        queued += 1
    return queued


def _send_once(*, key: str, subscriber: Subscriber, name: str, context: dict) -> bool:
    """Send one email at most once per key, even if the task runs twice (redelivery, retry race).

    cache.add is atomic in Redis: only the first caller gets True. A failed send gives
    the key back so that the task's retry can send.
    """
    if not email_is_sendable(subscriber.email):
        # Stored before the forms refused it (or written around them): no retry can mail it,
        # and raising would only loop the task.
        logger.warning("subscriber %s: %s email not sent: the address cannot be encoded (IDNA)", subscriber.pk, name)
        return False
    if not cache.add(f"subscriber-email:{key}", 1, timeout=SEND_ONCE_SECONDS):
        return False
    try:
        # The same one-click link as the digest's: it works for a pending address too and
        # stops its confirmations (subscriber_unsubscribe).
        unsubscribe_url = links.unsubscribe_url(subscriber)
        rendered = email_render(name=name, context={"subscriber": subscriber, "unsubscribe_url": unsubscribe_url, **context})
        headers = {"Auto-Submitted": "auto-generated", **links.list_unsubscribe_headers(unsubscribe_url)}
        email_build(rendered=rendered, to=email_normalize(subscriber.email), headers=headers).send()
    except Exception:
        cache.delete(f"subscriber-email:{key}")
        raise
    return True


def subscriber_send_confirmation(*, subscriber: Subscriber) -> bool:
    """Send the double opt-in email for the current claim (see confirmation_claim); once per claim."""
    if subscriber.status != Subscriber.Status.PENDING or _is_suppressed(subscriber.email):
        return False
    claim = subscriber.last_confirmation_sent_at.isoformat() if subscriber.last_confirmation_sent_at else "none"
    # The latest signup that claimed an email is the one this email answers (None: the first),
    # and the email states what that signup asked for, which its link confirms.
    consent = SignupConsent.objects.filter(subscriber=subscriber).order_by("-pk").first()
    signup = consent or subscriber
    return _send_once(
        key=f"confirm:{subscriber.pk}:{subscriber.token_key}:{claim}",
        subscriber=subscriber,
        name="confirm",
        context={"confirm_url": links.confirm_url(subscriber, consent_id=consent.pk if consent else None),
                 "signup": signup, "topics": list(signup.topics.all())},
    )


def subscriber_send_manage_link(*, subscriber: Subscriber, links_replaced: bool = False) -> bool:
    """Mail a link to the settings page; at most once per SEND_ONCE_SECONDS per set of links.

    ``links_replaced``: sent because every earlier link was just revoked, which the email
    must say (the usual "nothing has changed" would be untrue).
    """
    if subscriber.status != Subscriber.Status.CONFIRMED or _is_suppressed(subscriber.email):
        return False
    return _send_once(
        key=f"manage:{subscriber.pk}:{subscriber.token_key}",
        subscriber=subscriber,
        name="manage_link",
        context={"manage_url": links.manage_url(subscriber), "links_replaced": links_replaced},
    )


class ImportOutcome(str, Enum):
    CREATED_PENDING = "created-pending"
    CREATED_CONFIRMED = "created-confirmed"
    EXISTING = "existing"
    SUPPRESSED = "suppressed"


def subscriber_import(*, email: str, preferences: Preferences, confirmed: bool, source: str = "csv-import") -> ImportOutcome:
    """Add one address from an operator's list. Never touches an existing or suppressed address.

    ``confirmed`` is the operator's statement that consent was collected elsewhere;
    otherwise the address gets the double opt-in email like a web signup.
    """
    email = email_normalize(email)
    if _is_suppressed(email):
        return ImportOutcome.SUPPRESSED
    now = timezone.now()
    try:
        with transaction.atomic():
            if Subscriber.objects.filter(email=email).exists():
                existing = Subscriber.objects.get(email=email)
                return ImportOutcome.SUPPRESSED if existing.status == Subscriber.Status.SUPPRESSED else ImportOutcome.EXISTING
            subscriber = Subscriber(email=email)
            _preferences_apply(subscriber, preferences)
            _consent_apply(subscriber, Consent(source=source), now)
            if confirmed:
                subscriber.status = Subscriber.Status.CONFIRMED
                subscriber.confirmed_at = now
            subscriber.save()
            subscriber.topics.set(preferences.topics)
            if confirmed:
                return ImportOutcome.CREATED_CONFIRMED
            if confirmation_claim(subscriber_id=subscriber.pk, now=now):
                _enqueue_confirmation(subscriber.pk)
            return ImportOutcome.CREATED_PENDING
    except IntegrityError:
        # Someone signed up with this address at the same moment.
        return ImportOutcome.EXISTING
