"""The digest email: both parts, exact headers, size, escaping, and a real spam filter's verdict."""

import datetime
import email
import email.policy
import re
import shutil
import subprocess

import pytest
import time_machine
from django.core import mail

from digest import matching
from digest.models import Delivery
from digest.services.delivery import digest_message_build
from digest.services.editions import edition_freeze, edition_papers, edition_ranks, edition_readers_picks
from tests.digest_support import SITE, frozen_edition, trending_day
from tests.factories import SubscriberFactory

DAY = datetime.date(2026, 3, 12)


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = SITE
    settings.MATCHING_METHOD = "lexical"  # matching has its own tests; this spares the torch import
    settings.SITE_NAME = "Paperboy"
    settings.DEFAULT_FROM_EMAIL = "Paperboy <digest@paperboy.example.org>"
    settings.UNSUBSCRIBE_MAILTO = "unsubscribe@paperboy.example.org"


def _message(*, count=30, **paper_kwargs):
    edition = frozen_edition(day=DAY, count=count, **paper_kwargs)
    subscriber = SubscriberFactory(email="ada@example.com", digest_size=30)
    delivery = Delivery.objects.create(edition=edition, subscriber=subscriber)
    picks = matching.select_for_subscribers(subscribers=[subscriber], day=DAY, candidate_ids=edition.paper_ids)[
        subscriber.pk
    ]
    if not picks:  # a reader with no interests still gets the day's top papers
        pytest.fail("matching returned no picks for a reader without interests")
    msg = digest_message_build(
        delivery=delivery, subscriber=subscriber, edition=edition, picks=picks, ranks=edition_ranks(edition=edition)
    )
    return msg, delivery, subscriber, picks


def _parsed(msg) -> email.message.EmailMessage:
    return email.message_from_bytes(msg.message().as_bytes(), policy=email.policy.default)


def _part(parsed, content_type):
    return next(p.get_content() for p in parsed.walk() if p.get_content_type() == content_type)


@pytest.mark.django_db
def test_the_digest_has_a_text_and_an_html_part_with_every_paper():
    msg, _, _, picks = _message(count=30)
    parsed = _parsed(msg)
    text, html = _part(parsed, "text/plain"), _part(parsed, "text/html")
    assert len(picks) == 30
    for pick in picks:
        assert pick.paper.title in text
        assert pick.paper.title in html
        assert pick.paper.pdf_url in html
    assert "The whole edition online" in html and f"{SITE}/digest/2026-03-12/" in html
    assert "Unsubscribe" in html and "Manage" in html
    assert 'class="preheader"' in html
    # Media queries cannot be inlined: dark mode and narrow screens stay in a style tag.
    assert "prefers-color-scheme: dark" in html and "max-width: 620px" in html
    # css-inline moved the rules onto the elements.
    assert re.search(r'<p class="title" style="[^"]*font-weight: bold', html)


@pytest.mark.django_db
def test_the_headers_are_exactly_what_bulk_mail_needs():
    msg, delivery, subscriber, _ = _message(count=10)
    parsed = _parsed(msg)
    unsubscribe = re.fullmatch(r"<(https://[^>]+)>, <mailto:unsubscribe@paperboy\.example\.org\?subject=unsubscribe>",
                               parsed["List-Unsubscribe"].strip())
    assert unsubscribe, parsed["List-Unsubscribe"]
    assert unsubscribe.group(1).startswith(f"{SITE}/unsubscribe/")
    assert parsed["List-Unsubscribe-Post"].strip() == "List-Unsubscribe=One-Click"
    assert parsed["List-Id"].strip() == "Paperboy digest <digest.paperboy.example.org>"
    assert parsed["Auto-Submitted"].strip() == "auto-generated"
    assert parsed["Precedence"].strip() == "bulk"
    assert re.fullmatch(rf"<delivery{delivery.pk}\.2026-03-12\.[0-9a-f]{{10}}@paperboy\.example\.org>",
                        parsed["Message-ID"].strip())
    assert parsed["To"].strip() == "ada@example.com"
    assert parsed["From"].strip() == "Paperboy <digest@paperboy.example.org>"
    assert msg.tags == ["digest"]
    assert msg.metadata == {"delivery_id": str(delivery.pk), "edition": "2026-03-12"}
    assert parsed["Subject"].strip().startswith("Paperboy: 10 papers for 12 Mar 2026")


