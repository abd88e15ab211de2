"""BM25 over title (counted twice) and abstract, with word bigrams so phrases outrank scattered words.

bm25s computes the term weights; scoring many phrases at once is one sparse product
(phrases x vocabulary) @ (vocabulary x papers), so a day's distinct interests cost one call.
"""

import math
import re
from collections.abc import Sequence

import bm25s
import numpy as np
import scipy.sparse as sp

from .text import STOPWORDS, Phrase, bigrams, contains_phrase, stem, tokens, words
from .thesaurus import concepts


def _bm25s_logging_as_configured() -> None:
    # bm25s sets its logger to DEBUG when it is imported, which is after Django applied LOGGING:
    # without this every index build logged "Building index" whatever the settings said.
    import logging

    from django.conf import settings

    if not settings.configured:
        return
    level = (getattr(settings, "LOGGING", None) or {}).get("loggers", {}).get("bm25s", {}).get("level")
    logging.getLogger("bm25s").setLevel(level or logging.NOTSET)


_bm25s_logging_as_configured()

TITLE_REPEAT = 2  # field boost by repetition: a word in the title counts as much as two in the abstract
BIGRAM_WEIGHT = 0.4


# "Our code and models are available at https://github.com/..." ends many abstracts: it says
# nothing about the topic, but would make every such paper match an interest in "code".
# Sentences with a link are dropped; sentence ends are a stop and a space before a capital.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_LINK = re.compile(r"https?://|www\.|github|huggingface\.co", re.IGNORECASE)


def strip_boilerplate(abstract: str) -> str:
    return " ".join(s for s in _SENTENCE_END.split(abstract) if not _LINK.search(s))


def _doc_terms(title: str, abstract: str) -> tuple[list[str], str]:
    t, a = tokens(title), tokens(strip_boilerplate(abstract))
    terms = t * TITLE_REPEAT + a + bigrams(t) * TITLE_REPEAT + bigrams(a)
    # "|" keeps a phrase from matching across the title/abstract boundary.
    return terms, f" {' '.join(t)} | {' '.join(a)} "


