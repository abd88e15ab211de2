"""Forms: validate and normalise; views hand the cleaned data to one service."""

import copy
import datetime
import html
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.forms.utils import flatatt
from django.utils import timezone
from django.utils.safestring import mark_safe

from digest.models import Topic

from .models import Subscriber
from .selectors import timezone_menu, timezone_names, topic_list_active
from .addresses import domain_is_mailable, email_is_sendable, email_normalize
from .services import Consent, Preferences

WEEKDAYS = [(0, "Monday"), (1, "Tuesday"), (2, "Wednesday"), (3, "Thursday"), (4, "Friday"), (5, "Saturday"), (6, "Sunday")]
HOURS = [(hour, f"{hour:02d}:00") for hour in range(24)]
DIGEST_SIZE_MIN, DIGEST_SIZE_MAX = 5, 30
INTERESTS_MAX_LENGTH = 500
PAUSE_WEEKS = [(1, "1 week"), (2, "2 weeks"), (4, "4 weeks"), (8, "8 weeks"), (12, "12 weeks")]


def _timezone_label(name: str, day: datetime.date) -> str:
    """'America/New York (UTC−05:00)': the offset on `day`, so nobody has to know that Etc/GMT+5 is UTC-5."""
    offset = datetime.datetime.combine(day, datetime.time(12), ZoneInfo(name)).utcoffset() or datetime.timedelta()
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "\u2212"
    return f"{name.replace('_', ' ')} (UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d})"


@lru_cache(maxsize=2)
def _timezone_options(day: datetime.date) -> tuple[tuple[str, str, str], ...]:
    """(value, '<option value="..."', '>Label</option>') for the menu's zones, escaped once a day
    (the offsets in the labels change with daylight saving time)."""
    return tuple(
        (name, f'<option value="{html.escape(name)}"', f">{html.escape(_timezone_label(name, day))}</option>")
        for name in timezone_menu()
    )


def _timezone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in timezone_names()]


@lru_cache(maxsize=1)
def _timezone_set() -> frozenset[str]:
    return frozenset(timezone_names())


class SharedChoicesMixin:
    """A choice field whose fixed choices every form instance shares.

    Django deep-copies a choice field's choices, and re-normalizes its widget's, for each
    form it builds: half the signup form's construction time, for lists that never change.
    They are never changed in place, so sharing them is safe (assigning .choices still
    gives one form its own list). Otherwise Field.__deepcopy__: own widget attrs,
    error messages and validators.
    """

    def __deepcopy__(self, memo):
        result = copy.copy(self)
        memo[id(self)] = result
        result.widget = copy.copy(self.widget)
        result.widget.attrs = self.widget.attrs.copy()
        result.error_messages = self.error_messages.copy()
        result.validators = self.validators[:]
        return result


# Django's "Select a valid choice. X is not one of the available choices." repeats whatever was
# posted back into the page; this says what to do instead, and echoes nothing.
INVALID_CHOICE = "Choose one of the listed options."


class ListedChoicesMixin:
    default_error_messages = {"invalid_choice": INVALID_CHOICE}


class FixedChoiceField(SharedChoicesMixin, ListedChoicesMixin, forms.ChoiceField):
    pass


class FixedTypedChoiceField(SharedChoicesMixin, ListedChoicesMixin, forms.TypedChoiceField):
    pass


class ListedMultipleChoiceField(ListedChoicesMixin, forms.MultipleChoiceField):
    pass


class TimezoneField(SharedChoicesMixin, ListedChoicesMixin, forms.ChoiceField):
    """A ChoiceField whose validity check is a set lookup, not a walk over ~600 choices."""

    def valid_value(self, value):
        return value in _timezone_set()


