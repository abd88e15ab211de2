"""Curation: what curators and operators do to papers and editions from the admin.

Pin, hide, merge duplicates, and the sending-health check that holds an edition
when complaints run high. The admin calls these; so can a shell or a task.
"""

import datetime
import difflib
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count, Exists, Max, OuterRef, Q
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.html import escape
from django.utils.text import Truncator

from digest.models import (
    TOPIC_LISTING_SCORE, Delivery, Edition, Paper, PaperTopic, SentPaper, Topic, TrendingEntry, WebhookEvent,
)
from digest.signals import papers_changed, papers_curated

# Complaint rates, as fractions of messages sent in the window. Mailbox providers
# (Gmail's bulk sender rules) start filtering around 0.3% and ask for under 0.1%.
COMPLAINT_WARNING_RATE = 0.001
COMPLAINT_HOLD_RATE = 0.003
HEALTH_WINDOW_DAYS = 7
# The kinds tracking stores (digest.services.tracking); deferrals are not bounces.
BOUNCE_EVENTS = WebhookEvent.BOUNCE_KINDS
COMPLAINT_EVENTS = (WebhookEvent.Kind.COMPLAINT,)
# Editions still open to change: a pin or a merge may rewrite their order.
OPEN_EDITION_STATUSES = (Edition.Status.DRAFT, Edition.Status.HELD)
# Editions with digests still to go: a pin reaches these (a sent edition is history).
UNSENT_EDITION_STATUSES = (*OPEN_EDITION_STATUSES, Edition.Status.SENDING)
# Readers who count as following a topic: those sending serves or is about to.
FOLLOWING_STATUSES = ("confirmed", "pending")


def papers_reclassify(*, paper_ids: list[int]) -> None:
    """Have the worker embed and re-classify these papers (overrides are kept), after commit."""
    _notify_papers_changed(paper_ids)


def _notify_papers_changed(paper_ids: list[int]) -> None:
    # matching's receiver (digest/tasks/classify.py) enqueues embed + classify.
    transaction.on_commit(lambda: papers_changed.send(sender=Paper, paper_ids=list(paper_ids)))


# --- roles ----------------------------------------------------------------

# The models curators may work on; nothing here shows a subscriber's address.
CURATOR_MODELS = ("paper", "papertopic", "trendingentry", "topic", "edition")
OPERATOR_APPS = ("digest", "subscriptions")
OPERATOR_ONLY_CODENAMES = ("release_edition", "view_sending_health")


def roles_sync() -> None:
    """Give the `curators` and `operators` groups (created by migration digest/0004_roles) every
    permission of their models, including models added by later migrations. Idempotent: runs after
    every migrate. Never takes a permission away that an admin granted by hand.
    """
    from django.contrib.auth.models import Group, Permission

    curators, _ = Group.objects.get_or_create(name="curators")
    operators, _ = Group.objects.get_or_create(name="operators")
    operators.permissions.add(*Permission.objects.filter(content_type__app_label__in=OPERATOR_APPS))
    curators.permissions.add(
        *Permission.objects.filter(content_type__app_label="digest", content_type__model__in=CURATOR_MODELS).exclude(
            codename__in=OPERATOR_ONLY_CODENAMES
        )
    )


# --- pin and hide ---------------------------------------------------------


def papers_pin(*, paper_ids: list[int], pinned: bool = True) -> int:
    """Pin (or unpin) papers: matching puts pinned papers first in every digest not sent yet.

    Pinning also un-hides (a curator who pins a paper wants it sent) and moves the papers to
    the front of every edition with digests still to go, the one already sending included:
    as a hide reaches the digests still to be sent of that edition (matching drops hidden
    papers when it builds each one), so does a pin, and the readers it has not reached yet
    get the pinned papers first. Digests already sent stay as they were. Unpinning takes a
    paper back out of an edition still sending when the pin is what put it there
    (_pins_withdraw). Returns the number of papers changed.
    """
    papers = Paper.objects.filter(pk__in=paper_ids)
    with transaction.atomic():
        if pinned:
            count = papers.filter(Q(pinned=False) | Q(hidden=True)).update(
                pinned=True, hidden=False, updated_at=timezone.now()
            )
            existing = set(papers.values_list("pk", flat=True))
            front = [pid for pid in dict.fromkeys(paper_ids) if pid in existing]
            # An edition without its list yet (a draft) takes pins first when it freezes.
            for edition in Edition.objects.select_for_update().filter(status__in=UNSENT_EDITION_STATUSES):
                if edition.paper_ids:
                    ordered = front + [pid for pid in edition.paper_ids if pid not in front]
                    if ordered != edition.paper_ids:
                        fields = ["paper_ids"]
                        added = [pid for pid in front if pid not in edition.paper_ids]
                        if added:  # not in the digests already sent: the public page marks them
                            edition.late_ids = list(dict.fromkeys([*edition.late_ids, *added]))
                            edition.late_added_at = timezone.now()
                            fields += ["late_ids", "late_added_at"]
                        edition.paper_ids = ordered
                        edition.save(update_fields=fields)
        else:
            count = papers.filter(pinned=True).update(pinned=False, updated_at=timezone.now())
            _pins_withdraw(paper_ids=paper_ids)
        if count:
            papers_curated.send(sender=Paper, paper_ids=list(paper_ids))
    return count


