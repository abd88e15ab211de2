"""Papers, their daily trending appearances, topics, editions and the delivery ledger."""

import re
import unicodedata

from django.db import models
from django.db.models import Q
from django.urls import reverse


def title_fingerprint(title: str) -> str:
    """Normalized title used to recognise one paper across sources.

    Case, accents, punctuation and spacing differ between the trending page, the HF
    API and arXiv; the words do not.
    """
    if title.isascii():
        # Same result, ~10x faster: NFKD leaves ASCII alone and it has no combining marks.
        text = title.lower()
    else:
        text = unicodedata.normalize("NFKD", title)
        text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return " ".join(_WORD_RE.findall(text))[:500]


_WORD_RE = re.compile(r"[a-z0-9]+")


class Paper(models.Model):
    # Uniqueness of arxiv_id and fingerprint is declared as constraints in Meta, not unique=True:
    # on PostgreSQL unique=True also adds a varchar_pattern_ops "_like" index per column, which no
    # query here uses (lookups are exact) and which cost about a fifth of the import's insert time.
    arxiv_id = models.CharField(max_length=32, null=True, blank=True, help_text="Without version, e.g. 2403.01234")
    title = models.CharField(max_length=1000)
    abstract = models.TextField()
    authors = models.JSONField(default=list, blank=True)
    published_on = models.DateField(null=True, blank=True)
    page_url = models.URLField(max_length=500, blank=True)
    abs_url = models.URLField(max_length=500, blank=True)
    pdf_url = models.URLField(max_length=500, blank=True)
    code_url = models.URLField(max_length=500, blank=True)
    upvotes = models.PositiveIntegerField(default=0)
    keywords = models.JSONField(default=list, blank=True)
    categories = models.JSONField(default=list, blank=True)
    fingerprint = models.CharField(max_length=500)
    hidden = models.BooleanField(default=False, help_text="Never include in any digest.")
    pinned = models.BooleanField(default=False, help_text="Put first in every digest not sent yet (an edition already going out included).")
    # Sentence embedding (float32 bytes), computed once per paper in the worker.
    embedding = models.BinaryField(null=True, blank=True, editable=False)
    topics = models.ManyToManyField("Topic", through="PaperTopic", related_name="papers", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["arxiv_id"], name="paper_arxiv_id_unique"),
            models.UniqueConstraint(fields=["fingerprint"], name="paper_fingerprint_unique"),
        ]
        indexes = [
            models.Index(fields=["-published_on"]),
            models.Index(fields=["pinned"], condition=Q(pinned=True), name="paper_pinned_idx"),
        ]

    def __str__(self):
        return self.title

    def save(self, *args, **kwargs):
        self.fingerprint = title_fingerprint(self.title)
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return self.page_url or self.abs_url


class TrendingEntry(models.Model):
    """One appearance of a paper on one day's trending list."""

    class Source(models.TextChoices):
        TRENDING_PAGE = "trending-page", "Trending page"
        HF = "hf", "Hugging Face daily papers"
        ARXIV = "arxiv", "arXiv"
        MANUAL = "manual", "Manual"

    # Sources whose rank is no trending signal: an arXiv feed lists the newest submissions in
    # date order, so its "#3" says nothing about interest. A paper seen only there that day is
    # "new on arXiv", never "trending #3".
    UNRANKED_SOURCES = (Source.ARXIV,)

    # No separate index on paper: the unique (paper, date, source) constraint leads with it.
    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="trending", db_index=False)
    date = models.DateField()
    rank = models.PositiveIntegerField()
    source = models.CharField(max_length=20, choices=Source.choices)
    upvotes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "trending entries"
        constraints = [
            models.UniqueConstraint(fields=["paper", "date", "source"], name="trending_once_per_day_source"),
        ]
        indexes = [models.Index(fields=["date", "rank"])]
        ordering = ["-date", "rank"]

    def __str__(self):
        return f"{self.date} #{self.rank} {self.paper_id}"


class Topic(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    query = models.TextField(
        blank=True,
        help_text='Keywords and "quoted phrases", comma or space separated, e.g. robot, "robot learning", manipulation',
    )
    active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self):
        return self.name


# A paper is listed under a topic (admin lists, counts and filter; the topic-query preview's
# "matches") from this classifier score up, whatever the matching method; an override wins.
TOPIC_LISTING_SCORE = 0.3


class PaperTopic(models.Model):
    """A paper's score against a topic; a curator's override wins over the score."""

    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="topic_scores")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="paper_scores")
    score = models.FloatField(default=0.0)
    # None: the classifier decides; True/False: a curator said so.
    override = models.BooleanField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["paper", "topic"], name="paper_topic_once")]
        indexes = [models.Index(fields=["topic", "-score"])]

    def __str__(self):
        return f"{self.paper_id}/{self.topic_id}: {self.score:.2f}"


class PhraseVector(models.Model):
    """The sentence embedding of one short text (an interest phrase, a topic's text), stored once.

    Keyed by a digest of the exact text embedded (a topic's text can be long). Sending workers
    rank with these and the papers' stored vectors only, so they never load the model
    (torch, ~500 MB a process); a `matching` worker computes them (digest/services/classify.py).
    """

    key = models.CharField(max_length=64, help_text="sha256 of text")
    text = models.TextField()
    vector = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key"], name="phrase_vector_key_unique")]

    def __str__(self):
        return self.text[:80]