class TimezoneSelect(forms.Select):
    """The time-zone <select>, rendered in Python from pre-escaped options.

    Django renders every <option> through a template; with ~600 zones that was most
    of the landing page's time. Same markup and attributes (required, aria-*).
    """

    def render(self, name, value, attrs=None, renderer=None):
        final_attrs = self.build_attrs(self.attrs, attrs)
        final_attrs["name"] = name
        if isinstance(value, (list, tuple)):
            value = value[0] if value else ""
        selected = "" if value is None else str(value)
        menu = _timezone_options(timezone.localdate())
        options = "".join(f"{start} selected{end}" if choice == selected else start + end for choice, start, end in menu)
        if selected and selected in _timezone_set() and selected not in timezone_menu():
            # A reader's stored alias (Asia/Calcutta) stays selected rather than silently changing.
            label = html.escape(_timezone_label(selected, timezone.localdate()))
            options = f'<option value="{html.escape(selected)}" selected>{label}</option>' + options
        return mark_safe(f"<select{flatatt(final_attrs)}>{options}</select>")


def _has_control_characters(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in value)


class ErrorSummaryMixin:
    """The errors as the page's error summary lists them (templates/pages/subscriptions/_error_summary.html)."""

    def error_summary(self) -> list[tuple[str | None, str]]:
        """(link target or None, text) per error, in field order; errors of no one field come first, unlinked.

        A group of radios or checkboxes has no element of its own to link to: its first option
        gets the focus instead, as in the GOV.UK pattern (none if it has no options).
        """
        items: list[tuple[str | None, str]] = [(None, str(message)) for message in self.non_field_errors()]
        for field in self:
            if not field.errors:
                continue
            if field.field.widget.use_fieldset:
                options = field.subwidgets
                target = options[0].data["attrs"].get("id") if options else None
            else:
                target = field.auto_id or None
            # The field's name in front: the link must make sense read on its own.
            items += [(f"#{target}" if target else None, f"{field.label}: {message}") for message in field.errors]
        return items


class NoLineBreaksMixin:
    """Reject CR/LF (and other control characters) in every submitted field.

    Values end up in email headers and logs; a line break there is a header-injection
    attempt, never a legitimate answer, so it gets a form error rather than a silent strip.
    """

    def _raw_values(self, name: str) -> list[str]:
        if hasattr(self.data, "getlist"):
            return [v for v in self.data.getlist(self.add_prefix(name)) if isinstance(v, str)]
        value = self.data.get(self.add_prefix(name))
        if isinstance(value, (list, tuple)):
            return [v for v in value if isinstance(v, str)]
        return [value] if isinstance(value, str) else []

    def clean(self):
        cleaned = super().clean()
        for name in self.fields:
            values = self._raw_values(name)
            if any("\r" in v or "\n" in v for v in values):
                message = "Line breaks are not allowed here."
            elif any(_has_control_characters(v) for v in values):
                message = "This contains control characters; please type it again."
            else:
                continue
            # One message: the field's own check may have refused the same character already
            # (Django's "Null characters are not allowed."), and two run together on the page.
            self.errors.pop(name, None)
            self.add_error(name, message)
        return cleaned


NON_ASCII_LOCAL_PART = (
    "Addresses with accents or other non-ASCII letters before the @ aren't supported; "
    "please use another address."
)


UNENCODABLE_DOMAIN = (
    "The part after the @ is not a domain name mail can be sent to; please check it for typos."
)


class EmailAddressField(forms.EmailField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 254)
        kwargs.setdefault(
            "widget",
            forms.EmailInput(attrs={"autocomplete": "email", "inputmode": "email", "placeholder": "you@example.org"}),
        )
        super().__init__(**kwargs)

    def clean(self, value):
        try:
            email = email_normalize(super().clean(value) or "")
        except ValidationError:
            if _only_the_local_part_is_non_ascii(value):
                raise ValidationError(NON_ASCII_LOCAL_PART, code="non_ascii_local_part") from None
            raise
        if email and not domain_is_mailable(email):
            raise ValidationError(validate_email.message, code="invalid")  # the message of any other bad address
        if email and not email_is_sendable(email):
            # Django's check allows any Unicode letters after the @; IDNA does not (a label too
            # long once encoded, mixed scripts or directions), and such an address cannot be mailed.
            raise ValidationError(UNENCODABLE_DOMAIN, code="idna")
        # Lower-casing some Unicode letters, and a domain's punycode, make the text longer than the column.
        if len(email) > 254:
            raise ValidationError("That email address is too long.")
        return email