def _pins_withdraw(*, paper_ids: list[int]) -> None:
    """Take unpinned papers out of the editions still sending that only their pin had put them in.

    A pin adds a paper to an edition already frozen (at the end of late_ids, "added later");
    the unpin takes back exactly that. A paper the list had when it froze, or one that trended
    on the edition's day (a late arrival, edition_late_papers_add), stays: readers got or would
    get it without the pin. Readers already sent it keep their ledger and their delivery's record.
    late_added_at stays: the feed's <updated> must not move back.
    """
    unpinned = set(paper_ids)
    for edition in Edition.objects.select_for_update().filter(status__in=UNSENT_EDITION_STATUSES).exclude(late_ids=[]):
        added = unpinned.intersection(edition.late_ids)
        if not added:
            continue
        trending = TrendingEntry.objects.filter(date=edition.date, paper_id__in=added).values_list("paper_id", flat=True)
        drop = added - set(trending)
        if drop:
            edition.paper_ids = [pid for pid in edition.paper_ids if pid not in drop]
            edition.late_ids = [pid for pid in edition.late_ids if pid not in drop]
            edition.save(update_fields=["paper_ids", "late_ids"])


def papers_hide(*, paper_ids: list[int], hidden: bool = True) -> int:
    """Hide (or show again) papers. Hidden papers are never in any future digest.

    Hiding also unpins, and removes the papers from editions that have not started
    sending; editions already sending or sent are history and stay as they were, but for
    what a pin had added to one still sending (_pins_withdraw, as an unpin does).
    """
    changes = {"hidden": hidden, "updated_at": timezone.now()}
    if hidden:
        changes["pinned"] = False
    with transaction.atomic():
        count = Paper.objects.filter(pk__in=paper_ids).exclude(hidden=hidden).update(**changes)
        if hidden:
            # Hiding unpins, so it takes back what the pin added to an edition still sending:
            # shown again later, the paper must not return there as if still pinned.
            _pins_withdraw(paper_ids=paper_ids)
            drop = set(paper_ids)
            for edition in Edition.objects.select_for_update().filter(status__in=OPEN_EDITION_STATUSES):
                kept = [pid for pid in edition.paper_ids if pid not in drop]
                if kept != edition.paper_ids:
                    edition.paper_ids = kept
                    edition.save(update_fields=["paper_ids"])
        if count:
            papers_curated.send(sender=Paper, paper_ids=list(paper_ids))
    return count


# --- merge duplicates -----------------------------------------------------


class MergeError(ValueError):
    """The papers cannot be merged (said in words a curator understands)."""


@dataclass
class MergeResult:
    kept: Paper
    removed_ids: list[int]
    trending_moved: int = 0
    trending_combined: int = 0
    sent_moved: int = 0
    sent_combined: int = 0
    # The kept paper is hidden, so the merge left it unpinned although a duplicate was pinned.
    pin_dropped: bool = False


def papers_choose_survivor(*, papers: list[Paper]) -> Paper:
    """The paper a merge keeps: the one with an arXiv id, then the most trending days, then the oldest."""
    counts = dict(
        TrendingEntry.objects.filter(paper__in=papers).values_list("paper").annotate(n=Count("id")).values_list("paper", "n")
    )
    return sorted(papers, key=lambda p: (p.arxiv_id is None, -counts.get(p.pk, 0), p.pk))[0]


# Below this similarity (difflib's ratio of the two titles, lower-cased) two records are unlikely to
# be one paper seen twice: retitled duplicates ("v2", punctuation, a subtitle) stay above ~0.7.
MERGE_TITLE_SIMILARITY = 0.6


