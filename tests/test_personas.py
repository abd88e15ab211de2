"""Relevance on labelled personas: people who type only free-text interests.

tests/personas/personas.json holds 32 personas; each lists the demo papers judged relevant by
reading them (not by running the matcher). Even-numbered personas tuned the weights, the
odd-numbered ("holdout") ones only measure, and the floors below are asserted on those.
tests/personas/personas_fresh.json holds 16 more ("fresh"), written later by another hand in
other styles (one word, jargon, a long sentence) and never tuned on; they have their own floors.
tests/personas/personas_blind.json holds 22 more ("blind"): interests typed the way people type
them (two or three phrases, some quoted, some vague), labelled by reading the papers before any
ranking was looked at. tests/personas/personas_blind2.json holds 23 more ("blind2"), written the same
way once "blind" had been looked at while tuning, on other subjects (reward models, hardware,
bandits, "computer vision", one-paper niches). tests/personas/personas_blind3.json holds 26 more
("blind3"), written and labelled the same way after blind and blind2 had been tuned on, mostly on
subjects the topic list does not name (serving, pruning, KV cache, coresets, imitation learning ...).
tests/personas/personas_blind4.json holds 30 more ("blind4"), written and labelled the same way
after blind3 had been tuned on, typed as people sign up (one to three phrases) on subjects no
split had used (CLIP, process verifiers, verbosity, symmetries, noisy labels, open LLMs ...): the
hardest set, and the honest figure for interests the topic list and thesaurus do not anticipate.
tests/personas/personas_blind5.json holds 30 more ("blind5"), written and labelled the same way
after blind4 had been tuned on, in the style of the maintainers' example ("medical imaging,
clinical NLP"): mostly two field or sub-field phrases, some abbreviated or lower-cased.
tests/personas/personas_blind6.json holds 24 more ("blind6") in the same style, written and labelled
by a reader who saw neither the matching code nor any ranking; plain tf-idf scores 0.758 on it, about
what the issue quotes for its hidden personas (0.76).
Changes to scoring are judged on fresh and the blind splits, the newest weighing most.

Two ways of measuring: evaluate() ranks all 242 demo papers at once; evaluate_daily() is the
digest path, one demo day at a time, with the relevance threshold and the trending top-up.
"""

import datetime
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from digest.matching import select_for_subscriber, semantic
from digest.matching.evaluation import cached_embeddings, demo_papers, evaluate, evaluate_daily, load_personas
from digest.matching.scoring import CLEAR_MATCH
from digest.models import Paper, Topic, TrendingEntry
from tests.factories import SubscriberFactory

needs_semantic = pytest.mark.skipif(not semantic.available(), reason="semantic extra not installed")

