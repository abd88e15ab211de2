"""The cheaper ways an email is made: CSS inlined into the template once, MIME written without
the stdlib generator, SMTP commands pipelined. Each must give the same email as the slow way."""

import datetime
import email
import email.policy
import smtplib
from html.parser import HTMLParser

import css_inline
import pytest
from django.conf import settings as django_settings
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from digest import matching
from digest.emails import email_render, template_inline_css
from digest.mail.mime import message_bytes
from digest.models import Paper
from digest.services.delivery import digest_context
from digest.services.editions import edition_ranks
from tests.digest_support import SITE, frozen_edition
from tests.factories import SubscriberFactory

DAY = datetime.date(2026, 3, 12)


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = SITE
    settings.MATCHING_METHOD = "lexical"
    settings.SITE_NAME = "Paperboy"
    settings.DEFAULT_FROM_EMAIL = "Paperboy <digest@paperboy.example.org>"


class _Document(HTMLParser):
    """The parsed page: tags with their attributes, text with entities decoded (&#39; is ') and
    runs of whitespace as one space, as a browser collapses them (the digest has no <pre>)."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.events: list = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.events.append(("start", tag, sorted(attrs)))

    def handle_endtag(self, tag):
        self.events.append(("end", tag))

    def handle_data(self, data):
        if self.events and self.events[-1][0] == "text":
            data = self.events.pop()[1] + data
        self.events.append(("text", " ".join(data.split()) if not data.strip() else data))


def _inlined_after_rendering(name: str, context: dict) -> str:
    """The old way: render the template as written, then inline the CSS into the result."""
    env = Environment(loader=FileSystemLoader(str(django_settings.EMAIL_TEMPLATES_DIR)),
                      autoescape=select_autoescape(default=True, default_for_string=True), undefined=StrictUndefined)
    html = env.get_template(f"{name}.html").render({"site_name": "Paperboy", "site_url": SITE, **context})
    return css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False).inline(html)


@pytest.mark.django_db
def test_the_digest_template_inlined_once_renders_the_same_page_as_inlining_every_email():
    edition = frozen_edition(day=DAY, count=12, title="Bits & <Bytes> \"quoted\" o'clock", code_url="")
    readers = [
        SubscriberFactory(email="ada@example.com", interests="quantization, robots", digest_size=10),
        SubscriberFactory(email="bob&co@example.com", interests="", digest_size=5),
        SubscriberFactory(email="cy@example.com", interests="bytes", digest_size=30, frequency="weekly"),
    ]
    picks = matching.select_for_subscribers(subscribers=readers, day=DAY, candidate_ids=edition.paper_ids)
    ranks = edition_ranks(edition=edition)
    for reader in readers:
        context = digest_context(subscriber=reader, edition=edition, picks=picks[reader.pk], ranks=ranks)
        fast = email_render(name="digest", context=context).html
        assert _Document(fast).events == _Document(_inlined_after_rendering("digest", context)).events
        assert 'style="' in fast and "&lt;Bytes&gt;" in fast and "<Bytes>" not in fast


@pytest.mark.django_db
def test_cards_rendered_once_per_paper_give_the_bytes_the_whole_template_gives():
    """Random digests (some papers without authors, link or votes, pinned, trending, odd characters):
    the page assembled from cached cards is the template's own output, text and HTML."""
    import random

    from digest import emails

    edition = frozen_edition(day=DAY, count=14, title="Bits & <Bytes> \"quoted\" o'clock {{ loop.index }} PBLOOPINDEXX")
    papers = list(Paper.objects.filter(pk__in=edition.paper_ids).order_by("pk"))
    for n, paper in enumerate(papers[::2]):  # most cards plain, some that can only render the slow way
        paper.title = f"Plain paper {n}"
        paper.save()
    ranks = edition_ranks(edition=edition)
    reader = SubscriberFactory(email="ada&co@example.com")
    rng = random.Random(8)
    reasons = [[], ["trending #2 today"], ["matches your interest 'robots <&>'", "trending #1 today"], ["topic: Robotics"]]
    for _ in range(150):
        picks = [matching.Pick(paper_id=p.id, paper=p, score=0.5, reasons=rng.choice(reasons), trending=rng.random() < 0.3,
                               pinned=rng.random() < 0.1) for p in rng.sample(papers, rng.randint(0, 12))]
        context = digest_context(subscriber=reader, edition=edition, picks=picks, ranks=ranks)
        for item in context["papers"]:
            if rng.random() < 0.2:
                item.update(authors="", url="", upvotes=0, pdf_url="")
        context = {"site_name": "Paperboy", "site_url": SITE, **context}
        for env, name in ((emails.text_env(), "digest.txt"), (emails.html_env(), "digest.html")):
            assert emails._render(env, name, context) == env.get_template(name).render(context)
    digest_splits = [split for (_, name), (_, split) in emails._cards.items() if name.startswith("digest.")]
    assert len(digest_splits) == 2 and all(split.page is not None and split.cache for split in digest_splits)


