"""Hugging Face daily_papers JSON: fields map onto the record; a bad item is named by position and field."""

import copy
import datetime
import json
from pathlib import Path

import pytest

from digest.sources import SourceError, detect_format
from digest.sources.hf_daily import parse

RECORDED = Path(__file__).parent / "data" / "hf_daily_papers_2024-03-12.json"


def items():
    return json.loads(RECORDED.read_text())


def encode(value) -> bytes:
    return json.dumps(value).encode()


def test_a_recorded_response_maps_every_field():
    records = parse(RECORDED.read_bytes(), name=RECORDED.name)
    assert detect_format(RECORDED.read_bytes()) == "hf-json"
    assert [r.arxiv_id for r in records] == ["2301.06719", "2312.04005", "2403.07815", "2403.06504"]
    femto = records[0]
    assert femto.title == "FemtoDet - an Object Detection Baseline for Energy versus Performance Tradeoffs"
    assert femto.abstract.startswith("Efficient detectors for edge devices")
    assert femto.authors[:2] == ["Peng Tu", "Xu Xie"]
    assert femto.published_on == datetime.date(2023, 1, 17)
    assert femto.trending_date == datetime.date(2024, 3, 12)  # the day it was featured, not its arXiv date
    assert femto.upvotes == 14
    assert femto.code_url == "https://github.com/yh-pengtu/FemtoDet"
    assert femto.keywords[0] == "object detection"
    assert femto.page_url == "https://huggingface.co/papers/2301.06719"
    assert femto.abs_url == "https://arxiv.org/abs/2301.06719"
    assert femto.pdf_url == "https://arxiv.org/pdf/2301.06719"
    assert records[1].code_url == ""  # githubRepo: null
    assert [r.upvotes for r in records] == [14, 31, 7, 5]  # the API's order is submission, not popularity
    assert [r.rank for r in records] == [2, 1, 3, 4]
    assert {r.source for r in records} == {"hf"}


def test_a_day_is_ranked_by_upvotes_most_first_and_ties_keep_the_file_order():
    data = items()
    for item, votes in zip(data, [3, 9, 3, 9]):
        item["paper"]["upvotes"] = votes
    assert [r.rank for r in parse(encode(data))] == [3, 1, 4, 2]


def test_each_featured_day_is_ranked_on_its_own():
    data = items()
    for item, votes in zip(data, [1, 2, 8, 40]):
        item["paper"]["upvotes"] = votes
    data[1]["paper"]["submittedOnDailyAt"] = "2024-03-13T09:02:11.000Z"
    data[3]["paper"]["submittedOnDailyAt"] = "2024-03-13T11:00:00.000Z"
    records = parse(encode(data))
    assert [(r.trending_date.day, r.rank) for r in records] == [(12, 2), (13, 2), (12, 1), (13, 1)]


def test_a_given_date_overrides_the_featured_day():
    records = parse(RECORDED.read_bytes(), date=datetime.date(2024, 3, 13))
    assert {r.trending_date for r in records} == {datetime.date(2024, 3, 13)}


def test_a_versioned_id_is_stored_without_its_version():
    data = items()
    data[0]["paper"]["id"] = "2301.06719v3"
    assert parse(encode(data))[0].arxiv_id == "2301.06719"


def test_an_empty_list_is_a_day_without_papers():
    assert parse(b"[]") == []


def _broken(index, mutate):
    data = items()
    mutate(data[index])
    return encode(data)


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda item: item["paper"].pop("id"), "paper.id: missing"),
        (lambda item: item["paper"].update(id="not-an-id"), "paper.id: 'not-an-id' is not an arXiv id"),
        (lambda item: (item["paper"].update(title=""), item.update(title="")), "paper.title: missing"),
        (lambda item: item["paper"].update(summary=None), "paper.summary: missing"),
        (lambda item: item["paper"].update(upvotes="12"), "paper.upvotes: '12' is not a count"),
        (lambda item: item["paper"].update(upvotes=-1), "paper.upvotes: -1 is not a count"),
        (lambda item: item["paper"]["authors"][1].pop("name"), "paper.authors[1].name: missing"),
        (lambda item: item["paper"].update(publishedAt="yesterday"), "paper.publishedAt: 'yesterday' is not an ISO date"),
        (lambda item: item["paper"].update(ai_keywords="robots"), "paper.ai_keywords: not a list of strings"),
        (lambda item: item.pop("paper"), "paper: missing or not an object"),
        (lambda item: item["paper"].update(githubRepo="x" * 600), "code_url"),
    ],
)
def test_a_bad_item_is_refused_naming_its_position_and_field(mutate, reason):
    with pytest.raises(SourceError) as caught:
        parse(_broken(2, mutate), name="daily.json")
    assert caught.value.item == 3
    assert reason in caught.value.reason
    assert str(caught.value).startswith("daily.json: item 3: ")


@pytest.mark.parametrize(
    "data, line, reason",
    [
        (b'[{"paper": {"id": "2401.00001",\n "title": "T"', 2, "not valid JSON"),
        (b'{"papers": []}', 1, "expected a JSON list"),
        (b"[1, 2]", None, "expected an object"),
        (b"", 1, "empty file"),
    ],
)
def test_a_body_that_is_not_a_list_of_papers_is_refused(data, line, reason):
    with pytest.raises(SourceError) as caught:
        parse(data, name="daily.json")
    assert caught.value.line == line
    assert reason in caught.value.reason


def test_a_truncated_response_is_refused():
    data = RECORDED.read_bytes()
    with pytest.raises(SourceError, match="not valid JSON"):
        parse(data[: len(data) // 2])