@pytest.mark.django_db
def test_two_deliveries_never_share_a_message_id():
    msg, _, _, _ = _message(count=5)
    other = SubscriberFactory()
    from digest.models import Edition
    edition = Edition.objects.get(date=DAY)
    delivery = Delivery.objects.create(edition=edition, subscriber=other)
    picks = matching.select_for_subscribers(subscribers=[other], day=DAY, candidate_ids=edition.paper_ids)[other.pk]
    second = digest_message_build(delivery=delivery, subscriber=other, edition=edition, picks=picks, ranks={})
    assert _parsed(msg)["Message-ID"].strip() != _parsed(second)["Message-ID"].strip()


@pytest.mark.django_db
def test_a_retry_of_the_same_delivery_carries_the_same_message_id():
    # A worker killed between the server's 250 and the record sends the row again when its
    # lease expires: the same Message-ID lets mailbox providers fold the two copies.
    msg, delivery, subscriber, picks = _message(count=5)
    edition = delivery.edition
    again = digest_message_build(
        delivery=delivery, subscriber=subscriber, edition=edition, picks=picks, ranks=edition_ranks(edition=edition)
    )
    assert _parsed(again)["Message-ID"].strip() == _parsed(msg)["Message-ID"].strip()


@pytest.mark.django_db
def test_message_ids_differ_between_installs(settings):
    msg, delivery, subscriber, picks = _message(count=5)
    settings.SECRET_KEY = "another-install-" + "x" * 50
    other = digest_message_build(delivery=delivery, subscriber=subscriber, edition=delivery.edition, picks=picks, ranks={})
    assert _parsed(other)["Message-ID"].strip() != _parsed(msg)["Message-ID"].strip()


@pytest.mark.django_db
def test_the_html_stays_under_gmails_clipping_limit_at_30_papers():
    # Long titles, many authors and abstracts: the largest digest we send.
    msg, _, _, _ = _message(
        count=30, title="An unusually long paper title " * 6, authors=[f"Author Number {i}" for i in range(40)],
        abstract="word " * 2000, code_url="https://github.com/example/some-long-repository-name",
    )
    html = _part(_parsed(msg), "text/html")
    assert len(html.encode()) < 102 * 1024, len(html.encode())


@pytest.mark.django_db
def test_user_text_is_escaped_in_the_html_and_left_alone_in_the_text():
    msg, _, _, _ = _message(count=3, title='<script>alert("x")</script> & <b>bold</b> claims')
    parsed = _parsed(msg)
    html, text = _part(parsed, "text/html"), _part(parsed, "text/plain")
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;" in html
    assert '<script>alert("x")</script>' in text  # plain text is not HTML: no entities there


@pytest.mark.django_db
def test_authors_are_shortened_and_abstracts_cut_to_a_snippet():
    msg, _, _, _ = _message(count=1, authors=["A One", "B Two", "C Three", "D Four", "E Five"], abstract="lorem " * 400)
    text = _part(_parsed(msg), "text/plain")
    assert "A One, B Two, C Three et al." in text
    assert "E Five" not in text
    # Wrapped for a phone's plain-text view: indented lines of at most 71 characters.
    snippet_lines = [line for line in text.splitlines() if "lorem" in line]
    snippet = " ".join(line.strip() for line in snippet_lines)
    assert len(snippet) <= 262 and snippet.endswith("…")
    assert len(snippet_lines) > 1 and all(line.startswith("   ") and len(line) <= 71 for line in snippet_lines)


@pytest.mark.django_db
def test_long_titles_are_wrapped_in_the_plain_text_too():
    title = "A Very Long Title About Diffusion Models " * 6
    msg, _, _, _ = _message(count=1, title=title.strip())
    text = _part(_parsed(msg), "text/plain")
    lines = [line for line in text.splitlines() if "Diffusion Models" in line]
    assert len(lines) > 1 and all(len(line) <= 71 for line in lines)
    assert lines[0].startswith("1. ") and all(line.startswith("   ") for line in lines[1:])


@pytest.mark.django_db
def test_the_digest_arrives_through_real_smtp_intact(smtp_sink):
    msg, _, _, _ = _message(count=30)
    msg.connection = None
    assert msg.send() == 1
    [got] = smtp_sink.to("ada@example.com")
    assert got.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert got.part("text/plain") and got.part("text/html")


SPAMASSASSIN = shutil.which("spamassassin")


