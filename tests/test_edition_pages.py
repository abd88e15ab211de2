"""The public edition page, the Atom feed, and the development mail view."""

import datetime
import xml.etree.ElementTree as ET

import pytest

from digest.models import Edition
from digest.services import curation
from digest.services.editions import edition_freeze
from tests.digest_support import trending_day

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 3, 12)


def test_the_edition_page_lists_the_frozen_papers_in_order(client):
    papers = trending_day(day=DAY, count=5)
    edition_freeze(day=DAY)
    response = client.get("/digest/2026-03-12/")
    assert response.status_code == 200
    html = response.content.decode()
    positions = [html.index(p.title) for p in papers]
    assert positions == sorted(positions)
    assert papers[0].pdf_url in html and "12 March 2026" in html


def test_the_edition_page_escapes_titles(client):
    trending_day(day=DAY, count=1, title="<script>alert(1)</script>")
    edition_freeze(day=DAY)
    html = client.get("/digest/2026-03-12/").content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("path", ["/digest/2026-03-13/", "/digest/not-a-date/", "/digest/2026-02-30/"])
def test_unknown_or_bad_dates_are_404(client, path):
    trending_day(day=DAY, count=1)
    edition_freeze(day=DAY)
    assert client.get(path).status_code == 404


def test_another_spelling_of_the_date_redirects_to_the_editions_one_address(client):
    trending_day(day=DAY, count=1)
    edition_freeze(day=DAY)
    response = client.get("/digest/20260312/")
    assert response.status_code == 301 and response["Location"] == "/digest/2026-03-12/"


def test_a_draft_or_held_edition_is_not_public(client):
    Edition.objects.create(date=DAY, status=Edition.Status.HELD)
    assert client.get("/digest/2026-03-12/").status_code == 404


def test_the_feed_is_atom_with_one_entry_per_sent_edition(client):
    for offset in range(3):
        trending_day(day=DAY + datetime.timedelta(days=offset), count=2)
        edition_freeze(day=DAY + datetime.timedelta(days=offset))
    response = client.get("/feed/")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/atom+xml")
    root = ET.fromstring(response.content)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    links = [e.find("a:link", ns).get("href") for e in root.findall("a:entry", ns)]
    assert links == [f"http://testserver/digest/2026-03-{d}/" for d in (14, 13, 12)]


def test_feed_summaries_are_html_with_the_titles_escaped_and_one_list_item_each(client):
    from html.parser import HTMLParser

    trending_day(day=DAY, count=2, title="SILO <img src=x onerror=alert(1)> & Friends")
    edition_freeze(day=DAY)
    entry = ET.fromstring(client.get("/feed/").content).find("{http://www.w3.org/2005/Atom}entry")
    summary = entry.find("{http://www.w3.org/2005/Atom}summary")
    assert summary.get("type") == "html"

    class Reader(HTMLParser):  # what a feed reader makes of the summary's HTML
        tags, text = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)

        def handle_data(self, data):
            self.text.append(data)

    reader = Reader(convert_charrefs=True)
    reader.feed(summary.text)
    assert reader.tags == ["ol", "li", "li"]  # no <img>: the title is text, each on its own line
    assert [t for t in reader.text if t.strip()] == [f"SILO <img src=x onerror=alert(1)> & Friends 20260312-{i}" for i in (1, 2)]


def test_a_paper_hidden_after_the_edition_froze_is_gone_from_its_page_and_the_feed(client):
    kept, spam = trending_day(day=DAY, count=2)
    spam.title = "Retracted: a paper curators hid"
    spam.save()
    edition_freeze(day=DAY)
    curation.papers_hide(paper_ids=[spam.pk])
    html = client.get("/digest/2026-03-12/").content.decode()
    assert kept.title in html and spam.title not in html
    assert "1 paper in this edition" in html
    feed = client.get("/feed/").content.decode()
    assert kept.title in feed and spam.title not in feed