def papers_unlike(*, papers: list[Paper], keep: Paper) -> list[Paper]:
    """The papers a merge into `keep` would fold in although their titles look unrelated to its
    title: the confirmation page warns about them, since a merge cannot be undone."""
    title = " ".join(keep.title.lower().split())
    return [
        p for p in papers
        if p.pk != keep.pk
        and difflib.SequenceMatcher(None, title, " ".join(p.title.lower().split())).ratio() < MERGE_TITLE_SIMILARITY
    ]  # fmt: skip


def papers_merge(*, keep: Paper, duplicates: list[Paper]) -> MergeResult:
    """Fold `duplicates` into `keep`, then delete them.

    Nothing is lost: every trending appearance and every "already sent" ledger row
    of a duplicate moves to the kept paper. The traps are the unique constraints:
    a trending entry for the same (date, source), or a ledger row for the same
    subscriber, may already exist on the kept paper. Such rows are combined (best
    rank, most upvotes; earliest sent date) instead of re-pointed, which would fail.
    All or nothing: one transaction.
    """
    dup_ids = sorted({p.pk for p in duplicates} - {keep.pk})
    if not dup_ids:
        raise MergeError("Choose at least two different papers to merge.")
    result = MergeResult(kept=keep, removed_ids=dup_ids)
    with transaction.atomic():
        # Lock the rows so a concurrent import or merge cannot interleave.
        locked = {p.pk: p for p in Paper.objects.select_for_update().filter(pk__in=[keep.pk, *dup_ids]).order_by("pk")}
        if len(locked) != len(dup_ids) + 1:
            raise MergeError("One of the papers no longer exists; reload the page and try again.")
        keep = locked[keep.pk]
        dups = [locked[pk] for pk in dup_ids]

        _merge_trending(keep=keep, dup_ids=dup_ids, result=result)
        _merge_sent(keep=keep, dup_ids=dup_ids, result=result)
        _merge_topics(keep=keep, dup_ids=dup_ids)
        _rewrite_paper_lists(keep=keep, dup_ids=dup_ids)

        # Fill what the kept record lacks from the duplicates; unique fields
        # (arxiv_id) are taken only after the duplicates are deleted.
        arxiv_id = keep.arxiv_id or next((d.arxiv_id for d in dups if d.arxiv_id), None)
        for name in ("abstract", "page_url", "abs_url", "pdf_url", "code_url"):
            if not getattr(keep, name):
                setattr(keep, name, next((getattr(d, name) for d in dups if getattr(d, name)), ""))
        for name in ("authors", "keywords", "categories"):
            merged = list(getattr(keep, name) or [])
            for d in dups:
                merged += [x for x in (getattr(d, name) or []) if x not in merged]
            setattr(keep, name, merged)
        keep.published_on = min([d for d in [keep.published_on, *[x.published_on for x in dups]] if d], default=None)
        keep.upvotes = max([keep.upvotes, *[d.upvotes for d in dups]])
        # Hidden stays the kept paper's choice: hiding one copy was about that copy. A hidden kept
        # paper takes no pin from a duplicate either (pinned and hidden at once is no state the
        # paper form saves): a hide keeps spam and retractions out of every email, a pin only
        # promotes, and a promotion lost is one click to redo while an email sent is not.
        pinned = keep.pinned or any(d.pinned for d in dups)
        result.pin_dropped = keep.hidden and any(d.pinned for d in dups)
        keep.pinned = pinned and not keep.hidden

        Paper.objects.filter(pk__in=dup_ids).delete()
        keep.arxiv_id = arxiv_id
        # Paper.save recomputes the fingerprint from the (unchanged) title.
        keep.save()
        _notify_papers_changed([keep.pk])
    result.kept = keep
    return result


def _merge_trending(*, keep: Paper, dup_ids: list[int], result: MergeResult) -> None:
    existing = {(e.date, e.source): e for e in TrendingEntry.objects.filter(paper=keep)}
    for entry in TrendingEntry.objects.filter(paper_id__in=dup_ids).order_by("date", "rank", "pk"):
        key = (entry.date, entry.source)
        if key in existing:
            target = existing[key]
            target.rank = min(target.rank, entry.rank)
            target.upvotes = max(target.upvotes, entry.upvotes)
            target.save(update_fields=["rank", "upvotes"])
            entry.delete()
            result.trending_combined += 1
        else:
            entry.paper = keep
            entry.save(update_fields=["paper"])
            existing[key] = entry
            result.trending_moved += 1


