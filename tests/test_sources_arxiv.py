"""arXiv Atom: ids lose their version, whitespace is normalized, and anything but a whole Atom feed is refused."""

import datetime
from pathlib import Path

import pytest

from digest.sources import SourceError, detect_format
from digest.sources.arxiv_atom import parse
from digest.sources.records import arxiv_id_from

DATA = Path(__file__).parent / "data"
RECORDED = (DATA / "arxiv_query.atom.xml").read_bytes()


def test_a_recorded_feed_maps_every_field():
    assert detect_format(RECORDED) == "arxiv-atom"
    records = parse(RECORDED, name="query.xml")
    assert [r.arxiv_id for r in records] == ["2301.06719", "2308.04430", "hep-th/9901001"]
    femto = records[0]
    # The feed wraps titles and abstracts over lines; we keep single spaces.
    assert femto.title == "FemtoDet: An Object Detection Baseline for Energy Versus Performance Tradeoffs"
    assert femto.abstract.startswith("Efficient detectors for edge devices are often optimized for parameters or speed")
    assert "  " not in femto.abstract and "\n" not in femto.abstract
    assert "1.11 W & 64.47 FPS" in femto.abstract
    assert femto.authors == ["Peng Tu", "Xu Xie", "Guo AI", "Yuexiang Li", "Yawen Huang", "Yefeng Zheng"]
    assert femto.published_on == datetime.date(2023, 1, 17)
    assert femto.trending_date == datetime.date(2023, 1, 17)
    assert femto.abs_url == "https://arxiv.org/abs/2301.06719"
    assert femto.pdf_url == "https://arxiv.org/pdf/2301.06719"
    assert femto.categories == ["cs.CV", "cs.AI"]
    assert femto.upvotes is None
    assert records[2].abs_url == "https://arxiv.org/abs/hep-th/9901001"
    assert [r.rank for r in records] == [1, 2, 3]


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("http://arxiv.org/abs/2403.01234v2", "2403.01234"),
        ("https://arxiv.org/abs/0704.0001v1", "0704.0001"),
        ("http://arxiv.org/abs/hep-th/9901001v2", "hep-th/9901001"),
        ("http://arxiv.org/abs/math.AG/0309136v3", "math.AG/0309136"),
        ("arXiv:2403.01234", "2403.01234"),
        ("http://example.org/abs/2403.01234", None),
        ("2403.1", None),
    ],
)
def test_arxiv_ids_are_kept_without_their_version(raw, expected):
    assert arxiv_id_from(raw) == expected


def test_a_given_date_dates_every_entry():
    assert {r.trending_date for r in parse(RECORDED, date=datetime.date(2024, 3, 12))} == {datetime.date(2024, 3, 12)}


@pytest.mark.parametrize("cut", [120, len(RECORDED) // 2, len(RECORDED) - 9])
def test_a_truncated_feed_is_refused_although_feedparser_would_read_part_of_it(cut):
    with pytest.raises(SourceError, match="not well-formed XML") as caught:
        parse(RECORDED[:cut], name="query.xml")
    assert caught.value.line is not None


@pytest.mark.parametrize(
    "data, reason",
    [
        (b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>', "not an Atom feed"),
        (b"<html><head><title>Oops</title></head><body>503</body></html>", "not an Atom feed"),
        (b"", "empty file"),
        (b"<feed>\x00</feed>", "binary"),
    ],
)
def test_something_other_than_an_atom_feed_is_refused(data, reason):
    with pytest.raises(SourceError, match=reason):
        parse(data, name="query.xml")


def test_an_api_error_entry_is_reported_as_an_error():
    with pytest.raises(SourceError, match="arXiv API answered with an error: incorrect id format") as caught:
        parse((DATA / "arxiv_error.atom.xml").read_bytes(), name="error.xml")
    assert caught.value.item == 1


def test_an_entry_without_an_abstract_is_refused_by_position():
    broken = RECORDED.replace(b"<summary>  We study boundary", b"<nosummary>  We study boundary").replace(
        b"orbifold backgrounds.\n</summary>", b"orbifold backgrounds.\n</nosummary>"
    )
    with pytest.raises(SourceError, match="summary: missing") as caught:
        parse(broken, name="query.xml")
    assert caught.value.item == 3


def test_an_empty_result_is_a_day_without_papers():
    empty = RECORDED[: RECORDED.index(b"  <entry>")] + b"</feed>\n"
    assert parse(empty) == []
