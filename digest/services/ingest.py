"""papers_ingest: write parsed paper records into the catalogue.

One paper is one row however many sources and days mention it: a record matches an
existing paper by arXiv id (versions are already stripped) or, failing that, by
title fingerprint. Metadata from the newest day wins; older records only fill
fields that are still empty. Each appearance (paper, day, source) is one
TrendingEntry row, written once and refreshed (rank, upvotes) when seen again, until
that day's edition freezes.
A day whose edition froze before the import commits gets its new papers appended
(editions.edition_late_papers_add).

Work is done in chunks of CHUNK_SIZE records with a fixed number of queries each
(lookups by arXiv id and by fingerprint, the papers' latest days, one insert, one
bulk update, one upsert of appearances), so a 50,000-paper import costs about a
hundred queries, not a few per paper.
"""

import datetime
import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from digest.arxiv_taxonomy import is_arxiv_category, unknown_described
from digest.models import Edition, Paper, TrendingEntry
from digest.services.editions import edition_late_papers_add
from digest.signals import papers_changed
from digest.sources import PaperRecord, parse_papers
from digest.sources.records import gc_paused
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
    # Appearances (paper, day, source) first recorded now for papers already known: an import of
    # known papers on a new day adds to that day's digest while "0 new, 0 updated" says nothing did.
    known_trending_again: int = 0

    def __add__(self, other: "IngestResult") -> "IngestResult":
        return IngestResult(
            new=self.new + other.new,
            updated=self.updated + other.updated,
            unchanged=self.unchanged + other.unchanged,
            paper_ids=list(dict.fromkeys(self.paper_ids + other.paper_ids)),
            known_trending_again=self.known_trending_again + other.known_trending_again,
        )

    def summary(self) -> str:
        again = f"; {self.known_trending_again} known trending on a new day" if self.known_trending_again else ""
        return f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged{again}"


class _Run:
    """State of one papers_ingest call across its chunks."""

    def __init__(self):
        self.status: dict[int, str] = {}  # paper pk -> strongest status seen in this call
        self.entries_written: set[tuple[int, datetime.date, str]] = set()
        self.known_trending_again = 0

    def mark(self, pk: int, status: str) -> None:
        if _PRIORITY[status] > _PRIORITY.get(self.status.get(pk), -1):
            self.status[pk] = status


def papers_ingest(*, records: Iterable[PaperRecord], chunk_size: int = CHUNK_SIZE, announce: bool = True) -> IngestResult:
    """Create or update papers and their trending entries; all or nothing.

    Sends ``papers_changed(paper_ids=[...])`` after the surrounding transaction
    commits, for papers that were created or changed, unless ``announce=False``
    (the caller classifies them itself). Ingesting the same records twice changes
    nothing the second time (not even ``updated_at``).
    """
    run = _Run()
    with gc_paused(), transaction.atomic():
        iterator = iter(records)
        while chunk := list(itertools.islice(iterator, chunk_size)):
            _ingest_chunk(chunk, run)
        changed = [pk for pk, status in run.status.items() if status != UNCHANGED]
        if changed and announce:
            transaction.on_commit(lambda: papers_changed.send(sender=papers_ingest, paper_ids=changed))
        # After commit, when the entries are visible to a freeze: a paper of a day whose edition
        # froze before this import is appended to it (and carried into the next edition). Every
        # importer comes through here. Robust: the import stands; the next one of the day retries.
        days = sorted({day for _, day, _ in run.entries_written})
        if days:
            transaction.on_commit(lambda: edition_late_papers_add(days=days), robust=True)
    counts = {NEW: 0, UPDATED: 0, UNCHANGED: 0}
    for status in run.status.values():
        counts[status] += 1
    return IngestResult(
        new=counts[NEW],
        updated=counts[UPDATED],
        unchanged=counts[UNCHANGED],
        paper_ids=changed,
        known_trending_again=run.known_trending_again,
    )


