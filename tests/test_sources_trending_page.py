"""The trending page text format: demo pages parse, the year rule, and bad files are refused with a line."""

import datetime
from pathlib import Path

import pytest
import time_machine
from hypothesis import given, settings, strategies as st

from digest.sources import SourceError, detect_format, parse_papers
from digest.sources.trending_page import page_date, parse

DEMO = Path(__file__).resolve().parent.parent / "demo"
MAR_12 = (DEMO / "trending-page-mar-12.txt").read_bytes()
HEADER = b"new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nbyAK and the research community\n\n"
ABSTRACT = (
    "We study a problem that matters. " * 12
).strip().encode()


def page(*paragraphs: bytes, date: bytes = b"Mar 12") -> bytes:
    return HEADER + date + b"\n\n" + b"\n\n".join(paragraphs)


def test_each_demo_page_parses_into_titles_and_abstracts_in_page_order():
    records = parse(MAR_12, name="mar-12.txt", date=datetime.date(2024, 3, 12))
    assert len(records) == 87
    assert [r.rank for r in records] == list(range(1, 88))
    assert records[0].title == "FemtoDet: An Object Detection Baseline for Energy Versus Performance Tradeoffs"
    assert records[0].abstract.startswith("Efficient detectors for edge devices")
    assert records[-1].title == "Data-Centric Human Preference Optimization with Rationales"
    assert {r.trending_date for r in records} == {datetime.date(2024, 3, 12)}
    assert {r.source for r in records} == {"trending-page"}
    assert all(r.arxiv_id is None and r.upvotes is None for r in records)


def test_the_format_is_detected_from_the_content():
    assert detect_format(MAR_12) == "trending-page"
    assert detect_format(b'  [{"paper": {}}]') == "hf-json"
    assert detect_format(b'<?xml version="1.0"?><feed/>') == "arxiv-atom"


@time_machine.travel(datetime.datetime(2026, 11, 22, 12, tzinfo=datetime.UTC), tick=False)
def test_without_a_date_the_page_is_from_the_most_recent_such_day():
    assert parse(MAR_12)[0].trending_date == datetime.date(2026, 3, 12)


@time_machine.travel(datetime.datetime(2026, 3, 1, 12, tzinfo=datetime.UTC), tick=False)
def test_a_day_later_this_year_than_today_is_last_years():
    assert parse(MAR_12)[0].trending_date == datetime.date(2025, 3, 12)


@time_machine.travel(datetime.datetime(2026, 3, 12, 0, 30, tzinfo=datetime.UTC), tick=False)
def test_todays_page_is_this_years():
    assert parse(MAR_12)[0].trending_date == datetime.date(2026, 3, 12)


@time_machine.travel(datetime.datetime(2026, 11, 22, 12, tzinfo=datetime.UTC), tick=False)
def test_feb_29_goes_back_to_the_last_leap_year():
    assert parse(page(b"A Title", ABSTRACT, date=b"Feb 29"))[0].trending_date == datetime.date(2024, 2, 29)
    assert page_date(2, 29, reference=datetime.date(2024, 2, 28)) == datetime.date(2020, 2, 29)


def test_an_explicit_date_is_taken_as_the_page_day():
    assert parse(MAR_12, date=datetime.date(2023, 3, 12))[0].trending_date == datetime.date(2023, 3, 12)
    # A later reference day still lands on the page's own month and day.
    assert parse(MAR_12, date=datetime.date(2023, 4, 30))[0].trending_date == datetime.date(2023, 3, 12)


@pytest.mark.parametrize(
    "data, line, reason",
    [
        (b"", 1, "empty file"),
        (b"  \n\n \n", 1, "empty file"),
        (HEADER + b"Mar 12\n\nTitle\x00\x01\x02", 11, "binary"),
        (HEADER + b"Mar 12\n\nCaf\xe9 Title\n\n" + ABSTRACT, 11, "not UTF-8"),
        (page(b"A Title", ABSTRACT, b"A Second Title"), 15, "'A Second Title' has no abstract"),
        (page(b"A Title", b"Another Title", ABSTRACT), 11, "'A Title' has no abstract"),
        (HEADER + b"\n\n".join([b"A Title", ABSTRACT]), 1, "no date line"),
        (page(), 9, "no papers after the date line"),
        (page(ABSTRACT, ABSTRACT), 11, "expected a title"),
        (page(b"A Title", ABSTRACT, b"Mar 13", ABSTRACT), 15, "second date line"),
        (page(b"!!! ???", ABSTRACT), 11, "no letters or digits"),
        (b'[{"paper": {"id": "2401.00001"}}]', 1, "no date line"),
        (b"Mar 12\n\nA Title\n\n\xff\xfe", 5, "not UTF-8"),
    ],
    ids=[
        "empty",
        "blank",
        "binary",
        "latin-1",
        "truncated after a title",
        "abstract missing mid-page",
        "no date line",
        "no papers",
        "two abstracts",
        "second date",
        "punctuation title",
        "json",
        "undecodable tail",
    ],
)
def test_a_bad_page_is_refused_with_the_line_and_reason(data, line, reason):
    with pytest.raises(SourceError) as caught:
        parse_papers(data, name="page.txt", format="trending-page", date=datetime.date(2024, 3, 12))
    assert caught.value.line == line
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"page.txt: line {line}: ")


def test_a_title_without_abstract_rejects_the_whole_file():
    truncated = MAR_12[: MAR_12.index(b"Data-Centric Human Preference Optimization") + 30]
    with pytest.raises(SourceError, match="has no abstract"):
        parse(truncated, date=datetime.date(2024, 3, 12))


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(MAR_12) - 1))
def test_a_page_cut_at_any_byte_is_refused_or_yields_whole_titles_in_order(cut):
    full = parse(MAR_12, date=datetime.date(2024, 3, 12))
    try:
        records = parse(MAR_12[:cut], date=datetime.date(2024, 3, 12))
    except SourceError as exc:
        assert exc.line is not None and exc.reason
        return
    # Never a half title or a title paired with the wrong abstract; only the last
    # abstract can be short (cut mid-paragraph), which no format rule can see.
    assert [r.title for r in records] == [r.title for r in full[: len(records)]]
    assert [r.abstract for r in records[:-1]] == [r.abstract for r in full[: len(records) - 1]]
    assert full[len(records) - 1].abstract.startswith(records[-1].abstract)


@given(text=st.text(alphabet=st.sampled_from("ab \t\n\r\x0b\x0c\x1c\x1f\xa0\u2009é"), max_size=30))
def test_whitespace_is_collapsed_exactly_as_split_and_join_would(text):
    from digest.sources.records import normalize_space

    assert normalize_space(text) == " ".join(text.split())
