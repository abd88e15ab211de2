"""Hugging Face daily papers: the JSON list that ``/api/daily_papers`` returns.

Each item is ``{"paper": {"id", "title", "summary", "upvotes", "authors": [{"name"}],
"publishedAt", "submittedOnDailyAt", "githubRepo", "ai_keywords", ...}, "title",
"numComments", "publishedAt", ...}``. The paper id is an arXiv id. The list comes in submission
order; a paper's rank is its place by upvotes among the day's papers (_rank_by_upvotes).
"""

import datetime
import json

from .records import PaperRecord, SourceError, arxiv_id_from, check_record, decode_text, normalize_space

SOURCE = "hf"


def _day(value, *, field: str) -> datetime.date:
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected an ISO date string, got {type(value).__name__}")
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        raise ValueError(f"{field}: {value!r} is not an ISO date") from None


def _item_record(item, *, position: int, date: datetime.date | None) -> PaperRecord:
    """One item to a record; raises ValueError naming the field."""
    if not isinstance(item, dict):
        raise ValueError(f"expected an object, got {type(item).__name__}")
    paper = item.get("paper")
    if not isinstance(paper, dict):
        raise ValueError("paper: missing or not an object")

    raw_id = paper.get("id")
    if not isinstance(raw_id, str) or not raw_id.strip():
        raise ValueError("paper.id: missing")
    arxiv_id = arxiv_id_from(raw_id)
    if arxiv_id is None:
        raise ValueError(f"paper.id: {raw_id!r} is not an arXiv id")

    title = paper.get("title") or item.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("paper.title: missing")
    summary = paper.get("summary") or item.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        raise ValueError("paper.summary: missing")

    upvotes = paper.get("upvotes", item.get("upvotes", 0))
    if not isinstance(upvotes, int) or isinstance(upvotes, bool) or upvotes < 0:
        raise ValueError(f"paper.upvotes: {upvotes!r} is not a count")

    authors = paper.get("authors") or []
    if not isinstance(authors, list):
        raise ValueError("paper.authors: not a list")
    names = []
    for number, author in enumerate(authors):
        name = author.get("name") if isinstance(author, dict) else None
        if not isinstance(name, str):
            raise ValueError(f"paper.authors[{number}].name: missing")
        if name.strip():
            names.append(normalize_space(name))

    keywords = paper.get("ai_keywords") or []
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise ValueError("paper.ai_keywords: not a list of strings")

    code_url = paper.get("githubRepo") or ""
    if not isinstance(code_url, str):
        raise ValueError("paper.githubRepo: not a string")

    published_on = _day(paper["publishedAt"], field="paper.publishedAt") if paper.get("publishedAt") else None
    # The day the paper was featured, not its arXiv date: that is what "trending on" means.
    if date is None:
        for source, key in ((paper, "submittedOnDailyAt"), (item, "publishedAt"), (paper, "publishedAt")):
            if source.get(key):
                prefix = "paper." if source is paper else ""
                date = _day(source[key], field=prefix + key)
                break
        else:
            raise ValueError("publishedAt: missing (and no --date given)")

    return PaperRecord(
        arxiv_id=arxiv_id,
        title=normalize_space(title),
        abstract=normalize_space(summary),
        authors=names,
        published_on=published_on,
        page_url=f"https://huggingface.co/papers/{arxiv_id}",
        abs_url=f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        code_url=code_url.strip(),
        upvotes=upvotes,
        keywords=[normalize_space(k) for k in keywords if k.strip()],
        trending_date=date,
        rank=position,
        source=SOURCE,
    )


def parse(data: bytes, *, name: str = "", date: datetime.date | None = None) -> list[PaperRecord]:
    """Parse a daily_papers response. ``date`` overrides the day each item was featured."""
    text = decode_text(data, name=name)
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(f"not valid JSON ({exc.msg})", name=name, line=exc.lineno) from None
    if not isinstance(items, list):
        raise SourceError(f"expected a JSON list of papers, got {type(items).__name__}", name=name, line=1)
    del text
    records = []
    for index in range(len(items)):
        # Let each item's JSON go once it is a record: halves peak memory on big lists.
        item, items[index] = items[index], None
        position = index + 1
        try:
            record = _item_record(item, position=position, date=date)
        except ValueError as exc:
            raise SourceError(str(exc), name=name, item=position) from None
        records.append(check_record(record, name=name, item=position))
    _rank_by_upvotes(records)
    return records


def _rank_by_upvotes(records: list[PaperRecord]) -> None:
    """Number each day's papers from 1 by upvotes, most first; ties keep the file's order.

    The API lists a day's papers in submission order, not popularity: the Daily Papers page ranks
    them by upvotes, so that is what "trending #N" means for this source.
    """
    ranks: dict[datetime.date, int] = {}
    # sorted() is stable, so equal upvotes stay in file order.
    for record in sorted(records, key=lambda r: -r.upvotes):
        ranks[record.trending_date] = record.rank = ranks.get(record.trending_date, 0) + 1