@pytest.mark.skipif(SPAMASSASSIN is None, reason="SpamAssassin is not installed (apt-get install spamassassin)")
@pytest.mark.django_db
def test_spamassassin_scores_a_30_paper_digest_clean():
    msg, _, _, _ = _message(count=30, code_url="https://github.com/example/code")
    raw = msg.message().as_bytes()
    # What the receiving MTA adds in front: a Received line and a Return-Path.
    envelope = (
        b"Return-Path: <digest@paperboy.example.org>\r\n"
        b"Received: from mail.paperboy.example.org (mail.paperboy.example.org [192.0.2.10])\r\n"
        b"\tby mx.example.com with ESMTPS id 4ABC123; " + msg.message()["Date"].encode() + b"\r\n"
    )
    result = subprocess.run([SPAMASSASSIN, "-L", "-t"], input=envelope + raw, capture_output=True, timeout=120)
    report = result.stdout.decode(errors="replace")
    score = float(re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", report, re.M).group(1))
    assert score < 1.0, report[report.find("Content analysis details"):][:3000]


@pytest.mark.django_db
def test_a_shared_render_is_identical_to_a_fresh_one_and_carries_each_readers_own_links():
    from digest.services.delivery import digest_render

    edition = frozen_edition(day=DAY, count=10)
    ada, bob = SubscriberFactory(email="ada@example.com"), SubscriberFactory(email="bob&co@example.com")
    picks = matching.select_for_subscribers(subscribers=[ada, bob], day=DAY, candidate_ids=edition.paper_ids)
    assert [p.paper_id for p in picks[ada.pk]] == [p.paper_id for p in picks[bob.pk]]
    ranks = edition_ranks(edition=edition)
    cache: dict = {}
    with time_machine.travel(datetime.datetime(2026, 3, 12, 8, tzinfo=datetime.UTC), tick=False):  # same signed links
        shared_ada, ctx_ada = digest_render(subscriber=ada, edition=edition, picks=picks[ada.pk], ranks=ranks, cache=cache)
        shared_bob, ctx_bob = digest_render(subscriber=bob, edition=edition, picks=picks[bob.pk], ranks=ranks, cache=cache)
        fresh_bob, _ = digest_render(subscriber=bob, edition=edition, picks=picks[bob.pk], ranks=ranks)
    assert len(cache) == 1  # one render served both
    assert (shared_bob.subject, shared_bob.text) == (fresh_bob.subject, fresh_bob.text)
    # The HTML is packed into long lines before the personal links go in, so only where
    # lines break may differ (newline or space: the same whitespace to HTML).
    assert shared_bob.html.split() == fresh_bob.html.split()
    assert max(len(line.encode()) for line in shared_bob.html.splitlines()) <= 998
    assert ctx_bob["unsubscribe_url"] in shared_bob.text and ctx_ada["unsubscribe_url"] not in shared_bob.text
    assert ctx_ada["manage_url"] not in shared_bob.html and "bob&amp;co@example.com" in shared_bob.html
    assert "PBPERSONAL" not in shared_ada.html + shared_ada.text + shared_bob.html + shared_bob.text


def _rendered_both_ways(*, edition, subscriber, picks):
    """The digest rendered fresh and through a shared render (the sending fast path): the same email."""
    from digest.services.delivery import RenderCache, digest_render

    ranks = edition_ranks(edition=edition)
    fresh, _ = digest_render(subscriber=subscriber, edition=edition, picks=picks, ranks=ranks)
    shared, _ = digest_render(subscriber=subscriber, edition=edition, picks=picks, ranks=ranks, cache=RenderCache())
    assert shared == fresh
    return fresh


@pytest.mark.django_db
@time_machine.travel(datetime.datetime(2026, 3, 12, 8, tzinfo=datetime.UTC), tick=False)  # sent on the edition's day
def test_a_trending_pick_says_its_days_rank_once_and_the_same_number_after_a_paper_above_is_hidden():
    from digest.services import curation

    edition = frozen_edition(day=DAY, count=5)
    first, second = edition_papers(edition=edition)[:2]
    Paper = type(first)
    Paper.objects.filter(pk__in=edition.paper_ids).update(upvotes=0)  # no votes: the rank is what the meta line shows
    curation.papers_hide(paper_ids=[first.pk])
    subscriber = SubscriberFactory(email="ada@example.com", digest_size=5)
    picks = matching.select_for_subscriber(subscriber=subscriber, day=DAY, candidate_ids=edition.paper_ids)
    assert picks[0].paper_id == second.pk and picks[0].reasons == ["trending #2 today"]
    rendered = _rendered_both_ways(edition=edition, subscriber=subscriber, picks=picks)
    for body in (rendered.text, rendered.html):
        assert body.count("trending #2 today") == 1
        assert "#2 trending" not in body and "trending #1 today" not in body and first.title not in body


@pytest.mark.django_db
@time_machine.travel(datetime.datetime(2026, 3, 12, 8, tzinfo=datetime.UTC), tick=False)  # sent on the edition's day
def test_every_rank_in_the_email_reads_as_the_reasons_say_it_and_each_paper_says_its_own_once():
    edition = frozen_edition(day=DAY, count=5, title="Diffusion policies")
    type(edition_papers(edition=edition)[0]).objects.filter(pk__in=edition.paper_ids).update(upvotes=0)  # ranks show
    subscriber = SubscriberFactory(email="ada@example.com", digest_size=5, interests="diffusion policies")
    picks = matching.select_for_subscriber(subscriber=subscriber, day=DAY, candidate_ids=edition.paper_ids)
    # All five match: reasons cite the top three ranks, the meta lines the other two.
    assert sorted(p.rank_in_reasons or 0 for p in picks) == [0, 0, 1, 2, 3]
    rendered = _rendered_both_ways(edition=edition, subscriber=subscriber, picks=picks)
    text = " ".join(rendered.text.split())  # the Why line wraps
    for body in (text, rendered.html):
        for rank in range(1, 6):
            assert body.count(f"trending #{rank} today") == 1, (rank, body)
        assert not re.search(r"#\d+ trending", body)
    assert re.search(r'<p class="meta"[^>]*>trending #4 today · <a', rendered.html)
    assert "\n   trending #5 today\n" in rendered.text


@pytest.mark.django_db
def test_a_reason_that_says_the_rank_keeps_it_off_the_meta_line_whoever_made_the_pick():
    # Picks made elsewhere than matching (tests, a future caller) carry no rank_in_reasons: the reasons are read.
    edition = frozen_edition(day=DAY, count=3)
    paper = edition_papers(edition=edition)[1]
    type(paper).objects.filter(pk=paper.pk).update(upvotes=0)
    paper.refresh_from_db()
    subscriber = SubscriberFactory(email="ada@example.com", digest_size=5)
    said = matching.Pick(paper_id=paper.pk, paper=paper, score=0.5, reasons=["topic: Robots", "trending #2 on 12 Mar"])
    unsaid = matching.Pick(paper_id=paper.pk, paper=paper, score=0.5, reasons=["topic: Robots"])
    typed = matching.Pick(paper_id=paper.pk, paper=paper, score=0.5, reasons=["matches your interest 'trending #1 models'"])
    with _at(DAY + datetime.timedelta(days=21)):
        cited = _rendered_both_ways(edition=edition, subscriber=subscriber, picks=[said])
        shown = [_rendered_both_ways(edition=edition, subscriber=subscriber, picks=[p]) for p in (unsaid, typed)]
    for body in (cited.text, cited.html):
        assert body.count("trending #2") == 1
    for rendered in shown:  # an interest that reads like a rank is no rank
        for body in (rendered.text, rendered.html):
            assert body.count("trending #2 on 12 Mar") == 1


@pytest.mark.django_db
def test_a_pinned_paper_without_votes_rank_or_links_says_pinned_once_and_no_stray_separator():
    from tests.factories import PaperFactory

    edition = frozen_edition(day=DAY, count=3)
    pinned = PaperFactory(upvotes=0, abs_url="", pdf_url="", code_url="")  # not trending that day
    subscriber = SubscriberFactory(email="ada@example.com", digest_size=5)
    picks = [matching.Pick(paper_id=pinned.pk, paper=pinned, score=0.0, reasons=["pinned by the editors"], pinned=True)]
    rendered = _rendered_both_ways(edition=edition, subscriber=subscriber, picks=picks)
    # The paper's own block, after the first line (which counts it: "1 paper pinned by the editors").
    cards = (rendered.text.split("\n1. ", 1)[1], rendered.html.split('class="paper"', 1)[1])
    for body in cards:
        assert body.count("pinned by the editors") == 1
        assert "editor's pick" not in body and "editor&#39;s pick" not in body
    assert '<p class="meta"' not in rendered.html
    assert "\n    · " not in rendered.text and "\n   \n" not in rendered.text


@pytest.mark.django_db
@pytest.mark.parametrize("count, words", [(1, "1 paper"), (2, "2 papers")])
@time_machine.travel(datetime.datetime(2026, 3, 12, 8, tzinfo=datetime.UTC), tick=False)  # sent on the edition's day
def test_the_number_of_papers_is_said_in_the_singular_for_one(count, words):
    from digest.services.delivery import digest_context

    edition = frozen_edition(day=DAY, count=count)
    subscriber = SubscriberFactory(email="ada@example.com", digest_size=5)
    picks = matching.select_for_subscriber(subscriber=subscriber, day=DAY, candidate_ids=edition.paper_ids)
    rendered = _rendered_both_ways(edition=edition, subscriber=subscriber, picks=picks)
    assert rendered.subject.startswith(f"Paperboy: {words} for 12 Mar 2026")
    # This reader's interests match none of these papers: the top-up is said to be one.
    top = "is the top trending paper" if count == 1 else f"are the {count} top trending papers"
    assert f"Nothing matched your interests today: here {top}" in rendered.text
    assert f"Nothing matched your interests today: here {top}" in rendered.html
    context = digest_context(subscriber=subscriber, edition=edition, picks=picks, ranks=edition_ranks(edition=edition))
    assert context["preheader"].startswith(f"Nothing matched your interests today: here {top}.")


def test_the_first_line_says_how_many_papers_match_and_how_many_only_trend():
    from digest.services.delivery import digest_lead

    def papers(matched, trending):
        return [{"trending": False, "pinned": False}] * matched + [{"trending": True, "pinned": False}] * trending

    assert digest_lead(papers(1, 0), period="today") == "1 paper picked for you"
    assert digest_lead(papers(7, 0), period="today") == "7 papers picked for you"
    assert digest_lead(papers(3, 2), period="this week") == "3 papers for your interests, and 2 trending this week"
    assert digest_lead(papers(0, 6), period="today") == "Nothing matched your interests today: here are the 6 top trending papers"


def test_the_first_line_counts_pinned_papers_as_the_editors_never_as_matches():
    from digest.services.delivery import digest_lead

    def papers(matched, pinned, trending):
        return (
            [{"trending": False, "pinned": False}] * matched
            + [{"trending": False, "pinned": True}] * pinned
            + [{"trending": True, "pinned": False}] * trending
        )

    assert digest_lead(papers(4, 1, 0), period="today") == "4 papers picked for you, and 1 pinned by the editors"
    assert digest_lead(papers(3, 2, 1), period="today") == (
        "3 papers for your interests, 2 pinned by the editors, and 1 trending today"
    )
    assert digest_lead(papers(0, 1, 4), period="today") == (
        "Nothing matched your interests today: here are the paper pinned by the editors and the 4 top trending papers"
    )
    assert digest_lead(papers(0, 2, 1), period="this week") == (
        "Nothing matched your interests this week: here are the 2 papers pinned by the editors and the top trending paper"
    )
    assert digest_lead(papers(0, 1, 0), period="today") == "1 paper pinned by the editors"
    assert digest_lead(papers(0, 5, 0), period="today") == "5 papers pinned by the editors"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "interests, lead, preheader",
    [
        (
            "diffusion policies",
            "4 papers picked for you, and 1 pinned by the editors",
            "4 papers picked for you, and 1 pinned by the editors. ",
        ),
        (
            "",
            "Nothing matched your interests today: here are the paper pinned by the editors and the 4 top trending papers",
            "Nothing matched your interests today: here are the paper pinned by the editors and the 4 top trending papers. ",
        ),
    ],
)
@time_machine.travel(datetime.datetime(2026, 3, 12, 8, tzinfo=datetime.UTC), tick=False)  # sent on the edition's day
def test_a_pinned_paper_is_not_counted_for_the_readers_interests_in_either_part(interests, lead, preheader):
    from digest.services import curation
    from digest.services.delivery import digest_context
    from tests.factories import PaperFactory

    trending_day(day=DAY, count=6, title="Diffusion policies")
    pinned = PaperFactory(title="An editors' favourite about sea slugs", abstract="Sea slugs.")
    curation.papers_pin(paper_ids=[pinned.pk])
    edition = edition_freeze(day=DAY)
    subscriber = SubscriberFactory(email="ada@example.com", digest_size=5, interests=interests)
    picks = matching.select_for_subscriber(subscriber=subscriber, day=DAY, candidate_ids=edition.paper_ids)
    assert picks[0].paper_id == pinned.pk and picks[0].reasons == ["pinned by the editors"]
    rendered = _rendered_both_ways(edition=edition, subscriber=subscriber, picks=picks)
    assert f"\n{lead}.\n" in rendered.text
    assert f"{lead}</p>" in rendered.html.replace("&#39;", "'")
    assert "for your interests" not in rendered.text.replace("Nothing matched your interests", "")
    context = digest_context(subscriber=subscriber, edition=edition, picks=picks, ranks=edition_ranks(edition=edition))
    assert context["preheader"].startswith(preheader)


