"""papers_ingest: write parsed paper records into the catalogue.

One paper is one row however many sources and days mention it: a record matches an
existing paper by arXiv id (versions are already stripped) or, failing that, by
title fingerprint. Metadata from the newest day wins; older records only fill
fields that are still empty. Each appearance (paper, day, source) is one
TrendingEntry row, written once and refreshed (rank, upvotes) when seen again.

Work is done in chunks with a fixed number of queries each (one lookup, one
"latest day" aggregate, bulk insert, bulk update, bulk upsert), so a 50,000-paper
import costs a few hundred queries, not a few per paper.
"""

import datetime
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from digest.models import Paper, TrendingEntry
from digest.signals import papers_changed
from digest.sources import PaperRecord, parse_papers
from digest.sources.download import fetch_bytes

CHUNK_SIZE = 2000
# Fields a record can set; hidden/pinned/embedding belong to curators and matching.
METADATA_FIELDS = [
    "title",
    "abstract",
    "authors",
    "published_on",
    "page_url",
    "abs_url",
    "pdf_url",
    "code_url",
    "upvotes",
    "keywords",
    "categories",
]
EMPTY = (None, "", [])

NEW, UPDATED, UNCHANGED = "new", "updated", "unchanged"
_PRIORITY = {UNCHANGED: 0, UPDATED: 1, NEW: 2}


@dataclass
class IngestResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    # Papers created or changed, in first-seen order (what papers_changed carries).
    paper_ids: list[int] = field(default_factory=list)

    def __add__(self, other: "IngestResult") -> "IngestResult":
        return IngestResult(
            new=self.new + other.new,
            updated=self.updated + other.updated,
            unchanged=self.unchanged + other.unchanged,
            paper_ids=self.paper_ids + [pk for pk in other.paper_ids if pk not in set(self.paper_ids)],
        )

    def summary(self) -> str:
        return f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged"


class _Run:
    """State of one papers_ingest call across its chunks."""

    def __init__(self):
        self.status: dict[int, str] = {}  # paper pk -> strongest status seen in this call
        self.entries_written: set[tuple[int, datetime.date, str]] = set()

    def mark(self, pk: int, status: str) -> None:
        if _PRIORITY[status] > _PRIORITY.get(self.status.get(pk), -1):
            self.status[pk] = status


def papers_ingest(*, records: Iterable[PaperRecord], chunk_size: int = CHUNK_SIZE) -> IngestResult:
    """Create or update papers and their trending entries; all or nothing.

    Sends ``papers_changed(paper_ids=[...])`` after the surrounding transaction
    commits, for papers that were created or changed. Ingesting the same records
    twice changes nothing the second time (not even ``updated_at``).
    """
    run = _Run()
    with transaction.atomic():
        iterator = iter(records)
        while chunk := list(itertools.islice(iterator, chunk_size)):
            _ingest_chunk(chunk, run)
        changed = [pk for pk, status in run.status.items() if status != UNCHANGED]
        if changed:
            transaction.on_commit(lambda: papers_changed.send(sender=papers_ingest, paper_ids=changed))
    counts = {NEW: 0, UPDATED: 0, UNCHANGED: 0}
    for status in run.status.values():
        counts[status] += 1
    return IngestResult(new=counts[NEW], updated=counts[UPDATED], unchanged=counts[UNCHANGED], paper_ids=changed)


def _ingest_chunk(records: list[PaperRecord], run: _Run) -> None:
    fingerprints = [record.fingerprint for record in records]
    arxiv_ids = {record.arxiv_id for record in records if record.arxiv_id}

    found = Paper.objects.filter(Q(arxiv_id__in=arxiv_ids) | Q(fingerprint__in=set(fingerprints))).only(
        "id", "arxiv_id", "fingerprint", *METADATA_FIELDS
    )
    by_arxiv: dict[str, Paper] = {}
    by_fingerprint: dict[str, Paper] = {}
    for paper in found:
        paper._changed = set()
        paper._new = False
        paper._latest = None
        if paper.arxiv_id:
            by_arxiv[paper.arxiv_id] = paper
        by_fingerprint[paper.fingerprint] = paper
    existing = {paper.pk: paper for paper in by_fingerprint.values()} | {p.pk: p for p in by_arxiv.values()}
    if existing:
        latest = (
            TrendingEntry.objects.filter(paper_id__in=list(existing))
            .order_by()
            .values_list("paper_id")
            .annotate(Max("date"))
        )
        for paper_id, day in latest:
            existing[paper_id]._latest = day

    touched: dict[int, Paper] = {}  # by id(): unsaved papers have no pk yet; first-seen order
    appearances: dict[tuple[int, datetime.date, str], tuple[Paper, PaperRecord]] = {}
    for record, fingerprint in zip(records, fingerprints):
        paper = (by_arxiv.get(record.arxiv_id) if record.arxiv_id else None) or by_fingerprint.get(fingerprint)
        if paper is None:
            paper = _new_paper(record, fingerprint)
            by_fingerprint[fingerprint] = paper
            if record.arxiv_id:
                by_arxiv[record.arxiv_id] = paper
        else:
            _merge(paper, record, fingerprint, by_arxiv=by_arxiv, by_fingerprint=by_fingerprint)
        touched.setdefault(id(paper), paper)
        # The first record of a (paper, day, source) in this call sets its rank.
        appearances.setdefault((id(paper), record.trending_date, record.source), (paper, record))

    created = [paper for paper in touched.values() if paper._new]
    changed = [paper for paper in touched.values() if not paper._new and paper._changed]
    if created:
        Paper.objects.bulk_create(created)
    if changed:
        now = timezone.now()
        fields = {"updated_at"}
        for paper in changed:
            paper.updated_at = now
            fields |= paper._changed
        Paper.objects.bulk_update(changed, sorted(fields), batch_size=500)
    for paper in touched.values():
        run.mark(paper.pk, NEW if paper._new else UPDATED if paper._changed else UNCHANGED)

    entries = []
    for paper, record in appearances.values():
        key = (paper.pk, record.trending_date, record.source)
        if key in run.entries_written:
            continue
        run.entries_written.add(key)
        entries.append(
            TrendingEntry(
                paper_id=paper.pk,
                date=record.trending_date,
                rank=record.rank,
                source=record.source,
                upvotes=record.upvotes or 0,
            )
        )
    if entries:
        # Seen again the same day from the same source: refresh rank and votes.
        TrendingEntry.objects.bulk_create(
            entries,
            update_conflicts=True,
            unique_fields=["paper", "date", "source"],
            update_fields=["rank", "upvotes"],
        )


