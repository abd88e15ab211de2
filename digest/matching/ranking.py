"""Which candidate papers each subscriber gets, in what order: vectorized over subscribers.

Everything here works on arrays so the same code serves one subscriber (preview) and a
million (the daily fan-out, bench/matching.py). Inputs, per day:

- phrase_scores (F, P): relevance of every distinct interest phrase to every candidate paper,
- topic_scores (T, P): each topic's score for each paper (curator overrides applied),
- pinned (P,), trending_pos (P,): 1-based position in the day's trending list, 0 if not trending,

and, per chunk of subscribers, a `Profiles` of small integer arrays. No Python loop runs per
(subscriber, paper) pair; the loops are over interest slots (a handful) only.
"""

from dataclasses import dataclass

import numpy as np

# A topic match counts for less than an interest match: interests matter more than topics.
TOPIC_WEIGHT = 0.8
# Trending only breaks near-ties: the top paper of the day gains this much relevance.
TRENDING_TIEBREAK = 0.01
KIND_INTEREST, KIND_TOPIC, KIND_TRENDING = 0, 1, 2
_PINNED_KEY = 100.0


@dataclass
class DayScores:
    phrase_scores: np.ndarray  # (F, P) float32
    topic_scores: np.ndarray  # (T, P) float32
    pinned: np.ndarray  # (P,) bool
    trending_pos: np.ndarray  # (P,) int32, 0 = not trending that day
    min_relevance: float

    @property
    def n_papers(self) -> int:
        return self.pinned.shape[0]


@dataclass
class Profiles:
    interest_slots: np.ndarray  # (n, K) int32 rows of phrase_scores, -1 = empty slot
    topic_slots: np.ndarray  # (n, Kt) int32 rows of topic_scores, -1 = empty slot
    sizes: np.ndarray  # (n,) digest sizes
    sent_rows: np.ndarray  # coordinates (subscriber row, paper column) already sent
    sent_cols: np.ndarray

    def __len__(self) -> int:
        return self.sizes.shape[0]


@dataclass
class Ranked:
    papers: np.ndarray  # (n, S) int32 paper columns in digest order, -1 = empty
    scores: np.ndarray  # (n, S) float32 relevance
    kinds: np.ndarray  # (n, S) int8 KIND_* (a pinned pick keeps the kind of its relevance)
    why: np.ndarray  # (n, S) int32: phrase row (interest), topic row (topic), else -1


def _best_over_slots(table: np.ndarray, slots: np.ndarray, n_papers: int) -> tuple[np.ndarray, np.ndarray]:
    """Max over each subscriber's slots of table[slot] and which row gave it: (n, P) each."""
    n = slots.shape[0]
    best = np.full((n, n_papers), -np.inf, dtype=np.float32)
    arg = np.full((n, n_papers), -1, dtype=np.int32)
    if table.shape[0] == 0:
        return best, arg
    # A sentinel row of -inf makes empty slots (-1) harmless in the gather.
    padded = np.vstack([table.astype(np.float32, copy=False), np.full((1, n_papers), -np.inf, dtype=np.float32)])
    for k in range(slots.shape[1]):
        rows = slots[:, k]
        if (rows < 0).all():
            continue
        values = padded[rows]  # rows == -1 picks the sentinel
        better = values > best
        np.maximum(best, values, out=best)
        arg = np.where(better, rows[:, None], arg)
    return best, arg


def relevance(day: DayScores, profiles: Profiles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, P) relevance, the kind of match and the row (phrase or topic) behind it."""
    p = day.n_papers
    interest, interest_row = _best_over_slots(day.phrase_scores, profiles.interest_slots, p)
    topic, topic_row = _best_over_slots(day.topic_scores, profiles.topic_slots, p)
    topic_w = topic * TOPIC_WEIGHT
    has_interests = (profiles.interest_slots >= 0).any(axis=1)[:, None]
    # With interests, a topic can still win a paper but at a discount; without, topics rank alone.
    use_interest = has_interests & (interest >= topic_w)
    rel = np.where(use_interest, interest, np.where(has_interests, topic_w, topic))
    kinds = np.where(use_interest, KIND_INTEREST, KIND_TOPIC).astype(np.int8)
    why = np.where(use_interest, interest_row, topic_row)
    rel = np.where(np.isfinite(rel), rel, 0.0).astype(np.float32)
    return rel, kinds, why


def rank(day: DayScores, profiles: Profiles) -> Ranked:
    """Pinned first, then papers above the relevance threshold, then a top-up from trending."""
    n, p = len(profiles), day.n_papers
    size = int(profiles.sizes.max()) if n else 0
    out = Ranked(
        papers=np.full((n, size), -1, dtype=np.int32),
        scores=np.zeros((n, size), dtype=np.float32),
        kinds=np.full((n, size), -1, dtype=np.int8),
        why=np.full((n, size), -1, dtype=np.int32),
    )
    if n == 0 or p == 0 or size == 0:
        return out
    rel, kinds, why = relevance(day, profiles)
    trending = day.trending_pos > 0
    n_trending = max(int(trending.sum()), 1)
    bonus = np.where(trending, 1.0 - (day.trending_pos - 1) / n_trending, 0.0).astype(np.float32)
    # Round so the same paper scores identically whether its subscriber is ranked alone or in a chunk.
    key = np.round(rel, 5) + TRENDING_TIEBREAK * bonus
    key = np.where(rel >= day.min_relevance, key, -np.inf)
    key = np.where(day.pinned, _PINNED_KEY + bonus, key)
    sent = np.zeros((n, p), dtype=bool)
    sent[profiles.sent_rows, profiles.sent_cols] = True
    key[sent] = -np.inf

    k = min(size, p)
    # Stable tie-break on the column (candidate order) so one and many rank alike.
    top = np.argpartition(-key, k - 1, axis=1)[:, :k] if k < p else np.tile(np.arange(p), (n, 1))
    top_key = np.take_along_axis(key, top, axis=1)
    order = np.lexsort((top, -top_key), axis=1)
    top = np.take_along_axis(top, order, axis=1)
    top_key = np.take_along_axis(top_key, order, axis=1)
    slot = np.arange(k)[None, :]
    chosen = np.isfinite(top_key) & (slot < profiles.sizes[:, None])
    rows = np.nonzero(chosen)
    cols = top[chosen]
    out.papers[:, :k][chosen] = cols
    out.scores[:, :k][chosen] = rel[rows[0], cols]
    out.kinds[:, :k][chosen] = kinds[rows[0], cols]
    out.why[:, :k][chosen] = why[rows[0], cols]

    # Top-up: the day's best trending papers not chosen and not sent, in trending order.
    count = chosen.sum(axis=1)
    need = profiles.sizes - count
    if (need > 0).any() and trending.any():
        picked = np.zeros((n, p), dtype=bool)
        picked[rows[0], cols] = True
        by_trend = np.nonzero(trending)[0]
        by_trend = by_trend[np.argsort(day.trending_pos[by_trend], kind="stable")]
        available = ~(picked | sent)[:, by_trend]
        running = np.cumsum(available, axis=1)
        take = available & (running <= need[:, None])
        t_rows, t_idx = np.nonzero(take)
        t_cols = by_trend[t_idx]
        t_slot = count[t_rows] + running[t_rows, t_idx] - 1
        out.papers[t_rows, t_slot] = t_cols
        out.scores[t_rows, t_slot] = rel[t_rows, t_cols]
        out.kinds[t_rows, t_slot] = KIND_TRENDING
    return out
