"""Subscribers, their later signups and suppressions in the admin (operators only: all show addresses).

The `curators` group has no permission on these models, so every admin URL for
them (list, change, history, delete, autocomplete) answers 403 to a curator.
"""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone
from django.urls import reverse
from django.utils.html import format_html

from digest.admin import DeliveryHistoryInline, LedgerCascadeMixin
from digest.models import Topic
from digest.plurals import counted

from . import services
from .addresses import domain_to_ascii
from .forms import (
    DIGEST_SIZE_MAX, DIGEST_SIZE_MIN, HOURS, INTERESTS_MAX_LENGTH, WEEKDAYS, EmailAddressField, InterestsField,
    NoLineBreaksMixin,
)
from .models import SignupConsent, Subscriber, Suppression


class PausedFilter(admin.SimpleListFilter):
    title = "paused"
    parameter_name = "paused"

    def lookups(self, request, model_admin):
        return [("yes", "Paused now"), ("no", "Not paused")]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        if self.value() == "yes":
            return queryset.filter(paused_until__gte=today)
        if self.value() == "no":
            return queryset.exclude(paused_until__gte=today)
        return queryset


def _admin_reason(request) -> str:
    """The Suppression reason for a suppression made in the admin: that it was, and by whom."""
    return f"admin: suppressed by {request.user.get_username()}"


class SubscriberAdminForm(NoLineBreaksMixin, forms.ModelForm):
    """The signup form's checks and normalisation on the address and preferences.

    The fields' own checks also keep the model's constraints from speaking: Django skips a
    constraint whose field already has an error, which would otherwise show as
    'Constraint "subscriber_email_ci_unique" is violated.'
    """

    email = EmailAddressField(widget=forms.EmailInput(attrs={"class": "vTextField"}))
    interests = InterestsField(required=False, max_length=INTERESTS_MAX_LENGTH, help_text="Comma-separated phrases.",
                               widget=forms.TextInput(attrs={"class": "vTextField"}))
    weekday = forms.TypedChoiceField(choices=WEEKDAYS, coerce=int, initial=0, help_text="Used when weekly.")
    send_hour = forms.TypedChoiceField(choices=HOURS, coerce=int, initial=7, help_text="Local hour.")
    digest_size = forms.IntegerField(min_value=DIGEST_SIZE_MIN, max_value=DIGEST_SIZE_MAX, initial=10)

    class Meta:
        model = Subscriber
        fields = "__all__"

    def clean_email(self):
        email = self.cleaned_data["email"]
        if Subscriber.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("A subscriber with this address already exists.", code="unique")
        return email

    def clean_status(self):
        """A suppressed address stays suppressed here while its Suppression row exists: sending and
        signup read that row, so a status set back to confirmed would look active and mail nobody."""
        status = self.cleaned_data["status"]
        was = self.instance
        if was.pk and was.status == Subscriber.Status.SUPPRESSED and status != Subscriber.Status.SUPPRESSED:
            suppression = Suppression.objects.filter(email=was.email).first()
            if suppression is not None:
                url = reverse("admin:subscriptions_suppression_delete", args=[suppression.pk])
                raise forms.ValidationError(
                    format_html(
                        "This address is suppressed ({}): mail to it bounced or was reported, so it stays "
                        "suppressed. Lifting that is a deliberate step: <a href=\"{}\">delete its suppression</a> "
                        "(the admin's history records who did), then change the status here.",
                        suppression.reason, url,
                    ),
                    code="suppressed",
                )  # fmt: skip
        return status


def _search_ascii(term: str) -> str:
    """Each word's domain (after an @, or the whole word if it has a dot) in its stored form;
    a word IDNA cannot encode is left as typed."""
    words = []
    for word in term.split():
        local, at, domain = word.rpartition("@")
        if not domain.isascii() and (at or "." in domain):
            try:
                domain = domain_to_ascii(domain.lower())
            except UnicodeError:
                pass
        words.append(f"{local}{at}{domain}")
    return " ".join(words)


