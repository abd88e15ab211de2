"""Matching behaviour: hidden never, pinned first, sent never, top-up marked, reasons, one == many."""

import datetime
import json
import os
import subprocess
import sys

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from digest.matching import select_for_subscriber, select_for_subscribers
from digest.matching.text import parse_interests, parse_query
from digest.models import Delivery, Paper, PaperTopic, SentPaper, Topic
from digest.services.classify import papers_classify, papers_classify_missing
from digest.signals import papers_changed
from tests.factories import PaperFactory, SubscriberFactory, TrendingEntryFactory

DAY = datetime.date(2024, 4, 3)

PAPERS = [
    ("Diffusion Policies for Robot Manipulation", "We train robot manipulation policies with diffusion models on real robots for grasping."),
    ("Text-to-Video Generation with Latent Diffusion", "A video generation model that synthesizes temporally consistent video clips from text prompts."),
    ("Quantizing Large Language Models to 4 Bits", "Post-training quantization of LLM weights keeps accuracy while cutting memory for inference."),
    ("Segment Anything in Medical Images", "We adapt segmentation models to medical imaging: CT and MRI scans of patients."),
    ("Scaling Laws for Reward Model Overoptimization", "Reinforcement learning from human feedback overoptimizes the reward model; we fit scaling laws."),
    ("Speech Synthesis with Neural Codec Language Models", "Text-to-speech synthesis with an audio codec language model produces natural speech."),
    ("Graph Neural Networks for Molecules", "Message passing graph neural networks predict molecular properties for drug discovery."),
    ("A Benchmark of Code Generation Agents", "We evaluate LLM agents that write code for software engineering tasks and fix bugs."),
    ("World Models Learn Physics from Video", "A world model predicts future frames and learns intuitive physics."),
    ("Learning Robot Locomotion in Simulation", "Legged robot locomotion controllers trained with reinforcement learning in simulation transfer to real robots."),
    ("Retrieval-Augmented Generation for Open-Domain QA", "A retriever fetches passages that a generator conditions on to answer questions."),
    ("Efficient Attention Kernels for GPUs", "We write fused attention kernels that speed up transformer training on GPUs."),
]


@pytest.fixture
def day_papers(settings):
    settings.MATCHING_METHOD = "lexical"
    papers = []
    for rank, (title, abstract) in enumerate(PAPERS, 1):
        paper = PaperFactory(title=title, abstract=abstract)
        TrendingEntryFactory(paper=paper, date=DAY, rank=rank, upvotes=100 - rank)
        papers.append(paper)
    return papers


def titles(picks):
    return [p.paper.title for p in picks]


@pytest.mark.django_db
def test_it_puts_the_papers_matching_the_interests_first(day_papers):
    subscriber = SubscriberFactory(interests="robot learning, manipulation", digest_size=5)
    picks = select_for_subscriber(subscriber=subscriber, day=DAY)
    assert titles(picks)[:2] == ["Diffusion Policies for Robot Manipulation", "Learning Robot Locomotion in Simulation"]
    assert picks[0].reasons[0] == "matches your interest 'manipulation'" or picks[0].reasons[0] == (
        "matches your interest 'robot learning'"
    )
    assert not picks[0].trending


@pytest.mark.django_db
def test_it_never_includes_hidden_papers_even_when_pinned_or_passed_explicitly(day_papers):
    robot = day_papers[0]
    Paper.objects.filter(pk=robot.pk).update(hidden=True, pinned=True)
    subscriber = SubscriberFactory(interests="robot manipulation", digest_size=30)
    for candidate_ids in (None, [p.id for p in day_papers]):
        picks = select_for_subscriber(subscriber=subscriber, day=DAY, candidate_ids=candidate_ids)
        assert robot.id not in [p.paper_id for p in picks]
        assert len(picks) == len(day_papers) - 1


@pytest.mark.django_db
def test_it_puts_pinned_papers_first_whatever_their_relevance(day_papers):
    kernels = day_papers[-1]
    Paper.objects.filter(pk=kernels.pk).update(pinned=True)
    subscriber = SubscriberFactory(interests="speech synthesis", digest_size=5)
    picks = select_for_subscriber(subscriber=subscriber, day=DAY)
    assert picks[0].paper_id == kernels.id
    assert picks[0].pinned and not picks[0].trending
    assert picks[0].reasons == ["pinned by the editors"]
    assert picks[1].paper.title == "Speech Synthesis with Neural Codec Language Models"