# P@5 / R@10 each method reached when the floors were set (bench/matching.py --personas), with
# the thesaurus (digest/matching/thesaurus.py, 758 groups), the hubness correction (scoring.HUB_WEIGHT) and
# a Robotics query without the bare word "control" (digest migration 0010).
# blind4's first figures, before anything was changed with it in view: hybrid 0.566 / 0.643;
# blind5's: hybrid 0.733 / 0.809 (day by day P@5 0.821), lexical 0.736 / 0.777, semantic 0.647 / 0.747.
# blind6's (nothing changed with it in view yet): hybrid 0.892 / 0.761 (day by day P@5 0.860),
# lexical 0.867 / 0.735, semantic 0.808 / 0.726.
#            holdout        fresh          blind          blind2         blind3         blind4         blind5
# lexical    0.913 / 0.827  0.831 / 0.871  0.832 / 0.822  0.841 / 0.873  0.754 / 0.791  0.535 / 0.623  0.729 / 0.791
# semantic   0.929 / 0.870  0.883 / 0.910  0.894 / 0.910  0.812 / 0.836  0.829 / 0.847  0.507 / 0.575  0.647 / 0.756
# hybrid     0.950 / 0.867  0.898 / 0.923  0.910 / 0.917  0.904 / 0.880  0.828 / 0.869  0.586 / 0.650  0.739 / 0.816
FLOORS = {
    "holdout": {"lexical": 0.90, "semantic": 0.90, "hybrid": 0.94},
    "fresh": {"lexical": 0.81, "semantic": 0.85, "hybrid": 0.88},
    "blind": {"lexical": 0.80, "semantic": 0.88, "hybrid": 0.86},
    "blind2": {"lexical": 0.82, "semantic": 0.79, "hybrid": 0.88},
    "blind3": {"lexical": 0.74, "semantic": 0.80, "hybrid": 0.80},
    "blind4": {"lexical": 0.52, "semantic": 0.48, "hybrid": 0.56},
    "blind5": {"lexical": 0.71, "semantic": 0.62, "hybrid": 0.72},
    "blind6": {"lexical": 0.85, "semantic": 0.79, "hybrid": 0.87},
}
# Hybrid, the default where torch is installed, must also keep recall: a floor per split.
HYBRID_RECALL_FLOORS = {"holdout": 0.84, "fresh": 0.91, "blind": 0.89, "blind2": 0.86, "blind3": 0.84, "blind4": 0.62, "blind5": 0.79, "blind6": 0.74}
# The digest path day by day (hybrid): P@5 0.952 / 0.942 / 0.929 / 0.863 / 0.819 / 0.631 / 0.833, R@10
# 0.968 / 0.968 / 0.952 / 0.866 / 0.857 / 0.677 / 0.851, and of the papers a digest says match an
# interest, 0.418 / 0.396 / 0.453 / 0.407 / 0.382 / 0.402 / 0.347 are relevant. The last keeps the threshold honest: dropping
# it would raise P@5 by calling everything a match (near the bar they are called loosely related,
# see scoring.CLEAR_MATCH).
DAILY_FLOORS = {"holdout": 0.93, "fresh": 0.93, "blind": 0.90, "blind2": 0.83, "blind3": 0.79, "blind4": 0.60, "blind5": 0.81, "blind6": 0.84}
DAILY_MATCH_PRECISION_FLOOR = 0.37
DAILY_MATCH_PRECISION_FLOOR_BLIND5 = 0.33  # its subjects sit further from the topic list


def test_the_persona_set_is_big_enough_and_labels_name_real_papers():
    titles = {t for t, _ in demo_papers()}
    personas = load_personas()
    assert len(titles) == 242
    assert len(personas) >= 25
    assert len(load_personas("holdout")) >= 8
    assert len(load_personas("fresh")) >= 16
    assert len(load_personas("blind")) >= 16
    assert len(load_personas("blind2")) >= 16
    assert len(load_personas("blind3")) >= 20
    assert len(load_personas("blind4")) >= 20
    assert len(load_personas("blind5")) >= 20
    assert len(load_personas("blind6")) >= 20
    for persona in personas:
        assert persona["relevant"], persona["name"]
        assert set(persona["relevant"]) <= titles, persona["name"]


@pytest.mark.parametrize(
    "method",
    ["lexical", pytest.param("semantic", marks=needs_semantic), pytest.param("hybrid", marks=needs_semantic)],
)
@pytest.mark.parametrize("split", ["holdout", "fresh", "blind", "blind2", "blind3", "blind4", "blind5", "blind6"])
def test_top_five_are_on_topic_for_personas_never_tuned_on(method, split):
    scores = evaluate(method=method, split=split)
    assert scores.precision_at_5 >= FLOORS[split][method], scores.failures
    if method == "hybrid":
        assert scores.recall_at_10 >= HYBRID_RECALL_FLOORS[split]


@needs_semantic
@pytest.mark.parametrize("split", ["holdout", "fresh", "blind", "blind2", "blind3", "blind4", "blind5", "blind6"])
def test_day_by_day_digests_put_the_relevant_papers_first_and_call_few_strays_matches(split):
    scores = evaluate_daily(method="hybrid", split=split)
    assert scores.precision_at_5 >= DAILY_FLOORS[split], scores.failures
    assert scores.match_precision >= (DAILY_MATCH_PRECISION_FLOOR_BLIND5 if split == "blind5" else DAILY_MATCH_PRECISION_FLOOR)


