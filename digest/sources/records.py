"""The one shape every paper source produces, and the one error it raises."""

import codecs
import datetime
import gc
import re
from contextlib import contextmanager
from dataclasses import dataclass, field

from digest.models import title_fingerprint

# New-style ids (0704.0001 onwards, 4 or 5 digits after the dot) and old-style
# archive ids (hep-th/9901001), each with an optional version we drop.
ARXIV_ID_RE = re.compile(r"^(?P<id>\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?$")

TITLE_MAX_CHARS = 1000  # Paper.title
URL_MAX_CHARS = 500  # Paper.*_url


class SourceError(Exception):
    """A file or response that cannot be imported, with where and why.

    ``line`` is a 1-based line of the file; ``item`` a 1-based position in a list
    (an HF item, an Atom entry). ``str()`` gives ``name: line N: reason``.
    """

    def __init__(self, reason: str, *, name: str = "", line: int | None = None, item: int | None = None):
        self.reason = reason
        self.name = name
        self.line = line
        self.item = item
        super().__init__(str(self))

    def where(self) -> str:
        parts = []
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.item is not None:
            parts.append(f"item {self.item}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return ": ".join(part for part in (self.name, self.where(), self.reason) if part)

    def located(self, name: str) -> "SourceError":
        return SourceError(self.reason, name=name, line=self.line, item=self.item)


@dataclass(slots=True)
class PaperRecord:
    """One paper as one source saw it on one day.

    Empty values mean "this source does not know", never "clear the field".
    ``upvotes`` is None when the source has no votes (trending page, arXiv).
    """

    title: str
    abstract: str
    trending_date: datetime.date
    rank: int
    source: str
    arxiv_id: str | None = None
    authors: list[str] = field(default_factory=list)
    published_on: datetime.date | None = None
    page_url: str = ""
    abs_url: str = ""
    pdf_url: str = ""
    code_url: str = ""
    upvotes: int | None = None
    keywords: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    # Computed once from the title (it is asked for several times per record).
    fingerprint: str = field(init=False, default="")

    def __post_init__(self):
        self.fingerprint = title_fingerprint(self.title)


# Every ASCII character str.split() treats as whitespace, except a single space.
_ASCII_SPACE_RUNS = ("  ", "\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f")


def normalize_space(text: str) -> str:
    """Runs of whitespace to one space, trimmed."""
    if len(text) > 200 and text.isascii() and text[:1] != " " and text[-1:] != " ":
        # Most abstracts are already clean ASCII; ten substring scans are several
        # times cheaper than splitting 1,500 characters into words and joining them.
        for run in _ASCII_SPACE_RUNS:
            if run in text:
                break
        else:
            return text
    return " ".join(text.split())


def arxiv_id_from(value: str) -> str | None:
    """'2403.01234v2', 'arXiv:2403.01234', 'http://arxiv.org/abs/hep-th/9901001v1' -> id without version."""
    value = value.strip()
    for prefix in ("http://arxiv.org/abs/", "https://arxiv.org/abs/", "arXiv:", "arxiv:"):
        if value.startswith(prefix):
            value = value[len(prefix):]
    match = ARXIV_ID_RE.match(value)
    return match.group("id") if match else None


def check_record(record: PaperRecord, *, name: str, line: int | None = None, item: int | None = None) -> PaperRecord:
    """Reject what the database would reject, naming the field, before anything is written."""

    def fail(reason: str):
        raise SourceError(reason, name=name, line=line, item=item)

    if not record.fingerprint:
        fail(f"title {record.title!r} has no letters or digits")
    if len(record.title) > TITLE_MAX_CHARS:
        fail(f"title is {len(record.title)} characters long (at most {TITLE_MAX_CHARS})")
    if not record.abstract:
        fail(f"paper {record.title!r} has no abstract")
    for attr in ("page_url", "abs_url", "pdf_url", "code_url"):
        url = getattr(record, attr)
        if len(url) > URL_MAX_CHARS:
            fail(f"{attr} is {len(url)} characters long (at most {URL_MAX_CHARS})")
        if url and not url.startswith(("http://", "https://")):
            fail(f"{attr} {url[:80]!r} is not an http(s) URL")
    if record.upvotes is not None and record.upvotes < 0:
        fail(f"upvotes {record.upvotes} is negative")
    return record


def decode_text(data: bytes, *, name: str) -> str:
    """Bytes to text, refusing binary and non-UTF-8 input with the line it happened on."""
    if not data.strip():
        raise SourceError("empty file", name=name, line=1)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Windows tools save "Unicode" text as UTF-16 with a byte-order mark: readable, not binary.
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise SourceError(f"not valid UTF-16 text ({exc.reason} at offset {exc.start})", name=name, line=1) from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise SourceError("binary data (a NUL byte), not a paper list", name=name, line=data.count(b"\n", 0, nul) + 1)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SourceError(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})", name=name, line=line) from None


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector around a bulk parse or ingest.

    A big import allocates millions of objects that all live until it ends; the
    collector re-scans them again and again (a quarter of the CPU time of the
    50,000-paper benchmark). Reference counting still frees everything; cycles
    wait for the next collection after we re-enable it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