@pytest.mark.django_db
def test_it_never_repeats_a_paper_already_sent_to_that_subscriber(day_papers):
    subscriber = SubscriberFactory(interests="robot learning", digest_size=30)
    other = SubscriberFactory(interests="robot learning", digest_size=30)
    SentPaper.objects.create(subscriber=subscriber, paper=day_papers[0], sent_on=DAY - datetime.timedelta(days=1))
    SentPaper.objects.create(subscriber=subscriber, paper=day_papers[5], sent_on=DAY - datetime.timedelta(days=1))
    picks = select_for_subscribers(subscribers=[subscriber, other], day=DAY)
    mine = [p.paper_id for p in picks[subscriber.id]]
    assert day_papers[0].id not in mine and day_papers[5].id not in mine
    assert len(mine) == len(day_papers) - 2
    assert day_papers[0].id in [p.paper_id for p in picks[other.id]]


@pytest.mark.django_db
@time_machine.travel(datetime.datetime(2024, 4, 3, 12, tzinfo=datetime.UTC), tick=False)  # sent on the edition's day
def test_it_tops_up_with_the_days_trending_papers_marked_as_such(day_papers):
    subscriber = SubscriberFactory(interests="speech synthesis", digest_size=5)
    picks = select_for_subscriber(subscriber=subscriber, day=DAY)
    assert len(picks) == 5
    assert picks[0].paper.title == "Speech Synthesis with Neural Codec Language Models"
    assert not picks[0].trending
    top_up = picks[1:]
    assert all(p.trending for p in top_up)
    # In trending order, skipping the paper already chosen (#6).
    assert [p.reasons for p in top_up] == [["trending #1 today"], ["trending #2 today"], ["trending #3 today"], ["trending #4 today"]]


@pytest.mark.django_db
def test_it_leaves_out_papers_below_the_relevance_threshold(day_papers):
    subscriber = SubscriberFactory(interests="protein folding, quantum chemistry", digest_size=5)
    picks = select_for_subscriber(subscriber=subscriber, day=DAY)
    assert all(p.trending for p in picks)
    assert [p.paper_id for p in picks] == [p.id for p in day_papers[:5]]


@pytest.mark.django_db
def test_every_pick_carries_a_reason(day_papers):
    speech = Topic.objects.get(slug="speech-audio")
    subscriber = SubscriberFactory(interests="", digest_size=8)
    subscriber.topics.add(speech)
    picks = select_for_subscriber(subscriber=subscriber, day=DAY)
    assert picks and all(p.reasons for p in picks)
    assert picks[0].paper.title == "Speech Synthesis with Neural Codec Language Models"
    assert picks[0].reasons[0] == "topic: Speech and audio"


@pytest.mark.django_db
def test_interests_outweigh_topics(day_papers):
    subscriber = SubscriberFactory(interests="video generation", digest_size=5)
    subscriber.topics.add(Topic.objects.get(slug="graphs"))
    picks = select_for_subscriber(subscriber=subscriber, day=DAY)
    assert picks[0].paper.title == "Text-to-Video Generation with Latent Diffusion"
    assert "Graph Neural Networks for Molecules" in titles(picks)


@pytest.mark.django_db
def test_a_quoted_interest_must_match_as_a_phrase(day_papers):
    loose = SubscriberFactory(interests="robot simulation", digest_size=5)
    quoted = SubscriberFactory(interests='"robot simulation"', digest_size=5)
    picks = select_for_subscribers(subscribers=[loose, quoted], day=DAY)
    assert not picks[loose.id][0].trending
    # No paper has the words "robot simulation" next to each other.
    assert all(p.trending for p in picks[quoted.id])


def test_a_compound_matches_however_the_paper_spells_it():
    from digest.matching.lexical import LexicalIndex
    from digest.matching.text import Phrase

    index = LexicalIndex(
        [
            ("Pruning multitask CNNs", "We prune multitask networks for dense prediction."),
            ("Routing adapters", "Adapters are pre-trained on a multi-task mixture."),
            ("Image deblurring", "A network learns the distribution of sharp images."),
        ]
    )
    joined, split = index.score([Phrase("multi-task"), Phrase("multitask")])
    assert joined[0] > 0 and joined[1] > 0 and joined[2] == 0
    assert split[0] > 0 and split[1] > 0 and split[2] == 0
    # Quoted: as written only.
    assert index.score([Phrase("multi-task", quoted=True)])[0][0] == 0


