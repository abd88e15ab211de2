"""Read-only selectors: the digest of each subscriber for a day, as `Pick`s with reasons."""

import datetime
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db.models import F, Max, Min, Q

from digest.models import Paper, PaperTopic, SentPaper, Topic, TrendingEntry
from digest.services.editions import day_period, day_trending_ranks, trending_rank_words

from . import ranking, semantic, vectors
from .scoring import PaperSet, TopicSpec, phrase_texts
from .semantic import from_bytes
from .text import Phrase, contains_phrase, parse_interests, tokens

SUBSCRIBER_CHUNK = 20000
PHRASE_BATCH = 4096


@dataclass
class Pick:
    paper_id: int
    paper: Paper
    score: float
    reasons: list[str] = field(default_factory=list)
    trending: bool = False  # a top-up pick: chosen because it trends, not because it matches
    pinned: bool = False
    # The day's trending rank when a reason already says it ("trending #3 today"): the email
    # then does not print it a second time.
    rank_in_reasons: int | None = None
    # The paper's trending rank in the ranked window (the week's for a weekly reader), cited or not:
    # a weekly email's meta line shows this, not the edition day's rank, so two papers never both read #1.
    window_rank: int | None = None


@dataclass
class Day:
    """The candidate papers of one day, indexed and scored once."""

    date: datetime.date
    papers: list[Paper]
    paperset: PaperSet
    topics: list[Topic]
    topic_scores: np.ndarray
    pinned: np.ndarray
    trending_pos: np.ndarray
    # What reasons call the paper's trending rank: its place in the day's trending order
    # (editions.day_trending_ranks), the number the edition's page and the email's other papers show.
    trending_rank: np.ndarray | None = None
    # Papers whose only entries in the window come from arXiv (no trending signal): "new on arXiv".
    new_only: np.ndarray | None = None
    # Days the trend is read over, ending at `date`: 1 for daily readers, 7 for weekly ones, whose
    # digest is the week's papers ("trending #2 this week").
    window_days: int = 1
    # Phrases scored against these papers so far, kept for the next chunk (a day's readers share
    # most phrases; a phrase scores the same in any batch, see PaperSet.phrase_scores).
    phrase_table: "PhraseTable | None" = field(default=None, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def paper_ids(self) -> list[int]:
        return [p.id for p in self.papers]


def candidate_ids_for_day(day: datetime.date) -> list[int]:
    """The day's trending papers by best rank, pinned papers first; hidden papers never."""
    trending = (
        TrendingEntry.objects.filter(date=day, paper__hidden=False)
        .values("paper_id")
        .annotate(best=Min("rank"), votes=Max("upvotes"))
        .order_by("best", "-votes", "paper_id")
    )
    ids = [row["paper_id"] for row in trending]
    pinned = list(Paper.objects.filter(pinned=True, hidden=False).order_by("id").values_list("id", flat=True))
    return list(dict.fromkeys(pinned + ids))


def latest_trending_date() -> datetime.date | None:
    return TrendingEntry.objects.aggregate(latest=Max("date"))["latest"]


def _topic_matrix(paperset: PaperSet, topics: list[Topic], papers: list[Paper]) -> np.ndarray:
    """Stored classifier scores where present, computed ones otherwise; curator overrides win."""
    scores = paperset.topic_scores.copy()
    col = {p.id: j for j, p in enumerate(papers)}
    row = {t.id: i for i, t in enumerate(topics)}
    for paper_id, topic_id, score, override in PaperTopic.objects.filter(
        paper_id__in=col, topic_id__in=row
    ).values_list("paper_id", "topic_id", "score", "override"):
        i, j = row[topic_id], col[paper_id]
        scores[i, j] = 1.0 if override is True else 0.0 if override is False else score
    return scores


_cache: "OrderedDict[tuple, Day]" = OrderedDict()
_cache_lock = threading.Lock()


def day_load(
    *, day: datetime.date, candidate_ids: Sequence[int] | None = None, method: str | None = None, window_days: int = 1
) -> Day:
    """Index the candidates once. Cached in-process by everything the scores depend on.

    window_days > 1: trending ranks are the best over the days up to `day` (a weekly digest).
    """
    ids = list(candidate_ids) if candidate_ids is not None else candidate_ids_for_day(day)
    # The stamp reads only what it compares: the full rows (abstracts, 3 KB embeddings) are loaded
    # once per change, not for every chunk of every edition.
    current = {
        pk: (updated_at, pinned)
        for pk, updated_at, pinned, hidden in Paper.objects.filter(pk__in=ids).values_list("id", "updated_at", "pinned", "hidden")
        if not hidden
    }
    paper_ids = [i for i in dict.fromkeys(ids) if i in current]
    topics = list(Topic.objects.filter(active=True).order_by("position", "name", "id"))
    method = method or settings.MATCHING_METHOD
    stamp = (
        day,
        window_days,
        method,
        tuple((i, *current[i]) for i in paper_ids),
        tuple((t.id, t.name, t.description, t.query) for t in topics),
        PaperTopic.objects.filter(paper_id__in=paper_ids).aggregate(n=Max("id"))["n"],
    )
    with _cache_lock:
        if stamp in _cache:
            _cache.move_to_end(stamp)
            return _cache[stamp]
    by_id = Paper.objects.in_bulk(paper_ids)
    papers = [by_id[i] for i in paper_ids if i in by_id and not by_id[i].hidden]

    docs = [(p.title, p.abstract) for p in papers]
    specs = [TopicSpec(t.id, t.name, t.description, t.query) for t in topics]
    embeddings = None
    from .scoring import resolve_method

    if resolve_method(method) != "lexical":
        vectors.phrase_vectors_require(texts=[spec.text for spec in specs])
    if resolve_method(method) != "lexical" and papers:
        stored = [from_bytes(p.embedding) for p in papers]
        if all(v is not None for v in stored):
            embeddings = np.stack(stored)
        elif not semantic.model_allowed():  # sending: the matching worker stores them first
            raise vectors.VectorsMissing(paper_ids=[p.id for p, v in zip(papers, stored) if v is None])
        else:  # the worker has not embedded some yet: compute them now (not stored; selectors only read)
            from .scoring import embed_papers

            missing = [j for j, v in enumerate(stored) if v is None]
            fresh = embed_papers([docs[j] for j in missing])
            for j, vector in zip(missing, fresh):
                stored[j] = vector
            embeddings = np.stack(stored)
    paperset = PaperSet(docs=docs, topics=specs, method=method, embeddings=embeddings)
    # Ranks come from sources with a trending signal. A paper seen only on arXiv in the window (its
    # rank is a position in a feed sorted by submission date) comes after every paper that trends,
    # so the top-up takes those first, and its reasons cite no rank: it is "new on arXiv".
    signal = Min("rank", filter=~Q(source__in=TrendingEntry.UNRANKED_SOURCES))
    trending_rank: dict[int, int] = {}
    best_rank: dict[int, int] = {}
    new_only: set[int] = set()
    for paper_id, best, listed in (
        TrendingEntry.objects.filter(
            date__range=(day - datetime.timedelta(days=window_days - 1), day), paper_id__in=[p.id for p in papers]
        )
        .values("paper_id")
        .annotate(best=signal, listed=Min("rank"), votes=Max("upvotes"))
        .order_by(F("best").asc(nulls_last=True), *(["-votes"] if window_days > 1 else []), "listed", "paper_id")
        .values_list("paper_id", "best", "listed")
    ):
        trending_rank[paper_id] = len(trending_rank) + 1
        if best is None:
            new_only.add(paper_id)
        else:
            best_rank[paper_id] = best
    if window_days > 1:  # each day has a #1: over a week a paper's place in the week's order is its rank
        best_rank = {pid: rank for pid, rank in trending_rank.items() if pid not in new_only}
    elif best_rank:
        # Each file numbers its papers from 1 (a late one-item file has a #1 too): the rank readers
        # see is the paper's place in the day's order, the number the edition's page and the email's
        # meta lines show (editions.day_trending_ranks).
        day_ranks = day_trending_ranks(day=day)
        best_rank = {pid: day_ranks[pid] for pid in best_rank if pid in day_ranks}
    if not trending_rank:  # an edition of papers without that day's entries: its own order is the trend
        trending_rank = {p.id: j + 1 for j, p in enumerate(papers)}
        best_rank = trending_rank
    result = Day(
        date=day,
        papers=papers,
        paperset=paperset,
        topics=topics,
        topic_scores=_topic_matrix(paperset, topics, papers),
        pinned=np.array([p.pinned for p in papers], dtype=bool),
        trending_pos=np.array([trending_rank.get(p.id, 0) for p in papers], dtype=np.int32),
        trending_rank=np.array([best_rank.get(p.id, 0) for p in papers], dtype=np.int32),
        new_only=np.array([p.id in new_only for p in papers], dtype=bool),
        window_days=window_days,
    )
    with _cache_lock:
        _cache[stamp] = result
        while len(_cache) > 4:
            _cache.popitem(last=False)
    return result


class PhraseTable:
    """Distinct interest phrases across subscribers, each scored once against the day's papers."""

    def __init__(self, paperset: PaperSet):
        self.paperset = paperset
        self.index: dict[str, int] = {}
        self.phrases: list[Phrase] = []
        self._blocks: list[np.ndarray] = []
        self._scored = 0

    def slots(self, phrase_lists: Sequence[list[Phrase]]) -> np.ndarray:
        width = max((len(x) for x in phrase_lists), default=0)
        out = np.full((len(phrase_lists), max(width, 1)), -1, dtype=np.int32)
        for i, phrases in enumerate(phrase_lists):
            for k, phrase in enumerate(phrases):
                j = self.index.get(phrase.key)
                if j is None:
                    j = self.index[phrase.key] = len(self.phrases)
                    self.phrases.append(phrase)
                out[i, k] = j
        return out

    def scores(self) -> np.ndarray:
        while self._scored < len(self.phrases):
            batch = self.phrases[self._scored : self._scored + PHRASE_BATCH]
            self._blocks.append(self.paperset.phrase_scores(batch))
            self._scored += len(batch)
        if not self._blocks:
            return np.zeros((0, self.paperset.n), dtype=np.float32)
        if len(self._blocks) > 1:
            self._blocks = [np.vstack(self._blocks)]
        return self._blocks[0]


def _written_in(paper: Paper, phrase: Phrase) -> bool:
    """Whether the phrase's words appear contiguously in the title or abstract, as the quoted-phrase rule reads them."""
    return any(contains_phrase(f" {' '.join(tokens(text))} ", tokens(phrase.text)) for text in (paper.title, paper.abstract))


def _reasons(
    day: Day, table: PhraseTable, kind: int, why: int, column: int, score: float, period: str
) -> tuple[list[str], int | None]:
    """The pick's reasons, and the trending rank they cite (None when they cite none)."""
    rank = int((day.trending_rank if day.trending_rank is not None else day.trending_pos)[column])
    if kind == ranking.KIND_TRENDING and day.new_only is not None and day.new_only[column]:
        return [f"new on arXiv {period}"], None
    if kind == ranking.KIND_TRENDING:
        return ([trending_rank_words(rank=rank, period=period)], rank) if rank > 0 else ([f"trending {period}"], None)
    reasons = []
    pinned = bool(day.pinned[column])
    if pinned:
        reasons.append("pinned by the editors")
    if not pinned or score >= day.paperset.min_relevance:
        if kind == ranking.KIND_INTEREST and 0 <= why < len(table.phrases):
            phrase = table.phrases[why]
            # A quoted phrase found as written is a match whatever its score: the score only
            # weighs how much of the paper is about it, and "loosely related" would be untrue.
            clear = score >= day.paperset.clear_match or (phrase.quoted and _written_in(day.papers[column], phrase))
            verb = "matches" if clear else "loosely related to"
            reasons.append(f"{verb} your interest '{phrase.text}'")
        elif kind == ranking.KIND_TOPIC and 0 <= why < len(day.topics):
            reasons.append(f"topic: {day.topics[why].name}")
    if 0 < rank <= 3 and not pinned:
        reasons.append(trending_rank_words(rank=rank, period=period))
        return reasons, rank
    return reasons, None


def select_for_subscribers(
    *,
    subscribers: list,
    day: datetime.date,
    candidate_ids: list[int] | None = None,
    method: str | None = None,
    window_days: int = 1,
) -> dict[int, list[Pick]]:
    """Each subscriber's digest for `day`: {subscriber id: [Pick, ...]} in digest order.

    The candidates (default: the day's trending papers, pinned first, hidden never) are scored
    once; subscribers are scored in vectorized chunks. Papers in a subscriber's SentPaper ledger
    never appear. Picks below the relevance threshold are left out, then the digest is topped
    up with the day's top trending papers (trending=True) up to the subscriber's digest_size.

    Inside semantic.vectors_only() phrase and paper vectors come from the database only and a
    missing one raises vectors.VectorsMissing before anything is ranked (sending catches it).
    `method` overrides settings.MATCHING_METHOD (sending's documented lexical fallback).
    `window_days` 7: the week's candidates for weekly readers (editions.edition_week_candidate_ids).
    """
    d = day_load(day=day, candidate_ids=candidate_ids, method=method, window_days=window_days)
    result: dict[int, list[Pick]] = {}
    if not subscribers:
        return result
    with d.lock:
        if d.phrase_table is None:
            d.phrase_table = PhraseTable(d.paperset)
        # Worded now, not when the Day was cached: a Day built yesterday still ranks today, but its
        # "today" is no longer true.
        period = day_period(day=d.date, window_days=d.window_days)
        _select_chunks(d, d.phrase_table, subscribers, result, period)
    return result


def _select_chunks(d: Day, table: "PhraseTable", subscribers: list, result: dict[int, list[Pick]], period: str) -> None:
    topic_row = {t.id: i for i, t in enumerate(d.topics)}
    col = {p.id: j for j, p in enumerate(d.papers)}
    through = type(subscribers[0]).topics.through
    for start in range(0, len(subscribers), SUBSCRIBER_CHUNK):
        chunk = subscribers[start : start + SUBSCRIBER_CHUNK]
        sub_ids = [s.id for s in chunk]
        row_of = {sid: i for i, sid in enumerate(sub_ids)}
        chosen_topics: list[list[int]] = [[] for _ in chunk]
        for sid, tid in through.objects.filter(subscriber_id__in=sub_ids).values_list("subscriber_id", "topic_id"):
            if tid in topic_row:
                chosen_topics[row_of[sid]].append(topic_row[tid])
        width = max((len(x) for x in chosen_topics), default=0)
        topic_slots = np.full((len(chunk), max(width, 1)), -1, dtype=np.int32)
        for i, rows in enumerate(chosen_topics):
            topic_slots[i, : len(rows)] = sorted(rows)
        sent = list(
            SentPaper.objects.filter(subscriber_id__in=sub_ids, paper_id__in=list(col)).values_list(
                "subscriber_id", "paper_id"
            )
        )
        interests = [parse_interests(s.interests) for s in chunk]
        if d.paperset.uses_embeddings:
            vectors.phrase_vectors_require(texts=phrase_texts([p for phrases in interests for p in phrases]))
        profiles = ranking.Profiles(
            interest_slots=table.slots(interests),
            topic_slots=topic_slots,
            sizes=np.array([s.digest_size for s in chunk], dtype=np.int32),
            sent_rows=np.array([row_of[s] for s, _ in sent], dtype=np.int64),
            sent_cols=np.array([col[p] for _, p in sent], dtype=np.int64),
        )
        scores = ranking.DayScores(
            phrase_scores=table.scores(),
            topic_scores=d.topic_scores,
            pinned=d.pinned,
            trending_pos=d.trending_pos,
            min_relevance=d.paperset.min_relevance,
        )
        ranked = ranking.rank(scores, profiles)
        for i, subscriber in enumerate(chunk):
            picks = []
            for slot in range(ranked.papers.shape[1]):
                column = int(ranked.papers[i, slot])
                if column < 0:
                    break
                kind, score = int(ranked.kinds[i, slot]), float(ranked.scores[i, slot])
                paper = d.papers[column]
                reasons, cited_rank = _reasons(d, table, kind, int(ranked.why[i, slot]), column, score, period)
                picks.append(
                    Pick(
                        paper_id=paper.id,
                        paper=paper,
                        score=round(score, 4),
                        reasons=reasons,
                        trending=kind == ranking.KIND_TRENDING,
                        pinned=bool(d.pinned[column]),
                        rank_in_reasons=cited_rank,
                        window_rank=_window_rank(d, column),
                    )
                )
            result[subscriber.id] = picks


def _window_rank(d: Day, column: int) -> int | None:
    ranks = d.trending_rank if d.trending_rank is not None else d.trending_pos
    return int(ranks[column]) or None


def select_for_subscriber(
    *,
    subscriber,
    day: datetime.date,
    candidate_ids: list[int] | None = None,
    method: str | None = None,
    window_days: int = 1,
) -> list[Pick]:
    """One subscriber's digest: the bulk path with a chunk of one, so both always agree."""
    return select_for_subscribers(
        subscribers=[subscriber], day=day, candidate_ids=candidate_ids, method=method, window_days=window_days
    )[subscriber.id]