def test_the_editions_index_counts_the_papers_each_edition_page_shows(client):
    """It said "11 papers" where the edition's page said "9 papers in this edition"."""
    papers = trending_day(day=DAY, count=11)
    edition_freeze(day=DAY)
    curation.papers_hide(paper_ids=[papers[3].pk, papers[7].pk])
    trending_day(day=DAY + datetime.timedelta(days=1), count=1)
    edition_freeze(day=DAY + datetime.timedelta(days=1))
    assert "9 papers in this edition" in client.get("/digest/2026-03-12/").content.decode()
    index = client.get("/digest/").content.decode()
    assert "Thursday, 12 March 2026</a> · 9 papers" in index
    assert "Friday, 13 March 2026</a> · 1 paper<" in index


def _editions(offsets):
    """A frozen edition of three trending papers for each day DAY + offset."""
    for offset in offsets:
        trending_day(day=DAY + datetime.timedelta(days=offset), count=3)
        edition_freeze(day=DAY + datetime.timedelta(days=offset))


def test_the_editions_index_takes_the_same_queries_for_many_editions_as_for_one(client, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _editions(range(1))
    with CaptureQueriesContext(connection) as one:
        assert client.get("/digest/").status_code == 200
    _editions(range(1, 20))
    with django_assert_num_queries(len(one)):
        assert client.get("/digest/").status_code == 200


def test_the_feed_takes_no_more_queries_for_many_editions_than_for_one(client, django_assert_max_num_queries):
    """It read each entry's papers with a query of its own."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _editions(range(1))
    with CaptureQueriesContext(connection) as one:
        assert client.get("/feed/").status_code == 200
    _editions(range(1, 8))
    with django_assert_max_num_queries(len(one)):
        feed = client.get("/feed/").content.decode()
    assert feed.count("<entry>") == 8 and feed.count("&lt;li&gt;") == 8 * 3


def test_a_paper_pinned_from_another_day_has_no_stray_separator_on_the_edition_page(client):
    import re

    from tests.factories import PaperFactory

    trending_day(day=DAY, count=1)
    pinned = PaperFactory(upvotes=0, title="Pinned from last week", abs_url="https://arxiv.org/abs/2403.00001")
    curation.papers_pin(paper_ids=[pinned.pk])
    edition_freeze(day=DAY)
    html = client.get("/digest/2026-03-12/").content.decode()
    card = html[html.index(pinned.title) :]
    meta = re.search(r'<p class="meta">(.*?)</p>', card, re.S).group(1)
    assert meta.strip().startswith('<a href="https://arxiv.org/abs/2403.00001">Abstract</a>')


def test_the_edition_page_says_a_rank_as_the_digests_do(client):
    import re

    papers = trending_day(day=DAY, count=3)
    type(papers[0]).objects.filter(pk=papers[1].pk).update(upvotes=0)  # no votes: the meta line shows its rank
    edition_freeze(day=DAY)
    html = client.get("/digest/2026-03-12/").content.decode()
    card = html[html.index(papers[1].title) : html.index(papers[2].title)]
    meta = " ".join(re.search(r'<p class="meta">(.*?)</p>', card, re.S).group(1).split())
    # The page names its day, so no "today": an old edition's page stays true.
    assert meta.startswith("trending #2 · <a")
    assert "#2 trending" not in html and "today" not in meta


def test_the_mail_view_lists_and_shows_caught_messages(client, settings, tmp_path):
    settings.MAIL_CATCHER_DIR = tmp_path
    (tmp_path / "20260312-080000-abcd.eml").write_bytes(
        b"From: a@example.org\r\nTo: b@example.org\r\nSubject: Hello <there>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="x"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nplain body\r\n'
        b"--x\r\nContent-Type: text/html\r\n\r\n<p>html body</p>\r\n--x--\r\n"
    )
    listing = client.get("/dev/mail/").content.decode()
    assert "Hello &lt;there&gt;" in listing
    detail = client.get("/dev/mail/20260312-080000-abcd.eml/").content.decode()
    assert "plain body" in detail
    assert client.get("/dev/mail/20260312-080000-abcd.eml/html/").content.decode().strip() == "<p>html body</p>"
    assert client.get("/dev/mail/..%2Fsecret.eml/").status_code == 404
    assert client.get("/dev/mail/nope.eml/").status_code == 404