def _merge_sent(*, keep: Paper, dup_ids: list[int], result: MergeResult) -> None:
    existing = {s.subscriber_id: s for s in SentPaper.objects.filter(paper=keep)}
    for row in SentPaper.objects.filter(paper_id__in=dup_ids).order_by("sent_on", "pk"):
        if row.subscriber_id in existing:
            target = existing[row.subscriber_id]
            if row.sent_on < target.sent_on:
                target.sent_on, target.delivery_id = row.sent_on, row.delivery_id
                target.save(update_fields=["sent_on", "delivery"])
            row.delete()
            result.sent_combined += 1
        else:
            row.paper = keep
            row.save(update_fields=["paper"])
            existing[row.subscriber_id] = row
            result.sent_moved += 1


def _merge_topics(*, keep: Paper, dup_ids: list[int]) -> None:
    existing = {pt.topic_id: pt for pt in PaperTopic.objects.filter(paper=keep)}
    for row in PaperTopic.objects.filter(paper_id__in=dup_ids).order_by("pk"):
        target = existing.get(row.topic_id)
        if target is None:
            row.paper = keep
            row.save(update_fields=["paper"])
            existing[row.topic_id] = row
            continue
        target.score = max(target.score, row.score)
        if target.override is None:
            target.override = row.override
        target.save(update_fields=["score", "override"])
        row.delete()


def _replace_ids(ids: list[int], *, keep_id: int, dup_ids: set[int]) -> list[int]:
    out: list[int] = []
    for pid in ids:
        pid = keep_id if pid in dup_ids else pid
        if pid not in out:
            out.append(pid)
    return out


def _rewrite_paper_lists(*, keep: Paper, dup_ids: list[int]) -> None:
    """Editions and deliveries list paper ids; point them at the kept paper."""
    dups = set(dup_ids)
    for edition in Edition.objects.select_for_update().exclude(paper_ids=[]):
        new = _replace_ids(edition.paper_ids, keep_id=keep.pk, dup_ids=dups)
        carry = _replace_ids(edition.carry_ids, keep_id=keep.pk, dup_ids=dups)
        late = _replace_ids(edition.late_ids, keep_id=keep.pk, dup_ids=dups)
        if {keep.pk, *dups} & (set(edition.paper_ids) - set(edition.late_ids)):
            # One of them was in the list from its freeze, so in the emails: the kept paper was not added later.
            late = [pid for pid in late if pid != keep.pk]
        if new != edition.paper_ids or carry != edition.carry_ids or late != edition.late_ids:
            edition.paper_ids, edition.carry_ids, edition.late_ids = new, carry, late
            edition.save(update_fields=["paper_ids", "carry_ids", "late_ids"])
    # Deliveries: only those not yet sent matter for what goes out; sent ones are
    # rewritten too so "what did this email carry" still resolves to a paper.
    # JSON containment is not portable to SQLite, so scan in Python (merges are rare).
    changed = []
    rows = Delivery.objects.exclude(paper_ids=[]).only("pk", "paper_ids", "reasons")
    for delivery in rows.iterator(chunk_size=2000):
        if dups.intersection(delivery.paper_ids):
            delivery.paper_ids, delivery.reasons = _merge_sent_record(
                delivery.paper_ids, list(delivery.reasons or []), keep_id=keep.pk, dup_ids=dups
            )
            changed.append(delivery)
    Delivery.objects.bulk_update(changed, ["paper_ids", "reasons"], batch_size=500)


def _merge_sent_record(
    paper_ids: list[int], reasons: list, *, keep_id: int, dup_ids: set[int]
) -> tuple[list[int], list]:
    """A delivery's (paper_ids, reasons) with the duplicates folded into the kept paper.

    reasons is parallel to paper_ids (entry n says why paper n was sent), so entries are dropped
    from both at once, or every later paper shows the reasons of the one before it. Where the
    email had the kept paper itself, its entry stays (place and reasons) and each duplicate's goes;
    otherwise the first duplicate's entry becomes the kept paper's. Rows sent before reasons were
    kept have fewer reasons than papers: those past the end are simply not there to drop.
    """
    keep_at = paper_ids.index(keep_id) if keep_id in paper_ids else next(n for n, p in enumerate(paper_ids) if p in dup_ids)
    kept = [n for n, pid in enumerate(paper_ids) if n == keep_at or (pid != keep_id and pid not in dup_ids)]
    new_ids = [keep_id if paper_ids[n] in dup_ids else paper_ids[n] for n in kept]
    new_reasons = [reasons[n] for n in kept if n < len(reasons)]
    return new_ids, new_reasons


# --- sending health -------------------------------------------------------