class _Row:
    """A paper while it is being ingested: its metadata plus what happened to it."""

    __slots__ = ("pk", "arxiv_id", "fingerprint", *METADATA_FIELDS, "new", "changed", "latest")

    def __init__(self, *, pk=None, new=False, latest=None, **values):
        self.pk = pk
        self.new = new
        self.latest = latest  # the newest day whose metadata this row holds
        self.changed: set[str] = set()
        for name, value in values.items():
            setattr(self, name, value)


LOOKUP_COLUMNS = ["id", "arxiv_id", "fingerprint", *METADATA_FIELDS]


def _ingest_chunk(records: list[PaperRecord], run: _Run) -> None:
    arxiv_ids = {record.arxiv_id for record in records if record.arxiv_id}
    fingerprints = {record.fingerprint for record in records}
    by_arxiv: dict[str, _Row] = {}
    by_fingerprint: dict[str, _Row] = {}
    existing: dict[int, _Row] = {}
    # Two queries, each on its unique index (an OR of two long IN lists can make PostgreSQL scan the table).
    found = list(Paper.objects.filter(arxiv_id__in=arxiv_ids).values_list(*LOOKUP_COLUMNS)) if arxiv_ids else []
    fingerprints -= {values[2] for values in found}
    found += Paper.objects.filter(fingerprint__in=fingerprints).exclude(pk__in=[values[0] for values in found]).values_list(
        *LOOKUP_COLUMNS
    )
    for values in found:
        row = _Row(**dict(zip(["pk", *LOOKUP_COLUMNS[1:]], values)))
        existing[row.pk] = row
        by_fingerprint[row.fingerprint] = row
        if row.arxiv_id:
            by_arxiv[row.arxiv_id] = row
    if existing:
        latest = TrendingEntry.objects.filter(paper_id__in=list(existing)).order_by().values_list("paper_id")
        for paper_id, day in latest.annotate(Max("date")):
            existing[paper_id].latest = day

    touched: dict[int, _Row] = {}  # by id(): new rows have no pk yet; first-seen order
    appearances: dict[tuple[int, datetime.date, str], tuple[_Row, PaperRecord]] = {}
    for record in records:
        row = (by_arxiv.get(record.arxiv_id) if record.arxiv_id else None) or by_fingerprint.get(record.fingerprint)
        if row is None:
            row = _Row(
                new=True,
                latest=record.trending_date,
                arxiv_id=record.arxiv_id,
                fingerprint=record.fingerprint,
                **{name: getattr(record, name) for name in METADATA_FIELDS},
            )
            if row.upvotes is None:
                row.upvotes = 0
            by_fingerprint[row.fingerprint] = row
            if row.arxiv_id:
                by_arxiv[row.arxiv_id] = row
        else:
            _merge(row, record, by_arxiv=by_arxiv, by_fingerprint=by_fingerprint)
        touched.setdefault(id(row), row)
        # The first record of a (paper, day, source) in this call sets its rank.
        appearances.setdefault((id(row), record.trending_date, record.source), (row, record))

    _insert_papers([row for row in touched.values() if row.new])
    _update_papers([row for row in touched.values() if not row.new and row.changed])
    for row in touched.values():
        run.mark(row.pk, NEW if row.new else UPDATED if row.changed else UNCHANGED)

    entries, known = [], set()
    for row, record in appearances.values():
        key = (row.pk, record.trending_date, record.source)
        if key not in run.entries_written:
            run.entries_written.add(key)
            entries.append((row.pk, record))
            if not row.new:
                known.add(key)
    if known:
        seen = TrendingEntry.objects.filter(
            paper_id__in={pk for pk, _, _ in known}, date__in={day for _, day, _ in known}
        ).values_list("paper_id", "date", "source")
        run.known_trending_again += len(known - set(seen))
    _upsert_entries(entries)