def _at(day: datetime.date):
    return time_machine.travel(datetime.datetime.combine(day, datetime.time(8), tzinfo=datetime.UTC), tick=False)


def _trending_reasons(picks) -> list[str]:
    return [reason for pick in picks for reason in pick.reasons if reason.startswith("trending")]


@pytest.mark.django_db
def test_an_old_edition_names_its_day_instead_of_saying_today():
    # Fetching stalled: the latest trending day is three weeks old when the digest goes out.
    edition = frozen_edition(day=DAY, count=5)
    subscriber = SubscriberFactory(email="ada@example.com", digest_size=5)
    with _at(DAY + datetime.timedelta(days=21)):
        picks = matching.select_for_subscriber(subscriber=subscriber, day=DAY, candidate_ids=edition.paper_ids)
        rendered = _rendered_both_ways(edition=edition, subscriber=subscriber, picks=picks)
    assert _trending_reasons(picks)[0] == "trending #1 on 12 Mar"
    assert "Nothing matched your interests on 12 Mar: here are the 5 top trending papers" in rendered.html
    for body in (rendered.text, rendered.html):
        # (abstracts are random words, "today" among them: look at what the digest itself says)
        for said in ("trending #1 today", "interests today", "for you today", "today's edition", "trending today"):
            assert said not in body.lower(), said