@dataclass
class SendingHealth:
    since: datetime.datetime
    sent: int
    bounces: int
    complaints: int
    bounce_rate: float
    complaint_rate: float
    warning: bool
    hold: bool
    # Deliveries that failed because the server refused our message (sender, settings, content).
    rejected: int = 0
    hold_reason: str = ""
    messages: list[str] = field(default_factory=list)


def sending_health(*, now: datetime.datetime | None = None, days: int = HEALTH_WINDOW_DAYS) -> SendingHealth:
    """Bounce and complaint rates over the last `days` days (events / messages sent), and the
    deliveries the mail server refused outright.

    Holds the next edition when complaints run above the hold rate, or when the server refused
    more messages than it took (an unverified sender, broken settings): sending it would only
    fail again, and an operator should look first.
    """
    now = now or timezone.now()
    since = now - datetime.timedelta(days=days)
    sent = Delivery.objects.filter(state=Delivery.State.SENT, sent_at__gte=since, sent_at__lte=now).count()
    when = Q(occurred_at__gte=since, occurred_at__lte=now) | Q(occurred_at__isnull=True, created_at__gte=since)
    events = WebhookEvent.objects.filter(when).aggregate(
        bounces=Count("id", filter=Q(event_type__in=BOUNCE_EVENTS)),
        complaints=Count("id", filter=Q(event_type__in=COMPLAINT_EVENTS)),
    )
    rejected = Delivery.objects.filter(
        state=Delivery.State.FAILED, rejected=True, updated_at__gte=since, updated_at__lte=now
    ).count()
    bounce_rate = events["bounces"] / sent if sent else 0.0
    complaint_rate = events["complaints"] / sent if sent else 0.0
    complaints_hold = complaint_rate > COMPLAINT_HOLD_RATE
    rejections_hold = rejected > sent
    health = SendingHealth(
        since=since,
        sent=sent,
        bounces=events["bounces"],
        complaints=events["complaints"],
        bounce_rate=bounce_rate,
        complaint_rate=complaint_rate,
        warning=complaint_rate > COMPLAINT_WARNING_RATE or rejected > 0,
        hold=complaints_hold or rejections_hold,
        rejected=rejected,
    )
    held = " the next edition will be held until an operator releases it."
    if complaints_hold:
        health.hold_reason = (
            f"complaints {health.complaints}/{sent} sent ({complaint_rate:.2%}) "
            f"over {days} days, above {COMPLAINT_HOLD_RATE:.1%}"
        )
        health.messages.append(
            f"Complaint rate {complaint_rate:.2%} over {days} days is above {COMPLAINT_HOLD_RATE:.1%}:{held}"
        )
    elif complaint_rate > COMPLAINT_WARNING_RATE:
        health.messages.append(
            f"Complaint rate {complaint_rate:.2%} over {days} days is above {COMPLAINT_WARNING_RATE:.1%}."
        )
    if rejected:
        if rejections_hold and not health.hold_reason:
            health.hold_reason = f"{rejected} messages rejected by the mail server, {sent} sent, over {days} days"
        health.messages.append(
            f"{rejected} messages over {days} days were rejected by the mail server itself (its sender, "
            f"settings or content, not the readers' addresses; no reader was suppressed), {sent} were sent."
            + (held if rejections_hold else "")
            + " Fix the cause (see the deliveries' errors), then re-queue the failed deliveries."
        )
    return health


def edition_hold_if_unhealthy(*, edition: Edition, now: datetime.datetime | None = None) -> bool:
    """Hold `edition` when sending health says so (complaints too high, or the server refusing
    most messages). Returns True if it must not be sent.

    Call it before an edition starts sending (delivery planning). A held edition
    stays held until an operator releases it (edition_release); once released, the
    same numbers do not hold it again.
    """
    if edition.status == Edition.Status.HELD:
        return True
    if edition.status != Edition.Status.DRAFT or edition.released_at is not None:
        return False
    health = sending_health(now=now)
    if not health.hold:
        return False
    reason = health.hold_reason
    # Conditional update: only a draft is held; a concurrent start of sending wins.
    held = Edition.objects.filter(pk=edition.pk, status=Edition.Status.DRAFT).update(
        status=Edition.Status.HELD, hold_reason=reason[:200]
    )
    edition.refresh_from_db(fields=["status", "hold_reason"])
    return bool(held) or edition.status == Edition.Status.HELD


