"""Sending ranks with stored vectors only: the same picks as in-process hybrid, and never the model.

Planning (on the `matching` queue) stores every phrase and topic vector the day's readers need;
a sending worker then ranks inside semantic.vectors_only(). A vector still missing at send time
is asked for on the matching queue and the chunk waits, claiming nothing; after the last wait
the digest is ranked lexically, with a warning in the log.
"""

import datetime
import json
import logging

import pytest

from digest.matching import selection, semantic
from digest.matching.scoring import phrase_texts
from digest.matching.text import parse_interests
from digest.matching.vectors import VectorsMissing, phrase_key
from digest.models import Delivery, PhraseVector
from digest.services import delivery as delivery_service
from digest.services.classify import papers_embed
from digest.services.delivery import VECTOR_WAIT_COUNTDOWNS, deliveries_plan, deliveries_send_chunk
from tests.digest_support import SITE
from tests.factories import PaperFactory, SubscriberFactory, TrendingEntryFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not semantic.available(), reason="the semantic extra (torch) is not installed"),
]

DAY = datetime.date(2026, 3, 12)
MORNING = datetime.datetime(2026, 3, 12, 8, 0, tzinfo=datetime.UTC)
PAPERS = [
    ("Diffusion Policies for Robot Manipulation", "We train robot manipulation policies with diffusion models on real robots."),
    ("Text-to-Video Generation with Latent Diffusion", "A video generation model that makes consistent clips from text prompts."),
    ("Quantizing Large Language Models to 4 Bits", "Post-training quantization of LLM weights keeps accuracy and cuts memory."),
    ("Segment Anything in Medical Images", "We adapt segmentation models to medical imaging: CT and MRI scans."),
    ("Scaling Laws for Reward Model Overoptimization", "RLHF overoptimizes the reward model; we fit scaling laws."),
    ("Speech Synthesis with Neural Codec Language Models", "Text-to-speech with an audio codec language model sounds natural."),
    ("Graph Neural Networks for Molecules", "Message passing networks predict molecular properties for drug discovery."),
    ("Learning Robot Locomotion in Simulation", "Legged robots trained with reinforcement learning in simulation transfer to reality."),
]
INTERESTS = ["robot learning, manipulation", "video generation", "drones", '"language models", quantization',
             "medical imaging", "", "speech synthesis, graphs"]


@pytest.fixture(autouse=True)
def _hybrid(settings):
    settings.SITE_URL = SITE
    settings.MATCHING_METHOD = "hybrid"
    _forget_vectors()
    yield
    _forget_vectors()


def _forget_vectors():
    """As a freshly started worker: no phrase vectors and no day index in memory."""
    semantic._phrase_cache.clear()
    selection._cache.clear()
    delivery_service._render_cache.clear()


@pytest.fixture
def day_papers():
    papers = []
    for rank, (title, abstract) in enumerate(PAPERS, 1):
        paper = PaperFactory(title=title, abstract=abstract)
        TrendingEntryFactory(paper=paper, date=DAY, rank=rank, upvotes=100 - rank)
        papers.append(paper)
    papers_embed(paper_ids=[p.pk for p in papers])  # what the matching worker does after import
    return papers


@pytest.fixture
def readers(day_papers):
    return [SubscriberFactory(interests=INTERESTS[n % len(INTERESTS)], digest_size=5) for n in range(14)]


@pytest.fixture
def queued(monkeypatch):
    """Tasks the send path queues, recorded instead of sent to the broker."""
    from digest.tasks import classify as classify_tasks
    from digest.tasks import sending as sending_tasks

    out = {"vectors": [], "chunks": []}
    monkeypatch.setattr(classify_tasks.vectors_store_task, "delay", lambda **kw: out["vectors"].append(kw))
    monkeypatch.setattr(
        sending_tasks.deliveries_send_chunk_task, "apply_async",
        lambda args=(), kwargs=None, **options: out["chunks"].append((args, kwargs or {}, options)),
    )
    return out


def _picks(result):
    return {sid: [(p.paper_id, p.score, p.reasons, p.trending) for p in picks] for sid, picks in result.items()}


