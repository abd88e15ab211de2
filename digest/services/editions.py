"""Editions: one per trending day, frozen when sending starts.

Freezing copies the day's paper order (pins first, hidden papers removed) into
Edition.paper_ids, so every subscriber's digest and the public page are built from
the same list even if the day's trending papers change while the fan-out runs. A
curator's pin and hide still reach the digests not sent yet: a pin moves the paper to
the front of the list (curation.papers_pin), and hidden papers are left out wherever
the list is read.

A paper that trends on a day after its edition froze (beat fetches arXiv every 6 hours and
Hugging Face every 3, so an edition can freeze before the day's HF papers arrive) is appended
to the frozen list once its import commits (edition_late_papers_add), so the readers not sent
yet rank it as usual, and is carried into the next edition to freeze (Edition.carry_ids), so
the readers already sent get it there. The sent-papers ledger keeps anyone from getting it twice.
"""

import datetime

from collections.abc import Iterable

from django.db import transaction
from django.db.models import F, Max, Min, Q
from django.utils import timezone

from digest.models import Edition, Paper, TrendingEntry


def day_is_recent(*, day: datetime.date, today: datetime.date | None = None) -> bool:
    """Whether a digest of `day` may say "today" (or "this week"): the day is today or yesterday,
    by the server's local date. Trending days are often dated the day before; an edition weeks old
    (fetching stalled, or the demo's sample days) names its day instead. Asked when the words are
    written, never stored with a cached ranking: the answer changes at midnight."""
    today = today or timezone.localdate()
    return day >= today - datetime.timedelta(days=1)


def day_short(*, day: datetime.date, today: datetime.date | None = None) -> str:
    """'24 Apr', with the year when it is not the current one ('24 Apr 2025')."""
    today = today or timezone.localdate()
    return f"{day.day} {day:%b}" if day.year == today.year else f"{day.day} {day:%b %Y}"


def day_period(*, day: datetime.date, window_days: int, today: datetime.date | None = None) -> str:
    """When a paper trended, as reasons and a digest's first line say it: "today" / "this week" only
    for a recent edition (day_is_recent), otherwise the day named ("on 24 Apr", "in the week to 24 Apr")."""
    if day_is_recent(day=day, today=today):
        return "today" if window_days == 1 else "this week"
    short = day_short(day=day, today=today)
    return f"on {short}" if window_days == 1 else f"in the week to {short}"


def trending_rank_words(*, rank: int, period: str = "") -> str:
    """How a trending rank is said to readers, everywhere: "trending #3", with the period where the
    words name when ("trending #3 today", "trending #3 this week", day_period). Reasons, the email's
    meta lines and the edition page all say it so, so a paper's rank reads the same wherever it shows."""
    return f"trending #{rank} {period}" if period else f"trending #{rank}"


def edition_latest_day(*, today: datetime.date) -> datetime.date | None:
    """The latest day, up to `today`, that has trending papers (None if there is none)."""
    return TrendingEntry.objects.filter(date__lte=today, paper__hidden=False).aggregate(day=Max("date"))["day"]


STALE_AFTER_DAYS = 2


def papers_stale_warning(*, today: datetime.date | None = None) -> str:
    """An operator's warning when the newest trending day is more than STALE_AFTER_DAYS before
    `today`, else "". Planning sends the latest edition however old it is (the demo's sample days
    rely on that), so a stalled fetch would otherwise only show as readers getting old papers."""
    today = today or timezone.localdate()
    newest = edition_latest_day(today=today)
    if newest is None or (today - newest).days <= STALE_AFTER_DAYS:
        return ""
    age = (today - newest).days
    return f"The newest papers are from {day_short(day=newest, today=today)}, {age} days ago: is fetching running?"


def edition_paper_order(*, day: datetime.date) -> list[int]:
    """The day's papers in edition order: curator pins first, then by trending rank, then the late
    papers of the week's earlier editions (edition_carried_ids); hides removed."""
    pinned = list(Paper.objects.filter(pinned=True, hidden=False).order_by("-updated_at", "id").values_list("id", flat=True))
    carried = edition_carried_ids(day=day)
    if carried:
        shown = set(Paper.objects.filter(pk__in=carried, hidden=False).values_list("id", flat=True))
        carried = [pid for pid in carried if pid in shown]
    return list(dict.fromkeys([*pinned, *_day_ranked_ids(day=day), *carried]))


def _day_ranked_ids(*, day: datetime.date) -> list[int]:
    """The day's trending papers, hidden ones left out: those with a trending signal by their best
    rank, then those seen only in an arXiv feed (its order is submission date) in feed order."""
    signal = Min("rank", filter=~Q(source__in=TrendingEntry.UNRANKED_SOURCES))
    return list(
        TrendingEntry.objects.filter(date=day, paper__hidden=False)
        .values("paper_id")
        .annotate(signal=signal, rank=Min("rank"), upvotes=Max("upvotes"))
        .order_by(F("signal").asc(nulls_last=True), "rank", "-upvotes", "paper_id")
        .values_list("paper_id", flat=True)
    )


