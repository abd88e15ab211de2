"""Paper and phrase embeddings and topic classification: the writes behind matching.

`papers_embed` stores each paper's sentence vector once (the worker does it after import);
`phrase_vectors_store` does the same for interest phrases and topic texts (when a subscriber
saves interests, and at planning), so sending ranks with stored vectors and never loads the
model; `papers_classify` scores papers against every active topic and upserts PaperTopic rows,
leaving curators' overrides alone. All of them run on the `matching` queue.
"""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models import Count, Q
from django.utils.translation import ngettext

from digest.matching import semantic
from digest.matching.scoring import PaperSet, TopicSpec, embed_papers, phrase_texts, resolve_method
from digest.matching.text import parse_interests
from digest.matching.vectors import phrase_key, phrase_vectors_stored
from digest.models import Paper, PaperTopic, PhraseVector, Topic
from digest.plurals import counted

log = logging.getLogger(__name__)

BATCH = 256
# Papers scored together share one BM25 index; a batch of one would make every word "rare".
# The most recent papers are added as background so term weights are those of the field.
BACKGROUND = 300


def papers_embed(*, paper_ids: list[int] | None = None, force: bool = False) -> int:
    """Compute and store embeddings for papers that lack one (or all given, with force). Returns how many.

    A no-op without the semantic extra or when MATCHING_METHOD is lexical.
    """
    if not semantic.available() or resolve_method(settings.MATCHING_METHOD) == "lexical":
        return 0
    papers = Paper.objects.all() if paper_ids is None else Paper.objects.filter(pk__in=paper_ids)
    if not force:
        papers = papers.filter(embedding__isnull=True)
    ids = list(papers.order_by("pk").values_list("pk", flat=True))
    done = 0
    for start in range(0, len(ids), BATCH):
        batch = list(Paper.objects.filter(pk__in=ids[start : start + BATCH]).only("pk", "title", "abstract"))
        vectors = embed_papers([(p.title, p.abstract) for p in batch])
        for paper, vector in zip(batch, vectors):
            paper.embedding = semantic.to_bytes(vector)
        Paper.objects.bulk_update(batch, ["embedding"])
        done += len(batch)
    return done


def vectors_wanted() -> bool:
    """Does ranking here use embeddings (semantic extra installed, method not lexical)?"""
    return semantic.available() and resolve_method(settings.MATCHING_METHOD) != "lexical"


def matching_texts(*, interests: Iterable[str]) -> list[str]:
    """Every short text ranking embeds for these interests: the active topics' texts, each phrase and
    its thesaurus respellings (scoring.phrase_texts)."""
    texts = [
        TopicSpec(t.id, t.name, t.description, t.query).text
        for t in Topic.objects.filter(active=True).order_by("position", "name", "id")
    ]
    for value in set(interests):
        texts += phrase_texts(parse_interests(value))
    return list(dict.fromkeys(texts))


def phrase_vectors_store(*, texts: Sequence[str]) -> int:
    """Compute and store the vectors of texts that have none in the database; returns how many were added.

    The database is asked, not the in-process cache: a phrase this process embedded for its own
    ranking may never have been stored. A no-op where ranking uses no embeddings.
    """
    if not texts or not vectors_wanted():
        return 0
    stored = phrase_vectors_stored(texts=texts)
    missing = [t for t in dict.fromkeys(texts) if t not in stored]
    if not missing:
        return 0
    vectors = semantic.embed_phrases(missing)
    PhraseVector.objects.bulk_create(
        [PhraseVector(key=phrase_key(t), text=t, vector=semantic.to_bytes(v)) for t, v in zip(missing, vectors)],
        ignore_conflicts=True,  # two matching workers on the same phrase: the vector is the same
        batch_size=500,
    )
    return len(missing)


def vectors_store(*, subscriber_ids: Sequence[int] = (), paper_ids: Sequence[int] = ()) -> int:
    """Everything ranking these subscribers against these papers needs stored; returns vectors added."""
    if not vectors_wanted():
        return 0
    from subscriptions.models import Subscriber

    interests = Subscriber.objects.filter(pk__in=list(subscriber_ids)).values_list("interests", flat=True)
    return vectors_store_for(interests=interests, paper_ids=paper_ids)


def vectors_store_for(*, interests: Iterable[str], paper_ids: Sequence[int] = ()) -> int:
    """As vectors_store, for interests already at hand (planning has the due readers loaded)."""
    if not vectors_wanted():
        return 0
    added = phrase_vectors_store(texts=matching_texts(interests=interests))
    return added + (papers_embed(paper_ids=list(paper_ids)) if paper_ids else 0)


def _background(exclude: set[int], *, with_embeddings: bool) -> list[Paper]:
    papers = Paper.objects.exclude(pk__in=exclude)
    if with_embeddings:  # never embed background papers on the fly (the worker does that)
        papers = papers.filter(embedding__isnull=False)
    return list(papers.order_by("-published_on", "-pk").only("pk", "title", "abstract", "embedding")[:BACKGROUND])


