"""ranking.rank, the vectorized path every digest goes through, equals the rule written plainly.

The rule, for one subscriber: a paper's relevance is its best interest score plus
SECOND_INTEREST_WEIGHT of the second best, or its best topic score (times TOPIC_WEIGHT when the
subscriber typed interests too), whichever is higher. Pinned papers come first, then the papers
at or above the threshold, best first (trending breaks near-ties, the earlier column exact ties);
papers already sent are left out; the digest is topped up from the day's trending list.

`rank` gets there by other means (distinct profiles, blocks of rows, partitioning instead of
sorting), so it is checked here against a per-subscriber loop on random small days with many ties.
"""

import numpy as np
from hypothesis import given, settings as hsettings, strategies as st

from digest.matching import ranking
from digest.matching.ranking import (
    KIND_INTEREST,
    KIND_TOPIC,
    KIND_TRENDING,
    SECOND_INTEREST_WEIGHT,
    TOPIC_WEIGHT,
    TRENDING_TIEBREAK,
    DayScores,
    Profiles,
)

F32 = np.float32
# Few distinct values, so equal scores (at the threshold, at the cut, across slots) are common.
SCORES = [0.0, 0.1, 0.25, 0.32, 0.32, 0.5, 0.5, 0.75, 1.0]


def plain_rank(day: DayScores, profiles: Profiles) -> ranking.Ranked:
    n, p = len(profiles), day.n_papers
    size = int(profiles.sizes.max())
    out = ranking.Ranked(
        papers=np.full((n, size), -1, np.int32),
        scores=np.zeros((n, size), np.float32),
        kinds=np.full((n, size), -1, np.int8),
        why=np.full((n, size), -1, np.int32),
    )
    trending = [j for j in range(p) if day.trending_pos[j] > 0]
    n_trending = max(len(trending), 1)
    bonus = [F32(1.0 - (day.trending_pos[j] - 1) / n_trending) if day.trending_pos[j] > 0 else F32(0) for j in range(p)]
    for i in range(n):
        interests = [int(s) for s in profiles.interest_slots[i] if s >= 0]
        topics = [int(s) for s in profiles.topic_slots[i] if s >= 0]
        weight = F32(TOPIC_WEIGHT if interests else 1.0)

        def relevance(j):
            i_best, i_row, i_second = F32(-np.inf), -1, F32(-np.inf)
            for s in interests:  # the earliest slot wins an equal score
                v = F32(day.phrase_scores[s, j])
                i_second = max(i_second, min(i_best, v))
                if v > i_best:
                    i_best, i_row = v, s
            i_best = F32(i_best + F32(SECOND_INTEREST_WEIGHT) * max(i_second, F32(0)))
            t_best, t_row = F32(-np.inf), -1
            for s in topics:
                if F32(day.topic_scores[s, j]) > t_best:
                    t_best, t_row = F32(day.topic_scores[s, j]), s
            t_best = F32(t_best * weight)
            if i_best >= t_best:
                return i_best, KIND_INTEREST, i_row
            return t_best, KIND_TOPIC, t_row

        sent = {int(c) for r, c in zip(profiles.sent_rows, profiles.sent_cols) if r == i}
        candidates = []
        for j in range(p):
            score, kind, why = relevance(j)
            if day.pinned[j]:
                key = F32(F32(100.0) + bonus[j])
            elif score >= day.min_relevance:
                key = F32(score + F32(F32(TRENDING_TIEBREAK) * bonus[j]))
            else:
                continue
            candidates.append((-float(key), j, score, kind, why))
        picks = [c for c in sorted(candidates) if c[1] not in sent][: profiles.sizes[i]]
        for slot, (_, j, score, kind, why) in enumerate(picks):
            finite = np.isfinite(score)
            out.papers[i, slot], out.kinds[i, slot] = j, kind
            out.scores[i, slot], out.why[i, slot] = (score, why) if finite else (0.0, -1)
        chosen = {j for _, j, *_ in picks}
        slot = len(picks)
        for j in sorted(trending, key=lambda j: day.trending_pos[j]):
            if slot >= profiles.sizes[i]:
                break
            if j in chosen or j in sent:
                continue
            score = relevance(j)[0]
            out.papers[i, slot], out.kinds[i, slot] = j, KIND_TRENDING
            out.scores[i, slot] = score if np.isfinite(score) else 0.0
            slot += 1
    return out