def edition_carried_ids(*, day: datetime.date) -> list[int]:
    """Late papers of the editions of the WEEK_DAYS - 1 days before `day`, oldest day first: the
    next edition to freeze carries them to the readers sent theirs before the papers came. Older
    late papers are history (a backfill of last month must not reach everyone)."""
    rows = Edition.objects.filter(
        date__range=(day - datetime.timedelta(days=WEEK_DAYS - 1), day - datetime.timedelta(days=1)),
        frozen_at__isnull=False,
    ).exclude(carry_ids=[]).order_by("date").values_list("carry_ids", flat=True)
    return list(dict.fromkeys(pid for ids in rows for pid in ids))


def edition_candidate_ids(*, day: datetime.date) -> list[int]:
    """The papers sending would rank for `day`: the frozen edition's list once there is one
    (pins made since are in it, see curation.papers_pin), otherwise what freezing now would make.
    """
    frozen = Edition.objects.filter(date=day, frozen_at__isnull=False).values_list("paper_ids", flat=True).first()
    return list(frozen) if frozen is not None else edition_paper_order(day=day)


WEEK_DAYS = 7


def edition_week_candidate_ids(*, day: datetime.date) -> list[int]:
    """What a weekly reader's digest on `day` ranks: the day's candidates, then those of each of
    the six days before it that had trending papers (each day's frozen list where there is one).
    A weekly digest of one day's papers would never show them what trended on the other six.
    Hidden papers are left in: ranking drops them (selection.day_load), as for a day's list."""
    days = (
        TrendingEntry.objects.filter(date__range=(day - datetime.timedelta(days=WEEK_DAYS - 1), day))
        .values_list("date", flat=True)
        .distinct()
    )
    earlier = sorted((d for d in set(days) if d != day), reverse=True)
    ids = edition_candidate_ids(day=day)
    for other in earlier:
        ids += edition_candidate_ids(day=other)
    return list(dict.fromkeys(ids))


def edition_readers_picks(
    *, day: datetime.date, subscribers: list, candidate_ids: list[int] | None = None, method: str | None = None
) -> dict[int, list]:
    """Each reader's picks from `day`'s edition, by subscriber id: daily readers rank the day's
    candidates, weekly readers the week's (edition_week_candidate_ids, trending ranks over the
    week). Sending and preview_digest both call this, so a preview is what sending would send.

    `candidate_ids`: the day's list when the caller has it (a sending chunk has the frozen one).
    """
    from digest import matching  # lazy: importing this module must not load numpy into web processes
    from subscriptions.models import Subscriber

    weekly = [s for s in subscribers if s.frequency == Subscriber.Frequency.WEEKLY]
    daily = [s for s in subscribers if s.frequency != Subscriber.Frequency.WEEKLY]
    picks: dict[int, list] = {}
    if daily:
        if candidate_ids is None:
            candidate_ids = edition_candidate_ids(day=day)
        picks |= matching.select_for_subscribers(subscribers=daily, day=day, candidate_ids=candidate_ids, method=method)
    if weekly:
        picks |= matching.select_for_subscribers(
            subscribers=weekly,
            day=day,
            candidate_ids=edition_week_candidate_ids(day=day),
            method=method,
            window_days=WEEK_DAYS,
        )
    return picks


def edition_freeze(*, day: datetime.date) -> Edition:
    """Get the day's edition, freezing its paper list the first time (idempotent, race-safe).

    The conditional UPDATE (frozen_at IS NULL) makes concurrent callers agree on one
    list: only the first one writes, every caller then reads the same row. It claims the row
    before the list is read, so an import of the day that commits meanwhile is either in the
    list or, as its on-commit step waits for this row's lock, appended as late
    (edition_late_papers_add). Freezing also takes the late papers the editions before it were
    waiting to carry (edition_carried_ids), and empties those lists under the same locks.
    """
    edition, _ = Edition.objects.get_or_create(date=day)
    if edition.frozen_at is None:
        with transaction.atomic():
            claimed = (
                Edition.objects.filter(pk=edition.pk, frozen_at__isnull=True)
                .exclude(status=Edition.Status.HELD)
                .update(frozen_at=timezone.now(), status=Edition.Status.SENDING)
            )
            if claimed:
                earlier = Edition.objects.select_for_update().filter(date__lt=day).exclude(carry_ids=[])
                earlier_ids = list(earlier.order_by("date").values_list("pk", flat=True))
                Edition.objects.filter(pk=edition.pk).update(paper_ids=edition_paper_order(day=day))
                Edition.objects.filter(pk__in=earlier_ids).update(carry_ids=[])
        edition.refresh_from_db()
    return edition