def test_an_interest_widened_to_its_topic_gains_nothing_from_the_topics_typical_score():
    import numpy as np

    from digest.matching.scoring import PaperSet, TopicSpec
    from digest.matching.text import Phrase

    docs = [(f"Paper {i}", "An abstract about nothing in particular.") for i in range(10)]
    docs[0] = ("Soft robot locomotion", "Robots learn to walk.")
    topic = TopicSpec(1, "Robotics", "robots and control", "robot, robotics, locomotion")
    # Every paper scores a little on every topic (a word like "control" is everywhere); paper 0 is
    # the robotics paper.
    typical = np.full((1, 10), 0.12, dtype=np.float32)
    typical[0, 0] = 0.9
    papers = PaperSet(docs=docs, topics=[topic], method="lexical", topic_scores=typical)
    scores = papers.phrase_scores([Phrase("robotics")])[0]
    assert scores[0] > 0.3
    assert (scores[1:] == 0).all()


def test_interests_split_on_commas_and_keep_quoted_phrases():
    phrases = parse_interests('robot learning, "world models" ,  , LLM inference; speech')
    assert [(p.text, p.quoted) for p in phrases] == [
        ("robot learning", False),
        ("world models", True),
        ("LLM inference", False),
        ("speech", False),
    ]
    assert [(p.text, p.quoted) for p in parse_query('robot manipulation "robot learning"')] == [
        ("robot learning", True),
        ("robot", False),
        ("manipulation", False),
    ]


@pytest.mark.parametrize(
    "typed, phrases",
    [('“world models”, robot learning', [("world models", True), ("robot learning", False)]),  # iOS smart punctuation
     ("„world models“", [("world models", True)]),
     ("I’m interested in medical imaging and clinical NLP", [("medical imaging", False), ("clinical NLP", False)]),
     # a quote left open quotes the rest of its piece, not the whole line
     ('robot learning, "world models', [("robot learning", False), ("world models", True)]),
     ('"world models, robot learning', [("world models", True), ("robot learning", False)])],
)  # fmt: skip
def test_curly_quotes_and_a_quote_left_open_mean_what_their_writer_meant(typed, phrases):
    assert [(p.text, p.quoted) for p in parse_interests(typed)] == phrases


def test_a_topic_query_reads_curly_quotes_as_quotes():
    assert [(p.text, p.quoted) for p in parse_query("robot “robot learning”")] == [("robot learning", True), ("robot", False)]


@pytest.mark.parametrize(
    "typed, phrases",
    [
        ("I'm interested in medical imaging and clinical NLP", ["medical imaging", "clinical NLP"]),
        ("papers on graph neural networks & drug discovery", ["graph neural networks", "drug discovery"]),
        ("Interests: LLM serving / speech recognition.", ["LLM serving", "speech recognition"]),
        ("I am mostly interested in RL", ["RL"]),
        # "and" inside one interest stays: a one-word side is not an interest of its own.
        ("Chinese and Thai language models", ["Chinese and Thai language models"]),
        ("vision and language, CLIP and image retrieval", ["vision and language", "CLIP and image retrieval"]),
        ("topic modeling", ["topic modeling"]),
    ],
)
def test_interests_typed_as_a_sentence_are_read_as_the_list_they_name(typed, phrases):
    assert [p.text for p in parse_interests(typed)] == phrases


@pytest.mark.django_db
def test_one_subscriber_gets_exactly_what_the_bulk_path_gives_them(day_papers):
    topics = list(Topic.objects.all()[:6])
    interests = ["robot learning, manipulation", "video generation", '"large language models", quantization',
                 "", "medical imaging, clinical NLP", "speech synthesis, graphs", "reinforcement learning"]
    people = []
    for n in range(21):
        s = SubscriberFactory(interests=interests[n % len(interests)], digest_size=5 + n % 7)
        s.topics.add(*topics[n % 3 : n % 3 + n % 4])
        if n % 4 == 0:
            SentPaper.objects.create(subscriber=s, paper=day_papers[n % len(day_papers)], sent_on=DAY)
        people.append(s)
    Paper.objects.filter(pk=day_papers[3].pk).update(pinned=True)
    bulk = select_for_subscribers(subscribers=people, day=DAY)
    for s in people:
        alone = select_for_subscriber(subscriber=s, day=DAY)
        assert [(p.paper_id, p.score, p.reasons, p.trending, p.pinned) for p in alone] == [
            (p.paper_id, p.score, p.reasons, p.trending, p.pinned) for p in bulk[s.id]
        ]
        assert len(alone) == s.digest_size


