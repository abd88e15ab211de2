"""The trending page as text (what `demo/*.txt` holds).

    new
    Get trending papers in your email inbox!
    Subscribe
    byAK and the research community
    Mar 12
    <title>
    <abstract>
    <title>
    ...

Lines are separated by blank lines; the first line matching ``Mon D`` is the page's
date and everything after it alternates title, abstract. The page carries no year
and no arXiv ids: papers are matched by title fingerprint, and the year comes from
a reference day (see `page_date`).
"""

import datetime
import re

from django.utils import timezone

from .records import PaperRecord, SourceError, check_record, decode_text, normalize_space

SOURCE = "trending-page"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
DATE_LINE_RE = re.compile(r"^(?P<month>[A-Z][a-z]{2})[a-z]*\.? (?P<day>\d{1,2})$")
# The page's header is a handful of short lines; a date further down means this is not a trending page.
HEADER_MAX_LINES = 8
# Real titles are well under this, real abstracts well over it. It is how a title
# that lost its abstract is told apart from an abstract (see `parse`).
TITLE_MAX_CHARS = 300


def page_date(month: int, day: int, *, reference: datetime.date) -> datetime.date:
    """The most recent ``month``/``day`` on or before ``reference``.

    Feb 29 goes back to the last leap year; a day later in the year than
    ``reference`` is last year's.
    """
    for year in range(reference.year, reference.year - 9, -1):
        try:
            candidate = datetime.date(year, month, day)
        except ValueError:  # Feb 29 in a common year
            continue
        if candidate <= reference:
            return candidate
    raise ValueError(f"no {month}/{day} in the eight years before {reference}")


def _date_from_line(text: str) -> tuple[int, int] | None:
    match = DATE_LINE_RE.match(text)
    if not match or match["month"] not in MONTHS:
        return None
    return MONTHS.index(match["month"]) + 1, int(match["day"])


def parse(data: bytes, *, name: str = "", date: datetime.date | None = None) -> list[PaperRecord]:
    """Parse a trending page. ``date`` is the reference day for the year (default: today).

    When ``date`` is the page's own day it is taken as is; otherwise the page's
    ``Mon D`` is placed in the most recent year that keeps it on or before ``date``.
    """
    text = decode_text(data, name=name)
    paragraphs = [(number, normalize_space(line)) for number, line in enumerate(text.splitlines(), 1) if line.strip()]

    def fail(reason: str, line: int):
        raise SourceError(reason, name=name, line=line)

    found = None
    for index, (number, line) in enumerate(paragraphs[:HEADER_MAX_LINES]):
        month_day = _date_from_line(line)
        if month_day:
            found = index, number, month_day
            break
    if found is None:
        fail(f"no date line like 'Mar 12' in the first {HEADER_MAX_LINES} lines: not a trending page", 1)
    index, date_line, (month, day) = found
    try:
        trending_date = page_date(month, day, reference=date or timezone.localdate())
    except ValueError:
        fail(f"{paragraphs[index][1]!r} is not a date", date_line)

    body = paragraphs[index + 1:]
    if not body:
        fail("no papers after the date line", date_line)
    records = []
    for pair_start in range(0, len(body), 2):
        title_line, title = body[pair_start]
        if len(title) > TITLE_MAX_CHARS:
            fail(
                f"expected a title, found {len(title)} characters of text "
                "(an abstract without a title, or two abstracts in a row)",
                title_line,
            )
        if pair_start + 1 == len(body):
            fail(f"title {title!r} has no abstract (the file ends here: truncated?)", title_line)
        abstract_line, abstract = body[pair_start + 1]
        following = body[pair_start + 2][1] if pair_start + 2 < len(body) else None
        if len(abstract) <= TITLE_MAX_CHARS and following is not None and len(following) > TITLE_MAX_CHARS:
            # A short paragraph followed by a long one: the short one is the next
            # title, so this title lost its abstract.
            fail(f"title {title!r} has no abstract (line {abstract_line} looks like the next title)", title_line)
        if _date_from_line(title):
            fail(f"a second date line {title!r}: two pages in one file?", title_line)
        record = PaperRecord(
            title=title,
            abstract=abstract,
            trending_date=trending_date,
            rank=len(records) + 1,
            source=SOURCE,
        )
        records.append(check_record(record, name=name, line=title_line))
    return records
