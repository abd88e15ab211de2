"""Paper sources: one module per format, each `parse(data, name=, date=)` -> list[PaperRecord].

`parse_papers` picks the module, by name or by sniffing the first bytes.
"""

import datetime

from . import arxiv_atom, hf_daily, trending_page
from .records import PaperRecord, SourceError, decode_text, gc_paused

PARSERS = {
    "trending-page": trending_page.parse,
    "hf-json": hf_daily.parse,
    "arxiv-atom": arxiv_atom.parse,
}
FORMATS = ["auto", *PARSERS]

__all__ = ["FORMATS", "PARSERS", "PaperRecord", "SourceError", "detect_format", "parse_papers"]


def detect_format(data: bytes, *, name: str = "") -> str:
    """JSON starts with [ or {, XML with <; anything else that is text is taken for a trending page."""
    text = decode_text(data, name=name).lstrip()
    if text.startswith(("[", "{")):
        return "hf-json"
    if text.startswith("<"):
        return "arxiv-atom"
    return "trending-page"


def parse_papers(
    data: bytes, *, name: str = "", format: str = "auto", date: datetime.date | None = None
) -> list[PaperRecord]:
    if format == "auto":
        format = detect_format(data, name=name)
    try:
        parser = PARSERS[format]
    except KeyError:
        raise ValueError(f"unknown format {format!r}; choose from {', '.join(FORMATS)}") from None
    with gc_paused():
        return parser(data, name=name, date=date)
