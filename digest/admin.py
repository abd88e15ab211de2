"""The curator's and operator's admin: papers, topics, editions, deliveries, sending health.

Admin does curation and calls the same services as everything else
(digest/services/*, digest/matching, subscriptions/services.py). Who sees what is
decided by model permissions (the `curators` and `operators` groups, migration
digest/0004_roles): curators never get a permission on a model that shows a
subscriber's address, and every view below checks permissions itself.
"""

import datetime
import re

from anymail.exceptions import AnymailError
from django import forms
from django.apps import apps as global_apps
from django.contrib import admin, messages
from django.contrib.auth.management import create_permissions
from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS, models, transaction
from django.db.models.signals import post_migrate
from django.dispatch import receiver
from django.db.models import Case, Count, F, OuterRef, Prefetch, Q, Subquery, Value, When
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import ngettext

from digest.models import (
    TOPIC_LISTING_SCORE, Delivery, Edition, Paper, PaperTopic, SentPaper, Topic, TrendingEntry, WebhookEvent,
)
from digest.plurals import counted
from digest.services import curation
from digest.services.editions import editions_paper_counts
from digest.services.ingest import papers_ingest
from digest.sources import FORMATS, SourceError, parse_papers
from digest.sources.records import arxiv_id_from


@receiver(post_migrate, dispatch_uid="digest-admin-roles-sync")
def _roles_sync(sender, app_config=None, **kwargs):
    # Here rather than in a migration alone: models added later get their permissions
    # after migrate (post_migrate), and a test-database flush recreates the groups.
    if app_config is not None and app_config.label in curation.OPERATOR_APPS:
        # This receiver may run before auth's, which creates a new model's permissions: without
        # them first, operators got a model added by the latest migration only at the next migrate.
        create_permissions(
            app_config, verbosity=0, using=kwargs.get("using", DEFAULT_DB_ALIAS), apps=kwargs.get("apps", global_apps)
        )
        curation.roles_sync()


class LedgerCascadeMixin:
    """The ledgers (Delivery, SentPaper) can't be deleted on their own, yet deleting a reader or a
    paper must still take their rows with it (an erasure request): Django's delete page would
    refuse, since it asks each related admin for delete permission."""

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        ledgers = {str(model._meta.verbose_name) for model in (Delivery, SentPaper)}
        return deleted, counts, perms_needed - ledgers, protected


ARXIV_ID_RE = re.compile(r"(\d{4}\.\d{4,5})(?:v\d+)?")

# The PaperTopic rows that list a paper under a topic: a curator's override wins, otherwise the
# classifier's score against the listing bar (the topic-query preview's "matches" uses it too).
LISTED_UNDER_TOPIC = Q(override=True) | Q(override__isnull=True, score__gte=TOPIC_LISTING_SCORE)


def _can_see_addresses(request) -> bool:
    return request.user.has_perm("subscriptions.view_subscriber")


# --- papers ---------------------------------------------------------------


class PaperTopicInline(admin.TabularInline):
    """Every topic the classifier scored, the paper's own topics first: with ~25 rows of scores a
    curator could not tell which topics the paper is actually listed under."""

    model = PaperTopic
    extra = 1
    fields = ("topic", "listed", "score_shown", "override")
    readonly_fields = ("listed", "score_shown")
    autocomplete_fields = ("topic",)
    verbose_name = "topic"
    verbose_name_plural = "Topics (set “override” to decide by hand: it wins over the classifier's score)"

    def get_queryset(self, request):
        listed = Case(When(LISTED_UNDER_TOPIC, then=Value(0)), default=Value(1))
        return super().get_queryset(request).select_related("topic").annotate(_unlisted=listed).order_by("_unlisted", "-score")

    @admin.display(description="listed under it?")
    def listed(self, obj):
        if obj.pk is None:
            return ""
        if obj.override is not None:
            return "yes, by hand" if obj.override else "no, by hand"
        return "yes" if obj.score >= TOPIC_LISTING_SCORE else "no"

    @admin.display(description="classifier score")
    def score_shown(self, obj):
        if obj.pk is None:
            return ""
        return f"{obj.score:.2f} (lists at {TOPIC_LISTING_SCORE:.2f})"


class TrendingEntryInline(admin.TabularInline):
    model = TrendingEntry
    extra = 0
    fields = ("date", "rank", "source", "upvotes")
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = "Trending appearances"

    def has_add_permission(self, request, obj=None):
        return False