def test_inlining_refuses_css_whose_match_depends_on_which_branch_rendered():
    source = "<html><head><style>p + p { color: red; }</style></head><body>{% if a %}<p>a</p>{% endif %}<p>b</p></body></html>"
    with pytest.raises(ValueError):
        template_inline_css(source)


def test_inlining_keeps_every_jinja_tag_where_it_was():
    source = ('<html><head><style>.x a { color: red; }</style></head><body><table>{% for r in rows %}'
              '<tr><td class="x"><a href="{{ r.url }}">{{ r.name }}</a></td></tr>{% endfor %}</table></body></html>')
    out = template_inline_css(source)
    rendered = Environment(autoescape=True).from_string(out).render(rows=[{"url": "https://a.example/?q=1&r=2", "name": "<A>"}])
    assert 'href="https://a.example/?q=1&amp;r=2" style="color: red;"' in rendered and "&lt;A&gt;" in rendered


# ---------------------------------------------------------------- MIME


def _messages():
    long_line = "word " * 300  # 1500 bytes on one line: quoted-printable
    yield EmailMultiAlternatives(
        subject="Paperboy: 30 papers – Ünïcode « quotes » and a subject long enough to need folding twice over",
        body=f"Hello Jöhn\n.leading dot\r\n{long_line}\nlast line without newline",
        from_email="Paperboy <digest@paperboy.example.org>", to=["Jöhn Dœ <john@example.org>"],
        headers={"List-Unsubscribe": f"<{SITE}/u/{'a' * 120}/>, <mailto:unsubscribe@paperboy.example.org?subject=unsubscribe>",
                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click", "List-Id": "Paperboy digest <digest.paperboy.example.org>",
                 "Auto-Submitted": "auto-generated", "Precedence": "bulk", "Message-ID": "<delivery7.1@paperboy.example.org>"},
        alternatives=[("<p>Hello J&ouml;hn ▲</p>\n" * 50, "text/html")],
    )
    yield EmailMultiAlternatives(subject="ASCII", body="plain\n", from_email="a@example.org", to=["b@example.org"],
                                 cc=["c@example.org"], reply_to=["r@example.org"], alternatives=[("<b>x</b>", "text/html")])
    yield EmailMessage(subject="Only text", body="one part, 8bit: é\n", from_email="a@example.org", to=["b@example.org"])


def _parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_the_fast_mime_writer_gives_the_same_headers_and_parts_as_djangos(index):
    slow_msg, fast_msg = list(_messages())[index], list(_messages())[index]
    slow_msg.extra_headers.setdefault("Date", "Thu, 12 Mar 2026 08:00:00 -0000")
    fast_msg.extra_headers.setdefault("Date", "Thu, 12 Mar 2026 08:00:00 -0000")
    slow_msg.extra_headers.setdefault("Message-ID", "<x@example.org>")
    fast_msg.extra_headers.setdefault("Message-ID", "<x@example.org>")
    slow_raw = slow_msg.message().as_bytes(linesep="\r\n")
    fast_raw = message_bytes(fast_msg)
    slow, fast = _parsed(slow_raw), _parsed(fast_raw)
    drop_boundary = lambda items: [(k, v.split(";")[0] if k == "Content-Type" else v) for k, v in items]  # noqa: E731
    assert drop_boundary(fast.items()) == drop_boundary(slow.items())
    slow_parts, fast_parts = list(slow.walk()), list(fast.walk())
    assert [p.get_content_type() for p in fast_parts] == [p.get_content_type() for p in slow_parts]
    for s, f in zip(slow_parts, fast_parts):
        assert f.get("Content-Transfer-Encoding") == s.get("Content-Transfer-Encoding")
        if not s.is_multipart():
            assert f.get_content() == s.get_content()
    assert max(len(line) for line in fast_raw.split(b"\r\n")) <= 998
    assert b"\n" not in fast_raw.replace(b"\r\n", b"")