@pytest.fixture
def demo_db(settings, tmp_path):
    """The demo pages imported through the real importer, with their stored embeddings."""
    call_command("import_papers", *sorted(str(p) for p in Path(settings.BASE_DIR, "demo").glob("*.txt")))
    if semantic.available():
        docs = demo_papers()
        vectors = cached_embeddings(docs)
        by_title = {t: v for (t, _), v in zip(docs, vectors)}
        papers = list(Paper.objects.all())
        for paper in papers:
            paper.embedding = semantic.to_bytes(by_title[paper.title])
        Paper.objects.bulk_update(papers, ["embedding"])
    return {p.title: p.id for p in Paper.objects.all()}


@pytest.mark.django_db
def test_held_out_personas_get_on_topic_digests_through_the_real_selection_path(demo_db, settings):
    """The same ranking through select_for_subscriber over all 242 imported papers, digest_size 10."""
    method = "hybrid" if semantic.available() else "lexical"
    settings.MATCHING_METHOD = method
    all_ids = sorted(demo_db.values())
    day = datetime.date(2026, 4, 3)
    precisions = []
    for persona in load_personas("holdout"):
        subscriber = SubscriberFactory(interests=persona["interests"], digest_size=10)
        picks = select_for_subscriber(subscriber=subscriber, day=day, candidate_ids=all_ids)
        relevant = {demo_db[t] for t in persona["relevant"]}
        top5 = [p.paper_id for p in picks[:5]]
        precisions.append(sum(i in relevant for i in top5) / min(5, len(relevant)))
        assert all(p.reasons for p in picks)
        # What a persona's interests pulled in is explained by one of those interests, and only
        # a clear match is called one.
        for pick in picks:
            if not pick.trending:
                # A quoted interest found as written is a match at any score.
                quoted = any(f'"{q}"'.casefold() in persona["interests"].casefold() for q in pick.reasons[0].split("'")[1:2])
                verb = "matches" if pick.score >= CLEAR_MATCH[method] or quoted else "loosely related to"
                assert pick.reasons[0].startswith(f"{verb} your interest '"), (pick.score, pick.reasons)
    assert np.mean(precisions) >= FLOORS["holdout"][method]


@needs_semantic
@pytest.mark.django_db
def test_a_pick_is_called_a_match_only_when_it_clearly_is(demo_db, settings):
    """The README's reader (`robot learning, manipulation`): on Mar 12 the soft-robot benchmark
    matches; on Apr 24 no paper is about robots, and whatever still clears the bar is said to be
    loosely related, not a match (the rest of the digest is the day's trending papers)."""
    settings.MATCHING_METHOD = "hybrid"
    subscriber = SubscriberFactory(interests="robot learning, manipulation", digest_size=10)
    dates = sorted(set(TrendingEntry.objects.values_list("date", flat=True)))
    mar12, apr24 = (next(d for d in dates if (d.month, d.day) == md) for md in ((3, 12), (4, 24)))

    picks = select_for_subscriber(subscriber=subscriber, day=mar12)
    assert picks[0].paper.title.startswith("SoftZoo: A Soft Robot Co-design Benchmark")
    assert picks[0].reasons[0] == "matches your interest 'robot learning'"

    picks = select_for_subscriber(subscriber=subscriber, day=apr24)
    matched = [p for p in picks if not p.trending]
    assert not [p.reasons for p in picks if p.reasons[0].startswith("matches")]
    assert all(p.reasons[0].startswith("loosely related to your interest '") for p in matched)


@pytest.mark.django_db
def test_a_reader_of_the_robotics_topic_gets_no_papers_about_controlling_llms_or_computers(demo_db, settings):
    """"control" alone is no robotics word: steering an LLM or a computer-use agent is not a robot."""
    settings.MATCHING_METHOD = "hybrid" if semantic.available() else "lexical"
    reader = SubscriberFactory(interests="", digest_size=10)
    reader.topics.set([Topic.objects.get(slug="robotics")])
    for day in sorted(set(TrendingEntry.objects.values_list("date", flat=True))):
        called_robotics = [
            p.paper.title for p in select_for_subscriber(subscriber=reader, day=day) if "topic: Robotics" in " ".join(p.reasons)
        ]
        assert not [t for t in called_robotics if "Control of LLMs" in t or "Computer Control" in t], called_robotics