def _only_the_local_part_is_non_ascii(value) -> bool:
    """Whether the address would be valid but for non-ASCII before the @ ("jöhn@example.org").

    Django refuses those by design (and many ESPs cannot send to them: no SMTPUTF8). Depends on
    the typed text only, never on whether the address is known.
    """
    if not isinstance(value, str):
        return False
    local, at, domain = value.strip().rpartition("@")
    if not at or local.isascii():
        return False
    try:
        validate_email("".join(ch if ch.isascii() else "x" for ch in local) + "@" + domain)
    except ValidationError:
        return False
    return domain_is_mailable(value.strip())


def interests_normalize(text: str) -> str:
    """Interests as the matcher should read them: NFC, no invisible format characters.

    Zero-width spaces and joiners, BOMs, soft hyphens (Unicode category Cf) come from copy and
    paste; kept, they split or glue words unseen and show up in the digest's reasons.
    """
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return unicodedata.normalize("NFC", text)


class InterestsField(forms.CharField):
    """Free-text interests, normalised before the length check; text with no word in it
    (",,,," or only punctuation) is no interests at all."""

    def widget_attrs(self, widget):
        # No maxlength in the page: a browser cuts a longer paste silently, mid-word; the
        # length check below says how long it was instead.
        attrs = super().widget_attrs(widget)
        attrs.pop("maxlength", None)
        return attrs

    def to_python(self, value):
        text = interests_normalize(super().to_python(value)).strip()
        if not any(ch.isalnum() for ch in text):
            return ""
        return text

    def validate(self, value):
        # Imported on first use: the digest.matching package loads bm25s and numpy (~27 MB),
        # which nothing else in a web process needs.
        from digest.matching.text import can_match, parse_interests

        super().validate(value)
        phrases = parse_interests(value) if value else []
        if value and not phrases:
            # Letters, but none the matcher reads (its words are a-z and 0-9): say so rather
            # than store interests that can never match.
            raise ValidationError(
                "We match interests on English words and found none here; rephrase, or leave this empty.",
                code="no_words",
            )
        # Only stopwords or single letters ("the, and", "a, b, c"): the matcher drops them all,
        # so the phrase could never match and the digest would be trending papers only.
        empty = [phrase.text for phrase in phrases if not can_match(phrase.text)]
        if empty:
            raise ValidationError(
                "%(phrases)s: too common or too short to match papers on; add a word that says what you "
                "want (like “reinforcement learning”), or take it out.",
                code="no_meaningful_words",
                params={"phrases": ", ".join(f"“{text}”" for text in empty)},
            )