class TrendingDateFilter(admin.SimpleListFilter):
    title = "trending date"
    parameter_name = "trending"

    def lookups(self, request, model_admin):
        today = timezone.localdate()
        days = TrendingEntry.objects.filter(date__lte=today).values_list("date", flat=True).distinct().order_by("-date")[:7]
        choices = [("today", "Today"), ("7d", "Last 7 days"), ("30d", "Last 30 days"), ("never", "Never trending")]
        return choices + [(d.isoformat(), d.strftime("%a %d %b")) for d in days]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        today = timezone.localdate()
        if value == "never":
            return queryset.filter(last_trending__isnull=True)
        if value == "today":
            day_filter = Q(date=today)
        elif value in ("7d", "30d"):
            day_filter = Q(date__gt=today - datetime.timedelta(days=int(value[:-1])), date__lte=today)
        else:
            try:
                day_filter = Q(date=datetime.date.fromisoformat(value))
            except ValueError:
                return queryset.none()
        # A subquery, not a join: no duplicate rows, no DISTINCT over 10,000 papers.
        return queryset.filter(pk__in=TrendingEntry.objects.filter(day_filter).values("paper_id"))


# The largest id a (signed 64-bit) primary key can hold: a longer number in a URL would make
# the database driver raise (OverflowError on SQLite), not match nothing.
MAX_ID = 2**63 - 1


def _id_or_none(value: str) -> int | None:
    """A filter value read as a row id, or None when it cannot be one."""
    if not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if 0 < number <= MAX_ID else None


class TopicFilter(admin.SimpleListFilter):
    """Papers in a topic: a curator's override wins, otherwise the classifier's score."""

    title = "topic"
    parameter_name = "topic"

    def lookups(self, request, model_admin):
        return [(str(t.pk), t.name) for t in Topic.objects.all()]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        topic_id = _id_or_none(self.value())
        if topic_id is None:  # a typed or stale URL: no topic has that id, so no paper is in it
            return queryset.none()
        rows = PaperTopic.objects.filter(topic_id=topic_id).filter(LISTED_UNDER_TOPIC)
        return queryset.filter(pk__in=rows.values("paper_id"))


class SourceFilter(admin.SimpleListFilter):
    title = "source"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        return TrendingEntry.Source.choices

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(pk__in=TrendingEntry.objects.filter(source=self.value()).values("paper_id"))


class PaperUploadForm(forms.Form):
    file = forms.FileField(
        help_text="A saved trending page (.txt), Hugging Face daily_papers JSON or an arXiv Atom feed. "
        "Nothing is kept from a file with an error."
    )
    format = forms.ChoiceField(choices=[(f, f) for f in FORMATS], initial="auto")
    date = forms.DateField(
        required=False,
        help_text="YYYY-MM-DD. Trending pages: the page's year is the one that puts its day on or before this date "
        "(default today). HF/arXiv: the trending day for every paper (default: from the file).",
    )


