"""Papers that trend on a day after its edition froze still reach readers, each once.

Beat fetches arXiv every 6 hours and Hugging Face every 3, so an edition can freeze on an
arXiv-only list before the day's HF papers arrive. Such a late paper is appended to the frozen
list (readers not sent yet rank it as usual) and becomes a candidate of the next edition (readers
already sent get it there); the sent-papers ledger keeps anyone from getting it twice.
"""

import datetime
import json
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command

from digest.models import Delivery, Edition, Paper, SentPaper, TrendingEntry
from digest.services import curation
from digest.services.delivery import _render_cache, deliveries_plan, deliveries_send_chunk
from digest.services import editions
from digest.services.editions import edition_candidate_ids, edition_freeze
from subscriptions.models import Subscriber
from tests.digest_support import SITE, trending_day
from tests.factories import SubscriberFactory, TrendingEntryFactory

pytestmark = pytest.mark.django_db

DATA = Path(__file__).resolve().parent / "data"
ARXIV = str(DATA / "arxiv_query.atom.xml")
HF = str(DATA / "hf_daily_papers_2024-03-12.json")
DAY = datetime.date(2026, 12, 2)
NEXT = DAY + datetime.timedelta(days=1)
INTERESTS = "knowledge distillation, diffusion"


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = SITE
    settings.MATCHING_METHOD = "lexical"
    _render_cache.clear()


@pytest.fixture
def do_import(django_capture_on_commit_callbacks):
    def run(path: str, day: datetime.date = DAY) -> None:
        # The late papers are added once the import commits, as in production.
        with django_capture_on_commit_callbacks(execute=True):
            call_command("import_papers", "--date", day.isoformat(), "--no-enqueue", path, stdout=StringIO())

    return run


def _send(subscriber, day: datetime.date = DAY) -> list[int]:
    now = datetime.datetime.combine(day, datetime.time(8), tzinfo=datetime.UTC)
    with time_machine.travel(now, tick=False):
        deliveries_plan(now=now, day=day, ignore_hour=True)
        delivery = Delivery.objects.get(subscriber=subscriber, edition__date=day)
        deliveries_send_chunk(delivery_ids=[delivery.pk], now=now)
    delivery.refresh_from_db()
    return delivery.paper_ids