def test_messages_of_other_shapes_are_left_to_django():
    with_file = EmailMessage(subject="s", body="b", from_email="a@example.org", to=["b@example.org"])
    with_file.attach("notes.txt", "hello", "text/plain")
    assert message_bytes(with_file) is None


# ---------------------------------------------------------------- SMTP backend


@pytest.fixture(params=[False, True], ids=["plain", "pipelined"])
def fast_smtp(request, smtp_sink, settings):
    """The real aiosmtpd sink, with and without PIPELINING advertised, behind our backend."""
    settings.EMAIL_BACKEND = "digest.mail.smtp.EmailBackend"
    if request.param:
        async def handle_EHLO(server, session, envelope, hostname, responses):
            session.host_name = hostname
            return responses[:-1] + ["250-PIPELINING", responses[-1]]

        smtp_sink.handle_EHLO = handle_EHLO
    smtp_sink.pipelined = request.param
    return smtp_sink


def test_the_backend_delivers_the_same_message_over_smtp(fast_smtp):
    message = next(_messages())
    with get_connection() as connection:
        assert connection.send_messages([message]) == 1
        assert connection.connection.has_extn("pipelining") == fast_smtp.pipelined
    (got,) = fast_smtp.messages
    assert got.rcpt_tos == ["john@example.org"] and got.mail_from == "digest@paperboy.example.org"
    assert got.subject.strip().startswith("Paperboy: 30 papers – Ünïcode")  # Django folds it after "Subject:" too
    assert got.part("text/plain").replace("\r\n", "\n").startswith("Hello Jöhn\n.leading dot\n")  # dot unstuffed
    assert got.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_refused_recipient_raises_what_smtplib_raises_and_the_session_goes_on(fast_smtp):
    fast_smtp.reply = lambda rcpt: "550 5.1.1 no such user" if rcpt.startswith("gone") else "250 OK"
    gone = EmailMessage(subject="s", body="b\n", from_email="a@example.org", to=["gone@example.org"])
    fine = EmailMessage(subject="s", body="b\n", from_email="a@example.org", to=["here@example.org"])
    with get_connection() as connection:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            connection.send_messages([gone])
        assert refused.value.recipients["gone@example.org"][0] == 550
        assert connection.send_messages([fine]) == 1
    assert [m.rcpt_tos for m in fast_smtp.messages] == [["here@example.org"]]


def test_a_rejected_message_body_raises_a_data_error(fast_smtp):
    fast_smtp.on_data = lambda envelope: "451 4.3.0 try again later"
    with get_connection() as connection, pytest.raises(smtplib.SMTPDataError) as error:
        connection.send_messages([EmailMessage(subject="s", body="b\n", from_email="a@example.org", to=["x@example.org"])])
    assert error.value.smtp_code == 451 and not fast_smtp.messages


