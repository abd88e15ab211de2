"""arXiv API responses: an Atom feed of ``<entry>`` elements.

feedparser does the XML and the Atom/arXiv namespaces. It is deliberately lenient
(it returns whatever it could read from a broken document), so this module checks
the "bozo" flag and the feed version itself and refuses anything that is not a
whole, well-formed Atom feed.
"""

import datetime
import time

import feedparser

from .records import PaperRecord, SourceError, arxiv_id_from, check_record, decode_text, normalize_space

SOURCE = "arxiv"


def _entry_record(entry, *, position: int, date: datetime.date | None) -> PaperRecord:
    raw_id = entry.get("id", "")
    if "/api/errors" in raw_id:
        raise ValueError(f"the arXiv API answered with an error: {normalize_space(entry.get('summary', ''))}")
    arxiv_id = arxiv_id_from(raw_id)
    if arxiv_id is None:
        raise ValueError(f"id: {raw_id!r} is not an arXiv abstract URL")
    title = normalize_space(entry.get("title", ""))
    if not title:
        raise ValueError("title: missing")
    abstract = normalize_space(entry.get("summary", ""))
    if not abstract:
        raise ValueError("summary: missing")
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        raise ValueError("published: missing or not a date")
    published_on = datetime.date(*parsed[:3])

    abs_url = pdf_url = ""
    for link in entry.get("links", []):
        href = link.get("href", "")
        if link.get("title") == "pdf" or link.get("type") == "application/pdf":
            pdf_url = href
        elif link.get("rel") == "alternate":
            abs_url = href
    # arxiv.org links come with the version; the paper is the same whatever the version.
    abs_url = f"https://arxiv.org/abs/{arxiv_id}" if abs_url else ""
    pdf_url = f"https://arxiv.org/pdf/{arxiv_id}" if pdf_url else ""

    categories = []
    primary = (entry.get("arxiv_primary_category") or {}).get("term")
    for term in [primary] + [tag.get("term") for tag in entry.get("tags", [])]:
        if term and term not in categories:
            categories.append(term)

    return PaperRecord(
        arxiv_id=arxiv_id,
        title=title,
        abstract=abstract,
        authors=[normalize_space(a.get("name", "")) for a in entry.get("authors", []) if a.get("name", "").strip()],
        published_on=published_on,
        abs_url=abs_url or f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=pdf_url or f"https://arxiv.org/pdf/{arxiv_id}",
        categories=categories,
        trending_date=date or published_on,
        rank=position,
        source=SOURCE,
    )


def parse(data: bytes, *, name: str = "", date: datetime.date | None = None) -> list[PaperRecord]:
    """Parse an arXiv API feed. Each entry is dated by ``date`` or else its published day."""
    decode_text(data, name=name)  # empty, binary and non-UTF-8 input get the same errors as elsewhere
    feed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
    if feed.bozo:
        exc = feed.bozo_exception
        line = exc.getLineNumber() if hasattr(exc, "getLineNumber") else None
        message = exc.getMessage() if hasattr(exc, "getMessage") else str(exc)
        raise SourceError(f"not well-formed XML ({message}): truncated or not an Atom feed", name=name, line=line)
    if feed.version != "atom10":
        raise SourceError(f"not an Atom feed (looks like {feed.version or 'something else'})", name=name, line=1)
    records = []
    for position, entry in enumerate(feed.entries, 1):
        try:
            record = _entry_record(entry, position=position, date=date)
        except ValueError as exc:
            raise SourceError(str(exc), name=name, item=position) from None
        records.append(check_record(record, name=name, item=position))
    return records