def _preview(email: str, day: datetime.date = DAY) -> list[dict]:
    out = StringIO()
    call_command("preview_digest", "--email", email, "--date", day.isoformat(), "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def _koala() -> Paper:
    return Paper.objects.get(title__startswith="KOALA")


def test_a_paper_that_trends_after_the_edition_froze_reaches_a_reader_not_sent_yet(smtp_sink, do_import):
    do_import(ARXIV)
    early = SubscriberFactory(digest_size=5, interests="object detection")
    _send(early)  # freezes the edition on the three arXiv papers
    assert len(Edition.objects.get(date=DAY).paper_ids) == 3

    do_import(HF)
    SubscriberFactory(digest_size=5, interests=INTERESTS, email="late@example.org")

    previewed = _preview("late@example.org")
    assert previewed[0]["paper_id"] == _koala().pk
    assert "matches your interest" in previewed[0]["reasons"][0]
    late = Subscriber.objects.get(email="late@example.org")
    assert _koala().pk in _send(late)


def test_the_frozen_list_keeps_its_order_and_gets_the_late_papers_at_the_end(smtp_sink, do_import):
    do_import(ARXIV)
    edition = edition_freeze(day=DAY)
    frozen = list(edition.paper_ids)

    do_import(HF)
    do_import(HF)  # importing again adds nothing twice

    edition.refresh_from_db()
    assert edition.paper_ids[:3] == frozen
    assert len(edition.paper_ids) == len(set(edition.paper_ids)) == 3 + 4 - 1  # FemtoDet is in both files
    assert _koala().pk in edition.paper_ids and _koala().pk in edition.carry_ids


def test_a_reader_already_sent_the_day_gets_the_late_paper_in_the_next_edition_once(smtp_sink, do_import):
    do_import(ARXIV)
    reader = SubscriberFactory(digest_size=5, interests=INTERESTS)
    first = _send(reader)

    do_import(HF)
    trending_day(day=NEXT, count=3, title="Protein folding")
    second = _send(reader, NEXT)

    assert _koala().pk in second
    assert SentPaper.objects.filter(subscriber=reader, paper=_koala()).count() == 1
    assert not set(first) & set(second)
    # Carried once: the edition after next does not carry it again.
    assert Edition.objects.get(date=DAY).carry_ids == []
    trending_day(day=NEXT + datetime.timedelta(days=1), count=3, title="Graph theory")
    assert _koala().pk not in edition_candidate_ids(day=NEXT + datetime.timedelta(days=1))


def test_a_carried_paper_is_not_a_trending_top_up_of_the_next_edition(smtp_sink, do_import):
    do_import(ARXIV)
    edition_freeze(day=DAY)
    do_import(HF)
    trending_day(day=NEXT, count=3, title="Protein folding")
    reader = SubscriberFactory(digest_size=5, interests="protein folding")

    picks = _preview(reader.email, NEXT)

    assert _koala().pk not in [row["paper_id"] for row in picks]


def test_a_weekly_reader_finds_the_late_paper_in_the_week(smtp_sink, do_import):
    do_import(ARXIV)
    edition_freeze(day=DAY)
    do_import(HF)
    SubscriberFactory(
        digest_size=5, interests=INTERESTS, email="weekly@example.org",
        frequency=Subscriber.Frequency.WEEKLY, weekday=DAY.weekday(),
    )
    assert _koala().pk in [row["paper_id"] for row in _preview("weekly@example.org")]


def test_the_public_page_lists_the_late_papers_readers_got(client, do_import):
    do_import(ARXIV)
    edition_freeze(day=DAY)
    do_import(HF)
    html = client.get(f"/digest/{DAY.isoformat()}/").content.decode()
    assert "KOALA" in html


def test_a_hide_still_reaches_a_late_paper(smtp_sink, do_import):
    do_import(ARXIV)
    edition_freeze(day=DAY)
    do_import(HF)
    curation.papers_hide(paper_ids=[_koala().pk])
    SubscriberFactory(digest_size=5, interests=INTERESTS, email="late@example.org")
    assert _koala().pk not in [row["paper_id"] for row in _preview("late@example.org")]
    trending_day(day=NEXT, count=2, title="Protein folding")
    assert _koala().pk not in edition_freeze(day=NEXT).paper_ids


def test_a_day_that_has_not_frozen_is_left_alone():
    trending_day(day=DAY, count=3)
    assert editions.edition_late_papers_add(days=[DAY]) == {}
    assert not Edition.objects.filter(date=DAY).exists()


def test_late_papers_of_an_old_day_are_not_carried_into_an_edition_a_week_later():
    old = DAY - datetime.timedelta(days=30)
    trending_day(day=old, count=2)
    edition_freeze(day=old)
    late = TrendingEntryFactory(date=old, rank=3).paper
    assert editions.edition_late_papers_add(days=[old]) == {old: [late.pk]}
    trending_day(day=DAY, count=2)
    assert late.pk not in edition_freeze(day=DAY).paper_ids
    assert Edition.objects.get(date=old).carry_ids == []


def _late_file(tmp_path) -> str:
    """A one-item HF file for the day, as an import run after the edition froze would bring."""
    item = json.loads(Path(HF).read_text())[1]
    item["paper"] = {**item["paper"], "id": "2601.00001", "title": "A late paper on knowledge distillation"}
    path = tmp_path / "late.json"
    path.write_text(json.dumps([item]))
    return str(path)


def test_a_late_paper_never_takes_a_rank_another_paper_already_shows(smtp_sink, do_import, tmp_path):
    import re

    do_import(HF)
    edition = edition_freeze(day=DAY)
    do_import(_late_file(tmp_path))  # its own file says #1: the day already has a #1
    edition.refresh_from_db()
    late = Paper.objects.get(arxiv_id="2601.00001")
    assert edition.paper_ids[-1] == late.pk

    ranks = editions.edition_ranks(edition=edition)
    assert sorted(ranks.values()) == list(range(1, len(edition.paper_ids) + 1))
    SubscriberFactory(digest_size=30, interests="", email="all@example.org")
    cited = {}
    for row in _preview("all@example.org"):
        for reason in row["reasons"]:
            if found := re.match(r"trending #(\d+)", reason):
                cited[row["paper_id"]] = int(found.group(1))
    assert cited and len(set(cited.values())) == len(cited)
    # The email's reasons, its meta lines and the edition pages all number the day alike.
    assert all(ranks[pid] == rank for pid, rank in cited.items())
    admin_papers, _ = curation.edition_papers_for_admin(edition=edition)
    assert {p.pk: p.edition_rank for p in admin_papers} == ranks


def _revoted_file(tmp_path) -> str:
    """The day's HF file fetched again later: the last paper has since gained the most upvotes."""
    items = json.loads(Path(HF).read_text())
    items[-1]["paper"] = {**items[-1]["paper"], "upvotes": 500}
    path = tmp_path / "revoted.json"
    path.write_text(json.dumps(items))
    return str(path)


def _day_entries() -> dict[int, tuple[int, int]]:
    return {e.paper_id: (e.rank, e.upvotes) for e in TrendingEntry.objects.filter(date=DAY)}


def test_a_fetch_before_the_edition_freezes_refreshes_the_days_ranks(do_import, tmp_path):
    do_import(HF)
    before = editions.day_trending_ranks(day=DAY)
    do_import(_revoted_file(tmp_path))
    after = editions.day_trending_ranks(day=DAY)
    climber = Paper.objects.get(arxiv_id="2403.06504")
    assert before[climber.pk] == 4 and after[climber.pk] == 1


def test_a_fetch_while_the_edition_sends_renumbers_nothing_readers_are_told(do_import, tmp_path):
    do_import(HF)
    edition_freeze(day=DAY)
    entries, ranks = _day_entries(), editions.day_trending_ranks(day=DAY)
    do_import(_revoted_file(tmp_path))
    assert _day_entries() == entries
    assert editions.day_trending_ranks(day=DAY) == ranks


def test_a_paper_new_to_a_frozen_day_is_ranked_after_the_days_papers(do_import, tmp_path):
    do_import(HF)
    edition_freeze(day=DAY)
    do_import(_late_file(tmp_path))  # its file calls it #1
    late = Paper.objects.get(arxiv_id="2601.00001")
    assert TrendingEntry.objects.get(paper=late, date=DAY).rank == 5
    assert editions.day_trending_ranks(day=DAY)[late.pk] == 5


# ---------------------------------------------------------------- the public page and feed say so


def _cards(html: str) -> dict[str, str]:
    """Each paper's card on the edition page, by its title."""
    import re

    cards = re.findall(r'<li class="edition__paper">(.*?)</li>', html, re.S)
    return {re.search(r"<h2[^>]*>(?:<a[^>]*>)?([^<]*)", card).group(1): card for card in cards}


def _card(html: str, title_start: str) -> str:
    return next(card for title, card in _cards(html).items() if title.startswith(title_start))


def test_the_public_page_marks_the_papers_added_after_the_edition_froze(client, do_import):
    do_import(ARXIV)
    edition_freeze(day=DAY)
    do_import(HF)
    html = client.get(f"/digest/{DAY.isoformat()}/").content.decode()
    late = [title for title, card in _cards(html).items() if "added later" in card]
    assert len(late) == 3 and any(title.startswith("KOALA") for title in late)
    assert len(_cards(html)) == 6  # the three frozen arXiv papers are not marked
    assert "3 were added after the first emails went out" in html


def test_the_page_still_marks_them_once_the_next_edition_has_carried_them(client, do_import):
    do_import(ARXIV)
    edition_freeze(day=DAY)
    do_import(HF)
    trending_day(day=NEXT, count=2, title="Protein folding")
    edition_freeze(day=NEXT)
    assert Edition.objects.get(date=DAY).carry_ids == []
    day_page = client.get(f"/digest/{DAY.isoformat()}/").content.decode()
    assert "added later" in _card(day_page, "KOALA")
    # In the next edition the carried papers were there from its freeze: nothing to mark.
    assert "added later" not in client.get(f"/digest/{NEXT.isoformat()}/").content.decode()


def test_the_feed_entry_is_updated_when_late_papers_are_appended(client, do_import):
    import xml.etree.ElementTree as ET

    def entry() -> dict[str, str]:
        atom = "{http://www.w3.org/2005/Atom}"
        found = ET.fromstring(client.get("/feed/").content).find(f"{atom}entry")
        return {"published": found.findtext(f"{atom}published"), "updated": found.findtext(f"{atom}updated")}

    with time_machine.travel(datetime.datetime(2026, 12, 2, 6, tzinfo=datetime.UTC), tick=False):
        do_import(ARXIV)
        edition_freeze(day=DAY)
    assert entry() == {"published": "2026-12-02T06:00:00+00:00", "updated": "2026-12-02T06:00:00+00:00"}
    with time_machine.travel(datetime.datetime(2026, 12, 2, 9, tzinfo=datetime.UTC), tick=False):
        do_import(HF)
    assert entry() == {"published": "2026-12-02T06:00:00+00:00", "updated": "2026-12-02T09:00:00+00:00"}
    with time_machine.travel(datetime.datetime(2026, 12, 2, 12, tzinfo=datetime.UTC), tick=False):
        do_import(HF)  # nothing new: the entry stays as it was
    assert entry()["updated"] == "2026-12-02T09:00:00+00:00"


def test_a_paper_pinned_while_the_edition_sends_is_marked_and_updates_the_feed(client, do_import):
    from tests.factories import PaperFactory

    do_import(ARXIV)
    with time_machine.travel(datetime.datetime(2026, 12, 2, 6, tzinfo=datetime.UTC), tick=False):
        edition = edition_freeze(day=DAY)
    already = edition.paper_ids[1]
    pinned = PaperFactory(title="Pinned from last week")
    with time_machine.travel(datetime.datetime(2026, 12, 2, 7, tzinfo=datetime.UTC), tick=False):
        curation.papers_pin(paper_ids=[pinned.pk, already])
    edition.refresh_from_db()
    assert edition.late_ids == [pinned.pk]
    assert "<updated>2026-12-02T07:00:00+00:00</updated>" in client.get("/feed/").content.decode()
    html = client.get(f"/digest/{DAY.isoformat()}/").content.decode()
    assert "added later" in _card(html, "Pinned from last week")
    assert sum("added later" in card for card in _cards(html).values()) == 1  # the arXiv paper pinned was in the emails


def test_a_merge_keeps_the_mark_on_the_kept_paper_only_when_none_of_them_was_in_the_emails(do_import):
    from tests.factories import PaperFactory

    do_import(ARXIV)
    edition = edition_freeze(day=DAY)
    on_time = Paper.objects.get(pk=edition.paper_ids[0])
    do_import(HF)
    edition.refresh_from_db()
    koala = _koala()
    other_late = Paper.objects.get(pk=next(pid for pid in edition.late_ids if pid != koala.pk))

    outside = PaperFactory(title="KOALA, a copy from elsewhere")
    curation.papers_merge(keep=outside, duplicates=[koala])  # a late paper's duplicate: still late
    curation.papers_merge(keep=on_time, duplicates=[other_late])  # merged into one the emails had

    edition.refresh_from_db()
    assert outside.pk in edition.late_ids and koala.pk not in edition.late_ids
    assert on_time.pk not in edition.late_ids and other_late.pk not in edition.late_ids
    assert len(edition.late_ids) == 2