@pytest.mark.django_db
def test_yesterdays_trending_day_is_still_today_for_the_reader():
    # Trending days are often dated the day before the digest goes out.
    edition = frozen_edition(day=DAY, count=5)
    subscriber = SubscriberFactory(email="ada@example.com", digest_size=5)
    with _at(DAY + datetime.timedelta(days=1)):
        picks = matching.select_for_subscriber(subscriber=subscriber, day=DAY, candidate_ids=edition.paper_ids)
        rendered = _rendered_both_ways(edition=edition, subscriber=subscriber, picks=picks)
    assert _trending_reasons(picks)[0] == "trending #1 today"
    assert "Nothing matched your interests today: here are the 5 top trending papers" in rendered.html


@pytest.mark.django_db
def test_a_ranking_cached_yesterday_does_not_say_today_a_week_later():
    from digest.services.delivery import RenderCache, digest_render

    edition = frozen_edition(day=DAY, count=5)
    subscriber = SubscriberFactory(email="ada@example.com", digest_size=5)
    cache = RenderCache()
    with _at(DAY):
        picks = matching.select_for_subscriber(subscriber=subscriber, day=DAY, candidate_ids=edition.paper_ids)
        digest_render(subscriber=subscriber, edition=edition, picks=picks, ranks={}, cache=cache)
    assert _trending_reasons(picks)[0] == "trending #1 today"
    with _at(DAY + datetime.timedelta(days=8)):
        # The same Day from the in-process cache, and the same picks through the same render cache.
        later = matching.select_for_subscriber(subscriber=subscriber, day=DAY, candidate_ids=edition.paper_ids)
        rendered, _ = digest_render(subscriber=subscriber, edition=edition, picks=picks, ranks={}, cache=cache)
    assert _trending_reasons(later)[0] == "trending #1 on 12 Mar"
    assert "Nothing matched your interests on 12 Mar" in rendered.html and "interests today" not in rendered.html


@pytest.mark.django_db
def test_an_old_weekly_edition_names_its_week():
    from subscriptions.models import Subscriber

    edition = frozen_edition(day=DAY, count=5)
    weekly = SubscriberFactory(email="ada@example.com", digest_size=5, frequency=Subscriber.Frequency.WEEKLY)
    with _at(DAY + datetime.timedelta(days=30)):
        picks = edition_readers_picks(day=DAY, subscribers=[weekly])[weekly.pk]
        rendered = _rendered_both_ways(edition=edition, subscriber=weekly, picks=picks)
    assert _trending_reasons(picks)[0] == "trending #1 in the week to 12 Mar"
    assert "Nothing matched your interests in the week to 12 Mar" in rendered.html
    assert "The 12 Mar edition online" in rendered.text
    assert "this week " not in rendered.text and "Today's edition" not in rendered.text  # (abstracts are random words)
