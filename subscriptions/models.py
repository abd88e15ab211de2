"""Subscribers, their preferences and their consent evidence."""

import secrets
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower

from .addresses import email_normalize


def new_token_key() -> str:
    return secrets.token_urlsafe(16)


@lru_cache(maxsize=None)
def zone_named(name: str) -> ZoneInfo:
    """The zone `name`, or the default subscriber zone if zoneinfo does not know it.

    Rows saved before the name was checked (Subscriber.clean_fields) may hold anything; one
    such row must not break planning or a reader's page. Planning and pages share this rule,
    so a pause date and a send time are reckoned in the same zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE_DEFAULT)


class Subscriber(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending confirmation"
        CONFIRMED = "confirmed", "Confirmed"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        SUPPRESSED = "suppressed", "Suppressed"

    class Frequency(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"

    # Spelt by addresses.email_normalize (lower case, an IDN domain in punycode) on every save.
    # Unique by constraint (Meta), not unique=True, which on PostgreSQL adds an unused
    # varchar_pattern_ops index that every signup would have to update.
    email = models.EmailField(max_length=254, help_text="Stored lower-cased.")
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.PENDING)
    topics = models.ManyToManyField("digest.Topic", related_name="subscribers", blank=True)
    interests = models.CharField(max_length=500, blank=True, help_text="Comma-separated phrases.")
    frequency = models.CharField(max_length=6, choices=Frequency.choices, default=Frequency.DAILY)
    weekday = models.PositiveSmallIntegerField(default=0, help_text="0=Monday; used when weekly.")
    send_hour = models.PositiveSmallIntegerField(default=7, help_text="Local hour, 0-23.")
    timezone = models.CharField(max_length=64, default="UTC")
    digest_size = models.PositiveSmallIntegerField(default=10)
    paused_until = models.DateField(null=True, blank=True)
    # Part of every signed link: rotating it revokes all links sent so far.
    token_key = models.CharField(max_length=32, default=new_token_key, editable=False)

    # Consent evidence.
    signup_at = models.DateTimeField(null=True, blank=True)
    signup_ip = models.GenericIPAddressField(null=True, blank=True)
    signup_user_agent = models.CharField(max_length=500, blank=True)
    signup_source = models.CharField(max_length=40, blank=True, help_text="web, csv-import, ...")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirm_ip = models.GenericIPAddressField(null=True, blank=True)
    confirm_user_agent = models.CharField(max_length=500, blank=True)
    last_confirmation_sent_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    unsubscribe_source = models.CharField(max_length=40, blank=True, help_text="one-click, manage-page, admin, ...")
    suppressed_at = models.DateTimeField(null=True, blank=True)
    suppressed_reason = models.CharField(max_length=200, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["email"], name="subscriber_email_unique"),
            models.UniqueConstraint(Lower("email"), name="subscriber_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(send_hour__lte=23), name="subscriber_send_hour_range"
            ),
            models.CheckConstraint(
                condition=models.Q(digest_size__gte=5, digest_size__lte=30), name="subscriber_digest_size_range"
            ),
            models.CheckConstraint(condition=models.Q(weekday__lte=6), name="subscriber_weekday_range"),
        ]
        indexes = [
            models.Index(fields=["status", "send_hour"]),
            # The lost-confirmation sweep (services.confirmations_requeue_lost) reads only these rows.
            models.Index(
                fields=["signup_at"],
                condition=models.Q(status="pending", last_confirmation_sent_at__isnull=True),
                name="subscriber_confirmation_lost",
            ),
        ]

    WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

    @property
    def weekday_name(self) -> str:
        """The day a weekly digest comes, in words (not the locale's: emails are English)."""
        return self.WEEKDAY_NAMES[self.weekday]

    @property
    def zone(self) -> ZoneInfo:
        """The zone this reader's days and hours are reckoned in (see zone_named)."""
        return zone_named(self.timezone)

    def __str__(self):
        return self.email

    def clean_fields(self, exclude=None):
        # Here rather than as a validator on the field: that would be a migration for no change
        # to the schema. The admin's form runs this; the signup, manage and import forms check
        # the same list themselves.
        from .selectors import timezone_names

        errors = {}
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as error:
            errors = error.error_dict
        if "timezone" not in (exclude or ()) and "timezone" not in errors and self.timezone not in timezone_names():
            errors["timezone"] = [ValidationError(
                "Unknown time zone %(name)s: use an IANA name such as Europe/Berlin or America/New_York.",
                code="unknown_timezone", params={"name": repr(self.timezone)},
            )]  # fmt: skip
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        self.email = email_normalize(self.email)
        super().save(*args, **kwargs)


class Suppression(models.Model):
    """An address we must not mail (hard bounce, complaint, operator), kept even if the subscriber is deleted."""

    email = models.EmailField(max_length=254)
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.email} ({self.reason})"

    class Meta:
        # A constraint rather than unique=True: no unused "_like" index on PostgreSQL.
        constraints = [models.UniqueConstraint(fields=["email"], name="suppression_email_unique")]

    def save(self, *args, **kwargs):
        self.email = email_normalize(self.email)
        super().save(*args, **kwargs)