def papers_classify(*, paper_ids: list[int], topic_ids: list[int] | None = None) -> int:
    """Score papers against the active topics (or only topic_ids) and store the scores.

    Overrides are never touched: a curator's True/False wins in matching whatever the score.
    Returns the number of (paper, topic) scores written.
    """
    topics = Topic.objects.filter(active=True).order_by("position", "name", "id")
    if topic_ids is not None:
        topics = topics.filter(pk__in=topic_ids)
    topics = list(topics)
    if not topics or not paper_ids:
        return 0
    method = resolve_method(settings.MATCHING_METHOD)
    specs = [TopicSpec(t.id, t.name, t.description, t.query) for t in topics]
    if method != "lexical":
        # Stored, so the admin's topic-query preview (a web process: no model) scores as we do.
        phrase_vectors_store(texts=[spec.text for spec in specs])
    written = 0
    ids = sorted(set(paper_ids))
    for start in range(0, len(ids), BATCH):
        batch_ids = ids[start : start + BATCH]
        if method != "lexical":
            papers_embed(paper_ids=batch_ids)  # stored once; no-op for papers that have one
        targets, scores = _batch_topic_scores(batch_ids=batch_ids, specs=specs, method=method)
        rows = [
            PaperTopic(paper_id=paper.pk, topic_id=topic.pk, score=round(float(scores[i, j]), 4))
            for j, paper in enumerate(targets)
            for i, topic in enumerate(topics)
        ]
        PaperTopic.objects.bulk_create(
            rows, batch_size=1000, update_conflicts=True, unique_fields=["paper", "topic"], update_fields=["score"]
        )
        written += len(rows)
    return written


def _batch_topic_scores(*, batch_ids: list[int], specs: list[TopicSpec], method: str) -> tuple[list[Paper], np.ndarray]:
    """The papers of one classification batch and their (topics, papers) scores; writes nothing.

    A paper's lexical score depends on the papers it is indexed with (BM25's term weights), so
    whoever must agree with the stored scores scores the same batch, with the same background.
    """
    targets = list(Paper.objects.filter(pk__in=batch_ids).only("pk", "title", "abstract", "embedding"))
    papers = targets + _background({p.pk for p in targets}, with_embeddings=method != "lexical")
    embeddings = None
    if method != "lexical":
        vectors = [semantic.from_bytes(p.embedding) for p in papers]
        missing = [j for j, v in enumerate(vectors) if v is None]
        if missing:
            fresh = embed_papers([(papers[j].title, papers[j].abstract) for j in missing])
            for j, v in zip(missing, fresh):
                vectors[j] = v
        embeddings = np.stack(vectors)
    paperset = PaperSet(docs=[(p.title, p.abstract) for p in papers], topics=specs, method=method, embeddings=embeddings)
    return targets, paperset.topic_scores


@dataclass
class TopicScoring:
    scores: dict[int, float]  # paper id -> the score saving the topic would store
    method: str  # the scorer used: the configured one, or "lexical" when its vectors are missing here
    fallback_reason: str = ""


def topic_scores_unsaved(*, spec: TopicSpec, paper_ids: list[int]) -> TopicScoring:
    """The scores these papers would get for a topic as typed, exactly as saving it would store them.

    Saving a topic's query re-classifies every paper (topic_reclassify: all ids in BATCH-sized
    batches), so these papers are scored in the batches that puts them in. Runs inside
    vectors_only(): the caller is a web process, which never loads the model. When the configured
    method needs a vector nobody has stored (a new or re-worded name and description, a paper the
    worker has not embedded yet) it falls back to the lexical scorer and says why.
    """
    from digest.matching.vectors import VectorsMissing, phrase_vectors_require

    method = resolve_method(settings.MATCHING_METHOD)
    wanted = set(paper_ids)
    all_ids = list(Paper.objects.order_by("pk").values_list("pk", flat=True))
    batches = [all_ids[i : i + BATCH] for i in range(0, len(all_ids), BATCH)]
    batches = [b for b in batches if wanted.intersection(b)]
    reason = ""
    if method != "lexical":
        unembedded = Paper.objects.filter(pk__in=[pk for b in batches for pk in b], embedding__isnull=True).count()
        if unembedded:
            reason = (
                f"{counted(unembedded, 'paper', 'papers')} {ngettext('is', 'are', unembedded)} not embedded yet "
                "(the matching worker does that after an import)"
            )
        else:
            try:
                with semantic.vectors_only():
                    phrase_vectors_require(texts=[spec.text])
            except VectorsMissing:
                reason = "the topic's name and description, as typed, have no stored vector yet (saving stores one)"
        if reason:
            method = "lexical"
    scores: dict[int, float] = {}
    with semantic.vectors_only():
        for batch_ids in batches:
            targets, batch_scores = _batch_topic_scores(batch_ids=batch_ids, specs=[spec], method=method)
            for j, paper in enumerate(targets):
                if paper.pk in wanted:
                    scores[paper.pk] = round(float(batch_scores[0, j]), 4)  # as stored
    return TopicScoring(scores=scores, method=method, fallback_reason=reason)


def topic_reclassify(*, topic_id: int) -> int:
    """After a topic's query changed: rescore every paper against that topic only."""
    ids = list(Paper.objects.order_by("pk").values_list("pk", flat=True))
    return papers_classify(paper_ids=ids, topic_ids=[topic_id])


def papers_missing_scores() -> list[int]:
    """Papers without a score for some active topic (new papers, or a topic added since)."""
    active = Topic.objects.filter(active=True).count()
    if not active:
        return []
    return list(
        Paper.objects.annotate(
            scored=Count("topic_scores", filter=Q(topic_scores__topic__active=True))
        )
        .filter(scored__lt=active)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def papers_classify_missing(*, everything: bool = False) -> tuple[int, int]:
    """The safety net (beat, `manage.py classify_papers`): embed and classify what was missed.

    Returns (papers embedded, papers classified).
    """
    embedded = papers_embed()
    ids = list(Paper.objects.order_by("pk").values_list("pk", flat=True)) if everything else papers_missing_scores()
    papers_classify(paper_ids=ids)
    return embedded, len(ids)
