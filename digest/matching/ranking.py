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
# A paper's relevance is its best interest's score plus this share of its second best (see
# scoring.combine_interests): of two papers that match "control" equally, the one that also
# matches "robot learning" is the one a person who typed both wants.
SECOND_INTEREST_WEIGHT = 0.3
# Trending only breaks near-ties: the top paper of the day gains this much relevance.
TRENDING_TIEBREAK = 0.01
KIND_INTEREST, KIND_TOPIC, KIND_TRENDING = 0, 1, 2
_PINNED_KEY = 100.0
_FLOOR = -10.0
# Profiles scored at a time: 1024 x 500 papers x 4 bytes is 2 MB an array, which stays in cache
# (a 50k chunk's ~23k distinct profiles took 16% more CPU in one piece; 256-2048 rows did alike).
_TILE_ROWS = 1024


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


def _padded(table: np.ndarray, n_papers: int) -> np.ndarray:
    """The table with a sentinel row of -inf at the end, so an empty slot (-1) gathers -inf."""
    sentinel = np.full((1, n_papers), -np.inf, dtype=np.float32)
    return np.vstack([table.astype(np.float32, copy=False), sentinel]) if table.shape[0] else sentinel


def _gather(padded: np.ndarray, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    # mode="wrap" sends an empty slot (-1) to the sentinel row and lets numpy write straight into
    # `out`: reusing buffers of (subscribers x papers) saves the page faults of fresh ones.
    return np.take(padded, rows, axis=0, out=out, mode="wrap")


def _leading(rows: np.ndarray) -> int:
    """How many leading rows cover every True one (rank() puts the fuller profiles first)."""
    hits = np.flatnonzero(rows)
    return int(hits[-1]) + 1 if hits.size else 0


def _reach(slots: np.ndarray, k: int) -> int:
    """How many leading rows cover every row that fills slot k."""
    return _leading(slots[:, k] >= 0)


def _max_over_slots(padded: np.ndarray, slots: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """(n, P) into `out`: for each subscriber, the max over their slots' rows (-inf if they have none)."""
    best = _gather(padded, slots[:, 0], out)
    for k in range(1, slots.shape[1]):
        m = _reach(slots, k)
        if m:
            np.maximum(best[:m], _gather(padded, slots[:m, k], scratch[:m]), out=best[:m])
    return best


def _soft_max_over_slots(padded: np.ndarray, slots: np.ndarray, out: np.ndarray, scratch: tuple) -> np.ndarray:
    """(n, P) into `out`: best + SECOND_INTEREST_WEIGHT * max(second best, 0) over the subscriber's slots.

    Slot k is worked only over the leading rows that reach it: most people type one or two
    interests, and rank() orders profiles by how many they typed. `scratch`: two more (n, P) buffers.
    """
    best = _gather(padded, slots[:, 0], out)
    values_buffer, second_buffer = scratch
    reach = [_reach(slots, k) for k in range(1, slots.shape[1])]
    if not any(reach):
        return best
    second = second_buffer
    second.fill(-np.inf)
    for m, k in zip(reach, range(1, slots.shape[1])):
        if not m:
            continue
        values = _gather(padded, slots[:m, k], values_buffer[:m])
        np.maximum(second[:m], np.minimum(best[:m], values), out=second[:m])
        np.maximum(best[:m], values, out=best[:m])
    np.maximum(second, 0.0, out=second)
    second *= np.float32(SECOND_INTEREST_WEIGHT)
    best += second
    return best


def _topic_weights(profiles: Profiles) -> np.ndarray:
    # With interests, a topic still counts but at a discount; without, topics rank alone.
    has_interests = (profiles.interest_slots >= 0).any(axis=1)
    return np.where(has_interests, TOPIC_WEIGHT, 1.0).astype(np.float32)


def _tables(day: DayScores) -> tuple[np.ndarray, np.ndarray]:
    return _padded(day.phrase_scores, day.n_papers), _padded(day.topic_scores, day.n_papers)


def relevance(day: DayScores, profiles: Profiles, tables=None) -> np.ndarray:
    """(n, P) relevance of every candidate to every subscriber of the chunk (-inf: no interest or topic).

    Worked block by block of profiles with the same number of interests, and within a block only
    over the rows that have a topic: rank() orders profiles that way (any order gives the same
    result), so a third of the chunk (topics only) never gathers interest rows of -inf.
    """
    phrase_table, topic_table = tables or _tables(day)
    n, p = len(profiles), day.n_papers
    rel, values, other = (np.empty((n, p), dtype=np.float32) for _ in range(3))
    counts = (profiles.interest_slots >= 0).sum(axis=1)
    bounds = [0, *(np.flatnonzero(np.diff(counts)) + 1).tolist(), n]
    for start, stop in zip(bounds, bounds[1:]):
        if start == stop:
            continue
        block = slice(start, stop)
        if counts[start]:
            _soft_max_over_slots(phrase_table, profiles.interest_slots[block], rel[block], (values[block], other[block]))
        else:
            rel[block] = -np.inf
        with_topics = _leading((profiles.topic_slots[block] >= 0).any(axis=1))
        if not with_topics:
            continue
        rows = slice(start, start + with_topics)
        best = _max_over_slots(topic_table, profiles.topic_slots[rows], other[rows], values[rows])
        best *= np.float32(TOPIC_WEIGHT if counts[start] else 1.0)
        np.maximum(rel[rows], best, out=rel[rows])
    return rel


def _best_slot(
    table: np.ndarray, slots: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (row, col) pair: the best value over the row's slots, which slot row gave it, and the second best."""
    best = table[slots[:, 0], cols]
    which = slots[:, 0].copy()
    second = np.full_like(best, -np.inf)
    # A loop over the few slots: numpy reduces a short last axis slowly, row by row.
    for k in range(1, slots.shape[1]):
        values = table[slots[:, k], cols]
        better = values > best
        second = np.maximum(second, np.minimum(best, values))
        best = np.where(better, values, best)
        which = np.where(better, slots[:, k], which)
    return best, which, second


def explain(day: DayScores, profiles: Profiles, rows: np.ndarray, cols: np.ndarray, tables=None):
    """For chosen (subscriber row, paper column) pairs only: relevance, kind and the phrase/topic behind it."""
    phrase_table, topic_table = tables or _tables(day)
    i_best, i_row, i_second = _best_slot(phrase_table, profiles.interest_slots[rows], cols)
    # The same sum, in the same float32 order, as _soft_max_over_slots: scores equal the sort keys.
    i_best = i_best + np.float32(SECOND_INTEREST_WEIGHT) * np.maximum(i_second, np.float32(0.0))
    t_best, t_row, _ = _best_slot(topic_table, profiles.topic_slots[rows], cols)
    t_best = t_best * _topic_weights(profiles)[rows]
    use_interest = i_best >= t_best
    score = np.maximum(i_best, t_best)
    why = np.where(use_interest, i_row, t_row)
    kinds = np.where(use_interest, KIND_INTEREST, KIND_TOPIC).astype(np.int8)
    valid = np.isfinite(score)
    return np.where(valid, score, 0.0).astype(np.float32), kinds, np.where(valid, why, -1).astype(np.int32)


def _rows_of(profiles: Profiles, rows: slice | np.ndarray) -> Profiles:
    """These rows' profiles, without a ledger (what they were sent is applied per subscriber after)."""
    return Profiles(
        interest_slots=profiles.interest_slots[rows],
        topic_slots=profiles.topic_slots[rows],
        sizes=profiles.sizes[rows],
        sent_rows=np.zeros(0, np.int64),
        sent_cols=np.zeros(0, np.int64),
    )


def _best_keys(day: DayScores, profiles: Profiles, tables, bonus: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each profile's k best papers (columns, keys), best first: pinned, then relevant ones by relevance
    (trending breaks near ties, the earlier column exact ones), then filler keys below _FLOOR / 2."""
    p = day.n_papers
    key = relevance(day, profiles, tables)  # reused in place as the sort key
    # Below the threshold: a distinct floor per column, far below any real key. Distinct, because
    # partitioning is several times slower on rows full of equal values (-inf).
    floor = np.broadcast_to(_FLOOR - np.arange(p, dtype=np.float32) / p, key.shape)
    np.copyto(key, floor, where=key < day.min_relevance)
    key += TRENDING_TIEBREAK * bonus
    pinned_cols = np.nonzero(day.pinned)[0]
    if pinned_cols.size:
        key[:, pinned_cols] = _PINNED_KEY + bonus[pinned_cols]
    top = _top_columns(key, k)
    top_key = np.take_along_axis(key, top, axis=1)
    order = np.argsort(-top_key, axis=1, kind="stable")  # best first; ties to the earlier column
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_key, order, axis=1)


def _top_columns(key: np.ndarray, k: int) -> np.ndarray:
    """(n, k): the columns of each row's k largest keys, in column order (ties to the earlier column).

    Partitions the values only (a third of the time argpartition takes, which also tracks
    indices) for each row's k-th largest key, then keeps the columns above it and, of those equal
    to it, the earliest ones that fit.
    """
    n, p = key.shape
    if k >= p:
        return np.tile(np.arange(p), (n, 1))
    kth = np.partition(key, p - k, axis=1)[:, p - k : p - k + 1]
    keep = key >= kth
    tied = np.flatnonzero(keep.sum(axis=1) != k)  # more than k at or above: equal keys at the cut
    if tied.size:
        sub, cut = key[tied], kth[tied]
        above = sub > cut
        at = sub == cut
        room = k - above.sum(axis=1)
        keep[tied] = above | (at & (np.cumsum(at, axis=1) <= room[:, None]))
    return np.nonzero(keep)[1].reshape(n, k)


def _distinct_rows(signature: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first index, inverse) of the distinct rows of an int32 matrix.

    Hashes each row to one uint64 (fast 1-D unique) and checks the result; on the rare collision,
    falls back to numpy's exact row unique.
    """
    rng = np.random.default_rng(0x5EED)
    weights = rng.integers(1, 2**63 - 1, signature.shape[1], dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        h = (signature.astype(np.int64).astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    if not np.array_equal(signature[first[inverse]], signature):
        _, first, inverse = np.unique(signature, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
    return first, inverse


def rank(day: DayScores, profiles: Profiles) -> Ranked:
    """Pinned first, then papers above the relevance threshold, then a top-up from trending.

    Scores are rounded (in the day's tables) so a subscriber ranked alone and in a chunk of
    thousands gets identical keys; ties go to the earlier candidate column.
    """
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
    trending = day.trending_pos > 0
    n_trending = max(int(trending.sum()), 1)
    bonus = np.where(trending, 1.0 - (day.trending_pos - 1) / n_trending, 0.0).astype(np.float32)

    # Subscribers with the same interests and topics rank the same papers: score each distinct
    # profile once (many people pick topics only), then apply each one's ledger and size.
    if n == 1:  # preview_digest, the admin's preview
        first, inverse = np.zeros(1, np.int64), np.zeros(1, np.int64)
    else:
        first, inverse = _distinct_rows(np.concatenate([profiles.interest_slots, profiles.topic_slots], axis=1))
    # Fullest interest lists first, and within them the fullest topic lists, so each later slot
    # is worked over a prefix of rows (relevance, _soft_max_over_slots).
    by_fill = np.lexsort(
        (-(profiles.topic_slots[first] >= 0).sum(axis=1), -(profiles.interest_slots[first] >= 0).sum(axis=1))
    )
    renumber = np.empty_like(by_fill)
    renumber[by_fill] = np.arange(by_fill.shape[0])
    first, inverse = first[by_fill], renumber[inverse]
    distinct = _rows_of(profiles, first)
    tables = _tables(day)
    sent_per_row = np.bincount(profiles.sent_rows, minlength=n) if profiles.sent_rows.size else np.zeros(n, np.int64)
    # Enough that after dropping a subscriber's already-sent papers, `size` remain.
    k = min(size + int(sent_per_row.max()), p)
    top = np.empty((first.shape[0], k), dtype=np.int64)
    top_key = np.empty((first.shape[0], k), dtype=np.float32)
    # Tile by tile of profiles, so each tile's (rows x papers) arrays stay in the CPU cache
    # through relevance, threshold and cut (the whole chunk's are tens of MB each).
    for start in range(0, first.shape[0], _TILE_ROWS):
        tile = slice(start, start + _TILE_ROWS)
        top[tile], top_key[tile] = _best_keys(day, _rows_of(distinct, tile), tables, bonus, k)
    # Scores and reasons depend only on (profile, paper): explain each distinct list once, and
    # only as deep as its subscribers can reach (their size plus what their ledger removes).
    eligible = top_key > _FLOOR / 2
    depth = np.zeros(first.shape[0], dtype=np.int64)
    np.maximum.at(depth, inverse, profiles.sizes + sent_per_row)
    u_rows, u_slots = np.nonzero(eligible & (np.arange(k)[None, :] < depth[:, None]))
    u_score, u_kinds, u_why = (np.zeros(top.shape, dtype=d) for d in (np.float32, np.int8, np.int32))
    u_score[u_rows, u_slots], u_kinds[u_rows, u_slots], u_why[u_rows, u_slots] = explain(
        day, distinct, u_rows, top[u_rows, u_slots], tables
    )

    # Each subscriber: their profile's list, minus what they were already sent, cut to their size.
    place = np.broadcast_to(np.arange(k, dtype=np.int64), (n, k))
    valid = eligible[inverse]
    if profiles.sent_rows.size:
        with_sent = np.unique(profiles.sent_rows)
        sent_codes = profiles.sent_rows.astype(np.int64) * p + profiles.sent_cols
        codes = with_sent[:, None].astype(np.int64) * p + top[inverse[with_sent]]
        valid[with_sent] &= ~np.isin(codes, sent_codes)
        place = place.copy()
        place[with_sent] = np.argsort(~valid[with_sent], axis=1, kind="stable")  # close the gaps, keep order
        valid[with_sent] = np.take_along_axis(valid[with_sent], place[with_sent], axis=1)
    chosen = valid & (np.arange(k)[None, :] < profiles.sizes[:, None])
    rows, slots = np.nonzero(chosen)
    src = inverse[rows], place[rows, slots]
    cols = top[src]
    out.papers[rows, slots] = cols
    out.scores[rows, slots] = u_score[src]
    out.kinds[rows, slots] = u_kinds[src]
    out.why[rows, slots] = u_why[src]

    # Top-up: the day's best trending papers not chosen and not sent, in trending order. Only the
    # first (digest size + chosen + sent) trending papers can be needed, so look at those alone.
    count = chosen.sum(axis=1)
    need = profiles.sizes - count
    if (need > 0).any() and trending.any():
        by_trend = np.nonzero(trending)[0]
        by_trend = by_trend[np.argsort(day.trending_pos[by_trend], kind="stable")]
        depth = min(by_trend.size, int((profiles.sizes + count + sent_per_row).max()))
        head = by_trend[:depth]
        where_in_head = np.full(p, -1, dtype=np.int64)
        where_in_head[head] = np.arange(depth)
        blocked = np.zeros((n, depth), dtype=bool)
        for r, c in ((rows, cols), (profiles.sent_rows, profiles.sent_cols)):
            pos = where_in_head[c]
            blocked[r[pos >= 0], pos[pos >= 0]] = True
        available = ~blocked
        running = np.cumsum(available, axis=1, dtype=np.int32)
        take = available & (running <= need[:, None])
        t_rows, t_idx = np.nonzero(take)
        t_cols = head[t_idx]
        t_slot = count[t_rows] + running[t_rows, t_idx] - 1
        t_score, _, _ = explain(day, profiles, t_rows, t_cols, tables)
        out.papers[t_rows, t_slot] = t_cols
        out.scores[t_rows, t_slot] = t_score
        out.kinds[t_rows, t_slot] = KIND_TRENDING
    return out