class PreferencesForm(ErrorSummaryMixin, NoLineBreaksMixin, forms.Form):
    """Every digest preference; the signup form adds the address."""

    topics_or_interests_message = "Pick at least one topic, or describe your interests below."

    topics = ListedMultipleChoiceField(
        label="Topics to follow",
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    interests = InterestsField(
        label="Anything more specific?",
        required=False,
        max_length=INTERESTS_MAX_LENGTH,
        help_text="Optional, comma-separated, e.g. diffusion models, video generation.",
        widget=forms.TextInput(attrs={"placeholder": "diffusion models, video generation", "autocomplete": "off"}),
    )
    frequency = FixedChoiceField(
        label="How often",
        choices=Subscriber.Frequency.choices,
        initial=Subscriber.Frequency.DAILY,
        widget=forms.RadioSelect,
    )
    weekday = FixedTypedChoiceField(
        label="Day (weekly digests)",
        choices=WEEKDAYS,
        coerce=int,
        initial=0,
    )
    send_hour = FixedTypedChoiceField(
        label="Delivery time",
        choices=HOURS,
        coerce=int,
        initial=7,
        # The hours are the reader's own clock: planning reads them in the time zone field's zone.
        help_text="In the time zone chosen below.",
    )
    timezone = TimezoneField(label="Time zone", choices=_timezone_choices, widget=TimezoneSelect)
    digest_size = forms.IntegerField(
        label="Papers per digest",
        min_value=DIGEST_SIZE_MIN,
        max_value=DIGEST_SIZE_MAX,
        initial=10,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        help_text=f"Between {DIGEST_SIZE_MIN} and {DIGEST_SIZE_MAX}.",
    )

    def __init__(self, *args, topics: list[Topic] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.topic_objects = topics if topics is not None else topic_list_active()
        self.fields["topics"].choices = [(topic.slug, topic.name) for topic in self.topic_objects]
        self.fields["timezone"].initial = settings.TIME_ZONE_DEFAULT

    # Topics the reader follows that the editors have deactivated: not offered, kept on saving
    # (subscriber_update_preferences) unless ticked for removal, named on the manage page.
    # None on the signup form.
    paused_topics: Sequence[Topic] = ()

    def clean(self):
        cleaned = super().clean()
        # Beside errors in other fields (an empty form: the email's too), not after they are
        # fixed; but not over a topics or interests error of their own, which says more.
        own_errors = "topics" in self.errors or "interests" in self.errors
        chose_nothing = not cleaned.get("topics") and not cleaned.get("interests")
        # A paused topic kept is still theirs: demanding "at least one" with nothing to tick would be wrong.
        removed = set(cleaned.get("remove_paused") or ())
        keeps_paused = any(topic.slug not in removed for topic in self.paused_topics)
        if not own_errors and chose_nothing and not keeps_paused:
            self.add_error("topics", self.topics_or_interests_message)
        return cleaned

    def preferences(self) -> Preferences:
        data = self.cleaned_data
        by_slug = {topic.slug: topic for topic in self.topic_objects}
        return Preferences(
            topics=[by_slug[slug] for slug in data["topics"]],
            interests=" ".join(data["interests"].split()),
            frequency=data["frequency"],
            weekday=data["weekday"],
            send_hour=data["send_hour"],
            timezone=data["timezone"],
            digest_size=data["digest_size"],
        )

    @classmethod
    def initial_for(cls, subscriber: Subscriber) -> dict:
        return {
            "topics": [topic.slug for topic in subscriber.topics.all()],
            "interests": subscriber.interests,
            "frequency": subscriber.frequency,
            "weekday": subscriber.weekday,
            "send_hour": subscriber.send_hour,
            # A name saved before names were checked shows as the zone planning uses for it.
            "timezone": subscriber.timezone if subscriber.timezone in _timezone_set() else settings.TIME_ZONE_DEFAULT,
            "digest_size": subscriber.digest_size,
        }


class SignupForm(PreferencesForm):
    email = EmailAddressField(label="Email address")
    field_order = ["email"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            # static/js/subscribe.js pre-fills only a field the visitor has not chosen yet.
            self.fields["timezone"].widget.attrs["data-timezone-autodetect"] = ""

    def consent(self, *, ip: str | None, user_agent: str) -> Consent:
        return Consent(ip=ip, user_agent=user_agent, source="web")


class ManageForm(PreferencesForm):
    # One checkbox per paused topic the reader holds, unticked (kept) by default. Its choices are
    # those topics only, so this field can drop a paused topic but never add one.
    remove_paused = ListedMultipleChoiceField(
        label="Stop following", required=False, widget=forms.CheckboxSelectMultiple
    )
    # The summary lists errors in the page's order, where these boxes sit under the topics.
    field_order = ["topics", "remove_paused"]

    def __init__(self, *args, paused_topics: Sequence[Topic] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.paused_topics = list(paused_topics)
        self.fields["remove_paused"].choices = [(topic.slug, topic.name) for topic in self.paused_topics]

    def paused_topics_removed(self) -> list[Topic]:
        removed = set(self.cleaned_data["remove_paused"])
        return [topic for topic in self.paused_topics if topic.slug in removed]


class PauseForm(NoLineBreaksMixin, forms.Form):
    weeks = FixedTypedChoiceField(label="Pause for", choices=PAUSE_WEEKS, coerce=int, initial=2)


class LinkRequestForm(ErrorSummaryMixin, NoLineBreaksMixin, forms.Form):
    email = EmailAddressField(label="Email address")