class SignupRequest(models.Model):
    """A signup form as submitted, waiting for the worker (subscriptions.services.signup_requests_process).

    The web request only records this row, the same write whatever the address's state,
    so neither the answer nor its timing tells whether an address is known. The worker
    applies it (new, pending, confirmed, unsubscribed, suppressed) and deletes it.
    """

    email = models.CharField(max_length=254)
    topic_ids = models.JSONField(default=list)
    interests = models.CharField(max_length=500, blank=True)
    frequency = models.CharField(max_length=6)
    weekday = models.PositiveSmallIntegerField()
    send_hour = models.PositiveSmallIntegerField()
    timezone = models.CharField(max_length=64)
    digest_size = models.PositiveSmallIntegerField()
    signup_ip = models.GenericIPAddressField(null=True, blank=True)
    signup_user_agent = models.CharField(max_length=500, blank=True)
    signup_source = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField()
    # Failed applications so far; a request that keeps failing is left for the operator.
    attempts = models.PositiveSmallIntegerField(default=0)

    def __str__(self):
        return f"signup request #{self.pk}"


class SignupConsent(models.Model):
    """One more signup of a pending address, as submitted: its consent evidence and its preferences.

    A pending address may be signed up again (by its owner on another device, or by anyone),
    and each confirmation email then links to its own signup (tokens: "c"). The subscriber
    keeps the first signup's evidence and preferences: a later signup changes nothing there,
    so a stranger cannot change what the owner's link confirms. Confirming through a link
    applies that link's signup, evidence and preferences alike (services.subscriber_confirm).
    Deleted on confirmation, and by the purge once no link can use it.
    """

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="signup_consents")
    signup_at = models.DateTimeField()
    signup_ip = models.GenericIPAddressField(null=True, blank=True)
    signup_user_agent = models.CharField(max_length=500, blank=True)
    signup_source = models.CharField(max_length=40, blank=True)

    # The preferences this signup asked for, under the Subscriber's names (and defaults).
    topics = models.ManyToManyField("digest.Topic", related_name="+", blank=True)
    interests = models.CharField(max_length=500, blank=True)
    frequency = models.CharField(max_length=6, choices=Subscriber.Frequency.choices, default=Subscriber.Frequency.DAILY)
    weekday = models.PositiveSmallIntegerField(default=0)
    send_hour = models.PositiveSmallIntegerField(default=7)
    timezone = models.CharField(max_length=64, default="UTC")
    digest_size = models.PositiveSmallIntegerField(default=10)

    @property
    def weekday_name(self) -> str:
        return Subscriber.WEEKDAY_NAMES[self.weekday]

    def __str__(self):
        return f"signup of subscriber #{self.subscriber_id} at {self.signup_at:%Y-%m-%d %H:%M}"
