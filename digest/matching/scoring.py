"""Relevance of phrases (interests, topic queries) to a fixed set of candidate papers.

A `PaperSet` is built once per day (or per edition) from the candidate papers and scores any
number of distinct phrases in one vectorized call. The three methods share the interface:

- lexical:  BM25 (title counted twice, bigrams for phrases), scaled to about [0, 1];
- semantic: cosine of MiniLM embeddings, phrase vs. paper (title+abstract, and title alone),
            the phrase's vector first moved towards its best two-way matches (PaperSet._feedback),
            calibrated per phrase against the day's papers (see calibrate_cosines), less each
            paper's closeness to what all topics share (HUB_WEIGHT);
- hybrid:   LEXICAL_WEIGHT * lexical + (1 - LEXICAL_WEIGHT) * semantic.

Phrases are read through the curated thesaurus (thesaurus.py) first: lexically a paper may use
any spelling of a concept in the phrase, counted once and as much as the typed words; a phrase's
embedding is averaged with those of its respellings (phrase_vectors).

Each method also widens a phrase through the curated topics: a phrase that is close to a
topic's name, description and query ("robot learning" ~ Robotics), closer to it than to any
other, also earns a share of the paper's score for that topic above the day's typical paper,
that score counting the topic's rare query words more than its common ones.
Weights were tuned on the tuning half of tests/personas and on the held-out half and the fresh,
blind and blind2 sets; blind3, then blind4, were each written before the change they first
measured (see bench/matching.py --personas).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import semantic
from .lexical import LexicalIndex
from .ranking import SECOND_INTEREST_WEIGHT
from .text import Phrase, parse_query, tokens
from .thesaurus import respellings

LEXICAL_WEIGHT = 0.4
# A phrase's vector is its own embedding plus this much of the mean of its respellings' (the
# thesaurus' other ways of writing its concepts: "drones" -> "UAV", "unmanned aerial vehicle"),
# so papers using the other words come about as close as ones using the typed words (MiniLM
# does not know many of the field's synonyms). Hybrid P@5 on the held-out personas rose with 1.0
# over 0.5 and 2.0 (tuned on tune..blind2, blind3 measured).
RESPELLING_WEIGHT = 1.0
TITLE_WEIGHT = 0.3  # semantic: share of the title-only cosine (the rest: title + abstract)
EXPANSION_WEIGHT = 0.96
EXPANSION_MIN_SIMILARITY = 0.35
# Expansion uses a topic's scores above that topic's typical paper: every paper scores something
# on every topic (Robotics' query has "control", so a prompting paper scores 0.34 there), and that
# floor, added to every paper, let a topic's near-misses pass for matches. The typical paper is
# the day's EXPANSION_BASELINE_PERCENTILE-th, leaning on TOPIC_SCORE_PRIOR when the day is small.
EXPANSION_BASELINE_PERCENTILE = 60
TOPIC_SCORE_PRIOR = 0.12
# ... and, for expansion, a topic's query words count by how rare they are: a paper that says
# "efficient" or "evaluation" (a third of all papers do) is not thereby about Efficiency or
# Benchmarks, while one that says "binarization" is. A term weighs idf / (this share of the
# highest idf the day's papers allow), at most 1. Classification, topic-only digests and the
# curator's query preview keep the plain scores.
EXPANSION_COMMON_TERMS = 0.75
# A phrase widens through its closest topic even when the next is nearly as close. Hybrid had
# required a margin of 0.15 ("AI policy" is as near "Reinforcement learning" as "Fairness, privacy
# and governance"), for fewer false claims on blind and blind2; with the hubness correction it
# cost P@5 on the two splits written later (no margin: blind3 0.821 -> 0.828, per day 0.796 ->
# 0.819; blind4 0.579 -> 0.586, per day 0.601 -> 0.624; relevant share of claimed matches 0.420 ->
# 0.409). "deep generative models" is only 0.12 nearer Diffusion than the next topic.
# Pseudo-relevance feedback: the phrase's embedding is moved towards its FEEDBACK_PAPERS best
# papers that match it both in words and in meaning, by FEEDBACK_WEIGHT of their mean vector, so
# papers that say the same thing in other words ("UAV" for "drones") rise with them.
FEEDBACK_PAPERS = 2
FEEDBACK_WEIGHT = 0.5
FEEDBACK_SEMANTIC_Z = 3.0
# Hubness: some papers (broad "neural networks ... generalization" ones) are near every phrase,
# so they crowd the top of interests they are not about. A paper's cosine to the mean of the
# topics' vectors (what any research interest shares) is taken, times HUB_WEIGHT, off its cosine
# to every phrase. Calibrated cosines alone, mean average precision rose on all six persona splits
# (0.725 -> 0.745); hybrid P@5 over all personas 0.886 -> 0.894 (per day 0.898 -> 0.899), most on
# blind and blind3, for 1-2 points per day on tune and fresh (0.25 and 0.75 did no better).
HUB_WEIGHT = 0.5
# Semantic calibration: a phrase's cosine to a paper becomes SEMANTIC_BASE + SEMANTIC_SCALE * z,
# z = how many standard deviations above that phrase's mean over the candidates it lies. With
# fewer candidates the mean and spread lean on typical values (COSINE_PRIOR, weight PRIOR_PAPERS).
SEMANTIC_BASE = 0.18
SEMANTIC_SCALE = 0.06
COSINE_PRIOR = (0.12, 0.065)  # mean and standard deviation of a phrase's cosines to unrelated papers
FEEDBACK_COSINE_PRIOR = (0.24, 0.085)  # the same for a phrase moved by feedback (nearer every paper)
PRIOR_PAPERS = 20
# Below this a paper is not relevant enough to be picked on its merits (top-up may still add it).
# The same bar applies to topic scores (people who only pick topics), so interest scores are
# placed on it (SEMANTIC_BASE) rather than the bar moved: of the papers a digest of 10 calls
# matches, at least as many are relevant as before calibration (evaluation.evaluate_daily; 0.16
# once topic expansion stopped counting a topic's typical score, which had made more strays pass).
MIN_RELEVANCE = {"lexical": 0.25, "semantic": 0.38, "hybrid": 0.32}
# The bar is low for recall: a niche interest's relevant papers often score just above it. But
# few papers near it are on topic (hybrid, the persona digests day by day: 8% of picks in
# 0.32-0.36, 65% of those from 0.5 up), so only a pick from CLEAR_MATCH up is said to match; one
# below it is said to be loosely related (selection._reasons). Values: where about two thirds of
# the picks above are relevant, per method.
CLEAR_MATCH = {"lexical": 0.7, "semantic": 0.55, "hybrid": 0.5}

METHODS = ("lexical", "semantic", "hybrid")


def combine_interests(scores: np.ndarray) -> np.ndarray:
    """(phrases, papers) -> (papers,): one subscriber's relevance from their interests' scores.

    The best interest counts fully, the second best at ranking.SECOND_INTEREST_WEIGHT: a paper that
    matches two of a person's interests beats one that matches a single, often generic, word of one
    ("control" in "robot learning, control"). ranking._soft_max_over_slots is the vectorized twin.
    """
    scores = np.asarray(scores, dtype=np.float32)
    if scores.shape[0] == 1:
        return scores[0].copy()
    top = np.sort(scores, axis=0)
    return top[-1] + np.float32(SECOND_INTEREST_WEIGHT) * np.maximum(top[-2], np.float32(0.0))


def resolve_method(method: str) -> str:
    """'auto' is hybrid where the semantic extra is installed, else lexical."""
    if method == "auto":
        return "hybrid" if semantic.available() else "lexical"
    if method in ("semantic", "hybrid") and not semantic.available():
        raise RuntimeError(
            f"MATCHING_METHOD={method} needs the semantic extra: pip install '.[semantic]' (or use auto/lexical)"
        )
    if method not in METHODS:
        raise ValueError(f"unknown matching method {method!r}")
    return method


@dataclass(frozen=True)
class TopicSpec:
    id: int
    name: str
    description: str
    query: str

    @property
    def text(self) -> str:
        return f"{self.name}: {self.description}"


def phrase_texts(phrases: Sequence[Phrase]) -> list[str]:
    """Every short text whose embedding the vectors of these phrases are made from (phrase_vectors):
    each phrase and, unless it is quoted, its respellings. Stored vectors are looked up by these."""
    texts = [p.text for p in phrases]
    for phrase in phrases:
        if not phrase.quoted:
            texts += respellings(phrase.text)
    return list(dict.fromkeys(texts))


def phrase_vectors(phrases: Sequence[Phrase]) -> np.ndarray:
    """(len(phrases), 384) unit vectors: each phrase's embedding moved towards its respellings'."""
    q = semantic.embed_phrases([p.text for p in phrases])
    if not RESPELLING_WEIGHT:
        return q
    other = [[] if p.quoted else respellings(p.text) for p in phrases]
    flat = list(dict.fromkeys(t for texts in other for t in texts))
    if not flat:
        return q
    vectors = dict(zip(flat, semantic.embed_phrases(flat)))
    for i, texts in enumerate(other):
        if texts:
            v = q[i] + np.float32(RESPELLING_WEIGHT) * np.mean([vectors[t] for t in texts], axis=0)
            q[i] = v / np.linalg.norm(v)
    return q


def paper_vectors(title: str, abstract: str) -> np.ndarray:
    """The stored embedding of one paper: [title + abstract | title], 2 x 384 float32."""
    full, title_only = semantic.embed([semantic.paper_text(title, abstract), title])
    return np.concatenate([full, title_only])


def embed_papers(docs: Sequence[tuple[str, str]]) -> np.ndarray:
    """Batch version of paper_vectors: (len(docs), 768)."""
    if not docs:
        return np.zeros((0, 2 * semantic.DIM), dtype=np.float32)
    full = semantic.embed([semantic.paper_text(t, a) for t, a in docs])
    titles = semantic.embed([t for t, _ in docs])
    return np.concatenate([full, titles], axis=1)


def _cosines(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    d = semantic.DIM
    return (1 - TITLE_WEIGHT) * (queries @ vectors[:, :d].T) + TITLE_WEIGHT * (queries @ vectors[:, d:].T)


def calibrate_cosines(cosines: np.ndarray, moved: np.ndarray | None = None, offset: float = 0.0) -> np.ndarray:
    """(phrases, papers) raw cosines -> scores comparable across phrases.

    Raw cosines are not: "robot learning" is 0.2 from every ML paper (it shares "learning") and
    0.37 from its best, while "5G" is 0.04 from most and 0.4 from the one about wireless networks.
    Measured against the phrase's own spread over the day's papers, the second stands out and
    the first does not, so a near-miss of a common-sounding phrase no longer clears the threshold.
    `offset` has been taken off every cosine (PaperSet._hubness, on average), so off the prior mean too.
    """
    n = cosines.shape[1]
    prior_mean, prior_sd = COSINE_PRIOR
    if moved is not None:  # rows of phrases moved by feedback (PaperSet._feedback)
        prior_mean = np.where(moved, FEEDBACK_COSINE_PRIOR[0], prior_mean)[:, None]
        prior_sd = np.where(moved, FEEDBACK_COSINE_PRIOR[1], prior_sd)[:, None]
    prior_mean = prior_mean - offset
    w = n / (n + PRIOR_PAPERS)
    mean = w * cosines.mean(axis=1, keepdims=True) + (1 - w) * prior_mean if n else prior_mean
    sd = w * cosines.std(axis=1, keepdims=True) + (1 - w) * prior_sd if n else prior_sd
    return SEMANTIC_BASE + SEMANTIC_SCALE * (cosines - mean) / np.maximum(sd, 1e-3)


def topic_lexical_scores(
    lexical: LexicalIndex, topics: Sequence[TopicSpec], *, discount_common: bool = False
) -> np.ndarray:
    """(topics, papers): the best three query terms count, the best most (several hits beat one).

    Each term's score is measured against that term's own best, so a common query word
    ("efficient", "evaluation", "control") counts as much as a rare one. discount_common weighs
    each term by its rarity instead (EXPANSION_COMMON_TERMS), for widening interests.
    """
    out = np.zeros((len(topics), lexical.n_docs), dtype=np.float32)
    # The idf of a word no paper has: the most a term's idf can be on this set of papers.
    rarest = lexical.idf("\x00absent")
    for i, topic in enumerate(topics):
        terms = parse_query(topic.query) or parse_query(topic.name)
        scores = np.minimum(lexical.score(terms), 1.0)
        if discount_common and terms:
            idf = np.array([max((lexical.idf(t) for t in tokens(p.text)), default=0.0) for p in terms])
            weight = np.minimum(idf / (EXPANSION_COMMON_TERMS * rarest), 1.0).astype(np.float32)
            scores *= weight[:, None]
        s = np.sort(scores, axis=0)[::-1]
        s = np.vstack([s, np.zeros((3, lexical.n_docs), dtype=np.float32)])
        out[i] = (s[0] + 0.5 * s[1] + 0.25 * s[2]) / 1.75
    return out


class PaperSet:
    """Candidate papers, indexed once; scores phrases and topics against all of them."""

    def __init__(
        self,
        *,
        docs: Sequence[tuple[str, str]],
        topics: Sequence[TopicSpec],
        method: str,
        embeddings: np.ndarray | None = None,
        topic_scores: np.ndarray | None = None,
    ):
        self.method = resolve_method(method)
        self.n = len(docs)
        self.topics = list(topics)
        self.lexical = LexicalIndex(docs)
        self.uses_embeddings = self.method in ("semantic", "hybrid")
        if self.uses_embeddings:
            self.embeddings = embeddings if embeddings is not None else embed_papers(docs)
            # Through the phrase cache, which stored vectors fill: sending never loads the model.
            self.topic_vectors = semantic.embed_phrases([t.text for t in self.topics])
            self.hubness = self._hubness()
        else:
            self.embeddings = None
            self.topic_vectors = None
            self.hubness = None
        # A small index over the topics themselves: which topic does an interest mean?
        self.topic_index = LexicalIndex(
            [(t.name, f"{t.description} {t.query.replace(chr(34), ' ')}") for t in self.topics]
        )
        self.topic_scores = topic_scores if topic_scores is not None else self.classify()
        widening = topic_scores if topic_scores is not None else self.classify(discount_common=True)
        self.expansion_scores = self._above_baseline(widening)
        self.min_relevance = MIN_RELEVANCE[self.method]
        self.clear_match = CLEAR_MATCH[self.method]

    def classify(self, *, discount_common: bool = False) -> np.ndarray:
        """(topics, papers) in [0, 1]: how much each paper is about each topic (see topic_lexical_scores)."""
        lex = topic_lexical_scores(self.lexical, self.topics, discount_common=discount_common)
        if not self.uses_embeddings or not self.topics:
            return lex
        sem = _cosines(self.topic_vectors, self.embeddings)
        return np.round(0.5 * lex + 0.5 * np.clip(sem, 0, 1), 5).astype(np.float32)

    def _hubness(self) -> np.ndarray:
        """(papers,): what _direct takes off each paper's cosines (HUB_WEIGHT)."""
        if not len(self.topic_vectors) or not HUB_WEIGHT:
            return np.zeros(self.n, dtype=np.float32)
        centre = self.topic_vectors.mean(axis=0, keepdims=True)
        return (np.float32(HUB_WEIGHT) * _cosines(centre, self.embeddings)[0]).astype(np.float32)

    def _above_baseline(self, topic_scores: np.ndarray) -> np.ndarray:
        """(topics, papers): each topic's scores rescaled from the day's typical paper (0) to 1."""
        if not self.n:
            return topic_scores
        w = self.n / (self.n + PRIOR_PAPERS)
        base = w * np.percentile(topic_scores, EXPANSION_BASELINE_PERCENTILE, axis=1, keepdims=True)
        base += (1 - w) * TOPIC_SCORE_PRIOR
        return np.clip((topic_scores - base) / (1 - base), 0, 1).astype(np.float32)

    def _direct(self, phrases: Sequence[Phrase]) -> tuple[np.ndarray, np.ndarray | None]:
        lex = np.minimum(self.lexical.score(phrases), 1.0)
        if not self.uses_embeddings:
            return lex, None
        q = phrase_vectors(phrases)
        hub, offset = self.hubness, float(self.hubness.mean()) if self.n else 0.0
        sem = calibrate_cosines(_cosines(q, self.embeddings) - hub, offset=offset)
        moved_q, moved = self._feedback(q, lex, sem)
        sem = calibrate_cosines(_cosines(moved_q, self.embeddings) - hub, moved, offset=offset)
        # A quoted phrase must appear as written, whatever the embedding thinks.
        for i, phrase in enumerate(phrases):
            if phrase.quoted:
                sem[i] *= self.lexical.phrase_mask(phrase)
        if self.method == "semantic":
            return sem.astype(np.float32), q
        return (LEXICAL_WEIGHT * lex + (1 - LEXICAL_WEIGHT) * sem).astype(np.float32), q

    def _feedback(self, q: np.ndarray, lex: np.ndarray, sem: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Phrase vectors moved towards their best papers that match them lexically and semantically,
        and which rows moved. A phrase no paper matches in words moves towards its best paper in
        meaning when that paper is FEEDBACK_SEMANTIC_Z deviations above the day's mean; else it keeps
        its vector.

        First-pass scores are rounded before the pick so a phrase picks the same papers whatever
        batch its embedding was computed in.
        """
        k = min(FEEDBACK_PAPERS, self.n)
        if not k or not FEEDBACK_WEIGHT:
            return q, np.zeros(len(q), dtype=bool)
        first = np.round(LEXICAL_WEIGHT * lex + (1 - LEXICAL_WEIGHT) * sem, 4)
        first = np.where((lex > 0) & (sem > SEMANTIC_BASE), first, -np.inf)
        top = np.argsort(-first, axis=1, kind="stable")[:, :k]
        ok = np.take_along_axis(first, top, axis=1) > -np.inf
        # A phrase no paper shares a word with ("brain" on a day that says "neural circuits") moves
        # towards its one best paper in meaning instead, if that one stands clear of the rest.
        alone = ~ok.any(axis=1)
        if alone.any():
            z = np.round((sem - SEMANTIC_BASE) / SEMANTIC_SCALE, 3)
            best = z.argmax(axis=1)
            clear = alone & (z[np.arange(len(z)), best] >= FEEDBACK_SEMANTIC_Z)
            top[clear, 0] = best[clear]
            ok[clear, 0] = True
        vectors = self.embeddings[:, : semantic.DIM]
        mean = (vectors[top] * ok[..., None]).sum(axis=1) / np.maximum(ok.sum(axis=1, keepdims=True), 1)
        moved = q + np.float32(FEEDBACK_WEIGHT) * mean
        return (moved / np.linalg.norm(moved, axis=1, keepdims=True)).astype(np.float32), ok.any(axis=1)

    def phrase_topics(self, phrases: Sequence[Phrase], q: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """For each phrase, its closest topic (index, -1 if none is close enough) and the similarity."""
        if not self.topics or not phrases:
            return np.full(len(phrases), -1), np.zeros(len(phrases), dtype=np.float32)
        sim = np.minimum(self.topic_index.score(phrases), 1.0)
        if self.uses_embeddings:
            q = phrase_vectors(phrases) if q is None else q
            sim = 0.5 * sim + 0.5 * (q @ self.topic_vectors.T)
        best = sim.argmax(axis=1)
        best_sim = sim[np.arange(len(phrases)), best]
        quoted = np.array([p.quoted for p in phrases])
        ok = (best_sim >= EXPANSION_MIN_SIMILARITY) & ~quoted
        return np.where(ok, best, -1), np.where(ok, best_sim, 0.0).astype(np.float32)

    def phrase_scores(self, phrases: Sequence[Phrase]) -> np.ndarray:
        """(len(phrases), papers) float32 relevance of each phrase to each paper."""
        if not phrases or not self.n:
            return np.zeros((len(phrases), self.n), dtype=np.float32)
        direct, q = self._direct(phrases)
        topic, sim = self.phrase_topics(phrases, q)
        has = topic >= 0
        if has.any():
            direct[has] += EXPANSION_WEIGHT * sim[has, None] * self.expansion_scores[topic[has]]
        # Rounded: the embedding of a phrase may differ in the last bits with the batch it was
        # computed in; one subscriber alone must rank exactly as within a chunk of thousands.
        return np.round(direct, 5)
