"""ESP tracking events (bounces, complaints, unsubscribes) from anymail's webhook.

anymail's own webhook views check the basic-auth secret and normalise each ESP's
payload; its `tracking` signal hands us the events. We store each one once (the
unique event id makes a replay change nothing) and act on it in a task.
"""

import datetime
import hashlib
import logging

from anymail.signals import AnymailTrackingEvent, EventType, tracking
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from digest.models import WebhookEvent
from subscriptions.addresses import email_normalize

logger = logging.getLogger(__name__)

# The stored names live on the model, so sending health counts exactly what is stored here.
HARD_BOUNCE = WebhookEvent.Kind.HARD_BOUNCE
SOFT_BOUNCE = WebhookEvent.Kind.SOFT_BOUNCE
DEFERRED = WebhookEvent.Kind.DEFERRED
COMPLAINT = WebhookEvent.Kind.COMPLAINT
UNSUBSCRIBED = WebhookEvent.Kind.UNSUBSCRIBED

SOFT_BOUNCES_TO_SUPPRESS = 3
SOFT_BOUNCE_WINDOW = datetime.timedelta(days=7)
# ESP bounce types that are temporary even though anymail files them under "bounced".
_SOFT_ESP_TYPES = {"softbounce", "transient", "dnserror", "soft", "soft_bounce", "soft-bounce"}


def tracking_event_kind(event: AnymailTrackingEvent) -> str | None:
    """What an event means for the address: one of the kinds above, or None (nothing to do)."""
    if event.event_type == EventType.COMPLAINED:
        return COMPLAINT
    if event.event_type == EventType.UNSUBSCRIBED:
        return UNSUBSCRIBED
    if event.event_type == EventType.DEFERRED:
        # The ESP is still trying (greylisting answers 4xx to the first attempts): not a bounce.
        return DEFERRED
    if event.event_type in (EventType.BOUNCED, EventType.REJECTED):
        raw = event.esp_event if isinstance(event.esp_event, dict) else {}
        esp_type = str(raw.get("Type") or raw.get("bounce_class") or raw.get("severity") or "").lower()
        if esp_type in _SOFT_ESP_TYPES or str(event.mta_response or "").strip().startswith("4"):
            return SOFT_BOUNCE
        return HARD_BOUNCE
    return None


def _event_id(event: AnymailTrackingEvent, esp_name: str) -> str:
    if event.event_id:
        return f"{esp_name}:{event.event_id}"[:255]
    # Some ESPs send no id: the event's identifying fields stand in for one.
    basis = f"{esp_name}|{event.event_type}|{event.message_id}|{event.recipient}|{event.timestamp}"
    return f"{esp_name}:sha256:{hashlib.sha256(basis.encode()).hexdigest()}"


def _address(value) -> str | None:
    """The event's address as stored, or None when it is no address a reader could have: an ESP
    (or anyone holding the secret) may send anything, and PostgreSQL refuses NUL characters and
    values over the column's 254. Nothing is suppressed for such an event."""
    address = email_normalize(str(value or ""))
    if not address or len(address) > 254:
        return None
    try:
        validate_email(address)
    except ValidationError:
        return None
    return address


def tracking_event_store(*, event: AnymailTrackingEvent, esp_name: str) -> WebhookEvent | None:
    """Store an event once; queue its handling after commit. Returns None for events we ignore or replays."""
    kind = tracking_event_kind(event)
    recipient = _address(event.recipient)
    if kind is None or recipient is None:
        if kind is not None:
            logger.warning("ignored a %s event for a malformed address %r", kind, str(event.recipient)[:80])
        return None
    from digest.tasks.sending import tracking_event_process_task

    with transaction.atomic():
        stored, created = WebhookEvent.objects.get_or_create(
            event_id=_event_id(event, esp_name),
            defaults={
                "event_type": str(kind),
                "esp_name": esp_name[:40],
                "recipient": recipient,
                "message_id": str(event.message_id or "")[:255],
                "reason": str(event.description or event.mta_response or event.reject_reason or "")[:2000],
                "occurred_at": event.timestamp,
            },
        )
        if not created:
            return None
        transaction.on_commit(lambda: tracking_event_process_task.delay(stored.pk))
    return stored


@receiver(tracking, dispatch_uid="paperboy-tracking-event")
def _on_tracking_event(sender, event, esp_name, **kwargs):
    tracking_event_store(event=event, esp_name=esp_name)


def soft_bounced_messages(*, recipient: str, since: datetime.datetime) -> int:
    """How many distinct messages to `recipient` soft-bounced since `since`.

    Per message, not per event: an ESP may report one message's bounce more than once
    (each retry), and one stuck message says little about the mailbox. Events without a
    message id cannot be grouped, so each counts on its own.
    """
    bounces = WebhookEvent.objects.filter(recipient=recipient, event_type=SOFT_BOUNCE, created_at__gte=since)
    with_id = bounces.exclude(message_id="").values("message_id").distinct().count()
    return with_id + bounces.filter(message_id="").count()


def tracking_event_process(*, webhook_event_id: int) -> str:
    """Act on a stored event exactly once (the processed_at claim guards redelivered tasks)."""
    now = timezone.now()
    if WebhookEvent.objects.filter(pk=webhook_event_id, processed_at__isnull=True).update(processed_at=now) != 1:
        return "already processed"
    stored = WebhookEvent.objects.get(pk=webhook_event_id)
    from subscriptions.models import Subscriber
    from subscriptions.services import subscriber_suppress, subscriber_unsubscribe

    if stored.event_type in (HARD_BOUNCE, COMPLAINT):
        subscriber_suppress(email=stored.recipient, reason=f"{stored.event_type.replace('_', ' ')}: {stored.reason}"[:200])
        return "suppressed"
    if stored.event_type == DEFERRED:
        return "deferred, not a bounce"
    if stored.event_type == SOFT_BOUNCE:
        recent = soft_bounced_messages(recipient=stored.recipient, since=now - SOFT_BOUNCE_WINDOW)
        if recent >= SOFT_BOUNCES_TO_SUPPRESS:
            subscriber_suppress(email=stored.recipient, reason=f"{recent} soft bounces in 7 days"[:200])
            return "suppressed"
        return f"soft bounce {recent} of {SOFT_BOUNCES_TO_SUPPRESS}"
    if stored.event_type == UNSUBSCRIBED:
        subscriber = Subscriber.objects.filter(email=stored.recipient).first()
        if subscriber is None:
            return "no such subscriber"
        subscriber_unsubscribe(subscriber=subscriber, source="esp")
        return "unsubscribed"
    return "ignored"
