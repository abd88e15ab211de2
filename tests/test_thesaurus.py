"""The domain thesaurus: any spelling of a concept finds papers using another, once, as a phrase."""

import pytest

from digest.matching import lexical, semantic, thesaurus
from digest.matching.lexical import LexicalIndex
from digest.matching.scoring import phrase_texts
from digest.matching.text import Phrase, tokens

FILLER = [(f"Unrelated paper {i}", "We study sorting networks on tape.") for i in range(6)]


def index_of(*docs):
    return LexicalIndex([*docs, *FILLER])


def test_the_curated_list_parses_into_a_few_hundred_groups_each_member_in_one():
    groups, lookup, _ = thesaurus.thesaurus()
    assert len(groups) >= 250
    assert all(len(group.members) >= 2 for group in groups)
    assert len(lookup) == sum(len(group.members) for group in groups)


def test_a_spelling_in_two_groups_is_refused():
    with pytest.raises(ValueError, match="two groups"):
        thesaurus._parse("uav | drone\nuav | unmanned aircraft")


def test_every_member_of_a_group_stands_for_every_other():
    groups, _, _ = thesaurus.thesaurus()
    for group in groups:
        for member in group.members:
            others = set(group.searchable) - {member}
            found = thesaurus.concepts(list(member))
            assert {alt for concept in found for alt in concept.alternatives} == others
            assert len(found) == (1 if others else 0)


def test_an_interest_finds_papers_that_write_its_concept_another_way():
    index = index_of(
        ("Drone mapping", "We fly a drone over farms."),
        ("UAV mapping", "We fly a UAV over farms."),
        ("Mapping from the air", "We fly an unmanned aerial vehicle over farms."),
    )
    for typed in ("drones", "UAV", "unmanned aerial vehicles"):
        scores = index.score([Phrase(typed)])[0]
        assert (scores[:3] > 0).all() and (scores[3:] == 0).all(), typed


def test_a_subject_noun_finds_papers_that_use_its_adjective():
    """'learning theory' is the subject of 'a theoretical analysis of learning' (the stemmer alone
    keeps 'theori' and 'theoret' apart); 'synthetic data' is still not 'program synthesis'."""
    assert tokens("theory") == tokens("theoretical") == tokens("theoretically")
    assert tokens("geometry") == tokens("geometric") and tokens("medicine") == tokens("medical")
    assert tokens("synthesis") != tokens("synthetic") and tokens("analysis") != tokens("analytic")
    index = index_of(
        ("Learning, theoretically", "A theoretical analysis of learning in deep networks."),
        ("Learning in practice", "An empirical study of learning in deep networks."),
    )
    scores = index.score([Phrase("learning theory")])[0]
    assert scores[0] > scores[1]


def test_another_spelling_counts_as_much_as_the_typed_word_and_raises_no_bound(monkeypatch):
    index = index_of(("Drone mapping", "We fly a drone over farms."), ("UAV mapping", "We fly a UAV over farms."))
    drones, uav = index.score([Phrase("drones"), Phrase("uav")])
    assert drones[0] == pytest.approx(drones[1], rel=1e-4)
    assert drones[:2] == pytest.approx(uav[:2], rel=1e-4)
    # The paper saying "drone" scores what it did without the thesaurus: same bound.
    monkeypatch.setattr(lexical, "concepts", lambda toks: [])
    (plain,) = index.score([Phrase("drones")])
    assert drones[0] == pytest.approx(plain[0], rel=1e-5) and plain[1] == 0


def test_a_paper_using_two_spellings_counts_the_concept_once():
    both = ("UAV mapping", "We fly a drone over farms.")
    index = index_of(both, ("Drone mapping", "We fly a drone over farms."))
    scores = index.score([Phrase("drones")])[0]
    # Its best spelling (drone, as in the other paper), not drone + UAV.
    assert scores[0] <= scores[1] * 1.0001


def test_several_word_spellings_match_only_as_phrases():
    index = index_of(
        ("Aerial photography", "An unmanned camera rig photographs each vehicle from the air."),
        ("Unmanned aerial vehicles", "Path planning."),
    )
    scores = index.score([Phrase("drones")])[0]
    assert scores[0] == 0 and scores[1] > 0


def test_each_concept_of_a_phrase_widens_on_its_own():
    index = index_of(("Medical natural language processing", "Notes from hospitals."), ("Clinical NLP", "Notes."))
    typed = index.score([Phrase("clinical NLP")])[0]
    assert typed[0] > 0.5 * typed[1] > 0


def test_an_ambiguous_abbreviation_is_understood_when_typed_but_not_looked_for_in_papers():
    index = index_of(("CV of yields", "The CV of crop yields across farms."), ("Computer vision", "Cameras and images."))
    cv, vision = index.score([Phrase("CV"), Phrase("computer vision")])
    assert cv[1] > 0  # "CV" typed means computer vision
    assert vision[0] == 0  # a paper's "CV" is not taken for it


def test_a_quoted_interest_is_matched_as_written_only():
    index = index_of(("UAV mapping", "We fly a UAV over farms."))
    assert index.score([Phrase("drones", quoted=True)])[0][0] == 0
    assert phrase_texts([Phrase("drones", quoted=True)]) == ["drones"]


def test_a_phrase_is_embedded_with_its_respellings_which_sending_must_have_stored():
    texts = phrase_texts([Phrase("drones over farms"), Phrase("clinical NLP")])
    assert texts[:2] == ["drones over farms", "clinical NLP"]
    assert {"uav over farms", "unmanned aerial vehicle over farms", "medical nlp", "clinical natural language processing"} <= set(texts)
    assert all(tokens(t) for t in texts)


@pytest.mark.skipif(not semantic.available(), reason="semantic extra not installed")
def test_a_phrase_vector_moves_towards_papers_that_use_another_spelling():
    from digest.matching.scoring import phrase_vectors

    paper = semantic.embed(["UAV path planning over farmland with unmanned aerial vehicles"])[0]
    raw = semantic.embed_phrases(["drones"])[0]
    (widened,) = phrase_vectors([Phrase("drones")])
    assert widened @ paper > raw @ paper