def edition_late_papers_add(*, days: Iterable[datetime.date]) -> dict[datetime.date, list[int]]:
    """Append to each frozen edition of `days` the day's trending papers it lacks; returns them by day.

    papers_ingest calls this after its import commits. The papers go at the end of the frozen
    list, so the order readers already got stays put, into the edition's carry_ids, for the
    next edition, and into its late_ids, for the public page and feed. Hidden papers stay out.
    Each edition is locked on its own (a freeze locks its row and then earlier ones: holding one
    lock at a time cannot deadlock with it); running it again adds nothing.
    """
    added: dict[datetime.date, list[int]] = {}
    frozen = Edition.objects.filter(date__in=set(days), frozen_at__isnull=False).order_by("date")
    for pk in frozen.values_list("pk", flat=True):
        with transaction.atomic():
            edition = Edition.objects.select_for_update().get(pk=pk)
            present = set(edition.paper_ids)
            late = [pid for pid in _day_ranked_ids(day=edition.date) if pid not in present]
            if late:
                edition.paper_ids = [*edition.paper_ids, *late]
                edition.carry_ids = list(dict.fromkeys([*edition.carry_ids, *late]))
                edition.late_ids = list(dict.fromkeys([*edition.late_ids, *late]))
                edition.late_added_at = timezone.now()
                edition.save(update_fields=["paper_ids", "carry_ids", "late_ids", "late_added_at"])
                added[edition.date] = late
    return added


def edition_papers(*, edition: Edition) -> list[Paper]:
    """The frozen papers in edition order, without those hidden or deleted since freezing.

    Hiding reaches an edition already sending (matching drops hidden papers from every digest
    still to go), so the public page and the feed built from this drop them too: curators
    hide spam and retractions.
    """
    by_id = _shown_papers().in_bulk(edition.paper_ids)
    return [by_id[paper_id] for paper_id in edition.paper_ids if paper_id in by_id]


def editions_paper_counts(*, editions: Iterable[Edition]) -> dict[int, int]:
    """{edition id: len(edition_papers(edition))} for many editions at once (one query per 5000
    papers, none per edition): what a list of editions (the public index, the admin's) says each
    has, as its own page says it."""
    editions = list(editions)
    wanted = sorted({pid for edition in editions for pid in edition.paper_ids})
    shown: set[int] = set()
    for i in range(0, len(wanted), 5000):  # under any database's limit on query parameters
        shown.update(_shown_papers().filter(pk__in=wanted[i : i + 5000]).values_list("pk", flat=True))
    return {edition.pk: sum(1 for pid in edition.paper_ids if pid in shown) for edition in editions}


def editions_paper_titles(*, editions: Iterable[Edition], limit: int) -> dict[int, list[str]]:
    """{edition id: the titles of edition_papers(edition)[:limit]} for many editions at once (one
    query per 5000 papers, none per edition): the feed's summaries. Titles only, for a feed of
    thirty editions would otherwise load thousands of abstracts and embeddings."""
    editions = list(editions)
    wanted = sorted({pid for edition in editions for pid in edition.paper_ids})
    titles: dict[int, str] = {}
    for i in range(0, len(wanted), 5000):  # under any database's limit on query parameters
        titles.update(_shown_papers().filter(pk__in=wanted[i : i + 5000]).values_list("pk", "title"))
    return {
        edition.pk: [titles[pid] for pid in edition.paper_ids if pid in titles][:limit] for edition in editions
    }


def _shown_papers():
    # The papers an edition's page, feed and counts show: those not hidden (and not deleted) since it froze.
    return Paper.objects.filter(hidden=False)


def edition_ranks(*, edition: Edition) -> dict[int, int]:
    """Each frozen paper's trending rank on the edition's day (day_trending_ranks)."""
    return edition_day_ranks(day=edition.date, paper_ids=edition.paper_ids)


def edition_day_ranks(*, day: datetime.date, paper_ids: Iterable[int]) -> dict[int, int]:
    """The day's trending ranks (day_trending_ranks) of these papers."""
    wanted = set(paper_ids)
    return {pid: rank for pid, rank in day_trending_ranks(day=day).items() if pid in wanted}


def day_trending_ranks(*, day: datetime.date) -> dict[int, int]:
    """Each paper's place, from 1, in the day's trending order: best source rank, then most upvotes, then id.

    The rank a reader sees (digest reasons, the email's and the edition pages' "trending #3", trending_rank_words), so it
    is unique: each imported file numbers its own papers from 1, and a late one-item file for a
    day that already has a #1 would otherwise show a second "#1". Papers seen only on arXiv that
    day have none (a place in a feed sorted by submission date is no trending signal). Hidden
    papers keep their place, unseen: a hide during the fan-out must not renumber the papers that
    readers already sent got.
    """
    ids = (
        TrendingEntry.objects.filter(date=day)
        .exclude(source__in=TrendingEntry.UNRANKED_SOURCES)
        .values("paper_id")
        .annotate(best=Min("rank"), votes=Max("upvotes"))
        .order_by("best", "-votes", "paper_id")
        .values_list("paper_id", flat=True)
    )
    return {pid: place for place, pid in enumerate(ids, start=1)}