def edition_release(*, edition: Edition) -> bool:
    """An operator's release of a held edition: back to draft, and not held again for the same numbers."""
    released = Edition.objects.filter(pk=edition.pk, status=Edition.Status.HELD).update(
        status=Edition.Status.DRAFT, released_at=timezone.now()
    )
    edition.refresh_from_db(fields=["status", "released_at"])
    return bool(released)


def _count_by_day(queryset) -> dict[datetime.date, int]:
    return dict(queryset.order_by().values_list("day").annotate(n=Count("pk")).values_list("day", "n"))


def sending_health_report(*, now: datetime.datetime | None = None, days: int = 30) -> dict:
    """Everything the sending-health page shows: today's edition, subscribers over time, rates,
    and whether the newest papers are old (fetching stalled)."""
    from digest.services.editions import papers_stale_warning
    from subscriptions.models import Subscriber

    now = now or timezone.now()
    today = timezone.localdate(now)
    edition = Edition.objects.filter(date__lte=today).order_by("-date").first()
    progress = None
    if edition is not None:
        counts = dict(
            Delivery.objects.filter(edition=edition).values_list("state").annotate(n=Count("pk")).values_list("state", "n")
        )
        total = sum(counts.values())
        done = total - counts.get(Delivery.State.PENDING, 0) - counts.get(Delivery.State.SENDING, 0)
        progress = {
            "edition": edition,
            "total": total,
            "done": done,
            "percent": round(100 * done / total) if total else 0,
            "states": [(label, counts.get(value, 0), value) for value, label in Delivery.State.choices],
        }

    start = today - datetime.timedelta(days=days - 1)
    signups = dict(
        Subscriber.objects.filter(created_at__date__gte=start)
        .values_list("created_at__date")
        .annotate(n=Count("pk"))
        .values_list("created_at__date", "n")
    )
    # Joined: confirmed (or, for imported rows without a confirmation time, created);
    # left: unsubscribed or suppressed. Walking back from today's confirmed count.
    joined_on = TruncDate(Coalesce("confirmed_at", "created_at"))
    joins = _count_by_day(
        Subscriber.objects.exclude(status=Subscriber.Status.PENDING).annotate(day=joined_on).filter(day__gte=start)
    )
    leaves = _count_by_day(
        Subscriber.objects.filter(status=Subscriber.Status.UNSUBSCRIBED, unsubscribed_at__isnull=False)
        .annotate(day=TruncDate("unsubscribed_at")).filter(day__gte=start)
    )
    suppressed = _count_by_day(
        Subscriber.objects.filter(status=Subscriber.Status.SUPPRESSED, suppressed_at__isnull=False)
        .annotate(day=TruncDate("suppressed_at")).filter(day__gte=start)
    )
    by_status = dict(Subscriber.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    running = by_status.get(Subscriber.Status.CONFIRMED, 0)
    series = []
    for offset in range(days):
        day = today - datetime.timedelta(days=offset)
        left = leaves.get(day, 0) + suppressed.get(day, 0)
        series.append(
            {"day": day, "signups": signups.get(day, 0), "confirmed": joins.get(day, 0), "left": left,
             "total": max(running, 0)}  # fmt: skip
        )
        running -= joins.get(day, 0) - left
    series.reverse()
    peak = max([row["total"] for row in series] + [1])
    for row in series:
        row["bar"] = round(100 * row["total"] / peak)

    held = list(Edition.objects.filter(status=Edition.Status.HELD).order_by("date"))
    health = sending_health(now=now)
    return {
        "health": health,
        "stale_warning": papers_stale_warning(today=today),
        "bounce_pct": f"{health.bounce_rate:.2%}",
        "complaint_pct": f"{health.complaint_rate:.2%}",
        "warning_pct": f"{COMPLAINT_WARNING_RATE:.1%}",
        "hold_pct": f"{COMPLAINT_HOLD_RATE:.1%}",
        "progress": progress,
        "series": series,
        "by_status": [(label, by_status.get(value, 0)) for value, label in Subscriber.Status.choices],
        "held_editions": held,
        "warning_rate": COMPLAINT_WARNING_RATE,
        "hold_rate": COMPLAINT_HOLD_RATE,
        "window_days": HEALTH_WINDOW_DAYS,
    }


# --- topics ---------------------------------------------------------------


def topics_followed(*, topic_ids: list[int]) -> dict[int, int]:
    """{topic id: readers (confirmed or pending) who follow it} for the topics someone follows.

    Former readers (unsubscribed, suppressed) do not count: nothing is sent to them.
    """
    through = Topic.subscribers.through
    rows = (
        through.objects.filter(topic_id__in=topic_ids, subscriber__status__in=FOLLOWING_STATUSES)
        .values_list("topic_id")
        .annotate(n=Count("pk"))
        .values_list("topic_id", "n")
    )
    return dict(rows)


def topic_deactivation_effect(*, topic: Topic) -> tuple[int, int]:
    """(readers who follow `topic`, those of them left with no other active topic and no interests).

    An inactive topic is not matched (selection uses active topics only), so the second kind
    gets only the day's trending papers until they pick something else.
    """
    from subscriptions.models import Subscriber

    readers = Subscriber.objects.filter(topics=topic, status__in=FOLLOWING_STATUSES)
    other_active = Topic.subscribers.through.objects.filter(
        subscriber=OuterRef("pk"), topic__active=True
    ).exclude(topic=topic)
    left_bare = readers.filter(interests__regex=r"^\s*$").exclude(Exists(other_active))
    return readers.count(), left_bare.count()


SCORER_WORDS = {
    "lexical": "the lexical scorer (words: BM25 over title and abstract)",
    "semantic": "the semantic scorer (meaning: sentence embeddings), half words",
    "hybrid": "the hybrid scorer (half words, half meaning)",
}


def topic_query_preview(
    *, query: str, name: str = "", description: str = "", days: int = 14, limit: int = 20,
    today: datetime.date | None = None,
) -> dict:  # fmt: skip
    """Which recent papers a topic as typed (not saved) would be listed with, best first.

    Scored by classify.topic_scores_unsaved: the scorer and batches saving the topic uses, so a
    paper "matches" exactly when saving the topic would list it (TOPIC_LISTING_SCORE, the admin's
    bar), a curator's override aside. `scorer` names the scorer used; where the configured one
    needs a vector this web process cannot compute, the lexical one, and `fallback` says why.

    "Recent" is the `days` days up to today; when none trended then (a site whose imports
    stopped, the demo's March and April pages), the `days` days up to the latest day that has
    trending papers, and with no trending papers at all every paper. `window` says which,
    in words the admin shows.
    """
    from digest.matching.scoring import TopicSpec
    from digest.matching.text import parse_query
    from digest.services.classify import topic_scores_unsaved

    today = today or timezone.localdate()
    phrases = parse_query(query or "") or parse_query(name or "")
    start, end, window = _topic_preview_window(days=days, today=today)
    recent = Paper.objects.all()
    if end is not None:
        recent = recent.filter(pk__in=TrendingEntry.objects.filter(date__gt=start, date__lte=end).values("paper_id"))
    papers = list(recent.only("pk", "title", "arxiv_id"))
    threshold = TOPIC_LISTING_SCORE
    result = {
        "query": query, "days": days, "window": window, "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None, "candidates": len(papers), "phrases": [p.text for p in phrases],
        "papers": [], "matching": 0, "threshold": threshold, "method": "", "scorer": "", "fallback": "",
    }  # fmt: skip
    if not phrases or not papers:
        return result
    scoring = topic_scores_unsaved(
        spec=TopicSpec(id=0, name=name or "", description=description or "", query=query), paper_ids=[p.pk for p in papers]
    )
    scores = [scoring.scores.get(p.pk, 0.0) for p in papers]
    result.update(method=scoring.method, scorer=SCORER_WORDS[scoring.method], fallback=scoring.fallback_reason)
    order = sorted(range(len(papers)), key=lambda i: (-scores[i], papers[i].pk))
    for i in order:
        if scores[i] <= 0 or len(result["papers"]) >= limit:
            break
        paper = papers[i]
        result["papers"].append(
            {"id": paper.pk, "title": paper.title, "arxiv_id": paper.arxiv_id or "", "score": scores[i],
             "matches": bool(scores[i] >= threshold)}  # fmt: skip
        )
    result["matching"] = sum(1 for s in scores if s >= threshold)
    return result


def _topic_preview_window(*, days: int, today: datetime.date) -> tuple[datetime.date | None, datetime.date | None, str]:
    """(start, end, words): trending days start < date <= end, or (None, None, ...) for every paper."""
    start = today - datetime.timedelta(days=days)
    if TrendingEntry.objects.filter(date__gt=start, date__lte=today).exists():
        return start, today, f"the last {days} days"
    latest = (
        TrendingEntry.objects.filter(date__lte=today).aggregate(day=Max("date"))["day"]
        or TrendingEntry.objects.aggregate(day=Max("date"))["day"]  # only dated ahead (a --date typo)
    )
    if latest is None:
        return None, None, "all papers (none has trended yet)"
    return (
        latest - datetime.timedelta(days=days),
        latest,
        f"the {days} days to {latest:%-d %b %Y}, the latest with trending papers (none in the last {days} days)",
    )


# --- editions: the curator's view, previews and test sends ---------------


class PreviewUnavailable(Exception):
    """The edition cannot be rendered for this subscriber (said in plain words)."""


def edition_papers_for_admin(*, edition: Edition) -> tuple[list[Paper], bool]:
    """The edition's papers in order, and whether that order is frozen.

    A frozen edition shows exactly what goes out; a draft shows what freezing it
    now would produce (pins first, hides removed), from the delivery code's own order.
    """
    from digest.services.editions import edition_day_ranks, edition_paper_order

    frozen = edition.frozen_at is not None
    ids = list(edition.paper_ids) if frozen else edition_paper_order(day=edition.date)
    by_id = Paper.objects.in_bulk(ids)
    ranks = edition_day_ranks(day=edition.date, paper_ids=ids)
    papers = []
    for pid in ids:
        paper = by_id.get(pid)
        if paper is not None:
            paper.edition_rank = ranks.get(pid)
            papers.append(paper)
    return papers, frozen


def subscriber_label(*, subscriber, with_address: bool) -> str:
    """How the admin names a subscriber; curators never see the address."""
    topics = ", ".join(t.name for t in subscriber.topics.all()[:3])
    interests = Truncator(" ".join(subscriber.interests.split())).chars(40)
    detail = " · ".join(x for x in (topics, interests) if x)
    name = subscriber.email if with_address else f"Subscriber #{subscriber.pk}"
    return f"{name} — {detail}" if detail else name


# Links in a preview or a test must not act on the real subscriber (a curator
# clicking "unsubscribe" in a test email would unsubscribe them).
DISABLED_LINK = "#link-disabled-in-preview"


def edition_preview_render(*, edition: Edition, subscriber, redact_address: bool):
    """The digest exactly as `subscriber` would get it for `edition`, rendered, sent nowhere.

    Uses the delivery code's own context and templates; only the subscriber's
    personal links are disabled, and the address replaced when the viewer may not see it.
    """
    from digest.emails import RenderedEmail
    from digest.services.editions import edition_day_ranks, edition_paper_order

    try:
        from digest import matching
        from digest.services.delivery import digest_render

        select = matching.select_for_subscriber
    except (ImportError, AttributeError):  # the matching or delivery code is missing
        raise PreviewUnavailable("Previews need the matching and delivery code, which is not installed.") from None

    candidate_ids = list(edition.paper_ids) if edition.frozen_at else edition_paper_order(day=edition.date)
    if not candidate_ids:
        raise PreviewUnavailable(f"{edition} has no papers to show.")
    picks = select(subscriber=subscriber, day=edition.date, candidate_ids=candidate_ids)
    if not picks:
        raise PreviewUnavailable(f"This subscriber would get nothing from {edition} (everything was sent already).")
    ranks = edition_day_ranks(day=edition.date, paper_ids=candidate_ids)
    # The delivery code's own render, then the personal links swapped for a dead one.
    rendered, context = digest_render(subscriber=subscriber, edition=edition, picks=picks, ranks=ranks)
    replacements = [(str(context[key]), DISABLED_LINK) for key in ("manage_url", "unsubscribe_url") if context.get(key)]
    if redact_address:
        replacements.append((subscriber.email, f"subscriber #{subscriber.pk}"))
    subject, text, html = rendered.subject, rendered.text, rendered.html
    for old, new in replacements:
        subject = subject.replace(old, new)
        text = text.replace(old, new)
        html = html.replace(str(escape(old)), new).replace(old, new)
    return RenderedEmail(subject=subject, text=text, html=html)


TEST_SUBJECT_PREFIX = "[TEST] "


def edition_send_test(*, edition: Edition, subscriber, to: str, redact_address: bool = True) -> None:
    """Mail the preview to `to` (the curator), subject prefixed [TEST].

    Recorded nowhere: no Delivery row, no sent-papers ledger entry, so the real
    subscriber still gets these papers.
    """
    from digest.emails import RenderedEmail, email_build

    rendered = edition_preview_render(edition=edition, subscriber=subscriber, redact_address=redact_address)
    rendered = RenderedEmail(subject=TEST_SUBJECT_PREFIX + rendered.subject, text=rendered.text, html=rendered.html)
    message = email_build(
        rendered=rendered, to=to, headers={"Auto-Submitted": "auto-generated", "X-Paperboy-Test": "1"}
    )
    message.tags = ["test"]
    message.send()