@pytest.mark.django_db
def test_the_bulk_path_costs_the_same_queries_for_ten_or_fifty_subscribers(day_papers, django_assert_max_num_queries):
    people = [SubscriberFactory(interests="robot learning") for _ in range(50)]
    select_for_subscribers(subscribers=people[:10], day=DAY)  # warms the day's index
    with django_assert_max_num_queries(12):
        select_for_subscribers(subscribers=people, day=DAY)


@pytest.mark.django_db
def test_a_curators_override_wins_over_the_classifier(day_papers):
    graphs = Topic.objects.get(slug="graphs")
    papers_classify(paper_ids=[p.id for p in day_papers])
    molecules = day_papers[6]
    assert PaperTopic.objects.get(paper=molecules, topic=graphs).score > 0.3
    PaperTopic.objects.filter(paper=molecules, topic=graphs).update(override=False)
    kernels = day_papers[-1]
    PaperTopic.objects.filter(paper=kernels, topic=graphs).update(override=True)
    papers_classify(paper_ids=[p.id for p in day_papers])  # re-scoring keeps overrides
    assert PaperTopic.objects.get(paper=molecules, topic=graphs).override is False
    subscriber = SubscriberFactory(digest_size=5)
    subscriber.topics.add(graphs)
    picks = select_for_subscriber(subscriber=subscriber, day=DAY)
    assert picks[0].paper_id == kernels.id and picks[0].reasons[0] == "topic: Graphs"
    assert molecules.id not in [p.paper_id for p in picks if not p.trending]


@pytest.mark.django_db
def test_classify_papers_scores_what_is_missing(day_papers):
    n_topics = Topic.objects.filter(active=True).count()
    embedded, classified = papers_classify_missing()
    assert classified == len(day_papers)
    assert PaperTopic.objects.count() == len(day_papers) * n_topics
    assert papers_classify_missing() == (0, 0)
    call_command("classify_papers", "--all")
    assert PaperTopic.objects.count() == len(day_papers) * n_topics


@pytest.mark.django_db
def test_papers_changed_enqueues_classification_on_the_matching_queue(day_papers, settings):
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("matching")
    papers_changed.send(sender=Paper, paper_ids=[day_papers[0].id])
    messages = [json.loads(m) for m in client.lrange("matching", 0, -1)]
    assert [m["headers"]["task"] for m in messages] == ["digest.tasks.embed_papers_task"]  # the chain's first link