class MergeForm(forms.Form):
    keep = forms.ModelChoiceField(queryset=Paper.objects.none(), widget=forms.RadioSelect, empty_label=None)

    def __init__(self, *args, papers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["keep"].queryset = Paper.objects.filter(pk__in=[p.pk for p in papers])


class PaperForm(forms.ModelForm):
    def clean(self):
        cleaned = super().clean()
        if cleaned.get("pinned") and cleaned.get("hidden"):
            raise forms.ValidationError(
                "A paper cannot be both Pinned (first in every digest) and Hidden (in no digest): untick one of them."
            )
        return cleaned


@admin.register(Paper)
class PaperAdmin(LedgerCascadeMixin, admin.ModelAdmin):
    list_display = (
        "title_column",
        "arxiv_column",
        "last_trending",
        "rank_column",
        "upvotes",
        "topics_column",
        "pinned",
        "hidden",
    )
    list_display_links = ("title_column",)
    list_filter = (TrendingDateFilter, TopicFilter, SourceFilter, "pinned", "hidden")
    # A link typed without a scheme is https (paper hosts are); Django 6 makes this the default.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    search_fields = ("title", "abstract", "authors", "arxiv_id")
    search_help_text = "Title, abstract, authors or arXiv id (a pasted arXiv link or 2403.01234v2 works too)."
    date_hierarchy = "published_on"
    list_per_page = 50
    show_full_result_count = False
    actions = ("pin", "unpin", "hide", "unhide", "reclassify", "merge")
    inlines = (PaperTopicInline, TrendingEntryInline)
    readonly_fields = ("fingerprint", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("title", "arxiv_id", "authors", "abstract", "published_on", "upvotes")}),
        ("Curation", {"fields": ("pinned", "hidden")}),
        ("Links", {"fields": ("page_url", "abs_url", "pdf_url", "code_url"), "classes": ("collapse",)}),
        (
            "Metadata",
            {"fields": ("keywords", "categories", "fingerprint", "created_at", "updated_at"), "classes": ("collapse",)},
        ),
    )
    change_list_template = "admin/digest/paper/change_list.html"
    form = PaperForm

    def save_model(self, request, obj, form, change):
        """Pinned and Hidden go through the curation services, as the list's actions do: they also
        reorder (pin) or drop the paper from (hide) the editions not sent yet, which saving the
        two fields alone did not."""
        pinned, hidden = obj.pinned, obj.hidden
        if change:
            obj.pinned, obj.hidden = Paper.objects.values_list("pinned", "hidden").get(pk=obj.pk)
        else:
            obj.pinned = obj.hidden = False
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            # The form refuses both at once; each service also clears the other flag.
            if hidden and not obj.hidden:
                curation.papers_hide(paper_ids=[obj.pk])
            elif obj.hidden and not hidden:
                curation.papers_hide(paper_ids=[obj.pk], hidden=False)
            if pinned and not obj.pinned:
                curation.papers_pin(paper_ids=[obj.pk])
            elif obj.pinned and not pinned:
                curation.papers_pin(paper_ids=[obj.pk], pinned=False)
        obj.refresh_from_db(fields=["pinned", "hidden", "updated_at"])

    def get_queryset(self, request):
        latest = TrendingEntry.objects.filter(paper=OuterRef("pk")).order_by("-date", "rank")
        topics = PaperTopic.objects.filter(LISTED_UNDER_TOPIC).select_related("topic").order_by("-override", "-score")
        qs = (
            super()
            .get_queryset(request)
            .defer("embedding", "abstract")
            .annotate(last_trending=Subquery(latest.values("date")[:1]))
            # The best rank on that day from a source with a trending signal: an arXiv feed's "#3" is
            # a place in a list sorted by submission date, not a rank (TrendingEntry.UNRANKED_SOURCES).
            .annotate(last_rank=Subquery(
                TrendingEntry.objects.filter(paper=OuterRef("pk"), date=OuterRef("last_trending"))
                .exclude(source__in=TrendingEntry.UNRANKED_SOURCES)
                .order_by("rank").values("rank")[:1]
            ))
            .prefetch_related(Prefetch("topic_scores", queryset=topics, to_attr="shown_topics"))
        )
        # Newest trending first; the changelist keeps this order unless a column is clicked.
        return qs.order_by(F("last_trending").desc(nulls_last=True), F("last_rank").asc(nulls_last=True), "-pk")

    def get_search_results(self, request, queryset, search_term):
        # A pasted arXiv id or URL (with or without version, old style 'hep-th/9901001' too, or a
        # page that names one, like huggingface.co/papers/2403.01234) finds the paper exactly.
        term = (search_term or "").strip()
        if term and len(term.split()) == 1:
            arxiv_id = arxiv_id_from(term.replace("/pdf/", "/abs/").removesuffix(".pdf").replace("://www.", "://"))
            match = ARXIV_ID_RE.search(term)
            if arxiv_id or match:
                return queryset.filter(arxiv_id=arxiv_id or match.group(1)), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="Title", ordering="title")
    def title_column(self, obj):
        return Truncator(obj.title).chars(90)

    @admin.display(description="arXiv", ordering="arxiv_id")
    def arxiv_column(self, obj):
        if not obj.arxiv_id:
            return "—"
        url = obj.abs_url or f"https://arxiv.org/abs/{obj.arxiv_id}"
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, obj.arxiv_id)

    @admin.display(description="Trending", ordering="last_trending")
    def last_trending(self, obj):
        return obj.last_trending or "—"

    @admin.display(description="Rank", ordering="last_rank")
    def rank_column(self, obj):
        if obj.last_rank:
            return f"#{obj.last_rank}"
        # Seen that day only in a feed without a trending signal.
        return "new on arXiv" if obj.last_trending else "—"

    @admin.display(description="Topics")
    def topics_column(self, obj):
        shown = obj.shown_topics[:4]
        if not shown:
            return "—"
        return format_html_join(
            ", ", "{}{}", ((pt.topic.name, " ✎" if pt.override else "") for pt in shown)
        )

    # Actions -------------------------------------------------------------

    @admin.action(description="Pin (first in every digest not sent yet, and un-hidden)", permissions=["change"])
    def pin(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        # papers_pin counts the papers it changed; an already pinned one is still moved to the front.
        changed = curation.papers_pin(paper_ids=ids)
        already = len(ids) - changed
        if not already:
            already_words = ""
        elif len(ids) == 1:
            already_words = " (it already was)"
        else:
            already_words = f" ({already} of them already {ngettext('was', 'were', already)})"
        they = ngettext("it goes", "they go", len(ids))
        self.message_user(
            request,
            f"{counted(len(ids), 'paper', 'papers')} pinned{already_words}; {they} first in every digest not sent yet, "
            "those of an edition already going out included. Digests already sent are not changed.",
            messages.SUCCESS,
        )

    @admin.action(description="Unpin", permissions=["change"])
    def unpin(self, request, queryset):
        count = curation.papers_pin(paper_ids=list(queryset.values_list("pk", flat=True)), pinned=False)
        self.message_user(request, f"Unpinned {counted(count, 'paper', 'papers')}.", messages.SUCCESS)

    @admin.action(description="Hide from every future digest", permissions=["change"])
    def hide(self, request, queryset):
        count = curation.papers_hide(paper_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            f"Hid {counted(count, 'paper', 'papers')}; no future digest will include {ngettext('it', 'them', count)}.",
            messages.SUCCESS,
        )

    @admin.action(description="Show again (un-hide)", permissions=["change"])
    def unhide(self, request, queryset):
        count = curation.papers_hide(paper_ids=list(queryset.values_list("pk", flat=True)), hidden=False)
        self.message_user(
            request, f"{counted(count, 'paper', 'papers')} can appear in digests again.", messages.SUCCESS
        )

    @admin.action(description="Re-classify against the topics", permissions=["change"])
    def reclassify(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        curation.papers_reclassify(paper_ids=ids)
        self.message_user(
            request,
            f"Queued re-classification of {counted(len(ids), 'paper', 'papers')}; scores update in a minute. "
            "Manual overrides are kept.",
            messages.SUCCESS,
        )

    @admin.action(description="Merge duplicates into one paper…", permissions=["change", "delete"])
    def merge(self, request, queryset):
        papers = list(queryset.order_by("pk"))
        if len(papers) < 2:
            self.message_user(request, "Select at least two papers to merge.", messages.WARNING)
            return None
        if "apply" in request.POST:
            form = MergeForm(request.POST, papers=papers)
            if form.is_valid():
                keep = form.cleaned_data["keep"]
                try:
                    result = curation.papers_merge(keep=keep, duplicates=[p for p in papers if p.pk != keep.pk])
                except curation.MergeError as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                    return None
                unpinned = " It stays hidden, so it is not pinned, though a duplicate was." if result.pin_dropped else ""
                appearances = result.trending_moved + result.trending_combined
                records = result.sent_moved + result.sent_combined
                self.message_user(
                    request,
                    f"Merged {counted(len(result.removed_ids), 'duplicate', 'duplicates')} into "
                    f"“{Truncator(keep.title).chars(80)}”: "
                    f"{counted(appearances, 'trending appearance', 'trending appearances')} and "
                    f"{counted(records, 'sent-paper record', 'sent-paper records')} kept.{unpinned}",
                    messages.SUCCESS,
                )
                return None
        else:
            form = MergeForm(initial={"keep": curation.papers_choose_survivor(papers=papers)}, papers=papers)
        trending = {
            row["paper_id"]: row["n"]
            for row in TrendingEntry.objects.filter(paper__in=papers).values("paper_id").annotate(n=Count("id"))
        }
        keep = form.cleaned_data.get("keep") if form.is_bound and form.is_valid() else None
        keep = keep or curation.papers_choose_survivor(papers=papers)
        context = {
            **self.admin_site.each_context(request),
            "title": "Merge duplicate papers",
            "opts": self.model._meta,
            "form": form,
            "unlike": curation.papers_unlike(papers=papers, keep=keep),
            "keep_default": keep,
            "papers": [(p, trending.get(p.pk, 0)) for p in papers],
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "queryset": queryset,
        }
        return TemplateResponse(request, "admin/digest/paper/merge_confirm.html", context)

    # Upload ----------------------------------------------------------------

    def get_urls(self):
        return [
            path("upload/", self.admin_site.admin_view(self.upload_view), name="digest_paper_upload"),
        ] + super().get_urls()

    def upload_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PaperUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                # The same parse + ingest as `import_papers`, in one transaction:
                # a bad file leaves nothing behind.
                with transaction.atomic():
                    records = parse_papers(
                        upload.read(), name=upload.name, format=form.cleaned_data["format"], date=form.cleaned_data["date"]
                    )
                    result = papers_ingest(records=records)
            except SourceError as exc:
                form.add_error("file", str(exc.located(upload.name)))
            else:
                # Not led by the name: the admin capitalises each message's first letter (capfirst).
                messages.success(request, f"Uploaded {upload.name}: {len(records)} papers: {result.summary()}")
                return HttpResponseRedirect(reverse("admin:digest_paper_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload papers",
            "opts": self.model._meta,
            "form": form,
        }
        return TemplateResponse(request, "admin/digest/paper/upload.html", context)


@admin.register(TrendingEntry)
class TrendingEntryAdmin(admin.ModelAdmin):
    """Entries come from imports (import_papers, fetch_papers, the papers page's upload), which also
    reach an edition already frozen (editions.edition_late_papers_add); one added here would not."""

    list_display = ("date", "rank", "paper", "source", "upvotes")
    list_filter = ("source",)
    date_hierarchy = "date"
    search_fields = ("paper__title", "paper__arxiv_id")
    autocomplete_fields = ("paper",)
    list_select_related = ("paper",)
    list_per_page = 100

    def has_add_permission(self, request):
        return False


# --- topics ---------------------------------------------------------------


class TopicForm(forms.ModelForm):
    class Meta:
        model = Topic
        fields = ("name", "slug", "description", "query", "active", "position")
        widgets = {"query": forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"})}

    def clean_query(self):
        # Readers' interests forgive an open quote; a curator's query is said back instead, since
        # a phrase that silently ran to the end of the line would list the wrong papers.
        from digest.matching.text import parse_query, unclosed_quote

        query = self.cleaned_data["query"]
        if unclosed_quote(query):
            raise forms.ValidationError('A quote is not closed: every "quoted phrase" needs its closing quote.')
        if query.strip() and not parse_query(query):
            raise forms.ValidationError(
                "This query has no word to match. Give keywords or \"quoted phrases\", or leave it empty "
                "to match the topic's name."
            )
        return query


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    form = TopicForm
    list_display = ("name", "query_column", "active", "position", "subscriber_count", "paper_count")
    list_editable = ("active", "position")
    list_filter = ("active",)
    search_fields = ("name", "slug", "description", "query")
    prepopulated_fields = {"slug": ("name",)}
    change_form_template = "admin/digest/topic/change_form.html"

    def get_queryset(self, request):
        # Subqueries rather than two Counts over two joins (which would multiply each other).
        subscribers = Topic.subscribers.through.objects.filter(topic=OuterRef("pk")).values("topic").annotate(n=Count("pk"))
        papers = (
            PaperTopic.objects.filter(topic=OuterRef("pk"))
            .filter(LISTED_UNDER_TOPIC)
            .values("topic")
            .annotate(n=Count("pk"))
        )
        return (
            super()
            .get_queryset(request)
            .annotate(n_subscribers=Subquery(subscribers.values("n")), n_papers=Subquery(papers.values("n")))
        )

    @admin.display(description="Query")
    def query_column(self, obj):
        return Truncator(obj.query).chars(80)

    @admin.display(description="Subscribers", ordering="n_subscribers")
    def subscriber_count(self, obj):
        return obj.n_subscribers or 0

    @admin.display(description="Papers", ordering="n_papers")
    def paper_count(self, obj):
        return obj.n_papers or 0

    def get_deleted_objects(self, objs, request):
        """Refuse deleting a topic readers follow (the delete page and "delete selected" both ask here):
        they would silently lose it, some left with nothing to match. Deactivating keeps it theirs."""
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        topics = list(objs)
        followed = curation.topics_followed(topic_ids=[t.pk for t in topics])
        for topic in topics:
            if followed.get(topic.pk):
                protected = [*protected, format_html(
                    "“{}”: {} this topic, so it cannot be deleted. Untick “active” on its page "
                    "instead: it is then no longer offered or matched, and no reader loses it silently.",
                    topic.name, counted(followed[topic.pk], 'reader follows', 'readers follow'),
                )]  # fmt: skip
        return deleted, model_count, perms_needed, protected

    def save_model(self, request, obj, form, change):
        was_active = change and Topic.objects.filter(pk=obj.pk, active=True).exists()
        super().save_model(request, obj, form, change)
        if was_active and not obj.active:
            readers, bare = curation.topic_deactivation_effect(topic=obj)
            if readers:
                bare_words = (
                    f" {bare} of them {ngettext('follows', 'follow', bare)} no other active topic and typed no "
                    "interests: until they pick something else their digest holds only the day's top trending papers."
                    if bare
                    else ""
                )
                self.message_user(
                    request,
                    f"“{obj.name}” is inactive: {counted(readers, 'reader follows', 'readers follow')} it; "
                    f"it is no longer matched in their digests.{bare_words}",
                    messages.WARNING,
                )

    def get_urls(self):
        return [
            path("preview/", self.admin_site.admin_view(self.preview_view), name="digest_topic_preview"),
        ] + super().get_urls()

    def preview_view(self, request):
        """The recent papers a (not yet saved) query matches, as JSON for the change form."""
        if not (self.has_change_permission(request) or self.has_add_permission(request)):
            raise PermissionDenied
        query = request.GET.get("query", "")[:2000]
        try:
            days = max(1, min(int(request.GET.get("days", 14)), 90))
        except ValueError:
            days = 14
        result = curation.topic_query_preview(
            query=query, name=request.GET.get("name", "")[:200], description=request.GET.get("description", "")[:2000],
            days=days,
        )
        return JsonResponse(result)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "preview_url": reverse("admin:digest_topic_preview")}
        return super().changeform_view(request, object_id, form_url, extra_context)


# --- editions -------------------------------------------------------------


def _delivery_counts(edition_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {pk: {} for pk in edition_ids}
    rows = Delivery.objects.filter(edition_id__in=edition_ids).values("edition_id", "state").annotate(n=Count("pk"))
    for row in rows:
        counts[row["edition_id"]][row["state"]] = row["n"]
    return counts


class PreviewForm(forms.Form):
    subscriber = forms.IntegerField(min_value=1, label="Subscriber #")


@admin.register(Edition)
class EditionAdmin(admin.ModelAdmin):
    list_display = ("date", "status", "paper_total", "progress", "frozen_at")
    list_filter = ("status",)
    date_hierarchy = "date"
    fields = ("date", "status", "hold_reason", "released_at", "frozen_at", "created_at")
    actions = ("release",)
    change_form_template = "admin/digest/edition/change_form.html"

    def get_queryset(self, request):
        states = Delivery.State
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_deliveries=Count("deliveries"),
                n_done=Count("deliveries", filter=~Q(deliveries__state__in=[states.PENDING, states.SENDING])),
                n_failed=Count("deliveries", filter=Q(deliveries__state=states.FAILED)),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        # The date of an existing edition is its identity (and the public URL).
        always = ("status", "hold_reason", "released_at", "frozen_at", "created_at")
        return ("date", *always) if obj else always

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, through the checks below
        return actions

    def has_delete_permission(self, request, obj=None):
        # Deleting an edition would delete its delivery ledger: only an unsent draft may go.
        if obj is not None and (obj.frozen_at or obj.status != Edition.Status.DRAFT or obj.deliveries.exists()):
            return False
        return super().has_delete_permission(request, obj)

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # The page's counts in one query (paper_total), not one per row. Evaluating the page's
        # queryset here caches it: the rows the list then renders are these objects.
        editions = list(changelist.result_list)
        counts = editions_paper_counts(editions=editions)
        for edition in editions:
            edition.shown_paper_count = counts[edition.pk]
        return changelist

    @admin.display(description="Papers")
    def paper_total(self, obj):
        """What the edition's public page counts: hidden papers are left out (editions_paper_counts)."""
        if not obj.frozen_at:
            return "not frozen"
        count = getattr(obj, "shown_paper_count", None)
        return editions_paper_counts(editions=[obj])[obj.pk] if count is None else count

    @admin.display(description="Deliveries done", ordering="n_done")
    def progress(self, obj):
        if not obj.n_deliveries:
            return "—"
        failed = f", {obj.n_failed} failed" if obj.n_failed else ""
        return f"{obj.n_done}/{obj.n_deliveries}{failed}"

    @admin.action(description="Release held editions (send despite sending health)", permissions=["release"])
    def release(self, request, queryset):
        released = sum(curation.edition_release(edition=e) for e in queryset.filter(status=Edition.Status.HELD))
        if released:
            self.message_user(
                request,
                f"Released {counted(released, 'edition', 'editions')}; "
                f"{ngettext('it goes', 'they go', released)} out at the next planning run.",
            )
        else:
            self.message_user(request, "None of the selected editions was held.", messages.WARNING)

    def has_release_permission(self, request):
        return request.user.has_perm("digest.release_edition")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/preview/", view(self.preview_view), name="digest_edition_preview"),
            path("<int:pk>/preview/<str:part>/", view(self.preview_part_view), name="digest_edition_preview_part"),
            path("<int:pk>/send-test/", view(self.send_test_view), name="digest_edition_send_test"),
            path("health/", view(self.health_view), name="digest_sending_health"),
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        edition = self.get_object(request, object_id)
        extra = {}
        if edition is not None:
            papers, frozen = curation.edition_papers_for_admin(edition=edition)
            extra = {
                "edition_papers": papers,
                "edition_frozen": frozen,
                "delivery_counts": sorted(_delivery_counts([edition.pk])[edition.pk].items()),
                "can_see_addresses": _can_see_addresses(request),
                "can_view_deliveries": request.user.has_perm("digest.view_delivery"),
            }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    # Preview and test send ----------------------------------------------

    def _edition_and_subscriber(self, request, pk):
        if not self.has_view_permission(request):
            raise PermissionDenied
        edition = get_object_or_404(Edition, pk=pk)
        from subscriptions.models import Subscriber

        subscriber = None
        raw = request.GET.get("subscriber_id") or request.GET.get("subscriber") or request.POST.get("subscriber")
        if raw:
            try:
                subscriber = Subscriber.objects.filter(pk=int(raw)).first()
            except ValueError:
                subscriber = None
        return edition, subscriber

    def _subscriber_choices(self, request):
        from subscriptions.models import Subscriber

        rows = (
            Subscriber.objects.filter(status=Subscriber.Status.CONFIRMED)
            .prefetch_related("topics")
            .order_by("-confirmed_at", "-pk")[:50]
        )
        see = _can_see_addresses(request)
        return [(s.pk, curation.subscriber_label(subscriber=s, with_address=see)) for s in rows]

    def preview_view(self, request, pk):
        edition, subscriber = self._edition_and_subscriber(request, pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview {edition} as a subscriber",
            "opts": self.model._meta,
            "original": edition,
            "edition": edition,
            "choices": self._subscriber_choices(request),
            "subscriber": subscriber,
            "subscriber_label": curation.subscriber_label(subscriber=subscriber, with_address=_can_see_addresses(request))
            if subscriber
            else "",
            "user_email": request.user.email,
        }
        if subscriber is not None:
            try:
                rendered = curation.edition_preview_render(
                    edition=edition, subscriber=subscriber, redact_address=not _can_see_addresses(request)
                )
            except curation.PreviewUnavailable as exc:
                context["error"] = str(exc)
            else:
                context["rendered"] = rendered
        elif request.GET.get("subscriber") or request.GET.get("subscriber_id"):
            context["error"] = "No subscriber with that number."
        return TemplateResponse(request, "admin/digest/edition/preview.html", context)

    def preview_part_view(self, request, pk, part):
        """The rendered HTML body alone, for the preview page's sandboxed iframe."""
        edition, subscriber = self._edition_and_subscriber(request, pk)
        if subscriber is None or part not in ("html", "text"):
            raise Http404
        try:
            rendered = curation.edition_preview_render(
                edition=edition, subscriber=subscriber, redact_address=not _can_see_addresses(request)
            )
        except curation.PreviewUnavailable as exc:
            raise Http404(str(exc))
        from django.http import HttpResponse

        if part == "text":
            return HttpResponse(rendered.text, content_type="text/plain; charset=utf-8")
        response = HttpResponse(rendered.html, content_type="text/html; charset=utf-8")
        # The email is a whole document: let the admin frame it (same origin), lock it down otherwise.
        response["X-Frame-Options"] = "SAMEORIGIN"
        response["Content-Security-Policy"] = "default-src 'none'; img-src data: https:; style-src 'unsafe-inline'; frame-ancestors 'self'"
        return response

    def send_test_view(self, request, pk):
        edition, subscriber = self._edition_and_subscriber(request, pk)
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:digest_edition_preview", args=[pk]))
        back = reverse("admin:digest_edition_preview", args=[pk]) + (f"?subscriber={subscriber.pk}" if subscriber else "")
        if subscriber is None:
            messages.error(request, "Choose a subscriber to send as.")
            return HttpResponseRedirect(back)
        if not request.user.email:
            messages.error(request, "Your admin account has no email address; add one under Users first.")
            return HttpResponseRedirect(back)
        try:
            curation.edition_send_test(
                edition=edition,
                subscriber=subscriber,
                to=request.user.email,
                redact_address=not _can_see_addresses(request),
            )
        except curation.PreviewUnavailable as exc:
            messages.error(request, str(exc))
        except (OSError, AnymailError) as exc:  # SMTP errors are OSErrors; an ESP's are AnymailErrors
            messages.error(request, f"The test could not be sent: {exc}")
        else:
            messages.success(request, f"Sent a [TEST] copy to {request.user.email}. Nothing was recorded as delivered.")
        return HttpResponseRedirect(back)

    # Sending health ------------------------------------------------------

    def health_view(self, request):
        if not request.user.has_perm("digest.view_sending_health"):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Sending health",
            "opts": self.model._meta,
            **curation.sending_health_report(),
        }
        return TemplateResponse(request, "admin/digest/health.html", context)


# --- deliveries (operators) -----------------------------------------------


class FailedReasonFilter(admin.SimpleListFilter):
    title = "failure"
    parameter_name = "failure"

    def lookups(self, request, model_admin):
        return [
            ("transient", "Failed, can be re-queued (temporary, or the server refused the message)"),
            ("rejected", "Failed, the server refused the message (not the address)"),
            ("permanent", "Failed, permanent (address refused)"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "transient":
            return queryset.filter(state=Delivery.State.FAILED, transient_error=True)
        if self.value() == "rejected":
            return queryset.filter(state=Delivery.State.FAILED, rejected=True)
        if self.value() == "permanent":
            return queryset.filter(state=Delivery.State.FAILED, transient_error=False)
        return queryset


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("pk", "edition", "subscriber_email", "state", "attempts", "reason", "sent_at")
    list_filter = ("state", FailedReasonFilter, "edition")
    list_select_related = ("edition", "subscriber")
    search_fields = ("subscriber__email", "message_id")
    raw_id_fields = ("edition", "subscriber")
    list_per_page = 100
    show_full_result_count = False
    actions = ("requeue",)
    change_list_template = "admin/digest/delivery/change_list.html"
    readonly_fields = (
        "edition", "subscriber", "state", "lease_until", "attempts", "message_id", "papers_sent",
        "last_error", "transient_error", "rejected", "sent_at", "created_at", "updated_at",
    )  # fmt: skip

    def has_add_permission(self, request):
        return False

    @admin.display(description="Papers sent, and why")
    def papers_sent(self, obj):
        """What the reader got, in order, with the reasons the email gave (rows sent before the
        reasons were kept show the papers alone)."""
        if not obj.paper_ids:
            return "—"
        titles = Paper.objects.in_bulk(obj.paper_ids)
        reasons = list(obj.reasons or [])
        rows = []
        for n, pk in enumerate(obj.paper_ids):
            paper = titles.get(pk)
            why = "; ".join(reasons[n]) if n < len(reasons) else ""
            url = reverse("admin:digest_paper_change", args=[pk]) if paper else ""
            rows.append((n + 1, url, paper.title if paper else f"paper {pk} (deleted)", why))
        return format_html(
            "<ol class='papers-sent'>{}</ol>",
            format_html_join("", "<li value='{}'><a href='{}'>{}</a><br><small>{}</small></li>", rows),
        )

    def has_delete_permission(self, request, obj=None):
        # The delivery ledger is the record of what each reader was sent (and keeps a re-run
        # from sending it twice): failed rows are re-queued, never deleted.
        return False

    @admin.display(description="Subscriber", ordering="subscriber__email")
    def subscriber_email(self, obj):
        return obj.subscriber.email

    @admin.display(description="Provider's reason")
    def reason(self, obj):
        if not obj.last_error:
            return ""
        kind = "rejected" if obj.rejected else "transient" if obj.transient_error else "permanent"
        return f"[{kind}] {Truncator(obj.last_error).chars(120)}"

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        cl = getattr(response, "context_data", {}).get("cl") if hasattr(response, "context_data") else None
        if cl is not None:
            # Counts by state for what the filters selected (e.g. one edition).
            rows = cl.queryset.order_by().values("state").annotate(n=Count("pk"))
            response.context_data["state_counts"] = sorted((r["state"], r["n"]) for r in rows)
        return response

    @admin.action(description="Re-queue failed deliveries that can be retried", permissions=["change"])
    def requeue(self, request, queryset):
        ids = list(queryset.filter(state=Delivery.State.FAILED, transient_error=True).values_list("pk", flat=True))
        skipped = queryset.count() - len(ids)
        if not ids:
            reasons = "; ".join(_not_requeueable_reasons(queryset))
            self.message_user(request, f"None of the selected deliveries can be re-queued: {reasons}.", messages.WARNING)
            return
        from digest.services.delivery import deliveries_requeue

        count = deliveries_requeue(delivery_ids=ids)
        left = ngettext("was", "were", skipped)
        extra = f" ({skipped} selected could not be re-queued and {left} left alone)" if skipped else ""
        self.message_user(request, f"Re-queued {counted(count, 'delivery', 'deliveries')}{extra}.", messages.SUCCESS)


def _not_requeueable_reasons(queryset) -> list[str]:
    """Why each selected row can't be re-queued, one phrase per case, in a fixed order."""
    State = Delivery.State
    rows = list(queryset.order_by().values_list("state", "transient_error", "lease_until"))
    now = timezone.now()
    reasons = []
    if any(state == State.SENT for state, _, _ in rows):
        reasons.append("already sent")
    sending = [lease for state, _, lease in rows if state == State.SENDING]
    if sending:
        # A worker holds these; once the lease runs out the next claim takes them back by itself.
        ends = max((lease for lease in sending if lease), default=None)
        when = "its lease has run out, the next send run takes it back by itself" if ends is None or ends <= now else (
            f"the next send run takes it back by itself after its lease ends at {ends:%H:%M} UTC")
        reasons.append(f"still sending ({when})")
    if any(state == State.PENDING for state, _, _ in rows):
        reasons.append("already queued")
    if any(state == State.FAILED and not transient for state, transient, _ in rows):
        reasons.append("the address was refused and has been suppressed")
    if any(state == State.SUPPRESSED for state, _, _ in rows):
        reasons.append("the address is suppressed")
    if any(state == State.SKIPPED for state, _, _ in rows):
        reasons.append("skipped, not failed")
    return reasons or ["nothing was selected"]


class DeliveryHistoryInline(admin.TabularInline):
    """A subscriber's deliveries, newest first (on the subscriber page)."""

    model = Delivery
    extra = 0
    fields = ("edition", "state", "attempts", "last_error", "sent_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True
    ordering = ("-edition__date",)

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("edition")


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "event_type", "recipient", "esp_name", "reason_short")
    list_filter = ("event_type", "esp_name")
    search_fields = ("recipient", "message_id", "event_id")
    date_hierarchy = "created_at"
    list_per_page = 100

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Reason")
    def reason_short(self, obj):
        return Truncator(obj.reason).chars(100)


@admin.register(SentPaper)
class SentPaperAdmin(admin.ModelAdmin):
    """The sent-papers ledger, read only: sending writes it, and it alone keeps a paper from
    reaching a reader twice."""

    list_display = ("sent_on", "subscriber", "paper")
    list_select_related = ("subscriber", "paper")
    raw_id_fields = ("subscriber", "paper", "delivery")
    search_fields = ("subscriber__email", "paper__title")
    date_hierarchy = "sent_on"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