def test_headers_fold_exactly_as_the_stdlib_folds_them():
    """The shape-cached folding gives compat32's bytes for per-reader headers and for arbitrary text."""
    import random
    import string
    from email import policy

    from digest.mail.mime import _fold

    reference = policy.compat32.clone(linesep="\r\n")
    rng = random.Random(5)
    alphabet = string.ascii_letters + string.digits + ' <>@.,;:"()=?-_/\t'
    for _ in range(3000):
        token = "".join(rng.choice(string.ascii_letters + string.digits + "-_:") for _ in range(rng.randint(20, 140)))
        for name, value in [
            ("List-Unsubscribe", f"<{SITE}/unsubscribe/{token}/>, <mailto:unsubscribe@paperboy.example.org?subject=unsubscribe>"),
            ("Content-Type", f'multipart/alternative; boundary="==============={rng.randrange(10**19):019d}=="'),
            (rng.choice(["Subject", "X-Long-Header-Name"]), "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))),
        ]:
            assert _fold(name, value) == reference.fold(name, value), (name, value)


def test_headers_that_differ_per_reader_only_inside_words_fold_from_one_cached_shape():
    from digest.mail.mime import _fold, _fold_cached

    _fold_cached.cache_clear()
    for n in range(200):
        _fold("List-Unsubscribe", f"<{SITE}/unsubscribe/{'abcdefghij'[n % 10] * 60}{n:04d}/>, <mailto:u@paperboy.example.org?subject=unsubscribe>")
        _fold("Content-Type", f'multipart/alternative; boundary="==============={n:019d}=="')
    assert _fold_cached.cache_info().currsize == 2


@pytest.mark.django_db
def test_links_are_the_paths_reverse_gives_for_any_token():
    import random
    import string

    from django.urls import reverse, set_script_prefix

    from subscriptions import links

    rng = random.Random(4)
    tokens = ["".join(rng.choice(string.ascii_letters + string.digits + "-_:") for _ in range(rng.randint(1, 90)))
              for _ in range(300)] + ["a b", "é:x", "%41", "?q"]
    for prefix in ["/", "/paperboy/"]:
        set_script_prefix(prefix)
        try:
            for name in ("subscriptions:confirm", "subscriptions:manage", "subscriptions:unsubscribe"):
                for token in tokens:
                    assert links._token_path(name, token) == reverse(name, kwargs={"token": token})
        finally:
            set_script_prefix("/")
    reader = SubscriberFactory()
    assert links.manage_url(reader).startswith(f"{SITE}/manage/") and links.unsubscribe_url(reader).endswith("/")


def test_a_long_line_is_found_exactly_where_splitting_on_crlf_finds_it():
    import random

    from digest.mail.mime import _longest_line

    rng = random.Random(6)
    for _ in range(3000):
        pieces = [rng.choice(["a" * rng.randint(0, 1100), "é" * rng.randint(0, 600), "\n", "b"]) for _ in range(rng.randint(0, 12))]
        raw = "".join(pieces).replace("\n", "\r\n").encode("utf-8")
        assert (_longest_line(raw) > 998) == (max(map(len, raw.split(b"\r\n"))) > 998), raw[:80]


def test_dot_stuffing_doubles_exactly_the_dots_smtplib_doubles():
    import random

    from digest.mail.smtp import _quote_periods

    rng = random.Random(3)
    samples = [b"", b".", b"..", b".\r\n.", b"a\r\n.b\r\n..c\n.\r.", b"\n\n.\n."]
    samples += [bytes(rng.choice(b".\r\nab") for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    for data in samples:
        assert _quote_periods(data) == smtplib._quote_periods(data), data


@pytest.mark.skipif(__import__("shutil").which("spamassassin") is None, reason="SpamAssassin is not installed")
@pytest.mark.django_db
def test_spamassassin_scores_the_bytes_our_smtp_backend_writes_clean(settings):
    """The same verdict as tests/test_digest_email.py gives Django's serialization, for ours."""
    import re
    import subprocess

    from tests.test_digest_email import _message

    settings.UNSUBSCRIBE_MAILTO = "unsubscribe@paperboy.example.org"
    msg, _, _, _ = _message(count=30, code_url="https://github.com/example/code")
    raw = message_bytes(msg)
    assert raw is not None
    date = _parsed(raw)["Date"]
    envelope = (
        b"Return-Path: <digest@paperboy.example.org>\r\n"
        b"Received: from mail.paperboy.example.org (mail.paperboy.example.org [192.0.2.10])\r\n"
        b"\tby mx.example.com with ESMTPS id 4ABC123; " + str(date).encode() + b"\r\n"
    )
    result = subprocess.run(["spamassassin", "-L", "-t"], input=envelope + raw, capture_output=True, timeout=120)
    report = result.stdout.decode(errors="replace")
    score = float(re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", report, re.M).group(1))
    assert score < 1.0, report[report.find("Content analysis details"):][:3000]