def test_planning_stores_a_vector_for_every_phrase_and_topic_sending_will_rank_with(readers):
    deliveries_plan(now=MORNING, ignore_hour=True)
    stored = set(PhraseVector.objects.values_list("text", flat=True))
    assert {"robot learning", "manipulation", "drones", "language models", "speech synthesis", "graphs"} <= stored
    from digest.models import Topic

    assert all(f"{t.name}: {t.description}" in stored for t in Topic.objects.filter(active=True))
    assert PhraseVector.objects.filter(key=phrase_key("drones")).count() == 1


def test_ranking_with_stored_vectors_only_picks_exactly_what_in_process_hybrid_picks(readers):
    in_process = _picks(selection.select_for_subscribers(subscribers=readers, day=DAY))
    _forget_vectors()  # planning embeds afresh, in batches of its own
    deliveries_plan(now=MORNING, ignore_hour=True)
    _forget_vectors()
    with semantic.vectors_only():
        stored_only = _picks(selection.select_for_subscribers(subscribers=readers, day=DAY))
    assert stored_only == in_process
    assert any(reason.startswith("matches your interest") for picks in stored_only.values() for _, _, r, _ in picks
               for reason in r)


def test_inside_vectors_only_a_phrase_without_a_stored_vector_raises_instead_of_loading_the_model(readers):
    deliveries_plan(now=MORNING, ignore_hour=True)
    _forget_vectors()
    newcomer = SubscriberFactory(interests="bandits, model merging")
    with semantic.vectors_only(), pytest.raises(VectorsMissing) as missing:
        selection.select_for_subscribers(subscribers=[*readers, newcomer], day=DAY)
    # With the thesaurus' respellings ("bandits" -> "mab", "multi armed bandit"), whose vectors
    # make up the phrase's.
    wanted = phrase_texts(parse_interests("bandits, model merging"))
    assert {"bandits", "mab", "multi armed bandit", "model merging"} <= set(wanted)
    assert sorted(missing.value.texts) == sorted(wanted)
    with semantic.vectors_only(), pytest.raises(semantic.ModelNotAllowed):
        semantic.embed(["bandits"])


def test_a_missing_vector_at_send_time_claims_nothing_asks_the_matching_queue_and_waits(readers, queued, smtp_sink):
    deliveries_plan(now=MORNING, ignore_hour=True)
    PhraseVector.objects.filter(text="drones").delete()  # as if interests changed after planning
    _forget_vectors()
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    result = deliveries_send_chunk(delivery_ids=ids, now=MORNING)
    assert result.sent == 0 and result.waiting == len(ids)
    assert smtp_sink.messages == []
    assert set(Delivery.objects.values_list("state", "attempts")) == {(Delivery.State.PENDING, 0)}
    assert len(queued["vectors"]) == 1 and sorted(queued["vectors"][0]["subscriber_ids"]) == sorted(r.pk for r in readers)
    (args, kwargs, options), = queued["chunks"]
    assert args == [ids] and kwargs == {"vector_waits": 1} and options["countdown"] == VECTOR_WAIT_COUNTDOWNS[0]


def test_once_the_vector_is_stored_the_waiting_chunk_sends_the_hybrid_digest(readers, queued, smtp_sink):
    expected = _picks(selection.select_for_subscribers(subscribers=readers, day=DAY))
    _forget_vectors()
    deliveries_plan(now=MORNING, ignore_hour=True)
    PhraseVector.objects.filter(text="drones").delete()
    _forget_vectors()
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    deliveries_send_chunk(delivery_ids=ids, now=MORNING)
    from digest.tasks.classify import vectors_store_task

    vectors_store_task.run(**queued["vectors"][0])  # the matching worker's turn
    result = deliveries_send_chunk(delivery_ids=ids, now=MORNING, vector_waits=1)
    assert result.sent == len(readers) and len(smtp_sink.messages) == len(readers)
    sent = dict(Delivery.objects.values_list("subscriber_id", "paper_ids"))
    assert sent == {sid: [paper_id for paper_id, *_ in picks] for sid, picks in expected.items()}