class LexicalIndex:
    def __init__(self, docs: Sequence[tuple[str, str]]):
        self.n_docs = len(docs)
        terms, self._joined = [], []
        for title, abstract in docs:
            doc_terms, joined = _doc_terms(title, abstract)
            terms.append(doc_terms or ["\x00empty"])
            self._joined.append(joined)
        self._bm25 = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
        if docs:
            self._bm25.index(terms, show_progress=False)
            s = self._bm25.scores
            self.weights = sp.csc_matrix(
                (s["data"], s["indices"], s["indptr"]), shape=(s["num_docs"], len(s["indptr"]) - 1)
            ).T.tocsr()  # vocabulary x papers
            self.vocab: dict[str, int] = self._bm25.vocab_dict
        else:
            self.weights = sp.csr_matrix((0, 0), dtype=np.float32)
            self.vocab = {}
        df: dict[str, int] = {}
        for doc_terms in terms:
            for term in set(doc_terms):
                df[term] = df.get(term, 0) + 1
        self._df = df

    def idf(self, term: str) -> float:
        """BM25's idf of a stemmed term (or bigram "a_b") on these papers."""
        df = self._df.get(term, 0)
        return math.log(1 + (self.n_docs - df + 0.5) / (df + 0.5))

    def _weighted(self, terms: dict[str, float]) -> tuple[dict[int, float], float]:
        """Query weights by vocabulary column, and the bound: the best a paper can do on a term is
        about its idf, and dividing by the sum makes scores comparable across queries (1.0 ~ every
        term, saturated)."""
        query: dict[int, float] = {}
        bound = 0.0
        for term, weight in terms.items():
            bound += weight * self.idf(term)
            if term in self.vocab:
                query[self.vocab[term]] = query.get(self.vocab[term], 0.0) + weight
        return query, bound

    def _query(self, phrase: Phrase) -> tuple[dict[int, float], float, list[list[dict[int, float]]]]:
        """The phrase's query, its bound, and per thesaurus concept the alternative queries.

        A concept's typed words (and the bigrams joining them to their neighbours) leave the main
        query and become the first of its alternatives; each other spelling is another, scaled so
        that matching it fully is worth what matching the typed words fully is. A paper scores
        the best alternative of each concept, once ("UAV" or "drone", never both), and the bound
        stays the typed phrase's. Several-word spellings count by their bigrams only, so they
        match as phrases ("unmanned aerial vehicle", not "vehicle").
        """
        typed = tokens(phrase.text)
        terms: dict[str, float] = dict.fromkeys(typed, 1.0)
        for term in bigrams(typed):
            terms.setdefault(term, BIGRAM_WEIGHT)
        found = [] if phrase.quoted else concepts(typed)
        slots: list[list[dict[int, float]]] = []
        moved: set[str] = set()
        previous_end = -1
        for concept in found:
            # The bigram joining two concepts ("clinical nlp") belongs to the first one only.
            before = typed[concept.start - 1] if concept.start > 0 and concept.start != previous_end else None
            previous_end = concept.end
            after = typed[concept.end] if concept.end < len(typed) else None
            own = self._spelling_terms(typed[concept.start : concept.end], before, after, strict=False)
            options = [self._weighted(own)]
            if options[0][1] <= 0:
                continue
            for alternative in concept.alternatives:
                query, bound = self._weighted(self._spelling_terms(list(alternative), before, after, strict=True))
                if query and bound > 0:
                    scale = options[0][1] / bound
                    options.append({col: w * scale for col, w in query.items()})
            if len(options) > 1:
                moved |= set(own)
                slots.append([options[0][0], *options[1:]])
        query, bound = self._weighted(terms)
        if moved:
            query, _ = self._weighted({t: w for t, w in terms.items() if t not in moved})
        # Papers write compounds both ways ("multi-task" / "multitask", "pre-training" /
        # "pretraining"): the other spelling, where the papers use it, counts as the typed one
        # (a synonym, so it does not raise the bound a paper is measured against).
        for term in self._compound_spellings(phrase):
            if term not in terms:
                query[self.vocab[term]] = query.get(self.vocab[term], 0.0) + 1.0
        return query, bound, slots

    @staticmethod
    def _spelling_terms(toks: list[str], before: str | None, after: str | None, *, strict: bool) -> dict[str, float]:
        """One spelling of a concept inside a phrase: its words (unless strict and several, when
        only its bigrams count), its own bigrams and the bigrams with the phrase's words around it."""
        terms: dict[str, float] = {} if strict and len(toks) > 1 else dict.fromkeys(toks, 1.0)
        around = ([before] if before else []) + toks + ([after] if after else [])
        for term in bigrams(around):
            terms.setdefault(term, 1.0 if strict and len(toks) > 1 and term in bigrams(toks) else BIGRAM_WEIGHT)
        return terms

    def _compound_spellings(self, phrase: Phrase) -> list[str]:
        """Vocabulary terms that spell a compound of the phrase the other way: typed words joined
        ("multi task" -> multitask), or a typed word split in two ("multitask" -> multi_task)."""
        if phrase.quoted:
            return []
        typed = [w for w in words(phrase.text) if w not in STOPWORDS]
        out = [stem(a + b) for a, b in zip(typed, typed[1:])]
        for w in typed:
            out += [f"{stem(w[:i])}_{stem(w[i:])}" for i in range(3, len(w) - 2)]
        return [t for t in out if t in self.vocab]

    def score(self, phrases: Sequence[Phrase]) -> np.ndarray:
        """(len(phrases), n_docs) float32 in [0, ~1]."""
        out = np.zeros((len(phrases), self.n_docs), dtype=np.float32)
        if not phrases or not self.n_docs:
            return out
        # Rows: each phrase's main query, then every alternative of every concept, a concept's
        # alternatives side by side so one maximum.reduceat picks each concept's best.
        rows: list[dict[int, float]] = []
        bounds, slot_phrase, slot_start, options = [], [], [], []
        for i, phrase in enumerate(phrases):
            query, bound, slots = self._query(phrase)
            rows.append(query)
            bounds.append(bound or 1.0)
            for slot in slots:
                slot_phrase.append(i)
                slot_start.append(len(options))
                options += slot
        scores = self._product(rows + options)
        out[:] = scores[: len(phrases)]
        if options:
            best = np.maximum.reduceat(scores[len(phrases) :], slot_start, axis=0)
            np.add.at(out, np.asarray(slot_phrase), best)
        out /= np.asarray(bounds, dtype=np.float32)[:, None]
        for i, phrase in enumerate(phrases):
            if phrase.quoted:
                out[i] *= self.phrase_mask(phrase)
        return out

    def _product(self, queries: list[dict[int, float]]) -> np.ndarray:
        rows, cols, vals = [], [], []
        for i, query in enumerate(queries):
            rows += [i] * len(query)
            cols += query.keys()
            vals += query.values()
        q = sp.csr_matrix((vals, (rows, cols)), shape=(len(queries), self.weights.shape[0]), dtype=np.float32)
        return (q @ self.weights).toarray()

    def phrase_mask(self, phrase: Phrase) -> np.ndarray:
        """1.0 where the paper contains the phrase's words contiguously, else 0.0."""
        toks = tokens(phrase.text)
        return np.fromiter((contains_phrase(j, toks) for j in self._joined), dtype=np.float32, count=self.n_docs)