def _values(record: PaperRecord) -> dict:
    return {name: getattr(record, name) for name in METADATA_FIELDS}


def _new_paper(record: PaperRecord, fingerprint: str) -> Paper:
    values = {name: value for name, value in _values(record).items() if value is not None}
    paper = Paper(arxiv_id=record.arxiv_id, fingerprint=fingerprint, **values)
    paper._new = True
    paper._changed = set()
    paper._latest = record.trending_date
    return paper


def _merge(paper: Paper, record: PaperRecord, fingerprint: str, *, by_arxiv: dict, by_fingerprint: dict) -> None:
    """Apply a record to a known paper: newest day wins, older days only fill gaps."""
    newer = paper._latest is None or record.trending_date >= paper._latest
    for name, value in _values(record).items():
        if value in EMPTY:
            continue  # the source does not know; never clear a field
        current = getattr(paper, name)
        if current == value or (not newer and current not in EMPTY):
            continue
        if name == "title" and fingerprint != paper.fingerprint:
            # Another row already has this title (both were imported before they
            # could be linked): keep ours rather than break the unique fingerprint.
            holder = by_fingerprint.get(fingerprint)
            if holder is not None and holder is not paper:
                continue
            paper.fingerprint = fingerprint
            by_fingerprint[fingerprint] = paper
            paper._changed.add("fingerprint")
        setattr(paper, name, value)
        paper._changed.add(name)
    if record.arxiv_id and not paper.arxiv_id and record.arxiv_id not in by_arxiv:
        # by_arxiv holds every row with an id in this chunk, so the id is free.
        paper.arxiv_id = record.arxiv_id
        by_arxiv[record.arxiv_id] = paper
        paper._changed.add("arxiv_id")
    if newer:
        paper._latest = record.trending_date


ARXIV_CATEGORY_RE = re.compile(r"^[a-z][a-z-]*(\.[A-Za-z][A-Za-z-]*)?$")


def papers_fetch(
    *,
    source: str,
    date: datetime.date | None = None,
    categories: list[str] | None = None,
    max_results: int = 200,
) -> IngestResult:
    """Fetch one source over HTTP and ingest it. Raises FetchError or SourceError; nothing is kept then.

    hf: settings.HF_DAILY_PAPERS_URL, the papers featured on ``date`` (default: the latest day).
    arxiv: settings.ARXIV_API_URL, the newest papers in ``categories`` (default:
    settings.ARXIV_CATEGORIES), only those submitted on ``date`` when given.
    """
    if source == "hf":
        url, format = settings.HF_DAILY_PAPERS_URL, "hf-json"
        params = {"date": date.isoformat()} if date else {}
    elif source == "arxiv":
        url, format = settings.ARXIV_API_URL, "arxiv-atom"
        categories = categories or settings.ARXIV_CATEGORIES
        bad = [category for category in categories if not ARXIV_CATEGORY_RE.match(category)]
        if bad:
            raise ValueError(f"not an arXiv category: {', '.join(bad)} (like cs.LG or hep-th)")
        query = " OR ".join(f"cat:{category}" for category in categories)
        if date:
            day = date.strftime("%Y%m%d")
            query = f"({query}) AND submittedDate:[{day}0000 TO {day}2359]"
        params = {"search_query": query, "sortBy": "submittedDate", "sortOrder": "descending", "max_results": max_results}
    else:
        raise ValueError(f"unknown source {source!r}: choose hf or arxiv")
    data = fetch_bytes(url, params=params)
    records = parse_papers(data, name=f"GET {url}", format=format, date=date)
    return papers_ingest(records=records)