def test_an_unreachable_broker_does_not_fail_the_import(tmp_path, settings):
    """A real `manage.py import_papers` with Redis down: papers land, a warning says why nothing was queued."""
    env = dict(os.environ, REDIS_URL="redis://127.0.0.1:1/0", DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
               MATCHING_METHOD="lexical")
    env.pop("PAPERBOY_EMBEDDED_REDIS", None)
    manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True, timeout=300)
    page = str(settings.BASE_DIR / "demo" / "trending-page-apr-24.txt")
    result = subprocess.run([*manage, "import_papers", page], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "72 papers" in result.stdout
    assert "could not enqueue classification of" in result.stderr
    # The safety net catches up without a worker.
    result = subprocess.run([*manage, "classify_papers"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "classified 72 papers" in result.stdout


@pytest.mark.django_db
def test_preview_digest_prints_the_digest_without_sending_or_recording(day_papers, capsys):
    SubscriberFactory(email="robots@example.org", interests="robot learning", digest_size=5)
    call_command("preview_digest", "--email", "Robots@example.org", "--json")
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5
    assert rows[0]["title"] == "Diffusion Policies for Robot Manipulation" or rows[0]["title"] == "Learning Robot Locomotion in Simulation"
    assert {"title", "arxiv_id", "reasons", "score", "trending", "paper_id"} <= set(rows[0])
    call_command("preview_digest", "--email", "robots@example.org", "--date", DAY.isoformat())
    text = capsys.readouterr().out
    assert "Diffusion Policies for Robot Manipulation" in text and "matches your interest 'robot learning'" in text
    assert not SentPaper.objects.exists() and not Delivery.objects.exists()


@pytest.mark.django_db
def test_preview_digest_rejects_an_unknown_address_or_a_bad_date(day_papers):
    with pytest.raises(CommandError, match="No subscriber"):
        call_command("preview_digest", "--email", "nobody@example.org")
    SubscriberFactory(email="a@example.org")
    with pytest.raises(CommandError, match="is not a date like"):
        call_command("preview_digest", "--email", "a@example.org", "--date", "03/04/2024")


def test_an_install_without_the_semantic_extra_falls_back_to_lexical(settings):
    """Import torch/sentence-transformers as missing in a fresh interpreter: auto means lexical, and it ranks."""
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['sentence_transformers'] = None\n"
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'digest.settings'); django.setup()\n"
        "from digest.matching import semantic\n"
        "from digest.matching.scoring import resolve_method\n"
        "from digest.matching.evaluation import evaluate\n"
        "print(semantic.available(), resolve_method('auto'))\n"
        "print(round(evaluate(method=resolve_method('auto'), split='holdout').precision_at_5, 3))\n"
    )
    env = dict(os.environ, MATCHING_METHOD="auto")
    result = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.split("\n")[:2]
    assert first == "False lexical"
    assert float(second) >= 0.8


def test_an_interest_widened_to_its_topic_is_not_pulled_towards_papers_sharing_only_a_common_query_word():
    from digest.matching.scoring import PaperSet, TopicSpec
    from digest.matching.text import Phrase

    # Half the papers say "efficient" (as a third of real abstracts do); one is about binarization.
    docs = [("Network binarization", "We binarize the weights of a network to one bit.")]
    docs += [(f"Method {i}", f"An efficient approach to problem number {i}.") for i in range(10)]
    docs += [(f"Study {i}", f"Observations on question number {i}.") for i in range(9)]
    topic = TopicSpec(1, "Compression", "compressing networks", "binarization, efficient")
    papers = PaperSet(docs=docs, topics=[topic], method="lexical")
    scores = papers.phrase_scores([Phrase("compression")])[0]
    # Both words are the topic's, but only the rare one says what the paper is about.
    assert scores[0] > 0.15
    assert scores[1:11].max() < scores[0] / 5


def test_a_phrase_no_paper_shares_a_word_with_moves_towards_its_one_clearly_best_paper():
    import numpy as np

    from digest.matching import semantic
    from digest.matching.scoring import SEMANTIC_BASE, SEMANTIC_SCALE, PaperSet

    if not semantic.available():
        pytest.skip("semantic extra not installed")
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(20, 2 * semantic.DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors[:, : semantic.DIM], axis=1, keepdims=True)
    docs = [(f"Paper {i}", "An abstract.") for i in range(20)]
    papers = PaperSet(docs=docs, topics=[], method="hybrid", embeddings=vectors)
    q = rng.normal(size=(2, semantic.DIM)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    lex = np.zeros((2, 20), dtype=np.float32)  # no paper has any of the phrases' words
    sem = np.full((2, 20), SEMANTIC_BASE, dtype=np.float32)
    sem[0, 7] = SEMANTIC_BASE + 4 * SEMANTIC_SCALE  # phrase 0: paper 7 stands clear of the rest
    sem[1, 7] = SEMANTIC_BASE + 1 * SEMANTIC_SCALE  # phrase 1: nothing does
    moved_q, moved = papers._feedback(q, lex, sem)
    assert moved.tolist() == [True, False]
    toward = vectors[7, : semantic.DIM]
    assert moved_q[0] @ toward > q[0] @ toward
    assert np.allclose(moved_q[1], q[1])


def test_reading_interests_loads_no_numerical_stack_into_a_web_process(settings):
    """Forms check interests with matching.text; that must not pull numpy, scipy or bm25s into the web."""
    code = (
        "import django, sys; django.setup()\n"
        "from digest.matching.text import parse_interests\n"
        "from subscriptions import forms, views\n"
        "parse_interests('medical imaging, clinical NLP')\n"
        "print(sorted(m for m in ('numpy', 'scipy', 'bm25s', 'torch') if m in sys.modules))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "digest.settings"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                            cwd=settings.BASE_DIR)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.django_db
def test_a_quoted_interest_found_as_written_is_called_a_match_even_under_the_clear_match_bar(day_papers, monkeypatch):
    """Only the wording changes (the bar picks nothing): a quoted phrase that is in the title or
    abstract as written is not "loosely related" to it."""
    from digest.matching import scoring

    subscriber = SubscriberFactory(interests='"large language models", video generation', digest_size=5)
    monkeypatch.setitem(scoring.CLEAR_MATCH, "lexical", 1e9)  # every score is under the bar
    picks = select_for_subscriber(subscriber=subscriber, day=DAY)
    reasons = {p.paper.title: p.reasons[0] for p in picks if not p.trending}
    assert reasons["Quantizing Large Language Models to 4 Bits"] == "matches your interest 'large language models'"
    assert reasons["Text-to-Video Generation with Latent Diffusion"] == "loosely related to your interest 'video generation'"