# Inserts are hand-built. The profile of a 50,000-paper import with bulk_create
# showed two thirds of the time in Django building the SQL and preparing each value
# field by field, in SQLite batches of only ~55 papers (Django assumes SQLite's old
# 999-parameter limit). SQLite gets multi-row INSERTs of ROWS_PER_STATEMENT rows
# (under its 32,766 parameters). PostgreSQL gets one INSERT ... SELECT FROM
# unnest(array, array, ...) per chunk: a short statement with one array per column,
# because psycopg spent most of the time parsing multi-row statements' placeholders.
ROWS_PER_STATEMENT = 1000
INSERT_FIELDS = ["arxiv_id", "fingerprint", *METADATA_FIELDS, "hidden", "pinned", "created_at", "updated_at"]


def _insert_many(model, names: list[str], rows: list[tuple], suffix: str = "", returning: str = "") -> list[tuple]:
    """INSERT rows (tuples in ``names`` order); with ``returning`` (SQLite >= 3.35 has it too) the returned rows."""
    ops = connection.ops
    fields = [model._meta.get_field(name) for name in names]
    head = f"INSERT INTO {ops.quote_name(model._meta.db_table)} ({', '.join(ops.quote_name(f.column) for f in fields)}) "
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            import psycopg

            # Django's cursors bind client-side (psycopg quotes each array element in
            # Python); a server-side-binding cursor on the same connection and
            # transaction sends the arrays in binary.
            arrays = ", ".join(f"%b::{f.db_type(connection)}[]" for f in fields)
            sql = f"{head}SELECT * FROM unnest({arrays}){suffix}" + (f" RETURNING {returning}" if returning else "")
            with psycopg.Cursor(connection.connection) as raw:
                raw.execute(sql, [list(column) for column in zip(*rows)])
                return raw.fetchall() if returning else []
        placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
        returned = []
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            batch = rows[start : start + ROWS_PER_STATEMENT]
            sql = f"{head}VALUES {', '.join([placeholders] * len(batch))}{suffix}"
            cursor.execute(sql + (f" RETURNING {returning}" if returning else ""), [value for row in batch for value in row])
            if returning:
                returned += cursor.fetchall()
    return returned


def _insert_papers(rows: list[_Row]) -> None:
    if not rows:
        return
    ops = connection.ops
    stamp = ops.adapt_datetimefield_value(timezone.now())
    values = [
        (
            row.arxiv_id,
            row.fingerprint,
            row.title,
            row.abstract,
            _json(row.authors),
            ops.adapt_datefield_value(row.published_on),
            row.page_url,
            row.abs_url,
            row.pdf_url,
            row.code_url,
            row.upvotes,
            _json(row.keywords),
            _json(row.categories),
            False,
            False,
            stamp,
            stamp,
        )
        for row in rows
    ]
    ids = {fingerprint: pk for pk, fingerprint in _insert_many(Paper, INSERT_FIELDS, values, returning="id, fingerprint")}
    for row in rows:
        row.pk = ids[row.fingerprint]


def _json(value: list) -> str:
    return json.dumps(value) if value else "[]"


def _update_papers(rows: list[_Row]) -> None:
    if not rows:
        return
    now = timezone.now()
    fields = sorted(set().union(*(row.changed for row in rows)) | {"updated_at"})
    papers = []
    for row in rows:
        paper = Paper(pk=row.pk, updated_at=now)
        for name in fields:
            if name != "updated_at":
                setattr(paper, name, getattr(row, name))
        papers.append(paper)
    Paper.objects.bulk_update(papers, fields, batch_size=500)


def _upsert_entries(entries: list[tuple[int, PaperRecord]]) -> None:
    """Write appearances; one seen again the same day from the same source gets its rank and votes refreshed,
    unless that day's edition has frozen (_frozen_days_entries)."""
    if not entries:
        return
    entries, kept = _frozen_days_entries(entries)
    if kept:
        _insert_many(TrendingEntry, *kept, suffix=" ON CONFLICT (paper_id, date, source) DO NOTHING")
    if not entries:
        return
    ops = connection.ops
    table = ops.quote_name(TrendingEntry._meta.db_table)
    stamp = ops.adapt_datetimefield_value(timezone.now())
    values = [
        (pk, ops.adapt_datefield_value(r.trending_date), r.rank, r.source, r.upvotes or 0, stamp) for pk, r in entries
    ]
    # Keys are unique within the call, so no statement touches a row twice (PostgreSQL refuses that).
    _insert_many(
        TrendingEntry,
        ["paper", "date", "rank", "source", "upvotes", "created_at"],
        values,
        suffix=(
            " ON CONFLICT (paper_id, date, source) DO UPDATE SET rank = EXCLUDED.rank, upvotes = EXCLUDED.upvotes"
            f" WHERE {table}.rank <> EXCLUDED.rank OR {table}.upvotes <> EXCLUDED.upvotes"
        ),
    )