@st.composite
def days_and_profiles(draw):
    p = draw(st.integers(1, 14))
    n_phrases, n_topics = draw(st.integers(0, 4)), draw(st.integers(0, 3))
    table = lambda rows: np.array(  # noqa: E731
        draw(st.lists(st.lists(st.sampled_from(SCORES), min_size=p, max_size=p), min_size=rows, max_size=rows)) or np.zeros((0, p)),
        dtype=np.float32,
    ).reshape(rows, p)
    order = draw(st.permutations(range(p)))
    n_trending = draw(st.integers(0, p))
    trending_pos = np.zeros(p, np.int32)
    trending_pos[list(order[:n_trending])] = np.arange(1, n_trending + 1)
    day = DayScores(
        phrase_scores=table(n_phrases),
        topic_scores=table(n_topics),
        pinned=np.array(draw(st.lists(st.booleans(), min_size=p, max_size=p)), dtype=bool),
        trending_pos=trending_pos,
        min_relevance=0.32,
    )
    n = draw(st.integers(1, 8))
    slots = lambda rows, width: np.array(  # noqa: E731  (not packed to the left, repeats allowed)
        draw(st.lists(st.lists(st.integers(-1, rows - 1), min_size=width, max_size=width), min_size=n, max_size=n)),
        dtype=np.int32,
    ).reshape(n, width)
    sent = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, p - 1)), max_size=6, unique=True))
    profiles = Profiles(
        interest_slots=slots(n_phrases, 3),
        topic_slots=slots(n_topics, 2),
        sizes=np.array(draw(st.lists(st.integers(1, 6), min_size=n, max_size=n)), dtype=np.int32),
        sent_rows=np.array([r for r, _ in sent], dtype=np.int64),
        sent_cols=np.array([c for _, c in sent], dtype=np.int64),
    )
    return day, profiles


@hsettings(max_examples=400, deadline=None)
@given(days_and_profiles())
def test_rank_gives_every_subscriber_what_the_plain_rule_gives_them(case):
    day, profiles = case
    want = plain_rank(day, profiles)
    saved = ranking._TILE_ROWS
    for tile_rows in (saved, 3):  # in one piece, and in tiles of three profiles
        ranking._TILE_ROWS = tile_rows
        try:
            got = ranking.rank(day, profiles)
        finally:
            ranking._TILE_ROWS = saved
        for field in ("papers", "kinds", "why", "scores"):
            np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=f"{field}, tiles of {tile_rows}")


def test_equal_keys_at_the_digest_size_go_to_the_earlier_papers():
    # Ten papers with the same topic score and no trending: a digest of 3 takes the first three.
    day = DayScores(
        phrase_scores=np.zeros((0, 10), np.float32),
        topic_scores=np.full((1, 10), 0.8, np.float32),
        pinned=np.zeros(10, bool),
        trending_pos=np.zeros(10, np.int32),
        min_relevance=0.32,
    )
    profiles = Profiles(
        interest_slots=np.full((4, 1), -1, np.int32),
        topic_slots=np.zeros((4, 1), np.int32),
        sizes=np.array([3, 3, 3, 3], np.int32),
        sent_rows=np.array([1], np.int64),
        sent_cols=np.array([0], np.int64),
    )
    ranked = ranking.rank(day, profiles)
    assert ranked.papers.tolist() == [[0, 1, 2], [1, 2, 3], [0, 1, 2], [0, 1, 2]]