class _TopicsColumn:
    """A "Topics" column (the first three names, then "+N") for a subscriber or a later signup,
    the rows' topics fetched in one query, names only."""

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related(Prefetch("topics", queryset=Topic.objects.only("pk", "name")))

    @admin.display(description="Topics")
    def topics_column(self, obj):
        names = [t.name for t in obj.topics.all()]
        return ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "") if names else "—"


class _ReadOnly:
    """Consent evidence is what people submitted: shown, never typed in or edited here. A row goes
    with its subscriber (an erasure) or when its link can no longer be used (the purge)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


SIGNUP_CONSENT_FIELDS = (
    "signup_at", "signup_ip", "signup_user_agent", "signup_source",
    "topics_column", "interests", "frequency", "weekday", "send_hour", "timezone", "digest_size",
)  # fmt: skip


class SignupConsentInline(_ReadOnly, _TopicsColumn, admin.TabularInline):
    """Later signups of a pending address, each waiting on its own confirmation link."""

    model = SignupConsent
    extra = 0
    fields = SIGNUP_CONSENT_FIELDS
    readonly_fields = fields
    show_change_link = True
    ordering = ("signup_at",)
    verbose_name = "later signup (not confirmed)"
    verbose_name_plural = "Later signups, not confirmed (confirming through one's link applies its preferences)"


@admin.register(SignupConsent)
class SignupConsentAdmin(_ReadOnly, _TopicsColumn, admin.ModelAdmin):
    list_display = ("subscriber", "signup_at", "signup_source")
    list_filter = ("signup_source",)
    list_select_related = ("subscriber",)
    search_fields = ("subscriber__email",)
    date_hierarchy = "signup_at"
    list_per_page = 100
    show_full_result_count = False
    fields = ("subscriber", *SIGNUP_CONSENT_FIELDS)
    readonly_fields = fields


@admin.register(Subscriber)
class SubscriberAdmin(_TopicsColumn, LedgerCascadeMixin, admin.ModelAdmin):
    form = SubscriberAdminForm
    list_display = ("email", "status_column", "frequency", "send_hour", "timezone", "topics_column", "created_at")
    list_filter = ("status", PausedFilter, "frequency", "signup_source", "topics")
    search_fields = ("email",)
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False
    actions = ("suppress", "resend_confirmation")
    filter_horizontal = ("topics",)
    inlines = (SignupConsentInline, DeliveryHistoryInline)
    # token_key is editable=False and listed nowhere: it never reaches a page.
    consent_fields = (
        "signup_at", "signup_ip", "signup_user_agent", "signup_source",
        "confirmed_at", "confirm_ip", "confirm_user_agent", "last_confirmation_sent_at",
    )  # fmt: skip
    status_fields = ("unsubscribed_at", "unsubscribe_source", "suppressed_at", "suppressed_reason")
    readonly_fields = (*consent_fields, *status_fields, "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("email", "status", "paused_until", *status_fields)}),
        ("Preferences", {"fields": ("topics", "interests", "frequency", "weekday", "send_hour", "timezone", "digest_size")}),
        ("Consent evidence", {"fields": consent_fields, "description": "Recorded at signup and confirmation; read-only."}),
        ("Record", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )

    def get_search_results(self, request, queryset, search_term):
        """Addresses are stored with an ASCII (punycode) domain; a search typed in Unicode
        (oscar@bücher.example, bücher.example) looks for that spelling."""
        return super().get_search_results(request, queryset, _search_ascii(search_term))

    def get_fieldsets(self, request, obj=None):
        # Fields a migration by another area may add are shown if they exist.
        names = {f.name for f in Subscriber._meta.get_fields()}
        return [
            (title, {**opts, "fields": tuple(f for f in opts["fields"] if f in names)}) for title, opts in self.fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        names = {f.name for f in Subscriber._meta.get_fields()}
        return tuple(f for f in self.readonly_fields if f in names)

    def get_deleted_objects(self, objs, request):
        # Its later signups go with the reader (an erasure), although none is deleted on its own.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, perms_needed - {str(SignupConsent._meta.verbose_name)}, protected

    def save_model(self, request, obj, form, change):
        """A status set to Suppressed by hand goes through subscriber_suppress, as a bounce does:
        the Suppression row is what sending and signup read, so without it the address would
        still be mailed or could sign up again.

        Only when the status changes to Suppressed: a suppressed subscriber whose Suppression
        was deleted (lifted on purpose) and is then edited for anything else must not be
        suppressed again by the save."""
        stored = Subscriber.objects.filter(pk=obj.pk).values_list("status", flat=True).first() if change else None
        super().save_model(request, obj, form, change)
        if obj.status == Subscriber.Status.SUPPRESSED and stored != Subscriber.Status.SUPPRESSED:
            services.subscriber_suppress(email=obj.email, reason=_admin_reason(request))
            obj.refresh_from_db(fields=["status", "suppressed_at", "suppressed_reason", "updated_at"])

    @admin.display(description="Status", ordering="status")
    def status_column(self, obj):
        if obj.status == Subscriber.Status.CONFIRMED and obj.paused_until and obj.paused_until >= timezone.localdate():
            return f"Paused until {obj.paused_until:%d %b %Y}"
        if obj.status == Subscriber.Status.SUPPRESSED and obj.suppressed_reason:
            return format_html("Suppressed <small>({})</small>", obj.suppressed_reason)
        return obj.get_status_display()

    @admin.action(description="Suppress (never mail again)", permissions=["change"])
    def suppress(self, request, queryset):
        reason = _admin_reason(request)
        emails = list(queryset.exclude(status=Subscriber.Status.SUPPRESSED).values_list("email", flat=True))
        with transaction.atomic():
            for email in emails:
                services.subscriber_suppress(email=email, reason=reason)
        self.message_user(
            request,
            f"Suppressed {counted(len(emails), 'subscriber', 'subscribers')}; they will get no more email.",
            messages.SUCCESS,
        )

    @admin.action(description="Resend the confirmation email", permissions=["change"])
    def resend_confirmation(self, request, queryset):
        from digest.tasks.subscribers import subscriber_send_confirmation_task

        pending = list(queryset.filter(status=Subscriber.Status.PENDING).values_list("pk", flat=True))
        not_pending = queryset.count() - len(pending)
        # The same claim as signup: at most one confirmation per address per interval.
        claimed = [pk for pk in pending if services.confirmation_claim(subscriber_id=pk)]
        for pk in claimed:
            transaction.on_commit(lambda pk=pk: subscriber_send_confirmation_task.delay(pk))
        notes = []
        if len(pending) > len(claimed):
            notes.append(f"{len(pending) - len(claimed)} had one sent too recently")
        if not_pending:
            notes.append(f"{not_pending} not pending confirmation")
        level = messages.SUCCESS if claimed else messages.WARNING
        self.message_user(
            request,
            f"Queued {counted(len(claimed), 'confirmation email', 'confirmation emails')}."
            + (f" Skipped: {'; '.join(notes)}." if notes else ""),
            level,
        )


class SuppressionAdminForm(forms.ModelForm):
    # Spelt as signup and sending spell it: the model normalises on save, after the unique check
    # ran on the text as typed, so "A@Bücher.example" beside "a@xn--bcher-kva.example" was a 500.
    email = EmailAddressField(widget=forms.EmailInput(attrs={"class": "vTextField"}))

    class Meta:
        model = Suppression
        fields = ("email", "reason")

    def clean_email(self):
        email = self.cleaned_data["email"]
        if Suppression.objects.filter(email=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("This address is already suppressed.")
        return email


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    form = SuppressionAdminForm
    list_display = ("email", "reason", "created_at")
    search_fields = ("email", "reason")
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False

    def save_model(self, request, obj, form, change):
        # The row alone stops mail; the service also marks the subscriber, as a bounce does.
        super().save_model(request, obj, form, change)
        services.subscriber_suppress(email=obj.email, reason=obj.reason)