def _frozen_days_entries(
    entries: list[tuple[int, PaperRecord]],
) -> tuple[list[tuple[int, PaperRecord]], tuple[list[str], list[tuple]] | None]:
    """Split off the appearances on days whose edition has frozen, as (names, rows) to insert.

    Readers' "trending #N" is the paper's place in the day's order (editions.day_trending_ranks),
    read while the edition sends. A re-fetch of the Hugging Face list ranks by the upvotes of the
    moment, so refreshing a frozen day would renumber it mid-send: two readers would be told
    different ranks for one paper, or a paper would lose its #1 to a late one. So a frozen day's
    entries are kept as they were, and a paper new to it is listed after the day's papers (its
    rank follows the source's highest that day), as it is appended to the edition.
    """
    days = {record.trending_date for _, record in entries}
    frozen = set(Edition.objects.filter(date__in=days, frozen_at__isnull=False).values_list("date", flat=True))
    if not frozen:
        return entries, None
    live = [(pk, r) for pk, r in entries if r.trending_date not in frozen]
    late = sorted(((pk, r) for pk, r in entries if r.trending_date in frozen), key=lambda e: e[1].rank)
    on_frozen = TrendingEntry.objects.filter(date__in=frozen)
    present = set(on_frozen.filter(paper_id__in={pk for pk, _ in late}).values_list("paper_id", "date", "source"))
    highest = {
        (day, source): top for day, source, top in on_frozen.values_list("date", "source").annotate(top=Max("rank"))
    }
    ops = connection.ops
    stamp = ops.adapt_datetimefield_value(timezone.now())
    rows = []
    for pk, r in late:
        key = (r.trending_date, r.source)
        if (pk, *key) in present:
            continue
        highest[key] = highest.get(key, 0) + 1
        rows.append((pk, ops.adapt_datefield_value(r.trending_date), highest[key], r.source, r.upvotes or 0, stamp))
    return live, (["paper", "date", "rank", "source", "upvotes", "created_at"], rows) if rows else None


def _merge(row: _Row, record: PaperRecord, *, by_arxiv: dict, by_fingerprint: dict) -> None:
    """Apply a record to a known paper: the newest day wins, older days only fill empty fields."""
    newer = row.latest is None or record.trending_date >= row.latest
    for name in METADATA_FIELDS:
        value = getattr(record, name)
        if value in EMPTY:
            continue  # the source does not know; never clear a field
        current = getattr(row, name)
        if current == value or (not newer and current not in EMPTY):
            continue
        if name == "title" and record.fingerprint != row.fingerprint:
            holder = by_fingerprint.get(record.fingerprint)
            if holder is not None and holder is not row:
                # Another paper already has this title (the two were imported before
                # anything linked them): keep ours rather than break the unique fingerprint.
                continue
            row.fingerprint = record.fingerprint
            by_fingerprint[row.fingerprint] = row
            row.changed.add("fingerprint")
        setattr(row, name, value)
        row.changed.add(name)
    if record.arxiv_id and not row.arxiv_id and record.arxiv_id not in by_arxiv:
        # by_arxiv holds every row with an id in this chunk, so the id is free.
        row.arxiv_id = record.arxiv_id
        by_arxiv[record.arxiv_id] = row
        row.changed.add("arxiv_id")
    if newer:
        row.latest = record.trending_date


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
        bad = [category for category in categories if not is_arxiv_category(category)]
        if bad:
            raise ValueError(f"not an arXiv category: {unknown_described(bad)} (like cs.LG or hep-th)")
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