def test_after_the_last_wait_it_sends_a_lexical_digest_and_says_so_in_the_log(readers, queued, smtp_sink, caplog):
    deliveries_plan(now=MORNING, ignore_hour=True)
    PhraseVector.objects.filter(text="drones").delete()
    _forget_vectors()
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    with caplog.at_level(logging.WARNING, logger="digest.services.delivery"):
        result = deliveries_send_chunk(delivery_ids=ids, now=MORNING, vector_waits=len(VECTOR_WAIT_COUNTDOWNS))
    assert result.sent == len(readers) and queued["chunks"] == []
    assert any("ranked lexically" in r.getMessage() and "is a matching worker running" in r.getMessage()
               for r in caplog.records)


def test_a_confirmed_reader_saving_interests_queues_their_phrase_vectors_on_the_matching_queue(
    settings, django_capture_on_commit_callbacks
):
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("matching")
    with django_capture_on_commit_callbacks(execute=True):
        pending = SubscriberFactory(status="pending", interests="robot learning")
    with django_capture_on_commit_callbacks(execute=True):
        pending.status = "confirmed"
        pending.save()
    with django_capture_on_commit_callbacks(execute=True):
        pending.save(update_fields=["paused_until"])  # nothing ranking reads changed
    messages = [json.loads(m) for m in client.lrange("matching", 0, -1)]
    assert [m["headers"]["task"] for m in messages] == ["digest.tasks.vectors_store_task"]


def test_saving_a_reader_queues_their_vectors_without_loading_the_matching_stack_in_the_saving_process(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    """The web process saves readers (manage page, confirm) and never imports numpy/scipy: the
    receiver only queues; whether vectors are wanted is the matching worker's question."""
    import redis

    from digest.tasks import classify as classify_tasks

    def no_matching_stack():
        raise AssertionError("the saving process loaded digest.services.classify")

    monkeypatch.setattr(classify_tasks, "_classify", no_matching_stack)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("matching")
    with django_capture_on_commit_callbacks(execute=True):
        SubscriberFactory(status="confirmed", interests="robot learning")
    messages = [json.loads(m) for m in client.lrange("matching", 0, -1)]
    assert [m["headers"]["task"] for m in messages] == ["digest.tasks.vectors_store_task"]


def test_a_full_phrase_cache_keeps_the_phrases_a_chunk_is_about_to_rank_with(readers, monkeypatch):
    """The in-process cache starts over when full, but never drops what the caller reads next:
    a sending chunk loads its phrases' stored vectors and then ranks inside vectors_only()."""
    from digest.matching import vectors

    deliveries_plan(now=MORNING, ignore_hour=True)  # stores every vector these readers need
    texts = ["robot learning", "manipulation"]
    semantic._phrase_cache.clear()
    semantic.embed_phrases([*texts, "an old phrase"])
    monkeypatch.setattr(semantic, "PHRASE_CACHE_SIZE", len(semantic._phrase_cache) + 1)
    with semantic.vectors_only():
        vectors.phrase_vectors_require(texts=[*texts, "drones", "graphs"])  # two more: over the size
        assert semantic.embed_phrases(texts).shape == (2, semantic.DIM)  # no model needed
    assert "an old phrase" not in semantic._phrase_cache  # it did start over


def test_confirming_through_the_link_queues_the_readers_phrase_vectors(settings, django_capture_on_commit_callbacks):
    """Confirming is a conditional UPDATE (no post_save), yet the matching worker must hear of it."""
    import redis

    from subscriptions.services import subscriber_confirm

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    pending = SubscriberFactory(status="pending", interests="robot learning")
    client.delete("matching")
    with django_capture_on_commit_callbacks(execute=True):
        assert subscriber_confirm(subscriber=pending, ip="127.0.0.1", user_agent="test")
    with django_capture_on_commit_callbacks(execute=True):
        assert subscriber_confirm(subscriber=pending, ip="127.0.0.1", user_agent="test")  # a double click
    messages = [json.loads(m) for m in client.lrange("matching", 0, -1)]
    assert [m["headers"]["task"] for m in messages] == ["digest.tasks.vectors_store_task"]