class Edition(models.Model):
    """One day's issue; frozen once sending starts."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        HELD = "held", "Held"

    date = models.DateField(unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # Paper ids in the edition's order (pins first, hides removed), set when frozen.
    paper_ids = models.JSONField(default=list, blank=True)
    frozen_at = models.DateTimeField(null=True, blank=True)
    # Papers that trended on this day after it froze (appended to paper_ids then, see
    # editions.edition_late_papers_add), waiting to become candidates of the next edition too:
    # readers already sent this one get them there. The next edition's freeze empties it.
    carry_ids = models.JSONField(default=list, blank=True)
    # Every paper added to the list after it froze (late papers as above, kept after carry_ids
    # empties, and papers pinned while it sends), and when the last came: the public page marks
    # them "added later" and the feed's <updated> moves, so readers see why the page has more
    # than their email.
    late_ids = models.JSONField(default=list, blank=True)
    late_added_at = models.DateTimeField(null=True, blank=True)
    # Sending health (digest/services/curation.py): why it was held, and when an
    # operator released it anyway (so the same numbers do not hold it again).
    hold_reason = models.CharField(max_length=200, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date"]

    def __str__(self):
        return f"Edition {self.date}"

    def get_absolute_url(self):
        return reverse("digest:edition", kwargs={"date": self.date.isoformat()})


class Delivery(models.Model):
    """One (edition, subscriber) email. The unique row is what makes sending idempotent."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SUPPRESSED = "suppressed", "Suppressed"
        SKIPPED = "skipped", "Skipped"

    edition = models.ForeignKey(Edition, on_delete=models.CASCADE, related_name="deliveries")
    subscriber = models.ForeignKey("subscriptions.Subscriber", on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    message_id = models.CharField(max_length=255, blank=True)
    paper_ids = models.JSONField(default=list, blank=True)
    # Each sent paper's reasons ("matches your interest 'x'", "trending #2 today"), in paper_ids'
    # order: ranking again later can't say why a reader got a paper (the ledger then excludes it).
    reasons = models.JSONField(default=list, blank=True)
    last_error = models.TextField(blank=True)
    # Not the address's fault (a temporary error, or the server refusing our message): a failed
    # row so marked may be re-queued.
    transient_error = models.BooleanField(default=False)
    # The server or ESP refused our message itself (sender, settings, content), not the reader's
    # address: what sending health counts. Set by the UPDATE that fails the row, cleared by a
    # re-queue; last_error only words it (truncated, and rewritten by later attempts). The column's
    # default lets the previous release's workers insert rows while the release phase migrates.
    rejected = models.BooleanField(default=False, db_default=False)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["edition", "subscriber"], name="delivery_once_per_edition"),
            # A refused message is a failure an operator may re-queue, and only a failure.
            models.CheckConstraint(
                condition=Q(rejected=False) | Q(state="failed", transient_error=True),
                name="delivery_rejected_is_a_transient_failure",
            ),
        ]
        indexes = [
            models.Index(fields=["edition", "state"]),
            models.Index(fields=["state", "lease_until"]),
        ]

    def __str__(self):
        return f"Delivery {self.pk} ({self.state})"


class SentPaper(models.Model):
    """Ledger of papers a subscriber has already received; matching never repeats them."""

    # Written ~10 rows per email on the sending hot path, so it carries no more than it needs:
    # no separate subscriber index (the unique (subscriber, paper) constraint leads with it) and
    # no database foreign keys to papers and deliveries, whose KEY SHARE locks on the shared
    # paper rows made workers contend (~0.5 ms of PostgreSQL per email). Deletes still cascade
    # through the ORM (on_delete), which is the only way rows are removed here.
    subscriber = models.ForeignKey(
        "subscriptions.Subscriber", on_delete=models.CASCADE, related_name="sent_papers", db_index=False
    )
    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="sent_to", db_constraint=False)
    delivery = models.ForeignKey(Delivery, on_delete=models.SET_NULL, null=True, blank=True, db_constraint=False)
    sent_on = models.DateField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subscriber", "paper"], name="sent_paper_once")]

    def __str__(self):
        return f"{self.subscriber_id} got {self.paper_id}"


class WebhookEvent(models.Model):
    """An ESP tracking event, stored once per event id (replays change nothing)."""

    class Kind(models.TextChoices):
        """What an event means for the address. The one list of names: tracking stores these and
        sending health counts them (digest.services.tracking, digest.services.curation)."""

        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        SOFT_BOUNCE = "soft_bounce", "Soft bounce"
        # The ESP is still retrying (greylisting, a slow server): recorded, never counted as a bounce.
        DEFERRED = "deferred", "Deferred"
        COMPLAINT = "complaint", "Complaint"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"

    BOUNCE_KINDS = (Kind.HARD_BOUNCE, Kind.SOFT_BOUNCE)

    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=40, choices=Kind.choices)
    esp_name = models.CharField(max_length=40, blank=True)
    recipient = models.EmailField(max_length=254, blank=True, db_index=True)
    message_id = models.CharField(max_length=255, blank=True)
    reason = models.TextField(blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["recipient", "event_type", "created_at"])]

    def __str__(self):
        return f"{self.event_type} {self.recipient}"
